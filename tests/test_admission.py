"""What a job is let in with (printnet.spool.admission), on real spooled jobs: the
printer's per-job limits reject or (OVERLIMIT=HOLD) hold with a note, MINFREE refuses
print requests, pages are counted from the spooled data (and a changed file is
caught), and page quotas hold or refuse at add, in submission order."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from printnet.config import Config, parse_config
from printnet.errors import RequestInvalid
from printnet.masterfile import MasterState
from printnet.model import Format, JobState, PrintRequest, Priority, decode_request
from printnet.quota import LIMIT_NOTE, QUOTA_NOTE
from printnet.spool.admission import Admission
from printnet.spool.layout import Spool
from printnet.spool.submit import Source, Submitter

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
PAGE = "line\n" * 60 + "\f"  # one page of a 66-line setup


def config(tmp_path: Path, server: str = "", printer: str = "") -> Config:
    return parse_config(
        tmp_path / "etc", f"SERVER NAME=S1\nSPOOL spool\n{server}",
        f"PRINTER P1 PORT=loop:// SETUP=STANDARD HEADER=NONE {printer}\n"
        "SETUP STANDARD FORM=PLAIN LENGTH=66 WIDTH=80\n")


def submit(spool: Spool, text: str, *, copies: int = 1, user: str = "root") -> PrintRequest:
    source = spool.root.parent / f"doc-{len(text)}-{copies}.txt"
    source.write_text(text)
    template = PrintRequest(id="0" * 18, user=user, station="ws", submitted=NOW,
                            printer="P1", priority=Priority.STANDARD, copies=copies,
                            title="t", setup=None, header=False, format=Format.TEXT,
                            hold=False)
    req = Submitter(spool, user=user, station="ws").submit(template, [Source("doc", path=source)])
    published = decode_request((spool.new / f"{req.id}.req").read_bytes())
    assert isinstance(published, PrintRequest)
    return published


def admission(spool: Spool, cfg: Config) -> Admission:
    return Admission(spool, lambda: cfg)


def test_over_a_limit_is_rejected_with_the_reason(spool: Spool, tmp_path: Path) -> None:
    adm = admission(spool, config(tmp_path, printer="MAXCOPIES=2 MAXBYTES=100"))
    adm.check(submit(spool, "x\n", copies=2))
    with pytest.raises(RequestInvalid, match="copies: 3 is over P1's limit of 2"):
        adm.check(submit(spool, "x\n", copies=3))
    with pytest.raises(RequestInvalid, match="over P1's limit of 100"):
        adm.check(submit(spool, "y" * 200))


def test_overlimit_hold_lets_the_job_in_held_with_a_note(spool: Spool, tmp_path: Path) -> None:
    adm = admission(spool, config(tmp_path, printer="MAXPAGES=2 OVERLIMIT=HOLD"))
    small, big = submit(spool, PAGE * 2), submit(spool, PAGE * 5)
    adm.check(small)
    adm.check(big)
    jobs, refused = adm.admit([small, big], MasterState(), now_local=NOW)
    assert refused == []
    by_id = {j.id: j for j in jobs}
    assert by_id[small.id].state is JobState.PENDING and by_id[small.id].pages == 2
    held = by_id[big.id]
    assert held.state is JobState.HELD and held.pages == 5
    assert held.note.startswith(LIMIT_NOTE) and "MAXPAGES" in held.note
    assert held.held_at  # HELDEXPIRY counts from the hold


def test_a_file_changed_after_submission_is_caught(spool: Spool, tmp_path: Path) -> None:
    adm = admission(spool, config(tmp_path, printer="MAXPAGES=10"))
    req = submit(spool, PAGE)
    (spool.job_data(req.id) / "0").write_text(PAGE + "more")
    with pytest.raises(RequestInvalid, match="differs from what was submitted"):
        adm.check(req)


def test_minfree_refuses_print_requests(spool: Spool, tmp_path: Path) -> None:
    adm = admission(spool, config(tmp_path, server="MINFREE 1073741823\n"))
    with pytest.raises(RequestInvalid, match="MINFREE"):
        adm.check(submit(spool, "x\n"))


def test_quotas_hold_or_refuse_at_add_in_submission_order(spool: Spool,
                                                         tmp_path: Path) -> None:
    """Three jobs of 2 pages against a quota of 5: the first two fit (counting each
    other as live), the third is held; with ACTION=REJECT it is refused."""
    for action, expect in (("HOLD", "held"), ("REJECT", "refused")):
        cfg = config(tmp_path, server=f"QUOTA * PAGES=5 PER=DAY ACTION={action}\n")
        adm = admission(spool, cfg)
        reqs = [submit(spool, PAGE * 2 + "\n" * i) for i in range(3)]
        for req in reqs:
            adm.check(req)
        jobs, refused = adm.admit(list(reversed(reqs)), MasterState(), now_local=NOW)
        states = {j.id: j for j in jobs}
        assert states[reqs[0].id].state is JobState.PENDING
        assert states[reqs[1].id].state is JobState.PENDING
        if expect == "held":
            third = states[reqs[2].id]
            assert third.state is JobState.HELD and third.note.startswith(QUOTA_NOTE)
            assert refused == []
        else:
            assert reqs[2].id not in states
            assert [r.request.id for r in refused] == [reqs[2].id]
            assert refused[0].reason.startswith(QUOTA_NOTE)


def test_without_quota_or_maxpages_nothing_is_read(spool: Spool, tmp_path: Path) -> None:
    """Pages are counted only when something needs them: a job whose data went
    missing is still let in (the worker's own checks catch it at print time)."""
    adm = admission(spool, config(tmp_path))
    req = submit(spool, PAGE)
    (spool.job_data(req.id) / "0").unlink()
    adm.check(req)
    [job], _ = adm.admit([req], MasterState(), now_local=NOW)
    assert job.pages == 0 and job.state is JobState.PENDING
