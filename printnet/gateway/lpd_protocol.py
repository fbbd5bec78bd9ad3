"""Pure RFC 1179 (LPD): daemon commands, receive-job subcommands, control files.

Owns what the bytes of an LPD conversation mean, and nothing else: the door
(`printnet.gateway.lpd`) reads from the socket and asks these functions.  No
`os`, `time` or socket here.

The conversation (RFC 1179, as real clients speak it):

* A **daemon command** is one line: a code byte, the queue name, optional
  operands separated by spaces or tabs, and LF.  ``\\1`` print waiting jobs,
  ``\\2`` receive a job, ``\\3`` short and ``\\4`` long queue state, ``\\5``
  remove jobs (``queue agent [job ids or users]``).
* **Receive job** is followed by subcommands, each answered with one byte
  (0 = ok): ``\\1`` abort, ``\\2<size> cfA<nnn><host>`` control file,
  ``\\3<size> dfA<nnn><host>`` data file.  Each file is `size` bytes followed
  by one ``\\0``.  Clients send the control file first (rlpr, CUPS) or last
  (CUPS ``order=data,control``, LPRng ``send_data_first``); PLP clients add a
  stray ``\\0`` after the final byte (`strip_stray_nuls`).
* CUPS ``mode=stream`` announces a data file of `STREAM_SIZE` bytes and
  sends until it closes the connection (`Subcommand.stream`).

Control-file lines (`parse_control_file`): ``H`` host, ``P`` user (a claim),
``J`` job name, ``T`` title, ``N`` source file name, ``C`` class, ``L``
banner user (its presence asks for a header page), ``U`` unlink, ``M`` mail,
``#``/``K`` copies (BSD/LPRng extensions), and the format letters that print
a data file: ``f`` text, ``p`` text through pr, ``l`` raw (control characters
kept), ``o`` PostScript (passed through untouched: raw).  BSD ``lpr -#3``,
rlpr and CUPS ask for copies by repeating the format line; `plan_job` turns
that into a copy count.  Other format letters (troff, DVI, raster ...) are
refused: printnet has no filters for them.

`plan_job` maps a control file onto printnet's job options (title from J,
else T, else N; header from L; copies) and `render_queue` writes the
free-text queue state.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Final

from printnet.errors import PrintnetError
from printnet.model import MAX_COPIES, MAX_FILES, MAX_TITLE, clean_text

MAX_LINE: Final = 1024  # bytes in one command or subcommand line (RFC: "short")
MAX_CONTROL_FILE: Final = 64 * 1024  # a real control file is ~100 bytes
STREAM_SIZE: Final = 999_999_999_999  # CUPS mode=stream: "read until the connection closes"
ACK: Final = b"\0"
NACK: Final = b"\1"  # any non-zero byte is a refusal; 1 is what BSD lpd sends

TEXT: Final = "text/plain"
RAW: Final = "application/octet-stream"
# Format letters printnet can print, and the document format each becomes.
FORMATS: Final[Mapping[str, str]] = {"f": TEXT, "p": TEXT, "l": RAW, "o": RAW}
# Format letters RFC 1179 defines that printnet refuses (no filter for them).
UNSUPPORTED: Final[Mapping[str, str]] = {
    "c": "CIF", "d": "DVI", "g": "plot", "k": "Kerberized", "n": "ditroff",
    "r": "FORTRAN", "t": "troff", "v": "raster",
}

_FILE_RE: Final = re.compile(r"[!-~]{1,255}")  # printable ASCII, no spaces
_SEPARATORS: Final = re.compile(rb"[ \t]+")


class LpdError(PrintnetError):
    """Bad LPD input; the door answers it with a refusal byte and a log line."""


class Op(IntEnum):
    """The daemon commands of RFC 1179 section 5."""

    PRINT_WAITING = 1
    RECEIVE_JOB = 2
    SHORT_QUEUE = 3
    LONG_QUEUE = 4
    REMOVE_JOBS = 5


class Sub(IntEnum):
    """The receive-job subcommands of RFC 1179 section 6."""

    ABORT = 1
    CONTROL_FILE = 2
    DATA_FILE = 3


@dataclass(frozen=True)
class Command:
    """One daemon command: what, which queue, and its operands."""

    op: Op
    queue: str
    operands: tuple[str, ...] = ()


@dataclass(frozen=True)
class Subcommand:
    """One receive-job subcommand; `size` is in bytes (without the final \\0)."""

    kind: Sub
    size: int = 0
    name: str = ""

    @property
    def stream(self) -> bool:
        """The client does not know the size: read until it closes (CUPS mode=stream)."""
        return self.size >= STREAM_SIZE


def _text(raw: bytes, what: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")  # old clients send ISO 8859-1 names


def _line(line: bytes, what: str) -> bytes:
    if len(line) > MAX_LINE:
        raise LpdError(f"{what} longer than {MAX_LINE} bytes")
    if line.endswith(b"\n"):
        line = line[:-1]
    return line.rstrip(b"\r")


def strip_stray_nuls(line: bytes) -> bytes:
    """Drop the NUL bytes some clients (PLP) send after a file's terminating NUL."""
    return line.lstrip(b"\0")


