"""The service units (etc/systemd/) and printnet.systemd, against the real tools.

* `systemd-analyze verify` checks the units (PID 1 need not be systemd: the units
  are verified from a unit path of their own, with ExecStart pointed at this
  checkout's printnet, since verify insists the program exists); a broken copy
  proves the check bites.
* A real `printnet server` runs under a NOTIFY_SOCKET this test binds: READY=1
  arrives once the server is serving (its server file published), WATCHDOG=1
  pings follow, STOPPING=1 on SIGTERM.
* `systemd-socket-activate` opens real listening sockets around a program that
  never binds (tests/activated_echo.py) and uses `inherited_sockets()`; clients
  connect to the ports and are answered by it.

In CI (`CI=true`) a missing tool FAILS; elsewhere those tests skip with the reason.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers_e2e import PrinterSpec, make_etc, published, server_env, start_server

from printnet import systemd
from printnet.errors import UsageError
from printnet.spool.layout import Spool

ROOT = Path(__file__).resolve().parent.parent
UNITS = ROOT / "etc" / "systemd"
INSTALLED = "/usr/local/bin/printnet"  # where the units expect printnet (docs/SERVER.md)
UNIT_FILES = ("printnet-server@.service", "printnet-gateway.service",
              "printnet-gateway.socket")


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        message = f"{tool} is not installed (Debian: apt-get install systemd)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


# -- the unit files ---------------------------------------------------------------


def _unit_dir(tmp: Path, edit: dict[str, tuple[str, str]] | None = None) -> Path:
    folder = tmp / "units"
    folder.mkdir()
    printnet = Path(sys.executable).parent / "printnet"
    assert printnet.exists(), printnet
    for name in UNIT_FILES:
        text = (UNITS / name).read_text()
        old, new = (edit or {}).get(name, ("", ""))
        if old:
            assert old in text
            text = text.replace(old, new)
        (folder / name).write_text(text.replace(INSTALLED, str(printnet)))
    return folder


def _verify(folder: Path) -> subprocess.CompletedProcess[str]:
    tool = need("systemd-analyze")
    env = {**os.environ, "SYSTEMD_UNIT_PATH": f"{folder}:"}
    return subprocess.run(
        [tool, "verify", "--man=no", "printnet-server@floor2.service",
         "printnet-gateway.socket", "printnet-gateway.service"],
        capture_output=True, text=True, env=env, cwd=folder, timeout=120, check=False)


def test_units_verify_clean(tmp_path: Path) -> None:
    for name in UNIT_FILES:
        text = (UNITS / name).read_text()
        if name.endswith(".service"):
            assert f"ExecStart={INSTALLED} " in text, name
    proc = _verify(_unit_dir(tmp_path))
    # verify exits 0 on many problems it only warns about: any output is a finding.
    assert proc.returncode == 0 and proc.stdout + proc.stderr == "", proc.stdout + proc.stderr


def test_a_broken_unit_is_caught(tmp_path: Path) -> None:
    proc = _verify(_unit_dir(tmp_path, {
        "printnet-server@.service": ("Restart=on-failure", "Restart=sometimes\nTypo=1"),
    }))
    assert "Typo" in proc.stderr and "restart" in proc.stderr.lower(), proc.stderr


def test_server_unit_is_notify_hardened_and_restarts() -> None:
    text = (UNITS / "printnet-server@.service").read_text()
    for line in ("Type=notify", "Restart=on-failure", "User=printnet", "NoNewPrivileges=yes",
                 "ProtectSystem=strict", "ReadWritePaths=-/var/spool/printnet",
                 "PrivateTmp=yes", "ProtectHome=yes", "CapabilityBoundingSet=\n"):
        assert line in text, line
    socket_unit = (UNITS / "printnet-gateway.socket").read_text()
    assert "ListenStream=631" in socket_unit and "ListenStream=515" in socket_unit
    assert "User=printnet" in (UNITS / "printnet-gateway.service").read_text()


# -- notify ------------------------------------------------------------------------------


@contextlib.contextmanager
def notify_socket(tmp: Path) -> Iterator[tuple[socket.socket, str]]:
    """A datagram socket bound like the service manager's, and its NOTIFY_SOCKET value."""
    path = tmp / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if len(os.fsencode(path)) < 100:
        sock.bind(str(path))
        value = str(path)
    else:  # a long tmp path: an abstract name (also what systemd may use)
        name = f"printnet-test-{os.getpid()}-{time.monotonic_ns()}"
        sock.bind(b"\0" + name.encode())
        value = "@" + name
    try:
        yield sock, value
    finally:
        sock.close()


def receive(sock: socket.socket, timeout: float) -> list[str]:
    """The KEY=VALUE lines of the next datagram (AssertionError after `timeout`)."""
    sock.settimeout(timeout)
    try:
        data = sock.recv(4096)
    except TimeoutError:
        raise AssertionError(f"no notification in {timeout} s") from None
    return data.decode().split("\n")


