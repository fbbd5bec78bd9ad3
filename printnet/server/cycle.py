"""Pure core: one locked cycle on one shared disk, planned.

Owns `plan_cycle`: from the master state (refreshed under the master lock),
what this server brings to the cycle (`CycleInputs`: requests admitted,
printers' results, orphans found, control requests, the policy, the printers
free to schedule) and "now", to one commit's ops plus what the shell must do
around it (`Plan`: endings to write before the commit, printers to stop,
assignments to hand out, requests to remove and answers to write after it, lines
to log).  Also `find_orphans` (printing jobs whose holder's lease is gone),
given how a holder's lease is judged.  The shell is
`printnet.server.disk.SpoolService` (its `_locked_cycle` gathers the inputs,
calls this, and carries out the plan); `tests/test_queue_stateful.py` drives
the same functions.

The order within a cycle (each step sees the ops of the steps before it):

1. **Reconcile** (the first cycle of a server's life on a disk): requests in
   received/ that the master file lacks are entered; this server's previous
   life's printing jobs are requeued (``restarted after server failure``),
   or removed when their done/ record exists.
2. **Add** the jobs admitted (`printnet.spool.admission` counted and checked
   them).
3. **Results** of our printers (`verbs.settle`); a result whose job is gone
   or carries another token is dropped (our lease had lapsed).
4. **Orphans**: printing jobs of holders whose lease is gone are requeued,
   or removed when their done/ record exists.
5. **Control requests** (cancel, hold, release), checked against the owner.
6. **Policy**: held expiry and quota releases (`inputs.policy`, on the
   state so far).
7. **Schedule** (`plan_schedule`): `scheduling.decide` on the state so far
   (`Plan.state`): assignments and notes.  The server runs it as a second call, once
   the endings of steps 1-6 are durable, with its printers as they are then.

No os, time or socket: the shell passes everything in; `inputs.policy` is
the shell's (it reads the usage book the admission keeps).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Final

from printnet import verbs
from printnet.links import parse_failover
from printnet.masterfile import Job, MasterState, Op, op_add
from printnet.model import ControlAction, ControlRequest, JobState, PrintRequest
from printnet.quota import policy_held
from printnet.scheduling import Decisions, PrinterView, busy_printers, decide

if TYPE_CHECKING:
    from printnet.worker import Result

UNSTARTED_NOTE: Final = "requeued: assigned, but the disk failed before it started"


@dataclass(frozen=True)
class Reconcile:
    """What a server starting on a disk found there (the first cycle only)."""

    received: Mapping[str, PrintRequest]  # print requests in received/, by id
    done: Collection[str]  # ids with a done/ record


@dataclass(frozen=True)
class Control:
    """A station's control request, and whether its sender is an operator."""

    request: ControlRequest
    operator: bool


@dataclass(frozen=True)
class Schedule:
    """Our printers as the scheduler sees them now."""

    views: Sequence[PrinterView]
    now_local: datetime  # the NIGHT window's clock
    night: tuple[int, int]
    own: Collection[str] = ()  # our printers (the master file's printing jobs are not
    busy: Collection[str] = ()  # their truth: our workers say which are busy)
    slots: Mapping[str, int] | None = None
    incremental: bool = False  # printers and NIGHT as at the last full walk


@dataclass
class CycleInputs:
    server: str  # this server's name
    token: str  # its server lock's generation ("" without one)
    reconcile: Reconcile | None = None
    taken: Collection[str] = ()  # print requests taken in, not yet in the master file
    printing: Collection[str] = ()  # jobs our printers print now
    admitted: Sequence[Job] = ()
    results: Sequence[Result] = ()
    orphans: Sequence[Job] = ()
    orphans_done: Collection[str] = ()  # orphans whose done/ record exists
    # (job id, token) of assigned jobs whose printer had started them (`server.started`),
    # of our previous life and of the orphans' holders: only these count as restarted.
    started: Collection[tuple[str, str]] = ()
    controls: Sequence[Control] = ()
    policy: Callable[[MasterState], verbs.Change] | None = None
    schedule: Schedule | None = None  # None: assign nothing (stopping, or no lease)


