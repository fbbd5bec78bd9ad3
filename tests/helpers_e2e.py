"""Helpers for end-to-end tests with real `printnet server` processes on this host.

A test builds one *project folder* per server (``<project>/etc`` and
``<project>/out`` for what its simulated printers print), starts the servers
as subprocesses, drives them through the spool (Station API, CLI) and through
their etc/ files (a running server reloads a changed ``etc/*.cmd``), waits for
conditions with a deadline (never a bare sleep), and reads the results back
from the spool and the printers' output files::

    etc = make_etc(tmp / "s1", "S1", [spool], [PrinterSpec("P1", tmp / "s1/out/P1.prn")])
    server = start_server(etc, "S1", env=server_env(tmp))
    wait_for(lambda: published(spool, "S1"), 10, "S1 publishes its status")
    ...
    assert server.stop() == 0

Output parsing relies on the header template these helpers write for each
printer (`HEADER_TEMPLATE`): its second line is ``Job:       <job id>``, so
every job printed with a header page can be found, in print order, in a
printer's output (`printed_ids`, `segments`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any, TypeVar

from waiting import wait_for as wait_for  # noqa: PLC0414 (re-exported for the e2e tests)

from printnet.masterfile import Job
from printnet.spool import master as master_io
from printnet.spool.layout import Spool

T = TypeVar("T")

PYTHON = sys.executable
JOB_ID = rb"[0-9A-HJKMNP-TV-Z]{18}"
JOB_LINE = re.compile(rb"\nJob:       (" + JOB_ID + rb")\r?\n")

# The first lines are fixed so that a 22-line form (CHECKS) never cuts them off.
HEADER_TEMPLATE = """printnet header page -- printer {printer}
Job:       {job}
User:      {user}   Station: {station}
Title:     {title}
Submitted: {submitted}   Printed: {date}
Copies:    {copies}   Pages: {pages}   Setup: {setup}

{banner}
"""

SETUPS = (
    "SETUP STANDARD FORM=PLAIN LENGTH=66 WIDTH=80\n"
    "SETUP CHECKS FORM=CHECKS LENGTH=22 WIDTH=80\n"
)


# ---------------------------------------------------------------------------
# etc/ folders


@dataclass(frozen=True)
class PrinterSpec:
    """One PRINTER line: a simulated printer printing into `out` (an absolute path)."""

    name: str
    out: Path
    baud: str = "inf"  # the simulated line rate: "inf" or bits per second
    setup: str = "STANDARD"
    classes: tuple[str, ...] = ()
    errors: str = "RETRY"  # RETRY | HOLD | ABORT
    stall: float = 1.0  # seconds without progress before the printer is offline
    retry: float = 0.2  # seconds between attempts to reach an offline printer
    stopped: bool = False
    header: bool = True  # our HEADER_TEMPLATE (False: HEADER=NONE, no header pages)
    buffer: int | None = None  # the simulated printer's buffer in bytes (default 4096)

    def line(self) -> str:
        query = f"out={self.out}&baud={self.baud}"
        if self.buffer is not None:
            query += f"&buffer={self.buffer}"
        parts = [
            f"PRINTER {self.name} PORT=sim://{self.name}?{query}",
            f"SETUP={self.setup}", f"ERRORS={self.errors}",
            f"STALL={self.stall:g}", f"RETRY={self.retry:g}",
            f"HEADER={header_name(self.name) if self.header else 'NONE'}",
        ]
        if self.classes:
            parts.append(f"CLASS={','.join(self.classes)}")
        if self.stopped:
            parts.append("STOPPED=YES")
        return " ".join(parts) + "\n"


def header_name(printer: str) -> str:
    """The header template name of a printer (file etc/<name>.hdr)."""
    return "H" + "".join(c for c in printer if c.isalnum())


def night_now(hours: int = 2, now: datetime | None = None) -> tuple[int, int]:
    """A NIGHT window that is open now (local time) and for the next `hours - 1` hours."""
    hour = (now or datetime.now()).hour
    return hour, (hour + hours) % 24


def make_etc(
    project: Path,
    server: str,
    spools: Sequence[Path],
    printers: Sequence[PrinterSpec],
    *,
    scan: float = 0.2,
    lease: float = 2.0,
    night: tuple[int, int] | None = None,
    extra_server: str = "",
) -> Path:
    """Write `project`/etc for server `server`; returns the etc folder.

    Header templates for every printer are written too, and the folders of
    the printers' output files are created.  NIGHT defaults to a window open now.
    """
    etc = project / "etc"
    etc.mkdir(parents=True, exist_ok=True)
    start, end = night or night_now()
    spool_lines = "".join(f'SPOOL "{s}"\n' for s in spools)
    write_atomic_text(
        etc / "server.cmd",
        f"SERVER NAME={server}\n{spool_lines}NIGHT {start},{end}\nSCAN {scan:g}\n"
        f"LEASE {lease:g}\nOPERATORS root\n{extra_server}",
    )
    for p in printers:
        p.out.parent.mkdir(parents=True, exist_ok=True)
        (etc / f"{header_name(p.name).lower()}.hdr").write_text(HEADER_TEMPLATE)
    write_printers(etc, printers)
    return etc


def write_printers(etc: Path, printers: Sequence[PrinterSpec], extra: str = "") -> None:
    """(Re)write etc/printers.cmd atomically; a running server picks the change up."""
    write_atomic_text(etc / "printers.cmd", "".join(p.line() for p in printers) + SETUPS + extra)


def write_atomic_text(path: Path, text: str) -> None:
    """Replace `path` in one rename, so a server never reads half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------
