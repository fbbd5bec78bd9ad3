"""Who may do what on a shared disk: the spool's modes and owners, operators,
and reading spooled data without following anything a user planted.

Owns:

* `check_spool(spool)` -- the modes and owners that make a spool safe on a
  multi-user share (docs/SECURITY.md), as a list of `Problem`s.  A server
  calls `startup_check` when it starts serving a spool: fatal problems stop
  it, the others are logged.
* `is_operator(user, operators)` -- OPERATORS lists user names and
  ``@group``s (the members of a Unix group, primary or supplementary).
* `user_groups(user)` -- a user's group names (for ``QUOTA @group``).
* `open_job_folder` / `read_job_file` -- how a server opens a job's data:
  the folder with O_DIRECTORY|O_NOFOLLOW, each file relative to it with
  O_NOFOLLOW|O_NONBLOCK, only regular files with one link, owned by the
  job's owner or the service account (or root).

The service account is the owner of the spool's root folder; the spool group
is its group.  Stations are not members of the spool group.
"""

from __future__ import annotations

import errno
import grp
import os
import pwd
import stat
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from printnet.errors import RequestInvalid, SpoolError, UsageError
from printnet.spool.layout import DIRS, DROP_MODE, PRIVATE_MODE, Spool

DROP_DIRS: Final = frozenset(name for name, mode in DIRS.items() if mode == DROP_MODE)
PRIVATE_DIRS: Final = frozenset(name for name, mode in DIRS.items() if mode == PRIVATE_MODE)


@dataclass(frozen=True)
class Problem:
    """Something unsafe (fatal) or doubtful about a spool's modes and owners."""

    path: Path
    message: str
    fatal: bool = True

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def _name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def check_spool(spool: Spool, *, euid: int | None = None) -> list[Problem]:
    """What is wrong with `spool`'s modes and owners for a server running as `euid`.

    Fatal: anything that lets a user other than the service account change
    what the servers trust (received/, master/, locks/, servers/, done/,
    rejected/, log/, the root, VERSION), remove or read what other users
    dropped (tmp/, new/, data/ without the sticky bit or listable by others),
    or a server running as neither the service account nor root.  Doubtful:
    drop folders without setgid or not writable by others, private folders
    writable by the spool group, a root server on a spool owned by another
    account (files it creates will be root's).
    """
    euid = os.geteuid() if euid is None else euid
    problems: list[Problem] = []
    try:
        root_st = os.stat(spool.root)  # the spool's own path may be a symbolic link
    except OSError as exc:
        return [Problem(spool.root, f"cannot be examined: {exc.strerror}")]
    service = root_st.st_uid
    if euid not in (service, 0):
        problems.append(Problem(spool.root, f"belongs to {_name(service)}, but this server "
                                f"runs as {_name(euid)}: run it as {_name(service)}"))
    elif euid == 0 and service != 0:
        problems.append(Problem(spool.root, f"belongs to {_name(service)}, but this server "
                                "runs as root: files it writes will be root's", fatal=False))
    problems += _check_private(spool.root, root_st, service)
    for name in sorted(DIRS):
        path = spool.root / name
        try:
            st = os.lstat(path)
        except OSError as exc:
            problems.append(Problem(path, f"cannot be examined: {exc.strerror}"))
            continue
        if not stat.S_ISDIR(st.st_mode):
            problems.append(Problem(path, "is not a folder (a symbolic link?)"))
            continue
        if name in DROP_DIRS:
            problems += _check_drop(path, st, service, euid)
        else:
            problems += _check_private(path, st, service)
    for path in (spool.root / "VERSION", spool.accounting, spool.events):
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        except OSError as exc:
            problems.append(Problem(path, f"cannot be examined: {exc.strerror}"))
            continue
        if not stat.S_ISREG(st.st_mode):
            problems.append(Problem(path, "is not a regular file"))
        elif st.st_mode & 0o002 or st.st_uid not in (service, 0):
            problems.append(Problem(path, f"may be changed by others (owner "
                                    f"{_name(st.st_uid)}, mode {_mode(st)})"))
    return problems


