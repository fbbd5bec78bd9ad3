"""Pure core: the words of printnet and the request-file format.

Owns: `Priority`, `JobState` (with the one table of allowed transitions),
`Format`, `ControlAction`, job ids, text cleaning, and the versioned request
file (print requests and control requests) with its one validator.
About 620 lines: the format and its validator are one thing, documented whole.

A print request's optional ``encoding`` (null or absent: UTF-8) names the source
encoding of its text, one of `printnet.charset.SOURCE_ENCODINGS` by any of its
names; it is read back canonical (``latin-1`` -> ``iso8859-1``).

Request file format, version 1: one UTF-8 JSON object, at most
`MAX_REQUEST_BYTES`, with the key ``"printnet": 1`` and ``"kind"`` either
``"print"`` or ``"control"``.  Unknown keys, wrong types and out-of-range
values are rejected with the field named.  Text fields are stripped of
control characters on the way in *and* on the way out, so nothing a station
wrote can reach a printer, a log or a terminal as a control sequence.

This module imports no `os`, `time` or `serial`: "now" and randomness are
parameters.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final

from printnet.charset import is_source_encoding, source_encoding
from printnet.errors import InvalidTransition, RequestInvalid

FORMAT_VERSION: Final = 1
MAX_REQUEST_BYTES: Final = 256 * 1024  # a request file larger than this is rejected unread
MAX_FILES: Final = 100  # files in one print request
MAX_COPIES: Final = 999  # hard ceiling; printers may set a lower COPIES limit
MAX_TITLE: Final = 200  # characters, after cleaning
MAX_JOBS_PER_CONTROL: Final = 1000


class Priority(StrEnum):
    """Queue priority; order is high, standard, overnight."""

    HIGH = "high"
    STANDARD = "standard"
    OVERNIGHT = "overnight"

    @property
    def rank(self) -> int:
        return _PRIORITY_RANK[self]


_PRIORITY_RANK: Final = {Priority.HIGH: 0, Priority.STANDARD: 1, Priority.OVERNIGHT: 2}


class JobState(StrEnum):
    """Life cycle of a job, in the words operators know (CUPS's, minus 'stopped')."""

    PENDING = "pending"
    HELD = "held"
    PRINTING = "printing"
    COMPLETED = "completed"
    CANCELED = "canceled"
    ABORTED = "aborted"

    @property
    def terminal(self) -> bool:
        return self in _TERMINAL


_TERMINAL: Final = frozenset({JobState.COMPLETED, JobState.CANCELED, JobState.ABORTED})

# The one table of allowed state changes.  Entering PRINTING needs a holder;
# leaving it back to PENDING is a requeue (printer trouble, server failure).
TRANSITIONS: Final[Mapping[JobState, frozenset[JobState]]] = {
    JobState.PENDING: frozenset(
        {JobState.HELD, JobState.PRINTING, JobState.CANCELED, JobState.ABORTED}
    ),
    JobState.HELD: frozenset({JobState.PENDING, JobState.CANCELED, JobState.ABORTED}),
    JobState.PRINTING: frozenset(
        {
            JobState.PENDING,
            JobState.HELD,
            JobState.COMPLETED,
            JobState.CANCELED,
            JobState.ABORTED,
        }
    ),
    JobState.COMPLETED: frozenset(),
    JobState.CANCELED: frozenset(),
    JobState.ABORTED: frozenset(),
}


def check_transition(job_id: str, old: JobState, new: JobState) -> None:
    """Raise `InvalidTransition` unless TRANSITIONS allows old -> new."""
    if new not in TRANSITIONS[old]:
        raise InvalidTransition(f"job {job_id}: cannot go from {old} to {new}")


class Format(StrEnum):
    """How a job's bytes are treated: paginated text, or passed through untouched."""

    TEXT = "text"
    RAW = "raw"


class ControlAction(StrEnum):
    """What a station may ask of its own jobs through a control request."""

    CANCEL = "cancel"
    HOLD = "hold"
    RELEASE = "release"


# ---------------------------------------------------------------------------
# Text and names

_STRIP_CATEGORIES: Final = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def clean_text(text: str, limit: int | None = None) -> str:
    """Drop control, format (bidi overrides, zero-width) and unassigned characters.

    Tabs and newlines become spaces: a title is one line wherever it goes.
    """
    if text.isascii() and text.isprintable():
        # The common case, without a category lookup per character: printable ASCII
        # has no control, format or unassigned characters.
        cleaned = text.strip()
        return cleaned[:limit].rstrip() if limit is not None else cleaned
    out = []
    for ch in text:
        if ch in "\t\n\r":
            out.append(" ")
        elif unicodedata.category(ch) not in _STRIP_CATEGORIES:
            out.append(ch)
    cleaned = "".join(out).strip()
    if limit is not None:
        cleaned = cleaned[:limit].rstrip()  # cutting may expose a space: stay idempotent
    return cleaned


_USER_RE: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@-]{0,63}")
_STATION_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# Printer, class and setup names: upper case, as on the original consoles.  '&' is
# allowed because operators name printers "R&D".
_NAME_RE: Final = re.compile(r"[A-Z0-9][A-Z0-9&_.+-]{0,31}")
_JOB_ID_RE: Final = re.compile(r"[0-9A-HJKMNP-TV-Z]{18}")
_FILE_NAME_RE: Final = re.compile(r"[0-9]{1,3}")


