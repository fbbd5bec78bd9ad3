"""What every door of the gateway shares: who asks, and the spool it submits to.

Owns `Identity` (a user and how the gateway established it) and
`GatewayContext`: the spool, the etc folder, one `Station` for what the
configuration and the servers say, the parsed etc/gateway.cmd, and the
blocking operations each door calls **from a thread** (`asyncio.to_thread`):

* `identify(authorization, peer_host, claimed)`: the rules of
  docs/GATEWAY.md ("Identity"); raises `AuthRequired` (HTTP 401) or
  `Forbidden` (403).
* `validate(...)` / `submit(...)`: one print request, validated as
  `printnet request` validates it (printer, priority, copies, setup), plus the
  printer's per-job limits (MAXCOPIES, MAXBYTES, MAXFILE, MAXPAGES of PDF)
  when the gateway can read printers.cmd, the document formats the printer's
  port takes, and MINFREE (the `Submitter`).  `submit` returns only after the
  request is durable in new/ (`printnet.spool.submit`; a job forwarded from
  another site, `printnet-job-id`: `spool.forward`, once under its own id);
  nothing is written when a check fails.  About 600 lines: the three doors'
  one shared view of the spool.
* `control(identity, action, job_id)`: the same control request the CLI
  sends; the servers decide ownership and operator rights.
* `queue_view(printer, user)`: jobs, printers, servers with their locks, and
  recent completed jobs, as plain JSON-able data (the web page and /api).

It is some 670 lines because the doors' blocking operations and the group commit
(`_Committer`) share one cache of the configuration and the servers' files.

The gateway runs as the service account: intake lets it submit for others
(`printnet.spool.intake`), and every request records `via` (e.g.
``ipp:basic``) so done/ records and accounting show how the user was known.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

from printnet import config as config_mod
from printnet.api import Station, server_files
from printnet.errors import (
    ConfigError,
    Forbidden,
    PrintnetError,
    UsageError,
    ValidationError,
)
from printnet.gateway import auth
from printnet.gateway import settings as settings_mod
from printnet.gateway.auth import Identity
from printnet.gateway.settings import GatewaySettings
from printnet.model import MAX_FILES, ControlAction, Format, PrintRequest, clean_text, valid_user
from printnet.printers.ports import accepted_formats
from printnet.spool.forward import receive_as
from printnet.spool.publish import read_bytes

__all__ = [  # Identity is auth's, re-exported: the doors import it from here
    "Document", "FormatNotSupported", "GatewayContext", "Identity", "JobOptions",
    "LimitExceeded", "PasswordRequired", "Staged",
]

TEXT: Final = "text/plain"
RAW: Final = "application/octet-stream"
ESCP: Final = "application/vnd.printnet-escp"
PDF: Final = "application/pdf"
PWG: Final = "image/pwg-raster"
CACHE_TTL: Final = 2.0  # seconds the destinations and server files are reused
RECENT: Final = 50  # completed jobs in a queue view
RECENT_SUBMIT: Final = 60.0  # seconds this gateway looks after a job it submitted (live_jobs)
_ENDED: Final = frozenset({"completed", "forwarded", "canceled", "aborted", "rejected"})


class LimitExceeded(ValidationError):
    """A job over a printer's MAX... limit (OVERLIMIT=REJECT): refused before writing."""


class FormatNotSupported(ValidationError):
    """A document format the printer's port cannot take."""


@dataclass(frozen=True)
class Document:
    """One document of a job, received whole (the doors bound its size)."""

    name: str
    data: bytes
    format: str = TEXT


@dataclass(frozen=True)
class JobOptions:
    """What a door asks for one job (IPP attributes, LPD control lines)."""

    printer: str | None = None  # None: the default printer
    copies: int = 1
    title: str = ""
    priority: str = "standard"  # high | standard | overnight
    hold: bool = False
    setup: str | None = None
    header: bool = True
    password: str | None = None  # the queue password (IPP job-password)
    forward_id: str | None = None  # printnet-job-id: from another site (spool.forward)
    site: str | None = None  # the site it comes from (printnet-site: a forwarding branch)


