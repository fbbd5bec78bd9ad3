"""I/O: opening a printer's port through pyserial.

Owns `register_schemes()` (printnet's own URL schemes ``file://`` and ``sim://``,
found by pyserial in this package), `port_url()` (a printer's configured port
made into the URL pyserial opens), `open_port()` and `close_port()`, and the
one rule of what a byte count is worth: `port_kind()` says for each kind of
port whether a job may resume at a byte offset after the connection was lost
(`Resume.OFFSET`: the device acknowledges what it took) or must start again
from its beginning (`Resume.RESTART`), and how the end of a job is made sure
of (`Finish`, carried out by `writer.complete`).  `device_reason()` asks a
port why its printer takes nothing (the simulated printer's state, the modem
lines a line's flow control uses).

Ports: device paths (``/dev/ttyS0``, ``/dev/ttyUSB0``; opened with an exclusive
lock so two servers cannot drive one line), ``socket://host:port`` (raw TCP,
e.g. port 9100), ``rfc2217://host:port`` (serial over the network),
``loop://`` (pyserial's in-process loopback), ``file://PATH`` and
``sim://NAME?out=PATH...`` (see `protocol_file` and `protocol_sim`).
``ipp://`` and ``ipps://`` are kinds here (`IPP`) but not pyserial ports: the
worker drives them with `ipp_port` (an IPP client); ``spool:/PATH?printer=NAME``
(`FORWARD`) forwards the job into another site's spool (`spool_port`).

Every port is opened non-blocking for writes (``write_timeout=0``): the only
mode in which pyserial says exactly how many bytes went out; `writer.send`
owns the loop.  Reads are non-blocking too (``timeout=0``).  The one exception
is ``loop://``, whose pyserial handler refuses every non-blocking write: it is
opened with blocking writes (a write blocks while its 4 KiB queue is full, so
something must read it); it is a toy for in-process tests.

A relative ``file://`` path, and a relative ``out=`` of a ``sim://`` port, is
taken relative to the etc/ folder and must stay inside the project folder that
holds etc/ (etc/'s parent) and outside etc/ itself; ``..`` that leaves it, or
a symlink that points out of it, is refused.  An absolute path is the
operator's choice (`printnet.config.load` has checked it against the path
rules) and is used as given.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Final
from urllib.parse import parse_qs, quote, urlencode, urlsplit, urlunsplit

import serial
from serial.serialutil import SerialBase

from printnet.errors import PortError
from printnet.printers import protocol_sim
from printnet.printers.simctl import SimState
from printnet.settings import Flow, PrinterConfig

PACKAGE: Final = "printnet.printers"


class Resume(StrEnum):
    """What a job does after its connection to the printer was lost mid-job."""

    OFFSET = "offset"  # go on at the exact byte reached: the device acknowledged it
    RESTART = "restart"  # start again from the beginning (header page included)


class Finish(StrEnum):
    """How the end of a job is made sure of, once `send` has handed over the last byte."""

    NONE = "none"  # the port took the last byte; nothing more can be known
    DRAIN = "drain"  # printnet's own printers: wait until the device printed its buffer
    TCP_FIN = "tcp-fin"  # shutdown(SHUT_WR); send queue and FIN acknowledged; EOF read
    TCP_ACK = "tcp-ack"  # send queue acknowledged (the connection stays in use)


@dataclass(frozen=True, slots=True)
class PortKind:
    """A kind of port and what its byte counts are worth (docs/PRINTERS.md, the table)."""

    name: str
    resume: Resume
    finish: Finish
    why: str


SERIAL: Final = PortKind(
    "serial line with flow control", Resume.OFFSET, Finish.NONE,
    "the printer stops the line (XOFF, CTS, DSR) when it cannot take more, so what the "
    "port took went down the line; the port stays open across a stall")
SERIAL_NO_FLOW: Final = PortKind(
    "serial line without flow control", Resume.RESTART, Finish.NONE,
    "nothing tells what the printer took: after the device failed (a USB adapter "
    "unplugged) the job starts again")
SOCKET: Final = PortKind(
    "raw TCP (socket://)", Resume.RESTART, Finish.TCP_FIN,
    "send() only says the local kernel took the bytes; megabytes can sit in socket "
    "buffers and die with the connection")
RFC2217: Final = PortKind(
    "serial over the network (rfc2217://)", Resume.RESTART, Finish.TCP_ACK,
    "a TCP connection to a terminal server: what its buffers and ours held when the "
    "connection broke is unknown")
FILE: Final = PortKind(
    "file (file://)", Resume.OFFSET, Finish.DRAIN,
    "every write that returned is in the file; closing the descriptor loses nothing")
SIM: Final = PortKind(
    "simulated printer (sim://)", Resume.OFFSET, Finish.DRAIN,
    "models a serial line with flow control; its device buffer outlives the port")
LOOP: Final = PortKind(
    "loopback (loop://, tests only)", Resume.OFFSET, Finish.NONE,
    "in-process, blocking writes: a write returns once the queue holds the bytes")
IPP: Final = PortKind(
    "IPP (ipp://, ipps://)", Resume.RESTART, Finish.NONE,
    "job-level: a lost IPP job is submitted again (or from the impression the printer "
    "reports), never resumed at a byte")
FORWARD: Final = PortKind(
    "another site's spool (spool:)", Resume.RESTART, Finish.NONE,
    "job-level: the job is published in the central spool put-if-absent on its id, so "
    "sending it again after a lost acknowledgement queues it once (printnet.spool.forward)")
UNKNOWN: Final = PortKind(
    "other pyserial port", Resume.RESTART, Finish.NONE,
    "nothing is known about what it acknowledges: restarting prints twice, never loses")

KINDS: Final[dict[str, PortKind]] = {
    "socket": SOCKET, "rfc2217": RFC2217, "file": FILE, "sim": SIM, "loop": LOOP,
    "ipp": IPP, "ipps": IPP, "spool": FORWARD,
}


def port_kind(printer: PrinterConfig) -> PortKind:
    """The kind of the printer's port: the one place that says what a byte count means."""
    kind = scheme(printer.port.strip())
    if kind == "":
        return SERIAL if printer.flow is not Flow.NONE else SERIAL_NO_FLOW
    return KINDS.get(kind, UNKNOWN)


