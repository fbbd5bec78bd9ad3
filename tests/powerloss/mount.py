"""Driving a power-loss mount from a test or a script: start, command, cut, unmount.

    with PowerMount(tmp / "mnt", image=None, out=tmp / "img1", seed=7) as pm:
        ... processes use pm.path ...
        pm.arm(3, "after", r"^fsyncdir /new$")   # or pm.cut()
        pm.wait_cut(30)
    # pm.out now holds what survived; mount it again with PowerMount(..., image=pm.out)

The daemon runs as a child process (`python -m powerloss.daemon`); every wait
has a deadline, and `close` never blocks on the mount: it kills the daemon
(which aborts the FUSE connection, so processes stuck on the mount are freed)
and detaches the mount point with ``fusermount3 -u -z``.  After a cut, the
caller kills its own processes on the mount *first* (they are frozen in
the filesystem; SIGKILL ends them once the connection is aborted), then
calls `close`.

`fuse_problem()` says why FUSE cannot work here (no /dev/fuse, no
fusermount3, pyfuse3 missing), or None.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any

HERE = Path(__file__).resolve().parent
FUSERMOUNT = shutil.which("fusermount3") or shutil.which("fusermount") or "fusermount3"


def fuse_problem() -> str | None:
    """Why a power-loss mount cannot come up on this machine (None: it can)."""
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse (the kernel's FUSE device)"
    if shutil.which("fusermount3") is None and shutil.which("fusermount") is None:
        return "no fusermount3 (Debian package fuse3)"
    try:
        import pyfuse3  # noqa: F401
    except ImportError as exc:
        return f"pyfuse3 is not installed ({exc}); it is in pyproject's test extra"
    return None


class MountError(Exception):
    """The power-loss mount did not come up, or did not answer in time."""


class PowerMount:
    """One run of the power-loss daemon on `path` (see the module docstring)."""

    def __init__(self, path: Path, *, image: Path | None, out: Path, seed: int = 0,
                 log: Path | None = None, timeout: float = 30.0) -> None:
        self.path = path
        self.image = image
        self.out = out
        self.seed = seed
        self.log = log or out.with_name(out.name + ".daemon.log")
        self.timeout = timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.answers: queue.Queue[dict[str, Any]] = queue.Queue()
        self.cut_event: dict[str, Any] | None = None
        self._log_fh: IO[bytes] | None = None

    # -- life ---------------------------------------------------------------------------

    def start(self) -> PowerMount:
        self.path.mkdir(parents=True, exist_ok=True)
        _detach(self.path)  # a leftover of a killed run
        cmd = [sys.executable, "-m", "powerloss.daemon", str(self.path), "--out",
               str(self.out), "--seed", str(self.seed)]
        if self.image is not None:
            cmd += ["--image", str(self.image)]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(HERE.parent), *filter(None, [env.get("PYTHONPATH")])])
        self._log_fh = open(self.log, "ab")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._log_fh, env=env)
        threading.Thread(target=self._reader, daemon=True).start()
        try:
            self._wait_event("mounted", self.timeout)
            deadline = time.monotonic() + self.timeout
            while not mounted(self.path):
                if time.monotonic() > deadline:
                    raise MountError(f"{self.path} is not a mount point after {self.timeout} s")
                time.sleep(0.02)
        except MountError:
            self.close()
            raise
        return self

    def __enter__(self) -> PowerMount:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _reader(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for raw in self.proc.stdout:
            try:
                obj = json.loads(raw)
            except ValueError:
                continue
            if not isinstance(obj, dict):
                continue
            if "event" in obj:
                if obj["event"] == "cut":
                    self.cut_event = obj
                self.events.put(obj)
            else:
                self.answers.put(obj)

    def _wait_event(self, name: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise MountError(f"no {name!r} from the power-loss daemon in {timeout} s:"
                                 f"\n{self.log_text()}")
            try:
                obj = self.events.get(timeout=min(left, 0.5))
            except queue.Empty:
                if self.proc is not None and self.proc.poll() is not None:
                    raise MountError(f"the power-loss daemon exited "
                                     f"{self.proc.returncode}:\n{self.log_text()}") from None
                continue
            if obj.get("event") == name:
                return obj

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    # -- commands -----------------------------------------------------------------------

    def command(self, line: str, timeout: float | None = None) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()
        try:
            answer = self.answers.get(timeout=timeout or self.timeout)
        except queue.Empty:
            raise MountError(f"no answer to {line!r}:\n{self.log_text()}") from None
        if "error" in answer:
            raise MountError(f"{line!r}: {answer['error']}")
        return answer

    def arm(self, k: int, when: str, pattern: str) -> None:
        """Cut at the k-th operation matching `pattern` (before or after it)."""
        self.command(f"arm {k} {when} {pattern}")

    def cut(self, *, worst: bool = False, names: bool = False) -> dict[str, Any]:
        """Cut the power now (if an armed cut has not already); `worst`: lose all
        that is not durable (else a seeded choice, `PowerModel.crash`)."""
        self.command("cut worst" if worst else "cut names" if names else "cut")
        return self.wait_cut(self.timeout)

    def wait_cut(self, timeout: float) -> dict[str, Any]:
        if self.cut_event is not None:
            return self.cut_event
        return self._wait_event("cut", timeout)

    def eio(self, rate: float, ops: str = "read,write,fsync", pattern: str = "") -> None:
        self.command(f"eio {rate} {ops} {pattern}".rstrip())

    def eio_off(self) -> None:
        self.command("eio off")

    def slow(self, seconds: float, count: int, pattern: str = "") -> None:
        """The next `count` attribute changes (utime...) of paths matching `pattern`
        take `seconds` longer."""
        self.command(f"slow {seconds} {count} {pattern}".rstrip())

    def stats(self) -> dict[str, Any]:
        return self.command("stats")

    # -- the end ---------------------------------------------------------------------

    def close(self, clean: bool | None = None) -> None:
        """Stop the daemon: cleanly (image = everything) unless the power was cut.

        `clean=False` kills it without writing anything (what remains is the image of
        the cut, if any)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if clean is None:
            clean = self.cut_event is None
        if clean and proc.poll() is None:
            with contextlib.suppress(OSError, MountError):
                assert proc.stdin is not None
                proc.stdin.write(b"quit\n")
                proc.stdin.flush()
            try:
                proc.wait(self.timeout)
            except subprocess.TimeoutExpired:
                pass
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(30)
        _detach(self.path)
        for stream in (proc.stdin, proc.stdout):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()
        if self._log_fh is not None:
            self._log_fh.close()


def mounted(path: Path) -> bool:
    """Whether `path` is a mount point (by /proc/self/mountinfo: a mount whose
    daemon died answers stat() with ENOTCONN, and os.path.ismount says False)."""
    want = os.path.realpath(path)
    try:
        with open("/proc/self/mountinfo") as fh:
            for line in fh:
                fields = line.split()
                if len(fields) > 4 and fields[4].replace("\\040", " ") == want:
                    return True
    except OSError:
        pass
    return False


def _detach(path: Path) -> None:
    """Unmount `path` if it is a mount point; never blocks for long."""
    for _ in range(5):
        if not mounted(path):
            return
        subprocess.run([FUSERMOUNT, "-u", "-z", str(path)], capture_output=True,
                       timeout=30, check=False)
    if mounted(path):
        raise MountError(f"{path}: still mounted after {FUSERMOUNT} -u -z")
