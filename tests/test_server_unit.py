"""The print server in-process: `Server.tick()` steps, a real spool, simulated printers.

Fast and deterministic: no subprocess, no waiting on a scan interval; the test
drives the cycle itself (`tick_until`).  The server's local clock is injected
(`Server(clock=...)`) for the NIGHT window.  End-to-end behaviour with real
processes is in test_server_e2e.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from helpers_e2e import (
    PrinterSpec,
    done_records,
    make_etc,
    master_jobs,
    printed_ids,
    read_out,
    segments,
    write_printers,
)

from printnet import config as config_mod
from printnet.api import Station
from printnet.model import ControlAction, Priority
from printnet.scheduling import NOTE_NIGHT
from printnet.server import Server
from printnet.spool.layout import Spool
from printnet.spool.submit import Source, Submitter


class Clock:
    """A settable local wall clock for `Server(clock=...)`."""

    def __init__(self, hour: int, minute: int = 0) -> None:
        self.now = local(hour, minute)

    def set(self, hour: int, minute: int = 0) -> None:
        self.now = local(hour, minute)

    def __call__(self) -> datetime:
        return self.now


def local(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, 2, hour, minute).astimezone()


@pytest.fixture
def started(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Make and start in-process servers; all are shut down at the end."""
    servers: list[Server] = []

    def make(name: str, spools: Sequence[Path], printers: Sequence[PrinterSpec], *,
             etc_options: dict[str, Any] | None = None, **options: Any) -> Server:
        etc = make_etc(tmp_path / name.lower(), name, spools, printers,
                       **(etc_options or {}))
        server = Server(config_mod.load(etc), **options)
        server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        if server.state != "stopped":
            server.shutdown(requeue=True)