def register_schemes() -> None:
    """Let pyserial's ``serial_for_url`` find ``file://`` and ``sim://`` (idempotent)."""
    if PACKAGE not in serial.protocol_handler_packages:
        serial.protocol_handler_packages.append(PACKAGE)


# Document formats (MIME types) a port takes.  Every port takes what printnet's own
# drivers make: text it paginates, raw bytes, ESC/P.  A port that can print more
# (an ipp:// port: PDF, PWG raster) registers its scheme here; the gateway refuses
# other formats with client-error-document-format-not-supported.
BASE_FORMATS: Final = frozenset({"text/plain", "application/octet-stream",
                                 "application/vnd.printnet-escp"})
EXTRA_FORMATS: Final[dict[str, frozenset[str]]] = {  # scheme -> further formats
    # An IPP printer takes a PDF as itself (printnet does not render it); one that
    # does not list it in document-format-supported refuses the job with that note.
    "ipp": frozenset({"application/pdf"}), "ipps": frozenset({"application/pdf"}),
}


def accepted_formats(port: str) -> frozenset[str]:
    """The document formats a printer on `port` can take ('' : any printnet port)."""
    return BASE_FORMATS | EXTRA_FORMATS.get(scheme(port), frozenset())


def scheme(port: str) -> str:
    """The URL scheme of a port in lower case, '' for a device path."""
    if port[:6].lower() == "spool:":
        return "spool"  # spool:/PATH?printer=NAME has no "//" (printers.spool_port)
    if "://" not in port:
        return ""
    return port.split("://", 1)[0].lower()


def _local_path(printer: PrinterConfig, raw: str, etc_dir: Path) -> Path:
    """`raw` as an absolute path: relative ones against etc_dir, kept inside the project."""
    if not raw or "\x00" in raw:
        raise PortError(f"printer {printer.name}: port {printer.port} has no usable path")
    path = Path(raw)
    if path.is_absolute():
        return path
    etc = etc_dir.resolve()
    root = etc.parent
    target = (etc / path).resolve()
    if not target.is_relative_to(root):
        raise PortError(
            f"printer {printer.name}: port {printer.port} leaves the project folder {root}"
        )
    if target.is_relative_to(etc):
        raise PortError(
            f"printer {printer.name}: port {printer.port} writes inside the etc folder {etc}"
        )
    return target


def resolve_file_url(printer: PrinterConfig, etc_dir: Path) -> str:
    """The ``file://`` URL with its path made absolute (relative: against etc_dir)."""
    raw = printer.port.strip()[len("file://") :]
    return "file://" + str(_local_path(printer, raw, etc_dir))


