"""A server's printers: their workers, what each may be given, the jobs assigned ahead.

Owns the `Printers` part of `Server`: one `PrinterWorker` per configured
printer, results from their threads (`_on_result`, which starts the next job
assigned ahead at once), how many jobs each may be given now (`slots`: about
AHEAD_SECONDS of its recent speed), handing assigned jobs back, stopping a
canceled job, mounting a setup, the server's own intake checks of a print
request (`check_request`, with LINKDOWN=REJECT's refusal), the links of remote
printers as the planner sees them (`link_views`, `link_change`: `server.links`),
and with several shared disks, one queue order per printer across them
(`_share_printers`).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from printnet import links, security, verbs
from printnet.config import Config, LinkMode
from printnet.errors import (
    PrintnetError,
    RequestDeferred,
    RequestInvalid,
)
from printnet.masterfile import (
    MasterState,
    SortKey,
)
from printnet.model import (
    JobState,
    PrintRequest,
    Request,
)
from printnet.scheduling import PrinterView, decide
from printnet.server import started
from printnet.server.disk import LOCK_PASS_OVER
from printnet.server.links import LinkView, plan_links
from printnet.spool.layout import Spool
from printnet.worker import Assignment, PrinterWorker, Result

if TYPE_CHECKING:
    from printnet.server.disk import SpoolService

AHEAD_SECONDS = 0.25  # a printer is given jobs ahead for about this much printing
MAX_AHEAD = 32  # jobs assigned ahead per printer, at most (a fast printer, small jobs)
LINKS_EVERY = 0.25  # seconds between looks at what remote printers' links ask for


class Printers:
    """The printers part of `Server` (a mixin: `Server` sets these attributes)."""

    config: Config
    name: str
    lock: threading.Lock
    wake: threading.Event
    stopping: bool
    started_mono: float
    clock: Callable[[], datetime]
    workers: dict[str, PrinterWorker]
    services: list[SpoolService]
    backlog: dict[str, deque[Assignment]]
    job_time: dict[str, float]
    _given: dict[str, float]
    _shares: dict[str, dict[SpoolService, int]]
    _link_held: dict[str, set[str]]
    _links_checked: dict[object, float]
    _links_wanted: set[object]

    def event(self, text: str, spool: Spool | None = None) -> None:
        raise NotImplementedError

    def _on_result(self, result: Result) -> None:
        """A worker reports a job (its own thread): queue the result for the next
        cycle, and give the printer its next assigned job at once."""
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
        """Give an assigned job to a printer: now if it is free, else into its backlog."""
        worker = self.workers.get(printer)
        if worker is None:
            raise PrintnetError(f"printer {printer} is no longer configured")
        with self.lock:
            queue = self.backlog.setdefault(printer, deque())
            if queue or worker.busy:
                if worker.abandoning:
                    raise PrintnetError(f"printer {printer} is stopping")
                # In queue order: assignments from several shared disks arrive disk by
                # disk (`_share_printers`), and a later one may come first.
                key = assignment.job.key
                at = next((i for i, a in enumerate(queue) if a.job.key > key), len(queue))
                queue.insert(at, assignment)
                return
            self._given[assignment.job.id] = time.monotonic()
        worker.assign(assignment)

    def slots(self, service: SpoolService | None = None) -> dict[str, int]:
        """How many more jobs each of our printers may be given now (by `service`).

        One for an idle printer, plus jobs ahead (assigned while it prints, given the
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
        """Return assigned jobs a printer will not print (all of its backlog by default)
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
                             on_result=self._on_result, on_event=self.event,
                             on_start=lambda a: started.mark(a.spool.servers, self.name,
                                                             a.job.id, a.token))

    def printer_views(self, service: SpoolService) -> list[PrinterView]:
        views = []
        for name, worker in self.workers.items():
            printer = self.config.printers.get(name)
            if printer is None:
                continue
            since = worker.link_down_since()
            views.append(PrinterView(
                name=name, setup=worker.setup, classes=printer.classes,
                online=worker.online, stopped=printer.stopped or self.stopping,
                busy=worker.busy,
                offline_note=links.waiting_note(worker.remote, since.astimezone())
                if since is not None and printer.linkdown is not LinkMode.LOCAL else "",
            ))
        return views

    # -- links of remote printers (LINKDOWN=: docs/SITES.md) -----------------------------

    def link_views(self) -> list[LinkView]:
        out = []
        for name, worker in self.workers.items():
            printer = self.config.printers.get(name)
            if printer is None or printer.linkdown is None:
                continue
            since = worker.link_down_since()
            if since is None:
                self._link_held.pop(name, None)  # the next outage holds afresh
            failover = printer.failover if printer.failover in self.workers else None
            out.append(LinkView(printer=name, mode=printer.linkdown, remote=worker.remote,
                                down_since=since, failover=failover,
                                hold_after=printer.link_hold))
        return out

    def links_due(self, state: MasterState, key: object = None) -> bool:
        """Whether the links' state asks for job changes (no lock).  A walk over the
        remote printers' queues, so at most every LINKS_EVERY seconds per shared disk
        (`key`), less often for long queues: a link's own news (a job's LinkDown)
        comes with a result, which makes a cycle anyway."""
        views = self.link_views()
        if not views:
            return False
        mono = time.monotonic()
        if mono < self._links_checked.get(key, 0.0):
            return False
        held = set().union(*self._link_held.values()) if self._link_held else set()
        due = bool(plan_links(state, views, self.clock(), held_before=held).change.ops)
        # The walk costs ~2.4 us per queued job (240 ms for 100,000 waiting on a down
        # link): wait 20 times as long as it took before the next, ~5% of a core.
        took = time.monotonic() - mono
        self._links_checked[key] = mono + max(LINKS_EVERY, 20 * took)
        if due:
            self._links_wanted.add(key)
        return due

    def link_change(self, state: MasterState, key: object = None) -> verbs.Change:
        """Under the master lock (the cycle's policy step): the links' job changes,
        and the operator told of jobs LINKHOLD held (log and console).  Only when
        `links_due` last found some for this disk (`key`): the walk is not made
        under the lock on every cycle (a job's own LinkDown result brings its
        waiting note with it)."""
        views = self.link_views()
        if not views or key not in self._links_wanted:
            return verbs.Change()
        self._links_wanted.discard(key)
        held = set().union(*self._link_held.values()) if self._link_held else set()
        plan = plan_links(state, views, self.clock(), held_before=held)
        by_printer: dict[str, list[str]] = {}
        for job_id, printer in plan.held:
            self._link_held.setdefault(printer, set()).add(job_id)
            by_printer.setdefault(printer, []).append(job_id)
        for printer, ids in by_printer.items():
            view = next(v for v in views if v.printer == printer)
            assert view.down_since is not None and view.hold_after is not None
            self.event(f"OPERATOR: printer {printer}: the link to {view.remote} is down since "
                       f"{links.clock(view.down_since.astimezone())}, longer than LINKHOLD="
                       f"{view.hold_after / 3600:g} h: {len(ids)} job(s) held "
                       f"({', '.join(ids[:5])}{' ...' if len(ids) > 5 else ''}); release "
                       "them to wait again, or move them to another printer")
        for job_id, source, target in plan.moved:
            self.event(f"job {job_id}: failed over from {source} to {target} (link down)")
        for job_id, printer in plan.returned:
            self.event(f"job {job_id}: back to {printer} (link up)")
        return plan.change

    def link_refusal(self, printer: str) -> str | None:
        """LINKDOWN=REJECT: why new jobs for `printer` are refused now (None: they are
        not)."""
        worker = self.workers.get(printer)
        pc = self.config.printers.get(printer)
        if worker is None or pc is None or pc.linkdown is not LinkMode.REJECT:
            return None
        since = worker.link_down_since()
        if since is None:
            return None
        return links.reject_reason(printer, worker.remote, since.astimezone())

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
        the disks (priority, then submission order), and each disk's cycle may assign
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
            # Assignments only (changed=(): no notes wanted; the walk stops once every
            # free slot has its job).
            decisions = decide(state, self.printer_views(service), now_local=self.clock(),
                               night=self.config.server.night,
                               busy=set(self.workers) - set(free), slots=free, changed=())
            for job_id, printer in decisions.assigned:
                job = state.get(job_id)
                if job is not None:
                    candidates.setdefault(printer, []).append((job.key, n, service))
        for printer, found in candidates.items():
            found.sort(key=lambda c: (c[0], c[1]))
            for _, _, service in found[: free.get(printer, 0)]:
                shares[printer][service] = shares[printer].get(service, 0) + 1
        self._shares = shares

    def abandon(self, job_id: str) -> None:
        """Stop printing `job_id` at once (started or only assigned); idempotent."""
        with self.lock:
            for queue in self.backlog.values():
                for a in list(queue):
                    if a.job.id == job_id:  # assigned ahead, not started: just drop it
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
        self.hand_back(printer)  # jobs assigned ahead were chosen for the old setup
        self.event(f"printer {printer}: setup {setup} mounted")
        self.wake.set()

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
        refusal = self.link_refusal(printer.name)
        if refusal is not None:
            raise RequestInvalid("printer", refusal)
        if req.setup and req.setup not in self.config.setups:
            raise RequestInvalid("setup", f"unknown setup {req.setup!r}")
        if req.seal is None and self.config.seals(printer):
            raise RequestInvalid("seal", f"{printer.name} takes only sealed documents (SEAL=ON)")
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
