"""`decide(changed=...)`, the incremental walk, against the full walk.

A server runs the full walk when its printers or the NIGHT window change and
then only tells `decide` which jobs changed.  For any state, printers and
changes, the incremental walk must give the same assignments, and the notes it
gives on top of the notes the full walk gave before must be the notes a full
walk gives now.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from conftest import make_ids, make_job

from printnet.masterfile import Job, MasterState
from printnet.model import JobState, Priority
from printnet.scheduling import PrinterView, decide

NOW_DAY = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
NOW_NIGHT = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
PRINTERS = ("P1", "P2", "P3")
SETUPS = ("", "", "", "CHECKS", "LABELS")


def _random_job(rng: random.Random, job_id: str) -> Job:
    return make_job(
        job_id, destination=rng.choice((*PRINTERS, "POOL", "POOL")),
        priority=rng.choice((Priority.HIGH, Priority.STANDARD, Priority.STANDARD,
                             Priority.OVERNIGHT)),
        setup=rng.choice(SETUPS), state=rng.choice(
            (JobState.PENDING,) * 6 + (JobState.HELD, JobState.PRINTING)),
        holder="S", assigned=rng.choice(PRINTERS), rank=rng.choice((0, 0, 0, -1, 2)),
        note=rng.choice(("", "", "Needs CHECKS", "Printer offline", "restarted")))


def _views(rng: random.Random) -> list[PrinterView]:
    return [PrinterView(name=p, setup=rng.choice(("STANDARD", "CHECKS", "LABELS")),
                        classes=("POOL",) if rng.random() < 0.7 else (),
                        online=rng.random() < 0.75, stopped=rng.random() < 0.15)
            for p in PRINTERS]


def _apply_notes(state: MasterState, notes: dict[str, str]) -> None:
    for job_id, note in notes.items():
        job = state.get(job_id)
        assert job is not None
        job.note = note


@pytest.mark.parametrize("seed", range(300))
def test_incremental_walk_matches_the_full_walk(seed: int) -> None:
    rng = random.Random(seed)
    ids = make_ids(rng.randint(0, 40))
    state = MasterState(_random_job(rng, i) for i in ids)
    views = _views(rng)
    now = rng.choice((NOW_DAY, NOW_NIGHT))
    busy = {p for p in PRINTERS if rng.random() < 0.4}
    slots = {p: rng.randint(1, 3) for p in PRINTERS}
    first = decide(state, views, now_local=now, night=(0, 6), busy=busy, slots=slots)
    _apply_notes(state, first.notes)
    for job_id, printer in first.assigned:  # as the assignment ops commit them
        job = state.jobs[job_id]
        job.state, job.note, job.assigned = JobState.PRINTING, "", printer
    state.changed.clear()

    # Changes since: new jobs, and jobs changed in place (as journal ops would).
    for job_id in make_ids(rng.randint(0, 5), start_ms=1_800_000_000_000 + seed):
        job = _random_job(rng, job_id)
        state._insert(job)
    for job in list(state.jobs.values()):
        if rng.random() < 0.15:
            state._unindex(job)
            job.state = rng.choice((JobState.PENDING, JobState.HELD))
            job.setup = rng.choice(SETUPS)
            state._index(job)
            state.changed.add(job.id)

    full = decide(state, views, now_local=now, night=(0, 6), busy=busy, slots=slots)
    incremental = decide(state, views, now_local=now, night=(0, 6), busy=busy,
                         slots=slots, changed=set(state.changed))
    assert incremental.assigned == full.assigned
    before = {j.id: j.note for j in state.jobs.values()}
    expected = before | full.notes
    got = before | incremental.notes
    claimed = {job_id for job_id, _ in full.assigned}
    assert {i: n for i, n in got.items() if i not in claimed} == \
        {i: n for i, n in expected.items() if i not in claimed}
