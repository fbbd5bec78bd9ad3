"""Control of simulated printers (``sim://``) from any process.

Owns the state file protocol of the simulated printer: ``<out>.state`` beside
the printer's output file holds one word, `online` | `offline` | `paperout` |
`xoff`.  A missing file means online.  `sim_control` replaces the file
atomically (write a temp file beside it, then rename), so a printer never reads
half a word.

From a shell::

    python -m printnet.printers.simctl OUT STATE
"""

from __future__ import annotations

import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Final

STATE_SUFFIX: Final = ".state"


class SimState(StrEnum):
    """What a simulated printer is doing."""

    ONLINE = "online"  # accepts bytes and prints them at line rate
    OFFLINE = "offline"  # accepts nothing, prints nothing (its buffer is kept)
    PAPEROUT = "paperout"  # as offline, and says so through CD/DSR
    XOFF = "xoff"  # asked the host to stop: accepts nothing, still prints its buffer


def state_path(out: Path) -> Path:
    """The state file of the simulated printer that prints into `out`."""
    return out.with_name(out.name + STATE_SUFFIX)


def sim_control(out: Path, state: str) -> None:
    """Set the state of the simulated printer printing into `out` (atomic)."""
    word = SimState(state.strip().lower())  # ValueError on an unknown state
    target = state_path(Path(out))
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{os.urandom(3).hex()}.tmp")
    try:
        with open(tmp, "w", encoding="ascii") as fh:
            fh.write(word.value + "\n")
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_state(out: Path) -> SimState:
    """The state the state file of `out` asks for (missing: online)."""
    try:
        word = state_path(Path(out)).read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        return SimState.ONLINE
    return parse_state(word) or SimState.OFFLINE


def parse_state(word: str) -> SimState | None:
    """A state word; None for an empty file; OFFLINE for anything unknown."""
    word = word.strip().lower()
    if not word:
        return None
    try:
        return SimState(word)
    except ValueError:
        return SimState.OFFLINE


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        sys.stderr.write("usage: python -m printnet.printers.simctl OUT online|offline|"
                         "paperout|xoff\n")
        return 2
    try:
        sim_control(Path(args[0]), args[1])
    except ValueError:
        sys.stderr.write(f"unknown state {args[1]!r}\n")
        return 2
    except OSError as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
