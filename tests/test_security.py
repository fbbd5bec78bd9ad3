"""Attacks on a multi-user spool, run as real, separate Unix users.

The module sets up what docs/SECURITY.md describes: a service account
(`pnt_svc`) that owns the spool and runs the print server, a spool group
(`pnt_spool`, only the service account in it), stations `pnt_alice`,
`pnt_bob` (an operator through `OPERATORS @pnt_ops`) and `pnt_mallory`,
the attacker.  Every command of a user runs in its own process with that
user's uid, gid and groups (`subprocess` with `user=`/`group=`/
`extra_groups=`); the server is a real `printnet server` process running as
the service account.  Users and groups are created once (`useradd`,
`groupadd`) and left in place for later runs.

Each attack asserts that it failed, with the reason a user would see, and
that nothing else was harmed: alice's parked job is still queued with its
data intact, the server is alive and still prints, and no secret reached a
printer, a record or a log.

Needs root (CI runs as root) and useradd; without them the module is skipped,
and in CI (`_ci_strict`) it fails with the reason.
"""

from __future__ import annotations

import errno
import grp
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from _ci_strict import unavailable
from accounts import Account, copy_libs, ensure_group, ensure_user

from printnet import config as config_mod
from printnet.errors import ConfigError, SpoolError
from printnet.masterfile import Job
from printnet.passwords import hash_password, hash_queue_password
from printnet.spool import master as master_io
from printnet.spool.layout import Spool

pytestmark = [pytest.mark.users, pytest.mark.slow]

IS_ROOT = os.geteuid() == 0
SVC, SPOOL_GROUP, OPS_GROUP = "pnt_svc", "pnt_spool", "pnt_ops"
ALICE, BOB, MALLORY = "pnt_alice", "pnt_bob", "pnt_mallory"
QUEUE_PASSWORD = "open sesame"
CONSOLE_PASSWORD = "console secret"
SERVER = "SEC"
WAIT = 20.0  # seconds any outcome may take (a loaded CI machine)
VICTIM_BODY = b"alice's private report\n" * 3  # alice's parked job: nobody may see it

# The attacker's toolkit, importable by every user's processes (it is copied
# into the world-readable library folder).  It writes spool files the way a
# hostile station could, bypassing printnet's own station code.
TOOLKIT = r'''
import hashlib, json, os, sys
from datetime import UTC, datetime
from pathlib import Path
from printnet.model import PrintRequest, SpooledFile, ControlRequest, ControlAction
from printnet.spool.layout import Spool
from printnet.spool.publish import unique_name
from printnet.spool.submit import new_id


def publish(sp, name, raw):
    tmp = sp.tmp / unique_name()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
    os.fchmod(fd, 0o640)
    os.write(fd, raw)
    os.close(fd)
    os.rename(tmp, sp.new / name)


def data_folder(sp, job_id, body, *, symlink=None, fifo=False):
    folder = sp.data / job_id
    os.mkdir(folder, 0o770)
    path = folder / "0"
    if symlink is not None:
        os.symlink(symlink, path)
    elif fifo:
        os.mkfifo(path, 0o640)
    else:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        os.fchmod(fd, 0o640)
        os.write(fd, body)
        os.close(fd)
    os.chmod(folder, 0o770)


def forge(spool, *, user, printer="LP", body=b"forged\n", changes=None, name=None,
          job_id=None, make_data=True, symlink=None, fifo=False):
    sp = Spool.open(Path(spool))
    job_id = job_id or new_id()
    if make_data:
        data_folder(sp, job_id, body, symlink=symlink, fifo=fifo)
    req = PrintRequest(
        id=job_id, user=user, station="evil", submitted=datetime.now(UTC), printer=printer,
        header=False,
        files=(SpooledFile("0", "x", len(body), hashlib.sha256(body).hexdigest()),),
    ).to_json()
    req.update(changes or {})
    publish(sp, name or f"{job_id}.req", json.dumps(req).encode())
    print(job_id)


def forge_ref(spool, *, user, ref, body, mtime=0, printer="LP"):
    """A request naming `ref` (by reference) as if `body` were its bytes."""
    sp = Spool.open(Path(spool))
    job_id = new_id()
    folder = sp.data / job_id
    os.mkdir(folder, 0o770)
    os.chmod(folder, 0o770)
    req = PrintRequest(
        id=job_id, user=user, station="evil", submitted=datetime.now(UTC), printer=printer,
        header=False, files=(SpooledFile("0", "x", len(body), hashlib.sha256(body).hexdigest(),
                                         ref=ref, mtime_ns=mtime),),
    )
    publish(sp, f"{job_id}.req", req.encode())
    print(job_id)


def forge_control(spool, *, user, action, jobs):
    sp = Spool.open(Path(spool))
    ctl = ControlRequest(new_id(), user, "evil", datetime.now(UTC), ControlAction(action),
                         tuple(jobs))
    publish(sp, f"{ctl.id}.ctl", ctl.encode())
    print(ctl.id)


def try_(what, fn, *args):
    """Run fn(*args); print 'ok <what>' or 'denied <what> <errno name>'."""
    import errno as errno_mod
    try:
        fn(*args)
    except OSError as exc:
        print("denied", what, errno_mod.errorcode.get(exc.errno, exc.errno))
        return
    print("ok", what)
'''


# ---------------------------------------------------------------------------
# Accounts


# ---------------------------------------------------------------------------
# The world: accounts, an installation, a server running as the service account


