"""Printers: ports, drivers, pagination, header pages and the write loop.

Pure modules (no os/time/serial): `paginate`, `banner`, `drivers`, `render`.
I/O modules: `ports` (open a printer's pyserial port), `writer` (the
non-blocking write loop), `protocol_file` and `protocol_sim` (printnet's own
pyserial URL schemes ``file://`` and ``sim://``), `simctl` (the simulated
printer's state file; not imported here, so that
``python -m printnet.printers.simctl OUT STATE`` runs cleanly).  See
docs/PRINTERS.md.
"""

from printnet.printers.banner import DEFAULT_TEMPLATE, block_letters, header_page
from printnet.printers.drivers import Driver, EscpDriver, PlainDriver, get_driver, strip_controls
from printnet.printers.paginate import paginate
from printnet.printers.ports import open_port, port_url, register_schemes
from printnet.printers.render import Rendered, RenderJob, count_pages, render
from printnet.printers.writer import SendFailed, SendStalled, send

__all__ = [
    "DEFAULT_TEMPLATE",
    "Driver",
    "EscpDriver",
    "PlainDriver",
    "RenderJob",
    "Rendered",
    "SendFailed",
    "SendStalled",
    "block_letters",
    "count_pages",
    "get_driver",
    "header_page",
    "open_port",
    "paginate",
    "port_url",
    "register_schemes",
    "render",
    "send",
    "strip_controls",
]
