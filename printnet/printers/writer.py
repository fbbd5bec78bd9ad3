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
`SendStalled` with ``sent`` (and the device's own reason where it gives one:
`ports.device_reason`): the caller reports the printer offline and later
calls `send` again with ``start=sent`` on the same open port — nothing printed
twice, nothing lost.  After a `SendFailed` the port is gone with whatever its
buffers held: whether ``sent`` is still worth anything is the port kind's rule
(`ports.port_kind`), not this module's.

Owns `complete()` too: once `send` handed over the last byte, it makes sure the
far end took it, the way the port kind says (`ports.Finish`).  On a TCP port
"the last write returned" means only that the local kernel holds the bytes, so
``complete`` shuts the sending side down, waits until the kernel's send queue
is empty (``ioctl(SIOCOUTQ)``; after ``shutdown`` the FIN counts in it, so 0
means every byte *and* the FIN were acknowledged) and then reads to EOF.  A
connection that breaks before that is a `SendFailed`: the job did not complete.
"""

from __future__ import annotations

import errno
import fcntl
import os
import select
import socket
import struct
import sys
import time
from collections.abc import Callable
from typing import Any, Final

from serial.serialutil import SerialBase, SerialException, SerialTimeoutException

from printnet.errors import PortError, PrinterStalled
from printnet.printers.ports import Finish, PortKind, device_reason

if sys.platform != "win32":
    from serial.serialposix import Serial as _PosixSerial

CHUNK: Final = 64 * 1024  # bytes offered per write call to a port with a descriptor
SMALL_CHUNK: Final = 4096  # ... to any other port (a blocking write risks at most this)
POLL: Final = 0.1  # longest single wait, so should_stop is heard
MIN_SLEEP: Final = 0.002
MAX_SLEEP: Final = 0.05
_NOTHING_TAKEN: Final = frozenset({errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR, errno.ENOBUFS})
SIOCOUTQ: Final = 0x5411  # = TIOCOUTQ: bytes in a TCP send queue not yet acknowledged
TCP_CLOSE: Final = 7  # tcpi_state of a connection that is gone (reset, or closed)


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
            why = device_reason(port)
            if why:
                message = (f"{_label(port)}: {why} (took no bytes for {idle:.1f} s, "
                           f"after {sent} of {total} bytes)")
            else:
                message = (f"{_label(port)}: printer took no bytes for {idle:.1f} s "
                           f"(after {sent} of {total} bytes)")
            raise SendStalled(message, sent=sent)
        left = stall_timeout - idle
        if fd is not None:
            _wait_writable(fd, min(left, POLL))
        else:
            time.sleep(min(sleep, left, POLL))
            sleep = min(sleep * 2, MAX_SLEEP)
    return sent


# ---------------------------------------------------------------------------
# The end of a job


def complete(
    port: SerialBase,
    kind: PortKind,
    *,
    sent: int,
    stall_timeout: float,
    label: str,
    should_stop: Callable[[], bool] | None = None,
) -> bool:
    """Make sure the far end took the last byte; False if `should_stop` said so first.

    Call after `send` returned ``len(data)`` (`sent`).  Raises `SendStalled` when
    nothing moves for `stall_timeout` seconds (the port stays usable: call again)
    and `SendFailed` when the connection broke first (the job did not complete).
    """
    stop = should_stop or (lambda: False)
    if kind.finish is Finish.DRAIN:
        return _drain(port, sent=sent, stall_timeout=stall_timeout, label=label, stop=stop)
    if kind.finish in (Finish.TCP_FIN, Finish.TCP_ACK):
        sock = getattr(port, "_socket", None)
        if not isinstance(sock, socket.socket):
            raise SendFailed(f"{label}: the connection is closed (after {sent} bytes)",
                             sent=sent)
        return _tcp_complete(sock, fin=kind.finish is Finish.TCP_FIN, sent=sent,
                             stall_timeout=stall_timeout, label=label, stop=stop)
    return True


def _drain(port: SerialBase, *, sent: int, stall_timeout: float, label: str,
           stop: Callable[[], bool]) -> bool:
    """Wait until printnet's own printer has printed its buffer.

    A printer that stops printing with bytes in its buffer (offline, paper out)
    raises `SendStalled` after `stall_timeout` without progress: a plain
    ``flush()`` would wait for ever.
    """
    drain = getattr(port, "drain", None)
    if drain is None:
        port.flush()  # file://: fsync
        return True
    line: Any = port  # out_waiting: a property of every concrete port class
    last = int(line.out_waiting)
    since = time.monotonic()
    while not drain(POLL):
        if stop():
            return False
        waiting = int(line.out_waiting)
        now = time.monotonic()
        if waiting < last:
            last, since = waiting, now
        elif now - since >= stall_timeout:
            why = device_reason(port)
            if why:
                message = (f"{label}: {why} (printed nothing for {now - since:.1f} s, "
                           f"{waiting} bytes still in its buffer)")
            else:
                message = (f"{label} printed nothing for {now - since:.1f} s "
                           f"({waiting} bytes still in its buffer)")
            raise SendStalled(message, sent=sent)
    return True


def _unacknowledged(sock: socket.socket) -> int | None:
    """Bytes (and a FIN) in the kernel's send queue not yet acknowledged; None: unknown."""
    try:
        raw = fcntl.ioctl(sock.fileno(), SIOCOUTQ, b"\0" * 4)
    except OSError:
        return None
    return int(struct.unpack("i", raw)[0])


