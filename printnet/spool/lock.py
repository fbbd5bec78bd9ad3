"""Expiring cooperative locks in a spool's locks/, across hosts: the I/O shell of
`printnet.lease`.

Print servers on different hosts cooperate only through files, so a lock is a
file, it expires, and nobody compares wall clocks.  See docs/LOCKS.md for the
reasoning and the measurements; this docstring is the protocol.

Files in the lock directory (``<spool>/locks``) for a lock called ``<name>``
(``[A-Za-z0-9_-][A-Za-z0-9._-]*``, at most 100 characters, never containing
``.owner.`` or ``.orphan.``)::

    <name>                  the lock: a hard link to the current owner file
    <name>.owner.<token>    the owner file of generation <token>; its content is
                            a `printnet.lease.LockRecord` (token, host, pid,
                            holder, lease seconds, acquired wall time)
    <name>.orphan.<key>     claim of the one process recovering an orphan (below)
    .<name>.ended.<unique>  an owner file renamed aside by whoever ended it
    .<name>.stolen.<unique> an orphaned lock renamed aside by its recoverer
    .tmp.* .probe.* .<name>.purged.*   temporary names
    .nfs*                   NFS "silly rename" files: always ignored

Acquire (`ExpiringLock.try_acquire`)
    1. Create ``<name>.owner.<token>`` (O_EXCL, fresh random token) holding the
       record; fsync it.
    2. Take the monotonic clock reading ``t0``, then ``link()`` the owner file
       to ``<name>``.  link() is create-if-absent with complete content: success
       means we hold generation <token>, counted from ``t0``; EEXIST means the
       lock is held (remove our owner file).  NFS may answer a retransmitted
       link() with EEXIST after it succeeded: compare inodes (`link_new`).
    The owner file stays open: its fd is how the holder heartbeats.

Heartbeat (`renew`, `start_heartbeat`)
    The holder calls ``os.utime(fd)`` on its owner file about every lease/4.
    The owner file *is* the lock's inode, so the lock's mtime/ctime change for
    every observer (on NFS the server stamps its own time).  A renewal is only
    issued while the lease is still valid on the holder's own monotonic clock
    (more than lease/4 left), then the holder checks that ``<name>`` and
    ``<name>.owner.<token>`` are still its inode; if not, or if the lease ran
    out first (a paused process), the lock is *lost*: `lost` is set and
    `LockLost` raised.  A renewal that took longer than lease/4 does not count;
    the next one is due lease/4 after the issue of the last one that counted,
    so after a slow one it goes out at once (while the lease is still valid).

End a generation (release, and breaking a stale lock)
    1. Win ``rename(<name>.owner.<token>, .<name>.ended.<unique>)``.  Exactly
       one process can; the others get ENOENT and stop here.  (NFS may report
       ENOENT for a retransmitted rename that succeeded: the destination name
       is unique, so if it exists we won.)
    2. Only the winner may remove ``<name>``, and only after checking that
       ``<name>`` is still the renamed file's inode.  Nobody else can remove
       ``<name>`` meanwhile (they would have to win step 1) and nobody can link
       a new ``<name>`` while it exists, so check-then-unlink is safe.
    3. Remove the renamed file; fsync the directory.

Staleness by observation (`LockTable.observe`)
    A contender reads a lock with open() + fstat() + read() (NFS close-to-open
    revalidates attributes on open) and remembers, per name, the signature
    (inode, mtime_ns, ctime_ns, size) with the record's token, and when it
    first saw exactly that on its own monotonic clock.  The table persists
    across calls: a server observes once per cycle.  Stale = unchanged for
    lease + lease/4, with the lease taken from the record.  A stale lock is
    broken with "end a generation" above, then acquired with a normal link().

Orphans (a breaker or releaser died between steps 1 and 2)
    ``<name>`` is left with no ``<name>.owner.<token>`` (or holds no readable
    record).  Once a lock looks stale and its owner file is missing, the
    contender starts a second clock; it recovers the lock only when that state
    stays unchanged for a further lease + lease/4.  Recovery: win the claim
    ``<name>.orphan.<token>`` (put-if-absent via link), re-check that
    ``<name>`` is still the observed inode, win ``rename(<name>,
    .<name>.stolen.<unique>)``, check the renamed inode is the observed one
    (if not, a new holder slipped in: link it back, put-if-absent), remove it.
    An attempt that stops short (an I/O error, or a step that found the lock
    changed) removes its own claim; if the disk refuses that too, the claim is
    remembered as ours and ended, and removed at our next attempt.  Only a
    claim's writer removes it (and `purge`, once it is old).

Fencing (`check`)
    A lease is not mutual exclusion.  Before each critical step the holder calls
    `check()`: the lock must still be ours (both names are our inode) and more
    than lease/4 must remain on our monotonic clock.  Data written under the
    lock carries its own put-if-absent fencing (the master file's).

Garbage (`LockTable.purge`)
    Left-over temporary, renamed, claim and unlinked owner files older than
    several leases are removed.  Age is the file's mtime compared with the
    mtime of a probe file created on the same filesystem now, never with the
    local wall clock.  An owner file is renamed aside before it is removed and
    put back if it turned out to be the current generation's.

ESTALE is retried a few times; ``.nfs*`` files are ignored; `selftest` checks
at startup that the filesystem has hard links and a link() that fails with
EEXIST (smbnetfs has no hard links: it cannot hold a printnet spool).

Over 600 lines on purpose: this docstring is the protocol, and `LockTable` and
`ExpiringLock` share its race-sensitive private primitives (reads, renames,
classification); split, those would be published beyond the one module that
may use them.
"""

