"""The ``ipp://`` port against printnet's own gateway: a branch prints at central.

Central: a spool, a `printnet server` with the simulated printer LOCAL and a
`printnet gateway` (helpers_ipp.make_rig).  Branch: its own spool and server whose
printer HQ is ``PORT=ipp://127.0.0.1:P/ipp/print/LOCAL``.  The central printer's
output file and the central spool's records are the oracle.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers_e2e import (
    HEADER_TEMPLATE,
    SETUPS,
    ServerProcess,
    accounting,
    done_records,
    logs,
    make_etc,
    printer_info,
    published,
    read_out,
    server_env,
    start_server,
    wait_for,
    write_atomic_text,
)
from helpers_ipp import Rig, make_rig

from printnet.api import Station
from printnet.printers.simctl import sim_control
from printnet.spool.layout import Spool

pytestmark = pytest.mark.slow


@pytest.fixture
def central(tmp_path: Path) -> Iterator[Rig]:
    rig = make_rig(tmp_path / "central")
    yield rig
    rig.stop()


@pytest.fixture
def branch(tmp_path: Path, central: Rig) -> Iterator[tuple[Path, ServerProcess]]:
    root = tmp_path / "branch" / "spool"
    Spool.init(root)
    etc = make_etc(tmp_path / "branch" / "proj", "B1", [root], [])
    (etc / "hhq.hdr").write_text(HEADER_TEMPLATE)
    write_atomic_text(etc / "printers.cmd",
                      f"PRINTER HQ PORT={central.uri('LOCAL')}?forward=no SETUP=STANDARD "
                      f"ERRORS=RETRY "
                      f"STALL=2 RETRY=0.5 HEADER=HHQ\n" + SETUPS)
    server = start_server(etc, "B1", env=server_env(tmp_path / "branch" / "run"))
    try:
        wait_for(lambda: published(root, "B1"), 60, "B1 up", on_timeout=server.log_text)
        yield root, server
    finally:
        server.stop()


def submit(root: Path, tmp: Path, text: str, title: str, copies: int = 1) -> str:
    path = tmp / f"{title.replace(' ', '_')}.txt"
    path.write_text(text)
    [req] = Station(root).submit([path], printer="HQ", title=title, copies=copies)
    return req.id


def test_a_branch_job_prints_at_central_with_its_title_and_copies(
        tmp_path: Path, central: Rig, branch: tuple[Path, ServerProcess]) -> None:
    root, server = branch
    job = submit(root, tmp_path, "memo from the branch office\n", "Branch memo", copies=2)
    wait_for(lambda: job in done_records(root), 120, "the branch job done",
             on_timeout=lambda: server.log_text() + central.server.log_text())
    assert done_records(root)[job]["outcome"] == "completed"
    # Central printed it: both copies, once, under the branch's title.
    assert read_out(central.out).count(b"memo from the branch office") == 2
    central_done = done_records(central.spool)
    [rec] = [r for r in central_done.values() if r["job"]["title"] == "Branch memo"]
    assert rec["outcome"] == "completed"
    [line] = [x for x in central.accounting() if x["job"] == rec["job"]["id"]]
    assert line["outcome"] == "completed" and line["via"] == "ipp:trust"
    # The branch recorded completed only after central had completed it.
    mine = next(x for x in accounting(root) if x["job"] == job)
    assert mine["outcome"] == "completed" and mine["finished"] >= rec["finished"]


def test_central_printer_trouble_shows_at_the_branch_and_the_job_waits(
        tmp_path: Path, central: Rig, branch: tuple[Path, ServerProcess]) -> None:
    root, server = branch
    sim_control(central.out, "paperout")
    job = submit(root, tmp_path, "waits for paper at HQ\n", "Paper wait")

    def reason() -> str:
        return " ".join((printer_info(root, "B1", "HQ") or {}).get("reasons", []))

    wait_for(lambda: "out of paper" in reason(), 120, "the central reason at the branch",
             on_timeout=lambda: logs([server, central.server]))
    assert job not in done_records(root)
    sim_control(central.out, "online")
    wait_for(lambda: job in done_records(root), 120, "the branch job done",
             on_timeout=lambda: logs([server, central.server]))
    assert done_records(root)[job]["outcome"] == "completed"
    assert read_out(central.out).count(b"waits for paper at HQ") == 1
