"""Pure IPP/2.0 message encoding and decoding (RFC 8010), for servers and clients.

A message is a version, an operation id (request) or status code (response),
a request id, attribute groups, and the document data after them::

    version-number      2 bytes  (2.0 -> 0x02 0x00)
    operation-id/status 2 bytes
    request-id          4 bytes
    { begin-group-tag 1 byte
      { value-tag 1 byte, name-length 2, name, value-length 2, value }* }*
    end-of-attributes-tag (0x03)
    data

An attribute with several values (``1setOf``) is the first value with its name
and then "additional values" with name-length 0.  A collection
(``begCollection`` ... ``endCollection``) holds its members as
``memberAttrName`` values, each followed by the member's own value(s); a
member may itself be a collection (nesting is bounded: `MAX_DEPTH`).

Python types of values, by tag (`Value.value`):

=========================================  ========================================
integer, enum                              int (signed 32 bits)
boolean                                    bool
octetString and unknown tags               bytes
dateTime                                   datetime (aware; 11-byte form, RFC 2579)
resolution                                 (x, y, units) ints; units 3 dpi, 4 dpcm
rangeOfInteger                             (lower, upper) ints
textWithLanguage, nameWithLanguage         (language, text) strs
text, name, keyword, uri, charset, ...     str (UTF-8; bytes that are not UTF-8
                                           survive as surrogate escapes)
begCollection                              `Collection` (its member attributes)
out-of-band (unsupported, no-value, ...)   None
=========================================  ========================================

`decode` never trusts a length: every field is checked against what is left,
and anything malformed raises `IppParseError` saying where.  It also bounds
attribute counts (`MAX_ATTRIBUTES`) so a small message cannot cost much.
No I/O, no clock: this module is the whole protocol syntax and nothing else.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Final

from printnet.errors import PrintnetError
from printnet.ipp.enums import OUT_OF_BAND, STRING_TAGS, GroupTag, Tag

MAX_DEPTH: Final = 16  # nested collections
MAX_ATTRIBUTES: Final = 10_000  # attributes and values in one message
_CHARSET: Final = "utf-8"
_ERRORS: Final = "surrogateescape"


class IppParseError(PrintnetError):
    """A message that is not valid IPP (truncated, bad tag, bad value length)."""


@dataclass(frozen=True, slots=True)
class Value:
    """One value with its tag."""

    tag: int
    value: Any = None


@dataclass(slots=True)
class Attribute:
    """A named attribute and its values (more than one: a 1setOf)."""

    name: str
    values: list[Value]

    @classmethod
    def of(cls, name: str, tag: int, *values: Any) -> Attribute:
        """An attribute whose values share one tag (``None`` for out-of-band)."""
        return cls(name, [Value(tag, v) for v in (values or (None,))])

    @property
    def tag(self) -> int:
        return self.values[0].tag if self.values else Tag.NO_VALUE

    @property
    def value(self) -> Any:
        """The first value (None for none)."""
        return self.values[0].value if self.values else None

    def plain(self) -> list[Any]:
        return [v.value for v in self.values]


@dataclass(slots=True)
class Collection:
    """The members of a collection value, in order."""

    members: list[Attribute] = field(default_factory=list)

    def get(self, name: str) -> Attribute | None:
        for a in self.members:
            if a.name == name:
                return a
        return None


@dataclass(slots=True)
class Group:
    """One attribute group (operation, job, printer, unsupported...)."""

    tag: int
    attributes: list[Attribute] = field(default_factory=list)

    def get(self, name: str) -> Attribute | None:
        for a in self.attributes:
            if a.name == name:
                return a
        return None

    def add(self, attr: Attribute) -> None:
        self.attributes.append(attr)

    def __iter__(self) -> Iterator[Attribute]:
        return iter(self.attributes)


@dataclass(slots=True)
class Message:
    """A request (code = operation id) or response (code = status code)."""

    version: tuple[int, int] = (2, 0)
    code: int = 0
    request_id: int = 1
    groups: list[Group] = field(default_factory=list)
    data: bytes = b""

    def group(self, tag: int) -> Group | None:
        for g in self.groups:
            if g.tag == tag:
                return g
        return None

    def groups_of(self, tag: int) -> list[Group]:
        return [g for g in self.groups if g.tag == tag]

    def add_group(self, tag: int, attributes: Iterable[Attribute] = ()) -> Group:
        g = Group(tag, list(attributes))
        self.groups.append(g)
        return g

    @property
    def operation(self) -> Group:
        """The operation-attributes group (an empty one if missing)."""
        return self.group(GroupTag.OPERATION) or Group(GroupTag.OPERATION)


# ---------------------------------------------------------------------------
# Encoding


def encode(msg: Message) -> bytes:
    """The message's bytes (attributes, end tag, data)."""
    out = bytearray(struct.pack(">BBhi", msg.version[0], msg.version[1], msg.code,
                                msg.request_id))
    for group in msg.groups:
        out.append(group.tag)
        for attr in group.attributes:
            _encode_attribute(out, attr, 0)
    out.append(GroupTag.END)
    out += msg.data
    return bytes(out)