def parse_command(line: bytes) -> Command:
    """A daemon command line (with or without its LF); `LpdError` if malformed."""
    body = _line(line, "command")
    if not body:
        raise LpdError("empty command")
    code = body[0]
    if code not in Op._value2member_map_:
        raise LpdError(f"unknown command code {code}")
    words = [w for w in _SEPARATORS.split(body[1:]) if w]
    if not words:
        raise LpdError(f"command {code} names no queue")
    queue = _text(words[0], "queue")
    operands = tuple(clean_text(_text(w, "operand"), 64) for w in words[1:])
    if Op(code) is Op.REMOVE_JOBS and not operands:
        raise LpdError("remove jobs names no agent (user)")
    return Command(Op(code), clean_text(queue, 64), tuple(o for o in operands if o))


def parse_subcommand(line: bytes) -> Subcommand:
    """A receive-job subcommand line; `LpdError` if malformed."""
    body = _line(line, "subcommand")
    if not body:
        raise LpdError("empty subcommand")
    code = body[0]
    if code not in Sub._value2member_map_:
        raise LpdError(f"unknown subcommand code {code}")
    kind = Sub(code)
    if kind is Sub.ABORT:
        return Subcommand(kind)
    words = [w for w in _SEPARATORS.split(body[1:]) if w]
    if len(words) != 2 or not words[0].isdigit() or len(words[0]) > 15:
        raise LpdError(f"subcommand {code}: expected '<size> <file name>'")
    name = _text(words[1], "file name")
    if not _FILE_RE.fullmatch(name) or "/" in name:
        raise LpdError(f"subcommand {code}: bad file name {clean_text(name, 40)!r}")
    return Subcommand(kind, int(words[0]), name)


@dataclass(frozen=True)
class ControlFile:
    """What one control file says (text fields cleaned; claims, not proofs)."""

    host: str = ""
    user: str = ""  # P: the claimed owner
    job_name: str = ""  # J
    title: str = ""  # T (the pr title)
    source_name: str = ""  # N: the file name the user printed
    job_class: str = ""  # C
    banner_user: str | None = None  # L: present = print a banner (header) page
    copies: int | None = None  # '#' or 'K' line, when a client sends one
    prints: tuple[tuple[str, str], ...] = ()  # (format letter, data file name), in order

    @property
    def data_files(self) -> tuple[str, ...]:
        """The data files this job prints, each once, in first-use order."""
        return tuple(dict.fromkeys(name for _, name in self.prints))


def parse_control_file(data: bytes) -> ControlFile:
    """Parse a control file's bytes; `LpdError` if it cannot describe a job."""
    if len(data) > MAX_CONTROL_FILE:
        raise LpdError(f"control file larger than {MAX_CONTROL_FILE} bytes")
    fields: dict[str, Any] = {}
    prints: list[tuple[str, str]] = []
    for piece in data.rstrip(b"\0").split(b"\n"):
        raw = piece.rstrip(b"\r")
        if not raw:
            continue
        if len(raw) > MAX_LINE:
            raise LpdError(f"control-file line longer than {MAX_LINE} bytes")
        letter, value = chr(raw[0]), _text(raw[1:], "control line")
        if letter in FORMATS:
            name = value.strip()
            if not _FILE_RE.fullmatch(name) or "/" in name:
                raise LpdError(f"control file: bad data file name {clean_text(name, 40)!r}")
            prints.append((letter, name))
        elif letter in UNSUPPORTED:
            raise LpdError(f"format {letter!r} ({UNSUPPORTED[letter]}) is not supported: "
                           "send text (f) or raw (l)")
        elif letter in "#K":
            text = value.strip()
            if not text.isdigit() or not 1 <= int(text) <= MAX_COPIES:
                raise LpdError(f"control file: copies must be 1..{MAX_COPIES}, "
                               f"not {clean_text(text, 20)!r}")
            fields["copies"] = int(text)
        elif letter == "L":
            fields["banner_user"] = clean_text(value, 64)
        else:
            key = {"H": "host", "P": "user", "J": "job_name", "T": "title",
                   "N": "source_name", "C": "job_class"}.get(letter)
            if key is not None:
                fields[key] = clean_text(value, 4 * MAX_TITLE)
            # Other letters (U unlink, M mail, S, W, I, 1-4 fonts ...) change nothing here.
    if not prints:
        raise LpdError("control file prints no data file (no f, l, p or o line)")
    if len(dict.fromkeys(name for _, name in prints)) > MAX_FILES:
        raise LpdError(f"control file prints more than {MAX_FILES} data files")
    return ControlFile(prints=tuple(prints), **fields)


@dataclass(frozen=True)
class JobPlan:
    """A control file as printnet job options: which data files, in what format."""

    user: str  # the claimed owner ('' when the control file has no P line)
    title: str
    copies: int
    header: bool
    files: tuple[tuple[str, str], ...]  # (data file name, document format), in print order


