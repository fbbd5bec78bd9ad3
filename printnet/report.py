"""Pure: totals of the accounting log for `printnet report`.

``log/accounting.jsonl`` holds one JSON line per finished job (written by the
server that finished it, under the master lock; fields in
`printnet.spool.records.ACCOUNTING_FIELDS`): job, user, station, printer,
setup, pages, copies, sheets, bytes, submitted, started, finished, outcome,
restarted.  ``pages`` are the physical pages the printer was sent, header page
included: exact for text jobs (printnet paginates them), counted from form
feeds for raw jobs.  Canceled jobs count 0 pages.

`totals(lines, since=..., by=...)` adds them up, overall or per user or per
printer, for jobs *finished* at or after `since`.  Lines that are not
accounting lines (missing fields, wrong types) are skipped and counted in
`Report.skipped`.  `parse_since` reads ``--since``: a date (``2026-03-01``,
local midnight) or an ISO 8601 time (local if it names no zone).

This module reads no files and no clock: the CLI passes lines and "now".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from printnet.errors import UsageError

GROUPINGS: Final = ("user", "printer")
OUTCOMES: Final = ("completed", "aborted", "canceled", "forwarded")


@dataclass
class Row:
    """Totals of one group (a user, a printer, or everything)."""

    key: str
    jobs: int = 0
    pages: int = 0
    sheets: int = 0
    copies: int = 0
    bytes: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)

    def add(self, line: Mapping[str, Any]) -> None:
        self.jobs += 1
        self.pages += line["pages"]
        self.sheets += line["sheets"]
        self.copies += line["copies"]
        self.bytes += line["bytes"]
        outcome = line["outcome"]
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "jobs": self.jobs, "pages": self.pages,
                "sheets": self.sheets, "copies": self.copies, "bytes": self.bytes,
                "outcomes": dict(sorted(self.outcomes.items()))}


@dataclass
class Report:
    since: datetime | None
    by: str | None
    rows: list[Row]
    total: Row
    skipped: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat() if self.since else None,
            "by": self.by,
            "rows": [r.to_json() for r in self.rows],
            "total": self.total.to_json(),
            "skipped": self.skipped,
        }

    def lines(self) -> list[str]:
        """The report as text lines (a table)."""
        head = (self.by or "").upper() or "ALL"
        width = max([len(head), 5, *(len(r.key) for r in self.rows)])
        out = [f"{head:<{width}} {'JOBS':>6} {'PAGES':>8} {'SHEETS':>8} {'COPIES':>7} "
               f"{'BYTES':>12}  OUTCOMES"]
        for row in [*self.rows, self.total] if self.by else [self.total]:
            outcomes = ", ".join(f"{n} {k}" for k, n in sorted(row.outcomes.items()))
            out.append(f"{row.key:<{width}} {row.jobs:>6} {row.pages:>8} {row.sheets:>8} "
                       f"{row.copies:>7} {row.bytes:>12}  {outcomes}")
        if self.since is not None:
            out.append(f"(jobs finished since {self.since.isoformat()})")
        if self.skipped:
            out.append(f"({self.skipped} malformed accounting lines skipped)")
        return out


_INT_FIELDS: Final = ("pages", "sheets", "copies", "bytes")


def _finished(line: Mapping[str, Any]) -> datetime | None:
    text = line.get("finished")
    if not isinstance(text, str):
        return None
    try:
        ts = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        return None
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


def _valid(line: Mapping[str, Any]) -> bool:
    if not all(type(line.get(k)) is int and line[k] >= 0 for k in _INT_FIELDS):
        return False
    return all(isinstance(line.get(k), str) for k in ("job", "user", "printer", "outcome"))


def totals(lines: Iterable[Mapping[str, Any]], *, since: datetime | None = None,
           by: str | None = None) -> Report:
    """Add up accounting lines finished at or after `since`, overall or `by` user/printer."""
    if by is not None and by not in GROUPINGS:
        raise UsageError(f"--by must be one of {', '.join(GROUPINGS)}, not {by!r}")
    rows: dict[str, Row] = {}
    total = Row("TOTAL")
    skipped = 0
    for line in lines:
        finished = _finished(line)
        if finished is None or not _valid(line):
            skipped += 1
            continue
        if since is not None and finished < since:
            continue
        total.add(line)
        if by is not None:
            key = str(line[by])
            rows.setdefault(key, Row(key)).add(line)
    return Report(since, by, [rows[k] for k in sorted(rows)], total, skipped)


def parse_since(text: str, now_local: datetime) -> datetime:
    """`--since`: a date (local midnight) or an ISO time (local if it has no zone)."""
    raw = text.strip()
    try:
        ts = datetime.fromisoformat(raw[:-1] + "+00:00" if raw.endswith("Z") else raw)
    except ValueError:
        raise UsageError(f"--since {raw[:40]!r}: use a date (2026-03-01) or an ISO time "
                         "(2026-03-01T08:00)") from None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=now_local.tzinfo)
    return ts
