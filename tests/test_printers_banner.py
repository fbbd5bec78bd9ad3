"""Header pages: block letters, template expansion, fitting the form, hostile input."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from printnet.printers.banner import DEFAULT_TEMPLATE, block_letters, glyph, header_page

FIELDS = {
    "job": "01HZX7K2M3N4P5Q6R7",
    "user": "alice",
    "station": "ws-12",
    "title": "Quarterly report",
    "date": "2026-05-09 10:00",
    "submitted": "2026-05-09 09:58",
    "copies": "3",
    "printer": "R&D",
    "setup": "STANDARD",
    "pages": "7",
}

_safe = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=20)


def test_block_letters_draw_the_font_with_the_letter_itself() -> None:
    rows = block_letters("Ab", width=80)
    assert len(rows) == 7
    for r in range(7):
        a = glyph("A")[r].replace("#", "A")
        b = glyph("B")[r].replace("#", "B")
        assert rows[r] == (a + " " + b).rstrip()
    assert rows[3] == "AAAAA BBBB"


def test_block_letters_double_size() -> None:
    rows = block_letters("I", width=80, scale=2)
    assert len(rows) == 14
    assert rows[0] == rows[1] == "  IIIIII"


def test_block_letters_cut_to_width_and_unknown_chars_blank() -> None:
    rows = block_letters("ABCDEFGHIJ", width=20)  # 3 letters fit in 20 columns (6 each)
    assert all(len(r) <= 20 for r in rows)
    assert rows[3].startswith("AAAAA BBBB  C")
    assert "D" not in "".join(rows)
    blank = block_letters("\u00e9", width=20)  # not in the font: a blank cell
    assert all(r == "" for r in blank)


def test_default_header_has_the_fields_and_the_block_letter_user() -> None:
    page = header_page(FIELDS, template=None, width=80, length=66)
    text = "\n".join(page)
    for value in ("01HZX7K2M3N4P5Q6R7", "alice", "ws-12", "Quarterly report",
                  "2026-05-09 10:00", "R&D", "STANDARD"):
        assert value in text
    assert "Copies:    3" in text
    big = block_letters("alice", width=80, scale=2)
    stripped = [ln.strip() for ln in page]
    assert all(row.strip() in stripped for row in big if row.strip())
    assert "AAAAAAAAAA" in text  # the bar of a double-size A


def test_short_form_uses_single_size_letters() -> None:
    page = header_page(FIELDS, template=None, width=80, length=22)
    assert len(page) <= 22
    small = [r.strip() for r in block_letters("alice", width=80)]
    assert [ln.strip() for ln in page if ln.strip() in small]
    assert any("01HZX7K2M3N4P5Q6R7" in ln for ln in page)


def test_template_placeholders_and_unknown_ones() -> None:
    tpl = "JOB {job} FOR {user}\n{nosuch} {user.__class__} {0} {job!r} {{job}} {\n{banner}\nend"
    page = header_page(FIELDS, template=tpl, width=100, length=40)
    assert page[0] == "JOB 01HZX7K2M3N4P5Q6R7 FOR alice"
    assert page[1] == "{nosuch} {user.__class__} {0} {job!r} {01HZX7K2M3N4P5Q6R7} {"
    assert page[-1] == "end"
    assert any("AAAAA" in ln for ln in page)


def test_field_values_are_not_expanded_again_and_are_cleaned() -> None:
    fields = dict(FIELDS, title="{job} {banner}\x1b[2J\x07", user="bob")
    page = header_page(fields, template="T={title}", width=80, length=10)
    assert page == ["T={job} {banner}[2J"]


def test_inline_banner_gets_its_own_lines() -> None:
    page = header_page({"user": "x"}, template="before {banner} after", width=40, length=20)
    assert page[0] == "before"
    assert page[-1] == "after"
    assert len(page) == 2 + 14


def test_missing_known_fields_print_empty() -> None:
    assert header_page({}, template="[{job}][{pages}]", width=20, length=5) == ["[][]"]


@settings(max_examples=200)
@given(
    fields=st.dictionaries(st.text(max_size=12), st.text(max_size=80), max_size=12),
    template=st.none() | st.text(max_size=300),
    width=st.integers(min_value=-5, max_value=200),
    length=st.integers(min_value=-5, max_value=80),
)
def test_hostile_templates_and_fields_never_raise_and_fit(
    fields: dict[str, str], template: str | None, width: int, length: int
) -> None:
    page = header_page(fields, template=template, width=width, length=length)
    assert len(page) <= max(length, 1)
    assert all(len(line) <= max(width, 1) for line in page)
    assert all("\x1b" not in line for line in page if template is None)


@settings(max_examples=150)
@given(
    job=_safe,
    user=st.sampled_from(["_", ".x", "-"]) | st.from_regex(
        r"[A-Za-z0-9_][A-Za-z0-9_.@-]{0,15}", fullmatch=True
    ),
    title=_safe, width=st.integers(min_value=40, max_value=160),
    length=st.integers(min_value=24, max_value=90),
)
def test_default_page_contains_id_user_title(
    job: str, user: str, title: str, width: int, length: int
) -> None:
    fields = dict(FIELDS, job=job, user=user, title=title)
    page = header_page(fields, template=DEFAULT_TEMPLATE, width=width, length=length)
    assert len(page) <= length and all(len(ln) <= width for ln in page)
    text = "\n".join(page)
    assert f"Job:       {job}" in text
    assert f"User:      {user}" in text
    assert f"Title:     {title}" in text
    # the name in block letters (as much as fits), at one size or the other
    stripped = {ln.strip() for ln in page}
    drawn = [
        [r.strip() for r in block_letters(user, width=width, scale=s) if r.strip()]
        for s in (1, 2)
    ]
    assert any(rows and all(r in stripped for r in rows) for rows in drawn)
