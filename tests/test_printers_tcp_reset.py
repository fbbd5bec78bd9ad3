"""A raw TCP printer that resets the connection mid-job (issue 16, item 1).

A real `printnet server` subprocess prints to ``PRINTER NET
PORT=socket://127.0.0.1:P STALL=2 RETRY=1``, where P is a listener of this
test: a thread that reads each connection, resets some of them (``SO_LINGER``
0, so the close sends RST) at chosen byte counts, then refuses connections
(nothing listens) for a while before it accepts again.  Its own record of
every connection is the oracle, never printnet's records:

* every record of every job arrives, in order and without a gap, within each
  copy the printer saw, and some connection saw all of it;
* the last connection that carried a job received it to its end and was
  closed by the sender (EOF), never reset — so no job is recorded completed
  that the printer did not receive to the end;
* a job the printer saw on more than one connection is recorded as a reprint
  (``restarted`` in done/ and in the accounting line), and every later
  connection begins with the page that says ``RESTARTED``.
"""

from __future__ import annotations

import random
import re
import select
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pytest
from helpers_e2e import (
    HEADER_TEMPLATE,
    JOB_LINE,
    SETUPS,
    ServerProcess,
    accounting,
    done_records,
    logs,
    make_etc,
    published,
    server_env,
    start_server,
    wait_for,
    write_atomic_text,
)

from printnet.api import Station
from printnet.spool.layout import Spool

RECORD = re.compile(rb"@@J(\d+) rec (\d+)@@")
AT_EOF = -1  # a reset point: read to the sender's EOF, then reset instead of closing


@dataclass
class Connection:
    data: bytearray = field(default_factory=bytearray)
    ended: str = ""  # "eof" (the sender closed; we closed too) or "reset" (we reset it)


@dataclass(frozen=True)
class Plan:
    reset_after: int | None  # bytes to read before the reset; None: never; AT_EOF
    refuse: float = 0.0  # seconds nothing listens after the reset


