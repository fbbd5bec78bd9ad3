"""Helpers for the IPP door's tests: a real spool, server and gateway, and an IPP client.

`Rig` is one project folder with a spool, a `printnet server` printing LOCAL
on a simulated printer, and one or more `printnet gateway` processes on ports
they pick themselves (port 0; the port is read from the gateway's
"listening on" line).  `ipp()` is a small IPP client on http.client and
`printnet.ipp.codec`, for the requests ipptool cannot make (malformed,
oversize, slow).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from helpers_e2e import (
    PYTHON,
    PrinterSpec,
    ServerProcess,
    make_etc,
    server_env,
    start_server,
    wait_for,
)

from printnet.ipp import codec
from printnet.ipp.codec import Attribute, Message
from printnet.ipp.enums import GroupTag, Tag
from printnet.spool.layout import Spool

CI = os.environ.get("CI") == "true"


def need(tool: str) -> str:
    """The path of a program (or file) the test needs; in CI its absence fails the test."""
    path = shutil.which(tool) or (tool if os.path.exists(tool) else None)
    if path is None:
        message = f"{tool} is not installed (scripts/test-packages)"
        if CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


@dataclass
class Gateway:
    proc: subprocess.Popen[bytes]
    log: Path
    port: int = 0

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                return self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)
                raise AssertionError(f"gateway did not stop:\n{self.log_text()}") from None
        return self.proc.wait()


@dataclass
class Rig:
    root: Path
    spool: Path
    etc: Path
    out: Path
    server: ServerProcess
    gateways: list[Gateway] = field(default_factory=list)

    @property
    def port(self) -> int:
        return self.gateways[0].port

    def uri(self, printer: str = "LOCAL", gateway: int = 0) -> str:
        return f"ipp://127.0.0.1:{self.gateways[gateway].port}/ipp/print/{printer}"

    def gateway(self, etc: Path | None = None, *, args: tuple[str, ...] = ()) -> Gateway:
        """Start one more gateway on this spool (with its own etc/ if given)."""
        etc = etc or self.etc
        log = self.root / f"gateway.{len(self.gateways) + 1}.log"
        with open(log, "ab") as fh:  # the child keeps its own descriptor
            proc = subprocess.Popen(
                [PYTHON, "-m", "printnet", "--spool", str(self.spool), "--etc", str(etc),
                 "gateway", "--ipp", "127.0.0.1:0", *args],
                stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT, cwd=self.root,
                env=server_env(self.root / "run"))
        gw = Gateway(proc, log)
        self.gateways.append(gw)

        def bound() -> int:
            if proc.poll() is not None:
                raise AssertionError(f"gateway exited {proc.returncode}:\n{gw.log_text()}")
            m = re.search(r"listening on 127\.0\.0\.1:(\d+)", gw.log_text())
            return int(m[1]) if m else 0

        gw.port = wait_for(bound, 60, "the gateway to listen", on_timeout=gw.log_text)
        return gw

    def stop(self) -> None:
        for gw in self.gateways:
            with contextlib.suppress(AssertionError):
                gw.stop()
        self.server.stop()

    def accounting(self) -> list[dict[str, Any]]:
        try:
            text = (self.spool / "log" / "accounting.jsonl").read_text()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def requests_published(self) -> int:
        """Print requests that ever reached the spool (new/, received/, rejected/, done/)."""
        s = Spool(self.spool)
        names = set()
        # A request being claimed has an intermediate name in received/ for an
        # instant (`.<ID>.req.<unique>`, spool/intake.py): count it by its id too, or a
        # listing in that instant misses the job.
        for folder in (s.new, s.received, s.rejected):
            names |= {n.lstrip(".").split(".req", 1)[0] + ".req" for n in os.listdir(folder)
                      if ".req" in n and not n.endswith(".reason")}
        names |= {n[:-5] + ".req" for n in os.listdir(s.done) if n.endswith(".json")
                  and '"job"' in (s.done / n).read_text()}
        return len(names)


def make_rig(tmp: Path, *, printer_extra: str = "", server_extra: str = "",
             gateway_cmd: str | None = None, baud: str = "inf") -> Rig:
    """A spool, an etc/ with printer LOCAL (sim://, the DEFAULT), a server and a gateway."""
    spool = tmp / "spool"
    Spool.init(spool)
    out = tmp / "p" / "out" / "LOCAL.prn"
    etc = make_etc(tmp / "p", "S1", [spool], [PrinterSpec("LOCAL", out, baud=baud)],
                   extra_server=server_extra)
    text = (etc / "printers.cmd").read_text()
    if printer_extra:
        text = text.replace(" HEADER=HLOCAL", f" HEADER=HLOCAL {printer_extra}")
    (etc / "printers.cmd").write_text(text + "DEFAULT LOCAL\n")
    if gateway_cmd is not None:
        (etc / "gateway.cmd").write_text(gateway_cmd)
    server = start_server(etc, "S1", env=server_env(tmp / "run"))
    rig = Rig(tmp, spool, etc, out, server)
    try:
        wait_for((spool / "servers" / "S1.json").exists, 60,
                 "the server to publish its status", on_timeout=server.log_text)
        rig.gateway()
    except BaseException:
        rig.stop()
        raise
    return rig


def ipp_message(op: int, uri: str, *, user: str | None = "alice", request_id: int = 1,
                operation: list[Attribute] | None = None, job: list[Attribute] | None = None,
                data: bytes = b"") -> Message:
    msg = Message((2, 0), op, request_id)
    attrs = [Attribute.of("attributes-charset", Tag.CHARSET, "utf-8"),
             Attribute.of("attributes-natural-language", Tag.NATURAL_LANGUAGE, "en"),
             Attribute.of("printer-uri", Tag.URI, uri)]
    if user is not None:
        attrs.append(Attribute.of("requesting-user-name", Tag.NAME, user))
    msg.add_group(GroupTag.OPERATION, attrs + (operation or []))
    if job:
        msg.add_group(GroupTag.JOB, job)
    msg.data = data
    return msg


def post(port: int, body: bytes, *, path: str = "/ipp/print/LOCAL",
         headers: dict[str, str] | None = None, timeout: float = 60.0
         ) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", path, body, {"Content-Type": "application/ipp", **(headers or {})})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def ipp(port: int, msg: Message, *, path: str = "/ipp/print/LOCAL",
        headers: dict[str, str] | None = None) -> Message:
    status, _, body = post(port, codec.encode(msg), path=path, headers=headers)
    assert status == 200, f"HTTP {status}: {body[:200]!r}"
    return codec.decode(body)


def attr(msg: Message, name: str, group: int = GroupTag.JOB) -> Any:
    g = msg.group(group)
    a = g.get(name) if g is not None else None
    return None if a is None else (a.value if len(a.values) == 1 else a.plain())
