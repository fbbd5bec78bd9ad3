"""The link of a remote printer, without processes: notes, back-off, the settings'
checks (file:line), the planner (`server.links`) and the ipp:// port's LinkDown.

The end-to-end behaviour with real servers is tests/test_linkdown.py."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from printnet import links
from printnet.config import LinkMode, load, write_defaults
from printnet.errors import ConfigError, LinkDown
from printnet.gateway.jobs import ipp_state
from printnet.masterfile import Job, MasterState
from printnet.model import Format, JobIdGenerator, JobState, Priority
from printnet.printers.ipp_port import IppClient, IppLinkDown, parse_target
from printnet.printers.writer import SendFailed
from printnet.scheduling import PrinterView, decide
from printnet.server.links import LinkView, plan_links

SINCE = datetime(2026, 3, 2, 9, 2, tzinfo=UTC)
PORT = "ipp://central.example:8631/ipp/print/HQLASER"


def ids(n: int) -> list[str]:
    gen = JobIdGenerator()
    return [gen.next(1_770_000_000_000 + i, 0) for i in range(n)]


def job(job_id: str, **fields: Any) -> Job:
    values: dict[str, Any] = {
        "id": job_id, "user": "u", "station": "s", "submitted": "2026-03-01T00:00:00Z",
        "destination": "HQ", "priority": Priority.STANDARD, "copies": 1, "title": "",
        "setup": "", "header": True, "format": Format.TEXT, "state": JobState.PENDING,
    }
    values.update(fields)
    return Job(**values)


def test_words_and_numbers() -> None:
    assert links.is_remote(PORT) and links.is_remote("spool:/mnt/c/spool?printer=X")
    assert not links.is_remote("socket://10.0.0.1:9100")
    assert links.remote_name(PORT) == "central.example"
    assert links.remote_name(PORT, "HQ") == "HQ"
    assert links.remote_name("spool:/mnt/central/spool?printer=X") == "/mnt/central/spool"
    local = datetime(2026, 3, 2, 10, 2).astimezone()
    assert links.waiting_note("HQ", local) == "waiting for link to HQ since 10:02"
    note = links.failover_note("HQ", "LOCAL", "HQ", local)
    assert links.parse_failover(note) == ("HQ", "LOCAL")
    assert links.parse_failover("failed over from nowhere") is None
    assert [links.backoff(0.5, n) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 4.0]
    assert links.backoff(5, 100) == links.BACKOFF_CAP
    assert links.backoff(600, 3) == 600  # RETRY= longer than the cap: RETRY=
    assert links.backoff(0.2, 30, 2.0) == 2.0  # LINKRETRY= sets the cap


def _etc(tmp: Path, printers: str) -> Path:
    etc = tmp / "etc"
    write_defaults(etc)
    (etc / "printers.cmd").write_text(printers + "PRINTER LOCAL PORT=file://../l.prn\n")
    return etc


@pytest.mark.parametrize(("line", "error"), [
    ("PRINTER HQ PORT=ipp://c/p LINKDOWN=SOMETIMES",
     r"printers\.cmd:1: PRINTER HQ: LINKDOWN='SOMETIMES': must be one of QUEUE LOCAL REJECT"),
    ("PRINTER HQ PORT=ipp://c/p LINKDOWN=LOCAL",
     r"printers\.cmd:1: PRINTER HQ: LINKDOWN=LOCAL needs PRINTER="),
    ("PRINTER HQ PORT=ipp://c/p PRINTER=LOCAL",
     r"printers\.cmd:1: PRINTER HQ: PRINTER=LOCAL is only for LINKDOWN=LOCAL"),
    ("PRINTER HQ PORT=ipp://c/p LINKDOWN=LOCAL PRINTER=NOPE",
     r"printers\.cmd:1: PRINTER HQ: LINKDOWN=LOCAL PRINTER=NOPE is not defined"),
    ("PRINTER HQ PORT=ipp://c/p LINKDOWN=LOCAL PRINTER=HQ",
     r"printers\.cmd:1: PRINTER HQ: LINKDOWN=LOCAL PRINTER= names the printer itself"),
    ("PRINTER HQ PORT=ipp://c/p LINKDOWN=LOCAL PRINTER=LOCAL LINKHOLD=2",
     r"printers\.cmd:1: PRINTER HQ: LINKHOLD= is for LINKDOWN=QUEUE or REJECT"),
    ("PRINTER HQ PORT=ipp://c/p LINKHOLD=-1",
     r"printers\.cmd:1: PRINTER HQ: LINKHOLD='-1': must be a number 0.0001..87600 hours"),
    ("PRINTER HQ PORT=socket://10.0.0.1:9100 LINKDOWN=QUEUE",
     r"printers\.cmd:1: PRINTER HQ: LINKDOWN= is only for a printer whose port is remote"),
    ("PRINTER HQ PORT=ipp://c/p\nPRINTER H2 PORT=ipp://d/p LINKDOWN=LOCAL PRINTER=HQ",
     r"printers\.cmd:2: PRINTER H2: LINKDOWN=LOCAL PRINTER=HQ is remote too"),
])
def test_bad_link_settings_name_file_and_line(tmp_path: Path, line: str, error: str) -> None:
    with pytest.raises(ConfigError, match=error):
        load(_etc(tmp_path, line + "\n"))


def test_link_settings_and_their_defaults(tmp_path: Path) -> None:
    config = load(_etc(tmp_path, "PRINTER HQ PORT=ipp://c/p\n"
                                 "PRINTER H2 PORT=ipps://d/p LINKDOWN=local PRINTER=local\n"
                                 "PRINTER H3 PORT=ipp://e/p LINKDOWN=REJECT LINKHOLD=0.5 "
                                 "LINKNAME=hq\n"))
    hq, h2, h3 = (config.printers[n] for n in ("HQ", "H2", "H3"))
    assert hq.linkdown is LinkMode.QUEUE and hq.failover is None and hq.link_hold is None
    assert h2.linkdown is LinkMode.LOCAL and h2.failover == "LOCAL"
    assert h3.linkdown is LinkMode.REJECT and h3.link_hold == 1800 and h3.link_name == "HQ"
    assert config.printers["LOCAL"].linkdown is None


def test_the_planner_notes_holds_moves_and_returns() -> None:
    a, b, c, d = ids(4)
    state = MasterState([job(a), job(b, note="Needs CHECKS"), job(c, state=JobState.HELD),
                         job(d, destination="LOCAL")])
    now = SINCE + timedelta(seconds=10)
    queue = LinkView("HQ", LinkMode.QUEUE, "HQ", SINCE)
    plan = plan_links(state, [queue], now)
    waiting = links.waiting_note("HQ", SINCE.astimezone())
    assert [(op.kind, op.id, op.args.get("note")) for op in plan.change.ops] == [
        ("note", a, waiting)]  # another reason (Needs CHECKS) and held jobs are left
    held = plan_links(state, [LinkView("HQ", LinkMode.QUEUE, "HQ", SINCE, hold_after=5)], now)
    assert [(op.kind, op.id) for op in held.change.ops] == [("state", a), ("state", b)]
    assert held.held == [(a, "HQ"), (b, "HQ")]
    again = plan_links(state, [LinkView("HQ", LinkMode.QUEUE, "HQ", SINCE, hold_after=5)],
                       now, held_before={a, b})
    assert [op.id for op in again.change.ops] == [a]  # released: only noted again
    local = LinkView("HQ", LinkMode.LOCAL, "HQ", SINCE, failover="LOCAL")
    moved = plan_links(state, [local], now)
    assert moved.moved == [(a, "HQ", "LOCAL"), (b, "HQ", "LOCAL")]
    after = state.preview(moved.change.ops)
    assert after.get(a) is not None and after.get(a).destination == "LOCAL"  # type: ignore[union-attr]
    back = plan_links(after, [LinkView("HQ", LinkMode.LOCAL, "HQ", None, failover="LOCAL")],
                      now)
    assert sorted(back.returned) == sorted([(a, "HQ"), (b, "HQ")])  # not d: never moved
    home = after.preview(back.change.ops)
    assert {home.get(i).destination for i in (a, b)} == {"HQ"}  # type: ignore[union-attr]


def test_the_scheduler_keeps_a_failover_note_and_says_the_link_note() -> None:
    a, b = ids(2)
    note = links.failover_note("HQ", "LOCAL", "HQ", SINCE.astimezone())
    state = MasterState([job(a, destination="LOCAL", note=note), job(b)])
    views = [PrinterView("LOCAL", "STANDARD", stopped=True),
             PrinterView("HQ", "STANDARD", online=False, offline_note="waiting for link to X")]
    decisions = decide(state, views, now_local=SINCE, night=(0, 6))
    assert decisions.notes == {b: "waiting for link to X"}  # a keeps its note
    running = decide(state, [PrinterView("LOCAL", "STANDARD")], now_local=SINCE, night=(0, 6))
    assert running.assigned == [(a, "LOCAL")]


def test_the_gateway_says_a_waiting_job_waits_for_resources() -> None:
    st = ipp_state({"state": "pending", "note": "waiting for link to HQ since 10:02"})
    assert "resources-are-not-ready" in st.reasons
    assert st.message == "waiting for link to HQ since 10:02"


def test_ipp_connection_refused_is_a_link_down_and_still_a_send_failed() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = IppClient(parse_target(f"ipp://127.0.0.1:{port}/ipp/print"), timeout=1.0,
                       label="printer HQ")
    with pytest.raises(IppLinkDown) as caught:
        client.printer_status()
    assert isinstance(caught.value, LinkDown) and isinstance(caught.value, SendFailed)
    assert "cannot reach ipp://127.0.0.1" in str(caught.value)
    assert caught.value.sent == 0


def test_ipp_no_answer_to_a_question_is_a_link_down() -> None:
    """A listener that accepts and never answers: Get-Printer-Attributes times out."""
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        port = srv.getsockname()[1]
        client = IppClient(parse_target(f"ipp://127.0.0.1:{port}/p"), timeout=1.0,
                           label="printer HQ")
        with pytest.raises(IppLinkDown, match="no answer from"):
            client.printer_status()
