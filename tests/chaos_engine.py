"""Chaos: print servers on two hosts of a real shared filesystem, crashed and paused.

``scripts/chaos`` runs this for minutes or hours; ``tests/test_chaos.py`` runs
a CI-sized version.  The setup:

* a GlusterFS volume mounted on two hosts (`shared_fs`; or
  ``PRINTNET_TEST_SHARED=/mnt/a:/mnt/b``), host B's clock skewed (``--skew``);
* ``--servers`` print servers spread over the hosts (S1 on A, S2 on B, ...),
  each with one simulated printer ``P<i>`` in class POOL;
* one station per host submitting continuously (``--rate`` jobs/s in all)
  to the printers and the class, each job a raw job whose body is
  ``BEGIN:<token>``, a filler, ``END:<token>``; a job is *accepted* once the
  station has its id (the station logs it with the filler's hash, fsynced);
* chaos: ``kill -9`` of a server and its restart a little later, SIGSTOP of a
  server for longer than the lease, a printer going offline, a station killed
  mid-submit.

The engine logs every event it causes (`chaos_oracle.EventLog`) and stamps
when each byte of each printer's output appeared (`chaos_oracle.Watcher`).
At the end every server is running again, every printer online; once all
accepted jobs are finished the servers stop (SIGTERM) and the run is judged
(`chaos_oracle` says how, without trusting printnet's flags about itself):

* lost: an accepted job never printed intact (both markers, the filler's
  hash as logged), or without a ``completed`` record;
* reprints: jobs printed more than once; *unexplained* unless every attempt
  but the last was hit by one of the engine's own events (kill, pause,
  outage of that attempt's server or printer) while the job was in flight;
* truncated: an attempt cut short or altered that no such event explains;
* live lock breaks: a lock taken from a holder that was alive and not paused;
* master vs request files: live jobs in the master file must be exactly the
  request files in received/ without a done/ record; no half-claimed dot-names;
* locks: a lock whose holder process is dead must not outlive the time others
  need to take it over (master lock: 3 leases + 2 s while another server runs;
  a server's own lock: until that server has restarted and taken it over), and
  after the clean stop no lock is left at all.

It prints the counts (jobs, kills, pauses, restarts, lock breaks, reprints, ...)
as text and, with ``--json FILE``, as JSON.  Exit status 0 means zero lost jobs
and no violation.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import shared_fs
from chaos_oracle import EventLog, Life, Watcher, Windows, attempts, judge_locks, judge_prints
from reliability import PrinterSpec, ServerProc, make_etc, merge_counts
from shared_fs import PYTHON, TOOLS, Host, SharedFS

from printnet.printers.simctl import sim_control


@dataclass
class ChaosConfig:
    duration: float = 60.0  # seconds of chaos (then drain)
    servers: int = 3
    lease: float = 2.0
    scan: float = 0.2
    rate: float = 1.2  # jobs per second, all stations together
    baud: int = 38400  # the simulated printers' line rate
    job_lines: int = 40  # filler lines per job (about 70 bytes each)
    kill_every: float = 8.0  # mean seconds between kill -9 of a server
    pause_every: float = 12.0  # mean seconds between SIGSTOPs
    offline_every: float = 10.0  # mean seconds between a printer going offline
    station_kill_every: float = 40.0
    skew: float = 300.0  # host B's clock offset, seconds
    tier: str = "nfs"
    seed: int | None = None
    drain_timeout: float = 180.0
    windows: Windows | None = None  # default: Windows.for_lease(lease)
    workdir: Path | None = None
    keep: bool = False
    verbose: bool = False


@dataclass
class ChaosReport:
    tier: str = ""
    seed: int = 0
    duration: float = 0.0
    drain: float = 0.0
    accepted: int = 0
    completed: int = 0  # accepted and recorded completed
    kills: int = 0
    station_kills: int = 0
    pauses: int = 0
    restarts: int = 0
    offline: int = 0
    lock_breaks: int = 0
    requeues: int = 0
    reprints: int = 0  # jobs printed more than once (counted in the printers' output)
    reprints_explained: int = 0  # by the engine's own events
    truncated_explained: int = 0  # attempts cut short by a kill or outage
    restarted_jobs: int = 0  # jobs whose record says restarted (printnet's flag: shown only)
    unacknowledged_printed: int = 0  # submitted by a station killed before the ack
    events: dict[str, int] = field(default_factory=dict)  # the engine's own counts
    lost: list[str] = field(default_factory=list)
    unexplained_reprints: list[str] = field(default_factory=list)
    truncated: list[str] = field(default_factory=list)
    live_lock_breaks: list[str] = field(default_factory=list)
    master_problems: list[str] = field(default_factory=list)
    lock_problems: list[str] = field(default_factory=list)
    lock_samples: int = 0

    @property
    def ok(self) -> bool:
        return not (self.lost or self.unexplained_reprints or self.truncated
                    or self.live_lock_breaks or self.master_problems or self.lock_problems)

    def text(self) -> str:
        lines = [
            f"chaos on {self.tier}: {self.duration:.0f}s of chaos, drained in "
            f"{self.drain:.0f}s (seed {self.seed})",
            f"  jobs accepted     {self.accepted}",
            f"  jobs completed    {self.completed}",
            f"  lost              {len(self.lost)}",
            f"  server kills      {self.kills}",
            f"  station kills     {self.station_kills}",
            f"  pauses            {self.pauses}",
            f"  restarts          {self.restarts}",
            f"  printer offline   {self.offline}",
            f"  lock breaks       {self.lock_breaks}",
            f"  requeues          {self.requeues}",
            f"  reprints          {self.reprints} (explained by the engine's events "
            f"{self.reprints_explained}, unexplained {len(self.unexplained_reprints)}; "
            f"{self.restarted_jobs} jobs flagged restarted by printnet)",
            f"  truncated prints  {self.truncated_explained} explained, "
            f"{len(self.truncated)} unexplained",
            f"  live lock breaks  {len(self.live_lock_breaks)}",
            "  engine events     " + ", ".join(f"{k} {v}" for k, v in
                                                sorted(self.events.items())),
            f"  printed, not acknowledged (station killed mid-submit) "
            f"{self.unacknowledged_printed}",
            f"  lock samples      {self.lock_samples}",
        ]
        for label, items in (("LOST", self.lost), ("UNEXPLAINED REPRINT",
                                                   self.unexplained_reprints),
                             ("TRUNCATED", self.truncated),
                             ("LIVE LOCK BREAK", self.live_lock_breaks),
                             ("MASTER", self.master_problems), ("LOCK", self.lock_problems)):
            for item in items[:20]:
                lines.append(f"  {label}: {item}")
        lines.append("  result: " + ("OK" if self.ok else "FAILED"))
        return "\n".join(lines)


class Chaos:
    def __init__(self, cfg: ChaosConfig, share: SharedFS, work: Path) -> None:
        self.cfg = cfg
        self.share = share
        self.work = work
        self.rng = random.Random(cfg.seed)
        self.report = ChaosReport(tier=share.tier, seed=cfg.seed or 0)
        self.rel = share.fresh("chaos")
        self.spool_on = {h.name: h.mount / self.rel / "spool" for h in share.hosts}
        self.servers: list[ServerProc] = []
        self.stations: dict[str, Any] = {}
        self.lives: list[Life] = []
        self.events = EventLog(work / "events.jsonl")
        self.watcher = Watcher()
        self.chaos_end = float("inf")
        self.timers: list[tuple[float, str, Callable[[], None]]] = []
        self.paused: set[str] = set()
        self.offline: set[str] = set()
        self.stop_file = work / "stop"

    # -- setup ------------------------------------------------------------------------

    def host_of(self, i: int) -> Host:
        return self.share.hosts[i % 2]

    def wrap_for(self, host: Host) -> dict[str, Any]:
        return {"skew": self.cfg.skew} if host is self.share.b and self.cfg.skew else {}

    def setup(self) -> None:
        self.share.a.probe("init", str(self.spool_on[self.share.a.name]))
        for i in range(self.cfg.servers):
            host = self.host_of(i)
            name = f"S{i + 1}"
            folder = self.work / name
            make_etc(folder, name=name, spools=[self.spool_on[host.name]],
                     printers=[PrinterSpec(f"P{i + 1}", classes=("POOL",),
                                           baud=self.cfg.baud)],
                     lease=self.cfg.lease, scan=self.cfg.scan)
            server = ServerProc(host, name, folder, wrap=self.wrap_for(host))
            self.servers.append(server)
            self.watcher.watch_output(server.output / f"P{i + 1}.prn")
            self.watcher.watch_log(server.log)
        self.watcher.start()
        for server in self.servers:
            self._start(server)
        # Stations start once every server has published its printers: a server
        # rejects a request for a printer that no server it can see has.
        servers = self.spool_on[self.share.a.name] / "servers"
        wanted = {f"{s.name}.json" for s in self.servers}
        shared_fs.wait_for(
            lambda: wanted <= set(self.share.a.run(["ls", str(servers)], timeout=30)
                                  .stdout.decode().split()), 60, "servers' status files",
            interval=0.3)

    def _start(self, server: ServerProc) -> None:
        server.start()
        assert server.proc is not None
        self.lives.append(Life(server.name, server.host.name, server.proc.pid,
                               started=time.monotonic()))

    def printers(self) -> list[str]:
        return [f"P{i + 1}" for i in range(self.cfg.servers)] + ["POOL"]

    def start_station(self, host: Host) -> None:
        log = self.work / f"station-{host.name}.log"
        err = open(self.work / f"station-{host.name}.err", "ab")  # noqa: SIM115
        proc = host.popen([PYTHON, str(TOOLS), "station", str(self.spool_on[host.name]),
                           str(log), ",".join(self.printers()),
                           str(self.cfg.rate / 2), str(self.stop_file),
                           str(self.cfg.job_lines)],
                          stdout=subprocess.DEVNULL, stderr=err, **self.wrap_for(host))
        self.stations[host.name] = (proc, err)

    def start_sampler(self) -> None:
        host = self.share.a
        out = open(self.work / "locks.jsonl", "ab")  # noqa: SIM115
        code = """
            import json, sys, time, os
            from pathlib import Path
            from printnet.spool.lock import LockTable
            from printnet.errors import PrintnetError
            table = LockTable(Path(sys.argv[1]))
            stop = Path(sys.argv[2])
            while not stop.exists():
                t = time.monotonic()
                try:
                    recs = table.records()
                except PrintnetError:
                    recs = {}
                print(json.dumps({"t": t, "locks": {n: [r.host, r.pid, r.token]
                                                    for n, r in recs.items()}}), flush=True)
                time.sleep(0.5)
        """
        import textwrap

        proc = host.popen([PYTHON, "-c", textwrap.dedent(code),
                           str(self.spool_on[host.name] / "locks"), str(self.stop_file)],
                          stdout=out, stderr=subprocess.DEVNULL)
        self.stations["sampler"] = (proc, out)

    # -- chaos ------------------------------------------------------------------------

    def log(self, text: str) -> None:
        if self.cfg.verbose:
            print(f"{time.strftime('%H:%M:%S')} {text}", flush=True)
        with open(self.work / "chaos.log", "a") as fh:
            fh.write(f"{time.monotonic():.3f} {text}\n")

    def later(self, delay: float, what: str, fn: Callable[[], None]) -> None:
        self.timers.append((time.monotonic() + delay, what, fn))

    def usable(self) -> list[ServerProc]:
        busy = {w for _, w, _ in self.timers}
        return [s for s in self.servers if s.alive and s.name not in self.paused
                and f"restart {s.name}" not in busy]

    def do_kill(self) -> None:
        choices = self.usable()
        if not choices:
            return
        server = self.rng.choice(choices)
        assert server.proc is not None
        pid = server.proc.pid
        server.kill()
        ev = self.events.add("kill", server=server.name, printer=self.printer_of(server),
                             host=server.host.name, pid=pid)
        for life in self.lives:
            if life.server == server.name and life.died is None:
                life.died = ev.t0
        self.report.kills += 1
        delay = self.rng.uniform(0.2, 2.5 * self.cfg.lease)
        self.log(f"kill -9 {server.name}; restart in {delay:.1f}s")

        def restart() -> None:
            self._start(server)
            self.events.add("restart", server=server.name, host=server.host.name)
            self.report.restarts += 1
            self.log(f"restarted {server.name}")

        self.later(delay, f"restart {server.name}", restart)

    def do_pause(self) -> None:
        choices = self.usable()
        if not choices:
            return
        server = self.rng.choice(choices)
        server.pause()
        ev = self.events.add("pause", server=server.name, printer=self.printer_of(server),
                             host=server.host.name)
        self.paused.add(server.name)
        self.report.pauses += 1
        length = self.rng.uniform(1.5, 3.0) * self.cfg.lease
        self.log(f"SIGSTOP {server.name} for {length:.1f}s")

        def resume() -> None:
            server.resume()
            self.events.end(ev)
            self.paused.discard(server.name)
            self.log(f"SIGCONT {server.name}")

        self.later(length, f"resume {server.name}", resume)

    def do_offline(self) -> None:
        choices = [s for s in self.servers if f"P{s.name[1:]}" not in self.offline]
        if not choices:
            return
        server = self.rng.choice(choices)
        printer = f"P{server.name[1:]}"
        out = server.output / f"{printer}.prn"
        sim_control(out, "offline")
        ev = self.events.add("offline", printer=printer)
        self.offline.add(printer)
        self.report.offline += 1
        length = self.rng.uniform(1.0, 4.0)
        self.log(f"printer {printer} offline for {length:.1f}s")

        def online() -> None:
            sim_control(out, "online")
            self.events.end(ev)
            self.offline.discard(printer)

        self.later(length, f"online {printer}", online)

    def do_station_kill(self) -> None:
        host = self.rng.choice(self.share.hosts)
        proc, err = self.stations[host.name]
        proc.kill()
        proc.wait(30)
        err.close()
        self.events.add("station_kill", host=host.name)
        self.report.station_kills += 1
        self.log(f"kill -9 station on {host.name}")
        self.start_station(host)

    def printer_of(self, server: ServerProc) -> str:
        return f"P{server.name[1:]}"

    def run_timers(self, now: float) -> None:
        due = [t for t in self.timers if t[0] <= now]
        self.timers = [t for t in self.timers if t[0] > now]
        for _, _, fn in due:
            fn()

    def chaos(self) -> None:
        cfg = self.cfg
        rates: list[tuple[float, Callable[[], None]]] = [
            (cfg.kill_every, self.do_kill), (cfg.pause_every, self.do_pause),
            (cfg.offline_every, self.do_offline), (cfg.station_kill_every,
                                                    self.do_station_kill),
        ]
        start = time.monotonic()
        end = start + cfg.duration
        nxt = [start + self.rng.expovariate(1 / every) if every > 0 else float("inf")
               for every, _ in rates]
        last_note = start
        while True:
            now = time.monotonic()
            if now >= end:
                break
            self.run_timers(now)
            for i, (every, fn) in enumerate(rates):
                if now >= nxt[i]:
                    fn()
                    nxt[i] = now + self.rng.expovariate(1 / every)
            if cfg.verbose and now - last_note > 60:
                last_note = now
                print(f"{time.strftime('%H:%M:%S')} {int(now - start)}s: "
                      f"kills {self.report.kills} pauses {self.report.pauses} "
                      f"accepted {len(self.accepted())}", flush=True)
            time.sleep(0.05)
        self.report.duration = time.monotonic() - start

    # -- the end ----------------------------------------------------------------------

    def settle(self) -> None:
        """Stop the chaos: stations stop; every server and printer comes back."""
        self.chaos_end = time.monotonic()
        self.stop_file.write_text("stop\n")
        for name, (proc, fh) in list(self.stations.items()):
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
            fh.close()
            self.stations.pop(name)
        for _, _, fn in sorted(self.timers, key=lambda t: t[0]):
            fn()
        self.timers.clear()

    def accepted(self) -> dict[str, tuple[str, str, int, float]]:
        """Accepted job id -> (token, filler hash, lines, accepted at), from the
        stations' own logs (engine code: nothing printnet wrote)."""
        out: dict[str, tuple[str, str, int, float]] = {}
        for log in self.work.glob("station-*.log"):
            for line in log.read_text().splitlines():
                parts = line.split()
                if len(parts) >= 7:
                    out[parts[0]] = (parts[1], parts[4], int(parts[5]), float(parts[6]))
        return out

    def drain(self) -> dict[str, Any]:
        start = time.monotonic()
        accepted = set(self.accepted())
        host = self.share.a
        spool = str(self.spool_on[host.name])
        state: dict[str, Any] = {}
        while time.monotonic() - start < self.cfg.drain_timeout:
            state = host.probe("state", spool, timeout=120)
            done = {i for i, r in state["done"].items() if r.get("outcome")}
            if accepted <= done and not state["master"] and not state["new"]:
                break
            time.sleep(1.0)
        self.report.drain = time.monotonic() - start
        for server in self.servers:
            server.stop()
        self.watcher.stop()
        # Judged through the *other* host's client: what B sees must agree.
        return dict(self.share.b.probe("state", str(self.spool_on[self.share.b.name]),
                                       timeout=120))

    def judge(self, state: dict[str, Any]) -> None:
        rep = self.report
        accepted = self.accepted()
        rep.accepted = len(accepted)
        rep.events = self.events.counts()
        self.events.save()
        counts = merge_counts(self.servers)
        done = state["done"]
        # The prints, from the printers' output and the engine's own time stamps.
        expected = {token: (sha, lines) for token, sha, lines, _ in accepted.values()}
        found = []
        for server in self.servers:
            printer = self.printer_of(server)
            out = server.output / f"{printer}.prn"
            data = out.read_bytes() if out.exists() else b""
            found += attempts(data, self.watcher.growth(out), server.name, printer, expected)
        windows = self.cfg.windows or Windows.for_lease(self.cfg.lease)
        verdict = judge_prints(accepted, found, self.events, windows)
        rep.reprints = verdict.reprints
        rep.reprints_explained = verdict.reprints_explained
        rep.unexplained_reprints = verdict.unexplained_reprints
        rep.truncated = verdict.truncated
        rep.truncated_explained = verdict.truncated_explained
        rep.lost = list(verdict.not_printed)
        with open(self.work / "explanations.json", "w") as fh:
            json.dump(verdict.explanations, fh, indent=1)
        for job_id in sorted(accepted):
            rec = done.get(job_id)
            if rec is None or rec.get("outcome") != "completed":
                rep.lost.append(f"{job_id}: record {rec}")
                continue
            rep.completed += 1
            if rec.get("restarted", 0):
                rep.restarted_jobs += 1
        tokens = {t for t, *_ in accepted.values()}
        rep.unacknowledged_printed = sum(1 for t in counts if t not in tokens)
        # Master file vs request files.
        req_ids = {n[:-4] for n in state["received"] if n.endswith(".req")}
        live = req_ids - set(done)
        master = set(state["master"])
        if master != live:
            rep.master_problems.append(
                f"master has {sorted(master - live)[:5]} extra, lacks {sorted(live - master)[:5]}")
        for n in state["received"]:
            if n.startswith(".") and not n.startswith(".nfs"):
                rep.master_problems.append(f"received/{n}: half-done claim left over")
        if state["new"]:
            rep.master_problems.append(f"new/ not empty: {state['new'][:5]}")
        if state["rejected"]:
            rep.master_problems.append(f"rejected: {state['reasons']}")
        if state["locks"]:
            rep.lock_problems.append(f"locks left after a clean stop: {state['locks']}")
        self.judge_locks()
        rep.live_lock_breaks = judge_locks(self._samples(), self.lives, self.events,
                                           self.watcher.lines, self.cfg.lease, self.chaos_end)
        for server in self.servers:
            text = server.log_text()
            rep.lock_breaks += text.count("broke lock")
            rep.requeues += text.count("requeued:")

    def _samples(self) -> list[dict[str, Any]]:
        try:
            text = (self.work / "locks.jsonl").read_text()
        except FileNotFoundError:
            return []
        out = []
        for line in text.splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out

    def judge_locks(self) -> None:
        """Locks left to dead processes (the lock samples against the kill times)."""
        rep = self.report
        grace_master = 3 * self.cfg.lease + 2.0
        by_pid = {(life.host, life.pid): life for life in self.lives}
        restarts: dict[str, list[float]] = {}  # server -> start times (monotonic)
        for ev in self.events.events:
            if ev.kind == "restart":
                restarts.setdefault(ev.server, []).append(ev.t0)
        reported: set[tuple[str, int]] = set()
        for sample in self._samples():
            rep.lock_samples += 1
            t = float(sample["t"])
            for name, (host, pid, *_) in sample["locks"].items():
                life = by_pid.get((host, pid))
                if life is None or life.died is None or t <= life.died:
                    continue
                age = t - life.died
                if name == "master":
                    limit = grace_master
                else:
                    later = [r for r in restarts.get(life.server, []) if r > life.died]
                    limit = (later[0] - life.died if later else float("inf")) + 4 * self.cfg.lease
                if age > limit and (name, pid) not in reported:
                    reported.add((name, pid))
                    rep.lock_problems.append(
                        f"lock {name} held by dead {life.server} pid {pid} {age:.1f}s after "
                        f"its death (limit {limit:.1f}s)")

    def cleanup(self) -> None:
        for name, (proc, fh) in list(self.stations.items()):
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)
            fh.close()
            self.stations.pop(name)
        for server in self.servers:
            server.resume()
            server.stop(timeout=20)
        self.share.reap()


