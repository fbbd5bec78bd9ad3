"""Pure core: the master file's contents, its operations and its encodings.

Owns `Job` (one live job as the master file records it), `Op` (one change),
`MasterState` (the live jobs, ordered) and the byte encodings of a snapshot
and of a journal entry.  `MasterState.apply` is the one place where a job's
state changes; it enforces `model.TRANSITIONS` and the lease token (a
printing job's holder must present the token it was assigned with).

Encoding and update strategy (chosen for 100,000 live jobs)
-----------------------------------------------------------
* A **snapshot** is one job per line, tab-separated fields in a fixed order,
  between a header line (``printnet-master<TAB>1<TAB>generation<TAB>count``)
  and a trailer line (``end<TAB>count``) that detects truncation.  Text
  fields are cleaned of control characters before they get here, so no
  escaping is needed; the encoder still replaces a stray tab/newline.
  ~170 bytes per job: 100,000 jobs are ~17 MB, decoded in ~0.2 s by
  `str.split` (JSON would take three times longer).
* A **journal entry** is a small JSON-lines file of ops (one commit).  A
  server's cycle commits one entry however many jobs it touched, so the
  cost of a commit is one small file, not a rewrite of 17 MB.
* **Compaction** writes a new snapshot after `COMPACT_ENTRIES` entries or
  when the journal's bytes exceed a quarter of the snapshot's, so a reader
  never replays more than a bounded journal.
* In memory, jobs are kept in a dict plus one sorted index per destination
  (printer or class name), so the scheduler walks only the queues of the
  printers it controls and a change costs O(log n) + a memmove, not a sort.

How these files are named and fenced on disk is `printnet.spool.master`'s
business; this module knows nothing of files.

Over 600 lines on purpose: the job record, its ops and both encodings share one
field table (`FIELDS`, the row decoder) and change together; split, one format
would live in three files.
"""

from __future__ import annotations

import json
import sys
from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable, Iterable, Iterator
from dataclasses import MISSING, dataclass, fields, replace
from itertools import count as _count
from operator import attrgetter, itemgetter
from typing import Any, Final

from printnet.errors import InvalidTransition, SpoolError
from printnet.model import (
    Format,
    JobState,
    PrintRequest,
    Priority,
    check_transition,
    iso,
)

SNAPSHOT_MAGIC: Final = "printnet-master"
SNAPSHOT_VERSION: Final = 1
ID_LENGTH: Final = 18  # characters of a job id (`model.JobIdGenerator`)
COMPACT_ENTRIES: Final = 256  # journal entries per generation before a new snapshot

RESTARTED_NOTE: Final = "restarted after server failure"

SortKey = tuple[int, int, str]


@dataclass(slots=True)
class Job:
    """One live job as the master file records it."""

    id: str
    user: str
    station: str
    submitted: str  # ISO 8601 UTC, as in the request
    destination: str  # the destination asked for: a printer or a class (on disk: printer)
    priority: Priority
    copies: int
    title: str
    setup: str  # "" = whatever the printer has mounted
    header: bool
    format: Format
    state: JobState
    note: str = ""
    rank: int = 0  # operator reordering: lower prints first within a priority
    assigned: str = ""  # the printer printing (or that printed) it
    holder: str = ""  # the server printing it
    token: str = ""  # the holder's lease token (its server lock generation)
    restarted: int = 0  # times it was requeued after its holder failed mid-print
    size: int = 0  # bytes of data
    pages: int = 0  # pages the job prints, as counted at intake (0: not counted)
    held_at: str = ""  # ISO 8601 UTC: when it entered `held` ("" if not held or unknown)

    @property
    def key(self) -> SortKey:
        return (self.priority.rank, self.rank, self.id)

    @classmethod
    def from_request(cls, req: PrintRequest) -> Job:
        return cls(
            id=req.id,
            user=req.user,
            station=req.station,
            submitted=iso(req.submitted),
            destination=req.printer,
            priority=req.priority,
            copies=req.copies,
            title=req.title,
            setup=req.setup or "",
            header=req.header,
            format=req.format,
            state=JobState.HELD if req.hold else JobState.PENDING,
            size=req.size,
            held_at=iso(req.submitted) if req.hold else "",
        )

    def to_json(self) -> dict[str, Any]:
        # One C-level attrgetter call instead of a getattr per field: status --json
        # turns 100,000 jobs into dicts.
        out = dict(zip(FIELDS, _GET_FIELDS(self), strict=True))
        for name in _ENUM_FIELDS:
            out[name] = out[name].value
        return out


