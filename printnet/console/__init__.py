"""The operator console: the print server's control panel (CS, CP, CH, I, P, F, Q).

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

Every command has text output for people and `--json` data for programs.  The
console talks to a server only through `printnet.operator.RunningServer`
(what an operator may ask of a running server); the CLI wires the two.

The package, by concern:

- `protocol`: the wire format, `Command` (a parsed console command) and `Reply`;
- `gate`: `Console`, which runs a command behind the password gate, and the
  control socket that answers with it;
- `commands`: the command table, the menu, HELP, abbreviations;
- `common`: what the commands share (context, argument parsing, tables);
- `configure`: CS and CP; `queues`: CH, I, P, Q and the job verbs; `disks`: F;
- `session`: the terminal session (readline, prompt, the console at the
  server's terminal, `printnet console` attached to a running server).
"""

from printnet.console.commands import COMMANDS, MENU, find_command
from printnet.console.common import CommandSpec, pick
from printnet.console.gate import Console, start_control
from printnet.console.protocol import Command, Reply
from printnet.console.session import (
    Session,
    attach,
    pick_server,
    remote_session,
    serve_with_console,
)

__all__ = [
    "COMMANDS", "MENU", "Command", "CommandSpec", "Console", "Reply", "Session", "attach",
    "find_command", "pick", "pick_server", "remote_session", "serve_with_console",
    "start_control",
]
