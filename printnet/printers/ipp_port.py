"""I/O: the ``ipp://`` and ``ipps://`` printer port — printnet as an IPP client.

Owns `IppClient` (one IPP request over HTTP/1.1, ``http.client``, on the
project's own codec `printnet.ipp.codec`), `status_note()` (every IPP status
code as a clear note), `printer_trouble()` (printer-state and
printer-state-reasons made into the reason `printnet status` shows) and
`RemoteJob`, the life of one job on a remote IPP printer (about 620 lines: the
client, the status words and the job's life share one connection's rules):

1. Get-Printer-Attributes: a printer that is stopped, or reports media-empty,
   media-needed, door-open, offline..., takes no job; after the printer's
   ``STALL=`` seconds of that, `SendStalled` with the remote's reason (the
   worker's printer-trouble handling: RETRY/HOLD/ABORT).
2. Print-Job with the job's document (``document-format`` from the job:
   text/plain for text rendered by the driver, application/pdf for a raw job
   that is a PDF, application/octet-stream for other raw jobs), ``job-name``
   (the title), ``requesting-user-name`` and ``printnet-job-id`` (the job's
   printnet id, a job attribute: the groundwork of exactly-once forwarding).
   A printnet gateway (it says ``printnet-job-id-supported``) gets the job
   *forwarded* instead: the files as submitted (it renders them), job-priority,
   job-sheets, copies, printnet-setup, and ``printnet-job-id``, which it
   publishes put-if-absent; once it answers with that id (``printnet-id``) the
   job is the central site's (`RemoteJob.forwarded`), and nothing is followed.
3. Get-Job-Attributes until job-state is completed (9).  A job is completed
   only when the remote says so, never when the bytes were sent.
   canceled (7) / aborted (8): `RemoteJobEnded` (a `SendFailed`) with the
   remote's reason.  processing-stopped (6) or printer trouble while the job
   waits: `SendStalled` after ``STALL=`` seconds, and the remote job is kept
   (a retry goes on polling it, it is not submitted again).
   ``job-impressions-completed``, when reported, is `impressions`.

The resume rule (docs/PRINTERS.md): job level.  A connection lost, or an
answer that is not IPP, *before* the remote gave a job-id is a `SendFailed`:
the job is submitted again from its start (a reprint when bytes had gone).
Once the remote has the job, a lost connection while polling only means the
next poll tries again (`SendStalled` after ``STALL=`` without an answer); a
remote that no longer knows the job (client-error-not-found) makes it start
again.

Link down: a failure before any answer (connection refused, host unreachable,
connecting timed out, a question without a document unanswered in time) is
`IppLinkDown`, a `printnet.errors.LinkDown` that is still a `SendFailed`: the
printer's LINKDOWN= mode decides (docs/SITES.md).  A Print-Job unanswered after
its document went out stays a plain `SendFailed` (the remote may have the job).

URL: ``ipp://HOST[:PORT]/PATH`` (port 631 by default), ``ipps://...`` for TLS
(certificates checked against the system's CAs; ``?ca=/path/ca.pem`` names a
CA file, ``?insecure=1`` checks nothing — for a test printer only);
``?forward=no`` prints through a printnet gateway (followed until it printed)
instead of forwarding to it.
"""

from __future__ import annotations

import http.client
import itertools
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import parse_qs, urlsplit

from printnet.errors import LinkDown, PortError
from printnet.ipp.codec import Attribute, IppParseError, Message, decode, encode
from printnet.ipp.enums import GroupTag, JobState, Operation, PrinterState, Status, Tag
from printnet.printers.writer import SendFailed, SendStalled

DEFAULT_PORT: Final = 631
POLL: Final = 0.25  # seconds between Get-Job-Attributes while the remote prints
MAX_ANSWER: Final = 1 << 20  # an IPP answer larger than this is not a printer's
JOB_ID_ATTRIBUTE: Final = "printnet-job-id"
# A printer attribute only a printnet gateway gives (true): it publishes a job that
# carries printnet-job-id put-if-absent on that id (printnet.spool.forward), so the
# port forwards to it instead of printing through it.
FORWARDING_ATTRIBUTE: Final = "printnet-job-id-supported"
PRIORITY: Final = {"high": 80, "standard": 50, "overnight": 20}  # job-priority sent
SITE_ATTRIBUTE: Final = "printnet-site"  # the site a job was submitted at (SITE)

