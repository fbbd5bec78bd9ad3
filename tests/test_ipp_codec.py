"""The IPP codec: hypothesis round trips, known bytes, and fuzzing of the decoder."""

from __future__ import annotations

import struct
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from printnet.ipp import codec
from printnet.ipp.codec import Attribute, Collection, IppParseError, Message, Value
from printnet.ipp.enums import GroupTag, Operation, Tag

names = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1,
                max_size=40)
texts = st.text(max_size=200)
i32 = st.integers(-(2**31), 2**31 - 1)
dates = st.builds(
    lambda d, off: d.replace(microsecond=d.microsecond // 100_000 * 100_000,
                             tzinfo=timezone(timedelta(minutes=off))),
    st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(9999, 12, 31)),
    st.integers(-14 * 60 + 1, 14 * 60 - 1),
)


def scalar_values() -> st.SearchStrategy[Value]:
    return st.one_of(
        st.builds(Value, st.sampled_from([Tag.INTEGER, Tag.ENUM]), i32),
        st.builds(Value, st.just(Tag.BOOLEAN), st.booleans()),
        st.builds(Value, st.just(Tag.OCTET_STRING), st.binary(max_size=100)),
        st.builds(Value, st.just(Tag.DATE_TIME), dates),
        st.builds(Value, st.just(Tag.RESOLUTION),
                  st.tuples(i32, i32, st.sampled_from([3, 4]))),
        st.builds(Value, st.just(Tag.RANGE_OF_INTEGER), st.tuples(i32, i32)),
        st.builds(Value, st.sampled_from([Tag.TEXT_WITH_LANGUAGE, Tag.NAME_WITH_LANGUAGE]),
                  st.tuples(st.sampled_from(["en", "de-ch"]), texts)),
        st.builds(Value, st.sampled_from([Tag.TEXT, Tag.NAME, Tag.KEYWORD, Tag.URI,
                                          Tag.CHARSET, Tag.MIME_MEDIA_TYPE]), texts),
        st.builds(Value, st.sampled_from([Tag.NO_VALUE, Tag.UNKNOWN, Tag.UNSUPPORTED])),
        st.builds(Value, st.integers(0x100, 0x7FFFFFFF), st.binary(max_size=20)),
    )


def attributes(values: st.SearchStrategy[Value]) -> st.SearchStrategy[Attribute]:
    return st.builds(Attribute, names, st.lists(values, min_size=1, max_size=4))


values = st.recursive(
    scalar_values(),
    lambda inner: st.builds(
        lambda members: Value(Tag.BEG_COLLECTION, Collection(members)),
        st.lists(attributes(inner), max_size=4)),
    max_leaves=20,
)

messages = st.builds(
    Message,
    st.tuples(st.integers(0, 255), st.integers(0, 255)),
    st.integers(-(2**15), 2**15 - 1),
    i32,
    st.lists(st.builds(codec.Group, st.sampled_from(
        [GroupTag.OPERATION, GroupTag.JOB, GroupTag.PRINTER, GroupTag.UNSUPPORTED,
         GroupTag.DOCUMENT]),
        st.lists(attributes(values), max_size=6)), max_size=4),
    st.binary(max_size=300),
)


@given(messages)
@settings(max_examples=200, deadline=None)
def test_round_trip(msg: Message) -> None:
    data = codec.encode(msg)
    back = codec.decode(data)
    assert back == msg
    assert codec.encode(back) == data


@given(messages, st.data())
@settings(max_examples=200, deadline=None)
def test_mutated_messages_parse_or_fail_cleanly(msg: Message, data: st.DataObject) -> None:
    raw = bytearray(codec.encode(msg))
    for _ in range(data.draw(st.integers(1, 4))):
        kind = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        pos = data.draw(st.integers(0, max(0, len(raw) - 1)))
        if kind == "flip" and raw:
            raw[pos] = data.draw(st.integers(0, 255))
        elif kind == "cut":
            del raw[pos:]
        else:
            raw[pos:pos] = data.draw(st.binary(min_size=1, max_size=8))
    try:
        back = codec.decode(bytes(raw))
    except IppParseError:
        return
    # Whatever parses must encode again to a message that parses the same way.
    assert codec.decode(codec.encode(back)) == back


