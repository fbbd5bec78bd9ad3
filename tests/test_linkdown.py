"""When the link is down (docs/SITES.md): LINKDOWN=QUEUE, LINKHOLD, LOCAL and REJECT.

A real branch `printnet server` drives ``PRINTER HQ PORT=ipp://127.0.0.1:N/...``
where nothing listens on N (the link is down), beside a local printer; later a
simulated IPP printer (tests/ipp_printer_sim.py) is started on N: the link is
restored.  The spool's done/ records, the status file and the simulator's own
records are the oracle.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers_e2e import (
    SETUPS,
    ServerProcess,
    done_records,
    logs,
    make_etc,
    printer_info,
    printnet,
    published,
    server_env,
    start_server,
    wait_for,
    write_atomic_text,
)
from helpers_gateway import start_gateway
from helpers_ipp import attr, ipp, ipp_message
from ipp_printer_sim import IppPrinterSim

from printnet import links
from printnet.api import Station
from printnet.errors import LinkDown
from printnet.ipp.enums import GroupTag, Operation, Status
from printnet.spool.layout import Spool

RETRY = 0.2


@pytest.fixture
def servers() -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for s in started:
        if s.poll() is None:
            s.kill9()


@pytest.fixture
def sims() -> Iterator[list[IppPrinterSim]]:
    started: list[IppPrinterSim] = []
    yield started
    for s in started:
        s.stop()


def free_port() -> int:
    """A port on which nothing listens (now): the central site is unreachable."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def branch(tmp: Path, port: int, servers: list[ServerProcess], link: str = "",
           local: str = "") -> Path:
    """A branch server BR: printer HQ (ipp:// to `port`, LINKNAME=HQ, `link` settings)
    and a local printer LOCAL (a simulated serial printer into local.prn)."""
    root = tmp / "spool"
    Spool.init(root)
    etc = make_etc(tmp / "proj", "BR", [root], [], extra_server="SITE BRANCH1\n")
    out = tmp / "proj" / "local.prn"
    write_atomic_text(etc / "printers.cmd",
                      f"PRINTER HQ PORT=ipp://127.0.0.1:{port}/ipp/print STALL=1 "
                      f"RETRY={RETRY} LINKNAME=HQ {link}\n"
                      f"PRINTER LOCAL PORT=sim://LOCAL?out={out}&baud=inf STALL=1 RETRY=0.2 "
                      f"{local}\n" + SETUPS)
    servers.append(start_server(etc, "BR", env=server_env(tmp / "run")))
    wait_for(lambda: published(root, "BR"), 30, "BR up", on_timeout=lambda: logs(servers))
    return root


def submit(root: Path, tmp: Path, text: str, printer: str = "HQ") -> str:
    path = tmp / f"{abs(hash(text))}.txt"
    path.write_text(text)
    [req] = Station(root).submit([path], printer=printer, title=text[:20])
    return req.id


def job_view(root: Path, job: str) -> dict[str, Any] | None:
    view = Station(root).status(jobs=[job])
    return next((j for j in view.jobs if j.get("id") == job), None)


def link_of(root: Path) -> dict[str, Any]:
    return (printer_info(root, "BR", "HQ") or {}).get("link") or {}


