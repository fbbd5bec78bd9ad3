"""What the console's commands share: the command-table entry, the context a
command runs in, abbreviations, argument parsing and text tables.

A word matches a command or subcommand when it is its code or name, or the
start of exactly one (`INF` is INFO, `CA` is CANCEL; `C` is ambiguous).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from printnet.console.protocol import Command, Reply
from printnet.errors import NotFound, UsageError
from printnet.model import clean_text, normalize_name, valid_name
from printnet.operator import RunningServer


@dataclass(frozen=True)
class CommandSpec:
    """One entry of the command table."""

    words: tuple[str, ...]  # code first (CS), then names (INFO)
    summary: str
    usage: str
    run: Callable[[Ctx], Reply]
    changes: Callable[[list[str]], bool]  # whether these arguments change anything
    server_thread: bool = True  # run between the server's cycles (one consistent state)

    @property
    def code(self) -> str:
        return self.words[0]


@dataclass
class Ctx:
    """A command being run: the server it asks, the command as sent, its arguments."""

    server: RunningServer
    command: Command
    args: list[str]
    as_json: bool = False  # the answer's data is what the caller shows (--json)

    @property
    def origin(self) -> str:
        return self.command.origin


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


def sub(args: list[str], choices: Sequence[str], default: str) -> str:
    return pick(args[0], choices, "subcommand") if args else default


def never(args: list[str]) -> bool:
    return False


def always(args: list[str]) -> bool:
    return True


def table(rows: list[list[str]], indent: str = "  ") -> list[str]:
    if not rows:
        return []
    widths = [max(len(r[i]) for r in rows if i < len(r)) for i in range(len(rows[0]))]
    out = []
    for r in rows:
        cells = [c.ljust(widths[i]) if i < len(r) - 1 else c for i, c in enumerate(r)]
        out.append((indent + " ".join(cells)).rstrip())
    return out


def seconds(value: float | None) -> str:
    if value is None:
        return "never"
    if value < 60:
        return f"{value:.1f} s"
    value = int(value)
    h, rest = divmod(value, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d} min"


def key_values(words: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for word in words:
        key, eq, value = word.partition("=")
        if not eq or not key or not key[0].isalpha() or not key.replace("_", "").isalnum():
            raise UsageError(f"expected KEY=VALUE, not {clean_text(word, 40)!r}")
        out[key.upper()] = value
    return out


def need(args: list[str], count: int, usage: str) -> None:
    if len(args) < count:
        raise UsageError(f"usage: {usage}")


def name_arg(text: str, what: str) -> str:
    """A printer, class or setup name as typed: case-insensitive (upper-cased)."""
    name = normalize_name(text)
    if not valid_name(name):
        raise UsageError(f"invalid {what} name {clean_text(text, 40)!r}")
    return name


def options(args: list[str], flags: dict[str, str], valued: dict[str, str]
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


def number(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"{what} must be a number, not {clean_text(text, 20)!r}") from None
    if not value >= 0:
        raise UsageError(f"{what} must not be negative")
    return value


def resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path


def pick_disks(server: RunningServer, text: str | None) -> list[Path]:
    """The shared disks a command acts on: all, or one by number (F LIST) or folder."""
    disks = server.disks()
    if text is None:
        return disks
    if text.isdigit():
        index = int(text)
        if 1 <= index <= len(disks):
            return [disks[index - 1]]
        raise NotFound(f"no shared disk number {index} (F LIST shows them)")
    wanted = Path(os.path.normpath(server.config().project / text))
    for disk in disks:
        if disk == wanted or resolved(disk) == resolved(wanted):
            return [disk]
    raise NotFound(f"{clean_text(text, 80)} is not a shared disk of this server")
