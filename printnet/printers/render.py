"""Pure: the pipeline from a job and its files to the bytes a printer receives.

Owns `RenderJob`, `Rendered`, `render()` and the page counts.

Order of a job: ``driver.begin(setup)``; the header page (when the job asks
for one); then the job `copies` times; then ``driver.end()``.

* Text jobs: each file is decoded in the job's source encoding (the request's
  ``encoding``, UTF-8 when it has none; ``errors='replace'``; a leading
  byte-order mark is dropped), fitted to the printer's character set (the
  driver's ``encoding``: characters it lacks substituted as `printnet.charset`
  documents, *before* pagination, so a look-alike of several characters still
  fits the width), and paginated to the setup's length and width.  Line ends
  from any system (CR LF, lone CR, LF) are one: the paginator normalizes them,
  and the driver ends every line the printer's way.  The header page's and the
  headings' fields are fitted the same way.
  The files of a copy are concatenated, each starting on a new page, and the
  pages of one copy are numbered together (``Page N of M`` where M is the page
  count of one copy).  Page count: header page + pages of a copy x copies,
  exact.
* Raw jobs: the files' bytes, concatenated, byte for byte, `copies` times
  (nothing is inserted between files or copies).  Page count is an estimate
  from form feeds: per copy, the number of FF bytes plus one when bytes follow
  the last FF (a parameter byte of an escape sequence that happens to be 0x0C
  counts too; printnet cannot know a printer language's page model).

`Rendered.chunks` holds one chunk per page (plus the driver's begin/end
bytes), so a writer can report progress page by page; repeated copies share
the same bytes objects.  This module imports no os/time/serial.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from printnet.charset import decode, fit
from printnet.model import Format, clean_text
from printnet.printers.banner import header_page
from printnet.printers.drivers import Driver
from printnet.printers.paginate import add_headings, page_bodies
from printnet.settings import SetupConfig


@dataclass(frozen=True, slots=True)
class RenderJob:
    """What rendering needs to know about a job (all text already validated)."""

    id: str
    user: str
    station: str
    title: str
    submitted: str
    copies: int
    header: bool
    format: Format
    printer: str
    setup: str
    encoding: str | None = None  # the text's source encoding; None: UTF-8
    site: str = ""  # the site it was submitted at (header pages' {site})
    logo: str | None = None  # the text art of {logo} (a LOGO file); None: the site's name


@dataclass(frozen=True, slots=True)
class Rendered:
    """The bytes of a job, in order, and its physical page count."""

    chunks: list[bytes]
    pages: int

    @property
    def total_bytes(self) -> int:
        return sum(len(c) for c in self.chunks)

    def data(self) -> bytes:
        """All chunks joined (convenience for small jobs and tests)."""
        return b"".join(self.chunks)


DEFAULT_CHARSET = "iso8859-1"  # the plain driver's: what a count assumes without a driver


def decode_text(data: bytes, encoding: str | None = None) -> str:
    """A text file's bytes as text: `encoding` (default UTF-8), invalid bytes as
    U+FFFD, no BOM."""
    return decode(data, encoding)


def count_raw_pages(data: bytes) -> int:
    """Form feeds, plus one when bytes follow the last form feed."""
    if not data:
        return 0
    return data.count(b"\f") + (0 if data.endswith(b"\f") else 1)


def text_page_bodies(files: Sequence[bytes], *, setup: SetupConfig,
                     encoding: str | None = None,
                     charset: str = DEFAULT_CHARSET) -> list[list[str]]:
    """The body lines of every page of one copy (each file starts a new page):
    decoded from `encoding`, fitted to the printer's `charset`."""
    bodies: list[list[str]] = []
    for data in files:
        text = fit(decode_text(data, encoding), charset)
        bodies.extend(page_bodies(text, length=setup.length, width=setup.width))
    return bodies


def count_pages(job: RenderJob, files: Sequence[bytes], *, setup: SetupConfig,
                charset: str | None = None) -> int:
    """Physical pages `render` produces for this job (see the module docstring), on a
    printer whose character set is `charset` (default: the setup's, else latin-1)."""
    copies = max(job.copies, 0)
    if job.format == Format.RAW:
        per_copy = count_raw_pages(b"".join(files))
    else:
        out = charset or setup.encoding or DEFAULT_CHARSET
        per_copy = len(text_page_bodies(files, setup=setup, encoding=job.encoding,
                                        charset=out)) if files else 0
    return (1 if job.header else 0) + per_copy * copies


def header_fields(job: RenderJob, *, date: str, pages: int) -> dict[str, str]:
    """The values of a header template's placeholders for this job."""
    return {
        "job": job.id,
        "user": job.user,
        "station": job.station,
        "title": job.title,
        "date": date,
        "submitted": job.submitted,
        "copies": str(job.copies),
        "printer": job.printer,
        "setup": job.setup,
        "pages": str(pages),
        "site": job.site,
    }


def render(
    job: RenderJob,
    files: Sequence[bytes],
    *,
    setup: SetupConfig,
    driver: Driver,
    header_template: str | None,
    date: str,
) -> Rendered:
    """Render a job for a printer: header page, then the files `copies` times."""
    copies = max(job.copies, 0)
    chunks: list[bytes] = []
    begin = driver.begin(setup)
    if begin:
        chunks.append(begin)

    # Count first (the header page shows the total), then drive the driver in
    # print order: it may track where the paper is.
    bodies: list[list[str]] = []
    if job.format == Format.RAW:
        per_copy = count_raw_pages(b"".join(files))
    else:
        bodies = text_page_bodies(files, setup=setup, encoding=job.encoding,
                                  charset=driver.encoding) if files else []
        per_copy = len(bodies)
    total = (1 if job.header else 0) + per_copy * copies

    if job.header:
        fields = header_fields(job, date=date, pages=total)
        lines = header_page(
            {key: fit(value, driver.encoding) for key, value in fields.items()},
            template=header_template,
            width=setup.width,
            length=setup.length,
            logo=None if job.logo is None else fit(job.logo, driver.encoding),
        )
        chunks.append(driver.page(lines))

    copy_chunks: list[bytes] = []
    if copies and job.format == Format.RAW:
        for data in files:
            out = driver.raw(data)
            if out:
                copy_chunks.append(out)
    elif copies:
        title = fit(clean_text(job.title) or job.id, driver.encoding)
        pages = add_headings(bodies, title=title, date=fit(date, driver.encoding),
                             width=setup.width)
        copy_chunks = [driver.page(lines) for lines in pages]
    for _ in range(copies):
        chunks.extend(copy_chunks)
    end = driver.end()
    if end:
        chunks.append(end)
    return Rendered(chunks=chunks, pages=total)