def plan_job(cf: ControlFile) -> JobPlan:
    """Map a control file onto one printnet job; `LpdError` for what printnet cannot do.

    Copies: a ``#``/``K`` line wins.  Otherwise the copies are the number of
    format lines per data file when every file is asked for equally often
    (``lpr -#3 a b`` repeats each line three times); when the counts differ,
    the files are printed in the order the lines name them, repeats included.
    """
    counts: dict[str, int] = {}
    letters: dict[str, str] = {}
    for letter, name in cf.prints:
        counts[name] = counts.get(name, 0) + 1
        if FORMATS[letters.setdefault(name, letter)] != FORMATS[letter]:
            raise LpdError(f"data file {name} is asked for as text and as raw")
    if len({FORMATS[letter] for letter in letters.values()}) > 1:
        raise LpdError("one job holds text or raw data files, not both")
    if cf.copies is not None:
        copies, order = cf.copies, list(counts)
    elif len(set(counts.values())) == 1:
        copies, order = next(iter(counts.values())), list(counts)
    else:
        copies, order = 1, [name for _, name in cf.prints]
    if copies > MAX_COPIES:
        raise LpdError(f"{copies} copies: at most {MAX_COPIES}")
    if len(order) > MAX_FILES:
        raise LpdError(f"more than {MAX_FILES} data files in one job")
    title = cf.job_name or cf.title or cf.source_name
    return JobPlan(
        user=cf.user,
        title=clean_text(title, MAX_TITLE),
        copies=copies,
        header=cf.banner_user is not None,
        files=tuple((name, FORMATS[letters[name]]) for name in order),
    )


def missing_files(cf: ControlFile, received: Iterable[str]) -> list[str]:
    """The data files `cf` prints that have not arrived yet."""
    have = set(received)
    return [name for name in cf.data_files if name not in have]


# ---------------------------------------------------------------------------
# Queue state (free text: RFC 1179 leaves the format to the server)


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def matches(job: Mapping[str, Any], wanted: Sequence[str]) -> bool:
    """Whether a job is named by an operand list: its user, or its id (or a suffix
    of at least 4 characters, as `printnet cancel` takes them).  Empty: every job."""
    if not wanted:
        return True
    job_id = str(job.get("id", ""))
    return any(w == job.get("user") or (len(w) >= 4 and job_id.endswith(w.upper()))
               for w in wanted)


def render_queue(queue: str, printers: Sequence[Mapping[str, Any]],
                 jobs: Sequence[Mapping[str, Any]], *, long: bool,
                 wanted: Sequence[str] = ()) -> bytes:
    """The queue state for `\\3` (short) or `\\4` (long), like BSD lpq's output.

    `printers`/`jobs` are what `GatewayContext.queue_view` returns for the queue;
    `wanted` are the command's operands (user names or job ids).
    """
    lines: list[str] = []
    for p in printers:
        state = str(p.get("state") or "unknown")
        reasons = ", ".join(str(r) for r in p.get("reasons") or [])
        form = p.get("setup") or ""
        line = f"{p.get('name')} is {state}"
        if form:
            line += f" (setup {form})"
        if reasons:
            line += f": {reasons}"
        lines.append(clean_text(line, 200))
    if not printers:
        lines.append(f"{queue}: no server reports this printer")
    shown = [j for j in jobs if matches(j, wanted)]
    if not shown:
        lines.append("no entries")
    elif not long:
        lines.append(f"{'Rank':<7}{'Owner':<11}{'Job':<19} {'Files':<30}{'Total Size':>12}")
        for j in shown:
            rank = "active" if j.get("state") == "printing" else _ordinal(int(j.get("position")
                                                                            or 0))
            title = clean_text(str(j.get("title") or ""), 29) or "(untitled)"
            lines.append(f"{rank:<7}{clean_text(str(j.get('user', '')), 10):<11}"
                         f"{j.get('id', ''):<19} {title:<30}{_size(j):>12}")
    else:
        for j in shown:
            rank = "active" if j.get("state") == "printing" else _ordinal(int(j.get("position")
                                                                            or 0))
            lines.append("")
            lines.append(f"{clean_text(str(j.get('user', '')), 64)}: {rank:<20}"
                         f"[job {j.get('id', '')}]")
            title = clean_text(str(j.get("title") or ""), 60) or "(untitled)"
            details = f"{j.get('state', '')}, {j.get('copies', 1)} copies, {j.get('priority')}"
            note = clean_text(str(j.get("note") or ""), 100)
            lines.append(f"        {title:<40}{_size(j):>14}")
            lines.append(f"        {details}" + (f"; {note}" if note else ""))
    return ("\n".join(lines) + "\n").encode("utf-8")


def _size(job: Mapping[str, Any]) -> str:
    size = job.get("size")
    return f"{size} bytes" if isinstance(size, int) else ""