def _encode_attribute(out: bytearray, attr: Attribute, depth: int) -> None:
    name = attr.name.encode(_CHARSET, _ERRORS)
    for i, value in enumerate(attr.values):
        _encode_value(out, name if i == 0 else b"", value, depth)


def _put(out: bytearray, tag: int, name: bytes, data: bytes) -> None:
    if len(name) > 0xFFFF or len(data) > 0xFFFF:
        raise ValueError("an IPP name or value is at most 65535 bytes")
    if tag > 0xFF:
        out.append(Tag.EXTENSION)
        out += struct.pack(">H", len(name)) + name
        out += struct.pack(">H", len(data) + 4) + struct.pack(">I", tag) + data
        return
    out.append(tag)
    out += struct.pack(">H", len(name)) + name
    out += struct.pack(">H", len(data)) + data


def _encode_value(out: bytearray, name: bytes, value: Value, depth: int) -> None:
    tag, v = value.tag, value.value
    if tag == Tag.BEG_COLLECTION:
        if depth >= MAX_DEPTH:
            raise ValueError(f"collections nested deeper than {MAX_DEPTH}")
        _put(out, tag, name, b"")
        members: Collection = v if isinstance(v, Collection) else Collection(list(v or ()))
        for member in members.members:
            _put(out, Tag.MEMBER_ATTR_NAME, b"", member.name.encode(_CHARSET, _ERRORS))
            for mv in member.values:
                _encode_value(out, b"", mv, depth + 1)
        _put(out, Tag.END_COLLECTION, b"", b"")
        return
    _put(out, tag, name, encode_value(tag, v))


def encode_value(tag: int, v: Any) -> bytes:
    """The bytes of one (non-collection) value."""
    if tag in OUT_OF_BAND:
        return b"" if v is None else bytes(v)
    if tag in (Tag.INTEGER, Tag.ENUM):
        return struct.pack(">i", v)
    if tag == Tag.BOOLEAN:
        return b"\x01" if v else b"\x00"
    if tag == Tag.DATE_TIME:
        return _encode_date(v)
    if tag == Tag.RESOLUTION:
        x, y, units = v
        return struct.pack(">iib", x, y, units)
    if tag == Tag.RANGE_OF_INTEGER:
        lo, hi = v
        return struct.pack(">ii", lo, hi)
    if tag in (Tag.TEXT_WITH_LANGUAGE, Tag.NAME_WITH_LANGUAGE):
        lang: bytes = str(v[0]).encode(_CHARSET, _ERRORS)
        text: bytes = str(v[1]).encode(_CHARSET, _ERRORS)
        return struct.pack(">H", len(lang)) + lang + struct.pack(">H", len(text)) + text
    if tag in STRING_TAGS:
        return str(v).encode(_CHARSET, _ERRORS)
    return bytes(v)  # octetString, and tags this codec does not interpret


