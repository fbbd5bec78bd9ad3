"""Two printnet sites for tests: a branch spool and server, a central spool, gateway and
server (tests/test_sites_e2e.py, tests/test_sites_faults.py; docs/SITES.md)."""

from __future__ import annotations

import contextlib
import random
import signal
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from helpers_e2e import (
    PYTHON,
    SETUPS,
    PrinterSpec,
    ServerProcess,
    done_records,
    logs,
    make_etc,
    published,
    server_env,
    start_server,
    wait_for,
    write_atomic_text,
)

from printnet.api import Station
from printnet.model import Priority
from printnet.spool.layout import Spool

RANK = {"high": 0, "standard": 1, "overnight": 2}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Sites:
    tmp: Path
    central: Path
    cetc: Path
    branch: Path
    betc: Path
    port: int
    outs: dict[str, Path]
    gateway: subprocess.Popen[bytes] | None = None
    gateway_logs: list[Path] = field(default_factory=list)
    cserver: ServerProcess | None = None
    bserver: ServerProcess | None = None

    def start_gateway(self) -> None:
        log = self.tmp / f"gateway.{len(self.gateway_logs) + 1}.log"
        self.gateway_logs.append(log)
        with open(log, "ab") as fh:
            self.gateway = subprocess.Popen(
                [PYTHON, "-m", "printnet", "--spool", str(self.central), "--etc",
                 str(self.cetc), "gateway", "--ipp", f"127.0.0.1:{self.port}"],
                stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT,
                cwd=self.tmp, env=server_env(self.tmp / "run-gw"))
        proc = self.gateway

        def up() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"gateway exited:\n{log.read_text()}")
            return "listening on" in log.read_text(errors="replace")

        wait_for(up, 60, "the central gateway to listen")

    def kill_gateway(self) -> None:
        if self.gateway is not None and self.gateway.poll() is None:
            self.gateway.send_signal(signal.SIGCONT)
            self.gateway.kill()
            self.gateway.wait(30)

    def start_central(self) -> None:
        self.cserver = start_server(self.cetc, "C1", env=server_env(self.tmp / "run-c"))
        wait_for(lambda: published(self.central, "C1"), 60, "C1 up",
                 on_timeout=self.cserver.log_text)

    def start_branch(self) -> None:
        self.bserver = start_server(self.betc, "B1", env=server_env(self.tmp / "run-b"))
        wait_for(lambda: published(self.branch, "B1"), 60, "B1 up",
                 on_timeout=self.bserver.log_text)

    def text(self) -> str:
        servers = [s for s in (self.bserver, self.cserver) if s is not None]
        gw = "".join(p.read_text(errors="replace")[-3000:] for p in self.gateway_logs)
        return logs(servers) + "\n--- gateway ---\n" + gw

    def stop(self) -> None:
        self.kill_gateway()
        for s in (self.bserver, self.cserver):
            if s is not None:
                with contextlib.suppress(AssertionError):
                    s.stop()


@pytest.fixture(name="sites")
def two_sites(tmp_path: Path) -> Iterator[Sites]:
    central = tmp_path / "central" / "spool"
    branch = tmp_path / "branch" / "spool"
    Spool.init(central)
    Spool.init(branch)
    outs = {p: tmp_path / "central" / "out" / f"{p}.prn" for p in ("CS", "CI")}
    cetc = make_etc(tmp_path / "central", "C1", [central],
                    [PrinterSpec(p, out) for p, out in outs.items()])
    port = free_port()
    betc = make_etc(tmp_path / "branch", "B1", [branch], [])
    write_atomic_text(betc / "printers.cmd",
                      f"PRINTER HQS PORT=spool:{central}?printer=CS SETUP=STANDARD "
                      "ERRORS=RETRY STALL=1 RETRY=0.2 LINKRETRY=2\n"
                      f"PRINTER HQI PORT=ipp://127.0.0.1:{port}/ipp/print/CI SETUP=STANDARD "
                      "ERRORS=RETRY STALL=1 RETRY=0.2 LINKRETRY=2\n" + SETUPS)
    s = Sites(tmp_path, central, cetc, branch, betc, port, outs)
    try:
        s.start_gateway()
        yield s
    finally:
        s.stop()


def submit(s: Sites, n: int, seed: int = 1,
           printers: tuple[str, ...] = ("HQS", "HQI")) -> dict[str, tuple[str, str]]:
    """n jobs at the branch, random printer and priority: id -> (central printer, priority)."""
    rng = random.Random(seed)
    station = Station(s.branch)
    jobs: dict[str, tuple[str, str]] = {}
    src = s.tmp / "doc.txt"
    for i in range(n):
        printer = rng.choice(printers)
        priority = rng.choice(["high", "standard", "standard", "overnight"])
        src.write_text(f"document {i} from the branch\n")
        [req] = station.submit([src], printer=printer, priority=Priority(priority),
                               title=f"doc {i}")
        jobs[req.id] = ("CS" if printer == "HQS" else "CI", priority)
    return jobs


def forwarded(s: Sites, jobs: dict[str, Any]) -> bool:
    done = done_records(s.branch)
    return all(j in done for j in jobs)


def completed_at_central(s: Sites, jobs: dict[str, Any]) -> bool:
    """Whether central has a completed done record for every job (one read of done/)."""
    done = done_records(s.central)
    return all(done.get(j, {}).get("outcome") == "completed" for j in jobs)
