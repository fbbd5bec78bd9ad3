"""The request-file format, job ids, text cleaning and the transition table."""

from __future__ import annotations

import json
import unicodedata
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from printnet import model
from printnet.errors import InvalidTransition, RequestInvalid
from printnet.model import (
    ControlAction,
    ControlRequest,
    Format,
    JobIdGenerator,
    JobState,
    PrintRequest,
    Priority,
    SpooledFile,
    clean_text,
    decode_request,
)

# ---------------------------------------------------------------------------
# strategies

_B32 = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
job_ids = st.text(alphabet=_B32, min_size=18, max_size=18)
users = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.@-]{0,20}", fullmatch=True)
stations = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,20}", fullmatch=True)
names = st.from_regex(r"[A-Z0-9][A-Z0-9&_.+-]{0,31}", fullmatch=True)
times = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
)
# Titles as the decoder leaves them: any unicode, cleaned.
titles = st.text(max_size=300).map(lambda t: clean_text(t, model.MAX_TITLE))
sha = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)


@st.composite
def spooled_files(draw: st.DrawFn) -> tuple[SpooledFile, ...]:
    n = draw(st.integers(1, 4))
    return tuple(
        SpooledFile(
            name=str(i),
            original=draw(st.text(max_size=40).map(lambda t: clean_text(t, 255))),
            size=draw(st.integers(0, 1 << 50)),
            sha256=draw(sha),
        )
        for i in range(n)
    )


print_requests = st.builds(
    PrintRequest,
    id=job_ids,
    user=users,
    station=stations,
    submitted=times,
    printer=names,
    priority=st.sampled_from(Priority),
    copies=st.integers(1, model.MAX_COPIES),
    title=titles,
    setup=st.none() | names,
    header=st.booleans(),
    format=st.sampled_from(Format),
    hold=st.booleans(),
    password=st.none() | st.text(min_size=1, max_size=60),
    files=spooled_files(),
)

control_requests = st.builds(
    ControlRequest,
    id=job_ids,
    user=users,
    station=stations,
    submitted=times,
    action=st.sampled_from(ControlAction),
    jobs=st.lists(job_ids, min_size=1, max_size=5).map(tuple),
)


def sample_request(**changes: Any) -> dict[str, Any]:
    """A valid print request as JSON, with `changes` applied (None deletes a key)."""
    req = PrintRequest(
        id="01HZZZZZZZZZZZZZZZ", user="alice", station="ws1",
        submitted=datetime(2026, 3, 1, 12, 0, tzinfo=UTC), printer="LOCAL",
        files=(SpooledFile("0", "a.txt", 3, "0" * 64),),
    ).to_json()
    for key, value in changes.items():
        if value is None:
            req.pop(key, None)
        else:
            req[key] = value
    return req


def sample_control(**changes: Any) -> dict[str, Any]:
    ctl = ControlRequest(
        "01HZZZZZZZZZZZZZZZ", "alice", "ws1", datetime(2026, 3, 1, tzinfo=UTC),
        ControlAction.CANCEL, ("01HZZZZZZZZZZZZZZY",),
    ).to_json()
    ctl.update(changes)
    return ctl


def encode(obj: object) -> bytes:
    return json.dumps(obj).encode()


# ---------------------------------------------------------------------------
# round trips


@settings(max_examples=200)
@given(print_requests)
def test_print_request_round_trip(req: PrintRequest) -> None:
    decoded = decode_request(req.encode())
    assert decoded == req
    assert decoded.encode() == req.encode()


@given(control_requests)
def test_control_request_round_trip(req: ControlRequest) -> None:
    assert decode_request(req.encode()) == req


def test_unicode_title_survives() -> None:
    title = "Quartalsbericht — Größe 東京 🖨"
    req = PrintRequest(**{**_sample_fields(), "title": title})
    decoded = decode_request(req.encode())
    assert isinstance(decoded, PrintRequest)
    assert decoded.title == title


