"""Running console commands against one server, behind the password gate.

Owns `Console` (a command in, its reply out, from any thread) and
`start_control` (the server's control socket, `printnet.control`, answering
with a `Console`).

Where things run.  A command is parsed and its password checked on the
caller's thread (the terminal, or a control-socket connection); commands that
read or change the server's state run between the server's cycles
(`RunningServer.between_cycles`), so they never race the cycle and see one
state.  P, REPRINT and Q only publish requests or set a flag, and run on the
caller's thread.

Password.  Commands that change anything (everything except CH, I, HELP and
the show forms of CS, CP, F) need the console password when server.cmd has a
`PASSWORD` line.  A wrong password is answered after a delay that doubles
with each consecutive failure (1 s up to 16 s), is logged as an event, and
changes nothing.  Without a PASSWORD line no password is asked: then only the
people who can reach the console can change anything -- whoever sits at the
server's terminal, and the server's own user and root through the control
socket (`printnet.control` refuses everyone else).
"""

from __future__ import annotations

import threading
import time
import traceback
from pathlib import Path
from typing import Any, Final

from printnet.console.commands import COMMANDS, MENU, find_command
from printnet.console.common import CommandSpec, Ctx
from printnet.console.protocol import TERMINAL, Command, Reply, split_json
from printnet.control import ControlServer, Peer
from printnet.errors import PrintnetError
from printnet.operator import RunningServer
from printnet.passwords import verify_password

CALL_TIMEOUT: Final = 90.0  # seconds a command may wait for the server thread
FIRST_DELAY: Final = 1.0  # seconds before answering the first wrong password
MAX_DELAY: Final = 16.0


class Console:
    """Executes console commands against one running server (any thread)."""

    def __init__(self, server: RunningServer) -> None:
        self.server = server
        self._failures = 0
        self._mutex = threading.Lock()

    def handle(self, payload: dict[str, Any], peer: Peer | None) -> dict[str, Any]:
        """A control-socket command (JSON) -> its reply (JSON)."""
        origin = f"console socket ({peer.describe()})" if peer else TERMINAL
        try:
            command = Command.from_json(payload, origin)
        except PrintnetError as exc:
            return Reply.failure(str(exc), exc.exit_code).to_json()
        return self.execute(command).to_json()

    def execute(self, command: Command) -> Reply:
        argv, as_json = split_json(command.argv)
        try:
            if not argv:
                return Reply(text=MENU, data={"menu": MENU.splitlines(),
                                              "commands": [c.code for c in COMMANDS]})
            spec = find_command(argv[0])
            args = argv[1:]
            if spec.changes(args):
                denied = self._gate(command, spec)
                if denied is not None:
                    return denied
            ctx = Ctx(self.server, command, args, as_json)
            if not spec.server_thread:
                return spec.run(ctx)
            if self.server.stopping:
                return Reply.failure(f"server {self.server.name} is stopping")
            return self.server.between_cycles(lambda: spec.run(ctx), timeout=CALL_TIMEOUT)
        except PrintnetError as exc:
            return Reply.failure(str(exc), exc.exit_code)
        except Exception as exc:  # no traceback reaches the operator: one line, one event
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            self.server.log(f"console: internal error in {' '.join(argv)[:200]!r}: "
                            f"{exc!r} at {Path(frame.filename).name}:{frame.lineno}")
            return Reply.failure(f"internal error: {exc!r} (logged by server "
                                 f"{self.server.name})")

    def _gate(self, command: Command, spec: CommandSpec) -> Reply | None:
        stored = self.server.config().server.password_hash
        if stored is None:
            return None
        if command.password is None:
            return Reply(ok=False, needs="password", code=3,
                         error=f"{spec.code} changes the server: it needs the console "
                         "password")
        if verify_password(command.password, stored):
            with self._mutex:
                self._failures = 0
            return None
        with self._mutex:
            self._failures += 1
            delay = min(FIRST_DELAY * 2 ** (self._failures - 1), MAX_DELAY)
        # The delay is on the caller's thread: the server keeps printing meanwhile.
        time.sleep(delay)
        self.server.log(f"console: wrong password for {spec.code} from {command.origin}; "
                        "nothing changed")
        return Reply.failure("wrong console password: nothing was changed", 3)


def start_control(server: RunningServer) -> ControlServer | None:
    """Start the server's control socket (`printnet console` reaches it); None if not."""
    console = Console(server)
    channel = ControlServer(server.name, console.handle, on_event=server.log)
    try:
        if not channel.start():
            return None
    except PrintnetError as exc:
        server.log(f"console socket not started: {exc}")
        return None
    return channel