def run(cfg: ChaosConfig, share: SharedFS | None = None) -> ChaosReport:
    """One chaos run; the share is set up (and torn down) here unless given."""
    if cfg.seed is None:
        cfg.seed = random.randrange(1 << 30)
    own_work = cfg.workdir is None
    work = Path(tempfile.mkdtemp(prefix="printnet-chaos-")) if own_work else cfg.workdir
    assert work is not None
    work.mkdir(parents=True, exist_ok=True)
    own_share = share is None
    if share is None:
        share = shared_fs.shared(cfg.tier)
    chaos = Chaos(cfg, share, work)
    try:
        chaos.setup()
        chaos.start_sampler()
        for host in share.hosts:
            chaos.start_station(host)
        chaos.chaos()
        chaos.settle()
        state = chaos.drain()
        chaos.stop_file.write_text("stop\n")
        chaos.cleanup()
        chaos.judge(state)
    finally:
        chaos.stop_file.write_text("stop\n")
        chaos.watcher.stop()
        chaos.cleanup()
        if own_share:
            shared_fs.shutdown()
    if own_work and not cfg.keep and chaos.report.ok:
        shutil.rmtree(work, ignore_errors=True)
    elif cfg.verbose or not chaos.report.ok:
        print(f"chaos files kept in {work}", flush=True)
    return chaos.report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="scripts/chaos", description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=300.0, help="seconds of chaos")
    p.add_argument("--servers", type=int, default=3)
    p.add_argument("--lease", type=float, default=2.0)
    p.add_argument("--scan", type=float, default=0.2)
    p.add_argument("--rate", type=float, default=1.2, help="jobs per second (all stations)")
    p.add_argument("--baud", type=int, default=38400, help="simulated printers' line rate")
    p.add_argument("--job-lines", type=int, default=40, help="filler lines per job")
    p.add_argument("--kill-every", type=float, default=8.0, help="mean seconds between kills")
    p.add_argument("--pause-every", type=float, default=12.0)
    p.add_argument("--offline-every", type=float, default=10.0)
    p.add_argument("--station-kill-every", type=float, default=40.0)
    p.add_argument("--skew", type=float, default=300.0, help="host B clock offset, seconds")
    p.add_argument("--tier", choices=[*shared_fs.TIERS, "env"], default="nfs")
    p.add_argument("--seed", type=int)
    p.add_argument("--drain-timeout", type=float, default=180.0)
    p.add_argument("--explain-after", type=float,
                   help="seconds after a print's last byte in which a kill, pause or "
                   "outage of its server or printer explains a reprint (default: two "
                   "leases + 2 s)")
    p.add_argument("--workdir", type=Path)
    p.add_argument("--keep", action="store_true", help="keep the work folder")
    p.add_argument("--json", type=Path, help="write the report as JSON here")
    p.add_argument("-v", "--verbose", action="store_true")
    a = p.parse_args(argv)
    if os.environ.get("PRINTNET_TEST_SHARED"):
        a.tier = "env"
    cfg = ChaosConfig(duration=a.duration, servers=a.servers, lease=a.lease, scan=a.scan,
                      rate=a.rate, baud=a.baud, job_lines=a.job_lines,
                      kill_every=a.kill_every, pause_every=a.pause_every,
                      offline_every=a.offline_every, station_kill_every=a.station_kill_every,
                      skew=a.skew, tier=a.tier, seed=a.seed, drain_timeout=a.drain_timeout,
                      workdir=a.workdir, keep=a.keep, verbose=a.verbose,
                      windows=None if a.explain_after is None
                      else Windows(after=a.explain_after))
    try:
        report = run(cfg)
    except shared_fs.Unavailable as exc:
        print(f"chaos: no shared filesystem: {exc}", file=sys.stderr)
        return 2
    print(report.text(), flush=True)
    if a.json:
        data = asdict(report)
        data["ok"] = report.ok
        a.json.write_text(json.dumps(data, indent=1) + "\n")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
