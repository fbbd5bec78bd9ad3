"""One printer's worker: a thread that prints the jobs its server assigns to it.

Owns the life of a job *at the printer*: reading and verifying the spooled
data (size and sha256 recorded at submit; opened without following links),
rendering (header page, pagination, driver), the write loop with exact
progress, and printer trouble.  It never touches the master file: it reports
a `Result` and the server commits it.

Printer trouble: a port that cannot be opened, or a write that makes no
progress for the printer's STALL seconds, marks the printer offline with a
reason.  Because the write loop knows exactly how many bytes went out, after
a stall (the port stays open) the job resumes from that byte when the printer
answers again (policy RETRY, the default: the job stays assigned and so keeps
its place at the head of its queue), or is handed back to be held (HOLD) or
aborted (ABORT).  After a *connection loss* the port kind decides
(`ports.port_kind`): a port whose device acknowledges bytes resumes at the
offset; one that cannot (raw TCP: megabytes die in socket buffers) starts the
job again from its beginning, behind a page that says ``restarted``, and the
result counts the reprint (`Result.reprints`: the done record and accounting
line's ``restarted``).  After the last byte `writer.complete` makes sure the
far end took it (the printer printed its buffer; a TCP printer acknowledged
every byte and the FIN), with the same STALL limit.  An idle printer left
offline is looked at every RETRY seconds, sending it nothing (`_probe`), so
its queue starts again when it answers.

A remote port's `LinkDown` (``ipp://`` unreachable, a ``spool:`` share gone) is
not printer trouble: the job goes back to pending with the note ``waiting for
link to HQ since 10:02`` (ERRORS= is not asked), the printer is offline with the
link's reason, and it is probed with capped exponential back-off
(`links.backoff`) instead of every RETRY= seconds; the server's cycle decides
what the waiting jobs do (`server.links`, LINKDOWN=).

An ``ipp://`` / ``ipps://`` printer is driven at job level instead
(`printers.ipp_port.RemoteJob`, kept across stalls like an open port): the
job is completed when the remote printer says completed, its
printer-state-reasons are the printer trouble, and the impressions it reports
are the job's pages.

A forwarding printer (``spool:``, or ``ipp://`` to a printnet gateway) is not
rendered for: the job's files go to the central site (`printers.spool_port`,
`ipp_port.RemoteJob`), and once it has them durably the result carries
`Result.forwarded` (outcome ``forwarded``, docs/SITES.md); a resend after a
lost link is no reprint there (the central side queues it once).

About 860 lines on purpose: one printer's thread, whose render, send, restart
and trouble handling share the open port (or remote IPP job) across stalls,
and whose link state (a remote port) is what its probes find; the port kinds'
rules are in `printers.ports`, the IPP client in `printers.ipp_port`, the link's
words in `links`.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from serial import SerialBase, SerialException

from printnet import links
from printnet.config import Config, ErrorPolicy, Flow, LinkMode, PrinterConfig, SetupConfig
from printnet.errors import LinkDown, PortError, PrinterStalled, PrintnetError
from printnet.masterfile import Job
from printnet.model import Format, JobState, PrintRequest, SpooledFile, decode_request
from printnet.printers.drivers import get_driver
from printnet.printers.ports import (
    FORWARD,
    IPP,
    PortKind,
    Resume,
    close_port,
    open_port,
    port_kind,
    scheme,
)
from printnet.printers.render import Rendered, RenderJob, render
from printnet.printers.writer import SendFailed, complete, send
from printnet.security import Reader, open_job_folder, read_job_file, read_ref
from printnet.spool.layout import REQ_SUFFIX, Spool
from printnet.spool.publish import TRANSIENT_ERRNOS, read_bytes

if TYPE_CHECKING:
    from printnet.printers import ipp_port

MISSING_GRACE = 3.0  # seconds an assigned job's files may stay invisible to this host

T = TypeVar("T")


@dataclass
class Assignment:
    """A job this server assigned to a printer (under the master lock)."""

    spool: Spool
    job: Job
    token: str  # the lease token it was assigned with


@dataclass
class Result:
    assignment: Assignment
    outcome: JobState  # COMPLETED, ABORTED, HELD, or PENDING (requeue)
    reason: str = ""
    pages: int = 0
    sheets: int = 0
    size: int = 0
    started: datetime | None = None
    finished: datetime = field(default_factory=lambda: datetime.now(UTC))
    request: dict[str, Any] | None = None
    interrupted: bool = False  # stopped mid-print: a reprint will follow
    setup: str = ""  # the setup it was printed with
    reprints: int = 0  # times it started again from its beginning (connection lost)
    # Forwarded to another site (spool: or a printnet gateway over ipp://), which has it
    # durably: where it went ("to", "printer", "job", and "ipp_job_id" over IPP).
    forwarded: dict[str, Any] | None = None


class JobDataError(PrintnetError):
    """The job's request or data is missing or changed since submit."""


