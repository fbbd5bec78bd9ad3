"""A print server: takes requests in, schedules them, prints them, recovers.

Owns the server's cycle over its shared disks.  `Server.tick()` does one
round over every shared disk (round-robin); `Server.run()` loops, woken by a
watchdog hint, a worker finishing, or the scan interval.

One cycle on one shared disk (`SpoolService.cycle`):

1. **Intake** (no lock): if the scan is due or a change event hinted, list
   new/ (names only), claim each name by rename into received/, validate,
   reject bad ones with a reason.
2. **Look** (no lock): refresh the master file incrementally; observe the
   server locks of other servers that hold printing jobs; ask the scheduler
   whether our idle printers could start something.
3. If there is nothing to write (no intake, no results, no control requests,
   no claims, no orphans, no notes), stop here: the master lock is taken only
   when there is work.  **Try** the master lock; if another server holds it,
   move on to the next shared disk and come back next cycle.
4. Under the lock: refresh again, then build one commit: add taken-in jobs,
   apply control requests, finish jobs the workers reported (their done/
   record and accounting line are written *first*), requeue jobs whose
   holder's lease expired (note ``restarted after server failure``), claim
   jobs for idle printers (state printing, holder = this server, token = our
   server lock's generation), update notes.  Commit (fenced), release.
5. After the commit: hand claims to the printer workers, write control
   results, remove finished requests from received/ (in a clean-up thread).

Throughput (see docs/BENCHMARKS.md): the done/ records and accounting lines
of a cycle are made durable in one pass (one syncfs on a local disk) before
its commit; a printer that is printing may be given jobs ahead (`Server.slots`:
about AHEAD_SECONDS of its recent speed, one for a slow printer), which it
starts the moment the job before ends (`Server._on_result`), so a slow line
has no gap between jobs and a fast one shares each cycle's fixed cost among
many jobs; and the scheduler's walk is incremental (`SpoolService._decide`).

Leases: every server holds ``locks/server.<NAME>`` on each shared disk for
its whole life, heartbeating it.  A printing job records its holder and that
lock's token; when another server observes the holder's lock stale (unchanged
for a full lease on its own clock), missing, or of another generation, the
job goes back to pending.  A job whose done/ record exists is removed instead
of reprinted (its holder died after printing it, before committing).

Several shared disks: before the cycles, `Server._share_printers` gives each
printer's free slots to the jobs that come first over all the disks, so one
printer prints one queue order across them.  The configuration is reloaded
when etc/*.cmd change (`Server.reload_config`; a bad edit keeps the last good
one).  Operator's page: docs/SERVER.md.
"""

from __future__ import annotations

import contextlib
import os
import queue
import random
import select
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, Final

from printnet import __version__, security
from printnet import config as config_mod
from printnet.config import Config
from printnet.errors import (
    Fenced,
    LockHeld,
    LockLost,
    PrintnetError,
    RequestDeferred,
    RequestInvalid,
    SpoolError,
)
from printnet.masterfile import (
    RESTARTED_NOTE,
    Job,
    MasterState,
    Op,
    SortKey,
    op_add,
    op_note,
    op_remove,
    op_state,
)
from printnet.model import (
    ControlAction,
    ControlRequest,
    JobState,
    PrintRequest,
    Request,
    clean_text,
    iso,
)
from printnet.quota import policy_held
from printnet.scheduling import Decisions, PrinterView, busy_printers, decide, in_night
from printnet.spool import master as master_io
from printnet.spool import records
from printnet.spool.admission import Admission
from printnet.spool.intake import Intake, Taken
from printnet.spool.layout import REQ_SUFFIX, Spool
from printnet.spool.lock import ExpiringLock, LockTable, break_lock, selftest
from printnet.spool.publish import HOST, translate
from printnet.worker import Assignment, PrinterWorker, Result

MASTER_LOCK = "master"
INTAKE_BATCH = 2000  # requests taken in per cycle and shared disk
STOP_GRACE = 10.0  # seconds a stopping server lets current jobs finish
CONFIG_CHECK = 1.0  # seconds between looks at etc/*.cmd for changes (at most)
LOCK_RETRY = 0.02  # seconds before trying a master lock again that was briefly busy
AHEAD_SECONDS = 0.25  # a printer is given jobs ahead for about this much printing
MAX_AHEAD = 32  # jobs claimed ahead per printer, at most (a fast printer, small jobs)
LOCK_PASS_OVER = 0.5  # seconds a master lock may stay busy before its disk is passed over
DISK_BACKOFF = 5.0  # seconds, at most, between tries of a disk whose cycles keep failing


def server_lock_name(server: str) -> str:
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in server)
    return f"server.{safe}"


