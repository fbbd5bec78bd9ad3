"""Several hosts on a real network filesystem (GlusterFS mounted twice, `shared_fs`).

Every test runs on each tier: ``nfs`` (NFS-like caching) and ``default``
(Gluster's own caches: old content for about a second), or on the share named
by ``PRINTNET_TEST_SHARED``.  Processes run "on host A/B" with their own host
name and, where a test says so, a skewed clock (libfaketime).
"""

from __future__ import annotations

import itertools
import json
import os
import select
import subprocess
import textwrap
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import shared_fs
from _ci_strict import require
from reliability import PrinterSpec, ServerProc, make_etc, merge_counts, printed_order
from shared_fs import PYTHON, TOOLS, Host, SharedFS, wait_for

from printnet.scheduling import NOTE_NIGHT

pytestmark = [pytest.mark.multihost, pytest.mark.slow, pytest.mark.timeout(600)]

SKEW = 300.0  # seconds: host A runs 5 minutes slow, host B 5 minutes fast


@pytest.fixture(scope="session")
def gluster_session() -> Iterator[None]:
    yield
    shared_fs.shutdown()


@pytest.fixture(scope="session", params=shared_fs.tiers())
def share(request: pytest.FixtureRequest, gluster_session: None) -> SharedFS:
    return require("no shared filesystem here", lambda: shared_fs.shared(request.param),
                   shared_fs.Unavailable)


class Bench:
    """One test's spool on the share, and the servers it started."""

    def __init__(self, share: SharedFS, tmp: Path, label: str) -> None:
        self.share = share
        self.tmp = tmp
        self.rel = share.fresh(label)
        self.servers: list[ServerProc] = []
        share.a.probe("init", str(self.spool(share.a)))

    def spool(self, host: Host) -> Path:
        return host.mount / self.rel / "spool"

    def server(self, host: Host, name: str, printers: list[PrinterSpec], *,
               lease: float = 1.5, night: tuple[int, int] = (0, 6),
               **wrap: Any) -> ServerProc:
        folder = self.tmp / name
        make_etc(folder, name=name, spools=[self.spool(host)], printers=printers,
                 lease=lease, scan=0.2, night=night)
        server = ServerProc(host, name, folder, wrap=wrap)
        server.start()
        self.servers.append(server)
        return server

    def published(self, names: list[str]) -> None:
        """Wait until each server's status file is visible from host A."""
        folder = self.spool(self.share.a) / "servers"
        wanted = {f"{n}.json" for n in names}
        wait_for(lambda: wanted <= set(
            self.share.a.run(["ls", str(folder)], timeout=30).stdout.decode().split()),
            30, f"status files of {names}", interval=0.3)

    def submit(self, host: Host, printers: str, n: int, priority: str = "standard",
               **wrap: Any) -> list[tuple[str, str]]:
        """`n` token jobs from a station on `host`; [(id, token)] in submission order."""
        log = self.tmp / f"station-{host.name}.log"
        before = log.read_text().splitlines() if log.exists() else []
        host.probe("tokens", str(self.spool(host)), str(log), printers, str(n), priority,
                   timeout=120, **wrap)
        lines = log.read_text().splitlines()[len(before):]
        return [(p[0], p[1]) for p in (line.split() for line in lines)]

    def state(self, host: Host | None = None) -> dict[str, Any]:
        host = host or self.share.a
        return dict(host.probe("state", str(self.spool(host))))

    def wait_state(self, pred: Any, what: str, host: Host | None = None,
                   timeout: float = 20.0) -> dict[str, Any]:
        """Poll the spool's state (seen from `host`) until `pred(state)` holds."""
        def check() -> dict[str, Any] | None:
            state = self.state(host)
            return state if pred(state) else None
        found = wait_for(check, timeout, what, interval=0.5)
        assert found is not None
        return found

    def wait_done(self, ids: list[str], timeout: float = 90.0) -> dict[str, Any]:
        return self.wait_state(
            lambda state: all(state["done"].get(i, {}).get("outcome") for i in ids),
            f"{len(ids)} jobs to finish", timeout=timeout)

    def logs(self) -> str:
        return "\n".join(f"== {s.name}\n{s.log_text()[-4000:]}" for s in self.servers)

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


