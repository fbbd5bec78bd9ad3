"""Shared fixtures: a fresh spool, a default etc/ folder, and a CLI runner; and the
hermetic guard that keeps every test away from the checkout's ./spool and ./etc."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

import pytest
from click.testing import CliRunner, Result

from printnet.masterfile import Job
from printnet.spool.layout import Spool

if TYPE_CHECKING:
    from test_console import Project

# The poisoned working directory's etc/ is valid but knows only this printer, so a
# request that reads it fails with "unknown printer ... (known: POISONED_CWD)"; its
# SPOOL is a plain file, so a server or spool command that reads ./spool fails too.
POISON_PRINTER: Final = "POISONED_CWD"
POISON_TEXT: Final = ("not a spool: tests/conftest.py poisoned the working directory, so "
                      "a test that uses ./spool or ./etc instead of its own fails\n")


@pytest.fixture(autouse=True, scope="session")
def hermetic_cwd() -> Iterator[Path]:
    """Run the whole session from a temporary folder whose ./spool is a plain file and
    whose ./etc knows only printer POISONED_CWD, without PRINTNET_SPOOL/PRINTNET_ETC in
    the environment.

    `printnet` falls back to ./spool and ./etc of its working directory; a test (or a
    subprocess it starts) that forgets to name its own would otherwise pick up the
    checkout's (made by `scripts/demo`) or a developer's shell settings.  Here such a
    test fails loudly on the poisoned files instead of passing or failing by accident.
    """
    saved_cwd = os.getcwd()
    saved_env = {k: os.environ.pop(k) for k in ("PRINTNET_SPOOL", "PRINTNET_ETC",
                                                 "PRINTNET_RUNTIME_DIR") if k in os.environ}
    with tempfile.TemporaryDirectory(prefix="printnet-cwd-") as folder:
        # In-process servers and consoles of this session get their own runtime folder
        # (presence locks, control sockets), not the user's /tmp/printnet-<uid>.
        os.environ["PRINTNET_RUNTIME_DIR"] = str(Path(folder, "run"))
        Path(folder, "spool").write_text(POISON_TEXT)
        Path(folder, "etc").mkdir()
        Path(folder, "etc", "server.cmd").write_text(
            f"SERVER NAME={POISON_PRINTER}\nSPOOL spool\n")
        Path(folder, "etc", "printers.cmd").write_text(
            f"PRINTER {POISON_PRINTER} PORT=loop://\nSETUP STANDARD FORM=PLAIN LENGTH=66 "
            f"WIDTH=80\nDEFAULT {POISON_PRINTER}\n")
        os.chdir(folder)
        try:
            yield Path(folder)
        finally:
            os.chdir(saved_cwd)
            os.environ.pop("PRINTNET_RUNTIME_DIR", None)
            os.environ.update(saved_env)


pytest_plugins = ["_ci_strict"]  # CI: fixtures that cannot come up fail; the census line


@pytest.fixture
def spool(tmp_path: Path) -> Spool:
    """An initialized, empty spool in a temporary folder."""
    s, _ = Spool.init(tmp_path / "spool")
    return s


@pytest.fixture
def etc(tmp_path: Path) -> Path:
    """The embedded default etc/ folder (printer LOCAL, setups STANDARD/CHECKS/LABELS)."""
    from printnet import config

    folder = tmp_path / "etc"
    config.write_defaults(folder)
    return folder


@dataclass
class CliRun:
    """Runs `printnet --spool <spool> --etc <etc> ARGS...` in-process."""

    spool: Path
    etc: Path

    def __call__(
        self, *args: str, input: str | bytes | None = None, env: dict[str, str] | None = None,
    ) -> Result:
        from printnet.cli import cli

        runner = CliRunner()
        full = ["--spool", str(self.spool), "--etc", str(self.etc), *args]
        return runner.invoke(cli, full, input=input, env=env, catch_exceptions=False)


RunCli = Callable[..., Result]


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    """A console project (`test_console.Project`): etc/, spool/, output/, its server
    stopped at the end."""
    from test_console import Project
    p = Project(tmp_path)
    try:
        yield p
    finally:
        p.stop()


@pytest.fixture
def run_cli(tmp_path: Path, spool: Spool, etc: Path) -> CliRun:
    """A CLI runner bound to the `spool` and `etc` fixtures."""
    return CliRun(spool.root, etc)


def tree(folder: Path) -> list[str]:
    """Every path under `folder` (relative), sorted: to prove nothing was written."""
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in [*dirnames, *filenames]:
            out.append(os.path.relpath(os.path.join(dirpath, name), folder))
    return sorted(out)


def names(folder: Path, skip_dot: bool = False) -> Sequence[str]:
    return sorted(n for n in os.listdir(folder) if not (skip_dot and n.startswith(".")))


def make_ids(n: int, start_ms: int = 1_770_000_000_000) -> list[str]:
    """`n` valid job ids in submission order."""
    from printnet.model import JobIdGenerator

    gen = JobIdGenerator()
    return [gen.next(start_ms + i, i) for i in range(n)]


def make_job(job_id: str, **fields: object) -> Job:
    """A pending standard job for printer LOCAL, with `fields` changed."""
    from printnet.masterfile import Job
    from printnet.model import Format, JobState, Priority

    values: dict[str, object] = {
        "id": job_id, "user": "alice", "station": "ws1",
        "submitted": "2026-03-01T12:00:00.000000Z", "destination": "LOCAL",
        "priority": Priority.STANDARD, "copies": 1, "title": "t", "setup": "",
        "header": True, "format": Format.TEXT, "state": JobState.PENDING,
    }
    values.update(fields)
    return Job(**values)  # type: ignore[arg-type]


class FakeFence:
    """A lock stand-in for MasterStore.commit: `check()` fails once `lost` is set."""

    def __init__(self) -> None:
        self.lost = False
        self.checks = 0

    def check(self) -> None:
        from printnet.errors import LockLost

        self.checks += 1
        if self.lost:
            raise LockLost("fake fence: lost")
