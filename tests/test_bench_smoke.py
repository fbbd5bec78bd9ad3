"""`scripts/bench`'s driver, printnet side, at toy sizes: CI catches a broken bench.

Runs every printnet section of `bench.run` (CUPS and the shared filesystem
left out: they need Debian packages and root) and checks the figures the
bench exists to report, from its JSON rows (not from the rendered table):
one row per metric at the size the plan asked for, each a finite positive
number, its samples finite; no section failed; and crash
survival is exactly N of N acknowledged jobs kept, every one of them pending,
held, printing or completed (an aborted job is not kept).  How fast is not
asserted here (`scripts/bench` measures it).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from bench.run import Plan, main

METRICS = ("CLI start-up", "Submit: one job per CLI call", "Submit: batch",
           "Submit: Python API", "Listing, whole process", "Drain to simulated",
           "Pickup latency, same host", "The line", "Server memory",
           "Scheduling cycle", "Crash survival",
           *(f"Sealing: {what}, {how}" for what in ("submit a large file", "open at print",
                                                    "submit small jobs")
             for how in ("unsealed", "SEAL=ON")),
           "Forwarding to another site, over the share",
           "Forwarding to another site, over loopback IPP")


@pytest.mark.slow
def test_bench_driver_reports_its_figures(tmp_path: Path) -> None:
    plan = Plan.make(False, smoke=True)
    work = tmp_path / "work"
    rows_json = tmp_path / "rows.json"
    main(["--smoke", "--no-cups", "--out", str(tmp_path / "BENCHMARKS.md"), "--plot",
          str(tmp_path / "b.png"), "--work", str(work), "--json", str(rows_json)])
    saved = json.loads((work / "run.json").read_text())
    assert saved["problems"] == [], saved["problems"]
    rows = json.loads(rows_json.read_text())
    by_metric = {}
    for metric in METRICS:
        found = [r for r in rows if r["metric"].startswith(metric)]
        assert len(found) == 1, f"{len(found)} rows for {metric}"
        row = by_metric[metric] = found[0]
        value = row["printnet"]
        assert isinstance(value, float | int) and math.isfinite(value) and value > 0, row
        samples = row["samples"]
        assert all(math.isfinite(s) and s >= 0 for s in samples), row
    assert "## What this run could not measure" not in (tmp_path / "BENCHMARKS.md").read_text()
    # The sizes the plan asked for (a row measuring something else is no figure).
    assert by_metric["Crash survival"]["size"] == f"N = {plan.crash_n}"
    assert by_metric["Submit: batch"]["size"].startswith(f"{plan.batch} ×")
    assert by_metric["Drain to simulated"]["size"].startswith(f"{plan.drain_jobs} ×")
    # Crash survival: all N acknowledged jobs kept, each alive or printed.
    crash = by_metric["Crash survival"]
    assert crash["printnet"] == 100.0 and crash["met"] is True, crash
    m = re.search(r"(\d+) of (\d+) kept .*states: ([^)]*)\)", crash["note"])
    assert m is not None, crash["note"]
    assert int(m.group(1)) == int(m.group(2)) == plan.crash_n, crash["note"]
    states = {k: int(v) for k, v in (p.rsplit(" ", 1) for p in m.group(3).split(", "))}
    assert set(states) <= {"pending", "held", "printing", "completed"}, states
    assert sum(states.values()) == plan.crash_n, states
    # The line row: bytes actually went through the simulated line.
    line = re.search(r"(\d+) bytes in ([\d.]+) s", by_metric["The line"]["note"])
    assert line is not None and int(line.group(1)) > 0, by_metric["The line"]["note"]
    # Every figure with its spread: a column of min / median / max over the runs.
    report = (tmp_path / "BENCHMARKS.md").read_text()
    assert "| printnet spread | CUPS spread |" in report
    listing = by_metric["Listing, whole process"]
    assert "its CPU (user + sys)" in listing["note"], listing["note"]
    memory = by_metric["Server memory"]
    assert "with no job" in memory["note"] and "`python -c pass`" in memory["note"], memory


def test_a_quick_plan_keeps_the_full_plans_rows_and_three_runs() -> None:
    full, quick = Plan.make(False), Plan.make(True)
    assert quick.shared == full.shared and quick.drain_servers == full.drain_servers
    assert set(quick.list_sizes) <= set(full.list_sizes)
    assert set(quick.scale_sizes) <= set(full.scale_sizes)
    assert min(quick.batch_runs, quick.list_runs, quick.drain_runs, quick.scale_runs) >= 3
    assert 1000000 in full.list_sizes and 1000000 in full.scale_sizes  # the scaling plot