# On disk and on the wire `Job.destination` is still called "printer" (snapshot
# column, journal "add" and "set" fields, status --json keys): older stations and
# other hosts read those names.  FIELDS are the on-disk names; the mapping is here.
_WIRE_NAME: Final = {"destination": "printer"}
_ATTR_OF: Final = {wire: attr for attr, wire in _WIRE_NAME.items()}
ATTRS: Final = tuple(f.name for f in fields(Job))
FIELDS: Final = tuple(_WIRE_NAME.get(a, a) for a in ATTRS)
_INT_FIELDS: Final = frozenset({"copies", "rank", "restarted", "size", "pages"})
_GET_FIELDS: Final = attrgetter(*ATTRS)


def attr_of(field: str) -> str:
    """The `Job` attribute an on-disk field name stands for."""
    return _ATTR_OF.get(field, field)
_ENUM_FIELDS: Final = tuple(
    f.name for f in fields(Job) if f.type in ("Priority", "JobState", "Format")
)
_BOOL_AT: Final = tuple(i for i, f in enumerate(fields(Job)) if f.type == "bool")


def _plain(value: object) -> object:
    return value.value if isinstance(value, Priority | JobState | Format) else value


# ---------------------------------------------------------------------------
# Operations


@dataclass(frozen=True, slots=True)
class Op:
    """One change to the master file.

    kinds:
      add     job=<Job>                      enter a new job
      state   id, state, note, [holder, token, assigned, token_was, at]
                                              change state (TRANSITIONS applies;
                                              `at`, ISO time, stamps entering held);
                                              `token_was` fences a printing job's
                                              holder: the op is void unless the job's
                                              current token equals it
      note    id, note                        change the note only
      set     id, [priority, rank, printer, pages, restarted, copies]
                                              (printer: the on-disk name of destination)
      remove  id, [token_was]                 the job finished and left the master file
    """

    kind: str
    id: str
    args: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"op": self.kind, "id": self.id, **self.args}


def op_add(job: Job) -> Op:
    return Op("add", job.id, {"job": job.to_json()})


def op_state(job_id: str, state: JobState, note: str = "", **extra: Any) -> Op:
    return Op("state", job_id, {"state": state.value, "note": note, **extra})


def op_note(job_id: str, note: str) -> Op:
    return Op("note", job_id, {"note": note})


def op_set(job_id: str, **changes: Any) -> Op:
    """A "set" op; `changes` are `Job` attribute names (destination= is written printer)."""
    return Op("set", job_id, {_WIRE_NAME.get(k, k): _plain(v) for k, v in changes.items()})


def op_remove(job_id: str, token_was: str | None = None) -> Op:
    return Op("remove", job_id, {} if token_was is None else {"token_was": token_was})


_SETTABLE: Final = frozenset({"priority", "rank", "printer", "pages", "restarted", "copies"})
_PRIORITY_VALUES: Final = frozenset(p.value for p in Priority)


def job_from_json(obj: dict[str, Any]) -> Job:
    try:
        values: dict[str, Any] = {a: obj[f] for a, f in zip(ATTRS, FIELDS, strict=True) if f in obj}
        values["priority"] = Priority(values["priority"])
        values["state"] = JobState(values["state"])
        values["format"] = Format(values["format"])
        for name, value in values.items():
            if not _valid_value(name, value):
                raise ValueError(f"{name}={value!r}")
        return Job(**values)
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise SpoolError(f"master journal: bad job record: {exc}") from None


def _valid_value(name: str, value: object) -> bool:
    """Whether `value` has the type `Job.<name>` needs (a corrupt entry must not get in)."""
    if name in _INT_FIELDS:
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "header":
        return isinstance(value, bool)
    if name in ("priority", "state", "format"):
        return isinstance(value, Priority | JobState | Format)
    return isinstance(value, str)


# ---------------------------------------------------------------------------
# State


