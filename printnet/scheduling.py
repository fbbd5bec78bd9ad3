"""Pure core: which job each idle printer takes next, and why the others wait.

Owns the scheduling rules of DESIGN.md:

* Order is priority (high, standard, overnight), then the operator's rank,
  then submission order (job ids sort by submission time).
* A printer takes the first job in that order, over its own queue and the
  queues of its classes, that it can print now.  A job is skipped, with a note
  when the reason is worth telling the user, if it is held, if it needs a
  setup the printer has not mounted (``Needs CHECKS``), if the printer is
  offline or stopped, or if it is an overnight job outside the NIGHT window.
* One job per printer at a time; a job waiting for a form never blocks jobs
  for other printers, nor later jobs for the same printer that need no form.
* A class job goes to the first idle member (in configuration order) that has
  its setup mounted.

The NIGHT window ``start,end`` is in the server's local wall-clock hours,
start inclusive, end exclusive, wrapping midnight when start > end.  An
overnight job never *starts* outside it (one that started inside may finish
after the end).  Daylight-saving rule: the window is judged on the local wall
clock as it reads at that moment; on the spring-forward day a window holding
the skipped hour is an hour shorter, on the fall-back day the repeated hour
counts both times it occurs.  No elapsed-time arithmetic is done across the
change, so nothing can start outside the wall-clock window on either day.

`now` (local, timezone-aware) is a parameter; this module reads no clock.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from printnet.masterfile import Job, MasterState, SortKey
from printnet.model import JobState, Priority

NOTE_OFFLINE = "Printer offline"
NOTE_STOPPED = "Printer stopped"
NOTE_NIGHT = "Waits for the NIGHT window"


def needs_note(setup: str) -> str:
    return f"Needs {setup}"


def _scheduler_note(note: str) -> bool:
    """Notes the scheduler set and may clear (others, e.g. a restart, stay)."""
    return note.startswith("Needs ") or note in (NOTE_NIGHT, NOTE_STOPPED, NOTE_OFFLINE)


@dataclass(frozen=True, slots=True)
class PrinterView:
    """What the scheduler needs to know about one printer this server controls."""

    name: str
    setup: str  # the mounted setup
    classes: tuple[str, ...] = ()
    online: bool = True
    stopped: bool = False
    busy: bool = False  # printing a job already


@dataclass(slots=True)
class Decisions:
    claims: list[tuple[str, str]] = field(default_factory=list)  # (job id, printer)
    notes: dict[str, str] = field(default_factory=dict)  # job id -> new note


def in_night(now_local: datetime, night: tuple[int, int]) -> bool:
    """Whether the local wall-clock time is inside the NIGHT window."""
    start, end = night
    hour = now_local.hour
    if start < end:
        return start <= hour < end
    return hour >= start or hour < end


def _job_key(job: Job) -> SortKey:
    return job.key


def busy_printers(state: MasterState) -> set[str]:
    """Printers with a job printing, by anyone (the master file is global)."""
    return {j.assigned for j in state.jobs.values() if j.state is JobState.PRINTING}


def decide(
    state: MasterState,
    printers: Sequence[PrinterView],
    *,
    now_local: datetime,
    night: tuple[int, int],
    busy: set[str] | None = None,
    ) -> Decisions:
    """Claims for idle printers and notes for jobs that wait.

    `busy` is the set of printers already printing (computed from `state` when
    None).  Claimed jobs' notes are cleared by the claim itself.
    """
    # A copy: the caller's set is not ours to change.
    busy = busy_printers(state) if busy is None else set(busy)
    night_open = in_night(now_local, night)
    decisions = Decisions()
    taken: set[str] = set()

    # Group printers per destination they serve, in configuration order.
    members: dict[str, list[PrinterView]] = {}
    for p in printers:
        members.setdefault(p.name, []).append(p)
        for cls in p.classes:
            members.setdefault(cls, []).append(p)

    def note(job: Job, text: str) -> None:
        if job.note != text:
            decisions.notes[job.id] = text

    # One walk over all the queues these printers serve, merged in queue order, so
    # that a printer takes the first job over its own queue *and* its classes'.
    heads: set[str] = set()  # destinations whose first waiting job was seen
    queues = [state.queue(dest) for dest in members]
    for job in heapq.merge(*queues, key=_job_key):
        if job.id in taken or job.state is not JobState.PENDING:
            continue
        dest = job.printer
        serving = members[dest]
        if job.priority is Priority.OVERNIGHT and not night_open:
            note(job, NOTE_NIGHT)
            continue
        with_form = [p for p in serving if not job.setup or job.setup == p.setup]
        if not with_form:
            note(job, needs_note(job.setup))
            continue
        usable = [p for p in with_form if p.online and not p.stopped]
        if not usable:
            # Only the first waiting job carries the printer's trouble as its note;
            # the printer's own status says the rest.
            if dest not in heads:
                stopped = all(p.stopped for p in with_form)
                note(job, NOTE_STOPPED if stopped else NOTE_OFFLINE)
                heads.add(dest)
            continue
        heads.add(dest)
        idle = [p for p in usable if p.name not in busy]
        if not idle:
            if _scheduler_note(job.note):
                note(job, "")  # the reason it waited is gone; it waits its turn
            continue
        printer = idle[0]
        decisions.claims.append((job.id, printer.name))
        taken.add(job.id)
        busy.add(printer.name)
    return decisions
