"""The print server process: its life cycle and its round over the shared disks.

Owns `Server` (with its printers, `printnet.server.printers`, and its
configuration reload, `printnet.server.reload`): start (workers, a lease on
every shared disk, change hints), `tick` (one cycle over every shared disk,
round-robin, a failing disk backed off while the others are served), `run`
(loop until stopped or drained, woken by a hint, a worker finishing, or the
scan interval), calls run on the server thread between cycles (`call`), the
status published in servers/<NAME>.json, and `shutdown` (current jobs finish
within `stop_grace` or are handed back, results committed, leases released).
A front door (the console's control socket) is started by `run` through the
`front_door` hook the caller sets: the engine imports no user interface.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from printnet import __version__, systemd
from printnet import config as config_mod
from printnet.config import Config
from printnet.errors import (
    LockHeld,
    PrintnetError,
    SpoolError,
)
from printnet.model import (
    clean_text,
)
from printnet.scheduling import busy_printers, decide
from printnet.server.disk import DISK_BACKOFF, LOCK_PASS_OVER, SpoolService
from printnet.server.hints import Cleaner, Hints
from printnet.server.presence import Presence
from printnet.server.reload import ConfigReload
from printnet.spool import records
from printnet.spool.layout import Spool
from printnet.spool.publish import HOST, translate
from printnet.worker import Assignment, PrinterWorker

STOP_GRACE = 10.0  # seconds a stopping server lets current jobs finish
LOCK_RETRY = 0.02  # seconds before trying a master lock again that was briefly busy


@dataclass
class Counters:
    printed: int = 0
    taken: int = 0
    rejected: int = 0
    requeued: int = 0
    lock_busy: int = 0
    fenced: int = 0


def _local_now() -> datetime:
    return datetime.now().astimezone()


class Server(ConfigReload):
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
        self.hints = Hints(self.wake)
        # Held for the process's life: a successor of this name on this host that gets
        # it knows we are dead (`presence`; the kernel releases it, kill -9 included).
        self.presence = Presence(self.name)
        self._calls: list[tuple[Callable[[], Any], threading.Event, list[Any]]] = []
        # Assigned ahead: jobs assigned to a printer that is still printing, given to
        # its worker the moment it finishes the one before (`give`, `_on_result`).
        self.backlog: dict[str, deque[Assignment]] = {}
        self.cleaner = Cleaner()
        self.job_time: dict[str, float] = {}  # per printer: recent seconds per job
        self._given: dict[str, float] = {}  # job id -> when its worker got it
        # The operator's way in (the console's control channel): whoever runs the
        # server wires it (the CLI); `run` starts it and `shutdown` stops it.  The
        # engine never imports its user interface.
        self.front_door: Callable[[], Any] | None = None
        self.control: Any = None  # what `front_door` started (has stop()), in run()
        # Per printer, how many jobs each shared disk may give it this tick (see
        # `_share_printers`; only with several disks).
        self._shares: dict[str, dict[SpoolService, int]] = {}
        self._link_held: dict[str, set[str]] = {}  # printer -> jobs LINKHOLD held
        self._links_wanted: set[object] = set()  # disks whose links ask for changes
        self._links_checked: dict[object, float] = {}  # per disk: when `links_due` may walk next

    def event(self, text: str, spool: Spool | None = None) -> None:
        stamp = datetime.now().strftime("%H:%M:%S")
        print(f"{stamp} {self.name}: {clean_text(text, 500)}", flush=True)
        targets = [spool] if spool is not None else [s.spool for s in self.services]
        for sp in targets:
            records.log_event(sp, self.name, text)

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
            "printers": [{**w.status(), "password": bool(w.printer.password_hash),
                          "seal": self.config.seals(w.printer)}  # stations seal (SEAL=ON)
                         for w in self.workers.values()],
            "setups": sorted(self.config.setups),
            "counters": vars(self.counters),
            "spool_error": service.error,
            "min_free": self.config.server.min_free,  # stations refuse to submit below it
            "site": self.config.server.site,  # SITE: what stations stamp their requests with
        }

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

    def _watch(self, service: SpoolService) -> None:
        """A change-event hint on new/ (local changes only; the scan covers the rest)."""
        self.hints.watch(service.spool.new)

    def start(self) -> None:
        if not self.presence.acquire():
            self.event(f"a process named {self.name} may run on this host ({self.presence.path}"
                       " is locked): its leases are waited for, not taken over")
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
            service.refresh_server_file(now)
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
            if decisions.assigned:
                return False
        return True

    def run(self) -> None:
        """Loop until stopped (SIGTERM, SIGINT, console Q) or drained."""
        self.start()
        quiet = 0
        notifier = systemd.Notifier()  # Type=notify: READY=1 after the first cycle
        try:
            self.control = self.front_door() if self.front_door is not None else None
            while not self.stopping:
                worked = self.tick()
                notifier.cycle(f"server {self.name}: serving {len(self.services)} spool(s)")
                if self.drain:
                    quiet = 0 if worked else quiet + 1
                    if quiet >= 2 and self.idle():
                        break
                if not worked:
                    self.wake.wait(self.pause())
        finally:
            notifier.stopping(f"server {self.name}: stopping")  # systemd: STOPPING=1
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
                records.write_server_file(service.spool, self.name, self.status(service))
            # A disk that is gone (cut-off mount) must not keep the others' leases.
            with contextlib.suppress(PrintnetError, OSError):
                service.stop()
        self.hints.close()
        self.presence.release()
        self.event(f"server {self.name} stopped")

def install_signal_handlers(server: Server) -> None:
    def handler(signum: int, frame: object) -> None:
        server.request_stop()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
