"""The local control channel (printnet.control) over real unix sockets: one JSON
line each way, peer credentials passed to the handler, case-insensitive server names,
one server per name, and refusal of planted or open folders."""

from __future__ import annotations

import json
import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from printnet.control import (
    MAX_LINE,
    RUNTIME_ENV,
    ControlServer,
    Peer,
    call,
    running_servers,
    socket_path,
)
from printnet.errors import PermissionDenied, PrintnetError


@pytest.fixture
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "run"
    monkeypatch.setenv(RUNTIME_ENV, str(folder))
    return folder


class Echo:
    """A handler that answers with what it was asked and who asked."""

    def __init__(self) -> None:
        self.peers: list[Peer] = []

    def __call__(self, request: dict[str, Any], peer: Peer) -> dict[str, Any]:
        self.peers.append(peer)
        if request.get("boom"):
            raise RuntimeError("handler failed")
        return {"ok": True, "echo": request}


@pytest.fixture
def server(run_dir: Path) -> Iterator[tuple[ControlServer, Echo, list[str]]]:
    handler, events = Echo(), list[str]()
    srv = ControlServer("barcon", handler, on_event=events.append)
    assert srv.start()
    try:
        yield srv, handler, events
    finally:
        srv.stop()


def raw_exchange(path: Path, data: bytes) -> dict[str, Any]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(30)
        sock.connect(str(path))
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    obj = json.loads(reply)
    assert isinstance(obj, dict)
    return obj


def test_one_request_one_answer_with_the_callers_credentials(
    server: tuple[ControlServer, Echo, list[str]], run_dir: Path,
) -> None:
    _, handler, _ = server
    assert call("barcon", {"command": "I", "text": "é"}) == {
        "ok": True, "echo": {"command": "I", "text": "é"}}
    [peer] = handler.peers
    assert peer.uid == os.geteuid() and peer.pid == os.getpid()


def test_server_names_are_case_insensitive(
    server: tuple[ControlServer, Echo, list[str]], run_dir: Path,
) -> None:
    assert socket_path("barcon") == socket_path("BARCON") == run_dir / "BARCON.sock"
    assert running_servers() == ["BARCON"]
    assert call("BarCon", {"n": 1})["ok"] is True


def test_the_socket_and_its_folder_are_private(
    server: tuple[ControlServer, Echo, list[str]], run_dir: Path,
) -> None:
    assert stat.S_IMODE(os.stat(run_dir).st_mode) == 0o700
    assert stat.S_IMODE(os.lstat(run_dir / "BARCON.sock").st_mode) == 0o600


def test_a_second_server_of_the_same_name_runs_without_a_channel(
    server: tuple[ControlServer, Echo, list[str]], run_dir: Path,
) -> None:
    events: list[str] = []
    twin = ControlServer("BARCON", Echo(), on_event=events.append)
    assert not twin.start()
    assert "answered by another server" in events[0]
    twin.stop()  # must not remove the first server's socket
    assert call("barcon", {"still": "there"})["ok"] is True


def test_a_dead_servers_socket_is_replaced_and_stop_removes_ours(run_dir: Path) -> None:
    run_dir.mkdir(mode=0o700)
    leftover = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    leftover.bind(str(run_dir / "OLD.sock"))
    leftover.close()  # bound, never listening: what a killed server leaves
    assert running_servers() == []
    srv = ControlServer("old", Echo())
    assert srv.start()
    assert call("old", {})["ok"] is True
    srv.stop()
    assert not (run_dir / "OLD.sock").exists()


def test_no_server_names_the_ones_that_run(
    server: tuple[ControlServer, Echo, list[str]],
) -> None:
    with pytest.raises(PrintnetError,
                       match=r"no print server named OTHER is running on this host "
                             r"\(running: BARCON\)"):
        call("other", {})


def test_bad_requests_get_an_error_and_the_server_survives(
    server: tuple[ControlServer, Echo, list[str]], run_dir: Path,
) -> None:
    path = run_dir / "BARCON.sock"
    assert raw_exchange(path, b"not json\n")["code"] == 2
    assert raw_exchange(path, b"[1, 2]\n")["code"] == 2
    assert "longer than" in raw_exchange(path, b"x" * (MAX_LINE + 10))["error"]
    failed = call("barcon", {"boom": True})
    assert failed["ok"] is False and "handler failed" in failed["error"]
    assert any("internal error" in e for e in server[2])
    assert call("barcon", {"after": 1})["ok"] is True


def test_a_planted_or_open_folder_is_refused(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    open_folder = tmp_path / "open"
    open_folder.mkdir()
    os.chmod(open_folder, 0o777)
    monkeypatch.setenv(RUNTIME_ENV, str(open_folder))
    with pytest.raises(PermissionDenied, match="must be 0700"):
        ControlServer("S", Echo()).start()
    with pytest.raises(PermissionDenied, match="writable by others"):
        call("S", {})
    link = tmp_path / "link"
    link.symlink_to(open_folder)
    monkeypatch.setenv(RUNTIME_ENV, str(link))
    with pytest.raises(PermissionDenied, match="not a folder"):
        ControlServer("S", Echo()).start()
