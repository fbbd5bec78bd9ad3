"""The spool layout (printnet.spool.layout): init makes every folder with its mode,
is idempotent and never clobbers, refuses a foreign or newer layout and a symlinked
folder; open() accepts only what init made."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from conftest import tree

from printnet.errors import SpoolError
from printnet.spool.layout import (
    DIRS,
    DROP_MODE,
    FILE_MODE,
    PRIVATE_MODE,
    VERSION_TEXT,
    Spool,
    is_visible,
)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_init_makes_every_folder_with_its_mode_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        spool, created = Spool.init(tmp_path / "spool")
    finally:
        os.umask(old)
    assert sorted(p.name for p in created) == sorted(["spool", "VERSION", *DIRS])
    assert (spool.root / "VERSION").read_text() == VERSION_TEXT
    assert mode(spool.root / "VERSION") == FILE_MODE
    assert mode(spool.root) == PRIVATE_MODE
    for name, want in DIRS.items():
        assert mode(spool.root / name) == want, name
    # The drop folders: setgid, sticky, writable and searchable but not listable by others.
    assert mode(spool.new) == DROP_MODE == 0o3733
    assert mode(spool.received) == 0o755


def test_the_paths_are_where_the_layout_says(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    assert spool.accounting == tmp_path / "log" / "accounting.jsonl"
    assert spool.events == tmp_path / "log" / "events.log"
    assert spool.job_data("X") == tmp_path / "data" / "X"
    for name in DIRS:
        assert getattr(spool, name) == tmp_path / name


def test_init_is_idempotent_never_clobbers_and_repairs_modes(tmp_path: Path) -> None:
    spool, _ = Spool.init(tmp_path / "spool")
    (spool.done / "keep.json").write_text("{}")
    os.chmod(spool.new, 0o777)
    before = tree(spool.root)
    again, created = Spool.init(spool.root)
    assert again == spool and created == []
    assert tree(spool.root) == before
    assert (spool.done / "keep.json").read_text() == "{}"
    assert mode(spool.new) == DROP_MODE


def test_open_needs_a_spool_that_init_made(tmp_path: Path) -> None:
    with pytest.raises(SpoolError, match=r"not a printnet spool.*printnet init"):
        Spool.open(tmp_path)
    spool, _ = Spool.init(tmp_path / "spool")
    assert Spool.open(spool.root) == spool


@pytest.mark.parametrize("text", ["printnet-spool 2\n", "something else\n", ""])
def test_an_unknown_layout_is_refused_by_open_and_init(tmp_path: Path, text: str) -> None:
    spool, _ = Spool.init(tmp_path / "spool")
    (spool.root / "VERSION").write_text(text)
    with pytest.raises(SpoolError, match="spool layout"):
        Spool.open(spool.root)
    with pytest.raises(SpoolError, match="spool layout"):
        Spool.init(spool.root)
    assert (spool.root / "VERSION").read_text() == text  # never rewritten


def test_a_symlinked_folder_is_refused(tmp_path: Path) -> None:
    spool, _ = Spool.init(tmp_path / "spool")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.rmdir(spool.done)
    os.symlink(elsewhere, spool.done)
    with pytest.raises(SpoolError, match="symbolic link"):
        Spool.init(spool.root)


def test_the_spool_itself_may_be_reached_through_a_link(tmp_path: Path) -> None:
    spool, _ = Spool.init(tmp_path / "real")
    os.symlink(spool.root, tmp_path / "link")
    linked, created = Spool.init(tmp_path / "link")
    assert created == [] and Spool.open(linked.root).done.is_dir()


def test_a_spool_that_cannot_be_created_says_so(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SpoolError, match="cannot create spool"):
        Spool.init(blocker / "spool")


@pytest.mark.parametrize(("name", "visible"), [
    ("01ABC.req", True), (".tmp.1.host.2.3.abc", False), (".nfs0000001", False),
    ("x.reason", True),
])
def test_temp_and_nfs_names_are_not_published(name: str, visible: bool) -> None:
    assert is_visible(name) is visible