class JobDataUnavailable(JobDataError):
    """The share could not be read just now (I/O error, stale handle, cut-off mount).

    Not the job's fault: it goes back to pending instead of being aborted (an
    aborted job is a lost job).
    """


def _data_error(what: str, exc: OSError | PrintnetError) -> JobDataError:
    if isinstance(exc, OSError) and exc.errno in TRANSIENT_ERRNOS:
        return JobDataUnavailable(f"{what}: the share failed: {exc.strerror or exc}")
    detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
    return JobDataError(f"{what}: {detail}")


def _until_visible(path: Path, op: Callable[[], T]) -> T:
    """`op()`, retried for MISSING_GRACE while it fails with FileNotFoundError.

    RACE: another server took the request in (or a station wrote the data)
    moments ago through its own client of the share; ours may still cache the
    name as absent (NFS and GlusterFS keep negative lookups for about a second).
    Aborting then would lose an accepted job.  Listing the folder refreshes the
    client's cached names.
    """
    deadline = time.monotonic() + MISSING_GRACE
    while True:
        try:
            return op()
        except FileNotFoundError:
            if time.monotonic() >= deadline:
                raise
            try:
                os.listdir(path.parent)
            except OSError:
                pass
            time.sleep(0.1)


def load_job(spool: Spool, job_id: str,
             keys: Path | None = None) -> tuple[PrintRequest, list[bytes]]:
    """The request and the verified bytes of each file of a job.

    A sealed job (SEAL=ON) is opened in memory with this server's keys (the
    keys folder `keys`, see `printnet.keys`), and its chunks are authenticated
    before the size and sha256 of the sealed bytes are checked, so what was
    done to the data (changed, reordered, truncated, another job's) is the
    reason; the plaintext never touches a disk."""
    path = spool.received / (job_id + REQ_SUFFIX)
    try:
        req = decode_request(_until_visible(path, lambda: read_bytes(path)))
    except FileNotFoundError:
        raise JobDataError("the request file is missing from received/") from None
    except (OSError, PrintnetError) as exc:
        raise _data_error("the request file cannot be read", exc) from None
    if not isinstance(req, PrintRequest):
        raise JobDataError("not a print request")
    files = []
    # The folder is the station's: open it without following a symlink planted in
    # its place, and each file relative to it (printnet.security).
    try:
        folder = _until_visible(spool.job_data(job_id),
                                lambda: open_job_folder(spool, job_id))
    except (OSError, PrintnetError) as exc:
        raise _data_error("data folder", exc) from None
    try:
        for f in req.files:
            if f.ref is not None:
                files.append(_read_ref(req, f))
                continue
            try:
                data = read_job_file(folder, f.name, f.size, user=req.user)
            except OSError as exc:
                raise _data_error(f"data file {f.name}", exc) from None
            except PrintnetError as exc:
                raise JobDataError(str(exc)) from None
            if req.seal is None:
                _verify(f, data)
            files.append(data)
    finally:
        os.close(folder)
    if req.seal is not None:
        from printnet.keys import opener

        try:
            plain = opener(keys).open(req, files)
        except PrintnetError as exc:
            raise JobDataError(f"sealed: {exc}") from None
        for f, data in zip(req.files, files, strict=True):
            _verify(f, data)
        files = plain
    return req, files


