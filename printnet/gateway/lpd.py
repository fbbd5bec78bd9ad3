"""The LPD door (RFC 1179): jobs, queue state and removal over `asyncio.start_server`.

Owns the socket side of LPD; what the bytes mean is `lpd_protocol`'s.  One
connection carries one daemon command:

* **receive job**: the queue must be a printer or class the gateway knows.
  Control and data files arrive in either order and are held in memory,
  bounded while they are read by the printer's MAXBYTES (or the gateway's
  MAXBODY).  The subcommand that completes a job (its control file and every
  data file it prints) is acknowledged only after `GatewayContext.submit`
  returned, i.e. after the request is durable in new/: a client that saw
  the final 0 byte may forget its copy.  In CUPS ``mode=stream`` the client
  closes instead of waiting for that byte; the job is submitted at the close.
  Anything bad (a malformed line, an unsupported format, a file over the
  limit, an unknown queue, a user the rules refuse, a client that stalls
  longer than TIMEOUT) is refused with a non-zero byte and one log line, and
  nothing reaches new/ (submit writes all or nothing).
* **queue state** (short and long): free text from `queue_view`.
* **remove jobs**: the agent named in the command is only a claim, so it is
  believed only from the trusted NETWORKS of etc/gateway.cmd (AUTH TRUST, or
  BASIC with NETWORKS); elsewhere every removal is refused.  Removal sends
  the same cancel control request as ``printnet cancel``; the servers decide
  whether the agent owns the job or is an operator.

The source port is not checked: RFC 1179's reserved ports prove nothing on a
network of personal computers (and CUPS' ``reserve=none`` does not use them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from dataclasses import dataclass, field
from functools import partial
from typing import Final

from printnet.errors import PrintnetError
from printnet.gateway.context import Document, GatewayContext, Identity, JobOptions
from printnet.gateway.lpd_protocol import (
    ACK,
    MAX_LINE,
    NACK,
    ControlFile,
    LpdError,
    Op,
    Sub,
    Subcommand,
    matches,
    missing_files,
    parse_command,
    parse_control_file,
    parse_subcommand,
    plan_job,
    render_queue,
    strip_stray_nuls,
)
from printnet.model import ControlAction, clean_text, normalize_name

log = logging.getLogger("printnet.gateway.lpd")

CHUNK: Final = 64 * 1024
MAX_JOBS_PER_CONNECTION: Final = 100  # BSD lpr may send several jobs on one connection


class _ClientGone(Exception):
    """The client closed the connection (or stalled past TIMEOUT)."""


async def start(ctx: GatewayContext, host: str, port: int, *,
                sock: socket.socket | None = None) -> asyncio.AbstractServer:
    """Listen for LPD clients on host:port, or on `sock`, a listening socket the
    service manager passed (socket activation); the app closes the server."""
    # The stream buffer's limit also paces file reads: a small one would pause the
    # socket every few KiB.  Lines longer than MAX_LINE are refused when parsed.
    if sock is not None:
        return await asyncio.start_server(partial(_connection, ctx), sock=sock, limit=CHUNK)
    return await asyncio.start_server(partial(_connection, ctx), host, port,
                                      limit=CHUNK, reuse_address=True)


def _peer(writer: asyncio.StreamWriter) -> str:
    info = writer.get_extra_info("peername")
    return str(info[0]) if isinstance(info, tuple) and info else ""


async def _connection(ctx: GatewayContext, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
    peer = _peer(writer)
    conn = _Conn(ctx, reader, writer, peer)
    try:
        await conn.serve()
    except _ClientGone:
        pass
    except LpdError as exc:
        log.warning("lpd %s: refused: %s", peer, exc)
        await conn.send(NACK)
    except (ConnectionError, OSError) as exc:
        log.info("lpd %s: connection lost: %s", peer, exc)
    finally:
        with contextlib.suppress(ConnectionError, OSError):
            writer.close()
            await writer.wait_closed()


@dataclass
class _Job:
    """One job being received: its control file and the data files so far."""

    control: ControlFile | None = None
    data: dict[str, bytes] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return sum(len(d) for d in self.data.values())

    def complete(self) -> bool:
        return self.control is not None and not missing_files(self.control, self.data)


class _Conn:
    """One client connection."""

    def __init__(self, ctx: GatewayContext, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, peer: str) -> None:
        self.ctx = ctx
        self.reader = reader
        self.writer = writer
        self.peer = peer
        self.timeout = ctx.settings.timeout

    # -- bytes ---------------------------------------------------------------------

    async def send(self, data: bytes) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            self.writer.write(data)
            await asyncio.wait_for(self.writer.drain(), self.timeout)

    async def line(self, *, first: bool = False) -> bytes | None:
        """One LF-terminated line, or None at a clean end of the connection."""
        try:
            raw = await asyncio.wait_for(self.reader.readuntil(b"\n"), self.timeout)
        except asyncio.IncompleteReadError as exc:
            rest = strip_stray_nuls(exc.partial)
            if rest.strip():
                raise LpdError("connection closed in the middle of a command line") from None
            return None
        except asyncio.LimitOverrunError:
            raise LpdError(f"command line longer than {MAX_LINE} bytes") from None
        except TimeoutError:
            if first:
                log.info("lpd %s: no command within %gs", self.peer, self.timeout)
                raise _ClientGone from None
            raise LpdError(f"client stalled for {self.timeout:g}s") from None
        if len(raw) > MAX_LINE + 1:
            raise LpdError(f"command line longer than {MAX_LINE} bytes")
        return raw

    async def read_exactly(self, size: int, limit: int) -> bytes:
        if size > limit:
            raise LpdError(f"{size} bytes is over the limit of {limit} for this queue")
        parts: list[bytes] = []
        left = size
        while left:
            try:
                chunk = await asyncio.wait_for(self.reader.read(min(left, CHUNK)),
                                               self.timeout)
            except TimeoutError:
                raise LpdError(f"client stalled for {self.timeout:g}s in a file") from None
            if not chunk:
                raise LpdError(f"connection closed {left} bytes before the end of a file")
            parts.append(chunk)
            left -= len(chunk)
        return b"".join(parts)

    async def read_to_close(self, limit: int) -> bytes:
        """CUPS mode=stream: everything until the client closes, within `limit`."""
        parts: list[bytes] = []
        total = 0
        while True:
            try:
                chunk = await asyncio.wait_for(self.reader.read(CHUNK), self.timeout)
            except TimeoutError:
                raise LpdError(f"client stalled for {self.timeout:g}s in a file") from None
            if not chunk:
                return b"".join(parts)
            total += len(chunk)
            if total > limit + 1:  # +1: a final NUL some clients still send
                raise LpdError(f"stream over the limit of {limit} bytes for this queue")
            parts.append(chunk)

    # -- commands ------------------------------------------------------------------

    async def serve(self) -> None:
        raw = await self.line(first=True)
        if raw is None:
            return
        cmd = parse_command(strip_stray_nuls(raw))
        if cmd.op is Op.PRINT_WAITING:
            return  # the servers print as soon as they can: nothing to start
        if cmd.op in (Op.SHORT_QUEUE, Op.LONG_QUEUE):
            await self.queue_state(cmd.queue, cmd.operands, long=cmd.op is Op.LONG_QUEUE)
            return
        printer = self.printer(cmd.queue)
        if cmd.op is Op.REMOVE_JOBS:
            await self.remove(printer, cmd.operands[0], cmd.operands[1:])
            return
        await self.receive(printer)

    def printer(self, queue: str) -> str:
        """The printer or class a queue name means; `LpdError` when none."""
        name = normalize_name(queue)
        known = self.ctx.printer_names()
        if name in known:
            return name
        if name in ("", "LP", "RAW", "DEFAULT") or not known:
            default = self.ctx.default_printer()
            if default is not None:
                return default
        raise LpdError(f"unknown queue {clean_text(queue, 40)!r} "
                       f"(known: {', '.join(known) or 'none'})")

    async def queue_state(self, queue: str, wanted: tuple[str, ...], *, long: bool) -> None:
        try:
            printer = self.printer(queue)
        except LpdError as exc:
            await self.send(f"{exc}\n".encode())
            return
        view = await asyncio.to_thread(self.ctx.queue_view, printer)
        await self.send(render_queue(printer, view["printers"], view["jobs"], long=long,
                                     wanted=wanted))

    async def remove(self, printer: str, agent: str, wanted: tuple[str, ...]) -> None:
        if not self.ctx.trusted_network(self.peer):
            log.warning("lpd %s: remove refused: not a trusted network", self.peer)
            await self.send(b"remove refused: this network is not trusted to name users\n")
            return
        try:
            who = await asyncio.to_thread(self.ctx.identify, None, self.peer, agent)
        except PrintnetError as exc:
            log.warning("lpd %s: remove refused for %r: %s", self.peer, agent, exc)
            await self.send(f"remove refused: {exc}\n".encode())
            return
        if who.how != "trust":
            log.warning("lpd %s: remove refused: %r is not a trusted claim", self.peer, agent)
            await self.send(b"remove refused: user names are not trusted here\n")
            return
        view = await asyncio.to_thread(self.ctx.queue_view, printer)
        jobs = view["jobs"]
        if wanted:
            ids = [j["id"] for j in jobs if matches(j, wanted)]
        else:  # RFC 1179: no list = the agent's current job
            ids = [j["id"] for j in jobs if j.get("user") == who.user][:1]
        if not ids:
            await self.send(b"no matching jobs\n")
            return
        lines = []
        for job_id in ids:
            outcome = await asyncio.to_thread(self.ctx.control, who, ControlAction.CANCEL,
                                              job_id)
            log.info("lpd %s: remove %s as %s: %s", self.peer, job_id, who.user, outcome)
            lines.append(f"{job_id}: {'dequeued' if outcome == 'applied' else outcome}")
        await self.send(("\n".join(lines) + "\n").encode())

    async def receive(self, printer: str) -> None:
        limit = self.ctx.max_bytes(printer)
        await self.send(ACK)
        job = _Job()
        submitted = 0
        while True:
            raw = await self.line()
            if raw is None:
                if job.control is not None or job.data:
                    log.warning("lpd %s: client closed before its job was complete "
                                "(nothing queued)", self.peer)
                return
            raw = strip_stray_nuls(raw)
            if raw in (b"\n", b"\r\n"):
                continue  # a stray NUL then LF: nothing to do
            sub = parse_subcommand(raw)
            if sub.kind is Sub.ABORT:
                job = _Job()
                await self.send(ACK)
                continue
            if submitted >= MAX_JOBS_PER_CONNECTION:
                raise LpdError(f"more than {MAX_JOBS_PER_CONNECTION} jobs on one connection")
            if not sub.stream and sub.size > limit - job.size:
                raise LpdError(f"{sub.name}: {sub.size} bytes is over the limit of {limit} "
                               "for this queue")
            await self.send(ACK)
            body = await self.file(sub, limit - job.size)
            if sub.kind is Sub.CONTROL_FILE:
                if job.control is not None:
                    raise LpdError("a second control file for one job")
                job.control = parse_control_file(body)
            else:
                if sub.name in job.data:
                    raise LpdError(f"data file {sub.name} sent twice")
                job.data[sub.name] = body
            if job.complete():
                await self.queue(printer, job)  # durable in new/ before the ack
                submitted += 1
                job = _Job()
            if sub.stream:
                if job.control is not None or job.data:
                    raise LpdError("stream closed before the job was complete")
                await self.send(ACK)  # the client closed its side; it may still listen
                return
            await self.send(ACK)

    async def file(self, sub: Subcommand, limit: int) -> bytes:
        """A file's bytes after its subcommand was acknowledged."""
        if sub.stream:
            body = await self.read_to_close(limit)
            return body[:-1] if body.endswith(b"\0") else body
        body = await self.read_exactly(sub.size, limit)
        try:
            end = await asyncio.wait_for(self.reader.readexactly(1), self.timeout)
        except asyncio.IncompleteReadError:
            raise LpdError("connection closed before the NUL after a file") from None
        except TimeoutError:
            raise LpdError(f"client stalled for {self.timeout:g}s") from None
        if end != b"\0":
            raise LpdError("a file's bytes are not followed by NUL (wrong size?)")
        return body

    async def queue(self, printer: str, job: _Job) -> None:
        """Submit a complete job; `LpdError` (the refusal) when printnet refuses it."""
        assert job.control is not None
        plan = plan_job(job.control)
        try:
            who: Identity = await asyncio.to_thread(
                self.ctx.identify, None, self.peer, plan.user or None)
        except PrintnetError as exc:
            raise LpdError(f"user {plan.user!r}: {exc}") from None
        single = len(plan.files) == 1 and job.control.source_name
        documents = [Document(name=job.control.source_name if single else name,
                              data=job.data[name], format=fmt) for name, fmt in plan.files]
        options = JobOptions(printer=printer, copies=plan.copies, title=plan.title,
                             header=plan.header)
        try:
            req = await asyncio.to_thread(self.ctx.submit, who, documents, options,
                                          door="lpd", peer=self.peer)
        except PrintnetError as exc:
            raise LpdError(f"job refused: {exc}") from None
        log.info("lpd %s: queued %s for %s on %s (%d bytes, %d copies, %r)", self.peer,
                 req.id, who.user, req.printer, req.size, req.copies, req.title)
