"""The configuration model and its loaders: what etc/server.cmd and etc/printers.cmd say.

Owns the typed configuration (`Config`, `ServerConfig`, `PrinterConfig`,
`SetupConfig`) and the file side of `etc/`: `load`, `edit`, `write_defaults`,
`header_template`.  The syntax of the command files, their schemas and the
text editor live in `printnet.cmdfile` (pure); here they meet the disk.

Folders.  The *project folder* is the parent of the etc folder (`./etc` ->
`.`).  Relative SPOOL paths are relative to it (default spool: `<project>/spool`);
relative `file://` ports and header templates (`etc/<name>.hdr`) are relative
to the etc folder.

Path rules (security: no setting can point the server at files outside its
configured folders).  After resolving symlinks,

* a `file://` port must be inside the project folder or a spool, and not
  inside the etc folder, not a spool folder itself, and not inside a spool's
  own entries (tmp/, new/, received/, data/, master*, locks/, servers/, done/,
  rejected/, log/, dot-names);
* when the project folder is a system folder (`/`, `/etc`, `/usr`, `/var`,
  `/home`, ...; see `SYSTEM_FOLDERS`), only the spools count;
* a header template must be inside the project folder or a spool, and exist;
* no spool may be inside the etc folder, nor the etc folder inside a spool
  (stations write to spools).

Edits (`edit`) validate the whole configuration with the new text before the
file is replaced atomically (temp file in the same folder, fsync, rename,
fsync of the folder; the file's mode is kept).  A file that changed on disk
while the edit was being validated is not overwritten.

Over 600 lines on purpose: the loaders of both command files share the path
rules and the checks across them (classes, setups, the default printer).
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Final

from printnet import cmdfile
from printnet.charset import printer_encoding
from printnet.errors import ConfigError
from printnet.model import valid_name
from printnet.quota import OverAction, Period, QuotaRule

# The setup, driver and printer settings live in the pure `printnet.settings`, so the
# renderer and drivers need not import this I/O module; re-exported here.
from printnet.settings import DriverName as DriverName  # noqa: PLC0414 (re-export)
from printnet.settings import ErrorPolicy as ErrorPolicy  # noqa: PLC0414 (re-export)
from printnet.settings import Flow as Flow  # noqa: PLC0414 (re-export)
from printnet.settings import LinkMode as LinkMode  # noqa: PLC0414 (re-export)
from printnet.settings import PrinterConfig as PrinterConfig  # noqa: PLC0414 (re-export)
from printnet.settings import SetupConfig as SetupConfig  # noqa: PLC0414 (re-export)
from printnet.spool.publish import fsync_dir, write_temp


@dataclass(frozen=True, slots=True)
class ServerConfig:
    name: str
    spools: tuple[Path, ...] = ()
    password_hash: str | None = None
    night: tuple[int, int] = (0, 6)  # start hour, end hour (local time), end exclusive
    scan_interval: float = 1.0  # seconds between names-only scans of new/
    lease: float = 30.0  # seconds: lock and job lease length
    operators: tuple[str, ...] = ("root",)  # user names and @groups
    quotas: tuple[QuotaRule, ...] = ()
    held_expiry: float | None = None  # seconds a job may stay held (HELDEXPIRY, hours)
    min_free: int = 0  # bytes that must stay free on a spool's disk (MINFREE, MiB)
    seal: bool = False  # SEAL ON: every printer takes only sealed documents (docs/SECURITY.md)
    keys: Path | None = None  # KEYS: this server's private sealing keys (a local folder)
    site: str | None = None  # SITE name: the site's name on header pages ({site})
    site_logo: str | None = None  # SITE LOGO=: the site-wide {logo} file (relative to etc/)


@dataclass(frozen=True, slots=True)
class Config:
    server: ServerConfig
    printers: dict[str, PrinterConfig] = field(default_factory=dict)
    setups: dict[str, SetupConfig] = field(default_factory=dict)
    default_printer: str | None = None
    etc: Path = Path("etc")
    # `printnet.spool.site.sources_digest` of the two texts this was parsed from ("":
    # built otherwise): published, so a station whose etc/ holds the same texts can
    # take its printers from the site file instead of importing and running this module.
    sources: str = ""

    @property
    def classes(self) -> dict[str, tuple[str, ...]]:
        """Class name -> member printer names, in configuration order."""
        out: dict[str, list[str]] = {}
        for printer in self.printers.values():
            for cls in printer.classes:
                out.setdefault(cls, []).append(printer.name)
        return {k: tuple(v) for k, v in out.items()}

    def seals(self, printer: PrinterConfig) -> bool:
        """Whether `printer` takes only sealed documents (its SEAL=, else the site's SEAL)."""
        return self.server.seal if printer.seal is None else printer.seal

    @property
    def project(self) -> Path:
        """The folder that holds etc/: relative SPOOL paths start here."""
        return self.etc.parent

    def validate(self) -> None:
        """The cross-checks `load` makes (setups, classes, DEFAULT, paths); ConfigError."""
        _cross_check(self, {})


# ---------------------------------------------------------------------------
# Loading

SERVER_FILE: Final = "server.cmd"
PRINTERS_FILE: Final = "printers.cmd"
CONFIG_FILES: Final = (SERVER_FILE, PRINTERS_FILE)
DEFAULT_FILES: Final = ((SERVER_FILE, 0o600), (PRINTERS_FILE, 0o600), ("local.hdr", 0o644),
                        ("gateway.cmd", 0o644))
DEFAULT_SPOOL: Final = "spool"  # relative to the project folder
HEADER_SUFFIX: Final = ".hdr"
MAX_FILE_BYTES: Final = 1024 * 1024  # a command file larger than this is refused
MAX_HEADER_BYTES: Final = 64 * 1024  # a header template larger than this is refused

# A spool's own entries: no file:// port may write into them.
SPOOL_ENTRIES: Final = frozenset(
    {"tmp", "new", "received", "data", "master", "locks", "servers", "done", "rejected", "log"}
)
# Project folders too wide to trust as "the server's folder" for file:// ports.
SYSTEM_FOLDERS: Final = frozenset(
    Path(p) for p in (
        "/", "/etc", "/usr", "/usr/local", "/var", "/home", "/root", "/opt", "/srv",
        "/tmp", "/mnt", "/media", "/boot", "/dev", "/proc", "/sys", "/run", "/bin",
        "/sbin", "/lib", "/lib64",
    )
)

# Where each definition came from, for cross-check errors: ("PRINTER", name) ->
# (file, line).  Keys: PRINTER/SETUP/DEFAULT/SPOOL with the name or path.
_Where = Mapping[tuple[str, str], tuple[str, int]]


def load(etc: Path, *, server_name: str | None = None) -> Config:
    """Read and check etc/server.cmd and etc/printers.cmd.

    `server_name` (e.g. from `--name`) overrides SERVER NAME=.  Raises
    ConfigError naming file and line.
    """
    server_text = _read_text(etc / SERVER_FILE)
    printers_text = _read_text(etc / PRINTERS_FILE)
    return parse_config(etc, server_text, printers_text, server_name=server_name)


def parse_config(etc: Path, server_text: str, printers_text: str, *,
                 server_name: str | None = None) -> Config:
    """`load`, from the two files' texts (no reading of the command files)."""
    server_file, printers_file = str(etc / SERVER_FILE), str(etc / PRINTERS_FILE)
    server_cmds = cmdfile.parse(server_text, server_file, cmdfile.SERVER_SCHEMA)
    printer_cmds = cmdfile.parse(printers_text, printers_file, cmdfile.PRINTERS_SCHEMA)
    try:
        etc_abs = etc.resolve()
    except (OSError, RuntimeError) as exc:
        raise ConfigError(str(etc), 0, f"cannot resolve the etc folder: {exc}") from None
    where: dict[tuple[str, str], tuple[str, int]] = {}
    server = _server(server_cmds, etc_abs.parent, server_name, server_file, where)
    setups, printers, default = _printers(printer_cmds, where)
    from printnet.spool.site import sources_digest

    config = Config(server, printers, setups, default, etc_abs,
                    sources_digest(server_text.encode(), printers_text.encode()))
    _cross_check(config, where)
    return config


def default_server_name() -> str:
    """The host name, upper-cased and made a valid name (SERVER without NAME=)."""
    host = socket.gethostname().split(".")[0].upper()
    host = re.sub(r"[^A-Z0-9&_.+-]", "-", host)
    host = re.sub(r"^[^A-Z0-9]+", "", host)[:32]
    return host or "PRINTNET"


def _read_text(path: Path, limit: int = MAX_FILE_BYTES) -> str:
    try:
        # O_NONBLOCK: a FIFO put in place of a command file must not hang the
        # (running) server; only regular files are read.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with open(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise ConfigError(str(path), 0, "not a regular file")
            data = fh.read(limit + 1)
    except FileNotFoundError:
        raise ConfigError(
            str(path), 0, "not found (`printnet init` writes the default files)"
        ) from None
    except OSError as exc:
        raise ConfigError(str(path), 0, f"cannot read: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise ConfigError(str(path), 0, f"larger than {limit} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(str(path), line, "not UTF-8 text") from None


def _server(cmds: list[cmdfile.Command], project: Path, server_name: str | None,
            server_file: str, where: dict[tuple[str, str], tuple[str, int]]) -> ServerConfig:
    name: str | None = None
    spools: list[Path] = []
    password: str | None = None
    night: tuple[int, int] = (0, 6)
    scan, lease = 1.0, 30.0
    operators: tuple[str, ...] = ("root",)
    quotas: list[QuotaRule] = []
    held_expiry: float | None = None
    min_free = 0
    seal = False
    keys: Path | None = None
    site: str | None = None
    site_logo: str | None = None
    for cmd in cmds:
        if cmd.keyword == "SERVER":
            name = cmd.get_opt_str("NAME") or name
        elif cmd.keyword == "SPOOL":
            assert cmd.name is not None
            path = _spool_path(project, cmd.name)
            key = ("SPOOL", str(path))
            if key in where:
                raise cmd.error(
                    f"SPOOL {cmd.name}: the same folder as line {where[key][1]} ({path})"
                )
            where[key] = (cmd.filename, cmd.line)
            spools.append(path)
        elif cmd.keyword == "PASSWORD":
            password = cmd.name
        elif cmd.keyword == "NIGHT":
            assert isinstance(cmd.value, tuple)
            night = (int(cmd.value[0]), int(cmd.value[1]))
        elif cmd.keyword == "SCAN":
            assert isinstance(cmd.value, float)
            scan = cmd.value
        elif cmd.keyword == "LEASE":
            assert isinstance(cmd.value, float)
            lease = cmd.value
        elif cmd.keyword == "OPERATORS":
            assert isinstance(cmd.value, tuple)
            operators = tuple(str(u) for u in cmd.value)
        elif cmd.keyword == "QUOTA":
            rule = QuotaRule(
                who=str(cmd.value), pages=cmd.get_int("PAGES", 0),
                period=Period(cmd.get_str("PER", "WEEK").lower()),
                printer=cmd.get_opt_str("PRINTER"),
                action=OverAction(cmd.get_str("ACTION", "HOLD").lower()),
            )
            key = ("QUOTA", f"{rule.who} {rule.period} {rule.printer}")
            if key in where:
                raise cmd.error(f"QUOTA {rule.who}: a second rule for the same period and "
                                f"printer (first on line {where[key][1]})")
            where[key] = (cmd.filename, cmd.line)
            quotas.append(rule)
        elif cmd.keyword == "HELDEXPIRY":
            assert isinstance(cmd.value, float)
            held_expiry = cmd.value * 3600.0
        elif cmd.keyword == "MINFREE":
            assert isinstance(cmd.value, int)
            min_free = cmd.value * 1024 * 1024
        elif cmd.keyword == "SEAL":
            seal = cmd.value == "ON"
        elif cmd.keyword == "KEYS":
            assert cmd.name is not None
            keys = Path(os.path.normpath(project / cmd.name))
        elif cmd.keyword == "SITE":
            site = cmd.name
            site_logo = cmd.get_opt_str("LOGO")
            if site_logo is not None:
                where[("SITE", "")] = (cmd.filename, cmd.line)
    if server_name is not None:
        try:
            name = cmdfile.convert_name(server_name)
        except ValueError as exc:
            raise ConfigError(server_file, 0, f"server name: {exc}") from None
    if not spools:
        spools.append(_spool_path(project, DEFAULT_SPOOL))
    return ServerConfig(
        name=name or default_server_name(),
        spools=tuple(spools),
        password_hash=password,
        night=night,
        scan_interval=scan,
        lease=lease,
        operators=operators,
        quotas=tuple(quotas),
        held_expiry=held_expiry,
        min_free=min_free,
        seal=seal,
        keys=keys,
        site=site,
        site_logo=site_logo,
    )


def _charset(name: str | None) -> str | None:
    # The schema checked the name; record the canonical one (latin-1 -> iso8859-1).
    return None if name is None else printer_encoding(name)


def _spool_path(project: Path, raw: str) -> Path:
    # Lexical normalization only: resolving would touch the shared disk, and a
    # dead network mount must not hang the loading of the configuration.
    return Path(os.path.normpath(project / raw))


def _printers(
    cmds: list[cmdfile.Command], where: dict[tuple[str, str], tuple[str, int]]
) -> tuple[dict[str, SetupConfig], dict[str, PrinterConfig], str | None]:
    setups: dict[str, SetupConfig] = {}
    printers: dict[str, PrinterConfig] = {}
    default: str | None = None
    for cmd in cmds:
        name = cmd.name
        assert name is not None
        where[(cmd.keyword, name if cmd.keyword != "DEFAULT" else "")] = (cmd.filename, cmd.line)
        if cmd.keyword == "SETUP":
            setups[name] = SetupConfig(
                name=name,
                form=cmd.get_str("FORM", "PLAIN"),
                length=cmd.get_int("LENGTH", 66),
                width=cmd.get_int("WIDTH", 80),
                init=cmd.get_bytes("INIT"),
                encoding=_charset(cmd.get_opt_str("ENCODING")),
            )
        elif cmd.keyword == "PRINTER":
            header = cmd.get_opt_str("HEADER")
            port = cmd.get_str("PORT", "")
            linkdown, failover, link_hold, link_name, link_retry = _link_settings(
                cmd, name, port)
            printers[name] = PrinterConfig(
                name=name,
                port=port,
                baud=cmd.get_int("BAUD", 9600),
                bytesize=cmd.get_int("BITS", 8),
                parity=cmd.get_str("PARITY", "N"),
                stopbits=float(cmd.get_str("STOP", "1")),
                flow=Flow(cmd.get_str("FLOW", "NONE").lower()),
                driver=DriverName(cmd.get_str("DRIVER", "PLAIN").lower()),
                setup=cmd.get_str("SETUP", "STANDARD"),
                header=None if header == "NONE" else header,
                header_pages=header != "NONE",
                classes=cmd.get_names("CLASS"),
                error_policy=ErrorPolicy(cmd.get_str("ERRORS", "RETRY").lower()),
                stall_timeout=cmd.get_float("STALL", 30.0),
                retry_interval=cmd.get_float("RETRY", 5.0),
                accepting=cmd.get_bool("ACCEPT", True),
                reject_reason=cmd.get_str("REASON", ""),
                stopped=cmd.get_bool("STOPPED", False),
                password_hash=cmd.get_opt_str("PASSWORD"),
                max_copies=cmd.get_opt_int("MAXCOPIES"),
                max_bytes=cmd.get_opt_int("MAXBYTES"),
                max_pages=cmd.get_opt_int("MAXPAGES"),
                max_file=cmd.get_opt_int("MAXFILE"),
                over_limit=OverAction(cmd.get_str("OVERLIMIT", "REJECT").lower()),
                seal=None if not cmd.has("SEAL") else cmd.get_str("SEAL", "OFF") == "ON",
                linkdown=linkdown,
                failover=failover,
                link_hold=link_hold,
                link_name=link_name,
                link_retry=link_retry,
                logo=cmd.get_opt_str("LOGO"),
            )
        elif cmd.keyword == "DEFAULT":
            default = name
    if "STANDARD" not in setups:  # always there: 66 lines of 80 characters, plain paper
        setups = {"STANDARD": SetupConfig("STANDARD"), **setups}
    return setups, printers, default


def _link_settings(cmd: cmdfile.Command, name: str, port: str,
                   ) -> tuple[LinkMode | None, str | None, float | None, str | None, float]:
    """LINKDOWN=, PRINTER=, LINKHOLD=, LINKNAME=, LINKRETRY= of one PRINTER line,
    checked against each other and the port (only a remote port has a link)."""
    from printnet.links import BACKOFF_CAP, is_remote

    label = f"PRINTER {name}"
    given = [k for k in ("LINKDOWN", "PRINTER", "LINKHOLD", "LINKNAME", "LINKRETRY")
             if cmd.has(k)]
    if not is_remote(port):
        if given:
            raise cmd.error(f"{label}: {given[0]}= is only for a printer whose port is "
                            "remote (ipp://, ipps://, spool:), not PORT=" + port)
        return None, None, None, None, BACKOFF_CAP
    mode = LinkMode(cmd.get_str("LINKDOWN", "QUEUE").lower())
    failover = cmd.get_opt_str("PRINTER")
    if mode is LinkMode.LOCAL and failover is None:
        raise cmd.error(f"{label}: LINKDOWN=LOCAL needs PRINTER=<a local printer> "
                        f"(e.g. PRINTER {name} PORT={port} LINKDOWN=LOCAL PRINTER=LOCAL)")
    if mode is not LinkMode.LOCAL and failover is not None:
        raise cmd.error(f"{label}: PRINTER={failover} is only for LINKDOWN=LOCAL")
    if failover == name:
        raise cmd.error(f"{label}: LINKDOWN=LOCAL PRINTER= names the printer itself")
    hold = cmd.get_float("LINKHOLD", 0.0) * 3600.0 if cmd.has("LINKHOLD") else None
    if hold is not None and mode is LinkMode.LOCAL:
        raise cmd.error(f"{label}: LINKHOLD= is for LINKDOWN=QUEUE or REJECT (with LOCAL "
                        "the jobs print locally)")
    return (mode, failover, hold, cmd.get_opt_str("LINKNAME"),
            cmd.get_float("LINKRETRY", BACKOFF_CAP))


# ---------------------------------------------------------------------------
# Cross-checks and path rules


def _cross_check(config: Config, where: _Where) -> None:
    printers_file = str(config.etc / PRINTERS_FILE)
    server_file = str(config.etc / SERVER_FILE)

    def fail(kind: str, name: str, message: str) -> ConfigError:
        fallback = server_file if kind == "SPOOL" else printers_file
        file, line = where.get((kind, name), (fallback, 0))
        return ConfigError(file, line, message)

    etc = _resolve(config.etc)
    for spool in config.server.spools:
        if _inside(_resolve(spool), etc) or _inside(etc, _resolve(spool)):
            raise fail("SPOOL", str(spool), f"SPOOL {spool}: a spool and the etc folder "
                       "may not be inside one another (stations write to spools)")
    classes = config.classes
    for printer in config.printers.values():
        label = f"PRINTER {printer.name}"
        if printer.setup not in config.setups:
            known = " ".join(config.setups)
            raise fail("PRINTER", printer.name,
                       f"{label}: SETUP={printer.setup} is not defined (setups: {known})")
        for cls in printer.classes:
            if cls in config.printers:
                raise fail("PRINTER", printer.name,
                           f"{label}: CLASS={cls} is also a printer's name")
        port_path = port_file(config, printer)
        if port_path is not None:
            problem = _port_problem(config, port_path)
            if problem:
                raise fail("PRINTER", printer.name, f"{label}: PORT={printer.port}: {problem}")
        if printer.header is not None:
            path = header_path(config, printer)
            problem = _read_problem(config, path)
            if problem is None and not path.is_file():
                problem = "not found"
            if problem:
                raise fail("PRINTER", printer.name, f"{label}: HEADER={printer.header}: "
                           f"template {path}: {problem}")
        if printer.failover is not None:
            other = config.printers.get(printer.failover)
            if other is None:
                raise fail("PRINTER", printer.name,
                           f"{label}: LINKDOWN=LOCAL PRINTER={printer.failover} is not "
                           f"defined (printers: {' '.join(config.printers)})")
            if other.linkdown is not None:
                raise fail("PRINTER", printer.name,
                           f"{label}: LINKDOWN=LOCAL PRINTER={printer.failover} is remote "
                           "too: fail over to a printer of this site")
        if printer.logo is not None:
            problem = _logo_problem(config, logo_path(config, printer.logo))
            if problem:
                raise fail("PRINTER", printer.name, f"{label}: LOGO={printer.logo}: {problem}")
    if config.server.site_logo is not None:
        problem = _logo_problem(config, logo_path(config, config.server.site_logo))
        if problem:
            file, line = where.get(("SITE", ""), (server_file, 0))
            raise ConfigError(file, line, f"SITE LOGO={config.server.site_logo}: {problem}")
    for name, printer in config.printers.items():
        if name != printer.name:
            raise fail("PRINTER", name, f"PRINTER {name}: keyed under another name")
    default = config.default_printer
    if default is not None and default not in config.printers and default not in classes:
        raise fail("DEFAULT", "", f"DEFAULT {default} names no printer or class "
                   f"(printers: {' '.join(config.printers) or 'none'}; "
                   f"classes: {' '.join(classes) or 'none'})")


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or path.is_relative_to(folder)


def _resolve(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a symlink loop: refuse by leaving it unresolved
        return Path(os.path.normpath(path))


def _spool_entry_problem(path: Path, config: Config) -> tuple[bool, str | None]:
    """(inside some spool, problem) for `path` (already resolved)."""
    for spool in config.server.spools:
        for root in (spool, _resolve(spool)):
            if not _inside(path, root):
                continue
            parts = path.relative_to(root).parts
            if not parts:
                return True, f"is the spool {spool} itself"
            head = parts[0]
            if head in SPOOL_ENTRIES or head.startswith(("master", ".")):
                return True, f"is in the spool's own {head!r} entry ({spool})"
            return True, None
    return False, None


def _port_problem(config: Config, path: Path) -> str | None:
    resolved = _resolve(path)
    etc = _resolve(config.etc)
    if _inside(resolved, etc):
        return f"{resolved} is inside the etc folder"
    in_spool, problem = _spool_entry_problem(resolved, config)
    if problem:
        return f"{resolved} {problem}"
    project = etc.parent
    if not in_spool and (project in SYSTEM_FOLDERS or not _inside(resolved, project)):
        where = "the spools" if project in SYSTEM_FOLDERS else f"the project folder {project}"
        return f"{resolved} is outside {where} (file ports must stay inside it or a spool)"
    if resolved.is_dir():
        return f"{resolved} is a folder"
    return None


def _read_problem(config: Config, path: Path) -> str | None:
    resolved = _resolve(path)
    in_spool, problem = _spool_entry_problem(resolved, config)
    if problem:
        return problem
    project = _resolve(config.etc).parent
    if not in_spool and not _inside(resolved, project):
        return f"resolves to {resolved}, outside the project folder {project}"
    return None


def port_file(config: Config, printer: PrinterConfig) -> Path | None:
    """The file a printer's port writes, or None: the PATH of `file://PATH`, the
    `out=` of `sim://NAME?out=PATH`.  Relative paths are relative to the etc
    folder.  Lexically normalized, not resolved: `load` checked that the
    resolved form obeys the path rules.
    """
    port = printer.port
    if port.lower().startswith("file://"):
        raw = port[len("file://"):]  # taken literally: no query, no %-decoding
    elif port.lower().startswith("sim://"):
        try:
            raw = cmdfile.sim_out(port)
        except ValueError:
            return None
    else:
        return None
    path = Path(raw)
    return Path(os.path.normpath(path if path.is_absolute() else config.etc / path))


def logo_path(config: Config, raw: str) -> Path:
    """A LOGO= file: relative to the etc folder (lexically normalized)."""
    path = Path(raw)
    return Path(os.path.normpath(path if path.is_absolute() else config.etc / path))


def _logo_problem(config: Config, path: Path) -> str | None:
    problem = _read_problem(config, path)
    if problem is None and not path.is_file():
        problem = f"{path}: not found"
    return problem


LOGO_SUFFIX: Final = ".logo"
MAX_LOGO_BYTES: Final = 16 * 1024  # text art larger than this is refused


def site_logo_path(config: Config, site: str) -> Path:
    """Where a site's own logo lives: etc/<site name, lower case>.logo."""
    return config.etc / f"{site.lower()}{LOGO_SUFFIX}"


def logo_text(config: Config, printer: PrinterConfig, site: str | None) -> str | None:
    """The text art of a job's {logo}, by the site it was submitted at (`site`):

    * another site's job (a branch's, forwarded here): that site's own
      etc/<site>.logo, so a central office keeps one per branch;
    * a job of this site (SITE, or no site known): the printer's LOGO=, else SITE
      LOGO=.

    None when there is none: the header page then draws the site's name in block
    letters.  A file that went missing or breaks the path rules counts as none."""
    candidates: list[Path] = []
    ours = not site or site == config.server.site
    if not ours and valid_name(site or ""):
        candidates.append(site_logo_path(config, site or ""))
    elif ours:
        for raw in (printer.logo, config.server.site_logo):
            if raw is not None:
                candidates.append(logo_path(config, raw))
    for path in candidates:
        if _logo_problem(config, path) is None:
            try:
                return _read_text(path, MAX_LOGO_BYTES).replace("\r\n", "\n")
            except ConfigError:
                continue
    return None


def header_path(config: Config, printer: PrinterConfig) -> Path:
    """Where a printer's header template lives: etc/<header name, lower case>.hdr."""
    assert printer.header is not None
    return config.etc / f"{printer.header.lower()}{HEADER_SUFFIX}"


def header_template(config: Config, printer: PrinterConfig) -> str | None:
    """The printer's header template text, or None for the built-in header page.

    (None too when the printer prints no header pages: check `header_pages`.)
    Line ends are LF.  Raises ConfigError if the template went missing, grew
    past `MAX_HEADER_BYTES`, is not UTF-8, or breaks the path rules.
    """
    if printer.header is None or not printer.header_pages:
        return None
    path = header_path(config, printer)
    problem = _read_problem(config, path)
    if problem:
        raise ConfigError(str(path), 0, problem)
    text = _read_text(path, MAX_HEADER_BYTES)
    return text.replace("\r\n", "\n")


# ---------------------------------------------------------------------------
# Writing: defaults and edits


def defaults_folder() -> Traversable:
    """Where the example configuration that `printnet init` copies lives.

    One copy: the repository's top-level etc/.  A wheel carries it as package data
    printnet/defaults/ (setup.py maps that folder onto etc/); a checkout or an
    editable install has no printnet/defaults/ and reads etc/ beside the package.
    """
    packaged = resources.files("printnet").joinpath("defaults")
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "etc"


def default_text(name: str) -> str:
    """The example of an etc file (server.cmd, printers.cmd, local.hdr)."""
    return defaults_folder().joinpath(name).read_text("utf-8")


def write_defaults(etc: Path) -> list[Path]:
    """Create the default etc files that are missing; never overwrite one.

    Returns the files created.  Command files are created mode 0600 (they
    hold password hashes), templates 0644, all subject to the umask.
    """
    try:
        etc.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(str(etc), 0, f"cannot create: {exc.strerror or exc}") from None
    created = []
    for name, mode in DEFAULT_FILES:
        path = etc / name
        if os.path.lexists(path):
            continue
        data = default_text(name).encode("utf-8")
        try:
            if _create_new(path, data, mode):
                created.append(path)
        except OSError as exc:
            raise ConfigError(str(path), 0, f"cannot create: {exc.strerror or exc}") from None
    return created


def _write_temp(path: Path, data: bytes, mode: int, owner: tuple[int, int] | None, *,
                exact_mode: bool = True) -> Path:
    """A complete, fsynced temp file beside `path`: `mode` exactly, or less the umask."""
    return write_temp(path.parent, data, mode, prefix=f".{path.name}", exact_mode=exact_mode,
                      owner=owner)


def _fsync_dir(folder: Path) -> None:
    # Best effort: the file is already in place; a folder we cannot open or fsync
    # (some FUSE filesystems) must not fail an edit that succeeded.
    with contextlib.suppress(OSError):
        fsync_dir(folder)


def _create_new(path: Path, data: bytes, mode: int) -> bool:
    """Publish complete `data` at `path` only if nothing is there (link, put-if-absent)."""
    tmp = _write_temp(path, data, mode, None, exact_mode=False)
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    except OSError:  # no hard links here: rename, accepting a tiny race
        if os.path.lexists(path):
            return False
        os.rename(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)
    return True


def edit(etc: Path, filename: str, change: Callable[[str], str], *,
         server_name: str | None = None) -> Config:
    """Apply `change` to the text of etc/<filename> (server.cmd or printers.cmd).

    The whole configuration is parsed and checked with the new text first; on
    any error ConfigError is raised and the file is left byte-identical.
    Otherwise the file is replaced atomically, keeping its mode (and owner,
    where permitted).  A missing file counts as empty.  Returns the new Config.
    """
    if filename not in CONFIG_FILES:
        raise ConfigError(filename, 0, f"only {' and '.join(CONFIG_FILES)} can be edited")
    path = etc / filename
    if path.is_symlink():
        path = _resolve(path)
    try:
        old: str | None = _read_text(path)
    except ConfigError:
        if os.path.lexists(path):
            raise
        old = None
    texts = {}
    for name in CONFIG_FILES:
        if name != filename:
            texts[name] = _read_text(etc / name)
    new = change(old or "")
    texts[filename] = new
    if len(new.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES:
        raise ConfigError(str(path), 0, f"would be larger than {MAX_FILE_BYTES} bytes")
    config = parse_config(etc, texts[SERVER_FILE], texts[PRINTERS_FILE], server_name=server_name)
    if new == old:
        return config
    try:
        data = new.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(str(path), 0, "the new text is not valid Unicode") from None
    _replace(path, data, old)
    return config


def _replace(path: Path, data: bytes, expected: str | None) -> None:
    try:
        st = os.stat(path)
        mode, owner = stat.S_IMODE(st.st_mode), (st.st_uid, st.st_gid)
    except FileNotFoundError:
        mode, owner = 0o600, None
    except OSError as exc:
        raise ConfigError(str(path), 0, f"cannot write: {exc.strerror or exc}") from None
    try:
        tmp = _write_temp(path, data, mode, owner)
    except OSError as exc:
        raise ConfigError(str(path), 0, f"cannot write: {exc.strerror or exc}") from None
    try:
        # RACE: someone else (another console, an editor) changed the file while we
        # validated; do not overwrite their change with one made against the old text.
        try:
            current: str | None = _read_text(path)
        except ConfigError:
            current = None if not os.path.lexists(path) else "\0changed"
        if current != expected:
            raise ConfigError(str(path), 0, "changed by someone else during the edit; try again")
        os.rename(tmp, path)
    except OSError as exc:
        raise ConfigError(str(path), 0, f"cannot write: {exc.strerror or exc}") from None
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def stamp(etc: Path) -> tuple[tuple[int, int, int] | None, ...]:
    """A cheap fingerprint of the command files (inode, size, mtime): reload when it changes."""
    out: list[tuple[int, int, int] | None] = []
    for name in CONFIG_FILES:
        try:
            st = os.stat(etc / name)
        except OSError:
            out.append(None)
        else:
            out.append((st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(out)
