"""The filesystem primitives (printnet.spool.publish): a published file is whole or
absent, put-if-absent has exactly one winner among real racing processes, temp files
never outlive a failure, ESTALE is retried and nothing else is, errors are translated.
"""

from __future__ import annotations

import errno
import multiprocessing
import os
import stat
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest

from printnet.errors import SpoolError, SpoolFull
from printnet.spool.publish import (
    ESTALE_TRIES,
    fsync_file,
    link_new,
    retry_estale,
    translate,
    unique_name,
    write_all,
    write_atomic,
    write_new,
    write_temp,
)


def listing(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


def test_write_atomic_replaces_whole_and_leaves_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "f.json"
    write_atomic(path, b"one\n")
    inode = os.stat(path).st_ino
    write_atomic(path, b"two, longer\n", mode=0o600)
    assert path.read_bytes() == b"two, longer\n"
    assert os.stat(path).st_ino != inode  # a new file renamed over, not edited in place
    assert listing(tmp_path) == ["f.json"]


def test_write_new_refuses_an_existing_name_and_keeps_it(tmp_path: Path) -> None:
    path = tmp_path / "j.1"
    write_new(path, b"first")
    with pytest.raises(FileExistsError):
        write_new(path, b"second")
    assert path.read_bytes() == b"first"
    assert listing(tmp_path) == ["j.1"]


def _racer(folder: str, names: int, barrier: Barrier,
           wins: multiprocessing.queues.Queue[int]) -> None:
    barrier.wait()
    me = str(os.getpid()).encode()
    won = 0
    for i in range(names):
        try:
            write_new(Path(folder) / f"n.{i}", me, sync=False)
            won += 1
        except FileExistsError:
            pass
    wins.put(won)


def test_put_if_absent_has_exactly_one_winner_among_processes(tmp_path: Path) -> None:
    """Six real processes publish the same 200 names at once: each name ends up with
    exactly one writer's complete content, and no temp file is left."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(6)
    wins: multiprocessing.queues.Queue[int] = ctx.Queue()
    procs = [ctx.Process(target=_racer, args=(str(tmp_path), 200, barrier, wins))
             for _ in range(6)]
    for p in procs:
        p.start()
    won = [wins.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    assert sum(won) == 200  # nobody believes it won a name another process won
    pids = {str(p.pid) for p in procs}
    assert listing(tmp_path) == sorted(f"n.{i}" for i in range(200))
    winners = {(tmp_path / f"n.{i}").read_text() for i in range(200)}
    assert winners <= pids


def test_link_new_survives_nfs_false_eexist(tmp_path: Path) -> None:
    """A retransmitted link() that succeeded says EEXIST: same inode means we won."""
    src, dest = tmp_path / "src", tmp_path / "dest"
    src.write_bytes(b"x")
    os.link(src, dest)  # the "first transmission" already made it
    link_new(src, dest)  # no error: it is our inode
    other = tmp_path / "other"
    other.write_bytes(b"y")
    with pytest.raises(FileExistsError):
        link_new(other, dest)


def test_write_temp_modes_exact_or_less_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        masked = write_temp(tmp_path, b"a", 0o644)
        exact = write_temp(tmp_path, b"b", 0o644, exact_mode=True)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(masked).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(exact).st_mode) == 0o644
    assert masked.name.startswith(".tmp.") and exact.read_bytes() == b"b"
    named = write_temp(tmp_path, b"c", 0o600, prefix=".server.cmd", sync=False)
    assert named.name.startswith(".server.cmd.")


def test_a_failed_write_leaves_nothing(tmp_path: Path) -> None:
    """A write that fails half-way (here: the data is not bytes) removes its temp file."""
    with pytest.raises(TypeError):
        write_temp(tmp_path, "not bytes", 0o644)  # type: ignore[arg-type]
    assert listing(tmp_path) == []
    with pytest.raises(SpoolError):
        write_atomic(tmp_path / "missing" / "f", b"x")
    assert listing(tmp_path) == []


def test_write_all_writes_everything(tmp_path: Path) -> None:
    path = tmp_path / "big"
    data = os.urandom(3 << 20)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        write_all(fd, data)
    finally:
        os.close(fd)
    fsync_file(path)
    assert path.read_bytes() == data


def test_retry_estale_retries_only_estale() -> None:
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < ESTALE_TRIES:
            raise OSError(errno.ESTALE, "Stale file handle")
        return "ok"

    assert retry_estale(flaky) == "ok" and len(calls) == ESTALE_TRIES

    def always() -> None:
        raise OSError(errno.ESTALE, "Stale file handle")

    with pytest.raises(OSError) as info:
        retry_estale(always)
    assert info.value.errno == errno.ESTALE

    seen: list[int] = []

    def other() -> None:
        seen.append(1)
        raise OSError(errno.EIO, "I/O error")

    with pytest.raises(OSError):
        retry_estale(other)
    assert seen == [1]  # not retried


def test_translate_names_a_full_disk(tmp_path: Path) -> None:
    full = translate(OSError(errno.ENOSPC, "No space left on device"), tmp_path)
    assert isinstance(full, SpoolFull) and "no space left" in str(full)
    assert isinstance(translate(OSError(errno.EDQUOT, "quota"), tmp_path), SpoolFull)
    other = translate(OSError(errno.EACCES, "Permission denied"), tmp_path / "x")
    assert type(other) is SpoolError and str(other) == f"{tmp_path / 'x'}: Permission denied"


def _names(n: int, out: multiprocessing.queues.Queue[list[str]]) -> None:
    out.put([unique_name() for _ in range(n)])


def test_unique_names_differ_across_processes_and_calls() -> None:
    ctx = multiprocessing.get_context("fork")
    out: multiprocessing.queues.Queue[list[str]] = ctx.Queue()
    procs = [ctx.Process(target=_names, args=(500, out)) for _ in range(3)]
    for p in procs:
        p.start()
    names = [unique_name() for _ in range(500)]
    for _ in procs:
        names += out.get(timeout=60)
    for p in procs:
        p.join(60)
    assert len(set(names)) == 2000
    assert all(n.startswith(".tmp.") for n in names)
