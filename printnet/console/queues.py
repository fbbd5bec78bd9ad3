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

from printnet.console.common import (
    Ctx,
    name_arg,
    need,
    options,
    pick,
    pick_disks,
    seconds,
    table,
)
from printnet.console.protocol import Reply
from printnet.errors import NotFound, UsageError
from printnet.model import clean_text
from printnet.operator import Outcomes

# ---------------------------------------------------------------------------
# CH: check queues


CH_USAGE: Final = """\
CH [printer...] [-P printer] [-u user] [-s state] [-n count|all] [--json]
  printer, -P   only these printers or classes (any case)
  -u user       only this user's jobs
  -s state      only jobs in this state: pending, held, printing, next
                (next: assigned to a printer that is still printing the job before)
  -n count      show at most this many jobs per queue (default 50 as text, all with
                --json); the rest are counted ("... and 99,950 more")"""
CH_DEFAULT_LIMIT: Final = 50  # jobs shown per queue as text, unless -n says otherwise
CH_STATES: Final = ("pending", "held", "printing", "next")


def shown_state(job: dict[str, Any]) -> str:
    """The state as CH shows it: a job assigned ahead (not started) is `next`."""
    return "next" if job.get("next") else str(job["state"])


def _job_line(job: dict[str, Any], multi: bool) -> list[str]:
    prog = job.get("progress")
    note = job.get("note") or ""
    state = shown_state(job)
    if prog and prog.get("page_total"):
        note = (note + "; " if note else "") + f"page {prog['pages']} of {prog['page_total']}"
    elif state == "printing":
        note = (note + "; " if note else "") + f"on {job['assigned']}"
    disk = [str(job["disk"])] if multi else []
    return [f"{job['position']:>3}", job["id"], state, job["priority"],
            job["user"][:12], *disk, clean_text(job["title"], 30) or "-",
            f"[{note}]" if note else ""]


def _ch_filters(ctx: Ctx) -> tuple[set[str], str | None, str | None, int | None]:
    """CH's arguments: destinations, user, state, limit (None: all)."""
    opts, rest = options(ctx.args, {}, {"-P": "printer", "--printer": "printer",
                                        "-u": "user", "--user": "user", "-s": "state",
                                        "--state": "state", "-n": "limit",
                                        "--limit": "limit"})
    wanted = {name_arg(a, "printer") for a in rest}
    if "printer" in opts:
        wanted.add(name_arg(opts["printer"], "printer"))
    state = pick(opts["state"].upper(), [s.upper() for s in CH_STATES], "state").lower() \
        if "state" in opts else None
    limit: int | None = None if ctx.as_json else CH_DEFAULT_LIMIT
    if "limit" in opts:
        text = opts["limit"]
        if text.lower() == "all":
            limit = None
        elif text.isdigit():
            limit = int(text)
        else:
            raise UsageError(f"-n needs a number or 'all', not {clean_text(text, 20)!r}")
    return wanted, opts.get("user"), state, limit


def _section_jobs(jobs: list[dict[str, Any]], user: str | None, state: str | None,
                  limit: int | None) -> tuple[list[dict[str, Any]], int]:
    """The jobs of one queue that CH shows, and how many match in all."""
    if user is not None:
        jobs = [j for j in jobs if j["user"] == user]
    if state is not None:
        jobs = [j for j in jobs if shown_state(j) == state]
    return (jobs if limit is None else jobs[:limit]), len(jobs)


def _job_rows(jobs: list[dict[str, Any]], count: int, multi: bool,
              with_printer: bool = False) -> list[str]:
    rows = table([[*([j["printer"]] if with_printer else []), *_job_line(j, multi)]
                  for j in jobs], "  ")
    if not rows:
        return ["  no jobs" if not count else f"  {count:,} jobs (none shown: -n 0)"]
    if count > len(jobs):
        rows.append(f"  ... and {count - len(jobs):,} more (CH -n all shows them; "
                    "-u, -s narrow them down)")
    return rows


def cmd_ch(ctx: Ctx) -> Reply:
    server = ctx.server
    wanted, user, state, limit = _ch_filters(ctx)
    printers = server.printers()
    classes = server.config().classes
    found = server.queues()
    queues = {dest: list(jobs) for dest, jobs in found.jobs.items()}
    if wanted:
        known = set(printers) | set(classes) | set(queues) | server.destinations()
        unknown = sorted(wanted - known)
        if unknown:
            raise NotFound(f"no printer or class {', '.join(unknown)} (known: "
                           f"{' '.join(sorted(set(printers) | set(classes)))})")
    disks = server.disks()
    multi = len(disks) > 1
    sections: list[dict[str, Any]] = []
    lines: list[str] = []
    for name, st in printers.items():
        if wanted and name not in wanted:
            continue
        jobs, count = _section_jobs(queues.pop(name, []), user, state, limit)
        sections.append({"kind": "printer", "name": name, "state": st["state"],
                         "reasons": st["reasons"], "setup": st["setup"], "form": st["form"],
                         "accepting": st["accepting"], "reject_reason": st["reject_reason"],
                         "job": st["job"], "jobs": jobs, "count": count,
                         "more": count - len(jobs)})
        reasons = "; ".join(st["reasons"])
        extra = f" ({reasons})" if reasons else ""
        accepting = "accepting" if st["accepting"] else \
            f"rejecting: {st['reject_reason'] or 'not accepting jobs'}"
        printing = f" {st['job']}" if st["job"] else ""
        lines.append(f"Printer {name}: {st['state']}{printing}{extra}, setup {st['setup']} "
                     f"(form {st['form']}), {accepting}")
        lines += _job_rows(jobs, count, multi)
    for cls, members in classes.items():
        if wanted and cls not in wanted:
            continue
        jobs, count = _section_jobs(queues.pop(cls, []), user, state, limit)
        sections.append({"kind": "class", "name": cls, "members": list(members),
                         "jobs": jobs, "count": count, "more": count - len(jobs)})
        lines.append(f"Class {cls} ({' '.join(members)}):")
        lines += _job_rows(jobs, count, multi)
    others_all = [j for dest in sorted(queues) if not wanted or dest in wanted
                  for j in queues[dest]]
    if others_all:
        others, count = _section_jobs(others_all, user, state, limit)
        if count:
            sections.append({"kind": "other", "name": "", "jobs": others, "count": count,
                             "more": count - len(others)})
            lines.append("Other destinations (other servers' printers):")
            lines += _job_rows(others, count, multi, with_printer=True)
    lines.append(f"Held: {found.held:,}   Rejected requests: {found.rejected:,}")
    return Reply(text="\n".join(lines), data={
        "server": server.name, "queues": sections, "held": found.held,
        "rejected": found.rejected, "disks": [str(d) for d in disks],
        "filter": {"printers": sorted(wanted), "user": user, "state": state,
                   "limit": limit}})


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