@dataclass
class Counters:
    printed: int = 0
    taken: int = 0
    rejected: int = 0
    requeued: int = 0
    lock_busy: int = 0
    fenced: int = 0


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
        self.sweep_seen: set[str] = set()
        self.claimed_any = False
        # Since when the master lock has been held by others at every try (None: it
        # was ours at the last try).  Brief contention is normal; a long one is not.
        self.lock_busy_since: float | None = None
        self.sched_key: tuple[object, ...] | None = None  # see `_decide`
        self.unsynced: list[Path] = []  # records of this cycle awaiting `make_durable`

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
        if rec is not None and rec.host == HOST and not _pid_alive(rec.pid):
            # RACE-free: only this host can run that pid; it is dead, so the lock is ours.
            break_lock(self.table, self.server_lock.name, force=True)
            if self.server_lock.try_acquire():
                self.server_lock.start_heartbeat()
                self.log(f"took over the lease of dead process {rec.pid}")
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
        if rec is None or rec.host != HOST or rec.pid == os.getpid() or _pid_alive(rec.pid):
            return False
        # RACE-free as in `start`: only this host can run that pid, and it is dead.
        # (Whatever it wrote under the lock is fenced by the master file anyway.)
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
            self.store.refresh()
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
        views = self.server.printer_views(self)
        decisions, sched_key = self._decide(self.store.state, views)
        now_local = self.server.clock()
        policy_due = self.admission.policy_due(self.store.state, now=now_local,
                                               now_local=now_local)
        if not (self.taken or self.controls or has_results or orphans or decisions.claims
                or decisions.notes or not self.reconciled or policy_due):
            self._decided(sched_key)
            self.lock_busy_since = None  # nothing to write: the lock is not waited for
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
        store = self.store
        store.refresh(sure=True)  # decisions below must see every committed entry
        state = store.state
        ops: list[Op] = []
        after: list[Callable[[], None]] = []
        done_ids = None

        if not self.reconciled:
            done_ids = master_io.finished_ids(self.spool)
            ops += self._reconcile_ops(done_ids)

        # Jobs taken in: counted pages, limits and quotas decide how they enter.
        jobs, refused = self.admission.admit(
            [t.request for i, t in self.taken.items()
             if i not in state and isinstance(t.request, PrintRequest)],
            state, now_local=self.server.clock())
        ops += [op_add(job) for job in jobs]
        for refusal in refused:
            after.append(partial(self._refuse, self.taken[refusal.request.id], refusal.reason))
        added = list(self.taken)

        # Results from the printers.  Their done/ records and accounting lines are
        # written unsynced, then made durable in one pass, before the commit.
        accounting: list[dict[str, Any]] = []
        self.unsynced = []
        for result in results:
            ops += self._finish_ops(result, accounting, after)
        if accounting:
            records.append_lines(self.spool.accounting, accounting, sync=False)
            self.unsynced.append(self.spool.accounting)
        records.make_durable(self.spool, self.unsynced)

        # Orphaned printing jobs (holder's lease expired).
        for job in self._orphans():
            if (self.spool.done / f"{job.id}.json").exists():
                ops.append(op_remove(job.id, token_was=job.token))
                after.append(partial(self._unlink_received, job.id))
            else:
                ops.append(op_state(job.id, JobState.PENDING, RESTARTED_NOTE,
                                    restarted=True, token_was=job.token))
                self.log(f"job {job.id} requeued: holder {job.holder} stopped renewing "
                         "its lease")
                self.server.counters.requeued += 1

        # Apply ops so far to a scratch view for control requests and scheduling.
        # (Control requests and claims are decided on the state these ops produce.)
        preview = _Preview(state, ops)

        # Control requests.
        for taken in self.controls:
            req = taken.request
            assert isinstance(req, ControlRequest)
            outcomes = self._control_ops(req, preview, ops, after)
            after.append(partial(records.write_control_result, self.spool, req.id, req.user,
                                 req.action.value, outcomes))
            after.append(partial(taken.path.unlink, missing_ok=True))

        # Policy: held jobs past HELDEXPIRY are canceled, quota-held ones that fit go.
        now_local = self.server.clock()
        policy, expired = self.admission.policy_ops(preview.state, now=now_local,
                                                    now_local=now_local,
                                                    server_name=self.server.name)
        for op in policy:
            preview.add(op)
            ops.append(op)
        for job_id in expired:
            self.log(f"job {job_id} canceled: held longer than HELDEXPIRY")
            after.append(partial(self._unlink_received, job_id))

        # Schedule.
        claims: list[tuple[str, str]] = []
        sched_key: tuple[object, ...] | None = None
        if not self.server.stopping and not self.server_lock.lost:
            views = self.server.printer_views(self)
            decisions, sched_key = self._decide(preview.state, views)
            token = self.server_lock.token or ""
            for job_id, printer in decisions.claims:
                ops.append(op_state(job_id, JobState.PRINTING, "", holder=self.server.name,
                                    token=token, assigned=printer))
                claims.append((job_id, printer))
            for job_id, note in decisions.notes.items():
                ops.append(op_note(job_id, note))

        if ops:
            self.server_lock.check()
            store.commit(ops, self.master_lock)
        if sched_key is not None:
            self._decided(sched_key)
        self.reconciled = True
        for job_id in added:
            self.taken.pop(job_id, None)
        self.controls.clear()
        token = self.server_lock.token or ""
        for job_id, printer in claims:
            claimed = store.state.get(job_id)
            if claimed is None or claimed.state is not JobState.PRINTING \
                    or claimed.token != token:
                continue
            assignment = Assignment(self.spool, _copy_job(claimed), token)
            self.printing[job_id] = assignment
            try:
                self.server.give(printer, assignment)
            except PrintnetError as exc:
                # Claimed but not started: hand it back (the next cycle requeues it);
                # left as it is, our live lease would keep it "printing" for ever.
                self.log(f"job {job_id}: cannot start on {printer} ({exc}); requeued")
                with self.server.lock:
                    self.results.append(Result(assignment, JobState.PENDING, ""))
                self.server.wake.set()
                continue
            self.claimed_any = True
        for fn in after:
            try:
                fn()
            except (OSError, PrintnetError) as exc:  # cleanup after a commit: never fatal
                self.log(f"after commit: {exc}")
        return bool(ops)

    # -- scheduling ---------------------------------------------------------------------

    def _decide(self, state: MasterState,
                views: list[PrinterView]) -> tuple[Decisions, tuple[object, ...]]:
        """`decide`, incremental when the printers and NIGHT are as at the last full walk.

        The full walk over every waiting job (O(jobs)) runs at start and whenever a
        printer's setup, online or stopped state, or the NIGHT window changed;
        otherwise only jobs changed since the last cycle are looked at (see
        `scheduling.decide`).  Returns the decisions and the key to pass to
        `_decided` once they are committed.
        """
        now_local = self.server.clock()
        night = self.server.config.server.night
        key = (tuple((v.name, v.setup, v.classes, v.online, v.stopped) for v in views),
               in_night(now_local, night), self.store.loads)
        changed = state.changed if key == self.sched_key else None
        # Our own printers' workers say how many jobs each can take (see
        # `Server.slots`); the master file's printing jobs say it for the others.
        busy = (busy_printers(state) - set(self.server.workers)) \
            | self.server.busy_printers(self)
        return decide(state, views, now_local=now_local, night=night, busy=busy,
                      changed=changed, slots=self.server.slots(self)), key

    def _decided(self, key: tuple[object, ...]) -> None:
        """The last decisions are in the master file: later walks may be incremental."""
        self.sched_key = key
        self.store.state.changed.clear()

    # -- pieces of the locked cycle ----------------------------------------------------

    def _reconcile_ops(self, done_ids: set[str]) -> list[Op]:
        """At start: jobs in received/ the master lacks; our previous life's jobs."""
        ops: list[Op] = []
        state = self.store.state
        self.intake.finish_claims()
        for job_id, req in master_io.received_requests(
            self.spool, on_error=lambda n, e: self.log(f"received/{n}: {e}")
        ).items():
            if job_id not in state and job_id not in done_ids and job_id not in self.taken:
                ops.append(op_add(Job.from_request(req)))
            elif job_id in done_ids and job_id not in state:
                # Finished, but its request outlived a crash before the clean-up.
                self.server.cleaner.unlink(self.spool.received / (job_id + REQ_SUFFIX))
        token = self.server_lock.token
        for job in state.jobs.values():
            if job.state is JobState.PRINTING and job.holder == self.server.name \
                    and job.token != token and job.id not in self.printing:
                if job.id in done_ids:
                    ops.append(op_remove(job.id, token_was=job.token))
                else:
                    ops.append(op_state(job.id, JobState.PENDING, RESTARTED_NOTE,
                                        restarted=True, token_was=job.token))
                    self.log(f"job {job.id} requeued: this server restarted while printing it")
                    self.server.counters.requeued += 1
        return ops

    def _finish_ops(self, result: Result, accounting: list[dict[str, Any]],
                    after: list[Callable[[], None]]) -> list[Op]:
        a = result.assignment
        job_id = a.job.id
        self.printing.pop(job_id, None)
        current = self.store.state.get(job_id)
        if current is None or current.token != a.token:
            # Someone requeued it while we printed (our lease had lapsed): their
            # version wins; our print is recorded as a restart by the requeue.
            self.log(f"job {job_id}: result {result.outcome} dropped (lease lost)")
            return []
        if result.outcome in (JobState.COMPLETED, JobState.ABORTED):
            job = _copy_job(current)
            job.setup = result.setup or job.setup
            record = records.done_record(
                job, outcome=result.outcome.value, reason=result.reason, pages=result.pages,
                sheets=result.sheets, size=result.size, started=result.started,
                finished=result.finished, request=result.request, server=self.server.name)
            self.unsynced.append(records.write_done(self.spool, job_id, record, sync=False))
            accounting.append(records.accounting_line(record))
            after.append(partial(self._unlink_received, job_id))
            if result.outcome is JobState.COMPLETED:
                self.server.counters.printed += 1
            else:
                self.log(f"job {job_id} aborted: {result.reason}")
            return [op_remove(job_id, token_was=a.token)]
        if result.outcome is JobState.HELD:
            self.log(f"job {job_id} held: {result.reason}")
            return [op_state(job_id, JobState.HELD, result.reason, token_was=a.token,
                             at=iso(result.finished))]
        note = result.reason
        return [op_state(job_id, JobState.PENDING, note, token_was=a.token,
                         restarted=result.interrupted)]

    def _control_ops(self, req: ControlRequest, preview: _Preview, ops: list[Op],
                     after: list[Callable[[], None]]) -> dict[str, str]:
        outcomes: dict[str, str] = {}
        operator = security.is_operator(req.user, self.server.config.server.operators)
        for job_id in req.jobs:
            job = preview.state.get(job_id)
            if job is None:
                outcomes[job_id] = "not found (finished or never queued)"
                continue
            if job.user != req.user and not operator:
                outcomes[job_id] = "not your job"
                continue
            if req.action is ControlAction.RELEASE and not operator and policy_held(job):
                outcomes[job_id] = f"{job.note}: only an operator can release it"
                continue
            op = _control_op(req.action, job, req.user)
            if op is None:
                outcomes[job_id] = f"not possible while {job.state.value}"
                continue
            if req.action is ControlAction.CANCEL and job.state is JobState.PRINTING:
                # Tell the printer to stop; its interrupted result then finds the job gone.
                self.server.abandon(job_id)
            preview.add(op)
            ops.append(op)
            if req.action is ControlAction.CANCEL:
                rec = records.done_record(
                    _copy_job(job), outcome="canceled", reason=f"canceled by {req.user}",
                    pages=0, sheets=0, size=0, started=None,
                    finished=datetime.now().astimezone(), request=None,
                    server=self.server.name)
                records.write_done(self.spool, job_id, rec)
                records.append_lines(self.spool.accounting, [records.accounting_line(rec)])
                self.log(f"job {job_id} canceled by {req.user}")
                after.append(partial(self._unlink_received, job_id))
            outcomes[job_id] = "applied"
        return outcomes

    def _stop_lost_jobs(self) -> None:
        """Stop printing jobs the master file no longer gives us: canceled through
        another server, or requeued by another server after our lease lapsed."""
        state = self.store.state
        for job_id, a in list(self.printing.items()):
            job = state.get(job_id)
            if job is None or job.state is not JobState.PRINTING or job.token != a.token:
                self.server.abandon(job_id)

    def _orphans(self) -> list[Job]:
        """Printing jobs whose holder's lease is gone (observed on our own clock)."""
        out = []
        seen: dict[str, tuple[bool, str | None]] = {}
        for job in self.store.state.printing_jobs():
            if job.holder == self.server.name:
                continue
            if job.holder not in seen:
                status = self.table.observe(server_lock_name(job.holder))
                token = status.record.token if status.record is not None else None
                seen[job.holder] = (status.present and not status.stale, token)
            alive, token = seen[job.holder]
            if not alive or token != job.token:
                out.append(job)
        return out

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
            # stale.  Without a lease we could claim nothing, for ever.
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

    def write_status(self, now: float) -> None:
        if now - self.last_status < min(1.0, self.server.config.server.lease / 4):
            return
        self.last_status = now
        try:
            records.write_status(self.spool, self.server.name, self.server.status(self))
        except PrintnetError as exc:
            self._fail(str(exc))
        except OSError as exc:  # a failing disk, wherever it was not translated
            self._fail(str(translate(exc, self.spool.servers)))


