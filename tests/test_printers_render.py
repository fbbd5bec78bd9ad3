"""Rendering a job: header page, copies, files on new pages, exact page counts."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from printnet.model import Format
from printnet.printers.banner import block_letters
from printnet.printers.drivers import EscpDriver, PlainDriver, get_driver
from printnet.printers.paginate import paginate
from printnet.printers.render import RenderJob, count_pages, count_raw_pages, render
from printnet.settings import DriverName, SetupConfig

SETUP = SetupConfig("CHECKS", form="CHECKS", length=22, width=80)
JOB = RenderJob(
    id="01HZX7K2M3N4P5Q6R7",
    user="carol",
    station="ws-3",
    title="Ledger",
    submitted="2026-05-09T09:58:00Z",
    copies=1,
    header=True,
    format=Format.TEXT,
    printer="LINEPRINTER",
    setup="CHECKS",
)
DATE = "2026-05-09 10:00"


def _lines(n: int) -> bytes:
    return "".join(f"line {i}\n" for i in range(n)).encode()


def _split_pages(data: bytes) -> list[bytes]:
    pages = data.split(b"\f")
    assert pages[-1] == b""
    return pages[:-1]


def test_header_page_has_job_id_and_block_letter_user() -> None:
    r = render(JOB, [b"hello\n"], setup=SETUP, driver=PlainDriver(), header_template=None,
               date=DATE)
    header = _split_pages(r.data())[0].decode("latin-1")
    assert "01HZX7K2M3N4P5Q6R7" in header
    assert "Ledger" in header
    rows = [row.strip() for row in block_letters("carol", width=80)]
    header_lines = [ln.strip() for ln in header.split("\r\n")]
    for row in rows:
        assert row in header_lines
    assert "CCC   AAA  RRRR   OOO  L" in header  # top row of C A R O L, in their letters


def test_no_header_when_the_job_asks_for_none() -> None:
    job = replace(JOB, header=False)
    r = render(job, [b"hello\n"], setup=SETUP, driver=PlainDriver(), header_template=None,
               date=DATE)
    assert r.pages == 1
    assert "carol" not in r.data().decode("latin-1")


def test_header_template_is_used() -> None:
    r = render(JOB, [b"x"], setup=SETUP, driver=PlainDriver(),
               header_template="FOR {user} JOB {job} PAGES {pages}", date=DATE)
    assert _split_pages(r.data())[0] == b"FOR carol JOB 01HZX7K2M3N4P5Q6R7 PAGES 2\r\n"


def test_copies_repeat_and_page_counts_are_exact() -> None:
    files = [_lines(45), _lines(3)]  # 20 body lines per page: 3 pages + 1 page (new page)
    job = replace(JOB, copies=3)
    r = render(job, files, setup=SETUP, driver=PlainDriver(), header_template=None, date=DATE)
    pages = _split_pages(r.data())
    assert r.pages == len(pages) == 1 + 4 * 3
    assert count_pages(job, files, setup=SETUP) == r.pages
    copy = pages[1:5]
    assert pages[5:9] == copy and pages[9:13] == copy
    headings = [p.split(b"\r\n", 1)[0].decode() for p in copy]
    assert [h.endswith(f"Page {i} of 4") for i, h in enumerate(headings, 1)] == [True] * 4
    assert all(h.startswith("Ledger") and DATE in h for h in headings)
    assert copy[3].split(b"\r\n")[2] == b"line 0"  # the second file starts its own page
    assert b"line 44\r\n" in copy[2]
    assert b"PAGES" not in r.data() and b"Pages: 13" in pages[0]


def test_text_is_decoded_as_utf8_with_replacement() -> None:
    job = replace(JOB, header=False)
    r = render(job, [b"\xef\xbb\xbfcaf\xc3\xa9 \xff\n"], setup=SETUP, driver=PlainDriver(),
               header_template=None, date=DATE)
    body = _split_pages(r.data())[0].split(b"\r\n")[2]
    assert body == b"caf\xe9 ?"


def test_raw_jobs_pass_byte_for_byte_per_copy() -> None:
    raw1 = b"\x1b@\x1bEbold\x00\xff page one\fpage two"
    raw2 = b"\x1bK\x02\x00\x0c\x0c rest\f"
    job = replace(JOB, format=Format.RAW, copies=2, header=False)
    r = render(job, [raw1, raw2], setup=SETUP, driver=PlainDriver(), header_template=None,
               date=DATE)
    assert r.data() == (raw1 + raw2) * 2
    assert r.pages == 2 * count_raw_pages(raw1 + raw2) == 2 * 4
    assert count_pages(job, [raw1, raw2], setup=SETUP) == r.pages


def test_raw_with_escp_starts_with_setup_and_ejects_at_end() -> None:
    job = replace(JOB, format=Format.RAW, copies=1, header=True)
    r = render(job, [b"no form feed"], setup=SETUP, driver=EscpDriver(),
               header_template=None, date=DATE)
    data = r.data()
    assert data.startswith(b"\x1b@")
    assert data.endswith(b"no form feed\f")
    assert r.pages == 2
    assert r.total_bytes == len(data)


def test_count_raw_pages() -> None:
    assert count_raw_pages(b"") == 0
    assert count_raw_pages(b"x") == 1
    assert count_raw_pages(b"x\f") == 1
    assert count_raw_pages(b"x\fy") == 2
    assert count_raw_pages(b"\f\f") == 2


@settings(max_examples=100, deadline=None)
@given(
    files=st.lists(st.text(max_size=300).map(str.encode), min_size=1, max_size=3),
    copies=st.integers(min_value=1, max_value=3),
    header=st.booleans(),
    length=st.integers(min_value=3, max_value=30),
    width=st.integers(min_value=20, max_value=100),
    driver=st.sampled_from([DriverName.PLAIN, DriverName.ESCP]),
)
def test_text_page_count_is_exact(
    files: list[bytes], copies: int, header: bool, length: int, width: int,
    driver: DriverName,
) -> None:
    setup = SetupConfig("S", length=length, width=width)
    job = replace(JOB, copies=copies, header=header)
    r = render(job, files, setup=setup, driver=get_driver(driver), header_template=None,
               date=DATE)
    per_file = [len(paginate(f.decode(), length=length, width=width, title="t", date="d"))
                for f in files]
    assert r.pages == (1 if header else 0) + sum(per_file) * copies
    assert r.pages == count_pages(job, files, setup=setup)
    if driver == DriverName.PLAIN:
        assert r.data().count(b"\f") == r.pages  # one form feed per physical page
