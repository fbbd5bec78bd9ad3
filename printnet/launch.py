"""The `printnet` console script: a fast path for what stations run in loops.

Scripts call `printnet request` and `printnet status` once per job or once a
second; for them, importing click and building the whole command tree cost as
much as Python's own start-up.  `main` handles `--version`, `request` and
`status` itself when their arguments have the plain forms below, without
importing click; anything else (`--help`, another command, an option it does
not know, a malformed or repeated option, `--ask-password`) goes to the click
application in `printnet.cli`, which also prints every usage error.  Both
paths run the same functions (`run_request`, `print_status`), and errors still
become messages and exit codes in `printnet.cli` (`fail`), so what a user sees
is the same either way.

Plain forms: global ``--spool DIR``/``--spool=DIR`` and ``--etc DIR``/
``--etc=DIR`` before the command; options as ``-X VALUE``, ``--long VALUE``
or ``--long=VALUE`` anywhere; ``--`` ends the options; a value never starts
with ``-``.
"""

from __future__ import annotations

import os
import sys

from printnet import __version__
from printnet.errors import PrintnetError, UsageError

# Not `typing.TYPE_CHECKING`: importing typing (or pathlib) costs more than this
# whole module; mypy knows the name either way.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from pathlib import Path
    from typing import Any

    from printnet.api import ListedJob, Station

_REQUEST_VALUES = {
    "-P": "printer", "--printer": "printer", "-p": "priority", "--priority": "priority",
    "-n": "copies", "--copies": "copies", "-t": "title", "--title": "title",
    "-s": "setup", "--setup": "setup", "--password-env": "password_env",
    "--encoding": "encoding",
    "--max-stdin": "max_stdin",
}
_REQUEST_FLAGS = {"--no-header": "no_header", "--raw": "raw", "--hold": "hold",
                  "--each": "each"}
_STATUS_VALUES = {"-P": "printer", "--printer": "printer", "-u": "user", "--user": "user"}
_STATUS_FLAGS = {"--json": "as_json"}
# = printnet.compat.NAMES, repeated so that a plain `printnet` imports nothing more.
_COMPAT_NAMES = frozenset({"lp", "lpr", "lpq", "lprm", "lpstat", "cancel"})


def main() -> None:
    """Entry point of the `printnet` console script (and of lp, lpr, ... through
    symlinks: `printnet.compat`)."""
    called = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    if called in _COMPAT_NAMES:
        from printnet.compat import run as compat_run

        sys.exit(compat_run(called, sys.argv[1:]))
    run = _fast(sys.argv[1:])
    if run is None:
        from printnet.cli import main as click_main

        click_main()
        return
    try:
        code = run()
    except PrintnetError as exc:
        from printnet.cli import fail

        fail(str(exc), exc.exit_code)
    except (EOFError, KeyboardInterrupt):  # as click reports them
        sys.stderr.write("\nAborted!\n")
        sys.exit(1)
    except BrokenPipeError:  # `printnet status | head`: as click, quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(1)
    except Exception as exc:  # never a traceback for a user: one line (issue 16)
        from printnet.cli import internal_error

        internal_error(exc)
    if isinstance(code, int) and code:
        sys.exit(code)


