"""A station on a cold multi-user spool, run as a real, ordinary Unix user.

`printnet init --owner pnt_svc --group pnt_spool` (as root) sets up a spool and
etc/ that ordinary users may not read (etc/*.cmd hold password hashes), and no
server has run yet.  `pnt_alice` then runs `printnet` in her own process with
her own uid and groups.  The oracle is what root reads in new/ (the request's
printer), never what the command says about itself.

Users and groups are created once per session (`useradd`, `groupadd`) and
left in place.  Needs root; in CI (CI=true) a fixture that cannot create the
users fails with its reason instead of skipping.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = [pytest.mark.users]

SVC, SPOOL_GROUP, ALICE = "pnt_svc", "pnt_spool", "pnt_alice"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"cannot set up the test users: {reason}")
    pytest.skip(reason)


def _ensure_group(name: str) -> int:
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        subprocess.run(["groupadd", "--system", name], capture_output=True, check=False)
        return grp.getgrnam(name).gr_gid


def _ensure_user(name: str, primary: str | None = None) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    cmd = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin"]
    cmd += ["--gid", primary] if primary else ["--user-group"]
    result = subprocess.run([*cmd, name], capture_output=True, text=True, check=False)
    if result.returncode not in (0, 9):  # 9: exists (another session won)
        raise RuntimeError(f"useradd {name}: {result.stderr.strip()}")
    return pwd.getpwnam(name)


@dataclass
class Users:
    base: Path
    lib: Path
    alice: pwd.struct_passwd
    python: str


def _python_for(alice: pwd.struct_passwd, lib: Path, cwd: Path) -> str | None:
    """An interpreter (>= 3.11) alice may run: ours, else the system's."""
    candidates = [os.path.realpath(sys.executable), shutil.which("python3.11") or "",
                  "/usr/bin/python3", "/usr/local/bin/python3", shutil.which("python3") or ""]
    for candidate in dict.fromkeys(c for c in candidates if c):
        try:
            probe = subprocess.run(
                [candidate, "-c", "import sys, printnet.cli\nassert sys.version_info >= (3, 11)"],
                user=alice.pw_uid, group=alice.pw_gid, extra_groups=[], capture_output=True,
                env={"PYTHONPATH": str(lib), "PATH": "/usr/bin:/bin"}, cwd=cwd, check=False)
        except OSError:
            continue
        if probe.returncode == 0:
            return candidate
    return None


@pytest.fixture(scope="session")
def users() -> Iterator[Users]:
    if os.geteuid() != 0:
        _unavailable("needs root: creates Unix users and runs commands as them")
    if shutil.which("useradd") is None:
        _unavailable("needs useradd (package passwd)")
    _ensure_group(SPOOL_GROUP)
    _ensure_user(SVC, primary=SPOOL_GROUP)
    alice = _ensure_user(ALICE)
    base = Path(tempfile.mkdtemp(prefix="printnet-users-", dir="/tmp"))
    os.chmod(base, 0o755)
    lib = base / "lib"
    import click
    import serial
    import watchdog

    import printnet

    for module in (printnet, click, serial, watchdog):  # importable by every user
        assert module.__file__ is not None
        src = Path(module.__file__).parent
        shutil.copytree(src, lib / src.name, ignore=shutil.ignore_patterns("__pycache__"))
    for dirpath, _dirs, files in os.walk(lib):
        os.chmod(dirpath, 0o755)
        for name in files:
            os.chmod(os.path.join(dirpath, name), 0o644)
    python = _python_for(alice, lib, base)
    if python is None:
        _unavailable(f"no Python >= 3.11 that {ALICE} may run")
        return
    try:
        yield Users(base, lib, alice, python)
    finally:
        shutil.rmtree(base, ignore_errors=True)


