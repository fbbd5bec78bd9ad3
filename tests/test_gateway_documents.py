"""Documents at the gateway: PDF page counts (pypdf) for MAXPAGES, and formats a
printer's port declares."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import pypdf
import pytest

from printnet.gateway.context import (
    PDF,
    Document,
    FormatNotSupported,
    GatewayContext,
    Identity,
    JobOptions,
    LimitExceeded,
)
from printnet.gateway.documents import DocumentInvalid, count_pages
from printnet.printers import ports
from printnet.spool.layout import Spool


def pdf(pages: int) -> bytes:
    writer = pypdf.PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=595, height=842)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_pdf_pages_are_counted() -> None:
    assert count_pages(pdf(3), PDF) == 3
    assert count_pages(b"not counted here", "text/plain") == 0
    with pytest.raises(DocumentInvalid):
        count_pages(b"%PDF-1.4 broken", PDF)


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[GatewayContext]:
    Spool.init(tmp_path / "spool")
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "server.cmd").write_text(f'SPOOL "{tmp_path / "spool"}"\n')
    (etc / "printers.cmd").write_text(
        f"PRINTER PDFP PORT=file://{tmp_path / 'pdf.out'} MAXPAGES=2\n"
        f"PRINTER LINE PORT=sim://LINE?out={tmp_path / 'line.out'}\n"
        "SETUP STANDARD\nDEFAULT LINE\n")
    # A port that takes PDF declares it by its scheme (the ipp:// port will).
    ports.EXTRA_FORMATS["file"] = frozenset({PDF})
    try:
        yield GatewayContext(tmp_path / "spool", etc)
    finally:
        del ports.EXTRA_FORMATS["file"]


def test_maxpages_counts_pdf_pages_and_formats_follow_the_port(ctx: GatewayContext) -> None:
    who = Identity("alice", "trust")
    new = ctx.spool.new
    with pytest.raises(LimitExceeded, match="3 pages is over PDFP's limit of 2"):
        ctx.submit(who, [Document("a.pdf", pdf(3), PDF)], JobOptions(printer="PDFP"))
    with pytest.raises(FormatNotSupported):
        ctx.submit(who, [Document("a.pdf", pdf(1), PDF)], JobOptions(printer="LINE"))
    assert not os.listdir(new)  # nothing written for a refused job
    req = ctx.submit(who, [Document("a.pdf", pdf(2), PDF)], JobOptions(printer="PDFP"))
    assert os.listdir(new) == [f"{req.id}.req"]
    assert (req.format.value, req.via, req.user) == ("raw", "ipp:trust", "alice")
    assert PDF in ctx.formats("PDFP") and PDF not in ctx.formats("LINE")
