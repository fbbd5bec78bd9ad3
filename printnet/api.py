"""The Python API for stations and programs: submit, query, cancel/hold/release.

The CLI's station commands are thin wrappers around `Station`; programs that
submit in bulk use `Station.submit_many` (one durability pass per batch).
Every call validates all of its input before it writes anything.

About 660 lines on purpose: `Station` is one object whose submit, status,
control and destination lookups share its spool, user and cached view of the
published configuration; the on-disk side of that view is `spool.site`.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from printnet import charset
from printnet.errors import (
    ConfigError,
    LinkDown,
    NotFound,
    PrintnetError,
    SealError,
    UsageError,
)
from printnet.model import (
    MAX_COPIES,
    MAX_TITLE,
    ControlAction,
    Format,
    PrintRequest,
    Priority,
    clean_text,
    decode_request,
    normalize_name,
    valid_job_id,
    valid_name,
    valid_station,
    valid_user,
)
from printnet.spool.layout import REQ_SUFFIX, Spool
from printnet.spool.publish import read_bytes

# The master file's modules (masterfile, spool.master, spool.intake) are imported where
# a job is listed or looked up: `printnet request` needs none of them.
if TYPE_CHECKING:
    from printnet.masterfile import Job, LazyState

WAITING_NOTE = "waiting for a server to take it in"
# (position, id, user, printer, priority, state, submitted, title, note), as text
ListedJob = tuple[int | str, str, str, str, str, str, str, str, str]  # POS "-": not queued


def this_station() -> str:
    name = os.uname().nodename.split(".")[0]  # = gethostname(), without importing socket
    cleaned = "".join(c for c in name if c.isalnum() or c in "-_.") or "station"
    return cleaned if valid_station(cleaned) else "station"


def this_user() -> str:
    import pwd  # not spool.intake's cached lookup: its module costs a request more

    uid = os.geteuid()
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        name = f"uid{uid}"  # as the servers name an owner without an account
    if not valid_user(name):
        raise UsageError(f"user name {name!r} cannot be used in a request")
    return name


@dataclass(frozen=True)
class Destinations:
    """What this station knows of printers, classes and setups, and the site's default.

    From the station's own etc/ where it may read it, the published site files
    (`printnet.spool.site`) and the servers' status files; `default_from` says
    where `default` came from; `problems` are the "cannot read" lines met on the
    way (reported only when they leave the station knowing nothing)."""

    printers: frozenset[str] = frozenset()
    classes: frozenset[str] = frozenset()
    setups: frozenset[str] = frozenset()
    default: str | None = None
    default_from: str = ""
    problems: tuple[str, ...] = ()

    @property
    def known(self) -> frozenset[str]:
        return self.printers | self.classes

    def unknown(self, name: str, source: str = "") -> UsageError:
        """The error for a destination nobody publishes, listing those that are known."""
        where = f" from {source}" if source else ""
        known = ", ".join(sorted(self.known)) or "none"
        return UsageError(f"unknown printer {name!r}{where} (known: {known})")


@dataclass
class StatusView:
    jobs: list[dict[str, Any]] = field(default_factory=list)
    printers: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"jobs": self.jobs, "printers": self.printers}



def station_etc(etc: Path) -> Path | None:
    """The etc/ folder a station command may use: `etc` if it is there, else None
    (the station then goes by the published site configuration).  A folder it may
    not even look at (a working directory of another user's, a 0700 parent) counts
    as absent, not as an error: stations are not meant to read etc/."""
    try:
        return etc if etc.exists() else None
    except OSError:
        return None

@dataclass(frozen=True)
class _OwnSite:
    """What `Station.destinations` takes from the station's own etc/, as published."""

    printers: frozenset[str]
    classes: dict[str, tuple[str, ...]]
    setups: frozenset[str]
    default_printer: str | None
    etc: Path
    site_name: str | None


def _read_small(fd: int, limit: int = 1 << 20) -> bytes | None:
    """A regular file's bytes (None if it is not one, or larger than `limit`)."""
    import stat

    if not stat.S_ISREG(os.fstat(fd).st_mode):
        return None
    chunks = []
    size = 0
    while size <= limit and (chunk := os.read(fd, 1 << 16)):
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks) if size <= limit else None


