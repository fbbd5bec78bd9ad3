"""The seam between the engine and its user interface, read from the source.

The console talks to a running server only through `printnet.operator`'s
protocol: it imports no engine module (server, spool, worker, master file, job
verbs, the protocol's implementation).  The engine imports neither the console
nor the CLI.  Both are checked on the import statements of every module
(AST), including imports inside functions.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import printnet

PACKAGE = Path(printnet.__file__).parent

# What the console may not reach: the engine's state, stores, locks and workers.
ENGINE = ("printnet.server", "printnet.spool", "printnet.worker", "printnet.masterfile",
          "printnet.verbs", "printnet.operated", "printnet.operated_jobs",
          "printnet.scheduling", "printnet.cycle", "printnet.api")
# What the engine may not reach: its user interfaces.
INTERFACE = ("printnet.console", "printnet.cli", "printnet.control", "printnet.launch")


def imports(path: Path) -> set[str]:
    """Every module `path` imports, at the top or inside a function."""
    tree = ast.parse(path.read_text("utf-8"), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def modules(*relative: str) -> list[Path]:
    out: list[Path] = []
    for rel in relative:
        path = PACKAGE / rel
        out += sorted(path.rglob("*.py")) if path.is_dir() else [path.with_suffix(".py")]
    return [p for p in out if p.exists()]


def test_the_console_reaches_the_server_only_through_the_operator_protocol() -> None:
    console = modules("console")
    assert len(console) >= 6, console  # the package exists, split by concern
    bad = {f"{p.relative_to(PACKAGE)}: {name}" for p in console for name in imports(p)
           if within(name, ENGINE)}
    assert not bad, sorted(bad)
    assert any("printnet.operator" in imports(p) for p in console)


def test_the_engine_does_not_import_its_user_interface() -> None:
    engine = modules("server", "spool", "worker", "verbs", "operated", "operated_jobs",
                     "operator", "masterfile", "scheduling", "cycle")
    assert any(p.name == "operated.py" for p in engine)
    bad = {f"{p.relative_to(PACKAGE)}: {name}" for p in engine for name in imports(p)
           if within(name, INTERFACE)}
    assert not bad, sorted(bad)


def test_no_console_module_is_over_600_lines_without_saying_why() -> None:
    for path in modules("console", "operator", "operated", "operated_jobs", "control"):
        lines = path.read_text("utf-8").count("\n")
        doc = ast.get_docstring(ast.parse(path.read_text("utf-8"))) or ""
        assert lines <= 600 or "lines" in doc, f"{path.name}: {lines} lines"


def test_no_module_is_over_600_lines_without_saying_why() -> None:
    """Small modules: one over ~600 lines names its size and why in its docstring."""
    long = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text("utf-8")
        lines = text.count("\n")
        doc = ast.get_docstring(ast.parse(text)) or ""
        if lines > 600 and not re.search(r"\b\d{3,} lines\b", doc):
            long[str(path.relative_to(PACKAGE))] = lines
    assert not long, long