# printer-state-reasons that mean "prints nothing now" (RFC 8011 5.4.12, PWG 5100.9).
TROUBLE: Final[dict[str, str]] = {
    "media-empty": "out of paper (media-empty)",
    "media-needed": "paper needed (media-needed)",
    "media-jam": "paper jam (media-jam)",
    "door-open": "door open (door-open)",
    "cover-open": "cover open (cover-open)",
    "offline": "offline",
    "paused": "paused",
    "shutdown": "shut down",
    "toner-empty": "out of toner (toner-empty)",
    "marker-supply-empty": "out of ink or toner (marker-supply-empty)",
    "output-area-full": "output tray full (output-area-full)",
    "spool-area-full": "its spool is full (spool-area-full)",
}

_NOTES: Final[dict[int, str]] = {
    Status.CLIENT_ERROR_BAD_REQUEST: "it refused the request as malformed",
    Status.CLIENT_ERROR_FORBIDDEN: "printing there is forbidden to this server",
    Status.CLIENT_ERROR_NOT_AUTHENTICATED: "it wants authentication",
    Status.CLIENT_ERROR_NOT_AUTHORIZED: "this server is not authorized to print there",
    Status.CLIENT_ERROR_NOT_POSSIBLE: "it cannot do that now",
    Status.CLIENT_ERROR_TIMEOUT: "it timed out waiting for the document",
    Status.CLIENT_ERROR_NOT_FOUND: "no such printer or job there",
    Status.CLIENT_ERROR_GONE: "the printer or job is gone",
    Status.CLIENT_ERROR_REQUEST_ENTITY_TOO_LARGE: "the job is too large for it",
    Status.CLIENT_ERROR_REQUEST_VALUE_TOO_LONG: "a value is too long for it",
    Status.CLIENT_ERROR_DOCUMENT_FORMAT_NOT_SUPPORTED: "it cannot print this document format",
    Status.CLIENT_ERROR_ATTRIBUTES_OR_VALUES_NOT_SUPPORTED:
        "it does not support an attribute of the job",
    Status.CLIENT_ERROR_DOCUMENT_FORMAT_ERROR: "it found the document malformed",
    Status.CLIENT_ERROR_DOCUMENT_ACCESS_ERROR: "it could not read the document",
    Status.CLIENT_ERROR_CONFLICTING_ATTRIBUTES: "the job's attributes conflict",
    Status.CLIENT_ERROR_CHARSET_NOT_SUPPORTED: "it does not support UTF-8",
    Status.SERVER_ERROR_INTERNAL_ERROR: "it had an internal error",
    Status.SERVER_ERROR_OPERATION_NOT_SUPPORTED: "it does not support this operation",
    Status.SERVER_ERROR_SERVICE_UNAVAILABLE: "its service is unavailable",
    Status.SERVER_ERROR_VERSION_NOT_SUPPORTED: "it does not speak IPP 2.0",
    Status.SERVER_ERROR_DEVICE_ERROR: "it reports a device error",
    Status.SERVER_ERROR_TEMPORARY_ERROR: "it reports a temporary error",
    Status.SERVER_ERROR_NOT_ACCEPTING_JOBS: "it is not accepting jobs",
    Status.SERVER_ERROR_BUSY: "it is busy",
    Status.SERVER_ERROR_JOB_CANCELED: "it canceled the job",
    Status.SERVER_ERROR_MULTIPLE_DOCUMENT_JOBS_NOT_SUPPORTED:
        "it does not take jobs of several documents",
}

