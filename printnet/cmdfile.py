"""The etc/ command files: syntax, schemas, line-numbered errors, and an editor.

Pure: no `os`, no `time`, no I/O.  `printnet.config` reads the files and turns
the commands into the typed model; this module only knows text.

Syntax, in the style of the 1981 SERVERCMD/PRINTCMD texts::

    ; a comment line
    PRINTER R&D PORT=/dev/ttyS0 BAUD=9600 REASON="out of paper; back at 3"  ; trailing comment

* One command per line.  Blank lines are fine.  Lines end with LF or CRLF; a
  byte-order mark at the very start is ignored.
* `;` starts a comment that runs to the end of the line, except inside double
  quotes.
* A command is a keyword, then an optional positional argument (a name such as
  `R&D`, or a value such as `0,6` or a path), then `KEY=VALUE` arguments, all
  separated by spaces or tabs.
* Keywords and keys are case-insensitive; their canonical form is upper case.
  Printer, class and setup names are upper-cased too (`r&d` is `R&D`).
* A value (or the positional argument) may be double-quoted, to hold spaces,
  `;` or `"`.  Inside quotes `\\"` is a quote and `\\\\` a backslash; any other
  backslash is kept as it is (so `INIT="\\x1b@"` reaches the INIT decoder
  unchanged).  Quoted and unquoted pieces of one word are joined, as in a shell.
* A word is a `KEY=VALUE` argument when what comes before its first unquoted
  `=` is a plain identifier (`[A-Za-z][A-Za-z0-9_]*`); otherwise it is the
  positional argument (so `PASSWORD scrypt$...` and `SPOOL /a=b` need no quotes,
  though `SPOOL "a=b"` does).
* Control characters (other than tab) are refused outside comments.

Every problem raises `ConfigError(file, line, message)`: unknown command,
command in the wrong file, unknown key for that command (with the known ones),
bad value (with the allowed ones), missing required key, a key given twice,
a command defined twice.  Cross-references (a SETUP= naming a defined setup,
paths staying inside their folders) need the whole configuration and are
checked by `printnet.config`.

The editor (`set_command`, `update_command`, `remove_command`, `set_single`,
`add_line`, `remove_line`) rewrites a file's text and keeps every other line,
comment and blank line byte for byte; a replaced command keeps its indentation
and trailing comment.

Over 600 lines on purpose: syntax, value types, schemas and editor are one
language; the editor must render exactly what the parser reads back, so they
stay in one module.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final
from urllib.parse import parse_qs, urlsplit

from printnet.charset import is_printer_encoding
from printnet.errors import ConfigError, NotFound
from printnet.model import clean_text, normalize_name, valid_name, valid_user
from printnet.passwords import valid_hash, valid_queue_hash

MAX_LINE: Final = 4096  # characters per line
EDIT_FILE: Final = "<edit>"  # the file name editor errors carry

_WORD_RE: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_BAD_CATEGORIES: Final = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


# ---------------------------------------------------------------------------
# Words of a line


@dataclass(frozen=True, slots=True)
class Word:
    """One word of a command line."""

    text: str  # verbatim, as in the file
    key: str | None  # upper-cased KEY of a KEY=VALUE word; None for a plain word
    value: str  # the value with quotes and escapes removed
    start: int  # column where the word starts
    end: int  # column just after it


def _bad_char(text: str) -> str | None:
    for ch in text:
        if ch != "\t" and unicodedata.category(ch) in _BAD_CATEGORIES:
            return ch
    return None


def split_line(line: str) -> tuple[list[Word], int | None]:
    """The words of one line and the column of its comment (or None).

    Raises ValueError for an unterminated quote or a control character
    outside the comment.
    """
    words: list[Word] = []
    comment: int | None = None
    i, n = 0, len(line)
    while i < n:
        ch = line[i]
        if ch in " \t":
            i += 1
            continue
        if ch == ";":
            comment = i
            break
        start = i
        buf: list[str] = []
        key: str | None = None
        seen_eq = quoted = False
        while i < n and line[i] not in " \t;":
            ch = line[i]
            if ch == '"':
                quoted = True
                i += 1
                while True:
                    if i >= n:
                        raise ValueError("unterminated quote")
                    ch = line[i]
                    if ch == "\\" and i + 1 < n and line[i + 1] in '"\\':
                        buf.append(line[i + 1])
                        i += 2
                        continue
                    i += 1
                    if ch == '"':
                        break
                    buf.append(ch)
                continue
            if ch == "=" and not seen_eq:
                seen_eq = True
                prefix = "".join(buf)
                if not quoted and _WORD_RE.fullmatch(prefix):
                    key = prefix.upper()
                    buf = []
                    i += 1
                    continue
            buf.append(ch)
            i += 1
        words.append(Word(line[start:i], key, "".join(buf), start, i))
    bad = _bad_char(line[:comment] if comment is not None else line)
    if bad is not None:
        raise ValueError(f"control character U+{ord(bad):04X} is not allowed here")
    return words, comment


def needs_quotes(value: str, positional: bool = False) -> bool:
    """Whether `value` must be quoted to read back as itself."""
    if value == "" or any(ch in ' \t;"' for ch in value):
        return True
    return positional and "=" in value


def render_value(value: str, positional: bool = False) -> str:
    """`value` as it is written in a command file, quoted if needed."""
    if "\n" in value or "\r" in value or _bad_char(value) is not None:
        raise ConfigError(EDIT_FILE, 0, f"value {_show(value)} contains a control character")
    if not needs_quotes(value, positional):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_command(keyword: str, name: str | None = None,
                   args: Mapping[str, str] | None = None) -> str:
    """One command line (without newline or comment), values quoted when needed."""
    if not _WORD_RE.fullmatch(keyword):
        raise ConfigError(EDIT_FILE, 0, f"not a command keyword: {_show(keyword)}")
    parts = [keyword.upper()]
    if name is not None:
        parts.append(render_value(name, positional=True))
    for key, value in (args or {}).items():
        if not _WORD_RE.fullmatch(key):
            raise ConfigError(EDIT_FILE, 0, f"not a key: {_show(key)}")
        parts.append(f"{key.upper()}={render_value(value)}")
    return " ".join(parts)


def _show(text: str, limit: int = 40) -> str:
    """A value for an error message: control characters dropped, clipped, quoted."""
    cleaned = "".join(ch if ch.isprintable() else "?" for ch in text)
    if len(cleaned) > limit:
        cleaned = cleaned[: limit - 3] + "..."
    return repr(cleaned)


# ---------------------------------------------------------------------------
# Values


class Value:
    """A kind of value: `convert` checks raw text and returns the typed value."""

    @property
    def describe(self) -> str:
        """What is allowed, for error messages and docs."""
        return "a value"

    def convert(self, raw: str) -> object:
        """The typed value; raises ValueError with what is allowed."""
        raise NotImplementedError


_INT_RE: Final = re.compile(r"[0-9]{1,19}")
_SIZE_RE: Final = re.compile(r"([0-9]{1,19})([KMG]?)", re.IGNORECASE)
_NUM_RE: Final = re.compile(r"[0-9]{1,9}(\.[0-9]{1,9})?|\.[0-9]{1,9}")


@dataclass(frozen=True)
class Int(Value):
    lo: int
    hi: int
    unit: str = ""
    sizes: bool = False  # accept K, M, G suffixes (x1024)

    @property
    def describe(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        suffix = " (K, M, G suffixes allowed)" if self.sizes else ""
        return f"a whole number {self.lo}..{self.hi}{unit}{suffix}"

    def convert(self, raw: str) -> int:
        m = (_SIZE_RE if self.sizes else _INT_RE).fullmatch(raw)
        if m is None:
            raise ValueError(f"must be {self.describe}")
        value = int(m[1] if self.sizes else raw)
        if self.sizes:
            value *= {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}[m[2].upper()]
        if not self.lo <= value <= self.hi:
            raise ValueError(f"must be {self.describe}")
        return value


@dataclass(frozen=True)
class Number(Value):
    lo: float
    hi: float
    unit: str = "seconds"

    @property
    def describe(self) -> str:
        return f"a number {self.lo:g}..{self.hi:g} {self.unit}".rstrip()

    def convert(self, raw: str) -> float:
        if _NUM_RE.fullmatch(raw) is None:
            raise ValueError(f"must be {self.describe}")
        value = float(raw)
        if not self.lo <= value <= self.hi:
            raise ValueError(f"must be {self.describe}")
        return value


@dataclass(frozen=True)
class Choice(Value):
    options: tuple[str, ...]

    @property
    def describe(self) -> str:
        return "one of " + " ".join(self.options)

    def convert(self, raw: str) -> str:
        value = raw.upper()
        if value not in self.options:
            raise ValueError(f"must be {self.describe}")
        return value


@dataclass(frozen=True)
class YesNo(Value):
    @property
    def describe(self) -> str:
        return "YES or NO"

    def convert(self, raw: str) -> bool:
        value = raw.upper()
        if value not in ("YES", "NO"):
            raise ValueError("must be YES or NO")
        return value == "YES"


_NAME_RULE: Final = "1-32 of A-Z 0-9 & _ . + -, starting with a letter or digit"


def convert_name(raw: str) -> str:
    """A printer, class, setup or server name, upper-cased; ValueError if invalid."""
    value = normalize_name(raw)
    if not raw.isascii() or not valid_name(value):
        raise ValueError(f"{_show(raw)} is not a valid name ({_NAME_RULE})")
    return value


@dataclass(frozen=True)
class Name(Value):
    @property
    def describe(self) -> str:
        return f"a name ({_NAME_RULE})"

    def convert(self, raw: str) -> str:
        return convert_name(raw)


@dataclass(frozen=True)
class Names(Value):
    @property
    def describe(self) -> str:
        return "a comma-separated list of names"

    def convert(self, raw: str) -> tuple[str, ...]:
        names = [convert_name(part) for part in raw.split(",")]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"{min(dup)} is listed twice")
        return tuple(names)


def _user_or_group(text: str) -> bool:
    return valid_user(text[1:] if text.startswith("@") else text)


@dataclass(frozen=True)
class Users(Value):
    groups: bool = True  # also accept @group (the members of a Unix group)

    @property
    def describe(self) -> str:
        groups = " or @groups" if self.groups else ""
        return f"a comma-separated list of user names{groups}"

    def convert(self, raw: str) -> tuple[str, ...]:
        users = [part.strip() for part in raw.split(",")]
        for user in users:
            ok = _user_or_group(user) if self.groups else valid_user(user)
            if not ok:
                what = "user name or @group" if self.groups else "user name"
                raise ValueError(f"{_show(user)} is not a valid {what}")
        dup = {u for u in users if users.count(u) > 1}
        if dup:
            raise ValueError(f"{min(dup)} is listed twice")
        return tuple(users)


@dataclass(frozen=True)
class Text(Value):
    limit: int = 200
    @property
    def describe(self) -> str:
        return "text (control characters are dropped)"

    def convert(self, raw: str) -> str:
        value = clean_text(raw)
        if len(value) > self.limit:
            raise ValueError(f"longer than {self.limit} characters")
        return value


def decode_escapes(raw: str, limit: int = 256) -> bytes:
    """INIT strings: printable ASCII, `\\xNN`, `\\e` (ESC) and `\\\\`; ValueError otherwise."""
    out = bytearray()
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch == "\\":
            nxt = raw[i + 1 : i + 2]
            if nxt in ("x", "X"):
                digits = raw[i + 2 : i + 4]
                if re.fullmatch(r"[0-9A-Fa-f]{2}", digits) is None:
                    raise ValueError(r"\x needs two hex digits, e.g. \x1b")
                out.append(int(digits, 16))
                i += 4
                continue
            if nxt in ("e", "E"):
                out.append(0x1B)
            elif nxt == "\\":
                out.append(0x5C)
            else:
                raise ValueError(f"unknown escape \\{nxt} (use \\xNN, \\e or \\\\)")
            i += 2
            continue
        if not " " <= ch <= "~":
            raise ValueError(f"character U+{ord(ch):04X} not allowed: write bytes as \\xNN")
        out.append(ord(ch))
        i += 1
    if len(out) > limit:
        raise ValueError(f"longer than {limit} bytes")
    return bytes(out)


def encode_escapes(data: bytes) -> str:
    """The inverse of `decode_escapes`: bytes as INIT text."""
    out = []
    for byte in data:
        if byte == 0x5C:
            out.append("\\\\")
        elif byte == 0x1B:
            out.append("\\e")
        elif 0x20 <= byte < 0x7F:
            out.append(chr(byte))
        else:
            out.append(f"\\x{byte:02x}")
    return "".join(out)


@dataclass(frozen=True)
class Escapes(Value):
    limit: int = 256
    @property
    def describe(self) -> str:
        return r"bytes: printable ASCII, \xNN, \e (ESC), \\"

    def convert(self, raw: str) -> bytes:
        return decode_escapes(raw, self.limit)


_HOST_PORT_RE: Final = re.compile(r"([A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\]):([0-9]{1,5})([/?].*)?")
_DEVICE_RE: Final = re.compile(
    r"/dev/(tty[A-Za-z0-9._-]*|cu\.[A-Za-z0-9._-]+|pts/[0-9]+|serial/[A-Za-z0-9._:+/-]+)"
)
PORT_SCHEMES: Final = ("socket://", "rfc2217://", "loop://", "sim://", "file://", "ipp://",
                       "ipps://", "spool:")


@dataclass(frozen=True)
class Port(Value):
    @property
    def describe(self) -> str:
        return (
        "a serial device (/dev/tty..., /dev/cu...., /dev/pts/N, /dev/serial/...),"
        " socket://HOST:PORT, rfc2217://HOST:PORT, loop://, sim://NAME?out=PATH,"
        " file://PATH, ipp[s]://HOST[:PORT]/PATH[?ca=PATH|insecure=1|forward=no]"
        " or spool:/PATH?printer=NAME"
    )

    def convert(self, raw: str) -> str:
        if len(raw) > 1024 or "\0" in raw:
            raise ValueError("too long")
        low = raw.lower()
        for scheme in PORT_SCHEMES:
            if low.startswith(scheme):
                rest = raw[len(scheme) :]
                if scheme in ("socket://", "rfc2217://"):
                    m = _HOST_PORT_RE.fullmatch(rest)
                    if m is None or not 1 <= int(m[2]) <= 65535:
                        raise ValueError(f"must be {scheme}HOST:PORT (port 1..65535)")
                if scheme == "file://" and not rest:
                    raise ValueError("file:// needs a path, e.g. file://../output/LOCAL.prn")
                if scheme == "sim://":
                    sim_out(scheme + rest)
                if scheme in ("ipp://", "ipps://"):
                    ipp_url(scheme + rest)
                if scheme == "spool:":
                    spool_url(scheme + rest)
                return scheme + rest
        if _DEVICE_RE.fullmatch(raw) and ".." not in raw.split("/"):
            return raw
        if "://" in raw:
            raise ValueError(
                f"scheme {_show(raw.split('://', 1)[0])} is not allowed; "
                f"allowed: {' '.join(PORT_SCHEMES)} or a serial device path"
            )
        raise ValueError(f"must be {self.describe}")


SIM_FORM: Final = "sim://NAME?out=PATH[&baud=N|inf][&buffer=BYTES]"
IPP_FORM: Final = "ipp://HOST[:PORT]/PATH or ipps://...[?ca=PATH|?insecure=1|?forward=no]"
SPOOL_FORM: Final = "spool:/PATH?printer=NAME (another site's spool)"
_SPOOL_RE: Final = re.compile(r"spool:(?://)?(/[^?\0]*)\?printer=([A-Za-z0-9&_.+-]{1,32})",
                              re.IGNORECASE)


def spool_url(port: str) -> None:
    """Check a ``spool:`` port (forwarding to another site's spool); ValueError."""
    m = _SPOOL_RE.fullmatch(port)
    if m is None or ".." in m[1].split("/"):
        raise ValueError(f"must be {SPOOL_FORM}")


def ipp_url(port: str) -> None:
    """Check an ``ipp://`` / ``ipps://`` port; ValueError saying what is wrong."""
    parts = urlsplit(port)
    try:
        number = parts.port
    except ValueError:
        raise ValueError(f"bad port number; must be {IPP_FORM}") from None
    if not parts.hostname or (number is not None and not 1 <= number <= 65535):
        raise ValueError(f"must be {IPP_FORM}")
    try:
        options = parse_qs(parts.query, keep_blank_values=True,
                           strict_parsing=bool(parts.query))
    except ValueError:
        raise ValueError(f"malformed query; must be {IPP_FORM}") from None
    unknown = set(options) - {"ca", "insecure", "forward"}
    if unknown:
        raise ValueError(f"unknown option {sorted(unknown)[0]!r}; must be {IPP_FORM}")


def sim_out(port: str) -> str:
    """The `out=` path of a `sim://` port (as written); ValueError if the URL is malformed."""
    parts = urlsplit(port)
    try:
        options = parse_qs(parts.query, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise ValueError(f"bad options; expected {SIM_FORM}") from None
    unknown = sorted(set(options) - {"out", "baud", "buffer"})
    if unknown:
        raise ValueError(f"unknown option {_show(unknown[0])}; expected {SIM_FORM}")
    outs = options.get("out", [])
    if len(outs) != 1 or not outs[0] or "\0" in outs[0]:
        raise ValueError(f"needs one out=PATH; expected {SIM_FORM}")
    return outs[0]


@dataclass(frozen=True)
class PathText(Value):
    @property
    def describe(self) -> str:
        return "a folder path"

    def convert(self, raw: str) -> str:
        if not raw or "\0" in raw or len(raw) > 4096:
            raise ValueError("must be a folder path")
        return raw


@dataclass(frozen=True)
class Hours(Value):
    @property
    def describe(self) -> str:
        return "START,END hours 0..23 (local time, START != END; may wrap midnight: 22,6)"

    def convert(self, raw: str) -> tuple[int, int]:
        m = re.fullmatch(r"\s*([0-9]{1,2})\s*,\s*([0-9]{1,2})\s*", raw)
        if m is None:
            raise ValueError(f"must be {self.describe}")
        start, end = int(m[1]), int(m[2])
        if start > 23 or end > 23 or start == end:
            raise ValueError(f"must be {self.describe}")
        return start, end


@dataclass(frozen=True)
class Who(Value):
    """Whom a QUOTA line is for: `*` (everyone), a user name, or `@group`."""

    @property
    def describe(self) -> str:
        return "* (everyone), a user name, or @group"

    def convert(self, raw: str) -> str:
        if raw != "*" and not _user_or_group(raw):
            raise ValueError(f"must be {self.describe}")
        return raw


@dataclass(frozen=True)
class Check(Value):
    """A string accepted by a predicate (password hashes)."""

    predicate: Callable[[str], bool]
    what: str

    @property
    def describe(self) -> str:
        return self.what

    def convert(self, raw: str) -> str:
        if not self.predicate(raw):
            raise ValueError(f"must be {self.what}")
        return raw


# ---------------------------------------------------------------------------
# Schemas


class Repeat(StrEnum):
    SINGLE = "single"  # at most once per file (NIGHT, SERVER, DEFAULT)
    NAMED = "named"  # once per name (PRINTER R&D, SETUP CHECKS)
    MANY = "many"  # any number of lines, each line once (SPOOL, QUOTA)


@dataclass(frozen=True)
class Keyword:
    """What one command accepts."""

    keyword: str
    repeat: Repeat
    summary: str
    example: str
    positional: Value | None = None
    positional_required: bool = False
    keys: Mapping[str, Value] = field(default_factory=dict)
    required: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Schema:
    """The commands one file accepts."""

    filename: str
    keywords: Mapping[str, Keyword]


_SECONDS_SMALL: Final = Number(0.1, 86400)

SERVER_SCHEMA: Final = Schema("server.cmd", {
    "SERVER": Keyword(
        "SERVER", Repeat.SINGLE, "this server's name (default: the host name, upper-cased)",
        "SERVER NAME=FLOOR2", keys={"NAME": Name()},
    ),
    "SPOOL": Keyword(
        "SPOOL", Repeat.MANY, "a spool (its folder) to serve; one line each",
        "SPOOL /mnt/net1/printnet", PathText(), True,
    ),
    "PASSWORD": Keyword(
        "PASSWORD", Repeat.SINGLE, "the console password, hashed",
        "PASSWORD scrypt$16384$8$1$...", Check(valid_hash, "a scrypt$... password hash"), True,
    ),
    "NIGHT": Keyword(
        "NIGHT", Repeat.SINGLE, "the overnight window: start hour, end hour (local time)",
        "NIGHT 0,6", Hours(), True,
    ),
    "SCAN": Keyword(
        "SCAN", Repeat.SINGLE, "seconds between names-only scans of new/",
        "SCAN 1", Number(0.05, 60), True,
    ),
    "LEASE": Keyword(
        "LEASE", Repeat.SINGLE, "lock and job lease, seconds",
        "LEASE 30", Number(0.5, 3600), True,
    ),
    "OPERATORS": Keyword(
        "OPERATORS", Repeat.SINGLE, "users (or @groups) allowed to act on any job",
        "OPERATORS root,alice,@lpadmin", Users(), True,
    ),
    "QUOTA": Keyword(
        "QUOTA", Repeat.MANY, "pages a user (*, name or @group) may print per period",
        "QUOTA * PAGES=100 PER=WEEK", Who(), True,
        {"PAGES": Int(0, 100_000_000, "pages"), "PER": Choice(("DAY", "WEEK", "MONTH")),
         "PRINTER": Name(), "ACTION": Choice(("HOLD", "REJECT"))},
        frozenset({"PAGES"}),
    ),
    "HELDEXPIRY": Keyword(
        "HELDEXPIRY", Repeat.SINGLE, "hours after which a held job is canceled",
        "HELDEXPIRY 72", Number(0.0001, 87600, "hours"), True,
    ),
    "MINFREE": Keyword(
        "MINFREE", Repeat.SINGLE, "MiB that must stay free on a spool's disk",
        "MINFREE 100", Int(0, 1 << 30, "MiB"), True,
    ),
    "SEAL": Keyword(
        "SEAL", Repeat.SINGLE, "seal documents on the spool for every printer (ON/OFF)",
        "SEAL ON", Choice(("ON", "OFF")), True,
    ),
    "KEYS": Keyword(
        "KEYS", Repeat.SINGLE, "local folder of this server's private sealing keys",
        "KEYS /var/lib/printnet/keys", PathText(), True,
    ),
    "SITE": Keyword(
        "SITE", Repeat.SINGLE, "this site's name (header pages' {site}) and its LOGO file",
        "SITE BRANCH1 LOGO=branch1.logo", Name(), True, {"LOGO": PathText()},
    ),
})

PRINTER_KEYS: Final[Mapping[str, Value]] = {
    "PORT": Port(),
    "BAUD": Int(50, 4_000_000, "bits per second"),
    "BITS": Int(5, 8),
    "PARITY": Choice(("N", "E", "O", "M", "S")),
    "STOP": Choice(("1", "1.5", "2")),
    "FLOW": Choice(("NONE", "XONXOFF", "RTSCTS", "DSRDTR")),
    "DRIVER": Choice(("PLAIN", "ESCP")),
    "SETUP": Name(),
    "HEADER": Name(),
    "CLASS": Names(),
    "ERRORS": Choice(("RETRY", "HOLD", "ABORT")),
    "STALL": _SECONDS_SMALL,
    "RETRY": _SECONDS_SMALL,
    "ACCEPT": YesNo(),
    "REASON": Text(200),
    "STOPPED": YesNo(),
    "PASSWORD": Check(valid_queue_hash, "a qscrypt$... queue password hash"),
    "MAXCOPIES": Int(1, 999),
    "MAXBYTES": Int(1, 1 << 50, "bytes", sizes=True),
    "MAXPAGES": Int(1, 10_000_000, "pages"),
    "MAXFILE": Int(1, 1 << 50, "bytes", sizes=True),
    "OVERLIMIT": Choice(("REJECT", "HOLD")),
    "SEAL": Choice(("ON", "OFF")),
    "LINKDOWN": Choice(("QUEUE", "LOCAL", "REJECT")),
    "PRINTER": Name(),
    "LINKHOLD": Number(0.0001, 87600, "hours"),
    "LINKNAME": Name(),
    "LINKRETRY": Number(0.1, 86400, "seconds"),
    "LOGO": PathText(),
}

SETUP_KEYS: Final[Mapping[str, Value]] = {
    "FORM": Name(),
    "LENGTH": Int(3, 255, "lines"),
    "WIDTH": Int(10, 255, "characters"),
    "INIT": Escapes(),
    "ENCODING": Check(is_printer_encoding, "a printer character set: cp437, latin-1, cp850, "
                      "cp1252, ascii, utf-8, ... (docs/CONFIG.md)"),
}

PRINTERS_SCHEMA: Final = Schema("printers.cmd", {
    "PRINTER": Keyword(
        "PRINTER", Repeat.NAMED, "a printer: its port, line settings, setup, header",
        "PRINTER R&D PORT=/dev/ttyS0 BAUD=9600", Name(), True, PRINTER_KEYS,
        frozenset({"PORT"}),
    ),
    "SETUP": Keyword(
        "SETUP", Repeat.NAMED, "a setup (form): paper, page length and width, init bytes",
        "SETUP STANDARD FORM=PLAIN LENGTH=66 WIDTH=80", Name(), True, SETUP_KEYS,
    ),
    "DEFAULT": Keyword(
        "DEFAULT", Repeat.SINGLE, "the printer or class for requests that name none",
        "DEFAULT R&D", Name(), True,
    ),
})

SCHEMAS: Final[Mapping[str, Schema]] = {
    SERVER_SCHEMA.filename: SERVER_SCHEMA,
    PRINTERS_SCHEMA.filename: PRINTERS_SCHEMA,
}

# Any other file name: every command of both files.
ANY_SCHEMA: Final = Schema("*", {**SERVER_SCHEMA.keywords, **PRINTERS_SCHEMA.keywords})


def schema_for(filename: str) -> Schema:
    """The schema of `filename` by its base name (server.cmd, printers.cmd), else all."""
    base = re.split(r"[/\\]", filename)[-1].lower()
    return SCHEMAS.get(base, ANY_SCHEMA)


# ---------------------------------------------------------------------------
# Parsing


@dataclass(frozen=True)
class Command:
    """One parsed and checked command, with where it came from."""

    keyword: str  # canonical, upper case
    name: str | None  # positional argument: names upper-cased, other values as written
    args: Mapping[str, str]  # KEY -> value text as written (quotes removed), file order
    line: int  # 1-based
    text: str  # the original line, verbatim (no line end)
    filename: str = ""
    value: object = None  # the positional argument, converted (e.g. (0, 6) for NIGHT)
    values: Mapping[str, object] = field(default_factory=dict)  # KEY -> converted value

    def error(self, message: str) -> ConfigError:
        """A ConfigError at this command's file and line."""
        return ConfigError(self.filename, self.line, message)

    def has(self, key: str) -> bool:
        return key in self.values

    def _typed(self, key: str, kind: type, default: object) -> object:
        value = self.values.get(key, default)
        if value is not None and not isinstance(value, kind):
            raise TypeError(f"{self.keyword} {key} is {type(value).__name__}")
        return value

    def get_int(self, key: str, default: int) -> int:
        value = self._typed(key, int, default)
        assert isinstance(value, int)
        return value

    def get_opt_int(self, key: str) -> int | None:
        value = self._typed(key, int, None)
        assert value is None or isinstance(value, int)
        return value

    def get_float(self, key: str, default: float) -> float:
        value = self._typed(key, float, default)
        assert isinstance(value, float)
        return value

    def get_str(self, key: str, default: str) -> str:
        value = self._typed(key, str, default)
        assert isinstance(value, str)
        return value

    def get_opt_str(self, key: str) -> str | None:
        value = self._typed(key, str, None)
        assert value is None or isinstance(value, str)
        return value

    def get_bool(self, key: str, default: bool) -> bool:
        value = self._typed(key, bool, default)
        assert isinstance(value, bool)
        return value

    def get_names(self, key: str) -> tuple[str, ...]:
        value = self._typed(key, tuple, ())
        assert isinstance(value, tuple)
        return tuple(str(v) for v in value)

    def get_bytes(self, key: str, default: bytes = b"") -> bytes:
        value = self._typed(key, bytes, default)
        assert isinstance(value, bytes)
        return value


def _lines(text: str) -> list[str]:
    """Lines without their line ends (LF or CRLF); a leading BOM dropped."""
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text:
        return []
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def parse(text: str, filename: str, schema: Schema | None = None) -> list[Command]:
    """Parse and check a command file; raise ConfigError naming file and line.

    `schema` defaults to the one for `filename`'s base name (`schema_for`).
    """
    schema = schema if schema is not None else schema_for(filename)
    commands: list[Command] = []
    first: dict[tuple[str, str | None], int] = {}
    for lineno, line in enumerate(_lines(text), 1):
        if len(line) > MAX_LINE:
            raise ConfigError(filename, lineno, f"line longer than {MAX_LINE} characters")
        try:
            words, _ = split_line(line)
        except ValueError as exc:
            raise ConfigError(filename, lineno, str(exc)) from None
        if not words:
            continue
        command = _command(schema, words, line, filename, lineno)
        spec = schema.keywords[command.keyword]
        if spec.repeat is Repeat.SINGLE:
            ident: tuple[str, str | None] = (command.keyword, None)
            what = f"a second {command.keyword} command"
        elif spec.repeat is Repeat.NAMED:
            ident = (command.keyword, command.name)
            what = f"{command.keyword} {command.name} is defined twice"
        else:  # the same line twice (value and keys); QUOTA lines differ by their keys
            ident = (command.keyword, repr((command.value, sorted(command.values.items()))))
            what = f"{command.keyword} {command.name} is listed twice"
        if ident in first:
            raise ConfigError(filename, lineno, f"{what} (first on line {first[ident]})")
        first[ident] = lineno
        commands.append(command)
    return commands


def _command(schema: Schema, words: list[Word], line: str, filename: str,
             lineno: int) -> Command:
    def fail(message: str) -> ConfigError:
        return ConfigError(filename, lineno, message)

    head = words[0]
    if head.key is not None or not _WORD_RE.fullmatch(head.text):
        raise fail(f"expected a command word, not {_show(head.text)}")
    keyword = head.text.upper()
    spec = schema.keywords.get(keyword)
    if spec is None:
        for other in SCHEMAS.values():
            if keyword in other.keywords and other is not schema:
                raise fail(f"{keyword} belongs in {other.filename}, not {schema.filename}")
        known = " ".join(schema.keywords)
        raise fail(f"unknown command {_show(head.text)} (known commands: {known})")
    rest = words[1:]
    positional: Word | None = None
    if rest and rest[0].key is None:
        positional = rest.pop(0)
    for word in rest:
        if word.key is None:
            raise fail(
                f"{keyword}: unexpected {_show(word.text)} "
                f"(arguments are KEY=VALUE; the name comes right after {keyword})"
            )

    name: str | None = None
    value: object = None
    label = keyword
    if positional is not None:
        if spec.positional is None:
            raise fail(f"{keyword} takes no name or value, only KEY=VALUE (e.g. {spec.example})")
        try:
            value = spec.positional.convert(positional.value)
        except ValueError as exc:
            raise fail(f"{keyword} {_show(positional.value)}: {exc}") from None
        if isinstance(spec.positional, Name):
            name = str(value)
            label = f"{keyword} {name}"
        else:
            name = positional.value
    elif spec.positional_required:
        raise fail(f"{keyword} needs {spec.positional.describe if spec.positional else 'a value'}"
                   f" (e.g. {spec.example})")

    args: dict[str, str] = {}
    values: dict[str, object] = {}
    for word in rest:
        key = word.key
        assert key is not None
        kind = spec.keys.get(key)
        if kind is None:
            known = " ".join(spec.keys) or "none"
            raise fail(f"{label}: unknown key {key} (known keys: {known})")
        if key in args:
            raise fail(f"{label}: {key} is given twice")
        try:
            values[key] = kind.convert(word.value)
        except ValueError as exc:
            raise fail(f"{label}: {key}={_show(word.value)}: {exc}") from None
        args[key] = word.value
    missing = [key for key in spec.keys if key in spec.required and key not in args]
    if missing:
        raise fail(f"{label}: missing required key {missing[0]}= (e.g. {spec.example})")
    return Command(keyword, name, args, lineno, line, filename, value, values)


# ---------------------------------------------------------------------------
# The editor


@dataclass
class _Doc:
    bom: str
    lines: list[str]  # without "\n"; a "\r" of CRLF files kept
    final_newline: bool
    crlf: bool

    @classmethod
    def of(cls, text: str) -> _Doc:
        bom = ""
        if text.startswith("\ufeff"):
            bom, text = "\ufeff", text[1:]
        if not text:
            return cls(bom, [], True, False)
        lines = text.split("\n")
        final = lines[-1] == ""
        if final:
            lines.pop()
        crlf = bool(lines) and lines[0].endswith("\r")
        return cls(bom, lines, final, crlf)

    def text(self) -> str:
        if not self.lines:
            return self.bom
        return self.bom + "\n".join(self.lines) + ("\n" if self.final_newline else "")

    def new_line(self, content: str) -> str:
        return content + ("\r" if self.crlf else "")

    def insert(self, index: int, content: str) -> None:
        if index >= len(self.lines):
            self.final_newline = True
        self.lines.insert(index, self.new_line(content))


@dataclass(frozen=True)
class _LineInfo:
    keyword: str | None
    positional: str | None
    words: list[Word]
    comment: int | None
    content: str  # the line without "\r"


def _info(raw: str) -> _LineInfo:
    content = raw[:-1] if raw.endswith("\r") else raw
    try:
        words, comment = split_line(content)
    except ValueError:
        return _LineInfo(None, None, [], None, content)
    if not words or words[0].key is not None or not _WORD_RE.fullmatch(words[0].text):
        return _LineInfo(None, None, words, comment, content)
    positional = words[1].value if len(words) > 1 and words[1].key is None else None
    return _LineInfo(words[0].text.upper(), positional, words, comment, content)


def _replaced(info: _LineInfo, rendered: str, cr: bool) -> str:
    """`rendered` in place of `info`'s command: same indentation, same comment."""
    indent = info.content[: info.words[0].start] if info.words else ""
    out = indent + rendered
    if info.comment is not None:
        gap = info.content[info.words[-1].end : info.comment] if info.words else ""
        if "\t" in gap:
            out += gap
        elif len(out) < info.comment:
            out += " " * (info.comment - len(out))
        else:
            out += " "
        out += info.content[info.comment :]
    return out + ("\r" if cr else "")


def _same_name(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return a is b
    return normalize_name(a) == normalize_name(b)


def _edit(text: str, keyword: str, match: Callable[[_LineInfo], bool],
          rendered: str | None, *, replace_all: bool = False) -> str:
    """Replace the first line `match`es (dropping further matches if `replace_all`),
    or insert `rendered` after the last line of `keyword` (or at the end); with
    `rendered` None, remove every matching line."""
    doc = _Doc.of(text)
    kw = keyword.upper()
    found = False
    out: list[str] = []
    last_same = -1
    for raw in doc.lines:
        info = _info(raw)
        if info.keyword is not None and match(info):
            if rendered is not None and not found:
                out.append(_replaced(info, rendered, raw.endswith("\r")))
                last_same = len(out) - 1
                found = True
                continue
            if rendered is None or replace_all:
                continue
            found = True
        out.append(raw)
        if info.keyword == kw:
            last_same = len(out) - 1
    doc.lines = out
    if rendered is not None and not found:
        doc.insert(last_same + 1 if last_same >= 0 else len(doc.lines), rendered)
    return doc.text()


def set_command(text: str, keyword: str, name: str,
                args: Mapping[str, str] | None = None) -> str:
    """Define `keyword name args` (PRINTER, SETUP): replace its line in place
    (keeping indentation and trailing comment) or add it after the last line
    of the same keyword (or at the end)."""
    kw = keyword.upper()
    canonical = normalize_name(name)
    rendered = render_command(kw, canonical if valid_name(canonical) else name, args)
    return _edit(text, kw, lambda i: i.keyword == kw and _same_name(i.positional, name),
                 rendered)


def update_command(text: str, keyword: str, name: str,
                   changes: Mapping[str, str | None]) -> str:
    """Change some keys of an existing `keyword name` line: a value sets the key,
    None removes it; other keys keep their text verbatim.  NotFound if absent."""
    kw = keyword.upper()
    doc = _Doc.of(text)
    for index, raw in enumerate(doc.lines):
        info = _info(raw)
        if info.keyword != kw or not _same_name(info.positional, name):
            continue
        upper = {key.upper(): value for key, value in changes.items()}
        words = [w.text for w in info.words[:2] if w.key is None]
        for word in info.words[len(words):]:
            if word.key is not None and word.key in upper:
                value = upper.pop(word.key)
                if value is not None:
                    words.append(f"{word.key}={render_value(value)}")
            else:
                words.append(word.text)
        added = render_command(kw, None, {k: v for k, v in upper.items() if v is not None})
        words.extend(added.split(" ", 1)[1:])
        doc.lines[index] = _replaced(info, " ".join(words), raw.endswith("\r"))
        return doc.text()
    raise NotFound(f"{kw} {name} is not defined")


def remove_command(text: str, keyword: str, name: str | None = None) -> str:
    """Remove the line(s) defining `keyword name` (every `keyword` line if name is None)."""
    kw = keyword.upper()
    return _edit(
        text, kw,
        lambda i: i.keyword == kw and (name is None or _same_name(i.positional, name)),
        None,
    )


def set_single(text: str, keyword: str, value: str | None = None,
               args: Mapping[str, str] | None = None) -> str:
    """Set a one-of command (`NIGHT 0,6`, `SERVER NAME=X`, `PASSWORD hash`): replace
    its line in place (dropping any duplicates) or add it."""
    kw = keyword.upper()
    rendered = render_command(kw, value, args)
    return _edit(text, kw, lambda i: i.keyword == kw, rendered, replace_all=True)


def add_line(text: str, keyword: str, value: str, args: Mapping[str, str] | None = None) -> str:
    """Add a repeatable command (`SPOOL path`) unless a line with that value exists."""
    kw = keyword.upper()
    rendered = render_command(kw, value, args)
    for raw in _Doc.of(text).lines:
        info = _info(raw)
        if info.keyword == kw and info.positional == value:
            return text
    return _edit(text, kw, lambda i: False, rendered)


def remove_line(text: str, keyword: str, value: str) -> str:
    """Remove the repeatable command lines `keyword value` (value compared exactly)."""
    kw = keyword.upper()
    return _edit(text, kw, lambda i: i.keyword == kw and i.positional == value, None)
