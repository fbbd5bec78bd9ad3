"""IPP's view of printnet jobs: integer job ids, states and state reasons.

**Job ids.**  IPP job-ids are integers (1..2**31-1); printnet's are 18
characters that no gateway chooses.  A job's IPP id is derived from its
printnet id (the first 31 bits of its sha256), so every gateway serving a
spool gives a job the same IPP id without sharing any state, and a restarted
gateway still knows it.  `JobIndex` maps back: the jobs this gateway
submitted, then the master file, new/ and done/, re-listed on a miss.  A
collision of two live ids (about one in 200,000 for 1,000 jobs) makes the
newer job unreachable by IPP id; it still prints.  A Create-Job job has no
printnet id until its last document arrives: it gets a random IPP id, which
this gateway remembers (`alias`) for the rest of its life.

**States** (`ipp_state`), from the master file and done/:

=============  ==================  ==========================================
printnet       IPP job-state       job-state-reasons
=============  ==================  ==========================================
(Create-Job)   pending (3)         job-incoming
pending        pending (3)         job-queued; + resources-are-not-ready when
                                   the note is "Needs <SETUP>" (the message
                                   says which setup)
held           pending-held (4)    job-hold-until-specified (quota and limit
                                   holds: job-held-for-review)
printing       processing (5)      job-printing
completed      completed (9)       job-completed-successfully
canceled       canceled (7)        job-canceled-by-user
aborted        aborted (8)         aborted-by-system
rejected       aborted (8)         aborted-by-system (the message: the reason)
=============  ==================  ==========================================

The note (``Needs CHECKS``, quota notes, rejection reasons) is the
job-state-message, which clients show beside the state.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from printnet.ipp.enums import JobState
from printnet.model import valid_job_id
from printnet.spool import master as master_io
from printnet.spool.layout import REQ_SUFFIX, Spool
from printnet.spool.publish import read_bytes

REFRESH: Final = 1.0  # seconds between re-listings of the spool on an unknown id


def ipp_job_id(job_id: str) -> int:
    """The IPP job-id of a printnet job id (stable across gateways)."""
    n = int.from_bytes(hashlib.sha256(job_id.encode()).digest()[:4], "big") & 0x7FFFFFFF
    return n or 1


@dataclass(frozen=True)
class IppState:
    state: JobState
    reasons: tuple[str, ...]
    message: str


def ipp_state(job: dict[str, Any]) -> IppState:
    """IPP state, reasons and message of a job as `printnet status --json` shows it."""
    state = str(job.get("state", ""))
    note = str(job.get("note", "") or "")
    if state == "pending":
        reasons: tuple[str, ...] = ("job-queued",)
        if note.startswith(("Needs ", "waiting for link to ")):
            reasons = ("job-queued", "resources-are-not-ready")
        return IppState(JobState.PENDING, reasons, note or "queued")
    if state == "incoming":
        return IppState(JobState.PENDING, ("job-incoming",), "waiting for documents")
    if state == "held":
        policy = note.startswith(("Quota exceeded", "Over limit"))
        return IppState(JobState.PENDING_HELD,
                        ("job-held-for-review",) if policy else ("job-hold-until-specified",),
                        note or "held")
    if state == "printing":
        return IppState(JobState.PROCESSING, ("job-printing",), note or "printing")
    if state in ("completed", "forwarded"):  # forwarded: another site prints it
        return IppState(JobState.COMPLETED, ("job-completed-successfully",), note or state)
    if state == "canceled":
        return IppState(JobState.CANCELED, ("job-canceled-by-user",), note or "canceled")
    return IppState(JobState.ABORTED, ("aborted-by-system",), note or state or "aborted")


def terminal(job: dict[str, Any]) -> bool:
    return str(job.get("state")) in ("completed", "forwarded", "canceled", "aborted",
                                     "rejected")


def epoch(text: str | None) -> int | None:
    """Seconds since the epoch of an ISO time stamp (None if absent or bad)."""
    if not text:
        return None
    try:
        return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return None


def as_datetime(seconds: int | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


class JobIndex:
    """IPP job-id -> printnet job id, for one spool (thread-safe)."""

    def __init__(self, spool: Spool) -> None:
        self.spool = spool
        self._ids: dict[int, str] = {}
        self._aliases: dict[str, int] = {}  # printnet id -> Create-Job's IPP id
        self._lock = threading.Lock()
        self._listed = 0.0

    def add(self, job_id: str, ipp_id: int | None = None) -> int:
        n = ipp_id if ipp_id is not None else ipp_job_id(job_id)
        with self._lock:
            self._ids[n] = job_id
            if ipp_id is not None:
                self._aliases[job_id] = ipp_id
        return n

    def ipp_id(self, job_id: str) -> int:
        """The IPP id this gateway shows for `job_id` (a Create-Job alias, else derived)."""
        with self._lock:
            alias = self._aliases.get(job_id)
        return alias if alias is not None else ipp_job_id(job_id)

    def lookup(self, ipp_id: int) -> str | None:
        with self._lock:
            hit = self._ids.get(ipp_id)
        if hit is not None:
            return hit
        now = time.monotonic()
        with self._lock:
            if now - self._listed < REFRESH:
                return None
            self._listed = now
        found = {ipp_job_id(i): i for i in self._all_ids()}
        with self._lock:
            for n, i in found.items():
                self._ids.setdefault(n, i)
            return self._ids.get(ipp_id)

    def _all_ids(self) -> list[str]:
        ids = list(master_io.load(self.spool).jobs)
        for folder, suffix in ((self.spool.new, REQ_SUFFIX), (self.spool.done, ".json"),
                               (self.spool.rejected, REQ_SUFFIX)):
            try:
                names = os.listdir(folder)
            except OSError:
                continue
            ids.extend(n[:-len(suffix)] for n in names
                       if n.endswith(suffix) and valid_job_id(n[:-len(suffix)]))
        return ids


def done_record(spool: Spool, job_id: str) -> dict[str, Any] | None:
    """done/<id>.json of a finished print job (None if absent or not a job)."""
    try:
        record = json.loads(read_bytes(spool.done / f"{job_id}.json", 1 << 20))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or not isinstance(record.get("job"), dict):
        return None
    return record