def _fast(argv: list[str]) -> Callable[[], object] | None:
    """The command to run without click, or None when click must parse `argv`."""
    if argv == ["--version"]:
        return _version
    spool = etc = None
    i = 0
    while i < len(argv) and argv[i].startswith("--") and argv[i] != "--":
        name, eq, value = argv[i].partition("=")
        if name not in ("--spool", "--etc"):
            return None
        if not eq:
            if i + 1 >= len(argv) or argv[i + 1].startswith("-"):
                return None
            value = argv[i + 1]
            i += 1
        if not value or (spool if name == "--spool" else etc) is not None:
            return None
        if name == "--spool":
            spool = value
        else:
            etc = value
        i += 1
    if i >= len(argv):
        return None
    command, rest = argv[i], argv[i + 1:]
    from pathlib import Path

    spool_dir = Path(spool or os.environ.get("PRINTNET_SPOOL") or "spool")
    etc_dir = Path(etc or os.environ.get("PRINTNET_ETC") or "etc")
    if command == "request":
        parsed = _options(rest, _REQUEST_VALUES, _REQUEST_FLAGS)
        if parsed is None:
            return None
        opts, files = parsed
        if not files:
            return None  # click says what is missing
        copies = 1
        if "copies" in opts:
            try:
                copies = int(opts["copies"])
            except ValueError:
                return None  # click says why
        return lambda: run_request(
            spool_dir, etc_dir, files, printer=opts.get("printer"),
            priority=opts.get("priority", "standard"), copies=copies,
            title=opts.get("title", ""), setup=opts.get("setup"),
            header=not opts.get("no_header"), raw=bool(opts.get("raw")),
            hold=bool(opts.get("hold")), each=bool(opts.get("each")),
            password_env=opts.get("password_env"), encoding=opts.get("encoding"),
            max_stdin=opts.get("max_stdin"))
    if command == "status":
        parsed = _options(rest, _STATUS_VALUES, _STATUS_FLAGS)
        if parsed is None:
            return None
        opts, jobs = parsed
        return lambda: print_status(spool_dir, etc_dir, printer=opts.get("printer"),
                                    user=opts.get("user"), jobs=jobs,
                                    as_json=bool(opts.get("as_json")))
    return None


def _version() -> None:
    sys.stdout.write(f"printnet, version {__version__}\n")  # as click's version_option


def _options(args: list[str], values: dict[str, str], flags: dict[str, str],
             ) -> tuple[dict[str, Any], list[str]] | None:
    """(options, arguments) in the plain forms, or None for anything else."""
    opts: dict[str, Any] = {}
    positional: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            positional += args[i:]
            break
        if arg == "-" or not arg.startswith("-"):
            positional.append(arg)
            continue
        name, eq, value = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        given: str | bool
        if name in flags and not eq:
            key, given = flags[name], True
        elif name in values:
            if not eq:
                if i >= len(args):
                    return None
                value = args[i]
                i += 1
            if value.startswith("-"):
                return None
            key, given = values[name], value
        else:
            return None  # --help, --ask-password, -Pfoo, unknown: click decides
        if key in opts:
            return None
        opts[key] = given
    return opts, positional


# -- the commands both paths run ---------------------------------------------------------


def _station(spool: Path, etc: Path) -> Station:
    from printnet.api import Station, station_etc

    return Station(spool, station_etc(etc), strict=True)


def _ask_password(printer: str) -> str:
    import getpass

    return getpass.getpass(f"Queue password for {printer}: ")


def ask_password_on_terminal(files: Sequence[str]) -> Callable[[str], str] | None:
    """A printer with a queue password: ask for it on a terminal (scripts use
    --password-env; without it the server rejects the request, saying why)."""
    return _ask_password if "-" not in files and sys.stdin.isatty() else None


