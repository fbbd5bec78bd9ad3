"""MasterStore on disk: fenced journal, two servers, compaction, overtaken readers, rebuild."""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

import pytest
from conftest import CliRun, FakeFence, make_ids, make_job

from printnet import masterfile as mf
from printnet.errors import Fenced, LockLost, SpoolError
from printnet.masterfile import MasterState
from printnet.model import JobState, PrintRequest, Priority
from printnet.spool import master as master_io
from printnet.spool.intake import Intake
from printnet.spool.layout import Spool
from printnet.spool.lock import ExpiringLock, LockTable
from printnet.spool.master import MasterStore
from printnet.spool.submit import Source, Submitter


def snapshot_of(state: MasterState) -> list[dict[str, object]]:
    return [j.to_json() for j in state.ordered()]


def fresh(spool: Spool) -> MasterState:
    return master_io.load(spool)


def files(spool: Spool) -> list[str]:
    return sorted(os.listdir(spool.master))


def generations(spool: Spool) -> set[int]:
    return {int(m.group(1)) for n in files(spool) if (m := re.match(r"\w+\.(\d{10})", n))}


@pytest.fixture
def small_compaction(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(master_io, "COMPACT_ENTRIES", 4)
    return 4


def test_empty_spool_reads_as_an_empty_master(spool: Spool) -> None:
    store = MasterStore(spool)
    assert store.refresh() is True
    assert len(store.state) == 0
    assert store.refresh() is False
    assert files(spool) == []


def test_two_servers_commit_and_refresh(spool: Spool) -> None:
    a, b = MasterStore(spool), MasterStore(spool)
    fence = FakeFence()
    x, y = make_ids(2)
    a.refresh()
    b.refresh()
    assert a.commit([mf.op_add(make_job(x))], fence) == 1
    assert b.refresh() is True
    assert x in b.state
    b.commit([mf.op_add(make_job(y)),
              mf.op_state(x, JobState.PRINTING, holder="B", token="tb", assigned="LOCAL")],
             fence)
    assert a.refresh() is True
    assert a.state.jobs[x].state is JobState.PRINTING
    assert snapshot_of(a.state) == snapshot_of(b.state) == snapshot_of(fresh(spool))
    assert fence.checks == 2


def test_stale_writer_is_fenced_and_its_entry_is_invisible(spool: Spool) -> None:
    a, stale = MasterStore(spool), MasterStore(spool)
    fence = FakeFence()
    x, y = make_ids(2)
    a.refresh()
    stale.refresh()
    a.commit([mf.op_add(make_job(x))], fence)
    with pytest.raises(Fenced):
        stale.commit([mf.op_add(make_job(y))], fence)
    assert y not in stale.state  # nothing applied in memory either
    assert set(fresh(spool).jobs) == {x}
    # after a refresh it may write again
    stale.refresh()
    stale.commit([mf.op_add(make_job(y))], fence)
    assert set(fresh(spool).jobs) == {x, y}


def test_a_store_that_never_refreshed_is_fenced(spool: Spool) -> None:
    a = MasterStore(spool)
    a.refresh()
    x, y = make_ids(2)
    a.commit([mf.op_add(make_job(x))], FakeFence())
    with pytest.raises(Fenced):
        MasterStore(spool).commit([mf.op_add(make_job(y))], FakeFence())
    assert set(fresh(spool).jobs) == {x}


def test_a_lost_lock_writes_nothing(spool: Spool) -> None:
    store = MasterStore(spool)
    store.refresh()
    fence = FakeFence()
    fence.lost = True
    with pytest.raises(LockLost):
        store.commit([mf.op_add(make_job(make_ids(1)[0]))], fence)
    assert files(spool) == []


def test_empty_commit_writes_nothing(spool: Spool) -> None:
    store = MasterStore(spool)
    store.refresh()
    assert store.commit([], FakeFence()) == 0
    assert files(spool) == []


def test_invalid_ops_are_skipped_alike_by_writer_and_readers(spool: Spool) -> None:
    store = MasterStore(spool)
    store.refresh()
    x, y = make_ids(2)
    applied = store.commit([
        mf.op_add(make_job(x)), mf.op_state(y, JobState.HELD),
        mf.op_state(x, JobState.COMPLETED), mf.op_state(x, JobState.HELD),
    ], FakeFence())
    assert applied == 2
    assert store.state.jobs[x].state is JobState.HELD
    assert snapshot_of(fresh(spool)) == snapshot_of(store.state)


def _commit_many(store: MasterStore, n: int, fence: FakeFence) -> list[str]:
    made = make_ids(n, start_ms=1_780_000_000_000 + len(store.state) * 1000)
    for i, job_id in enumerate(made):
        prio = list(Priority)[i % 3]
        ops = [mf.op_add(make_job(job_id, priority=prio, title=f"job {i}"))]
        if i % 3 == 1:
            ops.append(mf.op_state(made[i - 1], JobState.HELD, "held"))
        if i % 5 == 4:
            ops.append(mf.op_remove(made[i - 2]))
        store.commit(ops, fence)
    return made


def test_compaction_keeps_old_and_fresh_readers_identical(
    spool: Spool, small_compaction: int,
) -> None:
    writer, old_reader = MasterStore(spool), MasterStore(spool)
    writer.refresh()
    old_reader.refresh()
    fence = FakeFence()
    for _ in range(5):
        _commit_many(writer, 7, fence)
        assert old_reader.refresh() is True
        assert snapshot_of(old_reader.state) == snapshot_of(writer.state)
        assert snapshot_of(fresh(spool)) == snapshot_of(writer.state)
    assert writer.generation >= 5
    # old generations are collected: at most three are kept
    assert generations(spool) <= {writer.generation - 2, writer.generation - 1,
                                  writer.generation}
    assert any(n.startswith("snap.") for n in files(spool))


def test_compaction_by_journal_bytes(spool: Spool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(master_io, "COMPACT_MIN_BYTES", 2000)
    writer = MasterStore(spool)
    writer.refresh()
    _commit_many(writer, 12, FakeFence())
    assert writer.generation >= 1
    assert snapshot_of(fresh(spool)) == snapshot_of(writer.state)


def test_reader_overtaken_by_cleanup_reloads(spool: Spool, small_compaction: int) -> None:
    writer, sleeper = MasterStore(spool), MasterStore(spool)
    writer.refresh()
    fence = FakeFence()
    _commit_many(writer, 2, fence)
    sleeper.refresh()
    start_gen = sleeper.generation
    _commit_many(writer, 30, fence)  # many generations: the sleeper's is deleted
    assert start_gen not in generations(spool)
    assert sleeper.refresh() is True
    assert snapshot_of(sleeper.state) == snapshot_of(writer.state)
    assert sleeper.generation == writer.generation


def test_stale_writer_in_a_collected_generation_is_fenced(
    spool: Spool, small_compaction: int,
) -> None:
    writer, stale = MasterStore(spool), MasterStore(spool)
    writer.refresh()
    fence = FakeFence()
    _commit_many(writer, 2, fence)
    stale.refresh()
    _commit_many(writer, 30, fence)  # the stale writer's generation is cleaned up
    [late] = make_ids(1, start_ms=1_790_000_000_000)
    with pytest.raises(Fenced):
        stale.commit([mf.op_add(make_job(late))], fence)
    assert late not in fresh(spool)
    assert generations(spool) <= {writer.generation - 2, writer.generation - 1,
                                  writer.generation}
    # a reader that catches up never sees the garbage
    writer.refresh()
    assert late not in writer.state


def test_compaction_fenced_after_a_durable_commit_is_not_an_error(
    spool: Spool, small_compaction: int, monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = MasterStore(spool)
    store.refresh()
    fence = FakeFence()
    _commit_many(store, 3, fence)

    def fail(_fence: object) -> None:
        raise Fenced("someone else sealed")

    monkeypatch.setattr(store, "compact", fail)
    [job_id] = make_ids(1, start_ms=1_790_000_000_000)
    assert store.commit([mf.op_add(make_job(job_id))], fence) == 1  # 4th entry: compacts
    assert job_id in fresh(spool)


def test_compactor_that_died_after_sealing(spool: Spool) -> None:
    store = MasterStore(spool)
    store.refresh()
    fence = FakeFence()
    _commit_many(store, 3, fence)
    # the compactor wrote SEAL and died before the snapshot
    (spool.master / f"j.{0:010d}.{store.seq + 1:08d}").write_bytes(mf.SEAL)
    other = MasterStore(spool)
    other.refresh()
    assert other.generation == 1
    [job_id] = make_ids(1, start_ms=1_790_000_000_000)
    with pytest.raises(Fenced):
        store.commit([mf.op_add(make_job(job_id))], fence)
    other.commit([mf.op_add(make_job(job_id))], fence)
    assert store.refresh()
    assert snapshot_of(store.state) == snapshot_of(other.state) == snapshot_of(fresh(spool))


def test_install_makes_readers_reload(spool: Spool) -> None:
    writer, reader = MasterStore(spool), MasterStore(spool)
    writer.refresh()
    fence = FakeFence()
    _commit_many(writer, 6, fence)
    reader.refresh()
    a, b = make_ids(2, start_ms=1_790_000_000_000)
    replacement = MasterState([make_job(a), make_job(b, priority=Priority.HIGH)])
    installer = MasterStore(spool)
    installer.install(replacement, fence)
    assert reader.refresh() is True
    assert [j.id for j in reader.state.ordered()] == [b, a]
    assert snapshot_of(fresh(spool)) == snapshot_of(reader.state)
    # the old writer is stale now
    with pytest.raises(Fenced):
        writer.commit([mf.op_remove(a)], fence)
    writer.refresh()
    writer.commit([mf.op_remove(a)], fence)
    reader.refresh()
    assert set(reader.state.jobs) == {b}


def test_corrupt_snapshot_raises_spool_error_for_readers(spool: Spool) -> None:
    store = MasterStore(spool)
    store.refresh()
    _commit_many(store, 3, FakeFence())
    store.compact(FakeFence())
    snap = spool.master / f"snap.{store.generation:010d}"
    snap.write_bytes(snap.read_bytes()[:-10])
    with pytest.raises(SpoolError):
        fresh(spool)


def test_corrupt_journal_entry_raises_spool_error(spool: Spool) -> None:
    store = MasterStore(spool)
    store.refresh()
    _commit_many(store, 2, FakeFence())
    (spool.master / f"j.{0:010d}.{store.seq + 1:08d}").write_bytes(b"{not json\n")
    with pytest.raises(SpoolError):
        fresh(spool)


# ---------------------------------------------------------------------------
# rebuild


def _submit_and_take(spool: Spool, tmp_path: Path, n: int) -> list[PrintRequest]:
    sub = Submitter(spool, user="alice", station="ws1")
    src = tmp_path / "doc.txt"
    src.write_bytes(b"hello\n")
    from datetime import UTC, datetime

    template = PrintRequest(id="0" * 18, user="", station="", submitted=datetime.now(UTC),
                            printer="LOCAL", title="doc")
    reqs = sub.submit_many([(template, [Source("doc.txt", path=src)]) for _ in range(n)])
    store = MasterStore(spool)
    store.refresh()
    taken, rejected = Intake(spool).take()
    assert rejected == []
    store.commit([mf.op_add(mf.Job.from_request(t.request)) for t in taken
                  if isinstance(t.request, PrintRequest)], FakeFence())
    return reqs


def test_rebuild_state_keeps_what_the_old_master_knew(spool: Spool, tmp_path: Path) -> None:
    reqs = _submit_and_take(spool, tmp_path, 4)
    store = MasterStore(spool)
    store.refresh()
    a, b, c, d = (r.id for r in reqs)
    store.commit([
        mf.op_state(a, JobState.PRINTING, holder="S", token="t", assigned="LOCAL"),
        mf.op_state(b, JobState.HELD, "by user"),
        mf.op_set(c, priority=Priority.HIGH),
        mf.op_state(d, JobState.CANCELED),
    ], FakeFence())
    (spool.done / f"{b}.json").write_text("{}")
    state = master_io.rebuild_state(spool, store.state)
    assert set(state.jobs) == {a, c}  # b is done, d canceled
    assert state.jobs[a].state is JobState.PENDING
    assert state.jobs[a].restarted == 1
    assert state.jobs[c].priority is Priority.HIGH
    assert [j.id for j in state.ordered()] == [c, a]


def test_cli_rebuild_restores_jobs_after_a_corrupt_snapshot(
    spool: Spool, tmp_path: Path, run_cli: CliRun,
) -> None:
    reqs = _submit_and_take(spool, tmp_path, 5)
    store = MasterStore(spool)
    store.refresh()
    store.commit([mf.op_state(reqs[1].id, JobState.HELD, "held")], FakeFence())
    store.compact(FakeFence())
    (spool.done / f"{reqs[0].id}.json").write_text("{}")  # finished meanwhile
    reader = MasterStore(spool)
    reader.refresh()
    snap = spool.master / f"snap.{store.generation:010d}"
    snap.write_bytes(b"garbage" + snap.read_bytes()[7:])
    with pytest.raises(SpoolError):
        fresh(spool)
    result = run_cli("spool", "rebuild", "--lease", "5")
    assert result.exit_code == 0, result.output
    assert "4 live jobs" in result.stdout
    state = fresh(spool)
    assert sorted(state.jobs) == sorted(r.id for r in reqs[1:])
    assert all(j.state is JobState.PENDING for j in state.jobs.values())  # old state lost
    # a reader that was loaded before the rebuild reloads
    assert reader.refresh() is True
    assert snapshot_of(reader.state) == snapshot_of(state)
    # the rebuild released the master lock
    lock = ExpiringLock(LockTable(spool.locks), "master", lease=5, holder="t")
    assert lock.try_acquire()
    lock.release()


def test_rebuild_under_the_real_lock_fences_a_stale_writer(
    spool: Spool, tmp_path: Path,
) -> None:
    from printnet.spool.maintenance import rebuild_master

    reqs = _submit_and_take(spool, tmp_path, 2)
    server = MasterStore(spool)
    server.refresh()
    assert rebuild_master(spool.root, lease=5) == 2
    lock = ExpiringLock(LockTable(spool.locks), "master", lease=5, holder="server")
    assert lock.try_acquire()
    try:
        with pytest.raises(Fenced):
            server.commit([mf.op_state(reqs[0].id, JobState.HELD)], lock)
        server.refresh()
        server.commit([mf.op_state(reqs[0].id, JobState.HELD)], lock)
    finally:
        lock.release()
    assert fresh(spool).jobs[reqs[0].id].state is JobState.HELD


def test_received_requests_skip_fifos_and_symlinks(spool: Spool, tmp_path: Path) -> None:
    from printnet.spool.submit import new_id

    [req] = _submit_and_take(spool, tmp_path, 1)
    fifo = f"{new_id()}.req"
    os.mkfifo(spool.received / fifo)  # claimed, then the server died before rejecting it
    link = f"{new_id()}.req"
    target = tmp_path / "someone-elses.req"
    target.write_bytes((spool.received / f"{req.id}.req").read_bytes().replace(
        req.id.encode(), link[:-4].encode()))
    (spool.received / link).symlink_to(target)
    errors: list[str] = []
    results: list[dict[str, PrintRequest]] = []
    reader = threading.Thread(target=lambda: results.append(master_io.received_requests(
        spool, on_error=lambda name, exc: errors.append(name))), daemon=True)
    reader.start()
    reader.join(10)
    assert not reader.is_alive(), "received_requests blocked opening a FIFO"
    [found] = results
    assert set(found) == {req.id}
    assert sorted(errors) == sorted([fifo, link])
    assert set(master_io.rebuild_state(spool).jobs) == {req.id}
