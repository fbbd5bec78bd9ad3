"""The `printnet` command line: click commands only.

Each command validates its options, calls the library, and prints.  This is
the only place that turns a `PrintnetError` into a message on stderr and an
exit code (1 general, 2 bad input, 3 permission).  Heavy modules are imported
inside the commands so that start-up stays fast.

About 630 lines on purpose: one small function per command and its click
options, nothing else; the work is in the modules each command imports.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from printnet import __version__
from printnet import completion as complete
from printnet.errors import PrintnetError

if TYPE_CHECKING:
    from printnet.api import Station


class _Group(click.Group):
    """Turns PrintnetError into `printnet: <message>` and its exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PrintnetError as exc:
            fail(str(exc), exc.exit_code)
        except (click.exceptions.Exit, click.ClickException, click.Abort, BrokenPipeError):
            raise
        except Exception as exc:  # never a traceback for a user: one line (issue 16)
            internal_error(exc)


def internal_error(exc: BaseException) -> NoReturn:
    """An unexpected error: one line on stderr (PRINTNET_DEBUG=1: the traceback too)."""
    if os.environ.get("PRINTNET_DEBUG"):
        import traceback

        traceback.print_exception(exc)
    frame = exc.__traceback__
    while frame is not None and frame.tb_next is not None:
        frame = frame.tb_next
    where = (f" at {Path(frame.tb_frame.f_code.co_filename).name}:{frame.tb_lineno}"
             if frame is not None else "")
    fail(f"internal error: {exc!r}{where} (a bug: please report it; PRINTNET_DEBUG=1 "
         "shows the traceback)", 1)


def fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"printnet: {message}", err=True)
    sys.exit(code)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="printnet")
@click.option(
    "--spool", "spool", type=click.Path(path_type=Path), envvar="PRINTNET_SPOOL",
    default="spool", show_default=True, help="The spool folder (env PRINTNET_SPOOL).",
)
@click.option(
    "--etc", "etc", type=click.Path(path_type=Path), envvar="PRINTNET_ETC",
    default="etc", show_default=True, help="Configuration folder (env PRINTNET_ETC).",
)
@click.pass_context
def cli(ctx: click.Context, spool: Path, etc: Path) -> None:
    """printnet: a print-request queue on a shared disk.

    Stations queue files with `request`; print servers (`server`) on any host
    that mounts the spool take them in and print them.
    """
    ctx.obj = {"spool": spool, "etc": etc}


def _station(ctx: click.Context) -> Station:
    from printnet.api import Station, station_etc

    etc = ctx.obj["etc"]
    return Station(ctx.obj["spool"], station_etc(etc), strict=True)


# -- init ------------------------------------------------------------------------


@cli.command()
@click.option("--owner", metavar="USER",
              help="Service account the servers run as (root only; default: you).")
@click.option("--group", metavar="GROUP",
              help="Spool group: only the service account may be a member (root only).")
@click.pass_context
def init(ctx: click.Context, owner: str | None, group: str | None) -> None:
    """Create the spool and default etc/ files (idempotent; never overwrites).

    Sets the modes (and with --owner/--group the owners) that keep users apart
    on a shared spool (docs/SECURITY.md); running it again repairs them.
    """
    from printnet import config, security
    from printnet.spool.layout import Spool

    spool_dir, etc = ctx.obj["spool"], ctx.obj["etc"]
    uid, gid = security.account_ids(owner, group)
    spool, created = Spool.init(spool_dir, owner=uid, group=gid)
    created += config.write_defaults(etc)
    cfg = config.load(etc)
    for printer in cfg.printers.values():
        out = config.port_file(cfg, printer)  # file:// and sim:// printers write here
        if out is not None and not out.parent.exists():
            out.parent.mkdir(parents=True)
            created.append(out.parent)
        if out is not None and (uid is not None or gid is not None):
            security.give(out.parent, uid, gid)
    if uid is not None or gid is not None:
        security.give(etc, uid, gid, recursive=True)
    # Stations may not read etc/*.cmd on a multi-user spool: publish what they need
    # (printers, classes, setups, DEFAULT) before any server has run.
    from printnet.spool.site import publish_site

    site = publish_site(spool, cfg)
    if uid is not None or gid is not None:
        security.give(site, uid, gid)
    for path in created:
        click.echo(f"created {path}")
    if not created:
        click.echo(f"{spool_dir} and {etc} are already set up")
    for problem in security.check_spool(spool, euid=uid if uid is not None else os.geteuid()):
        click.echo(f"{'unsafe' if problem.fatal else 'warning'}: {problem}", err=True)