def _sample_fields() -> dict[str, Any]:
    return {
        "id": "01HZZZZZZZZZZZZZZZ", "user": "alice", "station": "ws1",
        "submitted": datetime(2026, 3, 1, tzinfo=UTC), "printer": "LOCAL",
        "files": (SpooledFile("0", "a", 1, "a" * 64),),
    }


def test_decoder_cleans_and_normalizes() -> None:
    obj = sample_request(title="a\x1b[2Jb\u202ec\nd", printer="local", setup="checks")
    req = decode_request(encode(obj))
    assert isinstance(req, PrintRequest)
    assert req.title == "a[2Jbc d"
    assert (req.printer, req.setup) == ("LOCAL", "CHECKS")


def test_defaults_apply_for_missing_optional_fields() -> None:
    obj = sample_request(priority=None, copies=None, title=None, setup=None, header=None,
                         format=None, hold=None, password=None)
    req = decode_request(encode(obj))
    assert isinstance(req, PrintRequest)
    assert (req.priority, req.copies, req.title, req.setup, req.header, req.format,
            req.hold, req.password) == (
        Priority.STANDARD, 1, "", None, True, Format.TEXT, False, None)


def test_submitted_with_offset_is_converted_to_utc() -> None:
    obj = sample_request(submitted="2026-03-01T13:00:00+01:00")
    req = decode_request(encode(obj))
    assert req.submitted == datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert req.submitted.utcoffset() == timedelta(0)


# ---------------------------------------------------------------------------
# rejection names the field

BAD_PRINT: list[tuple[dict[str, Any], str]] = [
    ({"colour": "red"}, "colour"),
    ({"printnet": 2}, "printnet"),
    ({"printnet": True}, "printnet"),
    ({"printnet": 1.0}, "printnet"),
    ({"kind": "fax"}, "kind"),
    ({"id": "not-an-id"}, "id"),
    ({"id": 12}, "id"),
    ({"user": "bad user"}, "user"),
    ({"user": None}, "user"),
    ({"station": ""}, "station"),
    ({"submitted": "yesterday"}, "submitted"),
    ({"submitted": "2026-03-01T12:00:00"}, "submitted"),
    ({"submitted": "0001-01-01T00:00:00+01:00"}, "submitted"),
    ({"printer": "no/such"}, "printer"),
    ({"priority": "urgent"}, "priority"),
    ({"priority": 1}, "priority"),
    ({"copies": 0}, "copies"),
    ({"copies": model.MAX_COPIES + 1}, "copies"),
    ({"copies": "2"}, "copies"),
    ({"copies": True}, "copies"),
    ({"copies": 2.0}, "copies"),
    ({"title": ["x"]}, "title"),
    ({"title": "x" * (4 * model.MAX_TITLE + 1)}, "title"),
    ({"setup": "bad setup"}, "setup"),
    ({"header": "yes"}, "header"),
    ({"format": "pdf"}, "format"),
    ({"hold": 1}, "hold"),
    ({"password": ""}, "password"),
    ({"files": []}, "files"),
    ({"files": "0"}, "files"),
    ({"files": [7]}, "files[0]"),
    ({"files": [{"name": "0", "size": 1, "sha256": "0" * 64, "mode": 7}]}, "files[0].mode"),
    ({"files": [{"name": "../x", "size": 1, "sha256": "0" * 64}]}, "files[0].name"),
    ({"files": [{"name": "0", "size": -1, "sha256": "0" * 64}]}, "files[0].size"),
    ({"files": [{"name": "0", "size": 1, "sha256": "xyz"}]}, "files[0].sha256"),
    ({"files": [{"name": "0", "size": 1}]}, "files[0].sha256"),
    ({"files": [{"name": "0", "size": 1, "sha256": "0" * 64},
                {"name": "0", "size": 1, "sha256": "0" * 64}]}, "files[1].name"),
    ({"id": None}, "id"),
]


