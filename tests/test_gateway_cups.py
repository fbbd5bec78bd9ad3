"""CUPS as a client of the gateway: a private cupsd whose queue's device is
ipp://127.0.0.1:PORT/ipp/print/LOCAL, and `lp` into it.

The cupsd is the test's own: its configuration, spool, logs and socket are
in the test's folder, it listens only on a Unix socket there, and the test
starts and stops it.  The job must print on the simulated printer with its
title, user and copies, and appear in accounting with how the gateway knew
the user.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers_e2e import wait_for
from helpers_ipp import Rig, make_rig, need

pytestmark = pytest.mark.slow

CUPSD_CONF = """Listen {sock}
LogLevel info
WebInterface No
Browsing No
DefaultAuthType None
<Location />
  Order allow,deny
  Allow all
</Location>
<Policy default>
  <Limit All>
    Order deny,allow
  </Limit>
</Policy>
"""

CUPS_FILES_CONF = """ServerRoot {root}
RequestRoot {root}/spool
TempDir {root}/tmp
CacheDir {root}/cache
StateDir {root}/state
AccessLog {root}/log/access_log
ErrorLog {root}/log/error_log
PageLog {root}/log/page_log
Printcap {root}/printcap
ServerBin /usr/lib/cups
DataDir /usr/share/cups
"""


class Cupsd:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.sock = root / "cups.sock"
        for name in ("spool", "tmp", "cache", "state", "log", "ppd"):
            (root / name).mkdir(parents=True, exist_ok=True)
        (root / "cupsd.conf").write_text(CUPSD_CONF.format(sock=self.sock))
        (root / "cups-files.conf").write_text(CUPS_FILES_CONF.format(root=root))
        self.out = open(root / "cupsd.out", "ab")  # noqa: SIM115 - closed by stop()
        self.proc = subprocess.Popen(
            [need("cupsd"), "-f", "-c", str(root / "cupsd.conf"), "-s",
             str(root / "cups-files.conf")],
            stdin=subprocess.DEVNULL, stdout=self.out, stderr=subprocess.STDOUT)
        wait_for(self.ready, 60, "the private cupsd to listen", on_timeout=self.log)

    def ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"cupsd exited {self.proc.returncode}:\n{self.log()}")
        return self.sock.exists() and subprocess.run(
            ["lpstat", "-h", str(self.sock), "-r"], capture_output=True, check=False,
            timeout=30).returncode == 0

    def log(self) -> str:
        texts = []
        for path in (self.root / "cupsd.out", self.root / "log" / "error_log"):
            try:
                texts.append(path.read_text(errors="replace")[-4000:])
            except OSError:
                pass
        return "\n".join(texts)

    def run(self, *args: str) -> str:
        proc = subprocess.run([args[0], "-h", str(self.sock), *args[1:]], capture_output=True,
                              text=True, timeout=60, check=False)
        assert proc.returncode == 0, f"{' '.join(args)}: {proc.stdout}{proc.stderr}\n{self.log()}"
        return proc.stdout + proc.stderr

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)
        self.out.close()


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = make_rig(tmp_path / "pn")
    yield r
    r.stop()


@pytest.fixture
def cupsd() -> Iterator[Cupsd]:
    need("lpadmin")
    need("lp")
    # Not under pytest's tmp folder: its parents are 0700, and cupsd's backends run as
    # the lp user, who must reach the spooled document.
    root = Path(tempfile.mkdtemp(prefix="printnet-cups-"))
    root.chmod(0o755)
    c = Cupsd(root)
    try:
        yield c
    finally:
        c.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_lp_through_a_private_cupsd_prints_with_title_user_and_copies(
        rig: Rig, cupsd: Cupsd, tmp_path: Path) -> None:
    cupsd.run("lpadmin", "-p", "PNQ", "-E", "-v", rig.uri(), "-m", "raw")
    doc = tmp_path / "report.txt"
    doc.write_text("quarterly figures: all up\n")
    out = cupsd.run("lp", "-d", "PNQ", "-t", "Quarterly report", "-n", "2", "-U", "alice",
                    str(doc))
    assert "request id is PNQ-" in out

    def accounted() -> dict[str, object] | None:
        return next((x for x in rig.accounting() if x["user"] == "alice"), None)

    line = wait_for(accounted, 120, "the job in accounting",
                    on_timeout=lambda: cupsd.log() + rig.gateways[0].log_text())
    assert line is not None
    assert (line["outcome"], line["copies"], line["via"], line["printer"]) == (
        "completed", 2, "ipp:trust", "LOCAL")
    record = json.loads((rig.spool / "done" / f"{line['job']}.json").read_text())
    assert record["job"]["title"] == "Quarterly report"
    printed = rig.out.read_text(errors="replace")
    assert "User:      alice" in printed
    assert "Title:     Quarterly report" in printed
    assert "Copies:    2" in printed
    assert printed.count("quarterly figures: all up") == 2  # two copies of the page
    # and CUPS saw its job through: completed on its side too
    wait_for(lambda: "PNQ-" in cupsd.run("lpstat", "-W", "completed", "-o"), 60,
             "CUPS to list the job as completed", on_timeout=cupsd.log)
