"""The chaos engine's own oracle: what happened, judged without trusting printnet.

printnet writes flags about itself (a job's ``restarted`` count, its ``done/``
records, its lock files).  An oracle that reads those can be fooled by the
very bug it should catch, so the judgement here rests on what the engine did
and saw itself:

* **Events** (`Event`, `EventLog`): every ``kill -9``, SIGSTOP/SIGCONT,
  printer outage, restart and station kill the engine causes, with the
  machine-wide monotonic time it happened and which server/printer it hit.
* **Prints** (`Watcher`, `attempts`): a thread tails every simulated printer's
  output file (on the engine's local disk) and notes when each byte range
  arrived.  Every chaos job is a raw job whose body is ``BEGIN:<token>\\n``,
  a filler, ``END:<token>\\n``; the station (engine code) logs each accepted
  job with the SHA-256 of the filler and the time it was accepted.  An
  `Attempt` is one ``BEGIN`` in an output: *intact* if its ``END`` follows
  before anything else and the bytes between hash to the logged value.
* **Reprints**: a job printed more than once is explained only if every
  attempt but the last was hit by an event on that attempt's server or
  printer: a kill or an outage while that attempt printed (from its first
  byte to its last, + `Windows.after`: the time a server needs to record a
  finished print), or a pause from the job's acceptance on (a claimed job may
  wait in its server's backlog).  Everything else is an unexplained reprint.
* **Truncation**: an attempt that is not intact must have been hit by such an
  event while it printed; an accepted job with no intact attempt is lost.
* **Live lock breaks**: a server's own lock must keep its generation for as
  long as that server lives and is not paused (sampled independently), and a
  lock broken while its holder was alive and not paused (the breaking
  server's ``broke lock`` line, time-stamped by the engine when it appeared)
  is a violation.  The break is judged against the engine's own kill and
  pause times, never against what printnet says about the holder.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import re
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

BEGIN_RE = re.compile(rb"BEGIN:([0-9a-f]{32})\n")
BROKE_RE = re.compile(r"broke lock (\S+) \((\S+) on (\S+) pid (\d+)")


def filler(lines: int) -> bytes:
    """The bytes between a chaos job's markers (the station and the oracle agree)."""
    return "".join(f"line {i:04d} " + "." * 60 + "\n" for i in range(lines)).encode()


def body(token: str, lines: int) -> bytes:
    return b"BEGIN:" + token.encode() + b"\n" + filler(lines) + b"END:" + token.encode() + b"\n"


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- events ----------------------------------------------------------------------------


@dataclass
class Event:
    """One thing the engine did.  `t0`..`t1`: monotonic; equal for instants (kill)."""

    kind: str  # kill | restart | pause | offline | station_kill | stop
    t0: float
    t1: float
    server: str = ""
    printer: str = ""
    host: str = ""
    pid: int = 0

    def hits(self, server: str, printer: str) -> bool:
        return bool((self.server and self.server == server)
                    or (self.printer and self.printer == printer))

    def overlaps(self, start: float, end: float) -> bool:
        return self.t0 <= end and self.t1 >= start


