"""printnet.lease: the pure lease arithmetic (records, observations, holder's clock).

No clock is patched anywhere: "now" is a parameter.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from printnet.errors import SpoolError
from printnet.lease import (
    MAX_LEASE,
    MAX_RECORD_BYTES,
    RECORD_MAGIC,
    FileSignature,
    LockRecord,
    Observation,
    holder_valid,
    is_stale,
    mark_orphan,
    observe,
    orphan_stale,
    remaining,
    renew_due,
    renew_interval,
    safety_margin,
    stale_after,
    stale_margin,
    unchanged_for,
)

# -- strategies ----------------------------------------------------------------------

tokens = st.text("abcdefABCDEF0123456789_-", min_size=1, max_size=64)
_words = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zs", "Zl", "Zp")),
    min_size=1,
    max_size=30,
)
texts = st.builds(lambda a, b: a if b is None else f"{a} {b}", _words, st.none() | _words)
leases = st.floats(min_value=1e-6, max_value=MAX_LEASE, allow_nan=False, allow_infinity=False)
small_leases = st.floats(min_value=0.001, max_value=3600.0, allow_nan=False)
records = st.builds(
    LockRecord,
    token=tokens,
    host=texts,
    pid=st.integers(0, 10**10 - 1),
    holder=texts,
    lease=leases,
    acquired=texts,
)
signatures = st.builds(
    FileSignature,
    st.integers(1, 2**40),
    st.integers(0, 2**62),
    st.integers(0, 2**62),
    st.integers(0, 4096),
)
maybe_signatures = st.none() | signatures
times = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False)


# -- LockRecord ----------------------------------------------------------------------


@given(records)
def test_record_round_trips(record: LockRecord) -> None:
    data = record.encode()
    assert data.startswith(RECORD_MAGIC.encode() + b"\n")
    assert len(data) <= MAX_RECORD_BYTES
    assert LockRecord.decode(data) == record


@given(st.binary(max_size=600))
def test_decode_of_any_bytes_is_a_record_or_spool_error(data: bytes) -> None:
    try:
        record = LockRecord.decode(data)
    except SpoolError:
        return
    assert LockRecord.decode(record.encode()) == record


@given(records, st.data())
def test_decode_rejects_a_record_with_a_line_dropped_or_doubled(
    record: LockRecord, data: st.DataObject
) -> None:
    lines = record.encode().decode().splitlines()
    index = data.draw(st.integers(0, len(lines) - 1))
    dropped = lines[:index] + lines[index + 1 :]
    with pytest.raises(SpoolError):
        LockRecord.decode("\n".join(dropped).encode())
    if index > 0:
        doubled = [*lines, lines[index]]
        with pytest.raises(SpoolError, match="twice"):
            LockRecord.decode("\n".join(doubled).encode())


@given(records, st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=10), texts)
def test_decode_ignores_unknown_keys(record: LockRecord, key: str, value: str) -> None:
    assume(key not in {"token", "host", "pid", "holder", "lease", "acquired"})
    data = record.encode() + f"{key}={value}\n".encode()
    assert LockRecord.decode(data) == record


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("token", "has.dot"),
        ("token", "x" * 65),
        ("token", ""),
        ("pid", "-1"),
        ("pid", "1_000"),
        ("pid", "12345678901"),
        ("pid", "٣"),  # a non-ASCII digit int() would accept
        ("lease", "nan"),
        ("lease", "inf"),
        ("lease", "0"),
        ("lease", "-1"),
        ("lease", "1e9"),
        ("lease", "1_0"),
        ("host", ""),
        ("host", " padded"),
        ("holder", "tab\there"),
        ("holder", "esc\x1b[2J"),
        ("acquired", "x\x85y"),
    ],
)
def test_decode_rejects_bad_values(field: str, value: str) -> None:
    good = LockRecord("tok", "hostA", 42, "floor2", 30.0, "2026-01-01T00:00:00Z")
    lines = [
        line if not line.startswith(f"{field}=") else f"{field}={value}"
        for line in good.encode().decode().splitlines()
    ]
    with pytest.raises(SpoolError):
        LockRecord.decode("\n".join(lines).encode())


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff\xfe",
        b"printnet-lock 2\n",
        b"token=a\n",
        RECORD_MAGIC.encode() + b"\nno equals sign\n",
        RECORD_MAGIC.encode() + b"\n" + b"x=" + b"y" * MAX_RECORD_BYTES,
    ],
)
def test_decode_rejects_garbage(data: bytes) -> None:
    with pytest.raises(SpoolError):
        LockRecord.decode(data)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"host": "two\nlines"},
        {"holder": ""},
        {"pid": -1},
        {"pid": True},
        {"lease": math.nan},
        {"lease": 0.0},
        {"lease": MAX_LEASE * 2},
        {"token": "a b"},
    ],
)
def test_record_constructor_validates(kwargs: dict[str, object]) -> None:
    base: dict[str, object] = {
        "token": "t",
        "host": "h",
        "pid": 1,
        "holder": "x",
        "lease": 1.0,
        "acquired": "now",
    }
    base.update(kwargs)
    with pytest.raises(ValueError):
        LockRecord(**base)  # type: ignore[arg-type]


# -- observations --------------------------------------------------------------------


@given(maybe_signatures, st.none() | tokens, times, st.floats(0, 1e6))
def test_unchanged_observation_keeps_its_start(
    sig: FileSignature | None, token: str | None, start: float, later: float
) -> None:
    first = observe(None, sig, start, token)
    assert first == Observation(sig, token, start)
    again = observe(first, sig, start + later, token)
    assert again.since == start
    assert unchanged_for(again, start + later) == pytest.approx(later, abs=1e-6 * abs(start) + 1e-9)


@given(maybe_signatures, maybe_signatures, st.none() | tokens, st.none() | tokens, times, times)
def test_any_change_restarts_the_observation(
    a: FileSignature | None,
    b: FileSignature | None,
    ta: str | None,
    tb: str | None,
    t0: float,
    t1: float,
) -> None:
    assume(t1 >= t0)
    assume((a, ta) != (b, tb))
    obs = observe(observe(None, a, t0, ta), b, t1, tb)
    assert obs == Observation(b, tb, t1)
    assert unchanged_for(obs, t1) == 0.0
    assert not is_stale(obs, 1e-9, t1, 0.0)


@given(signatures, times, times)
def test_observation_never_runs_backwards(sig: FileSignature, t0: float, t1: float) -> None:
    """A `now` before the recorded start (a non-monotonic clock) restarts, never goes negative."""
    obs = observe(observe(None, sig, t0), sig, t1)
    assert obs.since <= max(t0, t1)
    assert unchanged_for(obs, min(t0, t1)) >= 0.0


@given(signatures, small_leases, times, st.floats(0, 1e5))
def test_stale_exactly_after_lease_plus_margin(
    sig: FileSignature, lease: float, start: float, elapsed: float
) -> None:
    obs = observe(None, sig, start)
    margin = stale_margin(lease)
    stale = is_stale(obs, lease, start + elapsed, margin)
    if elapsed > lease + margin + 1e-6 * (abs(start) + 1):
        assert stale
    if elapsed < lease + margin - 1e-6 * (abs(start) + 1):
        assert not stale


@given(small_leases, times, st.floats(0, 1e9))
def test_an_absent_lock_is_never_stale(lease: float, start: float, elapsed: float) -> None:
    obs = observe(None, None, start)
    assert not is_stale(obs, lease, start + elapsed, 0.0)


def test_same_signature_but_new_token_restarts() -> None:
    """A new generation on a reused inode with coarse timestamps still restarts the clock."""
    sig = FileSignature(7, 1_000_000_000, 1_000_000_000, 120)
    old = observe(None, sig, 0.0, "gen1")
    assert is_stale(old, 1.0, 5.0, 0.25)
    new = observe(old, sig, 5.0, "gen2")
    assert not is_stale(new, 1.0, 5.0, 0.25)


@given(signatures, small_leases, times, st.lists(st.floats(0, 1e4), min_size=1, max_size=20))
def test_orphans_wait_a_second_full_lease(
    sig: FileSignature, lease: float, start: float, steps: list[float]
) -> None:
    """Following the caller's rule (mark orphan only once stale), recovery never
    comes before two full leases (+ margins) of unchanged observation."""
    margin = stale_margin(lease)
    obs = observe(None, sig, start)
    now = start
    for step in steps:
        now += step
        obs = observe(obs, sig, now)
        if is_stale(obs, lease, now, margin):
            obs = mark_orphan(obs, True, now)
        if orphan_stale(obs, lease, now, margin):
            assert now - start > stale_after(lease, orphan=True) - 1e-6 * (abs(start) + 1)
            assert obs.orphan_since is not None
            assert now - obs.orphan_since > lease + margin


@given(signatures, times)
def test_owner_seen_again_stops_the_orphan_clock(sig: FileSignature, start: float) -> None:
    obs = mark_orphan(observe(None, sig, start), True, start + 2)
    assert obs.orphan_since == start + 2
    assert mark_orphan(obs, True, start + 3).orphan_since == start + 2
    cleared = mark_orphan(obs, False, start + 4)
    assert cleared.orphan_since is None
    assert not orphan_stale(cleared, 1.0, start + 100, 0.25)


def test_orphan_without_signature_is_never_stale() -> None:
    obs = mark_orphan(observe(None, None, 0.0), True, 0.0)
    assert not orphan_stale(obs, 1.0, 100.0, 0.0)


# -- the holder's side -------------------------------------------------------------------


@given(times, small_leases, st.floats(0, 1e5))
def test_holder_arithmetic(last: float, lease: float, elapsed: float) -> None:
    now = last + elapsed
    tol = 1e-6 * (abs(last) + 1)
    assert remaining(last, lease, now) == pytest.approx(lease - elapsed, abs=tol)
    assert renew_interval(lease) == pytest.approx(lease / 4)
    if elapsed > renew_interval(lease) + tol:
        assert renew_due(last, lease, now)
    if elapsed < renew_interval(lease) - tol:
        assert not renew_due(last, lease, now)
    if elapsed < lease - safety_margin(lease) - tol:
        assert holder_valid(last, lease, now)
    if elapsed > lease - safety_margin(lease) + tol:
        assert not holder_valid(last, lease, now)


@given(times, small_leases, st.floats(0, 1e4), st.floats(0, 1e4))
def test_remaining_only_decreases(last: float, lease: float, a: float, b: float) -> None:
    early, late = sorted((a, b))
    assert remaining(last, lease, last + late) <= remaining(last, lease, last + early)


# -- safety under clock skew: the two sides together ------------------------------------


@given(
    lease=st.floats(0.01, 100.0),
    holder_offset=st.floats(-1e9, 1e9),
    observer_offset=st.floats(-1e9, 1e9),
    renew_gaps=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=12),
    delays=st.lists(st.floats(0.0, 0.999), min_size=12, max_size=12),
    observe_at=st.lists(st.floats(0.0, 6.0), min_size=1, max_size=40),
)
def test_holder_valid_and_contender_stale_never_overlap(
    lease: float,
    holder_offset: float,
    observer_offset: float,
    renew_gaps: list[float],
    delays: list[float],
    observe_at: list[float],
) -> None:
    """Whatever the clock offsets of holder and observer (wall-clock skew), the
    observer never calls the lock stale while the holder still trusts it.

    Model on a true time axis: the holder acquires at 0 and renews (one at a
    time) after gaps of up to one lease, but only while `holder_valid` lets it;
    each renewal is issued at r and lands on the disk after a delay below
    lease/4 (a slower one does not count: the lock module's rule).  The
    observer reads the lock's signature at arbitrary true times.
    """
    margin = stale_margin(lease)
    # (issued, landed) in true time; the acquisition counts as a renewal at 0
    renewals: list[tuple[float, float]] = [(0.0, 0.0)]
    for gap, delay in zip(renew_gaps, delays, strict=False):
        issued = renewals[-1][1] + gap * lease
        if not holder_valid(renewals[-1][0] + holder_offset, lease, issued + holder_offset):
            break
        renewals.append((issued, issued + delay * lease / 4))
    obs: Observation | None = None
    for x in sorted(t * lease for t in observe_at):
        landed = [i for i, (_, at) in enumerate(renewals) if at <= x]
        sig = FileSignature(1, landed[-1], landed[-1], 100)
        obs = observe(obs, sig, x + observer_offset, "tok")
        # the holder's baseline: the last renewal that had completed by x
        baseline = renewals[landed[-1]][0]
        if is_stale(obs, lease, x + observer_offset, margin):
            assert not holder_valid(baseline + holder_offset, lease, x + holder_offset)
