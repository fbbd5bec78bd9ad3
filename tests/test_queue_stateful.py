"""The queue as a state machine against a reference model.

Two "servers" (each a MasterStore, an Intake and a lease token) share one spool.
Rules submit, take in, claim, complete, cancel, hold/release, compact, commit with
a stale view, and crash a server at any step (also half-way through a claim,
between taking requests in and entering them, and between writing a finished
job's done/ record and committing its removal).  A crashed holder's printing jobs
are requeued once its lease, renewed on a fake clock by live servers only, is
judged stale by `printnet.lease`.

Every change goes through the shipped code: the server's planner
(`printnet.server.cycle.plan_cycle`: reconcile at start, adds, printers' results,
orphans, control requests, scheduling), its orphan finder
(`printnet.server.cycle.find_orphans`) and the job verbs' endings
(`printnet.verbs.write_endings`); the test only carries out a plan the way
`SpoolService._locked_cycle` does (endings, commit, remove finished requests).
Invariants: no submitted job is ever lost (each is in exactly one place: new/,
received/ + master, or done/, or, after a crash, one of the in-between places
recovery resolves), a fresh reader, a long-lived reader and every up-to-date
server agree, and queue order holds.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import FakeFence
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from printnet import lease as lease_mod
from printnet import masterfile as mf
from printnet import verbs
from printnet.errors import Fenced
from printnet.masterfile import Job, MasterState, Op
from printnet.model import ControlAction, ControlRequest, JobState, PrintRequest, Priority
from printnet.scheduling import PrinterView
from printnet.server.cycle import (
    Control,
    CycleInputs,
    Plan,
    Reconcile,
    Schedule,
    find_orphans,
    plan_cycle,
)
from printnet.spool import master as master_io
from printnet.spool.intake import Intake
from printnet.spool.layout import Spool
from printnet.spool.master import MasterStore
from printnet.spool.publish import unique_name
from printnet.spool.submit import Source, Submitter
from printnet.worker import Assignment, Result

LEASE = 10.0
PRINTERS = {"S1": "LP1", "S2": "LP2"}
NIGHT_TIME = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # inside NIGHT (0, 6): all jobs may print



@dataclass
class ModelJob:
    id: str
    printer: str
    priority: Priority
    state: JobState
    # new | half (claim half done) | received | master | done, or after a crash
    # between a finished job's done/ record and its removal: finished (record and
    # master entry) | done-left (record and request; the job left the master)
    where: str
    holder: str = ""
    token: str = ""
    restarted: int = 0
    note: str = ""


@dataclass
class Server:
    name: str
    token: str
    store: MasterStore
    intake: Intake
    seen: int = -1  # the machine's commit count when this server's view was current
    observations: dict[str, lease_mod.Observation] = field(default_factory=dict)


def dump(state: MasterState) -> list[dict[str, Any]]:
    return [j.to_json() for j in state.ordered()]


class QueueMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.patches = pytest.MonkeyPatch()
        self.patches.setattr(master_io, "COMPACT_ENTRIES", 3)  # compact often
        self.dir = Path(tempfile.mkdtemp(prefix="printnet-queue-"))
        self.spool, _ = Spool.init(self.dir / "spool")
        self.submitter = Submitter(self.spool, user="alice", station="ws1")
        self.jobs: dict[str, ModelJob] = {}
        self.commits = 0
        self.now = 0.0
        self.board: dict[str, tuple[str, int]] = {}  # server name -> (token, heartbeat count)
        self.servers: dict[str, Server | None] = dict.fromkeys(PRINTERS)
        self.incarnation = itertools.count()
        self.voided: list[tuple[str, str]] = []  # (job id, token) of assignments that ended
        self.claimed: dict[tuple[str, str], Job] = {}  # (job id, token) -> job as claimed
        self.fence = FakeFence()
        self.reader = MasterStore(self.spool)  # a long-lived reader, never writing
        for name in PRINTERS:
            self._start(name)

    def teardown(self) -> None:
        self.patches.undo()
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- helpers -------------------------------------------------------------------

    def _any_alive(self) -> bool:
        return any(s is not None for s in self.servers.values())

    def _any_in(self, where: str, *states: JobState) -> bool:
        return any(j.where == where and (not states or j.state in states)
                   for j in self.jobs.values())

    def _server(self, data: st.DataObject) -> Server:
        alive = sorted(n for n, s in self.servers.items() if s is not None)
        server = self.servers[data.draw(st.sampled_from(alive), label="server")]
        assert server is not None
        return server

    def _refresh(self, server: Server) -> None:
        server.store.refresh()
        server.seen = self.commits

    def _commit(self, server: Server, ops: list[Op]) -> int:
        assert server.seen == self.commits, "commit from a stale view outside stale_commit"
        applied = server.store.commit(ops, self.fence)
        if ops:
            self.commits += 1
            server.seen = self.commits
        return applied

    def _plan(self, server: Server, **inputs: Any) -> Plan:
        """The server's planner on this server's current view.

        Every claimed job of the model counts as started (its printer sent bytes):
        the model requeues them as restarts; `test_claim_ahead` covers the others."""
        inputs.setdefault("started", {(j.id, j.token) for j in self.jobs.values()
                                      if j.state is JobState.PRINTING})
        # A live server's printers hold every job it claimed under its token (none
        # is stranded: `cycle.find_stranded` covers a commit that failed halfway).
        inputs.setdefault("printing", {i for i, t in self.claimed if t == server.token})
        return plan_cycle(server.store.state,
                          CycleInputs(server=server.name, token=server.token, **inputs),
                          NIGHT_TIME)

    def _carry_out(self, server: Server, plan: Plan) -> int:
        """As `SpoolService._locked_cycle`: endings first, the commit, then the
        finished jobs' requests leave received/."""
        verbs.write_endings(self.spool, plan.endings)
        applied = self._commit(server, plan.ops)
        for job_id in plan.ended:
            if job_id not in server.store.state:
                (self.spool.received / f"{job_id}.req").unlink()
        for job_id in plan.clean:
            (self.spool.received / f"{job_id}.req").unlink()
        return applied

    def _control(self, server: Server, action: ControlAction, job_id: str) -> Plan:
        req = ControlRequest(id=f"C{len(self.jobs):017d}", user="alice", station="ws1",
                             submitted=NIGHT_TIME, action=action, jobs=(job_id,))
        plan = self._plan(server, controls=[Control(req, operator=False)])
        assert plan.answers == [(req, {job_id: "applied"})]
        return plan

    def _pick(self, data: st.DataObject, where: str, *states: JobState) -> ModelJob | None:
        candidates = sorted(
            j.id for j in self.jobs.values()
            if j.where == where and (not states or j.state in states)
        )
        if not candidates:
            return None
        return self.jobs[data.draw(st.sampled_from(candidates))]

    def _requeue(self, job: ModelJob) -> None:
        self.voided.append((job.id, job.token))
        job.state, job.holder, job.token = JobState.PENDING, "", ""
        job.note = mf.RESTARTED_NOTE
        job.restarted += 1

    def _start(self, name: str) -> None:
        server = Server(name, f"{name}-{next(self.incarnation)}", MasterStore(self.spool),
                        Intake(self.spool))
        self.servers[name] = server
        self.board[name] = (server.token, 0)
        self._reconcile(server)

    def _reconcile(self, server: Server) -> None:
        """What a starting server does (the shipped reconcile of `plan_cycle`): finish
        half claims, enter what received/ holds, requeue its own previous life's
        printing jobs (or remove them when their done/ record exists)."""
        self._refresh(server)
        server.intake.finish_claims()
        found = Reconcile(master_io.received_requests(self.spool),
                          master_io.finished_ids(self.spool))
        plan = self._plan(server, reconcile=found)
        if plan.requeued:
            event("restart requeued its own jobs")
        if any(j.where in ("half", "received") for j in self.jobs.values()):
            event("reconcile entered received requests")
        self._carry_out(server, plan)
        for job in self.jobs.values():
            if job.where in ("half", "received"):
                job.where = "master"
            elif job.where == "done-left":
                job.where = "done"  # its leftover request is removed
                event("reconcile removed a finished job's request")
            elif job.where in ("master", "finished") and job.state is JobState.PRINTING \
                    and job.holder == server.name and job.token != server.token:
                if job.where == "finished":
                    job.where = "done-left"
                    event("restart removed its own finished job")
                else:
                    self._requeue(job)

    # -- stations ------------------------------------------------------------------

    @initialize(jobs=st.lists(st.tuples(st.sampled_from(sorted(PRINTERS.values())),
                                        st.sampled_from(Priority)), min_size=2, max_size=5))
    def some_jobs_taken_in(self, jobs: list[tuple[str, Priority]]) -> None:
        for printer, priority in jobs:
            self.submit(printer, priority, False, 3)
        server = self.servers["S1"]
        assert server is not None
        self._take_in(server, False)

    @rule(printer=st.sampled_from(sorted(PRINTERS.values())), priority=st.sampled_from(Priority),
          hold=st.booleans(), size=st.integers(0, 40))
    def submit(self, printer: str, priority: Priority, hold: bool, size: int) -> None:
        template = PrintRequest(id="0" * 18, user="", station="", submitted=NIGHT_TIME,
                                printer=printer, priority=priority, hold=hold)
        req = self.submitter.submit(template, [Source("f", stream=io.BytesIO(b"x" * size))])
        self.jobs[req.id] = ModelJob(req.id, printer, priority,
                                     JobState.HELD if hold else JobState.PENDING, "new")

    # -- servers -------------------------------------------------------------------

    @precondition(lambda self: self._any_alive() and self._any_in("new"))
    @rule(data=st.data(), crash_before_entering=st.booleans())
    def take_in(self, data: st.DataObject, crash_before_entering: bool) -> None:
        self._take_in(self._server(data), crash_before_entering)

    def _take_in(self, server: Server, crash_before_entering: bool) -> None:
        taken, rejected = server.intake.take()
        assert rejected == []
        waiting = sorted(j.id for j in self.jobs.values() if j.where == "new")
        assert sorted(t.request.id for t in taken) == waiting
        for job_id in waiting:
            self.jobs[job_id].where = "received"
        if crash_before_entering:
            self.servers[server.name] = None
            return
        self._refresh(server)
        admitted = [Job.from_request(t.request) for t in taken
                    if isinstance(t.request, PrintRequest)]
        plan = self._plan(server, admitted=admitted, taken={j.id for j in admitted})
        assert self._carry_out(server, plan) == len(admitted)
        for job_id in waiting:
            self.jobs[job_id].where = "master"

    @precondition(lambda self: self._any_alive() and self._any_in("new"))
    @rule(data=st.data())
    def crash_mid_claim(self, data: st.DataObject) -> None:
        """A server renamed new/<id>.req to its temp name in received/ and died."""
        server = self._server(data)
        job = self._pick(data, "new")
        assert job is not None
        request = f"{job.id}.req"
        os.rename(self.spool.new / request, self.spool.received / unique_name("." + request))
        job.where = "half"
        self.servers[server.name] = None

    @precondition(lambda self: self._any_alive() and self._any_in("master", JobState.PENDING))
    @rule(data=st.data())
    def claim(self, data: st.DataObject) -> None:
        server = self._server(data)
        name = server.name
        self._refresh(server)
        printer = PRINTERS[name]
        plan = self._plan(server, schedule=Schedule(
            views=[PrinterView(printer, "STANDARD")], now_local=NIGHT_TIME, night=(0, 6)))
        busy = any(j.where in ("master", "finished") and j.state is JobState.PRINTING
                   and j.printer == printer for j in self.jobs.values())
        ready = sorted(
            (j for j in self.jobs.values() if j.where == "master"
             and j.state is JobState.PENDING and j.printer == printer),
            key=lambda j: (j.priority.rank, j.id),
        )
        expected = [] if busy or not ready else [(ready[0].id, printer)]
        assert plan.assigned == expected
        assert plan.decisions is not None and plan.decisions.notes == {}
        if not expected:
            return
        job_id = expected[0][0]
        assert self._carry_out(server, plan) == 1
        self.claimed[(job_id, server.token)] = replace(server.store.state.jobs[job_id])
        job = self.jobs[job_id]
        job.state, job.holder, job.token, job.note = (
            JobState.PRINTING, name, server.token, "")

    def _printing_by_live_holder(self) -> list[str]:
        tokens = {s.token for s in self.servers.values() if s is not None}
        return sorted(j.id for j in self.jobs.values() if j.where == "master"
                      and j.state is JobState.PRINTING and j.token in tokens)

    def _result(self, job_id: str, token: str, outcome: JobState) -> Result:
        job = self.claimed[(job_id, token)]
        return Result(Assignment(self.spool, replace(job), token), outcome, pages=1,
                      finished=NIGHT_TIME)

    @precondition(lambda self: bool(self._printing_by_live_holder()))
    @rule(data=st.data(), crash_before_commit=st.booleans())
    def complete(self, data: st.DataObject, crash_before_commit: bool) -> None:
        """A printer finished the job: its server's next cycle settles it."""
        job = self.jobs[data.draw(st.sampled_from(self._printing_by_live_holder()))]
        server = self.servers[job.holder]
        assert server is not None
        self._refresh(server)
        plan = self._plan(server, results=[self._result(job.id, job.token,
                                                        JobState.COMPLETED)],
                          printing={job.id})
        assert plan.settled == [job.id] and plan.ended == [job.id] and plan.printed == 1
        if crash_before_commit:
            verbs.write_endings(self.spool, plan.endings)
            self.servers[server.name] = None
            job.where = "finished"
            return
        assert self._carry_out(server, plan) == 1
        job.where = "done"
        job.state, job.holder, job.token, job.note = JobState.COMPLETED, "", "", ""

    @precondition(lambda self: self._any_alive() and self._any_in(
        "master", JobState.PENDING, JobState.HELD, JobState.PRINTING))
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        """The job's owner cancels it with a control request."""
        server = self._server(data)
        job = self._pick(data, "master", JobState.PENDING, JobState.HELD, JobState.PRINTING)
        assert job is not None
        self._refresh(server)
        plan = self._control(server, ControlAction.CANCEL, job.id)
        assert plan.stop == ([job.id] if job.state is JobState.PRINTING else [])
        assert self._carry_out(server, plan) == 1
        record = json.loads((self.spool.done / f"{job.id}.json").read_text())
        assert (record["outcome"], record["reason"]) == ("canceled", "canceled by alice")
        if job.token:
            self.voided.append((job.id, job.token))
        job.state, job.holder, job.token = JobState.CANCELED, "", ""
        job.where = "done"

    @precondition(lambda self: self._any_alive()
                  and self._any_in("master", JobState.PENDING, JobState.HELD))
    @rule(data=st.data())
    def hold_or_release(self, data: st.DataObject) -> None:
        server = self._server(data)
        job = self._pick(data, "master", JobState.PENDING, JobState.HELD)
        assert job is not None
        holding = job.state is JobState.PENDING
        self._refresh(server)
        plan = self._control(server, ControlAction.HOLD if holding else ControlAction.RELEASE,
                             job.id)
        assert self._carry_out(server, plan) == 1
        job.state = JobState.HELD if holding else JobState.PENDING
        job.note = "held by alice" if holding else ""

    @precondition(lambda self: self._any_alive() and self._any_in("master"))
    @rule(data=st.data())
    def stale_commit(self, data: st.DataObject) -> None:
        """Commit without refreshing: fenced unless nobody wrote since our last look."""
        server = self._server(data)
        job = self._pick(data, "master")
        assert job is not None
        ops = [mf.op_note(job.id, f"note {self.commits}")]
        if server.seen == self.commits:
            assert server.store.commit(ops, self.fence) == 1
            self.commits += 1
            server.seen = self.commits
            job.note = f"note {self.commits - 1}"
        else:
            before = dump(server.store.state)
            with pytest.raises(Fenced):
                server.store.commit(ops, self.fence)
            assert dump(server.store.state) == before
            event("stale commit fenced")

    @precondition(lambda self: bool(self.voided))
    @rule(data=st.data())
    def voided_holder_finishes(self, data: st.DataObject) -> None:
        """A holder whose claim ended (requeued, canceled) wakes up and reports."""
        job_id, token = data.draw(st.sampled_from(self.voided))
        store = MasterStore(self.spool)
        store.refresh()
        result = self._result(job_id, token, JobState.COMPLETED)
        plan = plan_cycle(store.state, CycleInputs(server="ZOMBIE", token=token,
                                                   results=[result]), NIGHT_TIME)
        assert plan.ops == [] and plan.endings == []  # the planner drops it
        # And were its ops committed anyway, the lease token fences them.
        ops = verbs.settle(self.claimed[(job_id, token)], result, server="ZOMBIE").ops
        applied = store.commit(ops, self.fence)
        self.commits += 1
        assert applied == 0  # fenced by the lease token: changes nothing
        event("voided holder fenced")

    @precondition(lambda self: self._any_alive())
    @rule(data=st.data())
    def compact(self, data: st.DataObject) -> None:
        server = self._server(data)
        self._refresh(server)
        server.store.compact(self.fence)
        self.commits += 1
        server.seen = self.commits

    # -- failures and time -----------------------------------------------------------

    @precondition(lambda self: self._any_alive())
    @rule(data=st.data())
    def crash(self, data: st.DataObject) -> None:
        """A server process dies: its memory is gone; its lease stops being renewed."""
        self.servers[self._server(data).name] = None

    @precondition(lambda self: not all(self.servers.values()))
    @rule(data=st.data())
    def restart(self, data: st.DataObject) -> None:
        dead = sorted(n for n, s in self.servers.items() if s is None)
        self._start(data.draw(st.sampled_from(dead)))

    @rule(dt=st.floats(0.5, LEASE))
    def tick(self, dt: float) -> None:
        self.now += dt
        for name, server in self.servers.items():
            if server is not None:
                token, beats = self.board[name]
                self.board[name] = (token, beats + 1)

    def _stale_holders(self, server: Server) -> dict[str, str]:
        """Holders whose lease this server judges stale -> their current token."""
        out: dict[str, str] = {}
        for holder, (token, beats) in self.board.items():
            signature = lease_mod.FileSignature(hash(token) & 0xFFFF, beats, beats, 64)
            obs = lease_mod.observe(server.observations.get(holder), signature, self.now, token)
            server.observations[holder] = obs
            if lease_mod.is_stale(obs, LEASE, self.now, lease_mod.stale_margin(LEASE)):
                out[holder] = token
        return out

    @precondition(lambda self: self._any_alive() and self._any_in("master", JobState.PRINTING))
    @rule(data=st.data())
    def expire_leases(self, data: st.DataObject) -> None:
        """Observe, let time pass (live servers renew), observe: requeue orphans."""
        server = self._server(data)
        self._stale_holders(server)
        self.tick(LEASE)
        self.tick(LEASE)
        stale = self._stale_holders(server)
        live_tokens = {s.token for s in self.servers.values() if s is not None}
        assert {self.board[h][0] for h in stale}.isdisjoint(live_tokens)
        self._refresh(server)

        def lease(holder: str) -> tuple[bool, str | None]:
            return holder not in stale, self.board[holder][0]

        orphans = find_orphans(server.store.state, server.name, lease)
        expected = sorted(j.id for j in self.jobs.values() if j.where in ("master", "finished")
                          and j.state is JobState.PRINTING and j.token not in live_tokens)
        assert sorted(j.id for j in orphans) == expected
        done = master_io.finished_ids(self.spool)
        plan = self._plan(server, orphans=orphans,
                          orphans_done={j.id for j in orphans if j.id in done})
        assert self._carry_out(server, plan) == len(orphans)
        for job_id in expected:
            job = self.jobs[job_id]
            if job.where == "finished":
                job.where = "done"
                event("orphan with a done record removed")
            else:
                self._requeue(job)
        if expected:
            event("orphaned jobs requeued")

    # -- invariants ----------------------------------------------------------------

    @invariant()
    def no_job_is_lost(self) -> None:
        new = set(os.listdir(self.spool.new))
        received = set(os.listdir(self.spool.received))
        done = master_io.finished_ids(self.spool)
        state = master_io.load(self.spool)
        assert set(state.jobs) == {j.id for j in self.jobs.values()
                                   if j.where in ("master", "finished")}
        assert {n for n in new if n.startswith(".")} == set()
        for job in self.jobs.values():
            req = f"{job.id}.req"
            places = {
                "new": req in new,
                "half": any(n.startswith("." + req) for n in received),
                "received": req in received,
                "master": job.id in state,
                "done": job.id in done,
            }
            expected = {"master": {"received", "master"},
                        "finished": {"received", "master", "done"},
                        "done-left": {"received", "done"}}.get(job.where, {job.where})
            assert {p for p, here in places.items() if here} == expected, (job, places)
            if job.where in ("master", "finished"):
                got = state.jobs[job.id]
                assert (got.state, got.holder, got.token, got.restarted, got.note,
                        got.priority, got.destination) == (
                    job.state, job.holder, job.token, job.restarted, job.note,
                    job.priority, job.printer), job
                if job.state is JobState.PRINTING:
                    assert got.assigned == job.printer

    @invariant()
    def readers_agree(self) -> None:
        fresh = master_io.load(self.spool)
        generation = self.reader.generation
        self.reader.refresh()
        if self.reader.generation > generation + 2:
            event("long-lived reader overtaken by clean-up")
        assert dump(self.reader.state) == dump(fresh)
        for server in self.servers.values():
            if server is not None and server.seen == self.commits:
                assert dump(server.store.state) == dump(fresh)

    @invariant()
    def queue_order_holds(self) -> None:
        state = master_io.load(self.spool)
        keys = [j.key for j in state.ordered()]
        assert keys == sorted(keys)
        for printer in PRINTERS.values():
            queue = [j.key for j in state.queue(printer)]
            assert queue == sorted(queue)


QueueMachine.TestCase.settings = settings(
    max_examples=50, stateful_step_count=30, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_queue = QueueMachine.TestCase
