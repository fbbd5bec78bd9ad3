"""What `printnet status` says when a printer takes nothing (issue 16, section 4).

A real `printnet server` drives a simulated printer and a raw TCP printer that
nobody listens for.  The offline reason must be one clean sentence (no
``cannot open ...: Could not open port ...`` twice over), and where the device
says why (the simulated printer's state file) the reason is that: out of paper,
offline; not "printer took no bytes for 1.0 s".
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from helpers_e2e import (
    PrinterSpec,
    ServerProcess,
    done_records,
    logs,
    make_etc,
    printer_info,
    printnet,
    published,
    server_env,
    start_server,
    wait_for,
    write_printers,
)

from printnet.api import Station
from printnet.printers.simctl import sim_control
from printnet.spool.layout import Spool


@pytest.fixture
def servers() -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for s in started:
        if s.poll() is None:
            s.kill9()


def free_port() -> int:
    probe = socket.create_server(("127.0.0.1", 0))
    port = int(probe.getsockname()[1])
    probe.close()  # nothing listens there now: connections are refused
    return port


def offline_reason(root: Path, name: str) -> str:
    """The first reason of an offline printer in S1's status file; '' if not offline."""
    info = printer_info(root, "S1", name) or {}
    reasons = info.get("reasons") or [""]
    return str(reasons[0]) if info.get("state") == "offline" else ""


def shows(root: Path, name: str, text: str) -> bool:
    return text in offline_reason(root, name)


def test_status_says_paper_out_offline_and_refused_in_one_sentence(
        tmp_path: Path, servers: list[ServerProcess]) -> None:
    root = tmp_path / "spool"
    Spool.init(root)
    sim = PrinterSpec("P1", tmp_path / "proj" / "out" / "P1.prn", baud="38400")
    etc = make_etc(tmp_path / "proj", "S1", [root], [sim])
    net = f"socket://127.0.0.1:{free_port()}"
    write_printers(etc, [sim], extra=f"PRINTER NET PORT={net} STALL=2 RETRY=1 HEADER=NONE\n")
    env = server_env(tmp_path / "run")
    servers.append(start_server(etc, "S1", env=env))
    wait_for(lambda: published(root, "S1"), 30, "S1 up", on_timeout=lambda: logs(servers))

    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("".join(f"line {i} the quick brown fox\n" for i in range(300)))
    [p1] = Station(root).submit([src / "a.txt"], printer="P1")
    [n1] = Station(root).submit([src / "a.txt"], printer="NET")
    wait_for(lambda: ((printer_info(root, "S1", "P1") or {}).get("progress") or {})
             .get("bytes", 0) > 2000, 30, "P1 printing", on_timeout=lambda: logs(servers))

    def reason(name: str) -> str:
        return offline_reason(root, name)

    for state, says in (("paperout", "out of paper"), ("offline", "offline")):
        sim_control(sim.out, state)
        wanted = f": {says} (took no bytes"
        wait_for(partial(shows, root, "P1", wanted), 20, f"P1 {says}",
                 on_timeout=lambda: logs(servers))
        text = printnet("--spool", str(root), "status", env=env).stdout
        assert re.search(rf"printer P1: offline \(job {p1.id}\), setup STANDARD "
                         rf"\(sim://P1\?\S+: {says} \(took no bytes for \d+\.\d s, "
                         rf"after \d+ of \d+ bytes\)\) \[server S1\]", text), text
        sim_control(sim.out, "online")
        wait_for(lambda: not reason("P1"), 20, "P1 back", on_timeout=lambda: logs(servers))

    wait_for(lambda: reason("NET"), 20, "NET offline", on_timeout=lambda: logs(servers))
    assert reason("NET") == f"printer NET: cannot open {net}: Connection refused"
    text = printnet("--spool", str(root), "status", env=env).stdout
    assert f"(printer NET: cannot open {net}: Connection refused)" in text, text
    assert "Could not open port" not in text and "Errno" not in text, text

    wait_for(lambda: p1.id in done_records(root), 60, "P1's job printed",
             on_timeout=lambda: logs(servers))
    assert done_records(root)[p1.id]["outcome"] == "completed"
    assert n1.id not in done_records(root)
    assert servers[0].stop() == 0
