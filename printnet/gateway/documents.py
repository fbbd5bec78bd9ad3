"""Documents a door received: their page counts at intake.

PDF pages are counted with `pypdf` (pure Python, no system library, and it
reads only the cross-reference table and the page tree; nothing is
rendered), for MAXPAGES and accounting.  A PDF pypdf cannot read is refused
(`DocumentInvalid`): a printer would not print it either.  Text and raw
documents are counted by the servers at their intake (`printnet.spool.admission`),
which knows the setup; here they count 0.
"""

from __future__ import annotations

import io
import logging
from typing import Final

from printnet.errors import ValidationError

PDF: Final = "application/pdf"


class DocumentInvalid(ValidationError):
    """A document that is not what its format says (a PDF that does not parse)."""


def count_pages(data: bytes, fmt: str) -> int:
    """Pages of a PDF document; 0 for formats the servers count themselves."""
    if fmt != PDF:
        return 0
    import pypdf
    from pypdf.errors import PyPdfError

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # its warnings are not ours to log
    try:
        return len(pypdf.PdfReader(io.BytesIO(data), strict=False).pages)
    except (PyPdfError, ValueError, KeyError, TypeError, RecursionError) as exc:
        raise DocumentInvalid("document", f"not a readable PDF ({exc})"[:200]) from None