class GatewayContext:
    """The spool, etc and settings one gateway process serves; thread-safe."""

    def __init__(self, spool_dir: Path, etc_dir: Path,
                 settings: GatewaySettings | None = None) -> None:
        self.spool_dir = spool_dir
        self.etc_dir = etc_dir
        self.station = _Station(self, spool_dir, etc_dir if etc_dir.exists() else None,
                                user=_service_user(), station=_host())
        self.spool = self.station.spool
        self.settings = settings if settings is not None else settings_mod.load(etc_dir)
        self._lock = threading.Lock()
        self._config: tuple[object, config_mod.Config | None] = (None, None)
        self._config_seen = -1e9  # when the files were last looked at (monotonic)
        self._dests: tuple[float, Any] = (0.0, None)
        self._servers: tuple[float, list[dict[str, Any]]] = (-1e9, [])
        self._basic = auth.BasicCheck(self.settings)
        self._recent: dict[str, float] = {}  # job id -> when this gateway submitted it
        self._committer = _Committer(self.spool)

    # -- configuration -------------------------------------------------------------

    def config(self) -> config_mod.Config | None:
        """etc/'s printers and server settings (None when the gateway has no etc).

        Re-read when the files change, looked at at most every CACHE_TTL s: a
        request asks several times, and each look is two stats."""
        now = time.monotonic()
        with self._lock:
            if now - self._config_seen < CACHE_TTL:
                return self._config[1]
        cfg: config_mod.Config | None = None
        stamp: object = None
        if (self.etc_dir / config_mod.PRINTERS_FILE).exists():
            stamp = config_mod.stamp(self.etc_dir)
            with self._lock:
                same = self._config[0] == stamp
            # A broken file raises ConfigError here, every time, until it is fixed.
            cfg = self._config[1] if same else config_mod.load(self.etc_dir)
        with self._lock:
            self._config = (stamp, cfg)
            self._config_seen = now
        return cfg

    def destinations(self) -> Any:
        """What the configuration and the servers say (re-read every CACHE_TTL s)."""
        now = time.monotonic()
        with self._lock:
            if self._dests[1] is not None and now - self._dests[0] < CACHE_TTL:
                return self._dests[1]
        dests = Station.destinations(self.station)
        with self._lock:
            self._dests = (now, dests)
        return dests

    def server_info(self) -> list[dict[str, Any]]:
        """The servers' status files (re-read every CACHE_TTL s)."""
        now = time.monotonic()
        with self._lock:
            if now - self._servers[0] < CACHE_TTL:
                return self._servers[1]
        info = server_files(self.spool)
        with self._lock:
            self._servers = (now, info)
        return info

    def printer_names(self) -> list[str]:
        """Printers and classes in name order."""
        return sorted(self.destinations().known)

    def default_printer(self) -> str | None:
        dests = self.destinations()
        if dests.default:
            return str(dests.default)
        return next(iter(dests.printers)) if len(dests.printers) == 1 else None

    def formats(self, printer: str) -> frozenset[str]:
        """The document formats `printer` (or every member of a class) can take."""
        cfg = self.config()
        if cfg is None:
            return accepted_formats("")
        members = [cfg.printers[printer]] if printer in cfg.printers else [
            cfg.printers[m] for m in cfg.classes.get(printer, ()) if m in cfg.printers]
        if not members:
            return accepted_formats("")
        out: frozenset[str] | None = None
        for p in members:
            got = accepted_formats(p.port)
            if p.driver.value != "escp":
                got = got - {ESCP}
            out = got if out is None else out & got
        return out or frozenset()

    # -- identity ------------------------------------------------------------------

    def trusted_network(self, peer_host: str) -> bool:
        """Whether `peer_host` is inside the NETWORKS= of etc/gateway.cmd."""
        return auth.trusted(self.settings, peer_host)

    def identify(self, authorization: str | None, peer_host: str,
                 claimed: str | None) -> Identity:
        """Who a request is for (docs/GATEWAY.md, "Identity"); AuthRequired or Forbidden."""
        return auth.identify(self.settings, self._basic, authorization, peer_host, claimed)

    def is_operator(self, user: str) -> bool:
        """Whether `user` is among the OPERATORS of etc/server.cmd (the servers decide)."""
        from printnet.security import is_operator

        cfg = self.config()
        operators = cfg.server.operators if cfg is not None else ("root",)
        return is_operator(user, operators)

    # -- submitting ----------------------------------------------------------------

    def validate(self, identity: Identity, options: JobOptions,
                 formats: Sequence[str] = (), size: int = 0, pages: int = 0,
                 files: Sequence[int] = (), via: str | None = None) -> PrintRequest:
        """Check a job before any byte is written; its template (id not yet set)."""
        if not valid_user(identity.user):
            raise Forbidden(f"{clean_text(identity.user, 40)!r} is not a user name")
        kinds = {_kind(f) for f in formats}
        if len(kinds) > 1:
            raise UsageError("one job holds text or raw documents, not both")
        try:
            template = self.station.template(
                printer=options.printer, priority=options.priority, copies=options.copies,
                title=options.title, setup=options.setup, header=options.header,
                raw=kinds == {Format.RAW}, hold=options.hold)
        except ConfigError as exc:
            raise UsageError(str(exc)) from exc
        template = replace(template, user=identity.user, via=via)
        if options.site:  # forwarded from another site: its name, not ours
            template = replace(template, site=options.site)
        allowed = self.formats(template.printer)
        for fmt in formats:
            if fmt not in allowed:
                raise FormatNotSupported(
                    "document-format", f"{template.printer} cannot print {fmt} "
                    f"(it takes {', '.join(sorted(allowed))})")
        self._limits(template, size, pages, files)
        return template

    def _limits(self, req: PrintRequest, size: int, pages: int, files: Sequence[int]) -> None:
        cfg = self.config()
        printer = cfg.printers.get(req.printer) if cfg is not None else None
        if printer is None or printer.over_limit.value != "reject":
            return  # unknown here, or OVERLIMIT=HOLD: the server holds it with a note
        name = printer.name
        if printer.max_copies is not None and req.copies > printer.max_copies:
            raise LimitExceeded("copies", f"{req.copies} is over {name}'s limit of "
                                f"{printer.max_copies}")
        if printer.max_bytes is not None and size > printer.max_bytes:
            raise LimitExceeded("files", f"{size} bytes is over {name}'s limit of "
                                f"{printer.max_bytes}")
        if printer.max_file is not None and any(f > printer.max_file for f in files):
            raise LimitExceeded("files", f"a file is over {name}'s limit of "
                                f"{printer.max_file} per file")
        if printer.max_pages is not None and pages > printer.max_pages:
            raise LimitExceeded("pages", f"{pages} pages is over {name}'s limit of "
                                f"{printer.max_pages}")

    def max_bytes(self, printer: str | None) -> int:
        """The most a request to `printer` may carry: MAXBODY, or the printer's MAXBYTES."""
        limit = self.settings.max_body
        cfg = self.config()
        if cfg is not None and printer:
            p = cfg.printers.get(printer)
            if p is not None and p.max_bytes is not None and p.over_limit.value == "reject":
                limit = min(limit, p.max_bytes)
        return limit

    def stage(self, identity: Identity, documents: Sequence[Document], options: JobOptions,
              *, door: str = "ipp", peer: str = "") -> Staged:
        """Validate one job and prepare what the group commit publishes (nothing is
        written).  Blocking only where a cache is cold (`warm`) or a PDF is counted."""
        import io

        from printnet.gateway.documents import count_pages
        from printnet.spool.submit import Source

        if not documents:
            raise UsageError("no documents to print")
        if len(documents) > MAX_FILES:
            raise UsageError(f"at most {MAX_FILES} documents in one job")
        size, sizes = sum(len(d.data) for d in documents), [len(d.data) for d in documents]
        template = self.validate(identity, options, [d.format for d in documents], size, 0,
                                 sizes, via=f"{door}:{identity.how}")
        # Pages only of a format the printer takes (a PDF is never parsed for nothing).
        pages = sum(count_pages(d.data, d.format) for d in documents)
        if pages:
            self._limits(template, size, pages, sizes)
        station = _station_name(peer) or self.station.station
        sources = [Source(d.name or "document", stream=io.BytesIO(d.data)) for d in documents]
        password = options.password or None
        if password is None and self.station.needs_password(template.printer):
            raise PasswordRequired("password", f"{template.printer} needs a password "
                                   "(job-password)")
        forward = None
        if options.forward_id is not None:  # from another site: once, under its own id
            forward = _Forward(options.forward_id, identity.user, station, f"ipp:{peer}",
                               tuple((d.name, d.data) for d in documents))
        return Staged((identity.user, station, password, self.station.min_free()), template,
                      sources, forward)

    def submit(self, identity: Identity, documents: Sequence[Document], options: JobOptions,
               *, door: str = "ipp", peer: str = "") -> PrintRequest:
        """Queue one job; returns the request (its `.id`) once it is durable in new/."""
        return self.publish(self.stage(identity, documents, options, door=door, peer=peer))

    def publish(self, staged: Staged) -> PrintRequest:
        """Publish a staged job (blocking, from a thread); once it is durable in new/."""
        if staged.forward is not None:
            return self._submitted(self._receive(staged))
        return self._submitted(self._committer.submit(staged))

    async def submit_async(self, staged: Staged) -> PrintRequest:
        """Publish a staged job from the event loop; returns once it is durable in new/.

        The loop never blocks: the group commit's threads publish, and wake the loop
        once per group."""
        if staged.forward is not None:
            return self._submitted(await asyncio.to_thread(self._receive, staged))
        return self._submitted(await self._committer.submit_async(staged))

    def _receive(self, staged: Staged) -> PrintRequest:
        """A forwarded job: published put-if-absent on its own id, outside the group
        commit (printnet.spool.forward)."""
        fwd = staged.forward
        assert fwd is not None
        return receive_as(self.spool, staged.template, list(fwd.documents),
                          job_id=fwd.job_id, user=fwd.user, station=fwd.station,
                          origin=fwd.origin, min_free=staged.key[3])

    def warm(self) -> bool:
        """Whether `stage` can run without touching the disk: the configuration, the
        destinations and the servers' status files were all read within CACHE_TTL."""
        now = time.monotonic()
        return (now - self._config_seen < CACHE_TTL and self._dests[1] is not None
                and now - self._dests[0] < CACHE_TTL and now - self._servers[0] < CACHE_TTL)

    def _submitted(self, req: PrintRequest) -> PrintRequest:
        with self._lock:
            self._recent[req.id] = time.monotonic()
        return req

    # -- cancel, hold, release -------------------------------------------------------

    def control(self, identity: Identity, action: ControlAction | str, job_id: str,
                *, wait: float = 5.0) -> str:
        """Send a control request as `identity`; the servers' outcome ("applied",
        "not your job", ...) or "queued" when none answered within `wait` s."""
        station = Station(self.spool_dir, None, user=identity.user, station=self.station.station)
        act = ControlAction(action)
        return station.control(act, [job_id], wait=wait).get(job_id, "unknown")

    # -- the queue -----------------------------------------------------------------

    def job(self, job_id: str) -> dict[str, Any] | None:
        """One job as `printnet status --json` shows it (live, waiting, done, rejected)."""
        view = self.station.status(jobs=[job_id])
        if view.jobs:
            return view.jobs[0]
        # RACE: a server has claimed it from new/ into received/ but not yet entered it in
        # the master file: it is in neither place `status` looks.
        job = self._received(job_id)
        if job is None:
            view = self.station.status(jobs=[job_id])  # it has moved on meanwhile
            return view.jobs[0] if view.jobs else None
        return job

    def live_jobs(self, printer: str | None = None,
                  user: str | None = None) -> list[dict[str, Any]]:
        """Jobs not finished, in queue order: the master file, new/, and received/
        (a request a server has claimed but not yet entered in the master file)."""
        view = self.station.status(printer=printer, user=user)
        jobs = view.jobs
        listed = {j["id"] for j in jobs}
        try:
            names = sorted(os.listdir(self.spool.received))
        except OSError:
            names = []
        for name in names:
            job_id = name[:-4]
            if not name.endswith(".req") or job_id in listed:
                continue
            job = self._received(job_id)
            if job is None or (printer and job["printer"] != printer) or (
                    user and job["user"] != user):
                continue
            if self.station.status(jobs=[job_id]).jobs:
                continue  # RACE: entered meanwhile (and listed by a later call)
            jobs.append(job)
            listed.add(job_id)
        # RACE: a job can move from new/ to the master file between `status` reading
        # the one and listing the other.  This gateway's own recent jobs are looked up
        # one by one when missing (another gateway's may be missed for a moment).
        now = time.monotonic()
        with self._lock:
            for job_id, when in list(self._recent.items()):
                if now - when > RECENT_SUBMIT:
                    del self._recent[job_id]
            recent = [i for i in self._recent if i not in listed]
        for job_id in recent:
            found = self.job(job_id)
            if found is None or found.get("state") in _ENDED:
                continue
            if (printer and printer not in (found.get("printer"), found.get("assigned"))) or (
                    user and found.get("user") != user):
                continue
            jobs.append(found)
        return jobs

    def _received(self, job_id: str) -> dict[str, Any] | None:
        from printnet.api import job_json
        from printnet.masterfile import Job
        from printnet.model import decode_request
        from printnet.spool.layout import REQ_SUFFIX

        try:
            req = decode_request(read_bytes(self.spool.received / f"{job_id}{REQ_SUFFIX}",
                                            1 << 18))
        except (OSError, PrintnetError):
            return None
        if not isinstance(req, PrintRequest):
            return None
        job = Job.from_request(req)
        job.note = "being taken in by a server"
        return job_json(job, 0)

    def queue_view(self, printer: str | None = None, user: str | None = None) -> dict[str, Any]:
        """Jobs in queue order, printers, servers with locks, and recent completed jobs."""
        from printnet.api import printer_status

        return {
            "jobs": self.live_jobs(printer, user),
            "printers": printer_status(self.spool, printer),
            "servers": self.servers(),
            "completed": self.completed(printer=printer, user=user),
            "default": self.default_printer(),
        }

    def servers(self) -> list[dict[str, Any]]:
        """The servers' status files with their age, and the locks with holders and ages."""
        out = []
        locks = self.locks()
        for info in server_files(self.spool):
            name = info.get("name")
            out.append({
                "name": name, "host": info.get("host"), "state": info.get("state"),
                "age": round(float(info.get("_age", 0.0)), 1),
                "lease": info.get("lease"), "spool_error": info.get("spool_error"),
                "printers": [p.get("name") for p in info.get("printers", [])
                             if isinstance(p, dict)],
                "locks": [lk for lk in locks if lk["holder"] == name],
            })
        out.append({"name": None, "locks": [lk for lk in locks
                                            if lk["holder"] not in {s["name"] for s in out}]})
        return out

    def locks(self) -> list[dict[str, Any]]:
        from printnet.spool.lock import LockTable

        out: list[dict[str, Any]] = []
        try:
            records = LockTable(self.spool.locks).records()
        except PrintnetError:
            return out
        now = time.time()
        for filename, rec in sorted(records.items()):
            try:
                age = max(0.0, now - os.stat(self.spool.locks / filename).st_mtime)
            except OSError:
                continue
            out.append({"name": filename, "holder": rec.holder, "host": rec.host,
                        "pid": rec.pid, "lease": rec.lease, "age": round(age, 1),
                        "acquired": rec.acquired})
        return out

    def completed(self, *, printer: str | None = None, user: str | None = None,
                  limit: int = RECENT) -> list[dict[str, Any]]:
        """The most recently submitted finished jobs (done/ records), newest first."""
        try:
            names = sorted((n for n in os.listdir(self.spool.done) if n.endswith(".json")),
                           reverse=True)
        except OSError:
            return []
        out: list[dict[str, Any]] = []
        for name in names:
            if len(out) >= limit:
                break
            try:
                record = json.loads(read_bytes(self.spool.done / name, 1 << 20))
            except (OSError, ValueError):
                continue
            job = record.get("job") if isinstance(record, dict) else None
            if not isinstance(job, dict):
                continue  # a control request's outcome
            if printer and printer not in (job.get("printer"), job.get("assigned")):
                continue
            if user and job.get("user") != user:
                continue
            request = record.get("request") or {}
            out.append(dict(job, finished=record.get("finished"), position=0,
                            via=request.get("via") if isinstance(request, dict) else None))
        return out


