"""pyserial URL handler ``sim://NAME?out=PATH&baud=N&buffer=N``: a simulated printer.

Owns the simulated printer device and its `Serial` port class (pyserial's
handler convention: module ``protocol_<scheme>``, class ``Serial``; found once
`printnet.printers.ports.register_schemes()` has run).

The simulated printer behaves like a serial printer at the end of a cable:

* it has a small **device buffer** (``buffer=N`` bytes, default 4096);
  ``write()`` puts bytes into it, as many as fit, and returns how many;
* a background thread **prints** the buffer at line rate into ``out`` (appending;
  that file is the record of what was printed): ``baud / bits-per-frame`` bytes
  per second, 10 bits for 8N1 (start + data + parity + stop bits).  ``baud``
  absent or ``0``: the port's configured baud rate; ``baud=inf``: as fast as the
  disk takes it (writes go straight to ``out``);
* its **state** comes from the file ``<out>.state`` (see
  `printnet.printers.simctl`; any process may change it): ``online``;
  ``offline`` and ``paperout`` (accepts nothing and prints nothing, keeps its
  buffer; CD and DSR read False); ``xoff`` (accepts nothing, keeps printing its
  buffer; CTS reads False).  The file's identity and mtime are checked at most
  every `STATE_CHECK` seconds, and read only when they change.

``write()`` with ``write_timeout=0`` returns at once with the exact count (0
while not online or while the buffer is full); with a timeout it waits for
room and raises ``SerialTimeoutException`` when the time is up (like
pyserial's own ports, the partial count is then lost: printnet never does
this).  ``flush()`` waits until the buffer is printed (no timeout, like
``tcdrain``); `Serial.drain` takes one.

The device outlives a port that is closed: whatever is in its buffer keeps
printing (when online) as on a real printer, and a port opened again on the
same ``out`` in the same process finds the same device.  When the last port is
closed and the buffer is empty the device goes away.  A process that exits
loses what its simulated printers had not printed yet (a power cut).
``out`` is an absolute path or relative to the current directory; its folder
must exist.  ``NAME`` is just a label.
"""

from __future__ import annotations

import errno
import math
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Final
from urllib.parse import parse_qs, urlsplit

from serial.serialutil import (
    PortNotOpenError,
    SerialException,
    SerialTimeoutException,
)

from printnet.printers.simctl import SimState, parse_state, state_path
from printnet.printers.virtual import VirtualPort

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

STATE_CHECK: Final = 0.05  # seconds between looks at the state file
TICK: Final = 0.01  # seconds between print steps of the device thread
LINGER: Final = 0.5  # seconds the device thread waits for more bytes before it exits
DEFAULT_BUFFER: Final = 4096
MAX_BUFFER: Final = 16 * 1024 * 1024
OUT_MODE: Final = 0o640  # what it printed: not world-readable (as file://)

_NOT_PRINTING: Final = frozenset({SimState.OFFLINE, SimState.PAPEROUT})


