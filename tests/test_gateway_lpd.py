"""The LPD door: the pure protocol, then real clients against a real gateway.

Real clients: Debian's `rlpr` and CUPS' own lpd backend (run standalone, in
its standard, ``order=data,control`` and ``mode=stream`` modes) print through
`printnet gateway --lpd` into a real `printnet server` with a simulated
printer; each job's header page shows its title, user and copies, and the
accounting log has it.  rlpr always connects to the "printer" service's
port (515): it runs in its own mount namespace where /etc/services names the
gateway's port (`unshare -m` + a bind mount; nothing outside changes).

A gateway without a server (`lone`) shows what lands in new/: a request is
there when the final acknowledgement arrives, and bad input leaves nothing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from helpers_e2e import (
    PrinterSpec,
    ServerProcess,
    accounting,
    make_etc,
    master_jobs,
    printer_info,
    published,
    read_out,
    segments,
    server_env,
    start_server,
    wait_for,
)
from helpers_gateway import Gateway, init_spool, start_gateway
from hypothesis import given, settings
from hypothesis import strategies as st

from printnet.gateway.lpd_protocol import (
    RAW,
    STREAM_SIZE,
    TEXT,
    LpdError,
    Op,
    Sub,
    parse_command,
    parse_control_file,
    parse_subcommand,
    plan_job,
    render_queue,
    strip_stray_nuls,
)
from printnet.passwords import hash_queue_password

CI = os.environ.get("CI") == "true"
PYTHON = sys.executable
CUPS_LPD = next((p for p in ("/usr/lib/cups/backend/lpd", "/usr/lib/cups/backend-available/lpd")
                 if os.path.exists(p)), None)
DOC = b"hello from lpd\nsecond line\n"

# What the clients sent, captured on the wire here (docs: ../shared/FRONT-DOORS.md).
RLPR_CF = (b"Hvm\nProot\nTMy Title\nJjobname\nCA\nLroot\nfdfA305vm\nfdfA305vm\nfdfA305vm\n"
           b"UdfA305vm\nNdoc.txt\n")
CUPS_CF = b"Hvm\nPalice\nJCups Title\nldfA532vm\nUdfA532vm\nNCups Title\n"


def need(tool: str | None, what: str) -> str:
    if tool and (os.path.exists(tool) or shutil.which(tool)):
        return shutil.which(tool) or tool
    message = f"{what} is not installed (scripts/test-packages)"
    if CI:
        pytest.fail(message)
    pytest.skip(message)


# ---------------------------------------------------------------------------
# The pure protocol


def test_commands_parse() -> None:
    assert parse_command(b"\x02LOCAL\n") == parse_command(b"\x02LOCAL")
    cmd = parse_command(b"\x05LOCAL alice 01M8VK3N1PYGP3PJWY\tbob\n")
    assert (cmd.op, cmd.queue, cmd.operands) == (Op.REMOVE_JOBS, "LOCAL",
                                                 ("alice", "01M8VK3N1PYGP3PJWY", "bob"))
    assert parse_command(b"\x03lp\n").op is Op.SHORT_QUEUE
    for bad in (b"", b"\n", b"\x09LOCAL\n", b"\x02\n", b"\x05LOCAL\n", b"\x02" + b"A" * 2000):
        with pytest.raises(LpdError):
            parse_command(bad)


def test_subcommands_parse() -> None:
    sub = parse_subcommand(b"\x0287 cfA305vm\n")
    assert (sub.kind, sub.size, sub.name, sub.stream) == (Sub.CONTROL_FILE, 87, "cfA305vm",
                                                          False)
    stream = parse_subcommand(b"\x03999999999999 dfA409vm\n")
    assert stream.size == STREAM_SIZE and stream.stream
    assert parse_subcommand(b"\x01\n").kind is Sub.ABORT
    assert strip_stray_nuls(b"\0\0\x0319 dfA1\n") == b"\x0319 dfA1\n"
    for bad in (b"\x0219\n", b"\x02x cfA1\n", b"\x03-1 dfA1\n", b"\x0312 ../etc\n",
                b"\x031 a b\n", b"\x04 1 dfA\n", b"\x031234567890123456 dfA1\n"):
        with pytest.raises(LpdError):
            parse_subcommand(bad)


def test_rlpr_control_file_maps_to_title_user_copies_header() -> None:
    cf = parse_control_file(RLPR_CF)
    assert (cf.user, cf.job_name, cf.title, cf.source_name, cf.banner_user) == (
        "root", "jobname", "My Title", "doc.txt", "root")
    plan = plan_job(cf)
    # J wins over T; three f lines for one file = 3 copies; L asks for a header page.
    assert (plan.user, plan.title, plan.copies, plan.header) == ("root", "jobname", 3, True)
    assert plan.files == (("dfA305vm", TEXT),)


def test_cups_control_file_is_raw_without_banner() -> None:
    plan = plan_job(parse_control_file(CUPS_CF))
    assert (plan.user, plan.title, plan.copies, plan.header) == ("alice", "Cups Title", 1,
                                                                 False)
    assert plan.files == (("dfA532vm", RAW),)


def test_title_falls_back_to_t_then_n_and_copies_lines() -> None:
    assert plan_job(parse_control_file(b"Pa\nTt\nNn\nfdfA1\n")).title == "t"
    assert plan_job(parse_control_file(b"Pa\nNname.txt\nfdfA1\n")).title == "name.txt"
    # '#'/'K' (BSD/LPRng) wins over repeated lines; files are then printed once each.
    plan = plan_job(parse_control_file(b"Pa\n#4\nfdfA1\nfdfA1\nfdfA2\n"))
    assert (plan.copies, [n for n, _ in plan.files]) == (4, ["dfA1", "dfA2"])
    # Uneven repeats: the files in line order, one copy.
    plan = plan_job(parse_control_file(b"Pa\nfdfA1\nfdfA1\nfdfA2\n"))
    assert (plan.copies, [n for n, _ in plan.files]) == (1, ["dfA1", "dfA1", "dfA2"])
    # Control characters never reach a title.
    assert plan_job(parse_control_file(b"Pa\nJx\x1b[2Jy\nfdfA1\n")).title == "x[2Jy"


@pytest.mark.parametrize("cf", [
    b"Pa\ntdfA1\n",  # troff: no filter for it
    b"Pa\nNx\n",  # prints nothing
    b"Pa\nfdfA1\nldfA2\n",  # text and raw in one job
    b"Pa\nfdfA1\nldfA1\n",
    b"Pa\n#0\nfdfA1\n",
    b"Pa\n#1000\nfdfA1\n",
    b"Pa\nf../../x\n",
    b"Pa\nfdfA1\n" + b"J" + b"x" * 2000 + b"\n",
])
def test_bad_control_files_are_refused(cf: bytes) -> None:
    with pytest.raises(LpdError):
        plan_job(parse_control_file(cf))


def test_queue_state_text() -> None:
    printers = [{"name": "LOCAL", "state": "printing", "reasons": ["paper low"],
                 "setup": "STANDARD"}]
    jobs = [{"id": "01M8VK3N1PYGP3PJWY", "user": "alice", "state": "printing", "position": 1,
             "title": "report", "size": 120, "copies": 2, "priority": "standard", "note": ""},
            {"id": "01M8VK3N8X8A5PX5M5", "user": "bob", "state": "pending", "position": 2,
             "title": "", "size": 19, "copies": 1, "priority": "high",
             "note": "Needs CHECKS"}]
    short = render_queue("LOCAL", printers, jobs, long=False).decode()
    assert "LOCAL is printing (setup STANDARD): paper low" in short
    assert re.search(r"active +alice +01M8VK3N1PYGP3PJWY +report +120 bytes", short)
    assert re.search(r"2nd +bob +01M8VK3N8X8A5PX5M5 +\(untitled\)", short)
    long = render_queue("LOCAL", printers, jobs, long=True, wanted=["bob"]).decode()
    assert "alice" not in long and "Needs CHECKS" in long and "high" in long
    assert "no entries" in render_queue("LOCAL", printers, jobs, long=True,
                                        wanted=["carol"]).decode()


@settings(deadline=None)  # a loaded 2-core machine: no per-example time limit
@given(st.binary(max_size=300))
def test_any_bytes_parse_or_raise_lpd_error(data: bytes) -> None:
    for parse in (parse_command, parse_subcommand):
        try:
            parse(data)
        except LpdError:
            pass
    try:
        plan = plan_job(parse_control_file(data))
    except LpdError:
        return
    assert 1 <= plan.copies <= 999 and plan.files
    assert all(ch.isprintable() for ch in plan.title + plan.user)


NAMES = st.text(st.characters(min_codepoint=33, max_codepoint=126,
                              exclude_characters="/"), min_size=1, max_size=20)


@settings(deadline=None)
@given(user=st.from_regex(r"[a-z][a-z0-9]{0,15}", fullmatch=True),
       title=st.text(st.characters(categories=["L", "N", "P", "Zs"]), max_size=60),
       files=st.lists(NAMES, min_size=1, max_size=5, unique=True),
       copies=st.integers(1, 9), raw=st.booleans())
def test_control_files_map_to_the_job_they_describe(user: str, title: str, files: list[str],
                                                    copies: int, raw: bool) -> None:
    letter = "l" if raw else "f"
    lines = ["Hhost", f"P{user}", f"J{title}", f"L{user}"]
    lines += [f"{letter}{name}" for name in files for _ in range(copies)]
    plan = plan_job(parse_control_file(("\n".join(lines) + "\n").encode()))
    assert (plan.user, plan.copies, plan.header) == (user, copies, True)
    assert plan.title == title.strip()[:200].rstrip()
    assert plan.files == tuple((name, RAW if raw else TEXT) for name in files)


# ---------------------------------------------------------------------------
# Real processes


@dataclass
class Site:
    root: Path
    spool: Path
    etc: Path
    server: ServerProcess
    gateway: Gateway

    def out(self, printer: str) -> Path:
        return self.root / "s1" / "out" / f"{printer}.prn"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A server S1 (LOCAL prints, STOP is stopped) and a gateway with LPD, on one spool."""
    root = tmp_path_factory.mktemp("lpd")
    env = server_env(root / "run")
    spool = init_spool(root, env)
    etc = make_etc(root / "s1", "S1", [spool], [
        PrinterSpec("LOCAL", root / "s1/out/LOCAL.prn"),
        PrinterSpec("STOP", root / "s1/out/STOP.prn", stopped=True),
        PrinterSpec("SECRET", root / "s1/out/SECRET.prn"),
    ])
    printers = (etc / "printers.cmd").read_text().replace(
        "PRINTER SECRET ", f"PRINTER SECRET PASSWORD={hash_queue_password('sesame')} ", 1)
    (etc / "printers.cmd").write_text(printers)
    server = start_server(etc, "S1", env=env)
    try:
        wait_for(lambda: published(spool, "S1"), 60, "S1 publishes its status",
                 on_timeout=server.log_text)
        gateway = start_gateway(spool, etc, root / "gateway.log", env)
    except BaseException:
        server.stop()
        raise
    yield Site(root, spool, etc, server, gateway)
    gateway.stop()
    assert server.stop() == 0


