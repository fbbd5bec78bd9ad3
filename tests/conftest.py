"""Shared fixtures: a fresh spool, a default etc/ folder, and a CLI runner."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from printnet.masterfile import Job
from printnet.spool.layout import Spool

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
        "submitted": "2026-03-01T12:00:00.000000Z", "printer": "LOCAL",
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