class Station:
    """A station's view of one spool (and optionally an etc/ folder to learn printers)."""

    def __init__(
        self,
        spool_dir: Path,
        etc_dir: Path | None = None,
        *,
        user: str | None = None,
        station: str | None = None,
        strict: bool = False,
    ) -> None:
        self.spool = Spool.open(spool_dir)
        self.etc = etc_dir
        # strict (the CLI): a destination must be known, also when nothing is
        # known at all; the API alone accepts any name on a spool that publishes
        # nothing (programs and tests that set up a bare spool).
        self.strict = strict
        self.user = user or this_user()
        self.station = station or this_station()
        self._site: tuple[str | None] | None = None  # (site,) once looked up

    # -- destinations ------------------------------------------------------------

    def destinations(self) -> Destinations:
        """Printers, classes, setups and the default this station may use.

        Raises ConfigError when the station's own etc/ is readable but wrong (a
        broken configuration must not silently widen or narrow what is accepted),
        and, with `strict`, when nothing at all is known; an etc/ the user may not
        read is expected on a multi-user spool and is only reported then."""
        from printnet.spool.site import read_sites, site_default

        printers: set[str] = set()
        classes: set[str] = set()
        setups: set[str] = set()
        default = None
        default_from = ""
        problems: list[str] = []
        sites, site_problems = read_sites(self.spool)
        cfg = self._own_config(problems, sites)
        if cfg is not None:
            printers.update(cfg.printers)
            classes.update(cfg.classes)
            setups.update(cfg.setups)
            if cfg.default_printer:
                default = cfg.default_printer
                default_from = f"DEFAULT in {cfg.etc / 'printers.cmd'}"
        problems += site_problems
        for site in sites:
            printers.update(site.printers)
            classes.update(site.classes)
            setups.update(site.setups)
        chosen = site_default(sites)
        if default is None and chosen is not None:
            default = chosen.default
            default_from = f"DEFAULT of server {chosen.server} ({chosen.path})"
        for info in server_files(self.spool):
            for p in info.get("printers", []):
                if isinstance(p, dict) and isinstance(p.get("name"), str):
                    printers.add(p["name"])
                    classes.update(c for c in p.get("classes", []) if isinstance(c, str))
            setups.update(s for s in info.get("setups", []) if isinstance(s, str))
        dests = Destinations(frozenset(printers), frozenset(classes), frozenset(setups),
                             default, default_from, tuple(problems))
        if self.strict and not dests.known:
            said = "; ".join(problems) + "; " if problems else ""
            raise ConfigError(
                str(self.spool.servers), 0,
                f"{said}no printers are known: this station cannot read an etc/ folder "
                "and no site configuration is published here (`printnet init` or a "
                "running server publishes servers/<NAME>.site.json)")
        return dests

    def _own_config(self, problems: list[str], sites: list[Any]) -> Any:
        """The station's etc/ configuration (its printers, classes, setups, DEFAULT and
        etc), None if there is none or it is unreadable.

        When a published site was made from exactly these two files of this folder
        (`spool.site.own_site`: `printnet init` and every server publish one), that
        record is used: parsing them imports `printnet.config` and the command-file
        grammar, which cost more than all the rest of a `printnet request`."""
        if self.etc is None:
            return None
        files = [self.etc / "server.cmd", self.etc / "printers.cmd"]  # config's two files
        if not os.path.lexists(files[1]):
            return None
        texts: list[bytes | None] = []
        for path in files:
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
            except PermissionError as exc:
                from printnet.readable import cannot_read

                problems.append(cannot_read(path, exc))
                return None
            except OSError:
                texts.append(None)  # config.load says what is wrong with it
                continue
            try:
                texts.append(_read_small(fd))
            finally:
                os.close(fd)
        server_text, printers_text = texts
        if server_text is not None and printers_text is not None:
            from printnet.spool.site import own_site

            site = own_site(sites, self.etc, server_text, printers_text)
            if site is not None:
                return _OwnSite(site.printers, site.classes, site.setups, site.default,
                                Path(site.etc), site.site_name)
        from printnet import config as config_mod

        return config_mod.load(self.etc)

    def default_destination(self, *, prefer_lpdest: bool = False,
                            dests: Destinations | None = None) -> str | None:
        """The destination a request without -P goes to, or None (docs/COMPAT.md):

        $PRINTNET_PRINTER, then $PRINTER and $LPDEST ($LPDEST first for lp and
        lpstat, as CUPS), then the user's own file (`user_default_file`), then
        the site's DEFAULT (own etc/ over published), then the only printer."""
        return self._default(prefer_lpdest, dests)[0]

    def _default(self, prefer_lpdest: bool,
                 dests: Destinations | None = None) -> tuple[str | None, str]:
        """(destination, where it came from)."""
        order = ("PRINTNET_PRINTER", "LPDEST", "PRINTER") if prefer_lpdest else (
            "PRINTNET_PRINTER", "PRINTER", "LPDEST")
        for var in order:
            if os.environ.get(var):
                return os.environ[var], f"${var}"
        path = user_default_file()
        name = read_user_default(path)
        if name:
            return name, str(path)
        dests = dests or self.destinations()
        if dests.default:
            return dests.default, dests.default_from
        if len(dests.printers) == 1:
            return next(iter(dests.printers)), "the only printer"
        return None, ""

    def printers(self, dest: str | None = None) -> list[dict[str, Any]]:
        """Printers as their servers last reported them (`printer_status`)."""
        return printer_status(self.spool, dest)

    # -- submitting --------------------------------------------------------------

    def template(
        self,
        *,
        printer: str | None = None,
        priority: str | Priority = Priority.STANDARD,
        copies: int = 1,
        title: str = "",
        setup: str | None = None,
        header: bool = True,
        raw: bool = False,
        hold: bool = False,
        encoding: str | None = None,
    ) -> PrintRequest:
        """Validate the options of a print request (nothing is written).

        `encoding`: the text's source encoding (None: detected at submit time)."""
        dests = self.destinations()
        source = "-P"
        name = printer
        if not name:
            name, source = self._default(False, dests)
        if not name:
            known = ", ".join(sorted(dests.known)) or "none"
            raise UsageError("no printer named (-P) and no default: set DEFAULT in "
                             f"printers.cmd, $PRINTER or {user_default_file()} "
                             f"(known: {known})")
        dest = normalize_name(name)
        if not valid_name(dest):
            raise UsageError(f"invalid printer name {clean_text(name, 40)!r}")
        if (dests.known or self.strict) and dest not in dests.known:
            raise dests.unknown(dest, "" if source == "-P" else source)
        try:
            prio = Priority(priority)
        except ValueError:
            raise UsageError(
                f"invalid priority {clean_text(str(priority), 20)!r}: "
                "use high, standard or overnight"
            ) from None
        if not 1 <= copies <= MAX_COPIES:
            raise UsageError(f"copies must be 1..{MAX_COPIES}, not {copies}")
        setup_name = None
        if setup:
            setup_name = normalize_name(setup)
            if not valid_name(setup_name):
                raise UsageError(f"invalid setup name {clean_text(setup, 40)!r}")
            if dests.setups and setup_name not in dests.setups:
                raise UsageError(
                    f"unknown setup {setup_name!r} (known: {', '.join(sorted(dests.setups))})"
                )
        declared = None  # the text's source encoding, when the user named it
        if encoding:
            if raw:
                raise UsageError("--encoding applies to text jobs (--raw sends the bytes "
                                 "untouched)")
            try:
                declared = charset.source_encoding(encoding)
            except ValueError as exc:
                raise UsageError(str(exc)) from None
        return PrintRequest(
            id="0" * 18, user=self.user, station=self.station, submitted=datetime.now(UTC),
            printer=dest, priority=prio, copies=copies, title=clean_text(title, MAX_TITLE),
            setup=setup_name, header=header, format=Format.RAW if raw else Format.TEXT,
            hold=hold, encoding=declared, site=self.site(),
        )

    def site(self) -> str | None:
        """This station's site (SITE in server.cmd): its readable etc/, else what the
        servers of this spool publish; None when no SITE is set."""
        if self._site is not None:
            return self._site[0]
        found: str | None = None
        from printnet.spool.site import read_sites

        cfg = self._own_config([], read_sites(self.spool)[0])
        if cfg is not None:
            found = cfg.site_name if isinstance(cfg, _OwnSite) else cfg.server.site
        else:
            for info in server_files(self.spool):
                site = info.get("site")
                if isinstance(site, str) and valid_name(site):
                    found = site
                    break
        self._site = (found,)
        return found

    def link_refusal(self, printer: str) -> str | None:
        """LINKDOWN=REJECT: why `printer` refuses new jobs now, as its server publishes
        (its link is down); None when it takes them."""
        return link_refusal(self.spool, printer)

    def submit(
        self, files: Sequence[str | Path], *, each: bool = False, stdin: Any = None,
        password: str | None = None, ask: Callable[[str], str] | None = None,
        max_stdin: int | None = None, progress: Callable[[int, int | None], None] | None = None,
        ref: bool = False, **options: Any,
    ) -> list[PrintRequest]:
        """Queue `files` as one job (or one per file with each=True); return the requests.

        `password` is the queue's password when the printer has one; only a proof
        bound to each job id is written (see `printnet.passwords.queue_proof`).
        Without it, `ask(printer)` is called for it when a server says the
        printer needs one (a prompt); otherwise the server rejects the request.
        `max_stdin` bytes of standard input at most (None: `DEFAULT_MAX_STDIN`, 0:
        no limit); `progress(copied, total)` is called as the data is copied.
        """
        # Imported here: status, the other hot path, needs none of it (hashlib, shutil).
        from printnet.spool.submit import DEFAULT_MAX_STDIN, Source, Submitter, check_sources

        template = self.template(**options)
        refusal = self.link_refusal(template.printer)
        if refusal is not None:
            raise LinkDown(refusal)
        if password is None and ask is not None and self.needs_password(template.printer):
            password = ask(template.printer)
        sources = [
            Source("stdin", stream=stdin) if str(f) == "-" else Source(str(f), path=Path(f),
                                                                       ref=ref)
            for f in files
        ]
        if ref and any(s.path is None for s in sources):
            raise UsageError("--ref names files: standard input (-) cannot be referenced")
        check_sources(sources, one_job=not each)
        seal_to = self.seal_to(template.printer)
        if ref and seal_to:
            raise UsageError(f"{template.printer} takes only sealed documents (SEAL=ON): "
                             "files cannot be named by reference (--ref) for it")
        submitter = Submitter(
            self.spool, user=self.user, station=self.station, min_free=self.min_free(),
            max_stdin=DEFAULT_MAX_STDIN if max_stdin is None else max_stdin,
            progress=progress, seal_to=seal_to)
        batch = [(template, [s]) for s in sources] if each else [(template, sources)]
        return submitter.submit_many(batch, password=password)

    # -- querying ----------------------------------------------------------------

    def status(
        self, *, printer: str | None = None, user: str | None = None,
        jobs: Iterable[str] = (),
    ) -> StatusView:
        from printnet.masterfile import Job
        from printnet.spool import master as master_io

        state = master_io.load(self.spool)
        wanted = {self.resolve(j, state.jobs) for j in jobs}
        dest = normalize_name(printer) if printer else None
        view = StatusView()
        positions: dict[str, int] = {}
        listed: set[str] = set()
        for job in state.ordered():
            n = positions[job.destination] = positions.get(job.destination, 0) + 1
            listed.add(job.id)
            if _selected(job.id, job.destination, job.assigned, job.user, dest, user, wanted):
                view.jobs.append(job_json(job, n))
        waiting = sorted(self.waiting_requests(skip=listed), key=lambda r: (r.priority.rank, r.id))
        for req in waiting:
            n = positions[req.printer] = positions.get(req.printer, 0) + 1
            if _selected(req.id, req.printer, "", req.user, dest, user, wanted):
                job = Job.from_request(req)
                job.note = WAITING_NOTE
                view.jobs.append(job_json(job, n))
        for job_id in sorted(wanted - listed):
            record = self.finished(job_id) or self.unlisted(job_id)
            if record is not None:
                view.jobs.append(record)
        view.printers = printer_status(self.spool, dest)
        return view

    def listing(
        self, *, printer: str | None = None, user: str | None = None,
    ) -> tuple[list[dict[str, Any]], Iterator[ListedJob]]:
        """What `status` lists, as text, fast: (printers, jobs in queue order).

        The same selection and positions as `status` without job ids, but the
        master file's rows are never decoded into jobs (`master.load_listing`):
        100,000 jobs list in a fraction of the time.  Each job is (position, id,
        user, printer, priority, state, submitted, title, note).
        """
        from printnet.spool import master as master_io

        state = master_io.load_listing(self.spool)
        dest = normalize_name(printer) if printer else None
        printers = printer_status(self.spool, dest)
        return printers, self._listed(state, dest, user)

    def _listed(self, state: LazyState, dest: str | None,
                user: str | None) -> Iterator[ListedJob]:
        col = {name: i for i, name in enumerate(state.columns)}
        i_id, i_user, i_printer, i_assigned = (col[c] for c in ("id", "user", "printer",
                                                                "assigned"))
        pick = itemgetter(*(col[c] for c in ("id", "user", "printer", "priority", "state",
                                             "submitted", "title", "note")))
        positions: dict[str, int] = {}
        waiting = self._waiting_names()
        listed: set[str] = set()
        no_filter = dest is None and user is None
        for p in state.rows():
            where = p[i_printer]
            n = positions[where] = positions.get(where, 0) + 1
            if waiting:
                listed.add(p[i_id])
            if no_filter or _selected(p[i_id], where, p[i_assigned], p[i_user], dest, user,
                                      set()):
                yield (n, *pick(p))
        from printnet.masterfile import Job

        for req in self.waiting_requests(skip=listed, names=waiting):
            n = positions[req.printer] = positions.get(req.printer, 0) + 1
            if _selected(req.id, req.printer, "", req.user, dest, user, set()):
                job = Job.from_request(req)
                yield (n, job.id, job.user, job.destination, job.priority.value, job.state.value,
                       job.submitted, job.title, WAITING_NOTE)

    def _waiting_names(self) -> list[str]:
        try:
            return sorted(n for n in os.listdir(self.spool.new) if n.endswith(REQ_SUFFIX))
        except OSError:
            return []

    def waiting_requests(self, skip: set[str],
                         names: list[str] | None = None) -> list[PrintRequest]:
        """Requests still in new/ (no server took them in yet) that we may read."""
        out: list[Any] = []
        if names is None:
            names = self._waiting_names()
        for name in names:
            if not name.endswith(REQ_SUFFIX) or name[:-4] in skip:
                continue
            try:
                # Never a plain open(): anyone may drop a FIFO or symlink into new/.
                from printnet.spool.intake import read_regular

                req = decode_request(read_regular(self.spool.new / name)[0])
            except (OSError, PrintnetError):
                continue
            if isinstance(req, PrintRequest):
                out.append(req)
        return out

    def needs_password(self, printer: str) -> bool:
        """Whether a server says `printer` takes requests only with its queue password."""
        return any(isinstance(p, dict) and p.get("name") == printer and p.get("password")
                   for info in server_files(self.spool) for p in info.get("printers", []))

    def seal_to(self, printer: str) -> list[Any]:
        """SEAL=ON: the servers' published keys to seal a job for `printer` to (a
        printer, or a class with a member, that a server says takes only sealed
        documents); [] when it needs none.  SealError when it does but no key is
        published."""
        if not any(isinstance(p, dict) and p.get("seal")
                   and printer in (p.get("name"), *(p.get("classes") or ()))
                   for info in server_files(self.spool) for p in info.get("printers", [])):
            return []
        from printnet.keys import published  # cryptography: only when sealing

        found = published(self.spool)
        if not found:
            raise SealError(f"{printer} takes only sealed documents (SEAL=ON), but no print "
                            f"server has published a key in {self.spool.servers}: run "
                            "`printnet keys create` on the print server")
        return found

    def min_free(self) -> int:
        """Bytes the servers want free on the spool (MINFREE, from their status files)."""
        values = [info.get("min_free") for info in server_files(self.spool)]
        return max([v for v in values if isinstance(v, int)], default=0)

    def unlisted(self, job_id: str) -> dict[str, Any] | None:
        """A job neither live nor finished: rejected (with the reason), or still in
        new/ (a station cannot list new/ on a multi-user spool, but can look by name)."""
        from printnet.masterfile import Job

        try:
            reason = read_bytes(self.spool.rejected / f"{job_id}{REQ_SUFFIX}.reason", 4096)
        except OSError:
            reason = None
        if reason is not None:
            text = clean_text(reason.decode("utf-8", "replace"), 1000)
            named, sep, rest = text.partition(": ")
            if sep and named.startswith(job_id):  # "<id>.req: why": the id is shown already
                text = rest
            entry: dict[str, Any] = {
                "id": job_id, "state": "rejected", "note": text, "position": None,
                "user": "", "station": "", "printer": "", "priority": "", "submitted": "",
                "title": "", "copies": 0, "pages": 0}
            with contextlib.suppress(OSError, PrintnetError):  # who asked, for which printer
                req = decode_request(read_bytes(self.spool.rejected / f"{job_id}{REQ_SUFFIX}",
                                                1 << 18))
                if isinstance(req, PrintRequest):
                    entry.update({k: v for k, v in job_json(Job.from_request(req), 0).items()
                                  if k in ("user", "station", "printer", "priority",
                                           "submitted", "title", "copies")})
            return entry
        try:
            req = decode_request(read_bytes(self.spool.new / f"{job_id}{REQ_SUFFIX}", 1 << 18))
        except (OSError, PrintnetError):
            return None
        if not isinstance(req, PrintRequest):
            return None
        job = Job.from_request(req)
        job.note = WAITING_NOTE
        return job_json(job, 0)

    def finished(self, job_id: str) -> dict[str, Any] | None:
        try:
            record = json.loads(read_bytes(self.spool.done / f"{job_id}.json"))
        except (OSError, ValueError):
            return None
        job = record.get("job") if isinstance(record, dict) else None
        if not isinstance(job, dict):
            return None
        where = record.get("forwarded")
        if isinstance(where, dict):
            # Forwarded to another site: follow it into that site's queue.
            from printnet.sites import follow

            remote = follow(where)
            pos = f", position {remote['position']} of {remote['of']}" \
                if "position" in remote else ""
            note = str(remote.get("note") or "")
            job = dict(job, remote=dict(remote, **where),
                       note=f"{job.get('note', '')}; there: {remote.get('state')}{pos}"
                            + (f" ({note})" if note else ""))
        return dict(job, position=0)

    def ending(self, job_id: str) -> tuple[str, str] | None:
        """(outcome, reason) once a job has ended: completed, canceled or aborted
        (its done/ record), rejected (rejected/); None while it is live or waiting."""
        try:
            record = json.loads(read_bytes(self.spool.done / f"{job_id}.json"))
        except (OSError, ValueError):
            record = None
        if isinstance(record, dict) and isinstance(record.get("outcome"), str):
            return record["outcome"], clean_text(str(record.get("reason") or ""), 200)
        rejected = self.unlisted(job_id)
        if rejected is not None and rejected.get("state") == "rejected":
            return "rejected", str(rejected.get("note") or "")
        return None

    def resolve(self, text: str, known: dict[str, Job] | None = None) -> str:
        """A job id from a full id or a unique suffix of at least 4 characters."""
        text = text.strip().upper()
        if valid_job_id(text):
            return text
        if len(text) < 4:
            raise UsageError(f"{clean_text(text, 30)!r} is not a job id")
        from printnet.spool import master as master_io

        ids = set(known or master_io.load(self.spool).jobs)
        matches = [i for i in ids if i.endswith(text)]
        if len(matches) != 1:
            raise NotFound(f"no single job id ends in {clean_text(text, 30)!r}")
        return matches[0]

    # -- cancel / hold / release --------------------------------------------------

    def control(
        self, action: ControlAction, jobs: Sequence[str], *, wait: float = 5.0
    ) -> dict[str, str]:
        """Ask the servers to act on our jobs; wait up to `wait` s for the outcome.

        Returns job id -> outcome ("applied", "not found", "not yours", ...), or
        "queued" for each job when no server answered in time.
        """
        if not jobs:
            raise UsageError("name at least one job")
        from printnet.spool import master as master_io

        state = master_io.load(self.spool)
        ids = [self.resolve(j, state.jobs) for j in jobs]
        from printnet.spool.submit import Submitter

        submitter = Submitter(self.spool, user=self.user, station=self.station)
        req = submitter.control(action, ids)
        result_path = self.spool.done / f"{req.id}.json"
        deadline = time.monotonic() + wait
        delay = 0.02
        while True:
            try:
                result = json.loads(read_bytes(result_path))
                outcomes = result.get("results", {})
                return {i: str(outcomes.get(i, "unknown")) for i in ids}
            except (OSError, ValueError):
                pass
            if time.monotonic() >= deadline:
                return dict.fromkeys(ids, "queued")
            time.sleep(delay)
            delay = min(delay * 1.5, 0.25)


