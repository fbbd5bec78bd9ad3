"""The station commands: init, request, status, cancel/hold/release, spool maintenance."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from conftest import CliRun, tree

from printnet.model import ControlRequest, valid_job_id
from printnet.spool.intake import Intake
from printnet.spool.layout import Spool
from printnet.spool.records import write_control_result


@pytest.fixture
def doc(tmp_path: Path) -> Path:
    path = tmp_path / "README.md"
    path.write_text("# printnet\n\nA print queue on a shared disk.\n")
    return path


def ids_of(stdout: str) -> list[str]:
    lines = stdout.splitlines()
    assert all(valid_job_id(line) for line in lines), stdout
    return lines


def status_json(run_cli: CliRun) -> dict[str, object]:
    result = run_cli("status", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert isinstance(data, dict)
    return data


def jobs_of(run_cli: CliRun) -> list[dict[str, object]]:
    jobs = status_json(run_cli)["jobs"]
    assert isinstance(jobs, list)
    return jobs


# ---------------------------------------------------------------------------
# init


def test_init_creates_spool_and_etc_and_is_idempotent(tmp_path: Path) -> None:
    run = CliRun(tmp_path / "net" / "spool", tmp_path / "etc")
    first = run("init")
    assert first.exit_code == 0, first.output
    assert "created" in first.stdout
    Spool.open(tmp_path / "net" / "spool")
    for name in ("server.cmd", "printers.cmd"):
        assert (tmp_path / "etc" / name).exists()
    before = tree(tmp_path)
    again = run("init")
    assert again.exit_code == 0
    assert "already set up" in again.stdout
    assert tree(tmp_path) == before


def test_init_never_clobbers_an_edited_etc_file(tmp_path: Path) -> None:
    run = CliRun(tmp_path / "spool", tmp_path / "etc")
    assert run("init").exit_code == 0
    printers = tmp_path / "etc" / "printers.cmd"
    edited = printers.read_text() + "; my own comment\nSETUP WIDE FORM=PLAIN LENGTH=66 WIDTH=132\n"
    printers.write_text(edited)
    (tmp_path / "etc" / "server.cmd").unlink()  # a missing file is recreated
    result = run("init")
    assert result.exit_code == 0
    assert printers.read_text() == edited
    assert (tmp_path / "etc" / "server.cmd").exists()
    assert "server.cmd" in result.stdout and "printers.cmd" not in result.stdout


# ---------------------------------------------------------------------------
# request and status


def test_request_prints_one_id_and_status_shows_the_job(
    run_cli: CliRun, spool: Spool, doc: Path,
) -> None:
    result = run_cli("request", str(doc))
    assert result.exit_code == 0, result.output
    [job_id] = ids_of(result.stdout)
    assert result.stderr == ""
    assert os.listdir(spool.new) == [f"{job_id}.req"]
    data = status_json(run_cli)
    assert "printers" in data
    [job] = jobs_of(run_cli)
    for key in ("id", "user", "station", "printer", "priority", "state", "note", "copies",
                "title", "submitted", "position"):
        assert key in job, key
    assert job["id"] == job_id
    assert job["state"] == "pending"
    assert job["printer"] == "LOCAL"  # the default printer
    assert job["priority"] == "standard"
    assert job["copies"] == 1
    assert job["position"] == 1
    assert job["title"] == str(doc)
    assert isinstance(job["submitted"], str)
    submitted = datetime.fromisoformat(job["submitted"])
    assert submitted.utcoffset() is not None
    assert job["note"]  # tells the user no server took it in yet


def test_request_leaves_the_callers_umask_as_it_was(run_cli: CliRun, doc: Path) -> None:
    # `printnet request` sets its own umask while it publishes; an in-process caller
    # (compat lp, CliRunner) must get its own back, or the files it writes next
    # (a site's etc/, a server's site file) lose their read bits for others.
    old = os.umask(0o022)
    try:
        assert run_cli("request", str(doc)).exit_code == 0
        assert os.umask(0o022) == 0o022
    finally:
        os.umask(old)


def test_request_options_are_recorded(run_cli: CliRun, doc: Path) -> None:
    result = run_cli("request", "-p", "high", "-n", "3", "-t", "Quarterly", "-s", "checks",
                     "--hold", "--raw", "--no-header", str(doc))
    assert result.exit_code == 0, result.output
    [job] = jobs_of(run_cli)
    assert (job["priority"], job["copies"], job["title"], job["setup"], job["state"],
            job["format"], job["header"]) == (
        "high", 3, "Quarterly", "CHECKS", "held", "raw", False)


def test_each_makes_one_job_per_file_in_order(
    run_cli: CliRun, spool: Spool, tmp_path: Path,
) -> None:
    files = []
    for i in range(3):
        path = tmp_path / f"part{i}.txt"
        path.write_text(f"part {i}\n")
        files.append(str(path))
    result = run_cli("request", "--each", *files)
    assert result.exit_code == 0, result.output
    ids = ids_of(result.stdout)
    assert len(ids) == 3 and ids == sorted(ids)
    for job_id, name in zip(ids, files, strict=True):
        assert (spool.data / job_id / "0").read_text() == Path(name).read_text()
    assert [j["id"] for j in jobs_of(run_cli)] == ids
    assert [j["position"] for j in jobs_of(run_cli)] == [1, 2, 3]


def test_several_files_make_one_job(run_cli: CliRun, spool: Spool, tmp_path: Path) -> None:
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("A")
    b.write_text("BB")
    [job_id] = ids_of(run_cli("request", str(a), str(b)).stdout)
    assert sorted(os.listdir(spool.data / job_id)) == ["0", "1"]
    assert (spool.data / job_id / "1").read_text() == "BB"


def test_dash_reads_standard_input(run_cli: CliRun, spool: Spool) -> None:
    result = run_cli("request", "-t", "piped", "-", input=b"from a pipe\n")
    assert result.exit_code == 0, result.output
    [job_id] = ids_of(result.stdout)
    assert (spool.data / job_id / "0").read_bytes() == b"from a pipe\n"


def test_title_with_control_characters_is_cleaned(run_cli: CliRun, doc: Path) -> None:
    result = run_cli("request", "-t", "pay\x1b[2J\x07roll\u202e\nQ3", str(doc))
    assert result.exit_code == 0, result.output
    [job] = jobs_of(run_cli)
    assert job["title"] == "pay[2Jroll Q3"
    text = run_cli("status").stdout
    assert "\x1b" not in text and "pay[2Jroll Q3" in text


def test_plain_status_lists_jobs_in_order(run_cli: CliRun, doc: Path) -> None:
    assert run_cli("status").stdout.strip() == "no jobs"
    low = ids_of(run_cli("request", "-p", "overnight", str(doc)).stdout)[0]
    high = ids_of(run_cli("request", "-p", "high", str(doc)).stdout)[0]
    lines = run_cli("status").stdout.splitlines()
    assert lines[0].split()[:2] == ["POS", "ID"]
    assert sorted(line.split()[1] for line in lines[1:]) == sorted([low, high])
    assert len(lines) == 3


BAD_REQUESTS = {
    "priority": (["-p", "urgent"], "priority"),
    "copies-0": (["-n", "0"], "copies"),
    "copies-1000": (["-n", "1000"], "copies"),
    "missing-file": (["{tmp}/nope.txt"], "no such file"),
    "directory": (["{tmp}"], "not a regular file"),
    "unknown-printer": (["-P", "NOPE"], "unknown printer 'NOPE'"),
    "bad-printer-name": (["-P", "a/b"], "invalid printer name"),
    "unknown-setup": (["-s", "NOPE"], "unknown setup 'NOPE'"),
    "two-stdins": (["-", "-"], "standard input"),
    "missing-password-env": (["--password-env", "NO_SUCH_VAR_X"], "NO_SUCH_VAR_X"),
}


@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_bad_requests_fail_with_one_line_and_write_nothing(
    run_cli: CliRun, spool: Spool, doc: Path, tmp_path: Path, case: str,
) -> None:
    args, expected = BAD_REQUESTS[case]
    args = [a.format(tmp=tmp_path) for a in args]
    if not any(a.startswith(str(tmp_path)) or a == "-" for a in args):
        args.append(str(doc))
    before = {d: tree(spool.root / d) for d in ("new", "tmp", "data")}
    result = run_cli("request", *args, input=b"")
    assert result.exit_code != 0
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("printnet: ")
    assert expected in result.stderr
    assert {d: tree(spool.root / d) for d in ("new", "tmp", "data")} == before


def test_an_uninitialized_spool_is_an_error_not_created(
    tmp_path: Path, etc: Path, doc: Path,
) -> None:
    run = CliRun(tmp_path / "not-a-spool", etc)
    for args in (("request", str(doc)), ("status",), ("cancel", "--wait", "0", "X" * 18)):
        result = run(*args)
        assert result.exit_code != 0
        assert result.stderr.count("\n") == 1
        assert "not a printnet spool" in result.stderr
        assert "printnet init" in result.stderr
    assert not (tmp_path / "not-a-spool").exists()


# ---------------------------------------------------------------------------
# cancel / hold / release


@pytest.mark.parametrize("verb", ["cancel", "hold", "release"])
def test_control_without_a_server_is_queued(
    run_cli: CliRun, spool: Spool, doc: Path, verb: str,
) -> None:
    [job_id] = ids_of(run_cli("request", str(doc)).stdout)
    result = run_cli(verb, "--wait", "0.05", job_id)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"{job_id}: {verb} queued (no server has applied it yet)"
    ctls = [n for n in os.listdir(spool.new) if n.endswith(".ctl")]
    assert len(ctls) == 1
    [taken], _ = Intake(spool).take([ctls[0]])
    assert isinstance(taken.request, ControlRequest)
    assert (taken.request.action.value, taken.request.jobs) == (verb, (job_id,))


def test_control_needs_a_job_id(run_cli: CliRun) -> None:
    result = run_cli("cancel", "--wait", "0", "ab")
    assert result.exit_code != 0
    assert "not a job id" in result.stderr


@pytest.fixture
def fake_server(spool: Spool) -> Iterator[dict[str, str]]:
    """A stand-in server thread that answers control requests with fixed outcomes."""
    outcomes: dict[str, str] = {}
    stop = threading.Event()

    def serve() -> None:
        intake = Intake(spool)
        while not stop.wait(0.01):
            ctls = [n for n in intake.scan() if n.endswith(".ctl")]
            taken, _ = intake.take(ctls)
            for t in taken:
                req = t.request
                assert isinstance(req, ControlRequest)
                write_control_result(spool, req.id, req.user, req.action.value,
                                     {j: outcomes.get(j, "applied") for j in req.jobs})

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield outcomes
    stop.set()
    thread.join(5)


def test_control_reports_what_the_server_did(
    run_cli: CliRun, doc: Path, fake_server: dict[str, str],
) -> None:
    a, b = ids_of(run_cli("request", "--each", str(doc), str(doc)).stdout)
    result = run_cli("hold", "--wait", "5", a)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"{a}: hold applied"
    fake_server[b] = "not yours"
    result = run_cli("cancel", "--wait", "5", b)
    assert result.exit_code == 1
    assert result.stderr.strip() == f"{b}: cancel refused: not yours"


# ---------------------------------------------------------------------------
# spool maintenance


def test_spool_purge_runs_and_reports(run_cli: CliRun) -> None:
    result = run_cli("spool", "purge")
    assert result.exit_code == 0, result.output
    assert "leftovers" in result.stdout


def test_spool_rebuild_of_an_empty_spool(run_cli: CliRun) -> None:
    result = run_cli("spool", "rebuild", "--lease", "5")
    assert result.exit_code == 0, result.output
    assert "0 live jobs" in result.stdout


def test_status_is_not_hung_by_a_fifo_or_fooled_by_a_symlink_in_new(
    run_cli: CliRun, spool: Spool, doc: Path, tmp_path: Path,
) -> None:
    from printnet.api import Station
    from printnet.spool.submit import new_id

    [real] = ids_of(run_cli("request", str(doc)).stdout)
    os.mkfifo(spool.new / f"{new_id()}.req")
    # a symlink to a request file elsewhere (another user's, say)
    elsewhere = tmp_path / "other.req"
    elsewhere.write_bytes((spool.new / f"{real}.req").read_bytes().replace(
        real.encode(), new_id().encode()))
    (spool.new / f"{new_id()}.req").symlink_to(elsewhere)
    listed: list[list[str]] = []
    thread = threading.Thread(
        target=lambda: listed.append(
            [j["id"] for j in Station(spool.root, user="alice").status().jobs]),
        daemon=True,
    )
    thread.start()
    thread.join(10)
    assert not thread.is_alive(), "status blocked opening a FIFO in new/"
    assert listed == [[real]]


def test_spool_purge_removes_old_records_and_rejected_directories(
    run_cli: CliRun, spool: Spool, doc: Path,
) -> None:
    from printnet.spool.submit import new_id

    [job_id] = ids_of(run_cli("request", str(doc)).stdout)
    (spool.new / f"{new_id()}.req").mkdir()  # rejected as a directory
    (spool.new / "foo.txt").write_text("x")
    _, rejected = Intake(spool).take()
    assert len(rejected) == 2  # the good request is taken in
    (spool.done / f"{job_id}.json").write_text("{}")
    result = run_cli("spool", "purge", "--days", "0")
    assert result.exit_code == 0, result.output
    assert os.listdir(spool.rejected) == []
    assert os.listdir(spool.done) == []
    assert not (spool.data / job_id).exists()  # the documents went with the record
