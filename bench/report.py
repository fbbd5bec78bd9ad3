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
        "Draining is bound by metadata writes on the spool's disk and by one Python "
        "process per server, not by the scheduler. Per job a server renames the request "
        "twice to take it in (new/ → received/ under a unique name first, so that two "
        "servers cannot both win it), reads the request and the job's data and checks "
        "its folder, creates and renames its done/ record, and unlinks the request once "
        "the commit is durable; each cycle adds the master lock (create, fsync, link; "
        "rename, unlink), one journal entry (write, fsync, link) and one syncfs for all "
        "its done/ records and accounting lines. On this machine, shared with other "
        "test suites, a create or unlink took 0.05–1 ms depending on the minute (see "
        "`posix.open`, `posix.rename`, `fsync` in the profile), and two cores serve "
        "four servers, their printer threads and the benchmark. What was ours is done "
        "(each step measured before and after): results are committed in batches with "
        "one durability pass per cycle; a printer is given jobs ahead (claimed under "
        "the lock, started the moment the previous one ends), so one cycle serves "
        "dozens of jobs; requests are unlinked off the server thread; the scheduler no "
        "longer walks every waiting job each cycle; intake no longer reads every "
        "server's status file per request; the change-event hint is no longer held "
        "back 0.5 s by watchdog's move pairing; a server no longer sleeps a whole scan "
        "interval when another server holds the lock; text lines skip the driver's "
        "per-character control-code loop. Before this work one server drained 212 "
        "jobs/s on this machine (an earlier run; 108 under py-spy). What is left per job is the "
        "crash-safety protocol itself (two renames, a create and a rename, an unlink) "
        "and about 1 ms of Python across intake, commit and worker; more servers share "
        "one master lock and two cores, so they add availability, not speed, here."
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
        "At 1,000 jobs both commands are mostly process start. `lpstat` is a C "
        "program; `printnet status` is Python's own start-up (the `python -c pass` "
        "figure in the first row) plus about 15–20 ms of imports — dataclasses (which "
        "imports inspect), typing, datetime, json and the module-level enums and "
        "dataclasses of the model and master file — before it reads 1,000 rows in "
        "about 3 ms. Already done: the console script answers `status` without "
        "click, skips the submit modules and socket, and lists the master file's rows "
        "as text without decoding them into jobs (`Station.listing`). The last few "
        "milliseconds would need a status path without dataclasses; from 10,000 jobs "
        "on printnet is several times faster, because lpstat grows with its queue."
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
        "Each waiting job is one `Job` object (slots) with its strings, an index key "
        "and a dict entry: about 650 bytes, 65 MiB for 100,000, on top of the "
        "interpreter and libraries."
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
        "| metric | size | printnet | CUPS | printnet ÷ CUPS | unit | target | printnet command "
        "| CUPS command | notes |",
        "| --- | --- | ---: | ---: | --- | --- | --- | --- | --- | --- |",
    ]
    for r in run.rows:
        cups_cmd = r.cups_cmd or "—"
        if not cups_cmd.startswith("—"):
            cups_cmd = f"`{cups_cmd}`"
        lines.append(
            f"| {r.metric} | {r.size} | {_fmt(r.printnet, r.unit)} | {_fmt(r.cups, r.unit)} "
            f"| {_ratio(r)} | {r.unit} | {_target(r)} | `{r.printnet_cmd}` | {cups_cmd} "
            f"| {r.note} |")
    lines.append("")
    if plot is not None:
        lines += [f"![printnet vs CUPS]({plot.name})", ""]
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
