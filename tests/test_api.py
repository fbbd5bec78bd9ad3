"""The station API (printnet.api.Station) against a real spool and etc/, no server:
options are checked against what the configuration and the servers' files say before
anything is written; submitted jobs are listed while waiting, finished and rejected
jobs can be looked up by id; control requests wait for the server's answer file."""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import make_ids, make_job, tree
from waiting import wait_for

from printnet.api import WAITING_NOTE, Station
from printnet.errors import NotFound, UsageError
from printnet.model import ControlAction, Priority, decode_request
from printnet.spool import records
from printnet.spool.layout import Spool


@pytest.fixture
def doc(tmp_path: Path) -> Path:
    path = tmp_path / "doc.txt"
    path.write_text("hello\n")
    return path


def station(spool: Spool, etc: Path | None = None) -> Station:
    return Station(spool.root, etc, user="alice", station="ws1")


def test_options_are_checked_against_the_configuration(spool: Spool, etc: Path) -> None:
    s = station(spool, etc)
    assert s.destinations().default == "LOCAL"
    req = s.template(title="t\x1b[2Jx", copies=2, setup="checks")
    assert req.printer == "LOCAL" and req.setup == "CHECKS" and req.copies == 2
    assert "\x1b" not in req.title
    cases = [
        ({"printer": "NOPE"}, "unknown printer 'NOPE' (known: LOCAL)"),
        ({"setup": "WIDE"}, "unknown setup 'WIDE'"),
        ({"copies": 0}, "copies must be"),
        ({"priority": "urgent"}, "invalid priority"),
        ({"printer": "bad name!"}, "invalid printer name"),
    ]
    for options, message in cases:
        with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
            s.template(**options)  # type: ignore[arg-type]


def test_names_are_case_insensitive(spool: Spool, etc: Path) -> None:
    assert station(spool, etc).template(printer="local").printer == "LOCAL"


def test_without_configuration_the_servers_files_say_what_exists(spool: Spool) -> None:
    s = station(spool)
    assert s.template(printer="anything").printer == "ANYTHING"  # nothing known: any name
    records.write_server_file(spool, "S1", {
        "name": "S1", "printers": [{"name": "P1", "classes": ["LINES"], "password": True}],
        "setups": ["STANDARD"], "min_free": 5 << 20})
    assert s.destinations().known == {"P1", "LINES"}
    assert s.template().printer == "P1"  # the only printer
    with pytest.raises(UsageError, match="unknown printer"):
        s.template(printer="P2")
    assert s.needs_password("P1") and not s.needs_password("LINES")
    assert s.min_free() == 5 << 20


def test_a_bad_request_writes_nothing(spool: Spool, etc: Path, tmp_path: Path) -> None:
    before = tree(spool.root)
    s = station(spool, etc)
    with pytest.raises(UsageError):
        s.submit([tmp_path / "missing.txt"])
    with pytest.raises(UsageError):
        s.submit([tmp_path], printer="NOPE")
    assert tree(spool.root) == before


def test_a_submitted_job_is_in_new_and_listed_as_waiting(spool: Spool, etc: Path,
                                                         doc: Path) -> None:
    s = station(spool, etc)
    [req] = s.submit([doc], title="first", priority=Priority.HIGH)
    assert (spool.job_data(req.id) / "0").read_text() == "hello\n"
    published = decode_request((spool.new / f"{req.id}.req").read_bytes())
    assert published.id == req.id and published.user == "alice"
    two = s.submit([doc, doc], each=True)
    assert len(two) == 2 and len({r.id for r in two}) == 2
    jobs = s.status().jobs
    assert [j["id"] for j in jobs] == [req.id, *(r.id for r in two)]  # high first
    assert [j["position"] for j in jobs] == [1, 2, 3]
    assert {j["note"] for j in jobs} == {WAITING_NOTE}
    _, listed = s.listing()
    assert [row[1] for row in listed] == [j["id"] for j in jobs]
    assert s.status(user="bob").jobs == []


