"""The configuration commands: CS (configure server) and CP (configure printer).

Edits go through `RunningServer.edit_config` (atomic, comment-keeping,
validated as a whole: an invalid change is refused with its reason and the
file stays byte-identical), which the running server then takes without a
restart; if it cannot (a shared disk that cannot be served), the file is put
back.  Settings given on the server's command line (`--spool`, `--name`) stay
in force over the file.  The server *name* is the one setting that takes
effect only at the next start: locks and status files are named after it.
"""

from __future__ import annotations

from typing import Any, Final

from printnet import cmdfile
from printnet import config as config_mod
from printnet.console.common import Ctx, key_values, name_arg, need, pick, sub, table
from printnet.console.protocol import Reply
from printnet.errors import NotFound, UsageError
from printnet.model import clean_text
from printnet.operator import RunningServer
from printnet.passwords import hash_password

# ---------------------------------------------------------------------------
# CS: configure server

CS_SUBS: Final = ("SHOW", "NAME", "SPOOL", "PASSWORD", "NIGHT", "SCAN", "LEASE", "OPERATORS")
CS_USAGE: Final = """\
CS                        show the server's settings
CS NAME name              rename the server (takes effect at its next start)
CS SPOOL ADD folder       serve another shared disk (a spool `printnet init` made)
CS SPOOL REMOVE folder    stop serving a shared disk
CS PASSWORD [OFF]         set (asks for it) or remove the console password
CS NIGHT start,end        the overnight window, local hours (e.g. 22,6)
CS SCAN seconds           how often new/ is scanned
CS LEASE seconds          lock and job lease length
CS OPERATORS user,user    users who may act on anyone's jobs"""


def cs_changes(args: list[str]) -> bool:
    return sub(args, CS_SUBS, "SHOW") != "SHOW"


def _server_settings(server: RunningServer) -> dict[str, Any]:
    config = server.config()
    cfg = config.server
    return {
        "name": server.name,
        "name_on_file": cfg.name,
        "etc": str(config.etc),
        "spools": [str(p) for p in cfg.spools],
        "password": cfg.password_hash is not None,
        "night": list(cfg.night),
        "scan": cfg.scan_interval,
        "lease": cfg.lease,
        "operators": list(cfg.operators),
    }


def _show_server(server: RunningServer) -> Reply:
    data = _server_settings(server)
    night = data["night"]
    lines = [f"Server {server.name} (configuration in {data['etc']})"]
    if data["name_on_file"] != server.name:
        lines.append(f"  name on file:  {data['name_on_file']} (from the next start)")
    lines += [
        f"  shared disks:  {', '.join(data['spools'])}",
        f"  password:      {'set' if data['password'] else 'not set (no password asked)'}",
        f"  night window:  {night[0]:02d}:00-{night[1]:02d}:00",
        f"  scan interval: {data['scan']:g} s",
        f"  lease:         {data['lease']:g} s",
        f"  operators:     {', '.join(data['operators'])}",
    ]
    return Reply(text="\n".join(lines), data=data)


def cmd_cs(ctx: Ctx) -> Reply:
    server, args = ctx.server, ctx.args
    what = sub(args, CS_SUBS, "SHOW")
    rest = args[1:]
    file = config_mod.SERVER_FILE
    if what == "SHOW":
        return _show_server(server)
    if what == "NAME":
        need(rest, 1, "CS NAME name")
        name = name_arg(rest[0], "server")
        server.edit_config(file, lambda t: cmdfile.set_single(t, "SERVER", None,
                                                              {"NAME": name}), apply=False)
        server.log(f"console: server name set to {name} on file ({ctx.origin})")
        return Reply(text=f"{file}: SERVER NAME={name} saved; the server keeps the name "
                     f"{server.name} until its next start (locks and status files carry "
                     "the name)", data={"name": name, "applied": False})
    if what == "SPOOL":
        return _cs_spool(ctx, rest)
    if what == "PASSWORD":
        if rest and rest[0].upper() == "OFF":
            server.edit_config(file, lambda t: cmdfile.remove_command(t, "PASSWORD"))
            server.log(f"console: password removed ({ctx.origin})")
            return Reply(text="console password removed: the console asks for none",
                         data={"password": False})
        if ctx.command.new_password is None:
            return Reply(ok=False, needs="new_password", code=2,
                         error="CS PASSWORD needs the new password",
                         question="New console password")
        hashed = hash_password(ctx.command.new_password)
        server.edit_config(file, lambda t: cmdfile.set_single(t, "PASSWORD", hashed))
        server.log(f"console: password changed ({ctx.origin})")
        return Reply(text="console password set (stored as a salted scrypt hash)",
                     data={"password": True})
    keyword = what
    usage = {"NIGHT": "CS NIGHT start,end", "SCAN": "CS SCAN seconds",
             "LEASE": "CS LEASE seconds", "OPERATORS": "CS OPERATORS user,user"}[what]
    need(rest, 1, usage)
    value = ",".join(rest) if what in ("NIGHT", "OPERATORS") else rest[0]
    server.edit_config(file, lambda t: cmdfile.set_single(t, keyword, value))
    server.log(f"console: {keyword} {value} ({ctx.origin})")
    note = ""
    if what == "LEASE":
        note = " (locks already held keep their lease until they are taken again)"
    reply = _show_server(server)
    reply.text = f"{file}: {keyword} {value} applied{note}\n" + reply.text
    return reply


