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
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

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
    layout = {  # server -> its printers (a class POOL spans S1 and S2; CHK has CHECKS)
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
        wait_for(lambda r=root: published(r, *layout), 20, "all servers publish",
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
    for printer, out in outs.items():
        for job_id, segment in segments(read_out(out)):
            plan, markers = jobs[job_id]
            assert plan.printer in (printer, "POOL"), (job_id, printer)
            expected = Counter({m: plan.copies for m in markers})
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
            assert plain == sorted(plain, key=key)
        elif printer in ("P2", "P3"):
            # A class shared by two servers: each claim is exact on its own disk
            # (decided under that disk's lock); across disks it is best effort
            # (see Server._reserve_printers).
            for n in (0, 1):
                mine = [i for i in ids if spool_of[i] == n]
                assert mine == sorted(mine, key=key), (printer, n)
        else:
            if ids != sorted(ids, key=key):
                exp = sorted(ids, key=key)
                bad = next(n for n in range(len(ids)) if ids[n] != exp[n])
                for n in range(max(0, bad - 3), bad + 8):
                    print(n, ids[n], key(ids[n]), spool_of[ids[n]], "| exp", exp[n])
            assert ids == sorted(ids, key=key), printer

    # -- records: one accounting line and one done/ record per job; nothing left -------
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