def _selected(
    job_id: str, printer: str, assigned: str, owner: str,
    dest: str | None, user: str | None, wanted: set[str],
) -> bool:
    if wanted and job_id not in wanted:
        return False
    if dest is not None and dest not in (printer, assigned):
        return False
    return user is None or owner == user


def job_json(job: Job, position: int) -> dict[str, Any]:
    out = job.to_json()
    out["position"] = position
    return out


def user_default_file() -> Path:
    """The user's own default destination: $XDG_CONFIG_HOME/printnet/default
    (~/.config/printnet/default), the printnet counterpart of ~/.cups/lpoptions."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"),
                                                             ".config")
    return Path(base) / "printnet" / "default"


def read_user_default(path: Path) -> str | None:
    """The destination in `path`: its first line that is not blank or a # comment,
    either ``NAME`` or lpoptions' ``Default NAME``; None if there is no file."""
    from printnet.readable import cannot_read

    try:
        text = read_bytes(path, 4096).decode("utf-8", "replace")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UsageError(cannot_read(path, exc)) from None
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        if len(words) == 2 and words[0].lower() == "default":
            return words[1]
        if len(words) == 1:
            return words[0]
        raise UsageError(f"{path}: expected one printer name or `Default NAME`, "
                         f"not {clean_text(line, 60)!r}")
    return None


