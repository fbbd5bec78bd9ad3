"""Stations publish (data first, request last); servers claim by rename, inspect, reject."""

from __future__ import annotations

import hashlib
import io
import json
import multiprocessing
import os
import random
import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import make_ids, tree

from printnet.errors import SpoolError, UsageError
from printnet.model import ControlAction, ControlRequest, PrintRequest
from printnet.spool import submit as submit_mod
from printnet.spool.intake import Intake
from printnet.spool.layout import Spool
from printnet.spool.publish import unique_name
from printnet.spool.submit import Source, Submitter, check_sources, purge_leftovers

IS_ROOT = os.geteuid() == 0


def template(**changes: Any) -> PrintRequest:
    values: dict[str, Any] = {
        "id": "0" * 18, "user": "", "station": "", "submitted": datetime.now(UTC),
        "printer": "LOCAL",
    }
    values.update(changes)
    return PrintRequest(**values)


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def submit(spool: Spool, tmp_path: Path, data: bytes = b"hello\n", user: str = "alice",
           **changes: Any) -> PrintRequest:
    src = write(tmp_path / f"src-{random.random()}.txt", data)
    return Submitter(spool, user=user, station="ws1").submit(
        template(**changes), [Source("report.txt", path=src)])


def fresh_name() -> str:
    """A request file name no other call returns (made from this process's id generator)."""
    return submit_mod.new_id() + ".req"


def visible(folder: Path) -> list[str]:
    return sorted(n for n in os.listdir(folder) if not n.startswith("."))


# ---------------------------------------------------------------------------
# submit


def test_submit_publishes_data_and_request(spool: Spool, tmp_path: Path) -> None:
    data = b"line one\nline two\n" * 100
    req = submit(spool, tmp_path, data, title="")
    assert visible(spool.new) == [f"{req.id}.req"]
    assert os.listdir(spool.tmp) == []
    assert (spool.data / req.id / "0").read_bytes() == data
    [f] = req.files
    assert (f.name, f.size, f.sha256) == ("0", len(data), hashlib.sha256(data).hexdigest())
    assert f.original == "report.txt"
    assert req.title == "report.txt"  # defaults to the first file's name
    from printnet.model import decode_request

    assert decode_request((spool.new / f"{req.id}.req").read_bytes()) == req


@pytest.mark.parametrize("size", [300_000, 3 << 20])  # in one piece; copied in chunks
def test_request_appears_only_after_its_data_is_complete(
    spool: Spool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int,
) -> None:
    payload = b"x" * size
    events: list[str] = []
    real_rename, real_fsync = os.rename, os.fsync

    def spy_rename(src: Any, dst: Any, *, src_dir_fd: int | None = None,
                   dst_dir_fd: int | None = None) -> None:
        # Submit names files relative to folder handles: the folder is the handle's.
        where = Path(os.readlink(f"/proc/self/fd/{dst_dir_fd}")) if dst_dir_fd is not None else None
        real_rename(src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)
        dst = where / dst if where is not None else Path(dst)
        if dst.parent == spool.new:
            job = dst.name.split(".")[0]
            # the moment the request becomes visible, its data must be complete
            assert (spool.data / job / "0").read_bytes() == payload
            events.append("publish")
        elif dst.parent == spool.data:
            events.append("data")

    def spy_mkdir(path: Any, mode: int = 0o777, *, dir_fd: int | None = None) -> None:
        real_mkdir(path, mode, dir_fd=dir_fd)
        if dir_fd is not None and not str(path).startswith("."):
            events.append("data")  # a small job's folder is made under its final name

    def spy_fsync(fd: int) -> None:
        events.append("fsync")
        real_fsync(fd)

    real_mkdir = os.mkdir
    monkeypatch.setattr(os, "rename", spy_rename)
    monkeypatch.setattr(os, "mkdir", spy_mkdir)
    monkeypatch.setattr(os, "fsync", spy_fsync)
    submit(spool, tmp_path, payload)
    assert events.index("data") < events.index("publish")
    assert "fsync" in events[events.index("data"):events.index("publish")]
    after = events[events.index("publish") + 1:]
    assert set(after) == {"fsync"}  # only new/ itself is synced after publishing