class _Device:
    """The printer itself: buffer, print thread, state; shared by ports on one `out`."""

    def __init__(self, out: Path, capacity: int) -> None:
        self.out = out
        self.state_file = state_path(out)
        self.capacity = capacity
        self.rate = math.inf  # bytes per second
        self.cond = threading.Condition()
        self.buffer = bytearray()
        self.printed = 0
        self.users = 0
        self.closed = False
        self.error: OSError | None = None
        self.thread: threading.Thread | None = None
        self._state = SimState.ONLINE
        self._state_key: tuple[int, int, int] | None = None
        self._state_checked = -math.inf
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        self.fd = os.open(out, flags, OUT_MODE)

    def reopen_if_replaced(self) -> None:
        """Open `out` again if the file was removed or replaced (call with cond held)."""
        try:
            same = os.path.samestat(os.fstat(self.fd), os.stat(self.out))
        except FileNotFoundError:
            same = False
        if not same:
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
            fd = os.open(self.out, flags, OUT_MODE)
            os.close(self.fd)
            self.fd = fd

    # -- state (call with cond held) ---------------------------------------

    def state(self) -> SimState:
        now = time.monotonic()
        if now - self._state_checked < STATE_CHECK:
            return self._state
        self._state_checked = now
        try:
            st = os.stat(self.state_file)
        except FileNotFoundError:
            self._state, self._state_key = SimState.ONLINE, None
            return self._state
        except OSError:
            return self._state
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        if key != self._state_key:
            try:
                word = self.state_file.read_text(encoding="ascii", errors="replace")
            except OSError:
                return self._state
            new = parse_state(word)
            if new is not None:  # empty: someone is writing it in place; look again
                self._state, self._state_key = new, key
        return self._state

    def refresh_state(self) -> None:
        self._state_checked = -math.inf

    # -- bytes in (call with cond held) -------------------------------------

    def accept(self, data: memoryview) -> int:
        """Take what fits of `data`; the caller has checked the state is online."""
        self.raise_error()
        if not data:
            return 0
        if math.isinf(self.rate) and not self.buffer:
            n = self._print(bytes(data))
            if n == 0:
                self.raise_error()
                raise SerialException(errno.EIO, f"simulated printer {self.out}: write failed")
            return n
        n = min(self.capacity - len(self.buffer), len(data))
        if n > 0:
            self.buffer += data[:n]
            self._ensure_thread()
        return n

    def raise_error(self) -> None:
        """Report (once) an error the printer met while printing."""
        if self.error is not None:
            err, self.error = self.error, None
            raise SerialException(err.errno, f"simulated printer {self.out}: {err.strerror}")

    def _print(self, chunk: bytes) -> int:
        """Append `chunk` to out; the count that went out (errors are kept for later)."""
        done = 0
        try:
            while done < len(chunk):
                done += os.write(self.fd, chunk[done:])
        except OSError as exc:
            self.error = exc
        self.printed += done
        return done

    def _ensure_thread(self) -> None:
        if self.thread is None:
            self.thread = threading.Thread(
                target=self._run, name=f"sim-printer {self.out.name}", daemon=True
            )
            self.thread.start()

    # -- the print mechanism --------------------------------------------------

    def _run(self) -> None:
        last = time.monotonic()
        credit = 0.0
        idle_since: float | None = None
        while True:
            with self.cond:
                now = time.monotonic()
                if not self.buffer:
                    credit = 0.0  # an idle line banks no time
                    if idle_since is None:
                        idle_since = now
                    if now - idle_since >= LINGER or self.users == 0:
                        self.thread = None
                        self.cond.notify_all()
                        break
                    self.cond.wait(min(LINGER, STATE_CHECK))
                    last = time.monotonic()
                    continue
                idle_since = None
                if self.state() in _NOT_PRINTING:
                    self.cond.wait(STATE_CHECK)
                    last, credit = time.monotonic(), 0.0
                    continue
                if math.isinf(self.rate):
                    n = len(self.buffer)
                else:
                    credit = min(credit + (now - last) * self.rate, float(len(self.buffer)))
                    n = int(credit)
                    credit -= n
                last = now
                chunk = bytes(self.buffer[:n])
            if chunk:
                with self.cond:
                    done = self._print(chunk)
                    del self.buffer[:done]
                    if done < len(chunk):
                        self.buffer.clear()  # the paper jammed: the rest is lost
                    self.cond.notify_all()
            time.sleep(TICK)
        _retire_if_idle(self)


_registry: dict[Path, _Device] = {}
_registry_lock = threading.Lock()


def _retire_if_idle(dev: _Device) -> None:
    with _registry_lock, dev.cond:
        if dev.closed or dev.users or dev.buffer or dev.thread is not None:
            return
        dev.closed = True
        if _registry.get(dev.out) is dev:
            del _registry[dev.out]
        os.close(dev.fd)


def _attach(out: Path, capacity: int) -> _Device:
    with _registry_lock:
        dev = _registry.get(out)
        if dev is None or dev.closed:
            dev = _Device(out, capacity)
            _registry[out] = dev
        with dev.cond:
            dev.reopen_if_replaced()
            dev.users += 1
            dev.capacity = capacity
        return dev


def _detach(dev: _Device) -> None:
    with dev.cond:
        dev.users -= 1
    _retire_if_idle(dev)


