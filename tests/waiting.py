"""Waiting in tests, once: `wait_for` polls a condition with a generous deadline.

Tests on this shared, loaded 2-core machine never sleep a fixed time and hope; they
wait for the condition they need and fail with what they waited for (and, through
`on_timeout`, e.g. the servers' logs) when it does not come.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(cond: Callable[[], T | None], timeout: float = 15.0, what: str = "the condition", *,
             interval: float = 0.05, on_timeout: Callable[[], str] | None = None) -> T:
    """Poll `cond` every `interval` seconds until it returns something truthy, and return
    that; at the deadline raise AssertionError naming `what`, the last value and
    `on_timeout()`'s text."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() >= deadline:
            extra = f"\n{on_timeout()}" if on_timeout is not None else ""
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what} "
                                 f"(last value {value!r}){extra}")
        time.sleep(interval)
