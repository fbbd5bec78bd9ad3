"""Forwarding rate between two sites: ``python -m bench.forward_bench [--jobs N] [--runs R]``.

A branch spool with N queued jobs and one `printnet server` whose printer forwards
them to a central site, over the share (``PORT=spool:...``) or over loopback IPP
to a central `printnet gateway` (``PORT=ipp://...``); no central server runs (the
jobs are stored at central, not printed).  The clock runs from the branch
server's first published status to the last job's done record (outcome
forwarded): jobs per second of forwarding alone.  Transports are interleaved,
run by run; medians and spreads are printed (docs/SITES.md).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import median

PY = sys.executable


def _env(run: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRINTNET_")}
    run.mkdir(parents=True, exist_ok=True, mode=0o700)
    env["PRINTNET_RUNTIME_DIR"] = str(run)
    return env


def _wait(cond: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.01)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def one(work: Path, transport: str, jobs: int) -> float:
    """Jobs per second forwarded over `transport` ("spool" or "ipp")."""
    from printnet.api import Station
    from printnet.spool.layout import Spool

    shutil.rmtree(work, ignore_errors=True)
    central, branch = work / "central" / "spool", work / "branch" / "spool"
    Spool.init(central)
    Spool.init(branch)
    cetc, betc = work / "central" / "etc", work / "branch" / "etc"
    for etc, root, name in ((cetc, central, "C1"), (betc, branch, "B1")):
        etc.mkdir(parents=True)
        (etc / "server.cmd").write_text(f'SERVER NAME={name}\nSPOOL "{root}"\nSCAN 0.2\n'
                                        "LEASE 5\nOPERATORS root\n")
    (cetc / "printers.cmd").write_text(
        f"PRINTER HQ PORT=file://{work}/central/HQ.prn\nSETUP STANDARD LENGTH=66 WIDTH=80\n")
    gateway = None
    if transport == "ipp":
        port = _port()
        target = f"ipp://127.0.0.1:{port}/ipp/print/HQ"
        log = work / "gateway.log"
        with open(log, "ab") as fh:
            gateway = subprocess.Popen(
                [PY, "-m", "printnet", "--spool", str(central), "--etc", str(cetc), "gateway",
                 "--ipp", f"127.0.0.1:{port}"], stdout=fh, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, env=_env(work / "run-gw"))
        _wait(lambda: "listening on" in log.read_text(), 60, "the gateway")
    else:
        target = f"spool:{central}?printer=HQ"
    (betc / "printers.cmd").write_text(
        f"PRINTER FWD PORT={target} STALL=5 RETRY=0.2\nSETUP STANDARD LENGTH=66 WIDTH=80\n")
    src = work / "doc.txt"
    src.write_text("a page of text forwarded to the central site\n" * 40)
    station = Station(branch, betc)
    ids = [r.id for r in station.submit([src] * jobs, printer="FWD", each=True)]
    log = work / "branch.log"
    with open(log, "ab") as fh:
        server = subprocess.Popen([PY, "-m", "printnet", "--etc", str(betc), "server"],
                                  stdout=fh, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, env=_env(work / "run-b"),
                                  cwd=work)
    try:
        status = branch / "servers" / "B1.json"

        def running() -> bool:
            try:
                return bool(json.loads(status.read_text()).get("state") == "running")
            except (OSError, ValueError):
                return False

        _wait(running, 120, "the branch server")
        start = time.monotonic()
        _wait(lambda: len(os.listdir(branch / "done")) >= len(ids), 600,
              "every job forwarded")
        took = time.monotonic() - start
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)
        if gateway is not None:
            gateway.terminate()
            gateway.wait(60)
    forwarded = sum(1 for n in os.listdir(central / "new") if n.endswith(".req"))
    if forwarded != jobs:
        raise RuntimeError(f"{transport}: {forwarded} of {jobs} jobs at central")
    return jobs / took


def measure(work: Path, jobs: int, runs: int) -> dict[str, list[float]]:
    """jobs/s per transport ("spool", "ipp"), `runs` each, interleaved."""
    rates: dict[str, list[float]] = {"spool": [], "ipp": []}
    for run in range(runs):
        for transport, measured in rates.items():
            rate = one(work / transport, transport, jobs)
            measured.append(rate)
            print(f"run {run + 1}: {transport}: {rate:.1f} jobs/s", flush=True)
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="forward-bench-") as tmp:
        rates = measure(Path(tmp), args.jobs, args.runs)
    for transport, values in rates.items():
        print(f"{transport}: median {median(values):.1f} jobs/s "
              f"(runs {', '.join(f'{v:.1f}' for v in values)}), {args.jobs} jobs each")


if __name__ == "__main__":
    main()