def printed_job(site: Site, title: str, timeout: float = 60) -> tuple[str, bytes]:
    """(job id, printed bytes) of the job whose header page shows `title`."""
    def find() -> tuple[str, bytes] | None:
        for job_id, data in segments(read_out(site.out("LOCAL"))):
            if f"Title:     {title}\r\n".encode() in data:
                return job_id, data
        return None

    found = wait_for(find, timeout, f"a printed job titled {title!r}",
                     on_timeout=lambda: site.gateway.text()[-3000:]
                     + site.server.log_text()[-3000:])
    assert found is not None
    return found


def accounted(site: Site, job_id: str) -> dict[str, Any]:
    def line() -> dict[str, Any] | None:
        return next((a for a in accounting(site.spool) if a["job"] == job_id), None)

    found = wait_for(line, 60, f"job {job_id} in the accounting log")
    assert found is not None
    return found


def check_printed(site: Site, title: str, user: str, copies: int) -> dict[str, Any]:
    job_id, data = printed_job(site, title)
    assert f"User:      {user}   ".encode() in data
    assert f"Copies:    {copies}   ".encode() in data
    assert data.count(DOC.splitlines()[0]) == copies
    line = accounted(site, job_id)
    assert (line["user"], line["copies"], line["via"], line["outcome"]) == (
        user, copies, "lpd:trust", "completed")
    return line


