"""What an operator may ask of a running print server: the console's one way in.

Owns the `RunningServer` protocol (typing.Protocol) and the small value types
its answers use.  The console (`printnet.console`) talks to a server only
through it; the engine implements it (`printnet.operated.OperatedServer`) and
the CLI wires the two together, so the engine never imports its user
interface and the console never reaches into the engine's stores and locks.

Threads.  Every method may be called from any thread: the implementation
runs what touches the server's state on the server thread, between cycles
(`between_cycles`), so nothing races the scheduling cycle.  A console command
that asks several things runs them together in one `between_cycles` call
when they must see one state.

Answers that the console shows as they are (queue entries, printer and disk
status, lock rows) are JSON-ready dicts: they are the `--json` data of the
console's commands, documented in docs/CONSOLE.md.

Errors are `PrintnetError`s (`UsageError`, `NotFound`, `LockHeld`...), whose
message the console shows as the command's answer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from printnet.config import Config
    from printnet.model import PrintRequest

T = TypeVar("T")

Outcomes = dict[str, str]  # job id -> what a job verb did ("held", "not held: ...")


@dataclass(frozen=True)
class Queues:
    """The live jobs of every shared disk this server serves, by destination.

    Each entry is the job's JSON (`masterfile.Job.to_json`) plus `position` (in
    its destination's queue), `disk` (1-based, as `disks` lists them) and
    `progress` ({pages, page_total, bytes, total} of a printing job, else None) and
    `next` (True for a job assigned ahead: state printing, handed to a printer that
    still prints the job before; it has not started -- CH shows it as `next`).
    """

    jobs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    held: int = 0
    rejected: int = 0  # request files in rejected/ (all disks)


@dataclass(frozen=True)
class LockView:
    """One lock on a shared disk, as the server observes it now."""

    disk: Path
    name: str
    holder: str  # "NAME (host pid N)", or "an unreadable record"
    stale: bool
    unchanged_for: float  # seconds, on this server's monotonic clock
    lease: float
    stale_after: float  # seconds unchanged after which it is stale


@dataclass(frozen=True)
class Reprinted:
    job: str
    new: str
    printer: str
    disk: Path


class RunningServer(Protocol):
    """What an operator may ask of a running server (the console's protocol)."""

    # -- who and how ---------------------------------------------------------------

    @property
    def name(self) -> str:
        """The server's name (upper case; what its locks and socket are named)."""

    @property
    def state(self) -> str:
        """"starting", "running", "stopping" or "stopped"."""

    @property
    def stopping(self) -> bool: ...

    def config(self) -> Config:
        """The configuration in force (command-line overrides included)."""

    def between_cycles(self, fn: Callable[[], T], timeout: float = 90.0) -> T:
        """Run `fn` on the server thread between cycles; its result (or its error)."""

    def log(self, text: str, disk: Path | None = None) -> None:
        """An event line: the server's output and its shared disks' event logs."""

    def info(self) -> dict[str, Any]:
        """Version, host, pid, state, uptime, counters, disks (with the master lock
        and the server leases), printers (the I command's data)."""

    def stop(self) -> None:
        """Stop the server: jobs printing finish (or are requeued); nothing is lost."""

    @property
    def stop_grace(self) -> float:
        """Seconds a stopping server lets current jobs finish."""

    # -- queues and jobs -----------------------------------------------------------

    def printers(self) -> dict[str, dict[str, Any]]:
        """Each configured printer's worker status (state, reasons, setup, form, job,
        progress, accepting, printed...), in configuration order."""

    def queues(self) -> Queues: ...

    def destinations(self) -> set[str]:
        """Printers and classes a job may be sent to (this server's and others')."""

    def hold(self, jobs: Sequence[str]) -> Outcomes:
        """Hold pending jobs; `jobs` are ids or unique endings of ids (>= 4 chars)."""

    def release(self, jobs: Sequence[str]) -> Outcomes: ...

    def cancel(self, jobs: Sequence[str]) -> Outcomes:
        """Cancel jobs (a job printing here stops at once); each gets its done record."""

    def move(self, jobs: Sequence[str], destination: str) -> Outcomes: ...

    def top(self, jobs: Sequence[str]) -> Outcomes:
        """Put jobs at the front of their priority, the first named frontmost."""

    def reprint(self, job: str, destination: str | None) -> Reprinted:
        """Queue a finished job again from its retained data (checked against the
        sizes and hashes recorded at submit)."""

    def submit(self, paths: Sequence[str], *, disk: Path | None,
               **options: Any) -> list[PrintRequest]:
        """Queue files as the operator (`api.Station.submit` options)."""

    # -- printers ------------------------------------------------------------------

    def mount(self, printer: str, setup: str) -> None:
        """Mount a setup (saved in printers.cmd); jobs that need it start."""

    def stop_printer(self, printer: str) -> None:
        """Stop printing on `printer` (saved); a job printing now finishes."""

    def start_printer(self, printer: str) -> None: ...

    def reject(self, printer: str, reason: str) -> None:
        """Refuse new jobs for `printer` (saved); users see `reason`."""

    def accept(self, printer: str) -> None: ...

    def printer_busy(self, printer: str) -> bool: ...

    # -- configuration -------------------------------------------------------------

    def edit_config(self, filename: str, change: Callable[[str], str], *,
                    apply: bool = True, disks: bool = False) -> Config:
        """Edit etc/<filename> (validated as a whole, atomic, comment-keeping) and,
        with `apply`, take it without a restart; if the server cannot take it, the
        file is put back and nothing changed.  `disks`: the change touches the
        SPOOL lines (refused while --spool overrides them)."""

    def add_disk(self, folder: str) -> Path:
        """Serve another shared disk (a spool `printnet init` made); its path."""

    def remove_disk(self, folder: str) -> Path:
        """Stop serving a shared disk (refused while its jobs print); its path."""

    # -- shared disks --------------------------------------------------------------

    def disks(self) -> list[Path]:
        """The shared disks served, in order (the console numbers them from 1)."""

    def disk_health(self) -> list[dict[str, Any]]:
        """Per disk: path, health, free bytes, live jobs, generation, last scan,
        counts of new/received/done/rejected/tmp/data."""

    def locks(self) -> list[dict[str, Any]]:
        """Every lock of every disk: holder, host, pid, lease, unchanged_for, stale,
        ours."""

    def lock(self, name: str, disks: Sequence[Path]) -> LockView:
        """The lock `name` (case-insensitive) on one of `disks`; NotFound if none,
        UsageError if it is this server's own lease or on several disks."""

    def break_lock(self, lock: LockView, *, force: bool) -> bool:
        """Break it (a live one only with `force`); False if it changed meanwhile."""

    def purge(self, disk: Path, *, days: float, temp_hours: float) -> dict[str, int]: ...

    def rebuild(self, disk: Path) -> int:
        """Rebuild the disk's master file from its request files; live jobs."""
