"""Page quotas, per-job limits, held expiry and the free-space guard.

The arithmetic (`printnet.quota`) is tested with "now" as a parameter; the
server side (`printnet.spool.admission` in a real `Server`, stepped with
`tick()`) with real spools, real printers writing files, and the CLI.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from conftest import CliRun, make_ids, make_job

from printnet import config as config_mod
from printnet.masterfile import MasterState
from printnet.model import JobState
from printnet.quota import (
    OverAction,
    Period,
    QuotaRule,
    UsageBook,
    check_quota,
    expired,
    expiry_reason,
    held_since,
    live_usage,
    period_start,
    policy_held,
)
from printnet.server import Server
from printnet.spool import master as master_io
from printnet.spool.layout import Spool

CET = timezone(timedelta(hours=1))
NOW = datetime(2026, 3, 4, 15, 30, tzinfo=CET)  # a Wednesday


def no_groups(user: str) -> frozenset[str]:
    return frozenset()


def line(job: str, user: str, pages: int, finished: datetime, printer: str = "LP",
         **extra: Any) -> dict[str, Any]:
    return {"job": job, "user": user, "printer": printer, "pages": pages,
            "finished": finished.astimezone(UTC).isoformat().replace("+00:00", "Z"), **extra}


# ---------------------------------------------------------------------------
# Arithmetic


def test_periods_start_at_local_midnight_monday_and_the_first() -> None:
    assert period_start(Period.DAY, NOW) == datetime(2026, 3, 4, tzinfo=CET)
    assert period_start(Period.WEEK, NOW) == datetime(2026, 3, 2, tzinfo=CET)
    assert period_start(Period.MONTH, NOW) == datetime(2026, 3, 1, tzinfo=CET)
    monday = datetime(2026, 3, 2, 0, 0, tzinfo=CET)
    assert period_start(Period.WEEK, monday) == monday


def test_usage_book_counts_per_user_printer_and_period() -> None:
    book = UsageBook()
    taken = book.feed([
        line("A", "alice", 10, NOW - timedelta(hours=1)),
        line("B", "alice", 20, NOW - timedelta(days=3), printer="LASER"),  # last week
        line("C", "alice", 5, NOW - timedelta(days=1), printer="LASER"),
        line("D", "bob", 7, NOW),
        {"job": "E", "user": "alice"},  # not an accounting line
        line("F", "alice", -1, NOW),  # negative pages: corrupt
    ])
    assert taken == 4
    week = period_start(Period.WEEK, NOW)
    assert book.used("alice", week) == 15
    assert book.used("alice", week, "LASER") == 5
    assert book.used("alice", period_start(Period.MONTH, NOW)) == 35
    assert book.used("bob", week) == 7
    book.prune(week)
    assert book.ids == {"A", "C", "D"}
    assert book.used("alice", datetime.min.replace(tzinfo=UTC)) == 15


def test_the_note_says_how_many_pages_of_how_many() -> None:
    rule = QuotaRule("*", 100, Period.WEEK)
    book = UsageBook()
    book.feed([line("A", "alice", 90, NOW - timedelta(hours=2))])
    live = {("alice", "*"): 10}
    verdict = check_quota([rule], user="alice", destination="LP", pages=20, book=book,
                          live=live, now_local=NOW, groups=no_groups)
    assert verdict is not None and not verdict.reject
    assert verdict.note == "Quota exceeded: 120 of 100 pages this week"
    assert check_quota([rule], user="alice", destination="LP", pages=0, book=book, live=live,
                       now_local=NOW, groups=no_groups) is None
    # Next week the old line no longer counts.
    assert check_quota([rule], user="alice", destination="LP", pages=20, book=book,
                       live={}, now_local=NOW + timedelta(days=6), groups=no_groups) is None


def test_rules_match_users_groups_and_printers() -> None:
    rules = [
        QuotaRule("@students", 10, Period.DAY, action=OverAction.HOLD),
        QuotaRule("alice", 50, Period.MONTH, printer="LASER", action=OverAction.REJECT),
    ]

    def groups(user: str) -> frozenset[str]:
        return frozenset({"students"}) if user in ("alice", "carol") else frozenset()

    book = UsageBook()

    def verdict(user: str, dest: str, pages: int) -> str | None:
        v = check_quota(rules, user=user, destination=dest, pages=pages, book=book, live={},
                        now_local=NOW, groups=groups)
        return None if v is None else ("reject: " if v.reject else "hold: ") + v.note

    assert verdict("bob", "LP", 500) is None  # no rule for bob
    assert verdict("carol", "LP", 11) == "hold: Quota exceeded: 11 of 10 pages today"
    assert verdict("alice", "LP", 9) is None
    # Both rules broken: the rejecting one wins.
    assert verdict("alice", "LASER", 60) == (
        "reject: Quota exceeded: 60 of 50 pages this month on LASER")


def test_live_jobs_count_unless_held_by_policy_or_already_accounted() -> None:
    a, b, c, d = make_ids(4)
    state = MasterState([
        make_job(a, pages=5),
        make_job(b, pages=7, state=JobState.HELD, note="Quota exceeded: 12 of 10 pages today"),
        make_job(c, pages=3, destination="CLASS1", assigned="LP"),
        make_job(d, pages=4),
    ])
    usage = live_usage(state, accounted={d})
    assert usage[("alice", "*")] == 8  # a + c: b waits for its quota, d has its line
    assert usage[("alice", "LOCAL")] == 5
    assert usage[("alice", "CLASS1")] == usage[("alice", "LP")] == 3  # asked, and printing
    assert policy_held(state.jobs[b]) and not policy_held(state.jobs[a])


def test_expiry_uses_the_time_a_job_was_held() -> None:
    a, b, c = make_ids(3)
    old = (NOW - timedelta(hours=80)).astimezone(UTC).isoformat()
    recent = (NOW - timedelta(hours=1)).astimezone(UTC).isoformat()
    state = MasterState([
        make_job(a, state=JobState.HELD, submitted=old),  # held since submission
        make_job(b, state=JobState.HELD, submitted=old, held_at=recent),
        make_job(c, submitted=old),  # pending: never expires
    ])
    assert held_since(state.jobs[b]) == NOW - timedelta(hours=1)
    assert [j.id for j in expired(state, 72 * 3600, NOW)] == [a]
    assert expiry_reason(72 * 3600) == "canceled: held longer than 72 hours (HELDEXPIRY)"


def test_quota_and_limits_configuration() -> None:
    from printnet.errors import ConfigError

    etc = Path("/nonexistent/etc")
    server = ("QUOTA * PAGES=100\nQUOTA @staff PAGES=20 PER=DAY PRINTER=lp ACTION=reject\n"
              "HELDEXPIRY 1.5\nMINFREE 100\nOPERATORS root,@lpadmin\n")
    printers = "PRINTER LP PORT=loop:// MAXFILE=1M OVERLIMIT=HOLD\n"
    cfg = config_mod.parse_config(etc, server, printers)
    assert cfg.server.quotas == (
        QuotaRule("*", 100, Period.WEEK),
        QuotaRule("@staff", 20, Period.DAY, "LP", OverAction.REJECT),
    )
    assert cfg.server.held_expiry == 5400.0 and cfg.server.min_free == 100 << 20
    assert cfg.server.operators == ("root", "@lpadmin")
    assert cfg.printers["LP"].max_file == 1 << 20
    assert cfg.printers["LP"].over_limit is OverAction.HOLD
    for bad, message in [
        ("QUOTA * PAGES=1\nQUOTA * PAGES=2\n", "a second rule for the same period"),
        ("QUOTA * PAGES=1 PER=YEAR\n", "PER='YEAR': must be one of DAY WEEK MONTH"),
        ("QUOTA a/b PAGES=1\n", "must be * (everyone), a user name, or @group"),
        ("QUOTA *\n", "missing required key PAGES="),
        ("OPERATORS @\n", "is not a valid user name or @group"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(message)):
            config_mod.parse_config(etc, bad, printers)


# ---------------------------------------------------------------------------
# A real server, stepped


def configure(etc: Path, server: str = "", printers: str = "") -> None:
    """Test settings: fast scans, LP and PARKED printers writing files."""
    (etc / "server.cmd").write_text(f"SERVER NAME=Q\nSPOOL spool\nSCAN 0.05\nLEASE 5\n{server}")
    (etc / "printers.cmd").write_text(
        "PRINTER LP PORT=file://../output/LP.prn HEADER=NONE\n"
        "PRINTER PARKED PORT=file://../output/PARKED.prn HEADER=NONE STOPPED=YES\n"
        "SETUP STANDARD FORM=PLAIN LENGTH=10 WIDTH=80\nDEFAULT LP\n" + printers)
    (etc.parent / "output").mkdir(exist_ok=True)


@contextmanager
def running(etc: Path, clock: Callable[[], datetime] | None = None) -> Iterator[Server]:
    kwargs: dict[str, Any] = {} if clock is None else {"clock": clock}
    server = Server(config_mod.load(etc), **kwargs)
    server.start()
    try:
        yield server
    finally:
        server.shutdown(requeue=True)


def until(server: Server, what: str, probe: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        server.tick()
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def submit(run_cli: CliRun, *args: str, body: bytes = b"x\n", tmp: Path) -> str:
    src = tmp / f"src{time.monotonic_ns()}.txt"
    src.write_bytes(body)
    result = run_cli("request", *args, str(src))
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


def done(spool: Spool, job_id: str) -> Callable[[], dict[str, Any] | None]:
    def probe() -> dict[str, Any] | None:
        path = spool.done / f"{job_id}.json"
        return json.loads(path.read_text()) if path.exists() else None
    return probe


def live(spool: Spool, job_id: str) -> Callable[[], Any]:
    return lambda: master_io.load(spool).jobs.get(job_id)


def test_over_quota_jobs_are_held_with_the_reason_and_released_by_an_operator(
    spool: Spool, etc: Path, run_cli: CliRun, tmp_path: Path,
) -> None:
    configure(etc, "QUOTA * PAGES=5 PER=WEEK\n")
    first = submit(run_cli, body=b"a\n" * 25, tmp=tmp_path)  # 4 pages
    second = submit(run_cli, body=b"b\n" * 15, tmp=tmp_path)  # 2 pages: 6 > 5
    with running(etc) as server:
        record = until(server, "the first job", done(spool, first))
        assert record["outcome"] == "completed" and record["pages"] == 4
        job = until(server, "the second job", live(spool, second))
        assert job.state is JobState.HELD and job.pages == 2
        assert job.note == "Quota exceeded: 6 of 5 pages this week"
        status = run_cli("status", second)
        assert "Quota exceeded: 6 of 5 pages this week" in status.stdout
        # root is an operator (the default OPERATORS): its release overrides.
        result = run_cli("release", "--wait", "0", second)
        assert result.exit_code == 0
        assert until(server, "the released job", done(spool, second))["outcome"] == "completed"


def test_a_quota_held_job_is_released_when_it_fits_again(
    spool: Spool, etc: Path, run_cli: CliRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("printnet.spool.admission.POLICY_INTERVAL", 0.1)  # not every 10 s
    configure(etc, "QUOTA * PAGES=5 PER=DAY\n")
    now = [datetime.now().astimezone()]
    first = submit(run_cli, body=b"a\n" * 25, tmp=tmp_path)  # 4 pages
    second = submit(run_cli, body=b"b\n" * 15, tmp=tmp_path)  # 2 pages: held
    with running(etc, clock=lambda: now[0]) as server:
        until(server, "the first job", done(spool, first))
        assert until(server, "the second job", live(spool, second)).state is JobState.HELD
        now[0] += timedelta(days=1)  # a new day: yesterday's 4 pages no longer count
        record = until(server, "the second job to print", done(spool, second))
        assert record["outcome"] == "completed"


def test_quota_reject_action_rejects_with_the_reason(
    spool: Spool, etc: Path, run_cli: CliRun, tmp_path: Path,
) -> None:
    configure(etc, "QUOTA root PAGES=1 PER=MONTH PRINTER=LP ACTION=REJECT\n")
    job_id = submit(run_cli, body=b"a\n" * 15, tmp=tmp_path)  # 2 pages
    parked = submit(run_cli, "-P", "PARKED", body=b"a\n" * 15, tmp=tmp_path)  # other printer
    with running(etc) as server:
        reason_path = spool.rejected / f"{job_id}.req.reason"
        until(server, "the rejection", reason_path.exists)
        assert "Quota exceeded: 2 of 1 pages this month on LP" in reason_path.read_text()
        assert until(server, "the parked job", live(spool, parked)).state is JobState.PENDING
        assert job_id not in master_io.load(spool).jobs
    status = run_cli("status", job_id)
    assert "rejected" in status.stdout and "Quota exceeded" in status.stdout


def test_held_jobs_expire_with_a_note(
    spool: Spool, etc: Path, run_cli: CliRun, tmp_path: Path,
) -> None:
    configure(etc, "HELDEXPIRY 0.0004\n")  # 1.44 s
    held = submit(run_cli, "--hold", tmp=tmp_path)
    parked = submit(run_cli, "-P", "PARKED", tmp=tmp_path)  # pending: never expires
    with running(etc) as server:
        until(server, "the held job", live(spool, held))
        record = until(server, "the expiry", done(spool, held))
        submitted = datetime.fromisoformat(record["job"]["submitted"].replace("Z", "+00:00"))
        finished = datetime.fromisoformat(record["finished"].replace("Z", "+00:00"))
        assert (finished - submitted).total_seconds() >= 1.44  # not before its time
        assert record["outcome"] == "canceled"
        assert record["reason"] == "canceled: held longer than 0.0004 hours (HELDEXPIRY)"
        assert live(spool, parked)() is not None
    lines = [json.loads(x) for x in spool.accounting.read_text().splitlines()]
    assert [(x["job"], x["outcome"], x["pages"]) for x in lines] == [(held, "canceled", 0)]


def test_the_free_space_guard_refuses_new_requests(
    spool: Spool, etc: Path, run_cli: CliRun, tmp_path: Path,
) -> None:
    configure(etc, "MINFREE 1073741824\n")  # 1 PiB: never that much free
    forged = submit(run_cli, tmp=tmp_path)  # before any server published its guard
    with running(etc) as server:
        reason_path = spool.rejected / f"{forged}.req.reason"
        until(server, "the server-side guard", reason_path.exists)
        assert "below its guard of 1073741824 MiB (MINFREE): not accepting new requests" in \
            reason_path.read_text()
        server.tick()  # its status file now tells stations the guard
        src = tmp_path / "late.txt"
        src.write_text("late\n")
        result = run_cli("request", str(src))
        assert result.exit_code == 1
        assert "below its guard of 1073741824 MiB: not accepting new requests" in result.stderr
    assert sorted(os.listdir(spool.new)) == []


# ---------------------------------------------------------------------------
# Operator verbs and the policy (bugs of issue 12)


def operator(server: Server, *argv: str) -> Any:
    """A console command as the server terminal runs it, answered between ticks."""
    import importlib
    import threading

    console: Any = importlib.import_module("printnet.console")
    if hasattr(console, "Request"):  # the console as one module, on the Server itself
        target: Any = server
        command = console.Request(argv=list(argv))
    else:  # the console package, through the server's operator protocol
        target = importlib.import_module("printnet.operated").OperatedServer(server)
        command = console.Command(argv=list(argv))

    box: list[Any] = []
    thread = threading.Thread(target=lambda: box.append(
        console.Console(target).execute(command)))
    thread.start()
    reply = until(server, f"console {argv[0]}", lambda: box and box[0])
    thread.join()
    return reply


def test_an_operator_hold_stamps_the_hold_time(
    spool: Spool, etc: Path, run_cli: CliRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A 3-day-old job held at the console waits HELDEXPIRY from its hold, not its submit."""
    monkeypatch.setattr("printnet.spool.admission.POLICY_INTERVAL", 0.05)  # look often
    configure(etc, "HELDEXPIRY 24\n")
    old = submit(run_cli, "-P", "PARKED", tmp=tmp_path)  # stays pending: PARKED is stopped
    later = datetime.now().astimezone() + timedelta(days=3)
    with running(etc, clock=lambda: later) as server:
        until(server, "the job", live(spool, old))
        reply = operator(server, "HOLD", old)
        assert reply.ok, reply.error
        job = live(spool, old)()
        assert job.state is JobState.HELD
        since = held_since(job)
        assert since is not None and abs((since - later).total_seconds()) < 1
        deadline = time.monotonic() + 1.0  # many policy looks
        while time.monotonic() < deadline:
            server.tick()
            time.sleep(0.01)
        assert live(spool, old)() is not None, "canceled at once by HELDEXPIRY"
        assert not (spool.done / f"{old}.json").exists()


