"""The strict mode of `_ci_strict`: in CI a fixture that cannot come up fails.

The GlusterFS fixture is broken on purpose (``PRINTNET_TEST_GLUSTERD`` points
it at a glusterd that exits at once) and the real multi-host test module runs
in a pytest subprocess: with ``CI=true`` every test fails with the fixture's
reason; without it they skip with that reason.  Either way the census line
counts what ran and what skipped.  A second, small test module checks the
other ways in: `unavailable()` from any fixture, and a bare ``pytest.skip`` in
a test marked ``users``, which strict mode turns into a failure.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
PROBE = "tests/test_multihost.py::test_probe_sees_both_mounts_as_one_share"
CENSUS = re.compile(r"multihost (\d+) ran, users (\d+) ran, chaos (\d+) ran, skipped (\d+)")


def _pytest(args: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str]:
    full = {k: v for k, v in os.environ.items()
            if k not in ("CI", "PRINTNET_REQUIRE_ALL", "PRINTNET_TEST_SHARED",
                         "PYTEST_ADDOPTS")}
    full.update(env)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rfEs",
                           "-o", "addopts=", *args], cwd=cwd, env=full, capture_output=True,
                          text=True, timeout=600, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def _census(out: str) -> tuple[int, ...]:
    found = CENSUS.findall(out)
    assert found, out[-3000:]
    return tuple(int(n) for n in found[-1])


@pytest.mark.slow
def test_a_broken_gluster_fixture_fails_in_ci_and_skips_otherwise(tmp_path: Path) -> None:
    bogus = tmp_path / "glusterd"
    bogus.write_text("#!/bin/sh\necho 'bogus glusterd: broken on purpose' >&2\nexit 1\n")
    bogus.chmod(0o755)
    broken = {"PRINTNET_TEST_GLUSTERD": str(bogus)}
    # Without root the fixture fails earlier, for that reason: strict mode all the same.
    reason = "bogus glusterd: broken on purpose" if os.geteuid() == 0 else "needs root"

    code, out = _pytest([PROBE], {**broken, "CI": "true"}, ROOT)
    assert code == 1, out[-3000:]
    assert "required in CI, but unavailable: no shared filesystem here" in out, out[-3000:]
    assert reason in out, out[-3000:]
    assert re.search(r"\b2 errors?\b", out), out[-3000:]  # both tiers, each with the reason
    assert _census(out) == (0, 0, 0, 0)

    code, out = _pytest([PROBE], {**broken, "PRINTNET_REQUIRE_ALL": "0"}, ROOT)
    assert code == 0, out[-3000:]
    assert "2 skipped" in out and reason in out, out[-3000:]
    assert "earlier in this run" in out, out[-3000:]  # the second tier says why
    assert _census(out) == (0, 0, 0, 2)


def test_unavailable_and_stray_skips_in_strict_mode(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["_ci_strict"]\n')
    (tmp_path / "test_x.py").write_text(textwrap.dedent("""
        import pytest
        from _ci_strict import unavailable

        @pytest.fixture
        def disk():
            unavailable("cannot mount a tmpfs: no such device")

        def test_needs_disk(disk):
            pass

        @pytest.mark.users
        def test_stray_skip():
            pytest.skip("forgot to use unavailable()")

        @pytest.mark.multihost
        @pytest.mark.chaos
        def test_runs():
            pass

        def test_plain_skip_elsewhere():
            pytest.skip("not a group CI relies on")
    """))
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n  users\n  multihost\n  chaos\n")
    env = {"PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    code, out = _pytest(["test_x.py"], {**env, "CI": "true"}, tmp_path)
    assert code == 1, out
    assert "required in CI, but unavailable: cannot mount a tmpfs" in out, out
    assert "skipped in CI (strict mode), which is a failure" in out, out
    assert "forgot to use unavailable()" in out, out
    assert _census(out) == (1, 0, 1, 1)  # only the ungrouped skip still skips
    code, out = _pytest(["test_x.py"], {**env, "PRINTNET_REQUIRE_ALL": "0"}, tmp_path)
    assert code == 0, out
    assert _census(out) == (1, 0, 1, 3)


def test_a_hung_test_fails_with_its_name(tmp_path: Path) -> None:
    """The suite's per-test timeout (pytest-timeout, `timeout` in pyproject.toml)."""
    (tmp_path / "test_hang.py").write_text("import time\n\ndef test_hangs():\n"
                                           "    time.sleep(120)\n")
    code, out = _pytest(["-o", "timeout=2", "test_hang.py"], {}, tmp_path)
    assert code == 1, out
    assert "Timeout" in out and "test_hangs" in out, out
