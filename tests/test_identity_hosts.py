"""Identity across hosts: stations as real Unix users on two mounts of a GlusterFS share.

The service account `pnt_svc` owns the spool (``printnet init --owner``) and runs
the print server on host A.  Stations run as real users on both "hosts", each
host with its own user database: host B's processes see their own
/etc/passwd and /etc/group (bind-mounted in a mount namespace), in which
``pnt_alice`` has *another uid* than on host A, while ``pnt_mallory`` and the
service account have the same uid on both.  The share carries numeric uids
(Gluster passes each caller's uid and groups), so:

* identity: a request is its file owner's; host B's ``pnt_alice`` (another uid)
  is not host A's ``pnt_alice``: her request is refused with the uid named, a
  same-uid user's job prints under her name;
* cancel-only-your-own holds across the mounts (for the other user, and for the
  namesake with another uid);
* documents stay unreadable: another user on the other mount cannot read,
  list, remove or print what a user spooled, nor print a file of the share
  she may not read;
* root squash (Gluster ``server.root-squash``): a server run as root refuses
  to start on such a share, saying why (`printnet.security.share_problems`);
  run as the service account it serves; root on a station host is an
  anonymous user there -- it cannot read documents, and its requests are
  refused.  On a share that does not squash root the server warns that root
  on any host is as strong as the service account, and on any network
  filesystem that identity is the numeric uid (docs/SECURITY.md).
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import shared_fs
from _ci_strict import require, unavailable
from accounts import Account, copy_libs, ensure_group, ensure_user
from shared_fs import Host, SharedFS, wait_for

pytestmark = [pytest.mark.multihost, pytest.mark.users, pytest.mark.slow,
              pytest.mark.timeout(600)]

SVC, SPOOL_GROUP = "pnt_svc", "pnt_spool"
ALICE, MALLORY = "pnt_alice", "pnt_mallory"
USER_PYTHON = "/usr/bin/python3"  # ours may live in a folder only root can enter
WAIT = 60.0  # seconds an outcome may take on a loaded machine

SERVER_CMD = """\
SERVER NAME=IDS
SPOOL "{spool}"
SCAN 0.2
LEASE 5
OPERATORS root
"""
PRINTERS_CMD = """\
PRINTER LP PORT=file://../output/LP.prn HEADER=NONE
PRINTER PARKED PORT=file://../output/PARKED.prn STOPPED=YES
DEFAULT LP
"""


def _free_uid(taken: set[int], start: int = 61000) -> int:
    uid = start
    while uid in taken:
        uid += 1
    return uid


@dataclass
class Site:
    """One spool on the share, a server as the service account, users on both hosts."""

    share: SharedFS
    a: Host  # host A: the machine's own user database
    b: Host  # host B: its own user database (pnt_alice has another uid)
    rel: str
    base: Path  # local: lib, etc, output, logs
    accounts: dict[str, Account]
    alice_uid_b: int
    servers: list[subprocess.Popen[bytes]]

    def spool(self, host: Host) -> Path:
        return host.mount / self.rel / "spool"

    @property
    def etc(self) -> Path:
        return self.base / "etc"

    def env(self) -> dict[str, str]:
        return {"PYTHONPATH": str(self.base / "lib"), "HOME": "/tmp",
                "PYTHONDONTWRITEBYTECODE": "1",
                "PRINTNET_RUNTIME_DIR": str(self.base / "run")}

    def printnet(self, host: Host, user: str, *args: str, check: bool = False,
                 timeout: float = 90.0) -> subprocess.CompletedProcess[bytes]:
        """`printnet --spool <host's mount> ARGS` as `user` of `host`'s user database."""
        return host.run([USER_PYTHON, "-m", "printnet", "--spool", str(self.spool(host)),
                         *args], user=user, env=self.env(), check=check, timeout=timeout)

    def submit(self, host: Host, user: str, body: bytes, *args: str) -> str:
        """Queue `body` (a file the user wrote in a folder of hers) as `user`; the id."""
        src = self.user_file(user, body, host)
        proc = self.printnet(host, user, "request", *(args or ("-P", "LP")), str(src),
                             check=True)
        return proc.stdout.decode().strip()

    def user_file(self, user: str, body: bytes, host: Host) -> Path:
        folder = self.base / "home" / f"{user}-{host.name}"
        folder.mkdir(mode=0o700, exist_ok=True)
        path = folder / f"f{time.monotonic_ns()}.txt"
        path.write_bytes(body)
        uid = self.alice_uid_b if (user, host) == (ALICE, self.b) else self.accounts[user].uid
        for p in (folder, path):
            os.chown(p, uid, -1)
        os.chmod(path, 0o600)
        return path

    def state(self) -> dict[str, Any]:
        """The spool as the service account sees it on host A (root may be squashed)."""
        proc = self.a.run([USER_PYTHON, str(shared_fs.TOOLS), "state", str(self.spool(self.a))],
                          user=SVC, env=self.env(), timeout=60)
        return dict(json.loads(proc.stdout.decode().strip().splitlines()[-1]))

    def record(self, job_id: str) -> dict[str, Any]:
        """The done record of `job_id` (waited for), read on host A as root."""
        path = self.spool(self.a) / "done" / f"{job_id}.json"

        def look() -> dict[str, Any] | None:
            got = self.a.run(["cat", str(path)], check=False, timeout=30)
            return json.loads(got.stdout) if got.returncode == 0 else None
        found = wait_for(look, WAIT, f"the done record of {job_id}", interval=0.3)
        assert found is not None
        return found

    def rejection(self, name: str) -> str:
        path = self.spool(self.a) / "rejected" / f"{name}.reason"

        def look() -> str | None:
            got = self.a.run(["cat", str(path)], check=False, timeout=30)
            return got.stdout.decode() if got.returncode == 0 else None
        return str(wait_for(look, WAIT, f"the rejection of {name}", interval=0.3))

    def pending(self, job_id: str) -> dict[str, Any]:
        def look() -> dict[str, Any] | None:
            got = self.state()["master"].get(job_id)
            return dict(got) if got else None
        found = wait_for(look, WAIT, f"{job_id} in the master file", interval=0.5)
        assert found is not None
        return found

    def start_server(self, user: str | None) -> subprocess.Popen[bytes]:
        log = open(self.base / f"server-{user or 'root'}.log", "ab")  # noqa: SIM115
        try:
            proc = self.a.popen([USER_PYTHON, "-m", "printnet", "--etc", str(self.etc),
                                 "server"], stdout=log, stderr=subprocess.STDOUT,
                                user=user, env=self.env())
        finally:
            log.close()
        self.servers.append(proc)
        return proc

    def log(self, user: str | None) -> str:
        return (self.base / f"server-{user or 'root'}.log").read_text(errors="replace")

    def output(self, printer: str) -> bytes:
        path = self.base / "output" / f"{printer}.prn"
        return path.read_bytes() if path.exists() else b""

    def stop(self) -> None:
        for proc in self.servers:
            if proc.poll() is None:
                proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        self.servers.clear()


