"""The lp/lpr family (printnet.compat) through real symlinks and real processes.

`printnet compat install` makes the links; every command then runs as its own
process started through its link (argv[0] = lpr, lp, ...), against a spool
made by `printnet init` and a real `printnet server` printing to the default
file printer LOCAL (etc/: file://../output/LOCAL.prn).  What reached the
output file is the oracle for lpr/lp; the master file (read directly, never
through the command under test) is the oracle for the queue commands.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers_e2e import ServerProcess, master_jobs, server_env, start_server
from waiting import wait_for

from printnet.model import JobState

PRINTNET = Path(sys.executable).parent / "printnet"  # the console script the links name
WAIT = 30.0


@dataclass
class Site:
    root: Path
    bin: Path
    env: dict[str, str]

    @property
    def spool(self) -> Path:
        return self.root / "spool"

    @property
    def etc(self) -> Path:
        return self.root / "etc"

    @property
    def out(self) -> Path:
        return self.root / "output" / "LOCAL.prn"

    def run(self, command: str, *args: str, stdin: bytes = b"",
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run bin/<command> (the link) with ARGS; text output."""
        return subprocess.run([str(self.bin / command), *args], input=stdin.decode(),
                              capture_output=True, text=True, timeout=60, check=False,
                              env=env or self.env, cwd=self.root)

    def printed(self) -> str:
        try:
            return self.out.read_text(errors="replace")
        except FileNotFoundError:
            return ""


def _printnet(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(PRINTNET), *args], capture_output=True, text=True,
                          timeout=60, check=False, env=env)


@pytest.fixture
def site(tmp_path: Path) -> Site:
    assert PRINTNET.is_file(), f"{PRINTNET}: the console script is not installed"
    env = server_env(tmp_path / "run", {"PRINTNET_SPOOL": str(tmp_path / "spool"),
                                        "PRINTNET_ETC": str(tmp_path / "etc")})
    for var in ("PRINTER", "LPDEST"):
        env.pop(var, None)
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")  # no user default file
    assert _printnet(env, "init").returncode == 0
    server_cmd = tmp_path / "etc" / "server.cmd"
    server_cmd.write_text(server_cmd.read_text().replace("SCAN 1", "SCAN 0.2")
                          .replace("LEASE 30", "LEASE 3"))
    (tmp_path / "bin").mkdir()
    proc = _printnet(env, "compat", "install", str(tmp_path / "bin"))
    assert proc.returncode == 0, proc.stderr
    return Site(tmp_path, tmp_path / "bin", env)


@pytest.fixture
def server(site: Site) -> Iterator[ServerProcess]:
    env = {k: v for k, v in site.env.items() if k != "PRINTNET_SPOOL"}
    proc = start_server(site.etc, "T1", env=env)
    try:
        wait_for((site.spool / "servers" / "T1.json").exists, WAIT,
                 "the server's status file", on_timeout=proc.log_text)
        yield proc
    finally:
        proc.stop()


def _doc(site: Site, name: str, text: str) -> Path:
    path = site.root / name
    path.write_text(text)
    return path


def _state(site: Site, job_id: str) -> JobState | None:
    job = master_jobs(site.spool).get(job_id)
    return None if job is None else job.state


def _request_id(stdout: str) -> str:
    m = re.fullmatch(r"request id is LOCAL-([0-9A-Z]{18}) \(1 file\(s\)\)\n", stdout)
    assert m, stdout
    return m.group(1)


# -- the links -----------------------------------------------------------------------