def test_finished_and_rejected_jobs_are_found_by_id(spool: Spool) -> None:
    done_id, rejected_id = make_ids(2)
    record = records.done_record(
        make_job(done_id), outcome="completed", reason="", pages=1, sheets=1, size=6,
        started=None, finished=datetime(2026, 3, 1, 12, 1, tzinfo=UTC), request=None,
        server="S1")
    records.write_done(spool, done_id, record)
    (spool.rejected / f"{rejected_id}.req.reason").write_text("printer P9 unknown\n")
    s = station(spool)
    found = {j["id"]: j for j in s.status(jobs=[done_id, rejected_id]).jobs}
    assert found[done_id]["state"] == "completed"
    assert found[rejected_id]["state"] == "rejected"
    assert found[rejected_id]["note"] == "printer P9 unknown"


def test_a_job_id_may_be_a_unique_suffix(spool: Spool) -> None:
    a, b = make_ids(2)
    known = {a: make_job(a), b: make_job(b)}
    s = station(spool)
    assert s.resolve(a.lower()) == a
    assert s.resolve(a[-6:], known) == a
    with pytest.raises(UsageError, match="not a job id"):
        s.resolve("ab", known)
    with pytest.raises(NotFound):
        s.resolve("ZZZZZZ", known)


def test_control_waits_for_the_servers_answer(spool: Spool) -> None:
    """The station writes new/<ctl id>.ctl and waits for done/<ctl id>.json; here a
    thread plays the server's part of that protocol."""
    [job] = make_ids(1)
    s = station(spool)
    assert s.control(ControlAction.HOLD, [job], wait=0.05) == {job: "queued"}

    def answer() -> None:
        def pending() -> list[str]:
            return [n for n in os.listdir(spool.new) if n.endswith(".ctl")]
        seen = set(pending())
        ctl = wait_for(lambda: [n for n in pending() if n not in seen], 30, "a .ctl")[0]
        data = json.loads((spool.new / ctl).read_text())
        assert data["action"] == "cancel" and data["jobs"] == [job]
        records.write_control_result(spool, ctl[:-4], "alice", "cancel", {job: "canceled"})

    helper = threading.Thread(target=answer)
    helper.start()
    try:
        assert s.control(ControlAction.CANCEL, [job], wait=30) == {job: "canceled"}
    finally:
        helper.join(30)
    with pytest.raises(UsageError, match="at least one job"):
        s.control(ControlAction.CANCEL, [])


def test_a_broken_readable_etc_is_reported_not_ignored(spool: Spool, etc: Path) -> None:
    from printnet.errors import ConfigError

    (etc / "printers.cmd").write_text("PRINTER\n")
    with pytest.raises(ConfigError, match=r"printers\.cmd:1"):
        station(spool, etc).template(printer="LOCAL")


def test_strict_refuses_when_nothing_is_known(spool: Spool) -> None:
    from printnet.errors import ConfigError

    strict = Station(spool.root, None, user="alice", station="ws1", strict=True)
    with pytest.raises(ConfigError, match="no printers are known"):
        strict.template(printer="ANY")
    assert station(spool).template(printer="any").printer == "ANY"  # the API alone: any


def test_the_default_destination_follows_env_then_user_file(
        spool: Spool, etc: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("PRINTNET_PRINTER", "PRINTER", "LPDEST"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    s = station(spool, etc)
    assert s.default_destination() == "LOCAL"  # the DEFAULT of etc/printers.cmd
    (tmp_path / "cfg" / "printnet").mkdir(parents=True)
    (tmp_path / "cfg" / "printnet" / "default").write_text("\n# mine\nDefault CHOSEN\n")
    assert s.default_destination() == "CHOSEN"
    monkeypatch.setenv("LPDEST", "FROM_LPDEST")
    monkeypatch.setenv("PRINTER", "FROM_PRINTER")
    assert s.default_destination() == "FROM_PRINTER"
    assert s.default_destination(prefer_lpdest=True) == "FROM_LPDEST"
    with pytest.raises(UsageError, match=r"unknown printer 'FROM_PRINTER' from \$PRINTER"):
        s.template()
    (tmp_path / "cfg" / "printnet" / "default").write_text("two words here\n")
    monkeypatch.delenv("PRINTER")
    monkeypatch.delenv("LPDEST")
    with pytest.raises(UsageError, match="expected one printer name"):
        s.template()
