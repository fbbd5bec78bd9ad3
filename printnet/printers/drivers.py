"""Pure: printer drivers, which turn paginated text and raw jobs into bytes.

Owns the `Driver` protocol, `PlainDriver`, `EscpDriver`, `get_driver()` and the
control-sequence stripper (`strip_controls`).

A driver is used for one job at a time (it may remember whether the paper is
at the top of a page): ``begin(setup)``, then any number of ``page(lines)``
and ``raw(data)`` calls, then ``end()``.  `get_driver` returns a fresh one.

* `PlainDriver` (``DRIVER=plain``, any printer): text is made safe for a dumb
  printer.  Escape sequences are removed whole (ECMA-48 CSI ``ESC [ ... final``
  and its 8-bit form, OSC strings up to BEL/ST, ESC/P commands with their
  parameter bytes, including bitmap graphics whose data length is in the
  command, other two-character escapes), then every remaining C0 control
  character, DEL and C1 control character is dropped (tabs were expanded by the
  paginator; any left become spaces).  The text is encoded in the setup's
  character set (``ENCODING=``; default **latin-1**), a character the set lacks
  substituted by `printnet.charset.fit` (a look-alike, else ``?``).  Lines end
  with CR LF, pages with a form feed.  The only bytes below 0x20 in plain text
  output are CR, LF and FF.  Raw jobs pass through untouched: raw means raw.
* `EscpDriver` (``DRIVER=escp``, Epson ESC/P and compatibles): `begin` resets the
  printer (``ESC @``), selects the PC437 character table (``ESC t 1``), 1/6"
  line spacing (``ESC 2``), the page length in lines (``ESC C n``; over 127
  lines: ``ESC C NUL n`` in whole inches), the pitch from the setup's width
  (<= 80 columns: 10 cpi ``ESC P``; <= 96: 12 cpi ``ESC M``; <= 137: condensed
  ``SI``; wider: 12 cpi condensed ``ESC M SI``), then the setup's own init
  bytes.  Text keeps the job's own codes: only NUL is removed (it would end
  some commands early).  Text is encoded in the setup's character set
  (``ENCODING=``; default **cp437**, the table ``ESC t 1`` selects; every
  accepted set's first 128 code points are ASCII, so escape sequences pass
  unchanged), substituting as the plain driver does.  ``ESC t 1`` is sent only
  when the set is cp437: for another one the setup's ``INIT=`` selects the
  printer's table (e.g. ``ESC ( t`` on ESC/P 2 printers).  `end` ejects the page with a form feed
  unless the paper is already at the top of a page.

This module imports no os/time/serial.
"""

from __future__ import annotations

import re
from typing import Final, Protocol

from printnet.charset import encode as encode_charset
from printnet.settings import DriverName, SetupConfig

ESC: Final = "\x1b"
FF: Final = b"\f"
CRLF: Final = b"\r\n"

# ESC/P commands: the number of parameter characters after the command letter.
_ESCP_PARAMS: Final[dict[str, int]] = {
    **dict.fromkeys("@EFGH45MPg012OT89<6>7=iy", 0),
    **dict.fromkeys("3AJQlx-WwS!ktRpUNaqjr+I/ef", 1),
    **dict.fromkeys("$\\?", 2),
}
_ESCP_BITMAP: Final = "KLYZ"  # ESC K nL nH data[nL + 256 nH]
_ESCP_TABS: Final = "DB"  # ESC D n1 ... nk NUL
_OSC_LIMIT: Final = 512  # an OSC string longer than this is not one: strip ESC ] alone


def _skip_csi(s: str, j: int) -> int:
    """Past a CSI body starting at j: parameters, intermediates, one final char."""
    n = len(s)
    while j < n and "\x30" <= s[j] <= "\x3f":
        j += 1
    while j < n and "\x20" <= s[j] <= "\x2f":
        j += 1
    if j < n and "\x40" <= s[j] <= "\x7e":
        j += 1
    return j


def _skip_osc(s: str, j: int) -> int:
    """Past an OSC string (terminated by BEL, ST or ESC \\) starting at j."""
    end = min(len(s), j + _OSC_LIMIT)
    for k in range(j, end):
        if s[k] in "\x07\x9c":
            return k + 1
        if s[k] == ESC:
            return k + 2 if k + 1 < len(s) and s[k + 1] == "\\" else k
    return j  # no terminator in sight: drop just the introducer


def _skip_escape(s: str, i: int) -> int:
    """Index just past the escape sequence whose ESC is at s[i]."""
    n = len(s)
    j = i + 1
    if j >= n:
        return n
    c = s[j]
    if c == "[":
        return _skip_csi(s, j + 1)
    if c == "]":
        return _skip_osc(s, j + 1)
    if c in _ESCP_BITMAP:
        if j + 2 < n:
            count = ord(s[j + 1]) + 256 * ord(s[j + 2])
            return min(n, j + 3 + count)
        return n
    if c == "*":  # ESC/P bit image: ESC * m nL nH data; ECMA: ESC * F (charset)
        if j + 3 < n and ord(s[j + 1]) < 0x30:
            m = ord(s[j + 1])
            per_column = 3 if m >= 32 else 1
            count = (ord(s[j + 2]) + 256 * ord(s[j + 3])) * per_column
            return min(n, j + 4 + count)
        return min(n, j + 2)
    if c == "(":  # ESC/P2: ESC ( X nL nH data; ECMA: ESC ( B (charset)
        if j + 3 < n and ord(s[j + 2]) < 0x20 and ord(s[j + 3]) < 0x20:
            count = ord(s[j + 2]) + 256 * ord(s[j + 3])
            return min(n, j + 4 + count)
        return min(n, j + 2)
    if c in _ESCP_TABS:
        k = j + 1
        while k < n and k <= j + 33 and s[k] != "\x00":
            k += 1
        return min(n, k + 1)
    if c == "C":  # ESC C n (lines) or ESC C NUL n (inches)
        return min(n, j + (3 if j + 1 < n and s[j + 1] == "\x00" else 2))
    if c in _ESCP_PARAMS:
        return min(n, j + 1 + _ESCP_PARAMS[c])
    if c in "#% )":  # ECMA-48 intermediate, then one final character
        return min(n, j + 2)
    if "\x20" <= c <= "\x7e":
        return j + 1  # any other two-character escape
    return j  # ESC followed by a control character: drop the ESC alone


