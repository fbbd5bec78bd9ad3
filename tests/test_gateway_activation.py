"""The gateway under socket activation: `systemd-socket-activate` binds the IPP and
LPD ports and starts a real `printnet gateway` with them (LISTEN_FDS); the gateway
must serve on those sockets and never bind its own (a second bind of a listening
port fails, so a gateway that tried would exit).  A Print-Job through the
inherited IPP socket prints; the inherited LPD socket answers a queue query; a
NOTIFY_SOCKET the test binds receives READY=1 once the doors listen.

In CI (`CI=true`) a missing tool FAILS; elsewhere the test skips with the reason.
"""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

from helpers_e2e import PYTHON, server_env, wait_for
from helpers_ipp import attr, ipp, ipp_message, make_rig, need

from printnet.ipp.codec import Attribute
from printnet.ipp.enums import Operation, Tag


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def lpd_short_queue(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(b"\x03LOCAL\n")
        chunks = []
        while data := s.recv(4096):
            chunks.append(data)
    return b"".join(chunks)


def test_the_gateway_serves_on_the_sockets_systemd_passed(tmp_path: Path) -> None:
    tool = need("systemd-socket-activate")
    rig = make_rig(tmp_path)
    ipp_port, lpd_port = free_port(), free_port()
    notify = tmp_path / "notify.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(notify))
    listener.settimeout(60)
    env = {k: v for k, v in server_env(tmp_path / "run").items()
           if not k.startswith("LISTEN_")}
    env["NOTIFY_SOCKET"] = str(notify)
    log = tmp_path / "activated.log"
    with open(log, "ab") as fh:
        proc = subprocess.Popen(
            [tool, "-l", f"127.0.0.1:{ipp_port}", "-l", f"127.0.0.1:{lpd_port}",
             "--fdname=ipp:lpd", f"--setenv=NOTIFY_SOCKET={notify}",
             PYTHON, "-m", "printnet", "--spool", str(rig.spool), "--etc", str(rig.etc),
             "gateway", "--ipp", f"127.0.0.1:{ipp_port}", "--lpd", f"127.0.0.1:{lpd_port}"],
            stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT, env=env,
            cwd=tmp_path)
    try:
        def listening() -> bool:
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", ipp_port)) == 0

        wait_for(listening, 60, "systemd-socket-activate to listen", on_timeout=log.read_text)
        reply = ipp(ipp_port, ipp_message(
            Operation.PRINT_JOB, f"ipp://127.0.0.1:{ipp_port}/ipp/print/LOCAL",
            operation=[Attribute.of("job-name", Tag.NAME, "activated"),
                       Attribute.of("document-format", Tag.MIME_MEDIA_TYPE, "text/plain")],
            data=b"printed through an inherited socket\n"))
        assert reply.code == 0, reply
        job_id = attr(reply, "job-id")
        assert job_id
        ready = listener.recv(4096).decode()
        assert "READY=1" in ready, ready
        wait_for(lambda: rig.out.exists()
                 and b"printed through an inherited socket" in rig.out.read_bytes(),
                 120, "the job to print", on_timeout=log.read_text)
        queue = lpd_short_queue(lpd_port)  # answered on the inherited LPD socket
        assert queue.startswith(b"LOCAL "), queue
        text = log.read_text(errors="replace")
        assert f"listening on 127.0.0.1:{ipp_port}" in text, text
        assert "Address already in use" not in text, text
        assert proc.poll() is None, text
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(30)
        listener.close()
        rig.stop()
    assert os.path.exists(rig.out)
