"""End-to-end: real `printnet server` processes, simulated printers, real spools.

Every test starts servers as subprocesses (`helpers_e2e.start_server`), talks to
them only through the shared disk (Station API, `printnet` CLI), their etc/
files (reloaded while they run) and the simulated printers' state files, and
judges from what the printers printed and what the spool records.  Crashes are
``kill -9``.  Timings are kept short by config (SCAN 0.2, LEASE 2, STALL 1).
"""

from __future__ import annotations

import random
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from helpers_e2e import (
    PrinterSpec,
    ServerProcess,
    accounting,
    done_records,
    logs,
    make_etc,
    master_jobs,
    printed_ids,
    printer_info,
    printnet,
    published,
    read_out,
    segments,
    server_env,
    start_server,
    status_json,
    visible,
    wait_for,
    write_printers,
)

from printnet.api import Station
from printnet.model import Priority
from printnet.printers.simctl import sim_control
from printnet.spool.layout import Spool
from printnet.spool.lock import ExpiringLock, LockTable

MARK = re.compile(rb"@@(M\d+)@@")
LINE_MARK = re.compile(rb"@@(M\d+) line (\d+)@@")


@pytest.fixture
def servers() -> Iterator[list[ServerProcess]]:
    """Servers a test starts; whatever is still running at the end is killed."""
    started: list[ServerProcess] = []
    yield started
    for s in started:
        if s.poll() is None:
            s.kill9()


def text_body(marker: str, lines: int = 3) -> bytes:
    """A text file: a marker line, then numbered lines that each carry the marker."""
    out = [f"@@{marker}@@ text\n"]
    out += [f"@@{marker} line {i:05d}@@ the quick brown fox\n" for i in range(lines)]
    return "".join(out).encode()


def raw_body(marker: str, rng: random.Random, size: int = 300) -> bytes:
    """A raw file: printer-language bytes around the marker (no ASCII noise)."""
    noise = bytes(rng.randrange(0x80, 0x100) for _ in range(size))
    return b"\x1b@" + f"@@{marker}@@".encode() + noise + b"\x0c"


def body_lines(segment: bytes, marker: str) -> list[int]:
    """The numbers of `marker`'s numbered lines in a printed segment, in order."""
    return [int(m.group(2)) for m in LINE_MARK.finditer(segment)
            if m.group(1).decode() == marker]


def assert_in_order(ids: list[str], key: Callable[[str], tuple[int, str]], label: str) -> None:
    """`ids` (as printed) are in priority, then submission, order; else say where not."""
    expected = sorted(ids, key=key)
    if ids != expected:
        n = next(n for n, (i, e) in enumerate(zip(ids, expected, strict=True)) if i != e)
        raise AssertionError(f"{label}: job {n} printed was {ids[n]} {key(ids[n])}, "
                             f"expected {expected[n]} {key(expected[n])}")


def spool_at(path: Path) -> Path:
    Spool.init(path)
    return path


# ---------------------------------------------------------------------------
# 1. Three servers, two spools, six printers, 500 jobs


@dataclass
class Planned:
    """One submit call of the big test."""

    spool: int  # 0 = A, 1 = B
    printer: str
    priority: str
    copies: int
    markers: list[str]
    raw: bool = False
    each: bool = False
    hold: bool = False
    setup: str | None = None
    cli: bool = False
    ids: list[str] = field(default_factory=list)


def plan_jobs(rng: random.Random, total: int) -> list[Planned]:
    """A deterministic mix of submit calls giving exactly `total` jobs."""
    dests = ["P1", "P2", "P3", "P4", "P5", "CHK", "POOL", "POOL"]
    prios = ["high", "standard", "standard", "standard", "overnight"]
    plans: list[Planned] = []
    n = 0

    def marker() -> str:
        nonlocal n
        n += 1
        return f"M{n}"

    def add(p: Planned) -> None:
        plans.append(p)

    for i in range(10):  # need the CHECKS form on CHK
        add(Planned(i % 2, "CHK", rng.choice(["high", "standard"]), rng.randint(1, 2),
                    [marker()], setup="CHECKS"))
    for i in range(6):  # queued held, released before printing starts
        add(Planned(i % 2, rng.choice(dests), rng.choice(prios), 1, [marker()], hold=True))
    for i in range(25):  # --each: one job per file
        add(Planned(i % 2, rng.choice(dests), rng.choice(prios), rng.randint(1, 2),
                    [marker() for _ in range(3)], each=True))
    for i in range(4):  # through the CLI
        add(Planned(i % 2, rng.choice(dests), rng.choice(prios), 1, [marker()], cli=True))
    jobs = sum(len(p.markers) if p.each else 1 for p in plans)
    while jobs < total:
        files = 2 if rng.random() < 0.15 else 1
        add(Planned(rng.randrange(2), rng.choice(dests), rng.choice(prios),
                    rng.choice([1, 1, 1, 2, 3]), [marker() for _ in range(files)],
                    raw=rng.random() < 0.2))
        jobs += 1
    assert jobs == total
    rng.shuffle(plans)
    return plans


