"""Loaded (via PYTHONPATH) into Python processes that run under libfaketime.

libfaketime 0.9.10 (Debian 12) breaks Python's `time.sleep` when it is told to
leave the monotonic clock alone (``FAKETIME_DONT_FAKE_MONOTONIC=1``): Python
3.11 sleeps with ``clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME)``, which the
library rewrites into an invalid request (EINVAL).  Faking the monotonic clock
instead makes every timed wait (``sem_clockwait``) hang for the skew.  So the
monotonic clock stays real and `time.sleep` waits in `select` (a relative
timeout the library does not touch).  Only the wall clock is skewed, which is
what the tests want.
"""

from __future__ import annotations

import select
import time
from typing import SupportsIndex


def _sleep(secs: float | SupportsIndex) -> None:
    end = time.monotonic() + (secs if isinstance(secs, float) else secs.__index__())
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return
        select.select([], [], [], left)


time.sleep = _sleep
