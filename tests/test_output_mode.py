"""A `file://` printer's output is not world-readable (issue 16 §4): a real server
prints a job and the file it wrote is mode 0640 (owner and group only)."""

from __future__ import annotations

import os
import stat

from test_console import Project


def test_file_printer_output_is_0640(project: Project) -> None:
    old = os.umask(0o022)  # the usual umask: it must not be what keeps others out
    try:
        project.start()
        job = project.submit("a private letter\n", printer="LOCAL")
        project.wait_done(job)
    finally:
        os.umask(old)
    out = project.output / "LOCAL.prn"
    assert b"a private letter" in out.read_bytes()
    mode = stat.S_IMODE(os.stat(out).st_mode)
    assert mode == 0o640, oct(mode)