@dataclass
class World:
    base: Path
    lib: Path
    python: str
    accounts: dict[str, Account]
    project: Path
    secret: bytes
    secret_path: Path
    server: subprocess.Popen[bytes] | None = None
    victim: str = ""
    victim_sha: str = ""
    log: Path = field(default_factory=Path)

    @property
    def spool(self) -> Spool:
        return Spool(self.project / "spool")

    @property
    def etc(self) -> Path:
        return self.project / "etc"

    @property
    def output(self) -> Path:
        return self.project / "output"

    def env(self, account: Account, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {
            "PATH": "/usr/bin:/bin", "HOME": str(self.base / "home"), "LANG": "C.UTF-8",
            "USER": account.name, "LOGNAME": account.name,
            "PYTHONPATH": str(self.lib), "PYTHONDONTWRITEBYTECODE": "1",
            "PRINTNET_SPOOL": str(self.spool.root), "PRINTNET_ETC": str(self.etc),
            "PRINTNET_RUNTIME_DIR": str(self.base / "run"),
        }
        env.update(extra or {})
        return env

    def popen_kwargs(self, user: str) -> dict[str, Any]:
        account = self.accounts[user]
        return {"user": account.uid, "group": account.gid, "extra_groups": list(account.groups),
                "cwd": str(self.base / "home"), "umask": 0o022}

    def run(self, user: str, *args: str, env: dict[str, str] | None = None,
            input: bytes | None = None, umask: int = 0o022) -> subprocess.CompletedProcess[str]:
        """`printnet ARGS` as `user`, in its own process."""
        kwargs = self.popen_kwargs(user)
        kwargs["umask"] = umask
        if input is None:
            kwargs["stdin"] = subprocess.DEVNULL  # never a terminal: nothing prompts
        result = subprocess.run(
            [self.python, "-m", "printnet", *args], env=self.env(self.accounts[user], env),
            input=input, capture_output=True, timeout=60, check=False, **kwargs)
        return subprocess.CompletedProcess(result.args, result.returncode,
                                           result.stdout.decode("utf-8", "replace"),
                                           result.stderr.decode("utf-8", "replace"))

    def py(self, user: str, code: str) -> subprocess.CompletedProcess[str]:
        """Python `code` as `user` (the toolkit is importable as `t`)."""
        return subprocess.run(
            [self.python, "-c", "import toolkit as t\n" + code],
            env=self.env(self.accounts[user]), capture_output=True, text=True, timeout=120,
            check=False, stdin=subprocess.DEVNULL, **self.popen_kwargs(user))

    def request(self, user: str, *args: str, body: bytes = b"hello\n",
                env: dict[str, str] | None = None, umask: int = 0o022) -> str:
        """Queue a file (written by `user`) with `printnet request ARGS`; the job id."""
        src = self.user_file(user, body)
        result = self.run(user, "request", *args, str(src), env=env, umask=umask)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    def user_file(self, user: str, body: bytes) -> Path:
        folder = self.base / "home" / user
        path = folder / f"f{time.monotonic_ns()}.txt"
        path.write_bytes(body)
        os.chown(path, self.accounts[user].uid, self.accounts[user].gid)
        os.chmod(path, 0o600)
        return path

    # -- observing (as root) --------------------------------------------------------

    def jobs(self) -> dict[str, Job]:
        return master_io.load(self.spool).jobs

    def wait(self, what: str, probe: Callable[[], Any], timeout: float = WAIT) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = probe()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; server log:\n"
                                     + self.log.read_text(errors="replace")[-3000:])
            time.sleep(0.05)

    def job(self, job_id: str) -> Job:
        found: Job = self.wait(f"job {job_id} in the master file",
                               lambda: self.jobs().get(job_id))
        return found

    def rejected(self, name: str) -> str:
        path = self.spool.rejected / f"{name}.reason"
        text: str = self.wait(f"rejection of {name}",
                              lambda: path.exists() and path.read_text())
        return text

    def done(self, job_id: str) -> dict[str, Any]:
        path = self.spool.done / f"{job_id}.json"
        record: dict[str, Any] = self.wait(f"done record of {job_id}",
                                           lambda: path.exists() and json.loads(path.read_text()))
        return record

    def output_bytes(self) -> bytes:
        return b"".join(p.read_bytes() for p in sorted(self.output.glob("*.prn")))

    def assert_unharmed(self, *, prints: bool = False) -> None:
        """Alice's parked job is intact; the server runs; (optionally) it still prints."""
        assert self.server is not None and self.server.poll() is None, "the server died"
        job = self.jobs().get(self.victim)
        assert job is not None and job.user == ALICE and job.state.value == "pending", job
        data = (self.spool.data / self.victim / "0").read_bytes()
        assert hashlib.sha256(data).hexdigest() == self.victim_sha
        if prints:
            marker = f"canary {time.monotonic_ns()}".encode()
            job_id = self.request(ALICE, "-P", "LP", "--no-header", body=marker + b"\n")
            assert self.done(job_id)["outcome"] == "completed"
            assert marker in (self.output / "LP.prn").read_bytes()
        printed = self.output_bytes()
        assert self.secret not in printed and VICTIM_BODY.splitlines()[0] not in printed


def _find_python(world: World) -> str | None:
    """An interpreter (>= 3.11) the station users may run: ours, else the system's."""
    candidates = [os.path.realpath(sys.executable), shutil.which("python3.11") or "",
                  "/usr/bin/python3", "/usr/local/bin/python3", shutil.which("python3") or ""]
    for candidate in dict.fromkeys(c for c in candidates if c):
        world.python = candidate
        try:
            probe = world.py(ALICE, "import sys, printnet.cli, click, serial\n"
                             "assert sys.version_info >= (3, 11)")
        except (OSError, subprocess.SubprocessError):
            continue
        if probe.returncode == 0:
            return candidate
    return None


SERVER_CMD = f"""\
SERVER NAME={SERVER}
SPOOL spool
SCAN 0.1
LEASE 5
OPERATORS root,@{OPS_GROUP}
PASSWORD {{console}}
QUOTA * PAGES=4 PER=WEEK PRINTER=QP
"""

PRINTERS_CMD = """\
PRINTER LP PORT=file://../output/LP.prn
PRINTER SECRET PORT=file://../output/SECRET.prn HEADER=NONE PASSWORD={queue}
PRINTER SMALL PORT=file://../output/SMALL.prn HEADER=NONE MAXCOPIES=3 MAXBYTES=4K MAXFILE=2K \
MAXPAGES=2
PRINTER BIG PORT=file://../output/BIG.prn HEADER=NONE MAXPAGES=1 OVERLIMIT=HOLD
PRINTER QP PORT=file://../output/QP.prn HEADER=NONE
PRINTER PARKED PORT=file://../output/PARKED.prn STOPPED=YES
SETUP STANDARD FORM=PLAIN LENGTH=10 WIDTH=80
DEFAULT LP
"""


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    # In CI a fixture that cannot come up fails with its reason; elsewhere it skips.
    cannot = pytest.fail if os.environ.get("CI") == "true" else pytest.skip
    if not IS_ROOT:
        unavailable("needs root: creates Unix users and runs commands as them")
    if shutil.which("useradd") is None:
        unavailable("needs useradd (package passwd) to create the test users")
    spool_gid = ensure_group(SPOOL_GROUP)
    ensure_group(OPS_GROUP)
    accounts = {
        SVC: ensure_user(SVC, primary=SPOOL_GROUP),
        ALICE: ensure_user(ALICE),
        BOB: ensure_user(BOB, extra=(OPS_GROUP,)),
        MALLORY: ensure_user(MALLORY),
    }
    base = Path(tempfile.mkdtemp(prefix="printnet-sec-", dir="/tmp"))
    os.chmod(base, 0o755)
    try:
        lib = base / "lib"
        copy_libs(lib, {"toolkit.py": TOOLKIT})
        home = base / "home"
        home.mkdir(mode=0o755)
        for name, account in accounts.items():
            (home / name).mkdir(mode=0o700)
            os.chown(home / name, account.uid, account.gid)
        run = base / "run"  # the server's control socket folder (console)
        run.mkdir(mode=0o700)
        os.chown(run, accounts[SVC].uid, accounts[SVC].gid)
        secret_dir = base / "secret"
        secret_dir.mkdir(mode=0o700)
        secret = f"TOP-SECRET-{os.urandom(8).hex()}".encode()
        secret_path = secret_dir / "0"  # named like a data file, for folder swaps
        secret_path.write_bytes(secret + b"\n")
        os.chmod(secret_path, 0o600)
        project = base / "site"
        project.mkdir(mode=0o755)
        w = World(base, lib, "", accounts, project, secret, secret_path)
        python = _find_python(w)
        if python is None:
            unavailable("no Python >= 3.11 that the test users may run (ours is in a "
                        "private folder and there is no system python3)")
        # `printnet init` as root gives everything to the service account and group.
        init = subprocess.run(
            [sys.executable, "-m", "printnet", "--spool", str(w.spool.root), "--etc",
             str(w.etc), "init", "--owner", SVC, "--group", SPOOL_GROUP],
            capture_output=True, text=True, check=False)
        assert init.returncode == 0, init.stderr
        assert "unsafe" not in init.stderr, init.stderr
        (w.etc / "server.cmd").write_text(
            SERVER_CMD.format(console=hash_password(CONSOLE_PASSWORD)))
        (w.etc / "printers.cmd").write_text(
            PRINTERS_CMD.format(queue=hash_queue_password(QUEUE_PASSWORD)))
        for path in (w.etc, w.output):
            for p in [path, *path.iterdir()]:
                os.lchown(p, accounts[SVC].uid, spool_gid)
        os.chmod(w.etc / "server.cmd", 0o600)
        os.chmod(w.etc / "printers.cmd", 0o600)
        w.log = base / "server.log"
        with open(w.log, "wb") as log:
            w.server = subprocess.Popen(
                [python, "-m", "printnet", "server"], env=w.env(accounts[SVC]),
                stdout=log, stderr=subprocess.STDOUT, **w.popen_kwargs(SVC))
        status = w.spool.servers / f"{SERVER}.json"
        w.wait("the server to run", lambda: status.exists()
               and json.loads(status.read_text()).get("state") == "running")
        w.victim = w.request(ALICE, "-P", "PARKED", body=VICTIM_BODY)
        w.victim_sha = hashlib.sha256(VICTIM_BODY).hexdigest()
        w.job(w.victim)
        yield w
    finally:
        server = locals().get("w")
        if isinstance(server, World) and server.server is not None:
            server.server.send_signal(signal.SIGTERM)
            try:
                server.server.wait(20)
            except subprocess.TimeoutExpired:
                server.server.kill()
                server.server.wait()
        shutil.rmtree(base, ignore_errors=True)


