"""The attributes the IPP door answers with: a printer's and a job's.

Printer attributes come from etc/ (printers, setups, limits) and the servers'
status files (state, reasons, the mounted setup, the current job).  Media
names are PWG self-describing names made from a setup: ``custom_<setup>_
<W>x<L>in`` with W = WIDTH / 10 characters per inch and L = LENGTH / 6 lines
per inch (a STANDARD 80 x 66 setup is ``custom_standard_8x11in``), so
`media-ready` says what is mounted and `media` selects a setup.

`operations-supported` lists exactly what `printnet.gateway.ipp_door`
implements; docs/GATEWAY.md says why the rest is not there.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from printnet.config import Config, SetupConfig
from printnet.gateway.jobs import as_datetime, epoch, ipp_state
from printnet.ipp.codec import Attribute
from printnet.ipp.enums import Operation, PrinterState, Tag
from printnet.model import MAX_COPIES

OPERATIONS: Final = (
    Operation.PRINT_JOB, Operation.VALIDATE_JOB, Operation.CREATE_JOB,
    Operation.SEND_DOCUMENT, Operation.CANCEL_JOB, Operation.GET_JOB_ATTRIBUTES,
    Operation.GET_JOBS, Operation.GET_PRINTER_ATTRIBUTES, Operation.HOLD_JOB,
    Operation.RELEASE_JOB,
)
MULTIPLE_OPERATION_TIMEOUT: Final = 300  # seconds a Create-Job waits for its last document
HOLD_VALUES: Final = ("no-hold", "indefinite", "night")
PRIORITY_LEVELS: Final = 3  # high, standard, overnight
JOB_TEMPLATE: Final = frozenset({
    "copies", "finishings", "job-hold-until", "job-priority", "job-sheets", "media",
    "multiple-document-handling", "number-up", "orientation-requested", "output-bin",
    "print-quality", "printer-resolution", "sides", "printnet-setup", "printnet-job-id",
})
JOB_DEFAULT_ATTRS: Final = ("job-id", "job-uri")  # Get-Jobs without requested-attributes


def media_name(setup: SetupConfig) -> str:
    """A setup's PWG self-describing media name (``custom_checks_13.2x11in``)."""
    name = re.sub(r"[^a-z0-9-]", "-", setup.name.lower()).strip("-") or "form"
    if not name[0].isalnum():
        name = "x" + name
    return f"custom_{name}_{_inches(setup.width / 10)}x{_inches(setup.length / 6)}in"


def _inches(value: float) -> str:
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return text if text not in ("", "0") else "0.001"


def setup_of_media(config: Config | None, media: str) -> str | None:
    """The setup a `media` keyword names (its media name, or the setup's own name)."""
    if config is None:
        return None
    for setup in config.setups.values():
        if media in (media_name(setup), setup.name.lower(), setup.name):
            return setup.name
    return None


@dataclass
class PrinterFacts:
    """What one printer (or class) is, for its attributes."""

    name: str
    uris: Sequence[str]  # printer-uri-supported
    security: Sequence[str]
    authentication: Sequence[str]
    more_info: str
    formats: Sequence[str]
    status: list[dict[str, Any]]  # its entries in the servers' status files
    members: Sequence[str]  # a class's printers; () for a printer
    queued: int
    needs: Sequence[str]  # setups that queued jobs wait for ("Needs CHECKS")
    config: Config | None
    password: bool
    up_since: int