@dataclass
class Cold:
    """A cold spool of its own: init'ed by root for the service account, no server."""

    users: Users
    root: Path

    @property
    def spool(self) -> Path:
        return self.root / "spool"

    @property
    def etc(self) -> Path:
        return self.root / "etc"

    @property
    def home(self) -> Path:
        return self.root / "home"

    def run(self, *args: str, env: dict[str, str] | None = None,
            ) -> subprocess.CompletedProcess[str]:
        """`printnet --spool --etc ARGS` as alice, in her own process."""
        alice = self.users.alice
        full_env = {"PATH": "/usr/bin:/bin", "HOME": str(self.home), "LANG": "C.UTF-8",
                    "PYTHONPATH": str(self.users.lib), "PYTHONDONTWRITEBYTECODE": "1"}
        full_env.update(env or {})
        return subprocess.run(
            [self.users.python, "-m", "printnet", "--spool", str(self.spool), "--etc",
             str(self.etc), *args], user=alice.pw_uid, group=alice.pw_gid,
            extra_groups=[], env=full_env, cwd=self.home, capture_output=True, text=True,
            timeout=60, check=False, stdin=subprocess.DEVNULL)

    def doc(self) -> str:
        path = self.home / "a.txt"
        path.write_text("hello\n")
        os.chown(path, self.users.alice.pw_uid, self.users.alice.pw_gid)
        return str(path)

    def queued(self) -> dict[str, str]:
        """Job id -> printer of the requests in new/ (read as root)."""
        out = {}
        for path in (self.spool / "new").glob("*.req"):
            out[path.stem] = json.loads(path.read_text())["printer"]
        return out

    def init(self) -> None:
        proc = subprocess.run(
            [sys.executable, "-m", "printnet", "--spool", str(self.spool), "--etc",
             str(self.etc), "init", "--owner", SVC, "--group", SPOOL_GROUP],
            capture_output=True, text=True, check=False, cwd=self.root)
        assert proc.returncode == 0, proc.stderr


@pytest.fixture
def cold(users: Users) -> Iterator[Cold]:
    root = Path(tempfile.mkdtemp(prefix="cold-", dir=users.base))
    os.chmod(root, 0o755)
    c = Cold(users, root)
    c.home.mkdir(mode=0o700)
    os.chown(c.home, users.alice.pw_uid, users.alice.pw_gid)
    c.init()
    yield c
    shutil.rmtree(root, ignore_errors=True)


def _add_printer(cold: Cold, line: str, default: str | None = None) -> None:
    """Change etc/printers.cmd as root and publish again (init is idempotent)."""
    path = cold.etc / "printers.cmd"
    text = path.read_text() + line + "\n"
    if default:
        text = text.replace("DEFAULT LOCAL", f"DEFAULT {default}")
    path.write_text(text)
    cold.init()


def test_the_etc_files_are_unreadable_to_alice(cold: Cold) -> None:
    proc = subprocess.run(["cat", str(cold.etc / "printers.cmd")], user=cold.users.alice.pw_uid,
                          capture_output=True, check=False)
    assert proc.returncode != 0  # the premise of everything below


def test_a_cold_spool_gives_alice_the_site_default(cold: Cold) -> None:
    proc = cold.run("request", cold.doc())
    assert proc.returncode == 0, proc.stderr
    assert cold.queued() == {proc.stdout.strip(): "LOCAL"}


def test_an_unknown_printer_is_refused_with_the_known_names(cold: Cold) -> None:
    proc = cold.run("request", "-P", "NOSUCH", cold.doc())
    assert proc.returncode == 2
    assert proc.stderr == "printnet: unknown printer 'NOSUCH' (known: LOCAL)\n"
    assert cold.queued() == {}
    proc = cold.run("status", "-P", "NOSUCH")
    assert proc.returncode == 2
    assert "unknown printer 'NOSUCH'" in proc.stderr and proc.stdout == ""
    assert cold.run("status", "-P", "LOCAL").returncode == 0