def test_install_makes_six_links_and_remove_takes_only_its_own(site: Site) -> None:
    names = sorted(os.listdir(site.bin))
    assert names == sorted(["lp", "lpr", "lpq", "lprm", "lpstat", "cancel"])
    assert all(os.readlink(site.bin / n) == str(PRINTNET) for n in names)
    # Installing again is harmless.
    assert _printnet(site.env, "compat", "install", str(site.bin)).returncode == 0
    # A file and a foreign link of those names: install refuses and makes nothing.
    other = site.root / "other"
    other.mkdir()
    (other / "lpq").write_text("#!/bin/sh\necho mine\n")
    os.symlink("/usr/bin/true", other / "lpr")
    proc = _printnet(site.env, "compat", "install", str(other))
    assert proc.returncode == 2
    assert "not ours" in proc.stderr and "lpq" in proc.stderr and "lpr" in proc.stderr
    assert sorted(os.listdir(other)) == ["lpq", "lpr"]
    # remove: only ours go.
    os.symlink(PRINTNET, other / "lp")
    proc = _printnet(site.env, "compat", "remove", str(other))
    assert proc.returncode == 0, proc.stderr
    assert sorted(os.listdir(other)) == ["lpq", "lpr"]
    assert (other / "lpq").read_text().startswith("#!/bin/sh")
    assert os.readlink(other / "lpr") == "/usr/bin/true"
    assert _printnet(site.env, "compat", "remove", str(site.bin)).returncode == 0
    assert os.listdir(site.bin) == []


# -- lpr and lp against a real server -----------------------------------------------------


def test_lpr_prints_title_and_copies_and_is_silent(site: Site, server: ServerProcess) -> None:
    doc = _doc(site, "report.txt", "LPR-BODY-LINE\n")
    proc = site.run("lpr", "-T", "Quarterly", "-#2", str(doc))
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    wait_for(lambda: site.printed().count("LPR-BODY-LINE") == 2, WAIT, "two copies printed",
             on_timeout=server.log_text)
    assert "Title:     Quarterly" in site.printed()
    # -J names the job where there is no -T; -h: no header page; stdin without files.
    before = site.printed()
    proc = site.run("lpr", "-h", "-J", "named", stdin=b"FROM-STDIN\n")
    assert (proc.returncode, proc.stdout) == (0, "")
    wait_for(lambda: "FROM-STDIN" in site.printed(), WAIT, "stdin printed",
             on_timeout=server.log_text)
    assert "Job:" not in site.printed()[len(before):]


def test_lp_prints_the_request_id_and_hold_resume(site: Site, server: ServerProcess) -> None:
    doc = _doc(site, "memo.txt", "LP-HELD-BODY\n")
    proc = site.run("lp", "-d", "local", "-t", "Memo", "-n", "1", "-H", "hold", str(doc))
    assert proc.returncode == 0, proc.stderr
    job = _request_id(proc.stdout)
    wait_for(lambda: _state(site, job) == JobState.HELD, WAIT, "the job held",
             on_timeout=server.log_text)
    assert "LP-HELD-BODY" not in site.printed()
    proc = site.run("lp", "-i", f"LOCAL-{job}", "-H", "resume")
    assert (proc.returncode, proc.stderr) == (0, "")
    wait_for(lambda: "LP-HELD-BODY" in site.printed(), WAIT, "the resumed job printed",
             on_timeout=server.log_text)
    assert "Title:     Memo" in site.printed()
    # -s: silent; CUPS counts standard input as 0 files.
    assert site.run("lp", "-s", str(doc)).stdout == ""
    proc = site.run("lp", "-o", "job-hold-until=indefinite", stdin=b"x\n")
    assert re.fullmatch(r"request id is LOCAL-[0-9A-Z]{18} \(0 file\(s\)\)\n", proc.stdout)


def test_unknown_printers_and_options_fail_with_one_line(site: Site) -> None:
    doc = _doc(site, "a.txt", "a\n")
    for command, args in (("lpr", ["-P", "NOSUCH", str(doc)]), ("lp", ["-d", "NOSUCH"]),
                          ("lpq", ["-PNOSUCH"]), ("lpstat", ["-p", "NOSUCH"])):
        proc = site.run(command, *args, stdin=b"x\n")
        assert proc.returncode == 1, (command, proc)
        assert proc.stderr.startswith(f"{command}: unknown printer"), proc.stderr
        assert "(known: LOCAL)" in proc.stderr
        assert "LOCAL" in proc.stderr and proc.stderr.count("\n") == 1
    proc = site.run("lpr", "-z", str(doc))
    assert (proc.returncode, proc.stderr) == (1, "lpr: unknown option -z (see docs/COMPAT.md)\n")
    proc = site.run("lpr", "-#", "many", str(doc))
    assert proc.returncode == 1 and "copies" in proc.stderr
    assert master_jobs(site.spool) == {} and not os.listdir(site.spool / "new")


