"""Real ports through open_port + send: a pty (with XON/XOFF), TCP, file://, loop://."""

from __future__ import annotations

import os
import pty
import select
import socket
import stat
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
import serial

from printnet.config import Flow, PrinterConfig
from printnet.errors import PortError
from printnet.printers.ports import (
    PACKAGE,
    Finish,
    Resume,
    device_reason,
    open_port,
    port_kind,
    port_url,
    register_schemes,
)
from printnet.printers.simctl import sim_control
from printnet.printers.writer import SendStalled, send

XOFF, XON = b"\x13", b"\x11"
T = TypeVar("T")


class MasterReader:
    """Drains the master side of a pty into `got`, in a thread."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.got = bytearray()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            ready, _, _ = select.select([self.fd], [], [], 0.02)
            if ready:
                try:
                    chunk = os.read(self.fd, 65536)
                except OSError:
                    return
                with self.lock:
                    self.got += chunk

    def data(self) -> bytes:
        with self.lock:
            return bytes(self.got)

    def wait_for(self, n: int, timeout: float = 5.0) -> bytes:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            data = self.data()
            if len(data) >= n:
                return data
            time.sleep(0.01)
        return self.data()

    def settle(self, quiet: float = 0.2) -> bytes:
        """The data once nothing more has arrived for `quiet` seconds."""
        last = -1
        while True:
            time.sleep(quiet)
            data = self.data()
            if len(data) == last:
                return data
            last = len(data)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)


def within(seconds: float, fn: Callable[[], T]) -> T:
    """fn() in a daemon thread; fail (instead of hanging) if it is not done in time."""
    result: list[T] = []
    error: list[BaseException] = []

    def run() -> None:
        try:
            result.append(fn())
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"still running after {seconds} s (spinning inside a write?)")
    if error:
        raise error[0]
    return result[0]


@pytest.fixture
def pty_pair() -> Iterator[tuple[int, str]]:
    master, slave = pty.openpty()
    name = os.ttyname(slave)
    os.close(slave)  # open_port opens the slave by its path
    yield master, name
    os.close(master)


def test_pty_carries_100k_exactly(pty_pair: tuple[int, str], tmp_path: Path) -> None:
    master, name = pty_pair
    printer = PrinterConfig(name="TTY", port=name, baud=115200)
    port = open_port(printer, tmp_path)
    reader = MasterReader(master)
    try:
        assert port.xonxoff is False and port.write_timeout == 0
        data = os.urandom(100_000)
        progress: list[int] = []
        assert send(port, data, stall_timeout=5, on_progress=progress.append) == len(data)
        assert progress[-1] == len(data) and progress == sorted(progress)
        assert reader.wait_for(len(data)) == data
    finally:
        reader.close()
        port.close()


def test_pty_xoff_stalls_with_exact_count_and_xon_resumes(
    pty_pair: tuple[int, str], tmp_path: Path
) -> None:
    master, name = pty_pair
    printer = PrinterConfig(name="TTY", port=name, baud=9600, flow=Flow.XONXOFF)
    port = open_port(printer, tmp_path)
    reader = MasterReader(master)
    try:
        assert port.xonxoff is True
        data = os.urandom(100_000)
        stopped = threading.Event()

        def xoff_after_20k(sent: int) -> None:
            if sent >= 20_000 and not stopped.is_set():
                stopped.set()
                os.write(master, XOFF)  # the printer says: stop

        with pytest.raises(SendStalled) as info:
            within(5, lambda: send(port, data, stall_timeout=0.4, on_progress=xoff_after_20k))
        sent = info.value.sent
        assert 20_000 <= sent < len(data)
        # Exactly what send counted reached the printer, no more, no less.
        assert reader.settle() == data[:sent]

        os.write(master, XON)  # the printer is ready again
        assert send(port, data, stall_timeout=5, start=sent) == len(data)
        assert reader.wait_for(len(data)) == data
        assert reader.settle(0.1) == data  # nothing printed twice
    finally:
        reader.close()
        port.close()


def test_missing_device_is_a_port_error_naming_the_printer(tmp_path: Path) -> None:
    device = tmp_path / "ttyNOPE"
    printer = PrinterConfig(name="R&D", port=str(device))
    with pytest.raises(PortError) as info:
        open_port(printer, tmp_path)
    assert str(info.value) == f"printer R&D: cannot open {device}: No such file or directory"


def test_refused_connection_is_one_clean_sentence(tmp_path: Path) -> None:
    # Issue 16: not "cannot open socket://...: Could not open port socket://...: [Errno 111]"
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    url = f"socket://127.0.0.1:{port}"
    with pytest.raises(PortError) as info:
        open_port(PrinterConfig(name="NET", port=url), tmp_path)
    assert str(info.value) == f"printer NET: cannot open {url}: Connection refused"


def test_missing_file_printer_folder_is_one_clean_sentence(tmp_path: Path) -> None:
    out = tmp_path / "nope" / "LOCAL.prn"
    with pytest.raises(PortError) as info:
        open_port(PrinterConfig(name="LOCAL", port=f"file://{out}"), tmp_path)
    assert str(info.value) == f"printer LOCAL: cannot open file://{out}: No such file or directory"
    with pytest.raises(PortError) as info:
        open_port(PrinterConfig(name="SIM", port=f"sim://S?out={out}"), tmp_path)
    assert str(info.value).count("open") == 1 and "No such file or directory" in str(info.value)


def test_unknown_scheme_is_a_port_error(tmp_path: Path) -> None:
    with pytest.raises(PortError, match="LP"):
        open_port(PrinterConfig(name="LP", port="gopher://x"), tmp_path)


def test_bad_line_settings_are_a_port_error(tmp_path: Path) -> None:
    with pytest.raises(PortError, match="LP"):
        open_port(PrinterConfig(name="LP", port="loop://", parity="X"), tmp_path)


def test_register_schemes_is_idempotent() -> None:
    register_schemes()
    register_schemes()
    assert serial.protocol_handler_packages.count(PACKAGE) == 1
    assert serial.protocol_handler_packages[0] == "serial.urlhandler"


# ---------------------------------------------------------------------------
# socket://


class Listener:
    """A TCP printer on 127.0.0.1 that records what it receives (optionally not reading)."""

    def __init__(self, *, reading: bool = True) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.got = bytearray()
        self.reading = threading.Event()
        if reading:
            self.reading.set()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        conn, _ = self.server.accept()
        with conn:
            self.reading.wait()
            while True:
                chunk = conn.recv(1 << 16)
                if not chunk:
                    return
                self.got += chunk

    def close(self) -> bytes:
        self.reading.set()
        self.thread.join(10)
        self.server.close()
        return bytes(self.got)


def test_socket_port_delivers_exactly(tmp_path: Path) -> None:
    listener = Listener()
    port = open_port(PrinterConfig(name="NET", port=f"socket://127.0.0.1:{listener.port}"),
                     tmp_path)
    data = os.urandom(300_000)
    try:
        assert send(port, data, stall_timeout=5) == len(data)
    finally:
        port.close()
    assert listener.close() == data


def test_socket_printer_that_stops_reading_stalls_then_resumes(tmp_path: Path) -> None:
    listener = Listener(reading=False)
    port = open_port(PrinterConfig(name="NET", port=f"socket://127.0.0.1:{listener.port}"),
                     tmp_path)
    data = os.urandom(12_000_000)  # more than loopback buffers absorb
    try:
        with pytest.raises(SendStalled) as info:  # no endless spin inside pyserial's write
            within(10, lambda: send(port, data, stall_timeout=0.3))
        sent = info.value.sent
        assert 0 < sent < len(data)
        listener.reading.set()
        assert send(port, data, stall_timeout=5, start=sent) == len(data)
    finally:
        port.close()
    assert listener.close() == data


def test_socket_refused_is_a_port_error(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as s:
        free = s.getsockname()[1]
    with pytest.raises(PortError, match="NET"):
        open_port(PrinterConfig(name="NET", port=f"socket://127.0.0.1:{free}"), tmp_path)


# ---------------------------------------------------------------------------
# file:// and loop://


@pytest.fixture
def etc(tmp_path: Path) -> Path:
    etc = tmp_path / "project" / "etc"
    etc.mkdir(parents=True)
    (tmp_path / "project" / "out").mkdir()
    return etc


def test_file_port_appends_and_creates_0640(etc: Path) -> None:
    target = etc.parent / "out" / "lp.txt"
    printer = PrinterConfig(name="LP", port=f"file://{target}")
    for chunk in (b"first job\f", b"second job\f"):
        port = open_port(printer, etc)
        try:
            assert send(port, chunk, stall_timeout=1) == len(chunk)
            port.flush()
        finally:
            port.close()
    assert target.read_bytes() == b"first job\fsecond job\f"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o640 & ~umask


def test_file_port_relative_path_is_against_etc(etc: Path) -> None:
    printer = PrinterConfig(name="LP", port="file://../out/rel.txt")
    assert port_url(printer, etc) == f"file://{(etc.parent / 'out' / 'rel.txt').resolve()}"
    port = open_port(printer, etc)
    try:
        send(port, b"hello", stall_timeout=1)
    finally:
        port.close()
    assert (etc.parent / "out" / "rel.txt").read_bytes() == b"hello"


def test_file_port_inside_etc_is_refused(etc: Path) -> None:
    for port in ("file://printers.cmd", "file://../etc/x.txt"):
        with pytest.raises(PortError, match="inside the etc folder"):
            port_url(PrinterConfig(name="LP", port=port), etc)


def test_sim_port_relative_out_is_against_etc(etc: Path) -> None:
    printer = PrinterConfig(name="SIM", port="sim://SIM?out=../out/s%20p+q.prn&baud=inf")
    out = (etc.parent / "out" / "s p q.prn").resolve()
    assert port_url(printer, etc) == f"sim://SIM?out={out}&baud=inf".replace(" ", "%20")
    with pytest.raises(PortError, match="leaves the project folder"):
        port_url(PrinterConfig(name="SIM", port="sim://SIM?out=../../x.prn"), etc)


@pytest.mark.parametrize("port", ["file://../../escape.txt", "file://../out/../../x",
                                  "file://../../project2/etc/x"])
def test_file_port_escape_is_refused(etc: Path, port: str) -> None:
    printer = PrinterConfig(name="LP", port=port)
    with pytest.raises(PortError, match="leaves the project folder"):
        open_port(printer, etc)
    assert not (etc.parent.parent / "escape.txt").exists()


def test_file_port_symlink_escape_is_refused(etc: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (etc / "link").symlink_to(outside)
    with pytest.raises(PortError, match="leaves the project folder"):
        open_port(PrinterConfig(name="LP", port="file://link/x.txt"), etc)


def test_file_port_missing_folder_is_a_port_error(etc: Path) -> None:
    with pytest.raises(PortError, match="LP"):
        open_port(PrinterConfig(name="LP", port="file://../nofolder/x.txt"), etc)


def test_loop_port_round_trip(tmp_path: Path) -> None:
    port = open_port(PrinterConfig(name="LOOP", port="loop://"), tmp_path)
    try:
        assert send(port, b"ping" * 100, stall_timeout=1) == 400
        assert port.read(400) == b"ping" * 100
    finally:
        port.close()


# ---------------------------------------------------------------------------
# The resume rule (docs/PRINTERS.md)


@pytest.mark.parametrize(("port", "flow", "resume", "finish"), [
    ("/dev/ttyS0", Flow.XONXOFF, Resume.OFFSET, Finish.NONE),
    ("/dev/ttyUSB0", Flow.RTSCTS, Resume.OFFSET, Finish.NONE),
    ("/dev/ttyS0", Flow.NONE, Resume.RESTART, Finish.NONE),
    ("socket://10.1.2.3:9100", Flow.NONE, Resume.RESTART, Finish.TCP_FIN),
    ("SOCKET://[::1]:9100", Flow.XONXOFF, Resume.RESTART, Finish.TCP_FIN),
    ("rfc2217://host:2217", Flow.RTSCTS, Resume.RESTART, Finish.TCP_ACK),
    ("file://../output/LOCAL.prn", Flow.NONE, Resume.OFFSET, Finish.DRAIN),
    ("sim://P1?out=x.prn", Flow.NONE, Resume.OFFSET, Finish.DRAIN),
    ("loop://", Flow.NONE, Resume.OFFSET, Finish.NONE),
    ("ipp://printer/ipp/print", Flow.NONE, Resume.RESTART, Finish.NONE),
    ("spy:///dev/ttyS0", Flow.XONXOFF, Resume.RESTART, Finish.NONE),
])
def test_each_port_kind_says_whether_it_can_resume_at_an_offset(
        port: str, flow: Flow, resume: Resume, finish: Finish) -> None:
    kind = port_kind(PrinterConfig(name="P", port=port, flow=flow))
    assert (kind.resume, kind.finish) == (resume, finish)
    assert kind.why


def test_device_reason_of_the_simulated_printer(tmp_path: Path) -> None:
    out = tmp_path / "P.prn"
    port = open_port(PrinterConfig(name="P", port=f"sim://P?out={out}"), tmp_path)
    try:
        assert device_reason(port) is None  # online: nothing to say
        for state, says in (("paperout", "out of paper"), ("offline", "offline"),
                            ("xoff", "holding XOFF")):
            sim_control(out, state)
            deadline = time.monotonic() + 10
            while device_reason(port) != says and time.monotonic() < deadline:
                time.sleep(0.02)  # the printer looks at its state file every 50 ms
            assert device_reason(port) == says
    finally:
        port.close()
