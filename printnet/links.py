"""Pure core: the words and numbers of a remote printer's link (docs/SITES.md).

A printer whose port is *remote* (``ipp://``, ``ipps://``, ``spool:``) has a
*link*: it is up, or down since a moment (the first `printnet.errors.LinkDown`
its port raised).  This module owns what is said and computed about it, with
"now" and local times as parameters:

* `is_remote(port)`, `remote_name(port, name)`: whether a port has a link, and
  how notes name the remote (LINKNAME=, else the host of ``ipp://HOST/...``,
  else the share of ``spool:PATH``);
* the notes: `waiting_note` (``waiting for link to HQ since 10:02``, a job's note
  while it waits, LINKDOWN=QUEUE/REJECT), `link_hold_note` (held after LINKHOLD),
  `failover_note` / `parse_failover` (LINKDOWN=LOCAL: the note that travels with a
  job moved to the local printer, and says where it came from), `reject_reason`
  (LINKDOWN=REJECT at admission);
* `backoff(retry, attempts)`: the capped exponential back-off of the attempts to
  reach a remote whose link is down.

The planner that turns a link's state into job changes is
`printnet.server.links` (through `printnet.verbs`).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Final
from urllib.parse import urlsplit

REMOTE_SCHEMES: Final = ("ipp://", "ipps://", "spool:")
WAITING: Final = "waiting for link to "
FAILED_OVER: Final = "failed over from "
BACKOFF_CAP: Final = 300.0  # seconds: the longest wait between attempts (LINKRETRY=)

_FAILOVER_RE: Final = re.compile(
    r"failed over from (?P<src>[A-Z0-9][A-Z0-9&_.+-]{0,31}) to "
    r"(?P<dst>[A-Z0-9][A-Z0-9&_.+-]{0,31}): ")


def is_remote(port: str) -> bool:
    """Whether a printer's port reaches another site (and so has a link)."""
    return port.strip().lower().startswith(REMOTE_SCHEMES)


def remote_name(port: str, link_name: str | None = None) -> str:
    """How notes name the remote: LINKNAME=, else the port's host (ipp), else the
    folder of its share (spool:)."""
    if link_name:
        return link_name
    low = port.strip().lower()
    if low.startswith("spool:"):
        rest = port.strip()[len("spool:"):].split("?", 1)[0]
        return rest.rstrip("/") or "the central share"
    try:
        host = urlsplit(port.strip()).hostname
    except ValueError:
        host = None
    return host or port


def clock(at_local: datetime) -> str:
    """A moment as notes give it: the local wall clock, HH:MM (the full time is the
    status file's `since`)."""
    return at_local.strftime("%H:%M")


def waiting_note(remote: str, since_local: datetime) -> str:
    return f"{WAITING}{remote} since {clock(since_local)}"


def link_hold_note(remote: str, since_local: datetime, hours: float) -> str:
    return (f"held: the link to {remote} is down since {clock(since_local)} "
            f"(longer than LINKHOLD={hours:g} h)")


def failover_note(source: str, target: str, remote: str, since_local: datetime) -> str:
    return (f"{FAILED_OVER}{source} to {target}: the link to {remote} is down since "
            f"{clock(since_local)}")


def parse_failover(note: str) -> tuple[str, str] | None:
    """(printer it came from, printer it went to) of a failover note; None otherwise."""
    m = _FAILOVER_RE.match(note)
    return (m["src"], m["dst"]) if m else None


def is_waiting(note: str) -> bool:
    return note.startswith(WAITING)


def reject_reason(printer: str, remote: str, since_local: datetime) -> str:
    return (f"{printer} refuses new jobs: the link to {remote} is down since "
            f"{clock(since_local)} (LINKDOWN=REJECT)")


def backoff(retry: float, attempts: int, longest: float = BACKOFF_CAP) -> float:
    """Seconds before the next attempt after `attempts` failed ones: RETRY= doubled
    each time, at most `longest` (LINKRETRY=; or RETRY= itself when that is longer)."""
    cap = max(longest, retry)
    return min(cap, retry * (2.0 ** max(0, min(attempts - 1, 40))))
