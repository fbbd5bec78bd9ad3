"""The printer worker on its own: a real spool, simulated printers, real threads.

Each test gives a `PrinterWorker` a claimed job (its request in received/, its
data in data/) and judges from the `Result` it reports and from what the
simulated printer printed.  Printer trouble is made with `simctl.sim_control`.
"""

from __future__ import annotations

import os
import queue
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from helpers_e2e import PrinterSpec, make_etc, printed_ids, read_out, segments, wait_for

from printnet import config as config_mod
from printnet.api import Station
from printnet.masterfile import Job
from printnet.model import JobState
from printnet.printers.simctl import sim_control
from printnet.spool.layout import REQ_SUFFIX, Spool
from printnet.worker import Assignment, PrinterWorker, Result


class Rig:
    """A spool, one simulated printer and its worker; results arrive in `results`."""

    def __init__(self, tmp: Path, **spec: Any) -> None:
        self.tmp = tmp
        self.spool, _ = Spool.init(tmp / "spool")
        self.spec = PrinterSpec("W1", tmp / "proj" / "out" / "W1.prn", **spec)
        etc = make_etc(tmp / "proj", "S1", [self.spool.root], [self.spec])
        self.config = config_mod.load(etc)
        self.results: queue.Queue[Result] = queue.Queue()
        self.events: list[str] = []
        self.worker = PrinterWorker(self.config.printers["W1"], self.config,
                                    on_result=self.results.put, on_event=self.events.append)
        self.n = 0

    def job(self, lines: int = 3, **options: Any) -> Assignment:
        """A job claimed for W1: request moved to received/, as intake does."""
        self.n += 1
        path = self.tmp / f"f{self.n}.txt"
        path.write_bytes(text(f"M{self.n}", lines))
        [req] = Station(self.spool.root).submit([path], printer="W1", **options)
        os.rename(self.spool.new / (req.id + REQ_SUFFIX),
                  self.spool.received / (req.id + REQ_SUFFIX))
        return Assignment(self.spool, Job.from_request(req), "token")

    def result(self, timeout: float = 20.0) -> Result:
        return self.results.get(timeout=timeout)

    def out(self) -> bytes:
        return read_out(self.spec.out)

    def set(self, state: str) -> None:
        sim_control(self.spec.out, state)


def text(marker: str, lines: int) -> bytes:
    return "".join(f"@@{marker} line {i:05d}@@ the quick brown fox\n"
                   for i in range(lines)).encode()


def lines_of(segment: bytes, marker: str) -> list[int]:
    import re

    return [int(n) for n in re.findall(rb"@@" + marker.encode() + rb" line (\d+)@@", segment)]


@pytest.fixture
def rig_factory(tmp_path: Path) -> Iterator[Any]:
    made: list[Rig] = []

    def make(**spec: Any) -> Rig:
        rig = Rig(tmp_path / f"rig{len(made)}", **spec)
        made.append(rig)
        return rig

    yield make
    for rig in made:
        rig.worker.stop(abandon=True)
        rig.worker.join(5)


def test_prints_header_then_job_and_counts_pages(rig_factory: Any) -> None:
    rig = rig_factory()
    a = rig.job(lines=100, copies=2)
    rig.worker.assign(a)
    result = rig.result()
    assert result.outcome is JobState.COMPLETED
    assert result.pages == 1 + 2 * 2  # header page + 2 pages (64 body lines each) x 2
    assert result.size == len(rig.out())
    [(job_id, segment)] = segments(rig.out())
    assert job_id == a.job.id
    assert lines_of(segment, "M1") == list(range(100)) * 2
    assert b"Page 2 of 2" in segment
    assert not rig.worker.busy and rig.worker.state == "idle"


def test_retry_resumes_where_the_printer_stopped(rig_factory: Any) -> None:
    rig = rig_factory(baud="38400", stall=0.5, retry=0.1)
    a = rig.job(lines=200)  # ~8 KB, ~2 s
    rig.worker.assign(a)
    wait_for(lambda: len(rig.out()) > 2000, 10, "printing")
    rig.set("offline")
    wait_for(lambda: rig.worker.state == "offline", 5, "the printer marked offline")
    status = rig.worker.status()
    assert status["reasons"] and "took no bytes" in status["reasons"][0]
    assert status["job"] == a.job.id
    size = len(rig.out())
    wait_for(lambda: any("offline" in e for e in rig.events), 1, "the event")
    assert rig.results.empty() and len(rig.out()) == size  # keeps the job; nothing moves
    rig.set("online")
    result = rig.result()
    assert result.outcome is JobState.COMPLETED
    assert lines_of(rig.out(), "M1") == list(range(200))  # once each, in order
    assert rig.worker.state == "idle" and rig.worker.status()["reasons"] == []


def test_a_printer_that_stops_with_the_job_in_its_buffer_does_not_hang_the_worker(
        rig_factory: Any) -> None:
    # The whole job fits the printer's buffer: every byte is sent at once, and only
    # waiting for it to be printed can notice the trouble (flush() never returns).
    rig = rig_factory(baud="19200", stall=0.5, retry=0.1, buffer=8192)
    a = rig.job(lines=60)  # ~2.5 KB
    rig.worker.assign(a)
    wait_for(lambda: rig.worker.sent == rig.worker.total > 0, 5,
             "every byte sent")
    rig.set("offline")
    wait_for(lambda: rig.worker.state == "offline", 5, "the printer marked offline")
    assert "still in its buffer" in rig.worker.status()["reasons"][0]
    rig.set("online")
    assert rig.result().outcome is JobState.COMPLETED
    assert lines_of(rig.out(), "M1") == list(range(60))