# -- request ---------------------------------------------------------------------


@cli.command()
@click.option("-P", "--printer", shell_complete=complete.destinations,
              help="Printer or class (default: $PRINTER, ..., the site's DEFAULT).")
@click.option(
    "-p", "--priority", default="standard", show_default=True,
    help="high | standard | overnight (overnight prints in the NIGHT window).",
)
@click.option("-n", "--copies", type=int, default=1, show_default=True, help="Copies (1-999).")
@click.option("-t", "--title", default="", help="Title for header page and page headings.")
@click.option("-s", "--setup", shell_complete=complete.setups,
              help="Setup (form) the job needs, e.g. CHECKS.")
@click.option("--no-header", is_flag=True, help="No header page.")
@click.option("--raw", is_flag=True, help="Send the bytes untouched (no pagination).")
@click.option("--hold", is_flag=True, help="Queue the job held; `release` it later.")
@click.option("--each", is_flag=True, help="One job per file (bulk producers).")
@click.option("--encoding", metavar="NAME",
              help="The text's encoding: utf-8, latin-1, cp1252, cp437, utf-16... "
                   "(default: utf-8 if it decodes, else cp1252).")
@click.option(
    "--password-env", metavar="VAR",
    help="Read the queue password from this environment variable.",
)
@click.option("--ask-password", is_flag=True, help="Prompt for the queue password.")
@click.option("--max-stdin", metavar="SIZE",
              help="Most bytes read from standard input, e.g. 1G; 0: no limit "
                   "(default 256M; env PRINTNET_MAX_STDIN).")
@click.option("--wait", is_flag=True,
              help="Return when the jobs have ended; exit 0 completed, 4 canceled, "
                   "5 aborted, 6 rejected.")
@click.option("--ref", is_flag=True,
              help="Name the files instead of copying them; the server reads each at print "
                   "time only if you still may, unchanged (docs/SECURITY.md).")
@click.argument("files", nargs=-1, required=True, type=click.Path(readable=False))
@click.pass_context
def request(
    ctx: click.Context, printer: str | None, priority: str, copies: int, title: str,
    setup: str | None, no_header: bool, raw: bool, hold: bool, each: bool,
    encoding: str | None, password_env: str | None, ask_password: bool,
    max_stdin: str | None, wait: bool, ref: bool,
    files: tuple[str, ...],
) -> None:
    """Queue FILES as one print job (like lpr; `-` reads standard input).

    Prints each job id on its own line.  The destination without -P: $PRINTER,
    $LPDEST, ~/.config/printnet/default, then the site's DEFAULT
    (docs/COMPAT.md).  With --wait, a progress bar on a terminal until the
    jobs have printed; large copies show their progress on a terminal.
    """
    from printnet.launch import run_request  # shared with the console script's fast path

    password = None
    if ask_password and not password_env:
        password = click.prompt("Queue password", hide_input=True, err=True)
    code = run_request(ctx.obj["spool"], ctx.obj["etc"], files, printer=printer,
                       priority=priority, copies=copies, title=title, setup=setup,
                       header=not no_header, raw=raw, hold=hold, each=each,
                       password_env=password_env, password=password, max_stdin=max_stdin,
                       encoding=encoding,
                       wait=wait, ref=ref)
    if code:
        sys.exit(code)



# -- capture (the virtual printer) ------------------------------------------------


@cli.command()
@click.option("--device", required=True, type=click.Path(path_type=Path),
              help="Where to link the virtual serial device (must not exist).")
@click.option("-P", "--printer", help="Printer or class (default: the configured DEFAULT).")
@click.option("-p", "--priority", default="standard", show_default=True,
              help="high | standard | overnight.")