def printer_attributes(f: PrinterFacts, now: datetime) -> list[Attribute]:
    a = Attribute.of
    cfg = f.config
    pc = cfg.printers.get(f.name) if cfg else None
    if pc is None and cfg is not None and f.members:
        pc = cfg.printers.get(f.members[0])
    setups = list(cfg.setups.values()) if cfg else [SetupConfig("STANDARD")]
    default_setup = (cfg.setups.get(pc.setup) if cfg and pc else None) or setups[0]
    mounted = [s for s in (_setup(cfg, e.get("setup")) for e in f.status) if s is not None]
    state, reasons, message = printer_state(f)
    accepting = all(e.get("accepting", True) is not False and not (
        isinstance(e.get("link"), dict) and e["link"].get("reject_reason"))
        for e in f.status) and (pc is None or pc.accepting)
    max_copies = pc.max_copies if pc and pc.max_copies else MAX_COPIES
    baud = pc.baud if pc else 9600
    ppm = max(1, int(baud / 10 * 60 / (default_setup.width * default_setup.length)))
    info = f"printnet {'class' if f.members else 'printer'} {f.name}"
    if f.members:
        info += " (" + ", ".join(f.members) + ")"
    servers = sorted({str(e.get("server")) for e in f.status if e.get("server")})
    attrs = [
        a("printer-uri-supported", Tag.URI, *f.uris),
        a("uri-security-supported", Tag.KEYWORD, *f.security),
        a("uri-authentication-supported", Tag.KEYWORD, *f.authentication),
        a("printer-name", Tag.NAME, f.name),
        a("printer-info", Tag.TEXT, info[:127]),
        a("printer-location", Tag.TEXT, ("served by " + ", ".join(servers))[:127]
          if servers else "no server has reported it yet"),
        a("printer-make-and-model", Tag.TEXT,
          f"printnet {pc.driver.value.upper() if pc else 'PLAIN'} line printer"),
        a("printer-more-info", Tag.URI, f.more_info),
        a("printer-state", Tag.ENUM, int(state)),
        a("printer-state-reasons", Tag.KEYWORD, *reasons),
        a("printer-state-message", Tag.TEXT, message[:1023]),
        a("printer-is-accepting-jobs", Tag.BOOLEAN, accepting),
        a("queued-job-count", Tag.INTEGER, f.queued),
        a("printer-up-time", Tag.INTEGER, max(1, int(now.timestamp()))),
        a("printer-current-time", Tag.DATE_TIME, now.astimezone(UTC)),
        a("printer-state-change-time", Tag.INTEGER, f.up_since),
        a("ipp-versions-supported", Tag.KEYWORD, "1.0", "1.1", "2.0"),
        a("operations-supported", Tag.ENUM, *(int(o) for o in OPERATIONS)),
        a("charset-configured", Tag.CHARSET, "utf-8"),
        a("charset-supported", Tag.CHARSET, "utf-8", "us-ascii"),
        a("natural-language-configured", Tag.NATURAL_LANGUAGE, "en"),
        a("generated-natural-language-supported", Tag.NATURAL_LANGUAGE, "en"),
        a("document-format-default", Tag.MIME_MEDIA_TYPE, "application/octet-stream"),
        a("document-format-supported", Tag.MIME_MEDIA_TYPE, *sorted(f.formats)),
        a("pdl-override-supported", Tag.KEYWORD, "not-attempted"),
        a("compression-supported", Tag.KEYWORD, "none"),
        a("multiple-document-jobs-supported", Tag.BOOLEAN, True),
        a("multiple-operation-time-out", Tag.INTEGER, MULTIPLE_OPERATION_TIMEOUT),
        a("multiple-operation-time-out-action", Tag.KEYWORD, "abort-job"),
        a("job-k-octets-supported", Tag.RANGE_OF_INTEGER,
          (0, min(2**31 - 1, (pc.max_bytes // 1024) if pc and pc.max_bytes else 2**31 - 1))),
        a("color-supported", Tag.BOOLEAN, False),
        a("pages-per-minute", Tag.INTEGER, ppm),
        a("copies-default", Tag.INTEGER, 1),
        a("copies-supported", Tag.RANGE_OF_INTEGER, (1, max_copies)),
        a("finishings-default", Tag.ENUM, 3),
        a("finishings-supported", Tag.ENUM, 3),
        a("job-hold-until-default", Tag.KEYWORD, "no-hold"),
        a("job-hold-until-supported", Tag.KEYWORD, *HOLD_VALUES),
        a("job-priority-default", Tag.INTEGER, 50),
        a("job-priority-supported", Tag.INTEGER, PRIORITY_LEVELS),
        a("job-sheets-default", Tag.KEYWORD,
          "standard" if pc is None or pc.header_pages else "none"),
        a("job-sheets-supported", Tag.KEYWORD, "none", "standard"),
        a("media-default", Tag.KEYWORD, media_name(default_setup)),
        a("media-supported", Tag.KEYWORD, *dict.fromkeys(media_name(s) for s in setups)),
        a("orientation-requested-default", Tag.ENUM, 3),
        a("orientation-requested-supported", Tag.ENUM, 3),
        a("output-bin-default", Tag.KEYWORD, "top"),
        a("output-bin-supported", Tag.KEYWORD, "top"),
        a("print-quality-default", Tag.ENUM, 4),
        a("print-quality-supported", Tag.ENUM, 4),
        a("printer-resolution-default", Tag.RESOLUTION, (72, 72, 3)),
        a("printer-resolution-supported", Tag.RESOLUTION, (72, 72, 3)),
        a("sides-default", Tag.KEYWORD, "one-sided"),
        a("sides-supported", Tag.KEYWORD, "one-sided"),
        a("number-up-default", Tag.INTEGER, 1),
        a("number-up-supported", Tag.INTEGER, 1),
        a("which-jobs-supported", Tag.KEYWORD, "completed", "not-completed", "all"),
        a("job-ids-supported", Tag.BOOLEAN, False),
        a("printnet-setup-default", Tag.NAME, default_setup.name),
        a("printnet-setup-supported", Tag.NAME, *(s.name for s in setups)),
        # A printnet gateway: a Print-Job with printnet-job-id is published put-if-absent
        # on that id (forwarding between sites, printnet.spool.forward).
        a("printnet-job-id-supported", Tag.BOOLEAN, True),
        a("job-creation-attributes-supported", Tag.KEYWORD, *sorted(JOB_TEMPLATE)),
    ]
    if mounted:
        attrs.append(a("media-ready", Tag.KEYWORD, *dict.fromkeys(media_name(s)
                                                                  for s in mounted)))
        attrs.append(a("printnet-setup-ready", Tag.NAME, *dict.fromkeys(s.name
                                                                       for s in mounted)))
    if f.password:
        attrs.append(a("job-password-supported", Tag.INTEGER, 255))
        attrs.append(a("job-password-encryption-supported", Tag.KEYWORD, "none"))
    if f.members:
        attrs.append(a("member-names", Tag.NAME, *f.members))
    return attrs


def _setup(cfg: Config | None, name: object) -> SetupConfig | None:
    if not isinstance(name, str) or not name:
        return None
    if cfg is not None and name in cfg.setups:
        return cfg.setups[name]
    return SetupConfig(name)


def printer_state(f: PrinterFacts) -> tuple[PrinterState, list[str], str]:
    """printer-state, -state-reasons and -state-message of a printer or class."""
    states = [str(e.get("state")) for e in f.status]
    texts = [str(r) for e in f.status for r in (e.get("reasons") or []) if r]
    reasons: list[str] = []
    if not states:
        state = PrinterState.STOPPED
        reasons.append("shutdown")
        texts.append("no server has reported this printer yet: jobs wait in the spool")
    elif "printing" in states:
        state = PrinterState.PROCESSING
    elif "idle" in states:
        state = PrinterState.IDLE
    else:
        state = PrinterState.STOPPED
    if "offline" in states:
        reasons.append("offline-report")
    if "stopped" in states:
        reasons.append("paused")
    if "unknown" in states:
        reasons.append("shutdown")
    if any(isinstance(e.get("link"), dict) and e["link"].get("state") == "down"
           for e in f.status):
        reasons.append("connecting-to-device")  # a remote printer's link is down
    if f.needs:
        reasons.append("media-needed")
        texts.append("Needs " + ", ".join(f.needs))
    return state, reasons or ["none"], "; ".join(dict.fromkeys(texts)) or states[0]


def job_attributes(job: dict[str, Any], *, ipp_id: int, job_uri: str, printer_uri: str,
                   more_info: str, config: Config | None, now: datetime,
                   started: str | None = None, finished: str | None = None,
                   documents: int = 1) -> list[Attribute]:
    """Every job attribute of a job (`printnet status --json` form, or a done record's)."""
    a = Attribute.of
    st = ipp_state(job)
    created = epoch(str(job.get("submitted") or "")) or int(now.timestamp())
    t_start = epoch(started)
    t_done = epoch(finished)
    if t_done is None and st.state >= 7:
        t_done = created
    pages = int(job.get("pages") or 0)
    copies = int(job.get("copies") or 1)
    size = int(job.get("size") or 0)
    setup = str(job.get("setup") or "")
    printer = str(job.get("assigned") or job.get("printer") or "")
    priority = {"high": 100, "standard": 50, "overnight": 1}.get(str(job.get("priority")), 50)
    hold = "indefinite" if job.get("state") == "held" else (
        "night" if job.get("priority") == "overnight" else "no-hold")
    position = int(job.get("position") or 0)

    def opt_int(name: str, value: int | None) -> Attribute:
        return a(name, Tag.NO_VALUE) if value is None else a(name, Tag.INTEGER, value)

    def opt_date(name: str, value: int | None) -> Attribute:
        when = as_datetime(value)
        return a(name, Tag.NO_VALUE) if when is None else a(name, Tag.DATE_TIME, when)

    attrs = [
        a("job-id", Tag.INTEGER, ipp_id),
        a("job-uri", Tag.URI, job_uri),
        a("job-printer-uri", Tag.URI, printer_uri),
        a("job-more-info", Tag.URI, more_info),
        a("job-name", Tag.NAME, str(job.get("title") or job.get("id") or "")[:255]),
        a("job-originating-user-name", Tag.NAME, str(job.get("user") or "")),
        a("job-originating-host-name", Tag.NAME, str(job.get("station") or "")),
        a("job-state", Tag.ENUM, int(st.state)),
        a("job-state-reasons", Tag.KEYWORD, *st.reasons),
        a("job-state-message", Tag.TEXT, st.message[:1023]),
        a("number-of-documents", Tag.INTEGER, documents),
        a("time-at-creation", Tag.INTEGER, created),
        opt_int("time-at-processing", t_start),
        opt_int("time-at-completed", t_done),
        a("job-printer-up-time", Tag.INTEGER, max(1, int(now.timestamp()))),
        a("date-time-at-creation", Tag.DATE_TIME, as_datetime(created)),
        opt_date("date-time-at-processing", t_start),
        opt_date("date-time-at-completed", t_done),
        a("job-k-octets", Tag.INTEGER, (size + 1023) // 1024),
        a("job-impressions", Tag.INTEGER, pages) if pages else a("job-impressions",
                                                                  Tag.NO_VALUE),
        a("job-media-sheets", Tag.INTEGER, pages) if pages else a("job-media-sheets",
                                                                   Tag.NO_VALUE),
        a("job-impressions-completed", Tag.INTEGER, pages if st.state == 9 else 0),
        a("job-media-sheets-completed", Tag.INTEGER, pages if st.state == 9 else 0),
        a("job-k-octets-processed", Tag.INTEGER, (size + 1023) // 1024 if st.state == 9 else 0),
        a("copies", Tag.INTEGER, copies),
        a("job-priority", Tag.INTEGER, priority),
        a("job-hold-until", Tag.KEYWORD, hold),
        a("job-sheets", Tag.KEYWORD, "standard" if job.get("header", True) else "none"),
        a("printnet-id", Tag.NAME, str(job.get("id") or "")),
        a("printnet-priority", Tag.KEYWORD, str(job.get("priority") or "standard")),
    ]
    if position > 0 and st.state < 5:
        attrs.append(a("number-of-intervening-jobs", Tag.INTEGER, position - 1))
    if printer:
        attrs.append(a("output-device-assigned", Tag.NAME, printer))
    if setup:
        attrs.append(a("printnet-setup", Tag.NAME, setup))
        if config is not None and setup in config.setups:
            attrs.append(a("media", Tag.KEYWORD, media_name(config.setups[setup])))
    if job.get("via"):
        attrs.append(a("printnet-via", Tag.NAME, str(job["via"])))
    return attrs


def select(attrs: Iterable[Attribute], requested: Sequence[str] | None,
           default: Sequence[str] = ("all",)) -> list[Attribute]:
    """The attributes requested-attributes names: names, `all`, and the groups
    `job-template`, `printer-description` and `job-description`."""
    wanted = set(requested or default)
    if "all" in wanted:
        return list(attrs)
    template = "job-template" in wanted
    description = bool(wanted & {"printer-description", "job-description"})
    out = []
    for x in attrs:
        t = _is_template(x.name)
        if x.name in wanted or (template and t) or (description and not t):
            out.append(x)
    return out


def _is_template(name: str) -> bool:
    base = name.removesuffix("-default").removesuffix("-supported").removesuffix("-ready")
    return base in JOB_TEMPLATE
