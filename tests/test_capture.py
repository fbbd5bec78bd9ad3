"""End-to-end: the virtual printer (`printnet capture`, issue 15 item 6).

A real `printnet capture` process links a device path to a pty; real writers
(`cat > PATH`, a pyserial client, `stty -F PATH raw 9600` then writes) print to
it.  The oracle is the spool: each writer's bytes are exactly one job's spooled
data, owned by this user, raw; then a real server prints them.  Bad options are
one line and a non-zero exit with nothing linked or written.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial
from helpers_e2e import PrinterSpec, make_etc, read_out, server_env, start_server, wait_for

from printnet.api import this_user
from printnet.spool.layout import Spool

PAYLOAD = bytes(range(256)) + b"\r\nline\n\x1b@\x1bE bold \x1bF\x0c"  # every byte value


class CaptureProcess:
    """`printnet capture` in the background; its stdout (job ids) and stderr in files."""

    def __init__(self, tmp: Path, spool: Path, etc: Path, device: Path, *args: str) -> None:
        self.device = device
        self.out, self.err = tmp / f"capture-{device.name}.out", tmp / f"capture-{device.name}.err"
        with open(self.out, "wb") as out, open(self.err, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "printnet", "--spool", str(spool), "--etc", str(etc),
                 "capture", "--device", str(device), *args],
                stdin=subprocess.DEVNULL, stdout=out, stderr=err, cwd=tmp,
                env=server_env(tmp / "run"))

    def ids(self) -> list[str]:
        return self.out.read_text().split()

    def wait_linked(self) -> None:
        wait_for(lambda: self.device.is_symlink() or self.proc.poll() is not None, 30,
                 "capture links the device", on_timeout=self.stderr)
        assert self.proc.poll() is None, self.stderr()

    def wait_jobs(self, n: int) -> list[str]:
        wait_for(lambda: len(self.ids()) >= n, 30, f"{n} captured jobs",
                 on_timeout=self.stderr)
        return self.ids()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise AssertionError(f"capture did not stop:\n{self.stderr()}") from None

    def stderr(self) -> str:
        return self.err.read_text(errors="replace")


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[Path, Path, PrinterSpec, list[CaptureProcess]]]:
    spool = tmp_path / "spool"
    Spool.init(spool)
    spec = PrinterSpec("P1", tmp_path / "s1/out/P1.prn")
    etc = make_etc(tmp_path / "s1", "S1", [spool], [spec])
    started: list[CaptureProcess] = []
    yield spool, etc, spec, started
    for c in started:
        if c.proc.poll() is None:
            c.proc.kill()
            c.proc.wait(10)


def job(spool: Path, job_id: str) -> tuple[dict[str, object], bytes]:
    """A captured job's request (as published in new/) and its spooled bytes."""
    request = json.loads((spool / "new" / f"{job_id}.req").read_bytes())
    assert [f["name"] for f in request["files"]] == ["0"]
    return request, (spool / "data" / job_id / "0").read_bytes()


