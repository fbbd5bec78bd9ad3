"""One shared disk as this server serves it: its lease, intake, sweep, cycle, status.

Owns `SpoolService`: the server's lease on the disk (``locks/server.<NAME>``,
heartbeated, taken over from a dead predecessor of the same name on this
host), intake of new/ and the sweep of received/, the master lock, and one
cycle on the disk (`SpoolService.cycle`):

1. **Intake** (no lock): if the scan is due or a change event hinted, list
   new/ (names only), claim each name by rename into received/, validate,
   reject bad ones with a reason.
2. **Look** (no lock): refresh the master file incrementally; observe the
   server locks of other servers that hold printing jobs; ask the scheduler
   whether our idle printers could start something.
3. If there is nothing to write (no intake, no results, no control requests,
   no assignments, no orphans, no notes), stop here: the master lock is taken only
   when there is work.  **Try** the master lock; if another server holds it,
   move on to the next shared disk and come back next cycle.  A disk whose master file
   has not changed for IDLE_COMPACT seconds gets its journal compacted (a
   listing of a quiet spool reads one snapshot).
4. Under the lock: refresh again, gather the inputs and let the pure planner
   (`printnet.server.cycle.plan_cycle`) build one commit; write its endings
   (done/ records and accounting lines, durable in one pass: one syncfs on a
   local disk), schedule (`plan_schedule`), commit (fenced), release.
5. After the commit: hand the jobs assigned to the printer workers, write control
   results, remove finished requests from received/ (in a clean-up thread).

Leases: a printing job records its holder and that lock's token; when another
server observes the holder's lock stale (unchanged for a full lease on its own
clock), missing, or of another generation, the job goes back to pending.  A
job whose done/ record exists is removed instead of reprinted (its holder died
after printing it, before committing).  The scheduler's walk is incremental
(`SpoolService._decide`).

About 640 lines on purpose: the shell of one disk's cycle (gather inputs,
carry out the plan) is kept next to the lease, intake and sweep it depends on;
the decisions themselves are the pure `server.cycle`.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from printnet import security, verbs
from printnet.errors import (
    Fenced,
    LockHeld,
    LockLost,
    PrintnetError,
    SpoolError,
)
from printnet.masterfile import (
    Job,
    MasterState,
    Op,
)
from printnet.model import (
    ControlRequest,
    JobState,
    PrintRequest,
    clean_text,
)
from printnet.scheduling import Decisions, PrinterView, in_night
from printnet.server import presence, started
from printnet.server.cycle import (
    Control,
    CycleInputs,
    Plan,
    Reconcile,
    Schedule,
    find_orphans,
    find_stranded,
    plan_cycle,
    plan_schedule,
)
from printnet.spool import master as master_io
from printnet.spool import records
from printnet.spool.admission import Admission
from printnet.spool.intake import Intake, Taken
from printnet.spool.layout import REQ_SUFFIX, Spool
from printnet.spool.lock import ExpiringLock, LockTable, break_lock, selftest
from printnet.spool.publish import HOST, translate
from printnet.spool.site import publish_site
from printnet.spool.submit import purge_abandoned
from printnet.worker import Assignment, Result

if TYPE_CHECKING:
    from printnet.server.process import Server

MASTER_LOCK = "master"
INTAKE_BATCH = 2000  # requests taken in per cycle and shared disk
DISK_BACKOFF = 5.0  # seconds, at most, between tries of a disk whose cycles keep failing
LOCK_PASS_OVER = 0.5  # seconds a master lock may stay busy before its disk is passed over
# Seconds without a change to the master file before a server compacts its journal:
# a listing of a quiet spool then reads one snapshot, whatever the last burst left
# (a journal made a 100,000-job `printnet status` about twice as slow).
IDLE_COMPACT = 5.0


def server_lock_name(server: str) -> str:
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in server)
    return f"server.{safe}"


class SpoolService:
    """One shared disk as this server serves it."""

    def __init__(self, server: Server, root: Path) -> None:
        self.server = server
        self.spool = Spool.open(root)
        # Unsafe modes or owners stop the server here; doubtful ones are logged.  First:
        # on a share that squashes root, a root server's selftest would only say
        # "Permission denied".
        self.spool_doubts = [str(p) for p in security.startup_check(self.spool)]
        selftest(self.spool.locks)
        self.table = LockTable(self.spool.locks)
        lease = server.config.server.lease
        self.master_lock = ExpiringLock(self.table, MASTER_LOCK, lease=lease,
                                        holder=server.name)
        self.server_lock = ExpiringLock(self.table, server_lock_name(server.name),
                                        lease=lease, holder=server.name)
        self.store = master_io.MasterStore(self.spool)
        if any(server.config.seals(p) for p in server.config.printers.values()):
            from printnet.keys import seal_doubts  # cryptography: only with SEAL=ON

            self.spool_doubts += seal_doubts(server.config.server.keys, self.spool)
        # Page counts, per-job limits, MINFREE and quotas (docs/SECURITY.md).
        self.admission = Admission(self.spool, lambda: self.server.config)
        # Only root and the service account may submit for others; operators act
        # on others' jobs through control requests, under their own names.
        self.intake = Intake(self.spool, check=partial(self.admission.check,
                                                       first=server.check_request))
        self.taken: dict[str, Taken] = {}  # print requests taken in, not yet in the master
        self.controls: list[Taken] = []
        self.results: list[Result] = []  # from workers; guarded by server.lock
        self.printing: dict[str, Assignment] = {}  # job id -> assignment, ours
        self.last_scan = -1e9
        self.last_status = -1e9
        self.error: str | None = None
        self.failures = 0  # cycles failed in a row (the disk misbehaves)
        self.retry_at = 0.0  # monotonic time before which a failing disk is left alone
        self.reconciled = False
        self.last_sweep = time.monotonic()  # see _sweep_received
        self.site_config: object = None  # the configuration last published as site file
        self.sweep_seen: set[str] = set()
        self.assigned_any = False
        # Since when the master lock has been held by others at every try (None: it
        # was ours at the last try).  Brief contention is normal; a long one is not.
        self.lock_busy_since: float | None = None
        self.sched_key: tuple[object, ...] | None = None  # see `_decide`
        self.unsynced: list[Path] = []  # records of this cycle awaiting `make_durable`
        self.quiet_since = time.monotonic()  # the master file's last change we saw

    @property
    def root(self) -> Path:
        return self.spool.root

    def log(self, text: str) -> None:
        self.server.event(text, self.spool)

    # -- start ------------------------------------------------------------------------

    def start(self) -> None:
        """Take this server's lease on the disk (breaking our own dead predecessor's)."""
        for doubt in self.spool_doubts:
            self.log(f"warning: {doubt}")
        if self.server_lock.try_acquire():
            self.server_lock.start_heartbeat()
            return
        status = self.table.observe(self.server_lock.name)
        rec = status.record
        if rec is not None and rec.host == HOST and rec.pid != os.getpid() \
                and self.server.presence.held:
            # RACE-free: we hold this name's presence flock on this host (`presence`),
            # which the kernel released when our predecessor died: the lock is ours.
            # (Its pid may belong to another process by now: pids are not asked.)
            break_lock(self.table, self.server_lock.name, force=True)
            if self.server_lock.try_acquire():
                self.server_lock.start_heartbeat()
                self.log(f"took over the lease of dead process {rec.pid} (its presence "
                         "lock on this host was free)")
                return
        deadline = time.monotonic() + 2.5 * self.server.config.server.lease
        while time.monotonic() < deadline:
            if self.server_lock.try_acquire():
                self.server_lock.start_heartbeat()
                return
            time.sleep(min(0.5, self.server.config.server.lease / 4))
        holder = f" ({rec.host} pid {rec.pid})" if rec else ""
        raise SpoolError(f"{self.root}: a server named {self.server.name} is already "
                         f"running{holder}")

    def _break_dead_master(self) -> bool:
        """Take the master lock from a dead process of this host (then True).

        A server killed while it held the master lock (kill -9, a crash) would
        otherwise keep every server out for a whole lease plus a quarter, and its
        own restart could not even take its jobs back in for that long.
        """
        rec = self.table.observe(MASTER_LOCK).record
        if rec is None or rec.host != HOST or rec.pid == os.getpid():
            return False
        if rec.holder.upper() == self.server.name.upper():
            dead = self.server.presence.held  # our predecessor: see `start`
        else:
            dead = presence.running(rec.holder) is False
        if not dead:
            return False
        # RACE-free as in `start`: no process of this host holds the holder's presence
        # flock, so it is dead.  (Whatever it wrote under the lock is fenced by the
        # master file anyway.)
        break_lock(self.table, MASTER_LOCK, force=True)
        self.log(f"broke the master lock of dead process {rec.pid} ({rec.holder})")
        return self.master_lock.try_acquire()

    def stop(self) -> None:
        self.server_lock.stop_heartbeat()
        self.server_lock.release()

    def operator_ops(self, plan: Callable[[MasterState], list[Op]], *,
                     wait: float = 5.0) -> list[Op]:
        """An operator's change to the master file (console job verbs); server thread only.

        Takes the master lock (waiting up to `wait` s: an operator is waiting),
        refreshes, commits the ops `plan(state)` returns (it may write done/
        records first: it runs under the lock), releases.  Returns the ops.
        """
        deadline = time.monotonic() + wait
        while not self.master_lock.try_acquire():
            if time.monotonic() >= deadline:
                raise LockHeld("the master lock is busy (another server is committing); "
                               "try again")
            time.sleep(0.05)
        try:
            self.store.refresh()
            ops = plan(self.store.state)
            if ops:
                self.store.commit(ops, self.master_lock)
            return ops
        finally:
            self.master_lock.release()

    # -- the cycle ----------------------------------------------------------------------

    def cycle(self, now: float, scan_due: bool) -> bool:
        """One pass over this shared disk.  Returns whether anything was done."""
        if self.server_lock.lost or self.server_lock.token is None:
            self._relock()
        if scan_due or not self.reconciled:
            self._take_in()
            self.last_scan = now
        try:
            if self.store.refresh():
                self.quiet_since = time.monotonic()
        except SpoolError as exc:
            if isinstance(exc.__cause__, OSError):
                # The disk failed (I/O error, cut-off mount): the master file is not
                # corrupt, and a rebuild would forget its jobs' states.
                raise
            self.log(f"master file unreadable ({exc}); rebuilding from request files")
            self._rebuild()
        # Results are only looked at here and taken once the master lock is ours: any
        # step before that may raise (a full disk, a cut-off mount), and results taken
        # then would be dropped, leaving their jobs "printing" for ever.
        with self.server.lock:
            has_results = bool(self.results)
        self._stop_lost_jobs()
        orphans = self._orphans()
        with self.server.lock:
            waiting = list(self.results)
        stranded = find_stranded(self.store.state, CycleInputs(
            server=self.server.name, token=self.server_lock.token or "",
            printing=set(self.printing), results=waiting))
        views = self.server.printer_views(self)
        decisions, sched_key = self._decide(self.store.state, views)
        now_local = self.server.clock()
        policy_due = self.admission.policy_due(self.store.state, now=now_local,
                                               now_local=now_local) \
            or self.server.links_due(self.store.state, self.spool.root)
        if not (self.taken or self.controls or has_results or orphans or stranded
                or decisions.assigned
                or decisions.notes or not self.reconciled or policy_due):
            self._decided(sched_key)
            self.lock_busy_since = None  # nothing to write: the lock is not waited for
            self._compact_if_quiet()
            return False
        if not self.master_lock.try_acquire() and not self._break_dead_master():
            self.server.counters.lock_busy += 1
            if self.lock_busy_since is None:  # move on to the next disk; come back soon
                self.lock_busy_since = time.monotonic()
            return False
        self.lock_busy_since = None
        with self.server.lock:
            results, self.results = self.results, []
        try:
            return self._locked_cycle(results)
        except (Fenced, LockLost) as exc:
            self.server.counters.fenced += 1
            self.log(f"commit refused ({exc}); will retry")
            with self.server.lock:
                self.results[:0] = results
            return False
        except BaseException:
            with self.server.lock:
                self.results[:0] = results
            raise
        finally:
            self.master_lock.release()

    def _locked_cycle(self, results: list[Result]) -> bool:
        """Under the master lock: gather the inputs, plan (`cycle.plan_cycle`), carry
        out the plan: endings first, then the fenced commit, then the after-effects."""
        store = self.store
        store.refresh(sure=True)  # decisions below must see every committed entry
        state = store.state
        server = self.server
        now_local = server.clock()
        reconcile = None
        if not self.reconciled:
            self.intake.finish_claims()
            reconcile = Reconcile(
                received=master_io.received_requests(
                    self.spool, on_error=lambda n, e: self.log(f"received/{n}: {e}")),
                done=master_io.finished_ids(self.spool))
        # Jobs taken in: counted pages, limits and quotas decide how they enter.
        added = list(self.taken)
        jobs, refused = self.admission.admit(
            [t.request for i, t in self.taken.items()
             if i not in state and isinstance(t.request, PrintRequest)],
            state, now_local=now_local)
        orphans = self._orphans()
        operators = server.config.server.operators
        controls = [Control(t.request, security.is_operator(t.request.user, operators))
                    for t in self.controls if isinstance(t.request, ControlRequest)]
        inputs = CycleInputs(
            server=server.name, token=self.server_lock.token or "", reconcile=reconcile,
            taken=set(self.taken), printing=set(self.printing), admitted=jobs,
            results=results, orphans=orphans,
            orphans_done={j.id for j in orphans
                          if (self.spool.done / f"{j.id}.json").exists()},
            started=self._started(reconcile is not None, orphans),
            controls=controls,
            policy=partial(self._policy, now_local=now_local))
        plan = plan_cycle(state, inputs, now_local)  # steps 1-6

        # Before the commit: stop printers of canceled jobs, write the endings (done/
        # records, accounting lines), made durable in one pass.
        for job_id in plan.settled:
            self.printing.pop(job_id, None)
        for job_id in plan.stop:
            server.abandon(job_id)
        records.make_durable(self.spool, verbs.write_endings(self.spool, plan.endings,
                                                             sync=False))
        for text in plan.logs:
            self.log(text)
        server.counters.printed += plan.printed
        server.counters.requeued += plan.requeued
        for job_id in plan.clean:
            server.cleaner.unlink(self.spool.received / (job_id + REQ_SUFFIX))

        # Step 7 (`cycle.plan_schedule`), once the endings are durable: our printers
        # as they are after that sync (a printer that finished meanwhile is free).
        sched_key: tuple[object, ...] | None = None
        if not server.stopping and not self.server_lock.lost:
            views = server.printer_views(self)
            sched_key = self._sched_key(views)
            schedule = Schedule(
                views=views, now_local=server.clock(), night=server.config.server.night,
                own=set(server.workers), busy=server.busy_printers(self),
                slots=server.slots(self), incremental=sched_key == self.sched_key)
            assert plan.state is not None
            plan_schedule(plan.state, inputs, schedule, plan)

        if plan.ops:
            self.server_lock.check()
            store.commit(plan.ops, self.master_lock)
            self.quiet_since = time.monotonic()
        if sched_key is not None:
            self._decided(sched_key)
        if reconcile is not None:  # our previous life's jobs are settled: forget them
            started.clear(self.spool.servers, server.name)
        self.reconciled = True
        for refusal in refused:
            self._refuse(self.taken[refusal.request.id], refusal.reason)
        for job_id in added:
            self.taken.pop(job_id, None)
        ctl_paths = {t.request.id: t.path for t in self.controls}
        self.controls.clear()
        self._hand_out(plan.assigned)
        after: list[Callable[[], None]] = [partial(self._unlink_received, i)
                                           for i in plan.ended]
        for req, outcomes in plan.answers:
            after.append(partial(records.write_control_result, self.spool, req.id, req.user,
                                 req.action.value, outcomes))
            after.append(partial(ctl_paths[req.id].unlink, missing_ok=True))
        for fn in after:
            try:
                fn()
            except (OSError, PrintnetError) as exc:  # cleanup after a commit: never fatal
                self.log(f"after commit: {exc}")
        return bool(plan.ops)

    def _compact_if_quiet(self) -> None:
        """Compact a journal nobody has added to for IDLE_COMPACT seconds (see there).

        Housekeeping: a busy lock or a failing disk only means another try later.
        """
        if self.store.seq == 0 or time.monotonic() - self.quiet_since < IDLE_COMPACT:
            return
        self.quiet_since = time.monotonic()  # one try per quiet period
        if not self.master_lock.try_acquire():
            return
        try:
            self.store.refresh(sure=True)
            if self.store.seq:
                self.store.compact(self.master_lock)
        except (Fenced, LockLost, SpoolError) as exc:
            self.log(f"compacting the master file: {exc}")
        finally:
            self.master_lock.release()
    def _policy(self, state: MasterState, *, now_local: datetime) -> verbs.Change:
        """The cycle's policy step: HELDEXPIRY and quotas (the admission's), then the
        links of remote printers (`server.links`), on the state the first left."""
        change = self.admission.policy_ops(state, now=now_local, now_local=now_local,
                                           server_name=self.server.name)
        if any(op.kind in {"remove", "state"} for op in change.ops):
            state = state.preview(change.ops)
        change.add(self.server.link_change(state, self.spool.root))
        return change

    def _hand_out(self, assigned: list[tuple[str, str]]) -> None:
        """Give the jobs just assigned (and committed) to their printers."""
        token = self.server_lock.token or ""
        for job_id, printer in assigned:
            job = self.store.state.get(job_id)
            if job is None or job.state is not JobState.PRINTING \
                    or job.token != token:
                continue
            assignment = Assignment(self.spool, _copy_job(job), token)
            self.printing[job_id] = assignment
            try:
                self.server.give(printer, assignment)
            except PrintnetError as exc:
                # Assigned but not started: hand it back (the next cycle requeues it);
                # left as it is, our live lease would keep it "printing" for ever.
                self.log(f"job {job_id}: cannot start on {printer} ({exc}); requeued")
                with self.server.lock:
                    self.results.append(Result(assignment, JobState.PENDING, ""))
                self.server.wake.set()
                continue
            self.assigned_any = True

    # -- scheduling ---------------------------------------------------------------------

    def _sched_key(self, views: list[PrinterView]) -> tuple[object, ...]:
        """What must be as at the last full walk for an incremental one: the printers
        (setups, online, stopped), the NIGHT window, and the master file's loads."""
        night = self.server.config.server.night
        return (tuple((v.name, v.setup, v.classes, v.online, v.stopped) for v in views),
                in_night(self.server.clock(), night), self.store.loads)

    def _decide(self, state: MasterState,
                views: list[PrinterView]) -> tuple[Decisions, tuple[object, ...]]:
        """`decide`, incremental when the printers and NIGHT are as at the last full walk.

        The full walk over every waiting job (O(jobs)) runs at start and whenever a
        printer's setup, online or stopped state, or the NIGHT window changed;
        otherwise only jobs changed since the last cycle are looked at (see
        `scheduling.decide`).  Returns the decisions and the key to pass to
        `_decided` once they are committed.  (The locked cycle decides the same way,
        in `cycle.plan_cycle`.)
        """
        key = self._sched_key(views)
        schedule = Schedule(views=views, now_local=self.server.clock(),
                            night=self.server.config.server.night, own=set(self.server.workers),
                            busy=self.server.busy_printers(self), slots=self.server.slots(self),
                            incremental=key == self.sched_key)
        plan = Plan()
        plan_schedule(state, CycleInputs(self.server.name, ""), schedule, plan)
        assert plan.decisions is not None
        return plan.decisions, key

    def _decided(self, key: tuple[object, ...]) -> None:
        """The last decisions are in the master file: later walks may be incremental."""
        self.sched_key = key
        self.store.state.changed.clear()

    # -- pieces of the locked cycle ----------------------------------------------------

    def _stop_lost_jobs(self) -> None:
        """Stop printing jobs the master file no longer gives us: canceled through
        another server, or requeued by another server after our lease lapsed."""
        state = self.store.state
        for job_id, a in list(self.printing.items()):
            job = state.get(job_id)
            if job is None or job.state is not JobState.PRINTING or job.token != a.token:
                self.server.abandon(job_id)

    def _started(self, reconciling: bool, orphans: list[Job]) -> set[tuple[str, str]]:
        """Which assigned jobs of our previous life and of the orphans' holders had
        started sending (`server.started`): only those are restarts."""
        holders = {j.holder for j in orphans} | ({self.server.name} if reconciling else set())
        out: set[tuple[str, str]] = set()
        for holder in holders:
            out |= started.read(self.spool.servers, holder)
        return out

    def _orphans(self) -> list[Job]:
        """Printing jobs whose holder's lease is gone (observed on our own clock)."""
        def lease(holder: str) -> tuple[bool, str | None]:
            status = self.table.observe(server_lock_name(holder))
            token = status.record.token if status.record is not None else None
            return status.present and not status.stale, token
        return find_orphans(self.store.state, self.server.name, lease)

    def _take_in(self) -> None:
        if time.monotonic() - self.last_sweep >= 2 * self.server.config.server.lease:
            self._sweep_received()
        try:
            names = self.intake.scan()
        except SpoolError as exc:
            self._fail(str(exc))
            return
        if not names and not self.intake.deferred:
            return
        taken, rejected = self.intake.take(names, limit=INTAKE_BATCH)
        for name, reason in rejected:
            self.server.counters.rejected += 1
            self.log(f"rejected {clean_text(name, 80)}: {reason}")
        for t in taken:
            self.server.counters.taken += 1
            if isinstance(t.request, ControlRequest):
                self.controls.append(t)
            else:
                self.taken[t.request.id] = t
        self.error = None

    def _sweep_received(self) -> None:
        """Requests in received/ that neither the master file nor this server holds.

        A claim or an add that failed halfway (a failing disk refused the second
        rename, or a server died between claim and commit) leaves a request there
        that only a server's start would otherwise enter.  Every two leases such
        requests are handed to intake again (inspected as if new; a job another
        server adds meanwhile is not added twice), and the requests of finished
        jobs whose removal failed are removed.
        """
        self.last_sweep = time.monotonic()
        self.intake.finish_claims()
        with contextlib.suppress(PrintnetError, OSError):
            # Copies whose station died mid-copy (its .writer flock is free): gone
            # after a short grace, not a day (`spool.submit.purge_abandoned`).
            purge_abandoned(self.spool)
        state, done = self.store.state, master_io.finished_ids(self.spool)
        waiting = set(self.intake.deferred)
        seen, self.sweep_seen = self.sweep_seen, set()
        for name in os.listdir(self.spool.received):
            job_id = name.removesuffix(REQ_SUFFIX)
            path = self.spool.received / name
            if name.startswith(".") or job_id == name or job_id in state \
                    or job_id in self.taken or path in waiting:
                continue
            if job_id in done:  # finished; its clean-up failed (or a crash came first)
                self.server.cleaner.unlink(path)
                continue
            # RACE: another server may have claimed it a moment ago and be about to
            # add it (and our view of the master file may be a second old): only a
            # request found orphaned by two sweeps two leases apart is taken up.
            self.sweep_seen.add(job_id)
            if job_id in seen:
                self.intake.deferred[path] = (name, time.monotonic())

    def _refuse(self, taken: Taken, reason: str) -> None:
        """A request taken in but refused at add (quota ACTION=REJECT): to rejected/."""
        with contextlib.suppress(SpoolError):
            self.intake.reject(taken.path, reason)
        self.server.counters.rejected += 1
        self.log(f"rejected {taken.request.id}: {reason}")

    def _unlink_received(self, job_id: str) -> None:
        if job_id not in self.store.state:
            # Off this thread: unlinking a file whose blocks are allocated costs
            # 0.1-1 ms on ext4, per finished job.  A crash before it happens leaves
            # the request beside its done/ record; reconcile removes it.
            self.server.cleaner.unlink(self.spool.received / (job_id + REQ_SUFFIX))

    def _rebuild(self) -> None:
        if not self.master_lock.try_acquire():
            raise LockHeld("master lock held while the master file needs a rebuild")
        try:
            state = master_io.rebuild_state(self.spool, None)
            self.store.install(state, self.master_lock)
        finally:
            self.master_lock.release()

    def _relock(self) -> None:
        """Take our server lease again: after a stall, or after the disk was away."""
        old = self.server_lock
        if old.lost:
            self.log("lost our server lease (stalled?); taking a new one")
        old.stop_heartbeat()
        with contextlib.suppress(PrintnetError, OSError):
            old.release()  # the disk may still be failing: then it is ended below
        self.server_lock = ExpiringLock(self.table, server_lock_name(self.server.name),
                                        lease=self.server.config.server.lease,
                                        holder=self.server.name)
        if not self.server_lock.try_acquire():
            # Still our own previous generation (this very process could not end it
            # while the disk was away): end it now rather than wait for it to go
            # stale.  Without a lease we could assign nothing, for ever.
            rec = self.table.observe(self.server_lock.name).record
            if rec is None or rec.host != HOST or rec.pid != os.getpid():
                return
            break_lock(self.table, self.server_lock.name, force=True)
            if not self.server_lock.try_acquire():
                return
        self.server_lock.start_heartbeat()

    def _fail(self, text: str) -> None:
        if self.error != text:
            self.error = text
            self.log(text)

    def refresh_server_file(self, now: float) -> None:
        """Rewrite this spool's servers/<NAME>.json (its age: the heartbeat), at most 1/s."""
        if now - self.last_status < min(1.0, self.server.config.server.lease / 4):
            return
        self.last_status = now
        try:
            records.write_server_file(self.spool, self.server.name, self.server.status(self))
            if self.site_config is not self.server.config:
                # What stations may read of the configuration (default, names): at
                # start and after each reload (`spool.site`).
                publish_site(self.spool, self.server.config)
                self.site_config = self.server.config
        except PrintnetError as exc:
            self._fail(str(exc))
        except OSError as exc:  # a failing disk, wherever it was not translated
            self._fail(str(translate(exc, self.spool.servers)))


def _copy_job(job: Job) -> Job:
    return replace(job)