from __future__ import annotations

import errno
import logging
import math
import os
import random
import re
import secrets
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Final

from printnet.errors import LockHeld, LockLost, SpoolError, UsageError, ValidationError
from printnet.lease import (
    MAX_LEASE,
    MAX_RECORD_BYTES,
    FileSignature,
    LockRecord,
    Observation,
    holder_valid,
    is_stale,
    mark_orphan,
    observe,
    orphan_stale,
    renew_interval,
    stale_after,
    stale_margin,
    unchanged_for,
)
from printnet.spool.publish import (
    HOST,
    fsync_dir,
    link_new,
    retry_estale,
    translate,
    unique_name,
    write_all,
    write_new,
)

log = logging.getLogger(__name__)

FALLBACK_LEASE: Final = 60.0  # judge a lock whose record is unreadable with this lease
OWNER: Final = ".owner."
ORPHAN: Final = ".orphan."
MAX_NAME: Final = 100
_NAME_RE: Final = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")
_TOKEN_RE: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
_JUNK_MARKERS: Final = (".ended.", ".stolen.", ".purged.")
_JUNK_PREFIXES: Final = (".tmp.", ".probe.")
_NO_HARD_LINKS: Final = frozenset(
    {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS, errno.EMLINK, errno.EACCES}
)
_OPEN_FLAGS: Final = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK

def validate_name(name: str) -> str:
    """Return `name` if it is a valid lock name, else raise `ValidationError`."""
    if (
        not isinstance(name, str)
        or len(name) > MAX_NAME
        or not _NAME_RE.fullmatch(name)
        or OWNER in name
        or ORPHAN in name
    ):
        raise ValidationError(
            "lock name",
            f"{name!r}: use 1-{MAX_NAME} of A-Z a-z 0-9 . _ -, not starting with a dot "
            f"and without {OWNER!r} or {ORPHAN!r}",
        )
    return name


def _wall_iso() -> str:
    """The holder's wall time for people to read (never used to judge expiry)."""
    return datetime.fromtimestamp(time.time(), UTC).isoformat(timespec="milliseconds")


def _new_token() -> str:
    return secrets.token_hex(12)


def _signature(st: os.stat_result) -> FileSignature:
    return FileSignature(st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)


def _open(path: Path) -> int | os.stat_result | None:
    """An fd on `path` (open(), revalidated on NFS), its lstat if it is a symlink, or
    None if absent.  The one way this module looks at a lock file."""
    try:
        return os.open(path, _OPEN_FLAGS)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        try:
            return os.lstat(path)
        except FileNotFoundError:
            return None


def _read(path: Path) -> tuple[FileSignature, bytes] | None:
    """Signature and content of one inode via open()+fstat()+read(); None if absent.

    A symlink or other non-regular file is reported with its lstat signature and
    no content (it is garbage: it will never decode as a record).
    """

    def op() -> tuple[FileSignature, bytes] | None:
        fd = _open(path)
        if fd is None or isinstance(fd, os.stat_result):
            return None if fd is None else (_signature(fd), b"")
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                return _signature(st), b""
            chunks: list[bytes] = []
            total = 0
            while total <= MAX_RECORD_BYTES:
                chunk = os.read(fd, MAX_RECORD_BYTES + 1 - total)
                if not chunk:
                    break
                chunks.append(chunk)
                total += len(chunk)
            return _signature(st), b"".join(chunks)
        finally:
            os.close(fd)

    try:
        return retry_estale(op, path)
    except OSError as exc:
        raise translate(exc, path) from exc