def _tcp_state(sock: socket.socket) -> int | None:
    try:
        return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0]
    except (OSError, IndexError):
        return None


def _tcp_complete(sock: socket.socket, *, fin: bool, sent: int, stall_timeout: float,
                  label: str, stop: Callable[[], bool]) -> bool:
    def broken(why: str) -> SendFailed:
        return SendFailed(f"{label}: the connection broke before the printer took the "
                          f"last byte ({why}; {sent} bytes were sent)", sent=sent)

    def check_error() -> None:
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            raise broken(os.strerror(err))

    def read_some() -> bool:
        """Read what the printer says (discarded); True at EOF."""
        try:
            return not sock.recv(1 << 16)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError as exc:
            raise broken(exc.strerror or str(exc)) from exc

    check_error()
    if fin:
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError as exc:
            raise broken(exc.strerror or str(exc)) from exc
    eof = False
    queued = _unacknowledged(sock)
    last, since = queued, time.monotonic()
    while queued:  # None (no SIOCOUTQ here): EOF is all there is to go by
        if stop():
            return False
        check_error()
        if _tcp_state(sock) == TCP_CLOSE:
            raise broken("connection closed")
        now = time.monotonic()
        if last is None or queued < last:
            last, since = queued, now
        elif now - since >= stall_timeout:
            raise SendStalled(f"{label} acknowledged nothing for {now - since:.1f} s "
                              f"({queued} bytes not yet acknowledged)", sent=sent)
        if fin and not eof:
            ready = select.select([sock], [], [], MAX_SLEEP)[0]
            if ready:
                eof = read_some()
        else:
            time.sleep(MIN_SLEEP * 5)
        queued = _unacknowledged(sock)
    if not fin:
        return True
    # Every byte and the FIN were acknowledged by the printer's TCP stack.  A
    # printer closes its side once it has read it all: EOF.  One that resets
    # instead had not taken everything (a reset drops what it had not read).
    deadline = time.monotonic() + stall_timeout
    while not eof:
        if stop():
            return False
        left = deadline - time.monotonic()
        if left <= 0:
            check_error()
            return True  # it keeps the connection open: its stack acknowledged it all
        if select.select([sock], [], [], min(left, POLL))[0]:
            if read_some():
                break
            deadline = time.monotonic() + stall_timeout  # it talks back: still alive
    check_error()
    return True
