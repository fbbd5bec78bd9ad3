"""End-to-end: text from any system prints right (issue 15, item 5).

Real `printnet request` runs submit files with CR LF, CR-only and LF line ends in
UTF-8, latin-1 and cp1252; a real `printnet server --drain` prints them to a
file:// printer whose setup says ENCODING=cp437.  The oracle is the printer's
output file: every line ends in CR LF, accented letters are cp437's bytes, and
what cp437 lacks is its documented look-alike.  The recorded source encoding is
read back from the request files the server took in (never from what the server
says about itself).
"""

from __future__ import annotations

import json
from pathlib import Path

from helpers_e2e import printnet, server_env, start_server

from printnet.spool.layout import Spool

LINES = ["caf\u00e9 na\u00efve \u00c9t\u00e9", "\u201cquoted\u201d \u2014 \u20ac5", "plain"]
# cp437: e-acute 0x82, i-diaeresis 0x8B, E-acute 0x90; curly quotes, dash, euro substituted.
EXPECTED = [b"caf\x82 na\x8bve \x90t\x82", b'"quoted" -- EUR5', b"plain"]
EXPECTED_LATIN1 = [EXPECTED[0], b"plain"]  # latin-1 has no curly quotes or euro sign


def _etc(project: Path, spool: Path, out: Path) -> Path:
    etc = project / "etc"
    etc.mkdir(parents=True)
    (etc / "server.cmd").write_text(f'SERVER NAME=S1\nSPOOL "{spool}"\nSCAN 0.2\nLEASE 2\n')
    (etc / "printers.cmd").write_text(
        f"PRINTER DOS PORT=file://{out} SETUP=DOS HEADER=NONE\n"
        "SETUP STANDARD FORM=PLAIN LENGTH=66 WIDTH=80\n"
        "SETUP DOS FORM=PLAIN LENGTH=20 WIDTH=40 ENCODING=cp437\n"
        "DEFAULT DOS\n")
    return etc


def test_line_ends_and_encodings_print_in_cp437(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    Spool.init(spool)
    out = tmp_path / "out" / "DOS.prn"
    out.parent.mkdir()
    etc = _etc(tmp_path, spool, out)
    env = server_env(tmp_path / "run")
    src = tmp_path / "src"
    src.mkdir()
    utf8 = "\n".join(LINES) + "\n"
    latin = "\n".join([LINES[0], LINES[2]]) + "\n"
    cases: list[tuple[str, bytes, list[str], list[bytes], str]] = [
        # name, bytes, extra request options, expected body lines, recorded encoding
        ("lf-utf8", utf8.encode(), [], EXPECTED, "utf-8"),
        ("crlf-utf8", utf8.replace("\n", "\r\n").encode(), [], EXPECTED, "utf-8"),
        ("cr-utf8", utf8.replace("\n", "\r").encode(), [], EXPECTED, "utf-8"),
        ("crlf-latin1", latin.replace("\n", "\r\n").encode("latin-1"), [], EXPECTED_LATIN1,
         "cp1252"),
        ("cr-latin1-declared", latin.replace("\n", "\r").encode("latin-1"),
         ["--encoding", "latin-1"], EXPECTED_LATIN1, "iso8859-1"),
        ("crlf-cp1252", utf8.replace("\n", "\r\n").encode("cp1252"), [], EXPECTED, "cp1252"),
        ("cp437-declared", utf8.encode("cp437", "replace"), ["--encoding", "cp437"],
         [EXPECTED[0], b'?quoted? ? ?5', b"plain"], "cp437"),
    ]
    ids = []
    for name, data, options, _, _ in cases:
        path = src / name
        path.write_bytes(data)
        proc = printnet("--spool", str(spool), "--etc", str(etc), "request", *options,
                        str(path), env=env)
        ids.append(proc.stdout.strip())

    server = start_server(etc, "S1", env=env, drain=True)
    assert server.wait(60) == 0, server.log_text()

    pages = out.read_bytes().split(b"\f")
    assert pages[-1] == b""
    pages = pages[:-1]
    assert len(pages) == len(cases), out.read_bytes()
    for (name, _, _, expected, encoding), job_id, page in zip(cases, ids, pages, strict=True):
        assert b"\r" not in page.replace(b"\r\n", b""), f"{name}: a lone CR"
        assert b"\n" not in page.replace(b"\r\n", b""), f"{name}: a lone LF"
        lines = page.split(b"\r\n")
        assert lines[1] == b"", name  # the heading, then a blank line
        assert lines[2:-1] == expected, f"{name}: {lines}"
        request = json.loads((spool / "received" / f"{job_id}.req").read_bytes()
                             if (spool / "received" / f"{job_id}.req").exists()
                             else _finished_request(spool, job_id))
        assert request["encoding"] == encoding, name


def _finished_request(spool: Path, job_id: str) -> bytes:
    """The request as the done record keeps it (the request file left received/)."""
    record = json.loads((spool / "done" / f"{job_id}.json").read_bytes())
    return json.dumps(record["request"]).encode()


def test_bad_encoding_options_write_nothing(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    Spool.init(spool)
    out = tmp_path / "out" / "DOS.prn"
    etc = _etc(tmp_path, spool, out)
    env = server_env(tmp_path / "run")
    path = tmp_path / "f.txt"
    path.write_text("x\n")
    for options, message in ((["--encoding", "rot13"], "unknown encoding"),
                             (["--encoding", "latin-1", "--raw"], "text jobs")):
        proc = printnet("--spool", str(spool), "--etc", str(etc), "request", *options,
                        str(path), env=env, check=False)
        assert proc.returncode == 2, proc.stderr
        assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert list((spool / "new").iterdir()) == []
    (etc / "printers.cmd").write_text(
        f"PRINTER DOS PORT=file://{out} SETUP=DOS\nSETUP DOS ENCODING=utf-16\n")
    proc = printnet("--etc", str(etc), "server", "--name", "S1", env=env, check=False)
    assert proc.returncode == 2
    assert "printers.cmd:2:" in proc.stderr and "ENCODING" in proc.stderr, proc.stderr