@click.option("-n", "--copies", type=int, default=1, show_default=True, help="Copies (1-999).")
@click.option("-t", "--title", default="", help="Title of every job (default: DEVICE #N).")
@click.option("-s", "--setup", help="Setup (form) the jobs need.")
@click.option("--no-header", is_flag=True, help="No header pages.")
@click.option("--hold", is_flag=True, help="Queue the jobs held.")
@click.option("--text", is_flag=True,
              help="Submit as text (paginated; dumb printers' drivers strip control codes) "
                   "instead of raw.")
@click.option("--encoding", metavar="NAME", help="With --text: the text's encoding.")
@click.option("--idle", type=float, metavar="SECONDS",
              help="End a job after SECONDS without bytes (default: only when the writer "
                   "closes).")
@click.option("--formfeed", default="off", show_default=True, metavar="RULE",
              help="off | each (every form feed ends a job) | SECONDS (a form feed followed "
                   "by SECONDS without bytes ends a job).")
@click.option("--password-env", metavar="VAR",
              help="Read the queue password from this environment variable.")
@click.pass_context
def capture(ctx: click.Context, device: Path, printer: str | None, priority: str, copies: int,
            title: str, setup: str | None, no_header: bool, hold: bool, text: bool,
            encoding: str | None, idle: float | None, formfeed: str,
            password_env: str | None) -> None:
    """A virtual printer: link DEVICE to a pseudo-terminal and queue what programs
    write there, one job per writer (docs/CAPTURE.md).

    A job ends when the writer closes the device, after --idle SECONDS without
    bytes, or on the --formfeed rule.  Jobs are raw (the bytes as written) unless
    --text; each job id is printed.  Runs until SIGINT/SIGTERM; the link is removed.
    """
    from printnet.capture import CaptureOptions, run_capture
    from printnet.errors import UsageError
    from printnet.splitter import FormFeedRule

    try:
        rule = FormFeedRule.parse(formfeed)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if idle is not None and not 0 < idle <= 86400:
        raise UsageError(f"--idle must be 0 < SECONDS <= 86400, not {idle:g}")
    if encoding and not text:
        raise UsageError("--encoding applies to --text captures (raw jobs are bytes)")
    password = None
    if password_env:
        password = os.environ.get(password_env)
        if password is None:
            raise UsageError(f"environment variable {password_env} is not set")
    run_capture(ctx.obj["spool"], ctx.obj["etc"], CaptureOptions(
        device=device, idle=idle, formfeed=rule, title=title, password=password,
        request={"printer": printer, "priority": priority, "copies": copies, "setup": setup,
                 "header": not no_header, "raw": not text, "hold": hold,
                 "encoding": encoding}))


# -- status ----------------------------------------------------------------------


@cli.command()
@click.option("-P", "--printer", shell_complete=complete.destinations,
              help="Only this printer or class.")
@click.option("-u", "--user", help="Only this user's jobs.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object {jobs, printers}.")
@click.option("--watch", is_flag=True,
              help="A live view on a terminal, redrawn in place (Ctrl-C quits).")
@click.option("--interval", type=click.FloatRange(min=0.1), default=1.0, show_default=True,
              help="Seconds between redraws of --watch.")
@click.argument("jobs", nargs=-1, shell_complete=complete.jobs)
@click.pass_context
def status(
    ctx: click.Context, printer: str | None, user: str | None, as_json: bool, watch: bool,
    interval: float, jobs: tuple[str, ...],
) -> None:
    """Show the queues: printers, then jobs in the order they will print.

    --watch redraws printers (the current job with a bar of pages or bytes)
    and the queue until Ctrl-C; it needs a terminal (scripts poll --json).
    """
    from printnet.launch import print_status  # shared with the console script's fast path

    if watch:
        if as_json or jobs:
            fail("--watch shows the whole view: no --json, no JOBS", 2)
        if not sys.stdout.isatty():
            fail("--watch needs a terminal; a script runs `printnet status --json` "
                 "as often as it likes", 2)
        from printnet.launch import check_printer
        from printnet.model import normalize_name
        from printnet.watch import watch as live

        station = _station(ctx)
        check_printer(station, printer)
        sys.exit(live(station, printer=normalize_name(printer) if printer else None,
                      user=user, interval=interval))

    print_status(ctx.obj["spool"], ctx.obj["etc"], printer=printer, user=user, jobs=jobs,
                 as_json=as_json)


# -- cancel / hold / release -------------------------------------------------------


