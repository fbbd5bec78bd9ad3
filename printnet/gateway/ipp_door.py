"""The IPP door: IPP/2.0 over HTTP (aiohttp) into the spool.

Printers and classes are at ``/ipp/print/<NAME>``; the default printer is
also at ``/ipp/print``; a job's URI is its printer's URI plus ``/<job-id>``.

The HTTP side (`handle`) reads the body, chunked or not (aiohttp answers
``Expect: 100-continue``), at most MAXBODY bytes (or the printer's MAXBYTES
plus room for the attributes), each wait for more within TIMEOUT seconds; then
the operation runs in a thread (`dispatch`), because it reads the spool or
submits (blocking file work, fsync).  The one exception is the common case,
kept off the thread pool for speed (`fast`): a Print-Job of text or raw data,
without an Authorization header, while the gateway's caches are fresh, is
checked in the event loop (nothing to read from disk) and handed to the group
commit (`GatewayContext.submit_async`); it is answered once durable in new/.

Whatever goes wrong with a request (malformed IPP, an
oversize value, an unknown operation, too large a body, a stalled client)
gets its IPP status and one log line, and nothing is written to the spool:
a print request is published only by `GatewayContext.submit`, whole.

Operations (`ipp_attrs.OPERATIONS`): Print-Job, Validate-Job, Create-Job,
Send-Document, Cancel-Job, Hold-Job, Release-Job, Get-Job-Attributes,
Get-Jobs, Get-Printer-Attributes.  Job template attributes map to the request:
copies; job-name -> title; job-priority 1..33 overnight, 34..66 standard,
67..100 high; job-hold-until indefinite -> held, night -> overnight;
job-sheets none -> no header page; media or printnet-setup -> the setup;
job-password -> the queue password.

The request rules and attribute parsing are in `ipp_request`, the answers'
attributes in `ipp_attrs`; this module (some 750 lines) keeps the ten
operations together because they share its state: the Create-Job jobs still
in memory and the job index.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlsplit

from aiohttp import web

from printnet.errors import (
    AuthRequired,
    Forbidden,
    PrintnetError,
)
from printnet.gateway import ipp_attrs
from printnet.gateway.context import (
    ESCP,
    RAW,
    TEXT,
    Document,
    GatewayContext,
    Identity,
    JobOptions,
    Staged,
)
from printnet.gateway.ipp_request import (
    IppError,
    bool_of,
    check_compression,
    check_request,
    document_format,
    ipp_error,
    job_options,
    keywords_of,
    status_of,
    text_of,
)
from printnet.gateway.jobs import JobIndex, done_record, terminal
from printnet.ipp import codec
from printnet.ipp.codec import Attribute, Group, IppParseError, Message
from printnet.ipp.enums import GroupTag, Operation, Status, Tag
from printnet.model import PrintRequest, clean_text, normalize_name

log = logging.getLogger("printnet.gateway.ipp")

PREFIX: Final = "/ipp/print"
ATTRIBUTE_ROOM: Final = 1 << 20  # bytes of attributes allowed beside a printer's MAXBYTES
CHUNK: Final = 1 << 16
MAX_INCOMING: Final = 200  # Create-Job jobs waiting for documents (they are in memory)
ENDED_KEPT: Final = 3600.0  # seconds a canceled or timed-out Create-Job job is remembered
_FAST_FORMATS: Final = frozenset({TEXT, RAW, ESCP})  # formats `stage` never parses
@dataclass
class Env:
    """Where a request came from and went to."""

    host: str  # the Host header: how the client reached us
    peer: str
    authorization: str | None
    path: str
    tls: bool = False


@dataclass(frozen=True)
class _PrintJob:
    """A Print-Job between its checks and its publishing."""

    printer: str
    identity: Identity
    doc: Document
    ignored: list[Attribute]
    staged: Staged


@dataclass
class Incoming:
    """A Create-Job job waiting for its documents (in memory until the last one)."""

    ipp_id: int
    identity: Identity
    options: JobOptions
    printer: str
    printer_uri: str
    created: float
    submitted: str
    documents: list[Document] = field(default_factory=list)


@dataclass
class Ended:
    """A Create-Job job that never reached the spool (canceled or timed out)."""

    job: dict[str, Any]
    at: float = field(default_factory=time.monotonic)


class IppDoor:
    """The IPP operations of one gateway (one instance per process)."""

    def __init__(self, ctx: GatewayContext) -> None:
        self.ctx = ctx
        self.index = JobIndex(ctx.spool)
        self.incoming: dict[int, Incoming] = {}
        self.ended: dict[int, Ended] = {}
        self._lock = threading.Lock()
        self.up_since = int(time.time())
        self.ops: dict[int, Callable[[Message, Env, Group], Message]] = {
            Operation.PRINT_JOB: self.print_job,
            Operation.VALIDATE_JOB: self.validate_job,
            Operation.CREATE_JOB: self.create_job,
            Operation.SEND_DOCUMENT: self.send_document,
            Operation.CANCEL_JOB: self.cancel_job,
            Operation.HOLD_JOB: self.hold_job,
            Operation.RELEASE_JOB: self.release_job,
            Operation.GET_JOB_ATTRIBUTES: self.get_job_attributes,
            Operation.GET_JOBS: self.get_jobs,
            Operation.GET_PRINTER_ATTRIBUTES: self.get_printer_attributes,
        }

    # -- HTTP --------------------------------------------------------------------

    def routes(self) -> list[web.AbstractRouteDef]:
        return [web.post(PREFIX, self.handle), web.post(PREFIX + "/{tail:.*}", self.handle)]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        peer = request.remote or ""
        env = Env(request.host, peer, request.headers.get("Authorization"), request.path,
                  request.secure)
        if request.content_type != "application/ipp":
            log.warning("%s %s: not application/ipp (%s)", peer, request.path,
                        clean_text(request.content_type, 60))
            return web.Response(status=400, text="this is an IPP printer: POST "
                                "application/ipp\n")
        printer = _path_printer(request.path)
        limit = self.ctx.max_bytes(printer) + ATTRIBUTE_ROOM
        limit = min(limit, self.ctx.settings.max_body)
        try:
            body, over = await self._read(request, limit)
        except TimeoutError:
            log.warning("%s %s: client stalled more than %gs: closed", peer, request.path,
                        self.ctx.settings.timeout)
            raise web.HTTPRequestTimeout(text="request body too slow\n") from None
        if over:
            resp = self._error_for(body, Status.CLIENT_ERROR_REQUEST_ENTITY_TOO_LARGE,
                                   f"the request is larger than {limit} bytes")
            log.warning("%s %s: body over %d bytes: refused", peer, request.path, limit)
            out = web.Response(body=codec.encode(resp), content_type="application/ipp")
            out.force_close()  # the rest of the body is never read
            return out
        try:
            msg = codec.decode(body)
        except IppParseError as exc:
            log.warning("%s %s: malformed IPP: %s", peer, request.path, exc)
            resp = self._error_for(body, Status.CLIENT_ERROR_BAD_REQUEST, f"malformed: {exc}")
            return web.Response(body=codec.encode(resp), content_type="application/ipp")
        try:
            if self.fast(msg, env):
                resp = await self.print_job_async(msg, env)
            else:
                resp = await asyncio.to_thread(self.dispatch, msg, env)
        except AuthRequired as exc:
            log.info("%s %s: %s", peer, request.path, exc)
            resp = self._response(msg, Status.CLIENT_ERROR_NOT_AUTHENTICATED, str(exc))
            return web.Response(status=401, body=codec.encode(resp),
                                content_type="application/ipp",
                                headers={"WWW-Authenticate": f'Basic realm="{exc.realm}"'})
        return web.Response(body=codec.encode(resp), content_type="application/ipp")

    async def _read(self, request: web.Request, limit: int) -> tuple[bytes, bool]:
        """The body (chunked or not), up to `limit`; (what was read, over the limit?).

        What is already buffered is taken without waiting (a small Print-Job usually
        arrives whole with its headers); each wait for more has its own TIMEOUT."""
        parts: list[bytes] = []
        size = 0
        timeout = self.ctx.settings.timeout
        content = request.content
        while True:
            chunk = content.read_nowait(CHUNK)
            if not chunk:
                if content.at_eof():
                    return b"".join(parts), False
                async with asyncio.timeout(timeout):
                    chunk = await content.read(CHUNK)
                if not chunk:
                    return b"".join(parts), False
            size += len(chunk)
            if size > limit:
                parts.append(chunk)
                return b"".join(parts)[:4096], True
            parts.append(chunk)

    def _error_for(self, raw: bytes, status: Status, message: str) -> Message:
        request_id = struct.unpack(">i", raw[4:8])[0] if len(raw) >= 8 else 0
        version = (raw[0], raw[1]) if len(raw) >= 2 and raw[0] in (1, 2) else (2, 0)
        return self._response(Message(version, 0, request_id), status, message)

    # -- dispatch ------------------------------------------------------------------

    def dispatch(self, msg: Message, env: Env) -> Message:
        """Run one operation; every failure becomes its IPP status (AuthRequired: 401)."""
        try:
            self._expire()
            op = check_request(msg)
            handler = self.ops.get(msg.code)
            if handler is None:
                raise IppError(Status.SERVER_ERROR_OPERATION_NOT_SUPPORTED,
                               f"operation {_op_name(msg.code)} is not supported")
            return handler(msg, env, op)
        except Exception as exc:  # one request must never take the door down
            return self._failure(msg, env, exc)

    def _failure(self, msg: Message, env: Env, exc: Exception) -> Message:
        """The IPP answer to an operation that raised `exc` (AuthRequired is re-raised:
        `handle` answers it with HTTP 401)."""
        name = _op_name(msg.code)
        if isinstance(exc, AuthRequired):
            raise exc
        if isinstance(exc, IppError):
            status, text, unsupported = exc.status, str(exc), exc.unsupported
        elif isinstance(exc, Forbidden):
            status, text, unsupported = Status.CLIENT_ERROR_FORBIDDEN, str(exc), []
        elif isinstance(exc, PrintnetError):
            status, text, unsupported = status_of(exc), str(exc), []
        else:
            log.error("%s %s %s: internal error", env.peer, env.path, name, exc_info=exc)
            status, text, unsupported = (Status.SERVER_ERROR_INTERNAL_ERROR,
                                         f"internal error: {type(exc).__name__}", [])
        log.warning("%s %s %s: %s: %s", env.peer, env.path, name, status.keyword,
                    clean_text(text, 300))
        resp = self._response(msg, status, text)
        if unsupported:
            resp.add_group(GroupTag.UNSUPPORTED, unsupported)
        return resp

    def _response(self, msg: Message, status: Status, message: str = "") -> Message:
        version = (1, 1) if msg.version[0] == 1 else (2, 0)
        resp = Message(version, int(status), msg.request_id)
        attrs = [Attribute.of("attributes-charset", Tag.CHARSET, "utf-8"),
                 Attribute.of("attributes-natural-language", Tag.NATURAL_LANGUAGE, "en")]
        if message:
            attrs.append(Attribute.of("status-message", Tag.TEXT, clean_text(message, 255)))
        resp.add_group(GroupTag.OPERATION, attrs)
        return resp

    def _expire(self) -> None:
        """Abort Create-Job jobs whose next document did not come in time."""
        now = time.monotonic()
        with self._lock:
            for n, inc in list(self.incoming.items()):
                if now - inc.created > ipp_attrs.MULTIPLE_OPERATION_TIMEOUT:
                    del self.incoming[n]
                    self.ended[n] = Ended(self._incoming_json(
                        inc, "aborted", "no last document within "
                        f"{ipp_attrs.MULTIPLE_OPERATION_TIMEOUT} s (multiple-operation-"
                        "time-out): nothing was queued"))
                    log.warning("Create-Job %d of %s: timed out without its last document",
                                n, inc.identity.user)
            for n, ended in list(self.ended.items()):
                if now - ended.at > ENDED_KEPT:
                    del self.ended[n]

    # -- targets -------------------------------------------------------------------

    def _printer(self, op: Group, env: Env) -> str:
        """The printer or class a request is for: printer-uri's path, else the HTTP path."""
        uri = op.get("printer-uri") or op.get("job-uri")
        path = urlsplit(str(uri.value)).path if uri is not None else env.path
        if not path.startswith(PREFIX):
            path = env.path
        name = _path_printer(path)
        known = self.ctx.printer_names()
        if name is None:
            default = self.ctx.default_printer()
            if default is None:
                raise IppError(Status.CLIENT_ERROR_NOT_FOUND, "no default printer: use "
                               f"{PREFIX}/<NAME> ({', '.join(known)})")
            return default
        if known and name not in known:
            raise IppError(Status.CLIENT_ERROR_NOT_FOUND,
                           f"no printer or class {name!r} (known: {', '.join(known)})")
        return name

    def _base(self, env: Env) -> str:
        return ("ipps://" if env.tls else "ipp://") + env.host

    def _printer_uri(self, env: Env, printer: str) -> str:
        return f"{self._base(env)}{PREFIX}/{printer}"

    def _more_info(self, env: Env, query: str) -> str:
        return ("https://" if env.tls else "http://") + env.host + "/" + query

    def _identity(self, op: Group, env: Env) -> Identity:
        claimed = op.get("requesting-user-name")
        user = str(claimed.value) if claimed is not None and claimed.values else None
        return self.ctx.identify(env.authorization, env.peer, user)

    def _job_target(self, op: Group) -> int:
        if op.get("job-uri") is not None and op.get("printer-uri") is None:
            tail = urlsplit(str(op.get("job-uri").value)).path.rstrip("/")  # type: ignore[union-attr]
            try:
                return int(tail.rsplit("/", 1)[1])
            except (ValueError, IndexError):
                raise IppError(Status.CLIENT_ERROR_NOT_FOUND, "job-uri names no job") from None
        attr = op.get("job-id")
        if attr is None:
            raise IppError(Status.CLIENT_ERROR_BAD_REQUEST, "no job-id")
        if attr.tag != Tag.INTEGER or len(attr.values) != 1:
            raise IppError(Status.CLIENT_ERROR_BAD_REQUEST, "job-id must be one integer",
                           [attr])
        return int(attr.value)

    # -- job options ---------------------------------------------------------------

    # -- operations: jobs in -------------------------------------------------------------

    def print_job(self, msg: Message, env: Env, op: Group) -> Message:
        job = self._stage_print_job(msg, env, op)
        try:
            req = self.ctx.publish(job.staged)
        except PrintnetError as exc:
            raise ipp_error(exc) from exc
        return self._print_job_done(msg, env, job, req)

    async def print_job_async(self, msg: Message, env: Env) -> Message:
        """Print-Job in the event loop (`handle` checked `fast`): staged inline, published
        by the group commit without a thread of its own, answered once durable."""
        try:
            self._expire()
            op = check_request(msg)
            job = self._stage_print_job(msg, env, op)
            try:
                req = await self.ctx.submit_async(job.staged)
            except PrintnetError as exc:
                raise ipp_error(exc) from exc
            return self._print_job_done(msg, env, job, req)
        except Exception as exc:  # mapped as `dispatch` maps it
            return self._failure(msg, env, exc)

    def fast(self, msg: Message, env: Env) -> bool:
        """Whether a request can run in the event loop: a Print-Job of text or raw data
        (no PDF to count) without an Authorization header (no password hash to check)
        while the gateway's caches are fresh (no file to read)."""
        if msg.code != Operation.PRINT_JOB or env.authorization:
            return False
        if not msg.groups:
            return False
        fmt = msg.groups[0].get("document-format")
        if fmt is not None and fmt.value not in _FAST_FORMATS:
            return False
        return self.ctx.warm()

    def _stage_print_job(self, msg: Message, env: Env, op: Group) -> _PrintJob:
        printer = self._printer(op, env)
        identity = self._identity(op, env)
        options, ignored = job_options(msg, op, printer, self.ctx.config())
        self._accepting(printer)
        if not msg.data:
            raise IppError(Status.CLIENT_ERROR_BAD_REQUEST, "Print-Job without document data")
        doc = Document(text_of(op, "document-name") or options.title or "document", msg.data,
                       document_format(op))
        try:
            staged = self.ctx.stage(identity, [doc], options, door="ipp", peer=env.peer)
        except PrintnetError as exc:
            raise ipp_error(exc) from exc
        return _PrintJob(printer, identity, doc, ignored, staged)

    def _print_job_done(self, msg: Message, env: Env, job: _PrintJob,
                        req: PrintRequest) -> Message:
        n = self.index.add(req.id)
        log.info("%s Print-Job %s -> %s (%s, %s, %d bytes) for %s via %s", env.peer, n, req.id,
                 job.printer, job.doc.format, len(job.doc.data), job.identity.user,
                 job.identity.how)
        state = {"id": req.id, "state": "held" if req.hold else "pending", "note": ""}
        return self._job_response(msg, env, job.printer, n, state, job.ignored)

    def validate_job(self, msg: Message, env: Env, op: Group) -> Message:
        printer = self._printer(op, env)
        identity = self._identity(op, env)
        options, ignored = job_options(msg, op, printer, self.ctx.config())
        self._accepting(printer)
        try:
            self.ctx.validate(identity, options, [document_format(op)])
        except PrintnetError as exc:
            raise ipp_error(exc) from exc
        resp = self._response(msg, _ok(ignored))
        if ignored:
            resp.add_group(GroupTag.UNSUPPORTED, ignored)
        return resp

    def create_job(self, msg: Message, env: Env, op: Group) -> Message:
        printer = self._printer(op, env)
        identity = self._identity(op, env)
        options, ignored = job_options(msg, op, printer, self.ctx.config())
        self._accepting(printer)
        try:
            self.ctx.validate(identity, options)
        except PrintnetError as exc:
            raise ipp_error(exc) from exc
        with self._lock:
            if len(self.incoming) >= MAX_INCOMING:
                raise IppError(Status.SERVER_ERROR_BUSY,
                               f"{MAX_INCOMING} jobs are already waiting for their documents")
            n = secrets.randbelow(2**31 - 2) + 1
            while n in self.incoming or n in self.ended:
                n = secrets.randbelow(2**31 - 2) + 1
            inc = Incoming(n, identity, options, printer, self._printer_uri(env, printer),
                           time.monotonic(), datetime.now(UTC).isoformat())
            self.incoming[n] = inc
        log.info("%s Create-Job %d (%s) for %s", env.peer, n, printer, identity.user)
        return self._job_response(msg, env, printer, n, self._incoming_json(inc), ignored)

    def send_document(self, msg: Message, env: Env, op: Group) -> Message:
        n = self._job_target(op)
        identity = self._identity(op, env)
        with self._lock:
            inc = self.incoming.get(n)
        if inc is None:
            if n in self.ended or self.index.lookup(n) is not None:
                raise IppError(Status.CLIENT_ERROR_NOT_POSSIBLE,
                               f"job {n} is not waiting for documents")
            raise IppError(Status.CLIENT_ERROR_NOT_FOUND, f"no job {n}")
        if identity.user != inc.identity.user and not self.ctx.is_operator(identity.user):
            raise IppError(Status.CLIENT_ERROR_NOT_AUTHORIZED,
                           f"job {n} belongs to {inc.identity.user}")
        last = op.get("last-document")
        if last is None or last.tag != Tag.BOOLEAN or len(last.values) != 1:
            raise IppError(Status.CLIENT_ERROR_BAD_REQUEST, "Send-Document needs last-document")
        fmt = document_format(op)
        check_compression(op)
        allowed = self.ctx.formats(inc.printer)
        if msg.data and fmt not in allowed:
            raise IppError(Status.CLIENT_ERROR_DOCUMENT_FORMAT_NOT_SUPPORTED,
                           f"{inc.printer} cannot print {fmt}")
        total = sum(len(d.data) for d in inc.documents) + len(msg.data)
        if total > self.ctx.max_bytes(inc.printer):
            self._end(inc, "aborted", "its documents are over the size limit")
            raise IppError(Status.CLIENT_ERROR_REQUEST_ENTITY_TOO_LARGE,
                           f"job {n}: {total} bytes is over the limit")
        if msg.data:
            inc.documents.append(Document(text_of(op, "document-name") or inc.options.title
                                          or f"document {len(inc.documents) + 1}",
                                          msg.data, fmt))
        if not last.value:
            inc.created = time.monotonic()  # the time-out counts from the last document
            return self._job_response(msg, env, inc.printer, n, self._incoming_json(inc), [])
        with self._lock:
            self.incoming.pop(n, None)
        if not inc.documents:
            self.ended[n] = Ended(self._incoming_json(inc, "aborted", "no documents"))
            raise IppError(Status.CLIENT_ERROR_BAD_REQUEST, f"job {n} has no documents")
        try:
            req = self.ctx.submit(inc.identity, inc.documents, inc.options, door="ipp",
                                  peer=env.peer)
        except PrintnetError as exc:
            self.ended[n] = Ended(self._incoming_json(inc, "aborted", str(exc)))
            raise ipp_error(exc) from exc
        self.index.add(req.id, n)
        log.info("%s Send-Document %d -> %s (%d documents) for %s via %s", env.peer, n,
                 req.id, len(inc.documents), inc.identity.user, inc.identity.how)
        job = {"id": req.id, "state": "held" if req.hold else "pending", "note": "",
               "title": req.title, "user": req.user}
        return self._job_response(msg, env, inc.printer, n, job, [])

    def _accepting(self, printer: str) -> None:
        cfg = self.ctx.config()
        pc = cfg.printers.get(printer) if cfg is not None else None
        if pc is not None and not pc.accepting:
            raise IppError(Status.SERVER_ERROR_NOT_ACCEPTING_JOBS,
                           f"{printer} is {pc.reject_reason or 'not accepting jobs'}")
        refusal = self.ctx.station.link_refusal(printer)  # LINKDOWN=REJECT, link down
        if refusal is not None:
            raise IppError(Status.SERVER_ERROR_NOT_ACCEPTING_JOBS, refusal)

    def _incoming_json(self, inc: Incoming, state: str = "incoming",
                       note: str = "") -> dict[str, Any]:
        return {"id": "", "state": state, "note": note, "user": inc.identity.user,
                "title": inc.options.title, "printer": inc.printer, "copies":
                inc.options.copies, "submitted": inc.submitted, "priority":
                inc.options.priority, "size": sum(len(d.data) for d in inc.documents),
                "_documents": len(inc.documents), "_printer_uri": inc.printer_uri}

    def _end(self, inc: Incoming, state: str, note: str) -> None:
        with self._lock:
            self.incoming.pop(inc.ipp_id, None)
            self.ended[inc.ipp_id] = Ended(self._incoming_json(inc, state, note))

    def _job_response(self, msg: Message, env: Env, printer: str, n: int,
                      job: dict[str, Any], ignored: list[Attribute]) -> Message:
        from printnet.gateway.jobs import ipp_state

        st = ipp_state(job)
        uri = self._printer_uri(env, printer)
        resp = self._response(msg, _ok(ignored))
        if ignored:
            resp.add_group(GroupTag.UNSUPPORTED, ignored)
        a = Attribute.of
        resp.add_group(GroupTag.JOB, [
            a("job-uri", Tag.URI, f"{uri}/{n}"), a("job-id", Tag.INTEGER, n),
            a("job-state", Tag.ENUM, int(st.state)),
            a("job-state-reasons", Tag.KEYWORD, *st.reasons),
            a("job-state-message", Tag.TEXT, st.message[:1023]),
        ] + ([a("printnet-id", Tag.NAME, job["id"])] if job.get("id") else []))
        return resp

    # -- operations: control -----------------------------------------------------------

    def cancel_job(self, msg: Message, env: Env, op: Group) -> Message:
        return self._control(msg, env, op, "cancel")

    def hold_job(self, msg: Message, env: Env, op: Group) -> Message:
        return self._control(msg, env, op, "hold")

    def release_job(self, msg: Message, env: Env, op: Group) -> Message:
        return self._control(msg, env, op, "release")

    def _control(self, msg: Message, env: Env, op: Group, action: str) -> Message:
        n = self._job_target(op)
        identity = self._identity(op, env)
        with self._lock:
            inc = self.incoming.get(n)
        if inc is not None:
            if identity.user != inc.identity.user and not self.ctx.is_operator(identity.user):
                raise IppError(Status.CLIENT_ERROR_NOT_AUTHORIZED,
                               f"job {n} belongs to {inc.identity.user}")
            if action != "cancel":
                raise IppError(Status.CLIENT_ERROR_NOT_POSSIBLE,
                               f"job {n} is still waiting for its documents")
            self._end(inc, "canceled", f"canceled by {identity.user}")
            return self._response(msg, Status.SUCCESSFUL_OK)
        if n in self.ended:
            raise IppError(Status.CLIENT_ERROR_NOT_POSSIBLE, f"job {n} has ended")
        job_id = self.index.lookup(n)
        if job_id is None:
            raise IppError(Status.CLIENT_ERROR_NOT_FOUND, f"no job {n}")
        job = self.ctx.job(job_id)
        if job is None:
            raise IppError(Status.CLIENT_ERROR_NOT_FOUND, f"no job {n}")
        if terminal(job):
            raise IppError(Status.CLIENT_ERROR_NOT_POSSIBLE,
                           f"job {n} is already {job.get('state')}")
        if job.get("user") != identity.user and not self.ctx.is_operator(identity.user):
            raise IppError(Status.CLIENT_ERROR_NOT_AUTHORIZED,
                           f"job {n} is not yours ({identity.user})")
        outcome = self.ctx.control(identity, action, job_id)
        log.info("%s %s-Job %d (%s) by %s: %s", env.peer, action.capitalize(), n, job_id,
                 identity.user, outcome)
        if outcome in ("applied", "queued"):
            return self._response(msg, Status.SUCCESSFUL_OK,
                                  "" if outcome == "applied" else
                                  "sent; no server has answered yet")
        if outcome.startswith("not your"):
            raise IppError(Status.CLIENT_ERROR_NOT_AUTHORIZED, outcome)
        if outcome.startswith("not found"):
            raise IppError(Status.CLIENT_ERROR_NOT_POSSIBLE, outcome)
        raise IppError(Status.CLIENT_ERROR_NOT_POSSIBLE, outcome)

    # -- operations: queries ----------------------------------------------------------------

    def get_job_attributes(self, msg: Message, env: Env, op: Group) -> Message:
        n = self._job_target(op)
        requested = keywords_of(op, "requested-attributes")
        job, started, finished, docs = self._find(n)
        printer = str(job.get("printer") or "")
        uri = str(job.get("_printer_uri") or self._printer_uri(env, printer))
        attrs = ipp_attrs.job_attributes(
            job, ipp_id=n, job_uri=f"{uri}/{n}", printer_uri=uri,
            more_info=self._more_info(env, f"?job={job.get('id') or n}"),
            config=self.ctx.config(), now=datetime.now(UTC), started=started,
            finished=finished, documents=docs)
        resp = self._response(msg, Status.SUCCESSFUL_OK)
        resp.add_group(GroupTag.JOB, ipp_attrs.select(attrs, requested))
        return resp

    def _find(self, n: int) -> tuple[dict[str, Any], str | None, str | None, int]:
        """(job, started, finished, documents) for an IPP job id; IppError if unknown."""
        with self._lock:
            inc = self.incoming.get(n)
            ended = self.ended.get(n)
        if inc is not None:
            job = self._incoming_json(inc)
            return job, None, None, len(inc.documents)
        if ended is not None:
            return ended.job, None, None, int(ended.job.get("_documents", 0))
        job_id = self.index.lookup(n)
        found = self.ctx.job(job_id) if job_id is not None else None
        if job_id is None or found is None:
            raise IppError(Status.CLIENT_ERROR_NOT_FOUND, f"no job {n}")
        job = found
        record = done_record(self.ctx.spool, job_id) if terminal(job) else None
        if record is not None:
            req = record.get("request") or {}
            job = dict(job, via=req.get("via") if isinstance(req, dict) else None)
            files = req.get("files") if isinstance(req, dict) else None
            return (job, record.get("started"), record.get("finished"),
                    len(files) if isinstance(files, list) else 1)
        return job, None, None, 1

    def get_jobs(self, msg: Message, env: Env, op: Group) -> Message:
        printer = self._printer(op, env)
        which = text_of(op, "which-jobs") or "not-completed"
        if which not in ("completed", "not-completed", "all"):
            raise IppError(Status.CLIENT_ERROR_ATTRIBUTES_OR_VALUES_NOT_SUPPORTED,
                           f"which-jobs {clean_text(which, 30)!r} is not supported",
                           [op.get("which-jobs")])  # type: ignore[list-item]
        limit_attr = op.get("limit")
        limit = int(limit_attr.value) if limit_attr is not None and limit_attr.tag == \
            Tag.INTEGER else 1000
        if limit < 1:
            raise IppError(Status.CLIENT_ERROR_ATTRIBUTES_OR_VALUES_NOT_SUPPORTED,
                           "limit must be 1 or more", [limit_attr])  # type: ignore[list-item]
        user = None
        if bool_of(op, "my-jobs", False):
            user = self._identity(op, env).user
        requested = keywords_of(op, "requested-attributes")
        jobs: list[tuple[int, dict[str, Any], str | None, str | None]] = []
        if which in ("not-completed", "all"):
            jobs += [(self.index.add(j["id"], self.index.ipp_id(j["id"])), j, None, None)
                     for j in self.ctx.live_jobs(printer, user) if not terminal(j)]
            with self._lock:
                jobs += [(inc.ipp_id, self._incoming_json(inc), None, None)
                         for inc in self.incoming.values() if inc.printer == printer
                         and (user is None or inc.identity.user == user)]
        if which in ("completed", "all"):
            for j in self.ctx.completed(printer=printer, user=user, limit=limit):
                jobs.append((self.index.add(j["id"], self.index.ipp_id(j["id"])), j,
                             None, j.get("finished")))
        resp = self._response(msg, Status.SUCCESSFUL_OK)
        now = datetime.now(UTC)
        cfg = self.ctx.config()
        uri = self._printer_uri(env, printer)
        for n, job, started, finished in jobs[:limit]:
            attrs = ipp_attrs.job_attributes(
                job, ipp_id=n, job_uri=f"{uri}/{n}", printer_uri=uri,
                more_info=self._more_info(env, f"?job={job.get('id') or n}"), config=cfg,
                now=now, started=started, finished=finished)
            resp.add_group(GroupTag.JOB, ipp_attrs.select(attrs, requested,
                                                          ipp_attrs.JOB_DEFAULT_ATTRS))
        return resp

    def get_printer_attributes(self, msg: Message, env: Env, op: Group) -> Message:
        printer = self._printer(op, env)
        requested = keywords_of(op, "requested-attributes")
        fmt = op.get("document-format")
        if fmt is not None and fmt.tag != Tag.MIME_MEDIA_TYPE:
            raise IppError(Status.CLIENT_ERROR_BAD_REQUEST, "bad document-format", [fmt])
        facts = self._facts(env, printer)
        attrs = ipp_attrs.printer_attributes(facts, datetime.now().astimezone())
        resp = self._response(msg, Status.SUCCESSFUL_OK)
        resp.add_group(GroupTag.PRINTER, ipp_attrs.select(attrs, requested))
        return resp

    def _facts(self, env: Env, printer: str) -> ipp_attrs.PrinterFacts:
        from printnet.api import printer_status

        cfg = self.ctx.config()
        members = tuple(cfg.classes.get(printer, ())) if cfg else ()
        if not members:
            members = tuple(sorted({
                str(p.get("name")) for p in printer_status(self.ctx.spool)
                if printer in (p.get("classes") or [])}))
        names = members or (printer,)
        status = [p for p in printer_status(self.ctx.spool) if p.get("name") in names]
        listed = self.ctx.station.status(printer=printer)
        queued = [j for j in listed.jobs if not terminal(j)]
        needs = sorted({str(j.get("note"))[6:] for j in queued
                        if str(j.get("note", "")).startswith("Needs ")})
        auth = self.ctx.settings.auth
        scheme = {"basic": "basic", "trust": "requesting-user-name", "none": "none"}[auth]
        pc = cfg.printers.get(printer) if cfg else None
        return ipp_attrs.PrinterFacts(
            name=printer, uris=[self._printer_uri(env, printer)],
            security=["tls" if env.tls else "none"], authentication=[scheme],
            more_info=self._more_info(env, f"?printer={printer}"),
            formats=sorted(self.ctx.formats(printer)), status=status, members=members,
            queued=len(queued), needs=needs, config=cfg,
            password=bool(pc and pc.password_hash) or self.ctx.station.needs_password(printer),
            up_since=self.up_since)


# ---------------------------------------------------------------------------
# Helpers


# ---------------------------------------------------------------------------
# Helpers


def _path_printer(path: str) -> str | None:
    """The printer a /ipp/print[/NAME[/JOB]] path names (None: the default)."""
    rest = path[len(PREFIX):].strip("/") if path.startswith(PREFIX) else ""
    if not rest:
        return None
    from urllib.parse import unquote

    return normalize_name(unquote(rest.split("/")[0]))


def _op_name(code: int) -> str:
    try:
        return Operation(code).name.replace("_", "-").title()
    except ValueError:
        return f"operation {code:#06x}"


def _ok(ignored: list[Attribute]) -> Status:
    return (Status.SUCCESSFUL_OK_IGNORED_OR_SUBSTITUTED_ATTRIBUTES if ignored
            else Status.SUCCESSFUL_OK)
