"""Jobs assigned ahead (issue 16 §4): a printer given its next job while it still
prints one shows that job as `next`, not `printing`; after a kill -9 of the real
server only the job that sent bytes is counted as restarted.

Oracles: the master file and done/ records read from disk, the server's output,
and what the simulated printer wrote -- never the console's own word alone.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

from test_console import Project
from waiting import wait_for


def test_next_job_is_shown_as_next_and_not_restarted_after_kill_9(tmp_path: Path) -> None:
    project = Project(tmp_path)
    try:
        project.start()
        project.console("CP", "ADD", "SLOW", "PORT=sim://SLOW?out=../output/SLOW.prn",
                        "BAUD=2400", "HEADER=NONE")
        text = "".join(f"line {i}\n" for i in range(3000))  # tens of seconds at 2400 baud
        first = project.submit(text, printer="SLOW")
        wait_for(lambda: (project.job(first) or _none()).state.value == "printing",
                 timeout=60, what="the first job printing")
        second = project.submit("the next one\n", printer="SLOW")

        def shown() -> dict[str, Any] | None:
            jobs = {j["id"]: j for q in project.json("CH", "-P", "SLOW")["queues"]
                    for j in q["jobs"]}
            if second in jobs and jobs[second].get("next"):
                return jobs
            return None
        jobs = wait_for(shown, timeout=60, what="the second job assigned ahead")
        assert project.job(second).state.value == "printing"  # assigned, in the master file
        assert jobs[first]["next"] is False
        assert "next on SLOW" in jobs[second]["note"]
        plain = project.console("CH", "-P", "SLOW").stdout
        assert any(second in line and " next " in line for line in plain.splitlines()), plain
        assert any(first in line and " printing " in line for line in plain.splitlines())
        only_next = project.json("CH", "-s", "next")
        assert [j["id"] for q in only_next["queues"] for j in q["jobs"]] == [second]

        assert project.server is not None
        project.server.send_signal(signal.SIGKILL)
        project.server.wait(30)
        log_before = project.log.read_text()
        project.start()
        wait_for(lambda: "restarted while printing it" in project.log.read_text()[
            len(log_before):], timeout=60, what="the previous life's jobs reconciled")
        after = project.log.read_text()[len(log_before):]
        assert f"job {first} requeued: this server restarted while printing it" in after
        assert f"{second} requeued: this server restarted while printing it" not in after
        assert f"job {second} requeued: this server restarted before printing it" in after
        assert project.job(first).restarted == 1
        assert project.job(second).restarted == 0
        assert project.job(second).note != "restarted after server failure"
    finally:
        project.stop()


class _none:
    """Stands in for a job not in the master file (yet)."""

    class state:
        value = ""
