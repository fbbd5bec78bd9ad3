"""The operator console, driven as operators drive it: `printnet console COMMAND`
against a real `printnet server` process, and the interactive console through a
real pseudo-terminal (at the server's terminal, and attached with `printnet
console`).

Every server here has its own runtime folder (PRINTNET_RUNTIME_DIR), so tests
never reach another test's (or another engineer's) server.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import select
import signal
import stat
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from waiting import wait_for

from printnet import cmdfile, config
from printnet.api import Station
from printnet.console import find_command, pick
from printnet.control import running_servers, socket_path
from printnet.errors import UsageError
from printnet.spool import master as master_io
from printnet.spool.layout import Spool
from printnet.spool.lock import ExpiringLock, LockTable

PRINTNET = str(Path(sys.executable).with_name("printnet"))
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[=>]|\r")
EVENT = re.compile(r"\d\d:\d\d:\d\d [A-Z0-9&_.+-]+: [^\n]*\n")
PASSWORD = "sesame"
CTTY_EXEC = ("import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
             "os.execv(sys.argv[1], sys.argv[1:])")


class Project:
    """A project folder: etc/ (the embedded default, fast timings), spool/, output/."""

    def __init__(self, root: Path, name: str = "CONS") -> None:
        self.root = root
        self.name = name
        self.etc = root / "etc"
        self.spool = Spool.init(root / "spool")[0]
        self.output = root / "output"
        self.output.mkdir()
        self.run_dir = root / "run"
        config.write_defaults(self.etc)

        def fast(text: str) -> str:
            text = cmdfile.set_single(text, "SERVER", None, {"NAME": name})
            text = cmdfile.set_single(text, "SCAN", "0.2")
            return cmdfile.set_single(text, "LEASE", "2")
        config.edit(self.etc, "server.cmd", fast)
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith("PRINTNET_")}
        self.env.update(PRINTNET_RUNTIME_DIR=str(self.run_dir), PRINTNET_ETC=str(self.etc),
                        TERM="dumb", COLUMNS="200")
        self.server: subprocess.Popen[bytes] | None = None
        self.log = root / "server.log"

    # -- the server ---------------------------------------------------------------------

    def start(self, *options: str, server_options: tuple[str, ...] = ()
              ) -> subprocess.Popen[bytes]:
        with open(self.log, "ab") as log:
            self.server = subprocess.Popen(
                [PRINTNET, *options, "server", *server_options], cwd=self.root, env=self.env,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        wait_for(self.answering, what="the server's console socket")
        return self.server

    def answering(self) -> bool:
        assert self.server is not None
        if self.server.poll() is not None:
            raise AssertionError(f"server exited:\n{self.log.read_text()}")
        with self.runtime():
            return self.name in running_servers()

    @contextlib.contextmanager
    def runtime(self) -> Iterator[None]:
        old = os.environ.get("PRINTNET_RUNTIME_DIR")
        os.environ["PRINTNET_RUNTIME_DIR"] = str(self.run_dir)
        try:
            yield
        finally:
            if old is None:
                del os.environ["PRINTNET_RUNTIME_DIR"]
            else:
                os.environ["PRINTNET_RUNTIME_DIR"] = old

    def stop(self) -> None:
        if self.server is not None and self.server.poll() is None:
            self.server.send_signal(signal.SIGTERM)
            try:
                self.server.wait(20)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait()

    # -- the console and stations ----------------------------------------------------

    def console(self, *args: str, password: str | None = None, new_password: str | None = None,
                ok: bool | None = True, server: str | None = None
                ) -> subprocess.CompletedProcess[str]:
        env = dict(self.env)
        opts: list[str] = []
        if password is not None:
            env["PW"] = password
            opts += ["--password-env", "PW"]
        if new_password is not None:
            env["NEWPW"] = new_password
            opts += ["--new-password-env", "NEWPW"]
        result = subprocess.run(
            [PRINTNET, "console", "--server", server or self.name, *opts, *args],
            cwd=self.root,
            env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
            check=False)
        if ok is True:
            assert result.returncode == 0, (args, result.stdout, result.stderr)
        elif ok is False:
            assert result.returncode != 0, (args, result.stdout, result.stderr)
        return result

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """A station command (`printnet request`, `status`) on this project's spool."""
        result = subprocess.run(
            [PRINTNET, "--spool", str(self.spool.root), *args], cwd=self.root, env=self.env,
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        return result

    def json(self, *args: str, **kw: Any) -> Any:
        return json.loads(self.console("--json", *args, **kw).stdout)

    def submit(self, text: str = "hello\n", spool: Spool | None = None, **options: Any) -> str:
        source = self.root / f"doc{time.monotonic_ns()}.txt"
        source.write_text(text)
        station = Station((spool or self.spool).root, self.etc)
        [req] = station.submit([source], **options)
        return req.id

    def done(self, job_id: str, spool: Spool | None = None) -> dict[str, Any] | None:
        path = (spool or self.spool).done / f"{job_id}.json"
        try:
            record = json.loads(path.read_bytes())
        except (OSError, ValueError):
            return None
        assert isinstance(record, dict)
        return record

    def wait_done(self, job_id: str, spool: Spool | None = None,
                  outcome: str = "completed") -> dict[str, Any]:
        record = wait_for(lambda: self.done(job_id, spool), what=f"job {job_id} to finish")
        assert isinstance(record, dict)
        assert record["outcome"] == outcome, record
        return record

    def job(self, job_id: str) -> Any:
        return master_io.load(self.spool).get(job_id)

    def files(self) -> dict[str, bytes]:
        return {n: (self.etc / n).read_bytes() for n in ("server.cmd", "printers.cmd")}


@pytest.fixture
def running(project: Project) -> Project:
    project.start()
    return project


def ch_jobs(project: Project) -> list[dict[str, Any]]:
    data = project.json("CH")
    return [j for q in data["queues"] for j in q["jobs"]]


# ---------------------------------------------------------------------------
# Parsing


def test_commands_abbreviate_while_unambiguous() -> None:
    assert find_command("inf").code == "I"
    assert find_command("I").code == "I"
    assert find_command("ca").code == "CANCEL"
    assert find_command("CH").code == "CH"
    assert find_command("che").code == "CH"
    assert find_command("he").code == "HELP"
    assert find_command("ho").code == "HOLD"
    assert find_command("rel").code == "RELEASE"
    assert find_command("Q").code == "Q"
    with pytest.raises(UsageError, match="ambiguous: CS or CP or CH or CANCEL"):
        find_command("C")
    with pytest.raises(UsageError, match="ambiguous"):
        find_command("RE")
    with pytest.raises(UsageError, match="unknown command"):
        find_command("XYZZY")
    assert pick("mou", ("MOUNT", "MOVE")) == "MOUNT"
    with pytest.raises(UsageError, match="ambiguous"):
        pick("s", ("SHOW", "STOP", "START"))


# ---------------------------------------------------------------------------
# The control socket


def test_control_socket_is_private_and_goes_away(running: Project) -> None:
    with running.runtime():
        path = socket_path(running.name)
    assert stat.S_IMODE(os.stat(running.run_dir).st_mode) == 0o700
    st = os.stat(path)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    out = running.console("I").stdout
    assert f"Server {running.name}: printnet" in out
    assert "Jobs printed since start: 0" in out
    info = running.json("I")
    assert info["name"] == running.name and info["printed"] == 0
    assert info["disks"][0]["path"] == str(running.spool.root)
    # Another user cannot reach it: the folder is 0700 (nobody's uid gets EACCES).
    probe = subprocess.run(
        [sys.executable, "-c", f"import os, socket; os.setuid(65534); s = socket.socket("
         f"socket.AF_UNIX); s.connect({str(path)!r})"], capture_output=True, text=True, check=False)
    assert probe.returncode != 0 and "PermissionError" in probe.stderr
    running.console("Q")
    assert running.server is not None and running.server.wait(20) == 0
    assert not path.exists()
    missing = running.console("I", ok=False)
    assert "no print server named CONS is running" in missing.stderr


# ---------------------------------------------------------------------------
# The scenarios


def test_ch_shows_needs_checks_cp_mounts_it_and_the_job_prints(running: Project) -> None:
    job = running.submit("a check\n", setup="CHECKS", title="payroll")
    wait_for(lambda: f"{job}" in running.console("CH").stdout
             and "Needs CHECKS" in running.console("CH").stdout, what="Needs CHECKS")
    [entry] = ch_jobs(running)
    assert entry["id"] == job and entry["note"] == "Needs CHECKS"
    before = (running.etc / "printers.cmd").read_text()
    out = running.console("CP", "MOUNT", "LOCAL", "CHECKS").stdout
    assert "setup CHECKS mounted" in out
    running.wait_done(job)
    assert "payroll" in (running.output / "LOCAL.prn").read_text()
    after = (running.etc / "printers.cmd").read_text()
    # Persisted, every comment kept.
    assert re.search(r"^PRINTER LOCAL .*SETUP=CHECKS", after, re.M)
    assert [ln for ln in before.splitlines() if ln.startswith(";")] == \
        [ln for ln in after.splitlines() if ln.startswith(";")]
    assert ch_jobs(running) == []
    assert running.json("I")["printed"] == 1


def test_cs_adds_a_second_shared_disk_and_the_running_server_serves_it(
        running: Project) -> None:
    second = Spool.init(running.root / "disk2")[0]
    refused = running.console("CS", "SPOOL", "ADD", "nowhere", ok=False)
    assert "not a printnet spool" in refused.stderr
    before = running.files()
    out = running.console("CS", "SPOOL", "ADD", "disk2").stdout
    assert "serving" in out
    assert running.files()["server.cmd"] != before["server.cmd"]
    assert re.search(r"^SPOOL disk2$", (running.etc / "server.cmd").read_text(), re.M)
    job = running.submit("on the second disk\n", spool=second)
    running.wait_done(job, spool=second)
    disks = running.json("F")["disks"]
    assert [d["path"] for d in disks] == [str(running.spool.root), str(second.root)]
    assert all(d["health"] == "ok" for d in disks)
    assert len(running.json("I")["disks"]) == 2
    running.console("CS", "SPOOL", "REMOVE", "disk2")
    assert "disk2" not in (running.etc / "server.cmd").read_text()
    assert len(running.json("F")["disks"]) == 1
    assert running.files() == before


def test_spool_given_on_the_command_line_stays_in_force(project: Project) -> None:
    other = Spool.init(project.root / "other")[0]
    Spool.init(project.root / "disk2")
    project.start("--spool", str(other.root))
    refused = project.console("CS", "SPOOL", "ADD", "disk2", ok=False)
    assert "started with --spool" in refused.stderr
    project.console("CP", "CHANGE", "LOCAL", "BAUD=4800")
    assert [d["path"] for d in project.json("F")["disks"]] == [str(other.root)]
    job = project.submit("still here\n", spool=other)
    project.wait_done(job, spool=other)


def test_a_wrong_password_changes_nothing(running: Project) -> None:
    out = running.console("CS", "PASSWORD", new_password=PASSWORD).stdout
    assert "password set" in out
    server_cmd = (running.etc / "server.cmd").read_text()
    assert PASSWORD not in server_cmd
    assert re.search(r"^PASSWORD scrypt\$", server_cmd, re.M)
    job = running.submit(hold=True)
    wait_for(lambda: running.job(job), what="the job in the master file")
    before = running.files()

    # No password at all: refused, asked for.
    missing = running.console("CP", "STOP", "LOCAL", ok=False)
    assert missing.returncode == 3 and "needs the console password" in missing.stderr
    # Wrong password: delayed, refused, logged; nothing changes.
    t0 = time.monotonic()
    wrong = running.console("CP", "STOP", "LOCAL", password="guess", ok=False)
    assert time.monotonic() - t0 >= 1.0
    assert wrong.returncode == 3 and "wrong console password" in wrong.stderr
    wrong = running.console("RELEASE", job, password="guess2", ok=False)
    assert wrong.returncode == 3
    assert running.files() == before
    assert running.job(job).state.value == "held"
    assert running.json("CP")["printers"][0]["state"] == "idle"
    events = running.spool.events.read_text()
    assert events.count("wrong password") == 2
    # Read-only commands need none; the right password works.
    running.console("CH")
    running.console("RELEASE", job, password=PASSWORD)
    running.wait_done(job)


# ---------------------------------------------------------------------------
# Every command through `printnet console`


def test_cs_shows_and_edits_server_settings(running: Project) -> None:
    shown = running.console("CS").stdout
    assert "night window:  00:00-06:00" in shown and "lease:         2 s" in shown
    before = running.files()
    bad = running.console("CS", "NIGHT", "25,3", ok=False)
    assert "server.cmd" in bad.stderr and running.files() == before
    running.console("CS", "NIGHT", "22,6")
    running.console("CS", "SCAN", "0.3")
    running.console("CS", "LEASE", "3")
    running.console("CS", "OPERATORS", "root,alice")
    data = running.json("CS")
    assert data["night"] == [22, 6] and data["scan"] == 0.3 and data["lease"] == 3
    assert data["operators"] == ["root", "alice"]
    text = (running.etc / "server.cmd").read_text()
    assert "NIGHT 22,6" in text and "SCAN 0.3" in text and "OPERATORS root,alice" in text
    assert "; NIGHT start,end" in text  # comments kept
    renamed = running.console("CS", "NAME", "LATER").stdout
    assert "next start" in renamed
    assert "SERVER NAME=LATER" in (running.etc / "server.cmd").read_text()
    assert running.json("I")["name"] == running.name
    running.console("CS", "PASSWORD", new_password=PASSWORD)
    assert running.json("CS")["password"] is True
    running.console("CS", "PASSWORD", "OFF", password=PASSWORD)
    assert not re.search(r"^PASSWORD", (running.etc / "server.cmd").read_text(), re.M)


def test_cp_adds_changes_stops_rejects_and_removes_printers(running: Project) -> None:
    before = running.files()
    outside = running.console("CP", "ADD", "EVIL", "PORT=file:///etc/evil.prn", ok=False)
    assert "outside" in outside.stderr
    nosetup = running.console("CP", "CHANGE", "LOCAL", "SETUP=NOPE", ok=False)
    assert "NOPE" in nosetup.stderr
    assert running.files() == before

    running.console("CP", "ADD", "SIDE", "PORT=file://../output/SIDE.prn", "BAUD=19200",
                    "FLOW=XONXOFF", "CLASS=POOL", "HEADER=NONE")
    side = {p["name"]: p for p in running.json("CP")["printers"]}["SIDE"]
    assert side["baud"] == 19200 and side["flow"] == "xonxoff" and side["classes"] == ["POOL"]
    assert side["header"] == "NONE"
    job = running.submit("to the pool\n", printer="POOL")
    running.wait_done(job)
    assert "to the pool" in (running.output / "SIDE.prn").read_text()

    running.console("CP", "CHANGE", "SIDE", "BAUD=2400", "DRIVER=ESCP", "HEADER=")
    side = running.json("CP", "SIDE")["printers"][0]
    assert side["baud"] == 2400 and side["driver"] == "escp" and side["header"] is None

    running.console("CP", "REJECT", "SIDE", "out", "of", "paper")
    assert "ACCEPT=NO" in (running.etc / "printers.cmd").read_text()
    refused = running.submit("rejected\n", printer="SIDE")
    reason = wait_for(lambda: list(running.spool.rejected.glob(f"{refused}*.reason")),
                      what="the rejection")
    assert "SIDE is out of paper" in reason[0].read_text()

    def status() -> str:
        return subprocess.run([PRINTNET, "--spool", str(running.spool.root), "status"],
                              env=running.env, capture_output=True, text=True,
                              check=True).stdout
    # What users see (once the server's status file, rewritten each cycle, has it).
    wait_for(lambda: "rejecting new jobs: out of paper" in status(), what="the reason")
    running.console("CP", "ACCEPT", "SIDE")
    assert "ACCEPT=NO" not in (running.etc / "printers.cmd").read_text()

    running.console("CP", "STOP", "LOCAL")
    waiting = running.submit("waits\n")
    wait_for(lambda: running.job(waiting), what="the job taken in")
    local = next(q for q in running.json("CH")["queues"] if q["name"] == "LOCAL")
    assert local["state"] == "stopped" and local["jobs"][0]["id"] == waiting
    assert running.done(waiting) is None
    running.console("CP", "START", "LOCAL")
    running.wait_done(waiting)

    running.console("CP", "SETUP", "WIDE", "FORM=WIDE", "LENGTH=66", "WIDTH=132")
    assert "WIDE" in [s["name"] for s in running.json("CP")["setups"]]
    running.console("CP", "REMOVE", "SIDE")
    assert "SIDE" not in running.console("CP").stdout
    assert "PRINTER SIDE" not in (running.etc / "printers.cmd").read_text()
    assert "; PRINTER name PORT=port" in (running.etc / "printers.cmd").read_text()


def test_job_verbs_hold_release_top_move_cancel_reprint(running: Project) -> None:
    running.console("CP", "STOP", "LOCAL")
    running.console("CP", "ADD", "OTHER", "PORT=file://../output/OTHER.prn", "STOPPED=YES")
    a, b, c = (running.submit(f"job {n}\n", title=f"job-{n}") for n in "abc")
    wait_for(lambda: all(running.job(j) for j in (a, b, c)), what="jobs taken in")

    assert "held" in running.console("HOLD", a[-6:]).stdout
    assert running.job(a).state.value == "held"
    again = running.console("HOLD", a, ok=False)
    assert "not held: it is held" in again.stdout
    running.console("RELEASE", a)
    assert running.job(a).state.value == "pending"

    running.console("TOP", c)
    order = [j["id"] for j in ch_jobs(running)]
    assert order == [c, a, b]

    running.console("MOVE", b, "OTHER")
    assert running.job(b).destination == "OTHER"
    assert running.console("MOVE", b, "NOWHERE", ok=False).returncode == 1

    assert "canceled" in running.console("CANCEL", a).stdout
    record = running.wait_done(a, outcome="canceled")
    assert record["reason"] == "canceled by the operator"
    assert running.job(a) is None
    missing = running.console("--json", "CANCEL", "ZZZZZZ", ok=False)
    assert missing.returncode == 1 and "no live job" in json.loads(missing.stdout)["error"]

    running.console("CP", "START", "LOCAL")
    running.console("CP", "START", "OTHER")
    running.wait_done(c)
    running.wait_done(b)
    assert "job b" in (running.output / "OTHER.prn").read_text()
    data = running.json("REPRINT", c)
    new = data["new"]
    assert new != c
    running.wait_done(new)
    assert (running.output / "LOCAL.prn").read_text().count("job c") == 2
    # A canceled job's request is retained by the console: it can be reprinted too.
    again_a = running.json("REPRINT", a, "OTHER")["new"]
    running.wait_done(again_a)
    assert "job a" in (running.output / "OTHER.prn").read_text()


def test_cancel_stops_a_printing_job_and_ch_shows_its_progress(running: Project) -> None:
    running.console("CP", "ADD", "SLOW", "PORT=sim://SLOW?out=../output/SLOW.prn",
                    "BAUD=2400", "HEADER=NONE")
    # ~30 pages: far more than the simulated printer's 4 KiB buffer takes at once.
    text = "".join(f"line {i}\n" for i in range(2000))
    job = running.submit(text, printer="SLOW")

    def progress() -> dict[str, Any] | None:
        for j in ch_jobs(running):
            if j["id"] == job and j["progress"] and j["progress"]["pages"] >= 1:
                return dict(j["progress"])
        return None
    prog = wait_for(progress, what="a page printed")
    assert prog["page_total"] >= 5 and prog["pages"] < prog["page_total"]
    assert re.search(rf"page \d+ of {prog['page_total']}", running.console("CH").stdout)
    # `printnet status` names the job once: "printing <id>", not "printing printing <id>".
    shown = [line for line in running.cli("status").stdout.splitlines()
             if line.startswith("printer SLOW:")]
    assert shown and shown[0].startswith(f"printer SLOW: printing {job},"), shown
    running.console("CANCEL", job)
    running.wait_done(job, outcome="canceled")
    wait_for(lambda: running.json("CP", "SLOW")["printers"][0]["state"] == "idle",
             what="the printer idle again")


def test_names_are_case_insensitive_wherever_a_user_types_one(tmp_path: Path) -> None:
    """Servers, printers, setups and classes: `barcon` is BARCON everywhere."""
    project = Project(tmp_path, name="BARCON")
    try:
        project.start(server_options=("--name", "barcon"))  # runs as BARCON
        assert "Server BARCON" in project.console("I", server="barcon").stdout
        assert "Printer LOCAL" in project.console("CH", server="Barcon").stdout
        project.console("CP", "STOP", "local", server="barcon")
        project.console("CP", "ADD", "side", "PORT=file://../output/SIDE.prn",
                        "CLASS=front", server="barcon")
        (project.root / "memo.txt").write_text("a memo\n")
        job = project.cli("request", "-P", "local", "-s", "checks", "memo.txt").stdout.strip()
        wait_for(lambda: project.job(job), what="the job taken in")
        assert project.job(job).destination == "LOCAL" and project.job(job).setup == "CHECKS"
        assert job in project.cli("status", "-P", "local").stdout
        assert job in project.console("CH", "local").stdout
        assert "moved to FRONT" in project.console("MOVE", job, "front").stdout
        assert job in project.console("CH", "Front").stdout
        project.console("MOVE", job, "local")
        project.console("CP", "MOUNT", "local", "checks")
        assert project.json("CP", "local")["printers"][0]["mounted"] == "CHECKS"
        locks = [r["lock"] for r in project.json("F", "LOCKS")["locks"]]
        assert "server.BARCON" in locks
        refused = project.console("F", "BREAK", "server.barcon", ok=False)
        assert "own lease" in refused.stderr
        project.console("CP", "START", "LOCAL", server="barcon")
        project.wait_done(job)
    finally:
        project.stop()


def test_p_i_f_and_q(running: Project) -> None:
    (running.root / "memo.txt").write_text("operator memo\n")
    queued = running.json("P", "-t", "Memo", "memo.txt")  # relative to the client's cwd
    job = queued["jobs"][0]["id"]
    running.wait_done(job)
    assert "operator memo" in (running.output / "LOCAL.prn").read_text()
    assert "Jobs printed since start: 1" in running.console("I").stdout
    assert running.console("P", "no-such-file", ok=False).returncode == 2

    listing = running.console("F").stdout
    assert str(running.spool.root) in listing and "ok" in listing
    locks = running.json("F", "LOCKS")["locks"]
    ours = [r for r in locks if r["lock"] == f"server.{running.name}"]
    assert ours and ours[0]["ours"]
    assert "own lease" in running.console("F", "BREAK", f"server.{running.name}",
                                          ok=False).stderr

    # A lock left by a dead holder: stale once unchanged for its lease + 1/4.
    ghost = ExpiringLock(LockTable(running.spool.locks), "server.GHOST", lease=0.5,
                         holder="GHOST")
    assert ghost.try_acquire()
    early = running.console("F", "BREAK", "server.GHOST", ok=False)
    assert "not stale" in early.stderr

    def stale() -> bool:
        return any(r["lock"] == "server.GHOST" and r["stale"]
                   for r in running.json("F", "LOCKS")["locks"])
    wait_for(stale, what="the ghost lock to look stale")
    unconfirmed = running.console("F", "BREAK", "server.GHOST", ok=False)
    assert "Not confirmed" in unconfirmed.stderr
    assert (running.spool.locks / "server.GHOST").exists()
    running.console("--yes", "F", "BREAK", "server.GHOST")
    assert not (running.spool.locks / "server.GHOST").exists()

    purged = running.json("F", "PURGE", "--days", "0")["purged"]
    assert purged[0]["removed"]["old records"] >= 1
    assert running.done(job) is None
    assert "(add --yes)" in running.console("F", "REBUILD", ok=False).stderr
    rebuilt = running.json("--yes", "F", "REBUILD")
    assert rebuilt["jobs"] == 0

    assert "HOLD job" in running.console("HELP", "HOLD").stdout
    assert {c["command"] for c in running.json("HELP")["commands"]} >= {
        "CS", "CP", "CH", "I", "P", "F", "Q"}

    pending = running.submit("stays queued\n", setup="LABELS")
    wait_for(lambda: running.job(pending), what="the job taken in")
    out = running.console("Q").stdout
    assert "nothing is lost" in out
    assert running.server is not None and running.server.wait(20) == 0
    assert running.job(pending) is not None  # still queued for the next start


# ---------------------------------------------------------------------------
# The interactive console through a real pseudo-terminal


class Pty:
    """A process on a pseudo-terminal that is its controlling terminal."""

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str]) -> None:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
        # In its own session, the terminal becomes its controlling terminal (so that
        # Ctrl-C and the foreground check work as at a real terminal), then exec.
        self.proc = subprocess.Popen([sys.executable, "-c", CTTY_EXEC, *argv], cwd=cwd,
                                     env=env, stdin=slave, stdout=slave, stderr=slave,
                                     start_new_session=True)
        os.close(slave)
        self.fd = master
        self.raw = b""
        self.pos = 0

    @property
    def text(self) -> str:
        """What the terminal shows, minus escapes and the server's event lines (which
        the server thread prints whenever they happen, even in the middle of a prompt)."""
        return EVENT.sub("", ANSI.sub("", self.raw.decode("utf-8", "replace")))

    def expect(self, pattern: str, timeout: float = 15.0) -> str:
        """Wait for `pattern` (a regex) after what earlier expects consumed."""
        deadline = time.monotonic() + timeout
        while True:
            m = re.search(pattern, self.text[self.pos:])
            if m:
                start = self.pos
                self.pos += m.end()
                return self.text[start:self.pos]
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {pattern!r} in:\n{self.text[self.pos:]}")
            ready, _, _ = select.select([self.fd], [], [], min(left, 0.2))
            if ready:
                try:
                    chunk = os.read(self.fd, 65536)
                except OSError:  # EIO: the process closed the terminal
                    chunk = b""
                if not chunk:
                    if re.search(pattern, self.text[self.pos:]):
                        continue
                    raise AssertionError(f"terminal closed; no {pattern!r} in:\n"
                                         f"{self.text[self.pos:]}")
                self.raw += chunk

    def send(self, data: str) -> None:
        os.write(self.fd, data.encode())

    def line(self, text: str) -> None:
        self.send(text + "\r")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(20)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.fd)