def tick_until(servers: Sequence[Server], predicate: Callable[[], object],
               timeout: float = 15.0, what: str = "the condition") -> None:
    """Step the servers until `predicate()` holds (the printers print in threads)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        for server in servers:
            server.tick()
        time.sleep(0.005)


def job(root: Path, tmp: Path, marker: str, printer: str, lines: int = 3,
        **options: Any) -> str:
    path = tmp / f"{marker}.txt"
    path.write_text("".join(f"@@{marker} line {i:05d}@@\n" for i in range(lines)))
    [req] = Station(root).submit([path], printer=printer, title=marker, **options)
    return req.id


def state(root: Path, job_id: str) -> str | None:
    found = master_jobs(root).get(job_id)
    if found is not None:
        return found.state.value
    record = done_records(root).get(job_id)
    return None if record is None else str(record["outcome"])


def spool(path: Path) -> Path:
    Spool.init(path)
    return path


def test_night_window_uses_the_servers_local_clock(tmp_path: Path,
                                                   started: Callable[..., Server]) -> None:
    root = spool(tmp_path / "spool")
    spec = PrinterSpec("P1", tmp_path / "s1/out/P1.prn")
    clock = Clock(12)
    server = started("S1", [root], [spec], etc_options={"night": (0, 6)}, clock=clock)
    night = job(root, tmp_path, "M1", "P1", priority="overnight")
    day = job(root, tmp_path, "M2", "P1")
    tick_until([server], lambda: state(root, day) == "completed", what="the day job")
    tick_until([server], lambda: master_jobs(root)[night].note == f"{NOTE_NIGHT} (opens 00:00)",
               what="the NIGHT note")
    for hour in (12, 23, 6):  # outside: 06:00 is the (excluded) end of the window
        clock.set(hour)
        for _ in range(3):
            server.tick()
        assert state(root, night) == "pending", hour
    clock.set(5, 59)  # inside
    tick_until([server], lambda: state(root, night) == "completed", what="the night job")
    assert printed_ids(spec.out) == [day, night]


def test_mounting_a_setup_by_editing_printers_cmd(tmp_path: Path,
                                                  started: Callable[..., Server]) -> None:
    root = spool(tmp_path / "spool")
    spec = PrinterSpec("P1", tmp_path / "s1/out/P1.prn")
    loads: list[int] = []
    server = started("S1", [root], [spec])
    etc = server.config.etc

    def loader() -> config_mod.Config:
        loads.append(1)
        return config_mod.load(etc, server_name="S1")

    server.loader = loader
    checks = job(root, tmp_path, "M1", "P1", setup="CHECKS", priority="high")
    plain = job(root, tmp_path, "M2", "P1")
    tick_until([server], lambda: state(root, plain) == "completed", what="the plain job")
    assert master_jobs(root)[checks].note == "Needs CHECKS"  # never blocks the others

    # A bad edit is logged, and the last good configuration stays.
    (etc / "printers.cmd").write_text(spec.line() + "SETUP CHECKS FORM=CHECKS LENGTH=1\n")
    assert server.reload_config(force=True) is False
    assert server.config.printers["P1"].setup == "STANDARD" and loads == [1]
    events = (root / "log" / "events.log").read_text()
    assert "keeping the last good one" in events and "printers.cmd:2" in events

    write_printers(etc, [replace(spec, setup="CHECKS")])
    tick_until([server], lambda: state(root, checks) == "completed", what="the CHECKS job")
    assert loads == [1, 1]  # through the server's loader (the CLI's keeps --spool)
    assert server.workers["P1"].setup == "CHECKS"
    assert done_records(root)[checks]["job"]["setup"] == "CHECKS"
    assert "printer P1: setup CHECKS mounted" in (root / "log" / "events.log").read_text()


def test_two_disks_one_printer_print_in_one_queue_order(tmp_path: Path,
                                                        started: Callable[..., Server]) -> None:
    a, b = spool(tmp_path / "A"), spool(tmp_path / "B")
    spec = PrinterSpec("P1", tmp_path / "s1/out/P1.prn", stopped=True)
    server = started("S1", [a, b], [spec])
    plan = [(a, "standard"), (b, "standard"), (a, "high"), (b, "overnight"), (b, "high"),
            (a, "standard"), (b, "standard"), (a, "overnight"), (b, "high"), (a, "high")]
    ids = {job(root, tmp_path, f"M{n}", "P1", priority=p): Priority(p).rank
           for n, (root, p) in enumerate(plan)}
    tick_until([server], lambda: len(master_jobs(a)) + len(master_jobs(b)) == len(ids),
               what="all jobs taken in")
    write_printers(server.config.etc, [replace(spec, stopped=False)])
    tick_until([server], lambda: len(printed_ids(spec.out)) == len(ids), what="all printed")
    # One queue over both disks: a high job on B does not wait behind A's standard ones.
    assert printed_ids(spec.out) == sorted(ids, key=lambda i: (ids[i], i))


def test_stop_grace_over_requeues_the_job_noted(tmp_path: Path,
                                                started: Callable[..., Server]) -> None:
    root = spool(tmp_path / "spool")
    spec = PrinterSpec("P1", tmp_path / "s1/out/P1.prn", baud="9600")
    server = started("S1", [root], [spec], stop_grace=0.3)
    long = job(root, tmp_path, "M1", "P1", lines=300)  # ~8 s at 9600 baud
    tick_until([server], lambda: server.workers["P1"].sent > 0, what="printing")
    server.shutdown(requeue=True)
    found = master_jobs(root)[long]
    assert found.state.value == "pending" and found.restarted == 1
    assert found.note == "requeued: server stopped mid-print"
    assert not (root / "locks" / "server.S1").exists()  # its lease released

    fast = started("S1", [root], [replace(spec, baud="inf")])
    tick_until([fast], lambda: state(root, long) == "completed", what="the reprint")
    last = [seg for i, seg in segments(read_out(spec.out)) if i == long][-1]
    assert last.count(b"@@M1 line") == 300


def test_cancel_taken_in_by_another_server_stops_the_printer(
        tmp_path: Path, started: Callable[..., Server]) -> None:
    root = spool(tmp_path / "spool")
    # A small printer buffer: little of the canceled job is left to print.
    slow = PrinterSpec("X1", tmp_path / "sa/out/X1.prn", baud="9600", buffer=256)
    other = PrinterSpec("Y1", tmp_path / "sb/out/Y1.prn")
    sa = started("SA", [root], [slow])
    sb = started("SB", [root], [other])
    doomed = job(root, tmp_path, "M1", "X1", lines=300)
    after = job(root, tmp_path, "M2", "X1")
    tick_until([sa, sb], lambda: sa.workers["X1"].sent > 0, what="X1 printing")

    # Only SB runs while the cancel arrives: it applies it; SA's printer knows nothing.
    user = master_jobs(root)[doomed].user
    ctl = Submitter(Spool.open(root), user=user, station="ws").control(
        ControlAction.CANCEL, [doomed])
    tick_until([sb], (root / "done" / f"{ctl.id}.json").exists, what="applied")
    assert sa.workers["X1"].has_job(doomed)

    # SA's next cycle sees the job gone from the master file and stops printing it.
    tick_until([sa, sb], lambda: state(root, after) == "completed", what="the next job")
    assert done_records(root)[doomed]["outcome"] == "canceled"
    ids = printed_ids(slow.out)
    assert ids == [doomed, after]
    doomed_part = segments(read_out(slow.out))[0][1]
    assert doomed_part.count(b"@@M1 line") < 300


def _submit_unchecked(root: Path, tmp: Path, printer: str) -> str:
    """A request for `printer` as a station that knew it would write it (no lookup)."""
    path = tmp / "cold.txt"
    path.write_text("cold start\n")
    station = Station(root)
    template = replace(station.template(printer="P1"), printer=printer)
    submitter = Submitter(station.spool, user=station.user, station=station.station)
    return submitter.submit(template, [Source("cold.txt", path=path)]).id


def test_cold_start_defers_a_request_for_a_printer_not_yet_published(
        tmp_path: Path, started: Callable[..., Server]) -> None:
    root = spool(tmp_path / "spool")
    first = started("S1", [root], [PrinterSpec("P1", tmp_path / "s1/out/P1.prn")])
    first.tick()
    job_id = _submit_unchecked(root, tmp_path, "P2")
    for _ in range(5):
        first.tick()
    assert not list((root / "rejected").iterdir()), "rejected before P2's server started"
    assert first.services[0].intake.deferred, "the request waits in intake"
    p2 = PrinterSpec("P2", tmp_path / "s2/out/P2.prn")
    second = started("S2", [root], [p2])
    tick_until([first, second], lambda: state(root, job_id) == "completed",
               what="the deferred job to print on P2")
    assert printed_ids(p2.out) == [job_id]


def test_after_the_warm_up_an_unknown_printer_is_rejected(
        tmp_path: Path, started: Callable[..., Server]) -> None:
    root = spool(tmp_path / "spool")
    server = started("S1", [root], [PrinterSpec("P1", tmp_path / "s1/out/P1.prn")])
    job_id = _submit_unchecked(root, tmp_path, "NOWHERE")
    server.tick()
    assert not list((root / "rejected").iterdir())
    server.started_mono -= server.warmup  # the warm-up is over
    reason_file = root / "rejected" / f"{job_id}.req.reason"
    tick_until([server], reason_file.exists, what="the rejection")
    reason = reason_file.read_text()
    assert "unknown printer or class 'NOWHERE'" in reason


def test_a_quiet_server_compacts_the_journal_so_a_listing_reads_one_snapshot(
        tmp_path: Path, started: Callable[..., Server],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The cost of `printnet status` must not depend on the last burst's journal."""
    from printnet.server import disk
    from printnet.spool.master import MasterStore

    monkeypatch.setattr(disk, "IDLE_COMPACT", 0.3)
    root = spool(tmp_path / "spool")
    spec = PrinterSpec("P1", tmp_path / "s1/out/P1.prn")
    server = started("S1", [root], [spec])
    ids = [job(root, tmp_path, f"Q{i}", "P1") for i in range(3)]
    held = job(root, tmp_path, "QH", "P1", hold=True)  # stays: the snapshot holds it

    def journal() -> int:
        store = MasterStore(Spool.open(root))
        store.refresh()
        return store.seq

    tick_until([server], lambda: all(state(root, i) == "completed" for i in ids),
               what="the jobs")
    assert journal() > 0  # the commits are journal entries until the spool is quiet
    tick_until([server], lambda: journal() == 0, timeout=10, what="the compaction")
    assert state(root, held) == "held"
    assert [r[1] for r in Station(root).listing()[1]] == [held]
