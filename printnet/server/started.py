"""Which assigned jobs a server's printers actually started: `servers/<NAME>.started`.

A job is assigned (state printing) before its printer sends a byte: assigning ahead
gives a printer jobs while it still prints the one before.  When a server dies
(kill -9), whoever requeues its printing jobs -- the same server starting again,
or another server finding its lease gone -- must count a restart (`restarted`,
the "restarted while printing it" line) only for a job that sent bytes.  So a
worker appends ``<job id> <lease token>\\n`` to this file just before its first
byte goes out (one small O_APPEND write, no fsync: it survives the death of the
process, which is what kill -9 is; a host crash may lose the last lines, and
the spool's own sync of the next commit covers the rest).  A job counts as
started when its id *and* the token it was assigned under are listed.

The file is the server's own (one writer); it is emptied once the server's
first cycle on the disk has reconciled the jobs of its previous life.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def path(servers: Path, name: str) -> Path:
    return servers / f"{name}.started"


def read(servers: Path, name: str) -> set[tuple[str, str]]:
    """(job id, token) of every job server `name` recorded as started; empty if none."""
    try:
        text = path(servers, name).read_text("ascii", errors="replace")
    except OSError:
        return set()
    out = set()
    for line in text.splitlines():
        job_id, _, token = line.partition(" ")
        if job_id and token:
            out.add((job_id, token))
    return out


def mark(servers: Path, name: str, job_id: str, token: str) -> None:
    """Job `job_id` (assigned under `token`) is about to send its first byte.

    One O_APPEND write of one short line: atomic among writers, no fsync."""
    line = f"{job_id} {token}\n".encode("ascii", "replace")
    with contextlib.suppress(OSError):
        fd = os.open(path(servers, name), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)


def clear(servers: Path, name: str) -> None:
    """Forget the previous life's entries (once its jobs were reconciled)."""
    with contextlib.suppress(OSError):
        os.truncate(path(servers, name), 0)