class ResettingPrinter:
    """A raw TCP printer on 127.0.0.1 that resets and refuses connections as `plan` says."""

    def __init__(self, plan: Callable[[int], Plan], gate: threading.Event | None = None) -> None:
        self.plan = plan
        self.gate = gate  # when given, reading waits until it is set
        probe = socket.create_server(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.connections: list[Connection] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.error: BaseException | None = None
        self.listening = self._listen()
        self.thread = threading.Thread(target=self._guarded, daemon=True)
        self.thread.start()

    def _listen(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(4)
        return sock

    def _guarded(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # reported by stop()
            self.error = exc

    def _run(self) -> None:
        n = 0
        while not self.stopping.is_set():
            if not select.select([self.listening], [], [], 0.1)[0]:
                continue
            conn, _ = self.listening.accept()
            plan = self.plan(n)
            n += 1
            record = Connection()
            with self.lock:
                self.connections.append(record)
            reset = self._serve(conn, record, plan.reset_after)
            if reset:
                self.listening.close()  # refuse: nothing listens for a while
                self.stopping.wait(plan.refuse)
                self.listening = self._listen()
        self.listening.close()

    def _serve(self, conn: socket.socket, record: Connection, reset_after: int | None) -> bool:
        """Read one connection; True when it was reset."""
        conn.settimeout(60)
        if self.gate is not None:
            self.gate.wait(60)
        while True:
            want = 1 << 16
            if reset_after is not None and reset_after >= 0:
                want = min(want, reset_after - len(record.data))
            if want <= 0:
                break
            chunk = conn.recv(want)
            if not chunk:
                if reset_after != AT_EOF:
                    record.ended = "eof"
                    conn.close()
                    return False
                break
            with self.lock:
                record.data += chunk
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()  # RST: whatever it had not read is gone
        record.ended = "reset"
        return True

    def stop(self) -> list[Connection]:
        self.stopping.set()
        self.thread.join(30)
        if self.error is not None:
            raise AssertionError(f"the test printer failed: {self.error!r}")
        return self.connections


def always(plan: Plan, n: int) -> Plan:
    return plan


def body(k: int, records: int) -> bytes:
    """Job J<k>: `records` numbered records of 62 bytes (a raw job)."""
    return b"".join(b"@@J%d rec %06d@@ abcdefghijklmnopqrstuvwxyz0123456789ABC\n" % (k, i)
                    for i in range(records))


@pytest.fixture
def servers() -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for s in started:
        if s.poll() is None:
            s.kill9()


def net_server(tmp: Path, printer: ResettingPrinter,
               servers: list[ServerProcess]) -> tuple[Path, ServerProcess]:
    """A spool and a `printnet server` whose one printer is the resetting TCP printer."""
    root = tmp / "spool"
    Spool.init(root)
    etc = make_etc(tmp / "proj", "S1", [root], [])
    (etc / "hnet.hdr").write_text(HEADER_TEMPLATE)
    write_atomic_text(etc / "printers.cmd",
                      f"PRINTER NET PORT=socket://127.0.0.1:{printer.port} SETUP=STANDARD "
                      f"STALL=2 RETRY=1 HEADER=HNET\n" + SETUPS)
    server = start_server(etc, "S1", env=server_env(tmp / "run"))
    servers.append(server)
    wait_for(lambda: published(root, "S1"), 30, "S1 up", on_timeout=lambda: logs(servers))
    return root, server


def submit_raw(root: Path, tmp: Path, jobs: dict[int, int]) -> dict[int, str]:
    """Raw jobs J<k> of `records` records each, one after the other; k -> job id."""
    ids = {}
    for k, records in jobs.items():
        path = tmp / f"J{k}.raw"
        path.write_bytes(body(k, records))
        [req] = Station(root).submit([path], printer="NET", raw=True, title=f"J{k}")
        ids[k] = req.id
    return ids


def judge(connections: list[Connection], jobs: dict[int, int], ids: dict[int, str],
          root: Path) -> dict[int, int]:
    """Check the oracle's rules (module docstring); k -> connections that carried J<k>."""
    carried: dict[int, list[Connection]] = {k: [] for k in jobs}
    for c in connections:
        data = bytes(c.data)
        found = {ids_k for ids_k, job in ids.items()
                 if job.encode() in {m.group(1) for m in JOB_LINE.finditer(data)}}
        recs = [(int(m.group(1)), int(m.group(2))) for m in RECORD.finditer(data)]
        found |= {k for k, _ in recs}
        assert len(found) <= 1, f"one connection carried several jobs: {found}"
        if not found:
            continue
        [k] = found
        numbers = [n for kk, n in recs if kk == k]
        assert numbers == list(range(len(numbers))), (
            f"J{k}: records out of order or missing within a copy: "
            f"{numbers[:5]}... ({len(numbers)} records)")
        carried[k].append(c)
    done = done_records(root)
    lines = {line["job"]: line for line in accounting(root)}
    for k, records in jobs.items():
        job_id = ids[k]
        assert carried[k], f"J{k} never reached the printer"
        last = carried[k][-1]
        full = body(k, records)
        assert last.ended == "eof" and bytes(last.data).endswith(full), (
            f"J{k} recorded {done[job_id]['outcome']} but its last connection "
            f"({last.ended}, {len(last.data)} bytes) did not receive it to the end")
        assert done[job_id]["outcome"] == "completed"
        if len(carried[k]) > 1:
            assert done[job_id]["job"]["restarted"] >= len(carried[k]) - 1, (
                f"J{k} was sent {len(carried[k])} times but recorded "
                f"restarted={done[job_id]['job']['restarted']}")
            assert lines[job_id]["restarted"] >= len(carried[k]) - 1
            for again in carried[k][1:]:
                assert b"*** RESTARTED: job " + job_id.encode() in bytes(again.data)[:4096]
    return {k: len(v) for k, v in carried.items()}


def test_a_printer_that_resets_after_1_mb_gets_the_whole_job_again(
        tmp_path: Path, servers: list[ServerProcess]) -> None:
    """The issue's reproduction: a 6.2 MB raw job, reset after 1 MB, refused for 6 s."""
    printer = ResettingPrinter(
        lambda n: Plan(reset_after=1_000_000, refuse=6.0) if n == 0 else Plan(None))
    try:
        root, server = net_server(tmp_path, printer, servers)
        jobs = {1: 100_000}  # 6.2 MB
        ids = submit_raw(root, tmp_path, jobs)
        wait_for(lambda: ids[1] in done_records(root), 120, "the job finished",
                 on_timeout=lambda: logs(servers))
        assert server.stop() == 0
    finally:
        connections = printer.stop()
    carried = judge(connections, jobs, ids, root)
    assert carried == {1: 2}
    first, second = connections
    assert first.ended == "reset" and len(first.data) == 1_000_000
    assert RECORD.findall(bytes(second.data))[-1] == (b"1", b"099999")
    assert done_records(root)[ids[1]]["job"]["restarted"] == 1
    assert done_records(root)[ids[1]]["bytes"] > len(body(1, 100_000))  # + header page
    assert "connection broke" in server.log_text()


def test_a_printer_that_resets_at_random_points(
        tmp_path: Path, servers: list[ServerProcess]) -> None:
    seed = random.randrange(1 << 32)
    rng = random.Random(seed)
    jobs = {k: rng.randrange(500, 12_000) for k in range(1, 7)}  # 31 KB .. 744 KB each
    resets = 0

    def plan(n: int) -> Plan:
        nonlocal resets
        if resets >= 8 or (n >= 3 and rng.random() < 0.5):
            return Plan(None)
        resets += 1
        point = AT_EOF if rng.random() < 0.15 else rng.randrange(0, 800_000)
        return Plan(point, refuse=rng.choice([0.0, 0.5, 2.5]))

    printer = ResettingPrinter(plan)
    try:
        root, server = net_server(tmp_path, printer, servers)
        ids = submit_raw(root, tmp_path, jobs)
        wait_for(lambda: set(ids.values()) <= set(done_records(root)), 240,
                 f"every job finished (seed {seed})", on_timeout=lambda: logs(servers))
        assert server.stop() == 0
    finally:
        connections = printer.stop()
    try:
        carried = judge(connections, jobs, ids, root)
    except AssertionError as exc:
        raise AssertionError(f"seed {seed}: {exc}\n{logs(servers)}") from exc
    assert sum(carried.values()) > len(jobs) or resets == 0 or all(
        c.ended == "eof" for c in connections)
    # Time for the record: how the resets fell.
    print(f"seed {seed}: {len(connections)} connections, {resets} resets, carried {carried}")


def test_completed_waits_for_the_printer_to_take_the_last_byte(tmp_path: Path) -> None:
    """`writer.complete` on a TCP port: a job that fits the socket buffers is handed
    over at once; a printer that resets before reading it all makes it fail."""
    from printnet.config import PrinterConfig
    from printnet.printers.ports import SOCKET, close_port, open_port
    from printnet.printers.writer import SendFailed, complete, send

    data = body(9, 500)  # 31 KB: the kernel takes it all before the printer reads
    for reset_after, ok in ((None, True), (10_000, False), (AT_EOF, False)):
        gate = threading.Event()
        printer = ResettingPrinter(partial(always, Plan(reset_after)), gate)
        port = open_port(PrinterConfig(name="NET", port=f"socket://127.0.0.1:{printer.port}"),
                         tmp_path)
        try:
            assert send(port, data, stall_timeout=5) == len(data)  # "sent": not "taken"
            gate.set()
            if ok:
                assert complete(port, SOCKET, sent=len(data), stall_timeout=5, label="NET")
            else:
                with pytest.raises(SendFailed, match="connection broke"):
                    complete(port, SOCKET, sent=len(data), stall_timeout=5, label="NET")
        finally:
            close_port(port)
            [conn] = printer.stop()
        assert (conn.ended == "eof" and bytes(conn.data) == data) is ok


@pytest.mark.parametrize("policy", ["RETRY", "HOLD"])
def test_the_worker_counts_the_reprint_of_a_text_job(tmp_path: Path, policy: str) -> None:
    """The worker on its own: a text job whose connection is reset after 5,000 bytes."""
    import os
    import queue

    from printnet import config as config_mod
    from printnet.masterfile import Job
    from printnet.model import JobState
    from printnet.spool.layout import REQ_SUFFIX
    from printnet.worker import Assignment, PrinterWorker, Result

    printer = ResettingPrinter(lambda n: Plan(5_000, refuse=0.5) if n == 0 else Plan(None))
    spool, _ = Spool.init(tmp_path / "spool")
    etc = make_etc(tmp_path / "proj", "S1", [spool.root], [])
    (etc / "hnet.hdr").write_text(HEADER_TEMPLATE)
    write_atomic_text(etc / "printers.cmd",
                      f"PRINTER NET PORT=socket://127.0.0.1:{printer.port} SETUP=STANDARD "
                      f"STALL=2 RETRY=0.2 ERRORS={policy} HEADER=HNET\n" + SETUPS)
    config = config_mod.load(etc)
    src = tmp_path / "a.txt"
    src.write_text("".join(f"@@J7 rec {i:06d}@@ text line\n" for i in range(1000)))
    [req] = Station(spool.root).submit([src], printer="NET")
    os.rename(spool.new / (req.id + REQ_SUFFIX), spool.received / (req.id + REQ_SUFFIX))
    results: queue.Queue[Result] = queue.Queue()
    worker = PrinterWorker(config.printers["NET"], config, on_result=results.put,
                           on_event=lambda e: None)
    try:
        worker.assign(Assignment(spool, Job.from_request(req), "token"))
        result = results.get(timeout=60)
    finally:
        worker.stop(abandon=True)
        worker.join(10)
        connections = printer.stop()
    assert result.reprints == 1
    if policy == "HOLD":
        assert result.outcome is JobState.HELD and "connection" in result.reason.lower()
        assert len(connections) == 1
        return
    assert result.outcome is JobState.COMPLETED
    first, second = connections
    assert first.ended == "reset" and second.ended == "eof"
    page = bytes(second.data)
    assert page.startswith(b"*** RESTARTED: job " + req.id.encode() + b" (reprint 1) ***\r\n")
    assert page.index(b"\f") < page.index(b"Job:       " + req.id.encode())  # then the header
    numbers = [int(n) for _, n in RECORD.findall(page)]
    assert numbers == list(range(1000))
