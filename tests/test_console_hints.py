"""What the console tells an operator when it cannot be had (issue 16 §4): a server
started on a terminal but not in its foreground says why it offers no console."""

from __future__ import annotations

import getpass
import json
import sys

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


def test_a_rejected_jobs_status_line_names_its_user_and_printer(project: Project) -> None:
    """`printnet status ID` of a job the server rejected: its user and printer, no
    queue position (it is in no queue), and the reason without the id again."""
    project.start()
    project.console("CP", "REJECT", "LOCAL", "closed", "for", "repair")
    refused = project.submit("rejected\n", printer="LOCAL", title="the letter")
    wait_for(lambda: list(project.spool.rejected.glob(f"{refused}*.reason")),
             what="the rejection")
    out = project.cli("status", refused).stdout
    [line] = [ln for ln in out.splitlines() if refused in ln]
    fields = line.split()
    assert fields[0] == "-" and fields[1] == refused, line
    assert fields[2] == getpass.getuser()[:10] and fields[3] == "LOCAL", line
    assert "rejected" in fields and "closed for repair" in line, line
    assert line.count(refused) == 1, line
    data = json.loads(project.cli("status", "--json", refused).stdout)
    [job] = [j for j in data["jobs"] if j["id"] == refused]
    assert job["position"] is None and job["printer"] == "LOCAL"
    assert job["title"] == "the letter" and refused not in job["note"]