def _inode(path: Path) -> int | None:
    """The inode `path` names now (open()+fstat(), revalidated on NFS); None if absent."""

    def op() -> int | None:
        fd = _open(path)
        if fd is None or isinstance(fd, os.stat_result):
            return None if fd is None else fd.st_ino
        try:
            return os.fstat(fd).st_ino
        finally:
            os.close(fd)

    try:
        return retry_estale(op, path)
    except OSError as exc:
        raise translate(exc, path) from exc


def _rename_won(src: Path, dest: Path) -> bool:
    """`rename(src, dest)` to a unique `dest`: True if we moved `src`, False if it was gone."""
    try:
        retry_estale(lambda: os.rename(src, dest))
    except FileNotFoundError:
        # RACE: NFS answers a retransmitted rename that succeeded with ENOENT.  `dest`
        # is a unique name nobody else uses, so if it exists, the rename was ours.
        return os.path.lexists(dest)
    except OSError as exc:
        raise translate(exc, src) from exc
    return True


def _unlink_quiet(path: Path) -> None:
    """Remove `path`; ENOENT is fine (gone already, or NFS's false ENOENT after success)."""
    try:
        retry_estale(lambda: os.unlink(path))
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise translate(exc, path) from exc


def _fsync_dir_quiet(path: Path) -> None:
    try:
        fsync_dir(path)
    except OSError as exc:  # the names are already published; durability is best effort
        log.warning("fsync of %s failed: %s", path, exc)


def _classify(filename: str) -> tuple[str, str, str] | None:
    """(kind, lock name, token-or-key) for a file in the lock dir; None to leave alone.

    Kinds: "lock", "owner", "orphan" (claim), "junk" (temporary and renamed files).
    """
    if filename.startswith(".nfs"):
        return None
    if filename.startswith("."):
        if filename.startswith(_JUNK_PREFIXES) or any(m in filename for m in _JUNK_MARKERS):
            return ("junk", "", "")
        return None
    for marker, kind in ((OWNER, "owner"), (ORPHAN, "orphan")):
        if marker in filename:
            name, _, key = filename.rpartition(marker)
            if _TOKEN_RE.fullmatch(key) and _is_name(name):
                return (kind, name, key)
            return None
    return ("lock", filename, "") if _is_name(filename) else None


def _is_name(name: str) -> bool:
    try:
        validate_name(name)
    except ValidationError:
        return False
    return True


@dataclass(frozen=True)
class LockStatus:
    """What one observation of a lock name found.

    `unchanged_for`: seconds (observer's monotonic clock) the lock has looked
    exactly like this.  `stale`: may be broken now (judged with the record's
    lease, or the caller's when unreadable).  `orphan`: the lock looks stale
    and has no owner file or no readable record (only evaluated once it looks
    stale); it then needs a second lease.
    """

    record: LockRecord | None
    present: bool
    unchanged_for: float
    stale: bool
    orphan: bool = False
    signature: FileSignature | None = None
    lease: float = 0.0


@dataclass
class LockPaths:
    """The file names of lock `name` in `lock_dir` (see the module docstring)."""

    lock_dir: Path
    name: str
    lock: Path = field(init=False)

    def __post_init__(self) -> None:
        self.lock = self.lock_dir / self.name

    def owner(self, token: str) -> Path:
        return self.lock_dir / f"{self.name}{OWNER}{token}"

    def orphan(self, key: str) -> Path:
        return self.lock_dir / f"{self.name}{ORPHAN}{key}"

    def aside(self, what: str) -> Path:
        return self.lock_dir / unique_name(f".{self.name}.{what}")