def valid_user(name: str) -> bool:
    return _USER_RE.fullmatch(name) is not None


def valid_station(name: str) -> bool:
    return _STATION_RE.fullmatch(name) is not None


def normalize_name(name: str) -> str:
    """Canonical printer/class/setup name (upper case)."""
    return name.strip().upper()


def valid_name(name: str) -> bool:
    """A printer, class or setup name (already normalized)."""
    return _NAME_RE.fullmatch(name) is not None


def valid_job_id(job_id: str) -> bool:
    return _JOB_ID_RE.fullmatch(job_id) is not None


# ---------------------------------------------------------------------------
# Job ids

_B32: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford: no I, L, O, U


def _b32(value: int, width: int) -> str:
    chars = []
    for _ in range(width):
        chars.append(_B32[value & 31])
        value >>= 5
    return "".join(reversed(chars))


class JobIdGenerator:
    """Job ids unique across hosts without coordination, sorting by submission time.

    An id is 18 Crockford base-32 characters: 10 for the submission time in
    milliseconds (good until the year 10889) and 8 for 40 random bits.  Within
    one process ids are strictly increasing even when several are made in the
    same millisecond (the random part is incremented), so `--each` keeps order.
    Across hosts, two ids collide only if the same millisecond draws the same
    40 random bits.
    """

    def __init__(self) -> None:
        self._last_ms = -1
        self._last_rand = 0

    def next(self, now_ms: int, random40: int) -> str:
        if now_ms <= self._last_ms:
            now_ms = self._last_ms
            rand = self._last_rand + 1
            if rand >= 1 << 40:
                now_ms += 1
                rand = random40 & ((1 << 39) - 1)
        else:
            rand = random40 & ((1 << 40) - 1)
        self._last_ms, self._last_rand = now_ms, rand
        return _b32(now_ms, 10) + _b32(rand, 8)


def job_id_time_ms(job_id: str) -> int:
    """The submission time (ms since the epoch) encoded in a job id."""
    value = 0
    for ch in job_id[:10]:
        value = value * 32 + _B32.index(ch)
    return value


# ---------------------------------------------------------------------------
# Time stamps

def iso(ts: datetime) -> str:
    """ISO 8601 in UTC with microseconds and a Z, the one form printnet writes."""
    # isoformat, not strftime: "%Y" does not zero-pad years before 1000 on glibc.
    return ts.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_iso(text: str, field_name: str = "submitted") -> datetime:
    try:
        ts = datetime.fromisoformat(text)
    except ValueError:
        raise RequestInvalid(field_name, f"not an ISO 8601 time stamp: {text[:40]!r}") from None
    if ts.tzinfo is None:
        raise RequestInvalid(field_name, "time stamp has no time zone")
    try:
        return ts.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00+01:00 is before year 1 in UTC
        raise RequestInvalid(field_name, f"time stamp out of range: {text[:40]!r}") from None


# ---------------------------------------------------------------------------
# Request files


@dataclass(frozen=True, slots=True)
class SpooledFile:
    """One spooled copy of a file to print: `data/<job id>/<name>` in the spool."""

    name: str  # file name inside the job's data folder: "0", "1", ...
    original: str  # what the user named (cleaned; for titles and headers only)
    size: int
    sha256: str
    # By reference (`printnet request --ref`): not spooled; the server reads this
    # absolute path at print time under printnet.security.read_ref's rules.
    ref: str | None = None
    mtime_ns: int | None = None  # the referenced file's mtime at submit

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "original": self.original,
            "size": self.size,
            "sha256": self.sha256,
        }
        if self.ref is not None:  # absent for spooled files: their format is unchanged
            out["ref"] = self.ref
            out["mtime"] = self.mtime_ns
        return out