def submit_plans(plans: list[Planned], spools: list[Path], src: Path, env: dict[str, str],
                 rng: random.Random) -> dict[str, tuple[Planned, list[str]]]:
    """Submit every plan; job id -> (plan, markers of that job's files)."""
    stations = [Station(s) for s in spools]
    jobs: dict[str, tuple[Planned, list[str]]] = {}
    for p in plans:
        paths = []
        for m in p.markers:
            path = src / m
            lines = rng.choice([2, 5, 40, 150])
            path.write_bytes(raw_body(m, rng) if p.raw else text_body(m, lines))
            paths.append(path)
        if p.cli:
            args = ["--spool", str(spools[p.spool]), "request", "-P", p.printer,
                    "-p", p.priority, "-n", str(p.copies), "-t", f"cli {p.markers[0]}"]
            out = printnet(*args, *map(str, paths), env=env).stdout
            p.ids = out.split()
        else:
            reqs = stations[p.spool].submit(
                paths, each=p.each, printer=p.printer, priority=p.priority, copies=p.copies,
                title=f"job {p.markers[0]}", setup=p.setup, raw=p.raw, hold=p.hold)
            p.ids = [r.id for r in reqs]
        if p.each:
            assert len(p.ids) == len(p.markers)
            for job_id, m in zip(p.ids, p.markers, strict=True):
                jobs[job_id] = (p, [m])
        else:
            assert len(p.ids) == 1
            jobs[p.ids[0]] = (p, p.markers)
    return jobs