def _control_command(action_name: str, doc: str) -> Callable[..., None]:
    @click.option("--wait", type=float, default=5.0, show_default=True,
                  help="Seconds to wait for a server to apply it.")
    @click.argument("jobs", nargs=-1, required=True, shell_complete=complete.jobs)
    @click.pass_context
    def command(ctx: click.Context, wait: float, jobs: tuple[str, ...]) -> None:
        from printnet.model import ControlAction

        outcomes = _station(ctx).control(ControlAction(action_name), list(jobs), wait=wait)
        failed = False
        for job_id, outcome in outcomes.items():
            if outcome == "queued":
                click.echo(f"{job_id}: {action_name} queued (no server has applied it yet)")
            elif outcome == "applied":
                click.echo(f"{job_id}: {action_name} applied")
            else:
                failed = True
                click.echo(f"{job_id}: {action_name} refused: {outcome}", err=True)
        if failed:
            sys.exit(1)

    command.__doc__ = doc
    return command


cli.command("cancel")(_control_command(
    "cancel", "Cancel jobs (your own; operators any). JOB is an id or a unique suffix."))
cli.command("hold")(_control_command("hold", "Hold jobs so they do not print until released."))
cli.command("release")(_control_command("release", "Release held jobs."))


# -- compat: lp, lpr, lpq, lprm, lpstat, cancel ------------------------------------


@cli.group()
def compat() -> None:
    """The lp/lpr commands: links named lp, lpr, lpq, lprm, lpstat and cancel to
    `printnet` make it behave like them (docs/COMPAT.md).  They take the spool
    and configuration from PRINTNET_SPOOL and PRINTNET_ETC."""


@compat.command("install")
@click.option("--target", type=click.Path(path_type=Path, dir_okay=False),
              help="The printnet executable to link to (default: this one, else $PATH's).")
@click.argument("folder", type=click.Path(path_type=Path, file_okay=False))
def compat_install(target: Path | None, folder: Path) -> None:
    """Make the links in FOLDER (e.g. ~/bin, /usr/local/bin).  Refuses, making
    none, if one of the names is taken by anything but a link of its own."""
    from printnet import compat as compat_mod

    for link, what in compat_mod.install(folder, (target or compat_mod.target()).absolute()):
        click.echo(f"{link} {what}")


@compat.command("remove")
@click.argument("folder", type=click.Path(path_type=Path, file_okay=False))
def compat_remove(folder: Path) -> None:
    """Remove the links from FOLDER; files and others' links of those names stay."""
    from printnet import compat as compat_mod

    for link, what in compat_mod.remove(folder):
        click.echo(f"{link} {what}")


# -- completion ----------------------------------------------------------------------


@cli.command()
@click.argument("shell", type=click.Choice(complete.SHELLS))
def completion(shell: str) -> None:
    """Print the shell completion script for SHELL (printer, setup and job names
    complete from the spool).

    \b
    bash:  eval "$(printnet completion bash)"      (in ~/.bashrc)
    zsh:   eval "$(printnet completion zsh)"       (in ~/.zshrc)
    fish:  printnet completion fish | source       (in ~/.config/fish/config.fish)
    """
    click.echo(complete.script(cli, shell))


# -- spool maintenance -------------------------------------------------------------


@cli.group()
def spool() -> None:
    """Maintenance of the shared disk (rebuild the master file, purge leftovers)."""


@spool.command()
@click.option("--lease", type=float, default=30.0, show_default=True,
              help="Lease of the master lock while rebuilding (seconds).")
@click.pass_context
def rebuild(ctx: click.Context, lease: float) -> None:
    """Rebuild the master file from the request files (after loss or corruption)."""
    from printnet.spool.maintenance import rebuild_master

    count = rebuild_master(ctx.obj["spool"], lease=lease)
    click.echo(f"master file rebuilt: {count} live jobs")


@spool.command()
@click.option("--days", type=float, default=7.0, show_default=True,
              help="Remove done/ and rejected/ records older than this (forwarded ids, "
                   "forwarded/: 30 days, or this if longer).")
@click.option("--temp-hours", type=float, default=24.0, show_default=True,
              help="Remove crash leftovers (temp files, orphan data) older than this.")
