"""Drivers: plain text is safe for any printer, raw is raw, ESC/P sets the form up."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from printnet.printers.drivers import (
    EscpDriver,
    PlainDriver,
    escp_page_length,
    escp_pitch,
    get_driver,
    strip_controls,
)
from printnet.settings import DriverName, SetupConfig

_ALLOWED_LOW = {0x0D, 0x0A, 0x0C}

# Lines full of what a hostile or careless job contains: escape sequences,
# C0/C1 controls, DEL, and any other character.
_nasty = st.one_of(
    st.sampled_from(["\x1b", "\x1b[", "\x1b]", "\x9b", "\x9d", "\x07", "\x00", "\x7f", "\t",
                     "\x1bK\x05\x00", "\x1b*\x00\x02\x00", "\x1b(B", "\x1bC\x00", "\x1bD"]),
    st.characters(),
)
lines = st.lists(st.lists(_nasty, max_size=30).map("".join), max_size=20)


@settings(max_examples=400)
@given(lines=lines)
def test_plain_text_output_has_no_control_bytes(lines: list[str]) -> None:
    out = PlainDriver().page(lines)
    for b in out:
        assert b >= 0x20 or b in _ALLOWED_LOW, (b, out)
        assert b != 0x7F and not 0x80 <= b <= 0x9F
    assert out.endswith(b"\f")
    assert out.count(b"\r\n") == len(lines)
    assert out.count(b"\f") == 1


@settings(max_examples=200)
@given(data=st.binary(max_size=2000))
def test_raw_passes_through_identically(data: bytes) -> None:
    assert PlainDriver().raw(data) == data
    assert EscpDriver().raw(data) == data


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a\x1b[1;31mred\x1b[0m!", "ared!"),  # CSI / SGR
        ("\x9b2Jclear", "clear"),  # 8-bit CSI
        ("\x1b]0;window title\x07text", "text"),  # OSC ended by BEL
        ("\x1b]2;t\x1b\\text", "text"),  # OSC ended by ST
        ("\x1bEbold\x1bF", "bold"),  # ESC/P bold on/off
        ("\x1bx\x01nlq", "nlq"),  # ESC x n
        ("\x1b-\x01under\x1b-\x00", "under"),  # ESC - n
        ("\x1bC\x00\x0bform", "form"),  # ESC C NUL n
        ("\x1bC\x42form", "form"),  # ESC C n
        ("\x1b$\x10\x00pos", "pos"),  # ESC $ nL nH
        ("\x1bK\x03\x00\x7f\x41\x41img", "img"),  # bitmap: 3 data bytes skipped
        ("\x1b*\x21\x01\x00ABCimg", "img"),  # ESC * m=33 (3 bytes per column)
        ("\x1bD\x08\x10\x18\x00tabs", "tabs"),  # ESC D ... NUL
        ("\x1b(Bascii", "ascii"),  # ECMA charset designation
        ("\x1b7saved\x1b8", "saved"),
        ("tab\there", "tab     here"),
        ("nul\x00bell\x07del\x7fc1\x85", "nulbelldelc1"),
        ("trailing\x1b", "trailing"),
    ],
)
def test_strip_controls_known_sequences(text: str, expected: str) -> None:
    assert strip_controls(text) == expected


def test_plain_encodes_latin1_and_substitutes_the_rest() -> None:
    # latin-1 has e-acute; the euro sign becomes its look-alike, a CJK character "?".
    assert PlainDriver().page(["caf\u00e9 \u20ac5 \u4e2d"]) == b"caf\xe9 EUR5 ?\r\n\f"


def test_plain_prints_in_the_setups_character_set() -> None:
    assert PlainDriver("cp437").page(["caf\u00e9 \u2500"]) == b"caf\x82 \xc4\r\n\f"
    assert PlainDriver("ascii").page(["caf\u00e9 \u201cq\u201d"]) == b'cafe "q"\r\n\f'


def test_escp_selects_pc437_only_for_cp437() -> None:
    setup = SetupConfig("STANDARD")
    assert b"\x1bt\x01" in EscpDriver().begin(setup)
    assert b"\x1bt\x01" not in EscpDriver("iso8859-1").begin(setup)
    assert EscpDriver("iso8859-1").page(["\u00e9"]) == b"\xe9\r\n\f"


def test_plain_begin_and_end_are_empty() -> None:
    d = PlainDriver()
    assert d.begin(SetupConfig("STANDARD")) == b""
    d.raw(b"no form feed")
    assert d.end() == b""


@pytest.mark.parametrize(
    ("width", "pitch"),
    [(80, b"\x1bP"), (40, b"\x1bP"), (96, b"\x1bM"), (132, b"\x1bP\x0f"), (160, b"\x1bM\x0f")],
)
def test_escp_begin_resets_and_sets_form_and_pitch(width: int, pitch: bytes) -> None:
    setup = SetupConfig("CHECKS", form="CHECKS", length=22, width=width, init=b"\x1bx\x01")
    out = EscpDriver().begin(setup)
    assert out.startswith(b"\x1b@")
    assert b"\x1bC\x16" in out  # 22 lines
    assert out.endswith(pitch + b"\x1bx\x01")
    assert escp_pitch(width) == pitch


def test_escp_page_length_over_127_lines_uses_inches() -> None:
    assert escp_page_length(66) == b"\x1bC\x42"
    assert escp_page_length(132) == b"\x1bC\x00\x16"  # 22 inches
    assert escp_page_length(0) == b"\x1bC\x01"


def test_escp_keeps_job_codes_and_drops_nul() -> None:
    out = EscpDriver().page(["\x1bEbold\x1bF\x00 \u00e9\u2500"])
    assert out == b"\x1bEbold\x1bF \x82\xc4\r\n\f"  # cp437: e-acute 0x82, box line 0xC4


def test_escp_end_ejects_only_when_needed() -> None:
    d = EscpDriver()
    d.begin(SetupConfig("STANDARD"))
    assert d.end() == b""  # nothing printed
    d.page(["x"])
    assert d.end() == b""  # a page ends with its form feed
    d.raw(b"raw data")
    assert d.end() == b"\f"
    d.raw(b"raw page\f")
    assert d.end() == b""


def test_get_driver_gives_fresh_drivers() -> None:
    assert isinstance(get_driver(DriverName.PLAIN), PlainDriver)
    a, b = get_driver(DriverName.ESCP), get_driver(DriverName.ESCP)
    assert isinstance(a, EscpDriver) and a is not b
    assert a.name == DriverName.ESCP
