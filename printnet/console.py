"""The operator console: the print server's control panel (CS, CP, CH, I, P, F, Q).

Owns the command table, the parsing of console lines (unambiguous
abbreviations of commands and subcommands), the command implementations as
functions of a running `Server`, their output (text for people, `--json` data
for programs: every command has both), the console password gate, and the
interactive console (line editing with readline) used both at the server's
terminal and by `printnet console` attached to a running server.

Commands (`HELP` prints the same)::

    CS  configure server     name, SPOOL lines, console password, NIGHT, SCAN, LEASE
    CP  configure printer    add/change/remove printers, mount a setup, stop/start,
                             accept/reject with a reason users see
    CH  check queues         each printer's state and its jobs (notes, progress)
    I   server info          version, uptime, shared disks, printers, jobs printed
    P   print a file         queue a file as the operator
    F   file server          shared disks' health, locks, break a stale lock,
                             purge, rebuild the master file
    Q   quit                 stop the server (current jobs finish or are requeued)
    HOLD RELEASE CANCEL MOVE TOP REPRINT   operator job verbs (any job)

A word matches a command when it is its code or name, or the start of exactly
one command's code or name (`INF` is INFO, `CA` is CANCEL; `C` is ambiguous).
Subcommands abbreviate the same way.

Where things run.  A request is parsed and its password checked on the
caller's thread (the terminal, or a control-socket connection); commands that
read or change the server's state run on the server thread through
`Server.call`, between cycles, so they never race the cycle.  P, REPRINT and Q
only publish requests or set a flag, and run on the caller's thread.

Configuration edits (CS, CP) go through `printnet.config.edit` (atomic,
comment-keeping, validated as a whole: an invalid change is refused with its
reason and the file stays byte-identical), then `Server.apply_config`; if the
server cannot apply a valid file (a shared disk that cannot be served), the
file is put back.  Settings given on the command line (`--spool`, `--name`)
stay in force over the file.  The server *name* is the one setting that takes
effect only at the next start: locks and status files are named after it.

Password.  Commands that change anything (everything except CH, I, HELP and
the show forms of CS, CP, F) need the console password when server.cmd has a
`PASSWORD` line.  A wrong password is answered after a delay that doubles
with each consecutive failure (1 s up to 16 s), is logged as an event, and
changes nothing.  Without a PASSWORD line no password is asked: then only the
people who can reach the console can change anything -- whoever sits at the
server's terminal, and the server's own user and root through the control
socket (`printnet.control` refuses everyone else).  The interactive console
offers to set a password at first start; a non-interactive start does not
ask.

The wire format of a console request (`printnet.control` carries it)::

    {"argv": [...], "password": str|null, "new_password": str|null,
     "confirm": bool, "cwd": str|null}

and of its reply: ``{"ok", "text", "data", "error", "code", "needs",
"question"}``.  `needs` is "password", "new_password" or "confirm" when the
client must ask its user and send the request again.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shlex
import signal
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol, TextIO, cast

from printnet import __version__, cmdfile, verbs
from printnet import config as config_mod
from printnet.control import ControlServer, Peer
from printnet.errors import (
    ConfigError,
    LockHeld,
    NotFound,
    PermissionDenied,
    PrintnetError,
    SpoolError,
    UsageError,
)
from printnet.masterfile import Job, MasterState, Op
from printnet.model import (
    MAX_TITLE,
    JobState,
    PrintRequest,
    clean_text,
    decode_request,
    normalize_name,
    request_from_json,
    valid_job_id,
    valid_name,
)
from printnet.passwords import hash_password, verify_password

if TYPE_CHECKING:
    from printnet.server import Server, SpoolService

CALL_TIMEOUT: Final = 90.0  # seconds a command may wait for the server thread
FIRST_DELAY: Final = 1.0  # seconds before answering the first wrong password
MAX_DELAY: Final = 16.0
MAX_ARGS: Final = 256
MAX_ARG: Final = 4096
REPRINT_MAX: Final = 256 * 1024 * 1024  # bytes a console reprint reads into memory
NOTE_MOVED: Final = "moved by the operator"

MENU: Final = (
    "CS - Configure server   CP - Configure printer   CH - Check queues\n"
    "I  - Server info        P  - Print a file        F  - File server commands\n"
    "Q  - Quit               HOLD RELEASE CANCEL MOVE TOP REPRINT - job verbs\n"
    "HELP [command] - how to use a command; add --json for machine-readable output"
)


# ---------------------------------------------------------------------------
# Requests and replies


@dataclass
class Request:
    """One console command as a client sent it."""

    argv: list[str]
    password: str | None = None
    new_password: str | None = None
    confirm: bool = False
    cwd: str | None = None
    origin: str = "the server terminal"

    @classmethod
    def from_json(cls, obj: dict[str, Any], origin: str) -> Request:
        argv = obj.get("argv")
        if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
            raise UsageError("argv must be a list of strings")
        if len(argv) > MAX_ARGS or any(len(a) > MAX_ARG for a in argv):
            raise UsageError("command line too long")
        cwd = obj.get("cwd")
        return cls(
            argv=list(argv),
            password=_opt_str(obj.get("password")),
            new_password=_opt_str(obj.get("new_password")),
            confirm=obj.get("confirm") is True,
            cwd=cwd if isinstance(cwd, str) and os.path.isabs(cwd) else None,
            origin=origin,
        )


def _opt_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


@dataclass
class Reply:
    """What a command answers: text for people, data for programs."""

    ok: bool = True
    text: str = ""
    data: Any = None
    error: str = ""
    code: int = 0
    needs: str = ""  # "password" | "new_password" | "confirm": ask, then send again
    question: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "text": self.text, "data": self.data, "error": self.error,
                "code": self.code, "needs": self.needs, "question": self.question}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Reply:
        code = obj.get("code")
        return cls(
            ok=obj.get("ok") is True,
            text=str(obj.get("text") or ""),
            data=obj.get("data"),
            error=str(obj.get("error") or ""),
            code=code if isinstance(code, int) and not isinstance(code, bool) else 1,
            needs=str(obj.get("needs") or ""),
            question=str(obj.get("question") or ""),
        )

    @classmethod
    def failure(cls, error: str, code: int = 1, data: Any = None) -> Reply:
        return cls(ok=False, error=error, code=code, data=data)


# ---------------------------------------------------------------------------
# The command table and abbreviations


@dataclass(frozen=True)
class Command:
    words: tuple[str, ...]  # code first (CS), then names (INFO)
    summary: str
    usage: str
    run: Callable[[Ctx], Reply]
    changes: Callable[[list[str]], bool]  # whether these arguments change anything
    server_thread: bool = True  # run through Server.call

    @property
    def code(self) -> str:
        return self.words[0]


@dataclass
class Ctx:
    console: Console
    request: Request
    args: list[str]

    @property
    def server(self) -> Server:
        return self.console.server


def pick(word: str, choices: Iterable[str], what: str = "command") -> str:
    """The one choice `word` names: exactly, or as the start of exactly one choice."""
    up = word.upper()
    options = list(choices)
    if up in options:
        return up
    found = [c for c in options if c.startswith(up)] if up else []
    if len(found) == 1:
        return found[0]
    shown = clean_text(word, 30)
    if not found:
        raise UsageError(f"unknown {what} {shown!r} (one of: {' '.join(options)})")
    raise UsageError(f"{what} {shown!r} is ambiguous: {' or '.join(found)}")


def find_command(word: str) -> Command:
    """The command a (possibly abbreviated) word names; UsageError if none or several."""
    up = word.upper()
    for cmd in COMMANDS:
        if up in cmd.words:
            return cmd
    found = [c for c in COMMANDS if up and any(w.startswith(up) for w in c.words)]
    if len(found) == 1:
        return found[0]
    shown = clean_text(word, 30)
    if not found:
        raise UsageError(f"unknown command {shown!r} (HELP lists the commands)")
    raise UsageError(f"{shown!r} is ambiguous: {' or '.join(c.code for c in found)}")


def _sub(args: list[str], choices: Sequence[str], default: str) -> str:
    return pick(args[0], choices, "subcommand") if args else default


def _split_json(argv: list[str]) -> tuple[list[str], bool]:
    rest = [a for a in argv if a != "--json"]
    return rest, len(rest) != len(argv)


# ---------------------------------------------------------------------------
# The console of one server


class Console:
    """Executes console requests against one running server (any thread)."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self._failures = 0
        self._mutex = threading.Lock()

    # -- entry points ----------------------------------------------------------------

    def handle(self, payload: dict[str, Any], peer: Peer | None) -> dict[str, Any]:
        """A control-socket request (JSON) -> its reply (JSON)."""
        origin = f"console socket ({peer.describe()})" if peer else "the server terminal"
        try:
            req = Request.from_json(payload, origin)
        except PrintnetError as exc:
            return Reply.failure(str(exc), exc.exit_code).to_json()
        return self.execute(req).to_json()

    def execute(self, req: Request) -> Reply:
        argv, _ = _split_json(req.argv)
        try:
            if not argv:
                return Reply(text=MENU, data={"menu": MENU.splitlines(),
                                              "commands": [c.code for c in COMMANDS]})
            cmd = find_command(argv[0])
            args = argv[1:]
            if cmd.changes(args):
                denied = self._gate(req, cmd)
                if denied is not None:
                    return denied
            ctx = Ctx(self, req, args)
            if not cmd.server_thread:
                return cmd.run(ctx)
            if self.server.stopping:
                return Reply.failure(f"server {self.server.name} is stopping")
            result = self.server.call(lambda: cmd.run(ctx), timeout=CALL_TIMEOUT)
            assert isinstance(result, Reply)
            return result
        except PrintnetError as exc:
            return Reply.failure(str(exc), exc.exit_code)

    # -- the password gate -------------------------------------------------------------

    def _gate(self, req: Request, cmd: Command) -> Reply | None:
        stored = self.server.config.server.password_hash
        if stored is None:
            return None
        if req.password is None:
            return Reply(ok=False, needs="password", code=3,
                         error=f"{cmd.code} changes the server: it needs the console password")
        if verify_password(req.password, stored):
            with self._mutex:
                self._failures = 0
            return None
        with self._mutex:
            self._failures += 1
            delay = min(FIRST_DELAY * 2 ** (self._failures - 1), MAX_DELAY)
        # The delay is on the caller's thread: the server keeps printing meanwhile.
        time.sleep(delay)
        self.server.event(f"console: wrong password for {cmd.code} from {req.origin}; "
                          "nothing changed")
        return Reply.failure("wrong console password: nothing was changed", 3)


