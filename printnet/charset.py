"""Pure: character sets -- what a job's text is written in, and what a printer prints.

Owns the encoding names printnet accepts (`source_encoding`, `printer_encoding`),
the detection of a job's source encoding at submit time (`Sniffer`), the decoding
of a job's text (`decode`) and the fitting of text to a printer's character set
(`fit`, `encode`) with the one documented substitution rule.

* **Names.** Any name Python knows for one of `SOURCE_ENCODINGS` (``latin-1``,
  ``ISO-8859-1``, ``cp437``, ``ibm437``, ``windows-1252``, ``utf8`` ...); printnet
  records and compares the canonical name (``iso8859-1``, ``cp437``, ``utf-8``).  A
  printer's character set (``ENCODING=`` of a setup) is one of `PRINTER_ENCODINGS`:
  the same list without ``utf-16`` (printers are byte streams with ASCII control
  codes).  Codecs that are not character sets (``rot13``, ``zlib``, ``idna``...) are
  refused.
* **Detection** (a text job submitted without ``--encoding``): ``utf-8`` when every
  file of the job decodes as UTF-8 (plain ASCII does); else ``utf-16`` when every file
  starts with a UTF-16 byte-order mark; else `FALLBACK` (``cp1252``, the Windows
  superset of latin-1: latin-1 text decodes the same, and Windows' curly quotes,
  dashes and euro sign in 0x80-0x9F come out right; its five unassigned bytes
  decode as U+FFFD).
* **Decoding** (at print time): the recorded encoding, invalid bytes as U+FFFD, a
  leading byte-order mark dropped.  A request without an encoding (older stations)
  is UTF-8.
* **Substitution** (`fit`), for each character the printer's set lacks, the first
  of these whose every character the set has: (1) its look-alike from `LOOKALIKES`
  (curly quotes to straight ones, dashes to ``-``, ``…`` to ``...``, ``€`` to
  ``EUR``, ``ß`` to ``ss``, box drawing to ``+ - |``, ...); (2) its compatibility
  decomposition without accents (NFKD minus combining marks: ``é`` to ``e``, ``ﬁ``
  to ``fi``, full-width letters to ASCII); (3) ``?``.  A character the set has is
  always kept as it is (``é`` stays ``é`` in latin-1 and cp437).

This module imports no os/time/serial.
"""

from __future__ import annotations

import codecs
import unicodedata
from collections.abc import Iterable
from typing import Final

UTF8: Final = "utf-8"
UTF16: Final = "utf-16"
FALLBACK: Final = "cp1252"
REPLACEMENT: Final = "?"

# Canonical names (codecs.lookup(name).name) of the character sets printnet takes.
PRINTER_ENCODINGS: Final = frozenset({
    UTF8, "ascii",
    *(f"iso8859-{n}" for n in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 13, 14, 15, 16)),
    "cp437", "cp737", "cp775", "cp850", "cp852", "cp855", "cp857", "cp858", "cp860",
    "cp861", "cp862", "cp863", "cp864", "cp865", "cp866", "cp869",
    *(f"cp{n}" for n in range(1250, 1259)),
    "mac-roman", "koi8-r", "koi8-u",
})
SOURCE_ENCODINGS: Final = PRINTER_ENCODINGS | {UTF16}


def _canonical(name: str) -> str | None:
    if not name or len(name) > 32 or not name.isascii():
        return None
    try:
        return codecs.lookup(name.strip()).name
    except LookupError:
        return None


def source_encoding(name: str) -> str:
    """The canonical name of a job's source encoding; ValueError naming the choices."""
    canon = _canonical(name)
    if canon is None or canon not in SOURCE_ENCODINGS:
        raise ValueError(f"unknown encoding {name[:32]!r} (e.g. utf-8, latin-1, cp1252, "
                         "cp437, cp850, utf-16)")
    return canon


