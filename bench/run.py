"""`python -m bench.run [--quick]`: printnet and CUPS side by side, in one run.

Writes docs/BENCHMARKS.md (the table with each figure's spread over its runs,
the targets, the gaps with their profiles and floors), docs/benchmarks.png and
docs/benchmarks-scaling.png (listing time and server memory against pending
jobs, 1k to 1M; CUPS as far as it can hold them).  `--quick` keeps the same rows
at smaller sizes, with the same number of runs.  `scripts/bench` installs what
this needs (Debian's CUPS, matplotlib and py-spy into the venv) and runs it.

Each section catches its own failure: a broken section becomes a row that
says so, and the rest of the run goes on.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from bench import cups as cups_mod
from bench import printnet_bench as pb
from bench.common import ROOT, Row, Sink, log, median, percentile, rss_mib, run_timed
from bench.project import text_file


@dataclass
class Plan:
    """How much of everything to do (`--quick` or the full run)."""

    quick: bool
    startup_runs: int = 30
    cli_calls: int = 60
    batch: int = 2000
    batch_runs: int = 3
    # The scaling plot's sizes (docs/benchmarks-scaling.png): listing and memory.
    list_sizes: tuple[int, ...] = (1000, 10000, 100000, 1000000)
    cups_list_sizes: tuple[int, ...] = (1000, 10000, 100000, 1000000)
    list_runs: int = 5
    drain_jobs: int = 1000
    drain_servers: tuple[int, ...] = (1, 2, 4)
    drain_runs: int = 3
    cups_drain_jobs: int = 1000
    pickup_samples: int = 40
    cups_pickup_samples: int = 40
    line: tuple[tuple[int, int, int], ...] = ((9600, 6, 1200), (115200, 12, 12000))
    scale_sizes: tuple[int, ...] = (1000, 10000, 100000, 1000000)
    scale_runs: int = 3  # server memory measured this many times per size
    scale_ticks: int = 30
    scale_wait: float = 2.0
    crash_n: int = 500
    ipp_jobs: int = 2000  # IPP Print-Job into the gateway and into CUPS, per run
    ipp_runs: int = 3
    shared: bool = True
    shared_jobs: int = 300
    cross_samples: int = 20
    profile: bool = True
    seal_mib: int = 64  # the large file of the sealing rows
    seal_jobs: int = 2000  # small jobs of the sealing rows
    seal_runs: int = 3
    forward_jobs: int = 200  # jobs forwarded branch -> central, per transport and run
    forward_runs: int = 3

    @classmethod
    def make(cls, quick: bool, smoke: bool = False) -> Plan:
        if smoke:  # tests/test_bench_smoke.py: every printnet section, tiny sizes
            return cls(quick=True, startup_runs=2, cli_calls=2, batch=20, batch_runs=1,
                       list_sizes=(100,), cups_list_sizes=(), list_runs=1, drain_jobs=20,
                       drain_servers=(1,), drain_runs=1, pickup_samples=3,
                       line=((115200, 2, 400),), scale_sizes=(200,), scale_runs=1,
                       scale_ticks=3,
                       scale_wait=0.3, crash_n=10, shared=False, profile=False,
                       ipp_jobs=40, ipp_runs=1, seal_mib=4, seal_jobs=20, seal_runs=1,
                       forward_jobs=10, forward_runs=1)
        if not quick:
            return cls(quick=False)
        # The same rows as a full run (every figure over 3 interleaved runs), at
        # smaller sizes: a quick run's table lines up with a full one's.
        return cls(quick=True, startup_runs=12, cli_calls=15, batch=1000, batch_runs=3,
                   list_sizes=(1000, 10000, 100000), cups_list_sizes=(1000, 10000),
                   list_runs=3, drain_jobs=500, drain_runs=3,
                   cups_drain_jobs=300, pickup_samples=15, cups_pickup_samples=15,
                   line=((9600, 3, 600), (115200, 6, 6000)),
                   scale_sizes=(1000, 10000, 100000), scale_ticks=15, crash_n=200,
                   shared_jobs=100, cross_samples=6,
                   profile=False, ipp_jobs=500, ipp_runs=3, seal_mib=32, seal_jobs=1000,
                   seal_runs=3, forward_jobs=100, forward_runs=3)


@dataclass
class Run:
    plan: Plan
    work: Path
    rows: list[Row] = field(default_factory=list)
    gaps: dict[str, list[tuple[float, str, str]]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    info: dict[str, str] = field(default_factory=dict)
    cups: cups_mod.PrivateCups | None = None
    sink: Sink | None = None
    cups_rss: dict[int, float] = field(default_factory=dict)

    def section(self, name: str, fn: Callable[[], None]) -> None:
        log(f"== {name}")
        t0 = time.monotonic()
        try:
            fn()
        except Exception as exc:  # a broken section must not lose the others
            traceback.print_exc()
            self.problems.append(f"{name}: {type(exc).__name__}: {exc}")
        log(f"   ({time.monotonic() - t0:.1f} s)")

    # -- CUPS --------------------------------------------------------------------------

    def fresh_cups(self) -> cups_mod.PrivateCups | None:
        """A new private cupsd with raw queues sink1..4 (class POOL), all disabled."""
        if self.cups is None:
            return None
        self.cups.stop()
        self.cups.configure()
        self.cups.start()
        assert self.sink is not None
        for i in range(1, 5):
            self.cups.add_printer(f"sink{i}", self.sink.url, "POOL")
            self.cups.disable(f"sink{i}")
        self.cups.run("cupsaccept", "POOL")  # a new class is not accepting jobs
        self.cups.enable("POOL")
        self.sink.reset()
        return self.cups

    # -- sections ------------------------------------------------------------------------

    def startup(self) -> None:
        pn, py = pb.startup(self.work, self.plan.startup_runs)
        ratio = pn.value / py.value
        self.rows.append(Row(
            "CLI start-up (`printnet --version`)", "—", "ms", False, pn.value, None,
            target=f"≤ 1.3 × `python -c pass` ({py.value:.0f} ms here)", met=ratio <= 1.3,
            printnet_cmd="printnet --version", cups_cmd="",
            note=f"{ratio:.2f} × `python -c pass` in the same venv (median of "
                 f"{len(pn.samples)}, interleaved)", samples=pn.samples))

    def submit(self) -> None:
        plan = self.plan
        cli = pb.submit_cli(self.work, plan.cli_calls)
        # Interleaved, one run at a time: the disk's state drifts during a run.
        each_rates: list[float] = []
        api_rates: list[float] = []
        for r in range(plan.batch_runs):
            pair = [(each_rates, pb.submit_each), (api_rates, pb.submit_api)]
            for into, fn in pair if r % 2 == 0 else pair[::-1]:
                into.extend(fn(self.work, plan.batch, 1, tag=f"{r}-").samples)
        pb.cleanup_stations(self.work)
        each = pb.Measured(median(each_rates), each_rates, {})
        api = pb.Measured(median(api_rates), api_rates, {})
        lp_rate = ipp_rate = None
        lp_rates: list[float] = []
        rates: list[float] = []
        c = self.fresh_cups()
        if c is not None:
            f = text_file(self.work / "one.txt", 1024)
            times = run_timed(["lp", "-d", "sink1", str(f)], repeat=plan.cli_calls, env=c.env)
            lp_rate = 1 / median(times)
            lp_rates = [1 / t for t in times]
            for _ in range(plan.batch_runs):
                os.sync()
                t0 = time.perf_counter()
                cups_mod.fill(c, "sink1", plan.batch, b"x" * 1024,
                              deadline=time.monotonic() + 300)
                rates.append(plan.batch / (time.perf_counter() - t0))
            ipp_rate = median(rates)
            c.stop()
        self.rows.append(Row(
            "Submit: one job per CLI call", "1 KB", "jobs/s", True, cli.value, lp_rate,
            target="— (CUPS did 130–145 here)", met=None,
            printnet_cmd="printnet request FILE", cups_cmd="lp -d sink1 FILE",
            note=f"median of {plan.cli_calls} calls; printnet per call "
                 f"{median(cli.samples):.0f} ms", samples=[1000 / t for t in cli.samples],
            cups_samples=lp_rates))
        self.rows.append(Row(
            "Submit: batch, one process", f"{plan.batch} × 1 KB", "jobs/s", True,
            each.value, ipp_rate, target="≥ 2,000 jobs/s", met=each.value >= 2000,
            printnet_cmd="printnet request --each F1..FN",
            cups_cmd="IPP Print-Job, one keep-alive connection",
            note="CUPS has no batch submission; its column is its API (IPP). Runs: "
                 + ", ".join(f"{x:.0f}" for x in each.samples),
            samples=each.samples, cups_samples=rates))
        self.rows.append(Row(
            "Submit: Python API", f"{plan.batch} × 1 KB", "jobs/s", True, api.value,
            ipp_rate, target="≥ 2,000 jobs/s", met=api.value >= 2000,
            printnet_cmd="Station.submit(files, each=True)",
            cups_cmd="IPP Print-Job, one keep-alive connection",
            note="runs (interleaved with the batch row's): "
                 + ", ".join(f"{x:.0f}" for x in api.samples),
            samples=api.samples, cups_samples=rates))

    def listing(self) -> None:
        plan = self.plan
        cups_ms: dict[int, float] = {}
        cups_runs: dict[int, list[float]] = {}
        for n in plan.cups_list_sizes:
            c = self.fresh_cups()
            if c is None:
                break
            t0 = time.monotonic()
            got = cups_mod.fill(c, "sink1", n, b"x" * 1024, deadline=time.monotonic() + 240)
            if got < n:
                # CUPS slows down as its queue grows: compare where it got to.
                self.problems.append(
                    f"CUPS took only {got:,} of {n:,} jobs in {time.monotonic() - t0:.0f} s "
                    f"(its Print-Job slows down as the queue grows); listing compared at "
                    f"{got:,}")
            time.sleep(1.0)
            self.cups_rss[got] = rss_mib(c.pid)
            times = run_timed(["lpstat", "-o"], repeat=plan.list_runs, env=c.env)
            cups_ms[got] = median(times) * 1000
            cups_runs[got] = [t * 1000 for t in times]
            c.stop()
            if got < n:
                break
        for n in sorted(set(plan.list_sizes) | set(cups_ms)):
            m = pb.listing(self.work, n, plan.list_runs)
            cms = cups_ms.get(n)
            if cms is not None:
                target, met = "faster than CUPS", m.value < cms
            elif n == 100000:
                target, met = "≤ 300 ms", m.value <= 300
            else:
                target, met = "faster than CUPS (not measured at this size)", None
            if n == 100000:
                target, met = "≤ 300 ms" + (" and faster than CUPS" if cms else ""), \
                    m.value <= 300 and (cms is None or m.value < cms)
            self.rows.append(Row(
                "Listing, whole process", f"{n:,} pending", "ms", False, m.value, cms,
                target=target, met=met,
                printnet_cmd="printnet status", cups_cmd="lpstat -o",
                note=f"median of {plan.list_runs}; its CPU (user + sys) "
                     f"{m.extra['cpu_ms']:.0f} ms (wall time minus CPU time: the machine)",
                samples=m.samples, cups_samples=cups_runs.get(n, [])))

    def drain(self) -> None:
        plan = self.plan
        cups_rate = None
        cups_rates: list[float] = []
        n = plan.cups_drain_jobs
        for _ in range(plan.drain_runs):
            c = self.fresh_cups()
            if c is None or self.sink is None:
                break
            cups_mod.fill(c, "POOL", n, b"x" * 1024, deadline=time.monotonic() + 120)
            self.sink.reset()
            t0 = time.monotonic()
            for i in range(1, 5):
                c.enable(f"sink{i}")
            from bench.common import wait_until

            t1 = wait_until(lambda: self.sink is not None and self.sink.count() >= n, 600,
                            0.005, "CUPS to drain")
            cups_rates.append(n / (t1 - t0))
            c.stop()
        if cups_rates:
            cups_rate = median(cups_rates)
        for servers in plan.drain_servers:
            rates, cpus, op_us = [], [], []
            for _ in range(plan.drain_runs):
                m = pb.drain(self.work, servers, plan.drain_jobs)
                rates.append(m.value)
                cpus.append(m.extra["cpu_s"])
                op_us.append(pb.metadata_cost(self.work / "metadata"))
            rate = median(rates)
            cpu_ms = median(cpus) / plan.drain_jobs * 1000
            disk_ms = pb.METADATA_OPS_PER_JOB * median(op_us) / 1000
            # The floors: one process's Python runs on one core at a time (the GIL),
            # so 1 / (its CPU per job) bounds it; the disk's metadata operations too.
            floor = (f"; floors: CPU {1000 / cpu_ms:,.0f} jobs/s per server (1 / CPU per "
                     f"job), disk {pb.METADATA_OPS_PER_JOB} metadata operations per job × "
                     f"{median(op_us):.0f} µs each (a bare loop beside the runs) = "
                     f"{disk_ms:.2f} ms → {1000 / disk_ms:,.0f} jobs/s")
            self.rows.append(Row(
                "Drain to simulated printers", f"{plan.drain_jobs} × 1 KB, {servers} "
                f"server{'s' if servers > 1 else ''} × 4 printers", "jobs/s", True, rate,
                cups_rate, target="≥ 1,500 jobs/s", met=rate >= 1500,
                printnet_cmd=f"{servers} × printnet server (4 × sim://…&baud=inf each)",
                cups_cmd=f"cupsd, class of 4 raw socket:// queues ({plan.cups_drain_jobs} "
                         "jobs)",
                note=f"runs: {', '.join(f'{r:.0f}' for r in rates)} jobs/s; server CPU "
                     f"{cpu_ms:.2f} ms per job" + floor,
                samples=rates, cups_samples=cups_rates))
        if plan.profile and any(r.met is False for r in self.rows
                                if r.metric.startswith("Drain")):
            self.gaps["drain"] = self.profile_drain()

    def profile_drain(self) -> list[tuple[float, str, str]]:
        """One more 2-server drain with py-spy on both servers."""
        from bench.profiles import Spy, summarize
        from bench.project import Project, ServerSpec

        root = self.work / "drainprof"
        if root.exists():
            shutil.rmtree(root)
        project = Project(root)
        stage = Project(root / "stage")
        (root / "src").mkdir()
        files = [text_file(root / "src" / f"f{i}.txt", 1024) for i in range(2000)]
        reqs: list[object] = list(stage.stage("POOL", files))
        specs = [ServerSpec(f"S{i}", [project.sim_port(f"S{i}P{k}") for k in range(1, 5)])
                 for i in (1, 2)]
        try:
            for spec in specs:
                project.start(spec)
            spy = Spy([p.pid for p in project.procs.values()], self.work / "drain-spy")
            time.sleep(1.0)
            pb._publish(stage, project, reqs)
            from bench.common import wait_until

            wait_until(lambda: project.done_count() >= 2000, 600, 0.01, "profiled drain")
            paths = spy.stop()
        finally:
            project.stop_all()
        return summarize(paths)

    def pickup(self) -> None:
        plan = self.plan
        m = pb.pickup(self.work, plan.pickup_samples)
        cups_med = cups_p95 = None
        c = self.fresh_cups()
        if c is not None and self.sink is not None:
            c.enable("sink1")
            ipp = cups_mod.Ipp(c.sock)
            lat = []
            from bench.common import wait_until

            for i in range(plan.cups_pickup_samples):
                before = self.sink.count()
                t0 = time.monotonic()
                ipp.print_job("sink1", b"x" * 1024)
                wait_until(partial(pb._more, self.sink.count, before), 30, 0.0005,
                           "CUPS first byte")
                first = self.sink.snapshot()[before].first_byte
                assert first is not None
                lat.append((first - t0) * 1000)
                time.sleep(0.05 + (i % 7) * 0.031)
            ipp.close()
            c.stop()
            cups_med, cups_p95 = median(lat), percentile(lat, 95)
        self.rows.append(Row(
            "Pickup latency, same host (median)", "1 KB job, idle printer", "ms", False,
            m.value, cups_med, target="≤ 20 ms", met=m.value <= 20,
            printnet_cmd="Submitter.submit → first byte at socket:// printer",
            cups_cmd="IPP Print-Job → first byte at socket:// printer",
            note=f"p95 printnet {m.extra['p95']:.1f} ms"
                 + (f", CUPS {cups_p95:.1f} ms" if cups_p95 is not None else "")
                 + f"; {len(m.samples)} jobs one at a time; printnet's clock starts when "
                   "the request is published, CUPS's when the request is sent",
            samples=m.samples))

    def line(self) -> None:
        for baud, jobs, size in self.plan.line:
            m = pb.line(self.work, baud, jobs, size)
            self.rows.append(Row(
                "The line: share of the line rate", f"{baud} baud, {jobs} × {size} B",
                "%", True, m.value, None, target="≥ 98 %", met=m.value >= 98,
                printnet_cmd="sim://… printer at BAUD, back-to-back jobs with header pages",
                cups_cmd="— (CUPS has had no serial backend since 1.6)",
                note=f"{m.extra['bytes']:.0f} bytes in {m.extra['seconds']:.2f} s "
                     f"(ideal {baud / 10:.0f} B/s)"))

    def scale(self) -> None:
        for n in self.plan.scale_sizes:
            mem, cycle = pb.scale(self.work, n, self.plan.scale_ticks, self.plan.scale_wait,
                                  memory_runs=self.plan.scale_runs)
            cups = self.cups_rss.get(n)
            if n == 1000:
                target, met = "≤ CUPS", None if cups is None else mem.value <= cups
            elif n == 100000:
                target, met = "≤ 100 MiB", mem.value <= 100
            else:
                target, met = "—", None
            self.rows.append(Row(
                "Server memory (RSS)", f"{n:,} pending", "MiB", False, mem.value,
                cups, target=target, met=met,
                printnet_cmd="printnet server, VmRSS after 2 s",
                cups_cmd="cupsd VmRSS with that many jobs" if n in self.cups_rss else "",
                note=f"peak (VmHWM) {mem.extra['peak']:.0f} MiB; the same server with no "
                     f"job {mem.extra['idle']:.1f} MiB (interpreter and imports), "
                     f"`python -c pass` {mem.extra['python']:.1f} MiB",
                samples=mem.samples))
            self.rows.append(Row(
                "Scheduling cycle (median)", f"{n:,} pending", "ms", False, cycle.value,
                None, target="≤ 50 ms" if n >= 100000 else "—",
                met=cycle.value <= 50 if n >= 100000 else None,
                printnet_cmd="Server.tick(): a job finished and the next claimed",
                cups_cmd="— (no equivalent)",
                note=f"p95 {cycle.extra['p95']:.1f} ms, max {cycle.extra['max']:.1f} ms over "
                     f"{len(cycle.samples)} cycles that printed {cycle.extra['printed']:.0f} "
                     f"jobs; first cycle (start-up: load, reconcile, full walk, intake) "
                     f"{cycle.extra['first']:.0f} ms", samples=cycle.samples))

    def gateway(self) -> None:
        """IPP Print-Job into `printnet gateway` vs into cupsd: same client, same pattern."""
        from statistics import median as med

        from bench import gateway_bench as gb

        plan = self.plan
        res = gb.run(self.work, plan.ipp_jobs, plan.ipp_runs,
                     self.sink.url if self.cups is not None and self.sink else None)
        pn, cu, cs = res.printnet, res.cups, res.cups_sync
        expected = 50 + plan.ipp_jobs * plan.ipp_runs

        def runs(s: gb.Series) -> str:
            return ", ".join(f"{x:.0f}" for x in s.rates)

        def cpu(s: gb.Series) -> str:
            return f"{med(s.cpu_ms):.2f}" if s.cpu_ms else "—"

        note = (f"{gb.CONNECTIONS} keep-alive loopback TCP connections to each, one request "
                f"at a time each; {res.durable} of {expected} acknowledged printnet jobs "
                f"found in new/. Runs: {runs(pn)} vs {runs(cu)}. CPU per job (server "
                f"process, median): printnet {cpu(pn)} ms, cupsd {cpu(cu)} ms.")
        if cu.rates:
            note += (" CUPS runs with Debian's defaults (SyncOnClose Yes, DirtyCleanInterval "
                     "30 s): it answers before any fsync (the document is never fsynced, the "
                     "job's control file is written and fsynced up to 30 s later). With "
                     f"DirtyCleanInterval 0 (fsynced right after the answer): {runs(cs)} "
                     f"jobs/s, {cpu(cs)} ms CPU per job, median ratio "
                     f"{median(pn.rates) / median(cs.rates):.2f}.")
        self.rows.append(Row(
            "IPP Print-Job (gateway vs cupsd)", f"{plan.ipp_jobs} × 1 KB", "jobs/s", True,
            median(pn.rates), median(cu.rates) if cu.rates else None, target="≥ 2 × CUPS",
            met=(median(pn.rates) >= 2 * median(cu.rates)) if cu.rates else None,
            printnet_cmd="IPP Print-Job → printnet gateway (durable in new/ first)",
            cups_cmd="IPP Print-Job → cupsd, disabled raw queue (Debian defaults)",
            note=note, samples=pn.rates, cups_samples=cu.rates))

    def seal(self) -> None:
        """SEAL=ON against the same work unsealed (bench.seal_bench)."""
        from bench import seal_bench

        plan = self.plan
        sub, opn = seal_bench.large(self.work, plan.seal_mib, plan.seal_runs)
        many = seal_bench.many(self.work, plan.seal_jobs, plan.seal_runs)
        size = f"{plan.seal_mib} MiB"
        for metric, cost, unit, cmd, what in (
            ("Sealing: submit a large file", sub, "MB/s", "Submitter.submit",
             "copy onto the spool, fsync"),
            ("Sealing: open at print", opn, "MB/s", "worker.load_job",
             "read safely, sha256"),
            ("Sealing: submit small jobs", many, "jobs/s", "Submitter.submit_many",
             f"{plan.seal_jobs} × 1 KB, one batch"),
        ):
            for sealed in (False, True):
                value = cost.sealed if sealed else cost.plain
                samples = cost.sealed_samples if sealed else cost.plain_samples
                self.rows.append(Row(
                    f"{metric}, {'SEAL=ON' if sealed else 'unsealed'}",
                    size if unit == "MB/s" else f"{plan.seal_jobs} × 1 KB", unit, True,
                    value, None, target="—", met=None, printnet_cmd=cmd, cups_cmd="",
                    note=(f"{what}" + ("; + AES-256-GCM per 1 MiB chunk, HPKE key wrap "
                                       f"per job: {cost.sealed / cost.plain:.2f} × unsealed"
                                       if sealed else "")
                          + "; runs " + ", ".join(f"{x:.0f}" for x in samples)),
                    samples=samples))

    def forward(self) -> None:
        """Forwarding to another site over the share and over loopback IPP
        (bench.forward_bench, docs/SITES.md), transports interleaved run by run."""
        from bench import forward_bench

        plan = self.plan
        rates = forward_bench.measure(self.work / "forward", plan.forward_jobs,
                                      plan.forward_runs)
        for transport, how, cmd in (
                ("spool", "over the share (PORT=spool:)", "PORT=spool:/PATH?printer=HQ"),
                ("ipp", "over loopback IPP to the central gateway",
                 "PORT=ipp://127.0.0.1:P/ipp/print/HQ")):
            samples = rates[transport]
            self.rows.append(Row(
                f"Forwarding to another site, {how}", f"{plan.forward_jobs} jobs", "jobs/s",
                True, median(samples), None, target="—", met=None, printnet_cmd=cmd,
                cups_cmd="", note="one branch server, one forwarding printer; from its "
                "first status to the last done record (outcome forwarded); runs "
                + ", ".join(f"{x:.1f}" for x in samples), samples=samples))

    def crash(self) -> None:
        n = self.plan.crash_n
        m = pb.crash(self.work, n)
        cups_kept = None
        c = self.fresh_cups()
        if c is not None:
            cups_mod.fill(c, "sink1", n, b"x" * 1024, deadline=time.monotonic() + 120)
            c.kill9()
            c.start()  # same ServerRoot: what survived on disk
            cups_kept = 100 * c.pending() / n
            c.stop()
        self.rows.append(Row(
            "Crash survival: kill -9 right after N acknowledged jobs", f"N = {n}", "% kept",
            True, m.value, cups_kept, target="100 %", met=m.value >= 100,
            printnet_cmd="submitter + server killed with SIGKILL; ids found on disk",
            cups_cmd="IPP Print-Job × N, cupsd SIGKILL, restart, lpstat -o",
            note=f"{m.samples[0]:.0f} of {n} kept (pending, held, printing or completed; "
                 f"states: {_states(m.extra)}); the restarted server had every job back "
                 f"in its master file {m.extra['recovery_s']:.1f} s after it started. kill -9 "
                 "keeps the page cache: this is process death, not power loss"))

    def shared(self) -> None:
        sys.path.insert(0, str(ROOT / "tests"))
        try:
            # Imported by name: the tests folder is not a package (mypy sees it as
            # top-level modules, like pytest does).
            shared_fs: Any = importlib.import_module("shared_fs")
        except ImportError as exc:
            self.problems.append(f"shared filesystem: tests/shared_fs.py unusable ({exc})")
            return
        try:
            shared_fs.ensure_packages()
            share = shared_fs.shared("nfs")
        except Exception as exc:
            self.problems.append(f"shared filesystem: GlusterFS fixture unavailable ({exc})")
            return
        try:
            self._shared_rows(share)
        finally:
            shared_fs.shutdown()

    def _shared_rows(self, share: object) -> None:
        plan = self.plan
        a, b = share.a, share.b  # type: ignore[attr-defined]
        rel = share.fresh("bench")  # type: ignore[attr-defined]
        from printnet.spool.layout import Spool

        spool_a = a.mount / rel / "spool"
        Spool.init(spool_a)
        time.sleep(1.5)  # names are cached ~1 s on the other mount
        spool_b = b.mount / rel / "spool"
        # Submit (API batch) on the share, from host b.
        from printnet.api import Station

        src = self.work / "sharedsrc"
        src.mkdir(exist_ok=True)
        files = [text_file(src / f"f{i}.txt", 1024) for i in range(plan.shared_jobs)]
        st = Station(spool_b, None, user="root", station="hostb")
        t0 = time.perf_counter()
        st.submit(files, each=True, printer="POOL")
        submit_rate = plan.shared_jobs / (time.perf_counter() - t0)
        local = pb.submit_api(self.work, plan.shared_jobs, 1).value
        self.rows.append(Row(
            "Shared filesystem: submit (Python API batch)", f"{plan.shared_jobs} × 1 KB",
            "jobs/s", True, submit_rate, None, target="— (what a share costs)", met=None,
            printnet_cmd="Station.submit on GlusterFS (2nd mount)", cups_cmd="—",
            note=f"local disk, same run: {local:.0f} jobs/s"))
        # Drain on the share: 1 server (host a), 4 printers, staged on the share.
        m = pb.drain(self.work, 1, plan.shared_jobs, spool_dir=a.mount / rel / "drain",
                     stage_dir=a.mount / rel / "stage")
        local_d = pb.drain(self.work, 1, plan.shared_jobs).value
        self.rows.append(Row(
            "Shared filesystem: drain", f"{plan.shared_jobs} × 1 KB, 1 server × 4 printers",
            "jobs/s", True, m.value, None, target="— (what a share costs)", met=None,
            printnet_cmd="printnet server on GlusterFS", cups_cmd="—",
            note=f"local disk, same run: {local_d:.0f} jobs/s"))
        # Lock hand-over between the two mounts.
        locks_a, locks_b = spool_a / "locks", spool_b / "locks"
        h = pb.handover(locks_a, locks_b, 5.0)
        hl = pb.handover(self.work / "station" / "spool" / "locks",
                         self.work / "station" / "spool" / "locks", 2.0)
        self.rows.append(Row(
            "Shared filesystem: lock hand-over between the two mounts", "master-style lock",
            "per s", True, h.value, None, target="— (what a share costs)", met=None,
            printnet_cmd="ExpiringLock acquire on mount a, release, acquire on mount b, …",
            cups_cmd="—", note=f"local disk, same run: {hl.value:.0f} per s"))
        # Pickup across hosts: server on a, submitter on b.
        def start_on_a(etc: Path, project: object) -> None:
            logf = open(self.work / "cross-server.log", "ab")  # noqa: SIM115
            proc = a.popen([str(ROOT / ".venv" / "bin" / "printnet"), "--etc", str(etc),
                            "server"], stdout=logf, stderr=subprocess.STDOUT)
            logf.close()
            project.procs["PICK"] = proc  # type: ignore[attr-defined]

        cross_a = a.mount / rel / "pickup"
        Spool.init(cross_a)
        time.sleep(1.5)
        m = pb.pickup(self.work, plan.cross_samples, server_spool=cross_a,
                      submit_spool=b.mount / rel / "pickup", scan=1.0,
                      popen_server=start_on_a)
        p95 = m.extra["p95"]
        self.rows.append(Row(
            "Pickup latency across hosts (p95)", "GlusterFS, SCAN 1", "ms", False, p95, None,
            target="≤ scan interval + 100 ms (1,100 ms)", met=p95 <= 1100,
            printnet_cmd="submit on mount b → first byte from the server on mount a",
            cups_cmd="— (CUPS has no shared-disk mode)",
            note=f"median {m.value:.0f} ms; no change event crosses the mounts: the "
                 "periodic scan finds it", samples=m.samples))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="scripts/bench", description=__doc__)
    ap.add_argument("--quick", action="store_true",
                    help="the same rows at smaller sizes (3 runs each), a few minutes")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "BENCHMARKS.md")
    ap.add_argument("--plot", type=Path, default=ROOT / "docs" / "benchmarks.png")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows as JSON")
    ap.add_argument("--work", type=Path, default=ROOT / "bench-work")
    ap.add_argument("--no-cups", action="store_true", help="printnet only")
    ap.add_argument("--only", default="", help="comma-separated sections to run")
    ap.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--render", type=Path, default=None,
                    help="only write the report again from a run's saved run.json")
    args = ap.parse_args(argv)
    from bench.report import write_plot, write_report, write_scaling_plot

    if args.render is not None:
        run = load_run(args.render)
        plotted = write_plot(run.rows, args.plot)
        write_scaling_plot(run.rows, args.plot.with_name(args.plot.stem + "-scaling.png"))
        write_report(run, args.out, args.plot if plotted else None)
        log(f"wrote {args.out} from {args.render}")
        return 0

    plan = Plan.make(args.quick, smoke=args.smoke)
    if args.work.exists():
        shutil.rmtree(args.work)
    args.work.mkdir(parents=True)
    run = Run(plan, args.work)
    run.info = machine_info(plan)
    started = time.monotonic()
    if not args.no_cups:
        why = cups_mod.available()
        if why is None:
            run.cups = cups_mod.PrivateCups(args.work / "cups")
            run.sink = Sink()
        else:
            run.problems.append(f"CUPS not measured: {why}")
    sections: list[tuple[str, Callable[[], None]]] = [
        ("startup", run.startup), ("submit", run.submit), ("listing", run.listing),
        ("drain", run.drain), ("pickup", run.pickup), ("line", run.line),
        ("scale", run.scale), ("crash", run.crash), ("gateway", run.gateway),
        ("seal", run.seal), ("forward", run.forward),
    ]
    if plan.shared:
        sections.append(("shared", run.shared))
    only = {s for s in args.only.split(",") if s}
    try:
        for name, fn in sections:
            if not only or name in only:
                run.section(name, fn)
    finally:
        if run.cups is not None:
            run.cups.stop()
        if run.sink is not None:
            run.sink.close()
    run.info["duration"] = f"{time.monotonic() - started:.0f} s"
    save_run(run, args.work / "run.json")
    plotted = write_plot(run.rows, args.plot)
    write_scaling_plot(run.rows, args.plot.with_name(args.plot.stem + "-scaling.png"))
    write_report(run, args.out, args.plot if plotted else None)
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in run.rows], indent=1))
    log(f"wrote {args.out}" + (f" and {args.plot}" if plotted else ""))
    for p in run.problems:
        log(f"problem: {p}")
    return 0


def _states(extra: dict[str, float]) -> str:
    """"pending 180, completed 20" from a crash measurement's state_* counts."""
    return ", ".join(f"{k[6:]} {v:.0f}" for k, v in sorted(extra.items())
                     if k.startswith("state_"))