@dataclass
class Plan:
    ops: list[Op] = field(default_factory=list)
    endings: list[verbs.Ending] = field(default_factory=list)  # written before the commit
    stop: list[str] = field(default_factory=list)  # jobs our printers must stop, first
    settled: list[str] = field(default_factory=list)  # jobs whose results were taken
    assigned: list[tuple[str, str]] = field(default_factory=list)  # (job, printer)
    decisions: Decisions | None = None  # what the scheduler decided (step 7 ran)
    state: MasterState | None = None  # the state after steps 1-6 (what step 7 sees)
    ended: list[str] = field(default_factory=list)  # requests to remove once committed
    clean: list[str] = field(default_factory=list)  # finished jobs' leftover requests
    answers: list[tuple[ControlRequest, dict[str, str]]] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)
    printed: int = 0
    requeued: int = 0

    def take(self, change: verbs.Change) -> None:
        self.ops += change.ops
        self.endings += change.endings
        self.ended += change.ended


def find_orphans(state: MasterState, me: str,
                 lease: Callable[[str], tuple[bool, str | None]]) -> list[Job]:
    """Printing jobs of other holders whose lease is gone or of another generation.

    `lease(holder)` says whether the holder's lease is alive (present, not stale
    on the observer's own clock) and its token; asked once per holder."""
    out = []
    seen: dict[str, tuple[bool, str | None]] = {}
    for job in state.printing_jobs():
        if job.holder == me:
            continue
        if job.holder not in seen:
            seen[job.holder] = lease(job.holder)
        alive, token = seen[job.holder]
        if not alive or token != job.token:
            out.append(job)
    return out


def find_stranded(state: MasterState, inputs: CycleInputs) -> list[Job]:
    """Jobs printing under our live lease that none of our printers has, and whose
    result is not waiting to be committed.

    A commit can fail after its journal entry was written (the disk fails on the
    folder's fsync or the listing that follows the put): the assignments in it
    were never given to a printer, and nobody else would requeue them while our
    lease lives (found by tests/test_eio.py: a job "printing" on an idle printer
    for ever)."""
    if not inputs.token:
        return []
    waiting = {r.assignment.job.id for r in inputs.results}
    return [job for job in state.printing_jobs()
            if job.holder == inputs.server and job.token == inputs.token
            and job.id not in inputs.printing and job.id not in waiting]


def plan_cycle(state: MasterState, inputs: CycleInputs, now: datetime) -> Plan:
    """One commit for this cycle, and what to do around it (see the module docstring)."""
    plan = Plan()
    if inputs.reconcile is not None:
        _reconcile(state, inputs, inputs.reconcile, plan)
    plan.ops += [op_add(job) for job in inputs.admitted]
    for result in inputs.results:
        _settle(state, inputs, result, plan)
    for job in find_stranded(state, inputs):
        plan.ops.append(verbs.requeue(job, UNSTARTED_NOTE, token_was=job.token))
        plan.logs.append(f"job {job.id} requeued: its assignment was committed but never "
                         "given to a printer")
        plan.requeued += 1
    for job in inputs.orphans:
        if job.id in inputs.orphans_done:
            plan.ops.append(verbs.remove_done(job))
            plan.ended.append(job.id)
        else:
            why = f"holder {job.holder} stopped renewing its lease"
            _requeue_lost(job, inputs, plan, started=why, unstarted=f"{why} before starting it")
    preview = _Preview(state, plan.ops)
    for control in inputs.controls:
        req = control.request
        plan.answers.append((req, _control(preview, inputs, control, now, plan)))
    if inputs.policy is not None:
        policy = inputs.policy(preview.state)
        for op in policy.ops:
            preview.add(op)
        plan.take(policy)
        plan.logs += [f"job {i} canceled: held longer than HELDEXPIRY" for i in policy.ended]
    plan.state = preview.state
    if inputs.schedule is not None:
        plan_schedule(plan.state, inputs, inputs.schedule, plan)
    return plan


def _reconcile(state: MasterState, inputs: CycleInputs, found: Reconcile, plan: Plan) -> None:
    """At start: jobs in received/ the master lacks; our previous life's jobs."""
    for job_id, req in found.received.items():
        if job_id not in state and job_id not in found.done and job_id not in inputs.taken:
            plan.ops.append(op_add(Job.from_request(req)))
        elif job_id in found.done and job_id not in state:
            plan.clean.append(job_id)  # finished; its request outlived a crash
    for job in state.jobs.values():
        if job.state is JobState.PRINTING and job.holder == inputs.server \
                and job.token != inputs.token and job.id not in inputs.printing:
            if job.id in found.done:
                plan.ops.append(verbs.remove_done(job))
            else:
                _requeue_lost(job, inputs, plan,
                              started="this server restarted while printing it",
                              unstarted="this server restarted before printing it")


