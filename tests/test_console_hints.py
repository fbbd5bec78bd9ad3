"""What the console tells an operator when it cannot be had (issue 16 §4): a server
started on a terminal but not in its foreground says why it offers no console."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_console import PRINTNET, Project, Pty
from waiting import wait_for

# As a shell's `server &`: a child in its own process group of the terminal's session
# (not the foreground one); SIGTERM to the wrapper is passed on to it.
BACKGROUND = """
import os, signal, sys
pid = os.fork()
if pid == 0:
    os.setpgid(0, 0)
    os.execv(sys.argv[1], sys.argv[1:])
signal.signal(signal.SIGTERM, lambda *a: os.kill(pid, signal.SIGTERM))
os.waitpid(pid, 0)
"""


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    p = Project(tmp_path)
    try:
        yield p
    finally:
        p.stop()


def test_a_server_in_the_background_of_a_terminal_says_why_no_console(
        project: Project) -> None:
    term = Pty([sys.executable, "-c", BACKGROUND, PRINTNET, "server"], project.root,
               project.env)
    try:
        term.expect(r"started in the background of a terminal: no console here", 30)
        wait_for(lambda: project.name in project.console("I").stdout, timeout=30,
                 what="the server answering `printnet console`")
        assert f"{project.name}> " not in term.text  # no prompt: it is not the console
    finally:
        term.close()