# Statuses after which the same request may well succeed later: printer trouble
# (the error policy), not a reason to give the job up at once.
TRANSIENT: Final = frozenset({
    Status.CLIENT_ERROR_TIMEOUT, Status.SERVER_ERROR_SERVICE_UNAVAILABLE,
    Status.SERVER_ERROR_TEMPORARY_ERROR, Status.SERVER_ERROR_NOT_ACCEPTING_JOBS,
    Status.SERVER_ERROR_BUSY, Status.SERVER_ERROR_INTERNAL_ERROR,
    Status.SERVER_ERROR_DEVICE_ERROR})


def status_note(code: int, message: str = "") -> str:
    """A clear note for an IPP status code (and the remote's status-message)."""
    try:
        keyword = Status(code).keyword
    except ValueError:
        keyword = f"status 0x{code:04x}"
    note = _NOTES.get(code, "it refused the request" if code >= 0x400 else "")
    text = f"{note} ({keyword})" if note else keyword
    return f"{text}: {message}" if message else text


class IppRefused(PortError):
    """The remote answered with an IPP error status."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class IppLinkDown(LinkDown, SendFailed):
    """The remote cannot be reached at all: the connection was refused, the host is
    unreachable, or a request that carries no document got no answer in time.

    A `LinkDown` (the printer's LINKDOWN= mode decides: docs/SITES.md) and still a
    `SendFailed` (what it always was), so code that knows only the port's resume
    rule treats it as before.  A Print-Job that timed out after its document went
    out is *not* one: the remote may have the job (a plain `SendFailed`)."""


class RemoteJobEnded(SendFailed):
    """The remote printer canceled or aborted the job (its reason in the message)."""


@dataclass(frozen=True, slots=True)
class Target:
    """A parsed ``ipp://`` / ``ipps://`` URL."""

    tls: bool
    host: str
    port: int
    path: str
    uri: str  # the printer-uri sent in requests (without printnet's query)
    ca: str | None = None
    insecure: bool = False
    forward: bool = True  # ?forward=no: print through a printnet gateway, never forward


def parse_target(url: str) -> Target:
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in ("ipp", "ipps") or not parts.hostname:
        raise PortError(f"{url}: not an ipp://HOST[:PORT]/PATH or ipps:// URL")
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise PortError(f"{url}: bad port number") from None
    try:
        query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError:
        raise PortError(f"{url}: malformed query (ca=PATH, insecure=1, forward=no)") from None
    unknown = set(query) - {"ca", "insecure", "forward"}
    if unknown:
        raise PortError(f"{url}: unknown option {sorted(unknown)[0]} (ca=PATH, insecure=1, "
                        "forward=no)")
    path = parts.path or "/"
    host = parts.hostname
    netloc = f"[{host}]" if ":" in host else host
    return Target(tls=scheme == "ipps", host=host, port=port, path=path,
                  uri=f"{scheme}://{netloc}:{port}{path}",
                  ca=query["ca"][0] if query.get("ca") else None,
                  insecure=(query.get("insecure") or ["0"])[0] in ("1", "true", "yes"),
                  forward=(query.get("forward") or ["yes"])[0] not in ("0", "no", "false"))


@dataclass(frozen=True, slots=True)
class PrinterStatus:
    state: int
    reasons: tuple[str, ...]
    message: str
    formats: frozenset[str]
    forwarding: bool = False  # a printnet gateway (FORWARDING_ATTRIBUTE)


@dataclass(frozen=True, slots=True)
class JobStatus:
    state: int
    reasons: tuple[str, ...]
    message: str
    impressions: int | None


def printer_trouble(st: PrinterStatus) -> str | None:
    """Why the remote printer prints nothing now; None when it can print."""
    found = [TROUBLE[r.removesuffix("-error").removesuffix("-warning")]
             for r in st.reasons
             if r.removesuffix("-error").removesuffix("-warning") in TROUBLE
             and not r.endswith("-report") and not r.endswith("-warning")]
    if found:
        return ", ".join(found)
    if st.state == PrinterState.STOPPED:
        return "stopped" + (f" ({st.message})" if st.message else "")
    return None


class IppClient:
    """One connection to an IPP printer; each `request` is one HTTP POST."""

    _ids = itertools.count(1)

    def __init__(self, target: Target, *, timeout: float, label: str) -> None:
        self.target = target
        self.timeout = max(timeout, 1.0)
        self.label = label
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            t = self.target
            if t.tls:
                ctx = ssl.create_default_context(cafile=t.ca)
                if t.insecure:
                    ctx.check_hostname = False
                    ctx.verify_mode = ssl.CERT_NONE
                self._conn = http.client.HTTPSConnection(t.host, t.port, timeout=self.timeout,
                                                         context=ctx)
            else:
                self._conn = http.client.HTTPConnection(t.host, t.port, timeout=self.timeout)
        return self._conn

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def request(self, op: Operation, attrs: list[Attribute], *,
                job: list[Attribute] | None = None, data: bytes = b"") -> Message:
        """Send one request; the answer (any status).  Raises `SendFailed`
        (connection lost, timed out, not HTTP 200, not IPP)."""
        msg = Message(code=int(op), request_id=next(self._ids) & 0x7FFFFFFF)
        msg.add_group(GroupTag.OPERATION, [
            Attribute.of("attributes-charset", Tag.CHARSET, "utf-8"),
            Attribute.of("attributes-natural-language", Tag.NATURAL_LANGUAGE, "en"),
            Attribute.of("printer-uri", Tag.URI, self.target.uri), *attrs])
        if job:
            msg.add_group(GroupTag.JOB, job)
        body = encode(msg) + data
        what = op.name.lower().replace("_", "-")
        conn = self._connection()
        if conn.sock is None:
            self._connect(conn, what)
        try:
            conn.request("POST", self.target.path, body=body,
                         headers={"Content-Type": "application/ipp"})
            resp = conn.getresponse()
            raw = resp.read(MAX_ANSWER + 1)
            http_status = resp.status
        except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
            self.close()
            why = "timed out" if isinstance(exc, socket.timeout) else (str(exc) or
                                                                      type(exc).__name__)
            if isinstance(exc, socket.timeout) and not data:
                # No answer at all to a question (no document went out): the far end
                # is not there, as far as we can tell.
                raise IppLinkDown(f"{self.label}: {what}: no answer from {self.target.uri} "
                                  f"({why})", sent=0) from exc
            raise SendFailed(f"{self.label}: {what}: the connection to {self.target.uri} "
                             f"failed ({why})", sent=len(data)) from exc
        if http_status != 200:
            self.close()
            raise SendFailed(f"{self.label}: {what}: {self.target.uri} answered HTTP "
                             f"{http_status}, not IPP", sent=len(data))
        if len(raw) > MAX_ANSWER:
            self.close()
            raise SendFailed(f"{self.label}: {what}: the answer is larger than "
                             f"{MAX_ANSWER} bytes: not an IPP printer", sent=len(data))
        try:
            answer = decode(raw)
        except IppParseError as exc:
            self.close()
            raise SendFailed(f"{self.label}: {what}: {self.target.uri} answered something "
                             f"that is not IPP ({exc})", sent=len(data)) from exc
        return answer

    def _connect(self, conn: http.client.HTTPConnection, what: str) -> None:
        """Open the connection: a failure here is a link down (nothing was sent),
        except a TLS refusal (the remote answered: printer trouble, as before)."""
        try:
            conn.connect()
        except ssl.SSLError as exc:
            self.close()
            raise SendFailed(f"{self.label}: {what}: the connection to {self.target.uri} "
                             f"failed ({exc})", sent=0) from exc
        except OSError as exc:
            self.close()
            why = "timed out" if isinstance(exc, socket.timeout) else (
                exc.strerror or str(exc) or type(exc).__name__)
            raise IppLinkDown(f"{self.label}: {what}: cannot reach {self.target.uri} "
                              f"({why})", sent=0) from exc

    def checked(self, op: Operation, attrs: list[Attribute], *,
                job: list[Attribute] | None = None, data: bytes = b"") -> Message:
        """`request`, raising `IppRefused` with a clear note for an error status."""
        answer = self.request(op, attrs, job=job, data=data)
        if answer.code >= 0x0400:
            text = answer.operation.get("status-message")
            what = op.name.lower().replace("_", "-")
            said = str(text.value) if text is not None and text.value else ""
            raise IppRefused(f"{self.label}: {what}: {status_note(answer.code, said)}",
                             status=answer.code)
        return answer

    def printer_status(self) -> PrinterStatus:
        answer = self.checked(Operation.GET_PRINTER_ATTRIBUTES, [
            Attribute.of("requested-attributes", Tag.KEYWORD, "printer-state",
                         "printer-state-reasons", "printer-state-message",
                         "document-format-supported", FORWARDING_ATTRIBUTE)])
        g = answer.group(GroupTag.PRINTER)
        if g is None:
            raise SendFailed(f"{self.label}: get-printer-attributes: the answer has no "
                             "printer attributes", sent=0)
        return PrinterStatus(state=_int(g.get("printer-state")),
                             reasons=_strs(g.get("printer-state-reasons")),
                             message=_str(g.get("printer-state-message")),
                             formats=frozenset(_strs(g.get("document-format-supported"))),
                             forwarding=_bool(g.get(FORWARDING_ATTRIBUTE)))

    def job_status(self, job_id: int) -> JobStatus:
        answer = self.checked(Operation.GET_JOB_ATTRIBUTES, [
            Attribute.of("job-id", Tag.INTEGER, job_id),
            Attribute.of("requested-attributes", Tag.KEYWORD, "job-state",
                         "job-state-reasons", "job-state-message",
                         "job-impressions-completed")])
        g = answer.group(GroupTag.JOB)
        if g is None:
            raise SendFailed(f"{self.label}: get-job-attributes: the answer has no job "
                             "attributes", sent=0)
        imp = g.get("job-impressions-completed")
        return JobStatus(state=_int(g.get("job-state")),
                         reasons=_strs(g.get("job-state-reasons")),
                         message=_str(g.get("job-state-message")),
                         impressions=imp.value if imp and isinstance(imp.value, int) else None)


def _int(a: Attribute | None) -> int:
    return a.value if a is not None and isinstance(a.value, int) else 0


def _bool(a: Attribute | None) -> bool:
    return a is not None and a.value is True


def _str(a: Attribute | None) -> str:
    return str(a.value) if a is not None and isinstance(a.value, str) else ""


def _strs(a: Attribute | None) -> tuple[str, ...]:
    return tuple(str(v) for v in a.plain() if isinstance(v, str)) if a else ()


def document_format(raw: bool, data: bytes) -> str:
    """The document-format of a job's rendered bytes."""
    if not raw:
        return "text/plain"
    return "application/pdf" if data.startswith(b"%PDF-") else "application/octet-stream"


@dataclass
class Forward:
    """A job as a printnet gateway gets it (forwarding): the files as submitted, to be
    rendered at the far site, and the job's own settings."""

    data: bytes
    format: str
    copies: int
    priority: str  # high | standard | overnight
    header: bool
    setup: str | None


@dataclass
class Document:
    """What one job sends: its bytes and the job attributes that travel with them."""

    data: bytes
    format: str
    name: str  # job-name: the title
    user: str
    printnet_id: str
    copies: int = 1  # >1 only for a document printnet did not render (a PDF)
    forward: Forward | None = None  # what to send instead if the far end is printnet
    site: str | None = None  # the site it was submitted at (printnet-site, for {site})


@dataclass
class RemoteJob:
    """One job's life on a remote IPP printer (kept across stalls, like an open port)."""

    client: IppClient
    stall_timeout: float
    job_id: int | None = None
    user: str = ""  # the job's requesting-user-name (a Cancel-Job needs the owner)
    impressions: int | None = None
    state_note: str = ""
    # The far end is a printnet gateway that took the job durably under its printnet
    # id: the job is forwarded (done here), not followed until it prints.
    forwarded: bool = False
    forwarding: bool = False  # the job went (or is going) to a printnet gateway as a forward
    _since: float = field(default_factory=time.monotonic)

    def run(self, doc: Document, *, should_stop: Callable[[], bool],
            on_progress: Callable[[int], None]) -> bool:
        """Print `doc`; True once the remote says completed, False if told to stop.

        Raises `SendStalled` (printer trouble for STALL= seconds; the remote job,
        if any, is kept), `SendFailed` (connection lost or garbage before the
        remote had the job; `RemoteJobEnded`: it canceled or aborted it) and
        `IppRefused` (an error status: the note says which).
        """
        self._since = time.monotonic()
        if self.job_id is None:
            st = self._wait_printer(should_stop, forwarding=doc.forward is not None)
            if st is None:
                return False
            self.user = doc.user
            self._submit(doc, st)
            on_progress(len(doc.data))
            self._since = time.monotonic()
        if self.forwarded:
            return True
        return self._follow(doc, should_stop)

    def cancel(self) -> None:
        """Cancel-Job the remote job, best effort: this server gives the job up (it
        stops), and the job prints again from its start wherever it is scheduled."""
        if self.job_id is None:
            return
        try:
            self.client.request(Operation.CANCEL_JOB, [
                Attribute.of("job-id", Tag.INTEGER, self.job_id),
                Attribute.of("requesting-user-name", Tag.NAME, self.user or "printnet")])
        except SendFailed:
            pass  # unreachable: it may print the job; the requeued job prints it again
        self.job_id = None

    def _stalled(self, why: str, sent: int) -> None:
        idle = time.monotonic() - self._since
        if idle >= self.stall_timeout:
            raise SendStalled(f"{self.client.label}: {why} (for {idle:.1f} s)", sent=sent)

    def _wait_printer(self, should_stop: Callable[[], bool], *,
                      forwarding: bool) -> PrinterStatus | None:
        """The printer's status once it can take the job; None if told to stop."""
        while True:
            if should_stop():
                return None
            st = self.client.printer_status()
            if forwarding and st.forwarding and self.client.target.forward:
                # Store and forward: the central queue takes the job whatever its
                # printer does now (out of paper, no server yet); it prints it later.
                return st
            why = printer_trouble(st)
            if why is None:
                return st
            self._stalled(why, 0)
            time.sleep(POLL)

    def _submit(self, doc: Document, st: PrinterStatus) -> None:
        if st.forwarding and doc.forward is not None and self.client.target.forward:
            self.forwarding = True
            self._submit_forward(doc, doc.forward)
            return
        if st.formats and doc.format not in st.formats:
            if doc.format == "text/plain" and "application/octet-stream" in st.formats:
                doc.format = "application/octet-stream"
            else:
                raise IppRefused(
                    f"{self.client.label}: it cannot print {doc.format} (it takes "
                    f"{', '.join(sorted(st.formats))})",
                    status=Status.CLIENT_ERROR_DOCUMENT_FORMAT_NOT_SUPPORTED)
        answer = self.client.checked(Operation.PRINT_JOB, [
            Attribute.of("requesting-user-name", Tag.NAME, doc.user or "printnet"),
            Attribute.of("job-name", Tag.NAME, doc.name or doc.printnet_id),
            Attribute.of("document-format", Tag.MIME_MEDIA_TYPE, doc.format)],
            # Not to a printnet gateway printed through (?forward=no): it would take
            # the id put-if-absent, and a job it aborted could never be sent again.
            job=[*([] if st.forwarding else
                   [Attribute.of(JOB_ID_ATTRIBUTE, Tag.NAME, doc.printnet_id)]),
                 *([Attribute.of(SITE_ATTRIBUTE, Tag.NAME, doc.site)] if doc.site else []),
                 *([Attribute.of("copies", Tag.INTEGER, doc.copies)] if doc.copies > 1
                   else [])],
            data=doc.data)
        g = answer.group(GroupTag.JOB)
        job_id = g.get("job-id") if g else None
        if job_id is None or not isinstance(job_id.value, int):
            raise SendFailed(f"{self.client.label}: print-job: the answer has no job-id",
                             sent=len(doc.data))
        self.job_id = job_id.value

    def _submit_forward(self, doc: Document, fwd: Forward) -> None:
        """Print-Job to a printnet gateway: the job under its own printnet id.

        Sending it again (a lost answer, a reset) is safe: the gateway publishes
        put-if-absent on the id and answers a resend with the job it has."""
        job = [Attribute.of(JOB_ID_ATTRIBUTE, Tag.NAME, doc.printnet_id),
               Attribute.of("job-priority", Tag.INTEGER, PRIORITY.get(fwd.priority, 50)),
               Attribute.of("job-sheets", Tag.KEYWORD, "standard" if fwd.header else "none")]
        if fwd.copies > 1:
            job.append(Attribute.of("copies", Tag.INTEGER, fwd.copies))
        if fwd.setup:
            job.append(Attribute.of("printnet-setup", Tag.NAME, fwd.setup))
        if doc.site:  # where it was submitted: central's header page names it
            job.append(Attribute.of(SITE_ATTRIBUTE, Tag.NAME, doc.site))
        answer = self.client.checked(Operation.PRINT_JOB, [
            Attribute.of("requesting-user-name", Tag.NAME, doc.user or "printnet"),
            Attribute.of("job-name", Tag.NAME, doc.name or doc.printnet_id),
            Attribute.of("document-format", Tag.MIME_MEDIA_TYPE, fwd.format)],
            job=job, data=fwd.data)
        g = answer.group(GroupTag.JOB)
        job_id = g.get("job-id") if g else None
        got = g.get("printnet-id") if g else None
        if job_id is None or not isinstance(job_id.value, int):
            raise SendFailed(f"{self.client.label}: print-job: the answer has no job-id",
                             sent=len(fwd.data))
        if got is None or got.value != doc.printnet_id:
            # Not the put-if-absent we asked for: the far end queued it under another
            # id.  It has the job (a resend would queue it again), so it is followed
            # like any IPP printer's job.
            self.job_id = job_id.value
            return
        self.job_id = job_id.value
        self.forwarded = True

    def _follow(self, doc: Document, should_stop: Callable[[], bool]) -> bool:
        assert self.job_id is not None
        last_state = -1
        while True:
            if should_stop():
                return False
            try:
                js = self.client.job_status(self.job_id)
            except IppRefused as exc:
                if exc.status in (Status.CLIENT_ERROR_NOT_FOUND, Status.CLIENT_ERROR_GONE):
                    self.job_id = None  # it forgot the job: submit it again
                    raise SendFailed(f"{exc}; the job is submitted again",
                                     sent=len(doc.data)) from exc
                raise
            except SendFailed as exc:
                # The remote has the job: a lost answer is not a lost job.  Poll again
                # until STALL= passes without an answer.
                self._stalled(f"no answer about its job {self.job_id} ({exc})",
                              len(doc.data))
                time.sleep(POLL)
                continue
            if js.impressions is not None:
                self.impressions = js.impressions
            reason = js.message or ", ".join(r for r in js.reasons if r != "none")
            self.state_note = reason
            if js.state == JobState.COMPLETED:
                return True
            if js.state in (JobState.CANCELED, JobState.ABORTED):
                self.job_id = None
                word = "canceled" if js.state == JobState.CANCELED else "aborted"
                raise RemoteJobEnded(f"{self.client.label}: the printer {word} the job"
                                     + (f": {reason}" if reason else ""), sent=len(doc.data))
            if js.state != last_state:
                last_state, self._since = js.state, time.monotonic()
            # The printer's own trouble (out of paper...) shows while the job waits on
            # it, whatever state the printer gives the job (pending, processing).
            try:
                why = printer_trouble(self.client.printer_status())
            except (SendFailed, IppRefused):
                why = None
            if why is None and js.state == JobState.PROCESSING_STOPPED:
                why = reason or "job stopped"
            if why is not None:
                self._stalled(why, len(doc.data))
            else:
                self._since = time.monotonic()  # pending or processing: it is working
            time.sleep(POLL)

