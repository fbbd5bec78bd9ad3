"""A throw-away printnet installation for the benchmarks: one spool, N servers.

Layout under `root`::

    spool/            the shared disk (or a folder on a shared-filesystem mount)
    etc-<SERVER>/     server.cmd + printers.cmd of each server
    output/           what simulated printers print
    logs/             each server's stdout/stderr

Servers are real `printnet server` processes started through the venv's
console script, exactly as an operator would start them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench.common import VENV_BIN, wait_until
from printnet.model import Format, PrintRequest, Priority, iso
from printnet.spool.layout import Spool
from printnet.spool.submit import Source, Submitter

PRINTNET = str(VENV_BIN / "printnet")
PYTHON = str(VENV_BIN / "python")


@dataclass
class ServerSpec:
    name: str
    ports: list[str]  # one PORT= per printer
    baud: int = 9600
    header: str = ""  # "" built-in header page; "NONE" no header pages
    setup: str = "STANDARD"
    classes: str = "POOL"


@dataclass
class Project:
    root: Path
    spool_dir: Path | None = None  # default root/spool
    scan: float = 1.0
    lease: float = 30.0
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if self.spool_dir is None:
            self.spool_dir = self.root / "spool"
        self.spool, _ = Spool.init(self.spool_dir)
        (self.root / "output").mkdir(exist_ok=True)
        (self.root / "logs").mkdir(exist_ok=True)

    def etc(self, server: str) -> Path:
        return self.root / f"etc-{server}"

    def configure(self, spec: ServerSpec) -> Path:
        etc = self.etc(spec.name)
        etc.mkdir(exist_ok=True)
        (etc / "server.cmd").write_text(
            f"SERVER NAME={spec.name}\nSPOOL {self.spool_dir}\nSCAN {self.scan}\n"
            f"LEASE {self.lease}\nNIGHT 0,6\nOPERATORS root\n"
        )
        lines = []
        for i, port in enumerate(spec.ports, 1):
            header = f" HEADER={spec.header}" if spec.header else ""
            lines.append(
                f"PRINTER {spec.name}P{i} PORT={port} BAUD={spec.baud} SETUP={spec.setup}"
                f" CLASS={spec.classes}{header} STALL=30"
            )
        lines += [
            "SETUP STANDARD FORM=PLAIN LENGTH=66 WIDTH=80",
            "SETUP LABELS FORM=LABELS LENGTH=12 WIDTH=40",
        ]
        (etc / "printers.cmd").write_text("\n".join(lines) + "\n")
        return etc

    def sim_port(self, name: str, baud: str = "inf") -> str:
        out = self.root / "output" / f"{name}.prn"
        return f"sim://{name}?out={out}&baud={baud}"

    def start(self, spec: ServerSpec, *, drain: bool = False, wait: bool = True) -> None:
        etc = self.configure(spec)
        argv = [PRINTNET, "--etc", str(etc), "server"] + (["--drain"] if drain else [])
        logf = open(self.root / "logs" / f"{spec.name}.log", "ab")  # noqa: SIM115
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.procs[spec.name] = subprocess.Popen(
            argv, stdout=logf, stderr=subprocess.STDOUT, env=env, cwd=self.root,
            start_new_session=True)
        logf.close()
        if wait:
            self.wait_running(spec.name)

    def wait_running(self, name: str, timeout: float = 30.0) -> None:
        status = self.spool.servers / f"{name}.json"

        def up() -> bool:
            proc = self.procs[name]
            if proc.poll() is not None:
                log = (self.root / "logs" / f"{name}.log").read_text()[-2000:]
                raise RuntimeError(f"server {name} exited: {log}")
            try:
                return '"state":"running"' in status.read_text()
            except OSError:
                return False

        wait_until(up, timeout, 0.01, f"server {name} to start")

    def stop_all(self, timeout: float = 20.0) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in self.procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()

    def kill_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        self.procs.clear()

    def done_count(self) -> int:
        return sum(1 for n in os.listdir(self.spool.done) if n.endswith(".json"))

    # -- submitting through the library (the Python API's own path) --------------------

    def submitter(self) -> Submitter:
        return Submitter(self.spool, user="root", station="bench")

    @staticmethod
    def template(printer: str, *, raw: bool = False, header: bool = True,
                 setup: str | None = None, priority: Priority = Priority.STANDARD,
                 ) -> PrintRequest:
        return PrintRequest(
            id="0" * 18, user="root", station="bench", submitted=datetime.now(UTC),
            printer=printer, priority=priority, copies=1, title="bench",
            setup=setup, header=header, format=Format.RAW if raw else Format.TEXT)

    def stage(self, printer: str, files: list[Path], **kw: object) -> list[PrintRequest]:
        """Submit one job per file in one batch (Submitter.submit_many)."""
        tpl = self.template(printer, **kw)  # type: ignore[arg-type]
        return self.submitter().submit_many(
            [(tpl, [Source(f.name, path=f)]) for f in files])


def text_file(path: Path, size: int) -> Path:
    """A text file of `size` bytes: lines of 79 characters and a newline."""
    line = b"printnet benchmark line: the quick brown fox jumps over the lazy dog 0123\n"
    body = (line * (size // len(line) + 1))[:size]
    path.write_bytes(body)
    return path


def fill_master(spool: Spool, n: int, printer: str = "POOL", *, setup: str = "") -> None:
    """Make the master file hold `n` pending jobs, as a server's rebuild would write it.

    The jobs are synthetic (no request files): listing and scheduling read only
    the master file, and writing 100,000 real requests would measure the disk,
    not printnet.  Written with `MasterStore.install` under the master lock.
    """
    from printnet.masterfile import Job, MasterState
    from printnet.model import JobIdGenerator, JobState
    from printnet.spool.lock import ExpiringLock, LockTable
    from printnet.spool.master import MasterStore

    gen = JobIdGenerator()
    start = int(time.time() * 1000) - n
    jobs = []
    for i in range(n):
        job_id = gen.next(start + i, i)
        jobs.append(Job(
            id=job_id, user="root", station="bench",
            submitted=iso(datetime.fromtimestamp((start + i) / 1000, UTC)),
            destination=printer, priority=Priority.STANDARD, copies=1, title=f"bench job {i}",
            setup=setup, header=True, format=Format.TEXT, state=JobState.PENDING, size=1024))
    lock = ExpiringLock(LockTable(spool.locks), "master", lease=60.0, holder="bench")
    if not lock.try_acquire():
        raise RuntimeError("master lock held")
    try:
        store = MasterStore(spool)
        store.refresh()
        store.install(MasterState(jobs), lock)
    finally:
        lock.release()