@pytest.fixture
def pty_server(project: Project) -> Iterator[tuple[Project, Pty]]:
    term = Pty([PRINTNET, "server"], project.root, project.env)
    try:
        yield project, term
    finally:
        term.close()


def test_console_at_the_server_terminal(pty_server: tuple[Project, Pty]) -> None:
    project, term = pty_server
    prompt = rf"{project.name}> "
    # First start without a password: the console offers to set one.
    term.expect("Choose a console password")
    term.line(PASSWORD)
    term.expect("Again: ")
    term.line(PASSWORD)
    term.expect("console password set")
    assert re.search(r"^PASSWORD scrypt\$", (project.etc / "server.cmd").read_text(), re.M)
    term.expect("CS - Configure server")
    term.expect("Q  - Quit")
    term.expect(prompt)

    term.line("inf")  # abbreviation of INFO
    term.expect(rf"Server {project.name}: printnet .* running")
    term.expect(prompt)
    term.line("c")
    term.expect("ambiguous: CS or CP or CH or CANCEL")
    term.expect(prompt)
    term.line("help cp")
    term.expect("CP MOUNT printer setup")
    term.expect(prompt)
    term.line("CH --json")
    out = term.expect(prompt)
    assert json.loads(out[out.index("{"):out.rindex("}") + 1])["held"] == 0

    job = project.submit("from a station\n", setup="CHECKS")
    wait_for(lambda: "Needs CHECKS" in (project.job(job).note if project.job(job) else ""),
             what="Needs CHECKS")
    term.line("ch")
    term.expect(rf"{job} pending .*\[Needs CHECKS\]")
    term.expect(prompt)

    # The password was just set here: this session needs not give it again.
    term.line("cp mount local checks")
    term.expect("setup CHECKS mounted")
    term.expect(prompt)
    project.wait_done(job)
    term.line("cp stop local")  # no question: the session has the password
    term.expect("printer LOCAL stopped")
    term.expect(prompt)
    assert "STOPPED=YES" in (project.etc / "printers.cmd").read_text()
    term.line("cp start local")
    term.expect("printer LOCAL started")
    term.expect(prompt)

    # Line editing: Ctrl-U kills the line, Ctrl-C abandons it; the server runs on.
    term.send("garbage\x15I\r")
    term.expect(r"Jobs printed since start: 1")
    term.expect(prompt)
    term.send("half a line")
    term.expect("half a line")  # echoed by readline: it is reading, as a person sees
    # Ctrl-C is a signal, and CPython's readline checks signals only when its wait
    # for input is interrupted: one that lands in the instant before the wait waits
    # for the next key.  A person presses Ctrl-C again; so does this test.
    for attempt in range(3):
        term.send("\x03")
        try:
            term.expect(r"\^C", timeout=2)
            break
        except AssertionError:
            if attempt == 2:
                raise
    term.expect(prompt)
    assert term.proc.poll() is None

    term.line("q")
    term.expect("nothing is lost")
    term.expect(f"server {project.name} stopped")
    assert term.proc.wait(20) == 0


