"""Title-page logos per site: {site}, {station} and {logo} on header pages.

Unit tests of the pure header page, the configuration's LOGO=/SITE checks, and a
real server whose printed bytes (a simulated printer's output file) are the
oracle: the central office sees which branch sent a job.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers_e2e import (
    SETUPS,
    ServerProcess,
    done_records,
    logs,
    make_etc,
    published,
    server_env,
    start_server,
    wait_for,
    write_atomic_text,
)

from printnet.api import Station
from printnet.config import load, logo_text
from printnet.errors import ConfigError
from printnet.model import decode_request
from printnet.printers.banner import block_letters, header_page, logo_lines
from printnet.spool.layout import Spool

TEMPLATE = "Site: {site}   Station: {station}\n{logo}\n-- end of header --\n"
HQ_ART = " _  _  ___\n| || |/ _ \\\n| __ | (_) |\n|_||_|\\__\\_\\\n"
BRANCH2_ART = "<<<< BRANCH TWO >>>>\n#  the river office  #\n"
P2_ART = "[ printer two's own art ]\n"


def test_header_page_names_the_site_and_draws_the_logo() -> None:
    lines = header_page({"site": "BRANCH2", "station": "ws7"}, template=TEMPLATE,
                        width=40, length=20, logo=BRANCH2_ART)
    assert lines == ["Site: BRANCH2   Station: ws7", "<<<< BRANCH TWO >>>>",
                     "#  the river office  #", "-- end of header --"]


def test_without_a_logo_file_the_site_name_is_drawn_in_block_letters() -> None:
    lines = header_page({"site": "BR2"}, template="{logo}\n", width=40, length=20)
    letters = block_letters("BR2", width=40)
    pad = " " * ((40 - max(len(r) for r in letters)) // 2)
    assert lines == [pad + r if r else r for r in letters]
    assert header_page({}, template="x{logo}y\n", width=40, length=20) == ["x", "y"]


def test_a_logo_is_cleaned_cut_to_the_page_and_leaves_the_banner_its_room() -> None:
    art = "\x1b[31mred\x07\n" + "w" * 100 + "\n" + "\n".join(["row"] * 80)
    rows = logo_lines(art, "", width=30)
    assert rows[0] == "[31mred" and rows[1] == "w" * 30 and len(rows) == 40
    # {banner} shares what {logo} leaves: on a 20-line page the user's name is drawn
    # at double size (14 rows) alone, at single size (7) below a 7-row logo.
    alone = header_page({"user": "al"}, template="{banner}\n", width=80, length=20)
    page = header_page({"user": "al"}, template="{logo}\n{banner}\n", width=80, length=20,
                       logo="\n".join(["L"] * 7))
    assert len(alone) == 14
    assert page[:7] == ["L"] * 7 and len(page) == 7 + 7


def _etc(tmp: Path, printers: str, site: str = "SITE HQ LOGO=hq-art.txt\n") -> Path:
    root = tmp / "spool"
    Spool.init(root)
    etc = make_etc(tmp / "proj", "HQS", [root], [], extra_server=site)
    (etc / "logohdr.hdr").write_text(TEMPLATE)
    (etc / "hq-art.txt").write_text(HQ_ART)
    (etc / "branch2.logo").write_text(BRANCH2_ART)
    (etc / "p2.logo").write_text(P2_ART)
    write_atomic_text(etc / "printers.cmd", printers + SETUPS)
    return etc


def test_logo_settings_are_checked_with_file_and_line(tmp_path: Path) -> None:
    etc = _etc(tmp_path, "PRINTER P1 PORT=file://../p1.prn LOGO=nosuch.logo\n")
    with pytest.raises(ConfigError, match=r"printers\.cmd:1: PRINTER P1: LOGO=nosuch\.logo: "
                       r".*not found"):
        load(etc)
    write_atomic_text(etc / "printers.cmd", "PRINTER P1 PORT=file://../p1.prn "
                      "LOGO=../../../etc/passwd\n" + SETUPS)
    with pytest.raises(ConfigError, match=r"printers\.cmd:1: .*outside the project folder"):
        load(etc)
    write_atomic_text(etc / "printers.cmd", "PRINTER P1 PORT=file://../p1.prn\n" + SETUPS)
    (etc / "server.cmd").write_text((etc / "server.cmd").read_text().replace(
        "LOGO=hq-art.txt", "LOGO=gone.txt"))
    with pytest.raises(ConfigError, match=r"server\.cmd:\d+: SITE LOGO=gone\.txt: .*not found"):
        load(etc)


def test_logo_text_chooses_by_the_jobs_site(tmp_path: Path) -> None:
    etc = _etc(tmp_path, "PRINTER P1 PORT=file://../p1.prn\n"
                         "PRINTER P2 PORT=file://../p2.prn LOGO=p2.logo\n")
    config = load(etc)
    p1, p2 = config.printers["P1"], config.printers["P2"]
    assert config.server.site == "HQ"
    assert logo_text(config, p1, "HQ") == HQ_ART  # ours: SITE LOGO=
    assert logo_text(config, p1, None) == HQ_ART
    assert logo_text(config, p2, "HQ") == P2_ART  # the printer's LOGO= first
    assert logo_text(config, p2, "BRANCH2") == BRANCH2_ART  # a branch's own file
    assert logo_text(config, p1, "BRANCH3") is None  # none: its name in block letters


@pytest.fixture
def servers() -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for s in started:
        if s.poll() is None:
            s.kill9()


def test_the_central_office_sees_which_branch_sent_a_job(
        tmp_path: Path, servers: list[ServerProcess]) -> None:
    out1, out2 = tmp_path / "proj" / "p1.prn", tmp_path / "proj" / "p2.prn"
    etc = _etc(tmp_path,
               f"PRINTER P1 PORT=sim://P1?out={out1}&baud=inf HEADER=LOGOHDR\n"
               f"PRINTER P2 PORT=sim://P2?out={out2}&baud=inf HEADER=LOGOHDR LOGO=p2.logo\n")
    root = tmp_path / "spool"
    servers.append(start_server(etc, "HQS", env=server_env(tmp_path / "run")))
    wait_for(lambda: published(root, "HQS"), 30, "HQS up", on_timeout=lambda: logs(servers))

    # A branch's station (its own etc/ says SITE BRANCH2) submits into this spool, as a
    # forwarded request arrives: the request carries its site.
    branch_etc = tmp_path / "branch" / "etc"
    branch_etc.mkdir(parents=True)
    (branch_etc / "server.cmd").write_text("SERVER NAME=BR2\nSITE BRANCH2\n")
    (branch_etc / "printers.cmd").write_text("PRINTER P1 PORT=file://../x.prn\n"
                                             "PRINTER P2 PORT=file://../y.prn\n")
    doc = tmp_path / "doc.txt"
    doc.write_text("the document\n")
    [from_branch] = Station(root, branch_etc, station="river-ws").submit([doc], printer="P1")
    branch3_etc = tmp_path / "branch3" / "etc"
    branch3_etc.mkdir(parents=True)
    (branch3_etc / "server.cmd").write_text("SERVER NAME=BR3\nSITE BRANCH3\n")
    (branch3_etc / "printers.cmd").write_text("PRINTER P1 PORT=file://../x.prn\n")
    [from_branch3] = Station(root, branch3_etc, station="ws3").submit([doc], printer="P1")
    [here] = Station(root, station="hq-ws").submit([doc], printer="P1")
    [here_p2] = Station(root, station="hq-ws").submit([doc], printer="P2")
    req = decode_request((root / "new" / f"{from_branch.id}.req").read_bytes()) \
        if (root / "new" / f"{from_branch.id}.req").exists() else from_branch
    assert getattr(req, "site", None) == "BRANCH2"
    assert here.site == "HQ"  # learned from the server's status file
    ids = {from_branch.id, from_branch3.id, here.id, here_p2.id}
    wait_for(lambda: ids <= set(done_records(root)), 60, "the jobs printed",
             on_timeout=lambda: logs(servers))

    printed = out1.read_bytes().decode("latin-1")
    pages = printed.split("\f")
    by_station = {st: next(p for p in pages if f"Station: {st}" in p)
                  for st in ("river-ws", "ws3", "hq-ws")}
    assert "Site: BRANCH2   Station: river-ws\r\n<<<< BRANCH TWO >>>>\r\n" \
           "#  the river office  #\r\n-- end of header --" in by_station["river-ws"]
    assert "Site: HQ   Station: hq-ws\r\n" + HQ_ART.rstrip("\n").replace("\n", "\r\n") \
        in by_station["hq-ws"]
    p2_page = out2.read_bytes().decode("latin-1")
    assert "Site: HQ   Station: hq-ws\r\n[ printer two's own art ]\r\n" in p2_page
    # BRANCH3 has no logo here: its name in block letters, centred.
    assert "Site: BRANCH3   Station: ws3" in by_station["ws3"]
    rows = [r for r in block_letters("BRANCH3", width=80) if r]
    pad = " " * ((80 - max(len(r) for r in rows)) // 2)
    assert "\r\n".join(pad + r for r in rows[:3]) in by_station["ws3"]
    assert "HQ" not in by_station["ws3"].split("Station: ws3", 1)[1].split("-- end")[0]