class LockTable:
    """The locks of one lock directory, with this process's observations of them.

    Keep one per spool for the life of the process: staleness is judged from
    observations that must persist across calls made seconds apart.
    `clock` is the observer's monotonic clock (tests may pass a fake one).
    """

    def __init__(self, lock_dir: Path, clock: Callable[[], float] = time.monotonic) -> None:
        self.lock_dir = Path(lock_dir)
        self.clock = clock
        self._observations: dict[str, Observation] = {}
        # Orphan claims this table wrote whose attempt ended without recovering, and
        # whose removal the disk refused (`_claim`): claim path -> its content.
        self._ended_claims: dict[Path, bytes] = {}
        self._mutex = threading.Lock()

    def paths(self, name: str) -> LockPaths:
        """The file names of lock `name` (validated)."""
        return LockPaths(self.lock_dir, validate_name(name))

    # -- observing ---------------------------------------------------------------

    def observe(self, name: str, *, lease: float | None = None) -> LockStatus:
        """Look at lock `name` once and update this table's observation of it.

        `lease` judges a lock whose record is unreadable (default `FALLBACK_LEASE`).
        """
        return self._observe(self.paths(name), lease or FALLBACK_LEASE)

    def _observe(self, paths: LockPaths, fallback_lease: float) -> LockStatus:
        got = _read(paths.lock)
        now = self.clock()
        if got is None:
            with self._mutex:
                self._observations[paths.name] = observe(
                    self._observations.get(paths.name), None, now
                )
            return LockStatus(record=None, present=False, unchanged_for=0.0, stale=False)
        signature, data = got
        try:
            record: LockRecord | None = LockRecord.decode(data)
        except SpoolError:
            record = None
        token = record.token if record is not None else None
        lease = record.lease if record is not None else fallback_lease
        with self._mutex:
            obs = observe(self._observations.get(paths.name), signature, now, token)
            self._observations[paths.name] = obs
        orphan = stale = False
        if is_stale(obs, lease, now, stale_margin(lease)):
            orphan = record is None or _inode(paths.owner(record.token)) != signature.inode
            with self._mutex:
                obs = mark_orphan(obs, orphan, now)
                if self._observations.get(paths.name, obs).since == obs.since:
                    self._observations[paths.name] = obs
            stale = not orphan or orphan_stale(obs, lease, now, stale_margin(lease))
        return LockStatus(
            record=record,
            present=True,
            unchanged_for=unchanged_for(obs, now),
            stale=stale,
            orphan=orphan,
            signature=signature,
            lease=lease,
        )

    def forget(self, name: str) -> None:
        """Drop this table's observation of `name`."""
        with self._mutex:
            self._observations.pop(name, None)

    def records(self) -> dict[str, LockRecord]:
        """Every current lock with its record (unreadable ones are left out)."""
        out: dict[str, LockRecord] = {}
        for filename in self._listdir():
            kind = _classify(filename)
            if kind is None or kind[0] != "lock":
                continue
            got = _read(self.lock_dir / filename)
            if got is None:
                continue
            try:
                out[filename] = LockRecord.decode(got[1])
            except SpoolError:
                log.debug("lock %s: unreadable record", self.lock_dir / filename)
        return out

    def _listdir(self) -> list[str]:
        try:
            return sorted(retry_estale(lambda: os.listdir(self.lock_dir)))
        except OSError as exc:
            raise translate(exc, self.lock_dir) from exc

    # -- ending generations --------------------------------------------------------

    def _end_generation(self, paths: LockPaths, token: str) -> bool:
        """Steps 1-3 of "end a generation"; True if we won (and so ended it)."""
        ended = paths.aside("ended")
        # RACE: exactly one process wins this rename; everyone else gets ENOENT.
        if not _rename_won(paths.owner(token), ended):
            return False
        try:
            ended_inode = _inode(ended)
            # RACE: only the winner of the rename above may remove <name>, and nobody can
            # link a new <name> while it exists: if <name> is that inode now, it stays
            # that inode until our unlink.
            if ended_inode is not None and _inode(paths.lock) == ended_inode:
                _unlink_quiet(paths.lock)
        except OSError as exc:
            raise translate(exc, paths.lock) from exc
        finally:
            _unlink_quiet(ended)
            _fsync_dir_quiet(self.lock_dir)
        self.forget(paths.name)
        return True

    def _recover_orphan(self, paths: LockPaths, status: LockStatus, claimer: LockRecord) -> bool:
        """Remove an orphaned <name> (no owner file, or no readable record)."""
        signature = status.signature
        if signature is None:
            return False
        record = status.record
        key = record.token if record is not None else f"x{signature.inode}-{signature.ctime_ns}"
        claim, mine = paths.orphan(key), claimer.encode()
        if not self._claim(claim, mine):
            return False
        recovered = False
        try:
            got = _read(paths.lock)
            if got is None or got[0].inode != signature.inode:
                return False  # somebody else dealt with it
            if record is not None and _inode(paths.owner(record.token)) == signature.inode:
                return False  # not an orphan after all
            stolen = paths.aside("stolen")
            # RACE: rename <name> itself aside; between the check above and this rename
            # a new holder may have slipped in, so check what we took.
            if not _rename_won(paths.lock, stolen):
                return False
            try:
                taken = _inode(stolen)
                if taken != signature.inode:
                    # RACE: we took a newer generation's lock: put it back, put-if-absent.
                    try:
                        link_new(stolen, paths.lock)
                    except FileExistsError:
                        log.error(
                            "lock %s: recovering an orphan displaced a newer lock, and "
                            "another holder took the name before it could be put back",
                            paths.lock,
                        )
                    return False
            finally:
                _unlink_quiet(stolen)
                _fsync_dir_quiet(self.lock_dir)
            recovered = True
        except OSError as exc:
            raise translate(exc, paths.lock) from exc
        finally:
            if not recovered:
                self._end_claim(claim, mine)
        self.forget(paths.name)
        return True

    def _claim(self, claim: Path, mine: bytes) -> bool:
        """Win the put-if-absent claim of recovering an orphan; True if we hold it.

        A claim stays only while its recoverer works on the orphan (or, after a
        recovery, until purged: its generation is gone).  An attempt that ended
        without recovering removes its own claim (`_end_claim`); if the disk
        refused that too, this table remembers the claim as ours and ended, and
        removes it at its next attempt.  Without that, one failed call (EIO) in
        the middle of a recovery left the claim for ever and nobody could take the
        lock again (tests/test_faults.py: a share failing 5 % of its calls).
        """
        try:
            # RACE: one recoverer per orphaned generation: the claim is put-if-absent.
            write_new(claim, mine)
            return True
        except FileExistsError:
            pass
        except BaseException:
            self._end_claim(claim, mine)  # the put itself may have succeeded
            raise
        with self._mutex:
            ended = self._ended_claims.get(claim)
        if ended is None:
            return False  # another recoverer's (or one of ours still at work)
        got = _read(claim)
        if got is not None and got[1] != ended:
            with self._mutex:
                self._ended_claims.pop(claim, None)
            return False
        # RACE: our own claim, of an attempt that is over: nobody but its writer (and
        # purge, once it is old) removes a claim, so it is still ours to remove; the
        # put-if-absent below still lets only one recoverer in.
        if got is not None:
            _unlink_quiet(claim)
        with self._mutex:
            self._ended_claims.pop(claim, None)
        return self._claim(claim, mine)

    def _end_claim(self, claim: Path, mine: bytes) -> None:
        """An attempt that did not recover is over: remove its claim if it is ours (a
        failing disk may refuse: then it is remembered, see `_claim`)."""
        with self._mutex:
            self._ended_claims[claim] = mine
        try:
            got = _read(claim)
            if got is None or got[1] == mine:
                if got is not None:
                    _unlink_quiet(claim)
                with self._mutex:
                    self._ended_claims.pop(claim, None)
        except (OSError, SpoolError) as exc:
            log.warning("lock %s: cannot remove our claim yet: %s", claim, exc)

    def _break(self, paths: LockPaths, status: LockStatus, claimer: LockRecord) -> bool:
        """End the generation `status` saw (normal or orphan); True if we did."""
        record = status.record
        if record is not None and not status.orphan:
            won = self._end_generation(paths, record.token)
        else:
            won = self._recover_orphan(paths, status, claimer)
        if won:
            who = (
                f"{record.holder} on {record.host} pid {record.pid}"
                if record is not None
                else "unreadable record"
            )
            log.warning(
                "broke lock %s (%s%s; unchanged for %.3fs)",
                paths.lock,
                who,
                ", orphaned" if status.orphan else "",
                status.unchanged_for,
            )
        return won

    # -- garbage -------------------------------------------------------------------

    def purge(self, max_age_leases: float = 4) -> int:
        """Remove left-over files older than `max_age_leases` leases; return how many.

        A file's lease is the one in its own record, else the longest current
        lease, else `FALLBACK_LEASE`.  Age is measured against the mtime of a
        probe file created now on the same filesystem (the file server's clock).
        """
        fs_now = _fs_now(self.lock_dir)
        filenames = self._listdir()
        current: dict[str, str | None] = {}
        for filename in filenames:
            kind = _classify(filename)
            if kind is not None and kind[0] == "lock":
                got = _read(self.lock_dir / filename)
                try:
                    current[filename] = LockRecord.decode(got[1]).token if got else None
                except SpoolError:
                    current[filename] = None
        leases = [r.lease for r in self.records().values()]
        fallback = max(leases, default=FALLBACK_LEASE)
        removed = 0
        for filename in filenames:
            kind = _classify(filename)
            if kind is None or kind[0] == "lock":
                continue
            what, name, key = kind
            if what == "owner" and current.get(name) == key:
                continue  # the live generation's owner file
            path = self.lock_dir / filename
            got = _read(path)
            if got is None:
                continue
            signature, data = got
            try:
                lease = LockRecord.decode(data).lease
            except SpoolError:
                lease = fallback
            if fs_now - signature.mtime_ns <= max_age_leases * lease * 1e9:
                continue
            if what == "owner":
                removed += self._purge_owner(self.paths(name), key, path)
            else:
                _unlink_quiet(path)
                removed += 1
        if removed:
            _fsync_dir_quiet(self.lock_dir)
        return removed

    def _purge_owner(self, paths: LockPaths, token: str, path: Path) -> int:
        aside = paths.aside("purged")
        # RACE: renaming the owner file aside is winning "end generation <token>"; if
        # <name> turns out to be that generation after all, hand it back.
        if not _rename_won(path, aside):
            return 0
        got = _read(paths.lock)
        try:
            live = got is not None and LockRecord.decode(got[1]).token == token
        except SpoolError:
            live = False
        if live:
            try:
                os.rename(aside, path)
            except OSError as exc:
                raise translate(exc, path) from exc
            return 0
        _unlink_quiet(aside)
        return 1