def printer_encoding(name: str) -> str:
    """The canonical name of a printer's character set; ValueError naming the choices."""
    canon = _canonical(name)
    if canon is None or canon not in PRINTER_ENCODINGS:
        raise ValueError(f"unknown printer character set {name[:32]!r} (e.g. cp437, "
                         "latin-1, cp850, cp1252, ascii, utf-8)")
    return canon


def is_source_encoding(name: str) -> bool:
    return _canonical(name) in SOURCE_ENCODINGS


def is_printer_encoding(name: str) -> bool:
    return _canonical(name) in PRINTER_ENCODINGS


# ---------------------------------------------------------------------------
# Detection


def _step(decoder: codecs.IncrementalDecoder, chunk: bytes, final: bool = False) -> bool:
    """Whether `chunk` continues valid text for `decoder`."""
    try:
        decoder.decode(chunk, final)
    except UnicodeDecodeError:
        return False
    return True

_UTF16_BOMS: Final = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


class Sniffer:
    """Detects a job's source encoding from its bytes, fed in chunks, file by file.

    ``feed(chunk)`` any number of times, ``end_file()`` after each file, then
    `result`.  Memory is constant: UTF-8 is checked incrementally and given up at
    the first invalid byte.
    """

    def __init__(self) -> None:
        self._utf8 = True
        self._utf16 = True
        self._start = b""  # the first bytes of the current file (for its BOM)
        self._files = 0
        self._decoder = codecs.getincrementaldecoder(UTF8)("strict")
        self._decoder16 = codecs.getincrementaldecoder(UTF16)("strict")

    def feed(self, chunk: bytes) -> None:
        if len(self._start) < 2:
            self._start += chunk[: 2 - len(self._start)]
            if len(self._start) == 2 and self._start not in _UTF16_BOMS:
                self._utf16 = False
        self._utf8 = self._utf8 and _step(self._decoder, chunk)
        self._utf16 = self._utf16 and _step(self._decoder16, chunk)

    def end_file(self) -> None:
        # The file may end inside a character: then it is not in that encoding.
        self._utf8 = self._utf8 and _step(self._decoder, b"", final=True)
        self._utf16 = (self._utf16 and len(self._start) == 2
                       and _step(self._decoder16, b"", final=True))
        self._decoder.reset()
        self._decoder16.reset()
        self._start = b""
        self._files += 1

    @property
    def result(self) -> str:
        if self._utf8:
            return UTF8
        if self._utf16 and self._files:
            return UTF16
        return FALLBACK


def detect(files: Iterable[bytes]) -> str:
    """The source encoding of a job whose files are `files` (see the module docstring)."""
    sniffer = Sniffer()
    for data in files:
        sniffer.feed(data)
        sniffer.end_file()
    return sniffer.result


def decode(data: bytes, encoding: str | None) -> str:
    """A text file's bytes as text: invalid bytes as U+FFFD, no byte-order mark."""
    text = data.decode(encoding or UTF8, errors="replace")
    return text.removeprefix("\ufeff")


# ---------------------------------------------------------------------------
# Substitution

_BOX: Final = {
    **dict.fromkeys("─━═┄┅┈┉╌╍", "-"),
    **dict.fromkeys("│┃║┆┇┊┋╎╏", "|"),
    **dict.fromkeys("┌┍┎┏┐┑┒┓└┕┖┗┘┙┚┛├┝┞┟┠┡┢┣┤┥┦┧┨┩┪┫┬┭┮┯┰┱┲┳┴┵┶┷┸┹┺┻┼┽┾┿╀╁╂╃╄╅╆╇╈╉╊╋"
                    "╒╓╔╕╖╗╘╙╚╛╜╝╞╟╠╡╢╣╤╥╦╧╨╩╪╫╬╭╮╯╰", "+"),
    **dict.fromkeys("░▒▓█▄▀▌▐■", "#"),
}

