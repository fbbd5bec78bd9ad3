"""I/O: the write loop that pushes a job's bytes into a port.

Owns `send()` and the errors it raises with the exact count of bytes that went
out: `SendStalled` (a `PrinterStalled`) and `SendFailed` (a `PortError`).

Ports are opened with ``write_timeout=0`` (`ports.open_port`): each write
returns at once with the number of bytes the port took, the only mode in which
pyserial reports that exactly (docs/PRINTERS.md).  `send` keeps the running count, and
when the port takes nothing it waits efficiently:

* a port with a file descriptor (a tty, ``socket://``): ``select`` for
  writability, at most `POLL` seconds at a time (and a port other than a
  native tty is only written to when ``select`` says it is writable);
* any other port (``sim://``, ``loop://``, ``rfc2217://``): sleeps that start at
  `MIN_SLEEP` and double up to `MAX_SLEEP` while nothing moves.

Ports without a descriptor get at most `SMALL_CHUNK` bytes per call: pyserial's
``rfc2217://`` client writes with a blocking ``sendall`` (5 s socket timeout)
whatever ``write_timeout`` says, so a connection that dies mid-write can
leave the count uncertain by at most that one chunk.

On a native POSIX serial port the bytes go out with ``os.write`` on its file
descriptor: pyserial's own ``write`` retries EAGAIN in a busy loop (it would
spin, without a count, for as long as the printer holds XOFF; its socket
handler does the same when the send buffer is full).  Elsewhere a
write that returns None, 0, raises a timeout or EAGAIN counts as "nothing
taken".  Time is measured with the monotonic clock.

After `stall_timeout` seconds without a single byte taken, `send` raises
`SendStalled` with ``sent``: the caller reports the printer offline and later
calls `send` again with ``start=sent`` — nothing printed twice, nothing lost.
"""

from __future__ import annotations

import errno
import os
import select
import sys
import time
from collections.abc import Callable
from typing import Final

from serial.serialutil import SerialBase, SerialException, SerialTimeoutException

from printnet.errors import PortError, PrinterStalled

if sys.platform != "win32":
    from serial.serialposix import Serial as _PosixSerial

CHUNK: Final = 64 * 1024  # bytes offered per write call to a port with a descriptor
SMALL_CHUNK: Final = 4096  # ... to any other port (a blocking write risks at most this)
POLL: Final = 0.1  # longest single wait, so should_stop is heard
MIN_SLEEP: Final = 0.002
MAX_SLEEP: Final = 0.05
_NOTHING_TAKEN: Final = frozenset({errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR, errno.ENOBUFS})


class SendStalled(PrinterStalled):
    """The printer took no bytes for `stall_timeout` seconds; `sent` went out before."""

    def __init__(self, message: str, *, sent: int) -> None:
        super().__init__(message)
        self.sent = sent


class SendFailed(PortError):
    """The port failed (closed, cable, connection reset); `sent` went out before."""

    def __init__(self, message: str, *, sent: int) -> None:
        super().__init__(message)
        self.sent = sent


def _fileno(port: SerialBase) -> int | None:
    try:
        fd = port.fileno()
    except (OSError, ValueError, AttributeError, TypeError):
        return None
    return fd if isinstance(fd, int) and fd >= 0 else None


def _label(port: SerialBase) -> str:
    return str(port.port or port.name or "port")


def _write_once(port: SerialBase, fd: int | None, chunk: memoryview) -> int:
    """Offer `chunk` once; the number of bytes taken (0: none)."""
    try:
        if fd is not None and sys.platform != "win32" and isinstance(port, _PosixSerial):
            if not port.is_open:
                raise SerialException("port not open")
            n: int | None = os.write(fd, chunk)
        else:
            if fd is not None and not _writable_now(fd):
                return 0  # pyserial's socket write would spin on EAGAIN
            n = port.write(chunk)
    except SerialTimeoutException:
        return 0
    except BlockingIOError:
        return 0
    except InterruptedError:
        return 0
    except SerialException as exc:
        if exc.errno in _NOTHING_TAKEN:
            return 0
        raise
    except OSError as exc:
        if exc.errno in _NOTHING_TAKEN:
            return 0
        raise
    if not n or n < 0:
        return 0
    return min(n, len(chunk))


def _writable_now(fd: int) -> bool:
    try:
        return bool(select.select([], [fd], [], 0)[1])
    except InterruptedError:
        return False


def _wait_writable(fd: int, timeout: float) -> None:
    try:
        select.select([], [fd], [], max(timeout, 0.0))
    except InterruptedError:
        pass


def send(
    port: SerialBase,
    data: bytes,
    *,
    stall_timeout: float,
    on_progress: Callable[[int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    start: int = 0,
) -> int:
    """Write ``data[start:]`` to `port`; return the offset reached (``len(data)`` when done).

    `on_progress(sent)` is called after every write that took bytes, with the
    offset reached so far (counted from the start of `data`, not from `start`).
    When `should_stop()` returns true, `send` returns early with that offset.
    Raises `SendStalled` after `stall_timeout` seconds without progress and
    `SendFailed` when the port fails; both carry ``sent``, the exact offset.
    """
    total = len(data)
    if not 0 <= start <= total:
        raise ValueError(f"start {start} is outside 0..{total}")
    view = memoryview(data).cast("B")
    sent = start
    fd = _fileno(port)
    step = CHUNK if fd is not None else SMALL_CHUNK
    last_progress = time.monotonic()
    sleep = MIN_SLEEP
    while sent < total:
        if should_stop is not None and should_stop():
            return sent
        try:
            n = _write_once(port, fd, view[sent : sent + step])
        except (SerialException, OSError) as exc:
            raise SendFailed(f"{_label(port)}: write failed after {sent} bytes: {exc}",
                             sent=sent) from exc
        if n:
            sent += n
            last_progress = time.monotonic()
            sleep = MIN_SLEEP
            if on_progress is not None:
                on_progress(sent)
            continue
        idle = time.monotonic() - last_progress
        if idle >= stall_timeout:
            raise SendStalled(
                f"{_label(port)}: printer took no bytes for {idle:.1f} s "
                f"(after {sent} of {total} bytes)",
                sent=sent,
            )
        left = stall_timeout - idle
        if fd is not None:
            _wait_writable(fd, min(left, POLL))
        else:
            time.sleep(min(sleep, left, POLL))
            sleep = min(sleep * 2, MAX_SLEEP)
    return sent