def test_rlpr_prints_with_title_user_and_copies(site: Site) -> None:
    rlpr = need("rlpr", "rlpr")
    need("unshare", "unshare (util-linux)")
    services = site.root / "services"
    services.write_text(f"printer\t\t{site.gateway.lpd}/tcp\tspooler\n")
    doc = site.root / "rlpr.txt"
    doc.write_bytes(DOC)
    script = (f"mount --bind {services} /etc/services && exec {rlpr} -N -H 127.0.0.1 "
              f"-P LOCAL -# 3 -J 'rlpr job' -T 'pr title' -U alice {doc}")
    proc = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True,
                          text=True, timeout=60, check=False)
    if proc.returncode != 0 and "mount" in proc.stderr and not CI:
        pytest.skip(f"no private mount namespace here: {proc.stderr.strip()}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    check_printed(site, "rlpr job", "alice", 3)


@pytest.mark.parametrize("mode", ["standard", "order=data,control", "mode=stream"])
def test_cups_lpd_backend_prints(site: Site, mode: str) -> None:
    """CUPS's lpd backend in each of its ways of sending (title: the backend turns
    '=' and ',' into '_')."""
    backend = need(CUPS_LPD, "CUPS' lpd backend (cups-daemon)")
    query = "reserve=none&banner=on&manual_copies=no"
    if mode != "standard":
        query += "&" + mode
    title = "cups " + re.sub(r"\W", "_", mode)
    doc = site.root / f"cups-{mode}.txt"
    doc.write_bytes(DOC)
    env = dict(os.environ, DEVICE_URI=f"lpd://127.0.0.1:{site.gateway.lpd}/LOCAL?{query}")
    # mode=stream streams only from standard input (with a file it knows the size).
    # fds 3 and 4 stand in for cupsd's back and side channels.
    args = ["sh", "-c", 'exec "$0" "$@" 3</dev/null 4</dev/null', backend, "42", "bob", title,
            "2", ""]
    if mode != "mode=stream":
        args.append(str(doc))
    with open(doc, "rb") as stdin:
        proc = subprocess.run(args, stdin=stdin, capture_output=True, env=env, timeout=60,
                              check=False)
    log = proc.stderr.decode(errors="replace")
    assert proc.returncode == 0, log
    if mode == "mode=stream":
        assert "999999999999" in log  # it really streamed
    # Streaming from standard input, the backend asks for one copy whatever it was
    # given (in cupsd's pipeline the filters made the copies already).
    line = check_printed(site, title, "bob", 1 if mode == "mode=stream" else 2)
    assert line["bytes"] > 0


def lpd_client(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.settimeout(30)
    return sock


def send_job(port: int, control: bytes, data: bytes, *, queue: bytes = b"LOCAL",
             data_first: bool = False, stray_nul: bool = False) -> list[bytes]:
    """A job the RFC way; the reply byte of each step (an empty reply: closed)."""
    replies: list[bytes] = []
    with lpd_client(port) as sock:
        sock.sendall(b"\x02" + queue + b"\n")
        replies.append(sock.recv(1))
        files = [(b"\x02", control, b"cfA001host"), (b"\x03", data, b"dfA001host")]
        for code, body, name in reversed(files) if data_first else files:
            sock.sendall(code + str(len(body)).encode() + b" " + name + b"\n")
            replies.append(sock.recv(1))
            if replies[-1] != b"\0":
                return replies
            sock.sendall(body + b"\0" + (b"\0" if stray_nul else b""))
            replies.append(sock.recv(1))
            if replies[-1] != b"\0":
                return replies
    return replies


def query(port: int, line: bytes) -> str:
    with lpd_client(port) as sock:
        sock.sendall(line)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode()


def test_queue_state_and_remove_own_job_only(site: Site) -> None:
    cf = b"Hh\nPalice\nJalice waits\nfdfA001host\n"
    assert send_job(site.gateway.lpd, cf, DOC, queue=b"STOP") == [b"\0"] * 5
    assert send_job(site.gateway.lpd, cf.replace(b"alice", b"bob"), DOC,
                    queue=b"STOP") == [b"\0"] * 5

    def listed() -> list[tuple[str, str]] | None:
        text = query(site.gateway.lpd, b"\x03STOP\n")
        got = re.findall(r"(alice|bob) +([0-9A-Z]{18})", text)
        return got if len(got) == 2 else None

    found = wait_for(listed, 60, "both jobs listed by the short queue state")
    assert found is not None
    jobs = dict(found)
    long = query(site.gateway.lpd, b"\x04STOP bob\n")
    assert "bob waits" in long and "alice" not in long
    # alice may not remove bob's job: the server refuses it, the job stays.
    reply = query(site.gateway.lpd, f"\x05STOP alice {jobs['bob']}\n".encode())
    assert jobs["bob"] in reply and "dequeued" not in reply
    # her own job goes.
    reply = query(site.gateway.lpd, f"\x05STOP alice {jobs['alice'][-6:]}\n".encode())
    assert f"{jobs['alice']}: dequeued" in reply
    text = query(site.gateway.lpd, b"\x03STOP\n")
    assert jobs["bob"] in text and jobs["alice"] not in text
    done = json.loads((site.spool / "done" / f"{jobs['alice']}.json").read_text())
    assert done["job"]["state"] == "canceled"


def test_a_queue_password_printer_takes_no_lpd_jobs(site: Site) -> None:
    """LPD cannot carry a queue password: the job is refused, nothing is written."""
    wait_for(lambda: (printer_info(site.spool, "S1", "SECRET") or {}).get("password"), 60,
             "S1 publishes that SECRET has a password")
    before = len(site.gateway.text())
    replies = send_job(site.gateway.lpd, b"Pgina\nJsecret plans\nfdfA001host\n", DOC,
                       queue=b"SECRET")
    assert replies == [b"\0"] * 4 + [b"\1"]
    assert "needs a password" in site.gateway.text()[before:]
    assert not any(j.title == "secret plans" for j in master_jobs(site.spool).values())
    for folder in ("new", "received", "rejected", "done"):
        for path in (site.spool / folder).iterdir():
            if path.is_file():
                assert b"secret plans" not in path.read_bytes(), path


# ---------------------------------------------------------------------------
# A gateway alone: what reaches new/


@dataclass
class Lone:
    root: Path
    spool: Path
    gateway: Gateway

    def requests(self) -> list[dict[str, Any]]:
        return [json.loads(p.read_text()) for p in sorted((self.spool / "new").glob("*.req"))]

    def visible(self) -> list[str]:
        return sorted(f"{d}/{n}" for d in ("new", "data", "tmp")
                      for n in os.listdir(self.spool / d) if not n.startswith("."))


def lone_site(root: Path, gateway_cmd: str) -> Lone:
    env = server_env(root / "run")
    spool = init_spool(root, env)
    etc = make_etc(root / "p", "S1", [spool], [PrinterSpec("LOCAL", root / "p/out/LOCAL.prn")])
    printers = (etc / "printers.cmd").read_text().replace(
        "PRINTER LOCAL ", "PRINTER LOCAL MAXBYTES=4096 ", 1)
    (etc / "printers.cmd").write_text(printers)
    (etc / "gateway.cmd").write_text(gateway_cmd)
    return Lone(root, spool, start_gateway(spool, etc, root / "gateway.log", env))


@pytest.fixture(scope="module")
def lone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lone]:
    site = lone_site(tmp_path_factory.mktemp("lone"),
                     "AUTH TRUST NETWORKS=127.0.0.0/8\nTIMEOUT 1\n")
    yield site
    site.gateway.stop()


@pytest.fixture
def clean(lone: Lone) -> Iterator[Lone]:
    for d in ("new", "data"):
        for p in (lone.spool / d).iterdir():
            if p.is_dir():
                shutil.rmtree(p)
            else:
                p.unlink()
    yield lone


def test_final_ack_means_the_request_is_in_new(clean: Lone) -> None:
    cf = b"Hh\nPcarol\nJdurable\nLcarol\nfdfA001host\nfdfA001host\n"
    for data_first in (False, True):
        assert send_job(clean.gateway.lpd, cf, DOC, data_first=data_first) == [b"\0"] * 5
        # No wait: the acknowledgement itself says it is durable in new/.
        reqs = clean.requests()
        assert len(reqs) == 1, reqs
        req = reqs[0]
        assert (req["user"], req["title"], req["copies"], req["header"], req["format"],
                req["printer"], req["via"]) == ("carol", "durable", 2, True, "text", "LOCAL",
                                                "lpd:trust")
        data_dir = clean.spool / "data" / req["id"]
        assert [p.read_bytes() for p in sorted(data_dir.iterdir())] == [DOC]
        (clean.spool / "new" / f"{req['id']}.req").unlink()


def test_stray_trailing_nul_is_accepted(clean: Lone) -> None:
    cf = b"Hh\nPdave\nJplp\nldfA001host\n"
    assert send_job(clean.gateway.lpd, cf, DOC, stray_nul=True) == [b"\0"] * 5
    assert [(r["user"], r["format"]) for r in clean.requests()] == [("dave", "raw")]


def test_two_jobs_on_one_connection_and_the_default_queue(clean: Lone) -> None:
    """BSD lpr sends several jobs on one connection; `lp` names the default printer."""
    replies = []
    with lpd_client(clean.gateway.lpd) as sock:
        sock.sendall(b"\x02lp\n")
        replies.append(sock.recv(1))
        for n in (1, 2):
            cf = b"Pfrank\nJjob %d\nfdfA00%dhost\n" % (n, n)
            for line, body in ((b"\x02%d cfA00%dhost\n" % (len(cf), n), cf),
                               (b"\x03%d dfA00%dhost\n" % (len(DOC), n), DOC)):
                sock.sendall(line)
                replies.append(sock.recv(1))
                sock.sendall(body + b"\0")
                replies.append(sock.recv(1))
    assert replies == [b"\0"] * 9
    assert sorted((r["title"], r["printer"]) for r in clean.requests()) == [
        ("job 1", "LOCAL"), ("job 2", "LOCAL")]
    state = query(clean.gateway.lpd, b"\x04lp frank\n")
    assert "job 1" in state and "job 2" in state
    assert query(clean.gateway.lpd, b"\x01lp\n") == ""  # print waiting jobs: nothing to say


def raw_exchange(port: int, steps: Sequence[bytes]) -> bytes:
    """Send each step, collect whatever comes back until the gateway closes."""
    got = b""
    with lpd_client(port) as sock:
        for step in steps:
            try:
                sock.sendall(step)
            except OSError:
                break
            time.sleep(0)  # let the reply of this step arrive in order
        sock.shutdown(socket.SHUT_WR)
        try:
            while chunk := sock.recv(4096):
                got += chunk
        except OSError:
            pass
    return got


CF = b"Hh\nPeve\nJbad\nfdfA001host\n"
BAD_USER_CF = CF.replace(b"Peve", b"Pe ve/")
TROFF_CF = CF.replace(b"fdfA", b"tdfA")
BAD_INPUTS = {
    "garbage command": ([b"\x09hello\n"], "unknown command"),
    "unknown queue": ([b"\x02NOPE\n"], "unknown queue"),
    "troff": ([b"\x02LOCAL\n", b"\x02%d cfA001host\n" % len(TROFF_CF), TROFF_CF + b"\0"],
              "not supported"),
    "announced over MAXBYTES": ([b"\x02LOCAL\n", b"\x035000 dfA001host\n"], "over the limit"),
    "stream over MAXBYTES": ([b"\x02LOCAL\n", b"\x02%d cfA001host\n" % len(CF), CF + b"\0",
                              b"\x03999999999999 dfA001host\n", b"x" * 6000], "over the limit"),
    "no NUL after a file": ([b"\x02LOCAL\n", b"\x035 dfA001host\n", b"12345X"],
                            "not followed by NUL"),
    "control file only": ([b"\x02LOCAL\n", b"\x02%d cfA001host\n" % len(CF), CF + b"\0"],
                          "before its job was complete"),
    "bad user": ([b"\x02LOCAL\n", b"\x02%d cfA001host\n" % len(BAD_USER_CF),
                  BAD_USER_CF + b"\0", b"\x033 dfA001host\n", b"abc\0"],
                 "not a user name"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_refused_with_a_log_line_and_nothing_written(clean: Lone,
                                                                  case: str) -> None:
    steps, logged = BAD_INPUTS[case]
    before = len(clean.gateway.text())
    reply = raw_exchange(clean.gateway.lpd, steps)
    assert b"\1" in reply or case == "control file only", reply
    wait_for(lambda: logged in clean.gateway.text()[before:], 30, f"a log line {logged!r}",
             on_timeout=clean.gateway.text)
    assert clean.visible() == []


def test_a_stalled_client_is_cut_off(clean: Lone) -> None:
    before = len(clean.gateway.text())
    with lpd_client(clean.gateway.lpd) as sock:
        sock.sendall(b"\x02LOCAL\n\x0250 cfA001host\nHh\nP")  # then nothing (TIMEOUT 1)
        start = time.monotonic()
        assert sock.recv(1) == b"\0"  # the queue
        assert sock.recv(1) == b"\0"  # the control file's subcommand
        assert sock.recv(1) == b"\1"  # refused once it stalled
        assert sock.recv(1) == b""  # and closed
        assert time.monotonic() - start < 20
    assert "stalled" in clean.gateway.text()[before:]
    assert clean.visible() == []


def test_untrusted_network_gets_the_guest_and_cannot_remove(tmp_path: Path) -> None:
    site = lone_site(tmp_path, "AUTH TRUST NETWORKS=10.0.0.0/8 USER=guest\n")
    try:
        assert send_job(site.gateway.lpd, b"Pmallory\nJclaimed\nfdfA001host\n", DOC) == [
            b"\0"] * 5
        assert [(r["user"], r["via"]) for r in site.requests()] == [("guest", "lpd:guest")]
        reply = query(site.gateway.lpd, b"\x05LOCAL guest\n")
        assert "refused" in reply and "not trusted" in reply
        assert "remove refused" in site.gateway.text()
    finally:
        site.gateway.stop()