def test_submit_many_keeps_order_and_ids_increase(spool: Spool, tmp_path: Path) -> None:
    srcs = [write(tmp_path / f"f{i}", bytes([65 + i]) * (i + 1)) for i in range(3)]
    reqs = Submitter(spool, user="alice", station="ws1").submit_many(
        [(template(), [Source(p.name, path=p)]) for p in srcs])
    ids = [r.id for r in reqs]
    assert ids == sorted(ids) and len(set(ids)) == 3
    for req, src in zip(reqs, srcs, strict=True):
        assert (spool.data / req.id / "0").read_bytes() == src.read_bytes()
        assert req.title == src.name


def test_submit_from_a_stream_and_long_titles(spool: Spool, tmp_path: Path) -> None:
    sub = Submitter(spool, user="alice", station="ws1")
    req = sub.submit(template(), [Source("x" * 300, stream=io.BytesIO(b"from stdin"))])
    assert (spool.data / req.id / "0").read_bytes() == b"from stdin"
    from printnet.model import MAX_TITLE, decode_request

    assert len(req.title) <= MAX_TITLE
    assert decode_request((spool.new / f"{req.id}.req").read_bytes()) == req


@pytest.mark.parametrize("kind", ["missing", "directory", "empty-list"])
def test_check_sources_rejects_before_anything_is_written(
    spool: Spool, tmp_path: Path, kind: str,
) -> None:
    sources = {
        "missing": [Source("nope", path=tmp_path / "nope")],
        "directory": [Source("dir", path=tmp_path)],
        "empty-list": [],
    }[kind]
    before = tree(spool.root)
    with pytest.raises(UsageError):
        check_sources(sources)
    assert tree(spool.root) == before


