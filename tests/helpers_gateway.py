"""A `printnet gateway` subprocess for tests (the LPD and web tests share it)."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from helpers_e2e import wait_for

PYTHON = sys.executable


@dataclass
class Gateway:
    proc: subprocess.Popen[bytes]
    log: Path
    fh: IO[bytes]
    ipp: int = 0
    lpd: int = 0

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)
        self.fh.close()


def start_gateway(spool: Path, etc: Path, log: Path, env: dict[str, str]) -> Gateway:
    fh = open(log, "ab")  # noqa: SIM115 - closed by stop()
    proc = subprocess.Popen(
        [PYTHON, "-m", "printnet", "--spool", str(spool), "--etc", str(etc), "gateway",
         "--ipp", "127.0.0.1:0", "--lpd", "127.0.0.1:0"],
        stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT, env=env)
    gw = Gateway(proc, log, fh)

    def ready() -> re.Match[str] | None:
        if proc.poll() is not None:
            raise AssertionError(f"gateway exited {proc.returncode}:\n{gw.text()}")
        return re.search(r"listening on 127\.0\.0\.1:(\d+), lpd 127\.0\.0\.1:(\d+)", gw.text())

    try:
        m = wait_for(ready, 60, "the gateway to listen", on_timeout=gw.text)
    except BaseException:
        gw.stop()
        raise
    assert m is not None
    gw.ipp, gw.lpd = int(m.group(1)), int(m.group(2))
    return gw


def init_spool(root: Path, env: dict[str, str]) -> Path:
    spool = root / "spool"
    subprocess.run([PYTHON, "-m", "printnet", "--spool", str(spool), "--etc",
                    str(root / "init-etc"), "init"], check=True, capture_output=True,
                   cwd=root, env=env)
    return spool