_CONTROL: Final = re.compile("[\x00-\x1f\x7f-\x9f]")  # C0, DEL, C1 (ESC and CSI too)


def strip_controls(text: str) -> str:
    """`text` without escape sequences and without C0/C1 control characters or DEL.

    Tabs become spaces (expanded to 8 columns); everything else that is a
    control character is dropped.
    """
    if "\t" in text:
        text = text.expandtabs(8)
    if _CONTROL.search(text) is None:
        return text  # the common case: nothing to strip (no per-character loop)
    out: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        o = ord(c)
        if c == ESC:
            i = _skip_escape(text, i)
            continue
        if o == 0x9B:  # 8-bit CSI
            i = _skip_csi(text, i + 1)
            continue
        if o == 0x9D:  # 8-bit OSC
            i = _skip_osc(text, i + 1)
            continue
        if o < 0x20 or 0x7F <= o <= 0x9F:
            i += 1
            continue
        out.append(c)
        i += 1
    return "".join(out)


class Driver(Protocol):
    """Turns a job into bytes; one instance per job (see the module docstring)."""

    name: DriverName
    encoding: str  # the printer's character set (canonical name)

    def begin(self, setup: SetupConfig) -> bytes:
        """Bytes that start a job on the given setup."""
        ...

    def page(self, lines: list[str]) -> bytes:
        """One text page; ends with a form feed."""
        ...

    def raw(self, data: bytes) -> bytes:
        """Raw job bytes, as the printer should receive them."""
        ...

    def end(self) -> bytes:
        """Bytes that finish the job."""
        ...


class PlainDriver:
    """Any printer: safe latin-1 text with CR LF; raw jobs untouched."""

    name = DriverName.PLAIN
    default_encoding: Final = "iso8859-1"  # latin-1

    def __init__(self, encoding: str | None = None) -> None:
        self.encoding = encoding or self.default_encoding

    def begin(self, setup: SetupConfig) -> bytes:
        return b""

    def encode_line(self, line: str) -> bytes:
        return encode_charset(strip_controls(line), self.encoding)

    def page(self, lines: list[str]) -> bytes:
        return b"".join(self.encode_line(line) + CRLF for line in lines) + FF

    def raw(self, data: bytes) -> bytes:
        return bytes(data)

    def end(self) -> bytes:
        return b""


def escp_page_length(lines: int) -> bytes:
    """ESC C n (lines, 1..127), or ESC C NUL n (inches, 1..22) for longer forms."""
    if lines <= 127:
        return b"\x1bC" + bytes([max(lines, 1)])
    inches = min(max(-(-lines // 6), 1), 22)
    return b"\x1bC\x00" + bytes([inches])


def escp_pitch(width: int) -> bytes:
    """The pitch that fits `width` columns on an 8-inch line."""
    if width <= 80:
        return b"\x1bP"  # 10 cpi
    if width <= 96:
        return b"\x1bM"  # 12 cpi
    if width <= 137:
        return b"\x1bP\x0f"  # condensed 10 cpi (17.1 cpi)
    return b"\x1bM\x0f"  # condensed 12 cpi (20 cpi)


class EscpDriver:
    """Epson ESC/P: setup sequences first; the job's own codes are kept."""

    name = DriverName.ESCP
    default_encoding: Final = "cp437"

    def __init__(self, encoding: str | None = None) -> None:
        self.encoding = encoding or self.default_encoding
        self._at_top = True

    def begin(self, setup: SetupConfig) -> bytes:
        self._at_top = True
        return (
            b"\x1b@"  # reset
            + (b"\x1bt\x01" if self.encoding == "cp437" else b"")  # character table PC437
            + b"\x1b2"  # 1/6 inch line spacing
            + escp_page_length(setup.length)
            + escp_pitch(setup.width)
            + bytes(setup.init)
        )

    def encode_line(self, line: str) -> bytes:
        return encode_charset(line.replace("\x00", ""), self.encoding)

    def page(self, lines: list[str]) -> bytes:
        self._at_top = True
        return b"".join(self.encode_line(line) + CRLF for line in lines) + FF

    def raw(self, data: bytes) -> bytes:
        if data:
            self._at_top = data.endswith(FF)
        return bytes(data)

    def end(self) -> bytes:
        if self._at_top:
            return b""
        self._at_top = True
        return FF


def get_driver(name: DriverName, encoding: str | None = None) -> Driver:
    """A fresh driver for one job, printing in `encoding` (None: the driver's own)."""
    if name == DriverName.ESCP:
        return EscpDriver(encoding)
    if name == DriverName.PLAIN:
        return PlainDriver(encoding)
    raise ValueError(f"unknown driver {name!r}")