def _mode(st: os.stat_result) -> str:
    return f"{stat.S_IMODE(st.st_mode):04o}"


def _check_private(path: Path, st: os.stat_result, service: int) -> list[Problem]:
    out = []
    if st.st_uid not in (service, 0):
        out.append(Problem(path, f"belongs to {_name(st.st_uid)}, not the service account "
                           f"{_name(service)}"))
    if st.st_mode & 0o002:
        out.append(Problem(path, f"is writable by everyone (mode {_mode(st)}); "
                           f"should be {PRIVATE_MODE:04o}"))
    elif st.st_mode & 0o020:
        out.append(Problem(path, f"is writable by its group (mode {_mode(st)}); "
                           f"should be {PRIVATE_MODE:04o}", fatal=False))
    return out


def _check_drop(path: Path, st: os.stat_result, service: int, euid: int) -> list[Problem]:
    out = []
    if st.st_uid not in (service, 0):
        out.append(Problem(path, f"belongs to {_name(st.st_uid)}, not the service account "
                           f"{_name(service)}"))
    if not st.st_mode & stat.S_ISVTX:
        out.append(Problem(path, f"lacks the sticky bit (mode {_mode(st)}): users could "
                           f"remove each other's files; should be {DROP_MODE:04o}"))
    if st.st_mode & 0o004:
        out.append(Problem(path, f"can be listed by everyone (mode {_mode(st)}); "
                           f"should be {DROP_MODE:04o}"))
    if st.st_mode & 0o003 != 0o003:
        out.append(Problem(path, f"stations cannot drop files in (mode {_mode(st)}); "
                           f"should be {DROP_MODE:04o}", fatal=False))
    if not st.st_mode & stat.S_ISGID and euid != 0:
        out.append(Problem(path, f"lacks setgid (mode {_mode(st)}): what stations drop "
                           "will not be readable by this server; should be "
                           f"{DROP_MODE:04o}", fatal=False))
    return out


# Filesystem types on which the spool is shared between hosts: users are then told
# apart by the numeric uid each client sends (docs/SECURITY.md, "Across hosts").
NETWORK_FS: Final = ("nfs", "nfs4", "cifs", "smb3", "smbfs", "ceph", "9p", "afs", "lustre",
                     "gpfs", "fuse.glusterfs", "fuse.sshfs", "fuse.cephfs", "glusterfs")


def mount_type(path: Path) -> str:
    """The filesystem type of the mount holding `path` (from /proc/self/mountinfo)."""
    try:
        target = os.path.realpath(path)
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return ""
    best, kind = "", ""
    for line in lines:
        fields = line.split()
        if " - " not in line or len(fields) < 5:
            continue
        point = fields[4].replace("\\040", " ")
        after = line.split(" - ", 1)[1].split()
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best) and after:
            best, kind = point, after[0]
    return kind


def share_problems(spool: Spool) -> list[Problem]:
    """What this process can tell about the share itself, by trying it.

    A server running as root on a share that squashes root (NFS root_squash,
    Gluster server.root-squash) creates files as an anonymous user and cannot
    write its own folders: fatal, run it as the service account.  On a network
    filesystem that does not squash root, root on any host that mounts it can do
    what the service account can; and on every network filesystem identity is
    the numeric uid, so each user must have the same uid on every host: both
    doubtful (logged).
    """
    out: list[Problem] = []
    kind = mount_type(spool.root)
    shared = kind in NETWORK_FS or kind.startswith("fuse.")
    if shared:
        out.append(Problem(spool.root, f"is on a shared (network or FUSE) filesystem ({kind}): "
                           "users are told "
                           "apart by numeric uid, so every host must give each user (and the "
                           "service account) the same uid", fatal=False))
    if os.geteuid() != 0:
        return out
    probe = spool.tmp / f".probe-root-{os.getpid()}-{time.monotonic_ns()}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except PermissionError:
        owner: int | None = None  # root is never refused a drop folder unless squashed
    except OSError:
        return out  # not a verdict on squashing (a full or failing disk: reported elsewhere)
    else:
        try:
            owner = os.fstat(fd).st_uid
        finally:
            os.close(fd)
            try:
                os.unlink(probe)
            except OSError:
                pass
    if owner != 0:
        who = "is refused" if owner is None else f"belongs to {_name(owner)}"
        out.append(Problem(spool.root, f"squashes root (a file this server creates as root "
                           f"{who}): a root server cannot write its own folders here; run it "
                           f"as the service account {_name(os.stat(spool.root).st_uid)}"))
    elif shared:
        out.append(Problem(spool.root, "does not squash root: root on any host that mounts "
                           "this share can do anything the service account can", fatal=False))
    return out


