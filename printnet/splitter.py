"""Pure: where one captured job ends and the next begins (`printnet capture`).

Owns `FormFeedRule` (``--formfeed``) and `Splitter`, which turns the stream of
bytes a program writes to the virtual printer into jobs.  It reads no clock:
every call is given "now" (seconds on a monotonic clock).

A job ends, whichever comes first:

* when **the writer closes** the device (`hangup`; the shell sees the pty hang up);
* after **--idle SECONDS** without a byte (`tick`), for programs that keep the
  port open between documents;
* on the **form-feed rule** (``--formfeed``):

  - ``off`` (the default): form feeds do not end jobs;
  - ``each``: every form feed (0x0C) ends a job; the FF is the job's last byte
    and the bytes after it start the next job (one job per page, for programs
    that print each document as one page);
  - ``SECONDS`` (a number, e.g. ``2``): a form feed that is the last byte
    received ends the job once SECONDS pass without another byte; a byte
    within SECONDS continues the same job (documents end with a page eject,
    pages inside them do not pause).

  A 0x0C byte is a form feed wherever it is, even as a parameter of a printer
  command (``ESC C 12``): with ``each`` such a job is split there.  Prefer
  ``SECONDS`` for printer-language streams.

A job is never empty: a writer that opens and closes without writing (``stty
-F``) makes none.  The concatenation of all jobs is exactly the bytes fed, in
order (nothing is dropped, nothing added).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

FF: Final = 0x0C


@dataclass(frozen=True, slots=True)
class FormFeedRule:
    """``--formfeed``: off, each, or a quiet time in seconds after a trailing FF."""

    each: bool = False
    quiet: float | None = None

    @classmethod
    def parse(cls, text: str) -> FormFeedRule:
        """From ``off``, ``each`` or a number of seconds; ValueError saying which."""
        word = text.strip().lower()
        if word == "off":
            return cls()
        if word == "each":
            return cls(each=True)
        try:
            seconds = float(word)
        except ValueError:
            seconds = -1.0
        if not 0 < seconds <= 86400:
            raise ValueError(f"--formfeed must be off, each or seconds (0 < s <= 86400), "
                             f"not {text[:20]!r}")
        return cls(quiet=seconds)

    def __str__(self) -> str:
        if self.each:
            return "each"
        return "off" if self.quiet is None else f"{self.quiet:g}"


class Splitter:
    """Cuts a byte stream into jobs (see the module docstring)."""

    def __init__(self, *, idle: float | None = None, formfeed: FormFeedRule | None = None,
                 ) -> None:
        if idle is not None and not idle > 0:
            raise ValueError(f"--idle must be more than 0 seconds, not {idle}")
        self.idle = idle
        self.rule = formfeed or FormFeedRule()
        self._job = bytearray()
        self._last = 0.0  # when the last byte came

    @property
    def pending(self) -> int:
        """Bytes of the job in progress."""
        return len(self._job)

    def feed(self, data: bytes, now: float) -> list[bytes]:
        """Take bytes the writer wrote; return the jobs they completed."""
        done: list[bytes] = []
        if not data:
            return done
        self._last = now
        if self.rule.each:
            start = 0
            while (i := data.find(FF, start)) >= 0:
                self._job += data[start:i + 1]
                done.append(self._take())
                start = i + 1
            self._job += data[start:]
        else:
            self._job += data
        return done

    def deadline(self) -> float | None:
        """When `tick` would end the job in progress (None: only a hang-up will)."""
        if not self._job:
            return None
        times = []
        if self.idle is not None:
            times.append(self._last + self.idle)
        if self.rule.quiet is not None and self._job[-1] == FF:
            times.append(self._last + self.rule.quiet)
        return min(times) if times else None

    def tick(self, now: float) -> list[bytes]:
        """The job in progress, if its idle or form-feed time has passed by `now`."""
        due = self.deadline()
        if due is not None and now >= due:
            return [self._take()]
        return []

    def hangup(self) -> list[bytes]:
        """The writer closed (or capture stops): the job in progress ends."""
        return [self._take()] if self._job else []

    def _take(self) -> bytes:
        job = bytes(self._job)
        self._job.clear()
        return job