# ---------------------------------------------------------------------------
# The set-up itself


def test_the_spool_is_set_up_for_several_users(world: World) -> None:
    from printnet.security import check_spool

    svc = world.accounts[SVC]
    st = world.spool.root.stat()
    assert (st.st_uid, st.st_gid) == (svc.uid, grp.getgrnam(SPOOL_GROUP).gr_gid)
    assert check_spool(world.spool, euid=svc.uid) == []
    for name in ("tmp", "new", "data"):
        assert oct((world.spool.root / name).stat().st_mode & 0o7777) == oct(0o3733)
    # A station's job: its data belongs to the spool group, readable by the
    # server only; the request in received/ was sealed by the server.
    job_id = world.request(ALICE, "-P", "PARKED", umask=0o077)
    world.job(job_id)
    folder = world.spool.data / job_id
    fst, dst = (folder / "0").stat(), folder.stat()
    assert (fst.st_uid, fst.st_gid, fst.st_mode & 0o777) == (
        world.accounts[ALICE].uid, grp.getgrnam(SPOOL_GROUP).gr_gid, 0o640)
    assert dst.st_mode & 0o777 == 0o770
    sealed = (world.spool.received / f"{job_id}.req").stat()
    assert sealed.st_uid == svc.uid
    world.assert_unharmed()


# ---------------------------------------------------------------------------
# Identity: forged users, other users' jobs


def test_forged_user_field_is_rejected(world: World) -> None:
    result = world.py(MALLORY, f"t.forge({str(world.spool.root)!r}, user={ALICE!r})")
    assert result.returncode == 0, result.stderr
    job_id = result.stdout.strip()
    reason = world.rejected(f"{job_id}.req")
    assert f"says '{ALICE}' but the file belongs to '{MALLORY}'" in reason
    assert job_id not in world.jobs()
    world.assert_unharmed()


def test_forged_control_request_cannot_cancel_anothers_job(world: World) -> None:
    result = world.py(MALLORY, f"t.forge_control({str(world.spool.root)!r}, user={ALICE!r}, "
                               f"action='cancel', jobs=[{world.victim!r}])")
    ctl = result.stdout.strip()
    assert f"belongs to '{MALLORY}'" in world.rejected(f"{ctl}.ctl")
    world.assert_unharmed()


@pytest.mark.parametrize("verb", ["cancel", "hold"])
def test_a_user_cannot_cancel_or_hold_anothers_job(world: World, verb: str) -> None:
    result = world.run(MALLORY, verb, world.victim)
    assert result.returncode == 1
    assert f"{world.victim}: {verb} refused: not your job" in result.stderr
    world.assert_unharmed()


def test_a_user_cannot_release_anothers_held_job(world: World) -> None:
    job_id = world.request(ALICE, "-P", "PARKED", "--hold")
    assert world.job(job_id).state.value == "held"
    result = world.run(MALLORY, "release", job_id)
    assert result.returncode == 1 and "not your job" in result.stderr
    assert world.jobs()[job_id].state.value == "held"
    world.assert_unharmed()


def test_an_operator_by_group_may_act_on_any_job(world: World) -> None:
    job_id = world.request(ALICE, "-P", "PARKED", "--hold")
    world.job(job_id)
    result = world.run(BOB, "cancel", job_id)  # bob is in @pnt_ops
    assert result.returncode == 0, result.stderr
    record = world.done(job_id)
    assert record["outcome"] == "canceled" and record["reason"] == f"canceled by {BOB}"
    world.assert_unharmed()


def test_an_over_limit_job_waits_for_an_operator(world: World) -> None:
    job_id = world.request(ALICE, "-P", "BIG", body=b"line\n" * 25)  # 4 pages > MAXPAGES 1
    job = world.job(job_id)
    assert job.state.value == "held"
    assert job.note == "Over limit: 4 pages; BIG allows 1 per job (MAXPAGES)"
    refused = world.run(ALICE, "release", job_id)
    assert refused.returncode == 1 and "only an operator can release it" in refused.stderr
    assert world.jobs()[job_id].state.value == "held"
    released = world.run(BOB, "release", job_id)
    assert released.returncode == 0, released.stderr
    assert world.done(job_id)["outcome"] == "completed"
    world.assert_unharmed()


def test_a_user_over_quota_sees_why_their_job_is_held(world: World) -> None:
    first = world.request(ALICE, "-P", "QP", body=b"x\n" * 25)  # 4 pages of 4 this week
    assert world.done(first)["outcome"] == "completed"
    assert world.done(first)["pages"] == 4
    second = world.request(ALICE, "-P", "QP", body=b"y\n" * 15)  # 2 more: 6 > 4
    assert world.job(second).state.value == "held"
    status = world.run(ALICE, "status", second)
    assert "Quota exceeded: 6 of 4 pages this week on QP" in status.stdout
    assert world.run(ALICE, "release", second).returncode == 1
    other = world.request(MALLORY, "-P", "QP", body=b"z\n" * 15)  # mallory has her own 4
    assert world.done(other)["outcome"] == "completed"
    assert world.run(BOB, "release", second).returncode == 0  # the operator overrides
    assert world.done(second)["outcome"] == "completed"
    world.assert_unharmed()


