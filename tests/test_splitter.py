"""The pure job splitter of the virtual printer (printnet.splitter)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from printnet.splitter import FF, FormFeedRule, Splitter

chunks = st.lists(st.binary(max_size=40), max_size=20)
gaps = st.lists(st.floats(0, 10), min_size=20, max_size=20)
rules = st.sampled_from([FormFeedRule(), FormFeedRule(each=True), FormFeedRule(quiet=1.5)])


def run(parts: list[bytes], times: list[float], splitter: Splitter) -> list[bytes]:
    """Feed parts at cumulative times, ticking between them; hang up at the end."""
    jobs: list[bytes] = []
    now = 0.0
    for part, gap in zip(parts, times, strict=False):
        now += gap
        jobs += splitter.tick(now)
        jobs += splitter.feed(part, now)
    jobs += splitter.tick(now + 1000)
    jobs += splitter.hangup()
    return jobs


@settings(max_examples=300, deadline=None)
@given(chunks, gaps, st.none() | st.floats(0.1, 5), rules)
def test_jobs_are_exactly_the_bytes_fed_never_empty(parts: list[bytes], times: list[float],
                                                    idle: float | None,
                                                    rule: FormFeedRule) -> None:
    jobs = run(parts, times, Splitter(idle=idle, formfeed=rule))
    assert b"".join(jobs) == b"".join(parts)
    assert all(jobs)


@settings(max_examples=300, deadline=None)
@given(chunks)
def test_each_form_feed_ends_a_job(parts: list[bytes]) -> None:
    jobs = run(parts, [0.0] * 20, Splitter(formfeed=FormFeedRule(each=True)))
    for job in jobs[:-1]:
        assert job.endswith(bytes([FF])) and job.count(FF) == 1
    if jobs:
        assert jobs[-1].count(FF) <= 1


@settings(max_examples=200, deadline=None)
@given(chunks)
def test_without_rules_only_the_hangup_ends_the_job(parts: list[bytes]) -> None:
    data = b"".join(parts)
    jobs = run(parts, [100.0] * 20, Splitter())
    assert jobs == ([data] if data else [])


def test_idle_ends_a_job_between_bytes() -> None:
    s = Splitter(idle=2)
    assert s.feed(b"a", 0) == [] and s.deadline() == 2
    assert s.tick(1.9) == []
    assert s.feed(b"b", 1.9) == [] and s.deadline() == 3.9
    assert s.tick(3.9) == [b"ab"] and s.deadline() is None
    assert s.feed(b"c", 10) == [] and s.hangup() == [b"c"] and s.hangup() == []


def test_quiet_after_a_trailing_form_feed() -> None:
    s = Splitter(formfeed=FormFeedRule(quiet=1))
    s.feed(b"page 1\f", 0)
    assert s.deadline() == 1
    s.feed(b"page 2", 0.5)  # within the quiet time: the same document
    assert s.deadline() is None  # no trailing FF, no idle: only a hang-up ends it
    s.feed(b"\f", 3)
    assert s.tick(3.5) == [] and s.tick(4) == [b"page 1\fpage 2\f"]


@pytest.mark.parametrize(("text", "rule"), [
    ("off", FormFeedRule()), ("EACH", FormFeedRule(each=True)), ("2", FormFeedRule(quiet=2)),
    ("0.5", FormFeedRule(quiet=0.5)),
])
def test_formfeed_rules_parse(text: str, rule: FormFeedRule) -> None:
    assert FormFeedRule.parse(text) == rule
    assert FormFeedRule.parse(str(rule)) == rule


@pytest.mark.parametrize("text", ["", "sometimes", "0", "-1", "nan", "1e9"])
def test_bad_formfeed_rules_say_what_is_allowed(text: str) -> None:
    with pytest.raises(ValueError, match="off, each or seconds"):
        FormFeedRule.parse(text)


def test_idle_must_be_positive() -> None:
    with pytest.raises(ValueError, match="idle"):
        Splitter(idle=0)
