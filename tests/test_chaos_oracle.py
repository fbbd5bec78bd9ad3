"""The chaos oracle judges by the engine's own records: each rule fails when it should.

Synthetic printer output, time stamps and events (no share, no servers): the
oracle must call a reprint without a hitting event unexplained, a cut or
altered print truncated, and a lock taken from a live holder a violation --
and must accept the same things when an event of the engine explains them.
"""

from __future__ import annotations

from pathlib import Path

from chaos_oracle import (
    EventLog,
    Life,
    Windows,
    _Growth,
    attempts,
    body,
    digest,
    filler,
    judge_locks,
    judge_prints,
)

LINES = 5
T1, T2 = "a" * 32, "b" * 32
SHA = digest(filler(LINES))
EXPECTED = {T1: (SHA, LINES), T2: (SHA, LINES)}


def _growth(data: bytes, per_byte: float = 0.001, t0: float = 100.0) -> _Growth:
    """As if the file grew at a steady rate from `t0`."""
    g = _Growth()
    for size in range(0, len(data) + 1, 16):
        g.note(size, t0 + size * per_byte)
    g.note(len(data), t0 + len(data) * per_byte)
    return g


def test_attempts_intact_truncated_and_altered() -> None:
    header = b"\x1b@header page\r\n\f"
    whole = body(T1, LINES)
    cut = whole[: len(whole) // 2]
    altered = whole.replace(b"line 0002", b"line 0XX2")
    data = header + whole + header + cut + header + altered + body(T2, LINES)
    found = attempts(data, _growth(data), "S1", "P1", EXPECTED)
    assert [(a.token, a.intact) for a in found] == [(T1, True), (T1, False), (T1, False),
                                                    (T2, True)]
    assert "no END marker" in found[1].why and "body differs" in found[2].why
    # Each attempt starts where the previous one ended (its header page included).
    assert 100.0 < found[0].start < 100.05  # the first sample with byte 0 in it
    assert found[0].start < found[0].end <= found[1].start < found[1].end <= found[2].start
    unknown = attempts(body("c" * 32, LINES), _growth(body("c" * 32, LINES)), "S1", "P1",
                       EXPECTED)
    assert not unknown[0].intact and "not in any station's log" in unknown[0].why


def _twice(first: bytes) -> tuple[list, dict]:  # type: ignore[type-arg]
    """Job J printed on P1 (`first`), then again intact on P2."""
    g1 = _growth(first, t0=100.0)
    a1 = attempts(first, g1, "S1", "P1", EXPECTED)
    second = body(T1, LINES)
    a2 = attempts(second, _growth(second, t0=110.0), "S2", "P2", EXPECTED)
    return a1 + a2, {"J": (T1, SHA, LINES, 99.0)}


def test_a_reprint_is_explained_only_by_an_event_on_that_print(tmp_path: Path) -> None:
    found, jobs = _twice(body(T1, LINES))
    events = EventLog(tmp_path / "e.jsonl")
    v = judge_prints(jobs, found, events, Windows())
    assert v.reprints == 1 and len(v.unexplained_reprints) == 1 and not v.truncated
    # An event on another server does not explain it, nor a kill before the print.
    events.add("kill", server="S3", printer="P3", t=100.2)
    events.add("kill", server="S1", printer="P1", t=98.0)
    assert len(judge_prints(jobs, found, events, Windows()).unexplained_reprints) == 1
    # An outage of P1 while it printed does; so does a pause of S1 since acceptance.
    for kind, t in (("offline", 100.1), ("pause", 99.5), ("kill", 100.3)):
        events = EventLog(tmp_path / "e.jsonl")
        ev = events.add(kind, server="" if kind == "offline" else "S1", printer="P1", t=t)
        ev.t1 = t + 0.5
        v = judge_prints(jobs, found, events, Windows())
        assert v.reprints_explained == 1 and not v.unexplained_reprints, kind


def test_a_truncated_print_needs_a_cause(tmp_path: Path) -> None:
    whole = body(T1, LINES)
    found, jobs = _twice(whole[:40])
    events = EventLog(tmp_path / "e.jsonl")
    v = judge_prints(jobs, found, events, Windows())
    assert len(v.truncated) == 1 and "no END marker" in v.truncated[0]
    events.add("kill", server="S1", printer="P1", t=100.05)
    v = judge_prints(jobs, found, events, Windows())
    assert not v.truncated and v.truncated_explained == 1 and not v.unexplained_reprints
    # A job whose only print is cut is not printed, whatever explains the cut.
    only = [a for a in found if a.printer == "P1"]
    assert judge_prints(jobs, only, events, Windows()).not_printed


def test_lock_taken_from_a_live_running_holder(tmp_path: Path) -> None:
    events = EventLog(tmp_path / "e.jsonl")
    life = Life("S1", "hosta", 111, started=10.0)
    samples = [{"t": 10.0 + i * 0.5, "locks": {"server.S1": ["hosta", 111, "tok1"]}}
               for i in range(10)]
    samples += [{"t": 15.5, "locks": {"server.S1": ["hostb", 222, "tok2"]}}]
    assert judge_locks(samples, [life], events, [], 2.0, 100.0)
    # Paused just before: a legitimate break.
    ev = events.add("pause", server="S1", printer="P1", t=12.0)
    ev.t1 = 14.0
    assert judge_locks(samples, [life], events, [], 2.0, 100.0) == []
    # The breaker's own report of breaking a live holder's lock.
    line = "broke lock /x/locks/master (S1 on hosta pid 111; unchanged for 2.6s)"
    events = EventLog(tmp_path / "e.jsonl")
    problems = judge_locks([], [life], events, [(30.0, Path("log"), line)], 2.0, 100.0)
    assert problems and "master" in problems[0]
    life.died = 29.0
    assert judge_locks([], [life], events, [(30.0, Path("log"), line)], 2.0, 100.0) == []
