"""Pure core: page quotas, per-job limits and held-job expiry, as arithmetic.

Owns `QuotaRule` (one `QUOTA` line of server.cmd), the periods, the notes a
job is held with, and `UsageBook`: the pages users printed, as read from
``log/accounting.jsonl``.  The server glue (reading that file, counting a
job's pages, committing ops) is `printnet.spool.admission`.

Rules, in the words of docs/SECURITY.md:

* A quota limits the pages a user prints per **period**: the calendar day,
  the ISO week (Monday to Sunday) or the calendar month, on the server's
  local wall clock (on the day clocks change, a boundary can be off by the
  shift).  `QUOTA * ...` is everyone, `QUOTA alice ...` one user,
  `QUOTA @staff ...` the members of a Unix group.  With ``PRINTER=X`` only
  jobs sent to printer X by name count and are checked.
* **Usage** of a user in a period = the pages of their accounting lines
  whose ``finished`` time falls in the period (a canceled job's line counts
  no pages, whoever canceled it), plus the counted pages of
  their live jobs (any state) except those held by policy (quota or
  limit), minus nothing: a job is never counted twice (a live job whose
  accounting line is already written counts once, from the line).
* A new job whose pages would take usage over the limit is held with the
  note ``Quota exceeded: 120 of 100 pages this week`` (or rejected with it,
  ``ACTION=REJECT``).  An operator's release overrides; a held job that
  fits again (a new period began, or other jobs were canceled) is released
  by the server.
* **Per-job limits** of a printer (MAXPAGES, MAXBYTES, MAXFILE, MAXCOPIES)
  reject the request, or hold it with ``Over limit: ...`` when the printer
  says ``OVERLIMIT=HOLD``.  Only an operator releases such a job.
* **Held expiry**: a job held longer than HELDEXPIRY is canceled with a note.
  Held since = the time it entered `held` (the master file's ``held_at``),
  else its submission time.

This module imports no os/time: "now" is always a parameter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Final

from printnet.masterfile import Job, MasterState
from printnet.model import JobState, valid_user

QUOTA_NOTE: Final = "Quota exceeded:"  # how a job held for its user's quota is noted
LIMIT_NOTE: Final = "Over limit:"  # how a job held over a printer's per-job limit is noted
EXPIRED_REASON: Final = "canceled: held longer than {hours} hours (HELDEXPIRY)"


class Period(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"

    @property
    def phrase(self) -> str:
        return "today" if self is Period.DAY else f"this {self.value}"


class OverAction(StrEnum):
    """What happens to a job over a quota or limit."""

    HOLD = "hold"  # held with a note; an operator may release it
    REJECT = "reject"  # rejected with the note as its reason


@dataclass(frozen=True, slots=True)
class QuotaRule:
    """One QUOTA line: `who` may print `pages` per `period` (on `printer`, if set)."""

    who: str  # "*", a user name, or "@group"
    pages: int
    period: Period = Period.WEEK
    printer: str | None = None
    action: OverAction = OverAction.HOLD

    def applies_to(self, user: str, groups: Callable[[str], frozenset[str]]) -> bool:
        if self.who == "*":
            return True
        if self.who.startswith("@"):
            return self.who[1:] in groups(user)
        return self.who == user

    def describe(self) -> str:
        where = f" on {self.printer}" if self.printer else ""
        return f"{self.pages} pages {self.period.phrase}{where}"


def valid_who(text: str) -> bool:
    """`*`, a user name, or `@group` (a group name follows the user-name rule)."""
    if text == "*":
        return True
    return valid_user(text[1:] if text.startswith("@") else text)


def policy_held(job: Job) -> bool:
    """Held by the server's policy (quota or limit): only an operator releases it."""
    return job.state is JobState.HELD and job.note.startswith((QUOTA_NOTE, LIMIT_NOTE))


def quota_held(job: Job) -> bool:
    return job.state is JobState.HELD and job.note.startswith(QUOTA_NOTE)


# ---------------------------------------------------------------------------
# Periods


def period_start(period: Period, now_local: datetime) -> datetime:
    """The start of the period holding `now_local` (timezone-aware, local)."""
    midnight = now_local.replace(hour=0, minute=0, second=0, microsecond=0)
    if period is Period.DAY:
        return midnight
    if period is Period.WEEK:
        return midnight - timedelta(days=now_local.weekday())
    return midnight.replace(day=1)


def oldest_start(now_local: datetime) -> datetime:
    """The earliest start any period can have now (what the usage book must keep)."""
    return min(period_start(p, now_local) for p in Period)


# ---------------------------------------------------------------------------
# Usage


@dataclass(slots=True)
class _Entry:
    job: str
    finished: datetime
    user: str
    printer: str
    pages: int