@pytest.mark.parametrize(("changes", "field"), BAD_PRINT, ids=[f for _, f in BAD_PRINT])
def test_bad_print_request_names_the_field(changes: dict[str, Any], field: str) -> None:
    obj = sample_request()
    for key, value in changes.items():
        if value is None and key in ("id",):
            del obj[key]
        else:
            obj[key] = value
    with pytest.raises(RequestInvalid) as info:
        decode_request(encode(obj))
    assert info.value.field == field
    assert str(info.value).startswith(field + ":")


BAD_CONTROL: list[tuple[dict[str, Any], str]] = [
    ({"action": "delete"}, "action"),
    ({"jobs": []}, "jobs"),
    ({"jobs": "01HZZZZZZZZZZZZZZY"}, "jobs"),
    ({"jobs": ["01HZZZZZZZZZZZZZZY", "nope"]}, "jobs[1]"),
    ({"jobs": ["01HZZZZZZZZZZZZZZY"] * (model.MAX_JOBS_PER_CONTROL + 1)}, "jobs"),
    ({"files": []}, "files"),
]


@pytest.mark.parametrize(("changes", "field"), BAD_CONTROL, ids=[f for _, f in BAD_CONTROL])
def test_bad_control_request_names_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(RequestInvalid) as info:
        decode_request(encode(sample_control(**changes)))
    assert info.value.field == field


@pytest.mark.parametrize(
    "data",
    [b"", b"  \n", b"\xff\xfe", b"[1,2]", b'{"printnet":1', b"null", b"[" * 100_000,
     b" " * (model.MAX_REQUEST_BYTES + 1)],
    ids=["empty", "blank", "not-utf8", "array", "truncated", "null", "deep", "huge"],
)
def test_malformed_files_are_rejected_as_a_whole(data: bytes) -> None:
    with pytest.raises(RequestInvalid) as info:
        decode_request(data)
    assert info.value.field in ("request", "printnet")


@settings(max_examples=300)
@given(st.binary(max_size=400))
def test_random_bytes_raise_only_request_invalid(data: bytes) -> None:
    try:
        decode_request(data)
    except RequestInvalid:
        pass


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner,
                                                                max_size=3),
    max_leaves=8,
)


@settings(max_examples=300)
@given(st.sampled_from(sorted(sample_request())), json_values)
def test_any_value_in_any_field_raises_only_request_invalid(key: str, value: Any) -> None:
    obj = sample_request()
    obj[key] = value
    try:
        decode_request(encode(obj))
    except RequestInvalid as exc:
        assert exc.field.split("[")[0].split(".")[0] in (key, "printnet", "kind", "request")


# ---------------------------------------------------------------------------
# clean_text

STRIPPED = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


@settings(max_examples=300)
@given(st.text(), st.none() | st.integers(0, 50))
def test_clean_text_strips_every_control_and_format_char(text: str, limit: int | None) -> None:
    cleaned = clean_text(text, limit)
    assert not any(unicodedata.category(c) in STRIPPED for c in cleaned)
    assert cleaned == cleaned.strip()
    if limit is not None:
        assert len(cleaned) <= limit
    assert clean_text(cleaned, limit) == cleaned  # idempotent


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("a\tb\nc\rd", "a b c d"),
        ("\x1b[31mred\x1b[0m", "[31mred[0m"),
        ("bell\x07", "bell"),
        ("evil\u202egnp.exe", "evilgnp.exe"),
        ("zero\u200bwidth", "zerowidth"),
        ("line\u2028sep\u2029par", "lineseppar"),
        ("\x85nel\x9bcsi", "nelcsi"),
        ("  padded  ", "padded"),
        ("Größe 東京", "Größe 東京"),
    ],
)
def test_clean_text_examples(raw: str, clean: str) -> None:
    assert clean_text(raw) == clean


