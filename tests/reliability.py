"""Print servers and stations as real processes on `shared_fs` hosts.

Used by the multi-host, chaos and fault tests and by ``scripts/chaos``:
writes a server's etc/ folder, starts ``printnet server`` on a host, kills
(``kill -9``), pauses (SIGSTOP) and resumes it, and reads what its simulated
printers printed.  Printer output and etc/ live on the host's local disk,
never on the share.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from shared_fs import PYTHON, Host

TOKEN_RE = re.compile(rb"BEGIN:([0-9a-f]{32})")  # a job body's start marker (spool_probe)


@dataclass
class PrinterSpec:
    name: str
    classes: tuple[str, ...] = ()
    baud: int = 115200
    setup: str = "STANDARD"
    header: bool = True
    stall: float = 2.0
    retry: float = 0.5


def make_etc(folder: Path, *, name: str, spools: Sequence[Path], printers: Sequence[PrinterSpec],
             lease: float = 2.0, scan: float = 0.2, night: tuple[int, int] = (0, 6),
             extra_server: str = "") -> Path:
    """Write `folder`/etc for server `name`; printers print into `folder`/output."""
    etc = folder / "etc"
    etc.mkdir(parents=True, exist_ok=True)
    (folder / "output").mkdir(exist_ok=True)
    spool_lines = "".join(f'SPOOL "{s}"\n' for s in spools)
    (etc / "server.cmd").write_text(
        f"SERVER NAME={name}\n{spool_lines}NIGHT {night[0]},{night[1]}\nSCAN {scan:g}\n"
        f"LEASE {lease:g}\nOPERATORS root\n{extra_server}")
    lines = []
    for p in printers:
        cls = f" CLASS={','.join(p.classes)}" if p.classes else ""
        header = "" if p.header else " HEADER=NONE"
        lines.append(
            f"PRINTER {p.name} PORT=sim://{p.name}?out=../output/{p.name}.prn BAUD={p.baud} "
            f"SETUP={p.setup} STALL={p.stall:g} RETRY={p.retry:g}{cls}{header}\n")
    lines.append("SETUP STANDARD FORM=PLAIN LENGTH=66 WIDTH=80\n")
    lines.append("SETUP CHECKS FORM=CHECKS LENGTH=22 WIDTH=80\n")
    if printers:
        lines.append(f"DEFAULT {printers[0].name}\n")
    (etc / "printers.cmd").write_text("".join(lines))
    return etc


@dataclass
class ServerProc:
    """One `printnet server` process on a host, restartable."""

    host: Host
    name: str
    folder: Path  # holds etc/, output/ and the logs
    wrap: dict[str, Any] = field(default_factory=dict)  # skew/at/tz for Host.wrap
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    pids: list[int] = field(default_factory=list)
    _logs: list[IO[bytes]] = field(default_factory=list)

    @property
    def etc(self) -> Path:
        return self.folder / "etc"

    @property
    def output(self) -> Path:
        return self.folder / "output"

    @property
    def log(self) -> Path:
        return self.folder / "server.log"

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        if self.proc is not None:
            self.proc.wait()
        out = open(self.log, "ab")  # noqa: SIM115 - closed in _close_logs
        out.write(f"--- start {self.starts + 1} at {time.time():.3f}\n".encode())
        out.flush()
        self._logs.append(out)
        wrap = dict(self.wrap)
        if "env" not in wrap:
            # Console sockets in a folder of this server's own: servers of the same
            # name in other tests (or on the other "host") must not meet there.
            runtime = self.folder / "run"
            runtime.mkdir(mode=0o700, exist_ok=True)
            wrap["env"] = {"PRINTNET_RUNTIME_DIR": str(runtime)}
        self.proc = self.host.popen(
            [PYTHON, "-m", "printnet", "--etc", str(self.etc), "server", "--name", self.name],
            stdout=out, stderr=subprocess.STDOUT, cwd=self.folder, **wrap)
        self.starts += 1
        self.pids.append(self.proc.pid)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """kill -9 (a crash)."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)

    def pause(self) -> None:
        if self.alive:
            assert self.proc is not None
            os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.alive:
            assert self.proc is not None
            os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self, timeout: float = 40.0) -> int | None:
        """SIGTERM and wait (SIGKILL at the deadline); the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGCONT)
                self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._close_logs()
        return self.proc.returncode

    def _close_logs(self) -> None:
        for fh in self._logs:
            fh.close()
        self._logs.clear()

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def printed(self) -> dict[str, int]:
        """Job token -> times its body was printed, over all of this server's printers."""
        counts: dict[str, int] = {}
        for out in self.output.glob("*.prn"):
            for m in TOKEN_RE.finditer(out.read_bytes()):
                key = m.group(1).decode()
                counts[key] = counts.get(key, 0) + 1
        return counts


def printed_order(server: ServerProc, printer: str) -> list[str]:
    """Tokens in the order `printer` printed them."""
    out = server.output / f"{printer}.prn"
    try:
        data = out.read_bytes()
    except FileNotFoundError:
        return []
    return [m.group(1).decode() for m in TOKEN_RE.finditer(data)]


def merge_counts(servers: Sequence[ServerProc]) -> dict[str, int]:
    total: dict[str, int] = {}
    for s in servers:
        for k, v in s.printed().items():
            total[k] = total.get(k, 0) + v
    return total

