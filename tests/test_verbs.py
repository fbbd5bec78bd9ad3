"""The job verbs (`printnet.verbs`): each change and each ending, on real spools."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from conftest import make_ids, make_job

from printnet import verbs
from printnet.masterfile import MasterState
from printnet.model import JobState
from printnet.quota import UsageBook, held_since
from printnet.spool.layout import Spool
from printnet.worker import Assignment, Result

NOW = datetime(2026, 3, 4, 15, 30, tzinfo=UTC)


def test_hold_stamps_the_time_and_release_clears_it() -> None:
    (a,) = make_ids(1)
    state = MasterState([make_job(a)])
    state.apply(verbs.hold(state.jobs[a], verbs.HELD_BY_OPERATOR, NOW))
    job = state.jobs[a]
    assert (job.state, job.note, held_since(job)) == (JobState.HELD, "held by the operator", NOW)
    state.apply(verbs.release(job))
    assert (job.state, job.note, job.held_at) == (JobState.PENDING, "", "")


def test_start_then_restart_counts_the_restart_fenced_by_the_token() -> None:
    (a,) = make_ids(1)
    state = MasterState([make_job(a)])
    state.apply(verbs.start(a, "LP", holder="S1", token="t1"))
    job = state.jobs[a]
    assert (job.state, job.holder, job.token, job.assigned) == (JobState.PRINTING, "S1", "t1", "LP")
    stale = verbs.restart(job)
    state.apply(stale)
    assert (job.state, job.restarted, job.note) == (
        JobState.PENDING, 1, "restarted after server failure")
    state.apply(verbs.start(a, "LP", holder="S2", token="t2"))
    assert state.apply_all([stale], strict=False) == 0  # the old holder's op is void


def test_cancel_writes_a_record_and_a_line_that_charges_nothing(spool: Spool) -> None:
    (a,) = make_ids(1)
    job = make_job(a, pages=12)
    change = verbs.cancel(job, by=verbs.OPERATOR, at=NOW, server="S1",
                          request={"id": a})
    assert change.ended == [a] and [op.kind for op in change.ops] == ["remove"]
    verbs.write_endings(spool, change.endings)
    verbs.write_endings(spool, change.endings)  # a retried commit: written once
    record = json.loads((spool.done / f"{a}.json").read_text())
    assert (record["outcome"], record["reason"], record["request"]) == (
        "canceled", "canceled by the operator", {"id": a})
    lines = [json.loads(x) for x in spool.accounting.read_text().splitlines()]
    assert [(x["job"], x["outcome"]) for x in lines] == [(a, "canceled")]
    book = UsageBook()
    book.feed(lines)
    assert book.used("alice", NOW - timedelta(days=1)) == 0 and book.ids == {a}


def test_settle_ends_holds_or_requeues_by_the_outcome(spool: Spool) -> None:
    a, b, c = make_ids(3)
    state = MasterState([make_job(i) for i in (a, b, c)])
    for i in (a, b, c):
        state.apply(verbs.start(i, "LP", holder="S1", token="t"))

    def result(job_id: str, outcome: JobState, **kw: object) -> Result:
        return Result(Assignment(spool, state.jobs[job_id], "t"), outcome, finished=NOW,
                      **kw)  # type: ignore[arg-type]

    done = verbs.settle(state.jobs[a], result(a, JobState.COMPLETED, pages=3), server="S1")
    held = verbs.settle(state.jobs[b], result(b, JobState.HELD, reason="out of paper"),
                        server="S1")
    back = verbs.settle(state.jobs[c], result(c, JobState.PENDING, interrupted=True),
                        server="S1")
    assert done.ended == [a] and done.endings[0].line["pages"] == 3
    assert held.endings == [] and back.endings == []
    state.apply_all(done.ops + held.ops + back.ops)
    assert a not in state
    assert (state.jobs[b].state, state.jobs[b].note) == (JobState.HELD, "out of paper")
    assert held_since(state.jobs[b]) == NOW
    assert (state.jobs[c].state, state.jobs[c].restarted) == (JobState.PENDING, 1)


def test_expire_and_remove_done() -> None:
    a, b = make_ids(2)
    job = make_job(a, state=JobState.HELD)
    change = verbs.expire(job, reason="canceled: held too long", at=NOW, server="S1")
    assert change.endings[0].record["reason"] == "canceled: held too long"
    state = MasterState([make_job(b)])
    state.apply(verbs.start(b, "LP", holder="S1", token="t"))
    state.apply(verbs.remove_done(state.jobs[b]))
    assert b not in state
