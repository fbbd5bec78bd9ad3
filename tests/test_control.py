"""The control channel (`printnet.control`): a real unix socket per server.

Each test has its own runtime folder (PRINTNET_RUNTIME_DIR under tmp_path).
"""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from printnet.control import (
    ControlServer,
    Peer,
    call,
    running_servers,
    safe_name,
    socket_path,
)
from printnet.errors import PermissionDenied, PrintnetError


@pytest.fixture
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "run"
    monkeypatch.setenv("PRINTNET_RUNTIME_DIR", str(folder))
    return folder


def echo(request: dict[str, Any], peer: Peer) -> dict[str, Any]:
    if request.get("boom"):
        raise RuntimeError("the handler broke")
    return {"ok": True, "echo": request, "uid": peer.uid, "pid": peer.pid}


@pytest.fixture
def barcon(run_dir: Path) -> Iterator[ControlServer]:
    events: list[str] = []
    server = ControlServer("BARCON", echo, on_event=events.append)
    assert server.start()
    try:
        yield server
    finally:
        server.stop()


def test_a_request_gets_its_answer_and_the_peer_is_known(barcon: ControlServer) -> None:
    reply = call("BARCON", {"argv": ["I"]})
    assert reply["echo"] == {"argv": ["I"]}
    assert reply["uid"] == os.geteuid() and reply["pid"] == os.getpid()


def test_server_names_are_case_insensitive(barcon: ControlServer) -> None:
    assert safe_name("barcon") == safe_name(" BarCon ") == "BARCON"
    assert call("barcon", {"x": 1})["echo"] == {"x": 1}
    assert running_servers() == ["BARCON"]


def test_folder_and_socket_are_private(barcon: ControlServer, run_dir: Path) -> None:
    assert stat.S_IMODE(os.lstat(run_dir).st_mode) == 0o700
    sock = socket_path("BARCON")
    assert stat.S_ISSOCK(os.lstat(sock).st_mode)
    assert stat.S_IMODE(os.lstat(sock).st_mode) == 0o600


def test_a_handler_error_is_answered_and_the_channel_keeps_serving(
        barcon: ControlServer) -> None:
    reply = call("BARCON", {"boom": True})
    assert reply["ok"] is False and "the handler broke" in reply["error"]
    assert call("BARCON", {"again": 1})["ok"] is True


def test_a_malformed_request_is_refused_with_code_2(barcon: ControlServer) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(10)
        conn.connect(str(socket_path("BARCON")))
        conn.sendall(b"not json\n")
        answer = conn.makefile("rb").readline()
    assert b'"code": 2' in answer and b"bad request" in answer


def test_no_server_of_that_name_says_which_run(barcon: ControlServer) -> None:
    with pytest.raises(PrintnetError, match=r"no print server named OTHER .*running: BARCON"):
        call("other", {})


def test_a_namesake_runs_without_a_socket_and_leaves_the_first_ones(
        barcon: ControlServer) -> None:
    events: list[str] = []
    second = ControlServer("barcon", echo, on_event=events.append)
    assert second.start() is False
    assert any("answered by another server" in e for e in events)
    second.stop()
    assert call("BARCON", {})["ok"] is True  # the first server's socket is still there


def test_a_dead_servers_socket_is_replaced_and_not_listed(run_dir: Path) -> None:
    # A server killed -9 leaves its socket file behind, and nobody answers on it.
    run_dir.mkdir(mode=0o700)
    path = socket_path("OLD")
    dead = subprocess.Popen(
        [sys.executable, "-c", "import socket, sys, time; s = socket.socket(socket.AF_UNIX);"
         " s.bind(sys.argv[1]); s.listen(); print('up', flush=True); time.sleep(120)",
         str(path)], stdout=subprocess.PIPE)
    try:
        assert dead.stdout is not None and dead.stdout.readline() == b"up\n"
        assert running_servers() == ["OLD"]
    finally:
        dead.kill()
        dead.wait()
        if dead.stdout is not None:
            dead.stdout.close()
    assert path.exists()
    assert running_servers() == []
    server = ControlServer("OLD", echo)
    assert server.start()
    try:
        assert call("old", {"n": 2})["echo"] == {"n": 2}
    finally:
        server.stop()
    assert not path.exists()


def test_a_planted_folder_is_refused_by_server_and_client(run_dir: Path) -> None:
    run_dir.mkdir(mode=0o700)
    os.chmod(run_dir, 0o777)  # someone else could have put a socket here
    with pytest.raises(PermissionDenied, match="0700"):
        ControlServer("BARCON", echo).start()
    with pytest.raises(PermissionDenied, match="writable by others"):
        call("BARCON", {"password": "secret"})
    os.chmod(run_dir, 0o700)
    run_dir.rmdir()
    (run_dir.parent / "elsewhere").mkdir(mode=0o700)
    run_dir.symlink_to(run_dir.parent / "elsewhere")
    with pytest.raises(PermissionDenied, match="not a folder"):
        call("BARCON", {})


def test_a_request_that_is_no_object_or_too_long_is_refused(barcon: ControlServer) -> None:
    from printnet.control import MAX_LINE

    for data in (b"[1, 2]\n", b"x" * (MAX_LINE + 10)):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(30)
            conn.connect(str(socket_path("BARCON")))
            conn.sendall(data)
            conn.shutdown(socket.SHUT_WR)
            answer = conn.makefile("rb").readline()
        assert b'"code": 2' in answer and b"bad request" in answer, answer
    assert call("BARCON", {"after": 1})["ok"] is True