class _SortedKeys:
    """A sorted list of job keys (a poor man's SortedList, enough for 10^5)."""

    __slots__ = ("keys",)

    def __init__(self) -> None:
        self.keys: list[SortKey] = []

    def add(self, key: SortKey) -> None:
        insort(self.keys, key)

    def discard(self, key: SortKey) -> None:
        i = bisect_left(self.keys, key)
        if i < len(self.keys) and self.keys[i] == key:
            del self.keys[i]


class MasterState:
    """The live jobs: a dict by id plus per-destination sorted indexes."""

    def __init__(self, jobs: Iterable[Job] = ()) -> None:
        self.jobs: dict[str, Job] = {}
        self._by_dest: dict[str, _SortedKeys] = {}
        self._order: list[Job] | None = None
        # Ids of printing jobs: the scheduler and lease checks look at these every
        # cycle, and must not walk 100,000 pending jobs to find them.
        self._printing: set[str] = set()
        # Ids of jobs added or changed since the owner last cleared this (the
        # scheduler's incremental notes; see `scheduling.decide`).
        self.changed: set[str] = set()
        batch: dict[str, list[SortKey]] = {}
        for job in jobs:
            self.jobs[job.id] = job
            batch.setdefault(job.destination, []).append(job.key)
            if job.state is JobState.PRINTING:
                self._printing.add(job.id)
        for dest, keys in batch.items():
            index = _SortedKeys()
            index.keys = sorted(keys)
            self._by_dest[dest] = index

    def __len__(self) -> int:
        return len(self.jobs)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self.jobs

    def get(self, job_id: str) -> Job | None:
        return self.jobs.get(job_id)

    def printing_jobs(self) -> list[Job]:
        """The jobs in state printing (from an index: no walk over the others)."""
        jobs = self.jobs
        return [jobs[i] for i in self._printing if i in jobs]

    def preview(self, ops: Iterable[Op]) -> MasterState:
        """A copy with `ops` applied (invalid ones skipped); this state is unchanged.

        Copy-on-write: the dict and indexes are copied (C speed), but only the jobs
        the ops touch are copied as objects.
        """
        new = MasterState()
        new.jobs = dict(self.jobs)
        for dest, index in self._by_dest.items():
            copied = _SortedKeys()
            copied.keys = list(index.keys)
            new._by_dest[dest] = copied
        new._printing = set(self._printing)
        new.changed = set(self.changed)
        mine: set[str] = set()
        for op in ops:
            job = new.jobs.get(op.id)
            if job is not None and op.id not in mine:
                new.jobs[op.id] = replace(job)
                mine.add(op.id)
            try:
                new.apply(op)
            except InvalidTransition:
                pass
        return new

    def ordered(self) -> list[Job]:
        """All live jobs in queue order: priority, operator rank, submission."""
        if self._order is None:
            self._order = sorted(self.jobs.values(), key=_key_of)
        return self._order

    def queue(self, dest: str) -> Iterator[Job]:
        """The jobs for one destination (printer or class), in queue order."""
        index = self._by_dest.get(dest)
        if index is None:
            return
        jobs = self.jobs
        for key in list(index.keys):
            job = jobs.get(key[2])
            if job is not None:
                yield job

    def destinations(self) -> list[str]:
        return [d for d, idx in self._by_dest.items() if idx.keys]

    def front_rank(self, priority: Priority) -> int:
        """A rank that puts a job ahead of every other job of `priority`."""
        ranks = [j.rank for j in self.jobs.values() if j.priority is priority]
        return min(ranks, default=0) - 1

    # -- the one place a job changes -------------------------------------------------

    def check(self, op: Op) -> None:
        """Raise `InvalidTransition` if `op` cannot apply to the current state."""
        # Ops come from journal files: every value is checked here, so that `apply`
        # either changes nothing (InvalidTransition) or completes.
        if op.kind == "add":
            self._added_job(op)
            return
        job = self.jobs.get(op.id)
        if job is None:
            raise InvalidTransition(f"job {op.id} is not in the master file")
        token_was = op.args.get("token_was")
        if token_was is not None and job.token != token_was:
            raise InvalidTransition(f"job {op.id}: lease token mismatch (fenced)")
        if op.kind == "state":
            try:
                new = JobState(op.args.get("state", ""))
            except ValueError:
                bad_state = op.args.get("state")
                raise InvalidTransition(f"job {op.id}: bad state {bad_state!r}") from None
            check_transition(op.id, job.state, new)
            if new is JobState.PRINTING and not op.args.get("holder"):
                raise InvalidTransition(f"job {op.id}: printing needs a holder")
            for name in ("note", "holder", "token", "assigned", "at"):
                if not isinstance(op.args.get(name, ""), str):
                    raise InvalidTransition(f"job {op.id}: {name} must be a string")
        elif op.kind == "note":
            if not isinstance(op.args.get("note"), str):
                raise InvalidTransition(f"job {op.id}: note must be a string")
        elif op.kind == "set":
            bad = set(op.args) - _SETTABLE
            if bad:
                raise InvalidTransition(f"job {op.id}: cannot set {sorted(bad)}")
            for name, value in op.args.items():
                if name == "priority":
                    ok = isinstance(value, str) and value in _PRIORITY_VALUES
                else:
                    ok = _valid_value(name, value)
                if not ok:
                    raise InvalidTransition(f"job {op.id}: bad value {name}={value!r}")
        elif op.kind != "remove":
            raise InvalidTransition(f"unknown op {op.kind!r}")

    def _added_job(self, op: Op) -> Job:
        """The job an "add" op enters, checked (InvalidTransition if it cannot)."""
        if op.id in self.jobs:
            raise InvalidTransition(f"job {op.id} is already in the master file")
        record = op.args.get("job")
        try:
            job = job_from_json(record) if isinstance(record, dict) else None
        except SpoolError as exc:
            raise InvalidTransition(f"job {op.id}: {exc}") from None
        if job is None or job.id != op.id:
            raise InvalidTransition(f"job {op.id}: bad job record")
        return job

    def apply(self, op: Op) -> None:
        """Apply one checked op.  Raises `InvalidTransition` (state unchanged) if invalid."""
        if op.kind == "add":
            self._insert(self._added_job(op))  # checked and decoded once
            return
        self.check(op)
        job = self.jobs[op.id]
        if op.kind == "state":
            state = JobState(op.args["state"])
            job.state = state
            job.note = op.args.get("note", "")
            job.held_at = op.args.get("at", "") if state is JobState.HELD else ""
            if state is JobState.PRINTING:
                job.holder = op.args["holder"]
                job.token = op.args.get("token", "")
                job.assigned = op.args.get("assigned", job.assigned)
            else:
                job.holder = job.token = ""
                if op.args.get("restarted"):
                    job.restarted += 1
        elif op.kind == "note":
            job.note = op.args["note"]
        elif op.kind == "set":
            moved = any(k in op.args for k in ("priority", "rank", "printer"))
            if moved:
                self._unindex(job)
            for name, value in op.args.items():
                setattr(job, attr_of(name), Priority(value) if name == "priority" else value)
            if moved:
                self._index(job)
        elif op.kind == "remove":
            self._unindex(job)
            del self.jobs[op.id]
        if op.kind == "remove" or job.state is not JobState.PRINTING:
            self._printing.discard(op.id)
        else:
            self._printing.add(op.id)
        self.changed.add(op.id)

    def apply_all(self, ops: Iterable[Op], *, strict: bool = True) -> int:
        """Apply ops in order; with strict=False skip invalid ones (replay). Returns applied."""
        applied = 0
        for op in ops:
            try:
                self.apply(op)
                applied += 1
            except InvalidTransition:
                if strict:
                    raise
        return applied

    def _insert(self, job: Job) -> None:
        self.jobs[job.id] = job
        if job.state is JobState.PRINTING:
            self._printing.add(job.id)
        self.changed.add(job.id)
        self._index(job)

    def _index(self, job: Job) -> None:
        index = self._by_dest.get(job.destination)
        if index is None:
            index = self._by_dest[job.destination] = _SortedKeys()
        index.add(job.key)
        self._order = None

    def _unindex(self, job: Job) -> None:
        index = self._by_dest.get(job.destination)
        if index is not None:
            index.discard(job.key)
        self._order = None


