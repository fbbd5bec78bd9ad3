"""Sealed documents (SEAL=ON) end to end: real `printnet` processes, real keys.

One server process serves a spool with a sealed printer (`SEAL=ON`), a plain
one, and a sealed one with MAXPAGES; its private keys are in a local folder
outside the spool (KEYS in server.cmd), created with `printnet keys create`.
Stations are `printnet request` processes.  The tests judge from the bytes on
the spool, the printers' output, done/ records and log/accounting.jsonl: a
sealed document never appears in plaintext on the spool; tampered sealed data
(a changed, reordered or cut-off chunk, another job's document) aborts the job
with its reason and prints nothing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from helpers_e2e import (
    PrinterSpec,
    ServerProcess,
    accounting,
    done_records,
    make_etc,
    master_jobs,
    printnet,
    published,
    server_env,
    start_server,
    wait_for,
)

from printnet import seal
from printnet.model import Format, PrintRequest, decode_request
from printnet.spool.layout import Spool

CHUNK = seal.CHUNK
STEP = CHUNK + seal.TAG  # one sealed chunk on the spool
WAIT = 60.0


@dataclass
class Site:
    root: Path  # the spool
    etc: Path
    keys: Path
    out: Path
    env: dict[str, str]
    server: ServerProcess
    n: int = 0

    def cli(self, *args: str, check: bool = True) -> tuple[int, str, str]:
        proc = printnet("--spool", str(self.root), "--etc", str(self.etc), *args,
                        env=self.env, check=check)
        return proc.returncode, proc.stdout, proc.stderr

    def source(self, body: bytes) -> Path:
        self.n += 1
        path = self.root.parent / "src" / f"doc{self.n}.txt"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(body)
        return path

    def request(self, printer: str, body: bytes, *args: str) -> str:
        _, out, _ = self.cli("request", "-P", printer, "--no-header", *args,
                             str(self.source(body)))
        return out.strip()

    def request_file(self, job_id: str) -> PrintRequest:
        path = self.root / "received" / f"{job_id}.req"
        wait_for(path.exists, WAIT, f"{job_id} taken in")
        req = decode_request(path.read_bytes())
        assert isinstance(req, PrintRequest)
        return req

    def queued(self, job_id: str) -> None:
        wait_for(lambda: job_id in master_jobs(self.root), WAIT, f"{job_id} queued")

    def done(self, job_id: str) -> dict[str, object]:
        record: dict[str, object] = wait_for(lambda: done_records(self.root).get(job_id),
                                             WAIT, f"{job_id} finished")
        return record

    def spool_bytes(self) -> bytes:
        """Every byte of every file under the spool (as root: all of them)."""
        out = []
        for dirpath, _, names in os.walk(self.root):
            for name in names:
                path = Path(dirpath) / name
                if not path.is_symlink():
                    out.append(path.read_bytes())
        return b"\n".join(out)

    def printed(self, printer: str) -> bytes:
        path = self.out / f"{printer}.prn"
        return path.read_bytes() if path.exists() else b""


def rejection(site: Site, job: str) -> str:
    path = site.root / "rejected" / f"{job}.req.reason"
    text = wait_for(lambda: path.read_text() if path.exists() else None, WAIT,
                    f"{job} rejected")
    return text


def body(marker: str, size: int) -> bytes:
    """A text document of about `size` bytes whose every line carries `marker`."""
    line = f"{marker} sealed line of a private document\n".encode()
    return (line * (size // len(line) + 1))[:size]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    base = tmp_path_factory.mktemp("seal")
    root = base / "spool"
    Spool.init(root)
    keys = base / "local-keys"  # the server's local disk, not the spool
    out = base / "site" / "out"
    printers = [PrinterSpec("SEALED", out / "SEALED.prn", header=False),
                PrinterSpec("PLAIN", out / "PLAIN.prn", header=False),
                PrinterSpec("SMALL", out / "SMALL.prn", header=False)]
    etc = make_etc(base / "site", "S1", [root], printers, extra_server=f'KEYS "{keys}"\n')
    text = (etc / "printers.cmd").read_text()
    text = text.replace("PRINTER SEALED PORT", "PRINTER SEALED SEAL=ON PORT")
    text = text.replace("PRINTER SMALL PORT", "PRINTER SMALL SEAL=ON MAXPAGES=2 PORT")
    (etc / "printers.cmd").write_text(text)
    env = server_env(base / "run")
    created = printnet("--spool", str(root), "--etc", str(etc), "keys", "create", env=env)
    assert "created" in created.stdout
    server = start_server(etc, "S1", env=env)
    s = Site(root, etc, keys, out, env, server)
    try:
        wait_for(lambda: published(root, "S1"), WAIT, "S1 publishes its status")
        yield s
    finally:
        server.stop()


def test_keys_stay_local_and_public_halves_are_published(site: Site) -> None:
    [kfile] = list(site.keys.glob("*.key"))
    assert os.stat(site.keys).st_mode & 0o777 == 0o700
    assert os.stat(kfile).st_mode & 0o777 == 0o600
    kid = kfile.stem
    assert (site.root / "servers" / f"{kid}.pub").exists()
    private = json.loads(kfile.read_text())["private"].encode()
    assert private not in site.spool_bytes()
    _, out, _ = site.cli("keys", "list", "--json")
    listed = json.loads(out)
    assert [k["kid"] for k in listed["local"]] == [kid]
    assert [k["kid"] for k in listed["published"]] == [kid]
    _, exported, _ = site.cli("keys", "export")
    assert json.loads(exported)["kid"] == kid and "private" not in exported
    # A keys folder inside the spool is refused.
    code, _, err = site.cli("keys", "create", "--keys", str(site.root / "k"), check=False)
    assert code != 0 and "inside the spool" in err


def test_sealed_job_prints_and_the_spool_never_holds_its_plaintext(site: Site) -> None:
    marker = "PLAINTEXT-MARKER-7f3a"
    doc = body(marker, 3 * CHUNK + 1234)
    job = site.request("SEALED", doc, "--hold")
    req = site.request_file(job)
    site.queued(job)
    assert req.seal is not None and len(req.seal.keys) == 1
    [f] = req.files
    assert f.size == seal.sealed_size(len(doc))  # size and sha256 of the sealed bytes
    data = (site.root / "data" / job / "0").read_bytes()
    assert len(data) == f.size
    spooled = site.spool_bytes()
    assert marker.encode() not in spooled and doc[:64] not in spooled
    # The same document for a plain printer is on the spool as it is (the oracle).
    plain = site.request("PLAIN", body("PLAIN-MARKER", 100), "--hold")
    site.queued(plain)
    assert b"PLAIN-MARKER" in site.spool_bytes()
    site.cli("release", job)
    record = site.done(job)
    assert record["outcome"] == "completed", record
    assert site.printed("SEALED").count(marker.encode()) == doc.count(marker.encode())
    assert marker.encode() not in site.spool_bytes()
    site.cli("cancel", plain)


def _tamper(site: Site, job: str, change: bytes) -> None:
    """Rewrite a job's sealed data in place (as root: owner and inode unchanged)."""
    path = site.root / "data" / job / "0"
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    try:
        os.write(fd, change)
    finally:
        os.close(fd)


