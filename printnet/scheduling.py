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
  (A server may assign a few jobs ahead to a printer that is printing, in
  queue order, given as `slots`: they show as printing and start the moment
  the one before ends.  See `printnet.server.Server.slots`.)
* A class job goes to the first idle member (in configuration order) that has
  its setup mounted (with jobs ahead: the member with the most room).

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
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from printnet.links import is_waiting, parse_failover
from printnet.masterfile import Job, MasterState, SortKey
from printnet.model import JobState, Priority

NOTE_OFFLINE = "Printer offline"
NOTE_STOPPED = "Printer stopped"
NOTE_NIGHT = "Waits for the NIGHT window"


def night_note(night: tuple[int, int]) -> str:
    """The note of an overnight job outside the window: when it opens (the server's
    local wall-clock time, as NIGHT is given)."""
    return f"{NOTE_NIGHT} (opens {night[0] % 24:02d}:00)"


def needs_note(setup: str) -> str:
    return f"Needs {setup}"


def _scheduler_note(note: str) -> bool:
    """Notes the scheduler set and may clear (others, e.g. a restart, stay)."""
    return (note.startswith(("Needs ", NOTE_NIGHT)) or note in (NOTE_STOPPED, NOTE_OFFLINE)
            or is_waiting(note))


def _offline_note(with_form: Sequence[PrinterView]) -> str:
    """What the first job waiting for printers that are all offline or stopped says:
    a remote's link note (``waiting for link to HQ since 10:02``) when one gives it."""
    if all(p.stopped for p in with_form):
        return NOTE_STOPPED
    return next((p.offline_note for p in with_form if p.offline_note), NOTE_OFFLINE)


@dataclass(frozen=True, slots=True)
class PrinterView:
    """What the scheduler needs to know about one printer this server controls."""

    name: str
    setup: str  # the mounted setup
    classes: tuple[str, ...] = ()
    online: bool = True
    stopped: bool = False
    busy: bool = False  # printing a job already
    offline_note: str = ""  # why it is offline, for its queue's first job (a link note)


@dataclass(slots=True)
class Decisions:
    assigned: list[tuple[str, str]] = field(default_factory=list)  # (job id, printer)
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
    return {j.assigned for j in state.printing_jobs()}


