"""Cut printnet's power, reboot, check: the engine of `scripts/powerloss`.

One **epoch** is one boot of the "machine": the spool (``/spool`` on a
power-loss mount, `powerloss.daemon`) is mounted from the image the last cut
left, two real `printnet server` processes (S1 printing on P1, S2 on P2:
simulated printers whose output files live *outside* the mount) start on it,
and stations — real `printnet request` processes, one after another in a few
threads — submit jobs.  Every epoch first lets the servers **drain**: every
job acknowledged so far must get a ``completed`` record within a deadline.
Then a cut is armed: at the K-th filesystem operation of one *phase*
(seeded: phase, K, before or after the operation), or, if that phase does not
come by in time, by the clock.  About a third of the epochs arm the cut at
boot instead, so that cuts also land in recovery.  At the cut every process
on the mount is killed (kill -9), the daemon is killed, and what survives is
the image the daemon wrote (`PowerModel.crash`, seeded).

Phases (regular expressions over the daemon's operation descriptions):
submit, intake, commit, compaction (only armed when the master file's
current generation is near `COMPACT_ENTRIES`), done (done records,
accounting, the request's removal) and lock (lock files: acquire, heartbeat,
release, break, i.e. hand-over between the servers and after a reboot).

The oracle trusts nothing printnet says about itself:

* **acknowledged** = an id a station printed on its standard output (read
  by this harness from the pipe; a station killed mid-way counts with what
  it printed before);
* after every cut, read from the image with plain file access: every
  acknowledged job is still there — ``new/<id>.req`` or ``received/<id>.req``
  (or a half-done claim) with its data folder, or ``done/<id>.json`` saying
  completed; not in rejected/, not aborted;
* the master file decodes (`spool.master.load`), and so do every done/
  record and every request file (a torn or empty one is a corrupt state);
* at the end, from the printers' output files: every acknowledged job
  printed at least once; a job printed twice must have had a cut after its
  earlier print started and before the later one, at which the image held
  no ``completed`` record for it (otherwise the reprint is a violation).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from helpers_e2e import (
    PrinterSpec,
    ServerProcess,
    make_etc,
    read_out,
    segments,
    server_env,
    start_server,
)

from powerloss.mount import PowerMount
from printnet.errors import PrintnetError
from printnet.masterfile import COMPACT_ENTRIES
from printnet.model import decode_request
from printnet.spool import master as master_io
from printnet.spool.layout import Spool

PYTHON = sys.executable
JOBS_PER_EPOCH = 10  # per station thread
ID_RE = re.compile(r"^([0-9A-HJKMNP-TV-Z]{18})$", re.M)
S = r"/spool"
PHASES: dict[str, tuple[str, int]] = {  # name -> (pattern, largest K)
    "submit": (rf"^(mkdir|create|write|setattr|fsync|fsyncdir|rename) {S}/(data|tmp)(/|$)"
               rf"|^fsyncdir {S}/new$", 36),
    "intake": (rf"^rename {S}/new/|^rename {S}/received/\.", 6),
    "commit": (rf"^(create|write|fsync) {S}/master/\.|^link \S+ -> {S}/master/j\."
               rf"|^unlink {S}/master/\.|^fsyncdir {S}/master$", 14),
    "compaction": (rf"-> {S}/master/snap\.|^unlink {S}/master/(snap|j)\.", 3),
    "done": (rf"^\S+ {S}/done/|^fsyncdir {S}/done$|^\S+ {S}/log/accounting"
             rf"|^unlink {S}/received/[^.]", 16),
    "lock": (rf"^\S+ {S}/locks/|^fsyncdir {S}/locks$", 30),
}


@dataclass
class Job:
    id: str
    printer: str
    epoch: int


@dataclass
class Cut:
    epoch: int
    phase: str
    why: str
    out_sizes: dict[str, int]
    completed: set[str]  # jobs the image holds a completed record for


@dataclass
class Report:
    seed: int
    cuts: list[Cut] = field(default_factory=list)
    jobs: dict[str, Job] = field(default_factory=dict)
    lost: dict[str, str] = field(default_factory=dict)
    corrupt: list[str] = field(default_factory=list)
    reprints: int = 0
    reprints_unexplained: list[str] = field(default_factory=list)
    station_failures: int = 0
    station_errors: list[str] = field(default_factory=list)
    other: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def violations(self) -> list[str]:
        return ([f"lost {j}: {why}" for j, why in sorted(self.lost.items())]
                + [f"corrupt: {c}" for c in self.corrupt]
                + [f"reprinted without a cut during its printing: {j}"
                   for j in self.reprints_unexplained] + self.other)

    def summary(self) -> str:
        return (f"powerloss: {len(self.cuts)} cut points, {len(self.lost)} acknowledged jobs "
                f"lost, {len(self.corrupt)} corrupt states")

    def to_json(self) -> dict[str, Any]:
        phases: dict[str, int] = {}
        for c in self.cuts:
            phases[c.phase] = phases.get(c.phase, 0) + 1
        timers = sum(1 for c in self.cuts if c.why.startswith("manual"))
        return {"seed": self.seed, "cuts": len(self.cuts), "phases": phases,
                "cuts_by_timer": timers, "acknowledged": len(self.jobs),
                "lost": len(self.lost), "corrupt": len(self.corrupt),
                "reprints": self.reprints,
                "unexplained_reprints": len(self.reprints_unexplained),
                "station_failures": self.station_failures,
                "station_errors": sorted(set(self.station_errors)),
                "violations": self.violations(), "seconds": round(self.seconds, 1)}


class Stations:
    """Threads running `printnet request` one after another; ids read from stdout."""

    def __init__(self, spool: Path, docs: Path, env: dict[str, str], report: Report,
                 epoch: int, rng: random.Random, count: int) -> None:
        self.spool, self.docs, self.env, self.report = spool, docs, env, report
        self.epoch = epoch
        self.stop = threading.Event()
        self.procs: set[subprocess.Popen[str]] = set()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._loop, args=(i, rng.randrange(1 << 30)),
                                         daemon=True) for i in range(count)]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def _loop(self, n: int, seed: int) -> None:
        rng = random.Random(seed)
        k = 0
        while not self.stop.is_set():
            if k >= JOBS_PER_EPOCH:  # keep the spool, and so each boot, small
                self.stop.wait(0.2)
                continue
            k += 1
            printer = rng.choice(("P1", "P2"))
            doc = self.docs / f"e{self.epoch}-s{n}-{k}.txt"
            lines = rng.randrange(1, 40)
            doc.write_text("".join(f"line {i} of job e{self.epoch}-s{n}-{k}\n"
                                   for i in range(lines)) + "END OF JOB\n")
            args = [PYTHON, "-m", "printnet", "--spool", str(self.spool), "request",
                    "-P", printer, str(doc)]
            if rng.random() < 0.2:
                args.append(str(doc))  # two files in one job
            with self.lock:
                if self.stop.is_set():
                    return
                proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True, env=self.env, stdin=subprocess.DEVNULL)
                self.procs.add(proc)
            out, _err = proc.communicate()
            with self.lock:
                self.procs.discard(proc)
                for job_id in ID_RE.findall(out):
                    self.report.jobs[job_id] = Job(job_id, printer, self.epoch)
                if proc.returncode != 0 and not self.stop.is_set():
                    self.report.station_failures += 1
                    if len(self.report.station_errors) < 20:
                        self.report.station_errors.append(_err.strip()[-300:])

    def kill(self) -> None:
        with self.lock:
            self.stop.set()
            for proc in self.procs:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)

    def join(self) -> None:
        for t in self.threads:
            t.join(60)


class Run:
    """One power-loss run (see the module docstring)."""

    def __init__(self, work: Path, seed: int, cuts: int, *, stations: int = 2,
                 drain: float = 90.0, cut_wait: float = 6.0,
                 say: Callable[[str], None] = lambda s: None) -> None:
        self.work, self.seed, self.ncuts = work, seed, cuts
        self.nstations, self.drain, self.cut_wait = stations, drain, cut_wait
        self.say = say
        self.rng = random.Random(seed)
        self.report = Report(seed)
        self.mnt = work / "mnt"
        self.spool = self.mnt / "spool"
        self.docs = work / "docs"
        # Inside each server's project folder (printnet confines file ports to it).
        self.out = {"P1": work / "S1" / "out" / "P1.prn", "P2": work / "S2" / "out" / "P2.prn"}
        self.env = server_env(work / "run")
        self.etcs = {
            name: make_etc(work / name, name, [self.spool],
                           [PrinterSpec(printer, self.out[printer], baud="115200")],
                           # A dead holder on this host is recognised at once (its
                           # pid is gone), so a long lease costs the reboots nothing;
                           # a short one loses leases on a loaded machine (reprints
                           # that no cut explains).
                           scan=0.2, lease=5.0)
            for name, printer in (("S1", "P1"), ("S2", "P2"))
        }
        self.images = work / "images"

    # -- the run ---------------------------------------------------------------------

    def run(self) -> Report:
        t0 = time.monotonic()
        for d in (self.docs, self.images):
            d.mkdir(parents=True, exist_ok=True)
        image = self._install()
        for epoch in range(1, self.ncuts + 1):
            image = self._epoch(epoch, image)
        self._final(image)
        self.report.seconds = time.monotonic() - t0
        return self.report

    def _install(self) -> Path:
        """A fresh spool, made durable (the installation is not under test)."""
        out = self.images / "img0"
        with PowerMount(self.mnt, image=None, out=out, seed=self.seed) as pm:
            Spool.init(self.spool)
            pm.command("sync")
        return out

    def _servers(self) -> list[ServerProcess]:
        return [start_server(etc, name, env=self.env) for name, etc in self.etcs.items()]

    def _epoch(self, epoch: int, image: Path) -> Path:
        out = self.images / f"img{epoch}"
        started = time.monotonic()
        pm = PowerMount(self.mnt, image=image, out=out, seed=self.rng.randrange(1 << 30),
                        log=self.work / "daemon.log")
        pm.start()
        servers: list[ServerProcess] = []
        stations = Stations(self.spool, self.docs, self.env, self.report, epoch,
                            self.rng, self.nstations)
        phase = ""
        try:
            servers = self._servers()
            early = self.rng.random() < 0.3
            if early:
                phase = self._arm(pm, image)
            stations.start()
            if not early:
                self._wait_drained(epoch, servers)
                phase = self._arm(pm, image)
            try:
                # A compaction comes once in COMPACT_ENTRIES commits: give it time.
                event = pm.wait_cut(self.cut_wait * (4 if phase == "compaction" else 1))
            except Exception:
                event = pm.cut()
        finally:
            stations.kill()
            for s in servers:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(s.pid, signal.SIGKILL)
            pm.close()  # kills the daemon: the processes frozen on the mount die now
            for s in servers:
                with contextlib.suppress(Exception):
                    s.kill9()
            stations.join()
        why = str(event.get("why", "?"))
        sizes = {p: len(read_out(path)) for p, path in self.out.items()}
        completed = self._check_image(epoch, out)
        self.report.cuts.append(Cut(epoch, phase if not why.startswith("manual") else
                                    f"{phase}/timer", why, sizes, completed))
        self.say(f"epoch {epoch} ({time.monotonic() - started:.1f} s): cut {phase} {why} "
                 f"(pending {event.get('pending')}, {len(self.report.jobs)} acknowledged)")
        # Keep two images: the one just written and the one it came from.
        with contextlib.suppress(OSError):
            if epoch >= 2:
                shutil.rmtree(self.images / f"img{epoch - 2}", ignore_errors=True)
        return out

    def _arm(self, pm: PowerMount, image: Path) -> str:
        names = list(PHASES)
        if self._near_compaction(image):
            names += ["compaction"] * 4
        else:
            names.remove("compaction")
        phase = self.rng.choice(names)
        pattern, kmax = PHASES[phase]
        k = self.rng.randint(1, kmax)
        when = self.rng.choice(("before", "after"))
        pm.arm(k, when, pattern)
        return phase

    def _near_compaction(self, image: Path) -> bool:
        try:
            names = os.listdir(image / "spool" / "master")
        except OSError:
            return False
        entries = [n for n in names if n.startswith("j.")]
        if not entries:
            return False
        gen = max(n.split(".")[1] for n in entries)
        return sum(1 for n in entries if n.split(".")[1] == gen) >= COMPACT_ENTRIES - 40

    def _wait_drained(self, epoch: int, servers: list[ServerProcess]) -> None:
        deadline = time.monotonic() + self.drain
        with contextlib.suppress(OSError):
            while True:
                # Any record ends the wait (the image check judges the outcome), and
                # jobs already found lost are not waited for.
                waiting = [j for j in list(self.report.jobs.values()) if j.epoch < epoch
                           and j.id not in self.report.lost
                           and not (self.spool / "done" / f"{j.id}.json").exists()]
                if not waiting:
                    return
                if time.monotonic() > deadline:
                    self.report.other.append(
                        f"epoch {epoch}: {len(waiting)} acknowledged jobs not completed "
                        f"{self.drain:g} s after the reboot, e.g. {waiting[0].id}")
                    return
                if any(s.poll() is not None for s in servers):
                    self.report.other.append(f"epoch {epoch}: a server exited: "
                                             + " ".join(s.log_text()[-500:] for s in servers))
                    return
                time.sleep(0.2)

    # -- checks ------------------------------------------------------------------------

    def _check_image(self, epoch: int, image: Path) -> set[str]:
        """Check what a cut left (plain file access); returns the completed job ids."""
        root = image / "spool"
        spool = Spool(root)
        where = f"after cut {epoch}"
        try:
            master_io.load(spool)
        except (PrintnetError, OSError, ValueError) as exc:
            self.report.corrupt.append(f"{where}: the master file does not decode: {exc}")
        completed: set[str] = set()
        outcomes: dict[str, str] = {}
        for path in _listing(root / "done"):
            if not path.name.endswith(".json") or path.name.startswith("."):
                continue
            try:
                record = json.loads(path.read_bytes())
                if not isinstance(record, dict):
                    raise ValueError("not an object")
            except ValueError as exc:
                self.report.corrupt.append(f"{where}: {path.name} does not decode: {exc}")
                continue
            if record.get("kind") == "control":
                continue
            outcomes[path.stem] = f"{record.get('outcome')}: {record.get('reason')}"
            if record.get("outcome") == "completed":
                completed.add(path.stem)
        queued: set[str] = set()
        for folder in ("new", "received"):
            for path in _listing(root / folder):
                name = path.name
                if name.startswith(".") and folder == "new":
                    continue  # a station's temp name: not published
                job_id = name.lstrip(".").split(".")[0]
                if not name.lstrip(".").startswith(job_id + ".req"):
                    continue
                try:
                    decode_request(path.read_bytes())
                except (PrintnetError, ValueError) as exc:
                    self.report.corrupt.append(f"{where}: {folder}/{name} does not decode: "
                                               f"{exc}")
                    continue
                queued.add(job_id)
        rejected = {p.name.split(".")[0] for p in _listing(root / "rejected")}
        for job in list(self.report.jobs.values()):
            if job.id in self.report.lost:
                continue
            if job.id in completed:
                continue
            if job.id in outcomes:
                self.report.lost[job.id] = f"{where}: recorded {outcomes[job.id]}"
            elif job.id in rejected:
                reason = _read_text(root / "rejected" / f"{job.id}.req.reason")
                self.report.lost[job.id] = f"{where}: rejected: {reason.strip()}"
            elif job.id not in queued:
                self.report.lost[job.id] = f"{where}: no request file and no record"
            elif not (root / "data" / job.id).is_dir():
                self.report.lost[job.id] = f"{where}: its data folder is gone"
        return completed

    def _final(self, image: Path) -> None:
        """Boot once more without a cut, drain, and judge the printed output."""
        out = self.images / "final"
        pm = PowerMount(self.mnt, image=image, out=out, seed=self.seed,
                        log=self.work / "daemon.log")
        pm.start()
        servers: list[ServerProcess] = []
        try:
            servers = self._servers()
            self._wait_drained(self.ncuts + 1, servers)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not self._all_printed():
                time.sleep(0.2)
        finally:
            for s in servers:
                try:
                    s.stop(30)
                except AssertionError as exc:
                    self.report.other.append(str(exc)[:500])
            pm.close()
        prints: dict[str, list[int]] = {}
        for printer, path in self.out.items():
            data = read_out(path)
            offset = 0
            for job_id, _body in segments(data):
                offset = data.index(f"Job:       {job_id}".encode(), offset)
                prints.setdefault(job_id, []).append(offset)
                offset += 1
            del printer
        for job in self.report.jobs.values():
            if job.id not in prints and job.id not in self.report.lost:
                self.report.lost[job.id] = "never printed"
        for job_id, offsets in prints.items():
            known = self.report.jobs.get(job_id)
            printer = known.printer if known else "P1"
            for first, later in itertools.pairwise(offsets):
                self.report.reprints += 1
                if not any(first < c.out_sizes.get(printer, 0) <= later
                           and job_id not in c.completed for c in self.report.cuts):
                    self.report.reprints_unexplained.append(job_id)

    def _all_printed(self) -> bool:
        printed: set[str] = set()
        for path in self.out.values():
            printed.update(j for j, _ in segments(read_out(path)))
        return all(j in printed for j in self.report.jobs)


def _listing(folder: Path) -> list[Path]:
    try:
        return [folder / n for n in sorted(os.listdir(folder))]
    except OSError:
        return []


def _read_text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def main(argv: list[str] | None = None) -> int:
    import argparse
    import tempfile

    ap = argparse.ArgumentParser(
        prog="scripts/powerloss",
        description="Cut the power under real stations and servers on a power-loss "
                    "filesystem (FUSE), reboot, and check that no acknowledged job is lost.")
    ap.add_argument("--quick", action="store_true", help="12 cut points (about a minute)")
    ap.add_argument("--cuts", type=int, default=300, help="cut points (default 300)")
    ap.add_argument("--seed", type=int, default=None, help="seed (default: random, printed)")
    ap.add_argument("--stations", type=int, default=2, help="station threads (default 2)")
    ap.add_argument("--json", type=Path, help="write the report as JSON here")
    ap.add_argument("--keep", type=Path, help="work folder to keep (default: a temp folder)")
    ap.add_argument("-v", "--verbose", action="store_true", help="one line per cut")
    args = ap.parse_args(argv)
    # SIGTERM (and SIGINT, which a background job ignores) unwind through the
    # finally blocks that kill the run's processes and unmount.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    seed = args.seed if args.seed is not None else random.randrange(1 << 31)
    cuts = 12 if args.quick else args.cuts
    work = args.keep or Path(tempfile.mkdtemp(prefix="powerloss."))
    work.mkdir(parents=True, exist_ok=True)
    print(f"powerloss: seed {seed}, {cuts} cuts, work folder {work}", flush=True)
    run = Run(work, seed, cuts, stations=args.stations,
              say=(lambda s: print(s, flush=True)) if args.verbose else (lambda s: None))
    report = run.run()
    data = report.to_json()
    if args.json:
        args.json.write_text(json.dumps(data, indent=2) + "\n")
    print(json.dumps({k: v for k, v in data.items() if k != "violations"}))
    for v in report.violations():
        print(f"VIOLATION: {v}")
    print(report.summary())
    if args.keep is None and not report.violations():
        shutil.rmtree(work, ignore_errors=True)
    return 1 if report.violations() else 0


if __name__ == "__main__":
    sys.exit(main())
