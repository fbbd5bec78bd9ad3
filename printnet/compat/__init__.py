"""The lp/lpr family, busybox-style: `printnet` started as lp, lpr, lpq, lprm,
lpstat or cancel behaves like that command (docs/COMPAT.md has the table).

`printnet.launch.main` looks at the basename of argv[0] and, for one of
`NAMES`, calls `run` before anything else is imported, so a script that calls
`lpr` pays no more start-up than `printnet request` on its fast path (no
click).  The commands take their options the way the originals do (attached
values `-Pname`, `-#2`; grouped flags `-hl`; options after files for lp) and
answer with the originals' output shapes and exit codes, because scripts
parse them: lpr and lprm are silent on success, lp prints ``request id is
DEST-ID (N file(s))``, every failure is one line ``NAME: reason`` and exit 1.

There is no --spool or --etc among the originals' options: the spool and the
configuration come from PRINTNET_SPOOL and PRINTNET_ETC (default ./spool and
./etc, as for `printnet`).

`install` and `remove` manage the links for `printnet compat install|remove`:
a link is "ours" when it is a symlink named one of `NAMES` whose target's
basename is ``printnet``; nothing else is ever overwritten or removed.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # as in printnet.launch: typing costs more than this module
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path

    from printnet.api import Station

NAMES = ("lp", "lpr", "lpq", "lprm", "lpstat", "cancel")
TARGET_NAME = "printnet"


class CompatError(Exception):
    """A usage error of an lp/lpr command: printed as ``NAME: message``, exit 1."""


def run(name: str, argv: list[str]) -> int:
    """Run compat command `name` with `argv` (without argv[0]); the exit status."""
    from printnet.errors import PrintnetError

    commands: dict[str, Callable[[list[str]], int]]
    if name in ("lp", "lpr"):
        from printnet.compat import submit

        commands = {"lp": submit.lp, "lpr": submit.lpr}
    else:
        from printnet.compat import queue

        commands = {"lpq": queue.lpq, "lprm": queue.lprm, "lpstat": queue.lpstat,
                    "cancel": queue.cancel}
    try:
        return commands[name](argv)
    except (CompatError, PrintnetError) as exc:
        sys.stdout.flush()
        sys.stderr.write(f"{name}: {exc}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("\n")
        return 130
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


def station() -> Station:
    """The Station of PRINTNET_SPOOL and PRINTNET_ETC (./spool, ./etc by default)."""
    from pathlib import Path

    from printnet.api import Station, station_etc

    etc = Path(os.environ.get("PRINTNET_ETC") or "etc")
    return Station(Path(os.environ.get("PRINTNET_SPOOL") or "spool"),
                   station_etc(etc), strict=True)


def getopt(argv: Sequence[str], spec: str, *, interspersed: bool = True,
           ) -> tuple[list[tuple[str, str]], list[str]]:
    """POSIX short options as the originals parse them: `spec` as for getopt(3)
    ("P:#:hl"); values attached (-Pname) or separate (-P name); flags grouped
    (-hl); `--` ends the options; `-` alone is an argument (standard input).
    With `interspersed`, options may follow arguments (CUPS lp and lpr allow it)."""
    opts: list[tuple[str, str]] = []
    args: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            args += argv[i:]
            break
        if arg == "-" or not arg.startswith("-"):
            args.append(arg)
            if not interspersed:
                args += argv[i:]
                break
            continue
        j = 1
        while j < len(arg):
            letter = arg[j]
            at = spec.find(letter)
            if letter == ":" or at < 0:
                raise CompatError(f"unknown option -{letter} (see docs/COMPAT.md)")
            if at + 1 < len(spec) and spec[at + 1] == ":":
                value = arg[j + 1:]
                if not value:
                    if i >= len(argv):
                        raise CompatError(f"option -{letter} needs a value")
                    value = argv[i]
                    i += 1
                opts.append((f"-{letter}", value))
                break
            opts.append((f"-{letter}", ""))
            j += 1
    return opts, args


def job_ref(text: str) -> str:
    """A job as the originals name it: an id, a unique suffix, or DEST-ID (lp's
    ``request id``).  Job ids never contain '-', so the part after the last one
    is the id."""
    return text.rsplit("-", 1)[-1] if "-" in text else text


# -- the links ------------------------------------------------------------------------


def target() -> Path:
    """The `printnet` executable the links point to: the one running, else $PATH's."""
    import shutil
    from pathlib import Path

    me = Path(sys.argv[0])
    if me.name == TARGET_NAME and me.is_file():
        return me.absolute()
    found = shutil.which(TARGET_NAME)
    if found is None:
        from printnet.errors import UsageError

        raise UsageError("no `printnet` executable found on $PATH; name it with --target")
    return Path(found).absolute()


def is_ours(link: Path) -> bool:
    """Whether `link` is a symlink this command made: named one of NAMES, to `printnet`."""
    from pathlib import Path

    return (link.name in NAMES and link.is_symlink()
            and Path(os.readlink(link)).name == TARGET_NAME)


def install(folder: Path, to: Path) -> list[tuple[Path, str]]:
    """Make folder/<name> -> `to` for every name; (link, what happened) per name.

    Checks every name before making any link: a file, or a link that is not ours,
    where a link should go refuses the whole install (nothing is made)."""
    from printnet.errors import UsageError

    if not folder.is_dir():
        raise UsageError(f"{folder}: not a folder")
    if to.name != TARGET_NAME:
        raise UsageError(f"{to}: the target must be named {TARGET_NAME}")
    clashes = [folder / n for n in NAMES
               if (os.path.lexists(folder / n)) and not is_ours(folder / n)]
    if clashes:
        raise UsageError("not ours, left alone (nothing installed): "
                         + ", ".join(str(c) for c in clashes))
    done: list[tuple[Path, str]] = []
    for name in NAMES:
        link = folder / name
        if is_ours(link) and os.readlink(link) == str(to):
            done.append((link, "already installed"))
            continue
        # Replace our own stale link atomically: a new name, then a rename over it.
        tmp = folder / f".{name}.printnet-{os.getpid()}"
        try:
            os.symlink(to, tmp)
            os.replace(tmp, link)
        except OSError as exc:
            from contextlib import suppress

            with suppress(OSError):
                os.unlink(tmp)
            raise UsageError(f"{link}: {exc.strerror}") from None
        done.append((link, f"-> {to}"))
    return done


def remove(folder: Path) -> list[tuple[Path, str]]:
    """Remove our links from `folder`; anything else of those names is left alone."""
    from printnet.errors import UsageError

    if not folder.is_dir():
        raise UsageError(f"{folder}: not a folder")
    done: list[tuple[Path, str]] = []
    for name in NAMES:
        link = folder / name
        if not os.path.lexists(link):
            continue
        if not is_ours(link):
            done.append((link, "not ours, left alone"))
            continue
        try:
            os.unlink(link)
        except OSError as exc:
            raise UsageError(f"{link}: {exc.strerror}") from None
        done.append((link, "removed"))
    return done
