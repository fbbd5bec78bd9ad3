"""A private CUPS scheduler for the side-by-side numbers, and a minimal IPP client.

`PrivateCups` runs Debian's ``cupsd`` in the foreground from a temporary
ServerRoot: it listens only on a unix socket (``Listen <root>/cups.sock``),
with ``MaxJobs 0`` (no job limit) and otherwise CUPS's defaults.  Its printers
are raw queues (no filters) to ``socket://127.0.0.1:PORT``, where the
benchmark's `Sink` reads and discards: the socket backend really runs, one
connection per job.  (A ``file:///dev/null`` device completes jobs without
running any backend, so it would measure nothing.)  The command-line tools
reach it with ``CUPS_SERVER=<root>/cups.sock``.

`Ipp` speaks just enough IPP/1.1 over that socket (Print-Job, keep-alive HTTP)
for the "API" rows and to fill queues with thousands of jobs quickly; `lp`
is what the "one job per CLI call" row measures.
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import struct
import subprocess
import time
from pathlib import Path

from bench.common import log, wait_until

CUPSD = "/usr/sbin/cupsd"
PACKAGES = ("cups-daemon", "cups-client", "cups")  # cups: the socket backend


def available() -> str | None:
    """None if CUPS can run here, else why not."""
    for tool in (CUPSD, "/usr/bin/lp", "/usr/bin/lpstat", "/usr/sbin/lpadmin",
                 "/usr/lib/cups/backend/socket"):
        if not os.path.exists(tool):
            return f"{tool} is missing (apt-get install {' '.join(PACKAGES)})"
    return None


class PrivateCups:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.sock = root / "cups.sock"
        self.proc: subprocess.Popen[bytes] | None = None
        self.env = dict(os.environ, CUPS_SERVER=str(self.sock))

    # -- life cycle -------------------------------------------------------------------

    def configure(self) -> None:
        r = self.root
        if r.exists():
            shutil.rmtree(r)
        for sub in ("conf", "spool/tmp", "cache", "state", "log"):
            (r / sub).mkdir(parents=True)
        os.chmod(r, 0o755)  # the backend runs as lp and must reach the spool
        (r / "conf" / "cups-files.conf").write_text(
            f"ServerRoot {r}/conf\nRequestRoot {r}/spool\nTempDir {r}/spool/tmp\n"
            f"CacheDir {r}/cache\nStateDir {r}/state\nAccessLog {r}/log/access_log\n"
            f"ErrorLog {r}/log/error_log\nPageLog {r}/log/page_log\n"
            "ServerBin /usr/lib/cups\nDataDir /usr/share/cups\n"
            "User lp\nGroup lp\nSystemGroup root\nSandboxing Relaxed\n")
        (r / "conf" / "cupsd.conf").write_text(
            f"Listen {self.sock}\nMaxJobs 0\nLogLevel warn\nWebInterface No\nBrowsing No\n"
            "DefaultAuthType None\n"
            "<Location />\n  Order allow,deny\n  Allow all\n</Location>\n"
            "<Policy default>\n  <Limit All>\n    Order deny,allow\n  </Limit>\n</Policy>\n")

    def start(self) -> None:
        r = self.root
        logf = open(r / "log" / "cupsd.out", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [CUPSD, "-f", "-c", str(r / "conf" / "cupsd.conf"),
             "-s", str(r / "conf" / "cups-files.conf")],
            stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
        logf.close()

        def up() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"cupsd exited: {self.error_log()}")
            out = subprocess.run(["lpstat", "-r"], env=self.env, capture_output=True,
                                 check=False).stdout
            return out.strip() == b"scheduler is running"

        wait_until(up, 30, 0.02, "cupsd to start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def error_log(self) -> str:
        try:
            return (self.root / "log" / "error_log").read_text()[-2000:]
        except OSError:
            return ""

    # -- commands -----------------------------------------------------------------------

    def run(self, *argv: str) -> str:
        proc = subprocess.run(list(argv), env=self.env, capture_output=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)}: {proc.stderr.decode()[-500:]}")
        return proc.stdout.decode()

    def add_printer(self, name: str, uri: str, cls: str | None = None) -> None:
        self.run("lpadmin", "-p", name, "-v", uri, "-E")
        if cls:
            self.run("lpadmin", "-p", name, "-c", cls)

    def disable(self, name: str) -> None:
        self.run("cupsdisable", name)

    def enable(self, name: str) -> None:
        self.run("cupsenable", name)

    def pending(self) -> int:
        """Jobs not completed (lpstat -o lines)."""
        return len(self.run("lpstat", "-o").splitlines())


# -- a minimal IPP client -------------------------------------------------------------


class _UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=60)
        self.unix_path = path

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(60)
        s.connect(self.unix_path)
        self.sock = s


def _attr(tag: int, name: str, value: str | bytes) -> bytes:
    v = value.encode() if isinstance(value, str) else value
    n = name.encode()
    return struct.pack(">BH", tag, len(n)) + n + struct.pack(">H", len(v)) + v


class Ipp:
    """Print-Job over one keep-alive connection to a private cupsd."""

    def __init__(self, sock: Path) -> None:
        self.conn = _UnixHTTP(str(sock))
        self.request_id = 0

    def print_job(self, printer: str, data: bytes, user: str = "root",
                  hold: bool = False) -> int:
        """Submit one raw job; return its job id."""
        self.request_id += 1
        body = struct.pack(">BBHI", 1, 1, 0x0002, self.request_id) + b"\x01"
        body += _attr(0x47, "attributes-charset", "utf-8")
        body += _attr(0x48, "attributes-natural-language", "en")
        kind = "classes" if printer.isupper() else "printers"  # our classes: POOL
        body += _attr(0x45, "printer-uri", f"ipp://localhost/{kind}/{printer}")
        body += _attr(0x42, "requesting-user-name", user)
        body += _attr(0x42, "job-name", "bench")
        body += _attr(0x49, "document-format", "application/octet-stream")
        if hold:
            body += b"\x02" + _attr(0x44, "job-hold-until", "indefinite")
        body += b"\x03" + data
        for attempt in range(2):
            try:
                self.conn.request("POST", f"/{kind}/{printer}", body=body,
                                  headers={"Content-Type": "application/ipp"})
                reply = self.conn.getresponse().read()
                break
            except (http.client.HTTPException, OSError):
                self.conn.close()
                if attempt:
                    raise
        status = struct.unpack(">H", reply[2:4])[0]
        if status > 0x00FF:
            raise RuntimeError(f"IPP Print-Job failed: status 0x{status:04x}")
        return _job_id(reply)

    def close(self) -> None:
        self.conn.close()


def _job_id(reply: bytes) -> int:
    key = b"job-id"
    i = reply.find(struct.pack(">H", len(key)) + key)
    if i < 0:
        return 0
    i += 2 + len(key)
    (length,) = struct.unpack(">H", reply[i:i + 2])
    return int.from_bytes(reply[i + 2:i + 2 + length], "big")


def fill(cups: PrivateCups, printer: str, n: int, data: bytes, *, deadline: float) -> int:
    """Queue `n` jobs through IPP (printer disabled); returns how many got in by `deadline`."""
    ipp = Ipp(cups.sock)
    done = 0
    try:
        for _ in range(n):
            ipp.print_job(printer, data)
            done += 1
            if time.monotonic() > deadline:
                log(f"CUPS fill stopped at {done} jobs (time limit)")
                break
    finally:
        ipp.close()
    return done
