"""I/O: the ``spool:`` printer port: forward a job into another site's spool.

``PORT=spool:/mnt/central/spool?printer=HQLASER`` (the "file-transfer device"
of the original design): a second shared disk, mounted from the central
network, that holds the central site's printnet spool.  A job printed on such a
printer is not rendered here: its request (same id, user, station, submitted
time, priority, copies, title, setup, header; the printer is ``printer=``) and
its files (the bytes the user submitted, opened here if they were sealed) go
through `printnet.spool.forward.receive` into the central spool's ``new/``,
durably and put-if-absent on the id.  The branch records the job forwarded
(`Forwarded`, outcome ``forwarded``) only once that returned.

The central share gone (not mounted, renamed, unwritable, EIO, stale handle)
is `LinkDown`, a port error: the worker's printer-trouble handling retries it
(and the LINKDOWN modes decide, docs/SITES.md).  A bad URL is a plain
`PortError`.

`follow` reads where a forwarded job is now at central (its master file, its
done/ record, rejected/), for ``printnet status JOB`` at the branch.
"""

from __future__ import annotations

import errno
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qs, unquote

from printnet.errors import LinkDown, PortError, PrintnetError
from printnet.model import PrintRequest, normalize_name, valid_name
from printnet.spool.layout import REQ_SUFFIX, Spool

SCHEME: Final = "spool"


@dataclass(frozen=True, slots=True)
class SpoolTarget:
    root: Path
    printer: str
    url: str

    @property
    def site(self) -> str:
        return f"spool:{self.root}"


def parse_target(url: str) -> SpoolTarget:
    """``spool:/PATH?printer=NAME`` (``spool:///PATH`` too)."""
    text = url.strip()
    if not text.lower().startswith(SCHEME + ":"):
        raise PortError(f"{url}: not a spool:/PATH?printer=NAME URL")
    rest = text[len(SCHEME) + 1:]
    if rest.startswith("//"):
        rest = rest[2:]
    path, _, query = rest.partition("?")
    path = unquote(path)
    if not path.startswith("/"):
        raise PortError(f"{url}: the central spool must be an absolute path")
    try:
        options = parse_qs(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise PortError(f"{url}: malformed query (printer=NAME)") from None
    unknown = set(options) - {"printer"}
    if unknown:
        raise PortError(f"{url}: unknown option {sorted(unknown)[0]} (printer=NAME)")
    printers = [normalize_name(p) for p in options.get("printer", [])]
    if len(printers) != 1 or not valid_name(printers[0]):
        raise PortError(f"{url}: needs printer=NAME, the printer at the central site")
    return SpoolTarget(Path(path), printers[0], text)


def _link_down(target: SpoolTarget, label: str, exc: BaseException) -> LinkDown:
    detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return LinkDown(f"{label}: the central spool {target.root} cannot be reached ({detail})")


def open_target(target: SpoolTarget, label: str) -> Spool:
    """The central spool, checked reachable and writable; `LinkDown` otherwise."""
    try:
        spool = Spool.open(target.root)
        for folder in (spool.tmp, spool.new, spool.data):
            if not os.access(folder, os.W_OK | os.X_OK):
                raise OSError(errno.EACCES, f"{folder.name}/ is not writable")
    except PrintnetError as exc:
        raise _link_down(target, label, exc) from exc
    except OSError as exc:
        raise _link_down(target, label, exc) from exc
    return spool


def forward(url: str, request: PrintRequest, files: list[bytes], *, label: str,
            origin: str) -> str:
    """Publish the job in the central spool; its id there (the same id).

    Returns only once the central spool has it durably (new, or a resend of a job
    it had).  Raises `LinkDown` when the share cannot be reached or written."""
    from printnet.spool.forward import receive

    target = parse_target(url)
    spool = open_target(target, label)
    remote = PrintRequest(
        id=request.id, user=request.user, station=request.station,
        submitted=request.submitted, printer=target.printer, priority=request.priority,
        copies=request.copies, title=request.title, setup=request.setup,
        header=request.header, format=request.format, hold=False,
        encoding=request.encoding, via="spool:forward")
    names = [f.original or f.name for f in request.files]
    names += [f"document{i}" for i in range(len(names), len(files))]
    try:
        got = receive(spool, remote, list(zip(names, files, strict=False)), origin=origin)
    except (PrintnetError, OSError) as exc:
        raise _link_down(target, label, exc) from exc
    return got.job_id


def follow(url: str, job_id: str) -> dict[str, Any]:
    """Where a forwarded job is at central: state, note, position in its queue."""
    from printnet.spool.master import load

    target = parse_target(url)
    try:
        spool = Spool.open(target.root)
    except PrintnetError as exc:
        return {"state": "unknown", "note": f"central spool unreachable: {exc}"}
    done = spool.done / f"{job_id}.json"
    try:
        record = json.loads(done.read_bytes())
        return {"state": str(record.get("outcome", "completed")),
                "note": str(record.get("reason", ""))}
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as exc:
        return {"state": "unknown", "note": f"central done record unreadable: {exc}"}
    try:
        state = load(spool)
    except (PrintnetError, OSError) as exc:
        return {"state": "unknown", "note": f"central master file unreadable: {exc}"}
    job = state.get(job_id)
    if job is not None:
        ids = [j.id for j in state.queue(job.destination)]
        return {"state": job.state.value, "note": job.note, "printer": job.destination,
                "position": ids.index(job_id) + 1, "of": len(ids)}
    if (spool.new / (job_id + REQ_SUFFIX)).exists() or (
            spool.received / (job_id + REQ_SUFFIX)).exists():
        return {"state": "pending", "note": "arrived; not yet taken in at central"}
    reason = spool.rejected / (job_id + REQ_SUFFIX + ".reason")
    if reason.exists():
        try:
            text = reason.read_text(errors="replace").strip()
        except OSError:
            text = ""
        return {"state": "rejected", "note": text}
    return {"state": "unknown", "note": "not found at central"}

