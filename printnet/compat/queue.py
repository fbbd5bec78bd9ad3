"""`lpq`, `lprm`, `lpstat` and `cancel`: the queue as the originals show and change it.

The listings take CUPS' shapes (the ones scripts parse): lpq's ``DEST is
ready`` line and its Rank/Owner/Job/File(s)/Total Size table, ``no entries``;
lpstat's ``DEST-ID user size date`` job lines, ``printer DEST is idle.`` /
``now printing DEST-ID.`` / ``disabled``, ``system default destination:``.
Job ids are printnet's (18 characters), so the Job column is wider.
"""

from __future__ import annotations

import sys
from datetime import datetime

from printnet.compat import CompatError, getopt, job_ref, station

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from printnet.api import Station

_ORDINALS = {1: "st", 2: "nd", 3: "rd"}
_LPQ_HEAD = f"{'Rank':7} {'Owner':10} {'Job':18} {'File(s)':28} Total Size\n"


def _rank(n: int, job: dict[str, Any]) -> str:
    if job.get("state") == "printing":
        return "active"
    if job.get("state") == "held":
        return "held"
    suffix = "th" if 10 <= n % 100 <= 20 else _ORDINALS.get(n % 10, "th")
    return f"{n}{suffix}"


def _check(st: Station, names: list[str]) -> list[str]:
    """Destinations named on the command line, each known, in canonical case."""
    from printnet.model import normalize_name

    dests = st.destinations()
    out = []
    for name in names:
        dest = normalize_name(name)
        if dest not in dests.known:
            known = ", ".join(sorted(dests.known)) or "none"
            raise CompatError(f"unknown printer {name!r} (known: {known})")
        out.append(dest)
    return out


def _dest(st: Station, printer: str | None) -> str:
    name = printer or st.default_destination(prefer_lpdest=False)
    if not name:
        raise CompatError("no destination named (-P) and no default destination")
    return name


def _printer_line(st: Station, dest: str) -> str:
    printers = [p for p in st.printers() if p.get("name") == dest
                or dest in (p.get("classes") or [])]
    if any(p.get("state") == "printing" for p in printers):
        return f"{dest} is ready and printing\n"
    if any(p.get("state") == "idle" for p in printers):
        return f"{dest} is ready\n"
    return f"{dest} is not ready\n"


def lpq(argv: list[str]) -> int:
    """lpq [-P DEST] [-a] [-l]: the queue of one destination (default) or all."""
    opts, args = getopt(argv, "P:alU:")
    printer, every = None, False
    for name, value in opts:
        if name == "-P":
            printer = value
        elif name == "-a":
            every = True
    if args:
        raise CompatError("job and user selection is not supported; use printnet status")
    st = station()
    dest = None
    if not every:
        [dest] = _check(st, [_dest(st, printer)])
    jobs = st.status(printer=dest).jobs
    write = sys.stdout.write
    if dest is not None:
        write(_printer_line(st, dest))
    if not jobs:
        write("no entries\n")
        return 0
    write(_LPQ_HEAD)
    for n, job in enumerate(jobs, 1):
        write(f"{_rank(n, job):7} {job['user']:10.10} {job['id']:18} "
              f"{job.get('title') or '(standard input)':28.28} {job.get('size', 0)} bytes\n")
    return 0


def _mine(st: Station, dests: list[str] | None) -> list[dict[str, Any]]:
    jobs = st.status(user=st.user).jobs
    return [j for j in jobs if dests is None or j["printer"] in dests
            or j.get("assigned") in dests]


def _cancel(st: Station, ids: list[str]) -> None:
    from printnet.model import ControlAction

    if not ids:
        return
    outcomes = st.control(ControlAction.CANCEL, ids)
    refused = {j: o for j, o in outcomes.items() if o not in ("applied", "queued")}
    if refused:
        raise CompatError("; ".join(f"{j}: {o}" for j, o in refused.items()))


def lprm(argv: list[str]) -> int:
    """lprm [-P DEST] [JOB...|-]: cancel jobs (`-`: all yours on DEST); silent."""
    opts, args = getopt(argv, "P:U:")
    printer = next((v for n, v in opts if n == "-P"), None)
    st = station()
    if args and args != ["-"]:
        _cancel(st, [st.resolve(job_ref(a)) for a in args if a != "-"])
        return 0
    [dest] = _check(st, [_dest(st, printer)])
    mine = _mine(st, [dest])
    if args == ["-"]:
        _cancel(st, [j["id"] for j in mine])
    elif mine:  # no JOB: the current one (printing, else the next of yours)
        active = [j for j in mine if j["state"] == "printing"] or mine
        _cancel(st, [active[0]["id"]])
    return 0


