"""One wording for "cannot read": the file, what the system said, and who may read it.

A user on a multi-user spool meets files they may not read (etc/*.cmd hold
password hashes; another user's files).  Every such message names the file,
the error, and its mode, owner and group, so the user can tell whether to ask
for a permission or for a published copy (docs/COMPAT.md, docs/SECURITY.md).
"""

from __future__ import annotations

import os
from pathlib import Path


def owner_text(path: Path | str) -> str:
    """"mode 0640, owner pnt_svc, group pnt_spool" of `path` ("" if it cannot be stat'ed)."""
    import grp
    import pwd

    try:
        st = os.stat(path)
    except OSError:
        return ""
    try:
        owner = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        owner = str(st.st_uid)
    try:
        group = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        group = str(st.st_gid)
    return f"mode {st.st_mode & 0o7777:04o}, owner {owner}, group {group}"


def cannot_read(path: Path | str, exc: OSError | None = None) -> str:
    """`path`: cannot read (permission denied; mode 0600, owner x, group y)."""
    reason = (exc.strerror if exc is not None and exc.strerror else "permission denied").lower()
    who = owner_text(path)
    return f"cannot read {path}: {reason}" + (f" ({who})" if who else "")
