"""Module test for spool.site: the published site configuration stations read."""

from __future__ import annotations

import json
import os
from pathlib import Path

from printnet import config as config_mod
from printnet.api import Station, server_files
from printnet.passwords import hash_queue_password
from printnet.spool.layout import Spool
from printnet.spool.site import publish_site, read_sites, site_default


def _etc(folder: Path, name: str, printers: str) -> config_mod.Config:
    folder.mkdir(parents=True)
    (folder / "server.cmd").write_text(f"SERVER NAME={name}\nSPOOL ../spool\n")
    (folder / "printers.cmd").write_text(
        printers + "SETUP STANDARD FORM=PLAIN LENGTH=66 WIDTH=80\n")
    return config_mod.load(folder)


def test_publish_writes_names_only_and_is_idempotent(spool: Spool, tmp_path: Path) -> None:
    secret = hash_queue_password("sesame")
    cfg = _etc(tmp_path / "a" / "etc", "ALPHA",
               f"PRINTER P1 PORT=loop:// CLASS=LINES PASSWORD={secret}\nDEFAULT LINES\n")
    path = publish_site(spool, cfg)
    assert path == spool.servers / "ALPHA.site.json"
    record = json.loads(path.read_text())
    assert record["default"] == "LINES" and record["printers"] == ["P1"]
    assert record["classes"] == {"LINES": ["P1"]}
    assert "qscrypt" not in path.read_text() and "loop" not in path.read_text()
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    os.utime(path, (1, 1))
    publish_site(spool, cfg)
    assert path.stat().st_mtime == 1  # unchanged content: not rewritten
    assert server_files(spool) == []  # a site file is not a server file
    st = Station(spool.root)
    assert st.destinations().known == {"P1", "LINES"}
    assert st.default_destination() == "LINES"


def test_a_renamed_configuration_replaces_its_old_file(spool: Spool, tmp_path: Path) -> None:
    etc = tmp_path / "a" / "etc"
    publish_site(spool, _etc(etc, "OLD", "PRINTER P1 PORT=loop://\n"))
    (etc / "server.cmd").write_text("SERVER NAME=NEW\nSPOOL ../spool\n")
    publish_site(spool, config_mod.load(etc))
    other = _etc(tmp_path / "b" / "etc", "OTHER", "PRINTER P2 PORT=loop://\n")
    publish_site(spool, other)
    assert sorted(os.listdir(spool.servers)) == ["NEW.site.json", "OTHER.site.json"]


def test_the_latest_changed_default_wins_then_the_first_name(spool: Spool,
                                                             tmp_path: Path) -> None:
    a = _etc(tmp_path / "a" / "etc", "BBB", "PRINTER PA PORT=loop://\nDEFAULT PA\n")
    b = _etc(tmp_path / "b" / "etc", "AAA", "PRINTER PB PORT=loop://\nDEFAULT PB\n")
    c = _etc(tmp_path / "c" / "etc", "CCC", "PRINTER PC PORT=loop://\n")  # no DEFAULT
    for cfg, when in ((a, 2000), (b, 1000), (c, 3000)):
        os.utime(cfg.etc / "printers.cmd", (when, when))
        publish_site(spool, cfg)
    sites, problems = read_sites(spool)
    assert problems == [] and len(sites) == 3
    chosen = site_default(sites)
    assert chosen is not None and chosen.default == "PA"  # newest with a DEFAULT
    os.utime(b.etc / "printers.cmd", (2000, 2000))
    publish_site(spool, b)
    chosen = site_default(read_sites(spool)[0])
    assert chosen is not None and chosen.server == "AAA"  # a tie: the first name


def test_bad_site_files_are_reported_not_trusted(spool: Spool) -> None:
    (spool.servers / "X.site.json").write_text("{not json")
    (spool.servers / "Y.site.json").write_text(json.dumps({"kind": "other"}))
    sites, problems = read_sites(spool)
    assert sites == []
    assert [p.split(":")[0] for p in problems] == [str(spool.servers / "X.site.json"),
                                                   str(spool.servers / "Y.site.json")]


def test_a_running_server_publishes_its_site_file_and_purges_abandoned_copies(
        tmp_path: Path) -> None:
    """The server's two duties toward stations: servers/<NAME>.site.json at start (and
    after a reload), and data/.<id>.<unique> folders of a dead station's copy removed
    after the grace (their .writer flock is free), not after a day."""
    from helpers_e2e import PrinterSpec, make_etc, server_env, start_server, wait_for

    spool = Spool.init(tmp_path / "spool")[0]
    etc = make_etc(tmp_path / "p", "S1", [spool.root],
                   [PrinterSpec("LOCAL", tmp_path / "p" / "out" / "LOCAL.prn")])
    (etc / "printers.cmd").write_text((etc / "printers.cmd").read_text() + "DEFAULT LOCAL\n")
    abandoned = spool.data / ".01M8VQ4JT4864KGJZD.dead"
    abandoned.mkdir()
    (abandoned / ".writer").write_text("{}")  # no lock held on it: the writer is gone
    (abandoned / "0").write_bytes(b"x" * 4096)
    old = 1_000_000_000
    os.utime(abandoned, (old, old))
    server = start_server(etc, "S1", env=server_env(tmp_path / "run"))
    try:
        site = spool.servers / "S1.site.json"
        wait_for(site.exists, 60, "the site file", on_timeout=server.log_text)
        assert json.loads(site.read_text())["default"] == "LOCAL"
        wait_for(lambda: not abandoned.exists(), 60, "the abandoned copy purged",
                 on_timeout=server.log_text)
    finally:
        server.stop()


def test_a_station_takes_its_own_etc_from_the_site_published_from_the_same_texts(
        spool: Spool, tmp_path: Path) -> None:
    """`printnet request` skips parsing etc/ (most of its start-up) when a site file
    was made from exactly its texts; changed texts are parsed again, never trusted."""
    import subprocess
    import sys

    etc = tmp_path / "etc"
    publish_site(spool, _etc(etc, "S1", "PRINTER P1 PORT=loop://\n"))
    probe = ("import sys; from pathlib import Path; from printnet.api import Station; "
             f"d = Station(Path({str(spool.root)!r}), Path({str(etc)!r}), strict=True)"
             ".destinations(); print(sorted(d.printers), 'printnet.config' in sys.modules)")

    def run() -> str:
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                             check=True, cwd=tmp_path)
        return out.stdout.strip()

    assert run() == "['P1'] False"
    # Edited after publication (no server reloaded yet): the station reads etc/ itself.
    with open(etc / "printers.cmd", "a") as fh:
        fh.write("PRINTER P2 PORT=loop://\n")
    assert run() == "['P1', 'P2'] True"