def decide(
    state: MasterState,
    printers: Sequence[PrinterView],
    *,
    now_local: datetime,
    night: tuple[int, int],
    busy: set[str] | None = None,
    changed: Collection[str] | None = None,
    slots: Mapping[str, int] | None = None,
    ) -> Decisions:
    """Jobs assigned to idle printers, and notes for jobs that wait.

    `busy` is the set of printers already printing (computed from `state` when
    None).  Assigned jobs' notes are cleared by the assignment itself.

    `changed` makes the walk incremental, for a caller that ran a full walk
    before with the same printers (setups, online, stopped) and NIGHT state:
    then only jobs added or changed since (`changed`) can need a new note, so
    the walk stops as soon as every printer is busy, and only the changed jobs
    it did not reach are looked at.  With 100,000 jobs waiting for busy printers
    a cycle then costs microseconds instead of a walk over all of them.

    `slots` is how many jobs each printer not in `busy` may be given now (absent:
    one).  A server gives a printer that prints fast a few jobs ahead, so that it
    never waits for a cycle between jobs; they are assigned in queue order.
    """
    # A copy: the caller's set is not ours to change.
    busy = busy_printers(state) if busy is None else set(busy)
    night_open = in_night(now_local, night)
    decisions = Decisions()
    taken: set[str] = set()
    room = dict(slots or {})

    # Group printers per destination they serve, in configuration order.
    members: dict[str, list[PrinterView]] = {}
    for p in printers:
        members.setdefault(p.name, []).append(p)
        for cls in p.classes:
            members.setdefault(cls, []).append(p)

    def note(job: Job, text: str) -> None:
        # A failover note stays (LINKDOWN=LOCAL): it is how the job goes back to its
        # remote printer and what its done record says.
        if job.note != text and parse_failover(job.note) is None:
            decisions.notes[job.id] = text

    def ready(p: PrinterView) -> bool:
        return p.online and not p.stopped and p.name not in busy

    # One walk over all the queues these printers serve, merged in queue order, so
    # that a printer takes the first job over its own queue *and* its classes'.
    heads: set[str] = set()  # destinations whose first waiting job was seen
    if changed is None:
        dests = list(members)
        idle_left = -1  # full walk: never stop early
    else:
        dests = [d for d, serving in members.items() if any(ready(p) for p in serving)]
        idle_left = sum(max(1, room.get(p.name, 1)) for p in printers if ready(p))
    visited: set[str] = set()
    queues = [state.queue(dest) for dest in dests] if idle_left != 0 else []
    for job in heapq.merge(*queues, key=_job_key):
        if job.id in taken or job.state is not JobState.PENDING:
            continue
        visited.add(job.id)
        dest = job.destination
        serving = members[dest]
        with_form = _with_form(job, serving, night_open, night)
        if isinstance(with_form, str):
            note(job, with_form)
            continue
        usable = [p for p in with_form if p.online and not p.stopped]
        if not usable:
            # Only the first waiting job carries the printer's trouble as its note;
            # the printer's own status says the rest.
            if dest not in heads:
                note(job, _offline_note(with_form))
                heads.add(dest)
            continue
        heads.add(dest)
        idle = [p for p in usable if p.name not in busy]
        if not idle:
            if _scheduler_note(job.note):
                note(job, "")  # the reason it waited is gone; it waits its turn
            continue
        # The printer with the most room: an idle one before one that is printing
        # with room for a job ahead (configuration order among equals).
        printer = max(idle, key=lambda p: room.get(p.name, 1))
        decisions.assigned.append((job.id, printer.name))
        taken.add(job.id)
        room[printer.name] = room.get(printer.name, 1) - 1
        if room[printer.name] <= 0:
            busy.add(printer.name)
        idle_left -= 1
        if idle_left == 0:
            break

    if changed is not None:
        # Changed jobs the walk did not reach: every printer that could take them
        # is busy (or cannot), so only their notes can change.  Plus the head of
        # each queue whose printers are all offline or stopped: a change elsewhere
        # (a job held, a new one ahead) can make another job the one that says so.
        extra = set(changed)
        for dest, serving in members.items():
            if not any(p.online and not p.stopped for p in serving):
                head = _head(state, dest, serving, night_open, taken)
                if head is not None:
                    extra.add(head.id)
        for job_id in sorted(extra - visited - taken):
            found = state.get(job_id)
            if found is None or found.state is not JobState.PENDING:
                continue
            job = found
            serving = members.get(job.destination, [])
            if not serving:
                continue
            with_form = _with_form(job, serving, night_open, night)
            if isinstance(with_form, str):
                note(job, with_form)
                continue
            usable = [p for p in with_form if p.online and not p.stopped]
            if not usable:
                if _head(state, job.destination, serving, night_open, taken) is job:
                    note(job, _offline_note(with_form))
                continue
            if _scheduler_note(job.note):
                note(job, "")
    return decisions


def _with_form(job: Job, serving: Sequence[PrinterView], night_open: bool,
               night: tuple[int, int]) -> list[PrinterView] | str:
    """The printers that have `job`'s setup mounted, or the note that keeps it
    waiting whatever their load (the NIGHT window, a setup nobody has mounted)."""
    if job.priority is Priority.OVERNIGHT and not night_open:
        return night_note(night)
    with_form = [p for p in serving if not job.setup or job.setup == p.setup]
    return with_form or needs_note(job.setup)


def _head(state: MasterState, dest: str, serving: Sequence[PrinterView], night_open: bool,
          taken: set[str]) -> Job | None:
    """The first waiting job of `dest` that its printers could print but for trouble."""
    for job in state.queue(dest):
        if job.id in taken or job.state is not JobState.PENDING:
            continue
        if job.priority is Priority.OVERNIGHT and not night_open:
            continue
        if any(not job.setup or job.setup == p.setup for p in serving):
            return job
    return None