@pytest.mark.parametrize(("how", "reason"), [
    ("changed", "chunk 1 fails authentication (changed)"),
    ("reordered", "chunk 0 is chunk 1 of the document (reordered)"),
    ("truncated", "ends after chunk 1, which is not the last (truncated)"),
    ("swapped", "another job's document"),
])
def test_tampered_sealed_data_aborts_with_its_reason(site: Site, how: str, reason: str) -> None:
    marker = f"TAMPER-{how}-MARKER"
    doc = body(marker, 3 * CHUNK + 99)
    job = site.request("SEALED", doc, "--hold")
    other = site.request("SEALED", body("OTHER-JOB", len(doc)), "--hold")
    site.queued(job)
    site.queued(other)
    data = (site.root / "data" / job / "0").read_bytes()
    if how == "changed":
        i = STEP + 500
        bad = data[:i] + bytes([data[i] ^ 0x20]) + data[i + 1:]
    elif how == "reordered":
        bad = data[STEP:2 * STEP] + data[:STEP] + data[2 * STEP:]
    elif how == "truncated":
        bad = data[:2 * STEP]
    else:
        bad = (site.root / "data" / other / "0").read_bytes()
    _tamper(site, job, bad)
    site.cli("release", job)
    record = site.done(job)
    assert record["outcome"] == "aborted", record
    assert reason in str(record["reason"]), record
    assert str(record["reason"]).startswith("sealed: data file 0: "), record
    [line] = [a for a in accounting(site.root) if a["job"] == job]
    assert line["outcome"] == "aborted" and line["pages"] == 0, line
    assert marker.encode() not in site.printed("SEALED")
    assert b"OTHER-JOB" not in site.printed("SEALED")
    site.cli("cancel", other)


def test_pages_of_a_sealed_job_are_counted_at_intake(site: Site) -> None:
    """MAXPAGES: the server opens the sealed job in memory to count its pages."""
    from printnet.printers.render import RenderJob, count_pages
    from printnet.settings import SetupConfig

    doc = b"line\n" * 66 * 3
    expected = count_pages(RenderJob("", "", "", "", "", 1, False, Format.TEXT, "SMALL",
                                     "STANDARD"), [doc], setup=SetupConfig("STANDARD"))
    assert expected > 2
    job = site.request("SMALL", doc)
    reason = rejection(site, job)
    assert f"{expected} pages is over SMALL's limit of 2" in reason
    ok = site.request("SMALL", b"line\n" * 10)
    assert site.done(ok)["outcome"] == "completed"
    assert site.printed("SMALL").count(b"line\r\n") == 10


