"""Shell completion (bash, zsh, fish) through click's mechanism, with names from the spool.

`printnet completion SHELL` prints the script click generates for the
``_PRINTNET_COMPLETE`` variable; the shell then calls `printnet` with that
variable set, and the `shell_complete` callbacks here answer with the
printers, classes and setups a station knows (`Station.destinations`) and
the job ids of the queue.  A callback never fails: a spool it cannot read
completes nothing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import click
from click.shell_completion import CompletionItem, get_completion_class

if TYPE_CHECKING:
    from printnet.api import Station

SHELLS = ("bash", "zsh", "fish")
COMPLETE_VAR = "_PRINTNET_COMPLETE"
MAX_JOBS = 500  # a queue of 100,000 jobs completes its first ones, not all


def script(cli: click.Command, shell: str) -> str:
    """The completion script for `shell`, as `_PRINTNET_COMPLETE=<shell>_source` prints it."""
    cls = get_completion_class(shell)
    if cls is None:
        raise click.BadParameter(f"no completion for {shell!r}; use one of {', '.join(SHELLS)}")
    return cls(cli, {}, "printnet", COMPLETE_VAR).source()


def _station(ctx: click.Context) -> Station | None:
    root = ctx.find_root()
    spool = root.params.get("spool") or os.environ.get("PRINTNET_SPOOL") or "spool"
    etc = root.params.get("etc") or os.environ.get("PRINTNET_ETC") or "etc"
    try:
        from printnet.api import Station

        return Station(Path(spool), Path(etc) if Path(etc).exists() else None)
    except Exception:  # completion must never show a traceback
        return None


def _matching(names: list[str], incomplete: str) -> list[CompletionItem]:
    prefix = incomplete.upper()
    return [CompletionItem(n) for n in sorted(names) if n.upper().startswith(prefix)]


def destinations(ctx: click.Context, _param: click.Parameter,
                 incomplete: str) -> list[CompletionItem]:
    """Printers and classes the station knows."""
    station = _station(ctx)
    try:
        names = list(station.destinations().known) if station is not None else []
    except Exception:
        names = []
    return _matching(names, incomplete)


def setups(ctx: click.Context, _param: click.Parameter,
           incomplete: str) -> list[CompletionItem]:
    station = _station(ctx)
    try:
        names = list(station.destinations().setups) if station is not None else []
    except Exception:
        names = []
    return _matching(names, incomplete)


def jobs(ctx: click.Context, _param: click.Parameter,
         incomplete: str) -> list[CompletionItem]:
    """Job ids of the queue (in queue order), with their title as help."""
    station = _station(ctx)
    if station is None:
        return []
    prefix = incomplete.upper()
    out: list[CompletionItem] = []
    try:
        _, rows = station.listing()
        for row in rows:
            job_id, owner, title = row[1], row[2], row[7]
            if job_id.startswith(prefix):
                out.append(CompletionItem(job_id, help=f"{owner}: {title}"))
                if len(out) >= MAX_JOBS:
                    break
    except Exception:
        return out
    return out
