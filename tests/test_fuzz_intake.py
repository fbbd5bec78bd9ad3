"""Bad input: request files, control requests and etc/ command files, fuzzed.

Whatever lands in new/ — truncated, binary, huge, deeply nested, wrong types,
unicode tricks, symlinks, FIFOs, sockets, folders, empty files, files still
being written, hostile names — is rejected with a reason: no crash, no hang,
nothing left behind in new/, and no effect on the good jobs around it.  The
etc/ command files get the same treatment: a clear error naming file and line,
and a running server keeps its last good configuration.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import string
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from helpers_e2e import (
    PrinterSpec,
    done_records,
    logs,
    make_etc,
    printed_ids,
    published,
    server_env,
    start_server,
    wait_for,
    write_atomic_text,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from printnet.config import load as load_config
from printnet.errors import ConfigError, RequestInvalid
from printnet.model import MAX_REQUEST_BYTES, PrintRequest, decode_request
from printnet.spool.intake import Intake
from printnet.spool.layout import Spool
from printnet.spool.submit import Source, Submitter, new_id

# -- request files, in memory ------------------------------------------------------------


def _valid_print(job_id: str | None = None) -> dict[str, Any]:
    return {
        "printnet": 1, "kind": "print", "id": job_id or new_id(), "user": "root",
        "station": "ws", "submitted": "2026-03-01T12:00:00.000000Z", "printer": "LOCAL",
        "priority": "standard", "copies": 1, "title": "t", "setup": None, "header": True,
        "format": "text", "hold": False, "password": None,
        "files": [{"name": "0", "original": "a.txt", "size": 3, "sha256": "0" * 64}],
    }


def _valid_control(job_id: str | None = None) -> dict[str, Any]:
    return {"printnet": 1, "kind": "control", "id": job_id or new_id(), "user": "root",
            "station": "ws", "submitted": "2026-03-01T12:00:00.000000Z",
            "action": "cancel", "jobs": [new_id()]}


TRICKY_TEXT = st.sampled_from([
    "", " ", "\x00", "\u202eevil\u202c", "\u200b", "e\u0301", "\ufeff", "\ud800", "\U0001f5a8",
    "a" * 5000, "..", "/etc/passwd", "../../x", "LOCAL\nPRINTER X", "\x1b[2J", "ＬＯＣＡＬ",
    "ǅ", "İ", "\r\n", "%s%n", "\\", "'", '"',
])
JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30), TRICKY_TEXT,
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=12,
)


def _template(printer: str = "LOCAL") -> PrintRequest:
    req = decode_request(json.dumps(_valid_print("0" * 18) | {"printer": printer}).encode())
    assert isinstance(req, PrintRequest)
    return req


def _decode_or_reject(data: bytes) -> None:
    try:
        decode_request(data)
    except RequestInvalid as exc:
        assert exc.field and exc.message
        assert "\n" not in str(exc)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_random_bytes_decode_or_are_refused_with_a_field(data: bytes) -> None:
    _decode_or_reject(data)


@settings(max_examples=400, deadline=None)
@given(kind=st.sampled_from(["print", "control"]),
       changes=st.lists(st.tuples(st.sampled_from([*sorted(_valid_print()), "jobs", "action",
                                                   "extra"]),
                                  st.one_of(st.just("<delete>"), JSON_VALUES)),
                        min_size=1, max_size=4),
       file_change=st.one_of(st.none(), st.tuples(
           st.sampled_from(["name", "original", "size", "sha256", "more"]), JSON_VALUES)))
def test_mutated_requests_decode_or_are_refused_with_a_field(
        kind: str, changes: list[tuple[str, Any]], file_change: tuple[str, Any] | None) -> None:
    obj = _valid_print() if kind == "print" else _valid_control()
    for key, value in changes:
        if value == "<delete>":
            obj.pop(key, None)
        else:
            obj[key] = value
    files = obj.get("files")
    if file_change is not None and isinstance(files, list) and files \
            and isinstance(files[0], dict):
        obj["files"][0][file_change[0]] = file_change[1]
    try:
        data = json.dumps(obj, ensure_ascii=False).encode("utf-8", "surrogatepass")
    except (ValueError, UnicodeEncodeError):
        return
    _decode_or_reject(data)
    _decode_or_reject(data[: len(data) // 2])  # truncated


@pytest.mark.parametrize("data", [
    b"[" * 200_000 + b"]" * 200_000,
    b'{"printnet":1,"kind":"print","x":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    b'{"printnet":1,"kind":"control","jobs":' + b'["' + b'0' * 18 + b'",' * 20_000 + b"]}",
    b'{"printnet":1,"printnet":1,"kind":"print"}',
    b'{"printnet":1e400,"kind":"print"}',
    b'{"printnet":NaN}',
    b'\xef\xbb\xbf{"printnet":1}',
    b'{"printnet":1,"kind":"print","id":"\\ud800"}',
    b"\x00" * 100,
    b" " * (MAX_REQUEST_BYTES + 1),
], ids=["deep-list", "deep-field", "many-jobs", "dup-key", "huge-number", "nan", "bom",
        "lone-surrogate", "nuls", "too-big"])
def test_hostile_request_bytes_are_refused(data: bytes) -> None:
    with pytest.raises(RequestInvalid):
        decode_request(data)


# -- request files in new/, through the intake -------------------------------------------


@pytest.fixture
def submitted(spool: Spool, tmp_path: Path) -> Callable[[], str]:
    """Publish a valid job (its data folder exists); returns its id."""
    src = tmp_path / "good.txt"
    src.write_text("good job\n")
    sub = Submitter(spool, user="root", station="ws")
    template = _template()

    def submit() -> str:
        return sub.submit(template, [Source("good.txt", path=src)]).id
    return submit


def _take_with_deadline(intake: Intake, seconds: float = 20.0) -> tuple[list[Any], list[Any]]:
    """`intake.take()` in a thread: a hang (a FIFO opened for reading...) fails the test."""
    box: list[Any] = []

    def run() -> None:
        try:
            box.append(intake.take())
        except BaseException as exc:
            box.append(exc)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "intake hung"
    if isinstance(box[0], BaseException):
        raise box[0]
    taken, rejected = box[0]
    return taken, rejected


def _make_special(spool: Spool, kind: str, tmp: Path) -> str:
    """Put one bad thing into new/; returns its name."""
    job_id = new_id()
    name = f"{job_id}.req"
    path = spool.new / name
    valid = json.dumps(_valid_print(job_id)).encode()
    if kind == "symlink-to-request":
        target = tmp / "elsewhere.req"
        target.write_bytes(valid)
        path.symlink_to(target)
    elif kind == "symlink-to-passwd":
        path.symlink_to("/etc/passwd")
    elif kind == "dangling-symlink":
        path.symlink_to(tmp / "nothing-here")
    elif kind == "symlink-loop":
        path.symlink_to(path)
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":
        sock = socket.socket(socket.AF_UNIX)
        try:
            sock.bind(str(path))
        finally:
            sock.close()
    elif kind == "directory":
        path.mkdir()
        (path / "inside").write_bytes(valid)
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "huge-sparse":
        with open(path, "wb") as fh:
            fh.truncate(1 << 34)  # 16 GiB, no blocks
    elif kind == "truncated":
        path.write_bytes(valid[: len(valid) // 2])
    elif kind == "binary":
        path.write_bytes(os.urandom(4096))
    elif kind == "no-data-folder":
        path.write_bytes(valid)
    elif kind == "hard-link-to-other":
        other = tmp / "other.req"
        other.write_bytes(valid)
        os.link(other, path)
    elif kind == "wrong-suffix":
        name = f"{job_id}.ctl"
        (spool.new / name).write_bytes(valid)
    elif kind == "id-mismatch":
        (spool.new / name).write_bytes(json.dumps(_valid_print(new_id())).encode())
    elif kind == "setuid-file":
        path.write_bytes(valid)
        os.chmod(path, 0o4755)
    else:
        raise AssertionError(kind)
    return name


SPECIAL = ["symlink-to-request", "symlink-to-passwd", "dangling-symlink", "symlink-loop",
           "fifo", "socket", "directory", "empty", "huge-sparse", "truncated", "binary",
           "no-data-folder", "hard-link-to-other", "wrong-suffix", "id-mismatch",
           "setuid-file"]


@pytest.mark.parametrize("kind", SPECIAL)
def test_special_files_in_new_are_rejected_with_a_reason(
        spool: Spool, tmp_path: Path, kind: str, submitted: Callable[[], str]) -> None:
    good_before = submitted()
    name = _make_special(spool, kind, tmp_path)
    good_after = submitted()
    intake = Intake(spool)
    taken, rejected = _take_with_deadline(intake)
    assert sorted(t.request.id for t in taken) == sorted([good_before, good_after])
    assert [n for n, _ in rejected] == [name], rejected
    assert rejected[0][1]
    assert os.listdir(spool.new) == []
    reasons = [n for n in os.listdir(spool.rejected) if n.endswith(".reason")]
    assert len(reasons) == 1
    text = (spool.rejected / reasons[0]).read_text()
    assert text.strip() and "\n" not in text.strip()
    # Nothing was followed: /etc/passwd and the other file are untouched.
    assert Path("/etc/passwd").exists()


NAMES = st.one_of(
    st.text(alphabet=string.printable.replace("/", "").replace("\x00", ""), min_size=1,
            max_size=80),
    st.sampled_from(["..req", ".req", "x.req", "0" * 18 + ".req", "0" * 18 + ".ctl",
                     "a" * 250 + ".req", "01M7Z2KB96HSJ7HRQA.req\n", "-rf.req", "~.req",
                     "01m7z2kb96hsj7hrqa.req", "01M7Z2KB96HSJ7HRQA.REQ",
                     "01M7Z2KB96HSJ7HRQA.req.tmp", "\u202e01M7Z2KB96HSJ7HRQA.req"]),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=NAMES, content=st.one_of(st.binary(max_size=300),
                                     JSON_VALUES.map(lambda v: json.dumps(v).encode())))
def test_anything_named_anything_in_new_is_taken_or_rejected(name: str, content: bytes) -> None:
    name = name.strip(".") or "x"
    with tempfile.TemporaryDirectory() as tmp:
        spool, _ = Spool.init(Path(tmp) / "spool")
        try:
            (spool.new / name).write_bytes(content)
        except OSError:
            return  # a name the filesystem refuses (too long)
        taken, rejected = _take_with_deadline(Intake(spool))
        assert not taken
        assert [n for n, _ in rejected] == [name]
        assert os.listdir(spool.new) == []
        assert any(n.endswith(".reason") for n in os.listdir(spool.rejected))


def test_non_utf8_and_control_character_names_are_rejected(spool: Spool) -> None:
    raw = os.fsencode(spool.new) + b"/\xff\xfe\x1b[31m.req"
    with open(raw, "wb") as fh:
        fh.write(b"{}")
    taken, rejected = _take_with_deadline(Intake(spool))
    assert not taken and len(rejected) == 1
    assert os.listdir(spool.new) == []
    reason = [n for n in os.listdir(spool.rejected) if n.endswith(".reason")]
    assert len(reason) == 1 and "\x1b" not in (spool.rejected / reason[0]).read_text()


def test_a_request_still_being_written_in_new_is_rejected_not_waited_for(
        spool: Spool) -> None:
    """A station that writes in place (against the protocol): half a file is refused
    with a reason, and the writer finishing later changes nothing."""
    job_id = new_id()
    data = json.dumps(_valid_print(job_id)).encode()
    fd = os.open(spool.new / f"{job_id}.req", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, data[:40])
        taken, rejected = _take_with_deadline(Intake(spool))
        os.write(fd, data[40:])
    finally:
        os.close(fd)
    assert not taken and [n for n, _ in rejected] == [f"{job_id}.req"]
    assert "truncated" in rejected[0][1] or "JSON" in rejected[0][1]
    assert os.listdir(spool.new) == []


# -- a running server, with bad input around good jobs -----------------------------------


def _server_project(tmp: Path, spool: Path, baud: str = "inf") -> tuple[Path, Path]:
    out = tmp / "S1" / "out" / "P1.prn"
    etc = make_etc(tmp / "S1", "S1", [spool], [PrinterSpec("P1", out, baud=baud)])
    return etc, out


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[Spool, Path, Any]]:
    spool, _ = Spool.init(tmp_path / "spool")
    etc, out = _server_project(tmp_path, spool.root)
    server = start_server(etc, "S1", env=server_env(tmp_path / "run"))
    try:
        yield spool, out, server
    finally:
        server.stop()


@pytest.mark.slow
def test_a_server_rejects_bad_input_and_prints_the_good_jobs(
        running: tuple[Spool, Path, Any], tmp_path: Path) -> None:
    spool, out, server = running
    sub = Submitter(spool, user="root", station="ws")
    src = tmp_path / "a.txt"
    src.write_text("good\n")
    template = _template("P1")
    good: list[str] = []
    bad: list[str] = []
    for i, kind in enumerate(SPECIAL):
        good.append(sub.submit(template, [Source("a.txt", path=src)]).id)
        (tmp_path / f"k{i}").mkdir()
        bad.append(_make_special(spool, kind, tmp_path / f"k{i}"))
    # Control requests that make no sense: unknown jobs, a thousand ids, bad action.
    ctl = _valid_control()
    ctl["jobs"] = [new_id() for _ in range(1000)]
    (spool.new / f"{ctl['id']}.ctl").write_bytes(json.dumps(ctl).encode())
    silly = _valid_control()
    (spool.new / f"{silly['id']}.ctl").write_bytes(json.dumps(silly).encode())
    wrong = _valid_control() | {"action": "explode"}
    (spool.new / f"{wrong['id']}.ctl").write_bytes(json.dumps(wrong).encode())
    bad.append(f"{wrong['id']}.ctl")
    deep = b'{"printnet":1,"kind":"control","jobs":' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    deep_name = f"{new_id()}.ctl"
    (spool.new / deep_name).write_bytes(deep)
    bad.append(deep_name)

    def finished() -> bool:
        recs = done_records(spool.root)
        return all(recs.get(i, {}).get("outcome") == "completed" for i in good) and \
            all((spool.done / f"{c['id']}.json").exists() for c in (ctl, silly))
    wait_for(finished, 60, "the good jobs and the control requests",
             on_timeout=lambda: logs([server]))
    assert sorted(printed_ids(out)) == sorted(good)
    result = json.loads((spool.done / f"{silly['id']}.json").read_text())
    assert set(result["results"].values()) == {"not found (finished or never queued)"}
    wait_for(lambda: not [n for n in os.listdir(spool.new) if not n.startswith(".")], 20,
             "new/ to be empty")
    rejected = os.listdir(spool.rejected)
    for name in bad:
        if name.isascii() and name.isprintable():
            assert name in rejected, (name, rejected)
    assert len([n for n in rejected if n.endswith(".reason")]) == len(bad)
    assert server.poll() is None
    assert "Traceback" not in server.log_text()


# -- etc/ command files ------------------------------------------------------------------

GOOD_SERVER = "SERVER NAME=S1\nSPOOL spool\nNIGHT 0,6\nSCAN 1\nLEASE 30\nOPERATORS root\n"
GOOD_PRINTERS = ("PRINTER P1 PORT=file://../out/P1.prn SETUP=STANDARD\n"
                 "SETUP STANDARD FORM=PLAIN LENGTH=66 WIDTH=80\nDEFAULT P1\n")
BAD_LINES = st.one_of(
    st.text(min_size=1, max_size=60).filter(lambda t: "\n" not in t and "\r" not in t),
    st.sampled_from([
        "PRINTER", "PRINTER P2", "PRINTER P2 PORT=", "PRINTER P1 PORT=file://x",  # duplicate
        "SETUP X FORM=PLAIN LENGTH=0 WIDTH=80", "SETUP Y FORM=PLAIN LENGTH=66 WIDTH=99999",
        "SPOOL", "LEASE -1", "LEASE nan", "LEASE 1e999", "SCAN 0", "NIGHT 25,3", "NIGHT a,b",
        'PRINTER P3 PORT="unterminated', "PRINTER P4 PORT=file:///etc/passwd",
        "PRINTER P5 PORT=sim://x?out=/dev/null", "DEFAULT NOPE", "\x00", "SERVER NAME=",
        "PRINTER P6 PORT=loop:// BAUD=-9600", "PRINTER P7 PORT=loop:// CLASS=" + "A," * 500,
        "PRINTER " + "X" * 5000 + " PORT=loop://", "OPERATORS ,,,", "\u202ePRINTER P8",
    ]),
)


def _etc_with(tmp: Path, server_text: str, printers_text: str) -> Path:
    etc = tmp / "etc"
    etc.mkdir(parents=True, exist_ok=True)
    (tmp / "out").mkdir(exist_ok=True)
    (tmp / "spool").mkdir(exist_ok=True)
    (etc / "server.cmd").write_text(server_text)
    (etc / "printers.cmd").write_text(printers_text)
    return etc


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(which=st.sampled_from(["server.cmd", "printers.cmd"]), line=BAD_LINES,
       at=st.integers(min_value=0, max_value=6))
def test_one_bad_line_in_a_command_file_is_named_by_file_and_line(
        which: str, line: str, at: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        good = GOOD_SERVER if which == "server.cmd" else GOOD_PRINTERS
        lines = good.splitlines(keepends=True)
        at = min(at, len(lines))
        text = "".join(lines[:at]) + line + "\n" + "".join(lines[at:])
        etc = _etc_with(Path(tmp), text if which == "server.cmd" else GOOD_SERVER,
                        text if which == "printers.cmd" else GOOD_PRINTERS)
        try:
            load_config(etc)
        except ConfigError as exc:
            # The error names a file and, when one line is at fault, that line.
            assert exc.file.endswith((".cmd", ".hdr")) or "etc" in exc.file, exc
            if exc.line:
                assert exc.file.endswith(which) or exc.line <= len(lines) + 1, exc
            assert "\n" not in str(exc)


@pytest.mark.parametrize("kind", ["binary", "huge", "fifo", "directory", "dev-zero",
                                  "dangling", "empty", "nul-bytes", "bad-line-7"])
def test_hostile_command_files_give_a_clear_error(tmp_path: Path, kind: str) -> None:
    """Loaded in a child with a deadline: a FIFO must not hang the loader."""
    etc = _etc_with(tmp_path, GOOD_SERVER, GOOD_PRINTERS)
    path = etc / "printers.cmd"
    path.unlink()
    if kind == "binary":
        path.write_bytes(b"PRINTER P1 PORT=loop://\n\xff\xfe\x00garbage\n")
    elif kind == "huge":
        path.write_bytes(b"; comment\n" * 200_000)
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    elif kind == "dev-zero":
        path.symlink_to("/dev/zero")
    elif kind == "dangling":
        path.symlink_to(tmp_path / "nowhere")
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "nul-bytes":
        path.write_bytes(b"\x00" * 100)
    elif kind == "bad-line-7":
        path.write_text(GOOD_PRINTERS + "; ok\n; ok\n; ok\nPRINTER BROKEN PORT\n")
    code = ("import sys\nfrom pathlib import Path\nfrom printnet.config import load\n"
            "from printnet.errors import ConfigError\n"
            "try:\n    load(Path(sys.argv[1]))\nexcept ConfigError as exc:\n"
            "    print('CONFIGERROR', exc.line, exc)\nelse:\n    print('LOADED')\n")
    try:
        proc = subprocess.run([sys.executable, "-c", code, str(etc)],
                              capture_output=True, text=True, timeout=30, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail(f"loading etc/ with a {kind} printers.cmd hung")
    assert proc.returncode == 0, proc.stderr
    if kind == "empty":
        return  # an empty printers.cmd may be valid (no printers) or refused: both clear
    assert proc.stdout.startswith("CONFIGERROR"), proc.stdout
    assert "printers.cmd" in proc.stdout
    if kind == "bad-line-7":
        assert proc.stdout.split()[1] == "7", proc.stdout


def _more_refusals(server: Any, before: int) -> bool:
    return bool(server.log_text().count("keeping the last good one") > before)


def _completed(spool: Spool, job: str) -> bool:
    return bool(done_records(spool.root).get(job, {}).get("outcome") == "completed")


@pytest.mark.slow
def test_a_running_server_keeps_its_last_good_configuration(tmp_path: Path) -> None:
    spool, _ = Spool.init(tmp_path / "spool")
    etc, _ = _server_project(tmp_path, spool.root)
    good_text = (etc / "printers.cmd").read_text()
    server = start_server(etc, "S1", env=server_env(tmp_path / "run"))
    try:
        wait_for(lambda: published(spool.root, "S1"), 30, "S1 to start",
                 on_timeout=lambda: logs([server]))
        sub = Submitter(spool, user="root", station="ws")
        src = tmp_path / "a.txt"
        src.write_text("x\n")
        template = _template("P1")
        for broken in (good_text + "PRINTER BROKEN\n", "\xff garbage \x00\n",
                       good_text.replace("PRINTER P1", "PRINTER P1 BAUD=fast")):
            refusals = server.log_text().count("keeping the last good one")
            write_atomic_text(etc / "printers.cmd", broken)
            wait_for(partial(_more_refusals, server, refusals), 20,
                     "the server to refuse the bad configuration",
                     on_timeout=lambda: logs([server]))
            job = sub.submit(template, [Source("a.txt", path=src)]).id
            wait_for(partial(_completed, spool, job), 30,
                     "a job printed with the last good configuration",
                     on_timeout=lambda: logs([server]))
        problems = [line for line in server.log_text().splitlines()
                    if "keeping the last good one" in line]
        assert problems and all("printers.cmd:" in p for p in problems), problems
        # A FIFO in place of the file must not hang the server either.
        (etc / "printers.cmd").unlink()
        os.mkfifo(etc / "printers.cmd")
        job = sub.submit(template, [Source("a.txt", path=src)]).id
        wait_for(lambda: done_records(spool.root).get(job, {}).get("outcome") == "completed",
                 30, "a job printed while printers.cmd is a FIFO",
                 on_timeout=lambda: logs([server]))
        (etc / "printers.cmd").unlink()
        write_atomic_text(etc / "printers.cmd", good_text)
        assert server.poll() is None
    finally:
        assert server.stop() == 0
    assert "Traceback" not in server.log_text()
    assert stat.S_ISREG(os.stat(etc / "printers.cmd").st_mode)