@pytest.mark.parametrize(("state", "says"), [("paperout", "out of paper"),
                                            ("offline", "offline")])
def test_the_printer_says_why_it_takes_nothing(rig_factory: Any, state: str,
                                              says: str) -> None:
    # Issue 16: paper out shows as paper out, not as "took no bytes for 1.0 s".
    rig = rig_factory(baud="38400", stall=0.5, retry=0.1)
    rig.worker.assign(rig.job(lines=200))
    wait_for(lambda: len(rig.out()) > 2000, 10, "printing")
    rig.set(state)
    wait_for(lambda: rig.worker.state == "offline", 5, "the printer marked offline")
    [reason] = rig.worker.status()["reasons"]
    assert f": {says} (took no bytes for " in reason, reason
    rig.set("online")
    assert rig.result().outcome is JobState.COMPLETED
    assert lines_of(rig.out(), "M1") == list(range(200))


def test_paper_out_with_the_job_in_its_buffer_says_so(rig_factory: Any) -> None:
    rig = rig_factory(baud="19200", stall=0.5, retry=0.1, buffer=8192)
    rig.worker.assign(rig.job(lines=60))  # ~2.5 KB: all of it in the printer's buffer
    wait_for(lambda: rig.worker.sent == rig.worker.total > 0, 5, "every byte sent")
    rig.set("paperout")
    wait_for(lambda: rig.worker.state == "offline", 5, "the printer marked offline")
    [reason] = rig.worker.status()["reasons"]
    assert reason.startswith("printer W1: out of paper (printed nothing for "), reason
    assert "still in its buffer" in reason
    rig.set("online")
    assert rig.result().outcome is JobState.COMPLETED


def test_hold_policy_holds_the_job_and_the_printer_comes_back_by_itself(
        rig_factory: Any) -> None:
    rig = rig_factory(baud="38400", stall=0.5, retry=0.1, errors="HOLD")
    rig.worker.assign(rig.job(lines=300))
    wait_for(lambda: len(rig.out()) > 2000, 10, "printing")
    rig.set("offline")
    result = rig.result()
    assert result.outcome is JobState.HELD and "printer trouble" in result.reason
    assert rig.worker.state == "offline" and not rig.worker.online and not rig.worker.busy
    rig.set("online")
    # Nothing is sent to find out: the idle worker looks at the printer (DSR).
    wait_for(lambda: rig.worker.state == "idle", 5, "the printer back online")
    b = rig.job()
    rig.worker.assign(b)
    assert rig.result().outcome is JobState.COMPLETED
    assert printed_ids(rig.spec.out)[-1] == b.job.id


def test_abort_policy_aborts_with_the_reason(rig_factory: Any) -> None:
    rig = rig_factory(baud="38400", stall=0.5, retry=0.1, errors="ABORT")
    rig.worker.assign(rig.job(lines=300))
    wait_for(lambda: len(rig.out()) > 2000, 10, "printing")
    rig.set("paperout")
    result = rig.result()
    assert result.outcome is JobState.ABORTED and "printer trouble" in result.reason
    assert 0 < result.pages < 6
    rig.set("online")
    wait_for(lambda: rig.worker.online, 5, "the printer back online")


def test_abandon_hands_the_job_back_interrupted(rig_factory: Any) -> None:
    rig = rig_factory(baud="9600")
    a = rig.job(lines=300)
    rig.worker.assign(a)
    wait_for(lambda: rig.worker.has_job(a.job.id) and rig.worker.sent > 0, 10, "printing")
    rig.worker.stop(abandon=True)
    result = rig.result()
    assert result.outcome is JobState.PENDING and result.interrupted
    assert rig.worker.join(5)
    assert rig.worker.busy  # a stopped worker takes nothing more
    with pytest.raises(Exception, match="stopping"):
        rig.worker.assign(rig.job())


def test_stopping_worker_finishes_its_job_and_takes_no_new_one(rig_factory: Any) -> None:
    rig = rig_factory()
    a = rig.job()
    rig.worker.assign(a)
    rig.worker.stop(abandon=False)
    assert rig.result().outcome is JobState.COMPLETED
    assert rig.worker.join(5) and rig.worker.busy and not rig.worker.has_job(a.job.id)


def test_changed_data_aborts_the_job(rig_factory: Any) -> None:
    rig = rig_factory()
    a = rig.job()
    data = rig.spool.job_data(a.job.id) / "0"
    data.write_bytes(b"something else\n")
    rig.worker.assign(a)
    result = rig.result()
    assert result.outcome is JobState.ABORTED and "changed since it was submitted" in result.reason
    assert rig.out() == b""


def test_reconfigure_takes_a_new_setup_at_the_next_job(rig_factory: Any) -> None:
    rig = rig_factory()
    printer = rig.config.printers["W1"]
    rig.worker.reconfigure(replace(printer, setup="CHECKS"), rig.config)
    assert rig.worker.setup == "CHECKS" and rig.worker.status()["form"] == "CHECKS"
    rig.worker.assign(rig.job(lines=40))
    result = rig.result()
    assert result.setup == "CHECKS" and result.pages == 1 + 2  # 20 body lines a page