class _Hint:
    """Wakes the server when a name appears in new/: Linux inotify, read raw.

    watchdog's observer holds every event back behind an IN_MOVED_FROM for up to
    half a second while it looks for the matching IN_MOVED_TO (to report a move),
    and each claim of a request is such a rename out of new/: hints came up to
    0.5 s late, measured.  A hint needs only "a name appeared" (IN_MOVED_TO,
    IN_CREATE); our own renames out of new/ are not even asked for.  Same
    methods as a watchdog observer where the server uses them.
    """

    IN_CREATE: Final = 0x100
    IN_MOVED_TO: Final = 0x80
    IN_NONBLOCK: Final = os.O_NONBLOCK
    IN_CLOEXEC: Final = os.O_CLOEXEC

    def __init__(self, wake: threading.Event) -> None:
        import ctypes

        try:
            libc = ctypes.CDLL(None, use_errno=True)
            init1, self._add = libc.inotify_init1, libc.inotify_add_watch
        except (OSError, AttributeError) as exc:
            raise OSError(f"no inotify: {exc}") from None
        self._add.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        self._errno = ctypes.get_errno
        fd = init1(self.IN_NONBLOCK | self.IN_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
        self.fd = fd
        self.wake = wake
        self._stop_r, self._stop_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name="new-hint", daemon=True)
        self._thread.start()

    def watch(self, folder: Path) -> None:
        if self._add(self.fd, os.fsencode(folder), self.IN_CREATE | self.IN_MOVED_TO) < 0:
            err = self._errno()
            raise OSError(err, os.strerror(err), str(folder))

    def _run(self) -> None:
        poller = select.poll()
        poller.register(self.fd, select.POLLIN)
        poller.register(self._stop_r, select.POLLIN)
        while True:
            ready = {fd for fd, _ in poller.poll()}
            if self._stop_r in ready:
                return
            try:
                while os.read(self.fd, 65536):  # drain: one wake-up per burst
                    pass
            except OSError:
                pass  # EAGAIN: drained
            self.wake.set()

    def unschedule_all(self) -> None:
        pass

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._stop_w, b"x")

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)
        if not self._thread.is_alive():
            for fd in (self.fd, self._stop_r, self._stop_w):
                with contextlib.suppress(OSError):
                    os.close(fd)


