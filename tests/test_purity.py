"""The pure core stays pure: no module of it imports the clock, the filesystem, the
network, a serial port, processes or threads — directly, lazily inside a function, or
through another printnet module it imports.

The core takes "now" as a parameter (docs/DESIGN.md, "Pure core and I/O shell"); this
test reads the source (AST), so an import that only runs on some path is caught too.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Final

import pytest

PACKAGE: Final = Path(__file__).resolve().parent.parent / "printnet"

PURE: Final = (
    "printnet.model",
    "printnet.masterfile",
    "printnet.scheduling",
    "printnet.lease",
    "printnet.cmdfile",
    "printnet.quota",
    "printnet.report",
    "printnet.settings",
    "printnet.charset",
    "printnet.splitter",
    "printnet.links",
    "printnet.printers.paginate",
    "printnet.printers.banner",
    "printnet.printers.drivers",
    "printnet.printers.render",
)

# Modules of the standard library and dependencies that do I/O, read the clock or
# start threads.  (Randomness is allowed: printnet.passwords draws a salt, and the
# command-file checker imports its pure hash checks.)
FORBIDDEN: Final = frozenset({
    "os", "time", "socket", "serial", "subprocess", "threading", "multiprocessing",
    "pathlib", "shutil", "tempfile", "select", "signal", "stat", "fcntl", "asyncio",
    "watchdog", "click", "ctypes",
})


def source_of(module: str) -> Path:
    parts = module.split(".")[1:]
    folder = PACKAGE.joinpath(*parts)
    return folder / "__init__.py" if folder.is_dir() else folder.with_suffix(".py")


def imports_of(module: str) -> set[str]:
    """Every module `module`'s source imports, anywhere in the file (absolute names)."""
    tree = ast.parse(source_of(module).read_text(), str(source_of(module)))
    package = module.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                name = f"{base}.{node.module}" if node.module else base
            else:
                name = node.module or ""
            found.add(name)
            # `from printnet import cmdfile` imports the module printnet.cmdfile.
            for alias in node.names:
                if source_of(f"{name}.{alias.name}").exists() and name.startswith("printnet"):
                    found.add(f"{name}.{alias.name}")
    return found


def impurities(module: str) -> list[str]:
    """Each forbidden import reachable from `module`, as 'a -> b -> os'."""
    bad: list[str] = []
    seen: set[str] = set()
    stack: list[tuple[str, str]] = [(module, module)]
    while stack:
        name, path = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        for imported in sorted(imports_of(name)):
            top = imported.split(".")[0]
            if top in FORBIDDEN:
                bad.append(f"{path} -> {imported}")
            elif top == "printnet" and imported != "printnet" and source_of(imported).exists():
                stack.append((imported, f"{path} -> {imported}"))
    return bad


@pytest.mark.parametrize("module", PURE)
def test_a_pure_module_imports_no_io(module: str) -> None:
    assert source_of(module).exists(), f"{module}: no such module (update PURE)"
    assert impurities(module) == []


def test_the_check_catches_an_impure_import(tmp_path: Path) -> None:
    """The walk itself works: the I/O shell is reported impure, through its imports."""
    assert any(line.endswith("-> os") for line in impurities("printnet.config"))
    assert any("printnet.spool.publish -> " in line for line in impurities("printnet.config"))


CLOCK_CALLS: Final = frozenset({"now", "utcnow", "today", "fromtimestamp"})


def clock_calls(module: str) -> list[str]:
    """Calls like `datetime.now()` in `module`'s source (line numbers)."""
    tree = ast.parse(source_of(module).read_text())
    return [f"{module}:{node.lineno}: {node.func.attr}()" for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr in CLOCK_CALLS]


@pytest.mark.parametrize("module", PURE)
def test_a_pure_module_never_reads_the_clock(module: str) -> None:
    """`now` is a parameter: no datetime.now() (model.py once called it at import)."""
    assert clock_calls(module) == []
