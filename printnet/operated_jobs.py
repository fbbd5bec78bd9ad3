"""The job side of `printnet.operated.OperatedServer`: the queues as an operator
sees them and the operator's job verbs on a running `Server`.

Owns finding a live job by id or ending, grouping the jobs named by shared disk,
and carrying out HOLD RELEASE CANCEL MOVE TOP as one fenced commit per disk
(`SpoolService.operator_ops`) whose ops come from the job verbs
(`printnet.verbs`); and REPRINT, which queues a finished job again from its
retained data.  `queues` and `destinations` expect the server thread (the
caller wraps them in `between_cycles`); the verbs get there themselves.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from printnet import verbs
from printnet.errors import NotFound, PermissionDenied, PrintnetError, UsageError
from printnet.masterfile import Job, MasterState, Op
from printnet.model import (
    MAX_TITLE,
    JobState,
    PrintRequest,
    clean_text,
    decode_request,
    normalize_name,
    request_from_json,
    valid_job_id,
)
from printnet.operator import Outcomes, Queues, Reprinted, RunningServer

if TYPE_CHECKING:
    from printnet.server import Server, SpoolService

REPRINT_MAX: Final = 256 * 1024 * 1024  # bytes a reprint reads into memory
LOCK_WAIT: Final = 5.0  # seconds an operator's change waits for a busy master lock

Planner = Callable[["SpoolService", MasterState, Job, list[Op], list[Callable[[], None]]],
                   str]


class OperatorJobs:
    """Queues and job verbs of one server; `desk` is its `RunningServer`."""

    def __init__(self, server: Server, desk: RunningServer) -> None:
        self._server = server
        self._desk = desk

    def queues(self) -> Queues:
        queues: dict[str, list[dict[str, Any]]] = {}
        held = rejected = 0
        # Assigned ahead: handed to a printer that still prints the job before (`next`).
        with self._server.lock:
            ahead = {a.job.id for q in self._server.backlog.values() for a in q}
        for index, svc in enumerate(self._server.services, 1):
            with contextlib.suppress(PrintnetError):
                svc.store.refresh()
            with contextlib.suppress(OSError):
                rejected += sum(1 for n in os.listdir(svc.spool.rejected)
                                if not n.endswith(".reason") and not n.startswith("."))
            for dest in svc.store.state.destinations():
                for position, job in enumerate(svc.store.state.queue(dest), 1):
                    held += job.state is JobState.HELD
                    entry = job.to_json()
                    entry.update(position=position, disk=index,
                                 progress=self._progress(svc.root, job),
                                 next=job.id in ahead)
                    if job.id in ahead:
                        entry["note"] = f"next on {job.assigned} (assigned ahead, not started)"
                    queues.setdefault(dest, []).append(entry)
        for jobs in queues.values():
            jobs.sort(key=lambda j: (j["disk"], j["position"]))
        return Queues(queues, held, rejected)

    def _progress(self, spool_root: Path, job: Job) -> dict[str, int] | None:
        """Pages printed of total for a printing job: from our worker or the holder's status."""
        if job.state is not JobState.PRINTING:
            return None
        server = self._server
        status: dict[str, Any] | None = None
        worker = server.workers.get(job.assigned)
        if job.holder == server.name and worker is not None:
            status = worker.status()
        else:
            from printnet.api import server_files
            from printnet.spool.layout import Spool

            for info in server_files(Spool(spool_root)):
                if info.get("name") != job.holder:
                    continue
                for p in info.get("printers", []):
                    if isinstance(p, dict) and p.get("job") == job.id:
                        status = p
        if not status or status.get("job") != job.id or not isinstance(
                status.get("progress"), dict):
            return None
        prog = status["progress"]
        sent, total = int(prog.get("bytes") or 0), int(prog.get("total") or 0)
        pages = int(prog.get("page_total") or 0)
        done = pages * sent // total if total else 0
        return {"pages": done, "page_total": pages, "bytes": sent, "total": total}

    def destinations(self) -> set[str]:
        from printnet.api import server_files

        def known() -> set[str]:
            cfg = self._server.config
            names = set(cfg.printers) | set(cfg.classes)
            for svc in self._server.services:
                for info in server_files(svc.spool):
                    for p in info.get("printers", []):
                        if isinstance(p, dict):
                            names.add(str(p.get("name")))
                            names.update(str(c) for c in p.get("classes", []))
            return names
        return known()

    def _find_live(self, text: str) -> tuple[SpoolService, str]:
        text = text.strip().upper()
        if len(text) < 4:
            raise UsageError(f"{clean_text(text, 30)!r} is not a job id (give at least 4 "
                             "characters)")
        matches: list[tuple[SpoolService, str]] = []
        for svc in self._server.services:
            with contextlib.suppress(PrintnetError):
                svc.store.refresh()
            if text in svc.store.state:
                return svc, text
            matches += [(svc, i) for i in svc.store.state.jobs if i.endswith(text)]
        if not matches:
            raise NotFound(f"no live job {clean_text(text, 30)} (finished, or never queued)")
        if len(matches) > 1:
            raise UsageError(f"{text} is the end of several jobs: "
                             f"{', '.join(i for _, i in matches[:5])}")
        return matches[0]

    def _verb(self, targets: Sequence[str], planner: Planner) -> Outcomes:
        if not targets:
            raise UsageError("name at least one job")

        def run() -> Outcomes:
            groups: dict[int, tuple[SpoolService, list[str]]] = {}
            for text in targets:
                svc, job_id = self._find_live(text)
                groups.setdefault(id(svc), (svc, []))[1].append(job_id)
            outcomes: Outcomes = {}
            for svc, ids in groups.values():
                after: list[Callable[[], None]] = []

                def plan(state: MasterState, svc: SpoolService = svc, ids: list[str] = ids,
                         after: list[Callable[[], None]] = after) -> list[Op]:
                    ops: list[Op] = []
                    for job_id in ids:
                        job = state.get(job_id)
                        if job is None:
                            outcomes[job_id] = "not found (finished meanwhile)"
                            continue
                        outcomes[job_id] = planner(svc, state, job, ops, after)
                    return ops

                svc.operator_ops(plan, wait=LOCK_WAIT)
                for fn in after:
                    fn()
            self._server.wake.set()
            return outcomes
        return self._desk.between_cycles(run)

    def hold(self, jobs: Sequence[str]) -> Outcomes:
        def planner(svc: SpoolService, state: MasterState, job: Job, ops: list[Op],
                    after: list[Callable[[], None]]) -> str:
            if job.state is not JobState.PENDING:
                return f"not held: it is {job.state.value}"
            # Stamped on the server's clock, as HELDEXPIRY reads it (else: since submit).
            ops.append(verbs.hold(job, verbs.HELD_BY_OPERATOR, svc.server.clock()))
            return "held"
        return self._verb(jobs, planner)

    def release(self, jobs: Sequence[str]) -> Outcomes:
        def planner(svc: SpoolService, state: MasterState, job: Job, ops: list[Op],
                    after: list[Callable[[], None]]) -> str:
            if job.state is not JobState.HELD:
                return f"not released: it is {job.state.value}"
            ops.append(verbs.release(job))
            return "released"
        return self._verb(jobs, planner)

    def cancel(self, jobs: Sequence[str]) -> Outcomes:
        from printnet.spool.layout import REQ_SUFFIX

        server = self._server

        def planner(svc: SpoolService, state: MasterState, job: Job, ops: list[Op],
                    after: list[Callable[[], None]]) -> str:
            request = None
            with contextlib.suppress(OSError, PrintnetError):
                req = decode_request((svc.spool.received / (job.id + REQ_SUFFIX))
                                     .read_bytes())
                if isinstance(req, PrintRequest):
                    request = req.to_json()
                    request.pop("password", None)
            if job.state is JobState.PRINTING and job.holder == server.name:
                server.abandon(job.id)  # its interrupted result then finds the job gone
            # The record first (under the master lock): a crash before the commit
            # leaves a done/ record that recovery honours instead of printing it again.
            change = verbs.cancel(job, by=verbs.OPERATOR, at=server.clock(),
                                  server=server.name, request=request)
            verbs.write_endings(svc.spool, change.endings)
            ops += change.ops

            def unlink(job_id: str = job.id) -> None:
                if job_id not in svc.store.state:
                    (svc.spool.received / (job_id + REQ_SUFFIX)).unlink(missing_ok=True)
            after.append(unlink)
            return "canceled"
        return self._verb(jobs, planner)

    def move(self, jobs: Sequence[str], destination: str) -> Outcomes:
        dest = normalize_name(destination)
        if dest not in self._desk.destinations():
            raise NotFound(f"no printer or class {dest}")

        def planner(svc: SpoolService, state: MasterState, job: Job, ops: list[Op],
                    after: list[Callable[[], None]]) -> str:
            if job.state not in (JobState.PENDING, JobState.HELD):
                return f"not moved: it is {job.state.value}"
            if job.destination == dest:
                return f"already queued for {dest}"
            ops.append(verbs.move(job, dest))
            return f"moved to {dest}"
        return self._verb(jobs, planner)

    def top(self, jobs: Sequence[str]) -> Outcomes:
        front: dict[str, int] = {}  # priority -> the rank given last (several jobs stack)

        def planner(svc: SpoolService, state: MasterState, job: Job, ops: list[Op],
                    after: list[Callable[[], None]]) -> str:
            if job.state not in (JobState.PENDING, JobState.HELD):
                return f"not moved up: it is {job.state.value}"
            given = front.get(job.priority.value)
            rank = state.front_rank(job.priority) if given is None else given - 1
            front[job.priority.value] = rank
            ops.append(verbs.top(job, rank))
            return f"at the front of the {job.priority.value} jobs"
        # Last named first, so that the first named job ends up at the very front.
        return self._verb(list(reversed(jobs)), planner)

    def reprint(self, job: str, destination: str | None) -> Reprinted:
        from printnet.spool.submit import Source, Submitter

        text = job.strip().upper()
        if len(text) < 4:
            raise UsageError("give at least 4 characters of the job id")
        found: list[tuple[Path, Path]] = []
        for root in self._desk.disks():
            done = self._spool_of(root).done
            exact = done / f"{text}.json"
            if valid_job_id(text) and exact.exists():
                found = [(root, exact)]
                break
            with contextlib.suppress(OSError):
                found += [(root, done / n) for n in os.listdir(done)
                          if n.endswith(f"{text}.json") and valid_job_id(n[:-5])]
        if not found:
            raise NotFound(f"no finished job {clean_text(text, 30)} (purged, or never "
                           "finished)")
        if len(found) > 1:
            raise UsageError(f"{text} is the end of several finished jobs")
        root, path = found[0]
        try:
            record = json.loads(path.read_bytes())
            request = request_from_json(record["request"])
        except (OSError, ValueError, KeyError, TypeError, PrintnetError):
            raise NotFound(f"job {path.stem}: its request was not retained; it cannot be "
                           "reprinted") from None
        if not isinstance(request, PrintRequest) or not isinstance(record, dict):
            raise NotFound(f"job {path.stem} is not a print job")
        dest = normalize_name(destination) if destination else request.printer
        if dest not in self._desk.destinations():
            raise NotFound(f"no printer or class {dest}")
        spool = self._spool_of(root)
        files = _retained_files(spool.job_data(request.id), request)
        template = replace(request, printer=dest, hold=False, password=None,
                           title=clean_text(request.title, MAX_TITLE))
        submitter = Submitter(spool, user=request.user, station=request.station)
        [new] = submitter.submit_many(
            [(template, [Source(name, stream=io.BytesIO(data)) for name, data in files])])
        self._server.wake.set()
        return Reprinted(request.id, new.id, dest, root)

    def _spool_of(self, disk: Path) -> Any:
        for svc in list(self._server.services):
            if svc.root == disk:
                return svc.spool
        raise NotFound(f"{disk} is no longer a shared disk of this server")

    def submit(self, paths: Sequence[str], *, disk: Path | None,
               **options: Any) -> list[PrintRequest]:
        from printnet.api import Station

        root = disk if disk is not None else self._desk.disks()[0]
        station = Station(root, self._server.config.etc)
        requests = station.submit(list(paths), **options)
        self._server.wake.set()
        return requests



def _retained_files(folder: Path, req: PrintRequest) -> list[tuple[str, bytes]]:
    """The job's spooled files, opened without following links, checked against the
    sizes and sha256 recorded at submit (so nothing else can be printed)."""
    if req.size > REPRINT_MAX:
        raise UsageError(f"job is {req.size} bytes: too large to reprint from the console")
    out = []
    for f in req.files:
        path = folder / f.name
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError as exc:
            raise NotFound(f"its data is no longer retained ({f.name}: "
                           f"{exc.strerror})") from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise PermissionDenied(f"data file {f.name} is not a regular file")
            with os.fdopen(fd, "rb", closefd=False) as fh:
                data = fh.read(f.size + 1)
        finally:
            os.close(fd)
        if len(data) != f.size or hashlib.sha256(data).hexdigest() != f.sha256:
            raise PermissionDenied(f"data file {f.name} changed since it was submitted")
        out.append((f.original or f.name, data))
    return out