@pytest.mark.slow
def test_three_servers_two_spools_500_jobs(tmp_path: Path,
                                          servers: list[ServerProcess]) -> None:
    rng = random.Random(1981)
    spools = [spool_at(tmp_path / "spoolA"), spool_at(tmp_path / "spoolB")]
    env = server_env(tmp_path / "run")
    # Each server's printers: a class POOL spans S1 and S2; CHK starts with STANDARD.
    layout: dict[str, list[tuple[str, tuple[str, ...]]]] = {
        "S1": [("P1", ()), ("P2", ("POOL",))],
        "S2": [("P3", ("POOL",)), ("P4", ())],
        "S3": [("P5", ()), ("CHK", ())],
    }
    specs: dict[str, list[PrinterSpec]] = {}
    etcs: dict[str, Path] = {}
    outs: dict[str, Path] = {}
    for name, printers in layout.items():
        project = tmp_path / name
        specs[name] = [PrinterSpec(p, project / "out" / f"{p}.prn", classes=cls, stopped=True)
                       for p, cls in printers]
        outs.update({s.name: s.out for s in specs[name]})
        etcs[name] = make_etc(project, name, spools, specs[name])

    # Start the servers with every printer stopped, so that all jobs are queued
    # together before the first one prints: only then is the order meaningful.
    for name, etc in etcs.items():
        servers.append(start_server(etc, name, env=env))
    for root in spools:
        wait_for(partial(published, root, *layout), 20, "all servers publish",
                 on_timeout=lambda: logs(servers))

    src = tmp_path / "src"
    src.mkdir()
    plans = plan_jobs(rng, 500)
    t0 = time.monotonic()
    jobs = submit_plans(plans, spools, src, env, rng)
    submit_s = time.monotonic() - t0
    assert len(jobs) == 500

    def live() -> dict[str, str]:
        out = {}
        for root in spools:
            out.update({i: j.state.value for i, j in master_jobs(root).items()})
        return out

    wait_for(lambda: set(live()) == set(jobs), 30, "every job taken into a master file",
             on_timeout=lambda: logs(servers))
    assert all(visible(root / "new") == [] for root in spools)
    assert all(visible(root / "rejected") == [] for root in spools)

    # Release the held jobs (a station's control requests, applied by the servers).
    held = [i for i, (p, _) in jobs.items() if p.hold]
    assert sorted(i for i, s in live().items() if s == "held") == sorted(held)
    for root in spools:
        mine = [i for i in held if i in master_jobs(root)]
        out = printnet("--spool", str(root), "release", "--wait", "20", *mine, env=env).stdout
        assert out.count("release applied") == len(mine), out
    assert set(live().values()) == {"pending"}

    # CHECKS jobs wait for their form, and say so.
    checks = {i for i, (p, _) in jobs.items() if p.setup == "CHECKS"}
    assert len(checks) == 10

    def checks_waiting() -> bool:
        shown = [j for root in spools for j in status_json(root, env)["jobs"]]
        notes = {j["id"]: (j["state"], j["note"]) for j in shown if j["id"] in checks}
        return notes == dict.fromkeys(checks, ("pending", "Needs CHECKS"))

    wait_for(checks_waiting, 10, "CHECKS jobs noted 'Needs CHECKS'")

    # Start the printers: every server reloads its changed printers.cmd.
    t1 = time.monotonic()
    for name, etc in etcs.items():
        specs[name] = [replace(s, stopped=False) for s in specs[name]]
        write_printers(etc, specs[name])
    others = set(jobs) - checks

    def finished() -> set[str]:
        return {i for root in spools for i in done_records(root)}

    wait_for(lambda: others <= finished(), 90, "all jobs but the CHECKS ones printed",
             interval=0.2, on_timeout=lambda: logs(servers))
    print_s = time.monotonic() - t1
    assert not checks & finished()
    assert checks_waiting(), "CHECKS jobs must keep waiting until the form is mounted"

    # Mount CHECKS on CHK (SETUP= of its PRINTER line): the waiting jobs print.
    specs["S3"] = [replace(s, setup="CHECKS") if s.name == "CHK" else s for s in specs["S3"]]
    write_printers(etcs["S3"], specs["S3"])
    wait_for(lambda: set(jobs) <= finished(), 30, "the CHECKS jobs printed",
             on_timeout=lambda: logs(servers))

    def chk_mounted() -> bool:
        chk = printer_info(spools[0], "S3", "CHK") or {}
        return chk.get("setup") == "CHECKS" and chk.get("form") == "CHECKS"

    wait_for(chk_mounted, 5, "S3 to publish CHECKS mounted on CHK")

    for s in servers:
        assert s.stop() == 0, s.log_text()

    # -- every job printed exactly once, with the right header page and body --------
    printed: dict[str, list[str]] = {p: printed_ids(out) for p, out in outs.items()}
    counts = Counter(i for ids in printed.values() for i in ids)
    assert set(counts) == set(jobs)
    assert [i for i, n in counts.items() if n != 1] == []
    where = {i: p for p, ids in printed.items() for i in ids}
    for printer, path in outs.items():
        for job_id, segment in segments(read_out(path)):
            plan, markers = jobs[job_id]
            assert plan.printer in (printer, "POOL"), (job_id, printer)
            expected = Counter(dict.fromkeys(markers, plan.copies))
            assert Counter(m.decode() for m in MARK.findall(segment)) == expected, job_id
    assert {where[i] for i, (p, _) in jobs.items() if p.printer == "POOL"} == {"P2", "P3"}

    # -- each printer's output in priority, then submission, order ---------------------
    def key(job_id: str) -> tuple[int, str]:
        return Priority(jobs[job_id][0].priority).rank, job_id  # ids sort by submit time

    in_a = set(done_records(spools[0]))
    spool_of = {i: (0 if i in in_a else 1) for i in jobs}
    for printer, ids in printed.items():
        if printer == "CHK":  # two batches: before and after CHECKS was mounted
            plain = [i for i in ids if i not in checks]
            assert ids == plain + sorted(checks, key=key)
            assert_in_order(plain, key, printer)
        elif printer in ("P2", "P3"):
            # A class shared by two servers: each claim is exact on its own disk
            # (decided under that disk's lock); across disks it is best effort
            # (see Server._reserve_printers).
            for n in (0, 1):
                assert_in_order([i for i in ids if spool_of[i] == n], key, f"{printer}/{n}")
        else:
            assert_in_order(ids, key, printer)

    # -- records: one accounting line and one done/ record per job; nothing left -------
    assert set(done_records(spools[0])) | set(done_records(spools[1])) == set(jobs)
    lines = [ln for root in spools for ln in accounting(root)]
    assert Counter(ln["job"] for ln in lines) == Counter(set(jobs))
    assert {ln["outcome"] for ln in lines} == {"completed"}
    assert all(ln["restarted"] == 0 for ln in lines)
    assert all(ln["printer"] == where[ln["job"]] for ln in lines)
    for root in spools:
        assert master_jobs(root) == {}
        assert visible(root / "received") == []
        assert visible(root / "new") == []
    print(f"\n500 jobs: submitted in {submit_s:.1f} s; {len(others)} printed in "
          f"{print_s:.1f} s ({len(others) / print_s:.0f} jobs/s) by 3 servers")