# ---------------------------------------------------------------------------
# Other users' files


def test_stations_cannot_read_or_list_others_requests_and_data(world: World) -> None:
    job_id = world.request(ALICE, "-P", "PARKED", body=b"alice only\n")
    world.job(job_id)
    sp = world.spool
    checks = {
        "list-data": f"os.listdir({str(sp.data)!r})",
        "list-new": f"os.listdir({str(sp.new)!r})",
        "list-tmp": f"os.listdir({str(sp.tmp)!r})",
        "read-data": f"open({str(sp.data / job_id / '0')!r}, 'rb').read()",
        "list-job-folder": f"os.listdir({str(sp.data / job_id)!r})",
        "read-request": f"open({str(sp.received / (job_id + '.req'))!r}, 'rb').read()",
    }
    code = "import os\n" + "".join(
        f"t.try_({what!r}, lambda: {expr})\n" for what, expr in checks.items())
    result = world.py(MALLORY, code)
    assert result.returncode == 0, result.stderr
    for what in checks:
        assert f"denied {what} EACCES" in result.stdout, result.stdout
    world.assert_unharmed()


def test_stations_cannot_remove_or_replace_others_files(world: World) -> None:
    sp = world.spool
    parked = sp.new / f".alice-{time.monotonic_ns()}"  # a dot-name: intake ignores it
    world.py(ALICE, f"open({str(parked)!r}, 'w').write('mine')")
    code = (
        "import os\n"
        f"t.try_('unlink', os.unlink, {str(parked)!r})\n"
        f"t.try_('rename', os.rename, {str(parked)!r}, {str(sp.new / 'x')!r})\n"
        f"t.try_('rmdir-data', os.rename, {str(sp.data / world.victim)!r}, "
        f"{str(sp.data / 'stolen')!r})\n"
        f"t.try_('write-data', open, {str(sp.data / world.victim / '0')!r}, 'ab')\n"
    )
    result = world.py(MALLORY, code)
    for what in ("unlink", "rename", "rmdir-data", "write-data"):
        assert f"denied {what}" in result.stdout, result.stdout
    assert parked.read_text() == "mine"
    world.assert_unharmed()


@pytest.mark.parametrize("target", ["received", "master", "locks", "servers", "done",
                                    "rejected", "log"])
def test_stations_cannot_write_the_servers_folders(world: World, target: str) -> None:
    folder = world.spool.root / target
    result = world.py(MALLORY, f"t.try_('create', open, {str(folder / 'evil')!r}, 'w')")
    assert "denied create EACCES" in result.stdout, result.stdout
    world.assert_unharmed()


def test_a_forged_lock_file_cannot_be_planted(world: World) -> None:
    locks = world.spool.locks
    record = ("printnet-lock 1\ntoken=evil\nhost=far\npid=1\nholder=evil\n"
              "lease=604800\nacquired=2999-01-01T00:00:00Z\n")
    code = "".join(
        f"t.try_({name!r}, lambda: open({str(locks / name)!r}, 'x').write({record!r}))\n"
        for name in ("master", f"server.{SERVER}", "master.owner.evil"))
    result = world.py(MALLORY, code)
    assert result.stdout.count("denied") == 3, result.stdout
    assert not (locks / "master.owner.evil").exists()
    world.assert_unharmed(prints=True)  # the master lock still comes and goes


def test_the_sealed_request_cannot_be_changed_after_intake(world: World) -> None:
    job_id = world.request(MALLORY, "-P", "LP", "--hold", body=b"small\n")
    world.job(job_id)
    received = world.spool.received / f"{job_id}.req"
    result = world.py(MALLORY, f"t.try_('write', open, {str(received)!r}, 'r+b')")
    assert "denied write EACCES" in result.stdout, result.stdout
    world.assert_unharmed()


# ---------------------------------------------------------------------------
# Spooled data swapped for something else


def test_a_symlink_in_place_of_data_at_intake(world: World) -> None:
    result = world.py(MALLORY, f"t.forge({str(world.spool.root)!r}, user={MALLORY!r}, "
                               f"symlink={str(world.secret_path)!r})")
    job_id = result.stdout.strip()
    assert "files[0]: not a regular file" in world.rejected(f"{job_id}.req")
    world.assert_unharmed()


def test_a_symlink_swapped_in_after_intake_is_not_followed(world: World) -> None:
    # Mallory knows what alice's document says (so the sha256 would match) and
    # points her own job's data at alice's copy, which the server could read.
    job_id = world.request(MALLORY, "-P", "LP", "--hold", "--no-header", body=VICTIM_BODY)
    world.job(job_id)
    data = world.spool.data / job_id / "0"
    target = world.spool.data / world.victim / "0"
    swap = world.py(MALLORY, f"import os\nos.unlink({str(data)!r})\n"
                             f"os.symlink({str(target)!r}, {str(data)!r})")
    assert swap.returncode == 0, swap.stderr
    assert world.run(MALLORY, "release", job_id).returncode == 0
    record = world.done(job_id)
    assert record["outcome"] == "aborted" and "symbolic link" in record["reason"]
    world.assert_unharmed()


def test_a_folder_symlink_swapped_in_after_intake_is_not_followed(world: World) -> None:
    job_id = world.request(MALLORY, "-P", "LP", "--hold", "--no-header", body=VICTIM_BODY)
    world.job(job_id)
    folder = world.spool.data / job_id
    target = world.spool.data / world.victim  # alice's folder: the server may read it
    swap = world.py(MALLORY, f"import os, shutil\nshutil.rmtree({str(folder)!r})\n"
                             f"os.symlink({str(target)!r}, {str(folder)!r})")
    assert swap.returncode == 0, swap.stderr
    assert world.run(MALLORY, "release", job_id).returncode == 0
    record = world.done(job_id)
    assert record["outcome"] == "aborted" and "not a folder" in record["reason"]
    world.assert_unharmed()


def test_data_changed_after_intake_is_not_printed(world: World) -> None:
    job_id = world.request(MALLORY, "-P", "SMALL", "--hold", body=b"tiny\n")
    world.job(job_id)
    # Grow the data past SMALL's limits, keeping the same inode.
    grow = world.py(MALLORY, f"open({str(world.spool.data / job_id / '0')!r}, 'ab')"
                             ".write(b'SMUGGLED' * 1000)")
    assert grow.returncode == 0, grow.stderr
    assert world.run(MALLORY, "release", job_id).returncode == 0
    record = world.done(job_id)
    assert record["outcome"] == "aborted" and "changed since it was submitted" in record["reason"]
    assert b"SMUGGLED" not in world.output_bytes()
    world.assert_unharmed()


