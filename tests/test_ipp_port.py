"""The ``ipp://`` printer port against a simulated IPP printer (tests/ipp_printer_sim.py).

A real `printnet server` subprocess prints to ``PRINTER P PORT=ipp://127.0.0.1:N/...``.
The simulator's own records (what it received, the jobs it took) are the oracle.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers_e2e import (
    HEADER_TEMPLATE,
    SETUPS,
    ServerProcess,
    accounting,
    done_records,
    logs,
    make_etc,
    printer_info,
    published,
    server_env,
    start_server,
    wait_for,
    write_atomic_text,
)
from ipp_printer_sim import IppPrinterSim

from printnet.api import Station
from printnet.ipp.enums import Status
from printnet.printers.ipp_port import (
    PrinterStatus,
    parse_target,
    printer_trouble,
    status_note,
)
from printnet.spool.layout import Spool


@pytest.fixture
def servers() -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for s in started:
        if s.poll() is None:
            s.kill9()


@pytest.fixture
def sim() -> Iterator[IppPrinterSim]:
    printer = IppPrinterSim()
    yield printer
    printer.stop()


def ipp_server(tmp: Path, url: str, servers: list[ServerProcess],
               errors: str = "RETRY") -> Path:
    root = tmp / "spool"
    Spool.init(root)
    etc = make_etc(tmp / "proj", "S1", [root], [])
    (etc / "hipp.hdr").write_text(HEADER_TEMPLATE)
    write_atomic_text(etc / "printers.cmd",
                      f"PRINTER IPP PORT={url} SETUP=STANDARD ERRORS={errors} "
                      f"STALL=1 RETRY=0.3 HEADER=HIPP\n" + SETUPS)
    servers.append(start_server(etc, "S1", env=server_env(tmp / "run")))
    wait_for(lambda: published(root, "S1"), 30, "S1 up", on_timeout=lambda: logs(servers))
    return root


def submit(root: Path, tmp: Path, text: str, title: str = "T", raw: bool = False,
           copies: int = 1) -> str:
    path = tmp / f"{title}.txt"
    path.write_bytes(text.encode())
    [req] = Station(root).submit([path], printer="IPP", raw=raw, title=title, copies=copies)
    return req.id


def test_a_job_is_completed_only_when_the_printer_says_so(
        tmp_path: Path, sim: IppPrinterSim, servers: list[ServerProcess]) -> None:
    sim.release.clear()
    root = ipp_server(tmp_path, sim.url(), servers)
    job = submit(root, tmp_path, "hello over ipp\n", title="first")
    wait_for(lambda: sim.jobs and sim.jobs[1].polls >= 8, 60,
             "the server to poll the remote job", on_timeout=lambda: logs(servers))
    assert job not in done_records(root)  # all bytes sent long ago; not completed
    sim.release.set()
    wait_for(lambda: job in done_records(root), 60, "the job done",
             on_timeout=lambda: logs(servers))
    rec = done_records(root)[job]
    assert rec["outcome"] == "completed"
    [req] = sim.requests
    assert req.attrs["job-name"] == "first"
    assert req.attrs["printnet-job-id"] == job
    assert req.attrs["document-format"] == "text/plain"
    assert b"hello over ipp" in req.data
    [line] = [x for x in accounting(root) if x["job"] == job]
    assert line["pages"] == sim.impressions  # the printer's count, not ours


def test_media_empty_is_the_reason_and_the_job_waits(
        tmp_path: Path, sim: IppPrinterSim, servers: list[ServerProcess]) -> None:
    sim.reasons = ["media-empty-error"]
    root = ipp_server(tmp_path, sim.url(), servers)
    job = submit(root, tmp_path, "needs paper\n")

    def reason() -> str:
        info = printer_info(root, "S1", "IPP") or {}
        return " ".join(info.get("reasons", []))

    wait_for(lambda: "media-empty" in reason(), 60, "the reason shown",
             on_timeout=lambda: logs(servers))
    assert not sim.requests and job not in done_records(root)
    sim.reasons = ["none"]
    wait_for(lambda: job in done_records(root), 60, "the job done",
             on_timeout=lambda: logs(servers))
    assert done_records(root)[job]["outcome"] == "completed"
    assert len(sim.requests) == 1


def test_media_empty_during_the_job_stalls_and_resumes_without_a_resend(
        tmp_path: Path, sim: IppPrinterSim, servers: list[ServerProcess]) -> None:
    sim.release.clear()
    root = ipp_server(tmp_path, sim.url(), servers)
    job = submit(root, tmp_path, "paper runs out\n")
    wait_for(lambda: bool(sim.jobs), 60, "the remote job", on_timeout=lambda: logs(servers))
    sim.reasons = ["media-empty"]
    wait_for(lambda: "out of paper" in " ".join(
        (printer_info(root, "S1", "IPP") or {}).get("reasons", [])), 60, "the reason shown",
        on_timeout=lambda: logs(servers))
    sim.reasons = ["none"]
    sim.release.set()
    wait_for(lambda: job in done_records(root), 60, "the job done",
             on_timeout=lambda: logs(servers))
    assert done_records(root)[job]["outcome"] == "completed"
    assert len(sim.requests) == 1  # the remote kept the job: it was not sent again


def test_an_aborted_remote_job_follows_policy_abort(
        tmp_path: Path, sim: IppPrinterSim, servers: list[ServerProcess]) -> None:
    sim.plan = lambda n: "abort"
    root = ipp_server(tmp_path, sim.url(), servers, errors="ABORT")
    job = submit(root, tmp_path, "doomed\n")
    wait_for(lambda: job in done_records(root), 60, "the job done",
             on_timeout=lambda: logs(servers))
    rec = done_records(root)[job]
    assert rec["outcome"] == "aborted"
    assert "aborted the job: the fuser overheated" in str(rec)


def test_an_aborted_remote_job_under_retry_is_printed_again(
        tmp_path: Path, sim: IppPrinterSim, servers: list[ServerProcess]) -> None:
    sim.plan = lambda n: "abort" if n == 0 else "ok"
    root = ipp_server(tmp_path, sim.url(), servers)
    job = submit(root, tmp_path, "second time lucky\n")
    wait_for(lambda: job in done_records(root), 60, "the job done",
             on_timeout=lambda: logs(servers))
    rec = done_records(root)[job]
    assert rec["outcome"] == "completed" and rec["job"]["restarted"] == 1
    assert [r.plan for r in sim.requests] == ["abort", "ok"]


def test_a_connection_closed_mid_job_restarts_and_is_counted(
        tmp_path: Path, sim: IppPrinterSim, servers: list[ServerProcess]) -> None:
    sim.plan = lambda n: "close" if n == 0 else "ok"
    root = ipp_server(tmp_path, sim.url(), servers)
    job = submit(root, tmp_path, "x" * 50_000 + "\n")
    wait_for(lambda: job in done_records(root), 60, "the job done",
             on_timeout=lambda: logs(servers))
    rec = done_records(root)[job]
    assert rec["outcome"] == "completed" and rec["job"]["restarted"] == 1
    [line] = [x for x in accounting(root) if x["job"] == job]
    assert line["restarted"] == 1
    assert len(sim.jobs) == 1  # printed once at the remote
    assert b"*** RESTARTED: job " + job.encode() in sim.jobs[1].data[:4096]


def test_garbage_answers_give_a_clear_note_and_lose_nothing(
        tmp_path: Path, sim: IppPrinterSim, servers: list[ServerProcess]) -> None:
    sim.garbage_printer = 3
    sim.plan = lambda n: "garbage" if n == 0 else "ok"
    root = ipp_server(tmp_path, sim.url(), servers)
    job = submit(root, tmp_path, "through the noise\n")
    wait_for(lambda: job in done_records(root), 60, "the job done",
             on_timeout=lambda: logs(servers))
    assert done_records(root)[job]["outcome"] == "completed"
    assert len(sim.jobs) == 1
    text = logs(servers)
    assert "answered something that is not IPP" in text


def test_a_raw_pdf_goes_as_application_pdf_with_copies(
        tmp_path: Path, sim: IppPrinterSim, servers: list[ServerProcess]) -> None:
    root = ipp_server(tmp_path, sim.url(), servers)
    pdf = "%PDF-1.4\n% a test document\n%%EOF\n"
    job = submit(root, tmp_path, pdf, raw=True, copies=2)
    wait_for(lambda: job in done_records(root), 60, "the job done",
             on_timeout=lambda: logs(servers))
    [req] = sim.requests
    assert req.attrs["document-format"] == "application/pdf"
    assert req.data == pdf.encode() and req.attrs["copies"] == 2


def test_unit_notes_and_trouble() -> None:
    assert "not accepting jobs" in status_note(Status.SERVER_ERROR_NOT_ACCEPTING_JOBS)
    assert "0x0999" in status_note(0x0999)
    assert printer_trouble(PrinterStatus(3, ("media-empty-error",), "", frozenset())) \
        == "out of paper (media-empty)"
    assert printer_trouble(PrinterStatus(3, ("media-low-warning",), "", frozenset())) is None
    assert printer_trouble(PrinterStatus(5, ("none",), "jammed", frozenset())) \
        == "stopped (jammed)"
    t = parse_target("ipps://h.example/ipp/print?ca=/etc/ca.pem")
    assert t.tls and t.port == 631 and t.ca == "/etc/ca.pem" and t.uri.endswith("/ipp/print")
    assert parse_target("ipps://h:8631/p?insecure=1").insecure


def _certificate(tmp: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (openssl), and its key."""
    import shutil
    import subprocess

    openssl = shutil.which("openssl")
    assert openssl is not None, "openssl is needed for the ipps:// test"
    cert, key = tmp / "printer.pem", tmp / "printer.key"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key