def test_usage_does_not_count_canceled_jobs() -> None:
    book = UsageBook()
    book.feed([line("A", "alice", 10, NOW, outcome="completed"),
               line("B", "alice", 7, NOW, outcome="canceled"),
               line("C", "alice", 3, NOW, outcome="aborted")])  # printed in part
    assert book.used("alice", period_start(Period.DAY, NOW)) == 13
    assert book.ids == {"A", "B", "C"}  # B's live job is not counted either


def test_an_operator_cancel_is_not_charged_to_the_quota(
    spool: Spool, etc: Path, run_cli: CliRun, tmp_path: Path,
) -> None:
    configure(etc, "QUOTA * PAGES=5 PER=WEEK\n")
    parked = submit(run_cli, "-P", "PARKED", body=b"a\n" * 25, tmp=tmp_path)  # 4 pages
    with running(etc) as server:
        until(server, "the parked job", live(spool, parked))
        reply = operator(server, "CANCEL", parked)
        assert reply.ok, reply.error
        assert until(server, "the cancel", done(spool, parked))["outcome"] == "canceled"
        second = submit(run_cli, body=b"b\n" * 25, tmp=tmp_path)  # 4 pages: fits in 5
        record = until(server, "the second job", done(spool, second))
        assert record["outcome"] == "completed"