@dataclass
class UsageBook:
    """Pages printed per user, from accounting lines (fed incrementally).

    `offset` is how far the accounting file has been read; the reader keeps it.
    Lines older than `keep_since` (set by `prune`) are dropped.
    """

    offset: int = 0
    entries: list[_Entry] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)  # jobs with an accounting line

    def reset(self) -> None:
        self.offset = 0
        self.entries.clear()
        self.ids.clear()

    def feed(self, lines: Iterable[Mapping[str, Any]]) -> int:
        """Take accounting lines; malformed ones are skipped.  Returns lines taken."""
        taken = 0
        for line in lines:
            try:
                job, user, printer = line["job"], line["user"], line["printer"]
                pages = line["pages"]
                finished = _parse_time(line["finished"])
            except (KeyError, TypeError, ValueError):
                continue
            if not (isinstance(job, str) and isinstance(user, str)
                    and isinstance(printer, str) and type(pages) is int and pages >= 0):
                continue
            if line.get("outcome") == "canceled":
                pages = 0  # a canceled job is not charged (an aborted one printed in part)
            self.ids.add(job)
            self.entries.append(_Entry(job, finished, user, printer, pages))
            taken += 1
        return taken

    def prune(self, before: datetime) -> None:
        """Forget lines finished before `before` (no period reaches back that far)."""
        if any(e.finished < before for e in self.entries):
            self.entries = [e for e in self.entries if e.finished >= before]
            self.ids = {e.job for e in self.entries}

    def used(self, user: str, since: datetime, printer: str | None = None) -> int:
        """Pages `user` printed since `since` (on `printer`, when given)."""
        return sum(e.pages for e in self.entries
                   if e.user == user and e.finished >= since
                   and (printer is None or e.printer == printer))


def _parse_time(text: object) -> datetime:
    if not isinstance(text, str):
        raise ValueError("not a time stamp")
    ts = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return ts


LiveUsage = dict[tuple[str, str], int]  # (user, destination or "*") -> counted pages


def live_usage(state: MasterState, accounted: set[str]) -> LiveUsage:
    """Counted pages of live jobs per (user, destination) and per (user, "*").

    Jobs held by policy and jobs that already have an accounting line are left
    out.  A job counts under its requested destination and, once assigned, under
    the printer printing it.
    """
    out: LiveUsage = {}
    for job in state.jobs.values():
        if job.pages <= 0 or policy_held(job) or job.id in accounted:
            continue
        add_live(out, job)
    return out


def add_live(usage: LiveUsage, job: Job) -> None:
    for dest in {"*", job.destination, job.assigned} - {""}:
        key = (job.user, dest)
        usage[key] = usage.get(key, 0) + job.pages


@dataclass(frozen=True, slots=True)
class Verdict:
    rule: QuotaRule
    used: int  # pages with this job
    note: str

    @property
    def reject(self) -> bool:
        return self.rule.action is OverAction.REJECT


def quota_note(rule: QuotaRule, total: int) -> str:
    where = f" on {rule.printer}" if rule.printer else ""
    return f"{QUOTA_NOTE} {total} of {rule.pages} pages {rule.period.phrase}{where}"


def check_quota(
    rules: Iterable[QuotaRule], *, user: str, destination: str, pages: int,
    book: UsageBook, live: LiveUsage, now_local: datetime,
    groups: Callable[[str], frozenset[str]],
) -> Verdict | None:
    """The first rule a new job of `pages` pages would break, or None if it fits.

    A REJECT rule wins over a HOLD rule: a job that one rule rejects is rejected.
    """
    broken: list[Verdict] = []
    for rule in rules:
        if rule.printer is not None and rule.printer != destination:
            continue
        if not rule.applies_to(user, groups):
            continue
        since = period_start(rule.period, now_local)
        used = book.used(user, since, rule.printer) + live.get((user, rule.printer or "*"), 0)
        if used + pages > rule.pages:
            broken.append(Verdict(rule, used + pages, quota_note(rule, used + pages)))
    if not broken:
        return None
    rejecting = [v for v in broken if v.reject]
    return (rejecting or broken)[0]


# ---------------------------------------------------------------------------
# Held expiry


def held_since(job: Job) -> datetime | None:
    """When the job entered `held` (else when it was submitted); None if unknown."""
    for text in (job.held_at, job.submitted):
        if text:
            try:
                return _parse_time(text)
            except ValueError:
                continue
    return None


def expired(state: MasterState, limit: float, now: datetime) -> list[Job]:
    """Held jobs held for more than `limit` seconds at `now` (aware), oldest first."""
    out = []
    for job in state.jobs.values():
        if job.state is not JobState.HELD:
            continue
        since = held_since(job)
        if since is not None and (now - since).total_seconds() > limit:
            out.append(job)
    return sorted(out, key=lambda j: j.id)


def expiry_reason(limit: float) -> str:
    hours = limit / 3600
    return EXPIRED_REASON.format(hours=f"{hours:g}")