@pytest.fixture
def bench(share: SharedFS, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Bench]:
    b = Bench(share, tmp_path, request.node.name)
    try:
        yield b
    finally:
        b.stop()
        share.reap()


def _assert_printed_once(bench: Bench, jobs: list[tuple[str, str]], state: dict[str, Any]
                         ) -> None:
    counts = merge_counts(bench.servers)
    for job_id, token in jobs:
        rec = state["done"].get(job_id)
        assert rec is not None and rec["outcome"] == "completed", (job_id, rec, bench.logs())
        assert counts.get(token) == 1, (job_id, counts.get(token), bench.logs())


# -- servers on both hosts ----------------------------------------------------------------


def test_stations_on_one_host_servers_on_both(bench: Bench) -> None:
    """A station on host A; a server on each host; every job printed once, where asked."""
    a, b = bench.share.hosts
    sa = bench.server(a, "SA", [PrinterSpec("PA", classes=("POOL",))])
    sb = bench.server(b, "SB", [PrinterSpec("PB", classes=("POOL",))])
    bench.published(["SA", "SB"])
    for_a = bench.submit(a, "PA", 4)
    for_b = bench.submit(a, "PB", 4)
    pool = bench.submit(a, "POOL", 6)
    jobs = for_a + for_b + pool
    state = bench.wait_done([i for i, _ in jobs])
    _assert_printed_once(bench, jobs, state)
    assert {t for _, t in for_a} <= set(sa.printed()), bench.logs()
    assert {t for _, t in for_b} <= set(sb.printed()), bench.logs()
    # Judged through host B's own client: the master file and received/ agree.
    state_b = bench.wait_state(lambda s: not s["master"], "host B to see an empty master",
                               host=b)
    live = {n[:-4] for n in state_b["received"] if n.endswith(".req")} - set(state_b["done"])
    assert not live and not state_b["new"] and not state_b["rejected"]
    assert "Traceback" not in bench.logs()


# -- the lock and the master file across two clients --------------------------------------

_CONTENDER = """
    import json, os, sys, time
    from pathlib import Path
    from printnet.errors import SpoolError
    from printnet.spool.lock import ExpiringLock, LockTable
    lock_dir, lease = Path(sys.argv[1]), float(sys.argv[2])
    rounds, out = int(sys.argv[3]), sys.argv[4]
    table = LockTable(lock_dir)
    lock = ExpiringLock(table, "contended", lease=lease, holder=f"c{os.getpid()}")
    spans = []
    deadline = time.monotonic() + 120
    errors = 0
    while len(spans) < rounds and time.monotonic() < deadline:
        try:
            got = lock.try_acquire()
        except SpoolError:  # e.g. ESTALE that outlasted the retries: try again, as servers do
            errors += 1
            got = False
        if got:
            t0 = time.monotonic()
            time.sleep(0.01)
            lock.check()
            t1 = time.monotonic()
            lock.release()
            spans.append((t0, t1))
        else:
            time.sleep(0.005)
    with open(out, "w") as fh:
        json.dump(spans, fh)
    print(json.dumps(len(spans)))
"""


def test_lock_excludes_across_mounts_with_skewed_clocks(bench: Bench) -> None:
    """Four contenders, two per host, clocks 10 minutes apart: no overlapping holds.

    CLOCK_MONOTONIC is machine-wide (libfaketime leaves it alone here), so the
    hold intervals of all contenders can be compared directly.
    """
    a, b = bench.share.hosts
    lock_dir = {h.name: bench.spool(h) / "locks" for h in (a, b)}
    procs = []
    outs = []
    for i, (host, skew) in enumerate([(a, -SKEW), (b, SKEW), (a, -SKEW), (b, SKEW)]):
        out = bench.tmp / f"spans{i}.json"
        outs.append(out)
        procs.append(host.popen([PYTHON, "-c", textwrap.dedent(_CONTENDER),
                                 str(lock_dir[host.name]), "1.0", "15", str(out)], skew=skew))
    for proc in procs:
        assert proc.wait(150) == 0
    spans = []
    for i, out in enumerate(outs):
        mine = json.loads(out.read_text())
        assert len(mine) == 15, f"contender {i} got the lock only {len(mine)} times"
        spans += [(t0, t1, i) for t0, t1 in mine]
    spans.sort()
    for (_, e0, i0), (s1, _, i1) in itertools.pairwise(spans):
        assert s1 >= e0, f"contenders {i0} and {i1} held the lock at the same time"


