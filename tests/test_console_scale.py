"""The console at the scale the queue claims: CH with 2,000 and 100,000 queued jobs
against a real `printnet server`, through `printnet console` (issue 16 §2).

The jobs are real requests published with the station API in one batch (held,
so that nothing prints them); the oracle is the set of ids the station got
back, never what the server says about itself.  Also: an unexpected error
reaches a user as one line, never a traceback.
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from typing import Any

import pytest
from test_console import PRINTNET, Project
from waiting import wait_for

from printnet.api import Station


def queue_held(project: Project, count: int) -> set[str]:
    """`count` held jobs for LOCAL, published in one batch; their ids."""
    source = project.root / "one.txt"
    source.write_text("a small job\n")
    station = Station(project.spool.root, project.etc)
    requests = station.submit([source] * count, each=True, hold=True, printer="LOCAL",
                              title="scale")
    ids = {r.id for r in requests}
    assert len(ids) == count
    return ids


def ch_json(project: Project, *args: str, timeout: float = 300) -> Any:
    result = subprocess.run(
        [PRINTNET, "console", "--server", project.name, "--json", "CH", *args],
        cwd=project.root, env=project.env, stdin=subprocess.DEVNULL, capture_output=True,
        text=True, timeout=timeout, check=False)
    assert result.returncode == 0, (result.stdout[-2000:], result.stderr)
    return json.loads(result.stdout)


def local_section(data: dict[str, Any]) -> dict[str, Any]:
    section = next(q for q in data["queues"] if q["name"] == "LOCAL")
    assert isinstance(section, dict)
    return section


def taken_in(project: Project, count: int, deadline: float) -> None:
    wait_for(lambda: local_section(ch_json(project, "-n", "0"))["count"] >= count,
             timeout=deadline, interval=1.0, what=f"{count} jobs taken in")


def check_scale(project: Project, ids: set[str]) -> None:
    count = len(ids)
    # The plain answer: the first 50 and a count of the rest, no traceback.
    plain = project.console("CH")
    assert "Traceback" not in plain.stderr + plain.stdout
    rows = [line for line in plain.stdout.splitlines() if " scale" in line]
    assert len(rows) == 50, plain.stdout[:3000]
    assert f"... and {count - 50:,} more" in plain.stdout
    assert f"Held: {count:,}" in plain.stdout
    # --json gives all of them, each once, exactly the station's ids.
    started = time.monotonic()
    data = ch_json(project)
    took = time.monotonic() - started
    section = local_section(data)
    got = [j["id"] for j in section["jobs"]]
    assert len(got) == count and set(got) == ids
    assert section["count"] == count and section["more"] == 0
    assert all(j["state"] == "held" for j in section["jobs"])
    print(f"CH --json of {count} jobs: {took:.2f} s")
    # Filters: a limit, a state, a user, a printer.
    few = local_section(ch_json(project, "-n", "7", "-s", "held"))
    assert [j["id"] for j in few["jobs"]] == got[:7] and few["more"] == count - 7
    assert local_section(ch_json(project, "-s", "pending"))["count"] == 0
    assert local_section(ch_json(project, "-u", "nobody-here"))["count"] == 0
    mine = local_section(ch_json(project, "-u", section["jobs"][0]["user"], "-n", "3"))
    assert mine["count"] == count and len(mine["jobs"]) == 3
    only = ch_json(project, "-P", "local", "-n", "1")
    assert [q["name"] for q in only["queues"]] == ["LOCAL"]
    text = project.console("CH", "-P", "LOCAL", "-n", "5").stdout
    assert f"... and {count - 5:,} more" in text
    unknown = project.console("CH", "-P", "NOSUCH", ok=False)
    assert "no printer or class NOSUCH" in unknown.stderr
    assert "Traceback" not in unknown.stderr and len(unknown.stderr.splitlines()) == 1


def test_ch_with_2000_queued_jobs(project: Project) -> None:
    ids = queue_held(project, 2000)
    project.start()
    taken_in(project, 2000, 120)
    check_scale(project, ids)


@pytest.mark.slow
def test_ch_with_100000_queued_jobs(project: Project) -> None:
    started = time.monotonic()
    ids = queue_held(project, 100_000)
    print(f"published 100,000 requests in {time.monotonic() - started:.1f} s")
    project.start()
    taken_in(project, 100_000, 900)
    print(f"taken in after {time.monotonic() - started:.1f} s")
    check_scale(project, ids)


def test_an_unexpected_error_is_one_line_never_a_traceback(project: Project) -> None:
    """A console socket that answers something the client cannot parse (JSON nested
    deeper than Python's recursion limit): the CLI says one line and exits 1."""
    project.run_dir.mkdir(mode=0o700)
    path = project.run_dir / f"{project.name}.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(4)

    def answer() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                conn.sendall(b'{"ok": true, "data": ' + b"[" * 200_000 + b"]" * 200_000
                             + b"}\n")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        result = project.console("CH", ok=False)
    finally:
        listener.close()
    assert result.returncode == 1
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("printnet: internal error: "), lines
    assert "RecursionError" in lines[0]
