"""Progress a station's user can see: `status --watch`, `request --wait`, copy progress.

All three only read what the servers publish (servers/<NAME>.json: each
printer's state and its current job's progress in pages or bytes; done/ and
rejected/ for endings) through `printnet.api.Station`; nothing here writes to
the spool.  Drawing is plain ANSI (cursor home, erase to end of line and of
screen), so it works on any terminal and leaves the last view in place.

`--watch` refuses a standard output that is not a terminal: an endless
stream of redraws is no use to a script, which asks `status --json` as often
as it likes instead.  `--wait` works either way; the bar is drawn only when
standard error is a terminal.

Exit status of `request --wait` (the worst of its jobs): 0 completed,
4 canceled, 5 aborted, 6 rejected by a server; 130 when interrupted (the
jobs stay queued).
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from itertools import islice
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from printnet.api import Station

EXIT_FOR = {"completed": 0, "forwarded": 0, "canceled": 4, "aborted": 5, "rejected": 6}
INTERRUPTED = 130
COPY_PROGRESS_FROM = 4 << 20  # bytes: smaller submits show no copy progress
HOME, ERASE_LINE, ERASE_DOWN = "\x1b[H", "\x1b[K", "\x1b[J"
HIDE_CURSOR, SHOW_CURSOR, CLEAR = "\x1b[?25l", "\x1b[?25h", "\x1b[2J"


def bar(done: int, total: int, width: int = 20) -> str:
    """``[########------------]  40%``; an unknown total draws no bar."""
    if total <= 0:
        return ""
    frac = min(1.0, max(0.0, done / total))
    full = int(frac * width)
    return f"[{'#' * full}{'-' * (width - full)}] {int(frac * 100):3d}%"


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.1f}"


def progress_text(progress: dict[str, Any] | None, width: int = 20) -> str:
    """A printer's current job's progress: pages when counted, else bytes."""
    if not isinstance(progress, dict):
        return ""
    pages, page_total = int(progress.get("pages") or 0), int(progress.get("page_total") or 0)
    sent, total = int(progress.get("bytes") or 0), int(progress.get("total") or 0)
    if page_total > 0:
        return f"{bar(pages, page_total, width)} {pages}/{page_total} pages"
    if total > 0:
        return f"{bar(sent, total, width)} {sent}/{total} bytes"
    return f"{sent} bytes"


# -- status --watch -------------------------------------------------------------------


def view_lines(station: Station, *, printer: str | None, user: str | None,
               height: int, width: int) -> list[str]:
    """One screen of the live view: printers with their current job's progress, then
    as much of the queue as fits, and how many jobs did not fit."""
    printers, rows = station.listing(printer=printer, user=user)
    now = datetime.now().strftime("%H:%M:%S")
    lines = [f"printnet status --watch  {station.spool.root}  {now}  (Ctrl-C to quit)", ""]
    lines.append(f"{'PRINTER':10} {'STATE':9} {'JOB':18} PROGRESS")
    for p in printers:
        state = str(p.get("state"))
        job = str(p.get("job") or "")
        reasons = "; ".join(p.get("reasons") or [])
        extra = progress_text(p.get("progress")) if job else reasons
        lines.append(f"{p.get('name')!s:10.10} {state:9.9} {job:18} {extra}")
    if not printers:
        lines.append("(no server has reported a printer yet)")
    lines.append("")
    room = max(1, height - len(lines) - 3)
    shown = list(islice(rows, room))
    rest = sum(1 for _ in rows)
    if not shown:
        lines.append("no jobs")
    else:
        lines.append(f"{'POS':>4} {'ID':18} {'USER':10} {'PRINTER':10} {'STATE':9} TITLE / NOTE")
        for pos, job_id, owner, dest, _prio, state, _sub, title, note in shown:
            tail = f"{title} [{note}]" if note else title
            lines.append(f"{pos:4d} {job_id:18} {owner:10.10} {dest:10.10} {state:9} {tail}")
        if rest:
            lines.append(f"... and {rest} more job{'s' if rest != 1 else ''}")
    return [line[:width] for line in lines]


def watch(station: Station, *, printer: str | None, user: str | None, interval: float,
          out: IO[str] | None = None) -> int:
    """Redraw the view every `interval` seconds until Ctrl-C; the exit status (0)."""
    out = out or sys.stdout
    out.write(HIDE_CURSOR + CLEAR)
    try:
        while True:
            size = shutil.get_terminal_size()
            lines = view_lines(station, printer=printer, user=user, height=size.lines,
                               width=size.columns)
            out.write(HOME + "".join(line + ERASE_LINE + "\n" for line in lines) + ERASE_DOWN)
            out.flush()
            time.sleep(interval)
    except KeyboardInterrupt:
        return 0
    finally:
        out.write(SHOW_CURSOR)
        out.flush()


# -- request --wait -------------------------------------------------------------------


def wait_jobs(station: Station, ids: Sequence[str], *, show: bool, interval: float = 0.25,
              err: IO[str] | None = None) -> int:
    """Wait until every job has ended; the worst exit status (EXIT_FOR).  With `show`,
    a progress line per job on standard error (a terminal)."""
    err = err or sys.stderr
    worst = 0
    try:
        for job_id in ids:
            ending = _wait_one(station, job_id, show, interval, err)
            outcome, reason = ending
            code = EXIT_FOR.get(outcome, 5)
            worst = max(worst, code)
            line = f"{job_id}: {outcome}{': ' + reason if reason else ''}"
            if show:
                err.write("\r" + line + ERASE_LINE + "\n")
            elif code:
                err.write(line + "\n")
            err.flush()
    except KeyboardInterrupt:
        err.write(("\r" + ERASE_LINE if show else "")
                  + "interrupted: the job stays queued (printnet status shows it)\n")
        return INTERRUPTED
    return worst


def _wait_one(station: Station, job_id: str, show: bool, interval: float,
              err: IO[str]) -> tuple[str, str]:
    last = ""
    while True:
        ending = station.ending(job_id)
        if ending is not None:
            return ending
        if show:
            line = _job_progress(station, job_id)
            if line != last:
                err.write("\r" + line + ERASE_LINE)
                err.flush()
                last = line
        time.sleep(interval)


def _job_progress(station: Station, job_id: str) -> str:
    for p in station.printers():
        if p.get("job") == job_id and p.get("state") == "printing":
            return f"{job_id}: printing on {p.get('name')} {progress_text(p.get('progress'))}"
    return f"{job_id}: waiting"


# -- copy progress --------------------------------------------------------------------


class CopyProgress:
    """A `Submitter` progress callback: a line on a terminal once the copy is large
    (over `threshold` bytes); `finish` ends the line."""

    def __init__(self, err: IO[str] | None = None, threshold: int = COPY_PROGRESS_FROM) -> None:
        self.stream = err or sys.stderr
        self.threshold = threshold
        self.last = -1.0
        self.shown = False

    def __call__(self, copied: int, total: int | None) -> None:
        if (total is not None and total < self.threshold) or copied < self.threshold:
            return
        now = time.monotonic()
        if now - self.last < 0.1 and (total is None or copied < total):
            return
        self.last = now
        if total:
            text = f"copying {bar(copied, total)} {_mib(copied)}/{_mib(total)} MiB"
        else:
            text = f"copying standard input: {_mib(copied)} MiB"
        self.stream.write("\r" + text + ERASE_LINE)
        self.stream.flush()
        self.shown = True

    def finish(self) -> None:
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()
            self.shown = False
