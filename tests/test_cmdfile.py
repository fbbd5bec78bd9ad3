"""printnet.cmdfile: the syntax of the etc/ command files, their schemas and the editor."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from printnet import cmdfile
from printnet.cmdfile import (
    ANY_SCHEMA,
    PRINTERS_SCHEMA,
    SERVER_SCHEMA,
    Command,
    Keyword,
    Repeat,
    Schema,
    Text,
    add_line,
    decode_escapes,
    encode_escapes,
    parse,
    remove_command,
    remove_line,
    render_command,
    render_value,
    set_command,
    set_single,
    split_line,
    update_command,
)
from printnet.errors import ConfigError, NotFound

QHASH = "qscrypt$16384$8$1$" + "A" * 43
HASH = "scrypt$16384$8$1$" + "B" * 22 + "$" + "C" * 43


def one(text: str, filename: str = "printers.cmd") -> Command:
    commands = parse(text, filename)
    assert len(commands) == 1
    return commands[0]


# ---------------------------------------------------------------------------
# Syntax


def test_comments_blank_lines_and_line_numbers() -> None:
    text = "; heading\n\n   \t\nNIGHT 0,6 ; overnight\n;SCAN 3\nSCAN 2\n"
    cmds = parse(text, "etc/server.cmd")
    assert [(c.keyword, c.line) for c in cmds] == [("NIGHT", 4), ("SCAN", 6)]
    assert cmds[0].text == "NIGHT 0,6 ; overnight"
    assert cmds[0].filename == "etc/server.cmd"
    assert cmds[0].value == (0, 6)


def test_crlf_bom_and_no_final_newline() -> None:
    cmds = parse("\ufeffNIGHT 22,6\r\nSCAN 0.5", "server.cmd")
    assert [(c.keyword, c.value, c.line) for c in cmds] == [("NIGHT", (22, 6), 1), ("SCAN", 0.5, 2)]
    assert cmds[0].text == "NIGHT 22,6"


def test_keywords_keys_and_names_are_case_insensitive() -> None:
    cmd = one("printer r&d Port=loop:// flow=xonxoff driver=escp setup=checks class=lines,all")
    assert cmd.keyword == "PRINTER"
    assert cmd.name == "R&D"
    assert cmd.args["FLOW"] == "xonxoff"  # as written
    assert cmd.values["FLOW"] == "XONXOFF"  # canonical
    assert cmd.values["SETUP"] == "CHECKS"
    assert cmd.values["CLASS"] == ("LINES", "ALL")
    assert list(cmd.args) == ["PORT", "FLOW", "DRIVER", "SETUP", "CLASS"]


def test_quotes_semicolons_and_escapes() -> None:
    cmd = one(r'PRINTER X PORT=loop:// REASON="out of paper; back \"soon\" \\ ok" ; comment')
    assert cmd.args["REASON"] == r'out of paper; back "soon" \ ok'
    # Two layers: quotes turn \\\\ into \\, which INIT decodes to one backslash.
    cmd = one(r'SETUP CHECKS INIT="\x1b@ \e\\\\"')
    assert cmd.values["INIT"] == b"\x1b@ \x1b\\"
    cmd = one(r"SETUP CHECKS INIT=\x1b@")
    assert cmd.values["INIT"] == b"\x1b@"
    # Quoted and unquoted pieces join, as in a shell; '=' in a value is fine.
    cmd = one('PRINTER X PORT=loop:// REASON=a"b c"d=e')
    assert cmd.args["REASON"] == "ab cd=e"


def test_positional_with_equals_and_dollars() -> None:
    cmds = parse(f'SPOOL /mnt/a=b\nSPOOL "x=y"\nPASSWORD {HASH}\n', "server.cmd")
    assert [c.name for c in cmds] == ["/mnt/a=b", "x=y", HASH]


def test_split_line_columns() -> None:
    words, comment = split_line('  A  B=1 "c d" ; x')
    assert [(w.text, w.key, w.value, w.start, w.end) for w in words] == [
        ("A", None, "A", 2, 3), ("B=1", "B", "1", 5, 8), ('"c d"', None, "c d", 9, 14),
    ]
    assert comment == 15


# ---------------------------------------------------------------------------
# Every command and key


def test_every_server_command() -> None:
    text = (
        "SERVER NAME=floor2\n"
        "SPOOL /mnt/net1/printnet\n"
        "SPOOL ../net2\n"
        f"PASSWORD {HASH}\n"
        "NIGHT 22,6\n"
        "SCAN 0.25\n"
        "LEASE 45\n"
        "OPERATORS root,alice,bob.smith\n"
    )
    cmds = {(c.keyword, c.name): c for c in parse(text, "server.cmd")}
    assert cmds[("SERVER", None)].values == {"NAME": "FLOOR2"}
    assert ("SPOOL", "/mnt/net1/printnet") in cmds and ("SPOOL", "../net2") in cmds
    assert cmds[("PASSWORD", HASH)].value == HASH
    assert cmds[("NIGHT", "22,6")].value == (22, 6)
    assert cmds[("SCAN", "0.25")].value == 0.25
    assert cmds[("LEASE", "45")].value == 45.0
    assert cmds[("OPERATORS", "root,alice,bob.smith")].value == ("root", "alice", "bob.smith")
    assert parse("SERVER\n", "server.cmd")[0].values == {}


def test_every_printer_key() -> None:
    cmd = one(
        "PRINTER R&D PORT=/dev/ttyS0 BAUD=19200 BITS=7 PARITY=e STOP=1.5 FLOW=RTSCTS "
        "DRIVER=ESCP SETUP=standard HEADER=R&DHDR CLASS=LINES,ALL ERRORS=HOLD STALL=12.5 "
        f"RETRY=2 ACCEPT=NO REASON=\"paper jam\" STOPPED=YES PASSWORD={QHASH} "
        "MAXCOPIES=5 MAXBYTES=10M MAXPAGES=200 MAXFILE=1M OVERLIMIT=hold SEAL=on "
        "LINKDOWN=local PRINTER=lp LINKHOLD=0.5 LINKNAME=hq LINKRETRY=30 LOGO=r.logo"
    )
    assert cmd.values == {
        "PORT": "/dev/ttyS0", "BAUD": 19200, "BITS": 7, "PARITY": "E", "STOP": "1.5",
        "FLOW": "RTSCTS", "DRIVER": "ESCP", "SETUP": "STANDARD", "HEADER": "R&DHDR",
        "CLASS": ("LINES", "ALL"), "ERRORS": "HOLD", "STALL": 12.5, "RETRY": 2.0,
        "ACCEPT": False, "REASON": "paper jam", "STOPPED": True, "PASSWORD": QHASH,
        "MAXCOPIES": 5, "MAXBYTES": 10 * 1024 * 1024, "MAXPAGES": 200,
        "MAXFILE": 1024 * 1024, "OVERLIMIT": "HOLD", "SEAL": "ON",
        "LINKDOWN": "LOCAL", "PRINTER": "LP", "LINKHOLD": 0.5, "LINKNAME": "HQ", "LINKRETRY": 30,
        "LOGO": "r.logo",
    }
    assert set(cmd.values) == set(cmdfile.PRINTER_KEYS)
    assert cmd.get_int("BAUD", 0) == 19200
    assert cmd.get_bool("ACCEPT", True) is False
    assert cmd.get_names("CLASS") == ("LINES", "ALL")
    assert cmd.get_opt_int("MAXPAGES") == 200


def test_every_setup_key_and_default() -> None:
    cmds = parse(
        'SETUP checks FORM=checks LENGTH=22 WIDTH=80 INIT="\\e@\\x0f" ENCODING=cp437\n'
        "DEFAULT lines\n",
        "printers.cmd",
    )
    assert cmds[0].name == "CHECKS"
    assert cmds[0].values == {"FORM": "CHECKS", "LENGTH": 22, "WIDTH": 80, "INIT": b"\x1b@\x0f",
                              "ENCODING": "cp437"}
    assert set(cmds[0].values) == set(cmdfile.SETUP_KEYS)
    assert (cmds[1].keyword, cmds[1].name) == ("DEFAULT", "LINES")
    with pytest.raises(ConfigError, match="ENCODING"):
        parse("SETUP S ENCODING=rot13\n", "printers.cmd")


@pytest.mark.parametrize("port", [
    "/dev/ttyS0", "/dev/ttyUSB0", "/dev/tty.usbserial-1", "/dev/cu.usbserial", "/dev/pts/3",
    "/dev/serial/by-id/usb-FTDI_FT232R-if00-port0", "socket://10.1.2.3:9100",
    "socket://printer.example.com:9100", "SOCKET://[::1]:9100", "rfc2217://host:2217",
    "loop://", "sim://SIM?out=../output/sim.prn&baud=9600&buffer=100",
    "file://../output/LOCAL.prn", "file:///abs/x.prn",
])
def test_allowed_ports(port: str) -> None:
    cmd = one(f"PRINTER X PORT={port}")
    assert cmd.get_str("PORT", "").lower() == port.lower()


def test_names_may_contain_ampersand() -> None:
    assert one("PRINTER R&D PORT=loop:// HEADER=r&d.hdr2").values["HEADER"] == "R&D.HDR2"


def test_escapes_round_trip_examples() -> None:
    assert encode_escapes(b"\x1b@\\ a\x00\xff") == "\\e@\\\\ a\\x00\\xff"
    assert decode_escapes("\\E\\X41") == b"\x1bA"


@given(st.binary(max_size=256))
def test_escapes_round_trip(data: bytes) -> None:
    assert decode_escapes(encode_escapes(data)) == data


# ---------------------------------------------------------------------------
# Errors name file and line


BAD_LINES = [
    # (file, line, what the message must say)
    ("server.cmd", "FOO 1", "unknown command 'FOO'"),
    ("server.cmd", "PRINTER X PORT=loop://", "belongs in printers.cmd"),
    ("printers.cmd", "NIGHT 0,6", "belongs in server.cmd"),
    ("server.cmd", "SERVER floor2", "takes no name"),
    ("server.cmd", "SERVER NAME=", "not a valid name"),
    ("server.cmd", "SERVER NAME=bad/name", "not a valid name"),
    ("server.cmd", "SERVER NAME=a HOST=b", "unknown key HOST"),
    ("server.cmd", "SERVER NAME=a NAME=b", "NAME is given twice"),
    ("server.cmd", "SPOOL", "SPOOL needs"),
    ("server.cmd", 'SPOOL ""', "folder path"),
    ("server.cmd", "PASSWORD hunter2", "scrypt$"),
    ("server.cmd", "PASSWORD", "PASSWORD needs"),
    ("server.cmd", "NIGHT 6", "START,END"),
    ("server.cmd", "NIGHT 3,3", "START != END"),
    ("server.cmd", "NIGHT 0,24", "0..23"),
    ("server.cmd", "NIGHT 0,6 7", "unexpected '7'"),
    ("server.cmd", "SCAN 0", "0.05..60"),
    ("server.cmd", "SCAN 61", "0.05..60"),
    ("server.cmd", "SCAN fast", "0.05..60"),
    ("server.cmd", "SCAN nan", "0.05..60"),
    ("server.cmd", "LEASE 0.1", "0.5..3600"),
    ("server.cmd", "LEASE 1e3", "0.5..3600"),
    ("server.cmd", "OPERATORS root,,alice", "not a valid user"),
    ("server.cmd", "OPERATORS root,root", "listed twice"),
    ("server.cmd", "NIGHT 0,6 X=1", "unknown key X"),
    ("printers.cmd", "PRINTER", "PRINTER needs a name"),
    ("printers.cmd", "PRINTER X", "missing required key PORT"),
    ("printers.cmd", "PRINTER X BAUD=9600", "missing required key PORT"),
    ("printers.cmd", "PRINTER PORT=loop://", "PRINTER needs a name"),
    ("printers.cmd", "PRINTER X Y PORT=loop://", "unexpected 'Y'"),
    ("printers.cmd", "PRINTER ../X PORT=loop://", "not a valid name"),
    ("printers.cmd", "PRINTER ÄRGER PORT=loop://", "not a valid name"),
    ("printers.cmd", "PRINTER X PORT=", "must be a serial device"),
    ("printers.cmd", "PRINTER X PORT=/dev/sda", "must be a serial device"),
    ("printers.cmd", "PRINTER X PORT=/dev/tty/../sda", "must be a serial device"),
    ("printers.cmd", "PRINTER X PORT=/etc/passwd", "must be a serial device"),
    ("printers.cmd", "PRINTER X PORT=spy:///dev/ttyS0", "scheme 'spy' is not allowed"),
    ("printers.cmd", "PRINTER X PORT=socket://host", "HOST:PORT"),
    ("printers.cmd", "PRINTER X PORT=socket://host:99999", "HOST:PORT"),
    ("printers.cmd", "PRINTER X PORT=file://", "file:// needs a path"),
    ("printers.cmd", "PRINTER X PORT=sim://X", "needs one out=PATH"),
    ("printers.cmd", "PRINTER X PORT=sim://X?out=a&out=b", "needs one out=PATH"),
    ("printers.cmd", "PRINTER X PORT=sim://X?out=a&log=b", "unknown option 'log'"),
    ("printers.cmd", "PRINTER X PORT=loop:// BAUD=49", "50..4000000"),
    ("printers.cmd", "PRINTER X PORT=loop:// BAUD=-9600", "50..4000000"),
    ("printers.cmd", "PRINTER X PORT=loop:// BAUD=9_600", "50..4000000"),
    ("printers.cmd", "PRINTER X PORT=loop:// BITS=9", "5..8"),
    ("printers.cmd", "PRINTER X PORT=loop:// PARITY=X", "one of N E O M S"),
    ("printers.cmd", "PRINTER X PORT=loop:// STOP=3", "one of 1 1.5 2"),
    ("printers.cmd", "PRINTER X PORT=loop:// FLOW=HW", "one of NONE XONXOFF RTSCTS DSRDTR"),
    ("printers.cmd", "PRINTER X PORT=loop:// DRIVER=PCL", "one of PLAIN ESCP"),
    ("printers.cmd", "PRINTER X PORT=loop:// SETUP=a/b", "not a valid name"),
    ("printers.cmd", "PRINTER X PORT=loop:// HEADER=../../x", "not a valid name"),
    ("printers.cmd", "PRINTER X PORT=loop:// HEADER=/etc/passwd", "not a valid name"),
    ("printers.cmd", "PRINTER X PORT=loop:// CLASS=A,,B", "not a valid name"),
    ("printers.cmd", "PRINTER X PORT=loop:// CLASS=A,a", "listed twice"),
    ("printers.cmd", "PRINTER X PORT=loop:// ERRORS=STOP", "one of RETRY HOLD ABORT"),
    ("printers.cmd", "PRINTER X PORT=loop:// STALL=0", "0.1..86400"),
    ("printers.cmd", "PRINTER X PORT=loop:// RETRY=-1", "0.1..86400"),
    ("printers.cmd", "PRINTER X PORT=loop:// ACCEPT=maybe", "YES or NO"),
    ("printers.cmd", "PRINTER X PORT=loop:// STOPPED=1", "YES or NO"),
    ("printers.cmd", "PRINTER X PORT=loop:// REASON=" + "x" * 201, "longer than 200"),
    ("printers.cmd", "PRINTER X PORT=loop:// PASSWORD=secret", "qscrypt$"),
    ("printers.cmd", f"PRINTER X PORT=loop:// PASSWORD={HASH}", "qscrypt$"),
    ("printers.cmd", "PRINTER X PORT=loop:// MAXCOPIES=0", "1..999"),
    ("printers.cmd", "PRINTER X PORT=loop:// MAXCOPIES=1000", "1..999"),
    ("printers.cmd", "PRINTER X PORT=loop:// MAXBYTES=10T", "K, M, G"),
    ("printers.cmd", "PRINTER X PORT=loop:// MAXPAGES=0", "1..10000000"),
    ("printers.cmd", "PRINTER X PORT=loop:// COLOR=YES", "unknown key COLOR"),
    ("printers.cmd", "PRINTER X PORT=loop:// PORT=loop://", "PORT is given twice"),
    ("printers.cmd", "PRINTER X PORT=loop:// =1", "unexpected '=1'"),
    ("printers.cmd", "SETUP", "SETUP needs a name"),
    ("printers.cmd", "SETUP S LENGTH=2", "3..255"),
    ("printers.cmd", "SETUP S LENGTH=256", "3..255"),
    ("printers.cmd", "SETUP S WIDTH=9", "10..255"),
    ("printers.cmd", "SETUP S FORM=", "not a valid name"),
    ("printers.cmd", r"SETUP S INIT=\q", "unknown escape"),
    ("printers.cmd", r"SETUP S INIT=\x1", "two hex digits"),
    ("printers.cmd", "SETUP S INIT=é", "write bytes as"),
    ("printers.cmd", "SETUP S INIT=" + r"\xff" * 257, "longer than 256 bytes"),
    ("printers.cmd", "SETUP S BAUD=9600", "unknown key BAUD"),
    ("printers.cmd", "DEFAULT", "DEFAULT needs"),
    ("printers.cmd", "DEFAULT A B", "unexpected 'B'"),
    ("printers.cmd", 'PRINTER X PORT=loop:// REASON="open', "unterminated quote"),
    ("printers.cmd", "PRINTER X PORT=loop://\x1b[2J", "control character U+001B"),
    ("printers.cmd", "PRINTER X PORT=loop:// REASON=a\u202eb", "control character U+202E"),
    ("printers.cmd", "PORT=loop://", "expected a command word"),
    ("printers.cmd", '"PRINTER" X PORT=loop://', "expected a command word"),
    ("printers.cmd", "1PRINTER X", "expected a command word"),
    ("printers.cmd", "PRINTER X PORT=loop:// " + "x" * 5000, "longer than 4096"),
]


@pytest.mark.parametrize(("filename", "line", "expect"), BAD_LINES)
def test_bad_line_names_file_and_line(filename: str, line: str, expect: str) -> None:
    ok = "NIGHT 0,6" if filename == "server.cmd" else "SETUP STANDARD"
    text = f"; first line\n\n{ok}\n{line}\n{ok.split(maxsplit=1)[0]}X 1\n"
    path = f"/srv/printnet/etc/{filename}"
    with pytest.raises(ConfigError) as info:
        parse(text, path)
    err = info.value
    assert (err.file, err.line) == (path, 4), err
    assert expect in err.message, err.message
    assert str(err).startswith(f"{path}:4: ")
    assert "\x1b" not in str(err) and "\u202e" not in str(err)


@pytest.mark.parametrize(("text", "expect"), [
    ("PRINTER A PORT=loop://\nPRINTER a PORT=loop://\n",
     "PRINTER A is defined twice (first on line 1)"),
    ("SETUP S\n\nsetup s\n", "SETUP S is defined twice (first on line 1)"),
    ("DEFAULT A\nDEFAULT B\n", "a second DEFAULT command (first on line 1)"),
])
def test_duplicate_printer_definitions(text: str, expect: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(text, "printers.cmd")
    assert expect in info.value.message
    assert info.value.line == text.rstrip("\n").count("\n") + 1


@pytest.mark.parametrize(("text", "expect"), [
    ("NIGHT 0,6\nNIGHT 1,6\n", "a second NIGHT command (first on line 1)"),
    ("SERVER\nSERVER NAME=X\n", "a second SERVER command"),
    ("SPOOL /a\nSPOOL /a\n", "SPOOL /a is listed twice (first on line 1)"),
    (f"PASSWORD {HASH}\nPASSWORD {HASH}\n", "a second PASSWORD command"),
    ("SCAN 1\nSCAN 2\n", "a second SCAN"),
    ("LEASE 1\nLEASE 2\n", "a second LEASE"),
    ("OPERATORS a\nOPERATORS b\n", "a second OPERATORS"),
])
def test_duplicate_server_commands(text: str, expect: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(text, "server.cmd")
    assert expect in info.value.message
    assert info.value.line == 2


def test_two_spools_with_different_paths_are_fine() -> None:
    assert len(parse("SPOOL /a\nSPOOL /b\n", "server.cmd")) == 2


def test_schema_by_file_name() -> None:
    assert cmdfile.schema_for("/x/etc/server.cmd") is SERVER_SCHEMA
    assert cmdfile.schema_for("etc\\PRINTERS.CMD") is PRINTERS_SCHEMA
    assert cmdfile.schema_for("other.cmd") is ANY_SCHEMA
    assert len(parse("NIGHT 0,6\nDEFAULT X\n", "other.cmd")) == 2


# ---------------------------------------------------------------------------
# Rendering and round trips

_SAFE = st.characters(exclude_categories=["Cc", "Cf", "Cs", "Zl", "Zp"])
_values = st.text(_SAFE, max_size=30)
_keys = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,8}", fullmatch=True)


@given(name=st.one_of(st.none(), _values), args=st.dictionaries(_keys, _values, max_size=5))
def test_render_then_split_gives_the_same_words(name: str | None, args: dict[str, str]) -> None:
    upper: dict[str, str] = {}
    for key, value in args.items():
        upper.setdefault(key.upper(), value)
    line = render_command("CMD", name, upper)
    words, comment = split_line(line)
    assert comment is None
    assert words[0].text == "CMD"
    rest = words[1:]
    if name is not None:
        assert rest[0].key is None
        assert rest.pop(0).value == name
    assert {w.key: w.value for w in rest} == upper
    assert all(w.key is not None for w in rest)


_TEXT_SCHEMA = Schema("t.cmd", {
    "NOTE": Keyword("NOTE", Repeat.MANY, "", "NOTE x", Text(1000), True,
                    {"A": Text(1000), "B": Text(1000)}),
})


@given(name=_values.filter(lambda s: s.strip() != ""), a=_values, b=_values,
       comment=st.text(max_size=20).map(lambda s: s.replace("\n", "").replace("\r", "")))
def test_render_then_parse_gives_the_same_args(name: str, a: str, b: str, comment: str) -> None:
    line = render_command("NOTE", name, {"A": a, "B": b}) + " ; " + comment
    cmd = parse(f"; x\n{line}\n", "t.cmd", _TEXT_SCHEMA)[0]
    assert cmd.line == 2
    assert cmd.name == name
    assert dict(cmd.args) == {"A": a, "B": b}


def test_render_quotes_only_when_needed() -> None:
    assert render_value("abc") == "abc"
    assert render_value("") == '""'
    assert render_value("a b") == '"a b"'
    assert render_value("a;b") == '"a;b"'
    assert render_value('say "hi" \\o/') == '"say \\"hi\\" \\\\o/"'
    assert render_value("a=b") == "a=b"
    assert render_value("a=b", positional=True) == '"a=b"'
    assert render_value("\\x1b@") == "\\x1b@"
    assert render_command("printer", "R&D", {"port": "loop://", "reason": "out of paper"}) == (
        'PRINTER R&D PORT=loop:// REASON="out of paper"'
    )


@pytest.mark.parametrize("value", ["a\nb", "a\rb", "\x1b[2J", "a\u2028b"])
def test_render_refuses_control_characters(value: str) -> None:
    with pytest.raises(ConfigError):
        render_command("PRINTER", "X", {"REASON": value})
    with pytest.raises(ConfigError):
        set_command("", "PRINTER", "X", {"REASON": value})


def test_render_refuses_bad_keywords_and_keys() -> None:
    with pytest.raises(ConfigError):
        render_command("PRINT ER")
    with pytest.raises(ConfigError):
        render_command("PRINTER", "X", {"A B": "1"})


# ---------------------------------------------------------------------------
# Fuzzing: nothing but ConfigError


@settings(max_examples=500)
@given(st.text(max_size=300))
def test_parse_never_raises_anything_but_config_error(text: str) -> None:
    for schema in (SERVER_SCHEMA, PRINTERS_SCHEMA, ANY_SCHEMA):
        try:
            parse(text, "f.cmd", schema)
        except ConfigError as exc:
            assert exc.file == "f.cmd"
            assert 1 <= exc.line <= text.count("\n") + 1


_line_words = st.sampled_from([
    "PRINTER", "SETUP", "DEFAULT", "NIGHT", "SPOOL", "SERVER", "PORT=loop://", "X",
    'REASON="a;b"', "BAUD=9600", "0,6", "CLASS=A,B", ";", '"', "=", "\\", "INIT=\\e",
    "HEADER=NONE", "R&D", "\t", "sim://A?out=x",
])


@settings(max_examples=500)
@given(st.lists(st.lists(_line_words, max_size=6).map(" ".join), max_size=8))
def test_parse_fuzz_with_command_words(lines: list[str]) -> None:
    text = "\n".join(lines)
    for schema in (SERVER_SCHEMA, PRINTERS_SCHEMA):
        try:
            parse(text, "f.cmd", schema)
        except ConfigError:
            pass


# ---------------------------------------------------------------------------
# The editor

PRINTERS = """\
; printers -- comment at the top
PRINTER R&D PORT=/dev/ttyS0 BAUD=9600   ; the lab printer
\tPRINTER LP PORT=socket://10.1.2.3:9100 SETUP=CHECKS

