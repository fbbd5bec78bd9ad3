"""docs/BENCHMARKS.md and docs/benchmarks.png from one run's rows."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from bench.common import Row

if TYPE_CHECKING:
    from bench.run import Run

# Why a target can be missed, in the words of the profiles taken while working on
# it (see "Gaps" below); printed only for targets this run missed.
EXPLAIN: dict[str, str] = {
    "Drain": (
        "Draining is bound by one Python process's CPU per job, not by the disk: the "
        "row's note gives both floors from the same run: 1 / (server CPU per job), "
        "since a server's Python runs on one core at a time (the GIL), and the "
        "disk's, five metadata operations per job (two renames to claim a request, "
        "a done/ record's create and rename, the request's unlink) times the cost of "
        "one, measured by a bare loop beside the runs. On the 2-core machine shared "
        "by eight test suites where this was last worked on (load average 11), a "
        "metadata operation cost 30–40 µs (0.2 ms per job: a floor of about 6,000 "
        "jobs/s) while a server spent 3.2–3.8 ms of CPU per job (a floor of about "
        "300 jobs/s there; 1.3 ms per job in a quiet full run). 1,500 jobs/s needs "
        "at most 0.67 ms of CPU per job. Done in this round (1 server × 4 printers, "
        "1,000 jobs, 3 runs interleaved with the code before it at load average 11: "
        "151 → 230 jobs/s and 4.5 → 3.5 ms of server CPU per job, medians; py-spy "
        "`--gil` profiles for where): "
        "a cycle's done/ records are written in two passes, all their data made "
        "durable by one syncfs and then their names (it was one fsync per record: "
        "fsyncs per 1,000 jobs 1,250 → 465); header pages remember their block "
        "letters; `clean_text` skips its per-character category lookup for printable "
        "ASCII. Earlier rounds: results are committed in batches with one "
        "durability pass per cycle; a printer is given jobs ahead, so one cycle "
        "serves dozens of jobs; requests are unlinked off the server thread; the "
        "scheduler walks only changed jobs; the change-event hint is not held back. "
        "What is left, from the `--gil` profile of a 2,000-job drain: the printer "
        "workers' share (about 55 %: opening the port per job, rendering the header "
        "page and the text, re-reading and re-hashing the job's data) and intake's "
        "(about 17 %: decoding and validating each request, checking its data "
        "folder). The next steps would be a worker that keeps a printer's port open "
        "between back-to-back jobs, and handing the request intake decoded to the "
        "worker instead of reading it again."
    ),
    "Submit: batch": (
        "A job is a data folder, a data file and a request file: a mkdir, two creates "
        "and two renames, then one syncfs for the whole batch (it was three fsyncs per "
        "job). The profile is two thirds `posix.open` and `posix.mkdir`: file creation "
        "on this shared disk cost 0.05 ms in a quiet minute and up to 0.7 ms in a busy "
        "one, measured with a bare loop beside the benchmark; the same code reached "
        "2,436 jobs/s in a quieter run (`--quick`)."
    ),
    "Submit: Python API": (
        "Same code as the batch row (`Submitter.submit_many`); see there."
    ),
    "Listing, whole process": (
        "At 1,000 jobs both commands are mostly process start: `lpstat` is a C "
        "program; `printnet status` is Python's start-up (the `python -c pass` "
        "figure in the first row) plus its imports (model, master file, dataclasses, "
        "datetime, json: about 15–20 ms in a quiet minute) before it reads 1,000 rows "
        "in about 3 ms. The row's note gives the process's CPU time beside its wall "
        "time: where the two differ, the machine, not the listing, took the time. "
        "Why the 100,000-job listing varied 2.7× between runs: its cost depended on "
        "the master file's journal. A snapshot with 200 journal entries touching "
        "4,000 jobs (a busy server between two compactions) cost 1,140 ms of CPU "
        "against 610 ms for the bare snapshot, measured on the same loaded machine; "
        "the first journal op built an id → line map with one Python step per line, "
        "and every touched job was encoded field by field and placed by a binary "
        "search that split whole lines. The map is now built in C and the touched "
        "jobs go through the snapshot's own encoder and key: 860–1,040 ms against "
        "1,020–1,310 ms before (medians of 3 interleaved rounds, load average 11), "
        "the bare snapshot 530–700 ms. A journal still adds about half: the touched "
        "jobs are decoded, re-encoded and placed one binary search each. So a server "
        "that has seen no change for 5 s now compacts the journal "
        "(`server.disk.IDLE_COMPACT`): a quiet spool lists from one snapshot, and "
        "only a listing taken during a burst pays for the burst. The bench's "
        "synthetic master files have no journal."
    ),
    "Pickup latency, same host": (
        "The server is woken by an inotify hint on new/; the time is the hint, one "
        "cycle (intake, lock, commit) and opening the printer's port."
    ),
    "The line": (
        "Between two jobs the worker reports the finished one and starts the next "
        "(already claimed ahead); the remaining gap is opening the port and the "
        "simulated printer's own 10 ms print tick."
    ),
    "IPP Print-Job": (
        "The same client and pattern for both (32 keep-alive loopback TCP connections). "
        "CUPS answers before anything of the job is durable (document never fsynced, "
        "control file written DirtyCleanInterval later, fsynced then: SyncOnClose Yes in "
        "Debian); printnet answers after its group's syncfs or fsyncs. The floor is "
        "printnet's publish path, not the gateway: `Submitter.submit_many` alone costs "
        "about 1.1-1.8 ms of CPU per job on this machine (some 12 file system calls per "
        "job: data folder, .writer lock, data file, chmods, renames, the request), about "
        "as much as cupsd's whole Print-Job (the row's note gives both servers' CPU per "
        "job), so the gateway's own work (HTTP, IPP, checks: about 0.5 ms) cannot make up "
        "2 ×. Closing it needs a publish path for in-memory documents (no .writer lock "
        "for a one-call write, fewer calls and paths) and then several gateway processes "
        "on one port, which first needs Create-Job state on the spool (docs/GATEWAY.md, "
        "Speed)."
    ),
    "Server memory": (
        "Most of a server's memory is the interpreter and its imports, not the jobs: "
        "the note gives the same server with no job and a bare `python -c pass` "
        "(10.7 MiB here): CUPS's 12 MiB at 1,000 jobs is below what any Python "
        "process of this size can reach. Measured at 1,000 pending, bytecode cached: "
        "29.8 MiB, of which the jobs' data is about 0.8 MiB. Cut in this "
        "round: the host-local presence lock is a plain flock(2) instead of the "
        "filelock library (whose imports, logging, decimal, secrets and hmac among "
        "them, cost 8 MiB on their own), and the IPP client (http.client, ssl: 6 "
        "MiB) is imported only by a server with an ipp:// printer: 29.8 → 26.5 MiB. "
        "What remains: click and the console (the server is started through the "
        "CLI), the configuration parser, pyserial, watchdog, hashlib. Each waiting "
        "job is one `Job` object (slots) with its strings, an index key and a dict "
        "entry: about 650 bytes, 65 MiB for 100,000."
    ),
}


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit in ("ms",) and value < 10:
        return f"{value:.1f}"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}" if value < 10 else f"{value:.0f}"


def _spread(samples: list[float], unit: str) -> str:
    """min / median / max over the runs, and how many ("1 run" when only one)."""
    if not samples:
        return "—"
    if len(samples) == 1:
        return "1 run"
    xs = sorted(samples)
    mid = xs[len(xs) // 2] if len(xs) % 2 else (xs[len(xs) // 2 - 1] + xs[len(xs) // 2]) / 2
    return f"{_fmt(xs[0], unit)} / {_fmt(mid, unit)} / {_fmt(xs[-1], unit)} ({len(xs)})"


def _ratio(row: Row) -> str:
    r = row.ratio
    if r is None:
        return "—"
    better = row.advantage
    tag = ""
    if better is not None:
        tag = " (printnet better)" if better > 1.05 else " (CUPS better)" \
            if better < 0.95 else " (same)"
    return f"{r:.2f}{tag}"


def _target(row: Row) -> str:
    if row.met is None:
        return row.target or "—"
    return f"{'✅' if row.met else '❌'} {row.target}"


def write_report(run: Run, out: Path, plot: Path | None) -> None:
    info = run.info
    lines = [
        "# Benchmarks: printnet and CUPS side by side",
        "",
        "Generated by `scripts/bench" + (" --quick" if run.plan.quick else "") + "` — do "
        "not edit by hand; run it again. Every number is a median of several runs, and "
        "printnet's and CUPS's numbers come from the **same run on the same machine**: "
        "these machines are shared and noisy, so compare the ratio column, not the "
        "numbers with another run's.",
        "",
        f"- Run: {info.get('date')} ({info.get('mode')} mode, {info.get('duration')}); "
        f"load average at the start {info.get('load')}",
        f"- Machine: {info.get('host')}",
        f"- Spool disk: {info.get('disk')}",
        f"- printnet: {info.get('python')}, the venv's `printnet` console script; "
        f"CUPS: Debian cups-daemon {info.get('cups')}",
        "- CUPS runs as a private `cupsd` listening only on a unix socket, `MaxJobs 0`, "
        "with raw queues to `socket://127.0.0.1:PORT` where the benchmark reads and "
        "discards (a `file:///dev/null` device would complete jobs without running any "
        "backend). Commands reach it with `CUPS_SERVER=<socket>`.",
        "",
        "## Results",
        "",
        "Spreads are min / median / max over the runs (their number in brackets), "
        "runs interleaved with the other side's where both are measured.",
        "",
        "| metric | size | printnet | CUPS | printnet ÷ CUPS | unit | printnet spread "
        "| CUPS spread | target | printnet command | CUPS command | notes |",
        "| --- | --- | ---: | ---: | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in run.rows:
        cups_cmd = r.cups_cmd or "—"
        if not cups_cmd.startswith("—"):
            cups_cmd = f"`{cups_cmd}`"
        lines.append(
            f"| {r.metric} | {r.size} | {_fmt(r.printnet, r.unit)} | {_fmt(r.cups, r.unit)} "
            f"| {_ratio(r)} | {r.unit} | {_spread(r.samples, r.unit)} "
            f"| {_spread(r.cups_samples, r.unit)} | {_target(r)} | `{r.printnet_cmd}` | {cups_cmd} "
            f"| {r.note} |")
    lines.append("")
    if plot is not None:
        lines += [f"![printnet vs CUPS]({plot.name})", ""]
        scaling = plot.with_name(plot.stem + "-scaling" + plot.suffix)
        if scaling.exists():
            lines += [f"![listing time and server memory against pending jobs]"
                      f"({scaling.name})", ""]
    met = [r for r in run.rows if r.met is True]
    missed = [r for r in run.rows if r.met is False]
    lines += ["## Targets", "",
              f"{len(met)} of {len(met) + len(missed)} targets met in this run.", ""]
    if missed:
        lines += ["## Gaps", ""]
        groups: dict[str, list[Row]] = {}
        for r in missed:
            groups.setdefault(r.metric, []).append(r)
        for metric, group in groups.items():
            lines += [f"### {metric}", ""]
            for r in group:
                lines.append(f"- {r.size}: measured {_fmt(r.printnet, r.unit)} {r.unit}; "
                             f"target {r.target}. {_gap(r)}".rstrip())
            lines.append("")
            for key, text in EXPLAIN.items():
                if metric.startswith(key):
                    lines += [text, ""]
                    break
            if metric.startswith("Drain") and run.gaps.get("drain"):
                lines += _profile_table(run.gaps["drain"],
                                        "py-spy samples of both servers' threads (waits "
                                        "for work excluded) during a 2-server drain of "
                                        "2,000 jobs")
    if run.problems:
        lines += ["## What this run could not measure", ""]
        lines += [f"- {p}" for p in run.problems]
        lines.append("")
    lines += [
        "## How each number is measured",
        "",
        "- **Start-up**: `printnet --version` against `python -c pass`, both from the "
        "venv, interleaved, bytecode cached as in any install. The console script "
        "(`printnet.launch`) handles `--version`, `request` and `status` without "
        "importing click; everything else goes to the click application.",
        "- **Submit**: per CLI call, one `printnet request FILE` process per job "
        "(station installed with `printnet init`, no server running) against `lp` to a "
        "disabled CUPS queue. Batch: one `printnet request --each` process, and "
        "`Station.submit(files, each=True)` in the benchmark's process; CUPS's column "
        "is Print-Job requests over one keep-alive IPP connection (CUPS has no batch "
        "submission). Every printnet job is durable (fsync or syncfs) before its id "
        "is printed.",
        "- **Listing**: `printnet status` as a whole process (table output to "
        "/dev/null) against `lpstat -o`. printnet's master file is filled with N "
        "pending jobs as a server's rebuild writes it (synthetic jobs: listing reads "
        "only the master file); CUPS's queue with N jobs through IPP on a disabled "
        "printer.",
        "- **Drain**: N 1 KB text jobs (header pages on) are staged in another spool "
        "on the same disk and published into new/ at once; the time runs from the "
        "first rename to the last done/ record. Servers are real `printnet server` "
        "processes with four `sim://…&baud=inf` printers each, in one class. CUPS: a "
        "class of four raw queues to the discard sink, jobs queued while disabled, "
        "timed from `cupsenable` to the last job's first byte at the sink.",
        "- **Pickup latency**: one job at a time to an idle raw TCP printer (the "
        "sink); from the submit call's return (the request is published) to the first "
        "byte at the printer. Across hosts: the server runs on one GlusterFS mount "
        "(its own FUSE client and cache), the job is submitted through the other; no "
        "change event crosses mounts, so the scan interval bounds it.",
        "- **The line**: back-to-back jobs to the simulated serial printer, which "
        "prints at exactly baud/10 bytes per second; bytes printed (header pages "
        "included) over the time from its first to its last byte.",
        "- **Scale**: memory is the VmRSS of a real `printnet server` 2 s after it "
        "started with N pending jobs (its peak, VmHWM, beside it); CUPS's is cupsd's "
        "with that many jobs queued. Cycle time is `Server.tick()` in a process of its "
        "own on the same spool, counting the cycles that committed something, while "
        "two printers at 115200 baud print real high-priority jobs ahead of the N "
        "waiting ones: each cycle commits a finished job and claims the next.",
        "- **Crash survival**: a submitter process prints each job id once `submit` "
        "returns, while a server takes them in and prints; right after the N-th id "
        "the submitter and the server are killed with SIGKILL. A server is started "
        "again on the spool; once it has recovered, a job counts as kept if the master "
        "file has it, it is done, or it still waits in new/. CUPS: N Print-Jobs, then "
        "SIGKILL to cupsd, restart on the same state, count `lpstat -o`.",
        "- **Shared filesystem**: the GlusterFS two-mount fixture of the reliability "
        "tests (`tests/shared_fs.py`, tier `nfs`), the same operations as above on a "
        "folder of the share, with the local-disk figure of the same run beside it.",
        "",
    ]
    out.write_text("\n".join(lines))


def _gap(r: Row) -> str:
    import re

    m = re.search(r"([\d,.]+)", r.target.replace(",", ""))
    if not m or r.printnet is None:
        return ""
    try:
        goal = float(m.group(1))
    except ValueError:
        return ""
    if r.metric.startswith("CLI start-up"):
        return ""
    if goal == 0:
        return ""
    if r.higher_is_better:
        return f"That is {r.printnet / goal:.0%} of the target ({goal - r.printnet:,.0f} short)."
    return f"That is {r.printnet / goal:.1f} × the target."


def _profile_table(prof: list[tuple[float, str, str]], title: str) -> list[str]:
    if not prof:
        return []
    out = [f"Profile: {title}.", "", "| share of samples | kind | function |",
           "| ---: | --- | --- |"]
    out += [f"| {pct:.1f} % | {kind} | `{fn}` |" for pct, kind, fn in prof]
    out.append("")
    return out


def write_plot(rows: list[Row], path: Path) -> bool:
    """Two panels: printnet's advantage over CUPS, and each target's attainment."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    versus = [r for r in rows if r.advantage is not None]
    targets = [r for r in rows if r.met is not None and r.printnet is not None]
    fig, axes = plt.subplots(1, 2, figsize=(15, max(4.0, 0.42 * max(len(versus),
                                                                     len(targets)) + 1.5)))
    ax = axes[0]
    labels = [f"{r.metric[:38]} ({r.size[:22]})" for r in versus]
    values = [r.advantage or 0 for r in versus]
    colors = ["tab:green" if v >= 1 else "tab:red" for v in values]
    ax.barh(range(len(values)), values, color=colors)
    ax.set_yticks(range(len(values)), labels, fontsize=8)
    ax.axvline(1, color="black", linewidth=1)
    ax.set_xscale("log")
    ax.set_xlabel("printnet's advantage over CUPS (×, log scale; >1: printnet better)")
    ax.invert_yaxis()
    ax = axes[1]
    labels = [f"{r.metric[:38]} ({r.size[:22]})" for r in targets]
    shares = [_attainment(r) for r in targets]
    ax.barh(range(len(shares)), shares,
            color=["tab:green" if r.met else "tab:red" for r in targets])
    ax.set_yticks(range(len(shares)), labels, fontsize=8)
    ax.axvline(1, color="black", linewidth=1)
    ax.set_xlabel("target attainment (measured vs target; ≥1: met)")
    ax.invert_yaxis()
    fig.suptitle("printnet vs CUPS, same run, same machine")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write_scaling_plot(rows: list[Row], path: Path) -> bool:
    """Listing time and server memory against pending jobs, printnet and CUPS (log-log);
    CUPS's points stop where it could not hold that many jobs."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    panels = [("Listing, whole process", "listing (`printnet status` / `lpstat -o`), ms"),
              ("Server memory (RSS)", "server memory (RSS), MiB")]
    series = []
    for metric, label in panels:
        picked = [r for r in rows if r.metric == metric]
        pn = sorted((_pending(r.size), r.printnet) for r in picked if r.printnet is not None)
        cu = sorted((_pending(r.size), r.cups) for r in picked if r.cups is not None)
        series.append((label, pn, cu))
    if not any(pn for _, pn, _ in series):
        return False
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, (label, pn, cu) in zip(axes, series, strict=True):
        for points, name, style in ((pn, "printnet", "o-"), (cu, "CUPS", "s--")):
            if points:
                ax.plot([x for x, _ in points], [y for _, y in points], style, label=name)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("pending jobs")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.suptitle("Scaling with the queue, same run, same machine")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _pending(size: str) -> int:
    """"100,000 pending" -> 100000."""
    return int(size.split(maxsplit=1)[0].replace(",", ""))


def _attainment(r: Row) -> float:
    import re

    text = r.target.replace(",", "")
    if r.metric.startswith("CLI start-up"):
        m = re.search(r"\(([\d.]+) ms", text)
        return (1.3 * float(m.group(1))) / r.printnet if m and r.printnet else 0.0
    if r.metric.startswith("Listing") and r.cups is not None and r.printnet:
        return r.cups / r.printnet
    m = re.search(r"([\d.]+)", text)
    if not m or not r.printnet:
        return 0.0
    goal = float(m.group(1))
    if "scan interval" in text:
        goal = 1100.0
    return r.printnet / goal if r.higher_is_better else goal / r.printnet
