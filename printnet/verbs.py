"""The job verbs: every change of a job's state and every way a job ends.

Owns the ops that move a job between states (`hold`, `release`, `requeue`,
`restart`, `start`, `note`, `move`, `top`) and the endings that take it out of
the master file (`cancel`, `expire`, `settle` of a printer's result, which may be
a forward to another site: outcome ``forwarded``, `remove_done`).  Whoever
changes a job, the server's cycle, a station's control request, the policy
(HELDEXPIRY, quotas) or the operator's console, asks this module;
`masterfile.MasterState.apply` then checks the transition (`model.TRANSITIONS`).

An ending is a `Change`: the op that removes the job, plus the job's done/
record and accounting line (`Ending`).  The records are written *before*
the commit that removes the job (`write_endings`, under the master lock): a
crash in between leaves a done/ record that recovery honours instead of
printing the job again.

Everything but `write_endings` is pure: "now" is a parameter.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from printnet.links import parse_failover
from printnet.masterfile import (
    RESTARTED_NOTE,
    Job,
    Op,
    op_note,
    op_remove,
    op_set,
    op_state,
)
from printnet.model import JobState, iso
from printnet.spool import records

if TYPE_CHECKING:
    from printnet.spool.layout import Spool
    from printnet.worker import Result

FORWARDED: Final = "forwarded"  # the outcome of a job another site took (docs/SITES.md)
OPERATOR: Final = "the operator"  # who cancels or holds from the console
HELD_BY_OPERATOR: Final = "held by the operator"


@dataclass(frozen=True, slots=True)
class Ending:
    """How a job left the master file: its done/ record (and so its accounting line).

    `once`: when its done/ record exists already (a commit that failed left it,
    with its accounting line), nothing is written again.
    """

    job_id: str
    record: dict[str, Any]
    once: bool = True

    @property
    def line(self) -> dict[str, Any]:
        return records.accounting_line(self.record)


@dataclass
class Change:
    """Ops for one commit, and the endings to write before it."""

    ops: list[Op] = field(default_factory=list)
    endings: list[Ending] = field(default_factory=list)

    def add(self, other: Change) -> None:
        self.ops += other.ops
        self.endings += other.endings

    @property
    def ended(self) -> list[str]:
        """Ids of the jobs this change removes."""
        return [op.id for op in self.ops if op.kind == "remove"]


# ---------------------------------------------------------------------------
# Changes of state


def hold(job: Job, note: str, at: datetime, *, token_was: str | None = None,
         restarted: bool = False) -> Op:
    """Hold `job` with `note`, stamped `at` (HELDEXPIRY counts from it).

    `token_was`: a printing job handed back held (printer trouble, policy HOLD)
    is fenced by its holder's token; `restarted`: it was sent again after a
    lost connection before it was held (a reprint)."""
    extra: dict[str, Any] = {"at": iso(at)}
    if restarted:
        extra["restarted"] = True
    if token_was is not None:
        extra["token_was"] = token_was
    return op_state(job.id, JobState.HELD, note, **extra)


def release(job: Job) -> Op:
    """A held job waits in its queue again."""
    return op_state(job.id, JobState.PENDING, "")


def requeue(job: Job, note: str = "", *, restarted: bool = False,
            token_was: str | None = None) -> Op:
    """A printing job goes back to pending (handed back, or interrupted: `restarted`)."""
    extra: dict[str, Any] = {}
    if restarted:
        extra["restarted"] = True
    if token_was is not None:
        extra["token_was"] = token_was
    return op_state(job.id, JobState.PENDING, note, **extra)


def restart(job: Job) -> Op:
    """A printing job whose holder failed (lease gone, or our own previous life)."""
    return requeue(job, RESTARTED_NOTE, restarted=True, token_was=job.token)


def hand_back(job: Job) -> Op:
    """A job claimed by a holder that failed before its printer started it: pending
    again, not a restart (nothing was sent; `server.started` says so)."""
    return requeue(job, "", token_was=job.token)


def start(job_id: str, printer: str, *, holder: str, token: str, note: str = "") -> Op:
    """The scheduler's assignment: `printer` of server `holder` (lease `token`) prints it.

    `note`: kept through the assignment (a failover note: its done record says so)."""
    return op_state(job_id, JobState.PRINTING, note, holder=holder, token=token,
                    assigned=printer)


def note(job_id: str, text: str) -> Op:
    """Why a job waits (e.g. ``Needs CHECKS``); its state stays."""
    return op_note(job_id, text)


def move(job: Job, destination: str) -> Op:
    """Queue a pending or held job for another printer or class."""
    return op_set(job.id, destination=destination)


def fail_over(job: Job, printer: str, note_text: str) -> list[Op]:
    """LINKDOWN=LOCAL: a job waiting for a remote printer whose link is down goes to
    the local `printer`; `note_text` (`links.failover_note`) says from where, and is
    how it finds its way back (`fail_back`) and into its done record (`settle`)."""
    return [op_set(job.id, destination=printer), op_note(job.id, note_text)]


def fail_back(job: Job, printer: str) -> list[Op]:
    """The link is back: a failed-over job not yet started returns to its remote
    `printer`."""
    return [op_set(job.id, destination=printer), op_note(job.id, "")]


def top(job: Job, rank: int) -> Op:
    """Put a job at `rank` within its priority (lower prints first)."""
    return op_set(job.id, rank=rank)


# ---------------------------------------------------------------------------
# Endings


def cancel(job: Job, *, by: str, at: datetime, server: str,
           request: Mapping[str, Any] | None = None) -> Change:
    """Cancel `job` (by its user, an operator, or `OPERATOR` at the console).

    A canceled job is charged no pages (`quota.UsageBook` reads the outcome);
    `request` (the request file, without its password) is kept in the record
    so that the console can reprint it."""
    return _ending(job, reason=f"canceled by {by}", at=at, server=server, request=request)


def expire(job: Job, *, reason: str, at: datetime, server: str) -> Change:
    """Cancel a job held longer than HELDEXPIRY (`quota.expiry_reason`)."""
    return _ending(job, reason=reason, at=at, server=server, request=None)


def _ending(job: Job, *, reason: str, at: datetime, server: str,
            request: Mapping[str, Any] | None) -> Change:
    record = records.done_record(
        replace(job), outcome=JobState.CANCELED.value, reason=reason, pages=0, sheets=0,
        size=0, started=None, finished=at, request=request, server=server)
    return Change([op_remove(job.id)], [Ending(job.id, record)])


def settle(job: Job, result: Result, *, server: str) -> Change:
    """A printer's result for `job` (the master file's current entry).

    Completed, forwarded (completed with `Result.forwarded`: outcome ``forwarded``,
    the remote site and its job id in the record) or aborted: the job ends (done
    record, accounting line, removal fenced by the holder's token).  Held (printer
    trouble, policy HOLD): held with the reason.  Pending: handed back (assigned
    ahead and not started, or interrupted: then counted as a restart)."""
    token = result.assignment.token
    if result.outcome in (JobState.COMPLETED, JobState.ABORTED):
        done = replace(job)
        done.setup = result.setup or done.setup
        done.restarted += result.reprints  # started again after a connection loss
        outcome = result.outcome.value
        reason = result.reason
        if result.outcome is JobState.COMPLETED and result.forwarded is not None:
            # Forwarded: another site has it durably and prints it (docs/SITES.md).
            outcome = FORWARDED
            reason = forwarded_note(result.forwarded)
        record = records.done_record(
            done, outcome=outcome, reason=reason, pages=result.pages,
            sheets=result.sheets, size=result.size, started=result.started,
            finished=result.finished, request=result.request, server=server)
        if outcome == FORWARDED:
            record["forwarded"] = dict(result.forwarded or {})
        moved = parse_failover(job.note)
        if moved is not None:  # LINKDOWN=LOCAL printed it here, not at the remote
            record["failover"] = {"from": moved[0], "to": moved[1], "note": job.note}
        # A completion overwrites an earlier record (`records.write_done`): no `once`.
        return Change([op_remove(job.id, token_was=token)],
                      [Ending(job.id, record, once=False)])
    if result.outcome is JobState.HELD:
        return Change([hold(job, result.reason, result.finished, token_was=token,
                            restarted=result.reprints > 0)])
    return Change([requeue(job, result.reason, restarted=result.interrupted,
                           token_was=token)])


def forwarded_note(where: Mapping[str, Any]) -> str:
    """The done record's reason for a forwarded job: where it went, its id there."""
    remote = where.get("ipp_job_id") or where.get("job") or ""
    return f"forwarded to {where.get('printer', '')} at {where.get('to', '')} as {remote}"


def remove_done(job: Job) -> Op:
    """A job whose done/ record exists leaves the master file (its holder died after
    printing it, before its commit): it is not printed again."""
    return op_remove(job.id, token_was=job.token)


# ---------------------------------------------------------------------------
# The shell's part


def write_endings(spool: Spool, endings: Iterable[Ending], *, sync: bool = True) -> list[Path]:
    """Publish the endings' done/ records, then their accounting lines in one append.

    Call under the master lock, before the commit that removes the jobs.  With
    sync=False the caller makes the returned paths and the accounting file
    durable (`records.make_durable`) before that commit.
    """
    todo = [e for e in endings
            if not (e.once and (spool.done / f"{e.job_id}.json").exists())]
    if not todo:
        return []
    # Each record's data is durable before its name; all of them in one pass
    # (`records.write_done_batch`), not one fsync per job.
    paths = records.write_done_batch(spool, [(e.job_id, e.record) for e in todo])
    records.append_lines(spool.accounting, [e.line for e in todo], sync=False)
    paths.append(spool.accounting)
    if sync:
        records.make_durable(spool, paths)
    return paths