class EventLog:
    """The engine's own record of what it did, also appended to ``events.jsonl``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.events: list[Event] = []

    def add(self, kind: str, *, server: str = "", printer: str = "", host: str = "",
            pid: int = 0, t: float | None = None) -> Event:
        now = time.monotonic() if t is None else t
        ev = Event(kind, now, now, server, printer, host, pid)
        self.events.append(ev)
        return ev

    def end(self, ev: Event) -> None:
        """An interval event (pause, offline) is over now."""
        ev.t1 = time.monotonic()

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for ev in self.events:
            out[ev.kind] = out.get(ev.kind, 0) + 1
        return out

    def save(self) -> None:
        with open(self.path, "w") as fh:
            for ev in self.events:
                fh.write(json.dumps(asdict(ev)) + "\n")

    def hitting(self, server: str, printer: str, start: float, end: float,
                kinds: Iterable[str] = ("kill", "pause", "offline")) -> Event | None:
        wanted = set(kinds)
        for ev in self.events:
            if ev.kind in wanted and ev.hits(server, printer) and ev.overlaps(start, end):
                return ev
        return None


# -- watching outputs and logs ---------------------------------------------------------


@dataclass
class _Growth:
    sizes: list[int] = field(default_factory=list)
    times: list[float] = field(default_factory=list)

    def note(self, size: int, t: float) -> None:
        if not self.sizes or size > self.sizes[-1]:
            self.sizes.append(size)
            self.times.append(t)

    def time_at(self, offset: int) -> float:
        """When byte `offset` (0-based) was first seen in the file."""
        i = bisect.bisect_left(self.sizes, offset + 1)
        return self.times[i] if i < len(self.times) else float("inf")


class Watcher:
    """A thread that stamps, on the engine's monotonic clock, when each byte of the
    watched printer outputs and each line of the watched logs first appeared."""

    def __init__(self, poll: float = 0.1) -> None:
        self.poll = poll
        self.outputs: dict[Path, _Growth] = {}
        self.logs: dict[Path, int] = {}  # log -> offset read so far
        self.lines: list[tuple[float, Path, str]] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="chaos-watcher", daemon=True)

    def watch_output(self, path: Path) -> None:
        with self._lock:
            self.outputs.setdefault(path, _Growth())

    def watch_log(self, path: Path) -> None:
        with self._lock:
            self.logs.setdefault(path, 0)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)
        self.scan()

    def _run(self) -> None:
        while not self._stop.wait(self.poll):
            self.scan()

    def scan(self) -> None:
        now = time.monotonic()
        with self._lock:
            for path, growth in self.outputs.items():
                try:
                    growth.note(path.stat().st_size, now)
                except FileNotFoundError:
                    pass
            for path, offset in list(self.logs.items()):
                try:
                    with open(path, "rb") as fh:
                        fh.seek(offset)
                        data = fh.read()
                except FileNotFoundError:
                    continue
                end = data.rfind(b"\n") + 1
                for line in data[:end].decode(errors="replace").splitlines():
                    self.lines.append((now, path, line))
                self.logs[path] = offset + end

    def growth(self, path: Path) -> _Growth:
        return self.outputs.get(path, _Growth())


# -- print attempts --------------------------------------------------------------------


@dataclass
class Attempt:
    """One ``BEGIN:<token>`` in one printer's output."""

    token: str
    server: str
    printer: str
    start: float  # when the first byte after the previous attempt appeared
    end: float  # when its last byte appeared
    intact: bool  # END follows, nothing in between, filler hash as logged
    why: str = ""  # what is wrong when not intact


def attempts(data: bytes, growth: _Growth, server: str, printer: str,
             expected: dict[str, tuple[str, int]]) -> list[Attempt]:
    """The attempts in one output file.  `expected`: token -> (filler hash, lines)."""
    out: list[Attempt] = []
    marks = list(BEGIN_RE.finditer(data))
    prev_end = 0
    for k, m in enumerate(marks):
        token = m.group(1).decode()
        limit = marks[k + 1].start() if k + 1 < len(marks) else len(data)
        after = m.end()
        want_hash, lines = expected.get(token, ("", 0))
        end_mark = b"END:" + token.encode() + b"\n"
        pos = data.find(end_mark, after, limit)
        if pos >= 0:
            last = pos + len(end_mark) - 1
            between = data[after:pos]
            if not want_hash:
                intact, why = False, "token not in any station's log"
            elif digest(between) != want_hash:
                intact, why = False, f"body differs ({len(between)} bytes between markers)"
            else:
                intact, why = True, ""
        else:
            # Truncated: how far did the expected body get?
            want = filler(lines) + end_mark
            got = data[after:limit]
            n = 0
            while n < min(len(want), len(got)) and want[n] == got[n]:
                n += 1
            last = after + n - 1
            intact, why = False, f"no END marker ({n} of {len(want)} body bytes)"
        out.append(Attempt(token, server, printer, growth.time_at(prev_end),
                           growth.time_at(last), intact, why))
        prev_end = last + 1
    return out


@dataclass
class Windows:
    """Margins of the explanations, in seconds."""

    before: float = 1.0  # polling and clock slop before a window starts
    after: float = 6.0  # after an attempt's last byte: the server records the result

    @classmethod
    def for_lease(cls, lease: float) -> Windows:
        """Recording a result may wait for the master lock: up to two leases + 2 s."""
        return cls(after=2 * lease + 2.0)


@dataclass
class Verdict:
    reprints: int = 0
    reprints_explained: int = 0
    unexplained_reprints: list[str] = field(default_factory=list)
    truncated_explained: int = 0
    truncated: list[str] = field(default_factory=list)
    not_printed: list[str] = field(default_factory=list)  # accepted, no intact attempt
    explanations: dict[str, list[str]] = field(default_factory=dict)


