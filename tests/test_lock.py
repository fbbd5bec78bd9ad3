"""printnet.spool.lock: the expiring lock on real files, raced by real processes.

Races use real processes ("spawn" multiprocessing, or a `python -c` holder that
is SIGKILLed / SIGSTOPped); deterministic cases drive the observer's monotonic
clock with a fake one (`FakeClock`) instead of sleeping.
"""

from __future__ import annotations

import errno
import logging
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import pytest
from waiting import wait_for

from printnet.errors import LockHeld, LockLost, SpoolError, UsageError, ValidationError
from printnet.lease import LockRecord, stale_after
from printnet.spool import lock as lockmod
from printnet.spool.lock import (
    ExpiringLock,
    LockTable,
    break_lock,
    selftest,
    validate_name,
)
from printnet.spool.publish import HOST

CTX = multiprocessing.get_context("spawn")
ROOT = Path(__file__).resolve().parent.parent


class FakeClock:
    """A monotonic clock that moves only when told."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def listing(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


@pytest.fixture
def lock_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "locks"
    folder.mkdir()
    return folder


# -- a holder in its own process (python -c: cheap to start, easy to kill) -----------

HOLDER = r"""
import os, sys, time
from pathlib import Path
from printnet.spool.lock import ExpiringLock, LockTable
lock_dir, lease, skew = Path(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
names, orphans, heartbeat = sys.argv[4].split(","), set(sys.argv[5].split(",")), sys.argv[6]
if skew:  # this host's wall clock is off by `skew` seconds
    real_time = time.time
    time.time = lambda: real_time() + skew
table = LockTable(lock_dir)
held = []
for name in names:
    lock = ExpiringLock(table, name, lease=lease, holder="doomed")
    if not lock.try_acquire():
        sys.exit(f"could not acquire {name}")
    if heartbeat == "1":
        lock.start_heartbeat()
    if name in orphans:  # a breaker that died halfway: won the rename, never unlinked
        owner = lock_dir / f"{name}.owner.{lock.token}"
        os.rename(owner, lock_dir / f".{name}.ended.deadbreaker{os.getpid()}")
    held.append(lock)
print(" ".join(lock.token or "" for lock in held), flush=True)
time.sleep(600)
"""


class Holder:
    """A holder process: acquires `names`, prints their tokens, then waits to be killed."""

    def __init__(
        self,
        lock_dir: Path,
        names: list[str],
        *,
        lease: float,
        orphans: frozenset[str] = frozenset(),
        skew: float = 0.0,
        heartbeat: bool = False,
    ) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                HOLDER,
                str(lock_dir),
                repr(lease),
                repr(skew),
                ",".join(names),
                ",".join(sorted(orphans)),
                "1" if heartbeat else "0",
            ],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            pytest.fail(f"holder failed with exit code {self.proc.returncode}")
        self.tokens = dict(zip(names, line.split(), strict=True))

    def kill(self) -> None:
        """kill -9: the holder dies without releasing anything."""
        self.proc.kill()
        self.proc.wait()
        assert self.proc.stdout is not None
        self.proc.stdout.close()


# -- basics ------------------------------------------------------------------------


def test_selftest_passes_on_a_local_filesystem(lock_dir: Path) -> None:
    selftest(lock_dir)
    assert listing(lock_dir) == []


def test_selftest_rejects_a_filesystem_without_hard_links(
    lock_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(src: Any, dst: Any, **kwargs: Any) -> None:
        raise PermissionError(errno.EPERM, "Operation not permitted")  # smbnetfs says EPERM

    monkeypatch.setattr(os, "link", no_links)
    with pytest.raises(SpoolError, match="no hard links"):
        selftest(lock_dir)
    assert listing(lock_dir) == []


def test_selftest_rejects_a_link_that_overwrites(
    lock_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_link = os.link

    def clobbering_link(src: Any, dst: Any, **kwargs: Any) -> None:
        if os.path.lexists(dst):
            return  # "succeeds" onto an existing name
        real_link(src, dst)

    monkeypatch.setattr(os, "link", clobbering_link)
    with pytest.raises(SpoolError, match="existing name succeeded"):
        selftest(lock_dir)


def test_selftest_needs_the_directory(tmp_path: Path) -> None:
    with pytest.raises(SpoolError, match="missing"):
        selftest(tmp_path / "nope")


@pytest.mark.parametrize("name", ["master", "server.FLOOR2", "a-b_c.d", "X" * 100, "9"])
def test_valid_lock_names(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        ".hidden",
        ".nfs0001",
        "..",
        "a/b",
        "a b",
        "tab\t",
        "new\nline",
        "é",
        "x" * 101,
        "master.owner.abc",
        "x.orphan.y",
    ],
)
def test_invalid_lock_names(lock_dir: Path, name: str) -> None:
    with pytest.raises(ValidationError, match="lock name"):
        validate_name(name)
    with pytest.raises(ValidationError):
        ExpiringLock(LockTable(lock_dir), name, lease=1.0, holder="x")
    with pytest.raises(ValidationError):
        LockTable(lock_dir).observe(name)


@pytest.mark.parametrize("lease", [0.0, -1.0, float("nan"), float("inf"), 1e9])
def test_invalid_leases(lock_dir: Path, lease: float) -> None:
    with pytest.raises(ValidationError, match="lease"):
        ExpiringLock(LockTable(lock_dir), "master", lease=lease, holder="x")


def test_acquire_release_and_the_files_on_disk(lock_dir: Path) -> None:
    table = LockTable(lock_dir)
    lock = ExpiringLock(table, "master", lease=30.0, holder="floor2")
    assert lock.try_acquire()
    token = lock.token
    assert token is not None
    assert listing(lock_dir) == ["master", f"master.owner.{token}"]
    assert os.stat(lock_dir / "master").st_ino == os.stat(lock_dir / f"master.owner.{token}").st_ino
    record = LockRecord.decode((lock_dir / "master").read_bytes())
    assert (record.token, record.holder, record.pid, record.lease) == (
        token,
        "floor2",
        os.getpid(),
        30.0,
    )
    lock.check()
    with pytest.raises(UsageError):
        lock.try_acquire()
    other = ExpiringLock(LockTable(lock_dir), "master", lease=30.0, holder="floor3")
    assert not other.try_acquire()
    assert listing(lock_dir) == ["master", f"master.owner.{token}"]  # the loser left nothing
    lock.release()
    assert lock.token is None
    assert listing(lock_dir) == []
    lock.release()  # safe twice
    assert other.try_acquire()
    other.release()


def test_records_show_holder_host_and_pid(lock_dir: Path) -> None:
    table = LockTable(lock_dir)
    a = ExpiringLock(table, "master", lease=30.0, holder="floor2")
    b = ExpiringLock(table, "server.FLOOR2", lease=12.5, holder="station")
    assert a.try_acquire()
    assert b.try_acquire()
    (lock_dir / "garbage").write_bytes(b"not a record")
    (lock_dir / ".nfs000123").write_bytes(b"x")
    recs = LockTable(lock_dir).records()
    assert sorted(recs) == ["master", "server.FLOOR2"]
    assert recs["master"].holder == "floor2"
    assert recs["server.FLOOR2"].holder == "station"
    for name, lock in (("master", a), ("server.FLOOR2", b)):
        assert recs[name].host == HOST
        assert recs[name].pid == os.getpid()
        assert recs[name].token == lock.token
    assert recs["server.FLOOR2"].lease == 12.5
    a.release()
    b.release()


def test_acquire_times_out_with_lock_held(lock_dir: Path) -> None:
    holder = ExpiringLock(LockTable(lock_dir), "master", lease=30.0, holder="floor2")
    assert holder.try_acquire()
    waiter = ExpiringLock(LockTable(lock_dir), "master", lease=30.0, holder="floor3")
    started = time.monotonic()
    with pytest.raises(LockHeld, match=f"held by floor2 on {HOST} pid {os.getpid()}"):
        waiter.acquire(timeout=0.1)
    assert 0.1 <= time.monotonic() - started < 5
    holder.release()
    waiter.acquire(timeout=1.0)
    waiter.release()


def test_context_manager_heartbeats_and_releases(lock_dir: Path) -> None:
    table = LockTable(lock_dir)
    # A 2 s lease: a heartbeat every 0.5 s, so a loaded machine's scheduling delays
    # (tenths of a second) stay far inside it.
    with ExpiringLock(table, "master", lease=2.0, holder="floor2") as lock:
        token = lock.token
        assert token is not None
        first = os.stat(lock_dir / "master").st_mtime_ns
        wait_for(lambda: os.stat(lock_dir / "master").st_mtime_ns != first, what="a heartbeat")
        time.sleep(2.5)  # the scenario: longer than the lease; only heartbeats keep it
        lock.check()
    assert lock.token is None
    assert listing(lock_dir) == []


# -- staleness by observation (fake observer clock) -------------------------------------


def test_a_held_lock_is_stale_only_after_a_full_lease_of_no_change(lock_dir: Path) -> None:
    holder = ExpiringLock(LockTable(lock_dir), "master", lease=10.0, holder="floor2")
    assert holder.try_acquire()
    clock = FakeClock()
    table = LockTable(lock_dir, clock)
    contender = ExpiringLock(table, "master", lease=10.0, holder="floor3")
    assert not contender.try_acquire()  # first sighting
    clock.advance(12.0)  # < lease + lease/4
    status = table.observe("master")
    assert status.present
    assert not status.stale
    assert status.unchanged_for == 12.0
    assert not contender.try_acquire()
    holder.renew()  # a heartbeat: the signature changes, the observation restarts
    clock.advance(12.0)
    assert not contender.try_acquire()
    assert table.observe("master").unchanged_for == 0.0
    clock.advance(12.6)  # now unchanged for 12.6 s > 12.5 s
    assert table.observe("master").stale
    assert contender.try_acquire()
    assert contender.breaks == 1
    assert contender.token != holder.token
    contender.release()


def test_observations_belong_to_the_table(lock_dir: Path) -> None:
    """A fresh table knows nothing: staleness needs this observer's own lease of watching."""
    holder = ExpiringLock(LockTable(lock_dir), "master", lease=10.0, holder="floor2")
    assert holder.try_acquire()
    clock = FakeClock()
    old = LockTable(lock_dir, clock)
    old.observe("master")
    clock.advance(100.0)
    assert old.observe("master").stale
    fresh = LockTable(lock_dir, clock)
    assert not fresh.observe("master").stale
    holder.release()


def test_a_far_future_acquired_time_does_not_keep_a_dead_lock_alive(lock_dir: Path) -> None:
    """Clock skew: a holder whose wall clock is decades ahead, on a file server whose
    mtimes are in the future too, dies; its lock still expires on our clock."""
    doomed = Holder(lock_dir, ["master"], lease=5.0, skew=40 * 365 * 86400.0)
    doomed.kill()
    record = LockRecord.decode((lock_dir / "master").read_bytes())
    assert int(record.acquired[:4]) >= 2060
    far = (time.time_ns() + 40 * 365 * 86400 * 10**9,) * 2
    os.utime(lock_dir / "master", ns=far)
    clock = FakeClock()
    contender = ExpiringLock(LockTable(lock_dir, clock), "master", lease=5.0, holder="floor3")
    assert not contender.try_acquire()
    clock.advance(5.0)
    assert not contender.try_acquire()
    clock.advance(1.26)  # 6.26 s > 5 s lease + 1.25 s margin
    assert contender.try_acquire()
    assert contender.breaks == 1
    contender.release()


def test_a_heartbeating_lock_is_never_broken_whatever_the_clocks_say(
    lock_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The observer's wall clock is absurd and its monotonic clock jumps an hour per
    look; as long as the holder heartbeats between looks, the lock is not stale.
    The same observer breaks it on the first look after the heartbeats stop."""
    holder = ExpiringLock(LockTable(lock_dir), "master", lease=30.0, holder="floor2")
    assert holder.try_acquire()

    class JumpingClock:
        now = 0.0

        def __call__(self) -> float:
            self.now += 3600.0
            return self.now

    real_time = time.time
    skews = iter([1e9, -1e9] * 1000)
    monkeypatch.setattr(time, "time", lambda: real_time() + next(skews))
    table = LockTable(lock_dir, JumpingClock())
    contender = ExpiringLock(table, "master", lease=30.0, holder="floor3")
    for _ in range(30):
        assert not contender.try_acquire()
        seen = os.stat(lock_dir / "master")
        holder.renew()
        after = os.stat(lock_dir / "master")
        assert (after.st_mtime_ns, after.st_ctime_ns) != (seen.st_mtime_ns, seen.st_ctime_ns)
    assert not contender.try_acquire()  # sees the last heartbeat for the first time
    assert contender.try_acquire()  # unchanged for an (observer) hour: stale
    monkeypatch.undo()
    with pytest.raises(LockLost):
        holder.check()
    contender.release()


def test_a_holder_paused_past_its_lease_cannot_renew_even_if_nobody_broke_it(
    lock_dir: Path,
) -> None:
    clock = FakeClock()
    lock = ExpiringLock(LockTable(lock_dir, clock), "master", lease=4.0, holder="floor2")
    assert lock.try_acquire()
    clock.advance(2.9)
    lock.renew()  # 1.1 s left > lease/4: fine
    assert lock.remaining() == 4.0
    clock.advance(2.9)
    lock.check()
    clock.advance(0.2)  # 0.9 s left < lease/4 = 1 s: no longer to be trusted
    with pytest.raises(LockLost, match="ran out"):
        lock.check()
    assert lock.lost
    with pytest.raises(LockLost):
        lock.renew()
    lock.release()  # nobody else ended our generation: release still cleans up
    assert listing(lock_dir) == []


def test_a_lost_holder_cannot_remove_its_successor(lock_dir: Path) -> None:
    clock_a, clock_b = FakeClock(), FakeClock(5.0)
    a = ExpiringLock(LockTable(lock_dir, clock_a), "master", lease=1.0, holder="floor2")
    b = ExpiringLock(LockTable(lock_dir, clock_b), "master", lease=1.0, holder="floor3")
    assert a.try_acquire()
    assert not b.try_acquire()
    clock_b.advance(1.3)
    assert b.try_acquire()  # a is stale to b (a made no heartbeat)
    with pytest.raises(LockLost, match="broken"):
        a.check()
    a.release()
    b.check()
    assert LockRecord.decode((lock_dir / "master").read_bytes()).token == b.token
    assert listing(lock_dir) == ["master", f"master.owner.{b.token}"]
    b.release()


def test_heartbeat_notices_a_broken_lock(lock_dir: Path) -> None:
    holder = ExpiringLock(LockTable(lock_dir), "master", lease=2.0, holder="floor2")
    assert holder.try_acquire()
    holder.start_heartbeat()
    assert break_lock(LockTable(lock_dir), "master", force=True)
    successor = ExpiringLock(LockTable(lock_dir), "master", lease=30.0, holder="floor3")
    assert successor.try_acquire()
    wait_for(lambda: holder.lost, timeout=20, what="the heartbeat to notice")
    with pytest.raises(LockLost):
        holder.check()
    holder.release()
    successor.check()
    successor.release()


def test_break_lock_only_breaks_what_it_saw_stale(lock_dir: Path) -> None:
    holder = ExpiringLock(LockTable(lock_dir), "master", lease=0.05, holder="floor2")
    assert holder.try_acquire()
    table = LockTable(lock_dir)
    assert not break_lock(table, "master")  # first sighting
    assert not break_lock(table, "absent", force=True)
    assert break_lock(table, "master", wait=2.0)
    assert listing(lock_dir) == []
    assert not break_lock(table, "master")


# -- orphans: a breaker that died halfway -------------------------------------------------


def test_an_orphan_is_recovered_after_a_second_lease(lock_dir: Path) -> None:
    doomed = Holder(lock_dir, ["master"], lease=2.0, orphans=frozenset({"master"}))
    doomed.kill()
    token = doomed.tokens["master"]
    assert not (lock_dir / f"master.owner.{token}").exists()
    clock = FakeClock()
    table = LockTable(lock_dir, clock)
    contender = ExpiringLock(table, "master", lease=2.0, holder="floor3")
    assert not contender.try_acquire()
    clock.advance(2.6)  # stale by the first lease, but no owner file: start the orphan clock
    status = table.observe("master")
    assert (status.orphan, status.stale) == (True, False)
    assert not contender.try_acquire()
    clock.advance(2.4)  # orphaned for 2.4 s < 2.5 s
    assert not contender.try_acquire()
    clock.advance(0.2)
    assert contender.try_acquire()
    assert contender.breaks == 1
    names = listing(lock_dir)
    assert f"master.orphan.{token}" in names  # the recoverer's claim, until purged
    assert LockRecord.decode((lock_dir / "master").read_bytes()).token == contender.token
    contender.release()


def test_an_orphan_whose_owner_reappears_is_not_recovered(lock_dir: Path) -> None:
    holder = ExpiringLock(LockTable(lock_dir), "master", lease=1.0, holder="floor2")
    assert holder.try_acquire()
    owner = lock_dir / f"master.owner.{holder.token}"
    aside = lock_dir / ".aside"
    clock = FakeClock()
    table = LockTable(lock_dir, clock)
    os.rename(owner, aside)  # (this changes the lock's ctime: observe after it)
    table.observe("master")
    clock.advance(1.3)
    assert table.observe("master").orphan
    os.rename(aside, owner)  # e.g. a purge that handed it back
    assert not table.observe("master").orphan
    clock.advance(1.3)
    status = table.observe("master")
    assert (status.orphan, status.stale) == (False, True)  # an ordinary stale lock now
    holder.abandon()


def test_a_garbage_lock_file_is_recovered_as_an_orphan(lock_dir: Path) -> None:
    (lock_dir / "master").write_bytes(b"\x00garbage")
    clock = FakeClock()
    table = LockTable(lock_dir, clock)
    contender = ExpiringLock(table, "master", lease=1.0, holder="floor3")
    assert not contender.try_acquire()
    clock.advance(1.3)
    assert not contender.try_acquire()
    assert table.observe("master").record is None
    clock.advance(1.3)
    assert contender.try_acquire()
    contender.release()
    assert [n for n in listing(lock_dir) if not n.startswith("master.orphan.")] == []


# -- garbage -------------------------------------------------------------------------


def test_purge_removes_only_old_leftovers(lock_dir: Path) -> None:
    table = LockTable(lock_dir)
    live = ExpiringLock(table, "master", lease=1.0, holder="floor2")
    assert live.try_acquire()
    record = LockRecord("deadbeef", "h", 1, "x", 1.0, "then").encode()
    files = {
        "old_ended": ".master.ended.1.h.1.0.aa",
        "old_owner": "master.owner.deadbeef",
        "old_claim": "master.orphan.cafe",
        "old_tmp": ".tmp.1.h.1.0.aa",
        "old_probe": ".probe.1.h.1.0.aa",
        "new_ended": ".master.ended.2.h.1.0.bb",
        "nfs": ".nfs0000000000001",
        "foreign": ".keepme",
    }
    for path in files.values():
        (lock_dir / path).write_bytes(record)
    hour_ago = time.time_ns() - 3600 * 10**9
    for key in ("old_ended", "old_owner", "old_claim", "old_tmp", "old_probe", "nfs", "foreign"):
        os.utime(lock_dir / files[key], ns=(hour_ago, hour_ago))
    live_owner = f"master.owner.{live.token}"
    os.utime(lock_dir / live_owner, ns=(hour_ago, hour_ago))  # old mtime, but current
    assert table.purge() == 5
    assert listing(lock_dir) == sorted(
        [".keepme", ".master.ended.2.h.1.0.bb", ".nfs0000000000001", "master", live_owner]
    )
    live.release()


def test_purge_judges_age_by_the_file_servers_clock(
    lock_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A local wall clock a day ahead must not make fresh leftovers look old."""
    (lock_dir / ".master.ended.x").write_bytes(b"")
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 86400)
    assert LockTable(lock_dir).purge() == 0
    assert listing(lock_dir) == [".master.ended.x"]


# -- NFS quirks ------------------------------------------------------------------------


def test_a_rename_that_reports_enoent_after_succeeding_is_a_win(
    lock_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    holder = ExpiringLock(LockTable(lock_dir), "master", lease=30.0, holder="floor2")
    assert holder.try_acquire()
    real_rename = os.rename

    def retransmitted_rename(src: Any, dst: Any) -> None:
        real_rename(src, dst)
        raise FileNotFoundError(errno.ENOENT, "No such file or directory")

    monkeypatch.setattr(os, "rename", retransmitted_rename)
    holder.release()
    assert listing(lock_dir) == []


def test_estale_is_retried(lock_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    holder = ExpiringLock(LockTable(lock_dir), "master", lease=30.0, holder="floor2")
    assert holder.try_acquire()
    real_open = os.open
    failures = iter([True, True, False] * 100)

    def flaky_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if next(failures):
            raise OSError(errno.ESTALE, "Stale file handle")
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", flaky_open)
    status = LockTable(lock_dir).observe("master")
    holder.check()
    monkeypatch.undo()
    assert status.record is not None
    assert status.record.token == holder.token
    holder.release()


# -- races between real processes --------------------------------------------------------


def _append(fd: int, text: str) -> None:
    os.write(fd, text.encode())


def _mutex_worker(
    lock_dir: str,
    log_path: str,
    index: int,
    iterations: int,
    die: bool,
    lease: float,
    start: Barrier,
    results: multiprocessing.Queue[tuple[int, int, int, str]],
) -> None:
    logging.getLogger("printnet").setLevel(logging.ERROR)
    table = LockTable(Path(lock_dir))
    lock = ExpiringLock(table, "master", lease=lease, holder=f"w{index}")
    log_fd = os.open(log_path, os.O_WRONLY | os.O_APPEND)
    rng = random.Random(index)
    error = ""
    done = 0
    start.wait(timeout=60)
    try:
        for i in range(iterations):
            lock.acquire(timeout=60)
            lock.start_heartbeat()
            lock.check()
            _append(log_fd, f"enter {index} {i}\n")
            time.sleep(rng.random() * 0.002)
            _append(log_fd, f"exit {index} {i}\n")
            lock.check()
            done += 1
            if die and i == iterations - 1:
                break
            lock.release()
    except Exception as exc:  # reported to the test, which fails on it
        error = repr(exc)
    results.put((index, done, lock.breaks, error))
    results.close()
    results.join_thread()
    if die:
        os._exit(3)  # killed while holding: no release, heartbeat gone


@pytest.mark.slow
def test_mutual_exclusion_between_processes(lock_dir: Path, tmp_path: Path) -> None:
    """8 processes take turns; 3 of them die holding the lock, which the others must
    then break.  The O_APPEND log must show strictly alternating enter/exit."""
    # A 2 s lease: 8 processes on a loaded 2-core machine must not lose a live
    # holder's lock to scheduling; the 3 dead holders' locks take 2.5 s each to break.
    workers, iterations, lease = 8, 40, 2.0
    dying = {0, 1, 2}
    log_path = tmp_path / "log"
    log_path.touch()
    start = CTX.Barrier(workers)
    results: multiprocessing.Queue[tuple[int, int, int, str]] = CTX.Queue()
    procs = [
        CTX.Process(
            target=_mutex_worker,
            args=(
                str(lock_dir),
                str(log_path),
                i,
                iterations // 4 if i in dying else iterations,
                i in dying,
                lease,
                start,
                results,
            ),
        )
        for i in range(workers)
    ]
    for proc in procs:
        proc.start()
    reports = [results.get(timeout=120) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
    assert [p.exitcode for p in procs] == [3 if i in dying else 0 for i in range(workers)]
    assert [r[3] for r in reports] == [""] * workers
    # a lock left by the last dying worker is broken by one more contender
    final = ExpiringLock(LockTable(lock_dir), "master", lease=lease, holder="final")
    final.acquire(timeout=30)
    final.release()
    assert sum(r[2] for r in reports) + final.breaks == len(dying)

    lines = log_path.read_text().splitlines()
    expected = sum(iterations // 4 if i in dying else iterations for i in range(workers))
    assert len(lines) == 2 * expected
    for enter, leave in zip(lines[0::2], lines[1::2], strict=True):
        kind_a, *who_a = enter.split()
        kind_b, *who_b = leave.split()
        assert (kind_a, kind_b) == ("enter", "exit"), (enter, leave)
        assert who_a == who_b, f"overlap: {enter!r} then {leave!r}"
    assert Counter(line.split()[1] for line in lines[0::2]) == {
        str(i): iterations // 4 if i in dying else iterations for i in range(workers)
    }


RACE_ROUNDS = 8
RACE_LOCKS = 125  # per round: 8 x 125 = 1,000 trials per race test
RACE_ORPHAN_EVERY = 5  # every 5th dead lock is also orphaned (its breaker died halfway)
RACE_CONTENDERS = 6

RaceReport = tuple[int, int, list[tuple[str, str]], int, list[str], str]


def _race_names(round_no: int) -> list[str]:
    return [f"r{round_no}.k{k}" for k in range(RACE_LOCKS)]


def _race_orphans(names: list[str]) -> list[str]:
    return names[::RACE_ORPHAN_EVERY]


class _Aborted(Exception):
    pass


def _wait(barrier: Barrier) -> None:
    try:
        barrier.wait(timeout=120)
    except threading.BrokenBarrierError as exc:
        raise _Aborted from exc


def _contend(
    table: LockTable,
    locks: dict[str, ExpiringLock],
    names: list[str],
    dead: dict[str, str],
    won: list[tuple[str, str]],
    lost: set[str],
    idle: float,
) -> None:
    """Race for every lock in `names` until each has a new generation; add to `lost`
    the locks this process saw stale and still did not get (lost races).  After a
    pass in which nothing happened, sleep `idle` seconds."""
    pending = list(names)
    deadline = time.monotonic() + 60
    while pending:
        before = len(pending)
        for name in list(pending):
            status = table.observe(name)
            if status.record is not None and status.record.token != dead[name]:
                pending.remove(name)  # a new generation: somebody won
                continue
            if locks[name].try_acquire():
                won.append((name, locks[name].token or ""))
                pending.remove(name)
            elif status.stale:
                lost.add(name)
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(pending)} locks never resolved")
        if len(pending) == before:
            time.sleep(idle)  # nothing moved: let a process in the middle of a break run


def _race_contender(
    lock_dir: str,
    index: int,
    synced_clock: Synchronized[float] | None,
    barrier: Barrier,
    results: multiprocessing.Queue[RaceReport],
) -> None:
    """One contender.  Real clock: race as soon as each lock looks stale.  Synced
    clock: every contender first sights every lock at the same fake instant, then
    the test moves the shared clock past the lease and all race at once."""
    logging.getLogger("printnet").setLevel(logging.ERROR)  # 1,000 "broke lock" warnings
    clock: Callable[[], float] = time.monotonic
    if synced_clock is not None:
        shared = synced_clock

        def clock() -> float:
            return shared.value

    table = LockTable(Path(lock_dir), clock)
    dead = dict(
        line.split()
        for line in (Path(lock_dir).parent / "dead-tokens").read_text().splitlines()
    )
    try:
        for round_no in range(RACE_ROUNDS):
            _wait(barrier)
            won: list[tuple[str, str]] = []
            lost: set[str] = set()
            error = ""
            names = _race_names(round_no)
            locks = {
                name: ExpiringLock(table, name, lease=1.0, holder=f"c{index}") for name in names
            }
            try:
                if synced_clock is None:
                    _contend(table, locks, names, dead, won, lost, idle=0.005)
                else:
                    orphans = _race_orphans(names)
                    for name in names:
                        table.observe(name)  # first sighting, at the same fake instant
                    _wait(barrier)  # the test moves the clock 1.3 leases on
                    _wait(barrier)
                    others = [name for name in names if name not in orphans]
                    _contend(table, locks, others, dead, won, lost, idle=0.001)
                    for name in orphans:  # stale, but orphaned: the second lease starts
                        if locks[name].try_acquire():
                            raise AssertionError(f"{name}: orphan taken after one lease")
                    _wait(barrier)  # the test moves the clock another 1.3 leases on
                    _wait(barrier)
                    _contend(table, locks, orphans, dead, won, lost, idle=0.001)
            except _Aborted:
                raise
            except Exception as exc:
                error = repr(exc)
                barrier.abort()
            breaks = sum(lock.breaks for lock in locks.values())
            results.put((index, round_no, won, breaks, sorted(lost), error))
            for lock in locks.values():
                lock.abandon()  # keep the winners' locks on disk for the test to check
    except _Aborted:
        return


def _run_race(lock_dir: Path, *, lease: float, synced: bool) -> tuple[int, int, Counter[int]]:
    """Create 1,000 dead locks (200 also orphaned) with one holder that is then
    SIGKILLed, race 6 contenders for them, check every outcome; return
    (trials, orphan trials, how many trials had 0, 1, 2... losers)."""
    all_names = [name for r in range(RACE_ROUNDS) for name in _race_names(r)]
    orphans = frozenset(n for r in range(RACE_ROUNDS) for n in _race_orphans(_race_names(r)))
    doomed = Holder(lock_dir, all_names, lease=lease, orphans=orphans)
    doomed.kill()
    (lock_dir.parent / "dead-tokens").write_text(
        "".join(f"{name} {doomed.tokens[name]}\n" for name in all_names)
    )
    shared = CTX.Value("d", 0.0) if synced else None
    barrier = CTX.Barrier(RACE_CONTENDERS + 1)
    results: multiprocessing.Queue[RaceReport] = CTX.Queue()
    procs = [
        CTX.Process(target=_race_contender, args=(str(lock_dir), i, shared, barrier, results))
        for i in range(RACE_CONTENDERS)
    ]
    for proc in procs:
        proc.start()
    trials = orphan_trials = 0
    losers: Counter[int] = Counter()
    try:
        for round_no in range(RACE_ROUNDS):
            names = _race_names(round_no)
            barrier.wait(timeout=120)
            if shared is not None:
                barrier.wait(timeout=120)  # everybody has sighted every lock
                shared.value += 1.3 * lease
                barrier.wait(timeout=120)
                barrier.wait(timeout=120)  # everybody has started the orphan clocks
                shared.value += 1.3 * lease
                barrier.wait(timeout=120)
            reports = [results.get(timeout=120) for _ in procs]
            assert [r[5] for r in reports] == [""] * RACE_CONTENDERS
            winners: dict[str, list[str]] = {name: [] for name in names}
            for report in reports:
                for name, token in report[2]:
                    winners[name].append(token)
            on_disk = LockTable(lock_dir).records()
            for name in names:
                assert len(winners[name]) == 1, f"{name}: {len(winners[name])} winners"
                assert on_disk[name].token == winners[name][0]
                assert on_disk[name].token != doomed.tokens[name]
            assert sum(r[3] for r in reports) == len(names)  # each generation ended once
            trials += len(names)
            orphan_trials += len(_race_orphans(names))
            lost = Counter(name for report in reports for name in report[4])
            losers.update(lost[name] for name in names)
    finally:
        barrier.abort()  # on failure, release contenders waiting at the barrier
        for proc in procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
                proc.join()
    assert [p.exitcode for p in procs] == [0] * RACE_CONTENDERS
    return trials, orphan_trials, losers


@pytest.mark.slow
def test_stale_break_race_on_the_real_clock_has_exactly_one_winner(lock_dir: Path) -> None:
    """1,000 dead locks (lease 0.05 s; 200 also orphaned) raced by 6 processes that
    start together: every lock is broken exactly once and acquired exactly once."""
    trials, orphan_trials, losers = _run_race(lock_dir, lease=0.05, synced=False)
    print(f"real-clock race: {trials} trials ({orphan_trials} orphans), losers {losers}")
    assert (trials, orphan_trials) == (1000, 200)
    assert losers[0] < trials  # contenders did see locks stale and lose them to another


@pytest.mark.slow
def test_stale_break_race_all_at_once_has_exactly_one_winner(lock_dir: Path) -> None:
    """The same 1,000 trials, but the 6 contenders share one fake monotonic clock:
    all of them judge every lock stale at the same instant and attack it together."""
    trials, orphan_trials, losers = _run_race(lock_dir, lease=1.0, synced=True)
    print(f"synced race: {trials} trials ({orphan_trials} orphans), losers {losers}")
    assert (trials, orphan_trials) == (1000, 200)
    assert losers[0] < trials / 2  # most locks were contested


def _paused_holder(lock_dir: str, lease: float, conn: Connection) -> None:
    table = LockTable(Path(lock_dir))
    lock = ExpiringLock(table, "master", lease=lease, holder="paused")
    lock.acquire(timeout=10)
    lock.start_heartbeat()
    conn.send(lock.token)
    conn.recv()  # sent after SIGSTOP ... break ... SIGCONT
    deadline = time.monotonic() + 10
    while not lock.lost and time.monotonic() < deadline:
        time.sleep(0.002)
    outcome: dict[str, str] = {"lost_by_heartbeat": str(lock.lost)}
    for op in ("check", "renew"):
        try:
            getattr(lock, op)()
            outcome[op] = "ok"
        except LockLost:
            outcome[op] = "LockLost"
    lock.release()
    conn.send(outcome)


def _process_state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().rsplit(")", 1)[1].split()[0]


@pytest.mark.slow
def test_a_holder_stopped_past_its_lease_is_fenced_and_cannot_hurt_its_successor(
    lock_dir: Path,
) -> None:
    lease = 1.0  # the holder is stopped for as long as it takes; the lease only sets pace
    parent_end, child_end = CTX.Pipe()
    proc = CTX.Process(target=_paused_holder, args=(str(lock_dir), lease, child_end))
    proc.start()
    try:
        assert parent_end.poll(30)
        paused_token = parent_end.recv()
        assert proc.pid is not None
        os.kill(proc.pid, signal.SIGSTOP)
        wait_for(lambda: _process_state(proc.pid or 0) == "T", what="SIGSTOP")
        successor = ExpiringLock(LockTable(lock_dir), "master", lease=lease, holder="next")
        successor.acquire(timeout=30 * lease)
        assert successor.breaks == 1
        assert successor.token != paused_token
        successor.start_heartbeat()
        os.kill(proc.pid, signal.SIGCONT)
        parent_end.send("go")
        assert parent_end.poll(30)
        outcome = parent_end.recv()
        assert outcome == {"lost_by_heartbeat": "True", "check": "LockLost", "renew": "LockLost"}
        proc.join(timeout=30)
        assert proc.exitcode == 0
        successor.check()  # its release did not touch our lock
        assert LockRecord.decode((lock_dir / "master").read_bytes()).token == successor.token
        successor.release()
        assert listing(lock_dir) == []
    finally:
        if proc.is_alive():
            os.kill(proc.pid or 0, signal.SIGCONT)
            proc.kill()
            proc.join()


@pytest.mark.slow
def test_a_live_skewed_holder_survives_and_a_killed_one_is_broken(lock_dir: Path) -> None:
    """A heartbeating holder whose wall clock is 30 years behind keeps its lock for
    many leases against a real-clock contender; killed, it is broken within about
    a lease and a quarter."""
    lease = 1.5  # heartbeats every 0.375 s: scheduling delays stay well inside it
    holder = Holder(lock_dir, ["master"], lease=lease, skew=-30 * 365 * 86400.0, heartbeat=True)
    try:
        contender = ExpiringLock(LockTable(lock_dir), "master", lease=lease, holder="floor3")
        record = LockRecord.decode((lock_dir / "master").read_bytes())
        assert int(record.acquired[:4]) < 2000
        until = time.monotonic() + 5 * lease
        while time.monotonic() < until:
            assert not contender.try_acquire()
            time.sleep(lease / 16)
    finally:
        holder.kill()
    killed = time.monotonic()
    contender.acquire(timeout=30 * lease)
    waited = time.monotonic() - killed
    print(f"broken {waited / lease:.2f} leases after SIGKILL")
    assert contender.breaks == 1
    # Not before the lease could have run out; soon after (margin for a loaded machine).
    assert stale_after(lease) * 0.5 < waited < stale_after(lease) + lease + 3.0
    contender.release()


def test_lock_module_states_its_protocol() -> None:
    """Project rule: the lock module carries its protocol in its docstring."""
    doc = lockmod.__doc__ or ""
    for words in ("link()", "rename(", "ENOENT", "EEXIST", "ESTALE", "utime", "orphan", ".nfs"):
        assert words in doc


# -- a slow share ---------------------------------------------------------------------


def test_a_renewal_slower_than_a_quarter_lease_is_retried_at_once(tmp_path: Path) -> None:
    """A renewal that takes longer than lease/4 does not count (docs/LOCKS.md); the
    next one must go out at once, while the lease is still valid -- not a lease/4
    later, when it has run out (soak 4: live servers lost their leases on a loaded
    host).  A real heartbeating holder process on the power-loss filesystem, whose
    first renewal (utime of its owner file) takes 2.8 s of an 8 s lease: it must
    keep renewing, same generation."""
    from powerloss.mount import PowerMount
    from powerloss.testing import require_fuse

    require_fuse()
    pm = PowerMount(tmp_path / "mnt", image=None, out=tmp_path / "image", seed=1)
    pm.start()
    holder: Holder | None = None
    try:
        locks = pm.path / "locks"
        locks.mkdir()
        pm.slow(2.8, 1, r"^setattr /locks/master")  # (its owner file is <name> too)
        holder = Holder(locks, ["master"], lease=8.0, heartbeat=True)
        token = holder.tokens["master"]
        table = LockTable(locks)
        seen: list[object] = []

        def renewed_twice_after_the_slow_one() -> bool:
            status = table.observe("master")
            assert status.record is not None and status.record.token == token
            if not seen or status.signature != seen[-1]:
                seen.append(status.signature)
            return len(seen) >= 4  # acquired, the slow renewal, two more
        wait_for(renewed_twice_after_the_slow_one, timeout=20, interval=0.1,
                 what="the holder to keep renewing after a slow renewal")
    finally:
        if holder is not None:
            holder.kill()
        pm.close()