def cancel(argv: list[str]) -> int:
    """cancel JOB... | cancel -a [DEST...]: cancel jobs (yours; an operator's any)."""
    opts, args = getopt(argv, "aU:u:")
    st = station()
    if any(n == "-a" for n, _ in opts):
        dests = _check(st, args) if args else None
        _cancel(st, [j["id"] for j in _mine(st, dests)])
        return 0
    if not args:
        raise CompatError("name a job, or -a for all of yours")
    known = st.destinations().known
    ids: list[str] = []
    for arg in args:
        if arg.upper() in known:  # `cancel DEST`: the current job of yours there
            mine = _mine(st, [arg.upper()])
            ids += [mine[0]["id"]] if mine else []
        else:
            ids.append(st.resolve(job_ref(arg)))
    _cancel(st, ids)
    return 0


def _when(iso: str) -> str:
    try:
        moment = datetime.fromisoformat(iso).astimezone()
    except (TypeError, ValueError):
        return iso
    return moment.strftime("%a %d %b %Y %I:%M:%S %p %Z")


def lpstat(argv: list[str]) -> int:
    """lpstat [-o [DEST]] [-p [DEST]] [-d] [-a] [-r] [-t]; without options: your jobs."""
    # Values are optional for -o, -p, -a: a following word that is not an option.
    shows: list[tuple[str, list[str]]] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if not arg.startswith("-") or len(arg) < 2:
            raise CompatError(f"unexpected argument {arg!r}")
        letter, rest = arg[1], arg[2:]
        if letter not in "opdtar" or (rest and letter in "dtr"):
            raise CompatError(f"unknown option {arg} (see docs/COMPAT.md)")
        names = rest.replace(",", " ").split()
        if letter in "opa" and not rest and i < len(argv) and not argv[i].startswith("-"):
            names = argv[i].replace(",", " ").split()
            i += 1
        shows.append((letter, names))
    st = station()
    write = sys.stdout.write
    if not shows:
        for job in _mine(st, None):
            write(_job_line(job))
        return 0
    for letter, names in shows:
        dests = _check(st, names) if names else None
        if letter == "t":
            write(_scheduler(st))
            write(_default(st))
            write("".join(_accepting(st, None)))
            write("".join(_printers(st, None)))
            write("".join(_job_line(j) for j in st.status().jobs))
        elif letter == "r":
            write(_scheduler(st))
        elif letter == "d":
            write(_default(st))
        elif letter == "a":
            write("".join(_accepting(st, dests)))
        elif letter == "p":
            write("".join(_printers(st, dests)))
        else:  # -o
            write("".join(_job_line(j) for j in st.status().jobs
                          if dests is None or j["printer"] in dests
                          or j.get("assigned") in dests))
    return 0


def _job_line(job: dict[str, Any]) -> str:
    name = f"{job['assigned'] or job['printer']}-{job['id']}"
    return f"{name:30} {job['user']:13} {job.get('size', 0):>10}   {_when(job['submitted'])}\n"


def _scheduler(st: Station) -> str:
    alive = any(p.get("state") != "unknown" for p in st.printers())
    return "scheduler is running\n" if alive else "scheduler is not running\n"


def _default(st: Station) -> str:
    dest = st.default_destination(prefer_lpdest=True)
    if dest is None:
        return "no system default destination\n"
    return f"system default destination: {dest}\n"


def _printers(st: Station, dests: list[str] | None) -> list[str]:
    out = []
    for p in st.printers():
        name = p.get("name")
        if dests is not None and name not in dests:
            continue
        state = p.get("state")
        if state == "printing" and p.get("job"):
            out.append(f"printer {name} now printing {name}-{p['job']}.  enabled\n")
        elif state == "idle":
            out.append(f"printer {name} is idle.  enabled\n")
        else:
            reasons = "; ".join(p.get("reasons") or []) or str(state)
            out.append(f"printer {name} disabled -\n\t{reasons}\n")
    return out


def _accepting(st: Station, dests: list[str] | None) -> list[str]:
    out = []
    for p in st.printers():
        name = p.get("name")
        if dests is not None and name not in dests:
            continue
        if p.get("accepting") is False:
            out.append(f"{name} not accepting requests -\n\t"
                       f"{p.get('reject_reason') or 'not accepting'}\n")
        else:
            out.append(f"{name} accepting requests\n")
    return out