_HOLDER = """
    import sys, time
    from pathlib import Path
    from printnet.spool.lock import ExpiringLock, LockTable
    lock = ExpiringLock(LockTable(Path(sys.argv[1])), "held", lease=float(sys.argv[2]),
                        holder="holder")
    assert lock.try_acquire()
    lock.start_heartbeat()
    print("held", flush=True)
    time.sleep(600)
"""

_WATCHER = """
    import json, sys, time
    from pathlib import Path
    from printnet.spool.lock import ExpiringLock, LockTable
    lock = ExpiringLock(LockTable(Path(sys.argv[1])), "held", lease=float(sys.argv[2]),
                        holder="watcher")
    watch, give_up = float(sys.argv[3]), float(sys.argv[4])
    start = time.monotonic()
    while time.monotonic() - start < give_up:
        if lock.try_acquire():
            print(json.dumps(time.monotonic() - start))
            sys.exit(0)
        time.sleep(0.05)
    print(json.dumps(None))
"""


def _line(proc: subprocess.Popen[bytes], timeout: float) -> bytes:
    """The first line `proc` writes to its stdout pipe; AssertionError after `timeout`
    (a child that hangs before printing must fail the test, not hang it)."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    data = b""
    deadline = time.monotonic() + timeout
    while b"\n" not in data:
        left = deadline - time.monotonic()
        ready, _, _ = select.select([fd], [], [], max(0.0, left))
        if not ready:
            raise AssertionError(f"no line from pid {proc.pid} in {timeout:g}s (got {data!r})")
        chunk = os.read(fd, 4096)
        if not chunk:
            raise AssertionError(f"pid {proc.pid} closed its output (exit {proc.poll()}): "
                                 f"{data!r}")
        data += chunk
    return data.split(b"\n", 1)[0].strip()


def test_skewed_clocks_cause_no_false_lock_break(bench: Bench) -> None:
    """A holder 5 min fast on host B; a contender 5 min slow on host A: no break while
    the holder heartbeats (5 leases), a break soon after it is killed.

    The lease is 2 s: a share's attribute caches (about 1 s here) must stay well
    inside the lease, or the heartbeat cannot be seen in time (docs/RELIABILITY.md).
    """
    a, b = bench.share.hosts
    lease = 2.0
    holder = b.popen([PYTHON, "-u", "-c", textwrap.dedent(_HOLDER),
                      str(bench.spool(b) / "locks"), str(lease)], skew=SKEW,
                     stdout=subprocess.PIPE)
    assert holder.stdout is not None
    assert _line(holder, 60) == b"held"
    got = a.py(_WATCHER, str(bench.spool(a) / "locks"), str(lease), "0", str(5 * lease),
               skew=-SKEW, timeout=60)
    assert got is None, f"the lock was broken after {got}s while its holder was alive"
    holder.kill()
    holder.wait(10)
    holder.stdout.close()
    took = a.py(_WATCHER, str(bench.spool(a) / "locks"), str(lease), "0", str(10 * lease),
                skew=-SKEW, timeout=60)
    # Stale = unchanged for lease + lease/4 on the watcher's own clock; allow for
    # the share's attribute caches (~1 s) and the polling.
    assert took is not None and took <= 1.25 * lease + 3.0, took


_COMMITTER = """
    import json, os, sys
    from pathlib import Path
    from printnet.errors import Fenced
    from printnet.masterfile import Job, op_add
    from printnet.model import Format, JobIdGenerator, JobState, Priority
    from printnet.spool.layout import Spool
    from printnet.spool.master import MasterStore

    class NoFence:
        def check(self) -> None:
            pass

    spool, n, seed = Spool.open(Path(sys.argv[1])), int(sys.argv[2]), int(sys.argv[3])
    gen = JobIdGenerator()
    store = MasterStore(spool)
    mine, fenced = [], 0
    i = 0
    while len(mine) < n:
        store.refresh()
        job_id = gen.next(1_770_000_000_000 + seed * 1_000_000 + i, seed)
        i += 1
        job = Job(id=job_id, user="u", station="s", submitted="2026-03-01T12:00:00.000000Z",
                  destination="P", priority=Priority.STANDARD, copies=1, title="t", setup="",
                  header=True, format=Format.TEXT, state=JobState.PENDING)
        try:
            store.commit([op_add(job)], NoFence())
        except Fenced:
            fenced += 1
            continue
        mine.append(job_id)
    print(json.dumps({"mine": mine, "fenced": fenced}))
