"""The configuration model: what etc/server.cmd and etc/printers.cmd describe.

Owns the typed configuration (`Config`, `ServerConfig`, `PrinterConfig`,
`SetupConfig`).  Parsing and editing of the command files lives in
`printnet.cmdfile` (syntax) and the loaders below.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path


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


class DriverName(StrEnum):
    PLAIN = "plain"
    ESCP = "escp"


@dataclass(frozen=True, slots=True)
class SetupConfig:
    """A setup (form): what is loaded in a printer and how pages look."""

    name: str  # e.g. STANDARD, CHECKS
    form: str = "PLAIN"  # the paper: PLAIN, CHECKS, LABELS ...
    length: int = 66  # lines per page
    width: int = 80  # characters per line
    init: bytes = b""  # extra initialization bytes an intelligent driver sends


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


@dataclass(frozen=True, slots=True)
class ServerConfig:
    name: str
    spools: tuple[Path, ...] = ()
    password_hash: str | None = None
    night: tuple[int, int] = (0, 6)  # start hour, end hour (local time), end exclusive
    scan_interval: float = 1.0  # seconds between names-only scans of new/
    lease: float = 30.0  # seconds: lock and job lease length
    operators: tuple[str, ...] = ("root",)


@dataclass(frozen=True, slots=True)
class Config:
    server: ServerConfig
    printers: dict[str, PrinterConfig] = field(default_factory=dict)
    setups: dict[str, SetupConfig] = field(default_factory=dict)
    default_printer: str | None = None
    etc: Path = Path("etc")

    @property
    def classes(self) -> dict[str, tuple[str, ...]]:
        """Class name -> member printer names, in configuration order."""
        out: dict[str, list[str]] = {}
        for printer in self.printers.values():
            for cls in printer.classes:
                out.setdefault(cls, []).append(printer.name)
        return {k: tuple(v) for k, v in out.items()}
