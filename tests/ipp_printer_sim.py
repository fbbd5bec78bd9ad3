"""A small IPP printer for the tests of the ``ipp://`` port, on the project's codec.

A threaded HTTP server on 127.0.0.1 (a real socket) that answers
Get-Printer-Attributes, Print-Job and Get-Job-Attributes.  The test troubles it
through plain attributes:

* ``reasons`` (printer-state-reasons) and ``stopped`` (printer-state 5): while
  they say trouble, a job it holds is processing-stopped and does not finish;
* ``plan(n)``, per Print-Job request n (0, 1, ...): ``"ok"`` (take the job),
  ``"close"`` (read half the document, then close the connection: no answer),
  ``"garbage"`` (read it all, answer bytes that are not IPP, keep no job),
  ``"abort"`` (take the job, then abort it with ``abort_message``), ``"stall"``
  (read it all, keep no job, answer nothing until ``unstall`` is set, then close);
* ``release``: a job finishes (completed, ``impressions`` pages) only once this
  event is set (set by default);
* ``garbage_printer``: how many Get-Printer-Attributes answers are garbage first.

Its own records are the tests' oracle: ``requests`` (every Print-Job, with its
attributes and the bytes that arrived) and ``jobs`` (those it took, by job-id).
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from printnet.ipp.codec import Attribute, Message, decode, encode
from printnet.ipp.enums import GroupTag, JobState, Operation, PrinterState, Status, Tag

TROUBLE = {"media-empty", "media-empty-error", "media-needed", "door-open", "offline"}


@dataclass
class SimJob:
    id: int
    attrs: dict[str, Any]
    data: bytes
    state: int = JobState.PROCESSING
    polls: int = 0
    abort: bool = False


@dataclass
class PrintRequest:
    attrs: dict[str, Any]
    data: bytes
    plan: str


@dataclass
class IppPrinterSim:
    plan: Callable[[int], str] = lambda n: "ok"
    reasons: list[str] = field(default_factory=lambda: ["none"])
    stopped: bool = False
    impressions: int = 3
    abort_message: str = "the fuser overheated"
    garbage_printer: int = 0
    formats: tuple[str, ...] = ("text/plain", "application/octet-stream", "application/pdf")
    release: threading.Event = field(default_factory=threading.Event)
    unstall: threading.Event = field(default_factory=threading.Event)
    requests: list[PrintRequest] = field(default_factory=list)
    jobs: dict[int, SimJob] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    tls: tuple[Path, Path] | None = None  # (certificate, key): an ipps:// printer
    bind: int = 0  # the port to listen on (0: any free one); a link restored at a known port

    def __post_init__(self) -> None:
        self.release.set()
        sim = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                sim._handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", self.bind), Handler)
        self.server.daemon_threads = True
        if self.tls is not None:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(*self.tls)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/ipp/print") -> str:
        return f"ipp{'s' if self.tls else ''}://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        self.unstall.set()
        self.server.shutdown()
        self.server.server_close()

    @property
    def trouble(self) -> bool:
        return self.stopped or bool(TROUBLE & set(self.reasons))

    # -- the protocol -------------------------------------------------------------

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length", "0"))
        with self.lock:
            n_print = len(self.requests)
        msg = decode(h.rfile.read(length) if length else b"")
        op = msg.operation
        if msg.code == Operation.PRINT_JOB:
            plan = self.plan(n_print)
            attrs = {a.name: a.value for g in msg.groups for a in g}
            if plan == "close":
                with self.lock:
                    self.requests.append(PrintRequest(attrs, msg.data[: len(msg.data) // 2],
                                                      plan))
                h.close_connection = True
                h.connection.close()
                return
            with self.lock:
                self.requests.append(PrintRequest(attrs, msg.data, plan))
            if plan == "stall":
                self.unstall.wait(60)
                h.close_connection = True
                h.connection.close()
                return
            if plan == "garbage":
                self._send(h, b"\x00\x07this is no IPP answer")
                return
            with self.lock:
                job = SimJob(len(self.jobs) + 1, attrs, msg.data, abort=plan == "abort")
                self.jobs[job.id] = job
            self._answer(h, msg, Status.SUCCESSFUL_OK, job=[
                Attribute.of("job-id", Tag.INTEGER, job.id),
                Attribute.of("job-state", Tag.ENUM, int(job.state))])
            return
        if msg.code == Operation.GET_PRINTER_ATTRIBUTES:
            with self.lock:
                if self.garbage_printer > 0:
                    self.garbage_printer -= 1
                    self._send(h, b"<html>not an ipp printer</html>")
                    return
            state = (PrinterState.STOPPED if self.stopped
                     else PrinterState.PROCESSING if self.trouble else PrinterState.IDLE)
            self._answer(h, msg, Status.SUCCESSFUL_OK, printer=[
                Attribute.of("printer-state", Tag.ENUM, int(state)),
                Attribute.of("printer-state-reasons", Tag.KEYWORD, *self.reasons),
                Attribute.of("document-format-supported", Tag.MIME_MEDIA_TYPE,
                             *self.formats)])
            return
        if msg.code == Operation.GET_JOB_ATTRIBUTES:
            jid = op.get("job-id")
            with self.lock:
                found = self.jobs.get(jid.value if jid else -1)
                if found is None:
                    self._answer(h, msg, Status.CLIENT_ERROR_NOT_FOUND, message="no such job")
                    return
                job = found
                job.polls += 1
                if job.state in (JobState.PROCESSING, JobState.PROCESSING_STOPPED):
                    if job.abort:
                        job.state = JobState.ABORTED
                    elif self.trouble:
                        job.state = JobState.PROCESSING_STOPPED
                    elif self.release.is_set():
                        job.state = JobState.COMPLETED
                    else:
                        job.state = JobState.PROCESSING
                answer = [Attribute.of("job-id", Tag.INTEGER, job.id),
                         Attribute.of("job-state", Tag.ENUM, int(job.state)),
                         Attribute.of("job-state-reasons", Tag.KEYWORD,
                                      "aborted-by-system" if job.state == JobState.ABORTED
                                      else "none")]
                if job.state == JobState.ABORTED:
                    answer.append(Attribute.of("job-state-message", Tag.TEXT,
                                              self.abort_message))
                if job.state == JobState.COMPLETED:
                    answer.append(Attribute.of("job-impressions-completed", Tag.INTEGER,
                                              self.impressions))
            self._answer(h, msg, Status.SUCCESSFUL_OK, job=answer)
            return
        if msg.code == Operation.CANCEL_JOB:
            jid = op.get("job-id")
            with self.lock:
                gone = self.jobs.get(jid.value if jid else -1)
                if gone is not None and gone.state < JobState.CANCELED:
                    gone.state = JobState.CANCELED
            self._answer(h, msg, Status.SUCCESSFUL_OK if gone else
                         Status.CLIENT_ERROR_NOT_FOUND)
            return
        self._answer(h, msg, Status.SERVER_ERROR_OPERATION_NOT_SUPPORTED)

    def _answer(self, h: BaseHTTPRequestHandler, req: Message, status: Status, *,
                job: list[Attribute] | None = None, printer: list[Attribute] | None = None,
                message: str = "") -> None:
        resp = Message(code=int(status), request_id=req.request_id)
        ops = [Attribute.of("attributes-charset", Tag.CHARSET, "utf-8"),
               Attribute.of("attributes-natural-language", Tag.NATURAL_LANGUAGE, "en")]
        if message:
            ops.append(Attribute.of("status-message", Tag.TEXT, message))
        resp.add_group(GroupTag.OPERATION, ops)
        if job:
            resp.add_group(GroupTag.JOB, job)
        if printer:
            resp.add_group(GroupTag.PRINTER, printer)
        self._send(h, encode(resp))

    def _send(self, h: BaseHTTPRequestHandler, body: bytes) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/ipp")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)