def startup_check(spool: Spool, log: object = None) -> list[Problem]:
    """Raise SpoolError if `spool` is unsafe to serve; return the doubtful problems."""
    problems = check_spool(spool)
    problems += share_problems(spool)
    fatal = [p for p in problems if p.fatal]
    if fatal:
        listed = "; ".join(str(p) for p in fatal[:6])
        more = f" (and {len(fatal) - 6} more)" if len(fatal) > 6 else ""
        raise SpoolError(f"{spool.root} is not safe to serve: {listed}{more}. Repair with "
                         "`printnet init` (as root: --owner/--group), see docs/SECURITY.md")
    return problems


# ---------------------------------------------------------------------------
# Operators and groups


def user_groups(user: str) -> frozenset[str]:
    """The names of the groups `user` belongs to (primary and supplementary)."""
    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        return frozenset()
    try:
        gids = os.getgrouplist(user, pw.pw_gid)
    except OSError:
        gids = [pw.pw_gid]
    names = set()
    for gid in gids:
        try:
            names.add(grp.getgrgid(gid).gr_name)
        except KeyError:
            continue
    return frozenset(names)


def is_operator(user: str, operators: Iterable[str]) -> bool:
    """Whether `user` is named in OPERATORS, directly or through an @group."""
    groups: frozenset[str] | None = None
    for entry in operators:
        if entry.startswith("@"):
            if groups is None:
                groups = user_groups(user)
            if entry[1:] in groups:
                return True
        elif entry == user:
            return True
    return False


# ---------------------------------------------------------------------------
# Reading a job's data


class UnsafeData(SpoolError):
    """A job's data folder or file is not what the station wrote (link, owner, type)."""


def _uid_of(user: str) -> int | None:
    try:
        return pwd.getpwnam(user).pw_uid
    except KeyError:
        if user.startswith("uid") and user[3:].isdigit():
            return int(user[3:])
        return None


