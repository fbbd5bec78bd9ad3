"""Profiles for the gaps: py-spy samples of a running process, summed per function."""

from __future__ import annotations

import collections
import os
import shutil
import signal
import subprocess
from pathlib import Path

from bench.common import VENV_BIN


def py_spy() -> str | None:
    path = VENV_BIN / "py-spy"
    return str(path) if path.exists() else shutil.which("py-spy")


class Spy:
    """`py-spy record` attached to processes: every thread that is not idle (a
    thread in a system call counts: this is where the time goes, I/O included)."""

    def __init__(self, pids: list[int], out: Path, rate: int = 250) -> None:
        self.out = out
        self.procs: list[tuple[subprocess.Popen[bytes], Path]] = []
        exe = py_spy()
        if exe is None:
            return
        for pid in pids:
            path = out.with_name(f"{out.name}.{pid}.txt")
            proc = subprocess.Popen(
                [exe, "record", "-p", str(pid), "-r", str(rate), "-f", "raw", "--threads",
                 "--idle", "--nonblocking", "-o", str(path)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.procs.append((proc, path))

    def stop(self) -> list[Path]:
        paths = []
        for proc, path in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if path.exists():
                paths.append(path)
        return paths


def record_command(argv: list[str], out: Path, env: dict[str, str] | None = None,
                   rate: int = 1000) -> Path | None:
    """Run `argv` under py-spy; the raw samples' path (None without py-spy)."""
    exe = py_spy()
    if exe is None:
        return None
    subprocess.run([exe, "record", "-r", str(rate), "-f", "raw", "-o", str(out), "--",
                    *argv], env=env or dict(os.environ), stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=False)
    return out if out.exists() else None


def summarize(paths: list[Path], top: int = 12) -> list[tuple[float, str, str]]:
    """(percent of samples, 'self'|'total', function) for the heaviest functions."""
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    for path in paths:
        for line in path.read_text(errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if not count.isdigit():
                continue
            n = int(count)
            frames = [f for f in stack.split(";") if not f.startswith(("thread (", "process "))]
            leaf = frames[-1].split(" (")[0] if frames else ""
            if not frames or leaf in IDLE or leaf.rsplit(".", 1)[-1] in IDLE:
                continue  # a thread waiting for work, not doing any
            samples += n
            own[_short(frames[-1])] += n
            for f in {_short(f) for f in frames}:
                total[f] += n
    if not samples:
        return []
    out = [(100 * n / samples, "self", f) for f, n in own.most_common(top)]
    skip = ("printnet/cli.py", "printnet/launch.py", "Server.run ", "Server.tick ")
    ours = [(f, n) for f, n in total.most_common()
            if "printnet/" in f and not any(x in f for x in skip)]
    out += [(100 * n / samples, "total", f) for f, n in ours[:top]]
    return out


# Leaf functions of threads that wait for work (sampled with --idle, then dropped).
IDLE = frozenset({"wait", "_wait_for_tstate_lock", "get", "poll", "select", "accept",
                  "recv", "readline", "_recv_into", "sleep", "join",
                  # printnet's own waiting loops, blocked in C (poll, SimpleQueue.get)
                  "_Hint._run", "_Cleaner._run"})


def _short(frame: str) -> str:
    """'func (path/to/printnet/x.py:12)' -> 'func (printnet/x.py:12)'."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    for marker in ("printnet/", "site-packages/", "python3.11/"):
        if marker in where:
            where = where[where.index(marker):]
            break
    return f"{name} ({where})" if where else name