# ---------------------------------------------------------------------------
# Helpers shared by the scenarios below


def submit(root: Path, src: Path, marker: str, printer: str, *, lines: int = 3,
           **options: Any) -> str:
    """One text job of `lines` numbered lines; its id."""
    path = src / marker
    src.mkdir(exist_ok=True)
    path.write_bytes(text_body(marker, lines))
    [req] = Station(root).submit([path], printer=printer, title=f"job {marker}", **options)
    return req.id


def state_of(root: Path, job_id: str) -> str | None:
    job = master_jobs(root).get(job_id)
    if job is not None:
        return job.state.value
    record = done_records(root).get(job_id)
    return None if record is None else str(record["outcome"])


def printing_with_progress(root: Path, server: str, printer: str, job_id: str,
                           at_least: int = 200) -> bool:
    """The server reports `printer` printing `job_id` with `at_least` bytes out."""
    info = printer_info(root, server, printer) or {}
    progress = info.get("progress") or {}
    return info.get("job") == job_id and int(progress.get("bytes", 0)) >= at_least


def complete(out: Path, job_id: str, marker: str, lines: int, copies: int = 1) -> bool:
    """The last printing of `job_id` in `out` has every numbered line, once per copy,
    in order (so no byte was lost or printed twice)."""
    mine = [seg for i, seg in segments(read_out(out)) if i == job_id]
    return bool(mine) and body_lines(mine[-1], marker) == list(range(lines)) * copies


# ---------------------------------------------------------------------------
# 2. kill -9 of a server mid-job


@pytest.mark.slow
def test_kill9_mid_job_requeues_after_lease_and_reprints(
        tmp_path: Path, servers: list[ServerProcess]) -> None:
    root = spool_at(tmp_path / "spool")
    env = server_env(tmp_path / "run")
    slow = PrinterSpec("K1", tmp_path / "s1/out/K1.prn", baud="9600", classes=("POOL",))
    fast = PrinterSpec("K2", tmp_path / "s2/out/K2.prn")  # not in POOL yet
    etc1 = make_etc(tmp_path / "s1", "S1", [root], [slow])
    etc2 = make_etc(tmp_path / "s2", "S2", [root], [fast])
    s1 = start_server(etc1, "S1", env=env)
    s2 = start_server(etc2, "S2", env=env)
    servers += [s1, s2]
    wait_for(lambda: published(root, "S1", "S2"), 20, "servers up",
             on_timeout=lambda: logs(servers))

    src = tmp_path / "src"
    big = submit(root, src, "M1", "POOL", lines=500)  # ~20 KB: ~20 s at 9600 baud
    wait_for(lambda: big in master_jobs(root), 10, "the big job taken in")
    behind = submit(root, src, "M2", "POOL")
    others = [submit(root, src, f"M{n}", "K2") for n in (3, 4, 5)]
    wait_for(lambda: printing_with_progress(root, "S1", "K1", big), 20, "K1 printing",
             on_timeout=lambda: logs(servers))

    s1.kill9()
    killed = time.monotonic()

    # S2 sees S1's lease expire and puts the job back, noted; it cannot print it
    # (K2 is not in POOL), so the note stays for everyone to see.
    def requeued() -> dict[str, Any] | None:
        shown = {j["id"]: j for j in status_json(root, env)["jobs"]}
        job = shown.get(big)
        ok = job and job["state"] == "pending" and job["restarted"] == 1
        return job if ok else None

    job = wait_for(requeued, 15, "the job requeued after S1's lease expired",
                   interval=0.2, on_timeout=lambda: logs(servers))
    assert job is not None and job["note"] == "restarted after server failure"
    assert time.monotonic() - killed >= 2.0  # not before the lease (LEASE 2) ran out
    assert all(state_of(root, i) == "completed" for i in others)

    # K2 joins POOL (printers.cmd reloaded): it prints both POOL jobs.
    write_printers(etc2, [replace(fast, classes=("POOL",))])
    wait_for(lambda: state_of(root, big) == "completed" and state_of(root, behind)
             == "completed", 20, "POOL jobs printed on K2", on_timeout=lambda: logs(servers))
    assert s2.stop() == 0

    assert complete(fast.out, big, "M1", 500), "reprinted in full on K2"
    assert not complete(slow.out, big, "M1", 500), "K1 died in the middle of it"
    assert printed_ids(slow.out) == [big]
    assert Counter(printed_ids(fast.out)) == Counter([big, behind, *others])
    record = done_records(root)[big]
    assert record["job"]["restarted"] == 1 and record["server"] == "S2"
    lines = {ln["job"]: ln for ln in accounting(root)}
    assert set(lines) == {big, behind, *others}
    assert lines[big]["restarted"] == 1 and lines[big]["printer"] == "K2"
    assert all(lines[i]["restarted"] == 0 for i in others)
    # `behind` may have been claimed ahead by S1 (its backlog), and requeued with it.
    assert lines[behind]["restarted"] in (0, 1)
    assert master_jobs(root) == {} and visible(root / "received") == []