def test_failed_publish_leaves_no_visible_request(
    spool: Spool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_rename = os.rename

    def failing(src: Any, dst: Any, *, src_dir_fd: int | None = None,
                dst_dir_fd: int | None = None) -> None:
        where = Path(os.readlink(f"/proc/self/fd/{dst_dir_fd}")) if dst_dir_fd is not None \
            else Path(dst).parent
        if where == spool.new:
            raise OSError(28, "No space left on device")
        real_rename(src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)

    monkeypatch.setattr(os, "rename", failing)
    with pytest.raises(SpoolError):
        submit(spool, tmp_path)
    assert os.listdir(spool.new) == []
    assert os.listdir(spool.tmp) == []  # the staged request is removed
    assert Intake(spool).take() == ([], [])


def test_control_request(spool: Spool) -> None:
    jobs = tuple(make_ids(2))
    ctl = Submitter(spool, user="alice", station="ws1").control(ControlAction.HOLD, jobs)
    assert visible(spool.new) == [f"{ctl.id}.ctl"]
    taken, rejected = Intake(spool).take()
    assert rejected == []
    [t] = taken
    assert isinstance(t.request, ControlRequest)
    assert (t.request.action, t.request.jobs) == (ControlAction.HOLD, jobs)


# ---------------------------------------------------------------------------
# crash leftovers


def make_leftovers(spool: Spool) -> dict[str, Path]:
    """What submits that crashed at each step leave behind."""
    [job1, job2] = make_ids(2)
    half_copied = spool.data / unique_name("." + job1)
    half_copied.mkdir()
    write(half_copied / "0", b"partial")
    orphan = spool.data / job2  # data renamed into place, request never published
    orphan.mkdir()
    write(orphan / "0", b"complete")
    staged = write(spool.tmp / unique_name(), b'{"printnet":1}')
    temp_in_new = write(spool.new / unique_name(), b"")
    return {"half": half_copied, "orphan": orphan, "staged": staged, "new-temp": temp_in_new}


def test_crash_leftovers_are_invisible_to_intake(spool: Spool) -> None:
    make_leftovers(spool)
    intake = Intake(spool)
    assert intake.scan() == []
    assert intake.take() == ([], [])
    assert visible(spool.received) == [] and visible(spool.rejected) == []


def test_purge_leftovers_removes_only_old_leftovers(spool: Spool, tmp_path: Path) -> None:
    live = submit(spool, tmp_path)  # in new/: its data is known
    taken_in = submit(spool, tmp_path)
    Intake(spool).take([f"{taken_in.id}.req"])  # in received/
    leftovers = make_leftovers(spool)
    now = time.time()
    assert purge_leftovers(spool, max_age=3600, now=now) == 0
    assert all(p.exists() for p in leftovers.values())
    assert purge_leftovers(spool, max_age=3600, now=now + 7200) == len(leftovers)
    assert not any(os.path.lexists(p) for p in leftovers.values())
    assert (spool.data / live.id / "0").exists()
    assert (spool.data / taken_in.id / "0").exists()
    assert visible(spool.new) == [f"{live.id}.req"]


def test_purge_leftovers_uses_the_file_servers_clock_by_default(spool: Spool) -> None:
    leftovers = make_leftovers(spool)
    past = time.time() - 7200
    for path in leftovers.values():
        os.utime(path, (past, past))
    assert purge_leftovers(spool, max_age=3600) == len(leftovers)


# ---------------------------------------------------------------------------
# claiming


def test_two_intakes_claim_each_request_exactly_once(spool: Spool, tmp_path: Path) -> None:
    reqs = [submit(spool, tmp_path) for _ in range(10)]
    names = [f"{r.id}.req" for r in reqs]
    a, b = Intake(spool), Intake(spool)
    won_a: list[str] = []
    won_b: list[str] = []
    for name in names:
        first, second = (a, b) if random.random() < 0.5 else (b, a)
        pa = first.claim(name)
        pb = second.claim(name)
        assert (pa is None) != (pb is None)
        (won_a if (pa is not None) == (first is a) else won_b).append(name)
    assert sorted(won_a + won_b) == sorted(names)
    assert visible(spool.received) == sorted(names)
    assert os.listdir(spool.new) == []


def test_two_intakes_taking_the_same_names(spool: Spool, tmp_path: Path) -> None:
    reqs = [submit(spool, tmp_path) for _ in range(6)]
    names = [f"{r.id}.req" for r in reqs]
    a, b = Intake(spool), Intake(spool)
    taken_a, rej_a = a.take(names[:4])
    taken_b, rej_b = b.take(names)  # races over the first four, which are gone
    assert rej_a == rej_b == []
    got = sorted(t.request.id for t in taken_a + taken_b)
    assert got == sorted(r.id for r in reqs)


def _claimer(root: str, names: list[str], barrier: Any, out: Any) -> None:
    intake = Intake(Spool(Path(root)))
    barrier.wait()
    won = [n for n in names if intake.claim(n) is not None]
    out.put(won)


@pytest.mark.slow
def test_claim_race_between_processes(spool: Spool) -> None:
    names = [f"{i}.req" for i in make_ids(300)]
    for name in names:
        write(spool.new / name, b"{}")
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(4)
    out = ctx.Queue()
    procs = []
    for seed in range(4):
        order = names[:]
        random.Random(seed).shuffle(order)
        procs.append(ctx.Process(target=_claimer, args=(str(spool.root), order, barrier, out)))
    for p in procs:
        p.start()
    results = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    claimed = [n for won in results for n in won]
    assert sorted(claimed) == sorted(names)  # each exactly once
    assert visible(spool.received) == sorted(names)
    assert os.listdir(spool.new) == []
    assert [n for n in os.listdir(spool.received) if n.startswith(".")] == []


def test_finish_claims_completes_a_half_done_claim(spool: Spool, tmp_path: Path) -> None:
    req = submit(spool, tmp_path)
    ctl = Submitter(spool, user="alice", station="ws1").control(ControlAction.CANCEL, [req.id])
    for name in (f"{req.id}.req", f"{ctl.id}.ctl"):
        # a server died between the two renames of its claim
        os.rename(spool.new / name, spool.received / unique_name("." + name))
    intake = Intake(spool)
    assert intake.take() == ([], [])  # nothing visible in new/
    assert intake.finish_claims() == 2
    assert visible(spool.received) == sorted([f"{req.id}.req", f"{ctl.id}.ctl"])
    assert [n for n in os.listdir(spool.received) if n.startswith(".")] == []
    from printnet.spool.master import received_requests

    assert received_requests(spool) == {req.id: req}
    assert intake.finish_claims() == 0


def test_a_claim_error_does_not_lose_the_batch(
    spool: Spool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    reqs = [submit(spool, tmp_path) for _ in range(3)]
    intake = Intake(spool)
    real_claim = intake.claim

    def claim(name: str) -> Path | None:
        if name.startswith(reqs[1].id):
            raise SpoolError("new/...: Stale file handle")
        return real_claim(name)

    monkeypatch.setattr(intake, "claim", claim)
    taken, rejected = intake.take()
    assert rejected == []
    assert sorted(t.request.id for t in taken) == sorted([reqs[0].id, reqs[2].id])
    assert visible(spool.new) == [f"{reqs[1].id}.req"]  # left for the next scan


# ---------------------------------------------------------------------------
# rejection


def _good(spool: Spool, tmp_path: Path) -> tuple[PrintRequest, Path]:
    req = submit(spool, tmp_path)
    return req, spool.new / f"{req.id}.req"


def _bad_json(spool: Spool, tmp_path: Path) -> str:
    _, path = _good(spool, tmp_path)
    path.write_bytes(b'{"printnet": 1, "kind": "print", ')
    return path.name


def _wrong_id(spool: Spool, tmp_path: Path) -> str:
    _, path = _good(spool, tmp_path)
    other = make_ids(1, start_ms=1_700_000_000_000)[0] + ".req"
    os.rename(path, spool.new / other)
    return other


def _wrong_kind(spool: Spool, tmp_path: Path) -> str:
    ctl = Submitter(spool, user="alice", station="ws1").control(
        ControlAction.CANCEL, make_ids(1))
    os.rename(spool.new / f"{ctl.id}.ctl", spool.new / f"{ctl.id}.req")
    return f"{ctl.id}.req"


def _other_owner(spool: Spool, tmp_path: Path) -> str:
    _, path = _good(spool, tmp_path)  # says user "alice"
    os.chown(path, 65534, 65534)  # but belongs to nobody
    return path.name


def _missing_data(spool: Spool, tmp_path: Path) -> str:
    req, path = _good(spool, tmp_path)
    shutil.rmtree(spool.data / req.id)
    return path.name


def _size_mismatch(spool: Spool, tmp_path: Path) -> str:
    req, path = _good(spool, tmp_path)
    with open(spool.data / req.id / "0", "ab") as fh:
        fh.write(b"more")
    return path.name


def _extra_data_file(spool: Spool, tmp_path: Path) -> str:
    req, path = _good(spool, tmp_path)
    write(spool.data / req.id / "1", b"sneaky")
    return path.name


def _symlink(spool: Spool, tmp_path: Path) -> str:
    _, path = _good(spool, tmp_path)
    target = tmp_path / "elsewhere.req"
    os.rename(path, target)
    path.symlink_to(target)
    return path.name


def _fifo(spool: Spool, tmp_path: Path) -> str:
    name = fresh_name()
    os.mkfifo(spool.new / name)
    return name


def _directory(spool: Spool, tmp_path: Path) -> str:
    name = fresh_name()
    (spool.new / name).mkdir()
    return name


def _empty(spool: Spool, tmp_path: Path) -> str:
    name = fresh_name()
    write(spool.new / name, b"")
    return name


def _bad_name(spool: Spool, tmp_path: Path) -> str:
    write(spool.new / "foo.txt", b"hello")
    return "foo.txt"


def _huge(spool: Spool, tmp_path: Path) -> str:
    name = fresh_name()
    write(spool.new / name, b" " * (300 * 1024))
    return name


REJECTIONS: dict[str, tuple[Callable[[Spool, Path], str], str]] = {
    "bad-json": (_bad_json, "request: not a JSON object"),
    "wrong-id": (_wrong_id, "does not match the file name"),
    "wrong-kind": (_wrong_kind, "kind:"),
    "other-owner": (_other_owner, "user: says 'alice' but the file belongs to 'nobody'"),
    "missing-data": (_missing_data, "data folder is missing"),
    "size-mismatch": (_size_mismatch, "files[0]: size"),
    "extra-data-file": (_extra_data_file, "does not hold the files listed"),
    "symlink": (_symlink, "symbolic link"),
    "fifo": (_fifo, "not a regular file"),
    "directory": (_directory, "is a directory"),
    "empty": (_empty, "empty file"),
    "bad-name": (_bad_name, "name: not a request file name"),
    "huge": (_huge, "larger than"),
}


@pytest.mark.parametrize("case", sorted(REJECTIONS))
def test_rejections_land_in_rejected_with_a_reason(
    spool: Spool, tmp_path: Path, case: str,
) -> None:
    if case == "other-owner" and not IS_ROOT:
        pytest.skip("needs root to give a file away")
    make, expected = REJECTIONS[case]
    name = make(spool, tmp_path)
    taken, rejected = Intake(spool).take()
    assert taken == []
    assert len(rejected) == 1 and rejected[0][0] == name
    assert expected in rejected[0][1]
    assert visible(spool.new) == []
    assert visible(spool.received) == []
    assert os.path.lexists(spool.rejected / name)
    reason = (spool.rejected / f"{name}.reason").read_text()
    assert reason.startswith(f"{name}: ")
    assert expected in reason
    assert reason.count("\n") == 1


def test_good_requests_next_to_bad_ones_are_taken(spool: Spool, tmp_path: Path) -> None:
    good = [submit(spool, tmp_path) for _ in range(2)]
    _fifo(spool, tmp_path)
    _bad_name(spool, tmp_path)
    _empty(spool, tmp_path)
    taken, rejected = Intake(spool).take()
    assert sorted(t.request.id for t in taken) == sorted(r.id for r in good)
    assert len(rejected) == 3
    assert visible(spool.new) == []


@pytest.mark.skipif(not IS_ROOT, reason="needs root to give files away")
def test_a_user_may_submit_under_their_own_name(spool: Spool, tmp_path: Path) -> None:
    req = submit(spool, tmp_path, user="nobody")
    os.chown(spool.new / f"{req.id}.req", 65534, 65534)
    os.chown(spool.data / req.id, 65534, 65534)
    [t], rejected = Intake(spool).take()
    assert rejected == []
    assert (t.request.user, t.owner) == ("nobody", "nobody")


@pytest.mark.skipif(not IS_ROOT, reason="needs root to give files away")
def test_data_belonging_to_someone_else_is_rejected(spool: Spool, tmp_path: Path) -> None:
    req = submit(spool, tmp_path, user="nobody")
    os.chown(spool.new / f"{req.id}.req", 65534, 65534)  # data stays root's
    taken, [(name, reason)] = Intake(spool).take()
    assert taken == [] and "belongs to someone else" in reason
    assert name == f"{req.id}.req"


def test_unreadable_data_is_rejected_not_raised(
    spool: Spool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    req = submit(spool, tmp_path)
    real_listdir = os.listdir

    def listdir(path: Any = ".") -> list[str]:
        if Path(path) == spool.data / req.id:
            raise PermissionError(13, "Permission denied")
        return real_listdir(path)

    monkeypatch.setattr(os, "listdir", listdir)
    taken, [(_, reason)] = Intake(spool).take()
    assert taken == [] and "Permission denied" in reason


def test_server_check_callback_rejects(spool: Spool, tmp_path: Path) -> None:
    from printnet.errors import RequestInvalid
    from printnet.model import Request

    def check(request: Request) -> None:
        if isinstance(request, PrintRequest) and request.printer == "NOPE":
            raise RequestInvalid("printer", "unknown printer 'NOPE'")

    submit(spool, tmp_path, printer="NOPE")
    ok = submit(spool, tmp_path)
    taken, rejected = Intake(spool, check=check).take()
    assert [t.request.id for t in taken] == [ok.id]
    assert "printer: unknown printer" in rejected[0][1]


def test_rejected_names_never_collide(spool: Spool, tmp_path: Path) -> None:
    for _ in range(2):
        _bad_name(spool, tmp_path)
        Intake(spool).take()
    rejected = visible(spool.rejected)
    assert len([n for n in rejected if n.endswith(".reason")]) == 2
    reasons = [json.dumps((spool.rejected / n).read_text()) for n in rejected
               if n.endswith(".reason")]
    assert all("not a request file name" in r for r in reasons)
