"""The receiving side of forwarding between sites: a job from another printnet site
enters this spool exactly once, under its own printnet id (docs/SITES.md).

Both transports end here: the ``spool:`` port of a branch server writes through
this module into the central spool it mounts, and the central gateway calls it
for a Print-Job that carries ``printnet-job-id``.  `receive` is put-if-absent on
the job's id:

1. ``forwarded/<id>.json`` (the *ledger*) exists: the job came before (a resend
   after a lost acknowledgement): nothing is written, the answer is "had it".
2. The job is known here already (``new/<id>.req``, a claim in ``received/``,
   ``received/<id>.req``, ``done/<id>.json``, looked at in the order a job moves
   through them, so a job that moves meanwhile is not missed): an earlier
   attempt published it and died before its ledger record.  The record is
   written now; "had it".
3. Otherwise the data is copied into ``data/.<id>.<unique>/``, fsynced and
   renamed to ``data/<id>`` (a ``data/<id>`` left by an attempt that died before
   publishing its request is replaced), the request is written to ``tmp/``,
   everything is fsynced, and the request is ``link()``ed to ``new/<id>.req``
   (put-if-absent: a concurrent copy of it wins or loses whole).  ``new/`` is
   fsynced, then the ledger record is published (put-if-absent) and fsynced.

Only then does the caller acknowledge the job (the gateway answers, the branch
records it forwarded).  A crash anywhere before leaves either nothing visible
(temp names, purged as leftovers) or a published job that step 2 recognises.

The ledger remembers a forwarded id for `MEMORY` (30 days), longer than a
branch retries (docs/SITES.md) and longer than ``done/`` records live
(``spool purge --days 7``), so a resend is recognised even after the first
copy printed and its record was purged.  `purge_ledger` drops older records
(``printnet spool purge`` calls it).  The folder is created on first use
(mode 0755, the service account's), so spools made before it need nothing.

Central intake dedupes as well: a second ``<id>.req`` while the first is in
``received/`` or done is rejected (`intake`), which covers the one race left
here (two senders of one id at once: a branch server that stalled past its
lease and its successor; `# RACE:` below).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from printnet.errors import SpoolError
from printnet.model import PrintRequest, SpooledFile, iso, job_id_time_ms
from printnet.spool.layout import PRIVATE_MODE, REQ_SUFFIX, Spool
from printnet.spool.publish import (
    fsync_dir,
    fsync_file,
    link_new,
    translate,
    unique_name,
    unlink_quietly,
    write_new,
    write_temp,
)
from printnet.spool.submit import (
    DATA_DIR_MODE,
    DATA_FILE_MODE,
    REQUEST_MODE,
    WRITER,
    _hold_writer_lock,
)

LEDGER: Final = "forwarded"
MEMORY: Final = 30 * 86400.0  # seconds a forwarded id is remembered

# One receiver per id at a time in this process (a gateway's threads).
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


@dataclass(frozen=True, slots=True)
class Received:
    """What `receive` did: `new` False means the job was here already (a resend)."""

    job_id: str
    new: bool


def ledger_dir(spool: Spool) -> Path:
    return spool.root / LEDGER


def ledger_path(spool: Spool, job_id: str) -> Path:
    return ledger_dir(spool) / f"{job_id}.json"


def known(spool: Spool, job_id: str) -> bool:
    """Whether the job is in this spool (new, being claimed, received, or done).

    Looked at in the order a job moves (new/ -> received/.<name>.<unique> ->
    received/<name> -> done/ written before it leaves received/): a job that moves
    while we look is found at its next place."""
    name = job_id + REQ_SUFFIX
    if os.path.lexists(spool.new / name):
        return True
    try:
        if any(n.startswith("." + name) for n in os.listdir(spool.received)):
            return True
    except OSError as exc:
        raise translate(exc, spool.received) from exc
    return (os.path.lexists(spool.received / name)
            or os.path.lexists(spool.done / f"{job_id}.json"))


def remembered(spool: Spool, job_id: str) -> bool:
    """Whether the ledger has this id (it was forwarded here before)."""
    return os.path.lexists(ledger_path(spool, job_id))


def receive(spool: Spool, request: PrintRequest, files: Sequence[tuple[str, bytes]], *,
            origin: str) -> Received:
    """Publish a forwarded job under its own id, once (the module docstring).

    `request` is the job as the sending site has it (its id, user, station,
    submitted, printer: the printer *here*); its file list is made here from
    `files` (each file's original name and bytes: plaintext, whatever the sending
    site sealed).  `origin` names the sending site in the ledger record.  Raises
    `SpoolError` (the share failed: nothing acknowledged, the sender retries).
    """
    with _lock_for(request.id):
        return _receive(spool, request, files, origin)


def receive_as(spool: Spool, template: PrintRequest, files: Sequence[tuple[str, bytes]], *,
               job_id: str, user: str, station: str, origin: str,
               min_free: int = 0) -> PrintRequest:
    """`receive` for a door (the gateway): the job from `template` under `job_id`,
    submitted when the id says, after the MINFREE check a station's submit makes."""
    from printnet.spool.submit import Submitter

    Submitter(spool, user=user, station=station, min_free=min_free)._check_space(
        sum(len(data) for _, data in files))
    submitted = datetime.fromtimestamp(job_id_time_ms(job_id) / 1000, UTC)
    req = replace(template, id=job_id, user=user, station=station, submitted=submitted,
                  title=template.title or job_id)
    receive(spool, req, [(name or "document", data) for name, data in files], origin=origin)
    return req


