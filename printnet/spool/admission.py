"""Server side: what a job is let in with, and the policy of each cycle.

Owns, for one shared disk as one server serves it:

* **At intake** (`check`, no lock; after the server's own checks): the
  free-space guard (MINFREE: below it, print requests are rejected with a
  clear reason), the printer's per-job limits (MAXCOPIES, MAXBYTES, MAXFILE,
  MAXPAGES), and the job's **page count**.  Pages are counted only when
  something needs them (a QUOTA line, or MAXPAGES on the printer), by
  reading the spooled files the safe way (`printnet.security.read_job_file`),
  checking their sha256, and running `printnet.printers.render.count_pages`
  with the setup the job asks for, else the printer's (a class: its first
  member's), and the printer's header-page setting.  Over a limit: rejected,
  or, with ``OVERLIMIT=HOLD``, let in held with an ``Over limit:`` note.
* **At add** (`admit`, under the master lock, in submission order): the
  job's counted pages go into its master-file entry (``pages``), and page
  quotas are checked against usage = accounting lines of the period + live
  jobs (`printnet.quota`); a job over quota is held with ``Quota exceeded:
  ...`` or refused (``ACTION=REJECT``).
* **Each cycle** (`policy_due` without the lock, `policy_ops` under it, at
  most every `POLICY_INTERVAL` seconds): held jobs older than HELDEXPIRY are
  canceled (`printnet.verbs.expire`: done record and accounting line first,
  as for any cancel), and quota-held jobs that fit again are released.

Usage is read from ``log/accounting.jsonl`` incrementally (by byte offset),
kept for the longest period only.  Counts made at intake live in this
server's memory until the add; a server that dies in between leaves the job
to `reconcile`, which adds it uncounted (pages 0, no quota check).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from printnet import quota, verbs
from printnet.config import Config, DriverName, PrinterConfig, SetupConfig
from printnet.errors import PrintnetError, RequestInvalid, SpoolError
from printnet.masterfile import Job, MasterState
from printnet.model import JobState, PrintRequest, Request, iso
from printnet.printers.drivers import get_driver
from printnet.printers.render import RenderJob, count_pages
from printnet.security import Reader, open_job_folder, read_job_file, read_ref, user_groups
from printnet.spool import records
from printnet.spool.layout import Spool

POLICY_INTERVAL: Final = 10.0  # seconds between looks for expired or releasable jobs
FREE_CACHE: Final = 1.0  # seconds a free-space reading is reused
GROUP_CACHE: Final = 60.0  # seconds a user's groups are reused


@dataclass(frozen=True)
class Refusal:
    """A request refused at add (quota with ACTION=REJECT)."""

    request: PrintRequest
    reason: str


class Admission:
    def __init__(self, spool: Spool, config: Callable[[], Config],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.spool = spool
        self._config = config
        self._clock = clock
        self.counted: dict[str, tuple[int, str]] = {}  # job id -> (pages, limit note)
        self.book = quota.UsageBook()
        self._free: tuple[float, int] | None = None
        self._groups: dict[str, tuple[float, frozenset[str]]] = {}
        self._next_policy = 0.0
        self._policy_pending = False

    # -- intake -------------------------------------------------------------------------

    def check(self, req: Request, first: Callable[[Request], None] | None = None) -> None:
        """Intake checks of a print request (after `first`, the server's own)."""
        if first is not None:
            first(req)
        if not isinstance(req, PrintRequest):
            return
        cfg = self._config()
        self._check_space(cfg)
        printer = cfg.printers.get(req.printer)
        over: list[tuple[str, str, str]] = []  # (field, rejection, hold note)
        if printer is not None:
            over += _limits(req, printer)
        pages = 0
        if cfg.server.quotas or (printer is not None and printer.max_pages):
            pages = self._count(req, cfg, printer)
            if printer is not None and printer.max_pages and pages > printer.max_pages:
                over.append(("pages", f"{pages} pages is over {printer.name}'s limit of "
                             f"{printer.max_pages}",
                             f"{quota.LIMIT_NOTE} {pages} pages; {printer.name} allows "
                             f"{printer.max_pages} per job (MAXPAGES)"))
        if over:
            field, rejection, note = over[0]
            if printer is None or printer.over_limit is quota.OverAction.REJECT:
                raise RequestInvalid(field, rejection)
            self.counted[req.id] = (pages, note)
        else:
            self.counted[req.id] = (pages, "")

    def _check_space(self, cfg: Config) -> None:
        need = cfg.server.min_free
        if need <= 0:
            return
        now = self._clock()
        if self._free is None or now - self._free[0] > FREE_CACHE:
            try:
                st = os.statvfs(self.spool.root)
            except OSError:
                return
            self._free = (now, st.f_bavail * st.f_frsize)
        free = self._free[1]
        if free < need:
            raise RequestInvalid("spool", f"the spool has {free >> 20} MiB free, below its "
                                 f"guard of {need >> 20} MiB (MINFREE): not accepting new "
                                 "requests")

    def _count(self, req: PrintRequest, cfg: Config, printer: PrinterConfig | None) -> int:
        member = printer
        if member is None:
            members = cfg.classes.get(req.printer, ())
            member = cfg.printers.get(members[0]) if members else None
        setup: SetupConfig | None = cfg.setups.get(req.setup) if req.setup else None
        if setup is None and member is not None:
            setup = cfg.setups.get(member.setup)
        setup = setup or SetupConfig("STANDARD")
        header = req.header and (member.header_pages if member is not None else True)
        try:
            fd = open_job_folder(self.spool, req.id)
        except OSError as exc:
            raise RequestInvalid("files", f"cannot read the job's data: {exc.strerror}") \
                from None
        except SpoolError as exc:
            raise RequestInvalid("files", str(exc)) from None
        files = []
        try:
            for f in req.files:
                if f.ref is not None:  # --ref: read under the same rules as at print
                    try:
                        files.append(read_ref(f.ref, Reader.of(req.user), size=f.size,
                                              mtime_ns=f.mtime_ns, sha256=f.sha256))
                    except (OSError, SpoolError) as exc:
                        raise RequestInvalid(f"files[{f.name}]", f"by reference: {exc}") \
                            from None
                    continue
                try:
                    data = read_job_file(fd, f.name, f.size, user=req.user)
                except OSError as exc:
                    raise RequestInvalid(f"files[{f.name}]", f"cannot be read: {exc.strerror}") \
                        from None
                except SpoolError as exc:
                    raise RequestInvalid(f"files[{f.name}]", str(exc)) from None
                if req.seal is None:
                    _verify(f.name, f.size, f.sha256, data)
                files.append(data)
        finally:
            os.close(fd)
        if req.seal is not None:
            # Sealed: opened in memory with this server's keys, only to count.
            from printnet.keys import opener

            try:
                plain = opener(cfg.server.keys).open(req, files)
            except PrintnetError as exc:
                raise RequestInvalid("seal", str(exc)) from None
            for f, data in zip(req.files, files, strict=True):
                _verify(f.name, f.size, f.sha256, data)
            files = plain
        job = RenderJob(id=req.id, user=req.user, station=req.station, title=req.title,
                        submitted=iso(req.submitted), copies=req.copies, header=header,
                        format=req.format, printer=req.printer, setup=setup.name,
                        encoding=req.encoding)
        driver = get_driver(member.driver if member is not None else DriverName.PLAIN,
                            setup.encoding)
        return count_pages(job, files, setup=setup, charset=driver.encoding)

    # -- add ----------------------------------------------------------------------------

    def admit(self, requests: list[PrintRequest], state: MasterState, *,
              now_local: datetime) -> tuple[list[Job], list[Refusal]]:
        """Master-file entries for requests taken in (in submission order), or refusals."""
        jobs: list[Job] = []
        refused: list[Refusal] = []
        # Counts stay until their job is in the master file: a commit that fails
        # (fenced) brings the same requests back next cycle.
        for stale in set(self.counted) - {r.id for r in requests}:
            del self.counted[stale]
        if not requests:
            return jobs, refused
        rules = self._config().server.quotas
        live: quota.LiveUsage = {}
        if rules:
            self.refresh_usage(now_local)
            live = quota.live_usage(state, self.book.ids)
        stamp = iso(now_local)
        for req in sorted(requests, key=lambda r: r.id):
            job = Job.from_request(req)
            job.pages, note = self.counted.get(req.id, (0, ""))
            if not note and rules:
                verdict = quota.check_quota(
                    rules, user=req.user, destination=req.printer, pages=job.pages,
                    book=self.book, live=live, now_local=now_local, groups=self.groups)
                if verdict is not None and verdict.reject:
                    refused.append(Refusal(req, verdict.note))
                    continue
                if verdict is not None:
                    note = verdict.note
            if note:
                job.state, job.note, job.held_at = JobState.HELD, note, stamp
            else:
                quota.add_live(live, job)
            jobs.append(job)
        return jobs, refused

    def groups(self, user: str) -> frozenset[str]:
        now = self._clock()
        cached = self._groups.get(user)
        if cached is None or now - cached[0] > GROUP_CACHE:
            cached = (now, user_groups(user))
            self._groups[user] = cached
        return cached[1]

    def refresh_usage(self, now_local: datetime) -> None:
        """Read accounting lines appended since last time (all of them, in chunks)."""
        while True:
            lines, offset, restarted = records.read_accounting(
                self.spool.accounting, self.book.offset)
            if restarted:
                self.book.reset()
            self.book.feed(lines)
            moved = offset != self.book.offset
            self.book.offset = offset
            if not moved or not lines:
                break
        self.book.prune(quota.oldest_start(now_local))

    # -- each cycle -------------------------------------------------------------------

    def policy_due(self, state: MasterState, *, now: datetime, now_local: datetime) -> bool:
        """Whether held jobs expired or quota-held jobs fit again (rate-limited, no lock)."""
        server = self._config().server
        if server.held_expiry is None and not server.quotas:
            return False
        if self._policy_pending:
            return True
        mono = self._clock()
        if mono < self._next_policy:
            return False
        interval = POLICY_INTERVAL
        if server.held_expiry is not None:
            interval = min(interval, max(0.1, server.held_expiry / 10))
        self._next_policy = mono + interval
        if server.held_expiry is not None and quota.expired(state, server.held_expiry, now):
            self._policy_pending = True
        elif server.quotas and any(quota.quota_held(j) for j in state.jobs.values()):
            self._policy_pending = bool(self._releasable(state, now_local, server.quotas))
        return self._policy_pending

    def policy_ops(self, state: MasterState, *, now: datetime, now_local: datetime,
                   server_name: str) -> verbs.Change:
        """Under the master lock: expired held jobs end (`verbs.expire`: the caller
        writes their done records and accounting lines before the commit), quota-held
        jobs that fit again are released."""
        change = verbs.Change()
        if not self._policy_pending:
            return change
        self._policy_pending = False
        server = self._config().server
        if server.held_expiry is not None:
            reason = quota.expiry_reason(server.held_expiry)
            for job in quota.expired(state, server.held_expiry, now):
                change.add(verbs.expire(job, reason=reason, at=now, server=server_name))
        if server.quotas:
            for job in self._releasable(state, now_local, server.quotas,
                                        skip=set(change.ended)):
                change.ops.append(verbs.release(job))
        return change

    def _releasable(self, state: MasterState, now_local: datetime,
                    rules: tuple[quota.QuotaRule, ...], skip: set[str] | None = None,
                    ) -> list[Job]:
        held = sorted((j for j in state.jobs.values() if quota.quota_held(j)
                       and (skip is None or j.id not in skip)), key=lambda j: j.key)
        if not held:
            return []
        self.refresh_usage(now_local)
        live = quota.live_usage(state, self.book.ids)
        out = []
        for job in held:
            verdict = quota.check_quota(rules, user=job.user, destination=job.destination,
                                        pages=job.pages, book=self.book, live=live,
                                        now_local=now_local, groups=self.groups)
            if verdict is None:
                out.append(job)
                quota.add_live(live, job)
        return out


def _verify(name: str, size: int, sha256: str, data: bytes) -> None:
    if len(data) != size or hashlib.sha256(data).hexdigest() != sha256:
        raise RequestInvalid(f"files[{name}]", "differs from what was submitted "
                             "(size or sha256)")


def _limits(req: PrintRequest, printer: PrinterConfig) -> list[tuple[str, str, str]]:
    """The printer's per-job limits this request breaks: (field, rejection, hold note)."""
    name = printer.name
    out = []
    if printer.max_copies is not None and req.copies > printer.max_copies:
        out.append(("copies", f"{req.copies} is over {name}'s limit of {printer.max_copies}",
                    f"{quota.LIMIT_NOTE} {req.copies} copies; {name} allows "
                    f"{printer.max_copies} (MAXCOPIES)"))
    if printer.max_bytes is not None and req.size > printer.max_bytes:
        out.append(("files", f"{req.size} bytes is over {name}'s limit of {printer.max_bytes}",
                    f"{quota.LIMIT_NOTE} {req.size} bytes; {name} allows "
                    f"{printer.max_bytes} per job (MAXBYTES)"))
    if printer.max_file is not None:
        for f in req.files:
            if f.size > printer.max_file:
                out.append((f"files[{f.name}]", f"{f.size} bytes is over {name}'s limit of "
                            f"{printer.max_file} per file",
                            f"{quota.LIMIT_NOTE} a file of {f.size} bytes; {name} allows "
                            f"{printer.max_file} per file (MAXFILE)"))
                break
    return out