# ---------------------------------------------------------------------------
# 3. Restart after kill -9 under the same name: takes over at once, reconciles


@pytest.mark.slow
def test_restart_same_name_takes_over_and_reconciles(
        tmp_path: Path, servers: list[ServerProcess]) -> None:
    root = spool_at(tmp_path / "spool")
    env = server_env(tmp_path / "run")
    slow = PrinterSpec("R1", tmp_path / "s1/out/R1.prn", baud="9600")
    fast = replace(slow, baud="inf")
    etc = make_etc(tmp_path / "s1", "S1", [root], [slow])
    src = tmp_path / "src"

    def run() -> ServerProcess:
        proc = start_server(etc, "S1", env=env)
        servers.append(proc)
        return proc

    first = run()
    wait_for(lambda: published(root, "S1"), 20, "S1 up", on_timeout=lambda: logs(servers))
    j1 = submit(root, src, "M1", "R1", lines=200)
    j2 = submit(root, src, "M2", "R1")
    wait_for(lambda: printing_with_progress(root, "S1", "R1", j1), 20, "R1 printing j1",
             on_timeout=lambda: logs(servers))
    first.kill9()

    # Same host, same name, dead pid: the lease is ours at once (no 2.5-lease wait);
    # the job our previous life was printing goes back to pending, noted.
    write_printers(etc, [fast])
    started = time.monotonic()
    second = run()
    wait_for(lambda: state_of(root, j1) == "completed" and state_of(root, j2) == "completed",
             20, "j1 and j2 printed after the restart", on_timeout=lambda: logs(servers))
    assert f"took over the lease of dead process {first.pid}" in second.log_text()
    assert "this server restarted while printing it" in second.log_text()
    assert time.monotonic() - started < 20
    assert done_records(root)[j1]["job"]["restarted"] == 1
    assert complete(fast.out, j1, "M1", 200)

    # Again, and this time the master file is lost while the server is down:
    # the restarted server rebuilds the queue from received/.
    write_printers(etc, [slow])
    wait_for(lambda: second.reloads() == 1, 10, "the slow printer back")
    j3 = submit(root, src, "M3", "R1", lines=200)
    j4 = submit(root, src, "M4", "R1", priority="high", hold=True)
    wait_for(lambda: printing_with_progress(root, "S1", "R1", j3), 20, "R1 printing j3",
             on_timeout=lambda: logs(servers))
    second.kill9()
    for entry in (root / "master").iterdir():
        entry.unlink()
    assert master_jobs(root) == {}
    write_printers(etc, [fast])
    third = run()
    wait_for(lambda: state_of(root, j3) == "completed", 20, "j3 printed after the rebuild",
             on_timeout=lambda: logs(servers))
    assert state_of(root, j4) == "held"  # came back from its request file as it was
    assert third.stop() == 0

    assert complete(fast.out, j3, "M3", 200)
    assert Counter(printed_ids(fast.out)) == Counter([j1, j1, j2, j3, j3])  # partial+full
    assert [ln["job"] for ln in accounting(root)] == [j1, j2, j3]
    assert set(master_jobs(root)) == {j4}
    assert visible(root / "received") == [f"{j4}.req"]


# ---------------------------------------------------------------------------
# 4. A printer goes offline mid-job and comes back: RETRY, HOLD, ABORT


