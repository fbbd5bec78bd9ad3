"""The filesystem primitives, once: atomic publishing (Maildir's discipline), fsync,
put-if-absent, ESTALE retry, unique names, and the errno classification.

Every module that writes files (the spool's stores, submit, records, the lock, the
configuration editor) uses these; none writes its own temp-fsync-rename loop.

Readers must never see a half-written file, and nothing published is edited in
place:

* `write_atomic(path, data)`: write a uniquely named temp file beside `path`,
  fsync it, `rename()` it over `path`, fsync the directory.
* `write_new(path, data)`: the same, but put-if-absent: the temp file is
  `link()`ed to `path`, which fails with `FileExistsError` if `path` exists.
  This is the fencing primitive: two writers of the same name cannot both win.
* Below them, for callers that publish in their own steps (a batch of requests,
  a lock's owner record, a configuration file that keeps its owner):
  `write_temp` (a complete temp file, raw `OSError`s), `write_all`, `fsync_file`,
  `fsync_dir`, `retry_estale`, `unlink_quietly`.

NFS can report a retransmitted `link()` as EEXIST after it succeeded; after an
EEXIST we compare inodes to learn whether we actually won (docs/LOCKS.md,
"Measured facts").
Temp names start with a dot so scans of a folder skip them; `unique_name()`
makes them unique across hosts (time, host, pid, counter, random).
"""

from __future__ import annotations

import errno
import itertools
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final, TypeVar

from printnet.errors import SpoolError, SpoolFull

T = TypeVar("T")

_counter = itertools.count()
# os.uname(), not socket.gethostname(): the same name on POSIX, without importing
# socket (whose enums cost more start-up than `printnet status` does work).
HOST = os.uname().nodename.split(".")[0] or "host"


def unique_name(prefix: str = ".tmp") -> str:
    """A name no other process on any host will make: prefix.time.host.pid.counter.rand."""
    return (
        f"{prefix}.{time.time_ns()}.{HOST}.{os.getpid()}.{next(_counter)}.{_salt()}"
    )


_salts: dict[int, str] = {}


def _salt() -> str:
    """Random per process (per pid: a forked child draws its own): with the counter,
    as unique as a fresh random part per name, without a getrandom() call per name
    (a busy server makes two names per job)."""
    pid = os.getpid()
    salt = _salts.get(pid)
    if salt is None:
        salt = _salts[pid] = os.urandom(3).hex()
    return salt


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except PermissionError:
        # A drop folder (tmp/, new/, data/ of a multi-user spool) that a station may
        # write but not read cannot be opened to fsync: make its entries durable
        # through the whole filesystem instead (syncfs on a local disk, else sync).
        if not sync_filesystem(path.parent):
            os.sync()
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        # Some filesystems refuse fsync on a folder (EINVAL): nothing to wait for there.
        # Any other failure (EIO) means its entries may not be durable: the caller must
        # not go on as if they were (found by tests/test_eio.py: a station printed the
        # id of a job whose rename into new/ a power cut then lost).
        if exc.errno not in NO_DIR_FSYNC:
            raise
    finally:
        os.close(fd)


NO_DIR_FSYNC: Final = frozenset({errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS})


# Filesystems on a local disk, where one syncfs() makes everything written so far
# durable.  Network and FUSE filesystems are not trusted with it: fsync each file.
LOCAL_DISK_FS = frozenset({"ext2", "ext3", "ext4", "xfs", "btrfs", "f2fs", "jfs", "tmpfs"})
_fs_types: dict[int, str] = {}


def fs_type(path: Path) -> str:
    """The filesystem type of the mount holding `path` ("" if unknown); cached per device."""
    try:
        dev = os.stat(path).st_dev
    except OSError:
        return ""
    if dev not in _fs_types:
        want = f"{os.major(dev)}:{os.minor(dev)}"
        found = ""
        try:
            with open("/proc/self/mountinfo") as fh:
                for line in fh:
                    fields = line.split()
                    if len(fields) > 4 and fields[2] == want and " - " in line:
                        found = line.split(" - ", 1)[1].split()[0]
        except OSError:
            pass
        _fs_types[dev] = found
    return _fs_types[dev]


def sync_filesystem(path: Path) -> bool:
    """syncfs(2) on the local-disk filesystem holding `path`; False if not done.

    One syncfs makes every file and folder written on that filesystem durable: a
    batch of thousands of small files costs one journal commit instead of one
    fsync each.  Returns False (the caller fsyncs file by file) on network or
    FUSE filesystems and wherever syncfs is unavailable.
    """
    if fs_type(path) not in LOCAL_DISK_FS:
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        syncfs = libc.syncfs
    except (OSError, AttributeError):
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        if syncfs(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), str(path))
    finally:
        os.close(fd)
    return True


