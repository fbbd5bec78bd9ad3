"""Host-local presence (`printnet.server.presence`): a kernel-released flock says
"my predecessor of this name on this host is dead", where a pid could lie.

Real processes: a holder killed with -9, and real `printnet server` processes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers_e2e import (
    PrinterSpec,
    ServerProcess,
    logs,
    make_etc,
    published,
    server_env,
    start_server,
    wait_for,
)

from printnet.server import server_lock_name
from printnet.server.presence import Presence, running
from printnet.spool.layout import Spool
from printnet.spool.lock import ExpiringLock, LockTable

HOLDER = """
import sys, time
from pathlib import Path
from printnet.server.presence import Presence
presence = Presence(sys.argv[1], Path(sys.argv[2]))  # kept: released when collected
assert presence.acquire()
print("held", flush=True)
time.sleep(600)
"""


@pytest.fixture
def servers() -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for s in started:
        if s.poll() is None:
            s.kill9()


def test_one_presence_per_name_and_it_dies_with_its_process(tmp_path: Path) -> None:
    run = tmp_path / "run"
    mine = Presence("alpha", run)
    assert running("ALPHA", run) is None  # nobody ever ran: unknown
    assert mine.acquire()
    assert not Presence("ALPHA", run).acquire()  # names are case-insensitive
    assert running("alpha", run) is True
    mine.release()
    assert running("alpha", run) is False

    holder = subprocess.Popen([sys.executable, "-c", HOLDER, "beta", str(run)],
                              stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        assert running("beta", run) is True and not Presence("beta", run).acquire()
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(10)
        wait_for(lambda: running("beta", run) is False, 10, "the kernel releases the flock")
        assert Presence("beta", run).acquire()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()


def test_a_planted_runtime_folder_is_not_trusted(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir(mode=0o777)
    run.chmod(0o777)  # others may write: anyone could hold (or fake) a presence here
    assert not Presence("alpha", run).acquire()
    assert running("alpha", run) is None


def test_a_lease_naming_a_live_pid_is_taken_over_when_its_name_is_free(
        tmp_path: Path, servers: list[ServerProcess]) -> None:
    """Pid reuse: the dead predecessor's pid now belongs to a live process (here: this
    test).  The presence flock is free, so the lease is taken over at once; a pid
    check would have waited 2.5 leases (75 s) and then refused to start."""
    root = tmp_path / "spool"
    spool, _ = Spool.init(root)
    env = server_env(tmp_path / "run")
    etc = make_etc(tmp_path / "s1", "S1", [root],
                   [PrinterSpec("R1", tmp_path / "s1/out/R1.prn")], lease=30.0)
    # The predecessor's lease, never renewed, recorded with a live pid (ours).
    ghost = ExpiringLock(LockTable(spool.locks), server_lock_name("S1"), lease=30.0,
                         holder="S1")
    assert ghost.try_acquire()
    started = time.monotonic()
    server = start_server(etc, "S1", env=env)
    servers.append(server)
    wait_for(lambda: published(root, "S1"), 20, "S1 up", on_timeout=lambda: logs(servers))
    assert time.monotonic() - started < 20  # the lease (30 s) is far from stale
    assert f"took over the lease of dead process {os.getpid()}" in server.log_text()


def test_a_live_server_of_the_same_name_is_not_taken_over(
        tmp_path: Path, servers: list[ServerProcess]) -> None:
    root = tmp_path / "spool"
    Spool.init(root)
    env = server_env(tmp_path / "run")
    first = start_server(make_etc(tmp_path / "s1", "S1", [root],
                                  [PrinterSpec("R1", tmp_path / "s1/out/R1.prn")], lease=1.0),
                         "S1", env=env)
    servers.append(first)
    wait_for(lambda: published(root, "S1"), 20, "S1 up", on_timeout=lambda: logs(servers))
    second = start_server(make_etc(tmp_path / "s2", "S1", [root],
                                   [PrinterSpec("R2", tmp_path / "s2/out/R2.prn")], lease=1.0),
                          "S1", env=env)
    servers.append(second)
    assert second.wait(30) != 0  # waited 2.5 leases for the live one, then refused
    assert "is already running" in second.log_text()
    assert "may run on this host" in second.log_text()
    assert first.poll() is None and "took over" not in second.log_text()


def test_a_server_killed_with_9_is_taken_over_at_once(
        tmp_path: Path, servers: list[ServerProcess]) -> None:
    root = tmp_path / "spool"
    Spool.init(root)
    env = server_env(tmp_path / "run")
    etc = make_etc(tmp_path / "s1", "S1", [root],
                   [PrinterSpec("R1", tmp_path / "s1/out/R1.prn")], lease=30.0)
    first = start_server(etc, "S1", env=env)
    servers.append(first)
    wait_for(lambda: published(root, "S1"), 20, "S1 up", on_timeout=lambda: logs(servers))
    first.kill9()
    started = time.monotonic()
    second = start_server(etc, "S1", env=env)
    servers.append(second)
    wait_for(lambda: f"took over the lease of dead process {first.pid}" in second.log_text(),
             20, "the lease taken over", on_timeout=lambda: logs(servers))
    assert time.monotonic() - started < 20  # not the 37.5 s a stale lease takes
    assert second.stop() == 0, second.log_text()
