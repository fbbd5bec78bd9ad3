"""The service manager's two interfaces, written by printnet itself (no libsystemd).

Owns `notify` / `Notifier` (the sd_notify protocol) and `inherited_sockets` (the
sd_listen_fds protocol).  Both are inert when the service manager did not set
their variables, so a server or gateway started by hand behaves the same.

* **Notify** (``Type=notify``): the manager sets ``NOTIFY_SOCKET`` to a unix
  datagram socket, a path or an abstract name (``@name``).  A message is one
  datagram of ``KEY=VALUE`` lines: ``READY=1`` (started: the server sends it after
  its first cycle, so the unit is "active" only once requests are being taken
  in), ``STATUS=...`` (one line shown by ``systemctl status``), ``STOPPING=1``,
  ``WATCHDOG=1`` (with ``WatchdogSec=``: the manager passes ``WATCHDOG_USEC`` and,
  optionally, ``WATCHDOG_PID``; `Notifier.cycle` pings at half that interval).
  A datagram that cannot be sent is dropped: the manager's view is a courtesy,
  never a reason to stop printing.
* **Socket activation**: the manager opens the listening sockets (port 515 needs
  root; the service then runs as the service account) and passes them as file
  descriptors 3, 4, ... with ``LISTEN_PID`` (our pid: the variables are for us,
  not for a child that inherited them), ``LISTEN_FDS`` (how many) and
  ``LISTEN_FDNAMES`` (colon-separated names, from ``FileDescriptorName=`` of the
  socket unit; ``unknown`` when absent).  `inherited_sockets` returns them by
  name as `socket.socket` objects, marks them close-on-exec, and removes the
  variables (as ``sd_listen_fds(1)`` does), so a program it starts does not
  take them for its own.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Mapping, MutableMapping
from typing import Final

from printnet.errors import UsageError

LISTEN_FDS_START: Final = 3  # SD_LISTEN_FDS_START
MAX_LISTEN_FDS: Final = 64  # more is a mistake, not a configuration


def _address(value: str) -> str | bytes | None:
    if value.startswith("@"):
        return b"\0" + value[1:].encode()  # an abstract socket name
    if value.startswith("/"):
        return value
    return None  # vsock: and relative names are not for us


def notify(*fields: str, environ: Mapping[str, str] | None = None) -> bool:
    """Send one notification (``READY=1``, ``STATUS=...``); False when there is no
    manager listening or the datagram could not be sent."""
    env = os.environ if environ is None else environ
    address = _address(env.get("NOTIFY_SOCKET", ""))
    if address is None or not fields:
        return False
    message = "\n".join(f.replace("\n", " ") for f in fields).encode()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(message, address)
    except OSError:
        return False
    return True


class Notifier:
    """What a long-running process tells the manager over its life: ready once,
    status lines, watchdog pings, stopping."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self.environ = dict(os.environ if environ is None else environ)
        self.ready_sent = False
        self.watchdog_interval = _watchdog_interval(self.environ)
        self._last_ping = 0.0

    @property
    def active(self) -> bool:
        return _address(self.environ.get("NOTIFY_SOCKET", "")) is not None

    def send(self, *fields: str) -> bool:
        return self.active and notify(*fields, environ=self.environ)

    def ready(self, status: str = "") -> bool:
        """READY=1 (once), with a status line."""
        if self.ready_sent:
            return False
        self.ready_sent = True
        return self.send("READY=1", *([f"STATUS={status}"] if status else []))

    def cycle(self, status: str = "") -> None:
        """Call after each cycle: READY=1 after the first, then watchdog pings."""
        if not self.ready_sent:
            self.ready(status)
        if self.watchdog_interval is not None:
            now = time.monotonic()
            if now - self._last_ping >= self.watchdog_interval / 2:
                self._last_ping = now
                self.send("WATCHDOG=1")

    def stopping(self, status: str = "") -> bool:
        return self.send("STOPPING=1", *([f"STATUS={status}"] if status else []))


def _watchdog_interval(env: Mapping[str, str]) -> float | None:
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid != str(os.getpid()):
        return None  # meant for another process
    return int(usec) / 1e6


def inherited_sockets(
    environ: MutableMapping[str, str] | None = None, *, unset: bool = True,
) -> dict[str, list[socket.socket]]:
    """The listening sockets the service manager passed, by their names
    (``FileDescriptorName=``; ``unknown`` without one).  Empty when none were
    passed to this process.  UsageError when the variables are malformed.
    """
    env = os.environ if environ is None else environ
    pid, count, names = (env.get(k) for k in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"))
    if unset:
        for key in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
            env.pop(key, None)
    if pid is None or count is None:
        return {}
    if not pid.isdigit() or int(pid) != os.getpid():
        return {}  # inherited from a parent: not ours
    if not count.isdigit() or not 0 <= int(count) <= MAX_LISTEN_FDS:
        raise UsageError(f"LISTEN_FDS: not a number of sockets: {count[:20]!r}")
    n = int(count)
    labels = names.split(":") if names else ["unknown"] * n
    if len(labels) != n:
        raise UsageError(f"LISTEN_FDNAMES: {len(labels)} names for {n} sockets: "
                         f"{(names or '')[:80]!r}")
    out: dict[str, list[socket.socket]] = {}
    for i, label in enumerate(labels):
        fd = LISTEN_FDS_START + i
        try:
            os.set_inheritable(fd, False)
            sock = socket.socket(fileno=fd)  # family, type and protocol from the fd
        except OSError as exc:
            raise UsageError(f"LISTEN_FDS: descriptor {fd} ({label}) is not a socket: "
                             f"{exc.strerror}") from None
        out.setdefault(label or "unknown", []).append(sock)
    return out


def pick(inherited: Mapping[str, list[socket.socket]], name: str,
         port: int | None = None) -> list[socket.socket]:
    """The inherited sockets for one role: those named `name` (``FileDescriptorName=``,
    e.g. ``ipp``, ``lpd``), else those whose local port is `port`.

    One socket unit gives all its sockets one name, so a unit that listens on both
    the IPP and the LPD port is told apart by port; two units can use names.
    """
    if inherited.get(name):
        return list(inherited[name])
    if port is None:
        return []
    out = []
    for socks in inherited.values():
        for sock in socks:
            with contextlib.suppress(OSError, TypeError, IndexError):
                address = sock.getsockname()
                if isinstance(address, tuple) and address[1] == port:
                    out.append(sock)
    return out


def close_all(sockets: Mapping[str, list[socket.socket]]) -> None:
    for socks in sockets.values():
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.close()