def test_clean_text_limit_does_not_leave_a_trailing_space() -> None:
    assert clean_text("a" * 9 + " b", 10) == "a" * 9


# ---------------------------------------------------------------------------
# job ids


@given(
    st.lists(
        st.tuples(st.integers(0, 2**41), st.integers(0, 2**40 - 1)), min_size=1, max_size=60
    )
)
def test_job_ids_strictly_increase_within_a_generator(draws: list[tuple[int, int]]) -> None:
    gen = JobIdGenerator()
    ids = [gen.next(ms, rnd) for ms, rnd in draws]
    assert all(model.valid_job_id(i) for i in ids)
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_job_ids_strictly_increase_when_the_random_part_overflows() -> None:
    gen = JobIdGenerator()
    a = gen.next(1000, 2**40 - 1)
    b = gen.next(1000, 5)  # same millisecond, random part would overflow
    c = gen.next(999, 2**40 - 1)  # the clock stepped back
    assert a < b < c
    assert model.job_id_time_ms(b) == 1001


@given(st.integers(0, 2**45), st.integers(0, 2**45), st.integers(0, 2**40 - 1),
       st.integers(0, 2**40 - 1))
def test_job_ids_sort_by_time(t1: int, t2: int, r1: int, r2: int) -> None:
    a, b = JobIdGenerator().next(t1, r1), JobIdGenerator().next(t2, r2)
    assert model.job_id_time_ms(a) == t1
    if t1 < t2:
        assert a < b


def test_job_id_format() -> None:
    now = int(datetime(2026, 3, 1, tzinfo=UTC).timestamp() * 1000)
    job_id = JobIdGenerator().next(now, 12345)
    assert len(job_id) == 18
    assert model.valid_job_id(job_id)
    assert not set(job_id) & set("ILOU")
    assert model.job_id_time_ms(job_id) == now
    for bad in ("", "0" * 17, "0" * 19, "I" * 18, "o" * 18, "0" * 17 + "U"):
        assert not model.valid_job_id(bad)


# ---------------------------------------------------------------------------
# transitions

ALLOWED = {
    (JobState.PENDING, JobState.HELD), (JobState.PENDING, JobState.PRINTING),
    (JobState.PENDING, JobState.CANCELED), (JobState.PENDING, JobState.ABORTED),
    (JobState.HELD, JobState.PENDING), (JobState.HELD, JobState.CANCELED),
    (JobState.HELD, JobState.ABORTED),
    (JobState.PRINTING, JobState.PENDING), (JobState.PRINTING, JobState.HELD),
    (JobState.PRINTING, JobState.COMPLETED), (JobState.PRINTING, JobState.CANCELED),
    (JobState.PRINTING, JobState.ABORTED),
}


@pytest.mark.parametrize("old", list(JobState))
@pytest.mark.parametrize("new", list(JobState))
def test_transition_table(old: JobState, new: JobState) -> None:
    if (old, new) in ALLOWED:
        model.check_transition("J", old, new)
    else:
        with pytest.raises(InvalidTransition):
            model.check_transition("J", old, new)


def test_terminal_states_have_no_way_out() -> None:
    assert {s for s in JobState if s.terminal} == {
        JobState.COMPLETED, JobState.CANCELED, JobState.ABORTED}
    assert all(not model.TRANSITIONS[s] for s in JobState if s.terminal)


def test_priority_rank_order() -> None:
    assert [p.rank for p in (Priority.HIGH, Priority.STANDARD, Priority.OVERNIGHT)] == [0, 1, 2]


def test_iso_is_parseable_for_every_year() -> None:
    for year in (1, 999, 2026, 9999):
        ts = datetime(year, 6, 1, 1, 2, 3, 4, tzinfo=UTC)
        assert model.parse_iso(model.iso(ts)) == ts
    local = datetime(2026, 6, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    assert model.iso(local) == "2026-06-01T10:00:00.000000Z"
