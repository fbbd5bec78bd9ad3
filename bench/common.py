"""Shared pieces of the benchmark driver: timing, the discard sink, result rows.

Every number in docs/BENCHMARKS.md is a median over several runs taken in the
same `scripts/bench` run as the CUPS number beside it: these machines are
shared and noisy, so only ratios from one run mean much.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(os.environ.get("PRINTNET_VENV", ROOT / ".venv")) / "bin"


def log(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", flush=True)


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0..100), nearest-rank: one of the measured values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def wait_until(pred: Callable[[], bool], timeout: float, interval: float = 0.005,
               what: str = "condition") -> float:
    """Poll `pred` until true; return the monotonic time it became true."""
    deadline = time.monotonic() + timeout
    while True:
        if pred():
            return time.monotonic()
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def run_timed(argv: Sequence[str], *, repeat: int, env: dict[str, str] | None = None,
              cwd: Path | None = None, check: bool = True) -> list[float]:
    """Wall-clock seconds of `repeat` runs of a whole process (output discarded)."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        proc = subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, check=False)
        times.append(time.perf_counter() - t0)
        if check and proc.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)[:200]} failed: {proc.stderr.decode()[-500:]}")
    return times


def peak_rss_mib(pid: int) -> float:
    """VmHWM (peak resident set) of a live process, in MiB."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class Connection:
    accepted: float
    first_byte: float | None = None
    last_byte: float | None = None
    size: int = 0


class Sink:
    """A raw TCP printer that reads and discards (socket://127.0.0.1:PORT).

    Records, per connection, when it was accepted, its first and last byte
    (monotonic clock, the same one the benchmark's submitters read) and its size.
    """

    def __init__(self) -> None:
        self.server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(256)
        self.port: int = self.server.getsockname()[1]
        self.lock = threading.Lock()
        self.connections: list[Connection] = []
        self.closed = False
        self._thread = threading.Thread(target=self._accept, daemon=True, name="sink")
        self._thread.start()

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self.closed:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            record = Connection(time.monotonic())
            with self.lock:
                self.connections.append(record)
            threading.Thread(target=self._read, args=(conn, record), daemon=True).start()

    def _read(self, conn: socket.socket, record: Connection) -> None:
        with conn:
            while True:
                try:
                    data = conn.recv(1 << 16)
                except OSError:
                    return
                now = time.monotonic()
                if not data:
                    return
                if record.first_byte is None:
                    record.first_byte = now
                record.last_byte = now
                record.size += len(data)

    def count(self) -> int:
        """Connections that delivered at least one byte."""
        with self.lock:
            return sum(1 for c in self.connections if c.first_byte is not None)

    def snapshot(self) -> list[Connection]:
        with self.lock:
            return list(self.connections)

    def reset(self) -> None:
        with self.lock:
            self.connections = []

    def close(self) -> None:
        self.closed = True
        self.server.close()


@dataclass
class Row:
    """One line of the results table."""

    metric: str
    size: str
    unit: str
    higher_is_better: bool
    printnet: float | None
    cups: float | None = None
    target: str = ""
    met: bool | None = None
    printnet_cmd: str = ""
    cups_cmd: str = ""
    note: str = ""
    samples: list[float] = field(default_factory=list)
    cups_samples: list[float] = field(default_factory=list)

    @property
    def ratio(self) -> float | None:
        """printnet ÷ CUPS (read with `higher_is_better`)."""
        if self.printnet is None or self.cups is None or self.cups == 0:
            return None
        return self.printnet / self.cups

    @property
    def advantage(self) -> float | None:
        """How many times better printnet is than CUPS (>1: printnet is better)."""
        r = self.ratio
        if r is None or r == 0:
            return None
        return r if self.higher_is_better else 1 / r