def _users_view(folder: Path, alice_uid_b: int) -> tuple[Path, Path]:
    """Host B's /etc/passwd and /etc/group: pnt_alice with uid `alice_uid_b`."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for line in Path("/etc/passwd").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == ALICE:
            fields[2] = str(alice_uid_b)
        lines.append(":".join(fields))
    passwd, group = folder / "passwd", folder / "group"
    passwd.write_text("\n".join(lines) + "\n")
    shutil.copyfile("/etc/group", group)
    for p in (passwd, group):
        os.chmod(p, 0o644)
    return passwd, group


def _init_spool(site: Site, host: Host) -> None:
    """`printnet init` as root: the spool and etc/ given to the service account."""
    host.run([shared_fs.PYTHON, "-m", "printnet", "--spool", str(site.spool(host)), "--etc",
              str(site.etc), "init", "--owner", SVC, "--group", SPOOL_GROUP], timeout=120)
    (site.etc / "server.cmd").write_text(SERVER_CMD.format(spool=site.spool(site.a)))
    (site.etc / "printers.cmd").write_text(PRINTERS_CMD)
    out = site.base / "output"
    out.mkdir(exist_ok=True)
    run = site.base / "run"
    run.mkdir(mode=0o700, exist_ok=True)
    svc = site.accounts[SVC]
    for p in (site.etc, *site.etc.iterdir(), out, run):
        os.chown(p, svc.uid, svc.gid)
    os.chmod(site.etc / "server.cmd", 0o600)
    os.chmod(site.etc / "printers.cmd", 0o600)


def _site(share: SharedFS, tier_hosts: tuple[Host, Host], label: str) -> Site:
    if os.geteuid() != 0:
        unavailable("needs root: creates Unix users and mount namespaces")
    for tool in ("useradd", "setpriv"):
        if shutil.which(tool) is None:
            unavailable(f"needs {tool} (packages passwd, util-linux)")
    if not Path(USER_PYTHON).exists():
        unavailable(f"needs {USER_PYTHON} (>= 3.11) for the test users (package python3)")
    ensure_group(SPOOL_GROUP)
    accounts = {SVC: ensure_user(SVC, primary=SPOOL_GROUP), ALICE: ensure_user(ALICE),
                MALLORY: ensure_user(MALLORY)}
    alice_uid_b = _free_uid({p.pw_uid for p in pwd.getpwall()})
    base = Path(tempfile.mkdtemp(prefix=f"printnet-ids-{label}-", dir="/tmp"))
    os.chmod(base, 0o755)
    (base / "home").mkdir(mode=0o755)
    copy_libs(base / "lib")
    a, b0 = tier_hosts
    b = replace(b0, procs=[], users_view=_users_view(base / "hostb-etc", alice_uid_b))
    rel = share.fresh(label) if share.tier != "squash" else _fresh_squash(a, b, label)
    site = Site(share, a, b, rel, base, accounts, alice_uid_b, [])
    _init_spool(site, a)
    return site


def _fresh_squash(a: Host, b: Host, label: str) -> str:
    rel = f"t{os.getpid()}-{label}"
    a.run(["mkdir", "-p", str(a.mount / rel)], timeout=30)
    wait_for(lambda: b.run(["test", "-d", str(b.mount / rel)], check=False,
                           timeout=30).returncode == 0, 20, f"{rel} on host B")
    return rel


@pytest.fixture(scope="module")
def gluster_session() -> Iterator[None]:
    yield
    shared_fs.shutdown()


@pytest.fixture(scope="module")
def site(gluster_session: None) -> Iterator[Site]:
    share = require("no shared filesystem here", lambda: shared_fs.shared("nfs"),
                    shared_fs.Unavailable)
    s = _site(share, share.hosts, "ids")
    try:
        proc = s.start_server(SVC)
        wait_for(lambda: proc.poll() is not None or b"running" in s.a.run(
            ["cat", str(s.spool(s.a) / "servers" / "IDS.json")], check=False,
            timeout=30).stdout, WAIT, "the server to run", interval=0.5)
        assert proc.poll() is None, s.log(SVC)
        yield s
    finally:
        s.stop()
        s.b.reap()
        shutil.rmtree(s.base, ignore_errors=True)


def _uid_of(host: Host, user: str) -> int:
    return int(host.run(["id", "-u", user], timeout=30).stdout)


def test_each_host_has_its_own_user_database(site: Site) -> None:
    """The fixture: the namesake has another uid on host B; the others the same."""
    assert _uid_of(site.a, ALICE) == site.accounts[ALICE].uid
    assert _uid_of(site.b, ALICE) == site.alice_uid_b != site.accounts[ALICE].uid
    assert _uid_of(site.b, MALLORY) == site.accounts[MALLORY].uid
    # A process of host B's alice really runs with that uid on the share.
    probe = site.spool(site.b) / "tmp" / f"probe-{os.getpid()}"
    site.b.run(["touch", str(probe)], user=ALICE)
    owner = site.a.run(["stat", "-c", "%u", str(probe)], timeout=30).stdout
    assert int(owner) == site.alice_uid_b
    site.b.run(["rm", "-f", str(probe)], user=ALICE)


def test_identity_is_the_uid_across_mounts(site: Site) -> None:
    mine = site.submit(site.a, ALICE, b"alice on host A\n")
    theirs = site.submit(site.b, MALLORY, b"mallory on host B\n")
    for job_id, user in ((mine, ALICE), (theirs, MALLORY)):
        rec = site.record(job_id)
        assert rec["outcome"] == "completed" and rec["job"]["user"] == user, rec
    # Host B's pnt_alice is another uid: her request is not host A's alice's.
    namesake = site.submit(site.b, ALICE, b"the other alice\n")
    reason = site.rejection(f"{namesake}.req")
    assert f"says '{ALICE}' but the file belongs to 'uid{site.alice_uid_b}'" in reason
    assert b"the other alice" not in site.output("LP")
    # The server said at start that identity is the uid on this share.
    assert "numeric uid" in site.log(SVC) and "fuse.glusterfs" in site.log(SVC)


def test_only_your_own_jobs_across_mounts(site: Site) -> None:
    job = site.submit(site.a, ALICE, b"alice's parked job\n", "-P", "PARKED")
    assert site.pending(job)["state"] == "pending"
    other = site.printnet(site.b, MALLORY, "cancel", job)
    assert other.returncode == 1 and b"cancel refused: not your job" in other.stderr, other
    site.printnet(site.b, ALICE, "cancel", job)  # the namesake: her control is refused
    forged = f"belongs to 'uid{site.alice_uid_b}'"

    def refused() -> bool:
        return any(name.endswith(".ctl") and forged in text
                   for name, text in site.state()["reasons"].items())
    wait_for(refused, WAIT, "the namesake's control request to be refused", interval=0.5)
    assert site.state()["master"][job]["state"] == "pending"  # neither touched it
    own = site.printnet(site.a, ALICE, "cancel", job)
    assert own.returncode == 0, own
    rec = site.record(job)
    assert rec["outcome"] == "canceled" and rec["reason"] == f"canceled by {ALICE}", rec


def test_documents_stay_unreadable_across_mounts(site: Site) -> None:
    secret = f"alice's secret {os.urandom(6).hex()}\n".encode()
    job = site.submit(site.a, ALICE, secret, "-P", "PARKED")
    site.pending(job)
    data_b = site.spool(site.b) / "data" / job / "0"
    for user in (MALLORY, ALICE):  # the other user, and the namesake with another uid
        for argv in (["cat", str(data_b)], ["ls", str(site.spool(site.b) / "data")],
                     ["ls", str(site.spool(site.b) / "new")], ["rm", "-f", str(data_b)],
                     ["cat", str(site.spool(site.b) / "received" / f"{job}.req")]):
            got = site.b.run(argv, user=user, check=False, timeout=30)
            assert got.returncode != 0 and secret not in got.stdout, (user, argv, got)
    # A file on the share that only alice (host A's) may read cannot be printed by
    # anyone else, from either host.
    private = site.spool(site.a).parent / "alice-private.txt"
    site.a.run(["sh", "-c", f"echo {secret.decode().strip()!r} > {private} && "
                f"chown {ALICE} {private} && chmod 600 {private}"])
    for user in (MALLORY, ALICE):
        got = site.printnet(site.b, user, "request", "-P", "LP",
                            str(site.spool(site.b).parent / "alice-private.txt"))
        assert got.returncode != 0 and b"ermission denied" in got.stderr, got
    site.printnet(site.a, ALICE, "cancel", job, check=True)
    assert secret not in site.output("LP") + site.output("PARKED")


# -- root squash ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def squashed(gluster_session: None) -> Iterator[Site]:
    if os.environ.get("PRINTNET_TEST_SHARED"):
        unavailable("root squash needs the fixture's own GlusterFS share")
    share = require("no shared filesystem here", lambda: shared_fs.shared("nfs"),
                    shared_fs.Unavailable)
    cluster = share.cluster
    assert cluster is not None
    hosts = (cluster.host("hosta", "squash"), cluster.host("hostb", "squash"))
    squash = SharedFS("squash", *hosts, cluster=cluster, volume=cluster.volume("squash"))
    s = _site(squash, hosts, "squash")
    cluster.gluster("volume", "set", squash.volume, "server.root-squash", "on")
    try:
        probe = s.spool(s.b) / "tmp" / f"probe-{os.getpid()}"

        def squashed_now() -> bool:
            s.b.run(["touch", str(probe)], check=False, timeout=30)
            got = s.a.run(["stat", "-c", "%u", str(probe)], check=False, timeout=30)
            s.b.run(["rm", "-f", str(probe)], check=False, timeout=30)
            return got.returncode == 0 and int(got.stdout) != 0
        wait_for(squashed_now, WAIT, "root squash to take effect on the clients", interval=1.0)
        yield s
    finally:
        s.stop()
        cluster.gluster("volume", "set", squash.volume, "server.root-squash", "off")
        s.b.reap()
        shutil.rmtree(s.base, ignore_errors=True)


def test_a_root_server_refuses_a_share_that_squashes_root(squashed: Site) -> None:
    proc = squashed.start_server(None)
    assert proc.wait(WAIT) != 0
    log = squashed.log(None)
    assert "squashes root" in log and f"run it as the service account {SVC}" in log, log


def test_root_on_a_station_host_is_nobody_on_a_squashed_share(squashed: Site) -> None:
    proc = squashed.start_server(SVC)
    wait_for(lambda: proc.poll() is not None or b"running" in squashed.a.run(
        ["cat", str(squashed.spool(squashed.a) / "servers" / "IDS.json")], check=False,
        timeout=30).stdout, WAIT, "the server to run", interval=0.5)
    assert proc.poll() is None, squashed.log(SVC)
    assert "squashes root" not in squashed.log(SVC)
    secret = f"squashed secret {os.urandom(6).hex()}\n".encode()
    job = squashed.submit(squashed.b, MALLORY, secret, "-P", "PARKED")
    squashed.pending(job)
    data = squashed.spool(squashed.b) / "data" / job / "0"
    got = squashed.b.run(["cat", str(data)], check=False, timeout=30)  # root on host B
    assert got.returncode != 0 and secret not in got.stdout, got
    # root's request is an anonymous user's file: refused as a forgery.
    src = squashed.base / "root-job.txt"
    src.write_text("from root on host B\n")
    src.chmod(0o644)
    sub = squashed.b.run([shared_fs.PYTHON, "-m", "printnet", "--spool",
                          str(squashed.spool(squashed.b)), "request", "-P", "LP", str(src)],
                         check=False, timeout=90)
    if sub.returncode == 0:
        reason = squashed.rejection(f"{sub.stdout.decode().strip()}.req")
        assert "says 'root' but the file belongs to" in reason, reason
    else:  # or the station itself is refused by the share
        assert b"ermission denied" in sub.stderr or b"not permitted" in sub.stderr, sub
    squashed.printnet(squashed.b, MALLORY, "cancel", job, check=True)
