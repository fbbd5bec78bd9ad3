"""Two sites with real processes: a branch forwards to central, exactly once.

Branch: its own spool and one `printnet server` with two forwarding printers,
``HQS`` (``PORT=spool:<central spool>?printer=CS``, the share) and ``HQI``
(``PORT=ipp://127.0.0.1:<port>/ipp/print/CI``, the central gateway).  Central: a
spool, a `printnet gateway` on a fixed port (so it can be killed and started
again where the branch looks for it) and a `printnet server` with the simulated
printers CS and CI.  The oracle is the central printers' output (the header
page names each job's id, which is the branch's id), both sides' done records
and accounting lines.

The soak submits jobs at the branch while the link is cut and restored (the
gateway killed with -9 and started again, SIGSTOPped past the branch's STALL, the
central share renamed away and made unwritable) and the branch server is killed
with -9 at random moments of its forwards.  In CI it runs 60 jobs;
PRINTNET_SITES_SOAK=200 runs the full size.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable

import pytest
from helpers_e2e import (
    PrinterSpec,
    accounting,
    done_records,
    master_jobs,
    printed_ids,
    printnet,
    wait_for,
    write_printers,
)
from helpers_sites import RANK, Sites, completed_at_central, forwarded, submit, two_sites  # noqa: F401 (fixture)

pytestmark = pytest.mark.slow

def test_jobs_go_to_central_once_and_the_branch_follows_them(sites: Sites) -> None:
    s = sites
    s.start_branch()
    jobs = submit(s, 6)
    wait_for(lambda: forwarded(s, jobs), 120, "the jobs forwarded", on_timeout=s.text)
    done = done_records(s.branch)
    for job, (printer, _) in jobs.items():
        rec = done[job]
        assert rec["outcome"] == "forwarded", rec
        assert rec["forwarded"]["printer"] == printer and rec["forwarded"]["job"] == job
    lines = [x for x in accounting(s.branch) if x["job"] in jobs]
    assert sorted(x["job"] for x in lines) == sorted(jobs)
    assert {x["outcome"] for x in lines} == {"forwarded"}
    assert all(x["site"] and x["remote_job"] for x in lines)
    # Nothing printed yet (no central server): the branch sees each job arrived there.
    some = {p: next(j for j, (q, _) in jobs.items() if q == p) for p in ("CS", "CI")}
    out = printnet("--spool", str(s.branch), "--etc", str(s.betc), "status",
                   *some.values()).stdout
    assert out.count("there: pending") == 2, out
    # Central's printers stopped: taken in and queued; the branch sees the position.
    write_printers(s.cetc, [PrinterSpec(p, out, stopped=True) for p, out in s.outs.items()])
    s.start_central()
    wait_for(lambda: all(j in master_jobs(s.central) for j in jobs), 60, "queued at central",
             on_timeout=s.text)
    out = printnet("--spool", str(s.branch), "--etc", str(s.betc), "status",
                   *some.values()).stdout
    assert out.count("there: pending, position") == 2, out
    write_printers(s.cetc, [PrinterSpec(p, out) for p, out in s.outs.items()])
    wait_for(lambda: completed_at_central(s, jobs), 120, "central printed them",
             on_timeout=s.text)
    for printer, path in s.outs.items():
        mine = [j for j, (p, _) in jobs.items() if p == printer]
        assert sorted(printed_ids(path)) == sorted(mine)
    out = printnet("--spool", str(s.branch), "--etc", str(s.betc), "status",
                   *some.values()).stdout
    assert out.count("there: completed") == 2, out


def chaos(s: Sites, stop: threading.Event, rng: random.Random, actions: Counter[str],
          cutting: threading.Semaphore) -> None:
    """Cut and restore the link, and kill the branch server, until `stop`; `cutting` is
    released as each cut begins (the test submits a batch of jobs into it)."""
    cuts: list[tuple[str, Callable[[], None]]] = []

    def gateway_killed() -> None:
        s.kill_gateway()
        time.sleep(rng.uniform(0.2, 1.0))
        s.start_gateway()

    def gateway_stalled() -> None:
        assert s.gateway is not None
        s.gateway.send_signal(signal.SIGSTOP)
        time.sleep(rng.uniform(1.2, 2.0))  # past the branch's STALL=1
        s.gateway.send_signal(signal.SIGCONT)

    def share_gone() -> None:
        away = s.central.with_name("spool.unmounted")
        os.rename(s.central, away)
        time.sleep(rng.uniform(0.3, 1.5))
        os.rename(away, s.central)

    def share_read_only() -> None:
        os.chmod(s.central / "new", 0o555)
        time.sleep(rng.uniform(0.5, 2.0))
        os.chmod(s.central / "new", 0o3733)

    def branch_killed() -> None:
        time.sleep(rng.uniform(0.0, 0.5))  # a random moment of its forwards
        assert s.bserver is not None
        s.bserver.kill9()
        s.start_branch()

    cuts = [("gateway killed", gateway_killed), ("gateway stalled", gateway_stalled),
            ("share gone", share_gone), ("branch killed", branch_killed)]
    if os.geteuid() != 0:
        cuts.append(("share read-only", share_read_only))
    i = 0
    while not stop.is_set():
        name, cut = cuts[i % len(cuts)] if i < len(cuts) else rng.choice(cuts)
        cutting.release()
        cut()
        actions[name] += 1
        i += 1
        stop.wait(rng.uniform(0.2, 0.8))


SOAK = int(os.environ.get("PRINTNET_SITES_SOAK", "60"))


@pytest.mark.timeout(max(300, SOAK * 5))
def test_soak_link_cut_and_restored_every_job_printed_once_in_order(sites: Sites) -> None:
    s = sites
    n = SOAK
    s.start_branch()
    rng = random.Random(11)
    stop = threading.Event()
    actions: Counter[str] = Counter()
    errors: list[BaseException] = []
    cutting = threading.Semaphore(0)

    def run() -> None:
        try:
            chaos(s, stop, rng, actions, cutting)
        except BaseException as exc:  # reported by the test
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    batches = max(6, n // 20)  # every kind of cut, then random ones
    try:
        jobs: dict[str, tuple[str, str]] = {}
        for batch in range(batches):
            # Each batch goes in as a cut begins: it waits at the branch, and flows (and
            # is forwarded again where an acknowledgement was lost) as the link returns.
            assert cutting.acquire(timeout=120), (actions, errors)
            jobs.update(submit(s, n // batches, seed=batch))
        wait_for(lambda: forwarded(s, jobs) or errors, 300, "every job forwarded",
                 on_timeout=lambda: s.text() + f"\n{actions}")
    finally:
        stop.set()
        thread.join(60)
    assert not errors, errors
    if s.gateway is None or s.gateway.poll() is not None:
        s.start_gateway()
    wait_for(lambda: forwarded(s, jobs), 300, "every job forwarded",
             on_timeout=lambda: s.text() + f"\n{actions}")
    # Recorded once forwarded at the branch.
    done = done_records(s.branch)
    assert {done[j]["outcome"] for j in jobs} == {"forwarded"}
    lines = Counter(x["job"] for x in accounting(s.branch) if x["outcome"] == "forwarded")
    assert {j: lines[j] for j in jobs} == dict.fromkeys(jobs, 1)
    # Central has each once: one request, nothing twice in its queue.
    s.start_central()
    wait_for(lambda: completed_at_central(s, jobs), 600, "central printed them all",
             on_timeout=s.text)
    central_lines = Counter(x["job"] for x in accounting(s.central))
    assert {j: central_lines[j] for j in jobs} == dict.fromkeys(jobs, 1)
    # Printed exactly once each, in priority-then-submission order per printer.
    for printer, out in s.outs.items():
        mine = sorted((j for j, (p, _) in jobs.items() if p == printer),
                      key=lambda j: (RANK[jobs[j][1]], j))
        assert printed_ids(out) == mine, (printer, actions)
    assert sum(actions.values()) >= batches and len(actions) >= 4, actions
