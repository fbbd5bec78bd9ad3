"""I/O: opening a printer's port through pyserial.

Owns `register_schemes()` (printnet's own URL schemes ``file://`` and ``sim://``,
found by pyserial in this package), `port_url()` (a printer's configured port
made into the URL pyserial opens), `open_port()` and `close_port()`.

Ports: device paths (``/dev/ttyS0``, ``/dev/ttyUSB0``; opened with an exclusive
lock so two servers cannot drive one line), ``socket://host:port`` (raw TCP,
e.g. port 9100), ``rfc2217://host:port`` (serial over the network),
``loop://`` (pyserial's in-process loopback), ``file://PATH`` and
``sim://NAME?out=PATH...`` (see `protocol_file` and `protocol_sim`).

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

import socket
from pathlib import Path
from typing import Final
from urllib.parse import parse_qs, quote, urlencode, urlsplit, urlunsplit

import serial
from serial.serialutil import SerialBase

from printnet.config import Flow, PrinterConfig
from printnet.errors import PortError

PACKAGE: Final = "printnet.printers"


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
EXTRA_FORMATS: Final[dict[str, frozenset[str]]] = {}  # scheme -> further formats


def accepted_formats(port: str) -> frozenset[str]:
    """The document formats a printer on `port` can take ('' : any printnet port)."""
    return BASE_FORMATS | EXTRA_FORMATS.get(scheme(port), frozenset())


def scheme(port: str) -> str:
    """The URL scheme of a port in lower case, '' for a device path."""
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
        raise PortError(f"printer {printer.name}: cannot open {url}: {exc}") from exc
    return port


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