def resolve_sim_url(printer: PrinterConfig, etc_dir: Path) -> str:
    """The ``sim://`` URL with its ``out=`` made absolute (relative: against etc_dir)."""
    url = printer.port.strip()
    parts = urlsplit(url)
    try:
        options = parse_qs(parts.query, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        return url  # malformed: the handler says what is wrong
    outs = options.get("out", [])
    if len(outs) != 1:
        return url
    options["out"] = [str(_local_path(printer, outs[0], etc_dir))]
    query = urlencode(options, doseq=True, quote_via=quote, safe="/:@")
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def port_url(printer: PrinterConfig, etc_dir: Path) -> str:
    """The URL (or device path) pyserial is to open for this printer."""
    port = printer.port.strip()
    if not port:
        raise PortError(f"printer {printer.name}: no port configured")
    kind = scheme(port)
    if kind == "file":
        return resolve_file_url(printer, etc_dir)
    if kind == "sim":
        return resolve_sim_url(printer, etc_dir)
    return port


_FLOW: Final[dict[Flow, tuple[bool, bool, bool]]] = {
    # (xonxoff, rtscts, dsrdtr)
    Flow.NONE: (False, False, False),
    Flow.XONXOFF: (True, False, False),
    Flow.RTSCTS: (False, True, False),
    Flow.DSRDTR: (False, False, True),
}


def open_port(printer: PrinterConfig, etc_dir: Path) -> SerialBase:
    """Open the printer's port with its line settings; raise `PortError` naming it."""
    register_schemes()
    url = port_url(printer, etc_dir)
    kind = scheme(url)
    try:
        port = serial.serial_for_url(url, do_not_open=True)
        port.baudrate = printer.baud
        port.bytesize = printer.bytesize
        port.parity = printer.parity
        port.stopbits = printer.stopbits
        port.xonxoff, port.rtscts, port.dsrdtr = _FLOW[printer.flow]
        port.timeout = 0
        port.write_timeout = None if kind == "loop" else 0
        if kind == "":
            port.exclusive = True
        port.open()
    except (serial.SerialException, OSError, ValueError) as exc:
        raise PortError(
            f"printer {printer.name}: cannot open {url}: {open_failure(url, exc)}") from exc
    return port


_PYSERIAL_PREFIX: Final = re.compile(r"(?is)^could not open port (.*?): (?=\S)")
_ERRNO_PREFIX: Final = re.compile(r"^\[Errno -?\d+\] ")


def open_failure(url: str, exc: BaseException) -> str:
    """Why a port did not open, without pyserial's "could not open port URL:" repeat."""
    text = _ERRNO_PREFIX.sub("", str(exc).strip())
    lowered = text.lower()
    for name in (url, url.lower()):
        prefix = f"could not open port {name}: "
        if lowered.startswith(prefix.lower()):
            text = text[len(prefix):]
            break
    else:
        match = _PYSERIAL_PREFIX.match(text)
        if match:
            text = text[match.end():]
    text = _ERRNO_PREFIX.sub("", text.strip())
    named = text.rsplit(": ", 1)
    if len(named) == 2 and named[1].strip("'\"") in (url, url.split("://", 1)[-1]):
        text = named[0]  # "No such file or directory: '/dev/ttyS9'": the path again
    return text or type(exc).__name__


_SIM_REASONS: Final = {
    SimState.PAPEROUT: "out of paper",
    SimState.OFFLINE: "offline",
    SimState.XOFF: "holding XOFF",
}


def device_reason(port: SerialBase) -> str | None:
    """Why the printer takes nothing, where the device can say; None where it cannot.

    The simulated printer says its state; a line with hardware flow control says
    which modem line is off.  A pty or a network port cannot tell (None).
    """
    try:
        if isinstance(port, protocol_sim.Serial):
            return _SIM_REASONS.get(port.sim_state)
        line: object = port
        if getattr(port, "dsrdtr", False) and not getattr(line, "dsr", True):
            return "not ready (DSR off)"
        if getattr(port, "rtscts", False) and not getattr(line, "cts", True):
            return "not ready (CTS off)"
    except (OSError, serial.SerialException, ValueError):
        return None
    return None


def close_port(port: SerialBase) -> None:
    """Close a port; a raw TCP one (``socket://``) at once.

    pyserial's socket handler sleeps 0.3 s in ``close()`` "in case of quick
    reconnects"; a worker closes its port after every job, so a raw TCP printer
    could not print more than three jobs a second, and each job started 0.3 s
    after the one before had ended (measured).  Here the socket is shut down and
    closed without the sleep; a printer that refuses the next connection for a
    moment is printer trouble like any other (retried).
    """
    sock = getattr(port, "_socket", None)
    if sock is not None and type(port).__module__ == "serial.urlhandler.protocol_socket":
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            sock.close()
        except OSError:
            pass
        port._socket = None  # type: ignore[attr-defined]
        port.is_open = False
        return
    port.close()