class _Station(Station):
    """A Station whose destinations come from the gateway's cache (a Print-Job must not
    parse printers.cmd and read every server's status file)."""

    def __init__(self, ctx: GatewayContext, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._ctx = ctx

    def destinations(self) -> Any:
        return self._ctx.destinations()

    def server_info(self) -> list[dict[str, Any]]:
        return self._ctx.server_info()

    def needs_password(self, printer: str) -> bool:
        return any(isinstance(p, dict) and p.get("name") == printer and p.get("password")
                   for info in self.server_info() for p in info.get("printers", []))

    def min_free(self) -> int:
        values = [info.get("min_free") for info in self.server_info()]
        return max([v for v in values if isinstance(v, int)], default=0)


_Key = tuple[str, str, str | None, int]  # user, station, queue password, MINFREE


@dataclass(frozen=True)
class _Forward:
    """A job forwarded from another site (IPP printnet-job-id): what `receive_as` needs."""

    job_id: str
    user: str
    station: str
    origin: str
    documents: tuple[tuple[str, bytes], ...]


@dataclass(frozen=True)
class Staged:
    """One validated job, ready for the group commit: its group key, template, sources
    (or, forwarded from another site, what is published put-if-absent instead)."""

    key: _Key
    template: PrintRequest
    sources: Sequence[Any]
    forward: _Forward | None = None


@dataclass
class _Pending:
    staged: Staged
    done: threading.Event | None = None  # a thread waiting (`submit`)
    future: asyncio.Future[PrintRequest] | None = None  # the loop waiting (`submit_async`)
    result: PrintRequest | None = None
    error: BaseException | None = None


class _Committer:
    """Group commit: requests that arrive together are published together.

    `LEADERS` committer threads (started on first use) wait for requests.  One
    that wakes takes everything queued, groups it by (user, station, password,
    MINFREE), publishes each group with one `Submitter.submit_many` (one
    durability pass: on a local disk one syncfs for the whole group) and goes
    on while more arrived meanwhile; requests arriving during its fsync wake
    the next thread, so several groups overlap their file work and fsyncs (the
    disk's journal commits them together).  Every caller still gets its
    answer only once its own request is durable in new/: a thread (`submit`,
    LPD and Send-Document) waits on an Event; the event loop (`submit_async`,
    Print-Job) awaits a future, resolved with one wake-up of the loop per
    group rather than a thread hop per job.  One request at a time costs what
    it did before.
    """

    LEADERS: Final = 4

    def __init__(self, spool: Any) -> None:
        self.spool = spool
        self._cond = threading.Condition(threading.Lock())
        self._queue: list[_Pending] = []
        self._threads: list[threading.Thread] = []
        self._idle = 0  # committer threads waiting for work (under _cond)
        self._staged: list[_Pending] = []  # from the event loop, not yet handed over

    def submit(self, staged: Staged) -> PrintRequest:
        me = _Pending(staged, done=threading.Event())
        self._put(me)
        assert me.done is not None
        me.done.wait()
        if me.error is not None:
            raise me.error
        assert me.result is not None
        return me.result

    def submit_async(self, staged: Staged) -> asyncio.Future[PrintRequest]:
        # The Print-Jobs that one turn of the loop staged (their bodies came in with one
        # epoll) reach the committers together: one hand-off, one bigger group.
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[PrintRequest] = loop.create_future()
        if not self._staged:
            loop.call_soon(self._hand_over)
        self._staged.append(_Pending(staged, future=fut))
        return fut

    def _hand_over(self) -> None:
        batch, self._staged = self._staged, []
        self._put(*batch)

    def _put(self, *pending: _Pending) -> None:
        with self._cond:
            self._queue.extend(pending)
            if len(self._threads) < self.LEADERS and len(self._queue) > self._idle:
                t = threading.Thread(target=self._serve, daemon=True,
                                     name=f"gateway-commit-{len(self._threads)}")
                self._threads.append(t)
                t.start()
            if self._idle:  # a busy thread takes the queue when its commit ends
                self._cond.notify()

    def _serve(self) -> None:
        # RACE: a daemon thread: a gateway killed mid-commit leaves only dot-named temp
        # files (publishing is the Submitter's rename), and its caller had no answer.
        while True:
            with self._cond:
                while not self._queue:
                    self._idle += 1
                    self._cond.wait()
                    self._idle -= 1
                batch, self._queue = self._queue, []
            groups: dict[_Key, list[_Pending]] = {}
            for p in batch:
                groups.setdefault(p.staged.key, []).append(p)
            for key, members in groups.items():
                self._commit(key, members)

    def _commit(self, key: _Key, members: list[_Pending]) -> None:
        from printnet.spool.submit import Submitter

        user, station, password, min_free = key
        try:
            submitter = Submitter(self.spool, user=user, station=station, min_free=min_free)
            done = submitter.submit_many(
                [(p.staged.template, p.staged.sources) for p in members], password=password)
            for p, req in zip(members, done, strict=True):
                p.result = req
        except BaseException as exc:  # each waiter gets the error of its batch
            for p in members:
                p.error = exc
        finally:
            loops: dict[asyncio.AbstractEventLoop, list[_Pending]] = {}
            for p in members:
                if p.done is not None:
                    p.done.set()
                elif p.future is not None:
                    loops.setdefault(p.future.get_loop(), []).append(p)
            for loop, waiting in loops.items():
                try:
                    loop.call_soon_threadsafe(_resolve, waiting)
                except RuntimeError:
                    pass  # the loop has closed: nobody is waiting any more


def _resolve(waiting: list[_Pending]) -> None:
    """In the loop: hand each waiting Print-Job its published request or its error."""
    for p in waiting:
        fut = p.future
        if fut is None or fut.done():
            continue  # its client went away (aiohttp cancelled the handler)
        if p.error is not None:
            fut.set_exception(p.error)
        else:
            assert p.result is not None
            fut.set_result(p.result)


class PasswordRequired(ValidationError):
    """The printer takes jobs only with its queue password (IPP job-password)."""


def _kind(fmt: str) -> Format:
    return Format.TEXT if fmt == TEXT else Format.RAW


def _service_user() -> str:
    from printnet.spool.intake import SERVICE_USER

    return SERVICE_USER if valid_user(SERVICE_USER) else "printnet"


def _host() -> str:
    from printnet.api import this_station

    return this_station()


def _station_name(peer: str) -> str:
    """A peer address as a station name (IPv6 colons become dashes)."""
    from printnet.model import valid_station

    text = peer.split("%", maxsplit=1)[0].replace(":", "-").strip("-")
    return text if text and valid_station(text) else ""