"""


def test_master_commit_is_put_if_absent_across_mounts(bench: Bench) -> None:
    """Two writers on two clients race for the same journal slots *without* a lock:
    each slot goes to exactly one of them (stale negative lookups cannot let both
    win), and every commit a writer saw succeed is in the master file once."""
    a, b = bench.share.hosts
    procs = []
    outs = []
    for i, host in enumerate((a, b, a, b)):
        out = bench.tmp / f"commits{i}.json"
        outs.append(out)
        with open(out, "wb") as fh:
            procs.append(host.popen([PYTHON, "-c", textwrap.dedent(_COMMITTER),
                                     str(bench.spool(host)), "25", str(i + 1)], stdout=fh))
    for proc in procs:
        assert proc.wait(180) == 0
    results = [json.loads(out.read_text()) for out in outs]
    committed = [j for r in results for j in r["mine"]]
    assert len(committed) == len(set(committed)) == 100
    assert sum(r["fenced"] for r in results) > 0, "the writers never collided: no race tested"
    for host in (a, b):
        state = bench.wait_state(lambda s: len(s["master"]) >= 100,
                                 f"host {host.name} to see 100 jobs", host=host)
        assert sorted(state["master"]) == sorted(committed)


_TAKER = """
    import json, sys, time
    from pathlib import Path
    from printnet.spool.intake import Intake
    from printnet.spool.layout import Spool
    intake = Intake(Spool.open(Path(sys.argv[1])))
    taken, rejected = [], []
    quiet = 0
    while quiet < 20:
        got, bad = intake.take()
        taken += [t.request.id for t in got]
        rejected += [n for n, _ in bad]
        quiet = 0 if got or bad else quiet + 1
        time.sleep(0.02)
    print(json.dumps({"taken": taken, "rejected": rejected}))