def _read_ref(req: PrintRequest, f: SpooledFile) -> bytes:
    """A file the request names (--ref), read now under printnet.security.read_ref."""
    assert f.ref is not None
    try:
        return read_ref(f.ref, Reader.of(req.user), size=f.size, mtime_ns=f.mtime_ns,
                        sha256=f.sha256)
    except OSError as exc:
        raise _data_error(f"file {f.ref}", exc) from None
    except PrintnetError as exc:
        raise JobDataError(f"by reference: {exc}") from None


def _verify(f: SpooledFile, data: bytes) -> None:
    if len(data) != f.size or hashlib.sha256(data).hexdigest() != f.sha256:
        raise JobDataError(f"data file {f.name} changed since it was submitted")


class PrinterWorker:
    """Prints one job at a time on one printer, in its own thread."""

    def __init__(
        self,
        printer: PrinterConfig,
        config: Config,
        *,
        on_result: Callable[[Result], None],
        on_event: Callable[[str], None],
        on_start: Callable[[Assignment], None] | None = None,
    ) -> None:
        self.printer = printer
        # Called just before a job's first byte goes out (`server.started`): a job
        # assigned ahead that never started is no restart when its server dies.
        self.on_start = on_start
        self.config = config
        self.setup = printer.setup  # the mounted setup
        self.on_result = on_result
        self.on_event = on_event
        self.state = "stopped" if printer.stopped else "idle"
        self.reasons: list[str] = []
        self.current: Assignment | None = None
        self.sent = 0
        self.total = 0
        self.pages = 0
        self.page_total = 0  # pages of the current job, once rendered (console progress)
        self.printed_jobs = 0
        self._port: SerialBase | None = None
        self._remote: ipp_port.RemoteJob | None = None  # an ipp:// port's job in flight
        self._raw_pdf = False  # the current job is a PDF (ipp:// sends it as such)
        self._job: tuple[PrintRequest, list[bytes]] | None = None  # the current job's files
        self._forwarding = False  # the port forwards (spool:, or ipp:// to a printnet gateway)
        self._forwarded: dict[str, Any] | None = None  # where the current job went
        self._site: str | None = None  # the current job's site (its request's, or ours)
        # The link of a remote port (LINKDOWN=): down since when (UTC; None: up), the
        # attempts that failed since, the last error (docs/SITES.md).
        self.link_since: datetime | None = None
        self.link_attempts = 0
        self.link_error = ""
        self._cond = threading.Condition()
        self._pending: Assignment | None = None
        self._stop = False
        self._abandon = False
        self._thread = threading.Thread(target=self._run, name=f"printer-{printer.name}",
                                        daemon=True)
        self._thread.start()

    # -- control from the server thread ----------------------------------------------

    @property
    def name(self) -> str:
        return self.printer.name

    @property
    def online(self) -> bool:
        return self.state != "offline"

    @property
    def busy(self) -> bool:
        """Printing, or holding an assigned job, or stopping (takes no new job)."""
        with self._cond:
            return self.current is not None or self._pending is not None or self._stop

    @property
    def abandoning(self) -> bool:
        """Told to give up its job at once (a replacement worker will follow)."""
        return self._abandon

    def has_job(self, job_id: str) -> bool:
        """Whether `job_id` is this printer's current or assigned job."""
        with self._cond:
            return any(a is not None and a.job.id == job_id
                       for a in (self.current, self._pending))

    def assign(self, assignment: Assignment) -> None:
        with self._cond:
            if self._stop:
                raise PrintnetError(f"printer {self.name} is stopping")
            if self.current is not None or self._pending is not None:
                raise PrintnetError(f"printer {self.name} is busy")
            self._pending = assignment
            self._cond.notify_all()

    def reconfigure(self, printer: PrinterConfig, config: Config) -> None:
        """A new configuration for this printer (takes effect at the next job)."""
        with self._cond:
            if printer.setup != self.printer.setup:
                self.setup = printer.setup
            self.printer, self.config = printer, config
            if printer.stopped and self.state == "idle":
                self.state = "stopped"
            elif not printer.stopped and self.state == "stopped":
                self.state = "idle"

    def mount(self, setup: str) -> None:
        with self._cond:
            self.setup = setup

    def stop(self, *, abandon: bool) -> None:
        """Ask the thread to end; with abandon, give up the current job at once."""
        with self._cond:
            self._stop = True
            self._abandon = self._abandon or abandon
            self._cond.notify_all()

    def join(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def status(self) -> dict[str, Any]:
        with self._cond:
            job = self.current.job if self.current else None
            setup = self.config.setups.get(self.setup)
            return {
                "name": self.name,
                "state": self.state,
                "reasons": list(self.reasons),
                "setup": self.setup,
                "form": setup.form if setup else "",
                "classes": list(self.printer.classes),
                # LINKDOWN=REJECT with the link down refuses new jobs like ACCEPT=NO.
                "accepting": self.printer.accepting and not self._link_rejects(),
                "reject_reason": self.printer.reject_reason or (
                    links.reject_reason(self.name, self.remote, self.link_since.astimezone())
                    if self._link_rejects() and self.link_since is not None else ""),
                "job": job.id if job else None,
                "progress": {"bytes": self.sent, "total": self.total, "pages": self.pages,
                             "page_total": self.page_total}
                if job else None,
                "printed": self.printed_jobs,
                "link": self._link_status(),
            }

    # -- the link of a remote port (LINKDOWN=) ------------------------------------------

    @property
    def remote(self) -> str:
        """How notes name this printer's remote site."""
        return links.remote_name(self.printer.port, self.printer.link_name)

    def link_down_since(self) -> datetime | None:
        with self._cond:
            return self.link_since if self.printer.linkdown is not None else None

    def link_delay(self) -> float:
        """Seconds until the next attempt while the link is down (capped back-off)."""
        return links.backoff(self.printer.retry_interval, self.link_attempts,
                             self.printer.link_retry)

    def _link_rejects(self) -> bool:
        return self.printer.linkdown is LinkMode.REJECT and self.link_since is not None

    def _link_status(self) -> dict[str, Any] | None:
        # (called with self._cond held)
        mode = self.printer.linkdown
        if mode is None:
            return None
        out: dict[str, Any] = {"mode": mode.value, "remote": self.remote,
                               "state": "up" if self.link_since is None else "down"}
        if self.link_since is not None:
            local = self.link_since.astimezone()
            out.update(since=self.link_since.isoformat(timespec="seconds"),
                       since_local=links.clock(local), attempts=self.link_attempts,
                       retry=round(self.link_delay(), 3), error=self.link_error,
                       note=links.waiting_note(self.remote, local))
            if mode is LinkMode.REJECT:
                out["reject_reason"] = links.reject_reason(self.name, self.remote, local)
        return out

    def _link_down(self, error: str) -> None:
        """A `LinkDown` from the port: the link is down (since the first one)."""
        with self._cond:
            first = self.link_since is None
            down = self.link_since = self.link_since or datetime.now(UTC)
            if first:
                self.link_attempts = 0
            self.link_attempts += 1
            self.link_error = error
            since = links.clock(down.astimezone())
            mode = self.printer.linkdown
            self.state = "offline"
            self.reasons = [f"link to {self.remote} down since {since}: {error}"]
        if first:
            what = {"queue": "jobs wait here", "local": f"jobs go to {self.printer.failover}",
                    "reject": "new jobs are refused"}.get(mode.value if mode else "", "")
            self.on_event(f"printer {self.name}: the link to {self.remote} is down ({error}); "
                          f"{what} (LINKDOWN={(mode.value if mode else '').upper()})")

    def _link_up(self) -> None:
        with self._cond:
            since, attempts = self.link_since, self.link_attempts
            self.link_since, self.link_attempts, self.link_error = None, 0, ""
        if since is not None:
            self.on_event(f"printer {self.name}: the link to {self.remote} is back (down "
                          f"since {links.clock(since.astimezone())}, {attempts} attempts)")

    # -- the thread ----------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._stop and self.state != "offline":
                    self._cond.wait()
                idle_offline = False
                if self._pending is None and not self._stop:
                    # Idle, but left offline by printer trouble (policy HOLD or ABORT
                    # gave its job back): look again every RETRY seconds, or no job
                    # would ever be scheduled here again.
                    # A remote whose link is down: RETRY= doubled per failed attempt
                    # (capped), not hammered every RETRY= seconds.
                    self._cond.wait(self.link_delay() if self.link_since is not None
                                    else self.printer.retry_interval)
                    idle_offline = self._pending is None and not self._stop
            if idle_offline:
                if self._probe():
                    self._recovered()
                continue
            with self._cond:
                if self._pending is None:
                    return
                self.current, self._pending = self._pending, None
                self.sent = self.total = self.pages = 0
                if self.state != "offline":
                    self.state = "printing"
            try:
                result = self._print(self.current)
            finally:
                self._close_port()
            with self._cond:
                self.current = None
                if self.state == "printing":
                    self.state = "stopped" if self.printer.stopped else "idle"
                if result.outcome is JobState.COMPLETED:
                    self.printed_jobs += 1
            self.on_result(result)
            with self._cond:
                # A job assigned from on_result (the server's next assigned job) is
                # still taken: printed, or handed back at once if abandoning.
                if self._stop and self._pending is None:
                    return

    def _should_stop(self) -> bool:
        return self._abandon

    def _print(self, a: Assignment) -> Result:
        started = datetime.now(UTC)
        self.page_total = 0
        try:
            req, files = load_job(a.spool, a.job.id, self.config.server.keys)
        except JobDataUnavailable as exc:
            return Result(a, JobState.PENDING, f"requeued: {exc}", started=started)
        except JobDataError as exc:
            return Result(a, JobState.ABORTED, str(exc), started=started)
        request_json = req.to_json()
        request_json.pop("password", None)
        setup = self._setup_for(a.job)
        self._site = req.site or self.config.server.site  # where it was submitted
        kind = port_kind(self.printer)
        self._begin_job(req, files)
        if kind is FORWARD:
            # Not rendered here: the central site renders it (its own header page).
            rendered = Rendered(chunks=[b"".join(files)], pages=0)
        else:
            rendered = self._render(a.job, files, setup, req.encoding)
        data = b"".join(rendered.chunks)
        self._raw_pdf = (kind is IPP and a.job.format == Format.RAW and len(files) == 1
                         and files[0].startswith(b"%PDF-"))
        if self._raw_pdf:
            # A PDF goes to an IPP printer as itself, once (copies: the attribute);
            # a header page in front of it would make it no PDF.
            data = files[0]
        payload = data  # what this attempt sends: data, or a restart page and data
        reprints = 0
        self.total = len(payload)
        self.page_total = rendered.pages
        offset = 0
        if self.on_start is not None:
            self.on_start(a)
        while True:
            try:
                offset = self._send(payload, offset, kind)
                break
            except (PortError, PrinterStalled) as exc:
                if isinstance(exc, LinkDown) and self.printer.linkdown is not None:
                    # The remote cannot be reached and does not have the job (a remote
                    # IPP job once submitted is followed, never given up here): the job
                    # waits at this site, or moves (LINKDOWN=LOCAL), decided by the
                    # server's cycle (`server.links`).  Not printer trouble: ERRORS=
                    # is not asked.
                    self._link_down(str(exc))
                    since = self.link_since or datetime.now(UTC)
                    return Result(a, JobState.PENDING,
                                  links.waiting_note(self.remote, since.astimezone()),
                                  started=started, request=request_json,
                                  interrupted=reprints > 0, reprints=reprints)
                # Both SendStalled and SendFailed carry the exact offset reached.
                reached = max(offset, int(getattr(exc, "sent", offset)))
                self._trouble(str(exc))
                if isinstance(exc, SendFailed) and kind.resume is Resume.RESTART:
                    # The connection is gone with what its buffers held: the offset
                    # says what left us, not what the printer took.  Start again.
                    if reached > 0 and self._forwarding:
                        # To a site that takes it put-if-absent on its id: sent again,
                        # queued there once; no reprint.
                        self.on_event(
                            f"job {a.job.id} on printer {self.name}: the link broke after "
                            f"{reached} bytes; the job is sent again (the central site "
                            "queues it once)")
                    elif reached > 0:
                        reprints += 1
                        payload = self._restart_page(a.job, setup, reprints) + data
                        self.total = len(payload)
                        self.on_event(
                            f"job {a.job.id} on printer {self.name}: the connection broke "
                            f"after {reached} bytes; the job prints again from its start "
                            f"(reprint {reprints})")
                    offset = 0
                else:
                    offset = reached
                policy = self.printer.error_policy
                if self._abandon:
                    return self._interrupted(a, offset, started, request_json, reprints)
                if policy is ErrorPolicy.HOLD:
                    return Result(a, JobState.HELD, f"held: printer trouble: {exc}",
                                  started=started, request=request_json, reprints=reprints)
                if policy is ErrorPolicy.ABORT:
                    return Result(a, JobState.ABORTED, f"printer trouble: {exc}",
                                  pages=self._pages_done(rendered, offset, len(payload)),
                                  started=started, request=request_json, reprints=reprints)
                if not self._wait(self.printer.retry_interval):
                    return self._interrupted(a, offset, started, request_json, reprints)
        if offset < len(payload):
            return self._interrupted(a, offset, started, request_json, reprints)
        self._recovered()
        if self._forwarded is not None:
            # The central site has it durably: the branch's part is done (outcome
            # forwarded, verbs.settle); it prints there.
            return Result(a, JobState.COMPLETED, "", size=len(data), started=started,
                          request=request_json, setup=setup.name, reprints=reprints,
                          forwarded=self._forwarded)
        self.pages = rendered.pages
        remote = self._remote
        if remote is not None and remote.impressions is not None:
            # The printer counted what it printed: that is the accounting's truth.
            self.pages = remote.impressions
        return Result(a, JobState.COMPLETED, "", pages=self.pages,
                      sheets=self.pages, size=len(data), started=started,
                      request=request_json, setup=setup.name, reprints=reprints)

    def _begin_job(self, req: PrintRequest, files: list[bytes]) -> None:
        """The job's files, for a port that forwards them; where it went: not yet."""
        self._job, self._forwarded = (req, files), None
        self._forwarding = port_kind(self.printer) is FORWARD

    def _restart_page(self, job: Job, setup: SetupConfig, reprint: int) -> bytes:
        """The page that goes before a job printed again from its start.

        Not for a raw job without a header page: its bytes go out untouched (a
        printer language file must begin with its own first byte).
        """
        if self._raw_pdf or (job.format == Format.RAW
                             and not (job.header and self.printer.header_pages)):
            return b""
        driver = get_driver(self.printer.driver)
        width = max(setup.width, 1)
        lines = [f"*** RESTARTED: job {job.id} (reprint {reprint}) ***",
                 "",
                 "The connection to the printer broke during this job.",
                 "It prints again from its beginning; pages before this",
                 "one may be incomplete."]
        return driver.begin(setup) + driver.page([line[:width] for line in lines])

    def _interrupted(self, a: Assignment, offset: int, started: datetime,
                     request_json: dict[str, Any], reprints: int = 0) -> Result:
        return Result(a, JobState.PENDING, "requeued: server stopped mid-print",
                      started=started, request=request_json,
                      interrupted=offset > 0 or reprints > 0, reprints=reprints)

    def _setup_for(self, job: Job) -> SetupConfig:
        name = self.setup
        setup = self.config.setups.get(name)
        return setup if setup is not None else SetupConfig(name=name)

    def _render(self, job: Job, files: list[bytes], setup: SetupConfig,
                encoding: str | None) -> Rendered:
        from printnet.config import header_template, logo_text

        try:
            template = header_template(self.config, self.printer)
        except PrintnetError as exc:  # the template vanished since the config was loaded
            self.on_event(f"printer {self.name}: {exc}; using the built-in header page")
            template = None
        site = self._site or ""
        logo = logo_text(self.config, self.printer, site) \
            if template is not None and "{logo}" in template else None
        return render(
            RenderJob(id=job.id, user=job.user, station=job.station, title=job.title,
                      submitted=job.submitted, copies=job.copies,
                      header=job.header and self.printer.header_pages,
                      format=job.format, printer=self.name, setup=setup.name,
                      encoding=encoding, site=site, logo=logo),
            files, setup=setup, driver=get_driver(self.printer.driver, setup.encoding),
            header_template=template,
            date=datetime.now().astimezone().strftime("%Y-%m-%d %H:%M"),
        )

    def _send(self, data: bytes, offset: int, kind: PortKind) -> int:
        """Send from `offset`, then make sure the printer took the last byte
        (`writer.complete`); the offset reached, ``len(data)`` only when it did.

        The port stays open across a stall (closing a real serial port can
        discard bytes the kernel took and we counted as sent)."""
        if kind is IPP:
            return self._send_ipp(data)
        if kind is FORWARD:
            return self._send_forward(data)
        if self._port is None:
            self._port = open_port(self.printer, self.config.etc)

        def progress(n: int) -> None:
            self.sent = n
            if self.state == "offline":
                self._recovered()

        try:
            sent = send(self._port, data, stall_timeout=self.printer.stall_timeout,
                        on_progress=progress, should_stop=self._should_stop, start=offset)
            self.sent = sent
            if sent == len(data) and not complete(
                    self._port, kind, sent=sent, stall_timeout=self.printer.stall_timeout,
                    label=f"printer {self.name}", should_stop=self._should_stop):
                # Stopped before the end was sure: short of the end, so not completed.
                return sent - 1 if sent else 0
        except SendFailed:
            self._close_port()  # the port itself failed: reopen on the next attempt
            raise
        return sent

    def _send_ipp(self, data: bytes) -> int:
        """An ipp:// port: the whole job to the remote printer, ``len(data)`` once
        the remote says completed (`ipp_port.RemoteJob`; job level, no offsets)."""
        # Imported here: http.client and ssl cost every server 6 MiB of memory, and
        # most have no ipp:// printer.
        from printnet.printers import ipp_port

        a = self.current
        assert a is not None
        if self._remote is None:
            client = ipp_port.IppClient(ipp_port.parse_target(self.printer.port),
                                        timeout=self.printer.stall_timeout,
                                        label=f"printer {self.name}")
            self._remote = ipp_port.RemoteJob(client, self.printer.stall_timeout)
        job = a.job
        raw = job.format == Format.RAW
        doc = ipp_port.Document(
            data=data, format=ipp_port.document_format(raw, data), name=job.title,
            user=job.user, printnet_id=job.id, copies=job.copies if self._raw_pdf else 1,
            site=self._site)
        if self._job is not None:
            # What a printnet gateway at the far end gets instead (forwarding): the
            # files as submitted, to be rendered there, and the job's own settings.
            original = b"".join(self._job[1])
            doc.forward = ipp_port.Forward(
                data=original, format=ipp_port.document_format(raw, original),
                copies=job.copies, priority=job.priority.value, header=job.header,
                setup=job.setup)

        def progress(n: int) -> None:
            self.sent = n
            if self.state == "offline":
                self._recovered()

        try:
            done = self._remote.run(doc, should_stop=self._should_stop, on_progress=progress)
        except SendFailed:
            self._forwarding = self._forwarding or self._remote.forwarding
            self._close_port()  # a new connection (and a new remote job) next time
            raise
        if not done:
            # Given up (the server stops): the job is requeued here and prints again
            # from its start, so the remote must not print it as well.
            self._remote.cancel()
            return len(data) - 1 if data else 0
        if self._remote.forwarded:
            t = self._remote.client.target
            self._forwarded = {"to": t.uri.rsplit("/", 1)[0] if "/ipp/print/" in t.uri
                               else t.uri, "printer": t.uri.rsplit("/", 1)[-1],
                               "job": job.id, "ipp_job_id": self._remote.job_id,
                               "uri": t.uri}
        return len(data)

    def _send_forward(self, data: bytes) -> int:
        """A spool: port: the job into the central spool (`spool_port.forward`);
        ``len(data)`` once central has it durably, -1 if told to stop first."""
        from printnet.printers import spool_port

        a, job = self.current, self._job
        assert a is not None and job is not None
        if self._should_stop():
            return -1
        req, files = job
        remote_id = spool_port.forward(self.printer.port, req, files,
                                       label=f"printer {self.name}",
                                       origin=self.config.server.name)
        target = spool_port.parse_target(self.printer.port)
        self._forwarded = {"to": target.site, "printer": target.printer, "job": remote_id}
        self.sent = len(data)
        return len(data)

    def _close_port(self) -> None:
        remote, self._remote = self._remote, None
        if remote is not None:
            remote.client.close()
        port, self._port = self._port, None
        if port is not None:
            try:
                close_port(port)  # socket://: without pyserial's 0.3 s sleep
            except Exception:
                pass

    def _pages_done(self, rendered: Rendered, offset: int, total: int) -> int:
        return rendered.pages * offset // total if total else 0

    def _trouble(self, reason: str) -> None:
        with self._cond:
            first = self.state != "offline"
            self.state = "offline"
            self.reasons = [reason]
        if first:
            self.on_event(f"printer {self.name} offline: {reason}")

    def _recovered(self) -> None:
        self._link_up()
        with self._cond:
            was = self.state == "offline"
            if self.current:
                self.state = "printing"
            else:
                self.state = "stopped" if self.printer.stopped else "idle"
            self.reasons = []
        if was:
            self.on_event(f"printer {self.name} back online")

    def _probe(self) -> bool:
        """Whether an idle offline printer answers again, sending it nothing.

        The port must open; where the line reports DSR (FLOW=DSRDTR, and the
        simulated printer, whose DSR is off while it is offline or out of paper)
        DSR must be on.  Other ports cannot tell more than that they open: the
        next job then finds out (and stalls again if the printer is still away).
        """
        if port_kind(self.printer) is FORWARD:
            return self._probe_share()
        if port_kind(self.printer) is IPP:
            from printnet.printers import ipp_port  # see `_send_ipp`

            try:
                client = ipp_port.IppClient(ipp_port.parse_target(self.printer.port),
                                            timeout=self.printer.stall_timeout,
                                            label=f"printer {self.name}")
                try:
                    trouble = ipp_port.printer_trouble(client.printer_status())
                finally:
                    client.close()
            except LinkDown as exc:
                self._link_down(str(exc))
                return False
            except PrintnetError:
                self._link_up()  # it answered: the link is up, the printer in trouble
                return False
            self._link_up()
            return trouble is None
        try:
            port = open_port(self.printer, self.config.etc)
        except LinkDown as exc:
            self._link_down(str(exc))
            return False
        except PrintnetError:
            return False
        try:
            if self.printer.flow is Flow.DSRDTR or scheme(self.printer.port) == "sim":
                line: Any = port  # dsr: a property of every concrete port class
                try:
                    return bool(line.dsr)
                except (OSError, SerialException):
                    return True  # no modem lines here (a pty): opening is all we know
            return True
        finally:
            try:
                close_port(port)
            except Exception:
                pass

    def _probe_share(self) -> bool:
        """A ``spool:`` port (forwarding into another site's spool,
        `printers.spool_port`): whether the central share is reachable and writable
        again."""
        from printnet.printers import spool_port

        try:
            spool_port.open_target(spool_port.parse_target(self.printer.port),
                                   f"printer {self.name}")
        except LinkDown as exc:
            self._link_down(str(exc))
            return False
        except PrintnetError:
            return False
        self._link_up()
        return True

    def _wait(self, seconds: float) -> bool:
        """Sleep for a retry; False if asked to stop meanwhile."""
        deadline = time.monotonic() + seconds
        with self._cond:
            while not self._abandon:
                left = deadline - time.monotonic()
                if left <= 0:
                    return True
                self._cond.wait(left)
        return False