def test_a_hard_link_to_an_unreadable_file_is_refused(world: World) -> None:
    job_id = world.request(MALLORY, "-P", "LP", "--hold", body=b"x\n")
    world.job(job_id)
    data = world.spool.data / job_id / "0"
    code = (f"import os\nos.unlink({str(data)!r})\n"
            f"t.try_('link', os.link, {str(world.secret_path)!r}, {str(data)!r})\n")
    result = world.py(MALLORY, code)
    assert "denied link" in result.stdout, result.stdout  # protected_hardlinks, or EACCES
    assert world.run(MALLORY, "release", job_id).returncode == 0
    assert world.done(job_id)["outcome"] == "aborted"
    world.assert_unharmed()


def test_a_fifo_for_data_does_not_block_the_server(world: World) -> None:
    result = world.py(MALLORY, f"t.forge({str(world.spool.root)!r}, user={MALLORY!r}, "
                               "fifo=True)")
    job_id = result.stdout.strip()
    assert "not a regular file" in world.rejected(f"{job_id}.req")
    world.assert_unharmed(prints=True)


def test_naming_anothers_job_id_prints_nothing_of_theirs(world: World) -> None:
    # A finished job of alice's: its data folder stays until purged.
    body = b"alice's finished report\n"
    done = world.request(ALICE, "-P", "LP", "--no-header", body=body)
    assert world.done(done)["outcome"] == "completed"
    before = world.output_bytes()
    for job_id in (done, world.victim):  # finished, and live (alice's parked job)
        sealed = (world.spool.received / f"{world.victim}.req").read_bytes()
        result = world.py(MALLORY, f"t.forge({str(world.spool.root)!r}, user={MALLORY!r}, "
                                   f"job_id={job_id!r}, make_data=False, body={body!r})")
        assert result.returncode == 0, result.stderr
        world.wait("the replayed id to be taken", lambda: not (
            world.spool.new / f"{job_id}.req").exists())  # noqa: B023
        assert (world.spool.received / f"{world.victim}.req").read_bytes() == sealed
    assert "already finished" in world.rejected(f"{done}.req")
    world.assert_unharmed(prints=True)
    marker = body.strip()  # the plain driver ends lines with CR LF
    assert world.output_bytes().count(marker) == before.count(marker) == 1


# ---------------------------------------------------------------------------
# Names and fields


@pytest.mark.parametrize(("changes", "expected"), [
    ({"id": "../../etc/passwd"}, "id: invalid value '../../etc/passwd'"),
    ({"id": "../../../../../../etc/passwd"}, "id: longer than 18 characters"),
    ({"files": [{"name": "..", "original": "x", "size": 1,
                 "sha256": "0" * 64}]}, "files[0].name: invalid value '..'"),
    ({"files": [{"name": "/etc/shadow", "original": "x", "size": 1,
                 "sha256": "0" * 64}]}, "files[0].name: longer than 3 characters"),
    ({"printer": "../LP"}, "printer: invalid value"),
    ({"copies": 10**9}, "copies: 1000000000 is out of range"),
])
def test_traversal_and_out_of_range_fields_are_rejected(
    world: World, changes: dict[str, Any], expected: str,
) -> None:
    result = world.py(MALLORY, f"t.forge({str(world.spool.root)!r}, user={MALLORY!r}, "
                               f"changes={changes!r})")
    job_id = result.stdout.strip()
    assert expected in world.rejected(f"{job_id}.req")
    world.assert_unharmed()


def test_a_control_request_naming_a_path_is_rejected(world: World) -> None:
    from printnet.spool.submit import new_id

    ctl = new_id()
    raw = json.dumps({"printnet": 1, "kind": "control", "id": ctl, "user": MALLORY,
                      "station": "evil", "submitted": "2026-01-01T00:00:00Z",
                      "action": "cancel", "jobs": ["../../master"]}).encode()
    code = (f"from printnet.spool.layout import Spool\n"
            f"t.publish(Spool.open(__import__('pathlib').Path({str(world.spool.root)!r})), "
            f"{ctl + '.ctl'!r}, {raw!r})")
    result = world.py(MALLORY, code)
    assert result.returncode == 0, result.stderr
    assert "jobs[0]: not a job id" in world.rejected(f"{ctl}.ctl")
    world.assert_unharmed()


def test_odd_names_in_new_are_rejected_safely(world: World) -> None:
    code = "".join(
        f"open({str(world.spool.new / name)!r}, 'w').write('x')\n"
        for name in ("..req", "a b;rm -rf.req", "\x1b[2Jclear.req", "x" * 200))
    result = world.py(MALLORY, code)
    assert result.returncode == 0, result.stderr
    world.wait("new/ to empty", lambda: not [
        n for n in os.listdir(world.spool.new) if not n.startswith(".")])
    for name in os.listdir(world.spool.rejected):
        assert "/" not in name and "\x1b" not in name
    world.assert_unharmed()


ESCAPES = "\x1b]0;owned\x07\x1b[2J\x9b31m\u202eevil\r\nsecond line\x08"


def test_escape_sequences_in_titles_reach_no_printer_log_or_terminal(world: World) -> None:
    job_id = world.request(MALLORY, "-P", "LP", "-t", ESCAPES, body=b"body\n")
    record = world.done(job_id)
    title = record["job"]["title"]
    assert title == "]0;owned[2J31mevil  second line"
    status = world.run(BOB, "status", job_id)
    for text in (status.stdout, (world.spool.log / "events.log").read_text(),
                 (world.output / "LP.prn").read_bytes().decode("latin-1")):
        assert not any(c in text for c in "\x1b\x9b\x07\x00\x08\u202e")
    world.assert_unharmed()


def test_escape_sequences_in_a_forged_request_are_cleaned(world: World) -> None:
    changes = {"title": ESCAPES + "\x00", "station": "evil",
               "files": [{"name": "0", "original": ESCAPES + "\x00", "size": 7,
                          "sha256": hashlib.sha256(b"forged\n").hexdigest()}]}
    result = world.py(MALLORY, f"t.forge({str(world.spool.root)!r}, user={MALLORY!r}, "
                               f"changes={changes!r})")
    job_id = result.stdout.strip()
    record = world.done(job_id)
    assert "\x1b" not in json.dumps(record, ensure_ascii=False)
    assert not any(c in record["job"]["title"] for c in "\x1b\x9b\x07\u202e\r\n")
    world.assert_unharmed()


# ---------------------------------------------------------------------------
# Sizes and limits


@pytest.mark.parametrize(("args", "body", "expected"), [
    (["-n", "50"], b"x\n", "copies: 50 is over SMALL's limit of 3"),
    ([], b"y" * 5000, "files: 5000 bytes is over SMALL's limit of 4096"),
    ([], b"y\n" * 1500, "files[0]: 3000 bytes is over SMALL's limit of 2048 per file"),
    ([], b"z\n" * 25, "pages: 4 pages is over SMALL's limit of 2"),
])
def test_over_limit_requests_are_rejected_never_truncated(
    world: World, args: list[str], body: bytes, expected: str,
) -> None:
    before = (world.output / "SMALL.prn").read_bytes() if (world.output / "SMALL.prn").exists() \
        else b""
    job_id = world.request(MALLORY, "-P", "SMALL", *args, body=body)
    assert expected in world.rejected(f"{job_id}.req")
    status = world.run(MALLORY, "status", job_id)
    assert "rejected" in status.stdout and expected in status.stdout
    after = (world.output / "SMALL.prn").read_bytes() if (world.output / "SMALL.prn").exists() \
        else b""
    assert after == before
    world.assert_unharmed()


