"""The pure scheduling rules: order, forms, one job per printer, classes, NIGHT, DST."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from printnet import masterfile as mf
from printnet import scheduling as sch
from printnet.masterfile import Job, MasterState
from printnet.model import Format, JobIdGenerator, JobState, Priority
from printnet.scheduling import PrinterView, decide

DAY = datetime(2026, 3, 2, 12, 0, tzinfo=ZoneInfo("Europe/Berlin"))  # a Monday noon
BERLIN = ZoneInfo("Europe/Berlin")


def ids(n: int) -> list[str]:
    gen = JobIdGenerator()
    return [gen.next(1_770_000_000_000 + i, 0) for i in range(n)]


def job(job_id: str, **fields: Any) -> Job:
    values: dict[str, Any] = {
        "id": job_id, "user": "u", "station": "s", "submitted": "2026-03-01T00:00:00Z",
        "destination": "LP", "priority": Priority.STANDARD, "copies": 1, "title": "",
        "setup": "", "header": True, "format": Format.TEXT, "state": JobState.PENDING,
    }
    values.update(fields)
    return Job(**values)


def assigned(state: MasterState, printers: list[PrinterView], **kw: Any) -> list[tuple[str, str]]:
    kw.setdefault("now_local", DAY)
    kw.setdefault("night", (0, 6))
    return decide(state, printers, **kw).assigned


def test_priority_then_submission_order() -> None:
    a, b, c, d = ids(4)
    state = MasterState([
        job(a, priority=Priority.OVERNIGHT), job(b), job(c, priority=Priority.HIGH), job(d),
    ])
    printer = [PrinterView("LP", "STANDARD")]
    assert assigned(state, printer) == [(c, "LP")]
    state.apply(mf.op_remove(c))
    assert assigned(state, printer) == [(b, "LP")]
    state.apply(mf.op_remove(b))
    assert assigned(state, printer) == [(d, "LP")]
    state.apply(mf.op_remove(d))
    assert assigned(state, printer, night=(0, 6), now_local=DAY.replace(hour=3)) == [(a, "LP")]


def test_operator_rank_beats_submission_order() -> None:
    a, b = ids(2)
    state = MasterState([job(a), job(b, rank=-1)])
    assert assigned(state, [PrinterView("LP", "STANDARD")]) == [(b, "LP")]


def test_job_needing_a_form_waits_with_a_note_while_later_jobs_print() -> None:
    a, b, c = ids(3)
    state = MasterState([job(a, setup="CHECKS"), job(b), job(c, setup="STANDARD")])
    result = decide(state, [PrinterView("LP", "STANDARD")], now_local=DAY, night=(0, 6))
    assert result.assigned == [(b, "LP")]
    assert result.notes == {a: "Needs CHECKS"}
    # once CHECKS is mounted the checks job goes first (it is older)
    result = decide(state, [PrinterView("LP", "CHECKS")], now_local=DAY, night=(0, 6))
    assert result.assigned == [(a, "LP")]


def test_one_job_per_printer() -> None:
    a, b, c = ids(3)
    state = MasterState([job(a), job(b), job(c, destination="LP2")])
    got = assigned(state, [PrinterView("LP", "STANDARD"), PrinterView("LP2", "STANDARD")])
    assert sorted(got) == sorted([(a, "LP"), (c, "LP2")])
    # a printer already printing (by anyone) takes nothing
    state.apply(mf.op_state(a, JobState.PRINTING, holder="S9", token="t", assigned="LP"))
    assert assigned(state, [PrinterView("LP", "STANDARD")]) == []
    assert assigned(state, [PrinterView("LP", "STANDARD")], busy=set()) == [(b, "LP")]


def test_decide_does_not_change_the_callers_busy_set() -> None:
    [a] = ids(1)
    busy: set[str] = set()
    decide(MasterState([job(a)]), [PrinterView("LP", "STANDARD")], now_local=DAY,
           night=(0, 6), busy=busy)
    assert busy == set()


def test_held_and_printing_jobs_are_never_assigned() -> None:
    a, b, c = ids(3)
    state = MasterState([job(a, state=JobState.HELD), job(b, state=JobState.HELD)])
    assert assigned(state, [PrinterView("LP", "STANDARD")]) == []
    state.apply(mf.op_add(job(c)))
    assert assigned(state, [PrinterView("LP", "STANDARD")]) == [(c, "LP")]


def test_class_job_goes_to_the_first_idle_member_with_the_form() -> None:
    a, b, c = ids(3)
    members = [
        PrinterView("P1", "STANDARD", classes=("POOL",)),
        PrinterView("P2", "CHECKS", classes=("POOL",)),
        PrinterView("P3", "CHECKS", classes=("POOL",)),
    ]
    state = MasterState([job(a, destination="POOL", setup="CHECKS")])
    assert assigned(state, members) == [(a, "P2")]
    assert assigned(state, members, busy={"P2"}) == [(a, "P3")]
    assert assigned(state, members, busy={"P2", "P3"}) == []
    state = MasterState([job(a, destination="POOL"), job(b, destination="POOL"),
                         job(c, destination="POOL")])
    assert assigned(state, members) == [(a, "P1"), (b, "P2"), (c, "P3")]


def test_class_and_printer_queues_are_merged_in_queue_order() -> None:
    old_class, new_printer, high_class = ids(3)
    lp = [PrinterView("LP", "STANDARD", classes=("POOL",))]
    # an older class job goes before a newer job for the printer itself
    state = MasterState([job(old_class, destination="POOL"), job(new_printer, destination="LP")])
    assert assigned(state, lp) == [(old_class, "LP")]
    # and a high-priority class job before a standard job for the printer
    state = MasterState([job(new_printer, destination="LP"),
                         job(high_class, destination="POOL", priority=Priority.HIGH)])
    assert assigned(state, lp) == [(high_class, "LP")]


def test_offline_and_stopped_printers_note_the_first_waiting_job_only() -> None:
    a, b = ids(2)
    state = MasterState([job(a), job(b)])
    result = decide(state, [PrinterView("LP", "STANDARD", online=False)], now_local=DAY,
                    night=(0, 6))
    assert result.assigned == []
    assert result.notes == {a: sch.NOTE_OFFLINE}
    result = decide(state, [PrinterView("LP", "STANDARD", stopped=True)], now_local=DAY,
                    night=(0, 6))
    assert result.notes == {a: sch.NOTE_STOPPED}


def test_stale_scheduler_notes_are_cleared_but_restart_notes_stay() -> None:
    a, b, c = ids(3)
    state = MasterState([
        job(a, state=JobState.PRINTING, holder="S", assigned="LP"),
        job(b, note="Needs CHECKS"), job(c, note=mf.RESTARTED_NOTE),
    ])
    result = decide(state, [PrinterView("LP", "STANDARD")], now_local=DAY, night=(0, 6))
    assert result.assigned == []
    assert result.notes == {b: ""}


def test_jobs_for_printers_of_other_servers_are_left_alone() -> None:
    a, b = ids(2)
    state = MasterState([job(a, destination="OTHER", setup="CHECKS"), job(b)])
    result = decide(state, [PrinterView("LP", "STANDARD")], now_local=DAY, night=(0, 6))
    assert result.assigned == [(b, "LP")]
    assert a not in result.notes


# ---------------------------------------------------------------------------
# NIGHT window

windows = st.tuples(st.integers(0, 23), st.integers(0, 23)).filter(lambda w: w[0] != w[1])


def inside(hour: int, window: tuple[int, int]) -> bool:
    start, end = window
    hours = {h % 24 for h in range(start, start + (end - start) % 24)}
    return hour in hours


@given(windows, st.integers(0, 23), st.integers(0, 59))
def test_overnight_jobs_only_start_inside_the_night_window(
    window: tuple[int, int], hour: int, minute: int,
) -> None:
    a, b = ids(2)
    state = MasterState([job(a, priority=Priority.OVERNIGHT), job(b, destination="LP2")])
    now = DAY.replace(hour=hour, minute=minute)
    result = decide(state, [PrinterView("LP", "STANDARD"), PrinterView("LP2", "STANDARD")],
                    now_local=now, night=window)
    if inside(hour, window):
        assert (a, "LP") in result.assigned
        assert a not in result.notes
    else:
        assert all(j != a for j, _ in result.assigned)
        assert result.notes[a] == f"Waits for the NIGHT window (opens {window[0]:02d}:00)"
    assert (b, "LP2") in result.assigned  # standard jobs print at any hour


@pytest.mark.parametrize(
    ("window", "open_hours"),
    [((0, 6), {0, 1, 2, 3, 4, 5}), ((22, 6), {22, 23, 0, 1, 2, 3, 4, 5}), ((23, 0), {23}),
     ((5, 6), {5})],
)
def test_night_window_examples(window: tuple[int, int], open_hours: set[int]) -> None:
    got = {h for h in range(24) if sch.in_night(DAY.replace(hour=h, minute=30), window)}
    assert got == open_hours


def _open_minutes(day: datetime, window: tuple[int, int]) -> tuple[int, set[int]]:
    """Walk a local calendar day in real (UTC) minutes; return open minutes and hours."""
    start = datetime(day.year, day.month, day.day, tzinfo=BERLIN).astimezone(UTC)
    end = (datetime(day.year, day.month, day.day, tzinfo=BERLIN) + timedelta(days=1)).astimezone(
        UTC)
    [a] = ids(1)
    state = MasterState([job(a, priority=Priority.OVERNIGHT)])
    printer = [PrinterView("LP", "STANDARD")]
    minutes = 0
    hours: set[int] = set()
    t = start
    while t < end:
        local = t.astimezone(BERLIN)
        got = decide(state, printer, now_local=local, night=window).assigned
        # the rule in the docstring: judged on the wall clock as it reads
        assert bool(got) == sch.in_night(local, window) == inside(local.hour, window)
        if got:
            minutes += 1
            hours.add(local.hour)
        t += timedelta(minutes=15)
    return minutes * 15, hours


def test_dst_spring_forward_window_holding_the_skipped_hour_is_shorter() -> None:
    day = datetime(2026, 3, 29)  # 02:00 -> 03:00 in Europe/Berlin
    assert datetime(2026, 3, 29, 12, tzinfo=BERLIN).utcoffset() == timedelta(hours=2)
    minutes, hours = _open_minutes(day, (0, 6))
    assert minutes == 5 * 60
    assert 2 not in hours
    minutes, _ = _open_minutes(day, (2, 3))  # a window of only the skipped hour never opens
    assert minutes == 0


def test_dst_fall_back_repeated_hour_counts_twice() -> None:
    day = datetime(2026, 10, 25)  # 03:00 -> 02:00 in Europe/Berlin
    assert datetime(2026, 10, 25, 12, tzinfo=BERLIN).utcoffset() == timedelta(hours=1)
    minutes, hours = _open_minutes(day, (0, 6))
    assert minutes == 7 * 60
    assert hours == {0, 1, 2, 3, 4, 5}
    minutes, _ = _open_minutes(day, (2, 3))
    assert minutes == 2 * 60
    # and outside the window nothing starts, whichever fold
    for fold in (0, 1):
        local = datetime(2026, 10, 25, 2, 30, fold=fold, tzinfo=BERLIN)
        assert sch.in_night(local, (2, 3))
        assert not sch.in_night(local, (3, 4))