@pytest.mark.slow
def test_printer_offline_and_back_per_error_policy(
        tmp_path: Path, servers: list[ServerProcess]) -> None:
    root = spool_at(tmp_path / "spool")
    env = server_env(tmp_path / "run")
    out = tmp_path / "s1" / "out"
    specs = [PrinterSpec(name, out / f"{name}.prn", baud="38400", errors=policy, stopped=True)
             for name, policy in (("O1", "RETRY"), ("H1", "HOLD"), ("A1", "ABORT"))]
    etc = make_etc(tmp_path / "s1", "S1", [root], specs)
    server = start_server(etc, "S1", env=env)
    servers.append(server)
    wait_for(lambda: published(root, "S1"), 20, "S1 up", on_timeout=lambda: logs(servers))

    src = tmp_path / "src"
    lines = 300  # ~12 KB: ~3 s at 38400 baud
    j = [submit(root, src, "M1", "O1", lines=lines), submit(root, src, "M2", "O1"),
         submit(root, src, "M3", "O1")]
    k = [submit(root, src, "M4", "H1", lines=lines), submit(root, src, "M5", "H1")]
    a = [submit(root, src, "M6", "A1", lines=lines), submit(root, src, "M7", "A1")]
    wait_for(lambda: len(master_jobs(root)) == 7, 10, "jobs taken in")
    write_printers(etc, [replace(s, stopped=False) for s in specs])
    for spec, first in zip(specs, (j[0], k[0], a[0]), strict=True):
        wait_for(partial(printing_with_progress, root, "S1", spec.name, first, 2000),
                 20, f"{spec.name} printing", on_timeout=lambda: logs(servers))
    for spec in specs:
        sim_control(spec.out, "offline")

    # Printer trouble shows in status, with the reason; the queue keeps its order.
    def offline(name: str) -> bool:
        info = printer_info(root, "S1", name) or {}
        return info.get("state") == "offline" and bool(info.get("reasons"))

    wait_for(lambda: all(offline(s.name) for s in specs), 10, "printers offline",
             on_timeout=lambda: logs(servers))
    text = printnet("--spool", str(root), "status", env=env).stdout
    assert re.search(rf"printer O1: offline \(job {j[0]}\), setup STANDARD "
                     r"\(.*took no bytes.*\) \[server S1\]", text), text

    def settled() -> bool:
        jobs = master_jobs(root)
        return (state_of(root, k[0]) == "held" and state_of(root, a[0]) == "aborted"
                and [jobs[i].state.value for i in j[1:]] == ["pending", "pending"]
                and jobs[j[1]].note == "Printer offline")

    wait_for(settled, 10, "HOLD held its job, ABORT aborted its job, O1's queue waits",
             on_timeout=lambda: logs(servers))
    jobs = master_jobs(root)
    assert jobs[j[0]].state.value == "printing"  # RETRY: keeps its place, and its claim
    assert "printer trouble" in jobs[k[0]].note
    assert "printer trouble" in done_records(root)[a[0]]["reason"]

    time.sleep(1.0)  # offline for a while: nothing may move meanwhile
    assert state_of(root, j[0]) == "printing"
    assert [state_of(root, i) for i in (j[1], j[2], k[1], a[1])] == ["pending"] * 4
    for spec in specs:
        sim_control(spec.out, "online")

    wait_for(lambda: all(state_of(root, i) == "completed" for i in (*j, k[1], a[1])), 30,
             "the queues printed after the printers came back",
             on_timeout=lambda: logs(servers))
    assert state_of(root, k[0]) == "held"
    printnet("--spool", str(root), "release", "--wait", "10", k[0], env=env)
    wait_for(lambda: state_of(root, k[0]) == "completed", 20, "the held job reprinted",
             on_timeout=lambda: logs(servers))
    assert server.stop() == 0

    o1, h1, a1 = (s.out for s in specs)
    # RETRY: resumed where it stopped: every line once, in order, nothing reordered.
    assert printed_ids(o1) == j
    assert complete(o1, j[0], "M1", lines)
    # HOLD: held, the next job printed, then reprinted in full once released.
    assert printed_ids(h1) == [k[0], k[1], k[0]]
    assert complete(h1, k[0], "M4", lines)
    # ABORT: aborted with the reason; the printer went on with the next job.
    assert printed_ids(a1) == a
    outcomes = {ln["job"]: ln["outcome"] for ln in accounting(root)}
    assert outcomes == {**dict.fromkeys([*j, *k], "completed"), a[0]: "aborted",
                        a[1]: "completed"}
    assert master_jobs(root) == {}