def test_an_oversized_request_file_is_rejected_unread(world: World) -> None:
    result = world.py(MALLORY, f"t.forge({str(world.spool.root)!r}, user={MALLORY!r}, "
                               "changes={'title': 'x' * 300 * 1024})")
    job_id = result.stdout.strip()
    assert "larger than" in world.rejected(f"{job_id}.req")
    world.assert_unharmed()


# ---------------------------------------------------------------------------
# Passwords


def test_a_queue_password_is_required_and_checked(world: World) -> None:
    missing = world.request(ALICE, "-P", "SECRET", body=b"no password\n")
    assert "password: SECRET needs a password" in world.rejected(f"{missing}.req")
    wrong = world.request(ALICE, "-P", "SECRET", "--password-env", "PW", body=b"wrong\n",
                          env={"PW": "guess"})
    assert "password: wrong password for SECRET" in world.rejected(f"{wrong}.req")
    right = world.request(ALICE, "-P", "SECRET", "--password-env", "PW", body=b"right\n",
                          env={"PW": QUEUE_PASSWORD})
    assert world.done(right)["outcome"] == "completed"
    printed = (world.output / "SECRET.prn").read_bytes()
    assert b"right" in printed and b"wrong" not in printed and b"no password" not in printed
    # The request file on the shared disk never carried the password.
    assert QUEUE_PASSWORD.encode() not in (world.spool.done / f"{right}.json").read_bytes()
    world.assert_unharmed()


def test_request_asks_for_the_queue_password_on_a_terminal(world: World) -> None:
    import pty

    src = world.user_file(ALICE, b"typed at a terminal\n")
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(
            [world.python, "-m", "printnet", "request", "-P", "SECRET", str(src)],
            stdin=slave, stdout=subprocess.PIPE, stderr=slave, start_new_session=True,
            env=world.env(world.accounts[ALICE]), **world.popen_kwargs(ALICE))
        os.close(slave)
        seen = b""
        deadline = time.monotonic() + WAIT
        while b"Queue password for SECRET: " not in seen:
            assert time.monotonic() < deadline, seen
            seen += os.read(master, 1024)
        os.write(master, QUEUE_PASSWORD.encode() + b"\n")
        out, _ = proc.communicate(timeout=WAIT)
    finally:
        os.close(master)
    assert proc.returncode == 0
    job_id = out.decode().strip()
    assert world.done(job_id)["outcome"] == "completed"
    assert b"typed at a terminal" in (world.output / "SECRET.prn").read_bytes()
    world.assert_unharmed()


def test_password_guessing_is_locked_out(world: World) -> None:
    guesses = [world.request(MALLORY, "-P", "SECRET", "--password-env", "PW",
                             body=b"guess\n", env={"PW": f"guess{i}"}) for i in range(5)]
    for job_id in guesses:
        assert "wrong password" in world.rejected(f"{job_id}.req")
    # Even the right password is refused now: guessing gains nothing.
    right = world.request(MALLORY, "-P", "SECRET", "--password-env", "PW", body=b"lucky\n",
                          env={"PW": QUEUE_PASSWORD})
    assert "too many wrong passwords for SECRET" in world.rejected(f"{right}.req")
    assert b"lucky" not in world.output_bytes()
    # Other users are not locked out.
    alice = world.request(ALICE, "-P", "SECRET", "--password-env", "PW", body=b"alice ok\n",
                          env={"PW": QUEUE_PASSWORD})
    assert world.done(alice)["outcome"] == "completed"
    world.assert_unharmed()


def test_console_commands_need_the_password(world: World) -> None:
    before = (world.etc / "printers.cmd").read_bytes()
    # Mallory cannot even reach the console of the service account's server.
    evil = world.run(MALLORY, "console", "--server", SERVER, "CP", "STOP", "LP")
    assert evil.returncode == 3 and "refusing a planted control folder" in evil.stderr
    # Without --server she is told why she sees none: it is not hers to reach.
    none = world.run(MALLORY, "console", "I")
    assert none.returncode != 0 and "no print server is running" not in none.stderr, none
    assert f"as user {SVC}" in none.stderr and "not allowed to reach it" in none.stderr, none
    sock = world.base / "run" / f"{SERVER}.sock"  # nor by talking to the socket herself
    raw = world.py(MALLORY, "import socket\ns = socket.socket(socket.AF_UNIX)\n"
                            f"t.try_('connect', s.connect, {str(sock)!r})")
    assert "denied connect EACCES" in raw.stdout, raw.stdout + raw.stderr
    # The service account reaches it, but changes need the console password.
    bare = world.run(SVC, "console", "--server", SERVER, "CP", "STOP", "LP")
    assert bare.returncode == 3 and "needs the console password" in bare.stderr, bare
    wrong = world.run(SVC, "console", "--server", SERVER, "--password-env", "PW",
                      "CP", "STOP", "LP", env={"PW": "not it"})
    assert wrong.returncode == 3 and "wrong console password" in wrong.stderr, wrong
    assert (world.etc / "printers.cmd").read_bytes() == before
    world.assert_unharmed(prints=True)


# ---------------------------------------------------------------------------
# Configuration edits and the spool check (the operator's side)


@pytest.mark.parametrize(("filename", "line"), [
    ("printers.cmd", "PRINTER EVIL PORT=file:///etc/cron.d/evil"),
    ("printers.cmd", "PRINTER EVIL PORT=file://../spool/master/snap.1"),
    ("printers.cmd", "PRINTER EVIL PORT=file://../etc/server.cmd"),
    ("printers.cmd", "PRINTER EVIL PORT=file://LP.hdr HEADER=../../../../etc/shadow"),
    ("server.cmd", "SPOOL etc/inside"),
])
def test_configuration_edits_cannot_point_outside_the_allowed_folders(
    world: World, filename: str, line: str,
) -> None:
    path = world.etc / filename
    before = path.read_bytes()
    with pytest.raises(ConfigError):
        config_mod.edit(world.etc, filename, lambda text: text + line + "\n")
    assert path.read_bytes() == before
    world.assert_unharmed()


def test_a_server_refuses_an_unsafe_spool(tmp_path: Path) -> None:
    from printnet.security import check_spool, startup_check

    spool, _ = Spool.init(tmp_path / "spool")
    assert check_spool(spool) == []
    os.chmod(spool.received, 0o777)
    os.chmod(spool.new, 0o777)
    problems = [str(p) for p in check_spool(spool) if p.fatal]
    assert any("received: is writable by everyone" in p for p in problems)
    assert any("new: lacks the sticky bit" in p for p in problems)
    with pytest.raises(SpoolError, match="not safe to serve"):
        startup_check(spool)
    Spool.init(spool.root)  # `printnet init` repairs the modes
    assert check_spool(spool) == []