# Server processes


class ServerProcess(subprocess.Popen[bytes]):
    """A `printnet server` subprocess whose output goes to `log`."""

    name: str
    log: Path
    _log_fh: IO[bytes]

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the exit (TimeoutExpired after `timeout`); the log is closed then."""
        code = super().wait(timeout)
        self._log_fh.close()
        return code

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, wait; the exit status (SIGKILL, and AssertionError, at the deadline)."""
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.send_signal(signal.SIGTERM)
            try:
                self.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill9()
                raise AssertionError(
                    f"server {self.name} did not stop in {timeout} s:\n{self.log_text()}"
                ) from None
        return self.wait()

    def kill9(self) -> None:
        """kill -9: a crash (nothing is flushed, no lease is released)."""
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        self.wait(30)

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def reloads(self) -> int:
        """How many times this server has reloaded a changed etc/*.cmd."""
        return self.log_text().count("configuration reloaded")


def server_env(runtime: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """An environment for servers and CLI runs: no inherited PRINTNET_* settings, the
    console sockets in `runtime` (a test's own folder), plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRINTNET_")}
    runtime.mkdir(parents=True, exist_ok=True, mode=0o700)
    env["PRINTNET_RUNTIME_DIR"] = str(runtime)
    env.update(extra or {})
    return env


def start_server(
    etc: Path,
    name: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    drain: bool = False,
    log: Path | None = None,
    args: Sequence[str] = (),
) -> ServerProcess:
    """Start `printnet --etc ETC server [--name NAME] [--drain]`; output to `log`
    (default: ``<project>/server-<name>.<n>.log``, a new file for each start)."""
    label = name or "server"
    if log is None:
        n = 1
        while (etc.parent / f"server-{label}.{n}.log").exists():
            n += 1
        log = etc.parent / f"server-{label}.{n}.log"
    cmd = [PYTHON, "-m", "printnet", "--etc", str(etc), "server", *args]
    if name:
        cmd += ["--name", name]
    if drain:
        cmd.append("--drain")
    fh = open(log, "ab")  # noqa: SIM115 - closed by stop()/kill9()
    proc = ServerProcess(cmd, stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT,
                         cwd=etc.parent,
                         env=dict(env) if env is not None else server_env(etc.parent / "run"))
    proc.name, proc.log, proc._log_fh = label, log, fh
    return proc


def printnet(*args: str, env: Mapping[str, str] | None = None, check: bool = True,
             timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run the `printnet` CLI in a subprocess; with check, fail the test on exit != 0.

    It runs in a fresh empty folder, so an option the caller leaves out (--spool,
    --etc) falls back to nothing rather than to some working directory's ./spool or
    ./etc; PRINTNET_SPOOL/PRINTNET_ETC come only from `env`."""
    with tempfile.TemporaryDirectory(prefix="printnet-cli-") as cwd:
        base = dict(env) if env is not None else server_env(Path(cwd) / "run")
        proc = subprocess.run([PYTHON, "-m", "printnet", *args], capture_output=True,
                              text=True, env=base, timeout=timeout, check=False, cwd=cwd)
    if check and proc.returncode != 0:
        raise AssertionError(f"printnet {' '.join(args)} exited {proc.returncode}:\n"
                             f"{proc.stdout}{proc.stderr}")
    return proc


# ---------------------------------------------------------------------------
# Waiting


def logs(servers: Iterable[ServerProcess], tail: int = 4000) -> str:
    """The ends of the servers' logs (for failure messages)."""
    return "\n".join(f"--- {s.name} ---\n{s.log_text()[-tail:]}" for s in servers)


# ---------------------------------------------------------------------------
# Reading the spool


def spool_of(root: Path) -> Spool:
    return Spool.open(root)


def master_jobs(root: Path) -> dict[str, Job]:
    """The live jobs of the master file (read without a lock, like `status`)."""
    return dict(master_io.load(Spool.open(root)).jobs)


def published(root: Path, *names: str) -> bool:
    """Whether every named server has published a running status file in servers/."""
    for name in names:
        info = server_status(root, name)
        if info is None or info.get("state") != "running":
            return False
    return True


def server_status(root: Path, name: str) -> dict[str, Any] | None:
    """servers/<name>.json, or None if missing or being replaced."""
    try:
        data = json.loads((root / "servers" / f"{name}.json").read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def printer_info(root: Path, server: str, printer: str) -> dict[str, Any] | None:
    """One printer's entry in a server's status file."""
    info = server_status(root, server) or {}
    for p in info.get("printers", []):
        if isinstance(p, dict) and p.get("name") == printer:
            return p
    return None


def status_json(root: Path, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """`printnet --spool ROOT status --json` (a real CLI run)."""
    proc = printnet("--spool", str(root), "status", "--json", env=env)
    data = json.loads(proc.stdout)
    assert isinstance(data, dict)
    return data


def accounting(root: Path) -> list[dict[str, Any]]:
    """The lines of log/accounting.jsonl."""
    try:
        text = (root / "log" / "accounting.jsonl").read_text()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def done_records(root: Path) -> dict[str, dict[str, Any]]:
    """done/<id>.json of finished *jobs* (control results left out), by job id."""
    out: dict[str, dict[str, Any]] = {}
    for path in (root / "done").glob("*.json"):
        record = json.loads(path.read_text())
        if isinstance(record, dict) and record.get("kind") != "control":
            out[path.stem] = record
    return out


def visible(folder: Path) -> list[str]:
    """Names in `folder` that are not dot-names (temp files), sorted."""
    return sorted(n for n in os.listdir(folder) if not n.startswith("."))


# ---------------------------------------------------------------------------
# Reading printer output


def read_out(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""


def printed_ids(path: Path) -> list[str]:
    """Job ids of the header pages in a printer's output, in print order."""
    return [job for job, _ in segments(read_out(path))]


def segments(data: bytes) -> list[tuple[str, bytes]]:
    """(job id, bytes from its header page's Job line up to the next one), in order.

    Everything a job printed after its header page (its copies) is in its segment.
    """
    marks = list(JOB_LINE.finditer(data))
    out = []
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(data)
        out.append((m.group(1).decode(), data[m.end():end]))
    return out
