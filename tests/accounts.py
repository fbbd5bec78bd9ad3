"""Real Unix accounts for the tests that run commands as separate users.

Users and groups are created once (`useradd`/`groupadd`, as root) and left in
place for later runs (another session may race to create them: both win).
`copy_libs` puts printnet and its dependencies where every user may import
them (the test interpreter's own site-packages may be in a private folder).
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Account:
    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]


def run_root(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


def ensure_group(name: str) -> int:
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        run_root("groupadd", "--system", name)  # may race another session: look again
        return grp.getgrnam(name).gr_gid


def ensure_user(name: str, primary: str | None = None, extra: tuple[str, ...] = ()) -> Account:
    try:
        pwd.getpwnam(name)
        exists = True
    except KeyError:
        exists = False
    if not exists:
        cmd = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin"]
        cmd += ["--gid", primary] if primary else ["--user-group"]
        if extra:
            cmd += ["--groups", ",".join(extra)]
        result = run_root(*cmd, name)
        if result.returncode not in (0, 9):  # 9: exists (another session won)
            raise RuntimeError(f"useradd {name}: {result.stderr.strip()}")
    for group in extra:  # an older run may have made the user without the group
        if name not in grp.getgrnam(group).gr_mem:
            run_root("usermod", "--append", "--groups", group, name)
    pw = pwd.getpwnam(name)
    return Account(name, pw.pw_uid, pw.pw_gid, tuple(os.getgrouplist(name, pw.pw_gid)))


def copy_libs(lib: Path, extra: dict[str, str] | None = None) -> None:
    """printnet and its dependencies where every user can import them."""
    import click
    import serial
    import watchdog

    import printnet

    for module in (printnet, click, serial, watchdog):
        assert module.__file__ is not None
        src = Path(module.__file__).parent
        shutil.copytree(src, lib / src.name, ignore=shutil.ignore_patterns("__pycache__"))
    for name, text in (extra or {}).items():
        (lib / name).write_text(text)
    for dirpath, _dirnames, filenames in os.walk(lib):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), 0o644)