# ---------------------------------------------------------------------------
# Floods


def test_a_flood_of_junk_requests_is_rejected_and_others_still_print(world: World) -> None:
    n = 600
    code = (
        "import os\n"
        f"new = {str(world.spool.new)!r}\n"
        f"for i in range({n}):\n"
        "    name = f'{i:05d}junk.req' if i % 3 else f'01M7Z1BJQJ{i:08d}.req'\n"
        "    with open(os.path.join(new, name), 'w') as fh:\n"
        "        fh.write('{not json' if i % 2 else '')\n"
    )
    result = world.py(MALLORY, code)
    assert result.returncode == 0, result.stderr
    world.assert_unharmed(prints=True)
    world.wait("the flood to be rejected", lambda: not [
        n for n in os.listdir(world.spool.new) if not n.startswith(".")], timeout=60)
    reasons = [n for n in os.listdir(world.spool.rejected) if n.endswith(".reason")]
    assert len(reasons) >= n


def test_no_secret_reached_any_record(world: World) -> None:
    for folder in (world.spool.done, world.spool.log, world.output, world.spool.received):
        for path in folder.iterdir():
            if path.is_file():
                assert world.secret not in path.read_bytes(), path
    assert errno.EACCES  # (the module imports errno for the toolkit's names)


# ---------------------------------------------------------------------------
# Files named by reference (--ref): the server reads only what the user could


@dataclass
class Refs:
    """A folder tree for --ref attacks that the service account may traverse."""

    world: World
    root: Path

    def folder(self, name: str, owner: str, mode: int = 0o755) -> Path:
        path = self.root / name
        path.mkdir(exist_ok=True)
        account = self.world.accounts[owner]
        os.chown(path, account.uid, account.gid)
        os.chmod(path, mode)
        return path

    def file(self, path: Path, body: bytes, owner: str, *, group: str | None = None,
             mode: int = 0o644) -> Path:
        path.write_bytes(body)
        account = self.world.accounts[owner]
        gid = grp.getgrnam(group).gr_gid if group else account.gid
        os.chown(path, account.uid, gid)
        os.chmod(path, mode)
        return path

    def printed(self) -> bytes:
        path = self.world.output / "LP.prn"
        return path.read_bytes() if path.exists() else b""


@pytest.fixture
def refs(world: World) -> Refs:
    root = world.base / f"refs{time.monotonic_ns()}"
    root.mkdir(mode=0o755)
    return Refs(world, root)


def _ref_request(world: World, user: str, path: Path, *args: str) -> str:
    result = world.run(user, "request", "--ref", "-P", "LP", "--no-header", *args, str(path))
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def _forge_ref(world: World, user: str, path: Path, body: bytes, mtime: int = 0) -> str:
    result = world.py(user, f"t.forge_ref({str(world.spool.root)!r}, user={user!r}, "
                            f"ref={str(path)!r}, body={body!r}, mtime={mtime})")
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def _rejected(world: World, job_id: str, reason: str) -> None:
    """Refused at intake: the world's QUOTA line makes the server count every job's
    pages when it takes it in, reading a referenced file under the same rules."""
    assert f"files[0]: by reference: {reason}" in world.rejected(f"{job_id}.req")
    assert job_id not in world.jobs()


def _aborted(world: World, job_id: str, reason: str) -> None:
    record = world.done(job_id)
    assert record["outcome"] == "aborted", record
    assert reason in record["reason"], record
    lines = [json.loads(x) for x in world.spool.accounting.read_text().splitlines()]
    [line] = [x for x in lines if x["job"] == job_id]
    assert line["outcome"] == "aborted" and line["pages"] == 0 and line["bytes"] == 0, line


def test_ref_prints_the_users_own_file_unspooled(world: World, refs: Refs) -> None:
    marker = f"by reference {time.monotonic_ns()}".encode()
    doc = refs.file(refs.folder("alice", ALICE) / "doc.txt", marker + b"\n", ALICE)
    job_id = _ref_request(world, ALICE, doc, "--hold")
    world.job(job_id)
    request = json.loads((world.spool.received / f"{job_id}.req").read_text())
    [f] = request["files"]
    assert f["ref"] == str(doc) and f["size"] == len(marker) + 1
    assert f["mtime"] == os.stat(doc).st_mtime_ns
    assert os.listdir(world.spool.data / job_id) == []  # nothing was spooled
    assert world.run(ALICE, "release", job_id).returncode == 0
    assert world.done(job_id)["outcome"] == "completed"
    assert marker in refs.printed()
    world.assert_unharmed()


def test_ref_a_file_readable_only_through_a_group(world: World, refs: Refs) -> None:
    """svc:pnt_alice 0640: alice reads it through her group; mallory not at all."""
    marker = f"group-only {time.monotonic_ns()}".encode()
    shared = refs.folder("shared", SVC)
    doc = refs.file(shared / "g.txt", marker + b"\n", SVC, group=ALICE, mode=0o640)
    job_id = _ref_request(world, ALICE, doc)
    assert world.done(job_id)["outcome"] == "completed"
    assert refs.printed().count(marker) == 1
    # mallory's station cannot even hash it; a forged request is refused at print.
    result = world.run(MALLORY, "request", "--ref", "-P", "LP", str(doc))
    assert result.returncode != 0 and "permission denied" in result.stderr
    # Nor copy it: the station names the file, not the spool.
    result = world.run(MALLORY, "request", "-P", "LP", str(doc))
    assert result.returncode != 0 and f"{doc}: permission denied" in result.stderr
    forged = _forge_ref(world, MALLORY, doc, marker + b"\n", os.stat(doc).st_mtime_ns)
    _rejected(world, forged, f"{MALLORY} may not read {doc}")
    assert refs.printed().count(marker) == 1
    world.assert_unharmed()


def test_ref_a_file_the_user_cannot_read_at_all(world: World, refs: Refs) -> None:
    """The server could read it (its own 0600 file); the user could not: refused."""
    shared = refs.folder("shared", SVC)
    secret = refs.file(shared / "svc.txt", world.secret + b"\n", SVC, mode=0o600)
    job_id = _forge_ref(world, MALLORY, secret, world.secret + b"\n",
                        os.stat(secret).st_mtime_ns)
    _rejected(world, job_id, f"{MALLORY} may not read {secret}")
    # root's secret in a 0700 folder: not even the server may enter.
    job_id = _forge_ref(world, MALLORY, world.secret_path, world.secret + b"\n")
    _rejected(world, job_id, f"{MALLORY} may not enter {world.secret_path.parent}")
    assert world.secret not in refs.printed()
    world.assert_unharmed()


