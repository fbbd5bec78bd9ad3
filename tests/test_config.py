"""printnet.config (loading, checking, editing etc/) and printnet.passwords."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from printnet import cmdfile, passwords
from printnet.config import (
    Config,
    DriverName,
    ErrorPolicy,
    Flow,
    PrinterConfig,
    ServerConfig,
    SetupConfig,
    default_server_name,
    default_text,
    edit,
    header_template,
    load,
    parse_config,
    port_file,
    stamp,
    write_defaults,
)
from printnet.errors import ConfigError, NotFound, ValidationError

QHASH = "qscrypt$16384$8$1$" + "A" * 43
HASH = "scrypt$16384$8$1$" + "B" * 22 + "$" + "C" * 43


@pytest.fixture
def etc(tmp_path: Path) -> Path:
    folder = tmp_path / "etc"
    write_defaults(folder)
    return folder


def write(etc: Path, server: str | None = None, printers: str | None = None) -> None:
    if server is not None:
        (etc / "server.cmd").write_text(server)
    if printers is not None:
        (etc / "printers.cmd").write_text(printers)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


# ---------------------------------------------------------------------------
# Defaults


def test_write_defaults_creates_the_embedded_default(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    created = write_defaults(etc)
    assert sorted(p.name for p in created) == ["gateway.cmd", "local.hdr", "printers.cmd",
                                               "server.cmd"]
    for name in ("server.cmd", "printers.cmd", "local.hdr", "gateway.cmd"):
        assert (etc / name).read_text() == default_text(name)
    assert stat.S_IMODE((etc / "server.cmd").stat().st_mode) & 0o077 == 0
    assert stat.S_IMODE((etc / "printers.cmd").stat().st_mode) & 0o077 == 0
    assert [p.name for p in etc.iterdir() if p.name.startswith(".")] == []


def test_write_defaults_is_idempotent_and_never_clobbers(etc: Path) -> None:
    (etc / "server.cmd").write_text("NIGHT 1,2 ; mine\n")
    before = snapshot(etc)
    assert write_defaults(etc) == []
    assert snapshot(etc) == before
    (etc / "local.hdr").unlink()
    assert write_defaults(etc) == [etc / "local.hdr"]
    assert (etc / "server.cmd").read_text() == "NIGHT 1,2 ; mine\n"


def test_load_the_defaults(etc: Path) -> None:
    config = load(etc)
    project = etc.parent.resolve()
    assert config.etc == etc.resolve()
    assert config.project == project
    assert config.server == ServerConfig(
        name=default_server_name(), spools=(project / "spool",), password_hash=None,
        night=(0, 6), scan_interval=1.0, lease=30.0, operators=("root",),
    )
    assert list(config.printers) == ["LOCAL"]
    local = config.printers["LOCAL"]
    assert local == PrinterConfig(
        name="LOCAL", port="file://../output/LOCAL.prn", setup="STANDARD", header="LOCAL"
    )
    assert port_file(config, local) == project / "output" / "LOCAL.prn"
    assert config.setups == {
        "STANDARD": SetupConfig("STANDARD", "PLAIN", 66, 80),
        "CHECKS": SetupConfig("CHECKS", "CHECKS", 22, 80),
        "LABELS": SetupConfig("LABELS", "LABELS", 12, 40),
    }
    assert config.default_printer == "LOCAL"
    template = header_template(config, local)
    assert template is not None and "{user}" in template
    config.validate()


def test_default_files_document_every_command() -> None:
    server = default_text("server.cmd")
    for keyword in cmdfile.SERVER_SCHEMA.keywords:
        assert f"; {keyword}" in server
    printers = default_text("printers.cmd")
    for keyword in cmdfile.PRINTERS_SCHEMA.keywords:
        assert f"; {keyword}" in printers
    for key in cmdfile.PRINTER_KEYS:
        assert f"{key}=" in printers, key
    for example in ("/dev/ttyS0", "socket://", "sim://"):
        assert ";PRINTER" in printers and example in printers


def test_default_commented_examples_are_valid(etc: Path, tmp_path: Path) -> None:
    """Uncommenting the examples gives a valid configuration."""
    text = default_text("printers.cmd")
    uncommented = "\n".join(
        ln[1:] if ln.startswith(";PRINTER") else ln for ln in text.splitlines()
    )
    write(etc, printers=uncommented + "\nSETUP x\n")
    config = load(etc)
    assert {"LOCAL", "R&D", "LINEPRINTER", "SIMULATED"} <= set(config.printers)
    assert config.printers["SIMULATED"].header_pages is False
    assert port_file(config, config.printers["SIMULATED"]) == (
        tmp_path.resolve() / "output" / "SIMULATED.prn"
    )


# ---------------------------------------------------------------------------
# Loading


FULL_SERVER = f"""\
SERVER NAME=floor2            ; server name
SPOOL /mnt/net1/printnet      ; one line per shared disk
SPOOL ../net2
PASSWORD {HASH}
NIGHT 22,6
SCAN 0.5
LEASE 45
OPERATORS root,alice
"""

FULL_PRINTERS = (
    "PRINTER R&D PORT=/dev/ttyS0 BAUD=9600 FLOW=XONXOFF SETUP=STANDARD HEADER=R&DHDR\n"
    "PRINTER LINEPRINTER PORT=socket://10.1.2.3:9100 SETUP=CHECKS HEADER=LINEHDR"
    " CLASS=LINES,ALL DRIVER=ESCP\n"
    "PRINTER EVERY PORT=rfc2217://h:2217 BAUD=115200 BITS=7 PARITY=E STOP=2 FLOW=DSRDTR"
    " DRIVER=ESCP SETUP=CHECKS HEADER=NONE CLASS=ALL ERRORS=ABORT STALL=5 RETRY=1.5"
    f' ACCEPT=NO REASON="paper; out" STOPPED=YES PASSWORD={QHASH} MAXCOPIES=9'
    " MAXBYTES=2K MAXPAGES=100\n"
    """\