def start_control(server: Server) -> ControlServer | None:
    """Start the server's control socket (`printnet console` reaches it); None if not."""
    console = Console(server)
    channel = ControlServer(server.name, console.handle, on_event=server.event)
    try:
        if not channel.start():
            return None
    except PrintnetError as exc:
        server.event(f"console socket not started: {exc}")
        return None
    return channel


# ---------------------------------------------------------------------------
# Helpers shared by the commands


def _never(args: list[str]) -> bool:
    return False


def _always(args: list[str]) -> bool:
    return True


def _table(rows: list[list[str]], indent: str = "  ") -> list[str]:
    if not rows:
        return []
    widths = [max(len(r[i]) for r in rows if i < len(r)) for i in range(len(rows[0]))]
    out = []
    for r in rows:
        cells = [c.ljust(widths[i]) if i < len(r) - 1 else c for i, c in enumerate(r)]
        out.append((indent + " ".join(cells)).rstrip())
    return out


def _seconds(value: float | None) -> str:
    if value is None:
        return "never"
    if value < 60:
        return f"{value:.1f} s"
    value = int(value)
    h, rest = divmod(value, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d} min"


def _key_values(words: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for word in words:
        key, eq, value = word.partition("=")
        if not eq or not key or not key[0].isalpha() or not key.replace("_", "").isalnum():
            raise UsageError(f"expected KEY=VALUE, not {clean_text(word, 40)!r}")
        out[key.upper()] = value
    return out


def _need(args: list[str], count: int, usage: str) -> None:
    if len(args) < count:
        raise UsageError(f"usage: {usage}")


def _name(text: str, what: str) -> str:
    name = normalize_name(text)
    if not valid_name(name):
        raise UsageError(f"invalid {what} name {clean_text(text, 40)!r}")
    return name


def _disk(server: Server, text: str | None) -> list[SpoolService]:
    """The shared disks a command acts on: all, or one by number (F LIST) or path."""
    services = list(server.services)
    if text is None:
        return services
    if text.isdigit():
        index = int(text)
        if 1 <= index <= len(services):
            return [services[index - 1]]
        raise NotFound(f"no shared disk number {index} (F LIST shows them)")
    wanted = Path(os.path.normpath(server.config.project / text))
    for svc in services:
        if svc.root == wanted or _resolved(svc.root) == _resolved(wanted):
            return [svc]
    raise NotFound(f"{clean_text(text, 80)} is not a shared disk of this server")


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path


def _options(args: list[str], flags: dict[str, str], valued: dict[str, str]
             ) -> tuple[dict[str, str], list[str]]:
    """Tiny option parser: `flags` and `valued` map spellings to option names."""
    opts: dict[str, str] = {}
    rest: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            rest.extend(args[i + 1:])
            break
        if a in flags:
            opts[flags[a]] = "yes"
        elif a in valued:
            if i + 1 >= len(args):
                raise UsageError(f"{a} needs a value")
            opts[valued[a]] = args[i + 1]
            i += 1
        elif a.startswith("-") and a != "-" and len(a) > 1:
            raise UsageError(f"unknown option {clean_text(a, 30)}")
        else:
            rest.append(a)
        i += 1
    return opts, rest


def _number(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"{what} must be a number, not {clean_text(text, 20)!r}") from None
    if not value >= 0:
        raise UsageError(f"{what} must not be negative")
    return value


# ---------------------------------------------------------------------------
# Configuration edits (CS, CP)


def _file_text(path: Path) -> str | None:
    try:
        return path.read_text("utf-8")
    except OSError:
        return None


def _reconfigure(server: Server, filename: str, change: Callable[[str], str],
                 *, keep_spools: bool = True) -> config_mod.Config:
    """Edit etc/<filename> (validated, atomic) and apply it to the running server.

    The server's own `loader` reads the result, so options given on its command
    line (--spool, --name) stay in force.  If the running server cannot take the
    new configuration, the file is put back and the server keeps its old one.
    Server thread only.
    """
    running = server.config
    etc = running.etc
    if not keep_spools:
        try:
            on_file = config_mod.load(etc, server_name=server.name).server.spools
            used = server.loader().server.spools
        except ConfigError:
            on_file = used = ()
        if [_resolved(p) for p in on_file] != [_resolved(p) for p in used]:
            raise UsageError("this server was started with --spool, which replaces the "
                             "SPOOL lines: restart it without --spool to manage shared "
                             "disks here")
    old_text = _file_text(etc / filename)
    config_mod.edit(etc, filename, change, server_name=server.name)
    try:
        new = server.loader()
        server.apply_config(new)
    except PrintnetError as exc:
        if old_text is not None:
            with contextlib.suppress(PrintnetError):
                config_mod.edit(etc, filename, lambda _: old_text, server_name=server.name)
        with contextlib.suppress(PrintnetError):
            server.apply_config(running)
        raise PrintnetError(f"the server cannot apply it ({exc}); nothing was changed"
                            ) from None
    return new


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


def _cs_changes(args: list[str]) -> bool:
    return _sub(args, CS_SUBS, "SHOW") != "SHOW"


def _server_settings(server: Server) -> dict[str, Any]:
    cfg = server.config.server
    return {
        "name": server.name,
        "name_on_file": cfg.name,
        "etc": str(server.config.etc),
        "spools": [str(p) for p in cfg.spools],
        "password": cfg.password_hash is not None,
        "night": list(cfg.night),
        "scan": cfg.scan_interval,
        "lease": cfg.lease,
        "operators": list(cfg.operators),
    }


def _show_server(server: Server) -> Reply:
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
    sub = _sub(args, CS_SUBS, "SHOW")
    rest = args[1:]
    file = config_mod.SERVER_FILE
    if sub == "SHOW":
        return _show_server(server)
    if sub == "NAME":
        _need(rest, 1, "CS NAME name")
        name = _name(rest[0], "server")
        config_mod.edit(server.config.etc, file,
                        lambda t: cmdfile.set_single(t, "SERVER", None, {"NAME": name}),
                        server_name=server.name)
        server.event(f"console: server name set to {name} on file ({ctx.request.origin})")
        return Reply(text=f"{file}: SERVER NAME={name} saved; the server keeps the name "
                     f"{server.name} until its next start (locks and status files carry "
                     "the name)", data={"name": name, "applied": False})
    if sub == "SPOOL":
        return _cs_spool(ctx, rest)
    if sub == "PASSWORD":
        if rest and rest[0].upper() == "OFF":
            _reconfigure(server, file, lambda t: cmdfile.remove_command(t, "PASSWORD"))
            server.event(f"console: password removed ({ctx.request.origin})")
            return Reply(text="console password removed: the console asks for none",
                         data={"password": False})
        if ctx.request.new_password is None:
            return Reply(ok=False, needs="new_password", code=2,
                         error="CS PASSWORD needs the new password",
                         question="New console password")
        hashed = hash_password(ctx.request.new_password)
        _reconfigure(server, file, lambda t: cmdfile.set_single(t, "PASSWORD", hashed))
        server.event(f"console: password changed ({ctx.request.origin})")
        return Reply(text="console password set (stored as a salted scrypt hash)",
                     data={"password": True})
    keyword = sub
    usage = {"NIGHT": "CS NIGHT start,end", "SCAN": "CS SCAN seconds",
             "LEASE": "CS LEASE seconds", "OPERATORS": "CS OPERATORS user,user"}[sub]
    _need(rest, 1, usage)
    value = ",".join(rest) if sub in ("NIGHT", "OPERATORS") else rest[0]
    _reconfigure(server, file, lambda t: cmdfile.set_single(t, keyword, value))
    server.event(f"console: {keyword} {value} ({ctx.request.origin})")
    note = ""
    if sub == "LEASE":
        note = " (locks already held keep their lease until they are taken again)"
    reply = _show_server(server)
    reply.text = f"{file}: {keyword} {value} applied{note}\n" + reply.text
    return reply


def _cs_spool(ctx: Ctx, rest: list[str]) -> Reply:
    server = ctx.server
    _need(rest, 2, "CS SPOOL ADD|REMOVE folder")
    action = pick(rest[0], ("ADD", "REMOVE"), "subcommand")
    raw = rest[1]
    if "\n" in raw or "\0" in raw:
        raise UsageError("bad folder name")
    path = Path(os.path.normpath(server.config.project / raw))
    file = config_mod.SERVER_FILE
    if action == "ADD":
        # Refuse before touching the file: the folder must already be a spool.
        from printnet.spool.layout import Spool
        from printnet.spool.lock import selftest

        spool = Spool.open(path)
        selftest(spool.locks)
        _reconfigure(server, file, lambda t: cmdfile.add_line(t, "SPOOL", raw),
                     keep_spools=False)
        server.event(f"console: now serving shared disk {path} ({ctx.request.origin})")
        return Reply(text=f"{file}: SPOOL {raw} added; serving {path}",
                     data={"spool": str(path), "spools": _spool_list(server)})
    matches = [svc for svc in server.services
               if svc.root == path or _resolved(svc.root) == _resolved(path)]
    if not matches:
        raise NotFound(f"{path} is not a shared disk of this server")
    if len(server.services) <= 1:
        raise UsageError("a server needs at least one shared disk")
    if matches[0].printing:
        raise UsageError(f"jobs on {path} are printing; try again when they finish")
    etc_text = _file_text(server.config.etc / file) or ""
    values = [cmd.name for cmd in cmdfile.parse(etc_text, file, cmdfile.SERVER_SCHEMA)
              if cmd.keyword == "SPOOL" and cmd.name is not None
              and Path(os.path.normpath(server.config.project / cmd.name)) == matches[0].root]

    def change(text: str) -> str:
        for value in values:
            text = cmdfile.remove_line(text, "SPOOL", value)
        return text

    _reconfigure(server, file, change, keep_spools=False)
    server.event(f"console: stopped serving shared disk {path} ({ctx.request.origin})")
    return Reply(text=f"{file}: SPOOL {raw} removed; no longer serving {path}",
                 data={"spool": str(path), "spools": _spool_list(server)})


def _spool_list(server: Server) -> list[str]:
    return [str(s.root) for s in server.services]


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


def _cp_changes(args: list[str]) -> bool:
    return _cp_sub(args)[0] != "SHOW"


def _printer_json(server: Server, name: str) -> dict[str, Any]:
    p = server.config.printers[name]
    worker = server.workers.get(name)
    status = worker.status() if worker is not None else {}
    return {
        "name": name, "port": p.port, "baud": p.baud, "bits": p.bytesize,
        "parity": p.parity, "stop": p.stopbits, "flow": p.flow.value,
        "driver": p.driver.value, "setup": p.setup, "mounted": status.get("setup", p.setup),
        "header": p.header if p.header_pages else "NONE", "classes": list(p.classes),
        "errors": p.error_policy.value, "accepting": p.accepting,
        "reject_reason": p.reject_reason, "stopped": p.stopped,
        "state": status.get("state", "unknown"), "reasons": status.get("reasons", []),
    }


def _show_printers(server: Server, only: str | None = None) -> Reply:
    names = list(server.config.printers)
    if only is not None:
        only = _name(only, "printer")
        if only not in names:
            raise NotFound(f"no printer {only} on this server")
        names = [only]
    printers = [_printer_json(server, n) for n in names]
    rows = [["PRINTER", "STATE", "MOUNTED", "PORT", "LINE", "DRIVER", "HEADER", "CLASSES",
             "ACCEPTING"]]
    for p in printers:
        line = f"{p['baud']} {p['bits']}{p['parity']}{p['stop']:g} {p['flow']}"
        accepting = "yes" if p["accepting"] else f"no: {p['reject_reason'] or 'rejecting'}"
        rows.append([p["name"], p["state"], p["mounted"], p["port"], line, p["driver"],
                     p["header"] or "built-in", ",".join(p["classes"]) or "-", accepting])
    setups = [{"name": s.name, "form": s.form, "length": s.length, "width": s.width}
              for s in server.config.setups.values()]
    lines = _table(rows, "")
    if only is None:
        lines.append("Setups: " + "  ".join(
            f"{s['name']} ({s['form']} {s['length']}x{s['width']})" for s in setups))
        if server.config.default_printer:
            lines.append(f"Default destination: {server.config.default_printer}")
    return Reply(text="\n".join(lines), data={
        "printers": printers, "setups": setups, "default": server.config.default_printer})


def cmd_cp(ctx: Ctx) -> Reply:
    server = ctx.server
    sub, rest = _cp_sub(ctx.args)
    file = config_mod.PRINTERS_FILE
    origin = ctx.request.origin
    if sub == "SHOW":
        return _show_printers(server, rest[0] if rest else None)
    if sub == "SETUP":
        _need(rest, 2, "CP SETUP setup KEY=VALUE...")
        setup = _name(rest[0], "setup")
        values = _key_values(rest[1:])
        if setup in server.config.setups:
            changes: dict[str, str | None] = {k: (v or None) for k, v in values.items()}
            _reconfigure(server, file,
                         lambda t: cmdfile.update_command(t, "SETUP", setup, changes))
        else:
            _reconfigure(server, file, lambda t: cmdfile.set_command(
                t, "SETUP", setup, {k: v for k, v in values.items() if v}))
        server.event(f"console: setup {setup} defined ({origin})")
        return _show_printers(server)
    _need(rest, 1, f"CP {sub} printer ...")
    name = _name(rest[0], "printer")
    known = name in server.config.printers
    if sub != "ADD" and not known:
        raise NotFound(f"no printer {name} on this server (CP lists them)")
    if sub == "ADD":
        if known:
            raise UsageError(f"printer {name} exists; use CP CHANGE")
        values = _key_values(rest[1:])
        if "PORT" not in values:
            raise UsageError("CP ADD needs PORT=")
        _reconfigure(server, file, lambda t: cmdfile.set_command(t, "PRINTER", name, values))
        server.event(f"console: printer {name} added ({origin})")
        text = f"printer {name} added"
    elif sub == "CHANGE":
        values = _key_values(rest[1:])
        if not values:
            raise UsageError("usage: CP CHANGE printer KEY=VALUE...")
        changes = {k: (v or None) for k, v in values.items()}
        if changes.get("PORT", "") is None:
            raise UsageError("a printer needs a PORT")
        _reconfigure(server, file,
                     lambda t: cmdfile.update_command(t, "PRINTER", name, changes))
        server.event(f"console: printer {name} changed: "
                     f"{' '.join(f'{k}={v}' for k, v in values.items())} ({origin})")
        text = f"printer {name} changed"
    elif sub == "REMOVE":
        worker = server.workers.get(name)
        if worker is not None and worker.busy:
            raise UsageError(f"printer {name} is printing; stop it and let the job finish")
        _reconfigure(server, file, lambda t: cmdfile.remove_command(t, "PRINTER", name))
        server.event(f"console: printer {name} removed ({origin})")
        return Reply(text=f"printer {name} removed", data={"removed": name})
    elif sub == "MOUNT":
        _need(rest, 2, "CP MOUNT printer setup")
        setup = _name(rest[1], "setup")
        if setup not in server.config.setups:
            raise NotFound(f"no setup {setup} (setups: {' '.join(server.config.setups)})")
        if name not in server.workers:
            raise NotFound(f"printer {name} is not running on this server")
        _reconfigure(server, file,
                     lambda t: cmdfile.update_command(t, "PRINTER", name, {"SETUP": setup}))
        if server.workers[name].setup != setup:  # SETUP= was already on file
            server.mount(name, setup)
        text = f"printer {name}: setup {setup} mounted; jobs that need it can start"
    elif sub in ("STOP", "START"):
        stop = sub == "STOP"
        _reconfigure(server, file, lambda t: cmdfile.update_command(
            t, "PRINTER", name, {"STOPPED": "YES" if stop else None}))
        server.event(f"console: printer {name} {'stopped' if stop else 'started'} ({origin})")
        text = (f"printer {name} stopped (a job printing now finishes)" if stop
                else f"printer {name} started")
    elif sub == "REJECT":
        reason = clean_text(" ".join(rest[1:]), 200) or "not accepting jobs"
        _reconfigure(server, file, lambda t: cmdfile.update_command(
            t, "PRINTER", name, {"ACCEPT": "NO", "REASON": reason}))
        server.event(f"console: printer {name} rejects new jobs: {reason} ({origin})")
        text = f"printer {name} rejects new jobs: {reason}"
    else:  # ACCEPT
        _reconfigure(server, file, lambda t: cmdfile.update_command(
            t, "PRINTER", name, {"ACCEPT": None, "REASON": None}))
        server.event(f"console: printer {name} accepts new jobs ({origin})")
        text = f"printer {name} accepts new jobs"
    reply = _show_printers(server, name)
    reply.text = text + "\n" + reply.text
    return reply


# ---------------------------------------------------------------------------
# CH: check queues


def _progress(server: Server, spool_root: Path, job: Job) -> dict[str, int] | None:
    """Pages printed of total for a printing job: from our worker or the holder's status."""
    if job.state is not JobState.PRINTING:
        return None
    status: dict[str, Any] | None = None
    worker = server.workers.get(job.assigned)
    if job.holder == server.name and worker is not None:
        status = worker.status()
    else:
        from printnet.api import server_files
        from printnet.spool.layout import Spool

        for info in server_files(Spool(spool_root)):
            if info.get("name") != job.holder:
                continue
            for p in info.get("printers", []):
                if isinstance(p, dict) and p.get("job") == job.id:
                    status = p
    if not status or status.get("job") != job.id or not isinstance(status.get("progress"),
                                                                   dict):
        return None
    prog = status["progress"]
    sent, total = int(prog.get("bytes") or 0), int(prog.get("total") or 0)
    pages = int(prog.get("page_total") or 0)
    done = pages * sent // total if total else 0
    return {"pages": done, "page_total": pages, "bytes": sent, "total": total}


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
    wanted = {_name(a, "printer") for a in ctx.args}
    printers = {name: w.status() for name, w in server.workers.items()
                if name in server.config.printers}
    classes = server.config.classes
    queues: dict[str, list[dict[str, Any]]] = {}
    held = rejected = 0
    multi = len(server.services) > 1
    for index, svc in enumerate(server.services, 1):
        with contextlib.suppress(PrintnetError):
            svc.store.refresh()
        with contextlib.suppress(OSError):
            rejected += sum(1 for n in os.listdir(svc.spool.rejected)
                            if not n.endswith(".reason") and not n.startswith("."))
        for dest in svc.store.state.destinations():
            for position, job in enumerate(svc.store.state.queue(dest), 1):
                held += job.state is JobState.HELD
                entry = job.to_json()
                entry.update(position=position, disk=index,
                             progress=_progress(server, svc.root, job))
                queues.setdefault(dest, []).append(entry)
    for jobs in queues.values():
        jobs.sort(key=lambda j: (j["disk"], j["position"]))
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
        lines += _table([_job_line(j, multi) for j in jobs], "  ") or ["  no jobs"]
    for cls, members in classes.items():
        if wanted and cls not in wanted:
            continue
        jobs = queues.pop(cls, [])
        sections.append({"kind": "class", "name": cls, "members": list(members),
                         "jobs": jobs})
        lines.append(f"Class {cls} ({' '.join(members)}):")
        lines += _table([_job_line(j, multi) for j in jobs], "  ") or ["  no jobs"]
    if not wanted and queues:
        others = [j for dest in sorted(queues) for j in queues[dest]]
        sections.append({"kind": "other", "name": "", "jobs": others})
        lines.append("Other destinations (other servers' printers):")
        lines += _table([[j["printer"], *_job_line(j, multi)] for j in others], "  ")
    lines.append(f"Held: {held}   Rejected requests: {rejected}")
    return Reply(text="\n".join(lines), data={
        "server": server.name, "queues": sections, "held": held, "rejected": rejected,
        "disks": [str(s.root) for s in server.services]})


# ---------------------------------------------------------------------------
# I: server info


def cmd_info(ctx: Ctx) -> Reply:
    from printnet.server import MASTER_LOCK
    from printnet.spool.publish import HOST

    server = ctx.server
    now = time.monotonic()
    uptime = max(0.0, time.time() - server.started)
    disks: list[dict[str, Any]] = []
    for index, svc in enumerate(server.services, 1):
        master = svc.table.observe(MASTER_LOCK)
        rec = master.record
        holders = sorted(r.holder for n, r in svc.table.records().items()
                         if n.startswith("server."))
        disks.append({
            "index": index, "path": str(svc.root), "error": svc.error,
            "last_scan": now - svc.last_scan if svc.last_scan > 0 else None,
            "master_lock": None if not master.present else {
                "holder": rec.holder if rec else None, "host": rec.host if rec else None,
                "pid": rec.pid if rec else None, "unchanged_for": master.unchanged_for},
            "servers": holders, "jobs": len(svc.store.state),
        })
    printers = [w.status() for w in server.workers.values()]
    counters = dict(vars(server.counters))
    data = {
        "name": server.name, "version": __version__, "host": HOST, "pid": os.getpid(),
        "state": server.state, "started": datetime.fromtimestamp(server.started, UTC)
        .isoformat(), "uptime": uptime, "printed": counters["printed"],
        "counters": counters, "disks": disks, "printers": printers,
    }
    started = datetime.fromtimestamp(server.started).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    lines = [
        f"Server {server.name}: printnet {__version__} on {HOST}, pid {os.getpid()}, "
        f"{server.state}",
        f"Up {_seconds(uptime)} (since {started})",
        f"Jobs printed since start: {counters['printed']} (taken in {counters['taken']}, "
        f"rejected {counters['rejected']}, requeued {counters['requeued']})",
        "Shared disks:",
    ]
    for d in disks:
        lock = d["master_lock"]
        lock_text = "master lock free" if lock is None else (
            f"master lock held by {lock['holder']} ({lock['host']} pid {lock['pid']})")
        health = f"error: {d['error']}" if d["error"] else "ok"
        lines.append(f"  {d['index']} {d['path']}: {health}, last scan "
                     f"{_seconds(d['last_scan'])} ago, {lock_text}, {d['jobs']} jobs, "
                     f"server leases: {', '.join(d['servers']) or 'none'}")
    lines.append("Printers:")
    lines += _table([[p["name"], p["state"] + (f" {p['job']}" if p["job"] else ""),
                      f"setup {p['setup']}", f"printed {p['printed']}",
                      "; ".join(p["reasons"])] for p in printers])
    return Reply(text="\n".join(lines), data=data)


# ---------------------------------------------------------------------------
# P: print a file

P_USAGE: Final = ("P [-P printer] [-p high|standard|overnight] [-n copies] [-t title] "
                  "[-s setup] [--hold] [--raw] [--no-header] [--disk N] file...")


def cmd_print(ctx: Ctx) -> Reply:
    from printnet.api import Station

    server = ctx.server
    opts, files = _options(
        ctx.args,
        {"--hold": "hold", "--raw": "raw", "--no-header": "no_header"},
        {"-P": "printer", "--printer": "printer", "-p": "priority", "--priority": "priority",
         "-n": "copies", "--copies": "copies", "-t": "title", "--title": "title",
         "-s": "setup", "--setup": "setup", "--disk": "disk"},
    )
    if not files:
        raise UsageError(f"usage: {P_USAGE}")
    base = Path(ctx.request.cwd) if ctx.request.cwd else Path.cwd()
    paths = [str(base / f) for f in files]
    try:
        copies = int(opts.get("copies", "1"))
    except ValueError:
        raise UsageError("-n needs a number") from None
    svc = _disk(server, opts.get("disk"))[0]
    station = Station(svc.root, server.config.etc)
    requests = station.submit(
        paths, printer=opts.get("printer"), priority=opts.get("priority", "standard"),
        copies=copies, title=opts.get("title", ""), setup=opts.get("setup"),
        header="no_header" not in opts, raw="raw" in opts, hold="hold" in opts)
    server.wake.set()
    lines = [f"queued {r.id} for {r.printer} ({len(r.files)} file(s), {r.size} bytes)"
             for r in requests]
    return Reply(text="\n".join(lines), data={"jobs": [
        {"id": r.id, "printer": r.printer, "user": r.user, "size": r.size,
         "disk": str(svc.root)} for r in requests]})


# ---------------------------------------------------------------------------
# F: file server (shared disk) commands

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


def _f_changes(args: list[str]) -> bool:
    return _sub(args, F_SUBS, "LIST") not in ("LIST", "LOCKS")


def _count(folder: Path, skip: Callable[[str], bool] = lambda n: n.startswith(".")) -> int:
    try:
        return sum(1 for n in os.listdir(folder) if not skip(n))
    except OSError:
        return -1


def _disk_health(server: Server, index: int, svc: SpoolService) -> dict[str, Any]:
    from printnet.spool.layout import Spool

    problems = []
    try:
        Spool.open(svc.root)
    except SpoolError as exc:
        problems.append(str(exc))
    if not os.access(svc.root, os.W_OK):
        problems.append("not writable")
    if svc.error:
        problems.append(svc.error)
    free = None
    with contextlib.suppress(OSError):
        st = os.statvfs(svc.root)
        free = st.f_bavail * st.f_frsize
    sp = svc.spool
    return {
        "index": index, "path": str(svc.root), "health": "; ".join(problems) or "ok",
        "free_bytes": free, "jobs": len(svc.store.state), "generation": svc.store.generation,
        "last_scan": time.monotonic() - svc.last_scan if svc.last_scan > 0 else None,
        "counts": {
            "new": _count(sp.new), "received": _count(sp.received),
            "done": _count(sp.done), "data": _count(sp.data),
            "rejected": _count(sp.rejected, lambda n: n.startswith(".")
                               or n.endswith(".reason")),
            "tmp": _count(sp.tmp, lambda n: False),
        },
    }


def _lock_rows(server: Server, index: int, svc: SpoolService) -> list[dict[str, Any]]:
    from printnet.lease import stale_after
    from printnet.spool.publish import HOST

    rows = []
    for name, rec in sorted(svc.table.records().items()):
        st = svc.table.observe(name)
        ours = rec.holder == server.name and rec.host == HOST and rec.pid == os.getpid()
        rows.append({
            "disk": index, "lock": name, "holder": rec.holder, "host": rec.host,
            "pid": rec.pid, "lease": rec.lease, "acquired": rec.acquired,
            "unchanged_for": st.unchanged_for, "stale_after": stale_after(rec.lease),
            "stale": st.stale, "ours": ours,
        })
    return rows


def cmd_f(ctx: Ctx) -> Reply:
    server, args = ctx.server, ctx.args
    sub = _sub(args, F_SUBS, "LIST")
    rest = args[1:]
    if sub == "LIST":
        disks = [_disk_health(server, i, s) for i, s in enumerate(server.services, 1)]
        lines = []
        for d in disks:
            c = d["counts"]
            free = f"{d['free_bytes'] / 2**30:.1f} GiB free" if d["free_bytes"] is not None \
                else "free space unknown"
            lines.append(f"{d['index']} {d['path']}: {d['health']}, {free}, "
                         f"{d['jobs']} live jobs, last scan {_seconds(d['last_scan'])} ago")
            lines.append(f"    new {c['new']}  received {c['received']}  done {c['done']}  "
                         f"rejected {c['rejected']}  tmp {c['tmp']}  data {c['data']}  "
                         f"master generation {d['generation']}")
        return Reply(text="\n".join(lines), data={"disks": disks})
    if sub == "LOCKS":
        rows = [r for i, s in enumerate(server.services, 1) for r in _lock_rows(server, i, s)]
        table = [["DISK", "LOCK", "HOLDER", "HOST", "PID", "LEASE", "UNCHANGED", ""]]
        for r in rows:
            flag = "this server" if r["ours"] else ("STALE" if r["stale"] else "")
            table.append([str(r["disk"]), r["lock"], r["holder"], r["host"], str(r["pid"]),
                          f"{r['lease']:g} s", _seconds(r["unchanged_for"]), flag])
        text = "\n".join(_table(table, "")) if rows else "no locks are held"
        return Reply(text=text + "\n(a lock is stale once unchanged for its lease + 1/4; "
                     "F LOCKS again later shows the ages growing)", data={"locks": rows})
    if sub == "BREAK":
        return _f_break(ctx, rest)
    if sub == "PURGE":
        return _f_purge(ctx, rest)
    return _f_rebuild(ctx, rest)


def _f_break(ctx: Ctx, rest: list[str]) -> Reply:
    from printnet.lease import stale_after
    from printnet.server import server_lock_name
    from printnet.spool.lock import break_lock

    server = ctx.server
    opts, words = _options(rest, {"--force": "force"}, {})
    _need(words, 1, "F BREAK lock [disk] [--force]")
    services = _disk(server, words[1] if len(words) > 1 else None)
    name = _lock_name(services, words[0])
    found = [s for s in services if os.path.lexists(s.spool.locks / name)]
    if not found:
        raise NotFound(f"no lock {clean_text(name, 100)} (F LOCKS lists them)")
    if len(found) > 1:
        raise UsageError(f"lock {name} exists on several shared disks: name the disk")
    svc = found[0]
    if name == svc.server_lock.name or name == server_lock_name(server.name):
        raise UsageError(f"{name} is this server's own lease; it cannot break it")
    status = svc.table.observe(name)
    if not status.present:
        raise NotFound(f"lock {name} is gone already")
    rec = status.record
    force = "force" in opts
    who = f"{rec.holder} ({rec.host} pid {rec.pid})" if rec else "an unreadable record"
    if not status.stale and not force:
        needed = stale_after(status.lease or 60.0)
        return Reply.failure(
            f"lock {name} held by {who} is not stale: unchanged for "
            f"{status.unchanged_for:.1f} s of the {needed:.1f} s needed (lease "
            f"{status.lease:g} s). Look again later (F LOCKS), or add --force to break a "
            "live lock", 1)
    if not ctx.request.confirm:
        live = "" if status.stale else ", NOT stale: its holder may still be working"
        return Reply(ok=False, needs="confirm", code=1, error="not confirmed",
                     question=f"Break lock {name} on {svc.root}, held by {who}, unchanged "
                     f"for {status.unchanged_for:.1f} s{live}?")
    broken = break_lock(svc.table, name, force=force)
    if not broken:
        return Reply.failure(f"lock {name} was not broken (it changed or vanished "
                             "meanwhile)")
    server.event(f"console: lock {name} held by {who} broken ({ctx.request.origin})",
                 svc.spool)
    server.wake.set()
    return Reply(text=f"lock {name} broken", data={"lock": name, "disk": str(svc.root),
                                                   "broken": True})


def _lock_name(services: list[SpoolService], typed: str) -> str:
    """The lock a user named: as typed, else the one lock whose name matches it
    case-insensitively (`server.barcon` is the lease of server BARCON)."""
    if any(os.path.lexists(s.spool.locks / typed) for s in services):
        return typed
    names: set[str] = set()
    for svc in services:
        with contextlib.suppress(OSError):
            names.update(n for n in os.listdir(svc.spool.locks)
                         if n.casefold() == typed.casefold())
    return names.pop() if len(names) == 1 else typed


def _f_purge(ctx: Ctx, rest: list[str]) -> Reply:
    from printnet.spool.maintenance import purge

    server = ctx.server
    opts, words = _options(rest, {}, {"--days": "days", "--temp-hours": "hours"})
    days = _number(opts.get("days", "7"), "--days")
    hours = _number(opts.get("hours", "24"), "--temp-hours")
    results: list[dict[str, Any]] = []
    for svc in _disk(server, words[0] if words else None):
        try:
            counts = purge(svc.root, days=days, temp_hours=hours)
            results.append({"disk": str(svc.root), "removed": counts})
        except PrintnetError as exc:
            results.append({"disk": str(svc.root), "error": str(exc)})
    server.event(f"console: purge older than {days:g} days / {hours:g} h "
                 f"({ctx.request.origin})")
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
    from printnet.spool import master as master_io

    server = ctx.server
    services = _disk(server, rest[0] if rest else None)
    if len(services) > 1:
        raise UsageError("name the shared disk to rebuild (F LIST numbers them)")
    svc = services[0]
    if not ctx.request.confirm:
        return Reply(ok=False, needs="confirm", code=1, error="not confirmed",
                     question=f"Rebuild the master file of {svc.root} from its request "
                     "files? Jobs being printed now return to pending and may print again")
    deadline = time.monotonic() + 5.0
    while not svc.master_lock.try_acquire():
        if time.monotonic() >= deadline:
            raise LockHeld("the master lock is busy; try again")
        time.sleep(0.05)
    try:
        try:
            svc.store.refresh()
            old: MasterState | None = svc.store.state
        except PrintnetError:
            old = None  # corrupt: the request files are the truth
        state = master_io.rebuild_state(svc.spool, old)
        svc.store.install(state, svc.master_lock)
    finally:
        svc.master_lock.release()
    server.event(f"console: master file rebuilt, {len(state)} live jobs "
                 f"({ctx.request.origin})", svc.spool)
    server.wake.set()
    return Reply(text=f"master file of {svc.root} rebuilt: {len(state)} live jobs",
                 data={"disk": str(svc.root), "jobs": len(state)})


# ---------------------------------------------------------------------------
# Q: quit


def cmd_quit(ctx: Ctx) -> Reply:
    from printnet.server import STOP_GRACE

    server = ctx.server
    server.event(f"console: stop requested ({ctx.request.origin})")
    server.request_stop()
    return Reply(text=f"server {server.name} stopping: jobs printing now finish (up to "
                 f"{STOP_GRACE:g} s) or go back to their queue; nothing is lost",
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


def _find_live(server: Server, text: str) -> tuple[SpoolService, str]:
    text = text.strip().upper()
    if len(text) < 4:
        raise UsageError(f"{clean_text(text, 30)!r} is not a job id (give at least 4 "
                         "characters)")
    matches: list[tuple[SpoolService, str]] = []
    for svc in server.services:
        with contextlib.suppress(PrintnetError):
            svc.store.refresh()
        if text in svc.store.state:
            return svc, text
        matches += [(svc, i) for i in svc.store.state.jobs if i.endswith(text)]
    if not matches:
        raise NotFound(f"no live job {clean_text(text, 30)} (finished, or never queued)")
    if len(matches) > 1:
        raise UsageError(f"{text} is the end of several jobs: "
                         f"{', '.join(i for _, i in matches[:5])}")
    return matches[0]


def _known_destinations(server: Server) -> set[str]:
    from printnet.api import server_files

    names = set(server.config.printers) | set(server.config.classes)
    for svc in server.services:
        for info in server_files(svc.spool):
            for p in info.get("printers", []):
                if isinstance(p, dict):
                    names.add(str(p.get("name")))
                    names.update(str(c) for c in p.get("classes", []))
    return names


Planner = Callable[["SpoolService", MasterState, Job, list[Op], list[Callable[[], None]]],
                   str]


def _run_verb(ctx: Ctx, targets: list[str], planner: Planner) -> Reply:
    server = ctx.server
    if not targets:
        raise UsageError("name at least one job")
    groups: dict[int, tuple[SpoolService, list[str]]] = {}
    for text in targets:
        svc, job_id = _find_live(server, text)
        groups.setdefault(id(svc), (svc, []))[1].append(job_id)
    outcomes: dict[str, str] = {}
    for svc, ids in groups.values():
        after: list[Callable[[], None]] = []

        def plan(state: MasterState, svc: SpoolService = svc, ids: list[str] = ids,
                 after: list[Callable[[], None]] = after) -> list[Op]:
            ops: list[Op] = []
            for job_id in ids:
                job = state.get(job_id)
                if job is None:
                    outcomes[job_id] = "not found (finished meanwhile)"
                    continue
                outcomes[job_id] = planner(svc, state, job, ops, after)
            return ops

        svc.operator_ops(plan)
        for fn in after:
            fn()
    server.wake.set()
    applied = [i for i, o in outcomes.items() if not o.startswith("not ")]
    for job_id in applied:
        server.event(f"console: job {job_id} {outcomes[job_id]} ({ctx.request.origin})")
    lines = [f"{i}: {o}" for i, o in outcomes.items()]
    failed = len(applied) != len(outcomes)
    return Reply(ok=not failed, code=1 if failed else 0, text="\n".join(lines),
                 error="some jobs were not changed" if failed else "",
                 data={"results": outcomes})


def cmd_hold(ctx: Ctx) -> Reply:
    def planner(svc: SpoolService, state: MasterState, job: Job, ops: list[Op],
                after: list[Callable[[], None]]) -> str:
        if job.state is not JobState.PENDING:
            return f"not held: it is {job.state.value}"
        # Stamped on the server's clock, as HELDEXPIRY reads it (else: since submit).
        ops.append(verbs.hold(job, verbs.HELD_BY_OPERATOR, svc.server.clock()))
        return "held"
    return _run_verb(ctx, ctx.args, planner)


def cmd_release(ctx: Ctx) -> Reply:
    def planner(svc: SpoolService, state: MasterState, job: Job, ops: list[Op],
                after: list[Callable[[], None]]) -> str:
        if job.state is not JobState.HELD:
            return f"not released: it is {job.state.value}"
        ops.append(verbs.release(job))
        return "released"
    return _run_verb(ctx, ctx.args, planner)


def cmd_cancel(ctx: Ctx) -> Reply:
    from printnet.spool.layout import REQ_SUFFIX

    server = ctx.server

    def planner(svc: SpoolService, state: MasterState, job: Job, ops: list[Op],
                after: list[Callable[[], None]]) -> str:
        request = None
        with contextlib.suppress(OSError, PrintnetError):
            req = decode_request((svc.spool.received / (job.id + REQ_SUFFIX)).read_bytes())
            if isinstance(req, PrintRequest):
                request = req.to_json()
                request.pop("password", None)
        if job.state is JobState.PRINTING and job.holder == server.name:
            server.abandon(job.id)  # its interrupted result then finds the job gone
        # The record first (under the master lock): a crash before the commit leaves a
        # done/ record that recovery honours instead of printing the job again.
        change = verbs.cancel(job, by=verbs.OPERATOR, at=server.clock(), server=server.name,
                              request=request)
        verbs.write_endings(svc.spool, change.endings)
        ops += change.ops

        def unlink(job_id: str = job.id) -> None:
            if job_id not in svc.store.state:
                (svc.spool.received / (job_id + REQ_SUFFIX)).unlink(missing_ok=True)
        after.append(unlink)
        return "canceled"
    return _run_verb(ctx, ctx.args, planner)


def cmd_move(ctx: Ctx) -> Reply:
    _need(ctx.args, 2, "MOVE job... printer")
    dest = _name(ctx.args[-1], "printer")
    if dest not in _known_destinations(ctx.server):
        raise NotFound(f"no printer or class {dest}")

    def planner(svc: SpoolService, state: MasterState, job: Job, ops: list[Op],
                after: list[Callable[[], None]]) -> str:
        if job.state not in (JobState.PENDING, JobState.HELD):
            return f"not moved: it is {job.state.value}"
        if job.printer == dest:
            return f"already queued for {dest}"
        ops.append(verbs.move(job, dest))
        return f"moved to {dest}"
    return _run_verb(ctx, ctx.args[:-1], planner)


def cmd_top(ctx: Ctx) -> Reply:
    front: dict[str, int] = {}  # priority -> the rank given last (several jobs stack)

    def planner(svc: SpoolService, state: MasterState, job: Job, ops: list[Op],
                after: list[Callable[[], None]]) -> str:
        if job.state not in (JobState.PENDING, JobState.HELD):
            return f"not moved up: it is {job.state.value}"
        given = front.get(job.priority.value)
        rank = state.front_rank(job.priority) if given is None else given - 1
        front[job.priority.value] = rank
        ops.append(verbs.top(job, rank))
        return f"at the front of the {job.priority.value} jobs"
    # Last named first, so that the first named job ends up at the very front.
    return _run_verb(ctx, list(reversed(ctx.args)), planner)


def _retained_files(folder: Path, req: PrintRequest) -> list[tuple[str, bytes]]:
    """The job's spooled files, opened without following links, checked against the
    sizes and sha256 recorded at submit (so nothing else can be printed)."""
    if req.size > REPRINT_MAX:
        raise UsageError(f"job is {req.size} bytes: too large to reprint from the console")
    out = []
    for f in req.files:
        path = folder / f.name
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError as exc:
            raise NotFound(f"its data is no longer retained ({f.name}: "
                           f"{exc.strerror})") from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise PermissionDenied(f"data file {f.name} is not a regular file")
            with os.fdopen(fd, "rb", closefd=False) as fh:
                data = fh.read(f.size + 1)
        finally:
            os.close(fd)
        if len(data) != f.size or hashlib.sha256(data).hexdigest() != f.sha256:
            raise PermissionDenied(f"data file {f.name} changed since it was submitted")
        out.append((f.original or f.name, data))
    return out


def cmd_reprint(ctx: Ctx) -> Reply:
    from printnet.spool.submit import Source, Submitter

    server = ctx.server
    _need(ctx.args, 1, "REPRINT job [printer]")
    text = ctx.args[0].strip().upper()
    if len(text) < 4:
        raise UsageError("give at least 4 characters of the job id")
    found: list[tuple[SpoolService, Path]] = []
    for svc in list(server.services):
        exact = svc.spool.done / f"{text}.json"
        if valid_job_id(text) and exact.exists():
            found = [(svc, exact)]
            break
        with contextlib.suppress(OSError):
            found += [(svc, svc.spool.done / n) for n in os.listdir(svc.spool.done)
                      if n.endswith(f"{text}.json") and valid_job_id(n[:-5])]
    if not found:
        raise NotFound(f"no finished job {clean_text(text, 30)} (purged, or never finished)")
    if len(found) > 1:
        raise UsageError(f"{text} is the end of several finished jobs")
    svc, path = found[0]
    try:
        record = json.loads(path.read_bytes())
        request = request_from_json(record["request"])
    except (OSError, ValueError, KeyError, TypeError, PrintnetError):
        raise NotFound(f"job {path.stem}: its request was not retained; it cannot be "
                       "reprinted") from None
    if not isinstance(request, PrintRequest) or not isinstance(record, dict):
        raise NotFound(f"job {path.stem} is not a print job")
    dest = _name(ctx.args[1], "printer") if len(ctx.args) > 1 else request.printer
    if dest not in _known_destinations(server):
        raise NotFound(f"no printer or class {dest}")
    files = _retained_files(svc.spool.job_data(request.id), request)
    template = replace(request, printer=dest, hold=False, password=None,
                       title=clean_text(request.title, MAX_TITLE))
    submitter = Submitter(svc.spool, user=request.user, station=request.station)
    [new] = submitter.submit_many(
        [(template, [Source(name, stream=io.BytesIO(data)) for name, data in files])])
    server.event(f"console: job {request.id} reprinted as {new.id} on {dest} "
                 f"({ctx.request.origin})", svc.spool)
    server.wake.set()
    return Reply(text=f"{request.id} reprinted as {new.id} for {dest}",
                 data={"job": request.id, "new": new.id, "printer": dest})


# ---------------------------------------------------------------------------
# HELP


def cmd_help(ctx: Ctx) -> Reply:
    if ctx.args:
        cmd = find_command(ctx.args[0])
        return Reply(text=f"{cmd.code} - {cmd.summary}\n{cmd.usage}",
                     data={"command": cmd.code, "words": list(cmd.words),
                           "summary": cmd.summary, "usage": cmd.usage.splitlines()})
    lines = [MENU, ""]
    lines += _table([[" / ".join(c.words), c.summary] for c in COMMANDS], "")
    lines.append("Abbreviate freely while unambiguous (INF = INFO, CA = CANCEL). "
                 "HELP CP shows CP's forms.")
    return Reply(text="\n".join(lines), data={"commands": [
        {"command": c.code, "words": list(c.words), "summary": c.summary,
         "usage": c.usage.splitlines(), "changes": c.code not in ("CH", "I", "HELP")}
        for c in COMMANDS]})


COMMANDS: Final[tuple[Command, ...]] = (
    Command(("CS",), "configure server", CS_USAGE, cmd_cs, _cs_changes),
    Command(("CP",), "configure printer", CP_USAGE, cmd_cp, _cp_changes),
    Command(("CH", "CHECK"), "check queues", "CH [printer...]", cmd_ch, _never),
    Command(("I", "INFO"), "server info", "I", cmd_info, _never),
    Command(("P", "PRINT"), "print a file as the operator", P_USAGE, cmd_print, _always,
            server_thread=False),
    Command(("F", "FILESERVER"), "file server (shared disk) commands", F_USAGE, cmd_f,
            _f_changes),
    Command(("Q", "QUIT"), "quit: stop the server (jobs finish or are requeued)", "Q",
            cmd_quit, _always, server_thread=False),
    Command(("HOLD",), "hold jobs", VERB_USAGE, cmd_hold, _always),
    Command(("RELEASE",), "release held jobs", VERB_USAGE, cmd_release, _always),
    Command(("CANCEL",), "cancel jobs", VERB_USAGE, cmd_cancel, _always),
    Command(("MOVE",), "move jobs to another printer", VERB_USAGE, cmd_move, _always),
    Command(("TOP",), "put jobs at the front of their priority", VERB_USAGE, cmd_top,
            _always),
    Command(("REPRINT",), "reprint a finished job", VERB_USAGE, cmd_reprint, _always,
            server_thread=False),
    Command(("HELP", "?"), "this list; HELP command for its forms", "HELP [command]",
            cmd_help, _never, server_thread=False),
)


# ---------------------------------------------------------------------------
# Clients: the interactive console and one-shot commands


Transport = Callable[[dict[str, Any]], dict[str, Any]]


class Output(Protocol):
    def write(self, text: str, /) -> int: ...

    def flush(self) -> None: ...


def ask_secret(prompt: str, stream: TextIO | None = None) -> str:
    """Read a line without echo (a terminal) or plainly (anything else)."""
    stream = stream or sys.stdin
    out = sys.stdout
    fd = stream.fileno() if hasattr(stream, "fileno") else -1
    if fd >= 0 and os.isatty(fd):
        import termios

        old = termios.tcgetattr(fd)
        new = list(old)
        new[3] &= ~termios.ECHO
        # Echo off *before* the prompt shows, and no flush of typed-ahead input
        # (TCSADRAIN): whatever is typed after the prompt is the secret, unechoed.
        termios.tcsetattr(fd, termios.TCSADRAIN, new)
        try:
            out.write(prompt)
            out.flush()
            line = stream.readline()
        finally:
            termios.tcsetattr(fd, termios.TCSADRAIN, old)
            out.write("\n")
            out.flush()
    else:
        out.write(prompt)
        out.flush()
        line = stream.readline()
    if not line:
        raise EOFError
    return line.rstrip("\r\n")


@dataclass
class Session:
    """One operator's console session: asks for what the server needs, caches the
    password once it was accepted, prints replies."""

    transport: Transport
    interactive: bool
    password: str | None = None
    new_password: str | None = None
    yes: bool = False
    out: Output = field(default_factory=lambda: sys.stdout)
    err: Output = field(default_factory=lambda: sys.stderr)
    ask: Callable[[str], str] = input
    secret: Callable[[str], str] = ask_secret

    def exchange(self, argv: list[str]) -> Reply:
        password, confirm = self.password, self.yes
        new_password: str | None = None  # sent only once the server asks for it
        reply = Reply.failure("no answer")
        for _ in range(4):
            payload = {"argv": argv, "password": password, "new_password": new_password,
                       "confirm": confirm, "cwd": os.getcwd()}
            reply = Reply.from_json(self.transport(payload))
            if reply.needs == "password" and password is None and self.interactive:
                password = self.secret("Console password: ")
                continue
            if reply.needs == "new_password" and new_password is None:
                if self.new_password is not None:
                    new_password = self.new_password
                    continue
                if self.interactive:
                    first = self.secret(f"{reply.question or 'New password'}: ")
                    if first != self.secret("Again: "):
                        return Reply.failure("the two entries differ: nothing was changed", 2)
                    new_password = first
                    continue
            if reply.needs == "confirm" and not confirm and self.interactive:
                answer = self.ask(f"{reply.question} [y/N] ").strip().lower()
                if answer not in ("y", "yes"):
                    return Reply(ok=False, code=1, error="not confirmed: nothing was done")
                confirm = True
                continue
            break
        if reply.needs == "password":
            reply.error += " (give it with --password-env VAR, or run on a terminal)"
        elif reply.needs == "new_password":
            reply.error += " (give it with --new-password-env VAR, or run on a terminal)"
        elif reply.needs == "confirm":
            reply.error = f"{reply.question} Not confirmed (add --yes): nothing was done"
        if reply.ok and new_password is not None:
            self.password = new_password  # just set here: this session knows it
        elif reply.ok and password is not None:
            self.password = password  # accepted: ask no more in this session
        elif reply.code == 3 and "wrong" in reply.error:
            self.password = None
        return reply

    def run(self, argv: list[str]) -> int:
        """One command: print its result; return the exit code."""
        as_json = _split_json(argv)[1]
        reply = self.exchange(argv)
        if as_json:
            obj = reply.data if reply.ok else {"error": reply.error, "code": reply.code,
                                                 "data": reply.data}
            self.out.write(json.dumps(obj, ensure_ascii=False, indent=None) + "\n")
        else:
            if reply.text:
                self.out.write(reply.text.rstrip("\n") + "\n")
            if not reply.ok:
                self.err.write(f"printnet: {reply.error}\n")
        self.out.flush()
        self.err.flush()
        return 0 if reply.ok else (reply.code or 1)

    def loop(self, prompt: str, *, alive: Callable[[], bool] = lambda: True) -> None:
        """Read commands until Q, end of input, or the server going away."""
        _enable_readline()
        self.out.write(MENU + "\n")
        self.out.flush()
        while alive():
            try:
                line = self.ask(prompt)
            except KeyboardInterrupt:
                self.out.write("^C\n")
                self.out.flush()
                continue
            except EOFError:
                self.out.write("\n")
                return
            try:
                argv = shlex.split(line)
            except ValueError as exc:
                self.err.write(f"printnet: {exc}\n")
                continue
            if not argv:  # an empty line shows the menu again, as the original did
                self.out.write(MENU + "\n")
                self.out.flush()
                continue
            try:
                self.run(argv)
            except KeyboardInterrupt:
                self.out.write("^C\n")
                self.out.flush()
            except EOFError:
                return


def _enable_readline() -> None:
    """Line editing and command completion, where readline exists."""
    try:
        import readline
    except ImportError:  # pragma: no cover - every Debian Python has it
        return
    words = sorted({w for c in COMMANDS for w in c.words if w != "?"})

    def complete(text: str, state: int) -> str | None:
        found = [w for w in words if w.startswith(text.upper())]
        return found[state] if state < len(found) else None

    readline.set_completer(complete)
    readline.parse_and_bind("tab: complete")


# -- at the server's terminal ---------------------------------------------------------


class _Terminal:
    """`sys.stdout` while the console runs at the server's terminal.

    The console's own (main) thread writes straight through.  Other threads -- the
    server's event lines -- write whole lines only, each starting on a fresh line;
    while the console waits for a command, the prompt and what was typed so far are
    shown again after the event, so the operator keeps typing where they were.
    """

    def __init__(self, real: TextIO) -> None:
        self.real = real
        self.encoding = real.encoding  # what input() asks of sys.stdout
        self.errors = real.errors or "strict"
        self.prompt: str | None = None  # set while the console waits for a line
        self._pending = ""
        self._lock = threading.Lock()

    def fileno(self) -> int:
        return self.real.fileno()

    def isatty(self) -> bool:
        return self.real.isatty()

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        with self._lock:
            self.real.flush()

    def write(self, text: str) -> int:
        with self._lock:
            if threading.current_thread() is threading.main_thread():
                return self.real.write(text)
            self._pending += text
            while "\n" in self._pending:
                line, self._pending = self._pending.split("\n", 1)
                if self.prompt is None:
                    self.real.write(line + "\n")
                else:
                    self.real.write(f"\r\x1b[K{line}\n{self.prompt}{_typed_so_far()}")
            self.real.flush()
        return len(text)

    def ask(self, prompt: str) -> str:
        self.prompt = prompt
        try:
            return input(prompt)
        finally:
            self.prompt = None


def _typed_so_far() -> str:
    try:
        import readline
    except ImportError:  # pragma: no cover
        return ""
    return readline.get_line_buffer()


def serve_with_console(server: Server) -> None:
    """Run `server` with the interactive console on this terminal (main thread).

    The server loop runs on its own thread.  Ctrl-C abandons the line being typed
    (Q stops the server); SIGTERM stops the server as without a console; end of
    input (Ctrl-D) detaches the console and the server keeps running.
    """
    from printnet.server import install_signal_handlers

    main = threading.main_thread()
    failure: list[BaseException] = []
    finished = threading.Event()
    console_on = threading.Event()

    def serve() -> None:
        try:
            server.run()
        except BaseException as exc:
            failure.append(exc)
        finally:
            finished.set()
            if console_on.is_set() and main.ident is not None:
                # Wake the console out of its blocking read: the server is gone.
                signal.pthread_kill(main.ident, signal.SIGINT)

    def on_term(signum: int, frame: object) -> None:
        server.request_stop()
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, on_term)
    thread = threading.Thread(target=serve, name="server", daemon=True)
    # The server thread, and every thread it starts, inherit these signals blocked:
    # the kernel then delivers Ctrl-C and SIGTERM to this thread, whose blocking
    # read in readline they interrupt.  (Delivered to another thread, they would
    # wait for the next keystroke.)
    stoppers = {signal.SIGINT, signal.SIGTERM}
    real_stdout = sys.stdout
    terminal = _Terminal(real_stdout)
    sys.stdout = cast(TextIO, terminal)  # duck-typed: write, flush, fileno, isatty
    signal.pthread_sigmask(signal.SIG_BLOCK, stoppers)
    try:
        thread.start()
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, stoppers)
    try:
        while server.state == "starting" and not finished.is_set():
            finished.wait(0.05)
        if not finished.is_set():
            console = Console(server)
            session = Session(lambda p: console.handle(p, None), interactive=True,
                              out=terminal, ask=terminal.ask)
            console_on.set()
            try:
                _offer_password(server, session)
                session.loop(f"{server.name}> ", alive=lambda: not finished.is_set()
                             and not server.stopping)
            except KeyboardInterrupt:
                pass
            finally:
                console_on.clear()
            if not server.stopping:
                sys.stdout.write(f"console closed; server {server.name} keeps running "
                                 "(stop it with SIGTERM or `printnet console Q`)\n")
                sys.stdout.flush()
    finally:
        install_signal_handlers(server)
        while thread.is_alive():
            thread.join(0.2)
        sys.stdout = real_stdout
    if failure:
        raise failure[0]
    if server.stopping:
        sys.stdout.write(f"server {server.name} stopped\n")
        sys.stdout.flush()


