"""The master file on disk: snapshots, a fenced journal, compaction and rebuild.

On-disk protocol (folder ``<spool>/master/``)::

    snap.<G>        the whole live-job list at the start of generation G
                    (10-digit G; `masterfile.encode_snapshot`)
    j.<G>.<S>       journal entry S (8 digits, from 1) of generation G: the ops
                    of one commit (`masterfile.encode_ops`), or
                      SEAL     generation G is closed; the state carries on into G+1
                      REBUILD  generation G is closed; reload from snap.<G+1>

State = the newest snapshot, then its journal entries in order, following
SEALs into the next generation.  A missing snapshot means an empty master
file at generation 0.

Every file is published with `publish.write_new`: written to a temp name,
fsynced, then `link()`ed to its final name, which fails if the name exists.
That put-if-absent is the **fence**: a writer commits entry S+1 only if it
has read entries up to S, so a holder that stalled past its lock's expiry
and wakes up with an old view gets EEXIST (raised as `Fenced`) instead of
overwriting what its successor wrote.  The master lock is for efficiency
and liveness; the fence is what keeps the history linear.  Writers also call
`lock.check()` before committing (remaining lease on their own clock).

Compaction (under the lock): write SEAL as j.<G>.<S+1> (fenced like any
entry), then snap.<G+1> with the state at that point (put-if-absent; the
content is determined by the sealed history, so any writer may finish the
job of a compactor that died between the two steps), then delete files of
generations below G.  A reader that finds its next entry missing while a
newer snapshot exists has been overtaken by that clean-up and reloads.

Rebuild (`rebuild`, under the lock) recreates the live list from the request
files in received/ that have no record in done/, writes REBUILD into the
current generation and the rebuilt snapshot as the next one.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterable
from typing import Final, Protocol

from printnet.errors import Fenced, PrintnetError, SpoolError
from printnet.masterfile import (
    COMPACT_ENTRIES,
    FIELDS,
    SEAL,
    Job,
    LazyState,
    MasterState,
    Op,
    decode_ops,
    decode_snapshot,
    decode_snapshot_lazy,
    encode_ops,
    encode_snapshot,
)
from printnet.model import JobState, PrintRequest, decode_request
from printnet.spool.intake import read_regular
from printnet.spool.layout import REQ_SUFFIX, Spool
from printnet.spool.publish import read_bytes, write_new

REBUILD: Final = b"REBUILD\n"
_SNAP_RE: Final = re.compile(r"snap\.(\d{10})")
_ENTRY_RE: Final = re.compile(r"j\.(\d{10})\.(\d{8})")
COMPACT_MIN_BYTES: Final = 1 << 20  # never compact for a journal under 1 MiB of ops


class Fence(Protocol):
    """What a commit needs from the lock it writes under (an `ExpiringLock`)."""

    def check(self) -> None: ...


def _snap_name(gen: int) -> str:
    return f"snap.{gen:010d}"


def _entry_name(gen: int, seq: int) -> str:
    return f"j.{gen:010d}.{seq:08d}"


class MasterStore:
    """One process's view of a spool's master file, kept current incrementally."""

    def __init__(self, spool: Spool) -> None:
        self.spool = spool
        self.dir = spool.master
        self.state = MasterState()
        self.generation = 0
        self.seq = 0  # last entry of `generation` reflected in `state`
        self.snapshot_bytes = 0
        self.journal_bytes = 0
        self.loaded = False
        self.decode: Callable[[bytes], tuple[int, MasterState]] = decode_snapshot
        self.loads = 0  # times `state` was replaced by a full load (its `changed` restarts)

    # -- reading ---------------------------------------------------------------------

    def refresh(self, *, sure: bool = False) -> bool:
        """Bring `state` up to date; return whether it changed.

        `sure` (under the master lock, before deciding anything): do not trust a
        "no next entry" answer from the client's name cache.  NFS and GlusterFS
        cache a negative lookup for about a second; a writer that believed an
        entry another server had just written was absent would act on a stale
        state (its commit is fenced, but the done/ records and accounting lines
        written before it are not).  The folder's listing is asked instead.
        """
        if not self.loaded:
            self._load()
            return True
        for _ in range(5):
            try:
                return self._replay(sure)
            except _Overtaken:
                self._load()
                return True
        raise SpoolError(f"{self.dir}: the master file keeps changing under the reader")

    def _load(self) -> None:
        for attempt in range(20):
            if attempt:
                # A rebuild writes REBUILD, then its snapshot: give it a moment.
                time.sleep(min(0.5, 0.01 * 2**attempt))
            gen = self._newest_snapshot()
            try:
                if gen is None:
                    self.state, self.generation, self.snapshot_bytes = MasterState(), 0, 0
                else:
                    data = read_bytes(self.dir / _snap_name(gen))
                    self.generation, self.state = self.decode(data)
                    self.snapshot_bytes = len(data)
                    if self.generation != gen:
                        raise SpoolError(f"{_snap_name(gen)} claims generation {self.generation}")
                self.seq = 0
                self.journal_bytes = 0
                self.loaded = True
                self.loads += 1
                self._replay()
                return
            except (FileNotFoundError, _Overtaken):
                continue  # RACE: a compactor removed what we were reading; start over
        raise SpoolError(f"{self.dir}: cannot load a consistent master file")

    def _newest_snapshot(self) -> int | None:
        try:
            names = os.listdir(self.dir)
        except OSError as exc:
            raise SpoolError(f"{self.dir}: {exc.strerror}") from exc
        gens = [int(m.group(1)) for n in names if (m := _SNAP_RE.fullmatch(n))]
        return max(gens, default=None)

    def _replay(self, sure: bool = False) -> bool:
        changed = False
        misses = 0
        while True:
            path = self.dir / _entry_name(self.generation, self.seq + 1)
            try:
                data = read_bytes(path)
            except FileNotFoundError:
                if sure and self._listed(path.name):
                    # RACE: written by another server, but our client still caches
                    # the name as absent; the listing refreshed it.  Read it again.
                    misses += 1
                    if misses > 40:
                        raise SpoolError(f"{path}: listed but not readable") from None
                    time.sleep(0.05 if misses > 1 else 0)
                    continue
                # RACE: "not written yet", or "our generation was cleaned up after
                # newer snapshots superseded it".  Only the latter leaves a newer one.
                base = (
                    _entry_name(self.generation, self.seq) if self.seq
                    else _snap_name(self.generation)
                )
                if not (self.dir / base).exists():
                    newest = self._newest_snapshot()
                    if newest is not None and newest > self.generation:
                        raise _Overtaken from None
                return changed
            except OSError as exc:
                raise SpoolError(f"{path}: {exc.strerror}") from exc
            misses = 0
            if data == SEAL:
                self.generation += 1
                self.seq = 0
                self.journal_bytes = 0
                self.snapshot_bytes = max(self.snapshot_bytes, 1)
                continue
            if data == REBUILD:
                raise _Overtaken
            self.state.apply_all(decode_ops(data), strict=False)
            self.seq += 1
            self.journal_bytes += len(data)
            changed = True

    def _listed(self, name: str) -> bool:
        try:
            return name in os.listdir(self.dir)
        except OSError as exc:
            raise SpoolError(f"{self.dir}: {exc.strerror}") from exc

    # -- writing (under the master lock) -------------------------------------------

    def commit(self, ops: Iterable[Op], fence: Fence) -> int:
        """Append one journal entry with `ops` (fenced).  Returns the number applied.

        Raises `Fenced` when another writer committed since our last refresh: the
        caller must refresh and decide again.  Ops invalid against the current state
        are skipped by every reader alike (replay is deterministic).
        """
        ops = list(ops)
        if not ops:
            return 0
        data = encode_ops(ops)
        fence.check()
        name = _entry_name(self.generation, self.seq + 1)
        self._put(name, data)
        newest = self._newest_snapshot()
        if newest is not None and newest > self.generation:
            # RACE: we stalled so long that our generation was closed and cleaned
            # up, so the put-if-absent found the name free.  Our entry is garbage.
            # (A generation is only cleaned up after a newer snapshot exists, and
            # snapshots are only deleted after a still newer one exists.)
            try:
                os.unlink(self.dir / name)
            except OSError:
                pass
            raise Fenced(f"master generation {self.generation} was closed under us")
        self.seq += 1
        self.journal_bytes += len(data)
        applied = self.state.apply_all(ops, strict=False)
        if self.seq >= COMPACT_ENTRIES or self.journal_bytes > max(
            COMPACT_MIN_BYTES, self.snapshot_bytes // 4
        ):
            try:
                self.compact(fence)
            except SpoolError:
                # The commit is durable; compaction is housekeeping that the next
                # writer retries.  Raising here would make the caller redo the ops.
                pass
        return applied

    def _put(self, name: str, data: bytes) -> None:
        try:
            write_new(self.dir / name, data)
        except FileExistsError:
            raise Fenced(f"master entry {name} was written by another server") from None

    def compact(self, fence: Fence) -> None:
        """Seal this generation and write the next snapshot (see the module docstring)."""
        fence.check()
        self._put(_entry_name(self.generation, self.seq + 1), SEAL)
        self.generation += 1
        self.seq = 0
        self.journal_bytes = 0
        data = encode_snapshot(self.state, self.generation)
        try:
            write_new(self.dir / _snap_name(self.generation), data)
        except FileExistsError:
            pass  # another writer finished a compaction we were both doing
        self.snapshot_bytes = len(data)
        # Keep two older generations: readers may be in the middle of them.
        self._collect(self.generation - 2)

    def _collect(self, keep_from: int) -> None:
        """Delete snapshots and entries of generations below `keep_from`."""
        try:
            names = os.listdir(self.dir)
        except OSError:
            return
        for name in names:
            m = _SNAP_RE.fullmatch(name) or _ENTRY_RE.fullmatch(name)
            if m and int(m.group(1)) < keep_from:
                try:
                    os.unlink(self.dir / name)
                except OSError:
                    pass

    def install(self, state: MasterState, fence: Fence) -> None:
        """Replace the whole master file by `state` (rebuild), fenced."""
        fence.check()
        # Close whatever generation exists, even if its entries cannot be decoded.
        gens, last = self._scan_entries()
        gen = max(gens, default=self.generation)
        self._put(_entry_name(gen, last.get(gen, 0) + 1), REBUILD)
        self.generation, self.seq, self.journal_bytes = gen + 1, 0, 0
        data = encode_snapshot(state, self.generation)
        self._put(_snap_name(self.generation), data)
        self.snapshot_bytes = len(data)
        self.state = state
        self.loaded = True
        self.loads += 1
        self._collect(self.generation)

    def _scan_entries(self) -> tuple[set[int], dict[int, int]]:
        gens: set[int] = set()
        last: dict[int, int] = {}
        for name in os.listdir(self.dir):
            if m := _SNAP_RE.fullmatch(name):
                gens.add(int(m.group(1)))
            elif m := _ENTRY_RE.fullmatch(name):
                g, s = int(m.group(1)), int(m.group(2))
                gens.add(g)
                last[g] = max(last.get(g, 0), s)
        return gens, last


class _Overtaken(Exception):
    """Internal: the generation being read was closed by a rebuild or cleaned up."""


def load(spool: Spool) -> MasterState:
    """The current live jobs, for readers that hold no lock (status)."""
    store = MasterStore(spool)
    store.refresh()
    return store.state


def load_listing(spool: Spool) -> LazyState:
    """The current live jobs as text rows in queue order (`LazyState.rows`), no lock.

    What `printnet status` reads: the same master file as `load`, without decoding
    the jobs no journal entry touched.
    """
    store = MasterStore(spool)
    store.decode = decode_snapshot_lazy
    store.refresh()
    if isinstance(store.state, LazyState):
        return store.state
    listing = LazyState(list(FIELDS), [], [])  # no snapshot yet: journal entries only
    listing.adopt(store.state.jobs.values())
    return listing


def finished_ids(spool: Spool) -> set[str]:
    """Ids with a record in done/ (finished jobs and applied control requests)."""
    try:
        return {n[:-5] for n in os.listdir(spool.done) if n.endswith(".json")}
    except OSError as exc:
        raise SpoolError(f"{spool.done}: {exc.strerror}") from exc


def received_requests(
    spool: Spool, on_error: Callable[[str, PrintnetError], None] | None = None
) -> dict[str, PrintRequest]:
    """Print requests in received/ (taken in, not finished), by job id."""
    out: dict[str, PrintRequest] = {}
    for name in sorted(os.listdir(spool.received)):
        if not name.endswith(REQ_SUFFIX) or name.startswith("."):
            continue
        try:
            req = decode_request(read_regular(spool.received / name)[0])
        except FileNotFoundError:
            continue  # RACE: finished and moved to done/ while we listed
        except (PrintnetError, OSError) as exc:
            if on_error is not None:
                err = exc if isinstance(exc, PrintnetError) else SpoolError(str(exc))
                on_error(name, err)
            continue
        if isinstance(req, PrintRequest):
            out[req.id] = req
    return out


def rebuild_state(spool: Spool, old: MasterState | None = None) -> MasterState:
    """The live jobs as the request files say, keeping what `old` knows of them.

    Jobs that `old` still has keep their state, note and rank, except that a job
    that was printing returns to pending (its holder's claim is not trusted).
    Jobs only the request files know start pending (or held, if asked).
    """
    done = finished_ids(spool)
    jobs: list[Job] = []
    for job_id, req in received_requests(spool).items():
        if job_id in done:
            continue
        known = old.get(job_id) if old is not None else None
        job = Job.from_request(req)
        if known is not None:
            job.state, job.note, job.rank = known.state, known.note, known.rank
            job.restarted, job.destination, job.priority = (
                known.restarted, known.destination, known.priority,
            )
            if job.state is JobState.PRINTING:
                job.state, job.note = JobState.PENDING, "requeued by master rebuild"
                job.restarted += 1
            elif job.state.terminal:
                continue
        jobs.append(job)
    return MasterState(jobs)
