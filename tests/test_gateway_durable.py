"""An IPP Print-Job's answer means its request is durable in new/, under load.

Many clients at once take the gateway's fast path (Print-Job staged in the
event loop, published by the group commit, answered once its group is
durable).  Each client checks, the moment its answer arrives, that the
request is in new/ with its data whole; then the gateway is killed with
SIGKILL in the middle of a flood, and every job it acknowledged must still be
there, and nothing half-written visible.  No server runs, so nothing moves
the requests on.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import threading
from pathlib import Path

from helpers_e2e import PrinterSpec, make_etc, server_env, wait_for
from helpers_gateway import init_spool, start_gateway
from helpers_ipp import attr, ipp_message

from printnet.ipp import codec
from printnet.ipp.codec import Attribute
from printnet.ipp.enums import Operation, Tag

CLIENTS = 16


def _body(port: int, data: bytes) -> bytes:
    msg = ipp_message(Operation.PRINT_JOB, f"ipp://127.0.0.1:{port}/ipp/print/LOCAL",
                      user="alice", data=data, operation=[
                          Attribute.of("job-name", Tag.NAME, "durable"),
                          Attribute.of("document-format", Tag.MIME_MEDIA_TYPE, "text/plain")])
    return codec.encode(msg)


def _whole(spool: Path, job_id: str, data: bytes | None = None) -> str | None:
    """None if new/<id>.req is there and its data folder holds its file (`data`); else
    what is wrong."""
    req_path = spool / "new" / f"{job_id}.req"
    try:
        req = json.loads(req_path.read_text())
    except (OSError, ValueError) as exc:
        return f"{job_id}: no whole request in new/ ({exc!r})"
    got = (spool / "data" / job_id / "0").read_bytes()
    if data is not None and got != data:
        return f"{job_id}: data {got!r} is not {data!r}"
    if len(got) != req["files"][0]["size"]:
        return f"{job_id}: {len(got)} bytes, the request says {req['files'][0]['size']}"
    return None


def test_every_answered_print_job_is_in_new_even_after_kill_9(tmp_path: Path) -> None:
    env = server_env(tmp_path / "run")
    spool = init_spool(tmp_path, env)
    etc = make_etc(tmp_path / "p", "S1", [spool],
                   [PrinterSpec("LOCAL", tmp_path / "p/out/LOCAL.prn")])
    (etc / "gateway.cmd").write_text("AUTH TRUST NETWORKS=127.0.0.0/8\n")
    gw = start_gateway(spool, etc, tmp_path / "gateway.log", env)
    acked: list[str] = []
    wrong: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(c: int, jobs: int | None) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", gw.ipp, timeout=60)
        i = 0
        try:
            while (jobs is None or i < jobs) and not stop.is_set():
                data = f"client {c} job {i}\n".encode()
                conn.request("POST", "/ipp/print/LOCAL", _body(gw.ipp, data),
                             {"Content-Type": "application/ipp"})
                reply = codec.decode(conn.getresponse().read())
                assert reply.code == 0, hex(reply.code)
                job_id = str(attr(reply, "printnet-id"))
                problem = _whole(spool, job_id, data)  # at the answer, not later
                with lock:
                    acked.append(job_id)
                    if problem:
                        wrong.append(problem)
                i += 1
        except (OSError, http.client.HTTPException):
            if jobs is not None:
                raise
        finally:
            conn.close()

    try:
        # 1. Concurrent clients, every answer checked the moment it arrives.
        threads = [threading.Thread(target=client, args=(c, 10)) for c in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not wrong, wrong[:5]
        assert len(acked) == 10 * CLIENTS
        first = len(acked)
        # 2. A flood, and SIGKILL in its middle: what was answered stays.
        threads = [threading.Thread(target=client, args=(c, None)) for c in range(CLIENTS)]
        for t in threads:
            t.start()
        wait_for(lambda: len(acked) >= first + 100, 60, "100 more answers")
        os.kill(gw.proc.pid, signal.SIGKILL)
        gw.proc.wait(30)
        stop.set()
        for t in threads:
            t.join(60)
        with lock:
            answered = list(acked)
        assert not wrong, wrong[:5]
        problems = [p for p in (_whole(spool, i) for i in answered) if p]
        assert not problems, problems[:5]
        # Nothing half-written is visible: every request in new/ is whole.
        in_new = [n[:-4] for n in os.listdir(spool / "new") if n.endswith(".req")]
        assert set(answered) <= set(in_new)
        problems = [p for p in (_whole(spool, i) for i in in_new) if p]
        assert not problems, problems[:5]
    finally:
        stop.set()
        gw.stop()