SETUP STANDARD FORM=PLAIN LENGTH=66 WIDTH=80
SETUP CHECKS FORM=CHECKS LENGTH=22 WIDTH=80 INIT="\\x1b@"
DEFAULT R&D                   ; the default printer
"""
)


@pytest.fixture
def full(etc: Path) -> Path:
    write(etc, FULL_SERVER, FULL_PRINTERS)
    (etc / "r&dhdr.hdr").write_text("R&D {user}\r\n")
    (etc / "linehdr.hdr").write_text("LINE {user}\n")
    return etc


def test_load_every_command_and_key(full: Path) -> None:
    config = load(full)
    project = full.parent.resolve()
    assert config.server == ServerConfig(
        name="FLOOR2",
        spools=(Path("/mnt/net1/printnet"), project.parent / "net2"),
        password_hash=HASH, night=(22, 6), scan_interval=0.5, lease=45.0,
        operators=("root", "alice"),
    )
    assert config.printers["R&D"] == PrinterConfig(
        name="R&D", port="/dev/ttyS0", baud=9600, flow=Flow.XONXOFF, setup="STANDARD",
        header="R&DHDR",
    )
    assert config.printers["LINEPRINTER"] == PrinterConfig(
        name="LINEPRINTER", port="socket://10.1.2.3:9100", setup="CHECKS", header="LINEHDR",
        classes=("LINES", "ALL"), driver=DriverName.ESCP,
    )
    assert config.printers["EVERY"] == PrinterConfig(
        name="EVERY", port="rfc2217://h:2217", baud=115200, bytesize=7, parity="E",
        stopbits=2.0, flow=Flow.DSRDTR, driver=DriverName.ESCP, setup="CHECKS", header=None,
        header_pages=False, classes=("ALL",), error_policy=ErrorPolicy.ABORT,
        stall_timeout=5.0, retry_interval=1.5, accepting=False, reject_reason="paper; out",
        stopped=True, password_hash=QHASH, max_copies=9, max_bytes=2048, max_pages=100,
    )
    assert config.setups["CHECKS"].init == b"\x1b@"
    assert config.default_printer == "R&D"
    assert config.classes == {"LINES": ("LINEPRINTER",), "ALL": ("LINEPRINTER", "EVERY")}
    assert header_template(config, config.printers["R&D"]) == "R&D {user}\n"
    assert header_template(config, config.printers["EVERY"]) is None
    assert port_file(config, config.printers["R&D"]) is None


def test_builtin_header_when_no_header_key_and_standard_setup_builtin(etc: Path) -> None:
    write(etc, printers="PRINTER A PORT=loop://\nSETUP OTHER LENGTH=10\n")
    config = load(etc)
    assert config.printers["A"].header is None and config.printers["A"].header_pages
    assert header_template(config, config.printers["A"]) is None
    assert config.setups["STANDARD"] == SetupConfig("STANDARD")
    assert config.default_printer is None


def test_default_may_name_a_class(etc: Path) -> None:
    write(etc, printers="PRINTER A PORT=loop:// CLASS=POOL\nDEFAULT pool\n")
    assert load(etc).default_printer == "POOL"


def test_server_name_override_and_default(etc: Path) -> None:
    write(etc, server="SERVER NAME=floor2\n")
    assert load(etc, server_name="floor3").server.name == "FLOOR3"
    assert load(etc).server.name == "FLOOR2"
    write(etc, server="SERVER\n")
    assert load(etc).server.name == default_server_name()
    with pytest.raises(ConfigError, match="server name"):
        load(etc, server_name="no/slash")


def test_default_server_name_is_valid() -> None:
    assert cmdfile.convert_name(default_server_name()) == default_server_name()


def test_spools_relative_to_project_and_default(etc: Path) -> None:
    project = etc.parent.resolve()
    write(etc, server="SPOOL spool\nSPOOL ./other/../net\nSPOOL /abs/x\n")
    assert load(etc).server.spools == (project / "spool", project / "net", Path("/abs/x"))
    write(etc, server="; no spool\n")
    assert load(etc).server.spools == (project / "spool",)


def test_same_spool_twice_is_refused(etc: Path) -> None:
    write(etc, server="; x\nSPOOL spool\nSPOOL ./spool\n")
    with pytest.raises(ConfigError, match="same folder as line 2") as info:
        load(etc)
    assert info.value.line == 3


@pytest.mark.parametrize("spool", ["etc", "etc/spool", ".."])
def test_spool_and_etc_may_not_nest(etc: Path, spool: str) -> None:
    write(etc, server=f"NIGHT 0,6\nSPOOL {spool}\n")
    with pytest.raises(ConfigError, match="inside one another") as info:
        load(etc)
    assert (info.value.file, info.value.line) == (str(etc / "server.cmd"), 2)


CROSS_ERRORS = [
    ("PRINTER A PORT=loop:// SETUP=NOPE\n", 1, "SETUP=NOPE is not defined"),
    ("SETUP S\nPRINTER A PORT=loop:// SETUP=S\nPRINTER B PORT=loop:// SETUP=T\n", 3,
     "SETUP=T is not defined (setups: STANDARD S)"),
    ("PRINTER A PORT=loop://\n\nDEFAULT B\n", 3, "DEFAULT B names no printer or class"),
    ("PRINTER A PORT=loop://\nPRINTER B PORT=loop:// CLASS=A\n", 2,
     "CLASS=A is also a printer's name"),
    ("PRINTER B PORT=loop:// CLASS=A\nPRINTER A PORT=loop://\n", 1,
     "CLASS=A is also a printer's name"),
    ("; x\nPRINTER A PORT=loop:// HEADER=MISSING\n", 2, "missing.hdr: not found"),
]


@pytest.mark.parametrize(("printers", "line", "expect"), CROSS_ERRORS)
def test_cross_check_errors_name_file_and_line(
    etc: Path, printers: str, line: int, expect: str
) -> None:
    write(etc, printers=printers)
    with pytest.raises(ConfigError) as info:
        load(etc)
    assert (info.value.file, info.value.line) == (str(etc / "printers.cmd"), line)
    assert expect in info.value.message


def test_syntax_errors_carry_the_etc_path(etc: Path) -> None:
    write(etc, server="NIGHT 0,6\nNIGHT 1,2\n")
    with pytest.raises(ConfigError) as info:
        load(etc)
    assert str(info.value).startswith(f"{etc / 'server.cmd'}:2: ")


def test_missing_unreadable_and_bad_files(etc: Path) -> None:
    (etc / "printers.cmd").unlink()
    with pytest.raises(ConfigError, match="printnet init") as info:
        load(etc)
    assert info.value.file == str(etc / "printers.cmd")
    (etc / "printers.cmd").write_bytes(b"; ok\nPRINTER A PORT=loop:// REASON=\xff\n")
    with pytest.raises(ConfigError, match="not UTF-8") as info:
        load(etc)
    assert info.value.line == 2
    (etc / "printers.cmd").write_bytes(b";" * (1024 * 1024 + 1))
    with pytest.raises(ConfigError, match="larger than"):
        load(etc)


# ---------------------------------------------------------------------------
# Path rules


@pytest.mark.parametrize("port", [
    "file://../../etc/passwd",
    "file:///etc/passwd",
    "file://../../../../../../../../tmp/x.prn",
    "file://server.cmd",               # inside etc/ (relative paths start there)
    "file://../etc/printers.cmd",
    "file://.",
    "file://../output",                # a folder
    "file://../spool",                 # the spool itself
    "file://../spool/master",
    "file://../spool/master.7",
    "file://../spool/new/x.req",
    "file://../spool/log/accounting",
    "file://../spool/.hidden",
    "sim://S?out=../../outside.prn",
    "sim://S?out=/etc/passwd",
    "sim://S?out=printers.cmd",
])
def test_port_paths_that_escape_are_refused(etc: Path, port: str) -> None:
    (etc.parent / "output").mkdir()
    write(etc, printers=f"; x\nPRINTER X PORT={port}\n")
    before = snapshot(etc)
    with pytest.raises(ConfigError) as info:
        load(etc)
    assert (info.value.file, info.value.line) == (str(etc / "printers.cmd"), 2)
    assert "PORT=" in info.value.message
    assert snapshot(etc) == before


def test_port_paths_inside_project_or_spool_are_fine(etc: Path, tmp_path: Path) -> None:
    spool = tmp_path / "elsewhere" / "spool"
    project = etc.parent.resolve()
    write(etc, server=f"SPOOL {spool}\n", printers=(
        "PRINTER A PORT=file://../output/a.prn\n"
        f"PRINTER B PORT=file://{project}/b.prn\n"
        f"PRINTER C PORT=file://{spool}/printouts/c.prn\n"
        "PRINTER D PORT=sim://D?out=../output/d.prn&baud=inf\n"
    ))
    config = load(etc)
    assert port_file(config, config.printers["B"]) == project / "b.prn"
    assert port_file(config, config.printers["C"]) == spool / "printouts" / "c.prn"
    assert port_file(config, config.printers["D"]) == project / "output" / "d.prn"


def test_symlink_out_of_the_project_is_refused(etc: Path, tmp_path: Path) -> None:
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    (etc.parent / "output").symlink_to(outside)
    write(etc, printers="PRINTER X PORT=file://../output/x.prn\n")
    with pytest.raises(ConfigError, match="outside the project folder"):
        load(etc)


def test_header_symlink_out_of_the_project_is_refused(etc: Path, tmp_path: Path) -> None:
    secret = tmp_path.parent / f"{tmp_path.name}-secret"
    secret.write_text("secret\n")
    (etc / "evil.hdr").symlink_to(secret)
    write(etc, printers="PRINTER X PORT=loop:// HEADER=EVIL\n")
    with pytest.raises(ConfigError, match="HEADER=EVIL") as info:
        load(etc)
    assert info.value.line == 1


def test_header_template_checks_again_when_read(etc: Path, tmp_path: Path) -> None:
    config = load(etc)
    local = config.printers["LOCAL"]
    (etc / "local.hdr").unlink()
    secret = tmp_path.parent / f"{tmp_path.name}-secret2"
    secret.write_text("secret\n")
    (etc / "local.hdr").symlink_to(secret)
    with pytest.raises(ConfigError, match="outside the project folder"):
        header_template(config, local)
    (etc / "local.hdr").unlink()
    with pytest.raises(ConfigError, match="not found"):
        header_template(config, local)
    (etc / "local.hdr").write_bytes(b"x" * (64 * 1024 + 1))
    with pytest.raises(ConfigError, match="larger than"):
        header_template(config, local)


def test_system_folder_as_project_allows_only_spools() -> None:
    config = Config(
        server=ServerConfig("S", spools=(Path("/srv/spool"),)),
        printers={"X": PrinterConfig("X", "file:///srv/x.prn")},
        setups={"STANDARD": SetupConfig("STANDARD")},
        etc=Path("/srv/etc"),
    )
    with pytest.raises(ConfigError, match="outside the spools"):
        config.validate()


def test_validate_on_code_built_configs(tmp_path: Path) -> None:
    config = Config(
        server=ServerConfig("S", spools=(tmp_path / "spool",)),
        printers={"X": PrinterConfig("X", "loop://", setup="NOPE")},
        setups={"STANDARD": SetupConfig("STANDARD")},
        etc=tmp_path / "etc",
    )
    with pytest.raises(ConfigError, match="SETUP=NOPE"):
        config.validate()


# ---------------------------------------------------------------------------
# edit()


def test_edit_writes_keeps_comments_and_mode(etc: Path) -> None:
    path = etc / "printers.cmd"
    os.chmod(path, 0o640)
    before = path.read_text()
    config = edit(etc, "printers.cmd",
                  lambda t: cmdfile.update_command(t, "PRINTER", "LOCAL", {"SETUP": "CHECKS"}))
    assert config.printers["LOCAL"].setup == "CHECKS"
    after = path.read_text()
    changed = [(a, b) for a, b in zip(before.splitlines(), after.splitlines(), strict=True)
               if a != b]
    assert changed == [(
        "PRINTER LOCAL PORT=file://../output/LOCAL.prn SETUP=STANDARD HEADER=LOCAL",
        "PRINTER LOCAL PORT=file://../output/LOCAL.prn SETUP=CHECKS HEADER=LOCAL",
    )]
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert load(etc) == config
    assert [p.name for p in etc.iterdir() if p.name.startswith(".")] == []


def test_edit_server_file(etc: Path) -> None:
    config = edit(etc, "server.cmd", lambda t: cmdfile.set_single(t, "NIGHT", "22,5"))
    assert config.server.night == (22, 5)
    assert "NIGHT 22,5\n" in (etc / "server.cmd").read_text()
    config = edit(etc, "server.cmd", lambda t: cmdfile.add_line(t, "SPOOL", "/mnt/b"))
    assert config.server.spools[-1] == Path("/mnt/b")


def test_edit_stamp_changes(etc: Path) -> None:
    first = stamp(etc)
    assert stamp(etc) == first and None not in first
    edit(etc, "server.cmd", lambda t: cmdfile.set_single(t, "SCAN", "2"))
    assert stamp(etc) != first


INVALID_CHANGES = [
    ("printers.cmd", lambda t: t + "PRINTER BAD PORT=file://../../etc/passwd\n"),
    ("printers.cmd", lambda t: t + "PRINTER BAD PORT=loop:// HEADER=../../x\n"),
    ("printers.cmd", lambda t: cmdfile.set_command(t, "PRINTER", "BAD", {"PORT": "/etc/passwd"})),
    ("printers.cmd", lambda t: cmdfile.remove_command(t, "SETUP", "CHECKS") +
     "PRINTER C PORT=loop:// SETUP=CHECKS\n"),
    ("printers.cmd", lambda t: cmdfile.remove_command(t, "PRINTER", "LOCAL")),  # DEFAULT LOCAL
    ("printers.cmd", lambda t: cmdfile.set_single(t, "DEFAULT", "NOBODY")),
    ("printers.cmd", lambda t: t + 'PRINTER "oops\n'),
    ("printers.cmd", lambda t: t + "NIGHT 0,6\n"),
    ("server.cmd", lambda t: cmdfile.set_single(t, "NIGHT", "5,5")),
    ("server.cmd", lambda t: cmdfile.add_line(t, "SPOOL", "etc")),
    ("server.cmd", lambda t: cmdfile.set_single(t, "PASSWORD", "plaintext")),
]


@pytest.mark.parametrize(("filename", "change"), INVALID_CHANGES)
def test_edit_refuses_invalid_change_leaving_file_identical(
    etc: Path, filename: str, change: object
) -> None:
    assert callable(change)
    os.chmod(etc / filename, 0o640)
    before = snapshot(etc)
    mtime = (etc / filename).stat().st_mtime_ns
    with pytest.raises(ConfigError) as info:
        edit(etc, filename, change)
    assert info.value.file.endswith(filename) or info.value.file.endswith(".cmd")
    assert snapshot(etc) == before
    assert (etc / filename).stat().st_mtime_ns == mtime
    assert stat.S_IMODE((etc / filename).stat().st_mode) == 0o640


def test_edit_refuses_other_files(etc: Path) -> None:
    with pytest.raises(ConfigError, match="can be edited"):
        edit(etc, "local.hdr", lambda t: "x")
    with pytest.raises(ConfigError, match="can be edited"):
        edit(etc, "../x.cmd", lambda t: "x")


def test_edit_errors_from_the_change_leave_the_file(etc: Path) -> None:
    before = snapshot(etc)
    with pytest.raises(NotFound):
        edit(etc, "printers.cmd",
             lambda t: cmdfile.update_command(t, "PRINTER", "NOPE", {"BAUD": "1"}))
    assert snapshot(etc) == before


def test_edit_does_not_overwrite_a_concurrent_change(etc: Path) -> None:
    path = etc / "server.cmd"

    def change(text: str) -> str:
        path.write_text(text + "LEASE 60\n")  # someone else, meanwhile
        return cmdfile.set_single(text, "SCAN", "3")

    with pytest.raises(ConfigError, match="changed by someone else"):
        edit(etc, "server.cmd", change)
    assert path.read_text().endswith("LEASE 60\n")
    assert [p.name for p in etc.iterdir() if p.name.startswith(".")] == []


def test_edit_through_a_symlink_edits_the_target(etc: Path, tmp_path: Path) -> None:
    real = tmp_path / "real-server.cmd"
    real.write_text((etc / "server.cmd").read_text())
    (etc / "server.cmd").unlink()
    (etc / "server.cmd").symlink_to(real)
    edit(etc, "server.cmd", lambda t: cmdfile.set_single(t, "SCAN", "4"))
    assert (etc / "server.cmd").is_symlink()
    assert "SCAN 4" in real.read_text()


def test_edit_creates_a_missing_file(etc: Path) -> None:
    (etc / "server.cmd").unlink()
    config = edit(etc, "server.cmd", lambda t: t + "NIGHT 1,3\n")
    assert config.server.night == (1, 3)
    assert stat.S_IMODE((etc / "server.cmd").stat().st_mode) == 0o600


def test_edit_without_change_writes_nothing(etc: Path) -> None:
    mtime = (etc / "server.cmd").stat().st_mtime_ns
    ino = (etc / "server.cmd").stat().st_ino
    edit(etc, "server.cmd", lambda t: t)
    assert (etc / "server.cmd").stat().st_mtime_ns == mtime
    assert (etc / "server.cmd").stat().st_ino == ino


# ---------------------------------------------------------------------------
# Fuzzing the whole loader: nothing but ConfigError


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(server=st.text(max_size=120), printers=st.text(max_size=200))
def test_parse_config_never_raises_anything_but_config_error(
    tmp_path: Path, server: str, printers: str
) -> None:
    try:
        parse_config(tmp_path / "etc", server, printers)
    except ConfigError:
        pass


_pline = st.lists(st.sampled_from([
    "PRINTER A", "PRINTER B", "PORT=loop://", "PORT=file://../out.prn", "PORT=file:///x",
    "PORT=sim://S?out=o", "SETUP=S", "SETUP S", "CLASS=A", "CLASS=C", "DEFAULT C",
    "DEFAULT A", "HEADER=NONE", "HEADER=H", "SETUP STANDARD", "LENGTH=9",
]), min_size=1, max_size=5).map(" ".join)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_pline, max_size=6))
def test_parse_config_fuzz_with_printer_words(tmp_path: Path, lines: list[str]) -> None:
    try:
        config = parse_config(tmp_path / "etc", "", "\n".join(lines))
    except ConfigError:
        return
    config.validate()


# ---------------------------------------------------------------------------
# Passwords


def test_password_round_trip() -> None:
    stored = passwords.hash_password("corréct horse")
    assert passwords.valid_hash(stored)
    assert stored.startswith("scrypt$16384$8$1$")
    assert passwords.verify_password("corréct horse", stored)
    assert passwords.verify_password("corre\u0301ct horse", stored)  # NFC
    assert not passwords.verify_password("correct horse", stored)
    assert not passwords.verify_password("", stored)
    assert "horse" not in stored


def test_password_hashes_differ_per_salt() -> None:
    a, b = passwords.hash_password("pw"), passwords.hash_password("pw")
    assert a != b
    assert a.split("$")[4] != b.split("$")[4]
    assert passwords.verify_password("pw", a) and passwords.verify_password("pw", b)


def test_empty_or_huge_password_is_refused() -> None:
    with pytest.raises(ValidationError):
        passwords.hash_password("")
    with pytest.raises(ValidationError):
        passwords.hash_password("x" * 2000)


@pytest.mark.parametrize("stored", [
    "", "plain", "scrypt$", "scrypt$16384$8$1$salt", "scrypt$16384$8$1$!!!!$" + "C" * 43,
    "scrypt$16385$8$1$" + "B" * 22 + "$" + "C" * 43,          # n not a power of two
    "scrypt$1073741824$8$1$" + "B" * 22 + "$" + "C" * 43,     # gigabytes of memory
    "scrypt$16384$8$1$" + "B" * 22 + "$" + "C" * 10,          # short hash
    "scrypt$16384$0$1$" + "B" * 22 + "$" + "C" * 43,
    QHASH,
])
def test_malformed_hashes(stored: str) -> None:
    assert not passwords.valid_hash(stored)
    assert not passwords.verify_password("pw", stored)


def test_hash_stored_in_server_cmd(etc: Path) -> None:
    stored = passwords.hash_password("console")
    config = edit(etc, "server.cmd", lambda t: cmdfile.set_single(t, "PASSWORD", stored))
    assert config.server.password_hash == stored
    assert passwords.verify_password("console", load(etc).server.password_hash or "")


def test_queue_password_proof() -> None:
    stored = passwords.hash_queue_password("queue pw")
    assert passwords.valid_queue_hash(stored) and stored.startswith("qscrypt$16384$8$1$")
    assert not passwords.valid_hash(stored)
    job = "01HZZZZZZZZZZZZZZZ"
    proof = passwords.queue_proof("queue pw", job)
    assert len(proof) == 64 and "queue" not in proof
    assert passwords.verify_queue_proof(stored, proof, job)
    assert not passwords.verify_queue_proof(stored, proof, job[:-1] + "0")
    assert not passwords.verify_queue_proof(stored, passwords.queue_proof("wrong", job), job)
    assert not passwords.verify_queue_proof(stored, proof.upper(), job)
    assert not passwords.verify_queue_proof(stored, "", job)
    assert not passwords.verify_queue_proof("qscrypt$1$1$1$AAAA", proof, job)
    assert not passwords.verify_queue_proof(passwords.hash_password("queue pw"), proof, job)
    # The station needs nothing the server keeps: same password, same key.
    assert passwords.hash_queue_password("queue pw") == stored


def test_queue_hash_stored_in_printers_cmd(etc: Path) -> None:
    stored = passwords.hash_queue_password("q")
    config = edit(etc, "printers.cmd",
                  lambda t: cmdfile.update_command(t, "PRINTER", "LOCAL", {"PASSWORD": stored}))
    assert config.printers["LOCAL"].password_hash == stored


def test_the_embedded_default_is_the_repositorys_etc(tmp_path: Path) -> None:
    """`printnet init` copies the top-level etc/ byte for byte (one copy, no other)."""
    from printnet.config import DEFAULT_FILES, defaults_folder

    repo_etc = Path(__file__).resolve().parent.parent / "etc"
    assert Path(str(defaults_folder())).resolve() == repo_etc
    etc = tmp_path / "etc"
    write_defaults(etc)
    for name, _mode in DEFAULT_FILES:
        assert (etc / name).read_bytes() == (repo_etc / name).read_bytes(), name
    assert not (Path(__file__).resolve().parent.parent / "printnet" / "defaults").exists()


def test_the_shipped_gateway_cmd_is_valid_and_trusts_this_host_only(tmp_path: Path) -> None:
    from printnet.gateway import settings as gateway_settings

    etc = tmp_path / "etc"
    write_defaults(etc)
    s = gateway_settings.load(etc)
    assert s.auth == "trust"
    assert [str(n) for n in s.networks] == ["127.0.0.0/8", "::1/128"]