def save_run(run: Run, path: Path) -> None:
    path.write_text(json.dumps({
        "plan": asdict(run.plan), "rows": [asdict(r) for r in run.rows], "gaps": run.gaps,
        "problems": run.problems, "info": run.info}, indent=1))


def load_run(path: Path) -> Run:
    data = json.loads(path.read_text())
    fields: dict[str, Any] = {
        k: tuple(tuple(x) if isinstance(x, list) else x for x in v)
        if isinstance(v, list) else v for k, v in data["plan"].items()}
    plan = Plan(**fields)
    run = Run(plan, path.parent)
    run.rows = [Row(**r) for r in data["rows"]]
    run.gaps = {k: [tuple(x) for x in v] for k, v in data["gaps"].items()}
    run.problems, run.info = data["problems"], data["info"]
    return run


def machine_info(plan: Plan) -> dict[str, str]:
    def cmd(*argv: str) -> str:
        try:
            return subprocess.run(argv, capture_output=True, check=False,
                                  timeout=10).stdout.decode().strip()
        except OSError:
            return "?"

    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    fs = cmd("findmnt", "-n", "-o", "FSTYPE,OPTIONS", "-T", str(ROOT))
    return {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "mode": "quick" if plan.quick else "full",
        "host": f"{platform.system()} {platform.release()}, {os.cpu_count()} CPUs ({cpu})",
        "python": pb.venv_python_version(),
        "cups": cmd("dpkg-query", "-W", "-f", "${Version}", "cups-daemon") or "not installed",
        "disk": fs,
        "load": " ".join(f"{x:.1f}" for x in os.getloadavg()),
    }


if __name__ == "__main__":
    sys.exit(main())