def write_all(fd: int, data: bytes) -> None:
    """Write all of `data` to `fd`.  A nearly full disk takes part of a write: loop
    (the rest raises ENOSPC), so a caller never publishes half a file."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def fsync_file(path: Path) -> None:
    """fsync a file written earlier (by name; raw OSError)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_temp(directory: Path, data: bytes, mode: int, *, sync: bool = True,
               prefix: str = ".tmp", exact_mode: bool = False,
               owner: tuple[int, int] | None = None) -> Path:
    """A complete, uniquely named temp file in `directory` holding `data`; raw OSError.

    Its mode is `mode` less the umask, or exactly `mode` with `exact_mode` (created
    0600 first, so it is never more open than asked for); `owner` (uid, gid) is
    given to it where permitted.  fsynced unless `sync` is False (the caller makes
    it durable later, e.g. one syncfs for a batch).  On failure nothing is left.
    """
    tmp = directory / unique_name(prefix)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if exact_mode else mode)
    try:
        write_all(fd, data)
        if owner is not None:
            try:
                os.fchown(fd, *owner)
            except OSError:
                pass
        if exact_mode:
            os.fchmod(fd, mode)  # after fchown, which may clear mode bits
        if sync:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        unlink_quietly(tmp)
        raise
    os.close(fd)
    return tmp


def _write_temp(directory: Path, data: bytes, mode: int, sync: bool) -> Path:
    try:
        return write_temp(directory, data, mode, sync=sync)
    except OSError as exc:
        raise translate(exc, directory) from exc


def write_atomic(path: Path, data: bytes, *, mode: int = 0o644, sync: bool = True,
                 sync_data: bool = False) -> None:
    """Publish `data` at `path`, replacing what was there, atomically.

    `sync=False, sync_data=True`: the data is fsynced before the rename (a power cut
    never leaves the name with empty content), the folder is left to the caller."""
    tmp = _write_temp(path.parent, data, mode, sync or sync_data)
    try:
        os.rename(tmp, path)
    except OSError as exc:
        unlink_quietly(tmp)
        raise translate(exc, path) from exc
    if sync:
        _fsync_published(path)


def _fsync_published(path: Path) -> None:
    try:
        fsync_dir(path.parent)
    except OSError as exc:
        raise translate(exc, path.parent) from exc


def write_new(path: Path, data: bytes, *, mode: int = 0o644, sync: bool = True,
              sync_data: bool = False) -> None:
    """Publish `data` at `path` only if `path` does not exist (raise FileExistsError).
    `sync_data` as for `write_atomic`."""
    tmp = _write_temp(path.parent, data, mode, sync or sync_data)
    try:
        link_new(tmp, path)
    finally:
        # A failing disk may refuse this too: the temp name is garbage either way,
        # and an error here must not hide whether the put itself succeeded.
        unlink_quietly(tmp)
    if sync:
        _fsync_published(path)


def unlink_quietly(path: Path) -> None:
    """Remove `path` if it is there; any error is ignored (garbage, purged later)."""
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass


ESTALE_TRIES: Final = 4


def retry_estale(op: Callable[[], T], path: Path | None = None) -> T:
    """Run `op`, retrying a few times on ESTALE (NFS file handle gone stale).

    With `path`, its folder is listed before each retry: the client's cached
    name -> handle entry for a replaced file can stay stale for about a
    second (measured on GlusterFS with its default caches: without this, every
    open() of a lock name failed for ~1 s after each change, and contenders
    on that client starved); a listing refreshes the cached entries.
    """
    for attempt in range(ESTALE_TRIES - 1):
        try:
            return op()
        except OSError as exc:
            if exc.errno != errno.ESTALE:
                raise
            if path is not None:
                try:
                    os.listdir(path.parent)
                except OSError:
                    pass
            time.sleep(0.005 * (attempt + 1))
    return op()


def link_new(src: Path, dest: Path) -> None:
    """`link(src, dest)`, put-if-absent, immune to NFS's false EEXIST."""
    try:
        os.link(src, dest)
    except FileExistsError:
        # RACE: a retransmitted link() reports EEXIST after succeeding; if dest is
        # our own inode we won.
        try:
            if os.stat(src).st_ino == os.stat(dest).st_ino:
                return
        except OSError:
            pass
        raise
    except OSError as exc:
        raise translate(exc, dest) from exc


def read_bytes(path: Path, limit: int | None = None) -> bytes:
    """Read a file via open()+read (revalidates attributes on NFS close-to-open)."""
    with open(path, "rb") as fh:
        return fh.read() if limit is None else fh.read(limit + 1)


# errno values of a shared disk that fails for now (I/O error, stale handle, cut-off
# or overloaded mount), as opposed to a file that is bad: worth trying again later.
TRANSIENT_ERRNOS: Final = frozenset({
    errno.EIO, errno.ENOTCONN, errno.ESTALE, errno.ETIMEDOUT, errno.EAGAIN, errno.EINTR,
    errno.ENOMEM, errno.ENFILE, errno.EMFILE, errno.ENETDOWN, errno.ENETUNREACH,
    errno.EHOSTUNREACH, errno.ECONNABORTED, errno.ECONNRESET, errno.ENOLINK, errno.EREMOTEIO,
})


def translate(exc: OSError, path: Path) -> SpoolError:
    """An OSError from the shared disk as a printnet error (ENOSPC -> SpoolFull)."""
    import errno

    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return SpoolFull(f"{path}: no space left on the shared disk")
    return SpoolError(f"{path}: {exc.strerror or exc}")