def judge_prints(jobs: dict[str, tuple[str, str, int, float]], found: Sequence[Attempt],
                 events: EventLog, win: Windows) -> Verdict:
    """`jobs`: job id -> (token, filler hash, lines, accepted at)."""
    v = Verdict()
    by_token: dict[str, list[Attempt]] = {}
    for a in found:
        by_token.setdefault(a.token, []).append(a)
    for job_id, (token, _, _, accepted) in sorted(jobs.items()):
        tries = sorted(by_token.get(token, []), key=lambda a: a.start)
        if not any(a.intact for a in tries):
            v.not_printed.append(f"{job_id}: no intact print in {len(tries)} attempt(s)"
                                 + "".join(f"; {a.printer}: {a.why}" for a in tries))
        for a in tries:
            if a.intact:
                continue
            ev = events.hitting(a.server, a.printer, a.start - win.before, a.end + win.after)
            if ev is None:
                v.truncated.append(f"{job_id} on {a.printer}: {a.why}; no kill, pause or "
                                   f"outage of {a.server}/{a.printer} while it printed")
            else:
                v.truncated_explained += 1
        if len(tries) <= 1:
            continue
        v.reprints += 1
        why: list[str] = []
        for a in tries[:-1]:
            # A kill or an outage must land on this very attempt; a pause may also
            # come earlier, while the job waited claimed in that server's backlog.
            ev = (events.hitting(a.server, a.printer, a.start - win.before,
                                 a.end + win.after, kinds=("kill", "offline"))
                  or events.hitting(a.server, a.printer, accepted - win.before,
                                    a.end + win.after, kinds=("pause",)))
            if ev is None:
                why = []
                v.unexplained_reprints.append(
                    f"{job_id}: printed {len(tries)} times ({', '.join(t.printer for t in tries)}"
                    f"); no kill or outage of {a.server}/{a.printer} while it printed, no "
                    f"pause since its acceptance")
                break
            why.append(f"{a.printer}: {ev.kind} of {ev.server or ev.printer} at "
                       f"+{ev.t0 - accepted:.1f}s")
        if why:
            v.reprints_explained += 1
            v.explanations[job_id] = why
    return v


# -- locks -----------------------------------------------------------------------------


@dataclass
class Life:
    """One run of one server process."""

    server: str
    host: str
    pid: int
    started: float
    died: float | None = None  # kill -9 (monotonic)


def _paused(events: EventLog, server: str, start: float, end: float) -> bool:
    return events.hitting(server, "", start, end, kinds=("pause",)) is not None


def judge_locks(samples: Sequence[dict[str, Any]], lives: Sequence[Life], events: EventLog,
                lines: Sequence[tuple[float, Path, str]], lease: float, until: float
                ) -> list[str]:
    """Live lock breaks.  `samples`: the sampler's {"t", "locks": {name: [host, pid,
    token]}}; `until`: when the chaos stopped (servers stop cleanly afterwards)."""
    problems: list[str] = []
    # A holder may be judged stale once unchanged for 1.25 leases on the breaker's
    # clock; the share's caches (~1 s) and the sampling add to that.
    look_back = 1.25 * lease + 3.0
    by_pid = {(life.host, life.pid): life for life in lives}
    # 1. Independent: each server's own lock keeps its generation while it lives.
    for life in lives:
        name = f"server.{life.server}"
        end = min(life.died if life.died is not None else until, until)
        held: str | None = None
        for s in samples:
            t = float(s["t"])
            if t <= life.started or t >= end:
                continue
            rec = s["locks"].get(name)
            now = (rec[2], int(rec[1])) if rec else None
            if held is None:
                if now is not None and now[1] == life.pid:
                    held = now[0]
                continue
            if now == (held, life.pid):
                continue
            if not _paused(events, life.server, t - look_back, t):
                who = "nobody" if now is None else f"pid {now[1]} token {now[0]}"
                problems.append(f"lock {name} of live, running {life.server} pid {life.pid} "
                                f"taken over at +{t - life.started:.1f}s (now {who})")
                break
            held = now[0] if now is not None and now[1] == life.pid else None
    # 2. The breakers' own reports, judged against the engine's kills and pauses.
    for t, _, line in lines:
        m = BROKE_RE.search(line)
        if m is None or t > until + 1.0:
            continue
        lock, host, pid = Path(m.group(1)).name, m.group(3), int(m.group(4))
        victim = by_pid.get((host, pid))
        if victim is None:
            continue
        dead = victim.died is not None and victim.died <= t
        if dead or _paused(events, victim.server, t - look_back, t):
            continue
        problems.append(f"lock {lock} broken at +{t - victim.started:.1f}s of "
                        f"{victim.server} pid {pid}, alive and not paused")
    return problems
