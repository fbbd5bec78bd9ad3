"""Pure: the settings of a setup, a printer and its driver, as parsed from
etc/printers.cmd (`printnet.config` reads and checks the files; this module only
holds the typed values, so the renderer, drivers and scheduler can use them
without importing any I/O).

A *setup* is what is mounted in a printer: its *form* (the paper: PLAIN, CHECKS,
LABELS ...) and the page geometry; a job that asks for a setup waits until a printer
has a setup with that name mounted.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from printnet.quota import OverAction


class Flow(StrEnum):
    NONE = "none"
    XONXOFF = "xonxoff"
    RTSCTS = "rtscts"
    DSRDTR = "dsrdtr"


class ErrorPolicy(StrEnum):
    """What a printer does with its current job when it comes back after trouble."""

    RETRY = "retry"  # resume/reprint the job, keeping its place
    HOLD = "hold"  # put the job on hold for the operator
    ABORT = "abort"  # abort the job with the reason


class LinkMode(StrEnum):
    """LINKDOWN=: what a printer whose port is remote does while its link is down
    (docs/SITES.md, "When the link is down")."""

    QUEUE = "queue"  # jobs wait here, retried with back-off (LINKHOLD: then held)
    LOCAL = "local"  # jobs go to a local printer (PRINTER=) until the link returns
    REJECT = "reject"  # new jobs are refused at admission, with the reason


class DriverName(StrEnum):
    PLAIN = "plain"
    ESCP = "escp"


@dataclass(frozen=True, slots=True)
class SetupConfig:
    """A setup: what is mounted in a printer (its form, the paper) and how pages look."""

    name: str  # e.g. STANDARD, CHECKS
    form: str = "PLAIN"  # the paper: PLAIN, CHECKS, LABELS ...
    length: int = 66  # lines per page
    width: int = 80  # characters per line
    init: bytes = b""  # extra initialization bytes an intelligent driver sends
    # ENCODING=: the printer's character set (canonical name, `printnet.charset`);
    # None: the driver's own (plain latin-1, ESC/P cp437).
    encoding: str | None = None


@dataclass(frozen=True, slots=True)
class PrinterConfig:
    name: str
    port: str  # a pyserial URL, or a device path
    baud: int = 9600
    bytesize: int = 8
    parity: str = "N"  # N E O M S
    stopbits: float = 1
    flow: Flow = Flow.NONE
    driver: DriverName = DriverName.PLAIN
    setup: str = "STANDARD"  # the setup mounted at start
    header: str | None = None  # header template name (etc/<name>.hdr); None: built-in
    classes: tuple[str, ...] = ()
    error_policy: ErrorPolicy = ErrorPolicy.RETRY
    stall_timeout: float = 30.0  # seconds without progress before the printer is offline
    retry_interval: float = 5.0  # seconds between attempts to reach an offline printer
    accepting: bool = True
    reject_reason: str = ""
    stopped: bool = False
    password_hash: str | None = None
    max_copies: int | None = None
    max_bytes: int | None = None
    max_pages: int | None = None
    max_file: int | None = None  # bytes of one file of a job
    over_limit: OverAction = OverAction.REJECT  # OVERLIMIT=: a job over a MAX... limit
    header_pages: bool = True  # HEADER=NONE: never print header pages
    seal: bool | None = None  # SEAL=ON/OFF; None: the site's SEAL (server.cmd)
    # LINKDOWN= (a printer whose port is remote: ipp://, ipps://, spool:); None: not
    # remote.  `failover` is LINKDOWN=LOCAL's PRINTER=, `link_hold` LINKHOLD= in
    # seconds, `link_name` LINKNAME= (the remote's name in notes; None: the port's),
    # `link_retry` LINKRETRY= (the longest wait between attempts, seconds).
    linkdown: LinkMode | None = None
    failover: str | None = None
    link_hold: float | None = None
    link_name: str | None = None
    link_retry: float = 300.0
    logo: str | None = None  # LOGO=: a text-art file for {logo} (relative to etc/)