@click.pass_context
def purge(ctx: click.Context, days: float, temp_hours: float) -> None:
    """Purge old records and crash leftovers."""
    from printnet.spool.maintenance import purge as do_purge

    counts = do_purge(ctx.obj["spool"], days=days, temp_hours=temp_hours)
    click.echo(", ".join(f"{n} {what}" for what, n in counts.items()))


# -- report ----------------------------------------------------------------------


@cli.command()
@click.option("--since", metavar="DATE",
              help="Only jobs finished since DATE (2026-03-01: local midnight; or an ISO time).")
@click.option("--by", type=click.Choice(["user", "printer"]), help="Totals per user or printer.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object {rows, total, ...}.")
@click.pass_context
def report(ctx: click.Context, since: str | None, by: str | None, as_json: bool) -> None:
    """Total the accounting log: jobs, pages, sheets, copies and bytes printed."""
    import json
    from datetime import datetime

    from printnet import report as report_mod
    from printnet.spool.layout import Spool
    from printnet.spool.records import read_accounting

    spool = Spool.open(ctx.obj["spool"])
    lines, _, _ = read_accounting(spool.accounting, 0, limit=1 << 62)
    start = report_mod.parse_since(since, datetime.now().astimezone()) if since else None
    result = report_mod.totals(lines, since=start, by=by)
    if as_json:
        sys.stdout.write(json.dumps(result.to_json(), ensure_ascii=False) + "\n")
    else:
        sys.stdout.write("".join(line + "\n" for line in result.lines()))


# -- server ----------------------------------------------------------------------


@cli.command()
@click.option("--name", help="Server name (default: SERVER NAME= in server.cmd, else the host).")
@click.option("--drain", is_flag=True,
              help="Exit once nothing is left that this server can print.")
@click.option("--no-console", is_flag=True,
              help="No operator console on this terminal (`printnet console` still works).")
@click.pass_context
def server(ctx: click.Context, name: str | None, drain: bool, no_console: bool) -> None:
    """Run a print server: take requests in, schedule and print them.

    Reads etc/server.cmd and etc/printers.cmd.  --spool, when given, replaces
    the SPOOL lines.  Stops on SIGTERM/SIGINT after finishing or requeueing the
    current jobs.  On a terminal it offers the operator console (CS CP CH I P F
    Q; Ctrl-C there abandons the line, Q stops the server); `printnet console`
    reaches it from elsewhere on this host.
    """
    from dataclasses import replace

    from printnet import config as config_mod
    from printnet.server import Server, install_signal_handlers

    # --spool belongs to the group: its source is recorded in the parent context.
    source = (ctx.parent or ctx).get_parameter_source("spool")
    spool_given = source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT")

    def load() -> config_mod.Config:
        # Also how the running server reloads a changed etc/*.cmd (same overrides).
        cfg = config_mod.load(ctx.obj["etc"], server_name=name)
        if spool_given:
            cfg = replace(cfg, server=replace(cfg.server, spools=(ctx.obj["spool"].resolve(),)))
            cfg.validate()
        return cfg

    srv = Server(load(), drain=drain, loader=load)
    # The console reaches the server only through what an operator may ask of it.
    from printnet.console import start_control
    from printnet.operated import OperatedServer

    operated = OperatedServer(srv)
    srv.front_door = lambda: start_control(operated)  # the console's control socket
    install_signal_handlers(srv)
    if not no_console and _on_own_terminal():
        from printnet.console import serve_with_console

        serve_with_console(operated, run=srv.run,  # the operator console on this terminal
                           restore_signals=lambda: install_signal_handlers(srv))
    else:
        if not no_console and _on_terminal_in_background():
            click.echo("printnet: started in the background of a terminal: no console here "
                       "(run it in the foreground for one, or use `printnet console`)",
                       err=True)
        srv.run()


@cli.command()
@click.option("--ipp", "ipp", default="127.0.0.1:8631", show_default=True, metavar="HOST:PORT",
              help="Where IPP and the web page listen.")
@click.option("--lpd", "lpd", default=None, metavar="HOST:PORT",
              help="Where LPD listens (default: off; 515 when root and given as HOST).")
@click.option("--set-password", "set_password", metavar="USER",
              help="Add or change USER in etc/gateway.users (AUTH BASIC), then exit.")
