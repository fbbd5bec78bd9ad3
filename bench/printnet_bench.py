"""printnet's side of the benchmarks: each function measures one metric.

Everything runs real processes where a user would: the `printnet` console
script for the CLI rows, `printnet server` processes for draining, the Python
API in this process for the API rows.  Times are wall-clock medians.
"""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from bench.common import (
    VENV_BIN,
    Sink,
    log,
    median,
    peak_rss_mib,
    percentile,
    rss_mib,
    run_timed,
    wait_until,
)
from bench.project import PRINTNET, PYTHON, Project, ServerSpec, fill_master, text_file
from printnet.model import Priority
from printnet.spool.submit import Source


@dataclass
class Measured:
    value: float
    samples: list[float]
    extra: dict[str, float]


def _ms(samples: list[float]) -> list[float]:
    return [s * 1000 for s in samples]


# -- start-up and submitting -------------------------------------------------------------


def startup(work: Path, runs: int) -> tuple[Measured, Measured]:
    """`printnet --version` vs `python -c pass`, both from the venv (milliseconds)."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    run_timed([PRINTNET, "--version"], repeat=2, env=env)  # write .pyc files first
    py, pn = [], []
    for _ in range(runs):  # interleaved: both see the same machine load
        py += run_timed([PYTHON, "-c", "pass"], repeat=1, env=env)
        pn += run_timed([PRINTNET, "--version"], repeat=1, env=env)
    return Measured(median(_ms(pn)), _ms(pn), {}), Measured(median(_ms(py)), _ms(py), {})


def station(work: Path, name: str = "station") -> tuple[Path, Path, dict[str, str]]:
    """A station's installation (`printnet init`: spool/ and etc/ with printer LOCAL)."""
    root = work / name
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    env = dict(os.environ, PRINTNET_SPOOL=str(root / "spool"), PRINTNET_ETC=str(root / "etc"))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run([PRINTNET, "init"], env=env, check=True, stdout=subprocess.DEVNULL)
    os.sync()  # the set-up's own writes are not charged to the submissions timed next
    return root / "spool", root / "etc", env


def submit_cli(work: Path, calls: int) -> Measured:
    """Jobs per second, one `printnet request FILE` process per job."""
    _, _, env = station(work)
    f = text_file(work / "one.txt", 1024)
    times = run_timed([PRINTNET, "request", str(f)], repeat=calls, env=env)
    return Measured(1 / median(times), _ms(times), {})


def _sources(work: Path, jobs: int) -> list[Path]:
    folder = work / "sources"
    folder.mkdir(exist_ok=True)
    files = [text_file(folder / f"f{i}.txt", 1024) for i in range(jobs)]
    os.sync()
    return files


def submit_each(work: Path, jobs: int, runs: int, tag: str = "each") -> Measured:
    """Jobs per second through one `printnet request --each F1..FN` process.

    Each run gets a fresh station, and nothing is deleted until the section
    ends (`cleanup_stations`): removing thousands of files makes this disk slow
    for the next seconds, which would favour whichever row is measured first.
    """
    files = [str(f) for f in _sources(work, jobs)]
    rates = []
    for r in range(runs):
        _, _, env = station(work, f"st-{tag}{r}")
        t = run_timed([PRINTNET, "request", "--each", *files], repeat=1, env=env)[0]
        rates.append(jobs / t)
    return Measured(median(rates), rates, {})


def submit_api(work: Path, jobs: int, runs: int, tag: str = "api") -> Measured:
    """Jobs per second through `Station.submit(files, each=True)` (one batch)."""
    from printnet.api import Station

    files = _sources(work, jobs)
    rates = []
    for r in range(runs):
        spool, etc, _ = station(work, f"st-{tag}{r}")
        st = Station(spool, etc)
        t0 = time.perf_counter()
        st.submit(files, each=True, printer="LOCAL")
        rates.append(jobs / (time.perf_counter() - t0))
    return Measured(median(rates), rates, {})


def cleanup_stations(work: Path) -> None:
    for path in work.glob("st-*"):
        shutil.rmtree(path)


# -- listing -------------------------------------------------------------------------


