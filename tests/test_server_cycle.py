"""The pure planner's handling of stranded assignments (`cycle.find_stranded`).

A commit that failed after its journal entry was written leaves jobs "printing"
under our live lease that no printer of ours holds; the planner requeues them
(found by tests/test_eio.py). A job our printer holds, or whose result waits to
be committed, or that another holder or generation owns, is left alone."""

from __future__ import annotations

from datetime import UTC, datetime

from conftest import make_ids, make_job

from printnet import verbs
from printnet.masterfile import MasterState, op_add
from printnet.model import JobState
from printnet.server.cycle import UNSTARTED_NOTE, CycleInputs, find_stranded, plan_cycle

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def test_a_stranded_assignment_is_requeued_and_the_others_are_left_alone() -> None:
    stranded, held, other, old = make_ids(4)
    state = MasterState()
    for job_id, holder, token in ((stranded, "S1", "T1"), (held, "S1", "T1"),
                                  (other, "S2", "T9"), (old, "S1", "T0")):
        state.apply(op_add(make_job(job_id)))
        state.apply(verbs.start(job_id, "LOCAL", holder=holder, token=token))
    inputs = CycleInputs(server="S1", token="T1", printing={held})
    assert [j.id for j in find_stranded(state, inputs)] == [stranded]
    plan = plan_cycle(state, inputs, NOW)
    [op] = [op for op in plan.ops if op.id == stranded]
    assert op.args["state"] == JobState.PENDING.value and op.args["note"] == UNSTARTED_NOTE
    assert op.args["token_was"] == "T1"  # fenced: a successor's claim is never undone
    assert {op.id for op in plan.ops} == {stranded}
    # Without a lease nothing is ours to requeue.
    assert find_stranded(state, CycleInputs(server="S1", token="")) == []
