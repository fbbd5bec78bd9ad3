"""Following a job forwarded to another site, for ``printnet status`` at the branch
(docs/SITES.md): its state there and its position in that site's queue.

`follow(where)` takes the ``forwarded`` object of the branch's done record: over
``spool:`` it reads the central spool's master file and records
(`printers.spool_port.follow`); over IPP it asks the central gateway
(Get-Job-Attributes; Get-Jobs, not-completed, in queue order, for the position).
A site that cannot be reached says so in the note; it never fails the status.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from printnet.errors import PortError, PrintnetError
from printnet.ipp.codec import Attribute
from printnet.ipp.enums import GroupTag, JobState, Operation, Tag
from printnet.printers import ipp_port
from printnet.printers.ipp_port import IppClient


def follow(where: Mapping[str, Any]) -> dict[str, Any]:
    """A forwarded job's state at the site it went to."""
    to = str(where.get("to") or "")
    if to.startswith("spool:"):
        from printnet.printers.spool_port import follow as follow_spool

        return follow_spool(f"{to}?printer={where.get('printer', '')}",
                            str(where.get("job", "")))
    uri, ipp_id = where.get("uri"), where.get("ipp_job_id")
    if isinstance(uri, str) and isinstance(ipp_id, int):
        return dict(follow_ipp(uri, ipp_id))
    return {"state": "unknown", "note": "no way to follow it"}


_STATE_WORDS: Final = {JobState.PENDING: "pending", JobState.PENDING_HELD: "held",
                       JobState.PROCESSING: "printing",
                       JobState.PROCESSING_STOPPED: "printing (stopped)",
                       JobState.CANCELED: "canceled", JobState.ABORTED: "aborted",
                       JobState.COMPLETED: "completed"}


def follow_ipp(uri: str, job_id: int, *, timeout: float = 3.0) -> dict[str, object]:
    """Where a job forwarded to a printnet gateway is now (``printnet status`` at the
    branch): its state and note there (Get-Job-Attributes) and, while it waits, its
    position in that printer's queue (Get-Jobs, not-completed, in queue order)."""
    try:
        client = IppClient(ipp_port.parse_target(uri), timeout=timeout, label="status")
    except PortError as exc:
        return {"state": "unknown", "note": str(exc)}
    try:
        js = client.job_status(job_id)
        out: dict[str, object] = {
            "state": next((w for k, w in _STATE_WORDS.items() if k == js.state),
                          str(js.state)),
            "note": js.message}
        if js.state in (JobState.PENDING, JobState.PENDING_HELD, JobState.PROCESSING):
            answer = client.checked(Operation.GET_JOBS, [
                Attribute.of("which-jobs", Tag.KEYWORD, "not-completed"),
                Attribute.of("requested-attributes", Tag.KEYWORD, "job-id")])
            ids = [_job_id(g.get("job-id")) for g in answer.groups_of(GroupTag.JOB)]
            if job_id in ids:
                out["position"], out["of"] = ids.index(job_id) + 1, len(ids)
        return out
    except PrintnetError as exc:
        return {"state": "unknown", "note": f"the central site does not answer: {exc}"}
    finally:
        client.close()


def _job_id(a: Attribute | None) -> int:
    return a.value if a is not None and isinstance(a.value, int) else 0