def test_notify_sends_datagrams_to_a_path_and_an_abstract_name(tmp_path: Path) -> None:
    with notify_socket(tmp_path) as (sock, value):
        assert systemd.notify("READY=1", "STATUS=a\nb", environ={"NOTIFY_SOCKET": value})
        assert receive(sock, 5) == ["READY=1", "STATUS=a b"]  # one line per field
    name = f"printnet-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as abstract:
        abstract.bind(b"\0" + name.encode())
        notifier = systemd.Notifier({"NOTIFY_SOCKET": "@" + name})
        assert notifier.ready("up") and not notifier.ready("again")  # READY once
        assert receive(abstract, 5) == ["READY=1", "STATUS=up"]
        assert notifier.stopping()
        assert receive(abstract, 5) == ["STOPPING=1"]


def test_notify_without_a_manager_does_nothing(tmp_path: Path) -> None:
    assert not systemd.notify("READY=1", environ={})
    assert not systemd.notify("READY=1", environ={"NOTIFY_SOCKET": "relative"})
    assert not systemd.notify("READY=1", environ={"NOTIFY_SOCKET": str(tmp_path / "none")})
    notifier = systemd.Notifier({})
    assert not notifier.active
    notifier.cycle()  # no socket: nothing sent, nothing raised
    assert systemd.Notifier({"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"}) \
        .watchdog_interval is None  # meant for another process


def test_server_says_ready_after_serving_then_watchdog_then_stopping(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    Spool.init(spool)
    etc = make_etc(tmp_path / "s1", "S1", [spool], [PrinterSpec("P1", tmp_path / "s1/out/P1.prn")])
    with notify_socket(tmp_path) as (sock, value):
        env = server_env(tmp_path / "run", {"NOTIFY_SOCKET": value,
                                            "WATCHDOG_USEC": "400000"})
        server = start_server(etc, "S1", env=env)
        try:
            lines = receive(sock, 60)
            # Ready means serving: the first cycle already published the server file.
            assert "READY=1" in lines, lines
            assert published(spool, "S1"), "READY=1 came before the server was serving"
            assert any(line.startswith("STATUS=server S1") for line in lines), lines
            pings = 0
            deadline = time.monotonic() + 30
            while pings < 2 and time.monotonic() < deadline:
                if receive(sock, 30) == ["WATCHDOG=1"]:
                    pings += 1
            assert pings == 2
            server.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 30
            while True:
                lines = receive(sock, max(0.1, deadline - time.monotonic()))
                if "STOPPING=1" in lines:
                    break
            assert server.wait(60) == 0, server.log_text()
        finally:
            server.stop()


# -- socket activation ---------------------------------------------------------------------


def test_inherited_sockets_parses_only_what_is_ours() -> None:
    me = str(os.getpid())
    assert systemd.inherited_sockets({}) == {}
    env = {"LISTEN_PID": "1", "LISTEN_FDS": "2", "LISTEN_FDNAMES": "ipp:lpd"}
    assert systemd.inherited_sockets(env) == {}  # a parent's: not ours
    assert env == {}  # and unset, so our children do not take them either
    for bad, message in (({"LISTEN_FDS": "x"}, "LISTEN_FDS"),
                         ({"LISTEN_FDS": "2", "LISTEN_FDNAMES": "ipp"}, "2 sockets"),
                         ({"LISTEN_FDS": "1000"}, "LISTEN_FDS")):
        with pytest.raises(UsageError, match=message):
            systemd.inherited_sockets({"LISTEN_PID": me, **bad})
    keep = {"LISTEN_PID": me, "LISTEN_FDS": "0"}
    assert systemd.inherited_sockets(keep, unset=False) == {} and keep["LISTEN_FDS"] == "0"


def test_a_descriptor_that_is_not_a_socket_is_named(tmp_path: Path) -> None:
    code = ("import os\nfrom printnet import systemd\n"
            "try:\n    systemd.inherited_sockets()\n"
            "except Exception as exc:\n    print(type(exc).__name__, exc)\n")
    proc = subprocess.run(
        ["sh", "-c", f'exec 3</dev/null; LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=ipp '
                     f'exec "{sys.executable}" -c "$0"', code],
        capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path)
    assert proc.stdout.startswith("UsageError LISTEN_FDS: descriptor 3 (ipp) is not a socket"), \
        proc.stdout + proc.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def ask(port: int, timeout: float = 30) -> str:
    """Connect to 127.0.0.1:port (retrying until the listener is up) and read one line."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
                conn.settimeout(timeout)
                with conn.makefile() as lines:
                    return lines.readline().strip()
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@pytest.mark.parametrize("fdnames", ["ipp:lpd", "gateway:gateway"])
def test_socket_activation_hands_the_listening_sockets_over(tmp_path: Path,
                                                              fdnames: str) -> None:
    tool = need("systemd-socket-activate")
    ipp, lpd = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LISTEN_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    proc = subprocess.Popen(
        [tool, "-l", f"127.0.0.1:{ipp}", "-l", f"127.0.0.1:{lpd}", f"--fdname={fdnames}",
         sys.executable, str(Path(__file__).with_name("activated_echo.py")), str(ipp),
         str(lpd)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    try:
        first = ask(ipp).split()
        second = ask(lpd).split()
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)
    names = fdnames.split(":")
    # role, the name it came under, the port, one and the same program, variables unset
    assert first == ["ipp", names[0], str(ipp), first[3], "-"], first
    assert second == ["lpd", names[1], str(lpd), first[3], "-"], second
