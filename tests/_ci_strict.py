"""pytest plugin: in CI nothing skips silently, and the run says what it ran.

A fixture that cannot come up (the GlusterFS share, real Unix users, a tmpfs
fault disk, libfaketime) calls `unavailable(reason)`.  Outside CI that is a
skip with the reason; in **strict mode** it is a failure with the reason.
Strict mode is on when ``CI=true`` (or ``1``) or ``PRINTNET_REQUIRE_ALL=1``;
``PRINTNET_REQUIRE_ALL=0`` turns it off even in CI.  In strict mode any skip of
a test marked ``multihost``, ``users`` or ``chaos`` -- whoever raised it -- is
reported as a failure too, so a forgotten ``pytest.skip`` cannot hide a group.

At the end of every run one line counts what ran, by marker::

    multihost N ran, users N ran, chaos N ran, skipped K

(``ran`` = the test's body ran, passed or failed; ``skipped`` = every skipped
test of the run.)  Registered by ``pytest_plugins`` in conftest.py.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import NoReturn, TypeVar

import pytest

T = TypeVar("T")

GROUPS = ("multihost", "users", "chaos")
STRICT_SKIP = "printnet_strict_skip"


def strict() -> bool:
    """True when a fixture that cannot come up must fail (CI)."""
    require = os.environ.get("PRINTNET_REQUIRE_ALL", "").strip().lower()
    if require in ("1", "true", "yes"):
        return True
    if require in ("0", "false", "no"):
        return False
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def unavailable(reason: str) -> NoReturn:
    """This test's fixture cannot come up: fail in strict mode, else skip; with `reason`."""
    if strict():
        pytest.fail(f"required in CI, but unavailable: {reason}", pytrace=False)
    pytest.skip(reason)


def require(what: str, make: Callable[[], T], *errors: type[BaseException]) -> T:
    """`make()`; if it raises one of `errors`, `unavailable("WHAT: <error>")`."""
    try:
        return make()
    except errors as exc:
        unavailable(f"{what}: {exc}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if not (strict() and report.skipped) or hasattr(report, "wasxfail"):
        return
    if not any(item.get_closest_marker(group) for group in GROUPS):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
    report.outcome = "failed"
    report.longrepr = f"skipped in CI (strict mode), which is a failure: {reason}"
    report.user_properties.append((STRICT_SKIP, True))  # failed, but did not run


def census(stats: dict[str, list[object]]) -> str:
    """The one-line census of a run from the terminal reporter's `stats`."""
    ran = dict.fromkeys(GROUPS, 0)
    for key in ("passed", "failed"):
        for report in stats.get(key, []):
            if getattr(report, "when", None) != "call":
                continue
            if (STRICT_SKIP, True) in getattr(report, "user_properties", ()):
                continue
            keywords = getattr(report, "keywords", {})
            for group in GROUPS:
                if group in keywords:
                    ran[group] += 1
    skipped = len(stats.get("skipped", []))
    return ", ".join(f"{group} {ran[group]} ran" for group in GROUPS) + f", skipped {skipped}"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    terminalreporter.write_line(census(terminalreporter.stats))