# ---------------------------------------------------------------------------
# 5. SIGTERM mid-job


@pytest.mark.slow
def test_sigterm_mid_job_finishes_it_and_loses_nothing(
        tmp_path: Path, servers: list[ServerProcess]) -> None:
    root = spool_at(tmp_path / "spool")
    env = server_env(tmp_path / "run")
    spec = PrinterSpec("T1", tmp_path / "s1/out/T1.prn", baud="19200")
    etc = make_etc(tmp_path / "s1", "S1", [root], [spec])
    server = start_server(etc, "S1", env=env)
    servers.append(server)
    wait_for(lambda: published(root, "S1"), 20, "S1 up", on_timeout=lambda: logs(servers))
    src = tmp_path / "src"
    first = submit(root, src, "M1", "T1", lines=100)  # ~4 KB: ~2 s at 19200 baud
    rest = [submit(root, src, f"M{n}", "T1") for n in (2, 3)]
    wait_for(lambda: printing_with_progress(root, "S1", "T1", first), 20, "T1 printing",
             on_timeout=lambda: logs(servers))

    stopping = time.monotonic()
    assert server.stop(timeout=30) == 0
    assert time.monotonic() - stopping < 10  # finished within the grace (10 s)
    assert state_of(root, first) == "completed"
    assert complete(spec.out, first, "M1", 100)
    jobs = master_jobs(root)
    assert {i: jobs[i].state.value for i in rest} == dict.fromkeys(rest, "pending")
    info = printer_info(root, "S1", "T1")
    assert info is not None and info["job"] is None

    again = start_server(etc, "S1", env=env, drain=True)
    servers.append(again)
    assert again.wait(30) == 0, again.log_text()
    assert printed_ids(spec.out) == [first, *rest]
    assert [ln["job"] for ln in accounting(root)] == [first, *rest]


# ---------------------------------------------------------------------------
# 6. Bad requests are rejected with a reason; a bad configuration is named


def test_bad_requests_rejected_and_bad_config_named(
        tmp_path: Path, servers: list[ServerProcess]) -> None:
    root = spool_at(tmp_path / "spool")
    env = server_env(tmp_path / "run")
    spec = PrinterSpec("P1", tmp_path / "s1/out/P1.prn")
    etc = make_etc(tmp_path / "s1", "S1", [root], [spec])
    src = tmp_path / "src"
    new = root / "new"
    (new / "hello.txt").write_text("not a request\n")
    (new / "01M7Z00000000000AA.req").write_text("{not json")
    (new / "01M7Z00000000000AB.ctl").write_bytes(b"")
    (new / "01M7Z00000000000AC.req").symlink_to("/etc/passwd")
    unknown = submit(root, src, "M0", "NOPE")  # no server published yet: nobody knows
    good = [submit(root, src, "M1", "P1"), submit(root, src, "M2", "P1")]

    # --drain: takes everything in (or rejects it), prints, exits.
    drained = start_server(etc, "S1", env=env, drain=True)
    servers.append(drained)
    assert drained.wait(30) == 0, drained.log_text()
    assert printed_ids(spec.out) == good
    assert visible(new) == []
    bad = ["hello.txt", "01M7Z00000000000AA.req", "01M7Z00000000000AB.ctl",
           "01M7Z00000000000AC.req", f"{unknown}.req"]
    rejected = visible(root / "rejected")
    assert sorted(rejected) == sorted([*bad, *(f"{n}.reason" for n in bad)])
    reason = (root / "rejected" / f"{unknown}.req.reason").read_text()
    assert "unknown printer" in reason and "NOPE" in reason

    # While running: garbage never stops the server; a bad edit of printers.cmd is
    # logged and the last good configuration kept.
    server = start_server(etc, "S1", env=env)
    servers.append(server)
    wait_for(lambda: published(root, "S1"), 20, "S1 up", on_timeout=lambda: logs(servers))
    (etc / "printers.cmd").write_text(spec.line() + "PRINTER P2 PORT=loop:// FLOW=HW\n")
    (new / "garbage.req").write_text("\x00\x01")
    wait_for(lambda: "keeping the last good one" in server.log_text(), 10,
             "the bad edit logged", on_timeout=server.log_text)
    assert re.search(r"printers\.cmd:2: .*FLOW", server.log_text())
    later = submit(root, src, "M3", "P1")
    wait_for(lambda: state_of(root, later) == "completed", 10, "printing goes on",
             on_timeout=server.log_text)
    assert (root / "rejected" / "garbage.req.reason").exists()
    assert server.stop() == 0

    # At start, a bad file stops the server with file, line and problem.
    proc = printnet("--etc", str(etc), "server", "--name", "S1", env=env, check=False)
    assert proc.returncode == 2
    assert re.search(r"printers\.cmd:2: .*FLOW.*HW", proc.stderr), proc.stderr


