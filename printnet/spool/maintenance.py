"""Operator maintenance of a spool: rebuild the master file, purge by age.

Both take the master lock (rebuild must; purge does so that it never races a
server finishing a job whose data it would remove).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from printnet.errors import LockHeld, PrintnetError
from printnet.spool import master as master_io
from printnet.spool.layout import Spool
from printnet.spool.lock import ExpiringLock, LockTable
from printnet.spool.publish import unique_name
from printnet.spool.forward import MEMORY, purge_ledger
from printnet.spool.submit import purge_leftovers

MASTER_LOCK = "master"


def master_lock(spool: Spool, *, lease: float, holder: str) -> ExpiringLock:
    return ExpiringLock(LockTable(spool.locks), MASTER_LOCK, lease=lease, holder=holder)


def rebuild_master(spool_dir: Path, *, lease: float = 30.0) -> int:
    """Rebuild the master file from received/ and done/; returns the live job count."""
    spool = Spool.open(spool_dir)
    lock = master_lock(spool, lease=lease, holder="rebuild")
    lock.acquire(timeout=3 * lease)
    try:
        store = master_io.MasterStore(spool)
        try:
            store.refresh()
            old = store.state
        except PrintnetError:
            old = None  # corrupt: the request files are the truth
        state = master_io.rebuild_state(spool, old)
        store.install(state, lock)
        return len(state)
    finally:
        lock.release()


def purge(spool_dir: Path, *, days: float, temp_hours: float) -> dict[str, int]:
    """Remove finished records older than `days`, and crash leftovers."""
    spool = Spool.open(spool_dir)
    lock = master_lock(spool, lease=30.0, holder="purge")
    if not lock.try_acquire():
        raise LockHeld("the master lock is held; try again in a moment")
    try:
        records = _purge_old(spool, days * 86400.0)
        leftovers = purge_leftovers(spool, temp_hours * 3600.0)
        locks = LockTable(spool.locks).purge()
        # Forwarded ids are remembered longer than done/ records (printnet.spool.forward).
        forwarded = purge_ledger(spool, max(MEMORY, days * 86400.0))
    finally:
        lock.release()
    return {"old records": records, "leftovers": leftovers, "lock leftovers": locks,
            "forwarded ids": forwarded}


def _purge_old(spool: Spool, max_age: float) -> int:
    probe = spool.tmp / unique_name(".probe")
    probe.touch()
    try:
        ref = probe.stat().st_mtime
    finally:
        probe.unlink(missing_ok=True)
    removed = 0
    for folder in (spool.done, spool.rejected):
        for entry in list(os.scandir(folder)):
            try:
                if ref - entry.stat(follow_symlinks=False).st_mtime < max_age:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)  # a directory dropped into new/, rejected
                else:
                    os.unlink(entry.path)
            except OSError:
                continue
            removed += 1
            if folder == spool.done and entry.name.endswith(".json"):
                # A finished job's retained documents go with its record.
                shutil.rmtree(spool.job_data(entry.name[:-5]), ignore_errors=True)
    return removed
