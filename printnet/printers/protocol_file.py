"""pyserial URL handler ``file://PATH``: a printer that appends to a file.

Owns the `Serial` class pyserial's ``serial_for_url`` finds here once
`printnet.printers.ports.register_schemes()` has added this package to
``serial.protocol_handler_packages`` (pyserial's convention: module
``protocol_<scheme>`` with a class named ``Serial``).

This is the embedded default printer.  Everything written is appended to PATH
(the text after ``file://``, taken literally: no percent-decoding, no query;
``file:///var/x`` is absolute, ``file://out/x`` relative to the current
directory: `ports.open_port` has already made it absolute against etc/).  The
file is created with mode 0640 (less the umask) if it does not exist: on a
multi-user spool the printed documents are readable by the service account and
its group only, never by every user (docs/SECURITY.md); a file that exists keeps
the mode it has.  Its folder must exist.  Line settings are accepted and ignored.

``write()`` returns the byte count.  With ``write_timeout=0`` (non-blocking) it
makes one ``os.write`` and returns what that wrote, so the count is exact even
on a full disk; otherwise it writes everything or raises.  ``flush()`` fsyncs.
"""

from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING

from serial.serialutil import PortNotOpenError, SerialException

from printnet.printers.virtual import VirtualPort

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

SCHEME = "file://"
FILE_MODE = 0o640  # printed documents: not world-readable


def path_from_url(url: str) -> str:
    """The path part of a ``file://`` URL (taken literally)."""
    if not url.lower().startswith(SCHEME):
        raise SerialException(f"expected a URL of the form file://PATH, not {url!r}")
    path = url[len(SCHEME) :]
    if not path or "\x00" in path:
        raise SerialException(f"file:// URL without a usable path: {url!r}")
    return path


class Serial(VirtualPort):
    """A write-only port that appends to a file."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        self._fd: int | None = None
        self.path = ""
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def open(self) -> None:
        if self.is_open:
            raise SerialException("Port is already open.")
        if self.port is None:
            raise SerialException("Port must be configured before it can be used.")
        self.path = path_from_url(str(self.portstr))
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        try:
            self._fd = os.open(self.path, flags, FILE_MODE)
        except OSError as exc:
            raise SerialException(
                exc.errno, f"could not open port {self.portstr}: {exc.strerror}"
            ) from exc
        self.is_open = True

    def close(self) -> None:
        self.is_open = False
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def _reconfigure_port(self, *args: object) -> None:
        """Line settings mean nothing to a file."""

    def _need_fd(self) -> int:
        if not self.is_open or self._fd is None:
            raise PortNotOpenError()
        return self._fd

    def fileno(self) -> int:
        return self._need_fd()

    def write(self, b: ReadableBuffer, /) -> int:
        fd = self._need_fd()
        data = memoryview(b).cast("B")
        total = 0
        try:
            while total < len(data):
                n = os.write(fd, data[total:])
                total += n
                if self.write_timeout == 0 or n == 0:
                    break
        except InterruptedError:
            return total
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK) or total:
                return total
            raise SerialException(exc.errno, f"write failed: {exc.strerror}") from exc
        return total

    def flush(self) -> None:
        fd = self._need_fd()
        try:
            os.fsync(fd)
        except OSError as exc:
            raise SerialException(exc.errno, f"fsync failed: {exc.strerror}") from exc

    def read(self, size: int = 1, /) -> bytes:
        self._need_fd()
        return b""

    @property
    def in_waiting(self) -> int:
        return 0

    @property
    def out_waiting(self) -> int:
        return 0

    def reset_input_buffer(self) -> None:
        pass

    def reset_output_buffer(self) -> None:
        pass

    @property
    def cts(self) -> bool:
        return True

    @property
    def dsr(self) -> bool:
        return True

    @property
    def ri(self) -> bool:
        return False

    @property
    def cd(self) -> bool:
        return True
