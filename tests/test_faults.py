"""Faults: a full spool, I/O errors and stale handles on the share, a share that goes away.

* The spool on a small tmpfs fills up during a submit and during master
  commits: a clear error, and nothing lost or corrupted once space returns.
* GlusterFS (`shared_fs`): another host replaces folders under a running server
  (its cached handles go stale); the share injects errors into a share's
  operations (Gluster's ``debug/error-gen``: EIO and friends on a fraction of
  calls); a host is cut off from the file server (its mount fails with ENOTCONN
  after the ping timeout) while its server also serves a local disk: the other
  disk keeps being served, the cut one is picked up again when it returns, and
  the server still stops on SIGTERM.  Every process touching a mount that may
  be cut runs as a child with a deadline.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import shared_fs
from _ci_strict import require, unavailable
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
)
from reliability import PrinterSpec as ShareSpec
from reliability import ServerProc
from reliability import make_etc as make_share_etc
from shared_fs import SharedFS

from printnet.errors import SpoolFull
from printnet.model import Format, PrintRequest, Priority
from printnet.printers.simctl import sim_control
from printnet.spool import master as master_io
from printnet.spool.layout import Spool
from printnet.spool.publish import TRANSIENT_ERRNOS
from printnet.spool.submit import Source, Submitter

# -- a full spool -------------------------------------------------------------------------


@contextlib.contextmanager
def small_disk(where: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` at `where` (without root or tmpfs: skipped, in CI failed)."""
    where.mkdir(parents=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs",
                           str(where)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        unavailable(f"cannot mount a tmpfs: {proc.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _fill(folder: Path) -> Path:
    """Write a filler file until the disk is full; returns it."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        for size in (65536, 4096, 512, 1):
            with contextlib.suppress(OSError):
                while os.write(fd, b"\0" * size):
                    pass
    finally:
        os.close(fd)
    return filler


def _template(printer: str = "P1") -> PrintRequest:
    from datetime import UTC, datetime

    return PrintRequest(id="0" * 18, user="root", station="ws", submitted=datetime.now(UTC),
                        printer=printer, priority=Priority.STANDARD, copies=1, title="t",
                        setup=None, header=True, format=Format.TEXT, hold=False)


def _visible(folder: Path) -> list[str]:
    return sorted(n for n in os.listdir(folder) if not n.startswith("."))


def test_a_full_spool_refuses_a_submit_cleanly(tmp_path: Path) -> None:
    with small_disk(tmp_path / "small", "1m") as disk:
        spool, _ = Spool.init(disk / "spool")
        sub = Submitter(spool, user="root", station="ws")
        big = tmp_path / "big.txt"
        big.write_bytes(b"x" * (2 << 20))
        with pytest.raises(SpoolFull, match="no space left"):
            sub.submit(_template(), [Source("big.txt", path=big)])
        assert _visible(spool.new) == [] and _visible(spool.data) == []
        assert os.listdir(spool.tmp) == []
        # The CLI says so and exits non-zero.
        # Its own etc (the default one, printer LOCAL), never ./etc.
        from printnet import config as config_mod

        config_mod.write_defaults(tmp_path / "etc")
        proc = subprocess.run([shared_fs.PYTHON, "-m", "printnet", "--spool", str(spool.root),
                               "--etc", str(tmp_path / "etc"), "request", "-P", "LOCAL",
                               str(big)], capture_output=True, text=True, check=False,
                              timeout=60)
        assert proc.returncode != 0 and "space" in proc.stderr, proc.stderr
        # At every level of fullness a submit either publishes a whole job or nothing.
        small = tmp_path / "small.txt"
        small.write_bytes(b"y" * 3000)
        filler = _fill(disk)
        outcomes = []
        for _ in range(12):
            try:
                req = sub.submit(_template(), [Source("small.txt", path=small)])
                outcomes.append("ok")
                assert (spool.new / f"{req.id}.req").exists()
                assert (spool.data / req.id / "0").stat().st_size == 3000
            except SpoolFull:
                outcomes.append("full")
            # Free a little more space each round.
            size = filler.stat().st_size
            os.truncate(filler, max(0, size - 2048))
        assert "full" in outcomes and "ok" in outcomes, outcomes
        for name in _visible(spool.new):
            job = name[:-4]
            assert (spool.data / job / "0").stat().st_size == 3000, name


@pytest.mark.slow
def test_a_spool_filling_up_during_commits_loses_nothing(tmp_path: Path) -> None:
    """Jobs taken in and printing when the disk fills: their done records and the
    master file's journal cannot be written.  The server says so, keeps going, and
    finishes every job exactly once when space returns; the master file stays
    readable throughout."""
    with small_disk(tmp_path / "small", "4m") as disk:
        spool, _ = Spool.init(disk / "spool")
        out = tmp_path / "S1" / "out" / "P1.prn"
        etc = make_etc(tmp_path / "S1", "S1", [spool.root],
                       [PrinterSpec("P1", out, baud="inf", stall=0.5, retry=0.2)])
        server = start_server(etc, "S1", env=server_env(tmp_path / "run"))
        try:
            wait_for(lambda: published(spool.root, "S1"), 30, "S1 to start",
                     on_timeout=lambda: logs([server]))
            sim_control(out, "offline")
            sub = Submitter(spool, user="root", station="ws")
            src = tmp_path / "a.txt"
            src.write_text("a job\n")
            first = [sub.submit(_template(), [Source("a.txt", path=src)]).id for _ in range(4)]
            wait_for(lambda: set(first) <= set(master_io.load(spool).jobs), 30,
                     "the jobs to be taken in", on_timeout=lambda: logs([server]))
            # A request staged before the disk fills, published after (a rename
            # needs no space): taken in while the disk is full.
            late = sub.submit_many([(_template(), [Source("a.txt", path=src)])])
            assert late
            filler = _fill(disk)
            with pytest.raises(SpoolFull):
                sub.submit(_template(), [Source("a.txt", path=src)])
            sim_control(out, "online")
            wait_for(lambda: "no space left" in server.log_text(), 30,
                     "the server to report the full disk", on_timeout=lambda: logs([server]))
            assert server.poll() is None
            master_io.load(spool)  # readable, whatever failed
            filler.unlink()
            jobs = first + [r.id for r in late]
            wait_for(lambda: all(done_records(spool.root).get(j, {}).get("outcome")
                                 == "completed" for j in jobs), 60,
                     "every job to finish once space returned",
                     on_timeout=lambda: logs([server]))
            printed = printed_ids(out)
            assert sorted(printed) == sorted(jobs), printed
            wait_for(lambda: not master_io.load(spool).jobs, 20, "an empty master file")
        finally:
            code = server.stop()
        assert code == 0
        assert "Traceback" not in server.log_text()


# -- GlusterFS faults ---------------------------------------------------------------------


@pytest.fixture(scope="session")
def gluster_session() -> Iterator[None]:
    yield
    shared_fs.shutdown()


@pytest.fixture(scope="session")
def nfs_share(gluster_session: None) -> SharedFS:
    tier = "env" if os.environ.get("PRINTNET_TEST_SHARED") else "nfs"
    return require("no shared filesystem here", lambda: shared_fs.shared(tier),
                   shared_fs.Unavailable)


def _submit(host: shared_fs.Host, spool: Path, log: Path, n: int, printer: str = "P1"
            ) -> list[tuple[str, str]]:
    before = log.read_text().splitlines() if log.exists() else []
    host.probe("tokens", str(spool), str(log), printer, str(n), timeout=120)
    return [(p[0], p[1]) for p in (line.split() for line in
                                   log.read_text().splitlines()[len(before):])]


def _done(host: shared_fs.Host, spool: Path) -> dict[str, Any]:
    return dict(host.probe("state", str(spool), timeout=60)["done"])


@pytest.mark.slow
@pytest.mark.multihost
@pytest.mark.timeout(600)
def test_stale_handles_under_a_running_server(nfs_share: SharedFS, tmp_path: Path) -> None:
    """Host B replaces new/ and data/ folders (as a restore from backup would) under a
    server on host A: its cached handles go stale; it keeps taking jobs in."""
    a, b = nfs_share.hosts
    rel = nfs_share.fresh("stale")
    spool_a, spool_b = a.mount / rel / "spool", b.mount / rel / "spool"
    a.probe("init", str(spool_a))
    folder = tmp_path / "SA"
    make_share_etc(folder, name="SA", spools=[spool_a], printers=[ShareSpec("P1")],
                   lease=2.0)
    server = ServerProc(a, "SA", folder)
    server.start()
    log = tmp_path / "station.log"
    try:
        jobs = _submit(b, spool_b, log, 3)
        wait_for(lambda: all(i in _done(b, spool_b) for i, _ in jobs), 60,
                 "the first jobs")
        for name in ("new", "tmp", "done"):
            b.run(["sh", "-c", f"cd {spool_b} && mv {name} {name}.old && mkdir {name} && "
                   f"chmod --reference={name}.old {name} && "
                   f"(mv {name}.old/* {name}/ 2>/dev/null; true) && rm -rf {name}.old"],
                  timeout=60)
        more = _submit(b, spool_b, log, 3)
        wait_for(lambda: all(_done(b, spool_b).get(i, {}).get("outcome") == "completed"
                             for i, _ in jobs + more), 60, "jobs after the folders changed",
                 on_timeout=server.log_text)
        assert server.alive, server.log_text()
        counts = server.printed()
        assert all(counts.get(t) == 1 for _, t in jobs + more), counts
    finally:
        server.stop()
        nfs_share.reap()
    assert "Traceback" not in server.log_text()


@pytest.mark.slow
@pytest.mark.multihost
@pytest.mark.timeout(600)
def test_a_share_that_goes_away_and_comes_back(nfs_share: SharedFS, tmp_path: Path) -> None:
    """Server SC on host C serves a Gluster spool and a local one.  Host C is cut off:
    the local spool keeps printing; jobs for the Gluster spool (submitted from host A)
    wait; when host C is back they print, each once; SIGTERM still stops SC."""
    if not nfs_share.can_cut:
        pytest.skip("this share cannot be cut off")
    a = nfs_share.a
    c = nfs_share.extra_host("hostc")
    rel = nfs_share.fresh("away")
    shared_a, shared_c = a.mount / rel / "spool", c.mount / rel / "spool"
    a.probe("init", str(shared_a))
    local, _ = Spool.init(tmp_path / "local")
    folder = tmp_path / "SC"
    make_share_etc(folder, name="SC", spools=[shared_c, local.root],
                   printers=[ShareSpec("P1")], lease=2.0)
    server = ServerProc(c, "SC", folder)
    server.start()
    log = tmp_path / "station.log"
    local_log = tmp_path / "local.log"
    try:
        wait_for(lambda: published(local.root, "SC"), 30, "SC to start",
                 on_timeout=server.log_text)
        before = _submit(a, shared_a, log, 2)
        wait_for(lambda: all(i in _done(a, shared_a) for i, _ in before), 60,
                 "jobs on the shared spool", on_timeout=server.log_text)
        nfs_share.cut(c)
        try:
            t0 = time.monotonic()
            # The local disk is served while the other one is gone.
            local_jobs = _submit(nfs_share.a, local.root, local_log, 3)
            wait_for(lambda: all(done_records(local.root).get(i, {}).get("outcome")
                                 == "completed" for i, _ in local_jobs), 45,
                     "the local spool's jobs while the share is cut off",
                     on_timeout=server.log_text)
            served_in = time.monotonic() - t0
            during = _submit(a, shared_a, log, 3)
            assert server.alive, server.log_text()
        finally:
            nfs_share.restore(c)
        wait_for(lambda: all(_done(a, shared_a).get(i, {}).get("outcome") == "completed"
                             for i, _ in during), 90,
                 "the shared spool's jobs once host C is back", on_timeout=server.log_text)
        counts = server.printed()
        for _, token in before + local_jobs + during:
            assert counts.get(token) == 1, (token, counts)
        assert served_in < 45
        # Cut off again, a SIGTERM still stops the server in bounded time.
        nfs_share.cut(c)
        try:
            t0 = time.monotonic()
            server.stop(timeout=90)
            stopped_in = time.monotonic() - t0
        finally:
            nfs_share.restore(c)
        assert stopped_in < 60, stopped_in
    finally:
        server.stop()
        nfs_share.reap()
        c.reap()
    text = server.log_text()
    assert "Traceback" not in text, text


def _stuck(host: shared_fs.Host, spool: Path, server: ServerProc) -> str:
    """What a test that waited in vain for a server shows: locks first (a lock that
    nobody can take again stops every cycle silently), then the spool, then the log."""
    state = dict(host.probe("state", str(spool), timeout=60))
    out = [f"locks: {json.dumps(state.get('locks'))}",
           f"lock files: {json.dumps(state.get('lockfiles'))}",
           f"master: {len(state['master'])} jobs, received/: {len(state['received'])}, "
           f"new/: {len(state['new'])}",
           json.dumps(state)[-2000:], server.log_text()[-4000:]]
    import shutil
    if shutil.which("py-spy") and server.proc is not None:  # where it is, if installed
        out.append(subprocess.run(["py-spy", "dump", "-s", "--pid", str(server.proc.pid)],
                                  capture_output=True, text=True, check=False).stdout)
    return "\n".join(out)


# printnet's words for errnos it believes (a request's own fault, not the share's),
# where they are not the errno's strerror.
OWN_WORDS = {"missing": "ENOENT", "is a symbolic link": "ELOOP"}

FLAKY_FOPS = ("lookup", "stat", "fstat", "open", "create", "readv", "writev", "flush",
              "fsync", "link", "rename", "unlink", "mkdir", "readdirp", "setattr", "fsetattr")


@pytest.mark.slow
@pytest.mark.multihost
@pytest.mark.timeout(600)
def test_a_share_that_fails_some_calls(tmp_path: Path) -> None:
    """For 15 s, 5 % of the share's calls fail, on both hosts' clients, while a station
    on host B submits and a server on host A prints.  Gluster's error-gen returns any
    errno a call can have, including lies no real share tells (ENOENT or EACCES for
    a file that exists).  A lie about the job itself (EACCES on its request, ENOENT
    on its data folder...) is one printnet must believe: that job is refused or
    aborted, and nothing can avoid it.  So, precisely: every accepted job completes,
    except those ended -- while the errors were on -- for a reason that names an
    errno printnet believes; none ends on an error it must retry (EIO, ESTALE,
    ENOTCONN, ENOMEM, ...); a job printed twice was in flight during the errors; the
    server survives, nothing is left behind, and once the share behaves every new
    job prints exactly once.  (With errors that never lie -- EIO only -- nothing at
    all may be lost: the EIO-only FUSE injector's test.)"""
    if os.environ.get("PRINTNET_TEST_SHARED"):
        pytest.skip("errors can only be injected into the fixture's own share")
    share = require("no shared filesystem here", lambda: shared_fs.shared("flaky"),
                    shared_fs.Unavailable)
    a, b = share.hosts
    rel = share.fresh("flaky")
    spool_a, spool_b = a.mount / rel / "spool", b.mount / rel / "spool"
    a.probe("init", str(spool_a))
    folder = tmp_path / "SA"
    make_share_etc(folder, name="SA", spools=[spool_a], printers=[ShareSpec("P1")], lease=3.0)
    server = ServerProc(a, "SA", folder)
    server.start()
    log = tmp_path / "station.log"
    stop = tmp_path / "stop"
    errors = open(tmp_path / "station.err", "wb")  # noqa: SIM115 - closed below
    station = b.popen([shared_fs.PYTHON, str(shared_fs.TOOLS), "station", str(spool_b),
                       str(log), "P1", "4", str(stop)], stdout=subprocess.DEVNULL,
                      stderr=errors)
    try:
        wait_for(lambda: log.exists() and len(log.read_text().splitlines()) >= 5, 60,
                 "the first accepted jobs", on_timeout=server.log_text)
        inject_on = time.time()
        share.inject(5, FLAKY_FOPS)
        try:
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and station.poll() is None:
                time.sleep(0.5)
        finally:
            share.inject(0, FLAKY_FOPS)
        inject_off, inject_off_mono = time.time(), time.monotonic()
        stop.write_text("stop\n")
        assert station.wait(60) == 0, (tmp_path / "station.err").read_text()[-3000:]
        accepted = [line.split() for line in log.read_text().splitlines()]
        assert len(accepted) >= 10, len(accepted)

        def ended() -> dict[str, Any] | None:
            state = dict(a.probe("state", str(spool_a), timeout=60))
            refused = {n[:-4] for n in state["rejected"]}
            if all(i in refused or state["done"].get(i, {}).get("outcome")
                   for i, *_ in accepted):
                return state
            return None
        state = wait_for(ended, 120, "every accepted job to end",
                         on_timeout=lambda: _stuck(a, spool_a, server))
        assert state is not None

        def reasoned() -> dict[str, Any] | None:
            # A rejection's reason file may come a cycle late (the share refused it).
            state = dict(a.probe("state", str(spool_a), timeout=60))
            refused = [i for i, *_ in accepted if f"{i}.req" in state["rejected"]]
            return state if all(f"{i}.req" in state["reasons"] for i in refused) else None
        state = wait_for(reasoned, 30, "a reason for every rejected job",
                         on_timeout=lambda: server.log_text()[-3000:])
        counts = server.printed()
        believed = {os.strerror(e): name for e, name in errno.errorcode.items()
                    if e not in TRANSIENT_ERRNOS}
        retried = {os.strerror(e): errno.errorcode[e] for e in TRANSIENT_ERRNOS}
        unavoidable: list[str] = []
        for job_id, token, _, _, _, _, submitted in accepted:
            rec = state["done"].get(job_id)
            outcome = rec["outcome"] if rec else "rejected"
            n = counts.get(token, 0)
            if outcome == "completed":
                assert n >= 1, f"{job_id}: completed, never printed"
                assert n == 1 or float(submitted) <= inject_off_mono, (
                    f"{job_id}: printed {n} times, submitted after the errors stopped")
                continue
            reason = (rec["reason"] if rec else state["reasons"].get(f"{job_id}.req")) or ""
            assert reason, f"{job_id}: {outcome} without a reason"
            wrong = [name for text, name in retried.items() if text.lower() in reason.lower()]
            assert not wrong, f"{job_id}: {outcome} on an error printnet must retry: {reason}"
            named = [name for text, name in believed.items() if text.lower() in reason.lower()]
            # (Case aside: printnet says "is a directory" for EISDIR from open().)  Its
            # own words for the others it believes: `OWN_WORDS`.
            if not named:
                named = [name for words, name in OWN_WORDS.items() if words in reason]
            assert named, f"{job_id}: {outcome} for a reason no injected error explains: {reason}"
            stamp = state["stamps"][job_id]
            assert inject_on - 2 <= stamp <= inject_off + 10, (
                f"{job_id}: {outcome} at {stamp - inject_on:+.1f}s, outside the errors "
                f"({inject_off - inject_on:.1f}s): {reason}")
            assert outcome != "rejected" or n == 0, f"{job_id}: rejected, yet printed"
            unavoidable.append(f"{job_id}: {outcome} ({'/'.join(named)}): {reason.strip()}")
        # The share behaves again: new jobs print exactly once, nothing is left over.
        after = _submit(b, spool_b, tmp_path / "after.log", 5)
        wait_for(lambda: all(_done(a, spool_a).get(i, {}).get("outcome") == "completed"
                             for i, _ in after), 60, "jobs after the errors stopped",
                 on_timeout=lambda: server.log_text()[-5000:])
        counts = server.printed()
        assert all(counts.get(t) == 1 for _, t in after), counts
        def settled() -> dict[str, Any] | None:
            state = dict(a.probe("state", str(spool_a), timeout=60))
            left = [n for n in state["received"] if n.endswith(".req")]
            return None if state["master"] or state["new"] or left else state
        wait_for(settled, 60, "master, new/ and received/ to be empty",
                 on_timeout=lambda: json.dumps(a.probe("state", str(spool_a)))[-3000:])
        assert server.alive, server.log_text()[-5000:]
        print(f"accepted {len(accepted)}, ended by an injected lie {len(unavoidable)}:")
        print("\n".join(unavoidable))
    finally:
        if station.poll() is None:
            station.kill()
            station.wait(10)
        errors.close()
        server.stop()
        share.reap()
    assert "Traceback" not in server.log_text(), server.log_text()[-5000:]
