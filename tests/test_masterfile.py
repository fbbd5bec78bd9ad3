"""MasterState (the one place jobs change), ordering, and the snapshot/journal encodings."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from printnet import masterfile as mf
from printnet.errors import InvalidTransition, SpoolError
from printnet.masterfile import Job, MasterState, Op
from printnet.model import Format, JobIdGenerator, JobState, Priority, clean_text

DESTS = ("LOCAL", "LINE", "POOL")


def make_job(job_id: str, **fields: Any) -> Job:
    values: dict[str, Any] = {
        "id": job_id, "user": "alice", "station": "ws1",
        "submitted": "2026-03-01T12:00:00.000000Z", "destination": "LOCAL",
        "priority": Priority.STANDARD, "copies": 1, "title": "t", "setup": "",
        "header": True, "format": Format.TEXT, "state": JobState.PENDING,
    }
    values.update(fields)
    return Job(**values)


def ids_from(n: int, start: int = 1_770_000_000_000) -> list[str]:
    gen = JobIdGenerator()
    return [gen.next(start + i, i) for i in range(n)]


def jobs_equal(a: MasterState, b: MasterState) -> None:
    assert [j.to_json() for j in a.ordered()] == [j.to_json() for j in b.ordered()]
    for dest in DESTS:
        assert [j.id for j in a.queue(dest)] == [j.id for j in b.queue(dest)]


def check_order(state: MasterState) -> None:
    keys = [(j.priority.rank, j.rank, j.id) for j in state.ordered()]
    assert keys == sorted(keys)
    assert {j.id for j in state.ordered()} == set(state.jobs)
    seen: list[str] = []
    for dest in {j.destination for j in state.jobs.values()} | set(DESTS):
        queue = list(state.queue(dest))
        assert all(j.destination == dest for j in queue)
        qkeys = [j.key for j in queue]
        assert qkeys == sorted(qkeys)
        seen += [j.id for j in queue]
    assert sorted(seen) == sorted(state.jobs)  # every job in exactly one queue


# ---------------------------------------------------------------------------
# strategies: random op sequences (valid and invalid alike)

text_fields = st.text(max_size=30).map(clean_text)


@st.composite
def new_jobs(draw: st.DrawFn, job_id: str) -> Job:
    return make_job(
        job_id,
        user=draw(st.sampled_from(["alice", "bob", "c.d@e"])),
        destination=draw(st.sampled_from(DESTS)),
        priority=draw(st.sampled_from(Priority)),
        copies=draw(st.integers(1, 999)),
        title=draw(text_fields),
        setup=draw(st.sampled_from(["", "CHECKS", "LABELS"])),
        header=draw(st.booleans()),
        format=draw(st.sampled_from(Format)),
        state=draw(st.sampled_from([JobState.PENDING, JobState.HELD])),
        rank=draw(st.integers(-3, 3)),
        size=draw(st.integers(0, 10**9)),
    )


@st.composite
def op_sequences(draw: st.DrawFn) -> list[Op]:
    pool = ids_from(draw(st.integers(1, 12)))
    ops: list[Op] = []
    for _ in range(draw(st.integers(0, 30))):
        job_id = draw(st.sampled_from(pool))
        kind = draw(st.sampled_from(["add", "add", "state", "state", "note", "set", "remove"]))
        if kind == "add":
            ops.append(mf.op_add(draw(new_jobs(job_id))))
        elif kind == "state":
            state = draw(st.sampled_from(JobState))
            extra: dict[str, Any] = {}
            if state is JobState.PRINTING:
                extra = {"holder": draw(st.sampled_from(["S1", "S2", ""])),
                         "token": draw(st.sampled_from(["t1", "t2"])),
                         "assigned": draw(st.sampled_from(DESTS))}
            if draw(st.booleans()):
                extra["token_was"] = draw(st.sampled_from(["", "t1", "t2"]))
            if draw(st.booleans()):
                extra["restarted"] = True
            ops.append(mf.op_state(job_id, state, draw(text_fields), **extra))
        elif kind == "note":
            ops.append(mf.op_note(job_id, draw(text_fields)))
        elif kind == "set":
            changes = draw(st.dictionaries(
                st.sampled_from(["priority", "rank", "destination", "pages", "copies"]),
                st.integers(-5, 5) | st.sampled_from(list(Priority)) | st.sampled_from(DESTS),
                max_size=2,
            ))
            ops.append(mf.op_set(job_id, **changes))
        else:
            ops.append(mf.op_remove(job_id, draw(st.none() | st.sampled_from(["", "t1"]))))
    return ops


def apply_lenient(state: MasterState, ops: list[Op]) -> None:
    for op in ops:
        before = copy.deepcopy([j.to_json() for j in state.ordered()])
        try:
            state.apply(op)
        except InvalidTransition:
            # Invalid ops change nothing.
            assert [j.to_json() for j in state.ordered()] == before


@settings(max_examples=80)
@given(op_sequences())
def test_ordered_and_queues_stay_sorted_under_random_ops(ops: list[Op]) -> None:
    state = MasterState()
    for op in ops:
        try:
            state.apply(op)
        except InvalidTransition:
            pass
        check_order(state)


@settings(max_examples=60)
@given(op_sequences())
def test_invalid_ops_leave_the_state_unchanged(ops: list[Op]) -> None:
    apply_lenient(MasterState(), ops)


@settings(max_examples=60)
@given(op_sequences())
def test_replay_of_decoded_ops_equals_live_application(ops: list[Op]) -> None:
    live = MasterState()
    live.apply_all(ops, strict=False)
    replayed = MasterState()
    replayed.apply_all(mf.decode_ops(mf.encode_ops(ops)), strict=False)
    jobs_equal(live, replayed)


@settings(max_examples=80)
@given(op_sequences())
def test_ops_round_trip(ops: list[Op]) -> None:
    assert mf.decode_ops(mf.encode_ops(ops)) == ops


@settings(max_examples=60)
@given(op_sequences(), st.integers(0, 10**6))
def test_snapshot_round_trip_at_random_states(ops: list[Op], generation: int) -> None:
    state = MasterState()
    state.apply_all(ops, strict=False)
    gen, decoded = mf.decode_snapshot(mf.encode_snapshot(state, generation))
    assert gen == generation
    jobs_equal(state, decoded)
    check_order(decoded)


def test_snapshot_round_trip_with_awkward_text() -> None:
    titles = [clean_text("tab\there"), clean_text("new\nline"), "", "a,b,c", "Größe 東京 🖨",
              "  ", "end 0", "printnet-master"]
    ids = ids_from(len(titles))
    state = MasterState(make_job(i, title=t, note=t) for i, t in zip(ids, titles, strict=True))
    _, decoded = mf.decode_snapshot(mf.encode_snapshot(state, 3))
    assert [j.title for j in decoded.ordered()] == [j.title for j in state.ordered()]
    jobs_equal(state, decoded)


def test_snapshot_encoder_replaces_stray_tabs_and_newlines() -> None:
    [job_id] = ids_from(1)
    state = MasterState([make_job(job_id, title="a\tb\nc")])
    _, decoded = mf.decode_snapshot(mf.encode_snapshot(state, 1))
    assert decoded.jobs[job_id].title == "a b c"


# ---------------------------------------------------------------------------
# corrupt snapshots


def _snapshot(n: int = 3) -> bytes:
    state = MasterState(make_job(i, title=f"job {k}") for k, i in enumerate(ids_from(n)))
    return mf.encode_snapshot(state, 7)


@pytest.mark.parametrize("cut", [0, 1, 10, 40, -1, -2, -8, -30])
def test_truncated_snapshot_raises_spool_error(cut: int) -> None:
    data = _snapshot()
    with pytest.raises(SpoolError):
        mf.decode_snapshot(data[:cut])


@given(st.data())
def test_snapshot_truncated_anywhere_raises_spool_error(data: st.DataObject) -> None:
    blob = _snapshot(4)
    cut = data.draw(st.integers(0, len(blob) - 1))
    with pytest.raises(SpoolError):
        mf.decode_snapshot(blob[:cut])


def _replace_line(blob: bytes, index: int, line: str) -> bytes:
    lines = blob.decode().split("\n")
    lines[index] = line
    return "\n".join(lines).encode()


def _replace_field(blob: bytes, field: str, value: str) -> bytes:
    lines = blob.decode().split("\n")
    parts = lines[1].split("\t")
    parts[mf.FIELDS.index(field)] = value
    lines[1] = "\t".join(parts)
    return "\n".join(lines).encode()


CORRUPTIONS: dict[str, Callable[[bytes], bytes]] = {
    "not-utf8": lambda b: b[:20] + b"\xff\xfe" + b[22:],
    "bad-magic": lambda b: b.replace(b"printnet-master", b"printnet-mastex", 1),
    "newer-version": lambda b: b.replace(b"printnet-master\t1\t", b"printnet-master\t2\t", 1),
    "bad-generation": lambda b: b.replace(b"\t7\t", b"\tx\t", 1),
    "count-too-high": lambda b: b.replace(b"\t3\t", b"\t4\t", 1),
    "unknown-field": lambda b: b.replace(b",pages", b",pages,colour", 1),
    "missing-line": lambda b: b"\n".join(
        [*b.split(b"\n")[:1], *b.split(b"\n")[2:]]),
    "bad-trailer": lambda b: b.replace(b"end\t3\n", b"end\t2\n"),
    "extra-field": lambda b: _replace_line(b, 1, b.decode().split("\n")[1] + "\tx"),
    "bad-int": lambda b: _replace_field(b, "copies", "many"),
    "bad-priority": lambda b: _replace_field(b, "priority", "urgent"),
    "bad-state": lambda b: _replace_field(b, "state", "lost"),
    "bad-bool": lambda b: _replace_field(b, "header", "yes"),
    "duplicate-id": lambda b: _replace_line(b, 2, b.decode().split("\n")[1]),
    "empty": lambda b: b"",
}


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_corrupt_snapshot_raises_spool_error(name: str) -> None:
    blob = CORRUPTIONS[name](_snapshot())
    with pytest.raises(SpoolError):
        mf.decode_snapshot(blob)


@settings(max_examples=200)
@given(st.data())
def test_random_byte_damage_raises_only_spool_error(data: st.DataObject) -> None:
    blob = bytearray(_snapshot(3))
    for _ in range(data.draw(st.integers(1, 3))):
        pos = data.draw(st.integers(0, len(blob) - 1))
        blob[pos] = data.draw(st.integers(0, 255))
    try:
        _, state = mf.decode_snapshot(bytes(blob))
    except SpoolError:
        return
    check_order(state)


@pytest.mark.parametrize(
    "data",
    [b"{", b"[1]\n", b"null\n", b'{"op":"add"}\n', b'{"op":1,"id":"x"}\n', b"\xff\n",
     b"[" * 100_000 + b"\n"],
)
def test_corrupt_journal_entry_raises_spool_error(data: bytes) -> None:
    with pytest.raises(SpoolError):
        mf.decode_ops(data)


# ---------------------------------------------------------------------------
# apply: the one place a job changes


@pytest.fixture
def state() -> MasterState:
    return MasterState()


def test_add_then_duplicate_add_is_invalid(state: MasterState) -> None:
    [job_id] = ids_from(1)
    state.apply(mf.op_add(make_job(job_id)))
    with pytest.raises(InvalidTransition):
        state.apply(mf.op_add(make_job(job_id, title="other")))
    assert state.jobs[job_id].title == "t"


def test_printing_needs_a_holder_and_fences_by_token(state: MasterState) -> None:
    [job_id] = ids_from(1)
    state.apply(mf.op_add(make_job(job_id)))
    with pytest.raises(InvalidTransition):
        state.apply(mf.op_state(job_id, JobState.PRINTING))
    state.apply(mf.op_state(job_id, JobState.PRINTING, holder="S1", token="T1", assigned="LP"))
    job = state.jobs[job_id]
    assert (job.state, job.holder, job.token, job.assigned) == (
        JobState.PRINTING, "S1", "T1", "LP")
    # A stale holder (another token) cannot finish it.
    with pytest.raises(InvalidTransition):
        state.apply(mf.op_state(job_id, JobState.COMPLETED, token_was="T0"))
    state.apply(mf.op_state(job_id, JobState.PENDING, mf.RESTARTED_NOTE,
                            token_was="T1", restarted=True))
    assert (job.state, job.holder, job.token, job.note, job.restarted) == (
        JobState.PENDING, "", "", mf.RESTARTED_NOTE, 1)


def test_terminal_jobs_cannot_be_revived(state: MasterState) -> None:
    [job_id] = ids_from(1)
    state.apply(mf.op_add(make_job(job_id)))
    state.apply(mf.op_state(job_id, JobState.CANCELED))
    for new in JobState:
        with pytest.raises(InvalidTransition):
            state.apply(mf.op_state(job_id, new, holder="S"))
    state.apply(mf.op_remove(job_id))
    assert job_id not in state


BAD_OPS: list[Op] = [
    Op("state", "X", {"state": "lost"}),
    Op("state", "X", {}),
    Op("state", "X", {"state": "held", "note": 5}),
    Op("note", "X", {}),
    Op("note", "X", {"note": ["x"]}),
    Op("set", "X", {"rank": "first"}),
    Op("set", "X", {"rank": True}),
    Op("set", "X", {"priority": "urgent"}),
    Op("set", "X", {"printer": 3}),
    Op("set", "X", {"pages": None}),
    Op("set", "X", {"title": "new"}),
    Op("explode", "X", {}),
    Op("add", "Y", {}),
    Op("add", "Y", {"job": "nope"}),
    Op("add", "Y", {"job": {"id": "Y"}}),
    Op("add", "Y", {"job": {**make_job("Y").to_json(), "rank": "x"}}),
    Op("add", "Y", {"job": {**make_job("Y").to_json(), "priority": "urgent"}}),
    Op("add", "Y", {"job": make_job("Z").to_json()}),  # id differs from the op's
    Op("add", "X", {"job": make_job("X").to_json()}),  # already there
    Op("remove", "Q", {}),
]


@pytest.mark.parametrize("op", BAD_OPS, ids=[f"{o.kind}-{sorted(o.args)}" for o in BAD_OPS])
def test_malformed_ops_raise_invalid_transition_and_change_nothing(op: Op) -> None:
    state = MasterState([make_job("X", priority=Priority.HIGH, rank=2)])
    before = [j.to_json() for j in state.ordered()]
    with pytest.raises(InvalidTransition):
        state.apply(op)
    assert [j.to_json() for j in state.ordered()] == before
    check_order(state)
    # replay skips it and carries on
    assert state.apply_all([op, mf.op_note("X", "after")], strict=False) == 1
    assert state.jobs["X"].note == "after"


def test_set_moves_a_job_in_the_queues(state: MasterState) -> None:
    a, b, c = ids_from(3)
    for job_id in (a, b, c):
        state.apply(mf.op_add(make_job(job_id)))
    state.apply(mf.op_set(c, rank=state.front_rank(Priority.STANDARD)))
    assert [j.id for j in state.queue("LOCAL")] == [c, a, b]
    state.apply(mf.op_set(a, priority=Priority.HIGH))
    assert [j.id for j in state.ordered()] == [a, c, b]
    state.apply(mf.op_set(b, destination="LINE"))
    assert [j.id for j in state.queue("LOCAL")] == [a, c]
    assert [j.id for j in state.queue("LINE")] == [b]
    assert set(state.destinations()) == {"LOCAL", "LINE"}


def test_ordered_is_priority_then_rank_then_submission() -> None:
    ids = ids_from(6)
    prios = [Priority.OVERNIGHT, Priority.STANDARD, Priority.HIGH, Priority.STANDARD,
             Priority.HIGH, Priority.OVERNIGHT]
    state = MasterState(make_job(i, priority=p) for i, p in zip(ids, prios, strict=True))
    assert [j.id for j in state.ordered()] == [ids[2], ids[4], ids[1], ids[3], ids[0], ids[5]]


def test_from_request_held_and_sizes() -> None:
    from datetime import UTC, datetime

    from printnet.model import PrintRequest, SpooledFile

    [job_id] = ids_from(1)
    req = PrintRequest(
        id=job_id, user="u", station="s", submitted=datetime(2026, 1, 1, tzinfo=UTC),
        printer="LOCAL", hold=True, setup=None,
        files=(SpooledFile("0", "a", 3, "0" * 64), SpooledFile("1", "b", 4, "0" * 64)),
    )
    job = Job.from_request(req)
    assert (job.state, job.size, job.setup, job.submitted) == (
        JobState.HELD, 7, "", "2026-01-01T00:00:00.000000Z")


def test_a_listing_state_finds_each_touched_line_whatever_the_ids_length() -> None:
    """`LazyState` finds a journal op's line by the first ID_LENGTH characters; an id
    of another length that shares them (never made by printnet, but a snapshot may
    hold one) must not be taken for another job's line."""
    short, long_ = "A" * mf.ID_LENGTH, "A" * mf.ID_LENGTH + "B"
    jobs = [mf.Job(id=i, user="u", station="s", submitted=f"2026-03-01T12:00:0{n}.000000Z",
                   destination="P", priority=Priority.STANDARD, copies=1, title=i[-3:],
                   setup="", header=True, format=Format.TEXT, state=JobState.PENDING)
            for n, i in enumerate([long_, short, "C" * mf.ID_LENGTH])]
    for order in (jobs, jobs[::-1]):
        data = mf.encode_snapshot(MasterState(order), 1)
        for touched in (short, long_):
            _, lazy = mf.decode_snapshot_lazy(data)
            assert isinstance(lazy, mf.LazyState)
            lazy.apply(mf.op_note(touched, "touched"))
            col = lazy.columns.index("id"), lazy.columns.index("note")
            notes = {row[col[0]]: row[col[1]] for row in lazy.rows()}
            assert notes == {j.id: "touched" if j.id == touched else "" for j in jobs}
            assert len(lazy) == 3
