"""The local control channel of a running print server: one unix socket per server.

Owns where the socket lives, its permissions, and its tiny protocol; what a
request *means* is the handler's business (`printnet.console.gate.Console`,
which the CLI wires in).  Server names are case-insensitive here too: the
socket is named after the upper-cased name (`safe_name`).

Where (host-local, never on the shared disk)::

    $PRINTNET_RUNTIME_DIR/<NAME>.sock        when that variable is set (tests)
    $XDG_RUNTIME_DIR/printnet/<NAME>.sock    else, when XDG_RUNTIME_DIR is set
    /tmp/printnet-<uid>/<NAME>.sock          else

The folder is created mode 0700 and must be a real folder (not a symlink)
owned by the server's user with no group or other access; otherwise the
server refuses to use it (someone else could have planted it in /tmp).  The
socket is made 0600 right after bind (the 0700 folder already keeps others
out meanwhile).  On top of that every connection's peer credentials
(SO_PEERCRED) are checked: only the server's own user and root are served.
A client refuses a folder that is not owned by itself or root, so it never
sends a password to a socket someone else planted.

Protocol: the client connects, sends one JSON object on one line (at most
`MAX_LINE` bytes), the server answers with one JSON object on one line and
closes.  The answer may be long (`CH --json` of 100,000 jobs is tens of MB):
the client reads it in chunks as it streams in, up to `MAX_REPLY` bytes.
One request per connection.  The handler runs on a connection thread
(at most `MAX_CLIENTS` at a time); it decides which work goes to the server
thread (`RunningServer.between_cycles`).

A server that finds a live socket of the same name (another server of that
name on this host) logs it and runs without a control channel rather than
fail: the shared-disk lease is what keeps two servers of one name apart.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import stat
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from printnet.errors import PermissionDenied, PrintnetError

MAX_LINE: Final = 1 << 20  # bytes of one request line
MAX_REPLY: Final = 1 << 30  # bytes of one reply line (a whole queue as JSON fits)
MAX_CLIENTS: Final = 8  # connections served at once
READ_TIMEOUT: Final = 30.0  # seconds a client may take to send its request
REPLY_TIMEOUT: Final = 180.0  # seconds a client waits for the answer
SUFFIX: Final = ".sock"


@dataclass(frozen=True)
class Peer:
    """Who is on the other end of a connection (SO_PEERCRED)."""

    pid: int
    uid: int
    gid: int

    def describe(self) -> str:
        return f"uid {self.uid} pid {self.pid}"


Handler = Callable[[dict[str, Any], Peer], dict[str, Any]]


# ---------------------------------------------------------------------------
# Where


def runtime_dir() -> Path:
    """The folder of this user's server sockets (not created here).

    Defined once, on the engine side (`printnet.server.presence.runtime_dir`: the
    engine may not import this module).  Imported when called: importing the server
    package costs a console command ~150 ms it otherwise does not spend.
    """
    from printnet.server.presence import runtime_dir as engine_runtime_dir

    return engine_runtime_dir()


def safe_name(server: str) -> str:
    """The socket's name for a server name as a user typed it.

    Server names are case-insensitive (a server started with `--name barcon` runs
    as BARCON), so the name is upper-cased like every printnet name.
    """
    canonical = server.strip().upper()
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in canonical)


def socket_path(server: str, folder: Path | None = None) -> Path:
    return (folder or runtime_dir()) / f"{safe_name(server)}{SUFFIX}"


def _check_folder(folder: Path, *, owners: set[int], create: bool) -> None:
    if create:
        try:
            folder.mkdir(mode=0o700, parents=folder.parent != folder)
        except FileExistsError:
            pass
        except OSError as exc:
            raise PrintnetError(f"{folder}: cannot create: {exc.strerror}") from None
    try:
        st = os.lstat(folder)
    except FileNotFoundError:
        hint = others_servers(folder)
        raise PrintnetError(hint or f"no print server is running on this host ({folder} "
                            "does not exist)") from None
    except OSError as exc:
        raise PrintnetError(f"{folder}: {exc.strerror}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise PermissionDenied(f"{folder}: not a folder (refusing a planted control folder)")
    if st.st_uid not in owners:
        raise PermissionDenied(f"{folder}: owned by {_user(st.st_uid)}, not by you "
                               f"(uid {os.geteuid()}): refusing a planted control folder; "
                               f"if it is {_user(st.st_uid)}'s print server, its console "
                               "is for that user only")
    if create and stat.S_IMODE(st.st_mode) & 0o077:
        raise PermissionDenied(f"{folder}: mode {stat.S_IMODE(st.st_mode):o} lets others in; "
                               "it must be 0700")
    if not create and stat.S_IMODE(st.st_mode) & 0o022:
        raise PermissionDenied(f"{folder}: writable by others (refusing it)")


def _user(uid: int) -> str:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def others_servers(folder: Path | None = None) -> str:
    """Why this user may see no server although one runs: another user's console
    folder (the given or default one, /tmp/printnet-*, /run/user/*/printnet).
    A sentence, or "" if there is none."""
    me = os.geteuid()
    candidates = [folder or runtime_dir()]
    with contextlib.suppress(OSError):
        candidates += sorted(Path("/tmp").glob("printnet-*"))
    with contextlib.suppress(OSError):
        candidates += sorted(Path("/run/user").glob("*/printnet"))
    owners: dict[int, Path] = {}
    for path in candidates:
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode) and st.st_uid != me:
            owners.setdefault(st.st_uid, path)
    if not owners:
        return ""
    users = ", ".join(f"user {_user(uid)} ({path})" for uid, path in owners.items())
    return (f"a print server may run here as {users}, but its console is for that user "
            "only: you are not allowed to reach it (run `printnet console` as "
            "that user, e.g. with sudo -u)")