def _fs_now(lock_dir: Path) -> int:
    """The file server's idea of now: the mtime (ns) of a file created now."""
    probe = lock_dir / unique_name(".probe")
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            return os.fstat(fd).st_mtime_ns
        finally:
            os.close(fd)
            _unlink_quiet(probe)
    except OSError as exc:
        raise translate(exc, probe) from exc


class ExpiringLock:
    """One process's handle on lock `name` in `table`'s directory.

    Not re-entrant; one holder generation at a time.  `token` is the held
    generation, `lost` is set when we learn it is no longer ours, `breaks`
    counts stale generations this handle ended.
    """

    def __init__(self, table: LockTable, name: str, *, lease: float, holder: str) -> None:
        self.paths = table.paths(name)
        if isinstance(lease, bool) or not (
            isinstance(lease, int | float) and math.isfinite(lease) and 0 < lease <= MAX_LEASE
        ):
            raise ValidationError("lease", f"must be in (0, {MAX_LEASE:g}] seconds: {lease!r}")
        try:
            LockRecord("probe", HOST, os.getpid(), holder, float(lease), _wall_iso())
        except ValueError as exc:
            raise ValidationError("holder", str(exc)) from exc
        self.table = table
        self.name = name
        self.lease = float(lease)
        self.holder = holder
        self.token: str | None = None
        self.lost = False
        self.breaks = 0
        self._fd: int | None = None
        self._inode = 0
        self._last_renewed = 0.0
        self._mutex = threading.Lock()
        self._hb_thread: threading.Thread | None = None
        self._hb_stop = threading.Event()

    def __repr__(self) -> str:
        state = "lost" if self.lost else "held" if self.token else "free"
        return f"<ExpiringLock {self.name} {state} token={self.token}>"

    def _record(self, token: str) -> LockRecord:
        return LockRecord(token, HOST, os.getpid(), self.holder, self.lease, _wall_iso())

    # -- acquiring -----------------------------------------------------------------

    def try_acquire(self) -> bool:
        """Take the lock if free, or if observed stale for a full lease (break it).

        Never blocks on other holders.  Returns False if the lock is held.
        """
        if self.token is not None:
            if not self.lost:
                raise UsageError(f"lock {self.name}: already held by this handle")
            self.release()
        with self._mutex:
            status = self.table._observe(self.paths, self.lease)
            if status.present:
                if not status.stale:
                    return False
                if self.table._break(self.paths, status, self._record(_new_token())):
                    self.breaks += 1
            return self._link()

    def _link(self) -> bool:
        token = _new_token()
        owner = self.paths.owner(token)
        try:
            fd = os.open(owner, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        except OSError as exc:
            raise translate(exc, owner) from exc
        try:
            write_all(fd, self._record(token).encode())
            os.fsync(fd)
            inode = os.fstat(fd).st_ino
            started = self.table.clock()
            won = True
            try:
                # RACE: link() is the acquisition: create-if-absent with complete content.
                link_new(owner, self.paths.lock)
            except FileExistsError:
                won = False
            except SpoolError:
                if os.path.lexists(owner):
                    raise
                won = False  # our owner file was purged while we were paused
        except BaseException:
            os.close(fd)
            _unlink_quiet(owner)
            raise
        if not won:
            os.close(fd)
            _unlink_quiet(owner)
            return False
        _fsync_dir_quiet(self.table.lock_dir)
        self._fd = fd
        self._inode = inode
        self._last_renewed = started
        self.token = token
        self.lost = False
        return True

    def acquire(self, timeout: float) -> None:
        """Poll `try_acquire` for up to `timeout` seconds (real time); raise `LockHeld`.

        A stale lock needs about 1.25 of its lease (2.5 for an orphan) of
        observation before it can be broken.
        """
        deadline = time.monotonic() + timeout
        poll = min(max(self.lease / 16, 0.001), 0.25)
        while not self.try_acquire():
            left = deadline - time.monotonic()
            if left <= 0:
                raise LockHeld(f"lock {self.name}: {self._held_by()} (waited {timeout:g}s)")
            time.sleep(min(left, poll * random.uniform(0.5, 1.5)))

    def _held_by(self) -> str:
        try:
            record = self.table.records().get(self.name)
        except SpoolError:
            record = None
        if record is None:
            return "held"
        return f"held by {record.holder} on {record.host} pid {record.pid}"

    # -- holding -------------------------------------------------------------------

    def _require_held(self) -> int:
        if self.token is None or self._fd is None:
            raise LockLost(f"lock {self.name}: not held")
        if self.lost:
            raise LockLost(f"lock {self.name}: lost")
        return self._fd

    def _expired(self, now: float) -> bool:
        if holder_valid(self._last_renewed, self.lease, now):
            return False
        self.lost = True
        return True

    def _still_ours(self) -> bool:
        """Both <name> and our owner file are still our inode (open()+fstat() each)."""
        assert self.token is not None
        return (
            _inode(self.paths.lock) == self._inode
            and _inode(self.paths.owner(self.token)) == self._inode
        )

    def renew(self) -> None:
        """Heartbeat once: touch our owner file (= the lock's inode) and verify.

        Raises `LockLost` (and sets `lost`) if the lease already ran out on our
        clock or the lock is no longer ours; `SpoolError` on I/O trouble.
        """
        with self._mutex:
            fd = self._require_held()
            now = self.table.clock()
            if self._expired(now):
                raise LockLost(f"lock {self.name}: lease ran out before renewal (paused?)")
            try:
                # RACE: if a breaker already won our owner file, this touches an inode
                # that is about to be (or already is) unlinked: harmless, we check next.
                retry_estale(lambda: os.utime(fd))
            except OSError as exc:
                raise translate(exc, self.paths.lock) from exc
            if not self._still_ours():
                self.lost = True
                raise LockLost(f"lock {self.name}: broken by someone else")
            if self.table.clock() - now <= renew_interval(self.lease):
                self._last_renewed = now

    def check(self) -> None:
        """Fence: raise `LockLost` unless the lock is ours with > lease/4 left on our clock."""
        with self._mutex:
            self._require_held()
            if self._expired(self.table.clock()):
                raise LockLost(f"lock {self.name}: lease ran out on our clock")
            try:
                ours = self._still_ours()
            except SpoolError as exc:
                raise LockLost(f"lock {self.name}: cannot verify: {exc}") from exc
            if not ours:
                self.lost = True
                raise LockLost(f"lock {self.name}: broken by someone else")

    def remaining(self) -> float:
        """Seconds of lease left on our own clock (0 if not held)."""
        if self.token is None:
            return 0.0
        return max(0.0, self._last_renewed + self.lease - self.table.clock())

    # -- releasing -----------------------------------------------------------------

    def release(self) -> None:
        """End our generation if nobody else did; safe when not held or already lost."""
        if threading.current_thread() is not self._hb_thread:
            self.stop_heartbeat()
        with self._mutex:
            token, fd = self.token, self._fd
            self.token, self._fd = None, None
            if token is None:
                return
            try:
                self.table._end_generation(self.paths, token)
            finally:
                if fd is not None:
                    os.close(fd)

    def abandon(self) -> None:
        """Forget the lock without touching the disk (it will go stale).

        For a process that must not touch a hung mount on its way out, and for
        tests that need a holder that died.
        """
        self.stop_heartbeat()
        with self._mutex:
            if self._fd is not None:
                os.close(self._fd)
            self.token, self._fd = None, None

    # -- heartbeat -----------------------------------------------------------------

    def start_heartbeat(self) -> None:
        """Renew every lease/4 from a daemon thread until released, stopped or lost."""
        with self._mutex:
            self._require_held()
            if self._hb_thread is not None and self._hb_thread.is_alive():
                return
            stop = threading.Event()
            thread = threading.Thread(
                target=self._heartbeat, args=(stop,), name=f"lock-{self.name}", daemon=True
            )
            self._hb_stop, self._hb_thread = stop, thread
        thread.start()

    def stop_heartbeat(self) -> None:
        thread = self._hb_thread
        if thread is None:
            return
        self._hb_stop.set()
        if thread is not threading.current_thread():
            thread.join()
        self._hb_thread = None

    def _heartbeat(self, stop: threading.Event) -> None:
        interval = renew_interval(self.lease)
        delay = interval
        while not stop.wait(delay):
            try:
                self.renew()
                # Due lease/4 after the last renewal that *counted* (from its issue, not
                # its end): a renewal slower than lease/4 (a loaded host, a slow share)
                # does not count, so the next one goes out at once, while the lease
                # is still valid, instead of a lease/4 later -- by when it had run out
                # (soak 4: live servers' leases lapsing, a reprint).
                delay = max(0.0, self._last_renewed + interval - self.table.clock())
            except LockLost:
                return
            except SpoolError as exc:
                log.warning("lock %s: renewal failed, retrying: %s", self.name, exc)
                delay = interval / 4

    # -- context manager -----------------------------------------------------------

    def __enter__(self) -> ExpiringLock:
        """Acquire (waiting long enough to break a lock whose holder died) and heartbeat."""
        self.acquire(stale_after(self.lease) + renew_interval(self.lease))
        self.start_heartbeat()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def break_lock(
    table: LockTable, name: str, *, force: bool = False, wait: float = 0.0
) -> bool:
    """Operator break of lock `name`; True if we removed it.

    Without `force`, only a lock this table has observed stale is broken
    (observe it for a lease first, or pass `wait` seconds to keep observing).
    With `force`, the current generation is ended whatever its state: its
    holder's next `check()` fails.
    """
    paths = table.paths(name)
    claimer = LockRecord(_new_token(), HOST, os.getpid(), "break", FALLBACK_LEASE, _wall_iso())
    deadline = time.monotonic() + wait
    while True:
        status = table._observe(paths, FALLBACK_LEASE)
        if not status.present:
            return False
        if force or status.stale:
            break
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(left, max(status.lease / 8, 0.001)))
    if force and status.record is not None:
        orphan = _inode(paths.owner(status.record.token)) != (
            status.signature.inode if status.signature else None
        )
        status = LockStatus(
            record=status.record,
            present=True,
            unchanged_for=status.unchanged_for,
            stale=True,
            orphan=orphan,
            signature=status.signature,
            lease=status.lease,
        )
    elif force:
        status = LockStatus(None, True, status.unchanged_for, True, True, status.signature)
    return table._break(paths, status, claimer)


