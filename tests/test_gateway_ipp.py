"""The gateway's IPP door against real processes: CUPS' ipptool suites, job attributes,
bad input (nothing half-written), identity, limits, queue passwords.

Every test runs a real `printnet server` (sim:// printer LOCAL) and real
`printnet gateway` processes on ports they chose (helpers_gateway.Rig).
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers_e2e import wait_for
from helpers_ipp import Rig, attr, ipp, ipp_message, make_rig, need, post
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from printnet.errors import AuthRequired, ConfigError, Forbidden
from printnet.gateway import settings as settings_mod
from printnet.gateway.context import GatewayContext
from printnet.ipp import codec
from printnet.ipp.codec import Attribute
from printnet.ipp.enums import GroupTag, JobState, Operation, Status, Tag
from printnet.passwords import hash_password, hash_queue_password

SUITES = Path("/usr/share/cups/ipptool")
DOCUMENTS = ("color.jpg", "document-a4.pdf", "document-a4.ps", "document-letter.pdf",
             "document-letter.ps", "gray.jpg")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    r = make_rig(tmp_path_factory.mktemp("gw"))
    yield r
    r.stop()


def job_id_of(resp: codec.Message) -> int:
    assert resp.code == Status.SUCCESSFUL_OK, attr(resp, "status-message", GroupTag.OPERATION)
    n = attr(resp, "job-id")
    assert isinstance(n, int) and n > 0
    return n


def job_attrs(rig: Rig, n: int, user: str = "alice") -> codec.Message:
    return ipp(rig.port, ipp_message(Operation.GET_JOB_ATTRIBUTES, rig.uri(), user=user,
                                     operation=[Attribute.of("job-id", Tag.INTEGER, n)]))


def wait_state(rig: Rig, n: int, states: set[int], timeout: float = 60) -> codec.Message:
    def done() -> codec.Message | None:
        resp = job_attrs(rig, n)
        return resp if attr(resp, "job-state") in states else None

    got = wait_for(done, timeout, f"job {n} to reach {states}",
                   on_timeout=rig.server.log_text)
    assert got is not None
    return got


# ---------------------------------------------------------------------------
# CUPS' conformance suites


@pytest.mark.parametrize(("suite", "chunking"), [
    ("ipp-1.1", ""), ("ipp-1.1", "-L"), ("ipp-2.0", ""), ("ipp-2.0", "-L")])
def test_ipptool_suite_passes(rig: Rig, tmp_path: Path, suite: str, chunking: str) -> None:
    ipptool = need("ipptool")
    if not (SUITES / f"{suite}.test").exists():
        need(str(SUITES / f"{suite}.test"))
    # ipptool resolves every FILE of a suite when it reads it, also those of tests it
    # will skip (PDF, PostScript, JPEG: formats LOCAL does not take): give it the files.
    for name in ("ipp-1.1.test", "ipp-2.0.test"):
        shutil.copy(SUITES / name, tmp_path / name)
    for name in DOCUMENTS:
        (tmp_path / name).write_bytes(b"not used: this printer does not take the format\n")
    doc = tmp_path / "doc.txt"
    doc.write_text("printnet conformance page\n" * 5)
    cmd = [ipptool, "-V", "2.0", "-tI", *([chunking] if chunking else []), "-f", str(doc),
           rig.uri(), str(tmp_path / f"{suite}.test")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "[FAIL]" not in out
    assert out.count("[PASS]") >= (33 if suite == "ipp-2.0" else 32), out
    # the conformance jobs printed: the suite waited for one to complete
    assert any(line["outcome"] == "completed" and line["via"] == "ipp:trust"
               for line in rig.accounting())


# ---------------------------------------------------------------------------
# Job attributes onto the request; states and reasons back


def test_print_job_maps_attributes_and_needs_checks_is_a_reason(rig: Rig) -> None:
    resp = ipp(rig.port, ipp_message(
        Operation.PRINT_JOB, rig.uri(), user="carol",
        operation=[Attribute.of("job-name", Tag.NAME, "Payroll run"),
                   Attribute.of("document-format", Tag.MIME_MEDIA_TYPE, "text/plain")],
        job=[Attribute.of("copies", Tag.INTEGER, 3),
             Attribute.of("job-priority", Tag.INTEGER, 90),
             Attribute.of("printnet-setup", Tag.NAME, "checks")],
        data=b"cheque 1\n"))
    n = job_id_of(resp)
    pid = attr(resp, "printnet-id")
    # the request on the shared disk says what IPP asked for
    req = wait_for(lambda: _request(rig, pid), 30, "the request file")
    assert req is not None
    assert (req["user"], req["title"], req["copies"], req["priority"], req["setup"],
            req["format"], req["via"]) == ("carol", "Payroll run", 3, "high", "CHECKS",
                                           "text", "ipp:trust")
    # LOCAL has STANDARD mounted: the job waits with "Needs CHECKS", which IPP shows
    def needs() -> codec.Message | None:
        r = job_attrs(rig, n, "carol")
        return r if "resources-are-not-ready" in (attr(r, "job-state-reasons") or []) else None

    got = wait_for(needs, 60, "Needs CHECKS as a job-state-reason")
    assert got is not None
    assert attr(got, "job-state") == JobState.PENDING
    assert attr(got, "job-state-message") == "Needs CHECKS"
    assert (attr(got, "copies"), attr(got, "job-priority"), attr(got, "job-name"),
            attr(got, "job-originating-user-name")) == (3, 100, "Payroll run", "carol")
    printer = ipp(rig.port, ipp_message(Operation.GET_PRINTER_ATTRIBUTES, rig.uri()))
    assert "media-needed" in _list(attr(printer, "printer-state-reasons", GroupTag.PRINTER))
    assert attr(printer, "media-ready", GroupTag.PRINTER) == "custom_standard_8x11in"
    cancel = ipp(rig.port, ipp_message(Operation.CANCEL_JOB, rig.uri(), user="carol",
                                       operation=[Attribute.of("job-id", Tag.INTEGER, n)]))
    assert cancel.code == Status.SUCCESSFUL_OK
    done = wait_state(rig, n, {JobState.CANCELED})
    assert "job-canceled-by-user" in _list(attr(done, "job-state-reasons"))


def test_create_job_with_two_documents_prints_one_job(rig: Rig) -> None:
    resp = ipp(rig.port, ipp_message(Operation.CREATE_JOB, rig.uri(), user="dave",
                                     operation=[Attribute.of("job-name", Tag.NAME, "two")]))
    n = job_id_of(resp)
    assert "job-incoming" in _list(attr(resp, "job-state-reasons"))
    before = rig.requests_published()
    for i, last in ((1, False), (2, True)):
        sent = ipp(rig.port, ipp_message(
            Operation.SEND_DOCUMENT, rig.uri(), user="dave",
            operation=[Attribute.of("job-id", Tag.INTEGER, n),
                       Attribute.of("last-document", Tag.BOOLEAN, last),
                       Attribute.of("document-format", Tag.MIME_MEDIA_TYPE, "text/plain")],
            data=f"document {i}\n".encode()))
        assert sent.code == Status.SUCCESSFUL_OK
        if not last:  # nothing reaches the spool before the last document
            assert rig.requests_published() == before
    done = wait_state(rig, n, {JobState.COMPLETED})
    assert attr(done, "number-of-documents") == 2
    out = rig.out.read_bytes()
    assert b"document 1" in out and b"document 2" in out


def test_get_jobs_my_jobs_and_which_jobs(rig: Rig) -> None:
    n = job_id_of(ipp(rig.port, ipp_message(
        Operation.PRINT_JOB, rig.uri(), user="erin", data=b"erin's page\n",
        job=[Attribute.of("job-hold-until", Tag.KEYWORD, "indefinite")])))
    mine = ipp(rig.port, ipp_message(Operation.GET_JOBS, rig.uri(), user="erin",
                                     operation=[Attribute.of("my-jobs", Tag.BOOLEAN, True)]))
    ids = [g.get("job-id").value for g in mine.groups_of(GroupTag.JOB)]  # type: ignore[union-attr]
    assert n in ids
    others = ipp(rig.port, ipp_message(Operation.GET_JOBS, rig.uri(), user="frank",
                                       operation=[Attribute.of("my-jobs", Tag.BOOLEAN, True)]))
    assert n not in [g.get("job-id").value for g in others.groups_of(GroupTag.JOB)]  # type: ignore[union-attr]
    held = job_attrs(rig, n, "erin")
    assert attr(held, "job-state") == JobState.PENDING_HELD
    # frank may not release or cancel erin's job; erin may
    for op in (Operation.RELEASE_JOB, Operation.CANCEL_JOB):
        r = ipp(rig.port, ipp_message(op, rig.uri(), user="frank",
                                      operation=[Attribute.of("job-id", Tag.INTEGER, n)]))
        assert r.code == Status.CLIENT_ERROR_NOT_AUTHORIZED
    r = ipp(rig.port, ipp_message(Operation.RELEASE_JOB, rig.uri(), user="erin",
                                  operation=[Attribute.of("job-id", Tag.INTEGER, n)]))
    assert r.code == Status.SUCCESSFUL_OK
    wait_state(rig, n, {JobState.COMPLETED})
    completed = ipp(rig.port, ipp_message(
        Operation.GET_JOBS, rig.uri(), user="erin",
        operation=[Attribute.of("which-jobs", Tag.KEYWORD, "completed"),
                   Attribute.of("requested-attributes", Tag.KEYWORD, "all")]))
    rows = {g.get("job-id").value: g for g in completed.groups_of(GroupTag.JOB)}  # type: ignore[union-attr]
    assert n in rows
    assert rows[n].get("printnet-via").value == "ipp:trust"  # type: ignore[union-attr]
    line = next(x for x in rig.accounting() if x["user"] == "erin")
    assert (line["outcome"], line["via"]) == ("completed", "ipp:trust")


# ---------------------------------------------------------------------------
# Bad input: an IPP status, a log line, and nothing written


def test_bad_input_gets_a_status_and_writes_nothing(rig: Rig) -> None:
    before = rig.requests_published()
    data_before = set(os.listdir(rig.spool / "data"))
    good = ipp_message(Operation.PRINT_JOB, rig.uri(), data=b"x\n")
    raw = codec.encode(good)
    # malformed: cut inside the attributes
    status, _, body = post(rig.port, raw[:30])
    assert status == 200 and codec.decode(body).code == Status.CLIENT_ERROR_BAD_REQUEST
    # an unknown operation
    r = ipp(rig.port, ipp_message(0x4001, rig.uri()))
    assert r.code == Status.SERVER_ERROR_OPERATION_NOT_SUPPORTED
    # an oversize value (job-name over 255 bytes)
    r = ipp(rig.port, ipp_message(Operation.PRINT_JOB, rig.uri(), data=b"x\n", operation=[
        Attribute.of("job-name", Tag.NAME, "n" * 2000)]))
    assert r.code == Status.CLIENT_ERROR_REQUEST_VALUE_TOO_LONG
    assert r.group(GroupTag.UNSUPPORTED) is not None
    # attributes in the wrong order
    bad = ipp_message(Operation.PRINT_JOB, rig.uri(), data=b"x\n")
    bad.groups[0].attributes.reverse()
    assert ipp(rig.port, bad).code == Status.CLIENT_ERROR_BAD_REQUEST
    # a document format LOCAL's port cannot take
    r = ipp(rig.port, ipp_message(Operation.PRINT_JOB, rig.uri(), data=b"%PDF-1.4\n",
                                  operation=[Attribute.of("document-format",
                                                          Tag.MIME_MEDIA_TYPE,
                                                          "application/pdf")]))
    assert r.code == Status.CLIENT_ERROR_DOCUMENT_FORMAT_NOT_SUPPORTED
    # an unknown printer
    r = ipp(rig.port, ipp_message(Operation.PRINT_JOB, rig.uri("NOPE"), data=b"x\n"),
            path="/ipp/print/NOPE")
    assert r.code == Status.CLIENT_ERROR_NOT_FOUND
    # not IPP at all
    status, _, _ = post(rig.port, b"hello", headers={"Content-Type": "text/plain"})
    assert status == 400
    # every answer above came after any write it could have made: nothing to wait for
    assert rig.requests_published() == before
    assert set(os.listdir(rig.spool / "data")) == data_before
    assert not [n for n in os.listdir(rig.spool / "tmp") if not n.startswith(".probe")]
    log = rig.gateways[0].log_text()
    for text in ("malformed IPP", "not supported", "request-value-too-long",
                 "document-format-not-supported", "not application/ipp"):
        assert text in log, text


@pytest.fixture(scope="module")
def tight(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    """LOCAL with MAXBYTES=4K MAXCOPIES=3 and a queue password; a gateway TIMEOUT of 1 s."""
    r = make_rig(tmp_path_factory.mktemp("tight"),
                 printer_extra=f"MAXBYTES=4K MAXCOPIES=3 PASSWORD={hash_queue_password('s3cret')}",
                 gateway_cmd="AUTH TRUST NETWORKS=127.0.0.0/8\nTIMEOUT 1\n")
    yield r
    r.stop()


def test_limits_and_a_slow_client(tight: Rig) -> None:
    before = tight.requests_published()
    big = ipp_message(Operation.PRINT_JOB, tight.uri(), data=b"y" * (2 << 20))
    _status, _headers, body = post(tight.port, codec.encode(big))
    assert codec.decode(body).code == Status.CLIENT_ERROR_REQUEST_ENTITY_TOO_LARGE
    over = ipp_message(Operation.PRINT_JOB, tight.uri(), data=b"y" * 5000,
                       operation=[Attribute.of("job-password", Tag.OCTET_STRING, b"s3cret")])
    assert ipp(tight.port, over).code == Status.CLIENT_ERROR_REQUEST_ENTITY_TOO_LARGE
    copies = ipp_message(Operation.PRINT_JOB, tight.uri(), data=b"y\n",
                         job=[Attribute.of("copies", Tag.INTEGER, 5)],
                         operation=[Attribute.of("job-password", Tag.OCTET_STRING, b"s3cret")])
    assert ipp(tight.port, copies).code == Status.CLIENT_ERROR_ATTRIBUTES_OR_VALUES_NOT_SUPPORTED
    nopw = ipp_message(Operation.PRINT_JOB, tight.uri(), data=b"y\n")
    assert ipp(tight.port, nopw).code == Status.CLIENT_ERROR_NOT_AUTHORIZED
    # a client that announces a body and stalls is cut off after TIMEOUT
    with socket.create_connection(("127.0.0.1", tight.port), timeout=30) as s:
        s.sendall(b"POST /ipp/print/LOCAL HTTP/1.1\r\nHost: x\r\nContent-Type: "
                  b"application/ipp\r\nContent-Length: 1000\r\n\r\n\x02\x00\x00\x02")
        start = time.monotonic()
        reply = s.recv(4096)
        while reply and b"\r\n\r\n" not in reply:
            reply += s.recv(4096)
        assert time.monotonic() - start < 25
        assert reply.startswith(b"HTTP/1.1 408")
    # ... and so is one that stalls inside its headers
    with socket.create_connection(("127.0.0.1", tight.port), timeout=30) as s:
        s.sendall(b"POST /ipp/print/LOCAL HTTP/1.1\r\nHost: x\r\n")
        start = time.monotonic()
        assert s.recv(4096) == b""  # closed, not answered
        assert time.monotonic() - start < 25
    assert tight.requests_published() == before
    assert "stalled" in tight.gateways[0].log_text()
    # the right password prints; a wrong one is refused by the server (aborted, reason)
    ok = job_id_of(ipp(tight.port, ipp_message(
        Operation.PRINT_JOB, tight.uri(), data=b"paid\n",
        operation=[Attribute.of("job-password", Tag.OCTET_STRING, b"s3cret")])))
    wrong = job_id_of(ipp(tight.port, ipp_message(
        Operation.PRINT_JOB, tight.uri(), data=b"unpaid\n",
        operation=[Attribute.of("job-password", Tag.OCTET_STRING, b"guess")])))
    wait_state(tight, ok, {JobState.COMPLETED})
    refused = wait_state(tight, wrong, {JobState.ABORTED})
    assert "wrong password" in attr(refused, "job-state-message")
    assert b"unpaid" not in tight.out.read_bytes()


# ---------------------------------------------------------------------------
# Identity


def test_basic_auth_gateway_submits_as_the_authenticated_user(rig: Rig) -> None:
    etc = rig.etc.parent / "etc-basic"  # in the same project folder (its file:// paths)
    shutil.copytree(rig.etc, etc)
    (etc / "gateway.cmd").write_text("AUTH BASIC\n")
    settings_mod.set_password(etc / "gateway.users", "alice", hash_password("wonderland"))
    gw = rig.gateway(etc)
    msg = codec.encode(ipp_message(Operation.PRINT_JOB, rig.uri(), user="mallory",
                                   data=b"who am I\n"))
    status, headers, _ = post(gw.port, msg)
    assert status == 401 and headers["WWW-Authenticate"].startswith("Basic")
    bad = "Basic " + base64.b64encode(b"alice:guess").decode()
    assert post(gw.port, msg, headers={"Authorization": bad})[0] == 401
    good = "Basic " + base64.b64encode(b"alice:wonderland").decode()
    status, _, body = post(gw.port, msg, headers={"Authorization": good})
    resp = codec.decode(body)
    n = job_id_of(resp)
    req = wait_for(lambda: _request(rig, attr(resp, "printnet-id")), 30, "the request")
    assert req is not None
    assert (req["user"], req["via"]) == ("alice", "ipp:basic")  # the claim was not believed
    # Get-Printer-Attributes needs no password
    assert ipp(gw.port, ipp_message(Operation.GET_PRINTER_ATTRIBUTES, rig.uri())).code == 0
    wait_state(rig, n, {JobState.COMPLETED})
    line = next(x for x in rig.accounting() if x["job"] == attr(resp, "printnet-id"))
    assert (line["user"], line["via"]) == ("alice", "ipp:basic")


def _ctx(tmp: Path, text: str) -> GatewayContext:
    from printnet.spool.layout import Spool

    Spool.init(tmp / "spool")
    etc = tmp / "etc"
    etc.mkdir(exist_ok=True)
    (etc / "gateway.cmd").write_text(text)
    settings_mod.set_password(etc / "gateway.users", "alice", hash_password("pw"))
    return GatewayContext(tmp / "spool", etc)


def test_identity_rules(tmp_path: Path) -> None:
    basic = "Basic " + base64.b64encode(b"alice:pw").decode()
    trust = _ctx(tmp_path / "t", "AUTH TRUST NETWORKS=10.0.0.0/8\n")
    got = trust.identify(None, "10.1.2.3", "bob")
    assert (got.user, got.how) == ("bob", "trust")
    with pytest.raises(Forbidden):
        trust.identify(None, "192.168.1.1", "bob")
    with pytest.raises(Forbidden):
        trust.identify(None, "10.1.2.3", "bob; rm -rf")
    assert trust.identify(basic, "192.168.1.1", "mallory").user == "alice"
    guest = _ctx(tmp_path / "g", "AUTH TRUST NETWORKS=10.0.0.0/8 USER=guest\n")
    assert guest.identify(None, "192.168.1.1", "bob").user == "guest"
    none = _ctx(tmp_path / "n", "AUTH NONE USER=anyone\n")
    assert none.identify(basic, "10.1.2.3", "bob").how == "guest"
    b = _ctx(tmp_path / "b", "AUTH BASIC NETWORKS=127.0.0.1\n")
    with pytest.raises(AuthRequired):
        b.identify(None, "10.9.9.9", "bob")
    with pytest.raises(AuthRequired):
        b.identify("Basic " + base64.b64encode(b"alice:no").decode(), "127.0.0.1", "bob")
    assert b.identify(None, "127.0.0.1", "bob").how == "trust"  # a listed network's claim
    assert b.identify(basic, "10.9.9.9", None).how == "basic"


@pytest.mark.parametrize(("text", "line", "message"), [
    ("AUTH MAYBE\n", 1, "must be one of BASIC TRUST NONE"),
    ("; ok\nAUTH NONE\n", 2, "needs USER="),
    ("AUTH TRUST\n", 1, "needs NETWORKS="),
    ("AUTH TRUST NETWORKS=10.0.0.0/33\n", 1, "not a network"),
    ("TIMEOUT 0\nAUTH BASIC\n", 1, "TIMEOUT"),
    ("AUTH BASIC\nAUTH BASIC\n", 2, "a second AUTH"),
    ("TLS KEY=x.key\n", 1, "missing required key CERT"),
])
def test_gateway_cmd_errors_name_file_and_line(tmp_path: Path, text: str, line: int,
                                              message: str) -> None:
    (tmp_path / "gateway.cmd").write_text(text)
    with pytest.raises(ConfigError) as info:
        settings_mod.load(tmp_path)
    assert info.value.file.endswith("gateway.cmd") and info.value.line == line
    assert message in str(info.value)


def test_users_file_errors_name_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "gateway.cmd").write_text("AUTH BASIC\n")
    (tmp_path / "gateway.users").write_text("USER alice PASSWORD=scrypt$1\n")
    with pytest.raises(ConfigError) as info:
        settings_mod.load(tmp_path)
    assert info.value.file.endswith("gateway.users") and info.value.line == 1


def _request(rig: Rig, job_id: str) -> dict[str, object] | None:
    for folder in ("new", "received"):
        path = rig.spool / folder / f"{job_id}.req"
        try:
            return json.loads(path.read_text())  # type: ignore[no-any-return]
        except (OSError, ValueError):
            continue
    path = rig.spool / "done" / f"{job_id}.json"
    try:
        return json.loads(path.read_text())["request"]  # type: ignore[no-any-return]
    except (OSError, ValueError, KeyError):
        return None


def _list(value: object) -> list[object]:
    return value if isinstance(value, list) else [value]


def test_tls_when_a_certificate_is_configured(rig: Rig) -> None:
    import ssl

    openssl = need("openssl")
    etc = rig.etc.parent / "etc-tls"
    shutil.copytree(rig.etc, etc)
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-keyout", str(etc / "gw.key"),
                    "-out", str(etc / "gw.pem")], check=True, capture_output=True, timeout=120)
    (etc / "gateway.cmd").write_text("AUTH TRUST NETWORKS=127.0.0.0/8\n"
                                     "TLS CERT=gw.pem KEY=gw.key\n")
    gw = rig.gateway(etc)
    context = ssl.create_default_context(cafile=str(etc / "gw.pem"))
    context.check_hostname = False
    conn = http.client.HTTPSConnection("127.0.0.1", gw.port, context=context, timeout=60)
    body = codec.encode(ipp_message(Operation.GET_PRINTER_ATTRIBUTES,
                                    f"ipps://127.0.0.1:{gw.port}/ipp/print/LOCAL"))
    conn.request("POST", "/ipp/print/LOCAL", body, {"Content-Type": "application/ipp"})
    resp = codec.decode(conn.getresponse().read())
    conn.close()
    assert resp.code == Status.SUCCESSFUL_OK
    assert str(attr(resp, "printer-uri-supported", GroupTag.PRINTER)).startswith("ipps://")
    assert attr(resp, "uri-security-supported", GroupTag.PRINTER) == "tls"
    # plain HTTP on the TLS port gets nothing useful
    with pytest.raises((http.client.HTTPException, OSError)):
        post(gw.port, body, timeout=10)


def test_chunked_body_and_expect_100_continue(rig: Rig) -> None:
    body = codec.encode(ipp_message(Operation.PRINT_JOB, rig.uri(), user="gina",
                                    data=b"chunked page\n" * 50))
    with socket.create_connection(("127.0.0.1", rig.port), timeout=60) as s:
        s.sendall(b"POST /ipp/print/LOCAL HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  b"Content-Type: application/ipp\r\nTransfer-Encoding: chunked\r\n"
                  b"Expect: 100-continue\r\n\r\n")
        interim = s.recv(4096)
        assert interim.startswith(b"HTTP/1.1 100 Continue"), interim
        for i in range(0, len(body), 97):  # odd-sized chunks cut across attributes
            piece = body[i:i + 97]
            s.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
        s.sendall(b"0\r\n\r\n")
        reply = b""
        while b"\r\n\r\n" not in reply:
            reply += s.recv(65536)
        head, _, rest = reply.partition(b"\r\n\r\n")
        length = int(re.search(rb"Content-Length: (\d+)", head)[1])  # type: ignore[index]
        while len(rest) < length:
            rest += s.recv(65536)
    resp = codec.decode(rest[:length])
    n = job_id_of(resp)
    done = wait_state(rig, n, {JobState.COMPLETED})
    assert attr(done, "job-originating-user-name") == "gina"
    assert rig.out.read_bytes().count(b"chunked page") >= 50


def test_minfree_refuses_before_writing(tmp_path: Path) -> None:
    r = make_rig(tmp_path, server_extra="MINFREE 1073741824\n")  # 1 PiB: never free
    try:
        before = r.requests_published()
        wait_for(lambda: json.loads((r.spool / "servers" / "S1.json").read_text())
                 .get("min_free"), 30, "the server to publish MINFREE")
        resp = ipp(r.port, ipp_message(Operation.PRINT_JOB, r.uri(), data=b"x\n"))
        assert resp.code == Status.SERVER_ERROR_NOT_ACCEPTING_JOBS
        assert "MiB free" in attr(resp, "status-message", GroupTag.OPERATION)
        assert r.requests_published() == before
    finally:
        r.stop()


def test_a_quota_hold_is_a_reason_a_client_can_show(tmp_path: Path) -> None:
    r = make_rig(tmp_path, server_extra="QUOTA * PAGES=1 PER=DAY\n")
    try:
        n = job_id_of(ipp(r.port, ipp_message(Operation.PRINT_JOB, r.uri(), user="hank",
                                              data=b"page\f" * 5)))

        def held() -> codec.Message | None:
            got = job_attrs(r, n, "hank")
            return got if attr(got, "job-state") == JobState.PENDING_HELD else None

        got = wait_for(held, 60, "the quota hold", on_timeout=r.server.log_text)
        assert got is not None
        assert "job-held-for-review" in _list(attr(got, "job-state-reasons"))
        assert str(attr(got, "job-state-message")).startswith("Quota exceeded")
    finally:
        r.stop()


@given(st.data())
@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_fuzzed_requests_get_an_answer_and_nothing_half_written(rig: Rig,
                                                               data: st.DataObject) -> None:
    """Mutated Print-Jobs and Get-Printer-Attributes against the live door: every one
    gets an IPP answer, the door stays up, and exactly the accepted jobs reach the spool."""
    op = data.draw(st.sampled_from([Operation.PRINT_JOB, Operation.GET_PRINTER_ATTRIBUTES,
                                    Operation.VALIDATE_JOB, Operation.GET_JOBS]))
    raw = bytearray(codec.encode(ipp_message(op, rig.uri(), user="fuzz", data=b"fuzz\n")))
    for _ in range(data.draw(st.integers(1, 3))):
        pos = data.draw(st.integers(0, len(raw) - 1))
        kind = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        if kind == "flip":
            raw[pos] = data.draw(st.integers(0, 255))
        elif kind == "cut":
            del raw[max(pos, 1):]
        else:
            raw[pos:pos] = data.draw(st.binary(min_size=1, max_size=6))
    before = rig.requests_published()
    status, _, body = post(rig.port, bytes(raw))
    assert status in (200, 400)
    accepted = 0
    if status == 200:
        resp = codec.decode(body)  # always a well-formed IPP response
        assert resp.group(GroupTag.OPERATION) is not None
        job = resp.group(GroupTag.JOB)
        if resp.code < 0x100 and job is not None and job.get("printnet-id") is not None:
            accepted = 1
    assert rig.requests_published() == before + accepted


def test_cli_set_password_and_a_basic_gateway_without_users(tmp_path: Path) -> None:
    from helpers_e2e import PYTHON, printnet

    base = ("--spool", str(tmp_path / "spool"), "--etc", str(tmp_path / "etc"))
    printnet(*base, "init")
    (tmp_path / "etc" / "gateway.cmd").write_text("AUTH BASIC\n")
    refused = printnet(*base, "gateway", "--ipp", "127.0.0.1:0", check=False)
    assert refused.returncode == 2
    assert "gateway.cmd: AUTH BASIC, but" in refused.stderr and "--set-password" in refused.stderr
    proc = subprocess.run([PYTHON, "-m", "printnet", *base, "gateway", "--set-password",
                           "alice"], input="s3cret\ns3cret\n", capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    users = tmp_path / "etc" / "gateway.users"
    assert users.stat().st_mode & 0o777 == 0o600
    assert "s3cret" not in users.read_text()
    stored = settings_mod.load(tmp_path / "etc").users["alice"]
    from printnet.passwords import verify_password

    assert verify_password("s3cret", stored)
