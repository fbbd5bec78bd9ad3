"""Pure: the header (banner) page printed before a job.

Owns the built-in 5x7 block-letter font, the default header template and the
safe template expansion.

A template is plain text (``etc/<NAME>.hdr``) with placeholders:
``{job}`` ``{user}`` ``{station}`` ``{title}`` ``{date}`` ``{submitted}``
``{copies}`` ``{printer}`` ``{setup}`` ``{pages}``, ``{site}`` (the site the job
was submitted at: SITE, carried by the request when it is forwarded), and two
that take rows of their own (the text before and after them on their line goes
on lines of its own): ``{banner}``, the user name in block letters, and
``{logo}``, the site's text art (a LOGO file, `logo_lines`; without one the
site's name in block letters).  Any other ``{word}`` whose
word is a key of the fields given is replaced too; everything else, including
unknown placeholders and stray braces, is printed as written.  Expansion is a
plain regular-expression substitution: no `str.format`, no attribute or index
access, nothing in a template or a field can raise or reach an object.

Field values are stripped of control characters (`printnet.model.clean_text`)
before they are placed.  The page fits the setup: lines are cut at `width`,
and the page at `length` lines; the block letters are drawn at double size
when they fit, at single size otherwise, centred, and cut to the width (a name too long
for the page keeps its first letters).  This module imports no os/time/serial.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Final

from printnet.model import clean_text

GLYPH_WIDTH: Final = 5
GLYPH_HEIGHT: Final = 7
GLYPH_GAP: Final = 1

KNOWN_FIELDS: Final = (
    "job", "user", "station", "title", "date", "submitted", "copies", "printer", "setup",
    "pages", "site",
)
MAX_LOGO_LINES: Final = 40  # a logo taller than this is cut (it is a title page's art)

DEFAULT_TEMPLATE: Final = """\

{banner}


  Job:       {job}
  User:      {user}
  Station:   {station}
  Title:     {title}
  Submitted: {submitted}
  Printed:   {date}
  Printer:   {printer}   Setup: {setup}
  Copies:    {copies}   Pages: {pages}
