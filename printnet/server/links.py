"""What a server does with the jobs of a remote printer whose link is down.

Owns `LinkView` (one remote printer of this server as the planner sees it:
its LINKDOWN= mode, down since when) and `plan_links`, which turns the links'
state into job changes, all through `printnet.verbs` (docs/SITES.md):

* LINKDOWN=QUEUE (and REJECT, for the jobs queued before): every pending job of
  the printer carries the note ``waiting for link to HQ since 10:02``; after
  LINKHOLD= of link down they are held (`links.link_hold_note`), each job once
  (an operator's release is not undone while the link stays down);
* LINKDOWN=LOCAL PRINTER=X: pending jobs of the printer move to X
  (`verbs.fail_over`, with a note that names both printers); once the link is
  up, failed-over jobs not yet started (pending or held) move back
  (`verbs.fail_back`);
* a link that is up clears the waiting notes left on its jobs.

Runs as part of the cycle's policy step (`cycle.plan_cycle`, under the master
lock), and unlocked to tell whether a cycle is due (`links_due`).  "now" is a
parameter; the walk is over the queues of the remote printers and their
failover printers only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from printnet import links, verbs
from printnet.masterfile import MasterState
from printnet.model import JobState
from printnet.settings import LinkMode


@dataclass(frozen=True, slots=True)
class LinkView:
    printer: str
    mode: LinkMode
    remote: str  # how notes name it
    down_since: datetime | None  # aware; None: the link is up
    failover: str | None = None  # LINKDOWN=LOCAL's PRINTER=
    hold_after: float | None = None  # LINKHOLD= in seconds


@dataclass
class LinkPlan:
    change: verbs.Change = field(default_factory=verbs.Change)
    held: list[tuple[str, str]] = field(default_factory=list)  # (job id, printer)
    moved: list[tuple[str, str, str]] = field(default_factory=list)  # (job, from, to)
    returned: list[tuple[str, str]] = field(default_factory=list)  # (job, printer)


def plan_links(state: MasterState, views: Sequence[LinkView], now: datetime,
               *, held_before: Iterable[str] = ()) -> LinkPlan:
    """The job changes the links' state asks for now (see the module docstring).

    `held_before`: jobs LINKHOLD held already during this outage (not held again)."""
    plan = LinkPlan()
    ops = plan.change.ops
    skip = set(held_before)
    for view in views:
        if view.down_since is None:
            for job in state.queue(view.printer):
                if job.state is JobState.PENDING and links.is_waiting(job.note):
                    ops.append(verbs.note(job.id, ""))
            if view.mode is LinkMode.LOCAL and view.failover:
                for job in list(state.queue(view.failover)):
                    moved = links.parse_failover(job.note)
                    if job.state in (JobState.PENDING, JobState.HELD) and moved is not None \
                            and moved == (view.printer, view.failover):
                        ops += verbs.fail_back(job, view.printer)
                        plan.returned.append((job.id, view.printer))
            continue
        since_local = view.down_since.astimezone()
        if view.mode is LinkMode.LOCAL and view.failover:
            note = links.failover_note(view.printer, view.failover, view.remote, since_local)
            for job in list(state.queue(view.printer)):
                if job.state is JobState.PENDING:
                    ops += verbs.fail_over(job, view.failover, note)
                    plan.moved.append((job.id, view.printer, view.failover))
            continue
        waiting = links.waiting_note(view.remote, since_local)
        hold = view.hold_after is not None \
            and (now - view.down_since).total_seconds() >= view.hold_after
        for job in state.queue(view.printer):
            if job.state is not JobState.PENDING:
                continue
            if hold and job.id not in skip:
                assert view.hold_after is not None
                ops.append(verbs.hold(job, links.link_hold_note(
                    view.remote, since_local, view.hold_after / 3600.0), now))
                plan.held.append((job.id, view.printer))
            elif job.note != waiting and (not job.note or links.is_waiting(job.note)
                                          or job.note.startswith("Printer ")):
                ops.append(verbs.note(job.id, waiting))
    return plan