def server_files(spool: Spool) -> list[dict[str, Any]]:
    """The servers' published status files (servers/<NAME>.json; site files skipped)."""
    out: list[dict[str, Any]] = []
    try:
        names = sorted(os.listdir(spool.servers))
    except OSError:
        return out
    for name in names:
        if not name.endswith(".json") or name.startswith(".") or name.endswith(".site.json"):
            continue
        try:
            info = json.loads(read_bytes(spool.servers / name, 1 << 20))
        except (OSError, ValueError):
            continue
        if isinstance(info, dict):
            info["_age"] = _age(spool.servers / name)
            out.append(info)
    return out


def link_refusal(spool: Spool, printer: str) -> str | None:
    """Why `printer` refuses new jobs because its link is down (LINKDOWN=REJECT), from
    the status files of live servers; None when none says so."""
    for info in server_files(spool):
        lease = float(info.get("lease", 30) or 30)
        if info["_age"] > 3 * lease or info.get("state") == "stopped":
            continue
        for p in info.get("printers", []):
            if not isinstance(p, dict) or p.get("name") != printer:
                continue
            link = p.get("link")
            if isinstance(link, dict) and link.get("state") == "down" \
                    and link.get("mode") == "reject":
                return str(link.get("reject_reason") or f"{printer}: its link is down")
    return None


def _age(path: Path) -> float:
    try:
        return max(0.0, time.time() - path.stat().st_mtime)
    except OSError:
        return float("inf")


def printer_status(spool: Spool, dest: str | None = None) -> list[dict[str, Any]]:
    """Printers as their servers last reported them; stale reports say so."""
    out: list[dict[str, Any]] = []
    for info in server_files(spool):
        lease = float(info.get("lease", 30) or 30)
        stopped = info.get("state") == "stopped"
        alive = info["_age"] <= 3 * lease and not stopped
        for p in info.get("printers", []):
            if not isinstance(p, dict) or (dest is not None and p.get("name") != dest):
                continue
            entry = {k: p.get(k) for k in (
                "name", "state", "reasons", "setup", "form", "job", "progress",
                "classes", "accepting", "reject_reason", "link",
            )}
            entry["server"] = info.get("name")
            if not alive:
                entry["state"] = "unknown"
                entry["reasons"] = [f"server {info.get('name')} "
                                    + ("stopped" if stopped else "not responding")]
            out.append(entry)
    return out

