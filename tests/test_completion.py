"""Shell completion through click's mechanism: real `printnet` processes started the
way bash, zsh and fish start them (the _PRINTNET_COMPLETE variable with COMP_WORDS
and COMP_CWORD), against a spool with printers, setups and queued jobs."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PRINTNET = [sys.executable, "-m", "printnet"]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith(("PRINTNET_", "_PRINTNET"))}
    e.update(PRINTNET_SPOOL=str(tmp_path / "spool"), PRINTNET_ETC=str(tmp_path / "etc"))
    assert subprocess.run([*PRINTNET, "init"], env=e, capture_output=True,
                          check=False).returncode == 0
    printers = tmp_path / "etc" / "printers.cmd"
    printers.write_text(printers.read_text()
                        + "PRINTER LASER PORT=file://../output/L.prn CLASS=OFFICE\n")
    return e


def _complete(env: dict[str, str], shell: str, line: str) -> str:
    words = line.split(" ")
    proc = subprocess.run(
        PRINTNET, env=dict(env, _PRINTNET_COMPLETE=f"{shell}_complete",
                           COMP_WORDS=line if shell == "fish" else " ".join(words),
                           COMP_CWORD=words[-1] if shell == "fish" else str(len(words) - 1)),
        capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0 and proc.stderr == "", proc
    return proc.stdout


def _queue(env: dict[str, str], tmp_path: Path, n: int) -> list[str]:
    doc = tmp_path / "a.txt"
    doc.write_text("x\n")
    ids = []
    for i in range(n):
        proc = subprocess.run([*PRINTNET, "request", "--hold", "-t", f"T{i}", str(doc)],
                              env=env, capture_output=True, text=True, check=True)
        ids.append(proc.stdout.strip())
    return ids


def test_printers_classes_and_setups_complete_in_every_shell(env: dict[str, str]) -> None:
    assert _complete(env, "bash", "printnet request -P ").split() == [
        "plain,LASER", "plain,LOCAL", "plain,OFFICE"]
    assert _complete(env, "bash", "printnet status -P lo").split() == ["plain,LOCAL"]
    assert _complete(env, "zsh", "printnet request -P L").split("\n") == [
        "plain", "LASER", "_", "plain", "LOCAL", "_", ""]
    assert _complete(env, "fish", "printnet request -P OF").split() == ["plain,OFFICE"]
    assert _complete(env, "bash", "printnet request -s C").split() == ["plain,CHECKS"]


def test_job_ids_complete_from_the_queue(env: dict[str, str], tmp_path: Path) -> None:
    ids = _queue(env, tmp_path, 3)
    assert _complete(env, "bash", "printnet cancel ").split() == [f"plain,{i}" for i in ids]
    assert _complete(env, "bash", f"printnet release {ids[1]}").split() == [f"plain,{ids[1]}"]
    zsh = _complete(env, "zsh", "printnet hold ").split("\n")
    me = pwd.getpwuid(os.geteuid()).pw_name
    assert zsh[:6] == ["plain", ids[0], f"{me}: T0", "plain", ids[1], f"{me}: T1"]


def test_an_unreadable_spool_completes_nothing_quietly(env: dict[str, str],
                                                       tmp_path: Path) -> None:
    bad = dict(env, PRINTNET_SPOOL=str(tmp_path / "nowhere"), PRINTNET_ETC=str(tmp_path / "x"))
    assert _complete(bad, "bash", "printnet cancel ").strip() == ""
    assert _complete(bad, "bash", "printnet request -P ").strip() == ""


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_prints_the_script(shell: str, env: dict[str, str]) -> None:
    proc = subprocess.run([*PRINTNET, "completion", shell], env=env, capture_output=True,
                          text=True, check=True)
    assert "_PRINTNET_COMPLETE" in proc.stdout and f"{shell}_complete" in proc.stdout
    if shell == "bash" and shutil.which("bash"):
        # The script is valid bash and registers the completion function.
        check = subprocess.run(["bash", "-c", proc.stdout + "\ncomplete -p printnet"],
                               capture_output=True, text=True, check=False)
        assert check.returncode == 0 and "printnet" in check.stdout, check.stderr
    bad = subprocess.run([*PRINTNET, "completion", "tcsh"], env=env, capture_output=True,
                         text=True, check=False)
    assert bad.returncode == 2