def selftest(lock_dir: Path) -> None:
    """Check that `lock_dir`'s filesystem can carry the lock protocol; raise `SpoolError`.

    Needs: hard links (link() of a new name), link() onto an existing name
    failing with EEXIST, rename(), and utime() on an open fd.
    """
    lock_dir = Path(lock_dir)
    if not lock_dir.is_dir():
        raise SpoolError(f"{lock_dir}: lock directory missing")
    first = lock_dir / unique_name(".probe")
    second = lock_dir / unique_name(".probe")
    third = lock_dir / unique_name(".probe")
    fd = -1
    try:
        try:
            fd = os.open(first, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            os.write(fd, b"printnet lock selftest\n")
            os.fsync(fd)
        except OSError as exc:
            raise translate(exc, first) from exc
        try:
            os.link(first, second)
        except OSError as exc:
            if exc.errno in _NO_HARD_LINKS:
                raise SpoolError(
                    f"{lock_dir}: this filesystem has no hard links ({exc.strerror}); "
                    "printnet's locks need link() (smbnetfs, for one, cannot do it): "
                    "put the spool on NFS, GlusterFS or a local disk"
                ) from exc
            raise translate(exc, second) from exc
        if os.stat(second).st_ino != os.fstat(fd).st_ino:
            raise SpoolError(f"{lock_dir}: link() made a copy, not a hard link")
        try:
            os.link(first, second)
        except FileExistsError:
            pass
        except OSError as exc:
            raise SpoolError(
                f"{lock_dir}: link() onto an existing name failed with "
                f"{exc.strerror} instead of EEXIST"
            ) from exc
        else:
            raise SpoolError(f"{lock_dir}: link() onto an existing name succeeded")
        try:
            os.rename(second, third)
            os.utime(fd)
        except OSError as exc:
            raise SpoolError(f"{lock_dir}: rename()/utime() failed: {exc.strerror}") from exc
        if os.path.lexists(second) or os.stat(third).st_ino != os.fstat(fd).st_ino:
            raise SpoolError(f"{lock_dir}: rename() did not move the name")
    finally:
        if fd >= 0:
            os.close(fd)
        for path in (first, second, third):
            try:
                os.unlink(path)
            except OSError:
                pass