def test_real_writers_each_make_one_job_of_exactly_their_bytes(
        tmp_path: Path, setup: tuple[Path, Path, PrinterSpec, list[CaptureProcess]]) -> None:
    spool, etc, spec, started = setup
    device = tmp_path / "dev" / "ttyV0"
    device.parent.mkdir()
    cap = CaptureProcess(tmp_path, spool, etc, device, "-P", "P1", "-t", "captured")
    started.append(cap)
    cap.wait_linked()
    assert os.readlink(device).startswith("/dev/pts/")

    # 1. cat FILE > PATH
    src = tmp_path / "doc.bin"
    src.write_bytes(PAYLOAD)
    subprocess.run(["sh", "-c", f'cat "{src}" > "{device}"'], check=True, timeout=30)
    cap.wait_jobs(1)

    # 2. a pyserial client, as a serial-only program would print
    second = b"pyserial \x1b@" + PAYLOAD[::-1]
    with serial.Serial(str(device), 9600, timeout=5) as port:
        port.write(second[:100])
        port.write(second[100:])
        port.flush()
    cap.wait_jobs(2)

    # 3. stty -F PATH raw 9600 (an open and close without bytes: no job), then writes
    third = b"after stty\n" + PAYLOAD
    subprocess.run(["stty", "-F", str(device), "raw", "9600"], check=True, timeout=30)
    (tmp_path / "third.bin").write_bytes(third)
    subprocess.run(["sh", "-c", f'stty -F "{device}" raw 9600 && cat "{tmp_path}/third.bin" '
                                f'> "{device}"'], check=True, timeout=30)
    cap.wait_jobs(3)

    assert cap.stop() == 0, cap.stderr()
    assert not os.path.lexists(device), "the link is removed on exit"
    ids = cap.ids()
    assert len(ids) == 3, cap.stderr()  # stty alone made no job
    for job_id, expected in zip(ids, [PAYLOAD, second, third], strict=True):
        request, data = job(spool, job_id)
        assert data == expected
        assert request["user"] == this_user() and request["format"] == "raw"
        assert request["printer"] == "P1" and request["title"] == "captured"

    # They are ordinary requests: a real server takes them in and prints the bytes.
    server = start_server(etc, "S1", env=server_env(tmp_path / "run"), drain=True)
    assert server.wait(60) == 0, server.log_text()
    printed = read_out(spec.out)
    for expected in (PAYLOAD, second, third):
        assert expected in printed


def test_idle_and_form_feed_end_jobs_while_the_writer_stays(
        tmp_path: Path, setup: tuple[Path, Path, PrinterSpec, list[CaptureProcess]]) -> None:
    spool, etc, _, started = setup
    idle = CaptureProcess(tmp_path, spool, etc, tmp_path / "idle0", "-P", "P1", "--idle", "0.5")
    ff = CaptureProcess(tmp_path, spool, etc, tmp_path / "ff0", "-P", "P1", "--formfeed", "each")
    started += [idle, ff]
    idle.wait_linked()
    ff.wait_linked()
    with serial.Serial(str(idle.device), timeout=5) as port:
        port.write(b"first document")
        idle.wait_jobs(1)  # ended by --idle while the port is still open
        port.write(b"second document")
        idle.wait_jobs(2)
    with serial.Serial(str(ff.device), timeout=5) as port:
        port.write(b"page 1\fpage 2\fpage")
        ff.wait_jobs(2)
        port.write(b" 3")
    ff.wait_jobs(3)  # the close ended the last one
    assert idle.stop() == 0 and ff.stop() == 0
    assert [job(spool, i)[1] for i in idle.ids()] == [b"first document", b"second document"]
    assert [job(spool, i)[1] for i in ff.ids()] == [b"page 1\f", b"page 2\f", b"page 3"]


def test_sigterm_keeps_the_job_in_progress(
        tmp_path: Path, setup: tuple[Path, Path, PrinterSpec, list[CaptureProcess]]) -> None:
    spool, etc, _, started = setup
    cap = CaptureProcess(tmp_path, spool, etc, tmp_path / "lp0", "-P", "P1")
    started.append(cap)
    cap.wait_linked()
    with serial.Serial(str(cap.device), timeout=5) as port:
        port.write(b"unfinished, still open")
        port.flush()
        assert cap.stop() == 0, cap.stderr()
    [job_id] = cap.ids()
    assert job(spool, job_id)[1] == b"unfinished, still open"
    assert not os.path.lexists(cap.device)


