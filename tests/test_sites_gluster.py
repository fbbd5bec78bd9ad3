"""The ``spool:`` transport over a real network filesystem: the central spool on the
GlusterFS share (`shared_fs`), the branch on its own disk (docs/SITES.md).

Host A holds the central spool on its mount; the branch server forwards into it
through host B's own client of the share.  Host B is cut off from the file server
while jobs flow (its mount fails with ENOTCONN after the ping timeout) and then
restored: every job reaches the central spool once, seen through host A's
client, and the branch records each once as forwarded.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import shared_fs
from _ci_strict import require
from helpers_e2e import (
    SETUPS,
    accounting,
    done_records,
    make_etc,
    published,
    server_env,
    start_server,
    wait_for,
    write_atomic_text,
)
from shared_fs import SharedFS

from printnet.api import Station
from printnet.spool.layout import Spool

pytestmark = [pytest.mark.multihost, pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def share() -> Iterator[SharedFS]:
    tier = shared_fs.tiers()[0]  # nfs (or the share PRINTNET_TEST_SHARED names)
    yield require("no shared filesystem here", lambda: shared_fs.shared(tier),
                  shared_fs.Unavailable)
    shared_fs.shutdown()


def central_names(share: SharedFS, rel: str) -> dict[str, list[str]]:
    """new/ and forwarded/ of the central spool, listed through host A's client."""
    root = share.a.mount / rel / "spool"
    out: dict[str, list[str]] = share.a.py(
        "import json, os, sys; r = sys.argv[1]; print(json.dumps({d: sorted(n for n in "
        "os.listdir(os.path.join(r, d)) if not n.startswith('.')) for d in "
        "('new', 'forwarded')}))", str(root))
    return out


def test_forwarding_through_a_cut_off_share_queues_each_job_once(
        share: SharedFS, tmp_path: Path) -> None:
    if not share.can_cut:
        pytest.skip("this share cannot be cut off (PRINTNET_TEST_SHARED)")
    rel = share.fresh("sites")
    share.a.probe("init", str(share.a.mount / rel / "spool"))
    central_via_b = share.b.mount / rel / "spool"
    wait_for(lambda: share.b.run(["test", "-f", str(central_via_b / "VERSION")],
                                 check=False).returncode == 0, 30, "the spool on host B")
    branch = tmp_path / "branch" / "spool"
    Spool.init(branch)
    etc = make_etc(tmp_path / "branch", "B1", [branch], [])
    write_atomic_text(etc / "printers.cmd",
                      f"PRINTER HQS PORT=spool:{central_via_b}?printer=CS SETUP=STANDARD "
                      "ERRORS=RETRY STALL=1 RETRY=0.5\n" + SETUPS)
    server = start_server(etc, "B1", env=server_env(tmp_path / "run"))
    try:
        wait_for(lambda: published(branch, "B1"), 60, "B1 up", on_timeout=server.log_text)
        src = tmp_path / "memo.txt"
        src.write_text("from the branch, across the share\n")
        station = Station(branch)
        jobs = [r.id for r in station.submit([src] * 5, printer="HQS", each=True)]
        wait_for(lambda: all(j in done_records(branch) for j in jobs), 120,
                 "the first jobs forwarded", on_timeout=server.log_text)
        share.cut(share.b)
        try:
            jobs += [r.id for r in station.submit([src] * 5, printer="HQS", each=True)]

            def link_down() -> bool:
                info = json.loads((branch / "servers" / "B1.json").read_text())
                return any("cannot be reached" in " ".join(p.get("reasons", []))
                           for p in info.get("printers", []))

            wait_for(link_down, 120, "the branch to see the share gone",
                     on_timeout=server.log_text)
            assert not all(j in done_records(branch) for j in jobs)
        finally:
            share.restore(share.b)
        wait_for(lambda: all(j in done_records(branch) for j in jobs), 180,
                 "every job forwarded", on_timeout=server.log_text)
    finally:
        server.stop()
    done = done_records(branch)
    assert {done[j]["outcome"] for j in jobs} == {"forwarded"}
    lines = Counter(x["job"] for x in accounting(branch))
    assert {j: lines[j] for j in jobs} == dict.fromkeys(jobs, 1)
    wait_for(lambda: len(central_names(share, rel)["new"]) == len(jobs), 30,
             "host A to see every request")
    names = central_names(share, rel)
    assert names["new"] == sorted(f"{j}.req" for j in jobs)
    assert names["forwarded"] == sorted(f"{j}.json" for j in jobs)
