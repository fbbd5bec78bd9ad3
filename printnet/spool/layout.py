"""The spool's directory layout, its format-version file and its permissions.

On-disk layout of one shared disk (DESIGN.md)::

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

Permissions set by `init` (see docs/SECURITY.md for the multi-user story):
tmp/, new/ and data/ are 1733 (anyone may drop in, nobody may list or touch
what others dropped); everything else is 0755 with files 0644, writable only
by the service account that runs the servers.  `init` is idempotent and never
clobbers an existing file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from printnet.errors import SpoolError
from printnet.spool.publish import write_new

SPOOL_VERSION: Final = 1
VERSION_TEXT: Final = f"printnet-spool {SPOOL_VERSION}\n"

DROP_MODE: Final = 0o1733  # stations drop in; sticky; not listable by others
PRIVATE_MODE: Final = 0o755
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
    """Paths of one shared disk."""

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
    def init(cls, root: Path) -> tuple[Spool, list[Path]]:
        """Create the layout (idempotent, never clobbers).  Returns what was created."""
        created: list[Path] = []
        try:
            if not root.exists():
                root.mkdir(parents=True, mode=PRIVATE_MODE)
                created.append(root)
            version = root / "VERSION"
            if version.exists():
                cls._check_version(root)
            for name, mode in DIRS.items():
                path = root / name
                if not path.exists():
                    path.mkdir(mode=mode)
                    os.chmod(path, mode)  # mkdir's mode is masked by the umask
                    created.append(path)
            if not version.exists():
                try:
                    write_new(version, VERSION_TEXT.encode())
                    created.append(version)
                except FileExistsError:
                    pass
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


def is_visible(name: str) -> bool:
    """Whether a directory entry is a published name (not a temp or NFS leftover)."""
    return not name.startswith(".")