# ---------------------------------------------------------------------------
# 7. Round-robin: a held master lock on one disk does not stop the other


def test_held_lock_on_one_disk_does_not_stop_the_other(
        tmp_path: Path, servers: list[ServerProcess]) -> None:
    a, b = spool_at(tmp_path / "A"), spool_at(tmp_path / "B")
    env = server_env(tmp_path / "run")
    spec = PrinterSpec("P1", tmp_path / "s1/out/P1.prn")
    etc = make_etc(tmp_path / "s1", "S1", [a, b], [spec])
    src = tmp_path / "src"
    on_a = [submit(a, src, "M1", "P1"), submit(a, src, "M2", "P1")]
    on_b = [submit(b, src, "M3", "P1"), submit(b, src, "M4", "P1")]

    # Another server (here: the test) holds A's master lock and keeps it fresh.
    holder = ExpiringLock(LockTable(a / "locks"), "master", lease=2.0, holder="OTHER")
    assert holder.try_acquire()
    holder.start_heartbeat()
    try:
        server = start_server(etc, "S1", env=env)
        servers.append(server)
        wait_for(lambda: all(state_of(b, i) == "completed" for i in on_b), 15,
                 "B's jobs printed while A's master lock is held",
                 on_timeout=lambda: logs(servers))
        assert master_jobs(a) == {}  # nothing could be committed on A
        assert printed_ids(spec.out) == on_b
        assert sorted(visible(a / "received")) == sorted(f"{i}.req" for i in on_a)
    finally:
        holder.stop_heartbeat()
        holder.release()
    wait_for(lambda: all(state_of(a, i) == "completed" for i in on_a), 15,
             "A's jobs printed once the lock is free", on_timeout=lambda: logs(servers))
    assert server.stop() == 0
    assert printed_ids(spec.out) == [*on_b, *on_a]


# ---------------------------------------------------------------------------
# 9. Cancel of a printing job


@pytest.mark.slow
def test_cancel_printing_job_stops_it(tmp_path: Path, servers: list[ServerProcess]) -> None:
    root = spool_at(tmp_path / "spool")
    env = server_env(tmp_path / "run")
    # A small printer buffer: little of the canceled job is left to print.
    slow = PrinterSpec("C1", tmp_path / "s1/out/C1.prn", baud="9600", buffer=256)
    other = PrinterSpec("C2", tmp_path / "s2/out/C2.prn")
    etc1 = make_etc(tmp_path / "s1", "S1", [root], [slow])
    etc2 = make_etc(tmp_path / "s2", "S2", [root], [other])  # may take the cancel in
    servers += [start_server(etc1, "S1", env=env), start_server(etc2, "S2", env=env)]
    wait_for(lambda: published(root, "S1", "S2"), 20, "servers up",
             on_timeout=lambda: logs(servers))
    src = tmp_path / "src"
    doomed = submit(root, src, "M1", "C1", lines=500)  # ~20 s at 9600 baud
    wait_for(lambda: doomed in master_jobs(root), 10, "the job taken in")
    after = submit(root, src, "M2", "C1")
    wait_for(lambda: printing_with_progress(root, "S1", "C1", doomed), 20, "C1 printing",
             on_timeout=lambda: logs(servers))

    out = printnet("--spool", str(root), "cancel", "--wait", "10", doomed, env=env).stdout
    assert "cancel applied" in out
    wait_for(lambda: state_of(root, after) == "completed", 15,
             "the printer stopped the canceled job and went on",
             on_timeout=lambda: logs(servers))
    for s in servers:
        assert s.stop() == 0
    record = done_records(root)[doomed]
    assert record["outcome"] == "canceled" and record["reason"] == "canceled by root"
    assert printed_ids(slow.out) == [doomed, after]
    assert not complete(slow.out, doomed, "M1", 500)
    assert {ln["job"]: ln["outcome"] for ln in accounting(root)} == {
        doomed: "canceled", after: "completed"}
