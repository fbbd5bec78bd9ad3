"""The engine's side of `printnet.operator.RunningServer`: a running `Server` as
an operator may use it.

Owns how each operator request is carried out on the server: which shared disk
and master lock it takes, which records it writes, which configuration edit it
makes.  Every change of a job's state goes through the job verbs
(`printnet.verbs`: hold, release, cancel, move, top) inside
`SpoolService.operator_ops`, so an operator's change is one fenced commit like
the cycle's, and an operator cancel ends a job the way every ending does (the
job side is `printnet.operated_jobs`).  The console (`printnet.console`) never
sees the server's stores, locks or workers: only this object, through the
protocol.

Threads: every public method may be called from any thread.  Whatever reads or
changes the server's state runs on the server thread (`between_cycles`), and a
method called from inside `between_cycles` runs directly (no nested wait).
`submit` and `reprint` only publish request files and run on the caller's
thread; `stop` only sets a flag.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from printnet import __version__, cmdfile
from printnet import config as config_mod
from printnet.config import Config
from printnet.errors import (
    ConfigError,
    LockHeld,
    NotFound,
    PrintnetError,
    SpoolError,
    UsageError,
)
from printnet.masterfile import MasterState
from printnet.model import PrintRequest, clean_text
from printnet.operated_jobs import LOCK_WAIT, OperatorJobs
from printnet.operator import LockView, Outcomes, Queues, Reprinted, RunningServer

if TYPE_CHECKING:
    from printnet.server import Server, SpoolService

T = TypeVar("T")


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path


def _count(folder: Path, skip: Callable[[str], bool] = lambda n: n.startswith(".")) -> int:
    try:
        return sum(1 for n in os.listdir(folder) if not skip(n))
    except OSError:
        return -1


def _file_text(path: Path) -> str | None:
    try:
        return path.read_text("utf-8")
    except OSError:
        return None


class OperatedServer:
    """`RunningServer` for one `Server` of this process."""

    def __init__(self, server: Server) -> None:
        self._server = server
        self._inside = threading.local()  # set while between_cycles runs a call
        self._jobs = OperatorJobs(server, self)

    # -- who and how ---------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._server.name

    @property
    def state(self) -> str:
        return self._server.state

    @property
    def stopping(self) -> bool:
        return self._server.stopping

    @property
    def stop_grace(self) -> float:
        return self._server.stop_grace

    def config(self) -> Config:
        return self._server.config

    def between_cycles(self, fn: Callable[[], T], timeout: float = 90.0) -> T:
        if getattr(self._inside, "on", False):
            return fn()
        if self._server.stopping:
            raise PrintnetError(f"server {self.name} is stopping")

        def inside() -> T:
            self._inside.on = True
            try:
                return fn()
            finally:
                self._inside.on = False
        result: T = self._server.call(inside, timeout=timeout)
        return result

    def log(self, text: str, disk: Path | None = None) -> None:
        # A disk no longer served: the line goes to every disk's log instead.
        svc = next((s for s in list(self._server.services) if s.root == disk), None)
        self._server.event(text, svc.spool if svc is not None else None)

    def stop(self) -> None:
        self._server.request_stop()

    def info(self) -> dict[str, Any]:
        return self.between_cycles(self._info)

    def _info(self) -> dict[str, Any]:
        from printnet.server import MASTER_LOCK
        from printnet.spool.publish import HOST

        server = self._server
        now = time.monotonic()
        disks: list[dict[str, Any]] = []
        for index, svc in enumerate(server.services, 1):
            master = svc.table.observe(MASTER_LOCK)
            rec = master.record
            holders = sorted(r.holder for n, r in svc.table.records().items()
                             if n.startswith("server."))
            disks.append({
                "index": index, "path": str(svc.root), "error": svc.error,
                "last_scan": now - svc.last_scan if svc.last_scan > 0 else None,
                "master_lock": None if not master.present else {
                    "holder": rec.holder if rec else None, "host": rec.host if rec else None,
                    "pid": rec.pid if rec else None, "unchanged_for": master.unchanged_for},
                "servers": holders, "jobs": len(svc.store.state),
            })
        counters = dict(vars(server.counters))
        return {
            "name": server.name, "version": __version__, "host": HOST, "pid": os.getpid(),
            "state": server.state,
            "started": datetime.fromtimestamp(server.started, UTC).isoformat(),
            "uptime": max(0.0, time.time() - server.started), "printed": counters["printed"],
            "counters": counters, "disks": disks,
            "printers": [w.status() for w in server.workers.values()],
        }

    # -- queues and jobs -----------------------------------------------------------

    def printers(self) -> dict[str, dict[str, Any]]:
        def statuses() -> dict[str, dict[str, Any]]:
            server = self._server
            return {name: w.status() for name, w in server.workers.items()
                    if name in server.config.printers}
        return self.between_cycles(statuses)

    def queues(self) -> Queues:
        return self.between_cycles(self._jobs.queues)

    def destinations(self) -> set[str]:
        return self.between_cycles(self._jobs.destinations)

    def hold(self, jobs: Sequence[str]) -> Outcomes:
        return self._jobs.hold(jobs)

    def release(self, jobs: Sequence[str]) -> Outcomes:
        return self._jobs.release(jobs)

    def cancel(self, jobs: Sequence[str]) -> Outcomes:
        return self._jobs.cancel(jobs)

    def move(self, jobs: Sequence[str], destination: str) -> Outcomes:
        return self._jobs.move(jobs, destination)

    def top(self, jobs: Sequence[str]) -> Outcomes:
        return self._jobs.top(jobs)

    def reprint(self, job: str, destination: str | None) -> Reprinted:
        return self._jobs.reprint(job, destination)

    def submit(self, paths: Sequence[str], *, disk: Path | None,
               **options: Any) -> list[PrintRequest]:
        return self._jobs.submit(paths, disk=disk, **options)

    # -- printers ------------------------------------------------------------------

    def mount(self, printer: str, setup: str) -> None:
        def run() -> None:
            server = self._server
            if setup not in server.config.setups:
                raise NotFound(f"no setup {setup} (setups: {' '.join(server.config.setups)})")
            if printer not in server.workers:
                raise NotFound(f"printer {printer} is not running on this server")
            self._printer_edit(printer, {"SETUP": setup})
            if server.workers[printer].setup != setup:  # SETUP= was already on file
                server.mount(printer, setup)
        self.between_cycles(run)

    def _printer_edit(self, printer: str, changes: dict[str, str | None]) -> None:
        self.edit_config(config_mod.PRINTERS_FILE,
                         lambda t: cmdfile.update_command(t, "PRINTER", printer, changes))

    def stop_printer(self, printer: str) -> None:
        self._printer_edit(printer, {"STOPPED": "YES"})

    def start_printer(self, printer: str) -> None:
        self._printer_edit(printer, {"STOPPED": None})

    def reject(self, printer: str, reason: str) -> None:
        self._printer_edit(printer, {"ACCEPT": "NO", "REASON": reason})

    def accept(self, printer: str) -> None:
        self._printer_edit(printer, {"ACCEPT": None, "REASON": None})

    def printer_busy(self, printer: str) -> bool:
        def busy() -> bool:
            worker = self._server.workers.get(printer)
            return worker is not None and worker.busy
        return self.between_cycles(busy)

    # -- configuration -------------------------------------------------------------

    def edit_config(self, filename: str, change: Callable[[str], str], *,
                    apply: bool = True, disks: bool = False) -> Config:
        return self.between_cycles(lambda: self._edit(filename, change, apply, disks))

    def _edit(self, filename: str, change: Callable[[str], str], apply: bool,
              disks: bool) -> Config:
        """Edit etc/<filename> and apply it; the file is put back if the server cannot
        take it.  The server's own `loader` reads the result, so options given on its
        command line (--spool, --name) stay in force."""
        server = self._server
        running = server.config
        etc = running.etc
        if not apply:
            return config_mod.edit(etc, filename, change, server_name=server.name)
        if disks:
            try:
                on_file = config_mod.load(etc, server_name=server.name).server.spools
                used = server.loader().server.spools
            except ConfigError:
                on_file = used = ()
            if [_resolved(p) for p in on_file] != [_resolved(p) for p in used]:
                raise UsageError("this server was started with --spool, which replaces the "
                                 "SPOOL lines: restart it without --spool to manage shared "
                                 "disks here")
        old_text = _file_text(etc / filename)
        config_mod.edit(etc, filename, change, server_name=server.name)
        try:
            new = server.loader()
            server.apply_config(new)
        except PrintnetError as exc:
            if old_text is not None:
                with contextlib.suppress(PrintnetError):
                    config_mod.edit(etc, filename, lambda _: old_text,
                                    server_name=server.name)
            with contextlib.suppress(PrintnetError):
                server.apply_config(running)
            raise PrintnetError(f"the server cannot apply it ({exc}); nothing was changed"
                                ) from None
        return new

    def _folder(self, text: str) -> Path:
        if "\n" in text or "\0" in text:
            raise UsageError("bad folder name")
        return Path(os.path.normpath(self._server.config.project / text))

    def add_disk(self, folder: str) -> Path:
        from printnet.spool.layout import Spool
        from printnet.spool.lock import selftest

        path = self._folder(folder)
        # Refuse before touching the file: the folder must already be a spool.
        spool = Spool.open(path)
        selftest(spool.locks)
        self.edit_config(config_mod.SERVER_FILE,
                         lambda t: cmdfile.add_line(t, "SPOOL", folder), disks=True)
        return path

    def remove_disk(self, folder: str) -> Path:
        path = self._folder(folder)

        def run() -> None:
            server = self._server
            matches = [svc for svc in server.services
                       if svc.root == path or _resolved(svc.root) == _resolved(path)]
            if not matches:
                raise NotFound(f"{path} is not a shared disk of this server")
            if len(server.services) <= 1:
                raise UsageError("a server needs at least one shared disk")
            if matches[0].printing:
                raise UsageError(f"jobs on {path} are printing; try again when they finish")
            file = config_mod.SERVER_FILE
            etc_text = _file_text(server.config.etc / file) or ""
            values = [cmd.name for cmd in cmdfile.parse(etc_text, file, cmdfile.SERVER_SCHEMA)
                      if cmd.keyword == "SPOOL" and cmd.name is not None
                      and Path(os.path.normpath(server.config.project / cmd.name))
                      == matches[0].root]

            def change(text: str) -> str:
                for value in values:
                    text = cmdfile.remove_line(text, "SPOOL", value)
                return text
            self._edit(file, change, True, True)
        self.between_cycles(run)
        return path

    # -- shared disks --------------------------------------------------------------

    def disks(self) -> list[Path]:
        return [svc.root for svc in list(self._server.services)]

    def _service(self, disk: Path) -> SpoolService:
        for svc in list(self._server.services):
            if svc.root == disk:
                return svc
        raise NotFound(f"{disk} is no longer a shared disk of this server")

    def disk_health(self) -> list[dict[str, Any]]:
        return self.between_cycles(lambda: [
            _disk_health(i, s) for i, s in enumerate(self._server.services, 1)])

    def locks(self) -> list[dict[str, Any]]:
        from printnet.lease import stale_after
        from printnet.spool.publish import HOST

        def rows() -> list[dict[str, Any]]:
            out = []
            for index, svc in enumerate(self._server.services, 1):
                for name, rec in sorted(svc.table.records().items()):
                    st = svc.table.observe(name)
                    ours = (rec.holder == self.name and rec.host == HOST
                            and rec.pid == os.getpid())
                    out.append({
                        "disk": index, "lock": name, "holder": rec.holder, "host": rec.host,
                        "pid": rec.pid, "lease": rec.lease, "acquired": rec.acquired,
                        "unchanged_for": st.unchanged_for,
                        "stale_after": stale_after(rec.lease), "stale": st.stale,
                        "ours": ours,
                    })
            return out
        return self.between_cycles(rows)

    def lock(self, name: str, disks: Sequence[Path]) -> LockView:
        from printnet.lease import stale_after
        from printnet.server import server_lock_name

        def find() -> LockView:
            services = [self._service(d) for d in disks]
            typed = _lock_name(services, name)
            found = [s for s in services if os.path.lexists(s.spool.locks / typed)]
            if not found:
                raise NotFound(f"no lock {clean_text(name, 100)} (F LOCKS lists them)")
            if len(found) > 1:
                raise UsageError(f"lock {typed} exists on several shared disks: name the "
                                 "disk")
            svc = found[0]
            if typed in (svc.server_lock.name, server_lock_name(self.name)):
                raise UsageError(f"{typed} is this server's own lease; it cannot break it")
            status = svc.table.observe(typed)
            if not status.present:
                raise NotFound(f"lock {typed} is gone already")
            rec = status.record
            who = f"{rec.holder} ({rec.host} pid {rec.pid})" if rec else \
                "an unreadable record"
            lease = status.lease or 60.0
            return LockView(svc.root, typed, who, status.stale, status.unchanged_for,
                            status.lease or 0.0, stale_after(lease))
        return self.between_cycles(find)

    def break_lock(self, lock: LockView, *, force: bool) -> bool:
        from printnet.spool.lock import break_lock

        def run() -> bool:
            broken = break_lock(self._service(lock.disk).table, lock.name, force=force)
            self._server.wake.set()
            return broken
        return self.between_cycles(run)

    def purge(self, disk: Path, *, days: float, temp_hours: float) -> dict[str, int]:
        from printnet.spool.maintenance import purge

        return self.between_cycles(lambda: purge(disk, days=days, temp_hours=temp_hours))

    def rebuild(self, disk: Path) -> int:
        from printnet.spool import master as master_io

        def run() -> int:
            svc = self._service(disk)
            deadline = time.monotonic() + LOCK_WAIT
            while not svc.master_lock.try_acquire():
                if time.monotonic() >= deadline:
                    raise LockHeld("the master lock is busy; try again")
                time.sleep(0.05)
            try:
                try:
                    svc.store.refresh()
                    old: MasterState | None = svc.store.state
                except PrintnetError:
                    old = None  # corrupt: the request files are the truth
                state = master_io.rebuild_state(svc.spool, old)
                svc.store.install(state, svc.master_lock)
            finally:
                svc.master_lock.release()
            self._server.wake.set()
            return len(state)
        return self.between_cycles(run)


def _disk_health(index: int, svc: SpoolService) -> dict[str, Any]:
    from printnet.spool.layout import Spool

    problems = []
    try:
        Spool.open(svc.root)
    except SpoolError as exc:
        problems.append(str(exc))
    if not os.access(svc.root, os.W_OK):
        problems.append("not writable")
    if svc.error:
        problems.append(svc.error)
    free = None
    with contextlib.suppress(OSError):
        st = os.statvfs(svc.root)
        free = st.f_bavail * st.f_frsize
    sp = svc.spool
    return {
        "index": index, "path": str(svc.root), "health": "; ".join(problems) or "ok",
        "free_bytes": free, "jobs": len(svc.store.state), "generation": svc.store.generation,
        "last_scan": time.monotonic() - svc.last_scan if svc.last_scan > 0 else None,
        "counts": {
            "new": _count(sp.new), "received": _count(sp.received),
            "done": _count(sp.done), "data": _count(sp.data),
            "rejected": _count(sp.rejected, lambda n: n.startswith(".")
                               or n.endswith(".reason")),
            "tmp": _count(sp.tmp, lambda n: False),
        },
    }


def _lock_name(services: list[SpoolService], typed: str) -> str:
    """The lock a user named: as typed, else the one lock whose name matches it
    case-insensitively (`server.barcon` is the lease of server BARCON)."""
    if any(os.path.lexists(s.spool.locks / typed) for s in services):
        return typed
    names: set[str] = set()
    for svc in services:
        with contextlib.suppress(OSError):
            names.update(n for n in os.listdir(svc.spool.locks)
                         if n.casefold() == typed.casefold())
    return names.pop() if len(names) == 1 else typed


def _conforms(server: Server) -> RunningServer:
    """mypy proves here that OperatedServer is a RunningServer (never called)."""
    return OperatedServer(server)