def test_queue_waits_with_the_note_backs_off_and_prints_once_the_link_is_back(
        tmp_path: Path, servers: list[ServerProcess], sims: list[IppPrinterSim]) -> None:
    port = free_port()
    root = branch(tmp_path, port, servers)
    job = submit(root, tmp_path, "for the central office\n")
    wait_for(lambda: link_of(root).get("state") == "down", 30, "the link seen down",
             on_timeout=lambda: logs(servers))
    down_at = time.monotonic()
    note = links.WAITING + "HQ since "
    wait_for(lambda: (job_view(root, job) or {}).get("note", "").startswith(note), 30,
             "the waiting note", on_timeout=lambda: logs(servers))
    since = link_of(root)["since_local"]
    assert (job_view(root, job) or {})["note"] == f"waiting for link to HQ since {since}"
    assert (job_view(root, job) or {})["state"] == "pending"

    # `printnet status` shows it, and the console's CH with the printer's reason.
    shown = printnet("--spool", str(root), "status").stdout
    assert f"waiting for link to HQ since {since}" in shown, shown
    etc = tmp_path / "proj" / "etc"
    ch = printnet("--etc", str(etc), "console", "--server", "BR", "CH",
                  env=server_env(tmp_path / "run")).stdout
    assert f"Printer HQ: offline (link to HQ down since {since}: " in ch, ch
    assert f"[waiting for link to HQ since {since}]" in ch, ch

    # Capped exponential back-off: RETRY= doubled per failed attempt, as published.
    seen: list[tuple[int, float]] = []

    def attempts(n: int) -> bool:
        link = link_of(root)
        if link.get("state") == "down":
            seen.append((int(link["attempts"]), float(link["retry"])))
        return bool(seen) and seen[-1][0] >= n

    wait_for(lambda: attempts(5), 60, "5 attempts", on_timeout=lambda: logs(servers))
    took = time.monotonic() - down_at
    for n, retry in seen:
        assert retry == pytest.approx(links.backoff(RETRY, n), abs=1e-3)
    # 4 waits of 0.2, 0.4, 0.8, 1.6 s: 3 s; at a fixed RETRY= it would be 0.8 s.
    # `down_at` is when the test saw the link down, up to a status publication after
    # the first attempt failed, so the bound keeps a margin: twice the fixed figure.
    assert took >= 1.6, (took, seen)
    assert job not in done_records(root)  # never deleted, never ended

    # The local printer and intake go on meanwhile.
    local = submit(root, tmp_path, "printed here meanwhile\n", printer="LOCAL")
    wait_for(lambda: local in done_records(root), 30, "the local job",
             on_timeout=lambda: logs(servers))
    assert done_records(root)[local]["outcome"] == "completed"
    assert b"printed here meanwhile" in (tmp_path / "proj" / "local.prn").read_bytes()
    assert link_of(root).get("state") == "down"

    # The link is restored: the job prints there, once, and carries its site.
    sim = IppPrinterSim(bind=port)
    sims.append(sim)
    wait_for(lambda: job in done_records(root), 60, "the job after the restore",
             on_timeout=lambda: logs(servers))
    assert done_records(root)[job]["outcome"] == "completed"
    [req] = sim.requests
    assert req.attrs["printnet-job-id"] == job
    assert req.attrs["printnet-site"] == "BRANCH1"
    wait_for(lambda: link_of(root).get("state") == "up", 30, "the link published up",
             on_timeout=lambda: logs(servers))
    assert "the link to HQ is back" in logs(servers)


def test_linkhold_holds_the_jobs_and_tells_the_operator(
        tmp_path: Path, servers: list[ServerProcess]) -> None:
    root = branch(tmp_path, free_port(), servers, link="LINKHOLD=0.0003")  # ~1.1 s
    job = submit(root, tmp_path, "held after a while\n")
    wait_for(lambda: (job_view(root, job) or {}).get("state") == "held", 30,
             "the job held", on_timeout=lambda: logs(servers))
    note = (job_view(root, job) or {})["note"]
    assert note.startswith("held: the link to HQ is down since ") and "LINKHOLD" in note
    wait_for(lambda: "OPERATOR: printer HQ" in logs(servers), 10, "the operator told",
             on_timeout=lambda: logs(servers))
    assert "1 job(s) held" in logs(servers)
    # Released (by its owner here), it waits again and is not held a second time in
    # this outage: LINKHOLD's time has long passed while further attempts fail.
    printnet("--spool", str(root), "release", job)
    wait_for(lambda: (job_view(root, job) or {}).get("state") == "pending", 30,
             "the job released", on_timeout=lambda: logs(servers))
    later = int(link_of(root)["attempts"]) + 2
    wait_for(lambda: int(link_of(root).get("attempts", 0)) >= later, 30, "more attempts",
             on_timeout=lambda: logs(servers))
    assert (job_view(root, job) or {})["state"] == "pending"
    assert (job_view(root, job) or {})["note"].startswith("waiting for link to HQ since ")
    assert logs(servers).count("OPERATOR: printer HQ") == 1
    assert job not in done_records(root)


def test_local_failover_prints_on_the_local_printer_and_records_it(
        tmp_path: Path, servers: list[ServerProcess]) -> None:
    root = branch(tmp_path, free_port(), servers, link="LINKDOWN=LOCAL PRINTER=LOCAL")
    job = submit(root, tmp_path, "failed over text\n")
    wait_for(lambda: job in done_records(root), 60, "the job printed locally",
             on_timeout=lambda: logs(servers))
    rec = done_records(root)[job]
    assert rec["outcome"] == "completed"
    assert rec["job"]["assigned"] == "LOCAL"
    assert rec["failover"]["from"] == "HQ" and rec["failover"]["to"] == "LOCAL"
    assert "the link to HQ is down since" in rec["failover"]["note"]
    assert b"failed over text" in (tmp_path / "proj" / "local.prn").read_bytes()
    assert f"job {job}: failed over from HQ to LOCAL" in logs(servers)