def test_unsealed_request_for_a_sealed_printer_is_rejected(site: Site) -> None:
    from printnet.spool.submit import Source, Submitter

    src = site.source(b"not sealed\n")
    template = PrintRequest(id="0" * 18, user="root", station="t",
                            submitted=decode_time(), printer="SEALED", header=False)
    [req] = Submitter(Spool(site.root), user=_me(), station="evil").submit_many(
        [(template, [Source("x", path=src)])])
    reason = rejection(site, req.id)
    assert "seal: SEALED takes only sealed documents (SEAL=ON)" in reason


def test_rotation_keeps_queued_jobs_printable(site: Site) -> None:
    before = site.request("SEALED", body("BEFORE-ROTATION", 5000), "--hold")
    old = {kid for kid, _ in site.request_file(before).seal.keys}  # type: ignore[union-attr]
    site.queued(before)
    _, out, _ = site.cli("keys", "rotate")
    assert "retired" in out
    pubs = {p.stem for p in (site.root / "servers").glob("*.pub")}
    assert pubs and not pubs & old
    after = site.request("SEALED", body("AFTER-ROTATION", 5000), "--hold")  # held: its
    new = {kid for kid, _ in site.request_file(after).seal.keys}  # type: ignore[union-attr]
    assert new == pubs  # request stays in received/ until we have looked at it
    site.queued(after)
    site.cli("release", after)
    assert site.done(after)["outcome"] == "completed"
    site.cli("release", before)
    assert site.done(before)["outcome"] == "completed"
    assert b"BEFORE-ROTATION" in site.printed("SEALED")
    _, listed, _ = site.cli("keys", "list", "--json")
    states = {k["kid"]: k["retired"] for k in json.loads(listed)["local"]}
    assert all(states[k] for k in old) and not any(states[k] for k in new)


def test_no_published_key_is_a_clear_error(tmp_path: Path) -> None:
    """A station cannot seal for a SEAL=ON printer when no server published a key."""
    root = tmp_path / "spool"
    Spool.init(root)
    status = {"name": "S9", "lease": 30, "state": "running",
              "printers": [{"name": "SEALED", "seal": True, "classes": []}]}
    (root / "servers" / "S9.json").write_text(json.dumps(status))
    src = tmp_path / "doc.txt"
    src.write_text("secret\n")
    env = server_env(tmp_path / "run")
    proc = printnet("--spool", str(root), "--etc", str(tmp_path / "etc"), "request", "-P",
                    "SEALED", str(src), env=env, check=False)
    assert proc.returncode != 0
    assert "SEALED takes only sealed documents (SEAL=ON), but no print server has " \
           "published a key" in proc.stderr
    assert os.listdir(root / "new") == [] and os.listdir(root / "data") == []


def decode_time() -> datetime:
    return datetime.now(UTC)


def _me() -> str:
    import pwd

    return pwd.getpwuid(os.geteuid()).pw_name


def test_ref_is_refused_for_a_sealed_printer(site: Site) -> None:
    """--ref would leave the document unsealed: the station says so, writing nothing."""
    src = site.source(b"by reference\n")
    code, _, err = site.cli("request", "--ref", "-P", "SEALED", str(src), check=False)
    assert code == 2, err
    assert "SEALED takes only sealed documents (SEAL=ON): files cannot be named by " \
           "reference (--ref)" in err
    code, _, err = site.cli("request", "--ref", "-P", "PLAIN", "-", check=False)
    assert code == 2 and "standard input (-) cannot be referenced" in err


def test_a_server_with_sealed_printers_and_no_key_says_so(tmp_path: Path) -> None:
    root = tmp_path / "spool"
    Spool.init(root)
    keys_dir = tmp_path / "nokeys"
    etc = make_etc(tmp_path / "site", "S2", [root],
                   [PrinterSpec("SEALED", tmp_path / "site" / "out" / "S.prn", header=False)],
                   extra_server=f'SEAL ON\nKEYS "{keys_dir}"\n')
    server = start_server(etc, "S2", env=server_env(tmp_path / "run"))
    try:
        wait_for(lambda: "no keys folder" in server.log_text(), WAIT,
                 "the warning", on_timeout=server.log_text)
        info = wait_for(lambda: published(root, "S2"), WAIT, "S2 publishes its status")
        assert info
        status = json.loads((root / "servers" / "S2.json").read_text())
        assert [p["seal"] for p in status["printers"]] == [True]  # the site's SEAL ON
    finally:
        server.stop()