class _Cleaner:
    """Unlinks finished requests in a thread of its own (post-commit housekeeping)."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Path | None] = queue.SimpleQueue()
        self._cond = threading.Condition()
        self._pending = 0
        self._thread: threading.Thread | None = None

    def unlink(self, path: Path) -> None:
        with self._cond:
            self._pending += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="cleaner", daemon=True)
                self._thread.start()
        self._queue.put(path)

    def _run(self) -> None:
        while True:
            path = self._queue.get()
            if path is None:
                return
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
            with self._cond:
                self._pending -= 1
                self._cond.notify_all()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued unlink is done."""
        with self._cond:
            return self._cond.wait_for(lambda: self._pending == 0, timeout)


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

    def get(self, job_id: str) -> Job | None:
        return self.state.get(job_id)

    def add(self, op: Op) -> None:
        self.ops.append(op)
        if self._state is not None:
            job = self._state.jobs.get(op.id)
            if job is not None and job is self.base.jobs.get(op.id):
                self._state.jobs[op.id] = _copy_job(job)  # copy before the first change
            self._state.apply_all([op], strict=False)


def _control_op(action: ControlAction, job: Job, user: str) -> Op | None:
    if action is ControlAction.CANCEL:
        return op_remove(job.id)
    if action is ControlAction.HOLD and job.state is JobState.PENDING:
        return op_state(job.id, JobState.HELD, f"held by {user}",
                        at=iso(datetime.now().astimezone()))
    if action is ControlAction.RELEASE and job.state is JobState.HELD:
        return op_state(job.id, JobState.PENDING, "")
    return None


def _copy_job(job: Job) -> Job:
    return replace(job)


