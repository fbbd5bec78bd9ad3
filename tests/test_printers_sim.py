"""The simulated printer: line rate, state file from another process, exact resume."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from serial.serialutil import SerialBase, SerialException, SerialTimeoutException

from printnet.config import PrinterConfig
from printnet.errors import PortError, PrinterStalled
from printnet.printers.ports import open_port
from printnet.printers.protocol_sim import Serial as SimSerial
from printnet.printers.protocol_sim import parse_url
from printnet.printers.simctl import SimState, read_state, sim_control, state_path
from printnet.printers.writer import SendStalled, send

ROOT = Path(__file__).resolve().parents[1]


def simctl_in_another_process(out: Path, state: str) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    subprocess.run(
        [sys.executable, "-m", "printnet.printers.simctl", str(out), state],
        check=True, cwd=ROOT, env=env, timeout=30, capture_output=True,
    )


@pytest.fixture
def out(tmp_path: Path) -> Path:
    (tmp_path / "etc").mkdir()
    return tmp_path / "printed.prn"


def open_sim(out: Path, query: str = "", baud: int = 9600) -> SimSerial:
    printer = PrinterConfig(name="SIM", port=f"sim://SIM?out={out}{query}", baud=baud)
    port = open_port(printer, out.parent / "etc")
    assert isinstance(port, SimSerial)
    return port


@pytest.fixture
def opened(out: Path) -> Iterator[list[SerialBase]]:
    ports: list[SerialBase] = []
    yield ports
    for port in ports:
        port.close()


def test_rate_follows_the_configured_baud(out: Path, opened: list[SerialBase]) -> None:
    port = open_sim(out, "&buffer=64", baud=19200)  # 8N1: 1920 bytes per second
    opened.append(port)
    data = os.urandom(2880)  # 1.5 s at line rate
    t0 = time.monotonic()
    assert send(port, data, stall_timeout=2) == len(data)
    port.flush()
    elapsed = time.monotonic() - t0
    assert out.read_bytes() == data
    # Never faster than the line (all but the first buffer-full at 1920 B/s): that
    # holds however loaded the machine is.  Slower only by a wide margin (a
    # starved writer leaves a 64-byte buffer empty): scripts/bench measures speed.
    assert (len(data) - 64) / 1920 <= elapsed, elapsed
    assert elapsed <= 4 * 1.5 + 2.0, elapsed


def test_url_baud_overrides_and_inf_is_full_speed(out: Path, opened: list[SerialBase]) -> None:
    port = open_sim(out, "&baud=inf", baud=300)
    opened.append(port)
    data = os.urandom(200_000)
    t0 = time.monotonic()
    send(port, data, stall_timeout=2)
    port.flush()
    assert time.monotonic() - t0 < 2.0  # 300 baud would take 6,667 s
    assert out.read_bytes() == data


def test_frame_size_counts_parity_and_stop_bits(out: Path, opened: list[SerialBase]) -> None:
    printer = PrinterConfig(name="SIM", port=f"sim://SIM?out={out}&baud=11000&buffer=16",
                            parity="E", stopbits=2)  # 1 + 8 + 1 + 2 = 12 bits: 916.7 B/s
    port = open_port(printer, out.parent / "etc")
    opened.append(port)
    data = os.urandom(1100)
    t0 = time.monotonic()
    send(port, data, stall_timeout=2)
    port.flush()
    elapsed = time.monotonic() - t0
    # 1.2 s at 12 bits a frame, 1.0 s at 10: the lower bound tells them apart
    # (never faster than the line, whatever the load); the upper one is generous.
    assert (len(data) - 16) * 12 / 11000 <= elapsed, elapsed
    assert elapsed <= 4 * 1.2 + 2.0, elapsed


@pytest.mark.parametrize("trouble", ["offline", "paperout"])
def test_trouble_from_another_process_stalls_exactly_and_resume_prints_once(
    out: Path, opened: list[SerialBase], trouble: str
) -> None:
    port = open_sim(out, "&baud=38400&buffer=1024")  # 3840 B/s
    opened.append(port)
    data = os.urandom(9000)
    flipped = threading.Event()

    def trouble_after_2k(sent: int) -> None:
        if sent >= 2000 and not flipped.is_set():
            flipped.set()
            threading.Thread(target=simctl_in_another_process, args=(out, trouble)).start()

    with pytest.raises(SendStalled) as info:
        send(port, data, stall_timeout=0.5, on_progress=trouble_after_2k)
    sent = info.value.sent
    assert isinstance(info.value, PrinterStalled)
    assert 2000 <= sent < len(data)
    assert port.cd is False and port.dsr is False
    assert port.sim_state == SimState(trouble)
    # What was printed is a prefix of what was sent; the rest waits in the buffer.
    printed = out.read_bytes()
    assert data[:sent].startswith(printed)
    assert len(printed) + port.out_waiting == sent
    assert port.out_waiting > 0  # the printer stopped printing with bytes in its buffer
    time.sleep(0.2)
    assert out.read_bytes() == printed  # nothing prints while the printer is in trouble

    simctl_in_another_process(out, "online")
    assert send(port, data, stall_timeout=2, start=sent) == len(data)
    port.flush()
    assert out.read_bytes() == data  # the rest, exactly once
    assert port.cd is True


def test_xoff_stops_intake_but_the_buffer_keeps_printing(
    out: Path, opened: list[SerialBase]
) -> None:
    port = open_sim(out, "&baud=38400&buffer=2048")
    opened.append(port)
    data = os.urandom(6000)
    assert send(port, data[:2048], stall_timeout=1) == 2048
    sim_control(out, "xoff")
    time.sleep(0.06)  # the printer looks at its state file at most every 50 ms
    with pytest.raises(SendStalled) as info:
        send(port, data, stall_timeout=0.4, start=2048)
    assert port.cts is False and port.cd is True
    assert port.drain(timeout=2)  # the buffer printed while the host was held off
    assert out.read_bytes() == data[: info.value.sent]
    sim_control(out, "online")
    assert send(port, data, stall_timeout=2, start=info.value.sent) == len(data)
    port.flush()
    assert out.read_bytes() == data


def test_blocking_write_times_out_while_offline(out: Path, opened: list[SerialBase]) -> None:
    port = open_sim(out, "&baud=inf")
    opened.append(port)
    sim_control(out, "offline")
    time.sleep(0.06)
    port.write_timeout = 0.2
    t0 = time.monotonic()
    with pytest.raises(SerialTimeoutException):
        port.write(b"hello")
    assert 0.15 <= time.monotonic() - t0 < 5.0  # the timeout, not a hang
    port.write_timeout = 0
    assert port.write(b"hello") == 0


def test_buffer_keeps_printing_after_the_port_is_closed(out: Path) -> None:
    port = open_sim(out, "&baud=38400&buffer=4096")
    data = os.urandom(1500)  # 0.4 s at line rate
    assert port.write(data) == len(data)
    port.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and out.stat().st_size < len(data):
        time.sleep(0.05)
    assert out.read_bytes() == data
    again = open_sim(out, "&baud=inf")  # the device went away; a new one appends
    try:
        again.write(b"more")
        again.flush()
    finally:
        again.close()
    assert out.read_bytes() == data + b"more"


def test_state_file_words(out: Path) -> None:
    assert read_state(out) == SimState.ONLINE  # no file: online
    sim_control(out, " PaperOut ")
    assert state_path(out).read_text() == "paperout\n"
    assert read_state(out) == SimState.PAPEROUT
    state_path(out).write_text("on fire\n")
    assert read_state(out) == SimState.OFFLINE  # unknown word: not ready
    with pytest.raises(ValueError):
        sim_control(out, "busy")
    assert [p.name for p in out.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_bad_sim_urls(out: Path) -> None:
    assert parse_url(f"sim://X?out={out}") == ("X", out, None, 4096)
    assert parse_url(f"sim://X?out={out}&baud=0&buffer=10")[2:] == (None, 10)
    for url in ("sim://X", f"sim://X?out={out}&speed=3", f"sim://X?out={out}&baud=fast",
                f"sim://X?out={out}&buffer=0", f"sim://X?out={out}&baud=-5"):
        with pytest.raises(SerialException):
            parse_url(url)
    with pytest.raises(PortError, match="SIM"):
        open_port(PrinterConfig(name="SIM", port="sim://SIM?nothing=1"), out.parent / "etc")
