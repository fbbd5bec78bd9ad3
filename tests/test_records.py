"""Records a server leaves on the spool (printnet.spool.records): done records (a
completion always wins, otherwise the first record wins), accounting lines read back
incrementally and only whole, control results, events, and the server file."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

from conftest import make_ids, make_job

from printnet.spool import records
from printnet.spool.layout import Spool
from printnet.spool.records import ACCOUNTING_FIELDS

STARTED = datetime(2026, 3, 1, 12, 0, 5, tzinfo=UTC)
FINISHED = datetime(2026, 3, 1, 12, 0, 9, tzinfo=UTC)


def record(job_id: str, outcome: str, **job_fields: object) -> dict[str, object]:
    return records.done_record(
        make_job(job_id, **job_fields), outcome=outcome, reason=f"{outcome} by test",
        pages=3, sheets=6, size=1234, started=STARTED, finished=FINISHED,
        request={"title": "t"}, server="S1")


def read(path: Path) -> dict[str, object]:
    data = json.loads(path.read_text())
    assert isinstance(data, dict)
    return data


def test_a_done_record_says_how_the_job_ended(spool: Spool) -> None:
    [job_id] = make_ids(1)
    path = records.write_done(spool, job_id, record(job_id, "completed", copies=2))
    assert path == spool.done / f"{job_id}.json"
    data = read(path)
    assert data["outcome"] == "completed" and data["pages"] == 3 and data["server"] == "S1"
    assert data["started"] == "2026-03-01T12:00:05.000000Z"
    job = data["job"]
    assert isinstance(job, dict)
    assert job["id"] == job_id and job["state"] == "completed" and job["copies"] == 2
    assert [n for n in os.listdir(spool.done) if n.startswith(".")] == []


def test_the_first_record_wins_unless_a_completion_comes(spool: Spool) -> None:
    """RACE: a server that lost a job may report it aborted after another printed it."""
    a, b = make_ids(2)
    records.write_done(spool, a, record(a, "completed"))
    records.write_done(spool, a, record(a, "aborted"))
    assert read(spool.done / f"{a}.json")["outcome"] == "completed"
    records.write_done(spool, b, record(b, "canceled"))
    records.write_done(spool, b, record(b, "aborted"))
    assert read(spool.done / f"{b}.json")["outcome"] == "canceled"
    records.write_done(spool, b, record(b, "completed"))
    assert read(spool.done / f"{b}.json")["outcome"] == "completed"


def test_unsynced_records_are_made_durable_in_one_pass(spool: Spool) -> None:
    ids = make_ids(3)
    paths = [records.write_done(spool, i, record(i, "completed"), sync=False) for i in ids]
    records.make_durable(spool, paths)
    records.make_durable(spool, [])
    assert sorted(os.listdir(spool.done)) == sorted(f"{i}.json" for i in ids)


def test_a_batch_of_records_follows_the_same_rules_and_leaves_no_temp_files(
        spool: Spool) -> None:
    """`write_done_batch` (a cycle's endings, one durability pass for their data):
    a completion replaces an earlier record, any other outcome never does."""
    a, b, c = make_ids(3)
    records.write_done(spool, a, record(a, "completed"))
    records.write_done(spool, b, record(b, "canceled"))
    paths = records.write_done_batch(spool, [(a, record(a, "aborted")),
                                             (b, record(b, "completed")),
                                             (c, record(c, "aborted"))])
    assert paths == [spool.done / f"{i}.json" for i in (a, b, c)]
    assert [read(p)["outcome"] for p in paths] == ["completed", "completed", "aborted"]
    assert sorted(os.listdir(spool.done)) == sorted(f"{i}.json" for i in (a, b, c))
    assert records.write_done_batch(spool, []) == []


def test_an_accounting_line_has_every_field_and_the_printer_that_printed(spool: Spool) -> None:
    [job_id] = make_ids(1)
    line = records.accounting_line(record(job_id, "completed", destination="LINES",
                                          assigned="LP1", restarted=1))
    assert tuple(line) == ACCOUNTING_FIELDS
    assert line["printer"] == "LP1" and line["restarted"] == 1 and line["sheets"] == 6
    assert line["job"] == job_id and line["outcome"] == "completed"


def test_accounting_is_read_incrementally_and_only_whole_lines(spool: Spool) -> None:
    path = spool.accounting
    assert records.read_accounting(path) == ([], 0, False)
    records.append_lines(path, [{"n": 1}, {"n": 2}])
    lines, offset, restarted = records.read_accounting(path)
    assert [x["n"] for x in lines] == [1, 2] and not restarted
    # Another server is half-way through a line, and someone wrote garbage.
    with open(path, "ab") as fh:
        fh.write(b"not json\n[1,2]\n{\"n\": 3")
    lines, offset2, _ = records.read_accounting(path, offset)
    assert lines == [] and offset2 == os.path.getsize(path) - len(b"{\"n\": 3")
    with open(path, "ab") as fh:
        fh.write(b"}\n")
    lines, offset3, _ = records.read_accounting(path, offset2)
    assert lines == [{"n": 3}] and offset3 == os.path.getsize(path)
    # Rotated: shorter than our offset, so reading starts again.
    records.append_lines(path, [])  # nothing to append: no write
    os.truncate(path, 0)
    records.append_lines(path, [{"n": 4}])
    lines, _, restarted = records.read_accounting(path, offset3)
    assert lines == [{"n": 4}] and restarted


def test_a_control_result_names_each_job(spool: Spool) -> None:
    ctl, job = make_ids(2)
    records.write_control_result(spool, ctl, "alice", "cancel", {job: "canceled"})
    data = read(spool.done / f"{ctl}.json")
    assert data["kind"] == "control" and data["results"] == {job: "canceled"}
    assert data["user"] == "alice" and data["action"] == "cancel"


def test_events_are_one_clean_line_each_and_best_effort(spool: Spool, tmp_path: Path) -> None:
    records.log_event(spool, "S1", "printer P1\nis out of paper\x1b[2J")
    [line] = spool.events.read_text().splitlines()
    # One line, its control characters gone (a newline cannot forge a second event).
    assert line.endswith("Z S1: printer P1 is out of paper[2J")
    records.log_event(Spool(tmp_path / "no-such-spool"), "S1", "lost")  # no error


def test_the_server_file_is_replaced_whole(spool: Spool) -> None:
    records.write_server_file(spool, "S1", {"name": "S1", "printers": []})
    records.write_server_file(spool, "S1", {"name": "S1", "printers": [{"name": "P1"}]})
    assert read(spool.servers / "S1.json")["printers"] == [{"name": "P1"}]
    assert os.listdir(spool.servers) == ["S1.json"]