# -- the queue commands ---------------------------------------------------------------


def _held_jobs(site: Site, n: int) -> list[str]:
    doc = _doc(site, "q.txt", "queued\n")
    ids = [_request_id(site.run("lp", "-H", "hold", "-t", f"job{i}", str(doc)).stdout)
           for i in range(n)]
    wait_for(lambda: all(_state(site, j) == JobState.HELD for j in ids), WAIT,
             "the held jobs in the master file")
    return ids


def test_lpq_lpstat_show_the_queue(site: Site, server: ServerProcess) -> None:
    assert site.run("lpq").stdout.endswith("no entries\n")
    ids = _held_jobs(site, 2)
    wait_for(lambda: "LOCAL is ready" in site.run("lpq").stdout, WAIT, "LOCAL ready")
    out = site.run("lpq").stdout.splitlines()
    assert out[0] == "LOCAL is ready"
    assert out[1].split() == ["Rank", "Owner", "Job", "File(s)", "Total", "Size"]
    assert [line.split()[2] for line in out[2:]] == ids
    assert all(line.split()[-2:] == ["7", "bytes"] for line in out[2:])
    assert site.run("lpq", "-a").stdout.count("\n") == 3  # header + 2 jobs
    lines = site.run("lpstat", "-o").stdout.splitlines()
    assert [line.split()[0] for line in lines] == [f"LOCAL-{j}" for j in ids]
    assert site.run("lpstat", "-d").stdout == "system default destination: LOCAL\n"
    assert site.run("lpstat", "-p").stdout == "printer LOCAL is idle.  enabled\n"
    full = site.run("lpstat", "-t").stdout
    assert full.startswith("scheduler is running\nsystem default destination: LOCAL\n")
    assert "LOCAL accepting requests" in full and f"LOCAL-{ids[1]}" in full
    # A user's own default wins over the site's for lpstat -d (LPDEST first, as CUPS).
    env = dict(site.env, LPDEST="LOCAL", PRINTER="NOSUCH")
    assert site.run("lpstat", "-d", env=env).stdout == "system default destination: LOCAL\n"


def test_lprm_and_cancel_take_jobs_away(site: Site, server: ServerProcess) -> None:
    ids = _held_jobs(site, 5)
    proc = site.run("lprm", ids[0][-6:])  # a unique suffix
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    assert ids[0] not in master_jobs(site.spool)
    proc = site.run("cancel", f"LOCAL-{ids[1]}")
    assert (proc.returncode, proc.stderr) == (0, "")
    proc = site.run("lprm")  # no JOB: the current (first) job of yours
    assert proc.returncode == 0, proc.stderr
    assert sorted(master_jobs(site.spool)) == sorted(ids[3:])
    proc = site.run("lprm", "-P", "LOCAL", "-")
    assert proc.returncode == 0, proc.stderr
    assert master_jobs(site.spool) == {}
    more = _held_jobs(site, 2)
    assert site.run("cancel", "-a").returncode == 0
    assert not set(more) & set(master_jobs(site.spool))
    proc = site.run("cancel", "ZZZZZZ")
    assert proc.returncode == 1 and proc.stderr.startswith("cancel: no single job id")
    assert site.run("cancel").returncode == 1


def test_the_links_take_the_fast_path_without_click(site: Site) -> None:
    doc = _doc(site, "fast.txt", "fast\n")
    env = dict(site.env, PYTHONPROFILEIMPORTTIME="1")
    for command, args in (("lpr", [str(doc)]), ("lpq", []), ("lpstat", ["-d"])):
        proc = site.run(command, *args, env=env)
        assert proc.returncode == 0, proc.stderr
        imported = [line.split("|")[-1].strip() for line in proc.stderr.splitlines()
                    if line.startswith("import time:")]
        assert "printnet.compat" in imported and "printnet.api" in imported
        assert not [m for m in imported if m.split(".")[0] == "click"], command