def _local_now() -> datetime:
    return datetime.now().astimezone()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Server:
    """A `printnet server` process: its printers and the shared disks it serves."""

    def __init__(
        self,
        config: Config,
        *,
        drain: bool = False,
        clock: Callable[[], datetime] = _local_now,
        loader: Callable[[], Config] | None = None,
        stop_grace: float = STOP_GRACE,
    ) -> None:
        """`clock` gives the local wall-clock time (NIGHT window; tests inject one).

        `loader` reads the configuration again when an etc/*.cmd file changes
        (default: `config.load(etc, server_name=<this name>)`); `stop_grace` is
        how long a stopping server lets current jobs finish before requeueing.
        """
        self.config = config
        self.name = config.server.name
        self.drain = drain
        self.clock = clock
        self.loader = loader or self._load_config
        self.stop_grace = stop_grace
        self._config_stamp = config_mod.stamp(config.etc)
        self._config_checked = time.monotonic()
        self._config_problem: str | None = None
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.counters = Counters()
        self.started = time.time()
        self.started_mono = time.monotonic()
        self.stopping = False
        self.state = "starting"
        self.workers: dict[str, PrinterWorker] = {}
        self.services: list[SpoolService] = []
        self._observer: Any = None
        self._calls: list[tuple[Callable[[], Any], threading.Event, list[Any]]] = []
        # Claim-ahead: jobs claimed for a printer that is still printing, given to
        # its worker the moment it finishes the one before (`give`, `_on_result`).
        self.backlog: dict[str, deque[Assignment]] = {}
        self.cleaner = _Cleaner()
        self.job_time: dict[str, float] = {}  # per printer: recent seconds per job
        self._given: dict[str, float] = {}  # job id -> when its worker got it
        self.control: Any = None  # the console's control socket (printnet.control), in run()
        # Per printer, how many jobs each shared disk may give it this tick (see
        # `_share_printers`; only with several disks).
        self._shares: dict[str, dict[SpoolService, int]] = {}

    # -- configuration and printers -----------------------------------------------------

    def event(self, text: str, spool: Spool | None = None) -> None:
        stamp = datetime.now().strftime("%H:%M:%S")
        print(f"{stamp} {self.name}: {clean_text(text, 500)}", flush=True)
        targets = [spool] if spool is not None else [s.spool for s in self.services]
        for sp in targets:
            records.log_event(sp, self.name, text)

    def _on_result(self, result: Result) -> None:
        """A worker reports a job (its own thread): queue the result for the next
        cycle, and give the printer its next claimed job at once."""
        job = result.assignment.job
        printer = job.assigned
        nxt = None
        with self.lock:
            for service in self.services:
                if service.spool == result.assignment.spool:
                    service.results.append(result)
            given = self._given.pop(job.id, None)
            if given is not None and result.outcome is JobState.COMPLETED:
                took = time.monotonic() - given
                prev = self.job_time.get(printer)
                self.job_time[printer] = took if prev is None else 0.7 * prev + 0.3 * took
            queue = self.backlog.get(printer)
            if queue:
                nxt = queue.popleft()
                self._given[nxt.job.id] = time.monotonic()
        if nxt is not None:
            worker = self.workers.get(printer)
            try:
                if worker is None or worker.abandoning:
                    raise PrintnetError(f"printer {printer} is stopping")
                if not worker.online:
                    # Printer trouble (policy HOLD or ABORT gave the job back): the
                    # next one would only stall and be held or aborted in turn.
                    raise PrintnetError(f"printer {printer} is offline")
                worker.assign(nxt)
            except PrintnetError:
                self.hand_back(printer, [nxt])
        self.wake.set()

    def give(self, printer: str, assignment: Assignment) -> None:
        """Give a claimed job to a printer: now if it is free, else into its backlog."""
        worker = self.workers.get(printer)
        if worker is None:
            raise PrintnetError(f"printer {printer} is no longer configured")
        with self.lock:
            queue = self.backlog.setdefault(printer, deque())
            if queue or worker.busy:
                if worker.abandoning:
                    raise PrintnetError(f"printer {printer} is stopping")
                # In queue order: claims from several shared disks arrive disk by
                # disk (`_share_printers`), and a later claim may come first.
                key = assignment.job.key
                at = next((i for i, a in enumerate(queue) if a.job.key > key), len(queue))
                queue.insert(at, assignment)
                return
            self._given[assignment.job.id] = time.monotonic()
        worker.assign(assignment)

    def slots(self, service: SpoolService | None = None) -> dict[str, int]:
        """How many more jobs each of our printers may be given now (by `service`).

        One for an idle printer, plus jobs ahead (claimed while it prints, given the
        moment it finishes) for about AHEAD_SECONDS of its recent printing speed: a
        slow printer gets one job ahead, so there is no gap between jobs; a fast one
        up to MAX_AHEAD, so that each cycle's fixed cost (lock, commit, sync) is
        shared by many jobs.
        """
        out: dict[str, int] = {}
        # With several shared disks a printer takes one job at a time: which disk's
        # job comes next is decided per job (`_reserve_printers`).
        several = len(self.services) > 1
        with self.lock:
            for name, worker in self.workers.items():
                if worker.abandoning or not worker.online:
                    out[name] = 0
                    continue
                took = self.job_time.get(name)
                ahead = 0 if several else 1 if took is None else max(1, min(
                    MAX_AHEAD, int(AHEAD_SECONDS / max(took, 1e-4))))
                queued = len(self.backlog.get(name, ()))
                out[name] = max(0, 1 + ahead - int(worker.busy) - queued)
        if service is not None and self._shares:
            # With several shared disks: only this disk's share this tick.
            for name, share in self._shares.items():
                if name in out:
                    out[name] = min(out[name], share.get(service, 0))
        return out

    def hand_back(self, printer: str, assignments: Iterable[Assignment] | None = None) -> None:
        """Return claimed jobs a printer will not print (all of its backlog by default)
        as pending results: the next cycle puts them back in the queue, in place."""
        with self.lock:
            if assignments is None:
                assignments = list(self.backlog.pop(printer, ()))
            for a in assignments:
                self._given.pop(a.job.id, None)
                for service in self.services:
                    if service.spool == a.spool:
                        service.results.append(Result(a, JobState.PENDING, ""))
        self.wake.set()

    def _return_backlogs(self) -> None:
        """Hand back the backlog of printers that cannot print it now (offline, stopped,
        being replaced, or gone from the configuration)."""
        for name in list(self.backlog):
            worker = self.workers.get(name)
            printer = self.config.printers.get(name)
            trouble = worker is None or printer is None or printer.stopped \
                or worker.abandoning or not worker.online or self.stopping
            if trouble and self.backlog.get(name):
                self.hand_back(name)

    def _make_worker(self, name: str) -> PrinterWorker:
        from printnet.printers.ports import register_schemes

        register_schemes()
        return PrinterWorker(self.config.printers[name], self.config,
                             on_result=self._on_result, on_event=self.event)

    def printer_views(self, service: SpoolService) -> list[PrinterView]:
        views = []
        for name, worker in self.workers.items():
            printer = self.config.printers.get(name)
            if printer is None:
                continue
            views.append(PrinterView(
                name=name, setup=worker.setup, classes=printer.classes,
                online=worker.online, stopped=printer.stopped or self.stopping,
                busy=worker.busy,
            ))
        return views

    def busy_printers(self, service: SpoolService | None = None) -> set[str]:
        """Our printers that take no job now; for `service`, also those whose jobs
        this tick come from other shared disks (`_share_printers`)."""
        slots = self.slots(service)
        return {name for name in self.workers if slots.get(name, 0) <= 0}

    def _share_printers(self) -> None:
        """Across shared disks, a printer takes the jobs that come first of all.

        Each shared disk has its own master file and lock, and no lock covers two.
        So before the cycles every disk's queue is looked at (refreshed, no lock):
        each printer's free slots (`slots`) go to the jobs that come first over all
        the disks (priority, then submission order), and each disk's cycle may claim
        only its share (`_shares`); the printer's backlog keeps them in that order.
        A printer with no free slot has no share anywhere this tick.  A disk whose
        master lock has been held by others for LOCK_PASS_OVER seconds is passed
        over: a held lock never makes a printer wait for long.
        # RACE: another server may take a job in the meantime (a class with members
        # on several servers); the disk then gives its next job, which may come
        # after another disk's.  Across disks the order is best effort there; on
        # one disk it is exact (decided under that disk's lock).
        """
        self._shares = {}
        if len(self.services) < 2 or self.stopping:
            return
        now = time.monotonic()
        free = {p: n for p, n in self.slots().items() if n > 0}
        shares: dict[str, dict[SpoolService, int]] = {p: {} for p in self.workers}
        candidates: dict[str, list[tuple[SortKey, int, SpoolService]]] = {}
        for n, service in enumerate(self.services):
            since = service.lock_busy_since
            if not free or (since is not None and now - since >= LOCK_PASS_OVER):
                continue
            try:
                service.store.refresh()
            except PrintnetError:
                continue  # its own cycle reports (or rebuilds) it
            state = service.store.state
            # Our printers' workers say whether they are free: a disk's master file
            # still shows a finished job printing until its result is committed.
            # Claims only (changed=(): no notes wanted; the walk stops once every
            # free slot has its job).
            decisions = decide(state, self.printer_views(service), now_local=self.clock(),
                               night=self.config.server.night,
                               busy=set(self.workers) - set(free), slots=free, changed=())
            for job_id, printer in decisions.claims:
                job = state.get(job_id)
                if job is not None:
                    candidates.setdefault(printer, []).append((job.key, n, service))
        for printer, found in candidates.items():
            found.sort(key=lambda c: (c[0], c[1]))
            for _, _, service in found[: free.get(printer, 0)]:
                shares[printer][service] = shares[printer].get(service, 0) + 1
        self._shares = shares

    @property
    def warmup(self) -> float:
        """Seconds after start during which an unknown printer defers a request:
        long enough for every other server to publish its status file."""
        return 3 * self.config.server.lease + 10.0

    def check_request(self, req: Request) -> None:
        """The server's own checks of a print request at intake."""
        if not isinstance(req, PrintRequest):
            return
        known = set(self.config.printers) | set(self.config.classes)
        # Other servers' printers only when needed: reading their status files for
        # every request taken in was a fifth of a busy server's time.
        if req.printer not in known and req.printer not in self._published():
            if time.monotonic() - self.started_mono < self.warmup:
                # RACE: on a cold start the server of that printer may not have
                # published its status yet; a station that saw it must not have its
                # acknowledged job rejected.  Look again next cycle.
                raise RequestDeferred(f"printer {req.printer!r} not published yet")
            raise RequestInvalid("printer", f"unknown printer or class {req.printer!r}")
        printer = self.config.printers.get(req.printer)
        if printer is None:
            return  # a class, or another server's printer: its server checks the rest
        if not printer.accepting:
            reason = printer.reject_reason or "not accepting jobs"
            raise RequestInvalid("printer", f"{printer.name} is {reason}")
        if req.setup and req.setup not in self.config.setups:
            raise RequestInvalid("setup", f"unknown setup {req.setup!r}")
        # Per-job limits (MAXCOPIES, MAXBYTES, ...) are the admission's, after this.
        if printer.password_hash:
            from printnet.passwords import verify_queue_proof

            security.PASSWORD_GUESSES.check(req.user, printer.name)
            if not req.password:
                raise RequestInvalid("password", f"{printer.name} needs a password")
            if not verify_queue_proof(printer.password_hash, req.password, req.id):
                security.PASSWORD_GUESSES.failed(req.user, printer.name)
                raise RequestInvalid("password", f"wrong password for {printer.name}")

    def _published(self) -> set[str]:
        from printnet.api import server_files

        names: set[str] = set()
        for service in self.services:
            for info in server_files(service.spool):
                for p in info.get("printers", []):
                    if isinstance(p, dict):
                        names.add(str(p.get("name")))
                        names.update(str(c) for c in p.get("classes", []))
        return names

    def status(self, service: SpoolService) -> dict[str, Any]:
        return {
            "name": self.name,
            "host": HOST,
            "pid": os.getpid(),
            "version": __version__,
            "state": self.state,
            "started": self.started,
            "lease": self.config.server.lease,
            # "password": stations ask their user for it before submitting.
            "printers": [{**w.status(), "password": bool(w.printer.password_hash)}
                         for w in self.workers.values()],
            "setups": sorted(self.config.setups),
            "counters": vars(self.counters),
            "spool_error": service.error,
            "min_free": self.config.server.min_free,  # stations refuse to submit below it
        }

    def abandon(self, job_id: str) -> None:
        """Stop printing `job_id` at once (started or only assigned); idempotent."""
        with self.lock:
            for queue in self.backlog.values():
                for a in list(queue):
                    if a.job.id == job_id:  # claimed ahead, not started: just drop it
                        queue.remove(a)
                        self._given.pop(job_id, None)
                        for service in self.services:
                            if service.spool == a.spool:
                                service.printing.pop(job_id, None)
        for worker in list(self.workers.values()):
            if worker.has_job(job_id) and not worker.abandoning:
                worker.stop(abandon=True)
                # a fresh worker replaces it once it has handed the job back
                self._replace_worker(worker)

    def _replace_worker(self, old: PrinterWorker) -> None:
        def replace() -> None:
            old.join()
            with self.lock:
                if self.workers.get(old.name) is old and old.name in self.config.printers \
                        and not self.stopping:
                    new = self._make_worker(old.name)
                    new.mount(old.setup)
                    self.workers[old.name] = new
            self.wake.set()
        threading.Thread(target=replace, daemon=True).start()

    def mount(self, printer: str, setup: str) -> None:
        """Mount a setup (form) on a printer; waiting jobs then start."""
        if printer not in self.workers:
            raise PrintnetError(f"no printer {printer!r} on this server")
        if setup not in self.config.setups:
            raise PrintnetError(f"no setup {setup!r}")
        self.workers[printer].mount(setup)
        self.hand_back(printer)  # jobs claimed ahead were chosen for the old setup
        self.event(f"printer {printer}: setup {setup} mounted")
        self.wake.set()

    def apply_config(self, config: Config) -> None:
        """Take a new configuration without a restart (printers, spools, settings)."""
        old = self.config
        if config.server.name != self.name:
            # Locks, leases and the status file carry the name: renaming needs a restart.
            self.event(f"server name {config.server.name} takes effect at the next start")
            config = replace(config, server=replace(config.server, name=self.name))
        self.config = config
        for name in list(self.backlog):
            self.hand_back(name)  # claimed ahead under the old configuration
        for name, printer in config.printers.items():
            worker = self.workers.get(name)
            if worker is None:
                self.workers[name] = self._make_worker(name)
                continue
            was = old.printers.get(name)
            worker.reconfigure(printer, config)
            if was is None or printer.setup != was.setup:
                # SETUP= changed: the operator mounted another form (until the
                # console's CP does it, editing printers.cmd is how a form is mounted).
                worker.mount(printer.setup)
                self.event(f"printer {name}: setup {printer.setup} mounted")
        for name in list(self.workers):
            if name not in config.printers and not self.workers[name].busy:
                self.workers.pop(name).stop(abandon=False)
        wanted = [Path(p).resolve() for p in config.server.spools]
        current = {s.root.resolve(): s for s in self.services}
        for root in wanted:
            if root not in current:
                service = SpoolService(self, root)
                service.start()
                self.services.append(service)
                self._watch(service)
        for root, service in current.items():
            if root not in wanted and not service.printing:
                service.stop()
                self.services.remove(service)
        self.wake.set()

    def _load_config(self) -> Config:
        return config_mod.load(self.config.etc, server_name=self.name)

    def reload_config(self, *, force: bool = False) -> bool:
        """Take etc/*.cmd again when they changed (looked at every CONFIG_CHECK s at most).

        A cheap fingerprint (`config.stamp`) decides; a file that does not load is
        logged once and the last good configuration stays.  Returns whether a new
        configuration was applied.
        """
        now = time.monotonic()
        if not force and now - self._config_checked < min(CONFIG_CHECK,
                                                          self.config.server.scan_interval):
            return False
        self._config_checked = now
        stamp = config_mod.stamp(self.config.etc)
        if stamp == self._config_stamp:
            return False
        # RACE: an edit during the load changes the stamp again: the next look reloads.
        self._config_stamp = stamp
        try:
            config = self.loader()
        except PrintnetError as exc:
            problem = str(exc)
            if problem != self._config_problem:
                self._config_problem = problem
                self.event(f"configuration not reloaded, keeping the last good one: {problem}")
            return False
        self._config_problem = None
        try:
            self.apply_config(config)
        except PrintnetError as exc:
            self.event(f"configuration reloaded with a problem: {exc}")
            return True
        self.event("configuration reloaded")
        return True

    def call(self, fn: Callable[[], Any], timeout: float = 30.0) -> Any:
        """Run `fn` on the server's own thread (between cycles) and return its result."""
        done = threading.Event()
        box: list[Any] = []
        with self.lock:
            self._calls.append((fn, done, box))
        self.wake.set()
        if not done.wait(timeout):
            raise PrintnetError("the server did not answer in time")
        if box and isinstance(box[0], BaseException):
            raise box[0]
        return box[0] if box else None

    # -- life cycle ------------------------------------------------------------------

    def start(self) -> None:
        for name in self.config.printers:
            self.workers[name] = self._make_worker(name)
        for root in self.config.server.spools:
            try:
                service = SpoolService(self, Path(root))
                service.start()
            except PrintnetError:
                self.shutdown(requeue=True)
                raise
            self.services.append(service)
        for service in self.services:
            self._watch(service)
        self.state = "running"
        self.event(f"server {self.name} started on {HOST} (pid {os.getpid()}), "
                   f"{len(self.workers)} printers, {len(self.services)} shared disks")

    def _watch(self, service: SpoolService) -> None:
        """A change-event hint on new/ (local changes only; the scan covers the rest)."""
        if self._observer is None or isinstance(self._observer, _Hint):
            try:
                hint = self._observer or _Hint(self.wake)
                self._observer = hint
                hint.watch(service.spool.new)
                return
            except OSError:
                if self._observer is not None:
                    return  # e.g. out of inotify watches: the periodic scan still runs
                # no inotify here: watchdog's observer (whatever the platform has)
        try:
            from watchdog.events import FileSystemEventHandler
            from watchdog.observers import Observer
        except ImportError:
            return
        wake = self.wake

        class Hint(FileSystemEventHandler):
            def on_any_event(self, event: Any) -> None:
                wake.set()

        try:
            if self._observer is None:
                self._observer = Observer()
                self._observer.daemon = True
                self._observer.start()
            self._observer.schedule(Hint(), str(service.spool.new), recursive=False)
        except OSError:
            pass  # e.g. out of inotify watches: the periodic scan still runs

    def tick(self) -> bool:
        """One cycle over every shared disk; returns whether work was done."""
        self._run_calls()
        if not self.stopping:
            self.reload_config()
        now = time.monotonic()
        hinted = self.wake.is_set()
        self.wake.clear()
        worked = False
        self._return_backlogs()
        self._share_printers()
        for service in list(self.services):
            if now < service.retry_at:
                continue  # a failing disk: back off (the others are served meanwhile)
            scan_due = hinted or now - service.last_scan >= self.config.server.scan_interval
            failed: PrintnetError | None = None
            try:
                worked |= service.cycle(now, scan_due)
            except LockHeld:
                pass
            except PrintnetError as exc:
                failed = exc
            except OSError as exc:
                # The boundary of one shared disk: an I/O error, a stale handle or a
                # cut-off mount (ENOTCONN) that no lower layer translated must not
                # stop the server from serving its other disks.
                failed = translate(exc, service.root)
            if failed is None:
                service.failures = 0
            else:
                service._fail(f"cycle failed: {failed}")
                service.failures += 1
                service.retry_at = now + min(DISK_BACKOFF, self.config.server.scan_interval
                                             * 2 ** min(service.failures, 8))
            service.write_status(now)
        return worked

    def _run_calls(self) -> None:
        with self.lock:
            calls, self._calls = self._calls, []
        for fn, done, box in calls:
            try:
                box.append(fn())
            except BaseException as exc:
                box.append(exc)
            done.set()

    def idle(self) -> bool:
        """Nothing left that this server can print (for --drain)."""
        if any(w.busy for w in self.workers.values()):
            return False
        for service in self.services:
            with self.lock:
                if service.results:
                    return False
            if service.taken or service.controls or service.printing or service.intake.deferred:
                return False
            try:
                if service.intake.scan():
                    return False
            except SpoolError:
                pass
            views = self.printer_views(service)
            decisions = decide(service.store.state, views, now_local=self.clock(),
                               night=self.config.server.night,
                               busy=busy_printers(service.store.state))
            if decisions.claims:
                return False
        return True

    def run(self) -> None:
        """Loop until stopped (SIGTERM, SIGINT, console Q) or drained."""
        self.start()
        quiet = 0
        try:
            from printnet.console import start_control

            self.control = start_control(self)
            while not self.stopping:
                worked = self.tick()
                if self.drain:
                    quiet = 0 if worked else quiet + 1
                    if quiet >= 2 and self.idle():
                        break
                if not worked:
                    self.wake.wait(self.pause())
        finally:
            self.shutdown(requeue=True)

    def pause(self) -> float:
        """How long an idle loop waits: the scan interval, or LOCK_RETRY while a
        master lock we have work for was only briefly busy (another server is
        committing; it will be free in milliseconds)."""
        now = time.monotonic()
        alone = len(self.services) == 1
        for service in self.services:
            since = service.lock_busy_since
            # With one shared disk there is no other disk to pass over to: keep
            # trying (an observe, no write) while another server commits in a
            # loop, or this one starves for a whole scan interval (measured: 0.9 s
            # stalls while draining with two servers).  Jittered, so that servers
            # waiting together do not try in step.
            if since is not None and (alone or now - since < LOCK_PASS_OVER):
                retry = LOCK_RETRY * (0.1 + 0.4 * random.random()) if alone else LOCK_RETRY
                return min(retry, self.config.server.scan_interval)
        return self.config.server.scan_interval

    def request_stop(self) -> None:
        self.stopping = True
        self.wake.set()

    def shutdown(self, *, requeue: bool) -> None:
        """Let current jobs finish (`stop_grace`), requeue the rest, release leases."""
        self.stopping = True
        self.state = "stopping"
        if self.control is not None:
            self.control.stop()  # no console commands while stopping (no cycles answer them)
            self.control = None
        for name in list(self.backlog):
            self.hand_back(name)
        for worker in self.workers.values():
            worker.stop(abandon=False)
        deadline = time.monotonic() + self.stop_grace
        for worker in self.workers.values():
            if not worker.join(max(0.0, deadline - time.monotonic())):
                worker.stop(abandon=True)
                worker.join(5.0)
        # Commit what the workers reported (finished or handed back).  Keep trying
        # while other servers hold the master lock: an uncommitted finish would be
        # requeued as an orphan once our lease is gone, and printed twice.
        deadline = time.monotonic() + max(5.0, 2 * self.config.server.lease)
        while time.monotonic() < deadline:
            pending = [s for s in self.services if s.results or s.printing]
            if not pending:
                break
            for service in pending:
                with contextlib.suppress(PrintnetError, OSError):
                    service.cycle(time.monotonic(), False)
            if any(s.results or s.printing for s in self.services):
                time.sleep(0.05)
        self.cleaner.flush()
        self.state = "stopped"
        for service in self.services:
            with contextlib.suppress(PrintnetError):
                records.write_status(service.spool, self.name, self.status(service))
            # A disk that is gone (cut-off mount) must not keep the others' leases.
            with contextlib.suppress(PrintnetError, OSError):
                service.stop()
        if self._observer is not None:
            with contextlib.suppress(Exception):
                self._observer.unschedule_all()
                self._observer.stop()
                self._observer.join(2.0)
        self.event(f"server {self.name} stopped")


def install_signal_handlers(server: Server) -> None:
    def handler(signum: int, frame: object) -> None:
        server.request_stop()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)