def test_the_users_own_default_and_its_precedence(cold: Cold) -> None:
    _add_printer(cold, "PRINTER OTHER PORT=file://../output/OTHER.prn")
    _add_printer(cold, "PRINTER THIRD PORT=file://../output/THIRD.prn")
    doc = cold.doc()
    conf = cold.home / ".config" / "printnet"
    conf.mkdir(parents=True)
    (conf / "default").write_text("# my printer\nDefault other\n")
    for path in (cold.home / ".config", conf, conf / "default"):
        os.chown(path, cold.users.alice.pw_uid, cold.users.alice.pw_gid)

    def printer_of(env: dict[str, str] | None = None, *args: str) -> str:
        before = set(cold.queued())
        proc = cold.run("request", *args, doc, env=env)
        assert proc.returncode == 0, proc.stderr
        [new] = set(cold.queued()) - before
        return cold.queued()[new]

    assert printer_of() == "OTHER"  # the file over the site's DEFAULT LOCAL
    assert printer_of({"LPDEST": "third"}) == "THIRD"  # the environment over the file
    assert printer_of({"LPDEST": "third", "PRINTER": "local"}) == "LOCAL"  # PRINTER first
    assert printer_of({"PRINTER": "third"}, "-P", "other") == "OTHER"  # -P over all
    proc = cold.run("request", doc, env={"PRINTER": "NOSUCH"})
    assert proc.returncode == 2
    assert "unknown printer 'NOSUCH' from $PRINTER (known: LOCAL, OTHER, THIRD)" in proc.stderr
    os.chmod(conf / "default", 0)
    proc = cold.run("request", doc)
    assert proc.returncode == 2
    assert proc.stderr == (f"printnet: cannot read {conf / 'default'}: permission denied "
                           f"(mode 0000, owner {ALICE}, group {ALICE})\n")


def test_without_a_published_site_alice_is_told_which_file_she_cannot_read(cold: Cold) -> None:
    for site in (cold.spool / "servers").glob("*.site.json"):
        site.unlink()
    proc = cold.run("request", cold.doc())
    assert proc.returncode == 2
    assert f"cannot read {cold.etc / 'server.cmd'}: permission denied (mode 0600, " \
        f"owner {SVC}, group {SPOOL_GROUP})" in proc.stderr
    assert "no printers are known" in proc.stderr and proc.stderr.count("\n") == 1
    assert cold.queued() == {}


def test_two_configurations_the_last_changed_default_wins(cold: Cold) -> None:
    from printnet import config as config_mod
    from printnet.spool.layout import Spool
    from printnet.spool.site import publish_site

    # A second server's etc/ with its own DEFAULT, published as a server would.
    other = cold.root / "other"
    shutil.copytree(cold.etc, other / "etc")
    (other / "etc" / "server.cmd").write_text("SERVER NAME=AAA\nSPOOL ../spool\n")
    (other / "etc" / "printers.cmd").write_text(
        "PRINTER FAR PORT=file://../output/FAR.prn\nSETUP STANDARD FORM=PLAIN LENGTH=66 "
        "WIDTH=80\nDEFAULT FAR\n")
    os.utime(other / "etc" / "printers.cmd", (1e9, 2e9))  # changed after ours
    publish_site(Spool(cold.spool), config_mod.load(other / "etc"))
    doc = cold.doc()
    proc = cold.run("request", doc)
    assert proc.returncode == 0, proc.stderr
    assert cold.queued()[proc.stdout.strip()] == "FAR"
    # Ours changed later: ours wins; equal times: the name that sorts first (AAA).
    os.utime(other / "etc" / "printers.cmd", (1e9, 1e9))
    publish_site(Spool(cold.spool), config_mod.load(other / "etc"))
    proc = cold.run("request", doc)
    assert cold.queued()[proc.stdout.strip()] == "LOCAL"
    ours = cold.etc / "printers.cmd"
    os.utime(ours, (1e9, 1e9))
    cold.init()
    proc = cold.run("request", doc)
    assert cold.queued()[proc.stdout.strip()] == "FAR"
    # Both printers are known either way.
    assert cold.run("request", "-P", "LOCAL", doc).returncode == 0