SETUP STANDARD FORM=PLAIN LENGTH=66 WIDTH=80
SETUP CHECKS FORM=CHECKS LENGTH=22 WIDTH=80 ;checks
DEFAULT R&D  ; default
; trailing comment
"""


def test_set_command_replaces_in_place_keeping_comment_column() -> None:
    out = set_command(PRINTERS, "printer", "r&d", {"PORT": "/dev/ttyS1", "BAUD": "19200"})
    lines = out.splitlines()
    assert lines[1] == "PRINTER R&D PORT=/dev/ttyS1 BAUD=19200  ; the lab printer"
    assert lines[1].index(";") == PRINTERS.splitlines()[1].index(";")
    assert lines[:1] + lines[2:] == PRINTERS.splitlines()[:1] + PRINTERS.splitlines()[2:]


def test_set_command_longer_line_keeps_comment_after_one_space() -> None:
    out = set_command(PRINTERS, "SETUP", "CHECKS", {"FORM": "CHECKS", "REASON": "x" * 60})
    assert out.splitlines()[5] == "SETUP CHECKS FORM=CHECKS REASON=" + "x" * 60 + " ;checks"


def test_set_command_keeps_indentation() -> None:
    out = set_command(PRINTERS, "PRINTER", "LP", {"PORT": "loop://"})
    assert out.splitlines()[2] == "\tPRINTER LP PORT=loop://"


def test_set_command_adds_after_last_of_its_kind() -> None:
    out = set_command(PRINTERS, "PRINTER", "NEW", {"PORT": "loop://"})
    lines = out.splitlines()
    assert lines[3] == "PRINTER NEW PORT=loop://"
    assert lines[:3] + lines[4:] == PRINTERS.splitlines()
    out = set_command(PRINTERS, "SETUP", "LABELS", {"LENGTH": "12"})
    assert out.splitlines()[6] == "SETUP LABELS LENGTH=12"


def test_set_command_appends_when_keyword_is_new() -> None:
    assert set_command("; only a comment", "PRINTER", "A", {"PORT": "loop://"}) == (
        "; only a comment\nPRINTER A PORT=loop://\n"
    )
    assert set_command("", "PRINTER", "A", {"PORT": "loop://"}) == "PRINTER A PORT=loop://\n"


def test_update_command_changes_only_named_keys() -> None:
    out = update_command(PRINTERS, "PRINTER", "LP", {"setup": "STANDARD", "ACCEPT": "NO",
                                                      "REASON": "paper out", "BAUD": None})
    assert out.splitlines()[2] == (
        '\tPRINTER LP PORT=socket://10.1.2.3:9100 SETUP=STANDARD ACCEPT=NO REASON="paper out"'
    )
    out = update_command(PRINTERS, "PRINTER", "R&D", {"BAUD": None})
    assert out.splitlines()[1] == "PRINTER R&D PORT=/dev/ttyS0             ; the lab printer"
    with pytest.raises(NotFound):
        update_command(PRINTERS, "PRINTER", "NOPE", {"BAUD": "1"})


def test_remove_command() -> None:
    out = remove_command(PRINTERS, "PRINTER", "lp")
    assert out.splitlines() == [ln for i, ln in enumerate(PRINTERS.splitlines()) if i != 2]
    assert remove_command(PRINTERS, "PRINTER", "NOPE") == PRINTERS
    assert "SETUP" not in remove_command(PRINTERS, "SETUP").replace("SETUP=", "")


def test_set_single_replaces_adds_and_drops_duplicates() -> None:
    text = "; s\nNIGHT 0,6   ; window\nSCAN 1\n"
    assert set_single(text, "NIGHT", "22,6") == "; s\nNIGHT 22,6  ; window\nSCAN 1\n"
    assert set_single(text, "lease", "60") == "; s\nNIGHT 0,6   ; window\nSCAN 1\nLEASE 60\n"
    assert set_single(text, "SERVER", args={"NAME": "FLOOR2"}).endswith("SERVER NAME=FLOOR2\n")
    assert set_single("NIGHT 1,2\nNIGHT 3,4\n", "NIGHT", "5,6") == "NIGHT 5,6\n"
    assert set_single(text, "PASSWORD", HASH).endswith(f"PASSWORD {HASH}\n")
    assert remove_command(set_single(text, "PASSWORD", HASH), "PASSWORD") == text


def test_add_and_remove_lines() -> None:
    text = "SPOOL /a  ; first\n; c\nNIGHT 0,6\n"
    out = add_line(text, "SPOOL", "/b b")
    assert out == 'SPOOL /a  ; first\nSPOOL "/b b"\n; c\nNIGHT 0,6\n'
    assert add_line(out, "SPOOL", "/b b") == out
    assert add_line(out, "spool", "/a") == out
    assert remove_line(out, "SPOOL", "/b b") == text
    assert remove_line(text, "SPOOL", "/a") == "; c\nNIGHT 0,6\n"
    assert remove_line(text, "SPOOL", "/nope") == text


def test_editor_keeps_crlf_bom_and_missing_final_newline() -> None:
    text = "\ufeff; c\r\nNIGHT 0,6\r\nSCAN 1"
    assert set_single(text, "NIGHT", "1,2") == "\ufeff; c\r\nNIGHT 1,2\r\nSCAN 1"
    assert set_single(text, "LEASE", "9") == "\ufeff; c\r\nNIGHT 0,6\r\nSCAN 1\nLEASE 9\r\n"
    assert parse(set_single(text, "LEASE", "9"), "server.cmd")[-1].value == 9.0


def test_editor_leaves_unparsable_lines_alone() -> None:
    text = 'PRINTER "broken\n\x1b junk\nPRINTER A PORT=loop://\n'
    out = set_command(text, "PRINTER", "A", {"PORT": "/dev/ttyS0"})
    assert out == 'PRINTER "broken\n\x1b junk\nPRINTER A PORT=/dev/ttyS0\n'


_comment_line = st.text(max_size=40).map(
    lambda s: ";" + s.replace("\n", " ").replace("\r", " ")
)
_blank_line = st.text(" \t", max_size=4)
_other_line = st.sampled_from([
    "SETUP STANDARD FORM=PLAIN LENGTH=66 WIDTH=80",
    "PRINTER OTHER PORT=loop:// ; other printer",
    "DEFAULT OTHER",
    "  PRINTER R&DX PORT=loop://",
    "SETUP TARGET LENGTH=12",
])
_filler = st.lists(st.one_of(_comment_line, _blank_line, _other_line), max_size=12)


@settings(max_examples=200)
@given(before=_filler, after=_filler, comment=st.one_of(st.just(""), _comment_line),
       crlf=st.booleans())
def test_editor_keeps_every_other_line_byte_for_byte(
    before: list[str], after: list[str], comment: str, crlf: bool
) -> None:
    eol = "\r\n" if crlf else "\n"
    target = "PRINTER TARGET PORT=/dev/ttyS0 BAUD=9600" + (" " + comment if comment else "")
    text = eol.join([*before, target, *after]) + eol

    def others(out: str) -> list[str]:
        return [ln for ln in out.split(eol) if "TARGET P" not in ln.upper()]

    expected = others(text)
    for out in (
        set_command(text, "PRINTER", "target", {"PORT": "loop://", "REASON": "a; b"}),
        update_command(text, "PRINTER", "TARGET", {"BAUD": "19200"}),
        remove_command(text, "PRINTER", "TARGET"),
    ):
        assert others(out) == expected
    replaced = set_command(text, "PRINTER", "TARGET", {"PORT": "loop://"}).split(eol)
    line = replaced[len(before)]
    assert line.startswith("PRINTER TARGET PORT=loop://")
    if comment:
        assert line.endswith(comment)
    assert set_command(text, "PRINTER", "TARGET", {"PORT": "/dev/ttyS0", "BAUD": "9600"}) == text


@settings(max_examples=300)
@given(st.text(max_size=200))
def test_editor_never_loses_lines_of_arbitrary_text(text: str) -> None:
    out = set_command(text, "PRINTER", "ZZNEW", {"PORT": "loop://"})
    assert out.startswith("\ufeff") == text.startswith("\ufeff")
    lines = re.split(r"\r?\n", out.removeprefix("\ufeff"))
    added = [ln for ln in lines if ln.startswith("PRINTER ZZNEW")]
    assert len(added) >= 1
    assert remove_command(out, "PRINTER", "ZZNEW").replace("\r", "").rstrip("\n") == (
        remove_command(text, "PRINTER", "ZZNEW").replace("\r", "").rstrip("\n")
    )