def test_printnet_console_attached_interactively(running: Project) -> None:
    running.console("CS", "PASSWORD", new_password=PASSWORD)
    term = Pty([PRINTNET, "console", "--server", running.name], running.root, running.env)
    try:
        term.expect(f"attached to server {running.name}")
        prompt = rf"{running.name}> "
        term.expect(prompt)
        term.line("ch")
        term.expect("Printer LOCAL: idle")
        term.expect(prompt)
        term.line("F LOCKS")
        term.expect(rf"server\.{running.name} .*this server")
        term.expect(prompt)
        # A changing command asks for the password once; a wrong one changes nothing.
        before = running.files()
        term.line("cp stop local")
        term.expect("Console password: ")
        term.line("wrong")
        term.expect("wrong console password: nothing was changed")
        term.expect(prompt)
        assert running.files() == before
        term.line("cp stop local")
        term.expect("Console password: ")
        term.line(PASSWORD)
        term.expect("printer LOCAL stopped")
        term.expect(prompt)
        assert "STOPPED=YES" in (running.etc / "printers.cmd").read_text()
        term.line("cp start local")  # no question: the session has the password
        term.expect("printer LOCAL started")
        term.expect(prompt)
        term.line("Q")
        term.expect("nothing is lost")
        assert term.proc.wait(20) == 0
        assert running.server is not None and running.server.wait(20) == 0
    finally:
        term.close()
