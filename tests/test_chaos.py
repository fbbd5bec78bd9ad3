"""Chaos, CI-sized: `chaos_engine` for about a minute and a half (scripts/chaos soaks).

Three print servers on two hosts of a real GlusterFS share (Gluster's default
caches: the weaker tier), host B's clock 5 minutes ahead, continuous
submissions from a station on each host, random ``kill -9`` and restarts,
SIGSTOP past the lease, printers going offline, stations killed mid-submit.
Judged at the end by the engine's own oracle (`chaos_oracle`): zero accepted
jobs lost (each printed intact: both markers, the filler's hash), no reprint or
truncated print that an engine event on that server or printer does not
explain, no lock taken from a live, running holder, the master file consistent
with the request files, no lock left to a dead process.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import shared_fs
from _ci_strict import require
from chaos_engine import ChaosConfig, run

# 75 s of chaos, the drain (up to 120 s), set-up and judging: 15 minutes is a hang.
pytestmark = [pytest.mark.multihost, pytest.mark.chaos, pytest.mark.slow,
              pytest.mark.timeout(900)]

TIER = "env" if os.environ.get("PRINTNET_TEST_SHARED") else "default"


@pytest.fixture(scope="session")
def gluster_session() -> Iterator[None]:
    yield
    shared_fs.shutdown()


@pytest.fixture(scope="session")
def chaos_share(gluster_session: None) -> shared_fs.SharedFS:
    return require("no shared filesystem here", lambda: shared_fs.shared(TIER),
                   shared_fs.Unavailable)


def test_chaos_loses_no_accepted_job(chaos_share: shared_fs.SharedFS, tmp_path: Path) -> None:
    # Lease 4 s: the oracle counts a lease that lapses on a live, running server as a
    # violation, and on a loaded 2-core machine (load average 15) 2 s leases lapsed
    # about once in three minutes (docs/RELIABILITY.md, soak 4).
    cfg = ChaosConfig(duration=75.0, tier=TIER, workdir=tmp_path / "chaos", drain_timeout=180,
                      lease=4.0, kill_every=6.0, pause_every=10.0, offline_every=10.0,
                      station_kill_every=30.0)
    report = run(cfg, share=chaos_share)
    print(report.text())
    assert report.ok, report.text()
    # The run was chaotic enough to mean something.
    assert report.accepted >= 40, report.text()
    # Counted by the engine's own event log, not by what printnet says happened.
    events = report.events
    assert events.get("kill", 0) >= 4 and events.get("restart", 0) >= 3, report.text()
    assert events.get("pause", 0) >= 2 and events.get("offline", 0) >= 1, report.text()
    assert report.completed == report.accepted
    assert not (report.lost or report.unexplained_reprints or report.truncated
                or report.live_lock_breaks), report.text()