def _offer_password(server: Server, session: Session) -> None:
    if server.config.server.password_hash is not None:
        return
    out = session.out
    out.write("No console password is set: anyone at this terminal, and this user or "
              "root through `printnet console`, can change the server.\n")
    out.flush()
    while True:
        try:
            first = session.secret("Choose a console password (empty: not now): ")
            again = session.secret("Again: ") if first else ""
        except (KeyboardInterrupt, EOFError):  # Ctrl-C, Ctrl-D: not now
            first = ""
        if not first:
            out.write("No password set; set one later with CS PASSWORD.\n")
            return
        if first == again:
            break
        out.write("The two entries differ; try again.\n")
    saved, session.new_password = session.new_password, first
    try:
        session.run(["CS", "PASSWORD"])
    finally:
        session.new_password = saved


# -- `printnet console` ----------------------------------------------------------------


def pick_server(name: str | None, etc: Path | None) -> str:
    """The server `printnet console` talks to: --server, else the only one running
    here, else the one etc/server.cmd names."""
    from printnet.control import running_servers, safe_name

    if name:
        return safe_name(name)  # names are case-insensitive: barcon is BARCON
    running = running_servers()
    if len(running) == 1:
        return running[0]
    if etc is not None and (etc / config_mod.SERVER_FILE).exists():
        with contextlib.suppress(ConfigError):
            configured = config_mod.load(etc).server.name
            if safe_name(configured) in running or not running:
                return configured
    if not running:
        raise PrintnetError("no print server is running on this host")
    raise UsageError(f"several servers are running here ({', '.join(running)}): "
                     "name one with --server")


def remote_session(server: str, *, interactive: bool, password: str | None,
                   new_password: str | None, yes: bool) -> Session:
    from printnet.control import call

    return Session(lambda payload: call(server, payload), interactive=interactive,
                   password=password, new_password=new_password, yes=yes)


def attach(server: str, session: Session) -> None:
    """The interactive console attached to a running server."""
    from printnet.control import call

    reply = Reply.from_json(call(server, {"argv": ["I"]}))
    if not reply.ok:
        raise PrintnetError(reply.error)
    sys.stdout.write(f"attached to server {server} (Q stops the server; Ctrl-D "
                     "detaches)\n")
    stopped = threading.Event()
    transport = session.transport

    def watching(payload: dict[str, Any]) -> dict[str, Any]:
        answer = transport(payload)
        if isinstance(answer.get("data"), dict) and answer["data"].get("stopping"):
            stopped.set()
        return answer

    session.transport = watching
    session.loop(f"{server}> ", alive=lambda: not stopped.is_set())