@click.pass_context
def gateway(ctx: click.Context, ipp: str, lpd: str | None, set_password: str | None) -> None:
    """Run the front doors: IPP (ipp://HOST:PORT/ipp/print/NAME), the web page, LPD.

    Every job becomes an ordinary request in new/, submitted on the user's
    behalf; etc/gateway.cmd says how users are known (AUTH BASIC|TRUST|NONE;
    docs/GATEWAY.md).  Run it as the service account.
    """
    from printnet.gateway import app, settings

    etc: Path = ctx.obj["etc"]
    if set_password:
        from printnet.passwords import hash_password

        password = click.prompt(f"password for {set_password}", hide_input=True,
                                confirmation_prompt=True)
        cfg = settings.load(etc)
        path = cfg.users_file or etc / settings.USERS_FILE
        settings.set_password(path, set_password, hash_password(password))
        click.echo(f"{path}: {set_password} set")
        return
    spool: Path = ctx.obj["spool"]
    source = (ctx.parent or ctx).get_parameter_source("spool")
    if (source is None or source.name not in ("COMMANDLINE", "ENVIRONMENT")) and (
            etc / "server.cmd").exists():
        from printnet import config as config_mod

        spools = config_mod.load(etc).server.spools
        spool = spools[0] if spools else spool
    lpd_at = None
    if lpd is not None:
        lpd_at = app.Listen.parse(lpd, 515 if os.geteuid() == 0 else 5515)
    app.run(spool, etc, app.Listen.parse(ipp, 8631), lpd_at)


def _on_terminal_in_background() -> bool:
    """Standard input is a terminal whose foreground job is not us (`server &`)."""
    try:
        return sys.stdin.isatty() and os.tcgetpgrp(sys.stdin.fileno()) != os.getpgrp()
    except (OSError, ValueError):
        return False


def _on_own_terminal() -> bool:
    """Standard input and output are a terminal and we are its foreground job."""
    try:
        return (sys.stdin.isatty() and sys.stdout.isatty()
                and os.tcgetpgrp(sys.stdin.fileno()) == os.getpgrp())
    except (OSError, ValueError):
        return False


@cli.command(context_settings={"ignore_unknown_options": True,
                               "allow_interspersed_args": False})
@click.option("--server", "server_name", metavar="NAME",
              help="The server, any case (default: the only one running on this host).")
@click.option("--password-env", metavar="VAR",
              help="Read the console password from this environment variable.")
@click.option("--new-password-env", metavar="VAR",
              help="For CS PASSWORD: read the new password from this variable.")
@click.option("-y", "--yes", is_flag=True, help="Answer yes to confirmations (F BREAK...).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def console(ctx: click.Context, server_name: str | None, password_env: str | None,
            new_password_env: str | None, yes: bool, as_json: bool,
            command: tuple[str, ...]) -> None:
    """Run one console COMMAND on a running print server of this host, or, without
    COMMAND, open the interactive console attached to it.

    Commands: CS CP CH I P F Q, the job verbs HOLD RELEASE CANCEL MOVE TOP
    REPRINT, and HELP (`printnet console HELP CP`).  Output is the same as at
    the server's terminal; --json gives it machine-readable.  Exit status: 0
    done, 1 refused or failed, 2 bad command, 3 password wrong or missing.
    """
    from printnet.console import attach, pick_server, remote_session

    def secret(var: str | None) -> str | None:
        if not var:
            return None
        value = os.environ.get(var)
        if value is None:
            fail(f"environment variable {var} is not set", 2)
        return value

    name = pick_server(server_name, ctx.obj["etc"])
    interactive = sys.stdin.isatty()
    session = remote_session(name, interactive=interactive, password=secret(password_env),
                             new_password=secret(new_password_env), yes=yes)
    if not command:
        if not interactive:
            fail("no COMMAND given and standard input is not a terminal", 2)
        attach(name, session)
        return
    argv = [*command, "--json"] if as_json else list(command)
    code = session.run(argv)
    if code:
        sys.exit(code)


def _keys_group() -> None:
    from printnet.keys_cli import keys  # sealing keys (SEAL=ON)

    cli.add_command(keys)


_keys_group()


def main() -> None:
    cli(prog_name="printnet")
