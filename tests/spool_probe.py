"""Run on a "host" (child process) to look at or act on a spool; prints one JSON line.

The reliability tests never touch a possibly cut-off mount from the test
runner: they run this script on a host with a deadline instead
(`shared_fs.Host.probe`).

    spool_probe.py init SPOOL
    spool_probe.py state SPOOL            master, received, done, new, rejected, locks, stamps
    spool_probe.py submit SPOOL PRINTER N [PRIORITY] [TEXT]   N jobs; their ids
    spool_probe.py control SPOOL ACTION ID...                 a control request, no wait
    spool_probe.py tokens SPOOL LOG PRINTERS N [PRIORITY]     N jobs with token bodies
    spool_probe.py station SPOOL LOG PRINTERS RATE STOPFILE [LINES]
                                          submit until STOPFILE exists

A job submitted by `tokens`/`station` prints ``BEGIN:<32 hex token>``, a filler,
``END:<token>`` (`station` submits raw jobs, so the printed bytes are exactly
the document's); each one accepted (its id acknowledged) is appended to LOG as
``<id> <token> <printer> <priority> <filler sha256> <lines> <monotonic start>``
and fsynced before the next one starts, so LOG lists exactly the accepted jobs
even if the station is killed.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any


def state(root: Path) -> dict[str, Any]:
    from printnet.spool import master as master_io
    from printnet.spool.layout import Spool
    from printnet.spool.lock import LockTable

    spool = Spool.open(root)
    jobs = master_io.load(spool)
    done: dict[str, Any] = {}
    for name in os.listdir(spool.done):
        if not name.endswith(".json") or name.startswith("."):
            continue
        try:
            rec = json.loads((spool.done / name).read_bytes())
        except (OSError, ValueError):
            done[name[:-5]] = {"unreadable": True}
            continue
        if rec.get("kind") == "control":
            done[name[:-5]] = {"control": rec.get("results")}
        else:
            done[name[:-5]] = {"outcome": rec.get("outcome"),
                               "restarted": rec["job"].get("restarted", 0),
                               "server": rec.get("server"), "reason": rec.get("reason")}
    reasons = {}
    stamps = {}  # job id -> mtime of its done record or rejection reason (when decided)
    for name in os.listdir(spool.rejected):
        if name.endswith(".reason"):
            reasons[name[:-7]] = (spool.rejected / name).read_text(errors="replace")
            stamps[name[:-11]] = (spool.rejected / name).stat().st_mtime
    for job_id in done:
        stamps.setdefault(job_id, (spool.done / f"{job_id}.json").stat().st_mtime)
    locks = {name: {"holder": r.holder, "host": r.host, "pid": r.pid, "token": r.token}
             for name, r in LockTable(spool.locks).records().items()}
    return {
        "master": {j.id: {"state": j.state.value, "holder": j.holder, "note": j.note,
                          "restarted": j.restarted, "printer": j.destination,
                          "assigned": j.assigned}
                   for j in jobs.ordered()},
        "received": sorted(os.listdir(spool.received)),
        "new": sorted(os.listdir(spool.new)),
        "done": done,
        "rejected": sorted(n for n in os.listdir(spool.rejected) if not n.endswith(".reason")),
        "reasons": reasons,
        "stamps": stamps,
        "locks": locks,
        # Every file of locks/ (owner files, orphan claims, names set aside): what
        # a lock that nobody can take again is made of.
        "lockfiles": sorted(os.listdir(spool.locks)),
    }


def submit_token(station: Any, log: Any, printer: str, priority: str, lines: int = 0,
                 raw: bool = False) -> str:
    """One job whose body is ``BEGIN:<token>``, `lines` of filler, ``END:<token>``;
    logged once accepted as ``<id> <token> <printer> <priority> <filler sha256>
    <lines> <monotonic time the submit started>``."""
    import hashlib
    import secrets
    import time

    from chaos_oracle import body, filler

    token = secrets.token_hex(16)
    src = Path(f"/tmp/.probe-src-{os.getpid()}")
    src.write_bytes(body(token, lines))
    started = time.monotonic()
    try:
        [req] = station.submit([src], printer=printer, priority=priority, title="chaos",
                               raw=raw)
    finally:
        src.unlink(missing_ok=True)
    sha = hashlib.sha256(filler(lines)).hexdigest()
    log.write(f"{req.id} {token} {printer} {priority} {sha} {lines} {started:.3f}\n")
    log.flush()
    os.fsync(log.fileno())
    return str(req.id)


def main(argv: list[str]) -> Any:
    cmd, root = argv[0], Path(argv[1])
    if cmd == "init":
        from printnet.spool.layout import Spool

        Spool.init(root)
        return {"ok": True}
    if cmd == "state":
        return state(root)
    if cmd == "submit":
        from printnet.api import Station

        printer, n = argv[2], int(argv[3])
        priority = argv[4] if len(argv) > 4 else "standard"
        text = argv[5] if len(argv) > 5 else "hello"
        station = Station(root)
        src = Path(f"/tmp/.probe-src-{os.getpid()}")
        out = []
        try:
            for i in range(n):
                src.write_text(f"{text} {i}\n")
                [req] = station.submit([src], printer=printer, priority=priority)
                out.append(req.id)
        finally:
            src.unlink(missing_ok=True)
        return out
    if cmd == "control":
        from printnet.model import ControlAction
        from printnet.spool.layout import Spool
        from printnet.spool.submit import Submitter

        sub = Submitter(Spool.open(root), user="root", station="probe")
        return sub.control(ControlAction(argv[2]), argv[3:]).id
    if cmd in ("tokens", "station"):
        import random
        import time

        from printnet.api import Station
        from printnet.errors import PrintnetError

        printers = argv[3].split(",")
        station = Station(root, user="root")
        ids: list[str] = []
        with open(argv[2], "a") as log:
            if cmd == "tokens":
                priority = argv[5] if len(argv) > 5 else "standard"
                for i in range(int(argv[4])):
                    ids.append(submit_token(station, log, printers[i % len(printers)], priority))
                return ids
            rate, stop = float(argv[4]), Path(argv[5])
            lines = int(argv[6]) if len(argv) > 6 else 0
            rng = random.Random()
            while not stop.exists():
                try:
                    submit_token(station, log, rng.choice(printers), "standard", lines,
                                 raw=True)
                except PrintnetError as exc:  # e.g. the spool full: not accepted, go on
                    print(f"submit failed: {exc}", file=sys.stderr, flush=True)
                time.sleep(rng.expovariate(rate))
            return {"stopped": True}
    raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))