def _key_of(job: Job) -> SortKey:
    return job.key


# ---------------------------------------------------------------------------
# Encodings

_BOOL = {"1": True, "0": False}


def _field_text(value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    text = str(_plain(value))
    if "\t" in text or "\n" in text:
        text = text.replace("\t", " ").replace("\n", " ")
    return text


def _job_line(job: Job) -> str:
    """One snapshot line (fast path: str() of each field; enums are StrEnums)."""
    values: list[Any] = list(_GET_FIELDS(job))
    for i in _BOOL_AT:
        values[i] = "1" if values[i] else "0"
    line = "\t".join(map(str, values))
    if line.count("\t") != len(FIELDS) - 1 or "\n" in line:
        line = "\t".join(_field_text(getattr(job, a)) for a in ATTRS)
    return line


def encode_snapshot(state: MasterState, generation: int) -> bytes:
    jobs = state.ordered()
    head = f"{SNAPSHOT_MAGIC}\t{SNAPSHOT_VERSION}\t{generation}\t{len(jobs)}\t"
    lines = [head + ",".join(FIELDS)]
    lines += map(_job_line, jobs)
    lines.append(f"end\t{len(jobs)}\n")
    return "\n".join(lines).encode()


def _split_snapshot(data: bytes, *, as_list: bool = True,
                    ) -> tuple[int, list[str], Iterable[str], list[str]]:
    """Check a snapshot's frame; return (generation, columns, job lines, pad).

    The columns are the snapshot's own fields, then any `Job` field it lacks (a
    snapshot written before that field existed); `pad` holds those fields'
    defaults, to append to each line's fields.  The lines come as a list, or
    (`as_list=False`) one at a time: a server loading 100,000 jobs then never
    holds them all as text besides the jobs (its peak memory).
    """
    try:
        text = data.decode()
    except UnicodeDecodeError:
        raise SpoolError("master snapshot: not UTF-8 (corrupt)") from None
    first_end = text.find("\n")
    head = text[:first_end].split("\t") if first_end >= 0 else []
    if len(head) != 5 or head[0] != SNAPSHOT_MAGIC or head[1] != str(SNAPSHOT_VERSION):
        raise SpoolError("master snapshot: bad header (corrupt or from a newer printnet)")
    names = head[4].split(",")
    if set(names) - set(FIELDS):
        raise SpoolError("master snapshot: unknown fields (from a newer printnet?)")
    try:
        generation, count = int(head[2]), int(head[3])
    except ValueError:
        raise SpoolError("master snapshot: bad header numbers") from None
    trailer = f"end\t{count}\n"
    if text.count("\n") != count + 2 or not text.endswith("\n" + trailer):
        raise SpoolError("master snapshot: truncated")
    pad: list[str] = []
    columns = list(names)
    for f, name in zip(fields(Job), FIELDS, strict=True):
        if name not in names:
            if f.default is MISSING:
                raise SpoolError(f"master snapshot: field {name} is missing")
            pad.append(_field_text(f.default))
            columns.append(name)
    tabs = len(names) - 1
    if text.count("\t") != tabs * count + 4 + 1:  # + header's 4 + trailer's 1
        raise SpoolError("master snapshot: a line has the wrong number of fields")
    begin, stop = first_end + 1, len(text) - len(trailer)  # the job lines, each with \n
    lines: Iterable[str]
    if as_list:
        lines = text[begin:stop - 1].split("\n") if count else []
    else:
        lines = _each_line(text, begin, stop)
    return generation, columns, lines, pad


def _each_line(text: str, start: int, stop: int) -> Iterator[str]:
    find = text.find
    while start < stop:
        end = find("\n", start)
        yield text[start:end]
        start = end + 1


_DECODED: Final = frozenset({
    "id", "user", "station", "submitted", "printer", "priority", "copies", "title", "setup",
    "header", "format", "state", "note", "rank", "assigned", "holder", "token", "restarted",
    "size", "pages",
})


def _row_decoder(columns: list[str]) -> Callable[[list[str]], Job]:
    """A function turning one snapshot row into a `Job` (KeyError/ValueError if bad).

    Field positions are closure constants: decoding 100,000 rows is the cost of a
    status listing and of a server's start.
    """
    ix = {name: i for i, name in enumerate(columns)}
    (i_id, i_user, i_station, i_submitted, i_printer, i_priority, i_copies, i_title,
     i_setup, i_header, i_format, i_state, i_note, i_rank, i_assigned, i_holder, i_token,
     i_restarted, i_size, i_pages) = (ix[name] for name in (
        "id", "user", "station", "submitted", "printer", "priority", "copies", "title",
        "setup", "header", "format", "state", "note", "rank", "assigned", "holder", "token",
        "restarted", "size", "pages"))
    bools = {FIELDS[i] for i in _BOOL_AT}
    extra = [(attr_of(name), ix[name], int if name in _INT_FIELDS else _BOOL.__getitem__
              if name in bools else str) for name in FIELDS if name not in _DECODED]
    intern = sys.intern
    priority_of = {p.value: p for p in Priority}
    state_of = {s.value: s for s in JobState}
    format_of = {f.value: f for f in Format}
    as_bool = _BOOL

    def decode(p: list[str]) -> Job:
        job = Job(
            id=p[i_id], user=intern(p[i_user]), station=intern(p[i_station]),
            submitted=p[i_submitted], destination=intern(p[i_printer]),
            priority=priority_of[p[i_priority]], copies=int(p[i_copies]), title=p[i_title],
            setup=intern(p[i_setup]), header=as_bool[p[i_header]],
            format=format_of[p[i_format]], state=state_of[p[i_state]],
            note=intern(p[i_note]), rank=int(p[i_rank]), assigned=intern(p[i_assigned]),
            holder=intern(p[i_holder]), token=p[i_token], restarted=int(p[i_restarted]),
            size=int(p[i_size]), pages=int(p[i_pages]),
        )
        for name, i, convert in extra:  # fields added since this decoder was written
            setattr(job, name, convert(p[i]))
        return job

    return decode


def decode_snapshot(data: bytes) -> tuple[int, MasterState]:
    """Return (generation, state); raise SpoolError if the snapshot is corrupt."""
    generation, columns, lines, pad = _split_snapshot(data, as_list=False)
    decode = _row_decoder(columns)
    n_fields = len(columns) - len(pad)
    jobs: list[Job] = []
    append = jobs.append
    try:
        for line in lines:
            parts = line.split("\t")
            if len(parts) != n_fields:
                raise SpoolError("master snapshot: a line has the wrong number of fields")
            append(decode(parts + pad if pad else parts))
    except (KeyError, ValueError) as exc:
        raise SpoolError(f"master snapshot: bad value ({exc})") from None
    if len({job.id for job in jobs}) != len(jobs):
        raise SpoolError("master snapshot: a job id appears twice")
    return generation, MasterState(jobs)


def decode_snapshot_lazy(data: bytes) -> tuple[int, MasterState]:
    """Like `decode_snapshot`, but a `LazyState`: for listings that read every job once."""
    generation, columns, lines, pad = _split_snapshot(data)
    assert isinstance(lines, list)
    return generation, LazyState(columns, lines, pad)


class LazyState(MasterState):
    """The master state for a listing: snapshot lines stay text until an op touches them.

    A status listing of 100,000 jobs needs their fields as text, in queue order;
    building 100,000 `Job` objects only to format them again would be most of its
    time and memory.  Journal ops are applied exactly as `MasterState` applies
    them, to jobs decoded from their lines on first touch.  Only `rows()` and
    `len()` see the untouched lines: this state is for reading a listing.
    """

    def __init__(self, columns: list[str], lines: list[str], pad: list[str]) -> None:
        super().__init__()
        self.columns = columns
        self._lines = lines
        self._pad = pad
        self._width = len(columns) - len(pad)  # fields on each line
        self._decode = _row_decoder(columns)
        self._id_first = columns[0] == "id"
        self._where: dict[str, int] | None = None
        self._where_exact = False
        self._superseded: set[int] = set()

    def __len__(self) -> int:
        return len(self._lines) - len(self._superseded) + len(self.jobs)

    def _fields(self, line: str) -> list[str]:
        parts = line.split("\t")
        if len(parts) != self._width:
            raise SpoolError("master snapshot: a line has the wrong number of fields")
        return parts + self._pad if self._pad else parts

    def apply(self, op: Op) -> None:
        if self._where is None:
            # Job id -> line, built in C (map, zip, dict) from each line's first
            # ID_LENGTH characters: a Python step per line would be most of a
            # 100,000-job listing's time as soon as its journal has one entry.
            # `_line_of` checks each answer (an id of another length: `_exact`).
            self._where = (
                dict(zip(map(itemgetter(slice(0, ID_LENGTH)), self._lines), _count()))
                if self._id_first else self._exact())
        k = self._line_of(op.id)
        if k is not None:  # first touch: the job leaves the lines for the decoded jobs
            del self._where[op.id]
            self._superseded.add(k)
            try:
                self._insert(self._decode(self._fields(self._lines[k])))
            except (KeyError, ValueError) as exc:
                raise SpoolError(f"master snapshot: bad value ({exc})") from None
        super().apply(op)

    def _line_of(self, job_id: str) -> int | None:
        """The untouched snapshot line of `job_id`, if any."""
        assert self._where is not None
        k = self._where.get(job_id)
        if self._where_exact:
            return k
        if (k is None and len(job_id) == ID_LENGTH) or (
                k is not None and self._lines[k].startswith(job_id + "\t")):
            return k  # a prefix is the whole id: the answer is exact
        self._where = self._exact()  # ids of another length: key by the whole id
        return self._where.get(job_id)

    def _exact(self) -> dict[str, int]:
        self._where_exact = True
        i_id = self.columns.index("id")
        gone = self._superseded
        return {self._fields(line)[i_id]: k for k, line in enumerate(self._lines)
                if k not in gone}

    def adopt(self, jobs: Iterable[Job]) -> None:
        """Add decoded jobs (a master file without a snapshot yet)."""
        for job in jobs:
            self._insert(job)

    def rows(self) -> Iterator[list[str]]:
        """Every live job's fields (in `columns` order, as text), in queue order."""
        lines = self._lines
        if self._superseded:
            gone = self._superseded
            lines = [line for k, line in enumerate(lines) if k not in gone]
        jobs = self.ordered()
        if tuple(self.columns) == FIELDS:  # a current snapshot: the snapshot's encoder
            touched = [_job_line(job).split("\t") for job in jobs]
        else:
            touched = [[_field_text(getattr(job, attr_of(c))) for c in self.columns]
                       for job in jobs]
        fields_of = self._fields
        if not touched:
            for line in lines:
                yield fields_of(line)
            return
        ix = {name: i for i, name in enumerate(self.columns)}
        i_priority, i_rank, i_id = ix["priority"], ix["rank"], ix["id"]
        rank_of = {p.value: p.rank for p in Priority}
        last = max(i_priority, i_rank, i_id)

        def line_key(line: str) -> SortKey:
            # Only the key's fields: a probe of the binary search splits no further.
            p = line.split("\t", last + 1) if last < self._width else fields_of(line)
            return (rank_of[p[i_priority]], int(p[i_rank]), p[i_id])

        # The snapshot is in queue order: place the few touched jobs by binary search.
        lo = 0
        for job, row in zip(jobs, touched, strict=True):
            at = bisect_right(lines, job.key, lo=lo, key=line_key)
            for line in lines[lo:at]:
                yield fields_of(line)
            yield row
            lo = at
        for line in lines[lo:]:
            yield fields_of(line)


SEAL: Final = b"SEAL\n"  # a journal entry that closes its generation (see spool.master)


def encode_ops(ops: Iterable[Op]) -> bytes:
    return b"".join(
        json.dumps(op.to_json(), ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
        for op in ops
    )


def decode_ops(data: bytes) -> list[Op]:
    ops = []
    try:
        for line in data.decode().splitlines():
            if not line:
                continue
            obj = json.loads(line)
            if not isinstance(obj, dict):
                raise ValueError("an op must be a JSON object")
            kind, job_id = obj.pop("op"), obj.pop("id")
            if not isinstance(kind, str) or not isinstance(job_id, str):
                raise ValueError("op and id must be strings")
            ops.append(Op(kind, job_id, obj))
    except (ValueError, KeyError, AttributeError, UnicodeDecodeError, RecursionError) as exc:
        raise SpoolError(f"master journal: corrupt entry ({exc})") from None
    return ops