def _cs_spool(ctx: Ctx, rest: list[str]) -> Reply:
    server = ctx.server
    need(rest, 2, "CS SPOOL ADD|REMOVE folder")
    action = pick(rest[0], ("ADD", "REMOVE"), "subcommand")
    raw = rest[1]
    file = config_mod.SERVER_FILE
    if action == "ADD":
        path = server.add_disk(raw)
        server.log(f"console: now serving shared disk {path} ({ctx.origin})")
        return Reply(text=f"{file}: SPOOL {raw} added; serving {path}",
                     data={"spool": str(path), "spools": [str(d) for d in server.disks()]})
    path = server.remove_disk(raw)
    server.log(f"console: stopped serving shared disk {path} ({ctx.origin})")
    return Reply(text=f"{file}: SPOOL {raw} removed; no longer serving {path}",
                 data={"spool": str(path), "spools": [str(d) for d in server.disks()]})


# ---------------------------------------------------------------------------
# CP: configure printer

CP_SUBS: Final = ("SHOW", "ADD", "CHANGE", "REMOVE", "MOUNT", "STOP", "START", "ACCEPT",
                  "REJECT", "SETUP")
CP_USAGE: Final = """\
CP [SHOW] [printer]                   the printers, their settings and state; the setups
CP ADD printer PORT=port [KEY=VALUE]  add a printer (BAUD= BITS= PARITY= STOP= FLOW=
                                      DRIVER= SETUP= HEADER= CLASS= ERRORS= ...)
CP CHANGE printer KEY=VALUE...        change settings (port, line, driver, header,
                                      classes); KEY= (empty) removes a key
CP REMOVE printer                     remove a printer
CP MOUNT printer setup                mount a setup (form): jobs that need it start
CP STOP printer | CP START printer    stop or start printing (a current job finishes)
CP REJECT printer reason...           refuse new jobs; users see the reason
CP ACCEPT printer                     accept new jobs again
CP SETUP setup KEY=VALUE...           define or change a setup (FORM= LENGTH= WIDTH=)"""


def _cp_sub(args: list[str]) -> tuple[str, list[str]]:
    """CP's subcommand and its arguments; `CP <printer>` shows that printer."""
    if not args:
        return "SHOW", []
    try:
        return pick(args[0], CP_SUBS, "subcommand"), args[1:]
    except UsageError:
        if len(args) == 1:
            return "SHOW", args
        raise


def cp_changes(args: list[str]) -> bool:
    return _cp_sub(args)[0] != "SHOW"


def _show_printers(server: RunningServer, only: str | None = None) -> Reply:
    config = server.config()
    names = list(config.printers)
    if only is not None:
        only = name_arg(only, "printer")
        if only not in names:
            raise NotFound(f"no printer {only} on this server")
        names = [only]
    statuses = server.printers()
    printers = []
    for name in names:
        cfg = config.printers[name]
        status = statuses.get(name, {})
        printers.append({
            "name": name, "port": cfg.port, "baud": cfg.baud, "bits": cfg.bytesize,
            "parity": cfg.parity, "stop": cfg.stopbits, "flow": cfg.flow.value,
            "driver": cfg.driver.value, "setup": cfg.setup,
            "mounted": status.get("setup", cfg.setup),
            "header": cfg.header if cfg.header_pages else "NONE", "classes": list(cfg.classes),
            "errors": cfg.error_policy.value, "accepting": cfg.accepting,
            "reject_reason": cfg.reject_reason, "stopped": cfg.stopped,
            "state": status.get("state", "unknown"), "reasons": status.get("reasons", []),
        })
    rows = [["PRINTER", "STATE", "MOUNTED", "PORT", "LINE", "DRIVER", "HEADER", "CLASSES",
             "ACCEPTING"]]
    for p in printers:
        line = f"{p['baud']} {p['bits']}{p['parity']}{p['stop']:g} {p['flow']}"
        accepting = "yes" if p["accepting"] else f"no: {p['reject_reason'] or 'rejecting'}"
        rows.append([p["name"], p["state"], p["mounted"], p["port"], line, p["driver"],
                     p["header"] or "built-in", ",".join(p["classes"]) or "-", accepting])
    setups = [{"name": s.name, "form": s.form, "length": s.length, "width": s.width}
              for s in config.setups.values()]
    lines = table(rows, "")
    if only is None:
        lines.append("Setups: " + "  ".join(
            f"{s['name']} ({s['form']} {s['length']}x{s['width']})" for s in setups))
        if config.default_printer:
            lines.append(f"Default destination: {config.default_printer}")
    return Reply(text="\n".join(lines), data={
        "printers": printers, "setups": setups, "default": config.default_printer})


