"""The spool's directory layout, its format-version file and its permissions.

The folders of one spool (DESIGN.md)::

    <spool>/
      VERSION     "printnet-spool 1": the layout version; refused if unknown
      tmp/        stations write here first (dot-names), then rename into new/
      new/        the drop box: complete request files only (<id>.req, <id>.ctl)
      received/   requests a server has taken in (rename new/ -> received/ is the claim)
      data/       spooled copies of the files to print: data/<job id>/<n>
      master/     the master file: snap.<generation> + journal entries j.<gen>.<seq>
      locks/      lock files (master, server.<NAME>)
      servers/    one status/heartbeat file per server: <NAME>.json
      done/       finished jobs' records <id>.json; control results <ctl id>.json
      rejected/   request files that failed validation, <name> + <name>.reason
      log/        accounting.jsonl (one line per finished job) and events.log
      forwarded/  ids of jobs forwarded here from another site (`spool.forward`; made on
                  first use, so not in `DIRS`)

Permissions set by `init` (docs/SECURITY.md tells the multi-user story; the
checks a server makes at start are `printnet.security.check_spool`):

* every folder belongs to the **service account** (the user the servers run
  as) and the **spool group** (of which only the service account is a member);
* tmp/, new/ and data/ are 3733 (setgid, sticky, rwx-wx-wx): anyone may drop
  in, nobody may list them or touch what others dropped, and what stations
  create there belongs to the spool group, so the servers can read it (a
  station makes its files 0640 and its job folder 2770) and nobody else can;
* everything else is 0755 with files 0644: readable by all (the queue is
  public; documents are not in it), writable only by the service account.

`init` is idempotent, never clobbers an existing file, and (re)applies the
modes, and with `owner`/`group` the owners, of the spool's own folders.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from printnet.errors import SpoolError
from printnet.spool.publish import write_new

SPOOL_VERSION: Final = 1
VERSION_TEXT: Final = f"printnet-spool {SPOOL_VERSION}\n"

DROP_MODE: Final = 0o3733  # stations drop in; setgid, sticky; not listable by others
PRIVATE_MODE: Final = 0o755  # the service account writes; everyone reads
FILE_MODE: Final = 0o644  # VERSION and the servers' records
DIRS: Final[dict[str, int]] = {
    "tmp": DROP_MODE,
    "new": DROP_MODE,
    "received": PRIVATE_MODE,
    "data": DROP_MODE,
    "master": PRIVATE_MODE,
    "locks": PRIVATE_MODE,
    "servers": PRIVATE_MODE,
    "done": PRIVATE_MODE,
    "rejected": PRIVATE_MODE,
    "log": PRIVATE_MODE,
}

REQ_SUFFIX: Final = ".req"
CTL_SUFFIX: Final = ".ctl"


@dataclass(frozen=True)
class Spool:
    """Paths of one spool; `root` is its folder."""

    root: Path

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    @property
    def new(self) -> Path:
        return self.root / "new"

    @property
    def received(self) -> Path:
        return self.root / "received"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def master(self) -> Path:
        return self.root / "master"

    @property
    def locks(self) -> Path:
        return self.root / "locks"

    @property
    def servers(self) -> Path:
        return self.root / "servers"

    @property
    def done(self) -> Path:
        return self.root / "done"

    @property
    def rejected(self) -> Path:
        return self.root / "rejected"

    @property
    def log(self) -> Path:
        return self.root / "log"

    @property
    def accounting(self) -> Path:
        return self.log / "accounting.jsonl"

    @property
    def events(self) -> Path:
        return self.log / "events.log"

    def job_data(self, job_id: str) -> Path:
        return self.data / job_id

    @classmethod
    def init(cls, root: Path, *, owner: int | None = None,
             group: int | None = None) -> tuple[Spool, list[Path]]:
        """Create the layout (idempotent, never clobbers).  Returns what was created.

        The modes of the spool's own folders are (re)applied each time (where
        this user may: its own folders, or any as root); `owner` and `group`
        (uid, gid; root only) give them to the service account and spool group.
        """
        created: list[Path] = []
        try:
            if not root.exists():
                root.mkdir(parents=True, mode=PRIVATE_MODE)
                created.append(root)
            version = root / "VERSION"
            if version.exists():
                cls._check_version(root)
            _own(Path(os.path.realpath(root)), PRIVATE_MODE, owner, group)  # root may be a link
            for name, mode in DIRS.items():
                path = root / name
                if not path.exists():
                    path.mkdir(mode=mode)
                    created.append(path)
                _own(path, mode, owner, group)  # mkdir's mode is masked by the umask
            if not version.exists():
                try:
                    write_new(version, VERSION_TEXT.encode(), mode=FILE_MODE)
                    created.append(version)
                except FileExistsError:
                    pass
            _own(version, FILE_MODE, owner, group)
        except OSError as exc:
            raise SpoolError(f"cannot create spool {root}: {exc.strerror or exc}") from exc
        return cls(root), created

    @classmethod
    def open(cls, root: Path) -> Spool:
        """A spool that `init` made; raise SpoolError with a hint otherwise."""
        if not (root / "VERSION").exists():
            raise SpoolError(f"{root} is not a printnet spool (run 'printnet init')")
        cls._check_version(root)
        return cls(root)

    @staticmethod
    def _check_version(root: Path) -> None:
        try:
            text = (root / "VERSION").read_text()
        except OSError as exc:
            raise SpoolError(f"{root}/VERSION: {exc.strerror}") from exc
        if text != VERSION_TEXT:
            raise SpoolError(
                f"{root}: spool layout {text.strip()!r} is not {VERSION_TEXT.strip()!r}"
            )


def _own(path: Path, mode: int, owner: int | None, group: int | None) -> None:
    """Give `path` (never through a symlink) its owner, group and exact mode."""
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        raise SpoolError(f"{path} is a symbolic link, not part of a spool")
    if owner is not None or group is not None:
        os.lchown(path, -1 if owner is None else owner, -1 if group is None else group)
        st = os.lstat(path)
    if os.geteuid() not in (0, st.st_uid):
        return  # not ours to change (check_spool reports it if it is unsafe)
    if stat.S_IMODE(st.st_mode) != mode:
        os.chmod(path, mode)


def is_visible(name: str) -> bool:
    """Whether a directory entry is a published name (not a temp or NFS leftover)."""
    return not name.startswith(".")