def open_job_folder(spool: Spool, job_id: str) -> int:
    """An fd of data/<job_id>, opened without following a symlink (UnsafeData)."""
    try:
        return os.open(spool.job_data(job_id),
                       os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise UnsafeData("the job's data folder is not a folder (a symbolic link?)") from None
        raise


def read_job_file(folder_fd: int, name: str, size: int, *, user: str | None = None) -> bytes:
    """Read at most `size` + 1 bytes of one spooled file, relative to `folder_fd`.

    Refuses (UnsafeData) symbolic links, anything but a regular file, a file
    with other hard links, and a file owned by neither `user` (the job's
    owner), the service account (our euid) nor root.
    """
    if not name or "/" in name or name in (".", ".."):
        raise UnsafeData(f"bad data file name {name!r}")
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=folder_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafeData(f"data file {name} is a symbolic link") from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeData(f"data file {name} is not a regular file")
        if st.st_nlink != 1:
            raise UnsafeData(f"data file {name} has other links")
        allowed = {0, os.geteuid()}
        if user is not None:
            uid = _uid_of(user)
            if uid is not None:
                allowed.add(uid)
            if st.st_uid not in allowed:
                raise UnsafeData(f"data file {name} belongs to {_name(st.st_uid)}, "
                                 f"not {user}")
        chunks = []
        left = size + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------
# Files named by reference (printnet request --ref)


@dataclass(frozen=True)
class Reader:
    """Whose read permission a referenced file is judged by: the job's user."""

    name: str
    uid: int
    gids: frozenset[int]

    @classmethod
    def of(cls, user: str) -> Reader:
        try:
            pw = pwd.getpwnam(user)
        except KeyError:
            raise UnsafeData(f"no user {user!r} on this host: cannot judge what it may "
                             "read") from None
        try:
            gids = os.getgrouplist(user, pw.pw_gid)
        except OSError:
            gids = [pw.pw_gid]
        return cls(user, pw.pw_uid, frozenset(gids))

    def may(self, st: os.stat_result, bits: int) -> bool:
        """POSIX permission check of `bits` (4 read, 1 search) for this user.

        Owner class if the user owns it, else group class if the file's group is
        one of the user's groups, else other (the classes do not add up, as in
        the kernel).  Root may read anything and search any folder with an x bit."""
        mode = st.st_mode
        if self.uid == 0:
            return bits == 4 or bool(mode & 0o111) or not stat.S_ISREG(mode)
        if st.st_uid == self.uid:
            return mode & (bits << 6) == bits << 6
        if st.st_gid in self.gids:
            return mode & (bits << 3) == bits << 3
        return mode & bits == bits


_PATH_FLAGS: Final = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _no_acl(fd: int, what: str) -> None:
    # POSIX ACLs could grant or deny beyond the mode bits; printnet judges the mode
    # bits only, so a file or folder with an access ACL is refused.
    try:
        names = os.listxattr(fd)
    except OSError:
        return  # no extended attributes on this filesystem (or fd kind): no ACL
    if "system.posix_acl_access" in names:
        raise UnsafeData(f"{what} has an access ACL (printnet judges mode bits only)")


def read_ref(path: str, reader: Reader, *, size: int, mtime_ns: int | None,
             sha256: str) -> bytes:
    """The bytes of a file a request names, read only if `reader` could read it.

    The rule (docs/SECURITY.md, Files named by reference): the path is walked
    from ``/`` one component at a time with ``openat(O_PATH|O_NOFOLLOW)``, so no
    symbolic link is followed anywhere and each folder is the one that was
    checked (a folder swapped for a link after the check is never entered: the
    walk holds descriptors, not names); every folder must let the user search
    it; the file must be a regular file the user may read, with one link or
    owned by the user (a hard link cannot bring in a file from a folder the
    user cannot reach), with the recorded size and mtime, and the sha256 of
    exactly the bytes read (into memory) must match the request.  The server's
    own rights apply too: it opens nothing it could not.  UnsafeData with the
    reason otherwise.
    """
    import hashlib

    from printnet.model import valid_ref

    if not valid_ref(path):
        raise UnsafeData(f"{path!r} is not an absolute, normalized path")
    parts = path[1:].split("/")
    fds: list[int] = []
    try:
        fd = os.open("/", _PATH_FLAGS)
        fds.append(fd)
        where = ""
        for part in parts[:-1]:
            st = os.fstat(fd)
            if not reader.may(st, 1):
                raise UnsafeData(f"{reader.name} may not enter {where or '/'}")
            _no_acl_path(fd, where or "/")
            where += "/" + part
            try:
                fd = os.open(part, _PATH_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise UnsafeData(f"{where} is a symbolic link or not a folder") from None
                raise UnsafeData(f"{where}: {exc.strerror}") from None
            fds.append(fd)
        st = os.fstat(fd)
        if not reader.may(st, 1):
            raise UnsafeData(f"{reader.name} may not enter {where or '/'}")
        _no_acl_path(fd, where or "/")
        try:
            ffd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                          dir_fd=fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise UnsafeData(f"{path} is a symbolic link") from None
            raise UnsafeData(f"{path}: {exc.strerror}") from None
        fds.append(ffd)
        st = os.fstat(ffd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeData(f"{path} is not a regular file")
        if not reader.may(st, 4):
            raise UnsafeData(f"{reader.name} may not read {path}")
        if st.st_nlink != 1 and st.st_uid != reader.uid:
            raise UnsafeData(f"{path} has other hard links and is not {reader.name}'s")
        _no_acl(ffd, path)
        if st.st_size != size or (mtime_ns is not None and st.st_mtime_ns != mtime_ns):
            raise UnsafeData(f"{path} changed since it was submitted (size or mtime)")
        digest = hashlib.sha256()
        chunks = []
        left = size + 1
        while left > 0:
            chunk = os.read(ffd, min(left, 1 << 20))
            if not chunk:
                break
            digest.update(chunk)
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
        if len(data) != size or digest.hexdigest() != sha256:
            raise UnsafeData(f"{path} changed since it was submitted (sha256)")
        return data
    finally:
        for f in fds:
            os.close(f)


def _no_acl_path(fd: int, what: str) -> None:
    # An O_PATH descriptor has no xattr calls of its own: ask through /proc.
    try:
        names = os.listxattr(f"/proc/self/fd/{fd}")
    except OSError:
        return
    if "system.posix_acl_access" in names:
        raise UnsafeData(f"{what} has an access ACL (printnet judges mode bits only)")


# ---------------------------------------------------------------------------
# Password guessing


GUESS_LIMIT: Final = 5  # wrong queue passwords a user may send per printer ...
GUESS_WINDOW: Final = 600.0  # ... within this many seconds, before being locked out


class GuessGuard:
    """Counts wrong queue passwords per (user, printer); too many locks the pair out.

    While locked out, every request of that user for that printer is rejected
    without its proof being checked, so guessing online gains nothing: at most
    `GUESS_LIMIT` guesses per `GUESS_WINDOW` (each also costs the station a
    full scrypt).  Per server process, in memory.
    """

    def __init__(self, limit: int = GUESS_LIMIT, window: float = GUESS_WINDOW,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self._fails: dict[tuple[str, str], list[float]] = {}

    def _recent(self, key: tuple[str, str]) -> list[float]:
        now = self.clock()
        recent = [t for t in self._fails.get(key, ()) if now - t < self.window]
        if recent:
            self._fails[key] = recent
        else:
            self._fails.pop(key, None)
        return recent

    def check(self, user: str, printer: str) -> None:
        """Raise RequestInvalid while `user` is locked out of `printer`."""
        if len(self._recent((user, printer))) >= self.limit:
            raise RequestInvalid("password", f"too many wrong passwords for {printer}; "
                                 f"try again in {self.window / 60:g} minutes")

    def failed(self, user: str, printer: str) -> None:
        key = (user, printer)
        self._fails[key] = [*self._recent(key), self.clock()]


PASSWORD_GUESSES: Final = GuessGuard()


# ---------------------------------------------------------------------------
# Accounts (printnet init --owner/--group)


def account_ids(owner: str | None, group: str | None) -> tuple[int | None, int | None]:
    """(uid, gid) of the service account and spool group named; UsageError if unknown
    or if someone other than root tries to give files away."""
    if (owner or group) and os.geteuid() != 0:
        raise UsageError("only root can give the spool to a service account or group "
                         "(--owner/--group)")
    uid = gid = None
    if owner:
        try:
            pw = pwd.getpwnam(owner)
        except KeyError:
            raise UsageError(f"no user {owner!r}") from None
        uid = pw.pw_uid
    if group:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            raise UsageError(f"no group {group!r}") from None
    return uid, gid


def give(path: Path, uid: int | None, gid: int | None, *, recursive: bool = False) -> None:
    """chown `path` (and with `recursive`, what is under it) without following links."""
    paths = [path]
    if recursive:
        for dirpath, dirnames, filenames in os.walk(path):
            paths += [Path(dirpath) / n for n in (*dirnames, *filenames)]
    for p in paths:
        os.lchown(p, -1 if uid is None else uid, -1 if gid is None else gid)
