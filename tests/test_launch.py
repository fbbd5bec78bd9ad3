"""The console script's fast path (`printnet.launch`) against the click application.

Both are run as real processes on the same spool; for every command line the
fast path accepts, output and exit code must be the same as click's.  The fast
listing (`Station.listing`, text rows of the master file) must list exactly
what the decoded master file lists, also after journal entries that reorder,
change and remove jobs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import make_ids, make_job

from printnet.api import Station
from printnet.launch import _fast, _job_lines
from printnet.masterfile import MasterState, op_add, op_note, op_remove, op_set, op_state
from printnet.model import JobState, Priority
from printnet.spool.layout import Spool
from printnet.spool.lock import ExpiringLock, LockTable
from printnet.spool.master import MasterStore

CLICK = "from printnet.cli import main; main()"
FAST = "from printnet.launch import main; main()"


def _run(code: str, args: list[str], env: dict[str, str], stdin: bytes = b"",
         ) -> tuple[int, str, str]:
    proc = subprocess.run([sys.executable, "-c", code, *args], env=env, input=stdin,
                          capture_output=True, timeout=60, check=False)
    return proc.returncode, proc.stdout.decode(), proc.stderr.decode()


@pytest.fixture
def station_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ, PRINTNET_SPOOL=str(tmp_path / "spool"),
               PRINTNET_ETC=str(tmp_path / "etc"))
    assert _run(CLICK, ["init"], env)[0] == 0
    (tmp_path / "a.txt").write_text("hello\n")
    return env


@pytest.mark.parametrize("args", [
    ["--version"],
    ["status"],
    ["status", "--json"],
    ["status", "-P", "LOCAL"],
    ["status", "--user=nobody"],
    ["status", "-u", "root", "-P", "NOPE"],
    ["request", "-P", "NOPE", "A"],
    ["request", "--copies=0", "A"],
    ["request", "-p", "urgent", "A"],
    ["request", "-s", "NOSUCH", "A"],
    ["request", "A", "-", "-"],
    ["request", "--password-env", "PN_NOT_SET", "A"],
    ["request", "MISSING.txt"],
    ["request", "--max-stdin", "1x", "-"],
])
def test_fast_path_answers_as_click_does(tmp_path: Path, station_env: dict[str, str],
                                         args: list[str]) -> None:
    args = [str(tmp_path / "a.txt") if a == "A" else a for a in args]
    assert _fast(args) is not None, "this command line should take the fast path"
    # Two printed jobs make the listings non-trivial (ids differ between runs, so
    # submit once and compare listings; compare failing requests directly).
    _run(CLICK, ["request", "-t", "one", str(tmp_path / "a.txt")], station_env)
    _run(FAST, ["request", "--title=two", "--hold", str(tmp_path / "a.txt")], station_env)
    assert _run(FAST, args, station_env) == _run(CLICK, args, station_env)


@pytest.mark.parametrize("args", [
    ["--help"], ["status", "--help"], ["request"], ["request", "-PX", "f"],
    ["request", "-n", "x", "f"], ["request", "--ask-password", "f"],
    ["request", "-P", "A", "-P", "B", "f"], ["--spool", "--etc", "status"],
    ["cancel", "X"], [],
])
def test_everything_else_goes_to_click(args: list[str]) -> None:
    assert _fast(args) is None


def test_fast_request_queues_what_click_queues(tmp_path: Path,
                                               station_env: dict[str, str]) -> None:
    f = str(tmp_path / "a.txt")
    args = ["request", "-P", "LOCAL", "-p", "high", "-n", "2", "-t", "T", "--raw",
            "--no-header", "--hold", "--each", f, f]
    code, fast_ids, err = _run(FAST, args, station_env)
    assert (code, err) == (0, "")
    code, click_ids, err = _run(CLICK, args, station_env)
    assert (code, err) == (0, "")
    station = Station(Path(station_env["PRINTNET_SPOOL"]), None)
    reqs = {r.id: r for r in station.waiting_requests(set())}
    fast, slow = fast_ids.split(), click_ids.split()
    assert len(fast) == len(slow) == 2
    for a, b in zip(fast, slow, strict=True):
        ra, rb = reqs[a].to_json(), reqs[b].to_json()
        for key in ("id", "submitted", "files"):
            ra.pop(key), rb.pop(key)
        assert ra == rb
    # stdin
    code, out, _ = _run(FAST, ["request", "-"], station_env, stdin=b"from stdin\n")
    assert code == 0 and len(out.split()) == 1


def _install(spool: Spool, state: MasterState) -> tuple[MasterStore, ExpiringLock]:
    lock = ExpiringLock(LockTable(spool.locks), "master", lease=30.0, holder="test")
    assert lock.try_acquire()
    store = MasterStore(spool)
    store.refresh()
    store.install(state, lock)
    return store, lock


def test_listing_equals_the_decoded_master_file(spool: Spool) -> None:
    ids = make_ids(60)
    jobs = [make_job(i, destination="P1" if n % 3 else "P2",
                priority=Priority.OVERNIGHT if n % 7 == 0 else Priority.STANDARD)
            for n, i in enumerate(ids)]
    store, lock = _install(spool, MasterState(jobs))
    # Journal entries after the snapshot: reorder, state, note, remove, add.
    ops = [op_set(ids[50], priority="high"), op_set(ids[5], rank=-3),
           op_state(ids[7], JobState.HELD, "held by test"), op_note(ids[8], "Needs CHECKS"),
           op_remove(ids[9]), op_set(ids[10], destination="P2")]
    store.commit(ops, lock)
    extra = make_ids(3, start_ms=1_800_000_000_000)
    store.commit([op_add(make_job(i, destination="P1")) for i in extra], lock)
    lock.release()
    station = Station(spool.root, None, user="root", station="test")
    for printer, user in ((None, None), ("P1", None), ("P2", "root"), (None, "nobody")):
        view = station.status(printer=printer, user=user)
        expected = [(j["position"], j["id"], j["user"], j["printer"], j["priority"],
                     j["state"], j["submitted"], j["title"], j.get("note") or "")
                    for j in view.jobs]
        printers, rows = station.listing(printer=printer, user=user)
        got = list(rows)
        assert got == expected
        assert _job_lines(got) == _job_lines(expected)
        assert printers == view.printers
    assert [r[1] for r in station.listing()[1]][:2] == [ids[50], ids[5]]
