"""The console's command table: every command, its words, summary, usage and
whether given arguments change anything (then the password gate applies);
the menu, HELP, and finding the command an abbreviated word names."""

from __future__ import annotations

from typing import Final

from printnet.console.common import CommandSpec, Ctx, always, never, table
from printnet.console.configure import CP_USAGE, CS_USAGE, cmd_cp, cmd_cs, cp_changes, cs_changes
from printnet.console.disks import F_USAGE, cmd_f, f_changes
from printnet.console.protocol import Reply
from printnet.console.queues import (
    CH_USAGE,
    P_USAGE,
    VERB_USAGE,
    cmd_cancel,
    cmd_ch,
    cmd_hold,
    cmd_info,
    cmd_move,
    cmd_print,
    cmd_quit,
    cmd_release,
    cmd_reprint,
    cmd_top,
)
from printnet.errors import UsageError
from printnet.model import clean_text

MENU: Final = (
    "CS - Configure server   CP - Configure printer   CH - Check queues\n"
    "I  - Server info        P  - Print a file        F  - File server commands\n"
    "Q  - Quit               HOLD RELEASE CANCEL MOVE TOP REPRINT - job verbs\n"
    "HELP [command] - how to use a command; add --json for machine-readable output"
)


def find_command(word: str) -> CommandSpec:
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


def cmd_help(ctx: Ctx) -> Reply:
    if ctx.args:
        cmd = find_command(ctx.args[0])
        return Reply(text=f"{cmd.code} - {cmd.summary}\n{cmd.usage}",
                     data={"command": cmd.code, "words": list(cmd.words),
                           "summary": cmd.summary, "usage": cmd.usage.splitlines()})
    lines = [MENU, ""]
    lines += table([[" / ".join(c.words), c.summary] for c in COMMANDS], "")
    lines.append("Abbreviate freely while unambiguous (INF = INFO, CA = CANCEL). "
                 "HELP CP shows CP's forms.")
    return Reply(text="\n".join(lines), data={"commands": [
        {"command": c.code, "words": list(c.words), "summary": c.summary,
         "usage": c.usage.splitlines(), "changes": c.code not in ("CH", "I", "HELP")}
        for c in COMMANDS]})


COMMANDS: Final[tuple[CommandSpec, ...]] = (
    CommandSpec(("CS",), "configure server", CS_USAGE, cmd_cs, cs_changes),
    CommandSpec(("CP",), "configure printer", CP_USAGE, cmd_cp, cp_changes),
    CommandSpec(("CH", "CHECK"), "check queues", CH_USAGE, cmd_ch, never),
    CommandSpec(("I", "INFO"), "server info", "I", cmd_info, never),
    CommandSpec(("P", "PRINT"), "print a file as the operator", P_USAGE, cmd_print, always,
                server_thread=False),
    CommandSpec(("F", "FILESERVER"), "file server (shared disk) commands", F_USAGE, cmd_f,
                f_changes),
    CommandSpec(("Q", "QUIT"), "quit: stop the server (jobs finish or are requeued)", "Q",
                cmd_quit, always, server_thread=False),
    CommandSpec(("HOLD",), "hold jobs", VERB_USAGE, cmd_hold, always),
    CommandSpec(("RELEASE",), "release held jobs", VERB_USAGE, cmd_release, always),
    CommandSpec(("CANCEL",), "cancel jobs", VERB_USAGE, cmd_cancel, always),
    CommandSpec(("MOVE",), "move jobs to another printer", VERB_USAGE, cmd_move, always),
    CommandSpec(("TOP",), "put jobs at the front of their priority", VERB_USAGE, cmd_top,
                always),
    CommandSpec(("REPRINT",), "reprint a finished job", VERB_USAGE, cmd_reprint, always,
                server_thread=False),
    CommandSpec(("HELP", "?"), "this list; HELP command for its forms", "HELP [command]",
                cmd_help, never, server_thread=False),
)
