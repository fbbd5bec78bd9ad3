"""Two sites with real processes: a branch forwards to central, exactly once.

Branch: its own spool and one `printnet server` with two forwarding printers,
``HQS`` (``PORT=spool:<central spool>?printer=CS``, the share) and ``HQI``
(``PORT=ipp://127.0.0.1:<port>/ipp/print/CI``, the central gateway).  Central: a
spool, a `printnet gateway` on a fixed port (so it can be killed and started
again where the branch looks for it) and a `printnet server` with the simulated
printers CS and CI.  The oracle is the central printers' output (the header
page names each job's id, which is the branch's id), both sides' done records
and accounting lines.

The soak submits jobs at the branch while the link is cut and restored (the
gateway killed with -9 and started again, SIGSTOPped past the branch's STALL, the
central share renamed away and made unwritable) and the branch server is killed
with -9 at random moments of its forwards.  In CI it runs 60 jobs;
PRINTNET_SITES_SOAK=200 runs the full size.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from helpers_e2e import (
    PYTHON,
    SETUPS,
    PrinterSpec,
    ServerProcess,
    accounting,
    done_records,
    logs,
    make_etc,
    master_jobs,
    printed_ids,
    printnet,
    published,
    server_env,
    start_server,
    wait_for,
    write_atomic_text,
    write_printers,
)

from printnet.api import Station
from printnet.model import Priority
from printnet.spool.layout import Spool

pytestmark = pytest.mark.slow

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


@pytest.fixture
def sites(tmp_path: Path) -> Iterator[Sites]:
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
                      "ERRORS=RETRY STALL=1 RETRY=0.2\n"
                      f"PRINTER HQI PORT=ipp://127.0.0.1:{port}/ipp/print/CI SETUP=STANDARD "
                      "ERRORS=RETRY STALL=1 RETRY=0.2\n" + SETUPS)
    s = Sites(tmp_path, central, cetc, branch, betc, port, outs)
    try:
        s.start_gateway()
        yield s
    finally:
        s.stop()


def submit(s: Sites, n: int, seed: int = 1) -> dict[str, tuple[str, str]]:
    """n jobs at the branch, random printer and priority: id -> (central printer, priority)."""
    rng = random.Random(seed)
    station = Station(s.branch)
    jobs: dict[str, tuple[str, str]] = {}
    src = s.tmp / "doc.txt"
    for i in range(n):
        printer = rng.choice(["HQS", "HQI"])
        priority = rng.choice(["high", "standard", "standard", "overnight"])
        src.write_text(f"document {i} from the branch\n")
        [req] = station.submit([src], printer=printer, priority=Priority(priority),
                               title=f"doc {i}")
        jobs[req.id] = ("CS" if printer == "HQS" else "CI", priority)
    return jobs


def forwarded(s: Sites, jobs: dict[str, Any]) -> bool:
    done = done_records(s.branch)
    return all(j in done for j in jobs)


def test_jobs_go_to_central_once_and_the_branch_follows_them(sites: Sites) -> None:
    s = sites
    s.start_branch()
    jobs = submit(s, 6)
    wait_for(lambda: forwarded(s, jobs), 120, "the jobs forwarded", on_timeout=s.text)
    done = done_records(s.branch)
    for job, (printer, _) in jobs.items():
        rec = done[job]
        assert rec["outcome"] == "forwarded", rec
        assert rec["forwarded"]["printer"] == printer and rec["forwarded"]["job"] == job
    lines = [x for x in accounting(s.branch) if x["job"] in jobs]
    assert sorted(x["job"] for x in lines) == sorted(jobs)
    assert {x["outcome"] for x in lines} == {"forwarded"}
    assert all(x["site"] and x["remote_job"] for x in lines)
    # Nothing printed yet (no central server): the branch sees each job arrived there.
    some = {p: next(j for j, (q, _) in jobs.items() if q == p) for p in ("CS", "CI")}
    out = printnet("--spool", str(s.branch), "--etc", str(s.betc), "status",
                   *some.values()).stdout
    assert out.count("there: pending") == 2, out
    # Central's printers stopped: taken in and queued; the branch sees the position.
    write_printers(s.cetc, [PrinterSpec(p, out, stopped=True) for p, out in s.outs.items()])
    s.start_central()
    wait_for(lambda: all(j in master_jobs(s.central) for j in jobs), 60, "queued at central",
             on_timeout=s.text)
    out = printnet("--spool", str(s.branch), "--etc", str(s.betc), "status",
                   *some.values()).stdout
    assert out.count("there: pending, position") == 2, out
    write_printers(s.cetc, [PrinterSpec(p, out) for p, out in s.outs.items()])
    wait_for(lambda: all(done_records(s.central).get(j, {}).get("outcome") == "completed"
                         for j in jobs), 120, "central printed them", on_timeout=s.text)
    for printer, path in s.outs.items():
        mine = [j for j, (p, _) in jobs.items() if p == printer]
        assert sorted(printed_ids(path)) == sorted(mine)
    out = printnet("--spool", str(s.branch), "--etc", str(s.betc), "status",
                   *some.values()).stdout
    assert out.count("there: completed") == 2, out


def chaos(s: Sites, stop: threading.Event, rng: random.Random, actions: Counter[str],
          cutting: threading.Semaphore) -> None:
    """Cut and restore the link, and kill the branch server, until `stop`; `cutting` is
    released as each cut begins (the test submits a batch of jobs into it)."""
    cuts: list[tuple[str, Callable[[], None]]] = []

    def gateway_killed() -> None:
        s.kill_gateway()
        time.sleep(rng.uniform(0.2, 1.0))
        s.start_gateway()

    def gateway_stalled() -> None:
        assert s.gateway is not None
        s.gateway.send_signal(signal.SIGSTOP)
        time.sleep(rng.uniform(1.2, 2.0))  # past the branch's STALL=1
        s.gateway.send_signal(signal.SIGCONT)

    def share_gone() -> None:
        away = s.central.with_name("spool.unmounted")
        os.rename(s.central, away)
        time.sleep(rng.uniform(0.3, 1.5))
        os.rename(away, s.central)

    def share_read_only() -> None:
        os.chmod(s.central / "new", 0o555)
        time.sleep(rng.uniform(0.5, 2.0))
        os.chmod(s.central / "new", 0o3733)

    def branch_killed() -> None:
        time.sleep(rng.uniform(0.0, 0.5))  # a random moment of its forwards
        assert s.bserver is not None
        s.bserver.kill9()
        s.start_branch()

    cuts = [("gateway killed", gateway_killed), ("gateway stalled", gateway_stalled),
            ("share gone", share_gone), ("branch killed", branch_killed)]
    if os.geteuid() != 0:
        cuts.append(("share read-only", share_read_only))
    i = 0
    while not stop.is_set():
        name, cut = cuts[i % len(cuts)] if i < len(cuts) else rng.choice(cuts)
        cutting.release()
        cut()
        actions[name] += 1
        i += 1
        stop.wait(rng.uniform(0.2, 0.8))


def test_soak_link_cut_and_restored_every_job_printed_once_in_order(sites: Sites) -> None:
    s = sites
    n = int(os.environ.get("PRINTNET_SITES_SOAK", "60"))
    s.start_branch()
    rng = random.Random(11)
    stop = threading.Event()
    actions: Counter[str] = Counter()
    errors: list[BaseException] = []
    cutting = threading.Semaphore(0)

    def run() -> None:
        try:
            chaos(s, stop, rng, actions, cutting)
        except BaseException as exc:  # reported by the test
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    batches = max(6, n // 20)  # every kind of cut, then random ones
    try:
        jobs: dict[str, tuple[str, str]] = {}
        for batch in range(batches):
            # Each batch goes in as a cut begins: it waits at the branch, and flows (and
            # is forwarded again where an acknowledgement was lost) as the link returns.
            assert cutting.acquire(timeout=120), (actions, errors)
            jobs.update(submit(s, n // batches, seed=batch))
        wait_for(lambda: forwarded(s, jobs) or errors, 300, "every job forwarded",
                 on_timeout=lambda: s.text() + f"\n{actions}")
    finally:
        stop.set()
        thread.join(60)
    assert not errors, errors
    if s.gateway is None or s.gateway.poll() is not None:
        s.start_gateway()
    wait_for(lambda: forwarded(s, jobs), 300, "every job forwarded",
             on_timeout=lambda: s.text() + f"\n{actions}")
    # Recorded once forwarded at the branch.
    done = done_records(s.branch)
    assert {done[j]["outcome"] for j in jobs} == {"forwarded"}
    lines = Counter(x["job"] for x in accounting(s.branch) if x["outcome"] == "forwarded")
    assert {j: lines[j] for j in jobs} == dict.fromkeys(jobs, 1)
    # Central has each once: one request, nothing twice in its queue.
    s.start_central()
    wait_for(lambda: sum(1 for j in jobs if done_records(s.central).get(j, {}).get("outcome")
                         == "completed") == len(jobs), 300, "central printed them all",
             on_timeout=s.text)
    central_lines = Counter(x["job"] for x in accounting(s.central))
    assert {j: central_lines[j] for j in jobs} == dict.fromkeys(jobs, 1)
    # Printed exactly once each, in priority-then-submission order per printer.
    for printer, out in s.outs.items():
        mine = sorted((j for j, (p, _) in jobs.items() if p == printer),
                      key=lambda j: (RANK[jobs[j][1]], j))
        assert printed_ids(out) == mine, (printer, actions)
    assert sum(actions.values()) >= batches and len(actions) >= 4, actions
