"""The write loop against scripted ports: every way a non-blocking write says 'nothing'."""

from __future__ import annotations

import errno
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

import pytest
from serial.serialutil import SerialBase, SerialException, SerialTimeoutException

from printnet.errors import PortError, PrinterStalled
from printnet.printers.writer import SMALL_CHUNK, SendFailed, SendStalled, send

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

Step = int | None | BaseException | str  # bytes to take, None, an error, or "all"


class ScriptedPort(SerialBase):
    """A port whose write() follows a script, then takes everything (or nothing)."""

    def __init__(self, script: Iterable[Step], then: Step = "all") -> None:
        super().__init__()
        self.is_open = True
        self.script = list(script)
        self.then = then
        self.got = bytearray()
        self.calls = 0

    def write(self, b: ReadableBuffer, /) -> int | None:
        self.calls += 1
        step = self.script.pop(0) if self.script else self.then
        view = memoryview(b)
        if step is None:
            return None
        if isinstance(step, BaseException):
            raise step
        n = len(view) if step == "all" else min(int(step), len(view))
        self.got += view[:n]
        return n

    def read(self, size: int = 1, /) -> bytes:
        return b""


DATA = bytes(range(256)) * 40  # 10,240 bytes


def test_every_kind_of_nothing_is_survived_and_counts_are_exact() -> None:
    port = ScriptedPort([
        None, 0, SerialTimeoutException("Write timeout"), BlockingIOError(errno.EAGAIN, "again"),
        SerialException(errno.EAGAIN, "again"), InterruptedError(), 3, 0, 5, None, 1000,
    ])
    progress: list[int] = []
    assert send(port, DATA, stall_timeout=5, on_progress=progress.append) == len(DATA)
    assert bytes(port.got) == DATA
    # a port without a descriptor is offered at most SMALL_CHUNK bytes per call
    assert progress == [3, 8, 1008, 1008 + SMALL_CHUNK, 1008 + 2 * SMALL_CHUNK, len(DATA)]


def test_stall_raises_with_the_exact_count_and_resume_finishes() -> None:
    port = ScriptedPort([100, 0, 23], then=0)
    t0 = time.monotonic()
    with pytest.raises(SendStalled) as info:
        send(port, DATA, stall_timeout=0.3)
    elapsed = time.monotonic() - t0
    assert info.value.sent == 123
    assert isinstance(info.value, PrinterStalled)
    assert 0.3 <= elapsed < 2.0
    assert port.calls < 100  # it waited, it did not spin

    port.then = "all"
    assert send(port, DATA, stall_timeout=1, start=info.value.sent) == len(DATA)
    assert bytes(port.got) == DATA  # nothing twice, nothing lost


def test_port_failure_carries_the_count() -> None:
    port = ScriptedPort([7, SerialException("connection reset")])
    with pytest.raises(SendFailed) as info:
        send(port, DATA, stall_timeout=1)
    assert info.value.sent == 7
    assert isinstance(info.value, PortError)
    assert "connection reset" in str(info.value)


def test_should_stop_returns_the_offset() -> None:
    port = ScriptedPort([], then=10)
    calls = 0

    def stop() -> bool:
        nonlocal calls
        calls += 1
        return calls > 5

    assert send(port, DATA, stall_timeout=1, should_stop=stop) == 50
    assert bytes(port.got) == DATA[:50]


def test_start_offset_and_bounds() -> None:
    port = ScriptedPort([])
    assert send(port, DATA, stall_timeout=1, start=len(DATA)) == len(DATA)
    assert port.calls == 0
    assert send(port, DATA, stall_timeout=1, start=10_000) == len(DATA)
    assert bytes(port.got) == DATA[10_000:]
    with pytest.raises(ValueError):
        send(port, DATA, stall_timeout=1, start=len(DATA) + 1)
    with pytest.raises(ValueError):
        send(port, DATA, stall_timeout=1, start=-1)
