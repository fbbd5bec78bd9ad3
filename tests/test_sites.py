"""Forwarding between sites, exactly once (docs/SITES.md): the receiving side's
put-if-absent (`printnet.spool.forward`) on real files, the ``spool:`` port's
LinkDown, and the branch's done records.  The end-to-end tests with real
processes (branch server, central gateway and server, link cuts, kill -9) are
in tests/test_sites_e2e.py.
"""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from printnet.errors import LinkDown, PortError
from printnet.model import Format, PrintRequest, Priority, decode_request
from printnet.printers import spool_port
from printnet.printers.ports import FORWARD, port_kind, scheme
from printnet.settings import PrinterConfig
from printnet.spool import forward
from printnet.spool.layout import Spool
from printnet.spool.submit import new_id


def central(tmp_path: Path) -> Spool:
    spool, _ = Spool.init(tmp_path / "central")
    return spool


def request(job_id: str | None = None, printer: str = "HQLASER") -> PrintRequest:
    return PrintRequest(id=job_id or new_id(), user="alice", station="branch1",
                        submitted=datetime.now(UTC), printer=printer,
                        priority=Priority.HIGH, copies=2, title="Memo", format=Format.TEXT)


def requests_in(spool: Spool) -> list[str]:
    return sorted(n for n in os.listdir(spool.new) if not n.startswith("."))


def test_a_resend_is_recognised_wherever_the_first_copy_is(tmp_path: Path) -> None:
    spool = central(tmp_path)
    req = request()
    files = [("memo.txt", b"hello from the branch\n")]
    assert forward.receive(spool, req, files, origin="B1").new
    # The published request is the branch's job under its own id, with the data here.
    [name] = requests_in(spool)
    assert name == f"{req.id}.req"
    got = decode_request((spool.new / name).read_bytes())
    assert isinstance(got, PrintRequest)
    assert (got.id, got.user, got.station, got.priority, got.copies, got.title) == (
        req.id, "alice", "branch1", Priority.HIGH, 2, "Memo")
    assert (spool.job_data(req.id) / "0").read_bytes() == files[0][1]
    assert forward.remembered(spool, req.id)
    # A resend while it waits in new/: nothing new.
    assert not forward.receive(spool, req, files, origin="B1").new
    assert requests_in(spool) == [name]
    # Claimed by a central server (received/), then finished and its records purged
    # (done/ kept 7 days, the ledger 30): the ledger alone recognises the resend.
    os.rename(spool.new / name, spool.received / name)
    assert not forward.receive(spool, req, files, origin="B1").new
    (spool.received / name).unlink()
    shutil.rmtree(spool.job_data(req.id))
    assert not forward.receive(spool, req, files, origin="B1").new
    assert requests_in(spool) == [] and not spool.job_data(req.id).exists()


def test_an_attempt_that_died_after_publishing_is_recognised_without_its_ledger_record(
        tmp_path: Path) -> None:
    spool = central(tmp_path)
    req = request()
    assert forward.receive(spool, req, [("a", b"x")], origin="B1").new
    # As if the first attempt died after the link into new/, before the ledger record.
    forward.ledger_path(spool, req.id).unlink()
    assert not forward.receive(spool, req, [("a", b"x")], origin="B1").new
    assert forward.remembered(spool, req.id)
    assert len(requests_in(spool)) == 1
    # The same while the job is mid-claim (received/.<id>.req.<unique>) or done.
    for where in (spool.received / f".{req.id}.req.x1", spool.done / f"{req.id}.json"):
        forward.ledger_path(spool, req.id).unlink()
        os.rename(spool.new / f"{req.id}.req", where)
        assert not forward.receive(spool, req, [("a", b"x")], origin="B1").new
        assert requests_in(spool) == []
        os.rename(where, spool.new / f"{req.id}.req")


def test_a_data_folder_left_by_an_attempt_that_died_before_its_request_is_replaced(
        tmp_path: Path) -> None:
    spool = central(tmp_path)
    req = request()
    stale = spool.job_data(req.id)
    stale.mkdir()
    (stale / "0").write_bytes(b"half")
    assert forward.receive(spool, req, [("a", b"the whole document\n")], origin="B1").new
    assert (stale / "0").read_bytes() == b"the whole document\n"
    assert sorted(os.listdir(stale)) == ["0"]
    assert not [n for n in os.listdir(spool.data) if n.startswith(".")]


def test_the_ledger_forgets_after_its_memory(tmp_path: Path) -> None:
    spool = central(tmp_path)
    old, recent = request(), request()
    for r in (old, recent):
        forward.receive(spool, r, [("a", b"x")], origin="B1")
    past = forward.ledger_path(spool, old.id).stat().st_mtime - forward.MEMORY - 60
    os.utime(forward.ledger_path(spool, old.id), (past, past))
    assert forward.purge_ledger(spool) == 1
    assert not forward.remembered(spool, old.id) and forward.remembered(spool, recent.id)


def test_the_spool_port_url_and_kind() -> None:
    target = spool_port.parse_target("spool:/mnt/central/spool?printer=HQLASER")
    assert (target.root, target.printer) == (Path("/mnt/central/spool"), "HQLASER")
    assert spool_port.parse_target("spool:///srv/c?printer=P").root == Path("/srv/c")
    assert scheme("spool:/x?printer=P") == "spool"
    assert port_kind(PrinterConfig(name="HQ", port="spool:/x?printer=P")) is FORWARD
    for bad in ("spool:relative?printer=P", "spool:/x", "spool:/x?printer=P&colour=1",
                "spool:/x?printer=bad name"):
        with pytest.raises(PortError) as info:
            spool_port.parse_target(bad)
        assert not isinstance(info.value, LinkDown)


def test_a_vanished_or_unwritable_share_is_link_down_and_writes_nothing(
        tmp_path: Path) -> None:
    spool = central(tmp_path)
    url = f"spool:{spool.root}?printer=HQLASER"
    req = request()
    moved = tmp_path / "unmounted"
    os.rename(spool.root, moved)  # the share is gone
    with pytest.raises(LinkDown, match="cannot be reached"):
        spool_port.forward(url, req, [b"x"], label="printer HQ", origin="B1")
    os.rename(moved, spool.root)
    if os.geteuid() != 0:  # root writes anyway
        os.chmod(spool.new, 0o555)
        try:
            with pytest.raises(LinkDown, match="not writable"):
                spool_port.forward(url, req, [b"x"], label="printer HQ", origin="B1")
        finally:
            os.chmod(spool.new, 0o3733)
    assert requests_in(spool) == []
    assert spool_port.forward(url, req, [b"x"], label="printer HQ", origin="B1") == req.id
    assert spool_port.forward(url, req, [b"x"], label="printer HQ", origin="B1") == req.id
    assert requests_in(spool) == [f"{req.id}.req"]
    where = spool_port.follow(url, req.id)
    assert where["state"] == "pending"
