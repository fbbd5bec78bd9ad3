"""IPP Print-Job into `printnet gateway` against IPP Print-Job into CUPS.

One client for both: `CONNECTIONS` threads, each with one keep-alive HTTP
connection, sending the same encoded Print-Job (1 KB, application/octet-stream)
one after another and reading each response before the next.  printnet's
gateway answers only once the request is durable in new/ (its Submitter's
fsync or syncfs); CUPS's queue is a disabled raw queue, as in the other
submit rows.  The gateway is reached over loopback TCP, cupsd over its Unix
socket (what `lp` uses; no slower than TCP).  No print server runs: both
measure taking jobs in, not printing them.
"""

from __future__ import annotations

import functools
import http.client
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench import cups as cups_mod
from bench.common import log, wait_until
from printnet.ipp import codec
from printnet.ipp.codec import Attribute, Message
from printnet.ipp.enums import GroupTag, Operation, Tag

CONNECTIONS = 32


def print_job(uri: str, data: bytes, request_id: int = 1) -> bytes:
    msg = Message((1, 1), Operation.PRINT_JOB, request_id)
    msg.add_group(GroupTag.OPERATION, [
        Attribute.of("attributes-charset", Tag.CHARSET, "utf-8"),
        Attribute.of("attributes-natural-language", Tag.NATURAL_LANGUAGE, "en"),
        Attribute.of("printer-uri", Tag.URI, uri),
        Attribute.of("requesting-user-name", Tag.NAME, "bench"),
        Attribute.of("job-name", Tag.NAME, "bench"),
        Attribute.of("document-format", Tag.MIME_MEDIA_TYPE, "application/octet-stream"),
    ])
    msg.data = data
    return codec.encode(msg)


def hammer(connect: Callable[[], http.client.HTTPConnection], path: str, body: bytes,
           n: int, connections: int = CONNECTIONS) -> float:
    """Send `n` Print-Jobs over `connections` keep-alive connections; jobs per second."""
    per = [n // connections + (1 if i < n % connections else 0) for i in range(connections)]
    errors: list[str] = []
    start = threading.Barrier(connections + 1)

    def client(count: int) -> None:
        conn = connect()
        try:
            start.wait()
            for _ in range(count):
                conn.request("POST", path, body, {"Content-Type": "application/ipp"})
                reply = conn.getresponse().read()
                status = int.from_bytes(reply[2:4], "big")
                if status > 0xFF:
                    errors.append(f"status 0x{status:04x}")
                    return
        except (OSError, http.client.HTTPException) as exc:
            errors.append(repr(exc))
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(c,)) for c in per]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if errors:
        raise RuntimeError(f"Print-Job failed: {errors[0]} ({len(errors)} clients)")
    return n / elapsed


class GatewayUnderTest:
    """A spool, an etc/ with one printer, and a `printnet gateway` (no server)."""

    def __init__(self, work: Path) -> None:
        from printnet.spool.layout import Spool

        self.work = work
        self.spool = work / "gw-spool"
        Spool.init(self.spool)
        etc = work / "gw-project" / "etc"
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "server.cmd").write_text(f'SPOOL "{self.spool}"\n')
        (etc / "printers.cmd").write_text(
            f"PRINTER SINK PORT=file://{work / 'gw-project' / 'sink.prn'}\n"
            "SETUP STANDARD\nDEFAULT SINK\n")
        self.log = work / "gw-project" / "gateway.log"
        with open(self.log, "wb") as fh:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "printnet", "--spool", str(self.spool), "--etc",
                 str(etc), "gateway", "--ipp", "127.0.0.1:0"],
                stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
        self.port = 0

        def up() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited: {self.log.read_text()[-2000:]}")
            m = re.search(r"listening on 127\.0\.0\.1:(\d+)", self.log.read_text())
            if m:
                self.port = int(m[1])
            return bool(m)

        wait_until(up, 60, 0.05, "the gateway to listen")

    def connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)

    def durable(self) -> int:
        return sum(1 for n in (self.spool / "new").iterdir() if n.name.endswith(".req"))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process and all its threads (/proc/PID/stat), in seconds."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class CupsUnderTest:
    """A private cupsd (bench.cups) that also listens on loopback TCP, one disabled raw
    queue `sink1`, and `extra` lines in its cupsd.conf."""

    def __init__(self, root: Path, sink_url: str, extra: str = "") -> None:
        self.cups = cups_mod.PrivateCups(root)
        self.cups.configure()
        self.port = _free_port()
        conf = root / "conf" / "cupsd.conf"
        conf.write_text(conf.read_text() + f"Listen 127.0.0.1:{self.port}\n" + extra)
        self.cups.start()
        self.cups.add_printer("sink1", sink_url)
        self.cups.disable("sink1")

    def connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)

    @property
    def pid(self) -> int:
        return self.cups.pid

    def stop(self) -> None:
        self.cups.stop()


@dataclass
class Series:
    """Jobs per second and CPU milliseconds per job of one server, run by run."""

    rates: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)

    def measure(self, pid: int, go: Callable[[], float], n: int) -> None:
        c0 = cpu_seconds(pid)
        self.rates.append(go())
        self.cpu_ms.append((cpu_seconds(pid) - c0) * 1000 / n)


@dataclass
class Result:
    printnet: Series
    cups: Series  # Debian's defaults (SyncOnClose Yes, DirtyCleanInterval 30)
    cups_sync: Series  # DirtyCleanInterval 0: control files fsynced right after the answer
    durable: int  # printnet jobs found in new/ afterwards


def run(work: Path, n: int, runs: int, sink_url: str | None) -> Result:
    """printnet, CUPS and CUPS with DirtyCleanInterval 0, over `runs` interleaved runs
    (CUPS only when `sink_url`: the discard printer its queue points at)."""
    data = b"x" * 1024
    gw = GatewayUnderTest(work)
    cupsds: list[tuple[str, CupsUnderTest, Series]] = []
    result = Result(Series(), Series(), Series(), 0)
    try:
        if sink_url is not None:
            cupsds.append(("CUPS", CupsUnderTest(work / "gw-cups", sink_url), result.cups))
            cupsds.append(("CUPS DirtyCleanInterval 0", CupsUnderTest(
                work / "gw-cups-sync", sink_url, "DirtyCleanInterval 0\n"), result.cups_sync))
        pn_body = print_job(f"ipp://127.0.0.1:{gw.port}/ipp/print/SINK", data)
        hammer(gw.connect, "/ipp/print/SINK", pn_body, 50)  # warm-up (imports, caches)
        cups_body = print_job("ipp://localhost/printers/sink1", data)
        for r in range(runs):
            result.printnet.measure(gw.proc.pid, functools.partial(
                hammer, gw.connect, "/ipp/print/SINK", pn_body, n), n)
            log(f"printnet gateway run {r + 1}: {result.printnet.rates[-1]:.0f} jobs/s, "
                f"{result.printnet.cpu_ms[-1]:.2f} ms CPU per job")
            for name, c, series in cupsds:
                series.measure(c.pid, functools.partial(
                    hammer, c.connect, "/printers/sink1", cups_body, n), n)
                log(f"{name} run {r + 1}: {series.rates[-1]:.0f} jobs/s, "
                    f"{series.cpu_ms[-1]:.2f} ms CPU per job")
        result.durable = gw.durable()
    finally:
        gw.stop()
        for _, c, _ in cupsds:
            c.stop()
    return result
