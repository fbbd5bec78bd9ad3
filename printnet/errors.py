"""The one exception root of printnet and its specific subclasses.

Library code raises these; only `printnet.cli` turns them into messages and
exit codes.  OS and third-party errors are translated at the boundary where
they happen (spool I/O, ports), so callers catch `PrintnetError` alone.
"""

from __future__ import annotations


class PrintnetError(Exception):
    """Root of every error printnet raises on purpose."""

    exit_code = 1


class UsageError(PrintnetError):
    """The caller asked for something that makes no sense (bad option value)."""

    exit_code = 2


class ValidationError(PrintnetError):
    """A field failed validation; `field` names it."""

    exit_code = 2

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class RequestInvalid(ValidationError):
    """A request file (print or control) is malformed."""


class RequestDeferred(PrintnetError):
    """A request cannot be judged yet (e.g. its printer's server has not published
    its status since this server started); intake looks at it again later."""


class ConfigError(PrintnetError):
    """An etc/ command file is wrong; names file and line."""

    exit_code = 2

    def __init__(self, file: str, line: int, message: str) -> None:
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {message}")
        self.file = file
        self.line = line
        self.message = message


class NotFound(PrintnetError):
    """A job, printer or file that was named does not exist."""


class PermissionDenied(PrintnetError):
    """The caller may not do this (not the job's owner, wrong password)."""

    exit_code = 3


class SpoolError(PrintnetError):
    """The shared disk misbehaved or is not a printnet spool."""


class SealError(PrintnetError):
    """A sealed document cannot be sealed or opened (no key, changed, reordered, truncated)."""


class SpoolFull(SpoolError):
    """Free space is below the configured guard, or the disk is full."""


class LockHeld(SpoolError):
    """Try-acquire found the lock held by someone else (not an error to log)."""


class LockLost(SpoolError):
    """We held a lock but it expired or was broken; stop writing under it."""


class Fenced(SpoolError):
    """A write under a lock found that a successor already wrote: we are stale."""


class InvalidTransition(PrintnetError):
    """A job state change that the transition table does not allow."""


class PortError(PrintnetError):
    """A printer port could not be opened or failed."""


class LinkDown(PortError):
    """A forwarding printer's remote site cannot be reached: its gateway refuses or
    stalls, or its share is gone.  The job waits at the branch (docs/SITES.md)."""


class PrinterStalled(PortError):
    """The printer accepted no bytes for the configured time (offline, paper out)."""


class AuthRequired(PermissionDenied):
    """The gateway needs credentials it did not get (or they were wrong): HTTP 401."""

    def __init__(self, message: str, *, realm: str = "printnet") -> None:
        super().__init__(message)
        self.realm = realm


class Forbidden(PermissionDenied):
    """The gateway knows who asks (or where from) and refuses: HTTP 403 / IPP forbidden."""
