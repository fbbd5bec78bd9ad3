"""Pure core: lease arithmetic for the expiring locks on the shared disk.

This module imports no `os`, `time` or `serial`.  "now" is always a parameter
and always the *observer's own monotonic clock* (seconds); nothing here ever
compares two hosts' wall clocks.

Two sides of one lease:

* **Contenders judge staleness by observation.**  A contender remembers the
  (inode, mtime_ns, ctime_ns, size) `FileSignature` of a lock file, together
  with the generation token it read from it, and the moment (on its own
  monotonic clock) it first saw that exact pair.  The lock is stale when that
  pair has not changed for a full lease plus a margin (`is_stale`).  A holder
  that heartbeats changes the file's mtime/ctime, which restarts everybody's
  observation; a new generation (new token) restarts it too, even if the
  filesystem reused the inode and has coarse timestamps.
* **Holders count their own lease** from the moment *before* their last
  successful renewal was issued (`remaining`), renew about every lease/4
  (`renew_due`), and stop trusting the lock once less than a safety margin is
  left (`holder_valid`).  A renewal is only allowed while the lock is still
  valid on the holder's clock, so a holder that was paused past its lease
  cannot resurrect it.

Why this is safe: a contender breaks no earlier than lease + lease/4 after it
first saw the holder's latest signature, and that signature was written after
the holder's clock reading; the holder stops trusting the lock lease/4 before
the lease ends.  That leaves half a lease of slack for message delays and
clock *rate* differences (which are parts per million); clock *offsets*
between hosts do not enter at all.

`LockRecord` is the content of a lock file: who holds it, with which
generation token and lease length.  `acquired` is the holder's wall time, for
people only; it is never used to judge expiry.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import Final, NamedTuple, TypeAlias

from printnet.errors import SpoolError

RECORD_MAGIC: Final = "printnet-lock 1"
MAX_RECORD_BYTES: Final = 4096
MAX_LEASE: Final = 7 * 24 * 3600.0  # a week; anything longer is a typo
RENEW_FRACTION: Final = 0.25  # holders renew about every lease/4
SAFETY_FRACTION: Final = 0.25  # holders stop trusting the lock with < lease/4 left
STALE_FRACTION: Final = 0.25  # contenders wait lease + lease/4 of unchanged observation
ORPHAN_LEASES: Final = 2  # a lock without its owner file: wait a second full lease

_TOKEN_RE: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
_PID_RE: Final = re.compile(r"[0-9]{1,10}")
_FLOAT_RE: Final = re.compile(r"[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?")
_TEXT_RE: Final = re.compile(r"[^\x00-\x20\x7f-\x9f][^\x00-\x1f\x7f-\x9f]{0,254}")
_FIELDS: Final = ("token", "host", "pid", "holder", "lease", "acquired")


def _check_text(field: str, value: str) -> None:
    if not _TEXT_RE.fullmatch(value) or value != value.strip():
        raise ValueError(f"{field}: must be 1-255 printable characters, got {value!r}")


@dataclass(frozen=True)
class LockRecord:
    """The content of a lock file (and of its owner file: the same inode)."""

    token: str  # generation token, unique per acquisition; [A-Za-z0-9_-]{1,64}
    host: str
    pid: int
    holder: str  # e.g. the server name, or "station"
    lease: float  # seconds; contenders judge staleness with this length
    acquired: str  # holder's wall time (ISO 8601), informational only

    def __post_init__(self) -> None:
        if not _TOKEN_RE.fullmatch(self.token):
            raise ValueError(f"token: must match [A-Za-z0-9_-]{{1,64}}, got {self.token!r}")
        _check_text("host", self.host)
        _check_text("holder", self.holder)
        _check_text("acquired", self.acquired)
        if isinstance(self.pid, bool) or not isinstance(self.pid, int) or not (
            0 <= self.pid < 10**10
        ):
            raise ValueError(f"pid: must be an integer in [0, 1e10), got {self.pid!r}")
        if isinstance(self.lease, bool) or not isinstance(self.lease, int | float):
            raise ValueError(f"lease: must be a number, got {self.lease!r}")
        if not (math.isfinite(self.lease) and 0 < self.lease <= MAX_LEASE):
            raise ValueError(f"lease: must be in (0, {MAX_LEASE:g}] seconds, got {self.lease!r}")

    def encode(self) -> bytes:
        """`key=value` lines after a magic first line; `decode` inverts it exactly."""
        lines = [
            RECORD_MAGIC,
            f"token={self.token}",
            f"host={self.host}",
            f"pid={self.pid}",
            f"holder={self.holder}",
            f"lease={float(self.lease)!r}",
            f"acquired={self.acquired}",
        ]
        return ("\n".join(lines) + "\n").encode("utf-8")

    @classmethod
    def decode(cls, data: bytes) -> LockRecord:
        """Parse a lock file; raise `SpoolError` on anything that is not a valid record.

        Unknown keys are ignored (forward compatibility); missing or repeated
        known keys, a wrong first line, bad UTF-8 or bad values are errors.
        """
        if len(data) > MAX_RECORD_BYTES:
            raise SpoolError(f"lock record: longer than {MAX_RECORD_BYTES} bytes")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SpoolError("lock record: not UTF-8") from exc
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        if not lines or lines[0] != RECORD_MAGIC:
            raise SpoolError(f"lock record: first line is not {RECORD_MAGIC!r}")
        values: dict[str, str] = {}
        for number, line in enumerate(lines[1:], start=2):
            key, sep, value = line.partition("=")
            if not sep:
                raise SpoolError(f"lock record: line {number} is not key=value")
            if key in _FIELDS:
                if key in values:
                    raise SpoolError(f"lock record: {key} given twice")
                values[key] = value
        missing = [key for key in _FIELDS if key not in values]
        if missing:
            raise SpoolError(f"lock record: missing {', '.join(missing)}")
        if not _PID_RE.fullmatch(values["pid"]):
            raise SpoolError(f"lock record: bad pid {values['pid']!r}")
        if not _FLOAT_RE.fullmatch(values["lease"]):
            raise SpoolError(f"lock record: bad lease {values['lease']!r}")
        try:
            return cls(
                token=values["token"],
                host=values["host"],
                pid=int(values["pid"]),
                holder=values["holder"],
                lease=float(values["lease"]),
                acquired=values["acquired"],
            )
        except ValueError as exc:
            raise SpoolError(f"lock record: {exc}") from exc


class FileSignature(NamedTuple):
    """What a contender sees of a lock file: any change means the holder is alive."""

    inode: int
    mtime_ns: int
    ctime_ns: int
    size: int


Signature: TypeAlias = FileSignature | None
"""The observed signature of a lock file, or None when the file is absent."""


@dataclass(frozen=True)
class Observation:
    """One observer's memory of one lock name.

    `signature` and `token` are what it saw last; `since` is the moment, on the
    observer's monotonic clock, when it first saw exactly that pair.
    `orphan_since` is when it first found that pair, already stale, without its
    owner file (None: not seen orphaned).
    """

    signature: Signature
    token: str | None
    since: float
    orphan_since: float | None = None


def observe(
    previous: Observation | None, signature: Signature, now: float, token: str | None = None
) -> Observation:
    """The observation after seeing `signature` (and the record's `token`) at `now`.

    Unchanged signature and token keep the old `since`; any change restarts it.
    """
    if (
        previous is not None
        and previous.signature == signature
        and previous.token == token
        and previous.since <= now
    ):
        return previous
    return Observation(signature=signature, token=token, since=now)


def unchanged_for(obs: Observation, now: float) -> float:
    """How long the observer has seen the same signature (never negative)."""
    return max(0.0, now - obs.since)


def stale_margin(lease: float) -> float:
    """The margin a contender adds to a lease before it calls a lock stale."""
    return lease * STALE_FRACTION


def is_stale(obs: Observation, lease: float, now: float, margin: float) -> bool:
    """Stale: present and unchanged for more than `lease + margin` on the observer's clock.

    An absent lock is never stale (it is free).
    """
    if obs.signature is None:
        return False
    return unchanged_for(obs, now) > lease + margin


def mark_orphan(obs: Observation, orphan: bool, now: float) -> Observation:
    """Record whether the (stale-looking) lock was found without its owner file at `now`.

    The orphan clock starts at the first such finding and stops as soon as the
    owner file is seen again; any change of signature resets it (`observe`).
    """
    if not orphan:
        return obs if obs.orphan_since is None else replace(obs, orphan_since=None)
    if obs.orphan_since is not None and obs.orphan_since <= now:
        return obs
    return replace(obs, orphan_since=now)


def orphan_stale(obs: Observation, lease: float, now: float, margin: float) -> bool:
    """An orphan may be recovered once it has stayed orphaned, unchanged, for a second
    full lease (+ margin) after it first looked stale."""
    if obs.signature is None or obs.orphan_since is None:
        return False
    return is_stale(obs, lease, now, margin) and now - obs.orphan_since > lease + margin


def stale_after(lease: float, *, orphan: bool = False) -> float:
    """Least unchanged-observation time after which a contender may break the lock.

    A lock left without its owner file (a breaker died halfway) waits a second
    full lease (+ margin) after it first looked stale.
    """
    leases = ORPHAN_LEASES if orphan else 1
    return leases * (lease + stale_margin(lease))


def renew_interval(lease: float) -> float:
    """How often a holder renews: about every lease/4."""
    return lease * RENEW_FRACTION


def renew_due(last_renewed: float, lease: float, now: float) -> bool:
    """True when a lease/4 has passed since the last successful renewal was issued."""
    return now - last_renewed >= renew_interval(lease)


def remaining(last_renewed: float, lease: float, now: float) -> float:
    """The holder's remaining lease on its own monotonic clock.

    `last_renewed` is the clock reading taken *before* the last successful
    renewal (or the acquiring link) was issued; may be negative once expired.
    """
    return last_renewed + lease - now


def safety_margin(lease: float) -> float:
    """A holder stops trusting its lock when less than this is left."""
    return lease * SAFETY_FRACTION


def holder_valid(last_renewed: float, lease: float, now: float) -> bool:
    """May the holder still act under (and renew) its lock?"""
    return remaining(last_renewed, lease, now) > safety_margin(lease)
