"""The pure character-set core (printnet.charset) and its use by the renderer:
line ends from any system, source encodings, the printer's set and the substitution."""

from __future__ import annotations

import codecs
import json
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from printnet import charset
from printnet.errors import RequestInvalid
from printnet.model import Format, PrintRequest, decode_request
from printnet.printers.drivers import EscpDriver, PlainDriver
from printnet.printers.render import RenderJob, count_pages, render
from printnet.settings import SetupConfig

SETUP = SetupConfig("STANDARD", length=12, width=20)
JOB = RenderJob(id="J" * 18, user="u", station="s", title="t", submitted="now", copies=1,
                header=False, format=Format.TEXT, printer="P", setup="STANDARD")

# Lines without line-end characters (any text, including characters no printer has).
line_text = st.text(st.characters(blacklist_categories=["Cs"],
                                  blacklist_characters="\r\n\f\x0b\x1c\x1d\x1e\x85\u2028\u2029"),
                    max_size=50)


def _render(data: bytes, *, encoding: str | None = None, charset_out: str | None = None,
            escp: bool = False) -> bytes:
    job = _with_encoding(encoding)
    driver = EscpDriver(charset_out) if escp else PlainDriver(charset_out)
    return render(job, [data], setup=SETUP, driver=driver, header_template=None,
                  date="2026-01-01").data()


def _with_encoding(encoding: str | None) -> RenderJob:
    return replace(JOB, encoding=encoding)


# -- line ends --------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.lists(line_text, max_size=30), st.booleans())
def test_crlf_cr_and_lf_texts_print_the_same(lines: list[str], final: bool) -> None:
    lf = "\n".join(lines) + ("\n" if final else "")
    outputs = {
        _render(lf.replace("\n", end).encode("utf-8"), encoding="utf-8")
        for end in ("\n", "\r\n", "\r")
    }
    assert len(outputs) == 1


@settings(max_examples=200, deadline=None)
@given(st.lists(line_text, max_size=30), st.sampled_from(["\n", "\r\n", "\r"]))
def test_every_printed_line_ends_in_crlf(lines: list[str], end: str) -> None:
    out = _render(end.join(lines).encode("utf-8"), encoding="utf-8")
    # The plain driver's only bytes below 0x20 are CR, LF, FF; every CR is followed by LF.
    assert all(b >= 0x20 or b in b"\r\n\f" for b in out)
    assert out.count(b"\r") == out.count(b"\r\n") == out.count(b"\n")


# -- substitution ---------------------------------------------------------------------

PRINTER_SETS = sorted(charset.PRINTER_ENCODINGS)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80), st.sampled_from(PRINTER_SETS))
def test_fit_always_encodes_and_keeps_what_the_set_has(text: str, name: str) -> None:
    fitted = charset.fit(text, name)
    fitted.encode(name)  # never raises
    assert charset.encode(text, name) == fitted.encode(name)
    for ch in text:
        try:
            ch.encode(name)
        except UnicodeEncodeError:
            continue
        assert ch in fitted  # a character the set has is never substituted


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80), st.sampled_from(PRINTER_SETS))
def test_fit_is_idempotent(text: str, name: str) -> None:
    once = charset.fit(text, name)
    assert charset.fit(once, name) == once


@pytest.mark.parametrize(("text", "name", "expected"), [
    ("caf\u00e9", "cp437", b"caf\x82"),  # cp437 has e-acute: kept
    ("caf\u00e9", "ascii", b"cafe"),  # decomposed, accent dropped
    ("\u201cq\u201d \u2018s\u2019", "cp437", b'"q" \'s\''),  # curly quotes
    ("a\u2014b\u2013c\u2026", "iso8859-1", b"a--b-c..."),
    ("\u20ac5", "cp437", b"EUR5"),
    ("\u20ac5", "cp858", b"\xd55"),  # cp858 has the euro sign
    ("Stra\u00dfe", "ascii", b"Strasse"),
    ("\u250c\u2500\u2510", "ascii", b"+-+"),
    ("\u250c\u2500\u2510", "cp437", b"\xda\xc4\xbf"),  # cp437 has box drawing
    ("\ufb01x", "ascii", b"fix"),  # ligature decomposed
    ("\u4e2d\u6587", "cp437", b"??"),  # nothing alike: "?"
    ("\ufffd", "cp437", b"?"),
])
def test_documented_substitutions(text: str, name: str, expected: bytes) -> None:
    assert charset.encode(text, name) == expected


def test_substitution_happens_before_pagination_so_lines_fit() -> None:
    # 18 ellipses become 54 dots in ASCII: wrapped at the width (20), not overflowing.
    out = _render(("\u2026" * 18).encode("utf-8"), encoding="utf-8", charset_out="ascii")
    body = [ln for ln in out.split(b"\r\n") if ln.startswith(b".")]
    assert body and all(len(ln) <= SETUP.width for ln in body)
    assert sum(ln.count(b".") for ln in body) == 54


# -- names ------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "canon"), [
    ("latin-1", "iso8859-1"), ("ISO-8859-1", "iso8859-1"), ("CP437", "cp437"),
    ("ibm437", "cp437"), ("windows-1252", "cp1252"), ("UTF8", "utf-8"), ("utf-16", "utf-16"),
])
def test_encoding_names_are_canonical(name: str, canon: str) -> None:
    assert charset.source_encoding(name) == canon


@pytest.mark.parametrize("name", ["rot13", "zlib", "idna", "base64", "", "nope", "x" * 40,
                                  "utf-8\u00e9"])