def valid_ref(path: str) -> bool:
    """An absolute, normalized path: no empty, `.` or `..` component, no NUL."""
    if not path.startswith("/") or "\0" in path or len(path) > 4096 or path == "/":
        return False
    return all(part not in ("", ".", "..") for part in path[1:].split("/"))


SEAL_CIPHER: Final = "AES-256-GCM"  # the one cipher of sealed documents (printnet.seal)
SEAL_CHUNK: Final = 1 << 20  # plaintext bytes per sealed chunk
MAX_SEAL_KEYS: Final = 64  # recipients (print servers' keys) of one sealed job
_KID_RE: Final = re.compile(r"[0-9a-f]{16}")
_WRAP_RE: Final = re.compile(r"[A-Za-z0-9+/=]{16,512}")


@dataclass(frozen=True, slots=True)
class Seal:
    """How a job's documents are sealed (docs/SECURITY.md, Sealing documents).

    `keys` maps each recipient's key id to the job key wrapped for it (HPKE,
    base64).  Each file's `size` and `sha256` then describe the sealed bytes on
    the spool, never the document."""

    keys: tuple[tuple[str, str], ...]
    cipher: str = SEAL_CIPHER
    chunk: int = SEAL_CHUNK

    def to_json(self) -> dict[str, Any]:
        return {"cipher": self.cipher, "chunk": self.chunk, "keys": dict(self.keys)}


@dataclass(frozen=True, slots=True)
class PrintRequest:
    """A request to print one job: who, what, where, how."""

    id: str
    user: str
    station: str
    submitted: datetime
    printer: str
    priority: Priority = Priority.STANDARD
    copies: int = 1
    title: str = ""
    setup: str | None = None  # None: whatever the printer has mounted
    header: bool = True
    format: Format = Format.TEXT
    hold: bool = False
    password: str | None = None  # a proof derived from the queue password, never clear
    files: tuple[SpooledFile, ...] = field(default_factory=tuple)
    # The text's source encoding, canonical (`printnet.charset`): what the station
    # detected or was told (--encoding).  None: UTF-8 (and always for raw jobs).
    encoding: str | None = None
    via: str | None = None  # how a gateway knew the user ("ipp:basic"); None: file owner
    seal: Seal | None = None  # sealed documents: the wrapped job key (printnet.seal)
    # The site it was submitted at (SITE in server.cmd): kept when it is forwarded to
    # another site, for header pages' {site} and {logo}.  None: not said (absent on
    # disk, so requests of a site without SITE are as they were).
    site: str | None = None

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "printnet": FORMAT_VERSION,
            "kind": "print",
            "id": self.id,
            "user": self.user,
            "station": self.station,
            "submitted": iso(self.submitted),
            "printer": self.printer,
            "priority": self.priority.value,
            "copies": self.copies,
            "title": self.title,
            "setup": self.setup,
            "header": self.header,
            "format": self.format.value,
            "hold": self.hold,
            "password": self.password,
            "files": [f.to_json() for f in self.files],
            "encoding": self.encoding,
            **({"via": self.via} if self.via is not None else {}),  # only when set
            **({"site": self.site} if self.site is not None else {}),  # only when set
        }
        if self.seal is not None:  # absent, not null: unsealed requests stay as they were
            out["seal"] = self.seal.to_json()
        return out

    def encode(self) -> bytes:
        return encode_json(self.to_json())


@dataclass(frozen=True, slots=True)
class ControlRequest:
    """A station's request to cancel, hold or release jobs (it cannot write the master)."""

    id: str
    user: str
    station: str
    submitted: datetime
    action: ControlAction
    jobs: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "printnet": FORMAT_VERSION,
            "kind": "control",
            "id": self.id,
            "user": self.user,
            "station": self.station,
            "submitted": iso(self.submitted),
            "action": self.action.value,
            "jobs": list(self.jobs),
        }

    def encode(self) -> bytes:
        return encode_json(self.to_json())


Request = PrintRequest | ControlRequest


