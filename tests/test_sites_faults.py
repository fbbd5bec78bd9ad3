"""A central gateway that misbehaves on the link: the branch loses nothing and
repeats nothing (docs/SITES.md).

Between the branch's forwarding printer and the real central gateway sits a
small TCP proxy (`FaultyLink`, in this process) that does to Print-Job requests,
a few times each, what a bad link or a broken central does: answer garbage,
close in the middle of the request, pass the whole request to the gateway and
lose its answer (the acknowledgement lost: the gateway has the job), and stall
past the branch's STALL.  Every other request passes.  Afterwards every job is
forwarded once at the branch and queued once at central.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator

import pytest
from helpers_e2e import (
    SETUPS,
    accounting,
    done_records,
    printed_ids,
    wait_for,
    write_atomic_text,
)
from helpers_sites import Sites, completed_at_central, forwarded, submit, two_sites  # noqa: F401 (the fixture)

from printnet.api import Station
from printnet.ipp.enums import Operation

pytestmark = pytest.mark.slow

FAULTS = ("garbage", "close-mid", "lost-ack", "stall")


class FaultyLink:
    """A proxy on its own port; the first Print-Jobs get `faults`, in order."""

    def __init__(self, upstream: int, faults: list[str], stall: float) -> None:
        self.upstream = upstream
        self.faults = list(faults)
        self.stall = stall
        self.done: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        self.stopping = False
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self.stopping = True
        with contextlib.suppress(OSError):
            self.sock.close()

    def _accept(self) -> None:
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(30)
            while True:
                request = _read_request(conn)
                if request is None:
                    return
                head, body = request
                fault = ""
                if len(body) >= 4 and int.from_bytes(body[2:4], "big") == Operation.PRINT_JOB:
                    with self.lock:
                        fault = self.faults.pop(0) if self.faults else ""
                        if fault:
                            self.done[fault] += 1
                if fault == "garbage":
                    junk = b"\x7f\x00not ipp at all"
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/ipp\r\n"
                                 b"Content-Length: %d\r\n\r\n%s" % (len(junk), junk))
                    continue
                if fault == "stall":
                    time.sleep(self.stall)  # the branch gives up first (STALL=1)
                    return
                with socket.create_connection(("127.0.0.1", self.upstream), 30) as up:
                    # One request per upstream connection: the gateway closes after it.
                    head = head.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1)
                    if fault == "close-mid":
                        up.sendall(head + body[: len(body) // 2])
                        return  # both sides cut mid-request
                    up.sendall(head + body)
                    answer = _read_all(up)
                if fault == "lost-ack":
                    return  # the gateway has it; its answer never reaches the branch
                conn.sendall(answer)
                return  # Connection: close was asked for; the client reconnects


def _read_request(conn: socket.socket) -> tuple[bytes, bytes] | None:
    data = b""
    while b"\r\n\r\n" not in data:
        try:
            chunk = conn.recv(65536)
        except OSError:
            return None
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        body += chunk
    return head + b"\r\n\r\n", body


def _read_all(sock: socket.socket) -> bytes:
    out = b""
    while chunk := sock.recv(65536):
        out += chunk
    return out


@pytest.fixture
def link(sites: Sites) -> Iterator[FaultyLink]:
    faults = [f for f in FAULTS for _ in range(2)]
    proxy = FaultyLink(sites.port, faults, stall=2.5)
    write_atomic_text(sites.betc / "printers.cmd",
                      f"PRINTER HQI PORT=ipp://127.0.0.1:{proxy.port}/ipp/print/CI "
                      "SETUP=STANDARD ERRORS=RETRY STALL=1 RETRY=0.2\n" + SETUPS)
    yield proxy
    proxy.close()


def test_garbage_cuts_lost_answers_and_stalls_lose_nothing_and_repeat_nothing(
        sites: Sites, link: FaultyLink) -> None:
    s = sites
    # Central prints as jobs arrive: a resend finds the first copy claimed, printing or
    # done, not waiting in new/ (the ledger and the spool's records recognise it).
    s.start_central()
    s.start_branch()
    jobs = submit(s, 12, seed=5, printers=("HQI",))
    wait_for(lambda: forwarded(s, jobs), 180, "every job forwarded",
             on_timeout=lambda: s.text() + f"\n{link.done}")
    assert link.done == dict.fromkeys(FAULTS, 2), link.done
    done = done_records(s.branch)
    assert {done[j]["outcome"] for j in jobs} == {"forwarded"}
    lines = Counter(x["job"] for x in accounting(s.branch))
    assert {j: lines[j] for j in jobs} == dict.fromkeys(jobs, 1)
    # Central: each printed once, recorded once, each id once in the ledger.
    wait_for(lambda: completed_at_central(s, jobs), 120, "central printed them",
             on_timeout=s.text)
    assert sorted(printed_ids(s.outs["CI"])) == sorted(jobs)
    central_lines = Counter(x["job"] for x in accounting(s.central))
    assert dict(central_lines) == dict.fromkeys(jobs, 1)
    assert sorted(p.stem for p in (s.central / "forwarded").glob("*.json")) == sorted(jobs)
    assert not list((s.central / "new").glob("*.req"))


def _kill_when(s: Sites, seen: Callable[[], bool], timeout: float = 60.0) -> None:
    """kill -9 the branch server the moment `seen()` (polled every millisecond)."""
    assert s.bserver is not None
    deadline = time.monotonic() + timeout
    while not seen():
        assert time.monotonic() < deadline, s.text()
        time.sleep(0.001)
    s.bserver.kill9()


def test_kill_9_of_the_branch_mid_forward_and_after_the_central_commit(sites: Sites) -> None:
    """The branch server killed while it copies a job into the central spool, and
    between central's commit (the ledger record) and its own done record: after a
    restart each job is forwarded once, recorded once, queued once."""
    s = sites
    write_atomic_text(s.betc / "printers.cmd",
                      f"PRINTER HQS PORT=spool:{s.central}?printer=CS SETUP=STANDARD "
                      "ERRORS=RETRY STALL=1 RETRY=0.2\n" + SETUPS)
    s.start_branch()
    big = s.tmp / "big.txt"
    big.write_bytes(b"a long report line from the branch office\n" * 200_000)  # 8 MB
    station = Station(s.branch)
    jobs: list[str] = []
    windows = Counter[str]()
    for point in ("mid-send", "after-commit", "mid-send", "after-commit"):
        [req] = station.submit([big], printer="HQS", title=point)
        jobs.append(req.id)
        if point == "mid-send":
            def copying(job: str = req.id) -> bool:
                return any(n.startswith(f".{job}.") for n in os.listdir(s.central / "data"))
            _kill_when(s, copying)
        else:
            ledger = s.central / "forwarded" / f"{req.id}.json"
            _kill_when(s, ledger.exists)
        if not (s.branch / "done" / f"{req.id}.json").exists():
            windows[point] += 1  # the kill landed before the branch recorded it
        s.start_branch()
        done = s.branch / "done" / f"{req.id}.json"
        wait_for(done.exists, 120, f"{point} job forwarded", on_timeout=s.text)
    assert windows["after-commit"] >= 1 and windows["mid-send"] >= 1, windows
    lines = Counter(x["job"] for x in accounting(s.branch))
    assert {j: lines[j] for j in jobs} == dict.fromkeys(jobs, 1)
    assert sorted(p.name for p in (s.central / "new").glob("*.req")) == sorted(
        f"{j}.req" for j in jobs)
    for job in jobs:
        assert (s.central / "data" / job / "0").stat().st_size == big.stat().st_size
