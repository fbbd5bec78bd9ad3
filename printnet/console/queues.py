"""The queue and job commands: CH (check queues), I (server info), P (print a
file), Q (quit) and the operator's job verbs HOLD RELEASE CANCEL MOVE TOP
REPRINT, which act on any user's job.

Each asks the running server (`RunningServer`) and turns its answer into text
for people and `--json` data for programs.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Final

from printnet.console.common import Ctx, name_arg, need, options, pick_disks, seconds, table
from printnet.console.protocol import Reply
from printnet.errors import UsageError
from printnet.model import clean_text
from printnet.operator import Outcomes

# ---------------------------------------------------------------------------
# CH: check queues


def _job_line(job: dict[str, Any], multi: bool) -> list[str]:
    prog = job.get("progress")
    note = job.get("note") or ""
    if prog and prog.get("page_total"):
        note = (note + "; " if note else "") + f"page {prog['pages']} of {prog['page_total']}"
    elif job["state"] == "printing":
        note = (note + "; " if note else "") + f"on {job['assigned']}"
    disk = [str(job["disk"])] if multi else []
    return [f"{job['position']:>3}", job["id"], job["state"], job["priority"],
            job["user"][:12], *disk, clean_text(job["title"], 30) or "-",
            f"[{note}]" if note else ""]


def cmd_ch(ctx: Ctx) -> Reply:
    server = ctx.server
    wanted = {name_arg(a, "printer") for a in ctx.args}
    printers = server.printers()
    classes = server.config().classes
    found = server.queues()
    queues = {dest: list(jobs) for dest, jobs in found.jobs.items()}
    disks = server.disks()
    multi = len(disks) > 1
    sections: list[dict[str, Any]] = []
    lines: list[str] = []
    for name, st in printers.items():
        if wanted and name not in wanted:
            continue
        jobs = queues.pop(name, [])
        sections.append({"kind": "printer", "name": name, "state": st["state"],
                         "reasons": st["reasons"], "setup": st["setup"], "form": st["form"],
                         "accepting": st["accepting"], "reject_reason": st["reject_reason"],
                         "job": st["job"], "jobs": jobs})
        reasons = "; ".join(st["reasons"])
        extra = f" ({reasons})" if reasons else ""
        accepting = "accepting" if st["accepting"] else \
            f"rejecting: {st['reject_reason'] or 'not accepting jobs'}"
        printing = f" {st['job']}" if st["job"] else ""
        lines.append(f"Printer {name}: {st['state']}{printing}{extra}, setup {st['setup']} "
                     f"(form {st['form']}), {accepting}")
        lines += table([_job_line(j, multi) for j in jobs], "  ") or ["  no jobs"]
    for cls, members in classes.items():
        if wanted and cls not in wanted:
            continue
        jobs = queues.pop(cls, [])
        sections.append({"kind": "class", "name": cls, "members": list(members),
                         "jobs": jobs})
        lines.append(f"Class {cls} ({' '.join(members)}):")
        lines += table([_job_line(j, multi) for j in jobs], "  ") or ["  no jobs"]
    if not wanted and queues:
        others = [j for dest in sorted(queues) for j in queues[dest]]
        sections.append({"kind": "other", "name": "", "jobs": others})
        lines.append("Other destinations (other servers' printers):")
        lines += table([[j["printer"], *_job_line(j, multi)] for j in others], "  ")
    lines.append(f"Held: {found.held}   Rejected requests: {found.rejected}")
    return Reply(text="\n".join(lines), data={
        "server": server.name, "queues": sections, "held": found.held,
        "rejected": found.rejected, "disks": [str(d) for d in disks]})


# ---------------------------------------------------------------------------
# I: server info


def cmd_info(ctx: Ctx) -> Reply:
    data = ctx.server.info()
    counters = data["counters"]
    started = datetime.fromisoformat(data["started"]).astimezone().strftime(
        "%Y-%m-%d %H:%M:%S")
    lines = [
        f"Server {data['name']}: printnet {data['version']} on {data['host']}, "
        f"pid {data['pid']}, {data['state']}",
        f"Up {seconds(data['uptime'])} (since {started})",
        f"Jobs printed since start: {counters['printed']} (taken in {counters['taken']}, "
        f"rejected {counters['rejected']}, requeued {counters['requeued']})",
        "Shared disks:",
    ]
    for d in data["disks"]:
        lock = d["master_lock"]
        lock_text = "master lock free" if lock is None else (
            f"master lock held by {lock['holder']} ({lock['host']} pid {lock['pid']})")
        health = f"error: {d['error']}" if d["error"] else "ok"
        lines.append(f"  {d['index']} {d['path']}: {health}, last scan "
                     f"{seconds(d['last_scan'])} ago, {lock_text}, {d['jobs']} jobs, "
                     f"server leases: {', '.join(d['servers']) or 'none'}")
    lines.append("Printers:")
    lines += table([[p["name"], p["state"] + (f" {p['job']}" if p["job"] else ""),
                     f"setup {p['setup']}", f"printed {p['printed']}",
                     "; ".join(p["reasons"])] for p in data["printers"]])
    return Reply(text="\n".join(lines), data=data)


# ---------------------------------------------------------------------------
# P: print a file

P_USAGE: Final = ("P [-P printer] [-p high|standard|overnight] [-n copies] [-t title] "
                  "[-s setup] [--hold] [--raw] [--no-header] [--disk N] file...")


def cmd_print(ctx: Ctx) -> Reply:
    server = ctx.server
    opts, files = options(
        ctx.args,
        {"--hold": "hold", "--raw": "raw", "--no-header": "no_header"},
        {"-P": "printer", "--printer": "printer", "-p": "priority", "--priority": "priority",
         "-n": "copies", "--copies": "copies", "-t": "title", "--title": "title",
         "-s": "setup", "--setup": "setup", "--disk": "disk"},
    )
    if not files:
        raise UsageError(f"usage: {P_USAGE}")
    base = Path(ctx.command.cwd) if ctx.command.cwd else Path.cwd()
    paths = [str(base / f) for f in files]
    try:
        copies = int(opts.get("copies", "1"))
    except ValueError:
        raise UsageError("-n needs a number") from None
    disk = pick_disks(server, opts.get("disk"))[0]
    requests = server.submit(
        paths, disk=disk, printer=opts.get("printer"),
        priority=opts.get("priority", "standard"), copies=copies,
        title=opts.get("title", ""), setup=opts.get("setup"),
        header="no_header" not in opts, raw="raw" in opts, hold="hold" in opts)
    lines = [f"queued {r.id} for {r.printer} ({len(r.files)} file(s), {r.size} bytes)"
             for r in requests]
    return Reply(text="\n".join(lines), data={"jobs": [
        {"id": r.id, "printer": r.printer, "user": r.user, "size": r.size,
         "disk": str(disk)} for r in requests]})


# ---------------------------------------------------------------------------
# Q: quit


def cmd_quit(ctx: Ctx) -> Reply:
    server = ctx.server
    server.log(f"console: stop requested ({ctx.origin})")
    server.stop()
    return Reply(text=f"server {server.name} stopping: jobs printing now finish (up to "
                 f"{server.stop_grace:g} s) or go back to their queue; nothing is lost",
                 data={"stopping": True, "server": server.name})


# ---------------------------------------------------------------------------
# Operator job verbs

VERB_USAGE: Final = """\
HOLD job...              hold pending jobs
RELEASE job...           release held jobs
CANCEL job...            cancel jobs (a job printing here stops at once)
MOVE job... printer      move pending or held jobs to another printer or class
TOP job...               put jobs at the front of their priority
REPRINT job [printer]    print a finished job again while its data is retained
job: a job id, or a unique ending of one (at least 4 characters)"""


def _verb_reply(ctx: Ctx, outcomes: Outcomes) -> Reply:
    applied = [i for i, o in outcomes.items() if not o.startswith("not ")]
    for job_id in applied:
        ctx.server.log(f"console: job {job_id} {outcomes[job_id]} ({ctx.origin})")
    lines = [f"{i}: {o}" for i, o in outcomes.items()]
    failed = len(applied) != len(outcomes)
    return Reply(ok=not failed, code=1 if failed else 0, text="\n".join(lines),
                 error="some jobs were not changed" if failed else "",
                 data={"results": outcomes})


def cmd_hold(ctx: Ctx) -> Reply:
    return _verb_reply(ctx, ctx.server.hold(ctx.args))


def cmd_release(ctx: Ctx) -> Reply:
    return _verb_reply(ctx, ctx.server.release(ctx.args))


def cmd_cancel(ctx: Ctx) -> Reply:
    return _verb_reply(ctx, ctx.server.cancel(ctx.args))


def cmd_move(ctx: Ctx) -> Reply:
    need(ctx.args, 2, "MOVE job... printer")
    dest = name_arg(ctx.args[-1], "printer")
    return _verb_reply(ctx, ctx.server.move(ctx.args[:-1], dest))


def cmd_top(ctx: Ctx) -> Reply:
    return _verb_reply(ctx, ctx.server.top(ctx.args))


def cmd_reprint(ctx: Ctx) -> Reply:
    need(ctx.args, 1, "REPRINT job [printer]")
    dest = name_arg(ctx.args[1], "printer") if len(ctx.args) > 1 else None
    done = ctx.server.reprint(ctx.args[0], dest)
    ctx.server.log(f"console: job {done.job} reprinted as {done.new} on {done.printer} "
                   f"({ctx.origin})", done.disk)
    return Reply(text=f"{done.job} reprinted as {done.new} for {done.printer}",
                 data={"job": done.job, "new": done.new, "printer": done.printer})