def cmd_cp(ctx: Ctx) -> Reply:
    server = ctx.server
    what, rest = _cp_sub(ctx.args)
    file = config_mod.PRINTERS_FILE
    origin = ctx.origin
    config = server.config()
    if what == "SHOW":
        return _show_printers(server, rest[0] if rest else None)
    if what == "SETUP":
        need(rest, 2, "CP SETUP setup KEY=VALUE...")
        setup = name_arg(rest[0], "setup")
        values = key_values(rest[1:])
        if setup in config.setups:
            changes: dict[str, str | None] = {k: (v or None) for k, v in values.items()}
            server.edit_config(file, lambda t: cmdfile.update_command(t, "SETUP", setup,
                                                                      changes))
        else:
            server.edit_config(file, lambda t: cmdfile.set_command(
                t, "SETUP", setup, {k: v for k, v in values.items() if v}))
        server.log(f"console: setup {setup} defined ({origin})")
        return _show_printers(server)
    need(rest, 1, f"CP {what} printer ...")
    name = name_arg(rest[0], "printer")
    known = name in config.printers
    if what != "ADD" and not known:
        raise NotFound(f"no printer {name} on this server (CP lists them)")
    if what == "ADD":
        if known:
            raise UsageError(f"printer {name} exists; use CP CHANGE")
        values = key_values(rest[1:])
        if "PORT" not in values:
            raise UsageError("CP ADD needs PORT=")
        server.edit_config(file, lambda t: cmdfile.set_command(t, "PRINTER", name, values))
        server.log(f"console: printer {name} added ({origin})")
        text = f"printer {name} added"
    elif what == "CHANGE":
        values = key_values(rest[1:])
        if not values:
            raise UsageError("usage: CP CHANGE printer KEY=VALUE...")
        changes = {k: (v or None) for k, v in values.items()}
        if changes.get("PORT", "") is None:
            raise UsageError("a printer needs a PORT")
        server.edit_config(file, lambda t: cmdfile.update_command(t, "PRINTER", name,
                                                                  changes))
        server.log(f"console: printer {name} changed: "
                   f"{' '.join(f'{k}={v}' for k, v in values.items())} ({origin})")
        text = f"printer {name} changed"
    elif what == "REMOVE":
        if server.printer_busy(name):
            raise UsageError(f"printer {name} is printing; stop it and let the job finish")
        server.edit_config(file, lambda t: cmdfile.remove_command(t, "PRINTER", name))
        server.log(f"console: printer {name} removed ({origin})")
        return Reply(text=f"printer {name} removed", data={"removed": name})
    elif what == "MOUNT":
        need(rest, 2, "CP MOUNT printer setup")
        setup = name_arg(rest[1], "setup")
        server.mount(name, setup)
        text = f"printer {name}: setup {setup} mounted; jobs that need it can start"
    elif what in ("STOP", "START"):
        stop = what == "STOP"
        if stop:
            server.stop_printer(name)
        else:
            server.start_printer(name)
        server.log(f"console: printer {name} {'stopped' if stop else 'started'} ({origin})")
        text = (f"printer {name} stopped (a job printing now finishes)" if stop
                else f"printer {name} started")
    elif what == "REJECT":
        reason = clean_text(" ".join(rest[1:]), 200) or "not accepting jobs"
        server.reject(name, reason)
        server.log(f"console: printer {name} rejects new jobs: {reason} ({origin})")
        text = f"printer {name} rejects new jobs: {reason}"
    else:  # ACCEPT
        server.accept(name)
        server.log(f"console: printer {name} accepts new jobs ({origin})")
        text = f"printer {name} accepts new jobs"
    reply = _show_printers(server, name)
    reply.text = text + "\n" + reply.text
    return reply