def run_request(spool: Path, etc: Path, files: Sequence[str], *, printer: str | None,
                priority: str, copies: int, title: str, setup: str | None,
                header: bool, raw: bool, hold: bool, each: bool,
                password_env: str | None = None, password: str | None = None,
                encoding: str | None = None, max_stdin: str | None = None,
                wait: bool = False, ref: bool = False) -> int:
    """`printnet request`: queue the files, print each job id on its own line; with
    `wait`, wait for them to end.  Returns the exit status (`printnet.watch`)."""
    if password_env:
        password = os.environ.get(password_env)
        if password is None:
            raise UsageError(f"environment variable {password_env} is not set")
    if list(files).count("-") > 1:
        raise UsageError("standard input (-) can be named only once")
    limit_text = max_stdin or os.environ.get("PRINTNET_MAX_STDIN")
    limit = None
    if limit_text:
        from printnet.spool.submit import parse_size

        limit = parse_size(limit_text)
    ask = ask_password_on_terminal(files)
    progress = None
    if sys.stderr.isatty():
        from printnet.watch import CopyProgress

        progress = CopyProgress()
    # Every file submit makes has its mode set exactly: a umask that clears none of
    # those bits spares it setting them again, one metadata operation per file.
    # Restored after: an in-process caller (compat lp, the tests' CliRunner) keeps
    # its own umask for the files it writes next.
    station = _station(spool, etc)
    old_umask = os.umask(0o007)
    try:
        requests = station.submit(
            list(files), each=each, stdin=sys.stdin.buffer if "-" in files else None,
            password=password, ask=ask, printer=printer, priority=priority, copies=copies,
            title=title, setup=setup, header=header, raw=raw, hold=hold, encoding=encoding,
            max_stdin=limit, ref=ref,
            progress=progress,
        )
    finally:
        os.umask(old_umask)
        if progress is not None:
            progress.finish()
    sys.stdout.write("".join(f"{req.id}\n" for req in requests))
    sys.stdout.flush()
    if not wait:
        return 0
    from printnet.watch import wait_jobs

    return wait_jobs(station, [r.id for r in requests], show=sys.stderr.isatty())


def print_status(spool: Path, etc: Path, *, printer: str | None, user: str | None,
                 jobs: Sequence[str], as_json: bool) -> None:
    """`printnet status`: printers, then jobs in the order they will print."""
    station = _station(spool, etc)
    write = sys.stdout.write
    check_printer(station, printer)
    lines: Iterable[ListedJob]
    if as_json or jobs:
        view = station.status(printer=printer, user=user, jobs=jobs)
        if as_json:
            import json

            write(json.dumps(view.to_json(), ensure_ascii=False) + "\n")
            return
        printers, lines = view.printers, (
            (j["position"] or "-", j["id"], j["user"], j["printer"], j["priority"], j["state"],
             j["submitted"], j["title"], j.get("note") or "") for j in view.jobs)
    else:
        # The fast listing: the master file's rows as text, never decoded into jobs.
        printers, lines = station.listing(printer=printer, user=user)
    for p in printers:
        reasons = "; ".join(p.get("reasons") or [])
        if p.get("accepting") is False:  # the operator's CP REJECT reason
            rejecting = f"rejecting new jobs: {p.get('reject_reason') or 'not accepting'}"
            reasons = f"{reasons}; {rejecting}" if reasons else rejecting
        # The state already says "printing"; a job under another state (offline,
        # unknown) is named as such.
        job = "" if not p.get("job") else (
            f" {p['job']}" if p.get("state") == "printing" else f" (job {p['job']})")
        write(f"printer {p['name']}: {p['state']}{job}, setup {p.get('setup')}"
              f"{' (' + reasons + ')' if reasons else ''} [server {p.get('server')}]\n")
    out = _job_lines(lines)
    if not out:
        write("no jobs\n")
        return
    write(f"{'POS':>4} {'ID':18} {'USER':10} {'PRINTER':10} {'PRIORITY':9} "
          f"{'STATE':9} {'SUBMITTED':19} TITLE / NOTE\n")
    write("".join(out))


def check_printer(station: Station, printer: str | None) -> None:
    """A printer named to `status` must be known (UsageError listing those that are)."""
    if printer is None:
        return
    from printnet.model import normalize_name

    dests = station.destinations()
    if normalize_name(printer) not in dests.known:
        raise dests.unknown(normalize_name(printer))


# POS ID USER[:10] PRINTER[:10] PRIORITY STATE SUBMITTED[:19] TITLE[:40] [NOTE]; %-style
# because it formats 100,000 lines twice as fast as the same f-string.
_JOB_LINE = "%4s %-18s %-10.10s %-10.10s %-9s %-9s %-19.19s %.40s%s\n"


def _job_lines(jobs: Iterable[ListedJob]) -> list[str]:
    line = _JOB_LINE
    return [line % (pos, job_id, owner, dest, priority, state, submitted, title,
                    f" [{note}]" if note else "")
            for pos, job_id, owner, dest, priority, state, submitted, title, note in jobs]
