"""Pagination of text jobs: page sizes, headings, content, form feeds."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from printnet.printers.paginate import heading, page_bodies, paginate

# Text that exercises the paginator: line ends of every kind, tabs, form feeds.
_ALPHABET = st.one_of(
    st.sampled_from(list("ab \t\n\r\f")),
    st.characters(codec="utf-8"),
)
texts = st.text(_ALPHABET, max_size=400)
lengths = st.integers(min_value=3, max_value=30)
widths = st.integers(min_value=1, max_value=120)


def _bodies(pages: list[list[str]]) -> list[str]:
    return [line for page in pages for line in page[2:]]


def _expected_content(text: str) -> str:
    """What the body lines hold together: every line tab-expanded, breaks removed."""
    normalized = text.replace("\r\n", "\n").replace("\r", "\n")
    return "".join(line.expandtabs(8) for line in re.split("[\n\f]", normalized))


@settings(max_examples=300)
@given(text=texts, length=lengths, width=widths)
def test_pages_fit_the_form(text: str, length: int, width: int) -> None:
    pages = paginate(text, length=length, width=width, title="Title", date="2026-05-09")
    assert pages
    for page in pages:
        assert 2 <= len(page) <= length
        assert page[1] == ""
        for line in page:
            assert len(line) <= width


@settings(max_examples=300)
@given(text=texts, length=lengths, width=widths)
def test_content_is_preserved_modulo_wrapping_and_tabs(text: str, length: int, width: int) -> None:
    pages = paginate(text, length=length, width=width, title="T", date="D")
    bodies = _bodies(pages)
    assert "".join(bodies) == _expected_content(text)
    for line in bodies:
        assert "\n" not in line and "\r" not in line and "\f" not in line and "\t" not in line


@settings(max_examples=200)
@given(
    text=texts,
    length=lengths,
    width=st.integers(min_value=40, max_value=132),
    title=st.text(max_size=60),
)
def test_page_n_of_m_is_exact(text: str, length: int, width: int, title: str) -> None:
    pages = paginate(text, length=length, width=width, title=title, date="2026-05-09 10:00")
    total = len(pages)
    for number, page in enumerate(pages, start=1):
        assert page[0].endswith(f"Page {number} of {total}")
        assert "2026-05-09 10:00" in page[0]


def test_empty_text_is_one_page() -> None:
    assert paginate("", length=10, width=40, title="T", date="D") == [
        [heading("T", number=1, total=1, date="D", width=40), ""]
    ]


@pytest.mark.parametrize("length", [-1, 0, 1, 2])
def test_length_below_three_is_refused(length: int) -> None:
    with pytest.raises(ValueError, match="at least 3"):
        paginate("x", length=length, width=40, title="T", date="D")


def test_width_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="width"):
        paginate("x", length=10, width=0, title="T", date="D")


def test_length_three_gives_one_body_line_per_page() -> None:
    pages = paginate("a\nb\nc\n", length=3, width=20, title="T", date="D")
    assert [p[2:] for p in pages] == [["a"], ["b"], ["c"]]
    assert [p[0].endswith(f"Page {i} of 3") for i, p in enumerate(pages, 1)] == [True] * 3


def test_long_lines_wrap_at_width() -> None:
    bodies = page_bodies("x" * 25 + "\nshort", length=66, width=10)
    assert bodies == [["x" * 10, "x" * 10, "x" * 5, "short"]]


def test_tabs_expand_to_eight_columns() -> None:
    assert page_bodies("a\tb\n\tc", length=66, width=80) == [["a       b", "        c"]]


def test_form_feed_starts_a_new_page() -> None:
    assert page_bodies("one\ftwo\nthree", length=66, width=80) == [["one"], ["two", "three"]]


def test_leading_and_trailing_form_feeds_make_no_empty_page() -> None:
    assert page_bodies("\fone\f", length=66, width=80) == [["one"]]
    assert page_bodies("\f", length=66, width=80) == [[]]


def test_two_form_feeds_make_a_blank_page() -> None:
    assert page_bodies("one\f\ftwo", length=66, width=80) == [["one"], [], ["two"]]


def test_crlf_and_cr_are_line_ends() -> None:
    assert page_bodies("a\r\nb\rc\n", length=66, width=80) == [["a", "b", "c"]]


def test_pages_split_at_length_minus_heading() -> None:
    text = "".join(f"line {i}\n" for i in range(45))
    pages = paginate(text, length=22, width=80, title="Report", date="D")
    assert [len(p) - 2 for p in pages] == [20, 20, 5]
    assert pages[2][-1] == "line 44"
    assert pages[0][0].startswith("Report")


def test_heading_cuts_title_before_page_number() -> None:
    line = heading("A very long title indeed", number=12, total=340, date="2026-05-09", width=30)
    assert len(line) == 30
    assert line.endswith("Page 12 of 340")
    line = heading("Title", number=1, total=2, date="2026-05-09 10:00:00", width=12)
    assert line == "Page 1 of 2".rjust(12)


def test_heading_strips_control_characters_from_title() -> None:
    line = heading("evil\x1b[2Jtitle\x07", number=1, total=1, date="D", width=60)
    assert "\x1b" not in line and "\x07" not in line
    assert line.startswith("evil[2Jtitle")