def parse_url(url: str) -> tuple[str, Path, float | None, int]:
    """(name, out, baud or None for the port's, buffer size) from a ``sim://`` URL."""
    parts = urlsplit(url)
    form = "sim://NAME?out=PATH[&baud=N|inf][&buffer=BYTES]"
    if parts.scheme.lower() != "sim":
        raise SerialException(f"expected a URL of the form {form}, not {url!r}")
    try:
        options = parse_qs(parts.query, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise SerialException(f"{url!r}: bad options; expected {form}") from None
    unknown = sorted(set(options) - {"out", "baud", "buffer"})
    if unknown:
        raise SerialException(f"{url!r}: unknown option {unknown[0]!r}; expected {form}")
    outs = options.get("out", [])
    if len(outs) != 1 or not outs[0] or "\x00" in outs[0]:
        raise SerialException(f"{url!r}: needs one out=PATH; expected {form}")
    out = Path(os.path.abspath(outs[0]))
    baud: float | None = None
    raw_baud = options.get("baud", ["0"])[-1].strip().lower()
    if raw_baud in ("inf", "infinity", "max"):
        baud = math.inf
    elif raw_baud not in ("", "0"):
        try:
            baud = float(int(raw_baud))
        except ValueError:
            raise SerialException(f"{url!r}: baud must be a number or inf") from None
        if baud <= 0:
            raise SerialException(f"{url!r}: baud must be positive")
    size = DEFAULT_BUFFER
    if "buffer" in options:
        try:
            size = int(options["buffer"][-1])
        except ValueError:
            raise SerialException(f"{url!r}: buffer must be a number of bytes") from None
        if not 1 <= size <= MAX_BUFFER:
            raise SerialException(f"{url!r}: buffer must be 1..{MAX_BUFFER} bytes")
    return parts.netloc, out, baud, size


class Serial(VirtualPort):
    """A port to a simulated printer (see the module docstring)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        self._dev: _Device | None = None
        self._url_baud: float | None = None
        self.sim_name = ""
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    # -- pyserial plumbing ----------------------------------------------------

    def open(self) -> None:
        if self.is_open:
            raise SerialException("Port is already open.")
        if self.port is None:
            raise SerialException("Port must be configured before it can be used.")
        self.sim_name, out, self._url_baud, size = parse_url(str(self.portstr))
        try:
            self._dev = _attach(out, size)
        except OSError as exc:
            raise SerialException(
                exc.errno, f"could not open port {self.portstr}: {exc.strerror}"
            ) from exc
        self.is_open = True
        self._reconfigure_port()

    def close(self) -> None:
        self.is_open = False
        dev, self._dev = self._dev, None
        if dev is not None:
            _detach(dev)

    def _reconfigure_port(self, *args: object) -> None:
        dev = self._dev
        if dev is None:
            return
        baud = self._url_baud if self._url_baud is not None else float(self.baudrate)
        bits = 1 + self.bytesize + (0 if self.parity == "N" else 1) + self.stopbits
        with dev.cond:
            dev.rate = baud / bits if baud > 0 else math.inf
            dev.cond.notify_all()

    def _need_dev(self) -> _Device:
        if not self.is_open or self._dev is None:
            raise PortNotOpenError()
        return self._dev

    # -- bytes ------------------------------------------------------------------

    def write(self, b: ReadableBuffer, /) -> int:
        dev = self._need_dev()
        data = memoryview(b).cast("B")
        timeout = self.write_timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        total = 0
        with dev.cond:
            while True:
                if dev.state() == SimState.ONLINE:
                    total += dev.accept(data[total:])
                if total >= len(data) or timeout == 0:
                    return total
                wait = STATE_CHECK
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise SerialTimeoutException("Write timeout")
                    wait = min(wait, left)
                dev.cond.wait(wait)

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until the device buffer is printed; False if `timeout` passed first."""
        dev = self._need_dev()
        deadline = None if timeout is None else time.monotonic() + timeout
        with dev.cond:
            while dev.buffer:
                wait = STATE_CHECK
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    wait = min(wait, left)
                dev.cond.wait(wait)
            dev.raise_error()
        return True

    def flush(self) -> None:
        self.drain(None)

    def read(self, size: int = 1, /) -> bytes:
        self._need_dev()
        if self.timeout:
            time.sleep(min(self.timeout, 1.0))
        return b""

    @property
    def in_waiting(self) -> int:
        return 0

    @property
    def out_waiting(self) -> int:
        dev = self._need_dev()
        with dev.cond:
            return len(dev.buffer)

    def reset_input_buffer(self) -> None:
        pass

    def reset_output_buffer(self) -> None:
        """Nothing waits on the host side; the printer's own buffer is its own."""

    # -- status -------------------------------------------------------------------

    @property
    def sim_state(self) -> SimState:
        """The printer's state as it last read it (refreshed at most every STATE_CHECK)."""
        dev = self._need_dev()
        with dev.cond:
            return dev.state()

    @property
    def printed(self) -> int:
        """Bytes printed (appended to out) by this device so far."""
        dev = self._need_dev()
        with dev.cond:
            return dev.printed

    @property
    def out_path(self) -> Path:
        return self._need_dev().out

    @property
    def cts(self) -> bool:
        return self.sim_state == SimState.ONLINE

    @property
    def dsr(self) -> bool:
        return self.sim_state not in _NOT_PRINTING

    @property
    def ri(self) -> bool:
        return False

    @property
    def cd(self) -> bool:
        return self.sim_state not in _NOT_PRINTING