def listing(work: Path, n: int, runs: int) -> Measured:
    """`printnet status` (the whole process, table output) with `n` pending jobs (ms)."""
    root = work / f"list{n}"
    if root.exists():
        shutil.rmtree(root)
    project = Project(root)
    fill_master(project.spool, n)
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    argv = [PRINTNET, "--spool", str(project.spool_dir), "--etc", str(root / "etc"), "status"]
    out = subprocess.run(argv, env=env, capture_output=True, check=True).stdout
    lines = out.count(b"\n")
    if lines < n:
        raise RuntimeError(f"status listed {lines} lines for {n} jobs")
    times, cpu = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        times += run_timed(argv, repeat=1, env=env)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append((after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
                   * 1000)
    shutil.rmtree(root)
    return Measured(median(_ms(times)), _ms(times), {"cpu_ms": median(cpu)})


# -- draining --------------------------------------------------------------------------


def _publish(stage: Project, target: Project, reqs: list[object]) -> None:
    """Move staged jobs into the target spool: data first, then the request (a rename)."""
    for r in reqs:
        job_id = r.id  # type: ignore[attr-defined]
        os.rename(stage.spool.data / job_id, target.spool.data / job_id)
        os.rename(stage.spool.new / f"{job_id}.req", target.spool.new / f"{job_id}.req")


def drain(work: Path, servers: int, jobs: int, printers: int = 4,
          spool_dir: Path | None = None, stage_dir: Path | None = None) -> Measured:
    """1 KB text jobs per second through `servers` servers of `printers` simulated
    printers each (baud=inf: as fast as they come), from publishing to the last done/."""
    root = work / f"drain{servers}"
    if root.exists():
        shutil.rmtree(root)
    project = Project(root, spool_dir=spool_dir)
    stage = Project(stage_dir or root / "stage")
    src = root / "src"
    src.mkdir()
    files = [text_file(src / f"f{i}.txt", 1024) for i in range(jobs)]
    reqs: list[object] = list(stage.stage("POOL", files))
    specs = [ServerSpec(f"S{i + 1}", [project.sim_port(f"S{i + 1}P{k + 1}")
                                      for k in range(printers)]) for i in range(servers)]
    try:
        for spec in specs:
            project.start(spec, wait=False)
        for spec in specs:
            project.wait_running(spec.name)
        t0 = time.monotonic()
        _publish(stage, project, reqs)
        t1 = wait_until(lambda: project.done_count() >= jobs, 600, 0.005, "the drain")
        cpu = sum(_cpu_seconds(p.pid) for p in project.procs.values())
    finally:
        project.stop_all()
    _check_done(project, jobs)
    if spool_dir is None:
        shutil.rmtree(root)
    return Measured(jobs / (t1 - t0), [t1 - t0], {"cpu_s": cpu})


def _check_done(project: Project, jobs: int) -> None:
    lines = [json.loads(x) for x in project.spool.accounting.read_text().splitlines()]
    outcomes = {ln["outcome"] for ln in lines}
    ids = [ln["job"] for ln in lines]
    if len(ids) != jobs or len(set(ids)) != jobs or outcomes != {"completed"}:
        raise RuntimeError(f"drain: {len(ids)} accounting lines, {len(set(ids))} jobs, "
                           f"outcomes {outcomes}")


def _cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# Per drained job, the directory entries a server changes (docs/DESIGN.md, "Life of a
# request"): two renames to claim it, a done/ record's create and rename, the
# request's unlink.  The per-cycle ones (lock, journal entry, syncfs) are shared.
METADATA_OPS_PER_JOB = 5


def metadata_cost(folder: Path, n: int = 300) -> float:
    """Microseconds per metadata operation on `folder`'s disk, now: a bare loop of
    the drain's own kinds (create of a small file, rename, unlink), no Python of ours."""
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    for i in range(n):
        a, b = folder / f"m{i}", folder / f"m{i}.r"
        fd = os.open(a, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, b"x" * 200)
        os.close(fd)
        os.rename(a, b)
        os.unlink(b)
    return (time.perf_counter() - t0) / (3 * n) * 1e6


# -- pickup latency ------------------------------------------------------------------


def pickup(work: Path, samples: int, *, submit_spool: Path | None = None,
           server_spool: Path | None = None, scan: float = 1.0,
           popen_server: object | None = None) -> Measured:
    """Milliseconds from a request published (submit returned) to the first byte at
    its printer (a raw TCP printer: the benchmark's sink).  One job at a time."""
    from printnet.spool.layout import Spool
    from printnet.spool.submit import Source, Submitter

    root = work / "pickup"
    if root.exists():
        shutil.rmtree(root)
    project = Project(root, spool_dir=server_spool, scan=scan)
    sink = Sink()
    spec = ServerSpec("PICK", [sink.url], header="NONE")
    f = text_file(root / "job.txt", 1024)
    try:
        if popen_server is None:
            project.start(spec)
        else:
            etc = project.configure(spec)
            popen_server(etc, project)  # type: ignore[operator]
            project.wait_running("PICK", timeout=60)
        spool = Spool.open(submit_spool) if submit_spool else project.spool
        sub = Submitter(spool, user="root", station="bench")
        tpl = Project.template("POOL")
        time.sleep(0.3)  # let the first scans and status writes pass
        lat = []
        rng = random.Random(samples)
        for i in range(samples):
            before = sink.count()
            sub.submit(tpl, [Source(f.name, path=f)])
            t0 = time.monotonic()
            wait_until(partial(_more, sink.count, before), 30, 0.0005, "the first byte")
            first = sink.snapshot()[before].first_byte
            assert first is not None
            lat.append(first - t0)
            wait_until(partial(_more, project.done_count, i), 30, 0.002, "the job to finish")
            # The next job arrives at a random point of the server's scan interval
            # (across hosts only the scan finds it; its result just woke the server).
            time.sleep(0.05 + (rng.uniform(0, scan) if submit_spool else i % 7 * 0.031))
    finally:
        project.stop_all()
        sink.close()
    ms = _ms(lat)
    return Measured(median(ms), ms, {"p95": percentile(ms, 95)})


def _more(count: Callable[[], int], than: int) -> bool:
    return count() > than


# -- the line --------------------------------------------------------------------------


def line(work: Path, baud: int, jobs: int, size: int) -> Measured:
    """Back-to-back text jobs (header pages included) to a simulated serial printer at
    `baud`: the bytes printed per second between its first and last byte, as a
    fraction of the line rate (8N1: baud/10 bytes per second)."""
    root = work / f"line{baud}"
    if root.exists():
        shutil.rmtree(root)
    project = Project(root)
    out = root / "output" / "LINE.prn"
    spec = ServerSpec("LINE", [f"sim://LINE?out={out}"], baud=baud, setup="LABELS")
    stage = Project(root / "stage")
    src = root / "src"
    src.mkdir()
    files = [text_file(src / f"f{i}.txt", size) for i in range(jobs)]
    reqs: list[object] = list(stage.stage("POOL", files))
    polls: list[tuple[float, int]] = []
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            try:
                polls.append((time.monotonic(), out.stat().st_size))
            except FileNotFoundError:
                pass
            time.sleep(0.002)

    try:
        project.start(spec)
        watcher = threading.Thread(target=poll, daemon=True)
        watcher.start()
        _publish(stage, project, reqs)
        wait_until(lambda: project.done_count() >= jobs, 600, 0.01, "the line test")
        time.sleep(0.05)
    finally:
        stop.set()
        project.stop_all()
    total = out.stat().st_size
    first = next(t for t, n in polls if n > 0)
    last = next(t for t, n in polls if n >= total)
    rate = total / (last - first)
    ideal = baud / 10
    return Measured(100 * rate / ideal, [rate], {"bytes": total, "seconds": last - first})


# -- scale -----------------------------------------------------------------------------


def scale(work: Path, n: int, ticks: int = 30, wait: float = 2.0, real: int = 100,
          memory_runs: int = 1) -> tuple[Measured, Measured]:
    """A server with `n` pending jobs: its memory (a real `printnet server`, MiB) and
    the time of its scheduling cycles (`Server.tick`, in this process, ms).

    The `n` jobs wait (synthetic: master-file entries only) behind real
    high-priority jobs that two printers at 115200 baud keep printing (about 0.2 s
    each), so every measured cycle commits a finished job and claims the next:
    the steady state of a busy server, one job per cycle, not an idle loop.
    """
    root = work / f"scale{n}"
    if root.exists():
        shutil.rmtree(root)
    project = Project(root)
    spec = ServerSpec("SCALE", [project.sim_port(f"SCALEP{k + 1}", "115200")
                                for k in range(2)], baud=115200)
    etc = project.configure(spec)
    fill_master(project.spool, n)
    # Memory: the real server process, after its start and some cycles; then the
    # same server on an empty master file (what is not the jobs' data).
    rss_runs, hwm_runs, idle_runs = [], [], []
    for pending in (n, 0):
        fill_master(project.spool, pending)  # no job prints: it stays as filled
        for _ in range(memory_runs):
            project.start(spec)
            pid = project.procs["SCALE"].pid
            time.sleep(wait)
            if pending:
                rss_runs.append(rss_mib(pid))
                hwm_runs.append(peak_rss_mib(pid))
            else:
                idle_runs.append(rss_mib(pid))
            project.stop_all()
    python_rss = _python_rss()
    # Cycle time: the same server code, ticked in a process of its own.
    fill_master(project.spool, n)
    src = root / "src"
    src.mkdir()
    files = [text_file(src / f"r{i}.txt", 1024) for i in range(real)]
    tpl = Project.template("POOL", priority=Priority.HIGH)
    project.submitter().submit_many([(tpl, [Source(f.name, path=f)]) for f in files])
    code = (
        "import sys, time, json\n"
        "from pathlib import Path\n"
        "from printnet import config\n"
        "from printnet.server import Server\n"
        "srv = Server(config.load(Path(sys.argv[1])))\n"
        "srv.start()\n"
        "t0 = time.perf_counter(); srv.tick(); first = time.perf_counter() - t0\n"
        "times = []\n"
        "while len(times) < int(sys.argv[2]):\n"
        "    srv.wake.wait(1.0)  # as run() waits: until a printer reports (or a hint)\n"
        "    t0 = time.perf_counter(); worked = srv.tick(); dt = time.perf_counter() - t0\n"
        "    if worked:  # cycles that committed something (the others only looked)\n"
        "        times.append(dt)\n"
        "printed = srv.counters.printed\n"
        "srv.request_stop(); srv.shutdown(requeue=True)\n"
        "print(json.dumps({'first': first, 'times': times, 'printed': printed}))\n"
    )
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    proc = subprocess.run([PYTHON, "-c", code, str(etc), str(ticks)], env=env,
                          capture_output=True, check=True, cwd=root)
    data = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    times = _ms(data["times"])
    shutil.rmtree(root)
    return (Measured(median(rss_runs), rss_runs, {"peak": max(hwm_runs),
                                                  "idle": median(idle_runs),
                                                  "python": python_rss}),
            Measured(median(times), times, {"p95": percentile(times, 95),
                                            "max": max(times), "first": data["first"] * 1000,
                                            "printed": data["printed"]}))


def _python_rss() -> float:
    """VmRSS of a bare `python` of the venv (MiB): the floor under any server."""
    code = ("print(open('/proc/self/status').read().split('VmRSS:')[1].split()[0])")
    out = subprocess.run([PYTHON, "-c", code], capture_output=True, check=True).stdout
    return int(out.decode().strip()) / 1024


# -- crash survival ----------------------------------------------------------------------

_SUBMITTER = """
import sys
from pathlib import Path
from printnet.spool.layout import Spool
from printnet.spool.submit import Source, Submitter
from bench.project import Project
spool = Spool.open(Path(sys.argv[1]))
f = Path(sys.argv[2])
sub = Submitter(spool, user="root", station="bench")
tpl = Project.template("POOL")
while True:
    req = sub.submit(tpl, [Source(f.name, path=f)])
    sys.stdout.write(req.id + "\\n")
    sys.stdout.flush()
"""


def crash(work: Path, n: int) -> Measured:
    """kill -9 of the submitter and the server right after `n` acknowledged jobs; then
    the share of those jobs that the spool still holds *alive or printed*: pending,
    held or printing in the master file, or completed (an aborted, rejected or
    vanished job is not kept: it will never print)."""
    from printnet.spool.master import MasterStore

    root = work / "crash"
    if root.exists():
        shutil.rmtree(root)
    project = Project(root)
    spec = ServerSpec("CRASH", [project.sim_port("CRASHP1", "9600")], baud=9600)
    f = text_file(root / "job.txt", 1024)
    project.start(spec)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    sub = subprocess.Popen([PYTHON, "-c", _SUBMITTER, str(project.spool_dir), str(f)],
                           stdout=subprocess.PIPE, env=env, start_new_session=True)
    acked: list[str] = []
    assert sub.stdout is not None
    while len(acked) < n:
        line = sub.stdout.readline()
        if not line:
            raise RuntimeError("the submitter died")
        acked.append(line.decode().strip())
    sub.kill()  # everything at once: the submitter and the server
    project.kill_all()
    sub.wait()
    sub.stdout.close()
    # A server starts again on the same spool and recovers (half-done claims,
    # requests not yet in the master file, its dead self's printing jobs) and takes
    # new/ in; then each acknowledged job is classified by the master file and the
    # done/ records.
    project.start(spec)
    sp = project.spool

    def states() -> dict[str, str]:
        """Job id -> its state in the master file, or its done record's outcome."""
        store = MasterStore(sp)
        store.refresh()
        out = {job_id: job.state.value for job_id, job in store.state.jobs.items()}
        for name in os.listdir(sp.done):
            if name.endswith(".json") and not name.startswith("."):
                try:
                    rec = json.loads((sp.done / name).read_bytes())
                except (OSError, ValueError):
                    out[name[:-5]] = "unreadable record"
                    continue
                out[name[:-5]] = str(rec.get("outcome"))
        return out

    def recovered() -> bool:  # new/ taken in; everything taken in is in the master file
        names = os.listdir(sp.received)
        waiting = [m for m in os.listdir(sp.new) if not m.startswith(".")]
        return not waiting and not any(m.startswith(".") for m in names) and \
            {m.split(".")[0] for m in names} <= set(states())

    t0 = time.monotonic()
    wait_until(recovered, 120, 0.1, "the restarted server to recover")
    recovery = time.monotonic() - t0
    project.stop_all()
    found = states()
    alive = {"pending", "held", "printing", "completed"}
    kept = sum(1 for i in acked if found.get(i) in alive)
    outcomes: dict[str, int] = {}
    for i in acked:
        what = found.get(i, "missing")
        outcomes[what] = outcomes.get(what, 0) + 1
    shutil.rmtree(root)
    return Measured(100 * kept / n, [kept], {"n": n, "recovery_s": recovery,
                                             **{f"state_{k}": v for k, v in outcomes.items()}})


# -- locks on a share -------------------------------------------------------------------

_HANDOVER = """
import sys, time, json
from pathlib import Path
from printnet.spool.lock import ExpiringLock, LockTable
a, b, seconds = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])
tables = [LockTable(a), LockTable(b)]
n = 0
t0 = time.monotonic()
while time.monotonic() - t0 < seconds:
    lock = ExpiringLock(tables[n % 2], "handover", lease=30.0, holder="bench")
    deadline = time.monotonic() + 10
    while not lock.try_acquire():
        if time.monotonic() > deadline:
            raise SystemExit("lock not free")
        time.sleep(0.001)
    lock.release()
    n += 1
print(json.dumps({"rate": n / (time.monotonic() - t0)}))
"""


def handover(locks_a: Path, locks_b: Path, seconds: float) -> Measured:
    """Lock acquisitions per second, alternating between two mounts (or paths)."""
    env = dict(os.environ)
    proc = subprocess.run([PYTHON, "-c", _HANDOVER, str(locks_a), str(locks_b),
                           str(seconds)], env=env, capture_output=True, check=True,
                          timeout=seconds + 120)
    rate = json.loads(proc.stdout.decode().strip().splitlines()[-1])["rate"]
    return Measured(rate, [rate], {})


def venv_python_version() -> str:
    out = subprocess.run([str(VENV_BIN / "python"), "-VV"], capture_output=True, check=True)
    return out.stdout.decode().strip().splitlines()[0]


def log_measured(what: str, m: Measured, unit: str) -> None:
    extra = " ".join(f"{k}={v:.1f}" for k, v in m.extra.items())
    log(f"{what}: {m.value:.1f} {unit} {extra}".rstrip())


__all__ = ["Measured", "sys"]
