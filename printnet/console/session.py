"""The terminal session: the operator's side of the console.

Owns `Session` (one operator's exchange with a server: it asks for the
password, a new password or a confirmation when the server needs one, caches
the password once accepted, prints replies), the interactive loop with line
editing and completion (readline), the console at the server's own terminal
(`serve_with_console`: server events print above the prompt without
disturbing what is being typed), and `printnet console` attached to a running
server (`pick_server`, `remote_session`, `attach`).

The interactive console offers to set a password at first start; a
non-interactive start does not ask.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TextIO, cast

from printnet import config as config_mod
from printnet.console.commands import COMMANDS, MENU
from printnet.console.gate import Console
from printnet.console.protocol import Reply, split_json
from printnet.errors import ConfigError, PrintnetError, UsageError
from printnet.operator import RunningServer

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
        as_json = split_json(argv)[1]
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
            except PrintnetError as exc:  # the server went away, an answer too long...
                self.err.write(f"printnet: {exc}\n")
                self.err.flush()
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


def serve_with_console(server: RunningServer, *, run: Callable[[], None],
                       restore_signals: Callable[[], None]) -> None:
    """Run the server (`run`) with the interactive console on this terminal.

    The server loop runs on its own thread; the console on this (main) thread.
    Ctrl-C abandons the line being typed (Q stops the server); SIGTERM stops the
    server as without a console; end of input (Ctrl-D) detaches the console and
    the server keeps running.  `restore_signals` puts the server's own signal
    handlers back once the console is closed.
    """
    main = threading.main_thread()
    failure: list[BaseException] = []
    finished = threading.Event()
    console_on = threading.Event()

    def serve() -> None:
        try:
            run()
        except BaseException as exc:
            failure.append(exc)
        finally:
            finished.set()
            if console_on.is_set() and main.ident is not None:
                # Wake the console out of its blocking read: the server is gone.
                signal.pthread_kill(main.ident, signal.SIGINT)

    def on_term(signum: int, frame: object) -> None:
        server.stop()
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
        restore_signals()
        while thread.is_alive():
            thread.join(0.2)
        sys.stdout = real_stdout
    if failure:
        raise failure[0]
    if server.stopping:
        sys.stdout.write(f"server {server.name} stopped\n")
        sys.stdout.flush()


def _offer_password(server: RunningServer, session: Session) -> None:
    if server.config().server.password_hash is not None:
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
    from printnet.control import others_servers, running_servers, safe_name

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
        raise PrintnetError(others_servers() or "no print server is running on this host")
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