def _alive(path: Path) -> bool:
    """Whether something accepts connections on the socket `path`."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(str(path))
    except OSError:
        return False
    finally:
        probe.close()
    return True


def running_servers(folder: Path | None = None) -> list[str]:
    """Names (as in the socket names) of the servers answering on this host."""
    folder = folder or runtime_dir()
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return []
    return [n[: -len(SUFFIX)] for n in names
            if n.endswith(SUFFIX) and _alive(folder / n)]


# ---------------------------------------------------------------------------
# Server side


class ControlServer:
    """Listens on a server's socket and answers requests with `handler`."""

    def __init__(self, name: str, handler: Handler, *,
                 on_event: Callable[[str], None] | None = None) -> None:
        self.name = name
        self.handler = handler
        self.on_event = on_event or (lambda text: None)
        self.path = socket_path(name)
        self._sock: socket.socket | None = None
        self._inode: int | None = None
        self._slots = threading.BoundedSemaphore(MAX_CLIENTS)
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()

    def start(self) -> bool:
        """Bind and serve; False (with an event) if another server of this name answers."""
        folder = self.path.parent
        _check_folder(folder, owners={os.geteuid()}, create=True)
        if os.path.lexists(self.path):
            if _alive(self.path):
                self.on_event(f"console socket {self.path} is answered by another server "
                              f"named {self.name} on this host; running without one")
                return False
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)  # a dead server's leftover
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(str(self.path))
            os.chmod(self.path, 0o600)
            self._inode = os.lstat(self.path).st_ino
            sock.listen(16)
        except OSError as exc:
            sock.close()
            if exc.errno == errno.EADDRINUSE:  # RACE: a namesake bound it just now
                self.on_event(f"console socket {self.path} is in use; running without one")
                return False
            raise PrintnetError(f"{self.path}: cannot listen: {exc.strerror}") from None
        self._sock = sock
        self._thread = threading.Thread(target=self._accept, name="console-socket",
                                        daemon=True)
        self._thread.start()
        return True

    def stop(self) -> None:
        self._closing.set()
        sock, self._sock = self._sock, None
        if sock is None:
            return
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()
        try:
            # Remove the socket only if it is still ours (not a successor's).
            if os.lstat(self.path).st_ino == self._inode:
                os.unlink(self.path)
        except OSError:
            pass
        if self._thread is not None:
            self._thread.join(2.0)

    def _accept(self) -> None:
        while not self._closing.is_set():
            sock = self._sock
            if sock is None:
                return
            try:
                conn, _ = sock.accept()
            except OSError:
                if self._closing.is_set():
                    return
                continue
            if not self._slots.acquire(blocking=False):
                self._answer(conn, {"ok": False, "error": "the console is busy; try again",
                                    "code": 1})
                conn.close()
                continue
            threading.Thread(target=self._serve, args=(conn,), name="console-client",
                             daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            peer = _peer(conn)
            if peer.uid not in (0, os.geteuid()):
                self._answer(conn, {"ok": False, "code": 3, "error":
                                    f"uid {peer.uid} may not use this server's console"})
                return
            conn.settimeout(READ_TIMEOUT)
            try:
                request = json.loads(_read_line(conn))
            except (OSError, ValueError) as exc:
                self._answer(conn, {"ok": False, "code": 2, "error": f"bad request: {exc}"})
                return
            if not isinstance(request, dict):
                self._answer(conn, {"ok": False, "code": 2, "error": "bad request"})
                return
            try:
                reply = self.handler(request, peer)
            except Exception as exc:  # the console must survive any one command
                reply = {"ok": False, "code": 1, "error": f"internal error: {exc!r}"}
                self.on_event(f"console: internal error: {exc!r}")
            conn.settimeout(REPLY_TIMEOUT)
            self._answer(conn, reply)
        finally:
            conn.close()
            self._slots.release()

    @staticmethod
    def _answer(conn: socket.socket, reply: dict[str, Any]) -> None:
        with contextlib.suppress(OSError):
            conn.sendall(json.dumps(reply, ensure_ascii=False).encode() + b"\n")


def _peer(conn: socket.socket) -> Peer:
    raw = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", raw)
    return Peer(pid, uid, gid)


def _read_line(conn: socket.socket, limit: int = MAX_LINE) -> bytes:
    """One line (without its newline) of at most `limit` bytes; ValueError if longer."""
    buf = bytearray()
    while True:
        chunk = conn.recv(1 << 20)
        if not chunk:
            return bytes(buf)
        end = chunk.find(b"\n")  # only the new chunk is searched: linear in the size
        if end >= 0:
            buf += chunk[:end]
        else:
            buf += chunk
        if len(buf) > limit:
            raise ValueError(f"longer than {limit} bytes")
        if end >= 0:
            return bytes(buf)


# ---------------------------------------------------------------------------
# Client side


def call(server: str, request: dict[str, Any], *, timeout: float = REPLY_TIMEOUT,
         folder: Path | None = None) -> dict[str, Any]:
    """Send one request to the running server `server` on this host; its reply."""
    server = server.strip().upper()  # names are case-insensitive: barcon is BARCON
    path = socket_path(server, folder)
    _check_folder(path.parent, owners={os.geteuid(), 0}, create=False)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        try:
            sock.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError):
            running = running_servers(path.parent)
            hint = f" (running: {', '.join(running)})" if running else ""
            raise PrintnetError(f"no print server named {server} is running on this "
                                f"host{hint}") from None
        except OSError as exc:
            raise PrintnetError(f"{path}: {exc.strerror}") from None
        try:
            sock.sendall(json.dumps(request, ensure_ascii=False).encode() + b"\n")
            line = _read_line(sock, MAX_REPLY)
        except ValueError as exc:
            raise PrintnetError(f"server {server}: answer too long ({exc}); narrow it "
                                "down (CH takes -P, -u, -s and -n)") from None
        except TimeoutError:
            raise PrintnetError(f"server {server} did not answer in {timeout:g} s") from None
        except OSError as exc:
            raise PrintnetError(f"server {server}: {exc.strerror or exc}") from None
    finally:
        sock.close()
    try:
        reply = json.loads(line)
    except ValueError:
        raise PrintnetError(f"server {server} closed the connection without an "
                            "answer (stopping?)") from None
    if not isinstance(reply, dict):
        raise PrintnetError(f"server {server} sent a malformed answer")
    return reply
