"""Pure: pagination of text jobs into the pages of a setup.

Owns the page layout of text jobs: every page starts with a heading line
(title on the left; date stamp and ``Page N of M`` on the right), then a blank
line, then at most ``length - 2`` body lines of at most ``width`` characters.

Rules, in order:

* line ends are normalized: CR LF and a lone CR both become LF;
* a form feed (``\\f``) ends the page: the text after it starts a new one.  A form
  feed at the very start or the very end of the text makes no empty page, but two
  form feeds in a row do (a deliberately blank page);
* tabs are expanded to columns of 8;
* a line longer than ``width`` is wrapped (hard, at ``width``) onto the next lines;
* the page count ``M`` is exact: it is known before the first heading is made.

Characters are counted as code points; control characters other than the ones
above are left for the driver to strip or keep.  Empty text gives one page
(heading only).  This module imports no os/time/serial.
"""

from __future__ import annotations

from typing import Final

from printnet.model import clean_text

TAB_SIZE: Final = 8
HEADING_LINES: Final = 2  # the heading and the blank line under it
MIN_LENGTH: Final = HEADING_LINES + 1


def _check(length: int, width: int) -> None:
    if length < MIN_LENGTH:
        raise ValueError(f"page length must be at least {MIN_LENGTH} lines, not {length}")
    if width < 1:
        raise ValueError(f"page width must be at least 1 character, not {width}")


def normalize_newlines(text: str) -> str:
    """CR LF and lone CR become LF."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _sections(text: str) -> list[str]:
    """Split at form feeds; drop the empty piece before a leading / after a trailing FF."""
    parts = text.split("\f")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()
    if len(parts) > 1 and parts[0] == "":
        parts.pop(0)
    return parts


def wrap_line(line: str, width: int) -> list[str]:
    """Expand tabs, then cut into pieces of at most `width` characters (at least one)."""
    expanded = line.expandtabs(TAB_SIZE)
    if len(expanded) <= width:
        return [expanded]
    return [expanded[i : i + width] for i in range(0, len(expanded), width)]


def page_bodies(text: str, *, length: int, width: int) -> list[list[str]]:
    """The body lines of each page (no headings); always at least one page."""
    _check(length, width)
    per_page = length - HEADING_LINES
    pages: list[list[str]] = []
    for section in _sections(normalize_newlines(text)):
        lines = section.split("\n")
        if len(lines) > 1 and lines[-1] == "":
            lines.pop()  # a final newline ends the last line; it does not add one
        if lines == [""]:
            lines = []
        body: list[str] = []
        for line in lines:
            body.extend(wrap_line(line, width))
        if not body:
            pages.append([])
            continue
        pages.extend(body[i : i + per_page] for i in range(0, len(body), per_page))
    return pages or [[]]


def heading(title: str, *, number: int, total: int, date: str, width: int) -> str:
    """The heading line of page `number` of `total`: fits `width` characters.

    The page number is kept whenever it fits; the date goes before the title
    is cut, the title goes first.
    """
    title = clean_text(title)
    date = clean_text(date)
    page = f"Page {number} of {total}"
    right = f"{date}  {page}" if date else page
    if len(right) > width:
        right = page
    if len(right) >= width:
        return right[:width]
    room = width - len(right) - 2  # two spaces at least between title and the rest
    title = title[: max(room, 0)]
    gap = width - len(title) - len(right)
    return title + " " * gap + right if title else right.rjust(width)


def add_headings(
    bodies: list[list[str]], *, title: str, date: str, width: int, first: int = 1,
    total: int | None = None,
) -> list[list[str]]:
    """Prefix each body with its heading and a blank line, numbered from `first`."""
    total = total if total is not None else first - 1 + len(bodies)
    return [
        [heading(title, number=first + i, total=total, date=date, width=width), "", *body]
        for i, body in enumerate(bodies)
    ]


def paginate(text: str, *, length: int, width: int, title: str, date: str) -> list[list[str]]:
    """Paginate `text`: a list of pages, each a list of lines (heading first).

    Every page has at most `length` lines and every line at most `width`
    characters.  Raises ValueError when `length` < 3 or `width` < 1.
    """
    bodies = page_bodies(text, length=length, width=width)
    return add_headings(bodies, title=title, date=date, width=width)
