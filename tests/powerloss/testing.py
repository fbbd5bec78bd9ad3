"""What the power-loss tests share: the CI-strict FUSE requirement and a job check."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from powerloss.mount import fuse_problem
from printnet.errors import PrintnetError
from printnet.model import PrintRequest, decode_request


def require_fuse() -> None:
    """Skip (in CI: fail, with the reason) when a FUSE mount cannot come up here."""
    problem = fuse_problem()
    if problem is None:
        return
    if os.environ.get("CI") == "true" or os.environ.get("PRINTNET_REQUIRE_ALL") == "1":
        pytest.fail(f"the power-loss filesystem cannot come up: {problem}")
    pytest.skip(f"the power-loss filesystem cannot come up: {problem}")


def job_intact(root: Path, job_id: str) -> bool:
    """Whether spool `root` holds job `job_id` as submitted: its request in new/
    decodes and its data folder holds every file listed, with its size."""
    try:
        req = decode_request((root / "new" / f"{job_id}.req").read_bytes())
    except (OSError, PrintnetError):
        return False
    if not isinstance(req, PrintRequest):
        return False
    return all((root / "data" / job_id / f.name).is_file()
               and (root / "data" / job_id / f.name).stat().st_size == f.size
               for f in req.files)
