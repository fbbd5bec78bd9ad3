"""The virtual printer: `printnet capture --device PATH` (the I/O shell).

Owns the pseudo-terminal, the link at PATH, the read loop and the hand-over of
each captured job to the station submit path (`printnet.api.Station.submit`);
where a job ends is the pure `printnet.splitter`'s business.

"A driver that includes a virtual printer control card can read the stream of
characters from the word processor and create a spooled file for them,
meanwhile allowing the processor to believe the characters are going to a
real, intelligent printer."  A program that can print only to a serial device
is pointed at PATH, a symlink to the slave side of a pty this process holds the
master of.

* **Raw line.** The slave is put in raw mode (no output processing: an LF stays
  an LF, every byte value passes) when capture starts and again after each
  writer, so a writer that changed the line (``stty sane``) does not change the
  next one's bytes.  Writers may set speed and framing (``stty -F PATH raw 9600``,
  pyserial's ``Serial(PATH, 9600)``): a pty has no line, so they are accepted and
  change nothing.
* **The end of a writer.** Between jobs capture keeps a slave descriptor of its
  own open (the pty then never hangs up, and PATH can be opened again). When
  the first byte of a job arrives, it closes that descriptor, so the writer
  holds the only one: when the writer closes, the master hangs up (POLLHUP, and
  read gives EIO once the bytes written before the close are read) and the job
  ends. Then capture reopens the slave for the next writer.  A writer that opens
  and closes without writing (``stty -F``) makes no job.
* **Jobs.** Each job is submitted as soon as it ends, as a request of the user
  running capture, through the same path as ``printnet request -`` (validated,
  durable, then published); its id is printed on standard output.  Jobs are raw
  by default: the bytes exactly as written, control codes kept for an
  intelligent printer; ``--text`` submits them as text instead (paginated, the
  encoding detected, and the plain driver strips the control codes a dumb
  printer would print as garbage).
* **Options first.** Every option, the printer and the device path are checked
  before PATH is linked: PATH must not exist, except as a dangling link into
  ``/dev/pts`` (left by a capture that was killed), which is replaced.  Nothing
  is linked or written on bad input.
* **Trouble.** A job the spool refuses (full, unmounted, unwritable) is kept in
  memory and retried every second, in order, while capture goes on reading; a
  line on standard error says so.  If capture stops before it is queued, it is
  written to ``PATH.unqueued-N`` beside the link and capture exits 1 naming the
  files: a captured job is never dropped.
* **Stopping.** SIGINT or SIGTERM: the job in progress (if any bytes came) is
  submitted, the link is removed (only if it is still ours) and capture exits 0.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import select
import signal
import sys
import termios
import time
import tty
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Final

from printnet.errors import PrintnetError, SpoolError, UsageError
from printnet.splitter import FormFeedRule, Splitter

PTS: Final = "/dev/pts/"
READ_SIZE = 1 << 16
RETRY = 1.0  # seconds between attempts to queue a job the spool refused
RETRY_REPORT = 30.0  # seconds between two reports of the same trouble


@dataclass
class CaptureOptions:
    """What `printnet capture` was asked (request options pass to `Station.submit`)."""

    device: Path
    idle: float | None = None
    formfeed: FormFeedRule = field(default_factory=FormFeedRule)
    title: str = ""
    request: dict[str, Any] = field(default_factory=dict)  # printer, priority, copies...
    password: str | None = None


class VirtualPrinter:
    """A pty whose slave is linked at `device`; `read_events` yields what writers do."""

    def __init__(self, device: Path) -> None:
        self.device = device
        self.master, slave = os.openpty()
        self.slave_name = os.ttyname(slave)
        self._slave: int | None = slave
        os.set_blocking(self.master, False)
        self._raw(slave)
        self.linked = False

    @staticmethod
    def _raw(fd: int) -> None:
        tty.setraw(fd, termios.TCSANOW)

    def link(self) -> None:
        """Make `device` a symlink to the slave (refusing anything in its way)."""
        # A dangling link into /dev/pts may have come alive since it was checked: the
        # number was free, and our own pty may have been given it.
        ours = _target(self.device) == self.slave_name
        if not ours:
            check_device(self.device)
        with contextlib.suppress(FileNotFoundError):
            if ours or _stale_link(self.device):
                os.unlink(self.device)
        try:
            os.symlink(self.slave_name, self.device)
        except FileExistsError:  # RACE: created since the check
            raise UsageError(f"{self.device}: exists (and is not a link of ours)") from None
        except OSError as exc:
            raise UsageError(f"{self.device}: cannot create the link: {exc.strerror}") from None
        self.linked = True

    def unlink(self) -> None:
        """Remove the link, if it is still ours."""
        if not self.linked:
            return
        self.linked = False
        with contextlib.suppress(OSError):
            if os.readlink(self.device) == self.slave_name:
                os.unlink(self.device)

    def hold(self) -> None:
        """Hold a slave descriptor between writers (no hang-up; raw line again)."""
        if self._slave is None:
            self._slave = os.open(self.slave_name, os.O_RDWR | os.O_NOCTTY)
            self._raw(self._slave)

    def release(self) -> None:
        """A writer has started: let it hold the only slave descriptor."""
        if self._slave is not None:
            os.close(self._slave)
            self._slave = None

    @property
    def held(self) -> bool:
        return self._slave is not None

    def read(self) -> tuple[bytes, bool]:
        """What is readable now, and whether the writer hung up."""
        chunks: list[bytes] = []
        while True:
            try:
                data = os.read(self.master, READ_SIZE)
            except BlockingIOError:
                return b"".join(chunks), False
            except OSError as exc:
                if exc.errno == errno.EIO:  # no slave open any more: hung up
                    return b"".join(chunks), True
                raise
            if not data:
                return b"".join(chunks), True
            chunks.append(data)

    def close(self) -> None:
        self.unlink()
        self.release()
        with contextlib.suppress(OSError):
            os.close(self.master)


def _target(path: Path) -> str | None:
    try:
        return os.readlink(path)
    except OSError:
        return None


def _stale_link(path: Path) -> bool:
    """A dangling symlink into /dev/pts: what a killed capture leaves behind."""
    target = _target(path)
    return target is not None and target.startswith(PTS) and not os.path.exists(target)


def check_device(path: Path) -> None:
    """UsageError unless `path` can become our link (nothing is changed here)."""
    parent = path.parent
    if not parent.is_dir():
        raise UsageError(f"{path}: no such folder {parent}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"{path}: cannot create a link in {parent}: permission denied")
    if os.path.lexists(path) and not _stale_link(path):
        kind = "a link" if path.is_symlink() else "a device" if path.is_char_device() \
            else "a folder" if path.is_dir() else "a file"
        raise UsageError(f"{path}: exists ({kind}, not a link of ours); choose another path")


class Capture:
    """The read loop: bytes from writers into jobs, jobs into requests."""

    def __init__(self, printer: VirtualPrinter, splitter: Splitter,
                 submit: Callable[[bytes, int], str],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.printer = printer
        self.splitter = splitter
        self.submit = submit
        self.clock = clock
        self.jobs = 0
        self.stopping = False
        self.unsent: list[tuple[bytes, int]] = []  # ended jobs not yet queued, in order
        self._retry_at: float | None = None
        self._last_error = -RETRY_REPORT
        self._reported = 0  # the job whose trouble was reported last
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

    def request_stop(self) -> None:
        self.stopping = True
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")

    def _finish(self, jobs: Sequence[bytes]) -> None:
        for data in jobs:
            self.jobs += 1
            self.unsent.append((data, self.jobs))
        self._send()

    def _send(self) -> None:
        """Submit the jobs not yet queued, in order; one that fails waits for a retry."""
        while self.unsent:
            data, n = self.unsent[0]
            try:
                self.submit(data, n)
            except (PrintnetError, OSError) as exc:
                now = self.clock()
                if n != self._reported or now - self._last_error >= RETRY_REPORT:
                    self._last_error, self._reported = now, n
                    sys.stderr.write(f"printnet capture: job #{n} ({len(data)} bytes) not "
                                     f"queued yet, retrying: {exc}\n")
                    sys.stderr.flush()
                self._retry_at = now + RETRY
                return
            self.unsent.pop(0)
        self._retry_at = None

    def save_unsent(self, folder: Path, stem: str) -> list[Path]:
        """Keep the jobs that never reached the spool as files (never lose them)."""
        saved = []
        for data, n in self.unsent:
            path = folder / f"{stem}.unqueued-{n}"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with open(fd, "wb") as out:
                out.write(data)
            saved.append(path)
        self.unsent.clear()
        return saved

    def run(self) -> None:
        poller = select.poll()
        poller.register(self.printer.master, select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        try:
            while not self.stopping:
                due = self.splitter.deadline()
                if self._retry_at is not None:
                    due = self._retry_at if due is None else min(due, self._retry_at)
                timeout = None if due is None else max(0, int((due - self.clock()) * 1000) + 1)
                events = dict(poller.poll(timeout))
                if self._wake_r in events:
                    with contextlib.suppress(OSError):
                        os.read(self._wake_r, 64)
                if self.printer.master in events:
                    self._readable()
                self._finish(self.splitter.tick(self.clock()))  # also retries unsent jobs
                if not self.splitter.pending:
                    self.printer.hold()  # a job ended by idle/FF: hold between writers
            data, _ = self.printer.read()  # bytes that came with the stop
            self._finish(self.splitter.feed(data, self.clock()))
            self._finish(self.splitter.hangup())
        finally:
            os.close(self._wake_r)
            os.close(self._wake_w)

    def _readable(self) -> None:
        data, hung_up = self.printer.read()
        if data and self.printer.held:
            # The first bytes of a writer: from now on its close hangs the pty up.
            self.printer.release()
        self._finish(self.splitter.feed(data, self.clock()))
        if hung_up:
            self._finish(self.splitter.hangup())
            self.printer.hold()  # the next writer finds the line raw and no hang-up


def run_capture(spool: Path, etc: Path, options: CaptureOptions) -> int:
    """`printnet capture`: validate, link, capture until SIGINT/SIGTERM; jobs made."""
    from printnet.api import Station, station_etc

    station = Station(spool, station_etc(etc))
    station.template(**options.request)  # the printer and every option, before linking
    check_device(options.device)  # before the pty: it may take a dead capture's number
    printer = VirtualPrinter(options.device)
    splitter = Splitter(idle=options.idle, formfeed=options.formfeed)
    device = str(options.device)

    def submit(data: bytes, n: int) -> str:
        title = options.title or f"{device} #{n}"
        [req] = station.submit(["-"], stdin=io.BytesIO(data), password=options.password,
                               title=title, **options.request)
        sys.stdout.write(f"{req.id}\n")
        sys.stdout.flush()
        sys.stderr.write(f"printnet capture: job {req.id}: {len(data)} bytes from {device}\n")
        return req.id

    capture = Capture(printer, splitter, submit)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        capture.request_stop()

    old = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        printer.link()
        sys.stderr.write(f"printnet capture: {device} -> {printer.slave_name}; "
                         f"idle {options.idle or 'off'}, formfeed {options.formfeed}; "
                         "Ctrl-C stops\n")
        sys.stderr.flush()
        capture.run()
    finally:
        printer.close()
        for sig, handler in old.items():
            signal.signal(sig, handler)
    if capture.unsent:
        saved = capture.save_unsent(options.device.parent, options.device.name)
        raise SpoolError(f"{len(saved)} captured job(s) could not be queued; kept in "
                         + ", ".join(str(p) for p in saved))
    return capture.jobs

