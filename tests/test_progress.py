"""Progress a user can see, and what a runaway or killed station leaves behind.

Real processes throughout: `printnet server` printing to a file printer and
to a simulated 9600-baud printer (slow enough to watch), `printnet request
--wait`, `status --watch` and large submits on a real pseudo-terminal (the
`pty` module), Ctrl-C sent as the terminal's interrupt character, and a
`printnet request -` killed with SIGKILL in the middle of copying a pipe.
The oracles are the printer's output, done/ records and the spool's folders
as root sees them.
"""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers_e2e import ServerProcess, server_env, start_server
from waiting import wait_for

WAIT = 40.0


@dataclass
class Site:
    root: Path
    env: dict[str, str]

    @property
    def spool(self) -> Path:
        return self.root / "spool"

    def cmd(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "printnet", *args]

    def run(self, *args: str, stdin: bytes = b"",
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(self.cmd(*args), input=stdin, capture_output=True, timeout=120,
                              check=False, env=env or self.env, cwd=self.root)

    def leftovers(self) -> list[str]:
        """Everything in data/ and new/ (dot-names too), as root sees it."""
        return sorted(os.listdir(self.spool / "data")) + sorted(os.listdir(self.spool / "new"))


PRINTERS = """
PRINTER SLOW PORT=sim://SLOW?out=../output/SLOW.prn BAUD=9600 HEADER=NONE
PRINTER SMALL PORT=file://../output/SMALL.prn HEADER=NONE MAXBYTES=1K
"""


@pytest.fixture
def site(tmp_path: Path) -> Site:
    env = server_env(tmp_path / "run", {"PRINTNET_SPOOL": str(tmp_path / "spool"),
                                        "PRINTNET_ETC": str(tmp_path / "etc")})
    env.pop("PRINTER", None)
    env.pop("LPDEST", None)
    env.pop("PRINTNET_MAX_STDIN", None)
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    s = Site(tmp_path, env)
    assert s.run("init").returncode == 0
    server_cmd = tmp_path / "etc" / "server.cmd"
    server_cmd.write_text(server_cmd.read_text().replace("SCAN 1", "SCAN 0.2")
                          .replace("LEASE 30", "LEASE 3"))
    printers = tmp_path / "etc" / "printers.cmd"
    printers.write_text(printers.read_text() + PRINTERS)
    return s


@pytest.fixture
def server(site: Site) -> Iterator[ServerProcess]:
    env = {k: v for k, v in site.env.items() if k != "PRINTNET_SPOOL"}
    proc = start_server(site.root / "etc", "P1", env=env)
    try:
        wait_for((site.spool / "servers" / "P1.json").exists, WAIT, "the server's status file",
                 on_timeout=proc.log_text)
        yield proc
    finally:
        proc.stop()


@dataclass
class Terminal:
    """A process whose standard input, output and error are one pseudo-terminal."""

    proc: subprocess.Popen[bytes]
    master: int
    output: bytes = b""

    def read_until(self, needle: bytes, timeout: float = WAIT) -> bytes:
        deadline = time.monotonic() + timeout
        while needle not in self.output:
            if time.monotonic() > deadline:
                raise AssertionError(f"no {needle!r} on the terminal; got {self.output[-2000:]!r}")
            self._read(0.2)
        return self.output

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return True
        try:
            chunk = os.read(self.master, 65536)
        except OSError:  # EIO: the other side is closed
            return False
        self.output += chunk
        return bool(chunk)

    def finish(self, timeout: float = WAIT) -> int:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None or self._read(0.05):
            if time.monotonic() > deadline:
                self.proc.kill()
                raise AssertionError(f"still running; terminal: {self.output[-2000:]!r}")
            self._read(0.1)
        os.close(self.master)
        return self.proc.wait()


# Run in the child after setsid: the pty (its stdin) becomes the controlling terminal,
# so that ^C typed on it is SIGINT to the command, as at a real terminal.
CONTROLLING = ("import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
               "os.execv(sys.argv[1], sys.argv[1:])")


def on_terminal(site: Site, *args: str) -> Terminal:
    master, slave = pty.openpty()
    os.set_blocking(master, True)
    proc = subprocess.Popen([sys.executable, "-c", CONTROLLING, *site.cmd(*args)],
                            stdin=slave, stdout=slave, stderr=slave,
                            env=dict(site.env, TERM="xterm", COLUMNS="120", LINES="40"),
                            cwd=site.root, start_new_session=True)
    os.close(slave)
    return Terminal(proc, master)


def _doc(site: Site, name: str, size: int, line: bytes = b"a line of text to print\n") -> str:
    path = site.root / name
    path.write_bytes((line * (size // len(line) + 1))[:size])
    return str(path)


# -- request --wait -------------------------------------------------------------------------


def test_wait_exit_status_follows_the_job(site: Site, server: ServerProcess) -> None:
    doc = _doc(site, "a.txt", 200, b"WAITED-FOR\n")
    proc = site.run("request", "--wait", doc)
    assert proc.returncode == 0, proc.stderr
    [job] = proc.stdout.decode().split()
    assert (site.spool / "done" / f"{job}.json").exists()
    assert b"WAITED-FOR" in (site.root / "output" / "LOCAL.prn").read_bytes()
    # Over the printer's MAXBYTES: the server rejects it, --wait says so and exits 6.
    proc = site.run("request", "-P", "SMALL", "--wait", _doc(site, "big.txt", 4096))
    assert proc.returncode == 6, proc.stderr
    assert b": rejected" in proc.stderr
    # Held, then canceled from another process: exit 4.
    with subprocess.Popen(site.cmd("request", "--hold", "--wait", doc), env=site.env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          cwd=site.root) as waiter:
        assert waiter.stdout is not None
        held = waiter.stdout.readline().decode().strip()
        assert site.run("cancel", held).returncode == 0
        _, err = waiter.communicate(timeout=WAIT)
    assert waiter.returncode == 4
    assert b"canceled" in err


def test_wait_on_a_terminal_draws_a_progress_bar(site: Site, server: ServerProcess) -> None:
    term = on_terminal(site, "request", "-P", "SLOW", "--wait", _doc(site, "slow.txt", 6000))
    term.read_until(b"printing on SLOW [")
    assert term.finish() == 0
    text = term.output.decode(errors="replace")
    assert "%" in text and "\r" in text
    assert text.rstrip().endswith("completed\x1b[K")


# -- status --watch ---------------------------------------------------------------------------


def test_watch_redraws_in_place_and_quits_on_ctrl_c(site: Site, server: ServerProcess) -> None:
    site.run("request", "--hold", "-t", "WATCHED-TITLE", _doc(site, "w.txt", 100))
    term = on_terminal(site, "status", "--watch", "--interval", "0.2")
    term.read_until(b"WATCHED-TITLE")
    term.read_until(b"LOCAL      idle")
    first = term.output.count(b"\x1b[H")
    wait_for(lambda: term._read(0.2) and term.output.count(b"\x1b[H") >= first + 2, WAIT,
             "two more redraws")
    os.write(term.master, b"\x03")  # the terminal's interrupt character: SIGINT
    assert term.finish() == 0
    assert term.output.endswith(b"\x1b[?25h")  # the cursor is shown again
    assert b"Traceback" not in term.output


def test_watch_refuses_a_pipe_and_an_unknown_printer(site: Site) -> None:
    proc = site.run("status", "--watch")
    assert proc.returncode == 2 and b"needs a terminal" in proc.stderr
    proc = site.run("status", "-P", "NOSUCH")
    assert proc.returncode == 2 and b"unknown printer 'NOSUCH'" in proc.stderr


# -- large submits, standard input's limit, killed stations ---------------------------------


def test_a_large_submit_shows_copy_progress_on_a_terminal(site: Site) -> None:
    term = on_terminal(site, "request", "--hold", _doc(site, "large.txt", 9 << 20))
    assert term.finish() == 0
    text = term.output.decode(errors="replace")
    assert "copying [" in text and "9.0/9.0 MiB" in text
    # Off a terminal: nothing but the id.
    proc = site.run("request", "--hold", _doc(site, "large.txt", 9 << 20))
    assert proc.returncode == 0 and proc.stderr == b""


def test_standard_input_stops_at_its_limit_and_leaves_nothing(site: Site) -> None:
    before = site.leftovers()
    proc = site.run("request", "--max-stdin", "1M", "-", stdin=b"\0" * (3 << 20))
    assert proc.returncode == 2
    assert b"standard input is larger than 1 MiB" in proc.stderr
    assert site.leftovers() == before
    env = dict(site.env, PRINTNET_MAX_STDIN="2K")
    proc = site.run("request", "-", stdin=b"x" * 4096, env=env)
    assert proc.returncode == 2 and b"larger than 2 KiB" in proc.stderr
    assert site.run("request", "--max-stdin", "8K", "-", stdin=b"x" * 4096, env=env
                    ).returncode == 0
    # The default (256 MiB) stops a runaway pipe (yes(1) never ends).
    with subprocess.Popen(["yes", "runaway"], stdout=subprocess.PIPE) as yes:
        try:
            proc = subprocess.run(site.cmd("request", "-"), stdin=yes.stdout,
                                  capture_output=True, env=site.env, cwd=site.root,
                                  timeout=300, check=False)
        finally:
            yes.kill()
    assert proc.returncode == 2 and b"larger than 256 MiB" in proc.stderr
    assert len(site.leftovers()) == len(before) + 2  # only the 8K job: its data and request


def _copying(site: Site) -> Path | None:
    for name in os.listdir(site.spool / "data"):
        folder = site.spool / "data" / name
        if name.startswith(".") and (folder / "0").exists() \
                and (folder / "0").stat().st_size > 0:
            return folder
    return None


def test_a_station_killed_mid_copy_leaves_nothing_after_the_grace(site: Site) -> None:
    writer = subprocess.Popen(site.cmd("request", "-"), stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=site.env,
                              cwd=site.root)
    assert writer.stdin is not None
    try:
        writer.stdin.write(b"x" * (2 << 20))
        writer.stdin.flush()
        folder = wait_for(lambda: _copying(site), WAIT, "a data folder being copied")
        assert (folder / ".writer").exists()
        # Alive and (seemingly) old: purge never takes a folder from under its writer.
        os.utime(folder, (time.time() - 3600, time.time() - 3600))
        purge = site.run("spool", "purge")
        assert purge.returncode == 0, purge.stderr
        assert folder.exists()
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait(WAIT)
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
        writer.stdin.close()
        assert writer.stdout is not None and writer.stderr is not None
        writer.stdout.close()
        writer.stderr.close()
    assert writer.returncode == -signal.SIGKILL
    os.utime(folder, None)  # as if it had just been written: the grace starts now
    purge = site.run("spool", "purge")
    assert folder.exists(), "removed before the grace"
    started = time.monotonic()
    wait_for(lambda: site.run("spool", "purge").returncode == 0 and not folder.exists(),
             WAIT, "the abandoned folder purged", interval=1.0)
    assert time.monotonic() - started < 30  # the grace is 15 s, not a day
    assert not os.listdir(site.spool / "data")
    assert not os.listdir(site.spool / "new")