@given(st.binary(max_size=400))
@settings(max_examples=300, deadline=None)
def test_random_bytes_never_crash(raw: bytes) -> None:
    try:
        codec.decode(raw)
    except IppParseError:
        pass


def test_known_bytes_of_a_get_printer_attributes_request() -> None:
    msg = Message((2, 0), Operation.GET_PRINTER_ATTRIBUTES, 7)
    msg.add_group(GroupTag.OPERATION, [
        Attribute.of("attributes-charset", Tag.CHARSET, "utf-8"),
        Attribute.of("requested-attributes", Tag.KEYWORD, "printer-state", "queued-job-count"),
    ])
    expected = (
        b"\x02\x00\x00\x0b\x00\x00\x00\x07\x01"
        b"\x47\x00\x12attributes-charset\x00\x05utf-8"
        b"\x44\x00\x14requested-attributes\x00\x0dprinter-state"
        b"\x44\x00\x00\x00\x10queued-job-count"
        b"\x03"
    )
    assert codec.encode(msg) == expected
    assert codec.decode(expected + b"DATA").data == b"DATA"


def test_collection_bytes() -> None:
    media = Collection([Attribute.of("x-dimension", Tag.INTEGER, 21000)])
    msg = Message(code=0, request_id=1)
    msg.add_group(GroupTag.JOB, [Attribute.of("media-col", Tag.BEG_COLLECTION, media)])
    raw = codec.encode(msg)
    assert (b"\x34\x00\x09media-col\x00\x00"
            b"\x4a\x00\x00\x00\x0bx-dimension"
            b"\x21\x00\x00\x00\x04" + struct.pack(">i", 21000)
            + b"\x37\x00\x00\x00\x00") in raw
    assert codec.decode(raw) == msg


@pytest.mark.parametrize(("raw", "why"), [
    (b"\x02\x00\x00\x02", "truncated"),
    (b"\x02\x00\x00\x02\x00\x00\x00\x01", "no end-of-attributes"),
    (b"\x02\x00\x00\x02\x00\x00\x00\x01\x21\x00\x01a\x00\x04\x00\x00\x00\x01\x03",
     "before any group"),
    (b"\x02\x00\x00\x02\x00\x00\x00\x01\x01\x21\x00\x01a\x00\x03\x00\x00\x01\x03",
     "4 bytes"),
    (b"\x02\x00\x00\x02\x00\x00\x00\x01\x01\x44\x00\x01a\xff\xff", "truncated"),
    (b"\x02\x00\x00\x02\x00\x00\x00\x01\x01\x44\x00\x00\x00\x01a\x03",
     "additional value without"),
    (b"\x02\x00\x00\x02\x00\x00\x00\x01\x01\x34\x00\x01c\x00\x00\x03",
     "endCollection"),
])
def test_malformed_messages_say_where(raw: bytes, why: str) -> None:
    with pytest.raises(IppParseError, match=why):
        codec.decode(raw)


def test_deep_collections_are_refused() -> None:
    body = b""
    for _ in range(codec.MAX_DEPTH + 2):
        body += b"\x34\x00\x00\x00\x00\x4a\x00\x00\x00\x01m"
    raw = b"\x02\x00\x00\x02\x00\x00\x00\x01\x01\x34\x00\x01c\x00\x00" + body
    with pytest.raises(IppParseError, match="nested deeper"):
        codec.decode(raw)


def test_attribute_floods_are_bounded() -> None:
    one = b"\x44\x00\x00\x00\x01k"
    raw = (b"\x02\x00\x00\x02\x00\x00\x00\x01\x01\x44\x00\x01a\x00\x01k"
           + one * (codec.MAX_ATTRIBUTES + 1) + b"\x03")
    with pytest.raises(IppParseError, match="more than"):
        codec.decode(raw)
