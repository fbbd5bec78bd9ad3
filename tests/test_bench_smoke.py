"""`scripts/bench`'s driver, printnet side, at toy sizes: CI catches a broken bench.

Runs every printnet section of `bench.run` (CUPS and the shared filesystem
left out: they need Debian packages and root) and checks that the report has
a row for each metric, with numbers, and that nothing failed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.run import main


@pytest.mark.slow
def test_bench_driver_runs_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "BENCHMARKS.md"
    assert main(["--smoke", "--no-cups", "--out", str(out), "--plot",
                 str(tmp_path / "b.png"), "--work", str(tmp_path / "work")]) == 0
    text = out.read_text()
    assert "## What this run could not measure" not in text, text
    for metric in ("CLI start-up", "Submit: one job per CLI call", "Submit: batch",
                   "Submit: Python API", "Listing, whole process", "Drain to simulated",
                   "Pickup latency, same host", "The line", "Server memory",
                   "Scheduling cycle", "Crash survival", "Sealing: submit a large file",
                   "Sealing: open at print", "Sealing: submit small jobs"):
        rows = [line for line in text.splitlines() if line.startswith(f"| {metric}")]
        assert rows, f"no row for {metric}"
        printnet_cell = rows[0].split("|")[3].strip()
        assert printnet_cell not in ("", "—"), rows[0]
    assert "| Crash survival" in text and "| 100 |" in text  # no acknowledged job lost