def test_a_stale_link_of_a_killed_capture_is_replaced(
        tmp_path: Path, setup: tuple[Path, Path, PrinterSpec, list[CaptureProcess]]) -> None:
    spool, etc, _, started = setup
    device = tmp_path / "lp0"
    crashed = CaptureProcess(tmp_path, spool, etc, device, "-P", "P1")
    started.append(crashed)
    crashed.wait_linked()
    old_target = os.readlink(device)
    crashed.proc.kill()  # kill -9: no clean-up, the link stays
    crashed.proc.wait(30)
    wait_for(lambda: not os.path.exists(old_target) or os.readlink(device) != old_target, 30,
             "the dead capture's pty is gone")
    assert os.path.islink(device)  # dangling now
    again = CaptureProcess(tmp_path, spool, etc, device, "-P", "P1")
    started.append(again)
    wait_for(lambda: os.path.exists(device) or again.proc.poll() is not None, 30,
             "the stale link replaced", on_timeout=again.stderr)
    subprocess.run(["sh", "-c", f'printf "after the crash" > "{device}"'], check=True,
                   timeout=30)
    [job_id] = again.wait_jobs(1)
    assert again.stop() == 0, again.stderr()
    assert job(spool, job_id)[1] == b"after the crash"


@pytest.mark.parametrize(("make", "args", "message"), [
    ("file", ["-P", "P1"], "exists (a file, not a link of ours)"),
    ("link", ["-P", "P1"], "exists (a link, not a link of ours)"),
    ("none", ["-P", "NOPE"], "unknown printer 'NOPE'"),
    ("none", ["-P", "P1", "--formfeed", "sometimes"], "--formfeed must be"),
    ("none", ["-P", "P1", "--idle", "0"], "--idle must be"),
    ("none", ["-P", "P1", "--encoding", "cp437"], "--encoding applies to --text"),
    ("nodir", ["-P", "P1"], "no such folder"),
])
def test_bad_options_one_line_nothing_written(
        tmp_path: Path, setup: tuple[Path, Path, PrinterSpec, list[CaptureProcess]],
        make: str, args: list[str], message: str) -> None:
    spool, etc, _, _ = setup
    device = tmp_path / ("missing/lp0" if make == "nodir" else "lp0")
    if make == "file":
        device.write_bytes(b"keep me")
    elif make == "link":
        os.symlink(tmp_path / "elsewhere", device)
    proc = subprocess.run(
        [sys.executable, "-m", "printnet", "--spool", str(spool), "--etc", str(etc), "capture",
         "--device", str(device), *args],
        capture_output=True, text=True, timeout=60, cwd=tmp_path, env=server_env(tmp_path / "r"),
        check=False)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert proc.stdout == ""
    if make == "file":
        assert device.read_bytes() == b"keep me"
    elif make == "link":
        assert os.readlink(device) == str(tmp_path / "elsewhere")
    else:
        assert not os.path.lexists(device)
    assert os.listdir(spool / "new") == [] and os.listdir(spool / "data") == []


def test_a_job_the_spool_refuses_is_retried_and_never_dropped(
        tmp_path: Path, setup: tuple[Path, Path, PrinterSpec, list[CaptureProcess]]) -> None:
    spool, etc, _, started = setup
    cap = CaptureProcess(tmp_path, spool, etc, tmp_path / "lp0", "-P", "P1")
    started.append(cap)
    cap.wait_linked()
    new, away = spool / "new", spool / "new.away"
    new.rename(away)  # the spool cannot take requests now
    subprocess.run(["sh", "-c", f'printf "first" > "{cap.device}"'], check=True, timeout=30)
    wait_for(lambda: "not queued yet" in cap.stderr(), 30, "the refusal reported",
             on_timeout=cap.stderr)
    away.rename(new)
    [first] = cap.wait_jobs(1)  # retried once the spool is back
    assert job(spool, first)[1] == b"first"

    new.rename(away)
    subprocess.run(["sh", "-c", f'printf "second" > "{cap.device}"'], check=True, timeout=30)
    wait_for(lambda: cap.stderr().count("not queued yet") >= 2, 60, "the second refusal",
             on_timeout=cap.stderr)
    assert cap.stop() == 1  # stopped with a job unqueued: kept in a file, said so
    kept = tmp_path / "lp0.unqueued-2"
    assert kept.read_bytes() == b"second"
    assert str(kept) in cap.stderr().strip().splitlines()[-1]
    assert not os.path.lexists(cap.device)
    away.rename(new)
    assert cap.ids() == [first]