def _lock_for(job_id: str) -> threading.Lock:
    with _locks_guard:
        lock = _locks.get(job_id)
        if lock is None:
            if len(_locks) > 10_000:
                _locks.clear()  # only ids in flight matter; an old lock is just garbage
            lock = _locks[job_id] = threading.Lock()
        return lock


def _receive(spool: Spool, request: PrintRequest, files: Sequence[tuple[str, bytes]],
             origin: str) -> Received:
    job_id = request.id
    try:
        ledger = ledger_dir(spool)
        if not ledger.is_dir():
            with contextlib.suppress(FileExistsError):
                os.mkdir(ledger, PRIVATE_MODE)
        if remembered(spool, job_id):
            return Received(job_id, new=False)
        if known(spool, job_id):
            _remember(spool, job_id, origin)
            return Received(job_id, new=False)
        written: list[Path] = []
        spooled = _copy_data(spool, job_id, files, written)
        if spooled is None:  # published meanwhile (a concurrent copy of the same job)
            _remember(spool, job_id, origin)
            return Received(job_id, new=False)
        req = replace(request, files=tuple(spooled), password=None, seal=None)
        tmp = write_temp(spool.tmp, req.encode(), REQUEST_MODE, sync=True, exact_mode=True)
        try:
            for path in written:
                if path.is_dir():
                    fsync_dir(path)
                else:
                    fsync_file(path)
            fsync_dir(spool.data)
            try:
                # RACE: two senders of one id at once pass `known` together; the link is
                # put-if-absent, so one request wins.  (One that was claimed out of new/
                # between the other's `known` and its link is rejected by intake as a
                # second <id>.req.)
                link_new(tmp, spool.new / (job_id + REQ_SUFFIX))
                fresh = True
            except FileExistsError:
                fresh = False
        finally:
            unlink_quietly(tmp)
        fsync_dir(spool.new)
        _remember(spool, job_id, origin)
        return Received(job_id, new=fresh)
    except OSError as exc:
        raise translate(exc, spool.root) from exc


def _copy_data(spool: Spool, job_id: str, files: Sequence[tuple[str, bytes]],
               written: list[Path]) -> list[SpooledFile] | None:
    """data/<id>/0, 1, ... holding `files`; None if the job was published meanwhile."""
    tmp_dir = spool.data / unique_name("." + job_id)
    os.mkdir(tmp_dir, DATA_DIR_MODE)
    spooled: list[SpooledFile] = []
    # The station's discipline (spool.submit): a flock on .writer while we copy, so the
    # servers' purge of abandoned folders leaves a slow copy alone, and removes ours
    # once we die (kill -9 mid-forward) and the grace has passed.
    lock_fd = _hold_writer_lock(tmp_dir / WRITER)
    try:
        for i, (original, data) in enumerate(files):
            path = tmp_dir / str(i)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, DATA_FILE_MODE)
            try:
                os.fchmod(fd, DATA_FILE_MODE)
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)
            spooled.append(SpooledFile(str(i), original, len(data),
                                       hashlib.sha256(data).hexdigest()))
        os.chmod(tmp_dir, DATA_DIR_MODE)
        os.unlink(tmp_dir / WRITER)  # RACE: the unlink refreshed the mtime: the grace covers us
        fsync_dir(tmp_dir)
        final = spool.job_data(job_id)
        try:
            os.rename(tmp_dir, final)
        except OSError as exc:
            if not os.path.isdir(final):
                raise
            # data/<id> exists: an earlier attempt got this far.  If it published its
            # request the job is here; otherwise it died before that, and its folder
            # (maybe not durable) is replaced by ours.
            if known(spool, job_id):
                shutil.rmtree(tmp_dir, ignore_errors=True)
                return None
            stale = spool.data / unique_name(f".{job_id}.stale")
            os.rename(final, stale)
            os.rename(tmp_dir, final)
            shutil.rmtree(stale, ignore_errors=True)
            del exc
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    finally:
        os.close(lock_fd)
    written.append(final)
    return spooled


def _remember(spool: Spool, job_id: str, origin: str) -> None:
    record: dict[str, Any] = {"id": job_id, "from": origin,
                              "received": iso(datetime.now(UTC))}
    try:
        write_new(ledger_path(spool, job_id), json.dumps(record).encode() + b"\n",
                  sync=True, sync_data=True)
    except FileExistsError:
        pass


def purge_ledger(spool: Spool, max_age: float = MEMORY, now: float | None = None) -> int:
    """Forget forwarded ids older than `max_age` seconds (by the disk's clock)."""
    folder = ledger_dir(spool)
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return 0
    except OSError as exc:
        raise SpoolError(f"{folder}: {exc.strerror}") from exc
    if now is None:
        probe = spool.tmp / unique_name(".probe")
        try:
            probe.touch()
            now = probe.stat().st_mtime
        except OSError as exc:
            raise translate(exc, spool.tmp) from exc
        finally:
            probe.unlink(missing_ok=True)
    removed = 0
    for entry in entries:
        try:
            if now - entry.stat(follow_symlinks=False).st_mtime >= max_age:
                os.unlink(entry.path)
                removed += 1
        except OSError:
            continue
    return removed