"""


def test_intake_claims_each_request_once_across_mounts(bench: Bench) -> None:
    """Two servers' intakes on two clients race over one new/: each request is taken
    in by exactly one of them."""
    a, b = bench.share.hosts
    jobs = bench.submit(a, "P", 60)
    procs, outs = [], []
    for i, host in enumerate((a, b)):
        out = bench.tmp / f"taken{i}.json"
        outs.append(out)
        with open(out, "wb") as fh:
            procs.append(host.popen([PYTHON, "-c", textwrap.dedent(_TAKER),
                                     str(bench.spool(host))], stdout=fh))
    for proc in procs:
        assert proc.wait(120) == 0
    results = [json.loads(out.read_text()) for out in outs]
    assert not results[0]["rejected"] and not results[1]["rejected"], results
    taken = results[0]["taken"] + results[1]["taken"]
    assert sorted(taken) == sorted(i for i, _ in jobs), "taken twice or not at all"
    state = bench.state(b)
    assert not state["new"]
    assert sorted(n[:-4] for n in state["received"]) == sorted(taken)


# -- clocks -------------------------------------------------------------------------------


def test_skewed_servers_keep_queue_order_and_leases(bench: Bench) -> None:
    """Servers on hosts 10 minutes apart: no lease is taken over while both run, and
    each printer prints the jobs that were waiting in queue order (priority, then
    submission by the station's clock), whichever server took them in."""
    a, b = bench.share.hosts
    sa = bench.server(a, "SA", [PrinterSpec("PA", classes=("POOL",))], skew=-SKEW)
    sb = bench.server(b, "SB", [PrinterSpec("PB", classes=("POOL",))], skew=SKEW)
    bench.published(["SA", "SB"])
    # The jobs wait while no server runs (stations know the printers from the
    # servers' status files), from stations on both hosts with the hosts' clocks.
    for server in (sa, sb):
        assert server.stop() == 0
    jobs = bench.submit(a, "PA,PB", 6, skew=-SKEW) + bench.submit(b, "PA,PB", 6, skew=SKEW)
    urgent = bench.submit(b, "PA,PB", 2, "high", skew=SKEW)
    for server in (sa, sb):
        server.start()
    state = bench.wait_done([i for i, _ in jobs + urgent])
    _assert_printed_once(bench, jobs + urgent, state)
    logs = bench.logs()
    assert "broke lock" not in logs and "requeued" not in logs, logs
    by_token = {t: i for i, t in jobs + urgent}
    rank = {i: (0 if (i, t) in urgent else 1, i) for i, t in jobs + urgent}
    for server, printer in ((sa, "PA"), (sb, "PB")):
        order = [by_token[t] for t in printed_order(server, printer)]
        assert len(order) == 7
        assert order == sorted(order, key=rank.__getitem__), (printer, order)


def _tz_for_local_hour(hour: int) -> str:
    """A POSIX TZ whose local hour is `hour` now (offset within -12..+11 hours)."""
    offset = (hour - datetime.now(UTC).hour) % 24
    if offset >= 12:
        offset -= 24
    return f"PNT{-offset:+d}"  # POSIX: "XXX-3" is three hours *ahead* of UTC


def test_each_server_applies_night_in_its_own_local_time(bench: Bench) -> None:
    """NIGHT 0,6 on both servers: host A's local time is 03:00, host B's 15:00.
    A prints its overnight job; B keeps its overnight job waiting (and prints the
    standard one)."""
    a, b = bench.share.hosts
    sa = bench.server(a, "SA", [PrinterSpec("PA")], tz=_tz_for_local_hour(3), skew=-SKEW)
    sb = bench.server(b, "SB", [PrinterSpec("PB")], tz=_tz_for_local_hour(15), skew=SKEW)
    bench.published(["SA", "SB"])
    night_a = bench.submit(a, "PA", 1, "overnight")
    night_b = bench.submit(a, "PB", 1, "overnight")
    day_b = bench.submit(a, "PB", 1)
    state = bench.wait_done([i for i, _ in night_a + day_b])
    _assert_printed_once(bench, night_a + day_b, state)
    waiting = night_b[0][0]
    state = bench.wait_state(
        lambda s: s["master"].get(waiting, {}).get("note", "").startswith(NOTE_NIGHT),
        "the overnight job's note")
    assert state["master"][waiting]["state"] == "pending"
    assert night_b[0][1] not in sb.printed()
    assert sa.printed().keys() == {night_a[0][1]}


def test_probe_sees_both_mounts_as_one_share(share: SharedFS, tmp_path: Path) -> None:
    """The fixture itself: host names, clocks and one share seen from two clients."""
    a, b = share.hosts
    rel = share.fresh("probe")
    a.run(["sh", "-c", f"echo hello > {a.mount / rel / 'x'}"])
    got = wait_for(lambda: b.run(["cat", str(b.mount / rel / "x")], check=False).stdout, 10,
                   "host B to see host A's file")
    assert got == b"hello\n"
    assert a.run(["hostname"]).stdout.strip() == b"hosta"
    assert b.run(["hostname"]).stdout.strip() == b"hostb"
    year = b.py("import time, json; print(json.dumps(time.time()))", skew=SKEW)
    now = a.py("import time, json; print(json.dumps(time.time()))")
    assert 250 < year - now < 350
    assert TOOLS.exists()