def test_not_a_character_set_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match="unknown"):
        charset.source_encoding(name)
    with pytest.raises(ValueError, match="unknown"):
        charset.printer_encoding(name)


def test_utf16_is_a_source_but_not_a_printer_set() -> None:
    assert charset.source_encoding("utf-16") == "utf-16"
    with pytest.raises(ValueError):
        charset.printer_encoding("utf-16")


# -- detection -----------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200), st.integers(1, 7))
def test_utf8_text_is_detected_in_any_chunking(text: str, step: int) -> None:
    data = text.encode("utf-8")
    sniffer = charset.Sniffer()
    for i in range(0, len(data), step):
        sniffer.feed(data[i:i + step])
    sniffer.end_file()
    assert sniffer.result == "utf-8"


@settings(max_examples=200, deadline=None)
@given(st.text(st.characters(min_codepoint=0xA0, max_codepoint=0xFF), min_size=1,
               max_size=50), st.text(max_size=50))
def test_latin1_text_falls_back_and_decodes_the_same(accented: str, rest: str) -> None:
    # Any latin-1 text with a letter above 0x9F that is not valid UTF-8 is detected as
    # the fallback, which decodes every such letter as latin-1 does.
    data = (rest.encode("latin-1", "replace") + accented.encode("latin-1"))
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        return  # by chance valid UTF-8: detected as such, rightly
    if data[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE) and len(data) % 2 == 0:
        return  # by chance a UTF-16 byte-order mark and an even length: ambiguous
    assert charset.detect([data]) == charset.FALLBACK
    assert charset.decode(data, charset.FALLBACK).endswith(accented)


def test_detection_over_files() -> None:
    utf8, latin = "d\u00e9j\u00e0".encode(), "d\u00e9j\u00e0".encode("latin-1")
    assert charset.detect([utf8, b"ascii"]) == "utf-8"
    assert charset.detect([utf8, latin]) == "cp1252"  # one file is not UTF-8
    assert charset.detect([b"\xc3"]) == "cp1252"  # ends inside a character
    assert charset.detect([b"\xc3", b"\xa9"]) == "cp1252"  # files are not joined
    u16 = "\u00e9t\u00e9".encode("utf-16")
    assert u16[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
    assert charset.detect([u16, u16]) == "utf-16"
    assert charset.detect([u16, latin]) == "cp1252"
    assert charset.detect([b"\xfe\xff\xa0"]) == "cp1252"  # latin-1 "thorn y-umlaut nbsp"
    assert charset.detect([b"\xff\xfe\x00\xdc"]) == "cp1252"  # a lone surrogate: no UTF-16
    assert charset.detect([]) == "utf-8"


def test_fallback_decodes_windows_punctuation_and_unassigned_bytes() -> None:
    assert charset.decode(b"\x93q\x94 \x80 \x81", "cp1252") == "\u201cq\u201d \u20ac \ufffd"


# -- requests ------------------------------------------------------------------------


def _request(**extra: object) -> bytes:
    req = PrintRequest(id="0" * 18, user="u", station="s", submitted=datetime.now(UTC),
                       printer="P")
    obj = req.to_json()
    obj["files"] = [{"name": "0", "original": "f", "size": 1, "sha256": "0" * 64}]
    obj.update(extra)
    return json.dumps(obj).encode()


def test_request_encoding_is_validated_and_canonical() -> None:
    req = decode_request(_request(encoding="Latin-1"))
    assert isinstance(req, PrintRequest) and req.encoding == "iso8859-1"
    req = decode_request(_request(encoding=None))
    assert isinstance(req, PrintRequest) and req.encoding is None
    obj = _request()
    req = decode_request(obj.replace(b',"encoding":null', b""))  # older stations: absent
    assert isinstance(req, PrintRequest) and req.encoding is None
    for bad in ("rot13", 7, "x" * 100):
        with pytest.raises(RequestInvalid, match="encoding"):
            decode_request(_request(encoding=bad))


def test_request_round_trips_its_encoding() -> None:
    req = decode_request(_request(encoding="cp437"))
    assert isinstance(req, PrintRequest)
    again = decode_request(req.encode())
    assert isinstance(again, PrintRequest) and again.encoding == "cp437"


# -- rendering with encodings ------------------------------------------------------------


def test_source_encoding_and_printer_set_meet_in_render() -> None:
    text = "na\u00efve caf\u00e9 \u2500\u2500\r\nline two\r"
    for source in ("utf-8", "iso8859-1", "cp437"):
        data = text.encode(source, errors="replace") if source != "iso8859-1" \
            else text.replace("\u2500", "-").encode(source)
        out = _render(data, encoding=source, charset_out="cp437")
        assert b"na\x8bve caf\x82 " in out  # cp437's i-diaeresis and e-acute
        assert b"line two\r\n" in out
    # Undeclared (None) means UTF-8: a latin-1 byte is not UTF-8 and prints as "?".
    assert b"caf?" in _render("caf\u00e9".encode("latin-1"), charset_out="cp437")


def test_page_count_follows_the_printer_set() -> None:
    data = ("\u2026" * 18 + "\n") * 5  # 5 lines; 54 characters each in ASCII: 3 lines each
    setup = SetupConfig("S", length=7, width=20)  # 5 body lines a page
    enc = _with_encoding("utf-8")
    assert count_pages(enc, [data.encode()], setup=setup, charset="utf-8") == 1
    assert count_pages(enc, [data.encode()], setup=setup, charset="ascii") == 3
    ascii_setup = SetupConfig("S", length=7, width=20, encoding="ascii")
    assert count_pages(enc, [data.encode()], setup=ascii_setup) == 3
