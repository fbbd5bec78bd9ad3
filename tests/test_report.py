"""`printnet report`: totals of the accounting log, and that they match the paper.

The end-to-end test prints jobs through a real server to file printers and
compares the report with the printers' output: every page printnet prints
ends with a form feed, so the pages in the report must equal the form feeds
in the output files, and its bytes the output files' sizes.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from conftest import CliRun
from test_quota import running, until

from printnet.api import Station
from printnet.errors import UsageError
from printnet.model import ControlAction
from printnet.report import parse_since, totals
from printnet.spool import master as master_io
from printnet.spool.layout import Spool

CET = timezone(timedelta(hours=1))


def acc(job: str, user: str, printer: str, pages: int, finished: str, *,
        outcome: str = "completed", copies: int = 1, size: int = 100) -> dict[str, Any]:
    return {"job": job, "user": user, "station": "ws", "printer": printer, "setup": "STANDARD",
            "pages": pages, "copies": copies, "sheets": pages, "bytes": size,
            "submitted": finished, "started": finished, "finished": finished,
            "outcome": outcome, "restarted": 0}


LINES = [
    acc("A", "alice", "LP", 3, "2026-03-01T10:00:00.000000Z"),
    acc("B", "bob", "LP", 5, "2026-03-02T10:00:00.000000Z", copies=2),
    acc("C", "alice", "LASER", 7, "2026-03-03T10:00:00.000000Z"),
    acc("D", "alice", "LASER", 0, "2026-03-03T11:00:00.000000Z", outcome="canceled", size=0),
    {"job": "E", "user": "eve", "printer": "LP", "pages": "many",
     "finished": "2026-03-03T12:00:00Z"},  # malformed
    {"not": "an accounting line"},
]


def test_totals_overall_and_by_user_and_printer() -> None:
    report = totals(LINES)
    assert (report.total.jobs, report.total.pages, report.total.sheets, report.total.copies,
            report.total.bytes) == (4, 15, 15, 5, 300)
    assert report.total.outcomes == {"completed": 3, "canceled": 1}
    assert report.skipped == 2 and report.rows == []
    by_user = totals(LINES, by="user")
    assert [(r.key, r.jobs, r.pages) for r in by_user.rows] == [("alice", 3, 10), ("bob", 1, 5)]
    by_printer = totals(LINES, by="printer")
    assert [(r.key, r.pages) for r in by_printer.rows] == [("LASER", 7), ("LP", 8)]
    assert sum(r.pages for r in by_printer.rows) == by_printer.total.pages


def test_since_filters_on_the_finished_time() -> None:
    since = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    report = totals(LINES, since=since, by="user")
    assert [(r.key, r.jobs, r.pages) for r in report.rows] == [("alice", 2, 7)]
    assert report.to_json()["since"] == "2026-03-02T12:00:00+00:00"
    assert "(jobs finished since 2026-03-02T12:00:00+00:00)" in report.lines()


def test_parse_since() -> None:
    now = datetime(2026, 3, 4, 15, 0, tzinfo=CET)
    assert parse_since("2026-03-01", now) == datetime(2026, 3, 1, tzinfo=CET)
    assert parse_since("2026-03-01T08:30", now) == datetime(2026, 3, 1, 8, 30, tzinfo=CET)
    assert parse_since("2026-03-01T08:30Z", now) == datetime(2026, 3, 1, 8, 30, tzinfo=UTC)
    with pytest.raises(UsageError, match="use a date"):
        parse_since("last tuesday", now)
    with pytest.raises(UsageError):
        totals([], by="station")


def test_report_text_table() -> None:
    text = totals(LINES, by="printer").lines()
    assert text[0].split() == ["PRINTER", "JOBS", "PAGES", "SHEETS", "COPIES", "BYTES",
                               "OUTCOMES"]
    assert text[1].split()[:3] == ["LASER", "2", "7"]
    assert text[-2].split()[:3] == ["TOTAL", "4", "15"]
    assert text[-1] == "(2 malformed accounting lines skipped)"


def configure(etc: Path) -> None:
    (etc / "server.cmd").write_text("SERVER NAME=R\nSPOOL spool\nSCAN 0.05\nLEASE 5\n")
    (etc / "printers.cmd").write_text(
        "PRINTER LP PORT=file://../output/LP.prn\n"  # built-in header pages
        "PRINTER LASER PORT=file://../output/LASER.prn HEADER=NONE\n"
        "PRINTER PARKED PORT=file://../output/PARKED.prn STOPPED=YES\n"
        "SETUP STANDARD FORM=PLAIN LENGTH=12 WIDTH=60\nDEFAULT LP\n")
    (etc.parent / "output").mkdir(exist_ok=True)


def test_report_totals_match_the_printed_output_exactly(
    spool: Spool, etc: Path, run_cli: CliRun, tmp_path: Path,
) -> None:
    configure(etc)
    jobs: list[str] = []
    for user, printer, lines, copies, header in [
        ("alice", "LP", 5, 1, True), ("alice", "LP", 40, 2, True),
        ("bob", "LASER", 23, 3, True), ("bob", "LP", 1, 1, False),
        ("carol", "LASER", 100, 1, True), ("alice", "LASER", 0, 1, True),
    ]:
        src = tmp_path / f"{len(jobs)}.txt"
        src.write_text("".join(f"{user} line {i}\n" for i in range(lines)))
        station = Station(spool.root, etc, user=user, station="ws1")
        [req] = station.submit([src], printer=printer, copies=copies, header=header)
        jobs.append(req.id)
    station = Station(spool.root, etc, user="bob", station="ws1")
    parked = station.submit([src], printer="PARKED")[0].id
    with running(etc) as server:
        until(server, "every job printed", lambda: all(
            (spool.done / f"{j}.json").exists() for j in jobs))
        until(server, "the parked job queued", lambda: parked in master_io.load(spool).jobs)
        station.control(ControlAction.CANCEL, [parked], wait=0)
        until(server, "the cancel", (spool.done / f"{parked}.json").exists)

    result = run_cli("report", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    outputs = {name: (etc.parent / "output" / f"{name}.prn").read_bytes()
               for name in ("LP", "LASER")}
    printed_pages = sum(data.count(b"\f") for data in outputs.values())
    assert report["total"]["pages"] == report["total"]["sheets"] == printed_pages > 0
    assert report["total"]["bytes"] == sum(len(data) for data in outputs.values())
    assert report["total"]["jobs"] == 7
    assert report["total"]["outcomes"] == {"canceled": 1, "completed": 6}
    assert report["total"]["copies"] == 1 + 2 + 3 + 1 + 1 + 1 + 1

    by_printer = json.loads(run_cli("report", "--by", "printer", "--json").stdout)
    rows = {row["key"]: row for row in by_printer["rows"]}
    for name, data in outputs.items():
        assert rows[name]["pages"] == data.count(b"\f")
        assert rows[name]["bytes"] == len(data)
    assert rows["PARKED"]["pages"] == 0

    by_user = json.loads(run_cli("report", "--by", "user", "--json").stdout)
    users = {row["key"]: row["pages"] for row in by_user["rows"]}
    assert sum(users.values()) == printed_pages
    # carol's one job: 100 lines on 12-line pages of LASER (HEADER=NONE).
    assert users["carol"] == len([1 for page in outputs["LASER"].split(b"\f")
                                  if b"carol line" in page]) == 10

    text = run_cli("report", "--by", "user")
    assert text.exit_code == 0
    assert text.stdout.splitlines()[-1].split()[:3] == ["TOTAL", "7", str(printed_pages)]
    tomorrow = (datetime.now().astimezone() + timedelta(days=1)).strftime("%Y-%m-%d")
    later = json.loads(run_cli("report", "--since", tomorrow, "--json").stdout)
    assert later["total"]["jobs"] == 0


def test_report_of_an_empty_spool(run_cli: CliRun) -> None:
    result = run_cli("report")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[1].split()[:3] == ["TOTAL", "0", "0"]
    bad = run_cli("report", "--since", "yesterday")
    assert bad.exit_code == 2 and "use a date" in bad.stderr
