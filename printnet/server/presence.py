"""Host-local presence: "a server of this name runs on this host", as a kernel lock.

Owns `Presence`: every server process holds an flock(2) on
``<runtime dir>/<NAME>.lock`` for its whole life.  The kernel releases it when
the process ends, however it ends (kill -9 included), so a server of the same
name starting on this host that gets the lock knows that its predecessor is
dead: it takes over the predecessor's lease on each shared disk at once
(`SpoolService.start`) instead of waiting for it to go stale.  A pid check
cannot say that: the dead server's pid may belong to another process by now.
`running(name)` asks the same of another server name (the master lock of a
dead server of this host is broken at once, `SpoolService._break_dead_master`).

The runtime folder is the control channel's (host-local, never the shared
disk): ``$PRINTNET_RUNTIME_DIR``, else ``$XDG_RUNTIME_DIR/printnet``, else
``/tmp/printnet-<uid>``; created 0700 and used only if it is a real folder
owned by this user (one planted by someone else is not trusted: then nobody
is known dead, and leases are waited for as across hosts).  The expiring
locks on the shared disk stay the only truth between hosts.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
from pathlib import Path
from typing import Final

RUNTIME_ENV: Final = "PRINTNET_RUNTIME_DIR"
SUFFIX: Final = ".lock"


def runtime_dir() -> Path:
    """This user's host-local runtime folder (the control channel's too)."""
    env = os.environ.get(RUNTIME_ENV)
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "printnet"
    return Path("/tmp") / f"printnet-{os.geteuid()}"


def lock_path(name: str, folder: Path | None = None) -> Path:
    canonical = name.strip().upper()  # server names are case-insensitive
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in canonical)
    return (folder or runtime_dir()) / f"{safe}{SUFFIX}"


def _trusted(folder: Path) -> bool:
    """The folder exists (made 0700 if not) as a real folder of this user's."""
    with contextlib.suppress(FileExistsError, OSError):
        folder.mkdir(mode=0o700, parents=True)
    try:
        st = os.lstat(folder)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid() \
        and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


class Presence:
    """This process's presence as server `name` on this host."""

    def __init__(self, name: str, folder: Path | None = None) -> None:
        self.path = lock_path(name, folder)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> bool:
        """Take the lock without waiting; False if another live process holds it (or
        the runtime folder is not trusted)."""
        if self._fd is not None:
            return True
        if not _trusted(self.path.parent):
            return False
        # A plain flock(2) (no lock library: importing one cost the server 8 MiB of
        # memory).  Held by the open file, so any thread may release it.
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                         0o600)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            with contextlib.suppress(OSError):
                os.close(fd)


def running(name: str, folder: Path | None = None) -> bool | None:
    """Whether a process holds server `name`'s presence on this host (None: unknown).

    RACE: a server of that name starting this very moment may find its lock
    briefly taken by this probe; it then waits for leases as if across hosts.
    """
    path = lock_path(name, folder)
    if not path.exists() or not _trusted(path.parent):
        return None
    probe = Presence(name, folder)
    if probe.acquire():
        probe.release()
        return False
    return True