@pytest.mark.parametrize("option", ["ca", "insecure", "none"])
def test_ipps_checks_the_certificate_unless_told_otherwise(
        tmp_path: Path, servers: list[ServerProcess], option: str) -> None:
    cert, key = _certificate(tmp_path)
    tls = IppPrinterSim(tls=(cert, key))
    try:
        query = {"ca": f"?ca={cert}", "insecure": "?insecure=1", "none": ""}[option]
        root = ipp_server(tmp_path, tls.url() + query, servers)
        job = submit(root, tmp_path, "over tls\n")
        if option == "none":
            # The system's CAs do not know this printer: printer trouble, said clearly.
            wait_for(lambda: "CERTIFICATE_VERIFY_FAILED" in " ".join(
                (printer_info(root, "S1", "IPP") or {}).get("reasons", [])), 60,
                "the certificate refused", on_timeout=lambda: logs(servers))
            assert not tls.requests and job not in done_records(root)
            return
        wait_for(lambda: job in done_records(root), 60, "the job done",
                 on_timeout=lambda: logs(servers))
        assert done_records(root)[job]["outcome"] == "completed"
        assert b"over tls" in tls.jobs[1].data
    finally:
        tls.stop()


def test_a_printer_that_stalls_without_answering_gets_the_job_again(
        tmp_path: Path, sim: IppPrinterSim, servers: list[ServerProcess]) -> None:
    """Print-Job read to its end and never answered: after STALL= the job goes again,
    counted as a reprint; the printer took it once."""
    sim.plan = lambda n: "stall" if n == 0 else "ok"
    root = ipp_server(tmp_path, sim.url(), servers)
    job = submit(root, tmp_path, "the long silence\n")
    wait_for(lambda: job in done_records(root), 60, "the job done",
             on_timeout=lambda: logs(servers))
    rec = done_records(root)[job]
    assert rec["outcome"] == "completed" and rec["job"]["restarted"] == 1
    assert [r.plan for r in sim.requests] == ["stall", "ok"] and len(sim.jobs) == 1
    assert "timed out" in logs(servers)


def test_a_server_that_stops_mid_job_cancels_the_remote_job(
        tmp_path: Path, sim: IppPrinterSim, servers: list[ServerProcess]) -> None:
    """SIGTERM while the remote prints: the job is requeued here and canceled there, so
    the next server's print is the only one; it is counted as interrupted, not lost."""
    sim.release.clear()
    root = ipp_server(tmp_path, sim.url(), servers)
    job = submit(root, tmp_path, "interrupted\n")
    wait_for(lambda: sim.jobs and sim.jobs[1].polls >= 2, 60, "the remote job",
             on_timeout=lambda: logs(servers))
    assert servers[0].stop() == 0
    from printnet.ipp.enums import JobState as IppJobState
    assert sim.jobs[1].state == IppJobState.CANCELED
    assert job not in done_records(root)
    sim.release.set()
    etc = tmp_path / "proj" / "etc"
    servers.append(start_server(etc, "S1", env=server_env(tmp_path / "run")))
    wait_for(lambda: job in done_records(root), 60, "the job done after the restart",
             on_timeout=lambda: logs(servers))
    assert done_records(root)[job]["outcome"] == "completed"
    assert [j.state for j in sim.jobs.values()] == [IppJobState.CANCELED, 9]