# Look-alikes for characters many printer sets lack, tried before the decomposition.
LOOKALIKES: Final[dict[str, str]] = {
    "\u2018": "'", "\u2019": "'", "\u201a": ",", "\u201b": "'", "\u2032": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"',
    "«": "<<", "»": ">>", "\u2039": "<", "\u203a": ">",
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "--",
    "\u2015": "--", "\u2212": "-", "\u00ad": "-",
    "\u2026": "...", "\u2022": "*", "\u00b7": ".", "\u2027": ".", "\u2023": ">",
    "\u00a0": " ", "\u2002": " ", "\u2003": " ", "\u2009": " ", "\u202f": " ",
    "\u00a6": "|", "\u2016": "||",
    "€": "EUR", "£": "GBP", "¥": "JPY", "¢": "c", "¤": "$", "₹": "INR", "₽": "RUB",
    "©": "(C)", "®": "(R)", "™": "(TM)", "§": "S.", "¶": "P.", "†": "+", "‡": "++",
    "°": "o", "º": "o", "ª": "a", "µ": "u", "×": "x", "÷": "/", "±": "+/-",
    "¼": "1/4", "½": "1/2", "¾": "3/4", "¬": "-", "¡": "!", "¿": "?",
    "≤": "<=", "≥": ">=", "≠": "!=", "≈": "~", "∞": "oo",
    "←": "<-", "→": "->", "↑": "^", "↓": "v", "⇐": "<=", "⇒": "=>", "↔": "<->",
    "ß": "ss", "ẞ": "SS", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE",
    "ø": "o", "Ø": "O", "đ": "d", "Đ": "D", "ð": "d", "Ð": "D", "þ": "th", "Þ": "TH",
    "ł": "l", "Ł": "L", "ı": "i", "ħ": "h", "Ħ": "H", "ŧ": "t", "Ŧ": "T",
    "\ufffd": REPLACEMENT,
    **_BOX,
}


def _has(charset: str, text: str, cache: dict[str, bool]) -> bool:
    for ch in text:
        ok = cache.get(ch)
        if ok is None:
            try:
                ch.encode(charset)
                ok = True
            except UnicodeEncodeError:
                ok = False
            cache[ch] = ok
        if not ok:
            return False
    return True


def _without_accents(ch: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", ch)
                   if not unicodedata.combining(c))


def _substitute(ch: str, charset: str, cache: dict[str, bool]) -> str:
    """What prints for `ch`, a character `charset` lacks (the module docstring's rule)."""
    for candidate in (LOOKALIKES.get(ch), _without_accents(ch)):
        if candidate and _has(charset, candidate, cache):
            return candidate
    return REPLACEMENT


_HANDLERS: dict[str, str] = {}


def _handler(charset: str) -> str:
    """The name of the codec error handler that substitutes for `charset`.

    Encoding with it runs at the codec's speed and calls back only for the runs
    of characters the set lacks.  (A handler is told the codec, e.g. "charmap",
    not the set, so there is one per set, registered on first use.)
    """
    name = _HANDLERS.get(charset)
    if name is None:
        cache: dict[str, bool] = {}

        def handler(exc: UnicodeError) -> tuple[str, int]:
            if not isinstance(exc, UnicodeEncodeError):
                raise exc
            run = exc.object[exc.start:exc.end]
            return "".join(_substitute(ch, charset, cache) for ch in run), exc.end

        name = f"printnet-fit-{charset}"
        codecs.register_error(name, handler)
        _HANDLERS[charset] = name
    return name


def encode(text: str, charset: str) -> bytes:
    """`text` in `charset`, substituting what it lacks (never fails)."""
    return text.encode(charset, _handler(charset))


def fit(text: str, charset: str) -> str:
    """`text` with every character `charset` lacks substituted (module docstring)."""
    try:
        text.encode(charset)
        return text  # the common case: nothing to substitute
    except UnicodeEncodeError:
        pass
    return encode(text, charset).decode(charset)