def test_failed_over_jobs_not_yet_started_go_back_when_the_link_returns(
        tmp_path: Path, servers: list[ServerProcess], sims: list[IppPrinterSim]) -> None:
    """LOCAL stopped: the failed-over job waits there, not started; the link comes back
    and it moves back to HQ and prints there (no failover in its record)."""
    port = free_port()
    root = branch(tmp_path, port, servers, link="LINKDOWN=LOCAL PRINTER=LOCAL",
                  local="STOPPED=YES")
    job = submit(root, tmp_path, "back home\n")
    wait_for(lambda: (job_view(root, job) or {}).get("printer") == "LOCAL", 30,
             "the job moved to LOCAL", on_timeout=lambda: logs(servers))
    assert (job_view(root, job) or {})["note"].startswith("failed over from HQ to LOCAL: ")
    sim = IppPrinterSim(bind=port)
    sims.append(sim)
    wait_for(lambda: job in done_records(root), 60, "the job printed at HQ",
             on_timeout=lambda: logs(servers))
    rec = done_records(root)[job]
    assert rec["outcome"] == "completed" and rec["job"]["assigned"] == "HQ"
    assert "failover" not in rec
    assert len(sim.requests) == 1
    assert f"job {job}: back to HQ (link up)" in logs(servers)
    assert not (tmp_path / "proj" / "local.prn").exists() or \
        b"back home" not in (tmp_path / "proj" / "local.prn").read_bytes()


def test_reject_refuses_new_jobs_at_request_while_the_link_is_down(
        tmp_path: Path, servers: list[ServerProcess], sims: list[IppPrinterSim]) -> None:
    port = free_port()
    root = branch(tmp_path, port, servers, link="LINKDOWN=REJECT")
    first = submit(root, tmp_path, "queued before it was known down\n")
    wait_for(lambda: link_of(root).get("state") == "down", 30, "the link seen down",
             on_timeout=lambda: logs(servers))
    wait_for(lambda: (printer_info(root, "BR", "HQ") or {}).get("accepting") is False, 30,
             "HQ shown not accepting", on_timeout=lambda: logs(servers))
    assert "refuses new jobs" in (printer_info(root, "BR", "HQ") or {})["reject_reason"]
    doc = tmp_path / "new.txt"
    doc.write_text("refused\n")
    proc = printnet("--spool", str(root), "request", "-P", "HQ", str(doc), check=False)
    assert proc.returncode != 0
    assert "HQ refuses new jobs: the link to HQ is down since" in proc.stderr, proc.stderr
    assert "LINKDOWN=REJECT" in proc.stderr
    with pytest.raises(LinkDown, match="refuses new jobs"):
        Station(root).submit([doc], printer="HQ")
    # A station that does not look (an older one) gets it refused by intake, with
    # the reason in rejected/.
    from printnet.spool.submit import Source, Submitter
    tpl = Station(root).template(printer="HQ")
    [blind] = Submitter(Spool.open(root), user=tpl.user, station=tpl.station).submit_many(
        [(tpl, [Source("d", path=doc)])])
    reason_file = root / "rejected" / f"{blind.id}.req.reason"
    wait_for(reason_file.exists, 30, "intake to reject it", on_timeout=lambda: logs(servers))
    assert "HQ refuses new jobs: the link to HQ is down since" in reason_file.read_text()
    # The gateway refuses it too, and says why the printer does not accept jobs.
    gw = start_gateway(root, tmp_path / "proj" / "etc", tmp_path / "gw.log",
                       server_env(tmp_path / "run"))
    try:
        uri = f"ipp://127.0.0.1:{gw.ipp}/ipp/print/HQ"
        answer = ipp(gw.ipp, ipp_message(Operation.PRINT_JOB, uri, data=b"x\n"),
                     path="/ipp/print/HQ")
        assert answer.code == Status.SERVER_ERROR_NOT_ACCEPTING_JOBS
        said = attr(answer, "status-message", GroupTag.OPERATION)
        assert "HQ refuses new jobs: the link to HQ is down since" in said
        info = ipp(gw.ipp, ipp_message(Operation.GET_PRINTER_ATTRIBUTES, uri),
                   path="/ipp/print/HQ")
        assert attr(info, "printer-is-accepting-jobs", GroupTag.PRINTER) is False
        assert "connecting-to-device" in str(attr(info, "printer-state-reasons",
                                                  GroupTag.PRINTER))
    finally:
        gw.stop()
    # The local printer takes jobs as ever.
    local = submit(root, tmp_path, "local is fine\n", printer="LOCAL")
    wait_for(lambda: local in done_records(root), 30, "the local job",
             on_timeout=lambda: logs(servers))
    # Link back: the queued job prints, new ones are taken again.
    sims.append(IppPrinterSim(bind=port))
    wait_for(lambda: first in done_records(root), 60, "the first job after the restore",
             on_timeout=lambda: logs(servers))
    wait_for(lambda: link_of(root).get("state") == "up", 30, "the link published up",
             on_timeout=lambda: logs(servers))
    again = submit(root, tmp_path, "accepted again\n")
    wait_for(lambda: again in done_records(root), 60, "a new job after the restore",
             on_timeout=lambda: logs(servers))
    assert done_records(root)[again]["outcome"] == "completed"
