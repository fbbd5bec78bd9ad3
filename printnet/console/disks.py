"""The disk commands: F (file server) LIST, LOCKS, BREAK, PURGE, REBUILD.

A disk is named by its number in F LIST or by its folder (relative to the
project); without one, a command acts on all (or, where it needs one, on the
only one).  Breaking a lock and rebuilding a master file ask to confirm.
"""

from __future__ import annotations

from typing import Any, Final

from printnet.console.common import (
    Ctx,
    need,
    number,
    options,
    pick_disks,
    seconds,
    sub,
    table,
)
from printnet.console.protocol import Reply
from printnet.errors import PrintnetError, UsageError

F_SUBS: Final = ("LIST", "LOCKS", "BREAK", "PURGE", "REBUILD")
F_USAGE: Final = """\
F [LIST]                          the shared disks, their health and contents
F LOCKS                           lock holders and how long each lock is unchanged
F BREAK lock [disk] [--force]     break a stale lock (asks to confirm); --force: even
                                  a live one
F PURGE [--days N] [--temp-hours H] [disk]
                                  purge done/ and rejected/ entries older than N days
                                  (7) and tmp/ leftovers older than H hours (24)
F REBUILD [disk]                  rebuild the master file from the request files (asks)
disk: its number in F LIST, or its folder (default: the only one / all)"""


def f_changes(args: list[str]) -> bool:
    return sub(args, F_SUBS, "LIST") not in ("LIST", "LOCKS")


def cmd_f(ctx: Ctx) -> Reply:
    server, args = ctx.server, ctx.args
    what = sub(args, F_SUBS, "LIST")
    rest = args[1:]
    if what == "LIST":
        disks = server.disk_health()
        lines = []
        for d in disks:
            c = d["counts"]
            free = f"{d['free_bytes'] / 2**30:.1f} GiB free" if d["free_bytes"] is not None \
                else "free space unknown"
            lines.append(f"{d['index']} {d['path']}: {d['health']}, {free}, "
                         f"{d['jobs']} live jobs, last scan {seconds(d['last_scan'])} ago")
            lines.append(f"    new {c['new']}  received {c['received']}  done {c['done']}  "
                         f"rejected {c['rejected']}  tmp {c['tmp']}  data {c['data']}  "
                         f"master generation {d['generation']}")
        return Reply(text="\n".join(lines), data={"disks": disks})
    if what == "LOCKS":
        rows = server.locks()
        cells = [["DISK", "LOCK", "HOLDER", "HOST", "PID", "LEASE", "UNCHANGED", ""]]
        for r in rows:
            flag = "this server" if r["ours"] else ("STALE" if r["stale"] else "")
            cells.append([str(r["disk"]), r["lock"], r["holder"], r["host"], str(r["pid"]),
                          f"{r['lease']:g} s", seconds(r["unchanged_for"]), flag])
        text = "\n".join(table(cells, "")) if rows else "no locks are held"
        return Reply(text=text + "\n(a lock is stale once unchanged for its lease + 1/4; "
                     "F LOCKS again later shows the ages growing)", data={"locks": rows})
    if what == "BREAK":
        return _f_break(ctx, rest)
    if what == "PURGE":
        return _f_purge(ctx, rest)
    return _f_rebuild(ctx, rest)


def _f_break(ctx: Ctx, rest: list[str]) -> Reply:
    server = ctx.server
    opts, words = options(rest, {"--force": "force"}, {})
    need(words, 1, "F BREAK lock [disk] [--force]")
    disks = pick_disks(server, words[1] if len(words) > 1 else None)
    lock = server.lock(words[0], disks)
    force = "force" in opts
    if not lock.stale and not force:
        return Reply.failure(
            f"lock {lock.name} held by {lock.holder} is not stale: unchanged for "
            f"{lock.unchanged_for:.1f} s of the {lock.stale_after:.1f} s needed (lease "
            f"{lock.lease:g} s). Look again later (F LOCKS), or add --force to break a "
            "live lock", 1)
    if not ctx.command.confirm:
        live = "" if lock.stale else ", NOT stale: its holder may still be working"
        return Reply(ok=False, needs="confirm", code=1, error="not confirmed",
                     question=f"Break lock {lock.name} on {lock.disk}, held by "
                     f"{lock.holder}, unchanged for {lock.unchanged_for:.1f} s{live}?")
    if not server.break_lock(lock, force=force):
        return Reply.failure(f"lock {lock.name} was not broken (it changed or vanished "
                             "meanwhile)")
    server.log(f"console: lock {lock.name} held by {lock.holder} broken ({ctx.origin})",
               lock.disk)
    return Reply(text=f"lock {lock.name} broken", data={"lock": lock.name,
                                                        "disk": str(lock.disk),
                                                        "broken": True})


def _f_purge(ctx: Ctx, rest: list[str]) -> Reply:
    server = ctx.server
    opts, words = options(rest, {}, {"--days": "days", "--temp-hours": "hours"})
    days = number(opts.get("days", "7"), "--days")
    hours = number(opts.get("hours", "24"), "--temp-hours")
    results: list[dict[str, Any]] = []
    for disk in pick_disks(server, words[0] if words else None):
        try:
            counts = server.purge(disk, days=days, temp_hours=hours)
            results.append({"disk": str(disk), "removed": counts})
        except PrintnetError as exc:
            results.append({"disk": str(disk), "error": str(exc)})
    server.log(f"console: purge older than {days:g} days / {hours:g} h ({ctx.origin})")
    lines = []
    for r in results:
        if "error" in r:
            lines.append(f"{r['disk']}: not purged: {r['error']}")
        else:
            lines.append(f"{r['disk']}: " + ", ".join(
                f"{n} {what}" for what, n in r["removed"].items()))
    failed = any("error" in r for r in results)
    return Reply(ok=not failed, code=1 if failed else 0, text="\n".join(lines),
                 error="some shared disks were not purged" if failed else "",
                 data={"purged": results})


def _f_rebuild(ctx: Ctx, rest: list[str]) -> Reply:
    server = ctx.server
    disks = pick_disks(server, rest[0] if rest else None)
    if len(disks) > 1:
        raise UsageError("name the shared disk to rebuild (F LIST numbers them)")
    disk = disks[0]
    if not ctx.command.confirm:
        return Reply(ok=False, needs="confirm", code=1, error="not confirmed",
                     question=f"Rebuild the master file of {disk} from its request "
                     "files? Jobs being printed now return to pending and may print again")
    jobs = server.rebuild(disk)
    server.log(f"console: master file rebuilt, {jobs} live jobs ({ctx.origin})", disk)
    return Reply(text=f"master file of {disk} rebuilt: {jobs} live jobs",
                 data={"disk": str(disk), "jobs": jobs})