def encode_json(obj: Mapping[str, Any]) -> bytes:
    return (json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


def decode_request(data: bytes) -> Request:
    """Parse and validate a request file's bytes; raise `RequestInvalid` naming the field."""
    if len(data) > MAX_REQUEST_BYTES:
        raise RequestInvalid("request", f"larger than {MAX_REQUEST_BYTES} bytes")
    if not data.strip():
        raise RequestInvalid("request", "empty file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise RequestInvalid("request", "not UTF-8 text") from None
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        raise RequestInvalid("request", "not a JSON object (truncated or corrupt)") from None
    if not isinstance(obj, dict):
        raise RequestInvalid("request", "not a JSON object")
    return request_from_json(obj)


def request_from_json(obj: Mapping[str, Any]) -> Request:
    version = obj.get("printnet")
    if type(version) is not int or version != FORMAT_VERSION:
        raise RequestInvalid("printnet", f"unsupported format version {version!r}")
    kind = obj.get("kind")
    if kind == "print":
        return _print_from_json(obj)
    if kind == "control":
        return _control_from_json(obj)
    raise RequestInvalid("kind", f"must be 'print' or 'control', not {kind!r}")


# The field names of a print request, from a throwaway one (any fixed time: the pure
# core never reads the clock, least of all at import).
_PRINT_KEYS: Final = frozenset(PrintRequest(
    id="", user="", station="", submitted=datetime(2000, 1, 1, tzinfo=UTC), printer="", via="",
    site="",
).to_json()) | {"seal"}
_VIA_RE: Final = re.compile(r"[a-z][a-z0-9]{0,15}:[a-z][a-z0-9]{0,15}")
_CONTROL_KEYS: Final = frozenset(
    {"printnet", "kind", "id", "user", "station", "submitted", "action", "jobs"}
)


class _Reader:
    """Typed access to a JSON object, raising `RequestInvalid` with the field's name."""

    def __init__(self, obj: Mapping[str, Any], allowed: frozenset[str], prefix: str = "") -> None:
        unknown = sorted(set(obj) - allowed)
        if unknown:
            raise RequestInvalid(prefix + str(unknown[0])[:40], "unknown field")
        self.obj = obj
        self.prefix = prefix

    def _get(self, key: str, default: Any, required: bool) -> Any:
        if key not in self.obj:
            if required:
                raise RequestInvalid(self.prefix + key, "missing")
            return default
        return self.obj[key]

    def str_(self, key: str, check: Callable[[str], bool] | None = None,
             required: bool = True, default: str = "", limit: int = 1024) -> str:
        value = self._get(key, default, required)
        if not isinstance(value, str):
            raise RequestInvalid(self.prefix + key, f"must be a string, not {_tname(value)}")
        if len(value) > limit:
            raise RequestInvalid(self.prefix + key, f"longer than {limit} characters")
        if check is not None and not check(value):
            raise RequestInvalid(self.prefix + key, f"invalid value {clean_text(value, 40)!r}")
        return value

    def opt_str(self, key: str, check: Callable[[str], bool], limit: int = 1024) -> str | None:
        if self.obj.get(key) is None:
            return None
        return self.str_(key, check, limit=limit)

    def int_(self, key: str, lo: int, hi: int, default: int | None = None) -> int:
        value = self._get(key, default, default is None)
        if not isinstance(value, int) or isinstance(value, bool):
            raise RequestInvalid(self.prefix + key, f"must be an integer, not {_tname(value)}")
        if not lo <= value <= hi:
            raise RequestInvalid(self.prefix + key, f"{value} is out of range {lo}..{hi}")
        return value

    def bool_(self, key: str, default: bool) -> bool:
        value = self._get(key, default, False)
        if not isinstance(value, bool):
            raise RequestInvalid(self.prefix + key, f"must be true or false, not {_tname(value)}")
        return value

    def enum(self, key: str, kind: type[StrEnum], default: str | None = None) -> Any:
        value = self.str_(key, required=default is None, default=default or "")
        try:
            return kind(value)
        except ValueError:
            allowed = " | ".join(m.value for m in kind)
            raise RequestInvalid(
                self.prefix + key, f"{clean_text(value, 20)!r} is not one of {allowed}"
            ) from None

    def time(self, key: str) -> datetime:
        return parse_iso(self.str_(key, limit=64), self.prefix + key)


def _tname(value: object) -> str:
    names = {dict: "object", list: "array", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _common(r: _Reader) -> tuple[str, str, str, datetime]:
    return (
        r.str_("id", valid_job_id, limit=18),
        r.str_("user", valid_user, limit=64),
        r.str_("station", valid_station, limit=64),
        r.time("submitted"),
    )


def _print_from_json(obj: Mapping[str, Any]) -> PrintRequest:
    r = _Reader(obj, _PRINT_KEYS)
    job_id, user, station, submitted = _common(r)
    raw_files = obj.get("files")
    if not isinstance(raw_files, list):
        raise RequestInvalid("files", f"must be an array, not {_tname(raw_files)}")
    if not 1 <= len(raw_files) <= MAX_FILES:
        raise RequestInvalid("files", f"must list 1..{MAX_FILES} files, not {len(raw_files)}")
    files = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_files):
        if not isinstance(raw, dict):
            raise RequestInvalid(f"files[{i}]", f"must be an object, not {_tname(raw)}")
        fr = _Reader(raw, frozenset({"name", "original", "size", "sha256", "ref", "mtime"}),
                     f"files[{i}].")
        name = fr.str_("name", lambda s: _FILE_NAME_RE.fullmatch(s) is not None, limit=3)
        if name in seen:
            raise RequestInvalid(f"files[{i}].name", f"duplicate file name {name!r}")
        seen.add(name)
        files.append(SpooledFile(
            name=name,
            original=clean_text(fr.str_("original", required=False, limit=4096), 255),
            size=fr.int_("size", 0, 1 << 50),
            sha256=fr.str_("sha256", lambda s: re.fullmatch(r"[0-9a-f]{64}", s) is not None),
            ref=fr.opt_str("ref", valid_ref, limit=4096),
            mtime_ns=fr.int_("mtime", 0, 1 << 63) if raw.get("ref") is not None else None,
        ))
    setup = r.opt_str("setup", lambda s: valid_name(normalize_name(s)), limit=32)
    return PrintRequest(
        id=job_id,
        user=user,
        station=station,
        submitted=submitted,
        printer=normalize_name(r.str_("printer", lambda s: valid_name(normalize_name(s)))),
        priority=r.enum("priority", Priority, Priority.STANDARD.value),
        copies=r.int_("copies", 1, MAX_COPIES, 1),
        title=clean_text(r.str_("title", required=False, limit=4 * MAX_TITLE), MAX_TITLE),
        setup=normalize_name(setup) if setup is not None else None,
        header=r.bool_("header", True),
        format=r.enum("format", Format, Format.TEXT.value),
        hold=r.bool_("hold", False),
        password=r.opt_str("password", lambda s: 0 < len(s) <= 512, limit=512),
        files=tuple(files),
        encoding=_encoding(r.opt_str("encoding", is_source_encoding, limit=32)),
        via=r.opt_str("via", lambda s: _VIA_RE.fullmatch(s) is not None, limit=33),
        seal=_seal_from_json(obj.get("seal")),
        site=_site(r.opt_str("site", lambda s: valid_name(normalize_name(s)), limit=32)),
    )


def _site(name: str | None) -> str | None:
    return None if name is None else normalize_name(name)


def _encoding(name: str | None) -> str | None:
    return None if name is None else source_encoding(name)


def _seal_from_json(raw: object) -> Seal | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise RequestInvalid("seal", f"must be an object, not {_tname(raw)}")
    r = _Reader(raw, frozenset({"cipher", "chunk", "keys"}), "seal.")
    if r.str_("cipher", limit=32) != SEAL_CIPHER:
        raise RequestInvalid("seal.cipher", f"must be {SEAL_CIPHER}")
    r.int_("chunk", SEAL_CHUNK, SEAL_CHUNK)
    keys = raw.get("keys")
    if not isinstance(keys, dict) or not 1 <= len(keys) <= MAX_SEAL_KEYS:
        raise RequestInvalid("seal.keys", f"must map 1..{MAX_SEAL_KEYS} key ids to wrapped keys")
    for kid, wrap in keys.items():
        if not _KID_RE.fullmatch(kid) or not isinstance(wrap, str) \
                or not _WRAP_RE.fullmatch(wrap):
            raise RequestInvalid("seal.keys", f"bad entry {clean_text(str(kid), 20)!r}")
    return Seal(keys=tuple(sorted(keys.items())))


def _control_from_json(obj: Mapping[str, Any]) -> ControlRequest:
    r = _Reader(obj, _CONTROL_KEYS)
    ctl_id, user, station, submitted = _common(r)
    action = r.enum("action", ControlAction)
    jobs = obj.get("jobs")
    if not isinstance(jobs, list) or not jobs:
        raise RequestInvalid("jobs", "must be a non-empty array of job ids")
    if len(jobs) > MAX_JOBS_PER_CONTROL:
        raise RequestInvalid("jobs", f"more than {MAX_JOBS_PER_CONTROL} job ids")
    for i, job in enumerate(jobs):
        if not isinstance(job, str) or not valid_job_id(job):
            raise RequestInvalid(f"jobs[{i}]", "not a job id")
    return ControlRequest(ctl_id, user, station, submitted, action, tuple(jobs))