def test_ref_symlink_swapped_in_for_the_file(world: World, refs: Refs) -> None:
    own = refs.folder("mallory", MALLORY)
    secret = refs.file(refs.folder("shared", SVC) / "svc.txt", world.secret + b"\n", SVC,
                       mode=0o600)
    doc = refs.file(own / "doc.txt", b"harmless\n", MALLORY)
    job_id = _ref_request(world, MALLORY, doc, "--hold")
    world.job(job_id)
    swap = world.py(MALLORY, f"import os\nos.unlink({str(doc)!r})\n"
                             f"os.symlink({str(secret)!r}, {str(doc)!r})")
    assert swap.returncode == 0, swap.stderr
    assert world.run(MALLORY, "release", job_id).returncode == 0
    _aborted(world, job_id, f"{doc} is a symbolic link")
    assert world.secret not in refs.printed()
    world.assert_unharmed()


def _private_twin(refs: Refs, world: World) -> Path:
    """refs/svcdir/ (0700, the service account's) holding doc.txt = the secret, 0644:
    the file's own mode would let anyone read it, its folder lets nobody in."""
    hidden = refs.folder("svcdir", SVC, mode=0o700)
    refs.file(hidden / "doc.txt", world.secret + b"\n", SVC, mode=0o644)
    return hidden


def test_ref_parent_folder_swapped_for_a_symlink(world: World, refs: Refs) -> None:
    own = refs.folder("mallory", MALLORY)
    sub = own / "sub"
    sub.mkdir()
    os.chown(sub, world.accounts[MALLORY].uid, world.accounts[MALLORY].gid)
    hidden = _private_twin(refs, world)
    doc = refs.file(sub / "doc.txt", world.secret + b"\n", MALLORY)  # same bytes: hash fits
    job_id = _ref_request(world, MALLORY, doc, "--hold")
    world.job(job_id)
    swap = world.py(MALLORY, f"import os\nos.rename({str(sub)!r}, {str(own / 'old')!r})\n"
                             f"os.symlink({str(hidden)!r}, {str(sub)!r})")
    assert swap.returncode == 0, swap.stderr
    assert world.run(MALLORY, "release", job_id).returncode == 0
    _aborted(world, job_id, f"{sub} is a symbolic link or not a folder")
    world.assert_unharmed()


def test_ref_parent_folder_flipped_while_the_server_reads(world: World, refs: Refs) -> None:
    """A race between check and read: while her jobs print, mallory keeps swapping
    her folder `sub` for a link to a folder she may not enter (whose doc.txt has
    the same size), as fast as she can.  Each job prints her own bytes, or aborts
    because `sub` was a link or missing at that instant; the server never opens
    the hidden file (that would show as a sha256 mismatch) and never prints it."""
    own = refs.folder("mallory", MALLORY)
    sub = own / "sub"
    sub.mkdir()
    os.chown(sub, world.accounts[MALLORY].uid, world.accounts[MALLORY].gid)
    hidden = refs.folder("svcdir", SVC, mode=0o700)
    refs.file(hidden / "doc.txt", b"HIDDEN-BYTES\n", SVC, mode=0o644)
    doc = refs.file(sub / "doc.txt", b"her-own-byte\n", MALLORY)
    jobs = [_ref_request(world, MALLORY, doc, "--hold") for _ in range(8)]
    for job_id in jobs:
        world.job(job_id)
    code = (f"import os, time\nend = time.monotonic() + 60\n"
            f"sub, away, hidden = {str(sub)!r}, {str(own / 'away')!r}, {str(hidden)!r}\n"
            "while time.monotonic() < end and not os.path.exists(sub + '.stop'):\n"
            "    os.rename(sub, away); os.symlink(hidden, sub)\n"
            "    os.unlink(sub); os.rename(away, sub)\n")
    flipper = subprocess.Popen([world.python, "-c", code],
                               env=world.env(world.accounts[MALLORY]),
                               stdin=subprocess.DEVNULL, **world.popen_kwargs(MALLORY))
    try:
        for job_id in jobs:
            assert world.run(MALLORY, "release", job_id).returncode == 0
        outcomes = [world.done(j) for j in jobs]
    finally:
        (own / "sub.stop").touch()
        flipper.wait(90)
    for record in outcomes:
        if record["outcome"] == "aborted":
            reason = record["reason"]
            assert "symbolic link" in reason or "No such file" in reason, record
        else:
            assert record["outcome"] == "completed", record
    assert b"HIDDEN-BYTES" not in refs.printed()
    world.assert_unharmed()


def test_ref_hard_link_to_a_file_the_user_cannot_reach(world: World, refs: Refs) -> None:
    """alice's 0644 file inside her 0700 folder, hard-linked into mallory's folder
    (by root here: fs.protected_hardlinks stops mallory, but not every system has
    it): the link's own mode would let mallory read it; its other link is refused."""
    private = refs.folder("alice-private", ALICE, mode=0o700)
    body = f"alice's eyes only {time.monotonic_ns()}\n".encode()
    original = refs.file(private / "doc.txt", body, ALICE, mode=0o644)
    link = refs.folder("mallory", MALLORY) / "link.txt"
    os.link(original, link)
    job_id = _ref_request(world, MALLORY, link)  # her station can read it: hash fits
    _rejected(world, job_id, f"{link} has other hard links and is not {MALLORY}'s")
    assert body not in refs.printed()
    world.assert_unharmed()


@pytest.mark.parametrize("keep_mtime", [False, True])
def test_ref_file_changed_after_submit_aborts(world: World, refs: Refs,
                                              keep_mtime: bool) -> None:
    doc = refs.file(refs.folder("alice", ALICE) / f"c{keep_mtime}.txt", b"version one\n", ALICE)
    job_id = _ref_request(world, ALICE, doc, "--hold")
    world.job(job_id)
    st = os.stat(doc)
    doc.write_bytes(b"version two\n")  # same size
    if keep_mtime:
        os.utime(doc, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert world.run(ALICE, "release", job_id).returncode == 0
    why = "(sha256)" if keep_mtime else "(size or mtime)"
    _aborted(world, job_id, f"{doc} changed since it was submitted {why}")
    assert b"version two" not in refs.printed()
    world.assert_unharmed()


# ---------------------------------------------------------------------------
# The pieces, without users


def test_password_guesses_are_counted_per_user_and_printer_and_forgotten() -> None:
    from printnet.errors import RequestInvalid
    from printnet.security import GuessGuard

    now = [0.0]
    guard = GuessGuard(limit=2, window=60.0, clock=lambda: now[0])
    guard.check("mallory", "LP")
    guard.failed("mallory", "LP")
    now[0] = 30.0
    guard.failed("mallory", "LP")
    with pytest.raises(RequestInvalid, match="too many wrong passwords for LP"):
        guard.check("mallory", "LP")
    guard.check("alice", "LP")  # others are not locked out
    guard.check("mallory", "OTHER")
    now[0] = 61.0  # the first guess left the window
    guard.check("mallory", "LP")


def test_operators_by_name_and_by_group() -> None:
    from printnet.security import is_operator, user_groups

    assert "root" in user_groups("root")
    assert is_operator("root", ["root"]) and is_operator("root", ["alice", "@root"])
    assert not is_operator("nobody", ["root", "@root", "@no-such-group"])
    assert not is_operator("no-such-user", ["@root"])
