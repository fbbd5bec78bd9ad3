"""`lpr` and `lp`: queue files (or standard input) the way the originals do.

Both end in `Station.submit`, exactly as `printnet request` does; only the
option letters and the output differ (docs/COMPAT.md).  `lp -i JOB -H
hold|resume` changes a queued job instead (a control request).
"""

from __future__ import annotations

import sys

from printnet.compat import CompatError, getopt, job_ref, station

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from printnet.api import Station

# CUPS' -q runs 1..100, default 50; printnet has three priorities, and overnight
# means "in the NIGHT window", which no lp user asks for by a number.
HIGH_FROM = 51


def _copies(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise CompatError(f"bad number of copies {text!r}") from None


def _submit(st: Station, files: list[str], options: dict[str, Any]) -> list[Any]:
    from printnet.launch import ask_password_on_terminal

    if not files:
        files = ["-"]
    if files.count("-") > 1:
        raise CompatError("standard input (-) can be named only once")
    return st.submit(files, stdin=sys.stdin.buffer if "-" in files else None,
                     ask=ask_password_on_terminal(files), **options)


def lpr(argv: list[str]) -> int:
    """lpr [-P DEST] [-# N] [-T TITLE] [-J NAME] [-h] [-l] [FILE...]: silent on success."""
    opts, files = getopt(argv, "P:#:T:J:C:hlU:")
    printer = title = job_name = None
    options: dict[str, Any] = {}
    for name, value in opts:
        if name == "-P":
            printer = value
        elif name == "-#":
            options["copies"] = _copies(value)
        elif name == "-T":
            title = value
        elif name in ("-J", "-C"):  # job name (-C: class, printed on the banner)
            job_name = value
        elif name == "-h":
            options["header"] = False
        elif name == "-l":
            options["raw"] = True
        elif name == "-U":
            raise CompatError("-U (submit as another user) is not supported")
    st = station()
    options["title"] = title if title is not None else (job_name or "")
    options["printer"] = printer or st.default_destination(prefer_lpdest=False)
    _submit(st, files, options)
    return 0


def lp(argv: list[str]) -> int:
    """lp [-d DEST] [-n N] [-t TITLE] [-q 1-100] [-H hold|resume|immediate] [-o OPT]
    [-s] [-c] [FILE...], or lp -i JOB -H hold|resume: prints the request id."""
    opts, files = getopt(argv, "d:n:t:q:H:o:i:scmwE")
    printer = job = hold_arg = None
    silent = False
    options: dict[str, Any] = {"title": ""}
    for name, value in opts:
        if name == "-d":
            printer = value
        elif name == "-n":
            options["copies"] = _copies(value)
        elif name == "-t":
            options["title"] = value
        elif name == "-q":
            try:
                level = int(value)
            except ValueError:
                level = 0
            if not 1 <= level <= 100:
                raise CompatError(f"priority must be 1..100, not {value!r}")
            options["priority"] = "high" if level >= HIGH_FROM else "standard"
        elif name == "-H":
            hold_arg = value.lower()
            if hold_arg not in ("hold", "resume", "immediate"):
                raise CompatError(f"-H {value}: use hold, resume or immediate "
                                  "(a time of day is not supported)")
        elif name == "-o":
            for item in value.split():
                _option(item, options)
        elif name == "-i":
            job = value
        elif name == "-s":
            silent = True
        elif name in ("-m", "-w"):
            raise CompatError(f"{name} (mail or write when done) is not supported")
        # -c (copy the files now: printnet always does) and -E (encryption) change nothing
    st = station()
    if job is not None:
        return _change(st, job, hold_arg, files)
    if hold_arg == "hold":
        options["hold"] = True
    elif hold_arg == "immediate":
        options["priority"] = "high"
    elif hold_arg == "resume":
        raise CompatError("-H resume needs -i JOB")
    options["printer"] = printer or st.default_destination(prefer_lpdest=True)
    requests = _submit(st, files, options)
    if not silent:
        named = sum(1 for f in files if f != "-")  # CUPS counts standard input as 0 files
        for req in requests:
            sys.stdout.write(f"request id is {req.printer}-{req.id} ({named} file(s))\n")
    return 0


def _option(item: str, options: dict[str, Any]) -> None:
    """One -o NAME[=VALUE] of CUPS; those printnet cannot honour are said and ignored."""
    key, _, value = item.partition("=")
    key = key.lower()
    if key in ("raw", "document-format") and (key == "raw" or value.endswith("octet-stream")):
        options["raw"] = True
    elif key in ("nobanner",) or (key == "job-sheets" and value.lower().startswith("none")):
        options["header"] = False
    elif key == "job-hold-until" and value.lower() == "indefinite":
        options["hold"] = True
    elif key == "copies":
        options["copies"] = _copies(value)
    elif key == "job-priority":
        options["priority"] = "high" if value.isdigit() and int(value) >= HIGH_FROM \
            else "standard"
    else:
        sys.stderr.write(f"lp: ignoring option -o {item} (not supported by printnet)\n")


def _change(st: Station, job: str, hold_arg: str | None, files: list[str]) -> int:
    from printnet.model import ControlAction

    if files:
        raise CompatError("-i JOB takes no files")
    if hold_arg not in ("hold", "resume"):
        raise CompatError("-i JOB needs -H hold or -H resume")
    action = ControlAction.HOLD if hold_arg == "hold" else ControlAction.RELEASE
    outcomes = st.control(action, [job_ref(job)])
    refused = {j: o for j, o in outcomes.items() if o not in ("applied", "queued")}
    if refused:
        raise CompatError("; ".join(f"{j}: {o}" for j, o in refused.items()))
    return 0