def _requeue_lost(job: Job, inputs: CycleInputs, plan: Plan, *, started: str,
                  unstarted: str) -> None:
    """A printing job whose holder is gone goes back to pending: as a restart if its
    printer had sent a byte (`inputs.started`), quietly if it was only assigned ahead."""
    if (job.id, job.token) in inputs.started:
        plan.ops.append(verbs.restart(job))
        plan.logs.append(f"job {job.id} requeued: {started}")
    else:
        plan.ops.append(verbs.hand_back(job))
        plan.logs.append(f"job {job.id} requeued: {unstarted}")
    plan.requeued += 1


def _settle(state: MasterState, inputs: CycleInputs, result: Result, plan: Plan) -> None:
    a = result.assignment
    job_id = a.job.id
    plan.settled.append(job_id)
    current = state.get(job_id)
    if current is None or current.token != a.token:
        # Someone requeued it while we printed (our lease had lapsed): their
        # version wins; our print is recorded as a restart by the requeue.
        plan.logs.append(f"job {job_id}: result {result.outcome} dropped (lease lost)")
        return
    if result.outcome is JobState.COMPLETED:
        plan.printed += 1
    elif result.outcome is JobState.ABORTED:
        plan.logs.append(f"job {job_id} aborted: {result.reason}")
    elif result.outcome is JobState.HELD:
        plan.logs.append(f"job {job_id} held: {result.reason}")
    plan.take(verbs.settle(current, result, server=inputs.server))


def _control(preview: _Preview, inputs: CycleInputs, control: Control, now: datetime,
             plan: Plan) -> dict[str, str]:
    req = control.request
    outcomes: dict[str, str] = {}
    for job_id in req.jobs:
        job = preview.state.get(job_id)
        if job is None:
            outcomes[job_id] = "not found (finished or never queued)"
            continue
        if job.user != req.user and not control.operator:
            outcomes[job_id] = "not your job"
            continue
        if req.action is ControlAction.RELEASE and not control.operator and policy_held(job):
            outcomes[job_id] = f"{job.note}: only an operator can release it"
            continue
        if req.action is ControlAction.CANCEL:
            change = verbs.cancel(job, by=req.user, at=now, server=inputs.server)
            if job.state is JobState.PRINTING:
                # Tell the printer to stop; its interrupted result then finds the job gone.
                plan.stop.append(job_id)
            plan.logs.append(f"job {job_id} canceled by {req.user}")
        elif req.action is ControlAction.HOLD and job.state is JobState.PENDING:
            change = verbs.Change([verbs.hold(job, f"held by {req.user}", now)])
        elif req.action is ControlAction.RELEASE and job.state is JobState.HELD:
            change = verbs.Change([verbs.release(job)])
        else:
            outcomes[job_id] = f"not possible while {job.state.value}"
            continue
        for op in change.ops:
            preview.add(op)
        plan.take(change)
        outcomes[job_id] = "applied"
    return outcomes


def plan_schedule(state: MasterState, inputs: CycleInputs, schedule: Schedule,
                  plan: Plan) -> None:
    """Step 7 alone: assignments and notes (`plan.decisions` keeps what was decided)."""
    # Our own printers' workers say how many jobs each can take; the master file's
    # printing jobs say it for the others.
    busy = (busy_printers(state) - set(schedule.own)) | set(schedule.busy)
    decisions = decide(state, schedule.views, now_local=schedule.now_local,
                       night=schedule.night, busy=busy,
                       changed=state.changed if schedule.incremental else None,
                       slots=schedule.slots)
    for job_id, printer in decisions.assigned:
        job = state.get(job_id)
        kept = job.note if job is not None and parse_failover(job.note) else ""
        plan.ops.append(verbs.start(job_id, printer, holder=inputs.server, token=inputs.token,
                                    note=kept))
        plan.assigned.append((job_id, printer))
    plan.ops += [verbs.note(job_id, text) for job_id, text in decisions.notes.items()]
    plan.decisions = decisions


class _Preview:
    """The master state as it will be after the ops planned so far (copy-on-write)."""

    def __init__(self, state: MasterState, ops: Iterable[Op]) -> None:
        self.base = state
        self.ops = list(ops)
        self._state: MasterState | None = None

    @property
    def state(self) -> MasterState:
        if not self.ops:
            return self.base
        if self._state is None:
            # Copies only the jobs the ops touch: O(ops), not O(jobs), per cycle.
            self._state = self.base.preview(self.ops)
        return self._state

    def add(self, op: Op) -> None:
        from dataclasses import replace

        self.ops.append(op)
        if self._state is not None:
            job = self._state.jobs.get(op.id)
            if job is not None and job is self.base.jobs.get(op.id):
                self._state.jobs[op.id] = replace(job)  # copy before the first change
            self._state.apply_all([op], strict=False)