def _encode_date(ts: datetime) -> bytes:
    off = ts.utcoffset() or timedelta(0)
    minutes = int(off.total_seconds() // 60)
    sign = b"+" if minutes >= 0 else b"-"
    minutes = abs(minutes)
    return struct.pack(">HBBBBBB", ts.year, ts.month, ts.day, ts.hour, ts.minute, ts.second,
                       ts.microsecond // 100_000) + sign + bytes([minutes // 60, minutes % 60])


# ---------------------------------------------------------------------------
# Decoding


class _Reader:
    def __init__(self, data: bytes | memoryview) -> None:
        self.data = memoryview(data)
        self.pos = 0
        self.count = 0

    def take(self, n: int, what: str) -> bytes:
        if self.pos + n > len(self.data):
            raise IppParseError(f"truncated at byte {self.pos}: {what} needs {n} bytes, "
                                f"{len(self.data) - self.pos} left")
        chunk = bytes(self.data[self.pos:self.pos + n])
        self.pos += n
        return chunk

    def u8(self, what: str) -> int:
        return self.take(1, what)[0]

    def u16(self, what: str) -> int:
        hi, lo = self.take(2, what)
        return hi << 8 | lo

    def peek(self) -> int | None:
        return self.data[self.pos] if self.pos < len(self.data) else None


def decode(data: bytes | memoryview) -> Message:
    """Parse a whole message; the document data is what follows the end tag."""
    msg, end = decode_head(data)
    msg.data = bytes(memoryview(data)[end:])
    return msg


def decode_head(data: bytes | memoryview) -> tuple[Message, int]:
    """Parse the header and attributes; (message without data, offset of the data)."""
    r = _Reader(data)
    major, minor = r.u8("version"), r.u8("version")
    code = struct.unpack(">h", r.take(2, "operation-id"))[0]
    request_id = struct.unpack(">i", r.take(4, "request-id"))[0]
    msg = Message((major, minor), code, request_id)
    group: Group | None = None
    while True:
        tag = r.peek()
        if tag is None:
            raise IppParseError(f"truncated at byte {r.pos}: no end-of-attributes tag")
        if tag <= 0x0F:
            r.pos += 1
            if tag == GroupTag.END:
                return msg, r.pos
            if tag == 0x00:
                raise IppParseError(f"byte {r.pos - 1}: reserved delimiter tag 0x00")
            group = msg.add_group(tag)
            continue
        if group is None:
            raise IppParseError(f"byte {r.pos}: an attribute before any group tag")
        start = r.pos
        vtag, name, value = _decode_value(r, 0)
        if vtag in (Tag.END_COLLECTION, Tag.MEMBER_ATTR_NAME):
            raise IppParseError(f"byte {start}: {Tag(vtag).name} outside a collection")
        if name:
            group.attributes.append(Attribute(name, [value]))
        elif not group.attributes:
            raise IppParseError(f"byte {start}: an additional value without an attribute")
        else:
            group.attributes[-1].values.append(value)


def _decode_value(r: _Reader, depth: int) -> tuple[int, str, Value]:
    """One value: (tag, name or '' for an additional value, value)."""
    r.count += 1
    if r.count > MAX_ATTRIBUTES:
        raise IppParseError(f"more than {MAX_ATTRIBUTES} attributes and values")
    start = r.pos
    tag = r.u8("value tag")
    name = r.take(r.u16("name length"), "name").decode(_CHARSET, _ERRORS)
    raw = r.take(r.u16("value length"), "value")
    if tag == Tag.EXTENSION:
        if len(raw) < 4:
            raise IppParseError(f"byte {start}: extension tag without its 4-byte tag")
        tag = struct.unpack(">I", raw[:4])[0]
        if tag <= 0xFF or tag > 0x7FFFFFFF:
            raise IppParseError(f"byte {start}: bad extension tag {tag:#x}")
        raw = raw[4:]
    if tag == Tag.BEG_COLLECTION:
        if depth >= MAX_DEPTH:
            raise IppParseError(f"byte {start}: collections nested deeper than {MAX_DEPTH}")
        return tag, name, Value(tag, _decode_collection(r, depth + 1, start))
    try:
        return tag, name, Value(tag, decode_value(tag, raw))
    except (ValueError, struct.error) as exc:
        raise IppParseError(f"byte {start}: attribute {name[:40]!r}: {exc}") from None


def _decode_collection(r: _Reader, depth: int, start: int) -> Collection:
    coll = Collection()
    while True:
        nxt = r.peek()
        if nxt is None or nxt <= 0x0F:
            raise IppParseError(f"byte {start}: collection without endCollection")
        pos = r.pos
        tag, name, value = _decode_value(r, depth)
        if name:
            raise IppParseError(f"byte {pos}: a named attribute inside a collection")
        if tag == Tag.END_COLLECTION:
            return coll
        if tag == Tag.MEMBER_ATTR_NAME:
            if not isinstance(value.value, str) or not value.value:
                raise IppParseError(f"byte {pos}: empty memberAttrName")
            coll.members.append(Attribute(value.value, []))
            continue
        if not coll.members:
            raise IppParseError(f"byte {pos}: a collection value before its memberAttrName")
        coll.members[-1].values.append(value)


def decode_value(tag: int, raw: bytes) -> Any:
    """One value from its bytes (ValueError if its length is wrong for its tag)."""
    if tag in OUT_OF_BAND:
        return raw or None
    if tag in (Tag.INTEGER, Tag.ENUM):
        _need(raw, 4, tag)
        return struct.unpack(">i", raw)[0]
    if tag == Tag.BOOLEAN:
        _need(raw, 1, tag)
        if raw[0] > 1:
            raise ValueError(f"boolean value {raw[0]}")
        return raw[0] == 1
    if tag == Tag.DATE_TIME:
        _need(raw, 11, tag)
        return _decode_date(raw)
    if tag == Tag.RESOLUTION:
        _need(raw, 9, tag)
        return struct.unpack(">iib", raw)
    if tag == Tag.RANGE_OF_INTEGER:
        _need(raw, 8, tag)
        return struct.unpack(">ii", raw)
    if tag in (Tag.TEXT_WITH_LANGUAGE, Tag.NAME_WITH_LANGUAGE):
        if len(raw) < 4:
            raise ValueError("textWithLanguage shorter than 4 bytes")
        n = struct.unpack(">H", raw[:2])[0]
        if 2 + n + 2 > len(raw):
            raise ValueError("language length runs past the value")
        m = struct.unpack(">H", raw[2 + n:4 + n])[0]
        if 4 + n + m != len(raw):
            raise ValueError("text length does not match the value")
        return (raw[2:2 + n].decode(_CHARSET, _ERRORS), raw[4 + n:].decode(_CHARSET, _ERRORS))
    if tag in STRING_TAGS:
        return raw.decode(_CHARSET, _ERRORS)
    if tag == Tag.END_COLLECTION:
        if raw:
            raise ValueError("endCollection with a value")
        return None
    return raw


def _need(raw: bytes, n: int, tag: int) -> None:
    if len(raw) != n:
        raise ValueError(f"a {_tag_name(tag)} value is {n} bytes, not {len(raw)}")


def _tag_name(tag: int) -> str:
    try:
        return Tag(tag).name
    except ValueError:
        return f"tag {tag:#x}"


def _decode_date(raw: bytes) -> datetime:
    year, month, day, hour, minute, second, deci = struct.unpack(">HBBBBBB", raw[:8])
    sign, oh, om = chr(raw[8]), raw[9], raw[10]
    if sign not in "+-" or oh > 14 or om > 59 or deci > 9:
        raise ValueError("bad dateTime zone or deci-seconds")
    off = timedelta(hours=oh, minutes=om)
    tz = timezone(off if sign == "+" else -off)
    return datetime(year, month, day, hour, minute, min(second, 59), deci * 100_000, tz)
