"""The session guard of tests/conftest.py is in place: tests run from a poisoned
working directory, so one that falls back to ./spool or ./etc (the checkout's, made
by `scripts/demo`, or a developer's PRINTNET_SPOOL/PRINTNET_ETC) fails loudly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import POISON_PRINTER

from printnet.spool.layout import Spool

REPO = Path(__file__).resolve().parent.parent


def test_the_working_directory_is_not_the_checkout() -> None:
    cwd = Path.cwd().resolve()
    assert cwd != REPO and REPO not in cwd.parents
    assert Path("spool").is_file()  # not a spool: any use of it fails
    assert POISON_PRINTER in Path("etc", "printers.cmd").read_text()
    assert "PRINTNET_SPOOL" not in os.environ and "PRINTNET_ETC" not in os.environ


def test_a_cli_run_that_forgets_etc_fails(spool: Spool, tmp_path: Path) -> None:
    """What bug 4 was: `printnet --spool X request -P P1` read the cwd's etc/."""
    doc = tmp_path / "doc.txt"
    doc.write_text("x\n")
    proc = subprocess.run([sys.executable, "-m", "printnet", "--spool", str(spool.root),
                           "request", "-P", "P1", str(doc)], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode != 0 and f"known: {POISON_PRINTER}" in proc.stderr, proc.stderr
    forgot_spool = subprocess.run([sys.executable, "-m", "printnet", "status"],
                                  capture_output=True, text=True, timeout=60, check=False)
    assert forgot_spool.returncode != 0, forgot_spool.stdout