"""

# 5x7 glyphs, one string of 7 rows of 5 cells per character ('#' = ink).
_FONT_ROWS: Final[dict[str, tuple[str, ...]]] = {
    "A": (" ### ", "#   #", "#   #", "#####", "#   #", "#   #", "#   #"),
    "B": ("#### ", "#   #", "#   #", "#### ", "#   #", "#   #", "#### "),
    "C": (" ### ", "#   #", "#    ", "#    ", "#    ", "#   #", " ### "),
    "D": ("#### ", "#   #", "#   #", "#   #", "#   #", "#   #", "#### "),
    "E": ("#####", "#    ", "#    ", "#### ", "#    ", "#    ", "#####"),
    "F": ("#####", "#    ", "#    ", "#### ", "#    ", "#    ", "#    "),
    "G": (" ### ", "#   #", "#    ", "# ###", "#   #", "#   #", " ####"),
    "H": ("#   #", "#   #", "#   #", "#####", "#   #", "#   #", "#   #"),
    "I": (" ### ", "  #  ", "  #  ", "  #  ", "  #  ", "  #  ", " ### "),
    "J": ("  ###", "   # ", "   # ", "   # ", "   # ", "#  # ", " ##  "),
    "K": ("#   #", "#  # ", "# #  ", "##   ", "# #  ", "#  # ", "#   #"),
    "L": ("#    ", "#    ", "#    ", "#    ", "#    ", "#    ", "#####"),
    "M": ("#   #", "## ##", "# # #", "# # #", "#   #", "#   #", "#   #"),
    "N": ("#   #", "#   #", "##  #", "# # #", "#  ##", "#   #", "#   #"),
    "O": (" ### ", "#   #", "#   #", "#   #", "#   #", "#   #", " ### "),
    "P": ("#### ", "#   #", "#   #", "#### ", "#    ", "#    ", "#    "),
    "Q": (" ### ", "#   #", "#   #", "#   #", "# # #", "#  # ", " ## #"),
    "R": ("#### ", "#   #", "#   #", "#### ", "# #  ", "#  # ", "#   #"),
    "S": (" ####", "#    ", "#    ", " ### ", "    #", "    #", "#### "),
    "T": ("#####", "  #  ", "  #  ", "  #  ", "  #  ", "  #  ", "  #  "),
    "U": ("#   #", "#   #", "#   #", "#   #", "#   #", "#   #", " ### "),
    "V": ("#   #", "#   #", "#   #", "#   #", "#   #", " # # ", "  #  "),
    "W": ("#   #", "#   #", "#   #", "# # #", "# # #", "# # #", " # # "),
    "X": ("#   #", "#   #", " # # ", "  #  ", " # # ", "#   #", "#   #"),
    "Y": ("#   #", "#   #", " # # ", "  #  ", "  #  ", "  #  ", "  #  "),
    "Z": ("#####", "    #", "   # ", "  #  ", " #   ", "#    ", "#####"),
    "0": (" ### ", "#   #", "#  ##", "# # #", "##  #", "#   #", " ### "),
    "1": ("  #  ", " ##  ", "  #  ", "  #  ", "  #  ", "  #  ", " ### "),
    "2": (" ### ", "#   #", "    #", "   # ", "  #  ", " #   ", "#####"),
    "3": ("#####", "   # ", "  #  ", "   # ", "    #", "#   #", " ### "),
    "4": ("   # ", "  ## ", " # # ", "#  # ", "#####", "   # ", "   # "),
    "5": ("#####", "#    ", "#### ", "    #", "    #", "#   #", " ### "),
    "6": ("  ## ", " #   ", "#    ", "#### ", "#   #", "#   #", " ### "),
    "7": ("#####", "    #", "   # ", "  #  ", " #   ", " #   ", " #   "),
    "8": (" ### ", "#   #", "#   #", " ### ", "#   #", "#   #", " ### "),
    "9": (" ### ", "#   #", "#   #", " ####", "    #", "   # ", " ##  "),
    "-": ("     ", "     ", "     ", "#####", "     ", "     ", "     "),
    "_": ("     ", "     ", "     ", "     ", "     ", "     ", "#####"),
    ".": ("     ", "     ", "     ", "     ", "     ", " ##  ", " ##  "),
    ",": ("     ", "     ", "     ", "     ", " ##  ", "  #  ", " #   "),
    "@": (" ### ", "#   #", "# ###", "# # #", "# ###", "#    ", " ####"),
    "&": (" ##  ", "#  # ", "# #  ", " #   ", "# # #", "#  # ", " ## #"),
    "+": ("     ", "  #  ", "  #  ", "#####", "  #  ", "  #  ", "     "),
    "!": ("  #  ", "  #  ", "  #  ", "  #  ", "  #  ", "     ", "  #  "),
    "?": (" ### ", "#   #", "    #", "   # ", "  #  ", "     ", "  #  "),
    "/": ("     ", "    #", "   # ", "  #  ", " #   ", "#    ", "     "),
    ":": ("     ", " ##  ", " ##  ", "     ", " ##  ", " ##  ", "     "),
    "'": ("  #  ", "  #  ", " #   ", "     ", "     ", "     ", "     "),
    "(": ("   # ", "  #  ", " #   ", " #   ", " #   ", "  #  ", "   # "),
    ")": (" #   ", "  #  ", "   # ", "   # ", "   # ", "  #  ", " #   "),
    "#": (" # # ", " # # ", "#####", " # # ", "#####", " # # ", " # # "),
    "*": ("     ", "  #  ", "# # #", " ### ", "# # #", "  #  ", "     "),
    "=": ("     ", "     ", "#####", "     ", "#####", "     ", "     "),
}

_BLANK: Final = (" " * GLYPH_WIDTH,) * GLYPH_HEIGHT


def glyph(ch: str) -> tuple[str, ...]:
    """The 7 rows of `ch` (upper-cased); an unknown character is blank."""
    return _FONT_ROWS.get(ch.upper(), _BLANK)


def block_letters(text: str, *, width: int, scale: int = 1) -> list[str]:
    """`text` in block letters, each drawn with its own (upper-case) letter.

    Rows are `GLYPH_HEIGHT * scale` tall; characters that do not fit `width`
    are left off (the first ones are kept).  Trailing blanks are stripped.
    """
    # Remembered: a server draws the same few user names on every header page.
    return list(_block_letters(text, width, scale))


@functools.lru_cache(maxsize=256)
def _block_letters(text: str, width: int, scale: int) -> tuple[str, ...]:
    scale = max(scale, 1)
    cell = (GLYPH_WIDTH + GLYPH_GAP) * scale
    fits = max((width + GLYPH_GAP * scale) // cell, 0) if width > 0 else 0
    chars = clean_text(text)[:fits]
    rows: list[str] = []
    for r in range(GLYPH_HEIGHT):
        pieces = []
        for ch in chars:
            ink = ch.upper() if ch.upper() in _FONT_ROWS and ch.isalnum() else "#"
            row = glyph(ch)[r]
            pieces.append("".join((ink if c == "#" else " ") * scale for c in row))
        line = (" " * (GLYPH_GAP * scale)).join(pieces).rstrip()[:width]
        rows.extend([line] * scale)
    return tuple(rows)


_PLACEHOLDER: Final = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]{0,31})\}")


def _substitute(line: str, values: Mapping[str, str]) -> str:
    def repl(m: re.Match[str]) -> str:
        return values.get(m.group(1), m.group(0))

    return _PLACEHOLDER.sub(repl, line)


def _clean_template_line(line: str) -> str:
    # Operator text: keep it as written but expand tabs and drop stray CRs.
    return line.replace("\r", "").expandtabs(8)


_BLOCK: Final = re.compile(r"\{(banner|logo)\}")


def logo_lines(logo: str | None, site: str, *, width: int) -> list[str]:
    """The rows `{logo}` stands for: the LOGO file's text art as drawn (control
    characters dropped, tabs expanded, at most `MAX_LOGO_LINES`), or without one the
    site's name in block letters, centred; nothing when neither is known."""
    if logo is not None:
        # Art keeps its leading spaces: only what is not printable goes (clean_text,
        # with a guard character so that it strips nothing at the left).
        rows = [clean_text("|" + ln.replace("\r", "").expandtabs(8))[1:].rstrip()
                for ln in logo.replace("\r\n", "\n").split("\n")]
        while rows and not rows[-1]:
            rows.pop()
        while rows and not rows[0]:
            rows.pop(0)
        return [r[:width] for r in rows[:MAX_LOGO_LINES]]
    if not site:
        return []
    rows = block_letters(site, width=width, scale=1)
    pad = " " * max((width - max((len(r) for r in rows), default=0)) // 2, 0)
    return [pad + r if r else r for r in rows]


def header_page(
    fields: Mapping[str, str], *, template: str | None, width: int, length: int,
    logo: str | None = None,
) -> list[str]:
    """The lines of the header page (at most `length` lines of at most `width` chars).

    `fields` holds the values for the placeholders (see the module docstring);
    known fields that are missing print as empty.  `template` None uses
    `DEFAULT_TEMPLATE`.  `logo`: the text art of `{logo}` (`logo_lines`).  Never
    raises on what a template or a field contains.
    """
    width = max(width, 1)
    length = max(length, 1)
    values: dict[str, str] = dict.fromkeys(KNOWN_FIELDS, "")
    for key, value in fields.items():
        if _PLACEHOLDER.fullmatch("{" + str(key) + "}") and key not in ("banner", "logo"):
            values[str(key)] = clean_text(str(value))
    text = DEFAULT_TEMPLATE if template is None else template
    tpl_lines = [_clean_template_line(ln) for ln in text.replace("\r\n", "\n").split("\n")]
    if tpl_lines and tpl_lines[-1] == "":
        tpl_lines.pop()
    art = logo_lines(logo, values["site"], width=width) \
        if any("{logo}" in ln for ln in tpl_lines) else []

    # How tall may the block letters be?  What the other lines leave, shared out.
    banners = sum(ln.count("{banner}") for ln in tpl_lines)
    letters: list[str] = []
    if banners:
        other = 0
        for ln in tpl_lines:
            pieces = _BLOCK.split(ln)
            if len(pieces) == 1:
                other += 1
                continue
            other += sum(1 for p in pieces[0::2] if p.strip())
            other += len(art) * pieces[1::2].count("logo")
        room = (length - other) // banners
        user = values["user"]
        double_width = len(user) * (GLYPH_WIDTH + GLYPH_GAP) * 2 - GLYPH_GAP * 2
        if room >= 2 * GLYPH_HEIGHT and double_width <= width:
            letters = block_letters(user, width=width, scale=2)
        elif room >= GLYPH_HEIGHT:
            letters = block_letters(user, width=width, scale=1)

    if letters:
        pad = " " * max((width - max(len(r) for r in letters)) // 2, 0)
        letters = [pad + r if r else r for r in letters]

    out: list[str] = []
    for ln in tpl_lines:
        pieces = _BLOCK.split(ln)  # text, block, text, block, ..., text
        if len(pieces) == 1:
            out.append(_substitute(ln, values))
            continue
        for i, piece in enumerate(pieces):
            if i % 2:
                out.extend(letters if piece == "banner" else art)
            elif piece.strip():
                out.append(_substitute(piece.lstrip() if i > 0 else piece, values))
    return [ln[:width].rstrip() for ln in out[:length]]
