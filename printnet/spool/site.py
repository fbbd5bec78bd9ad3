"""The site's published configuration: what stations may know of destinations.

On a multi-user spool stations cannot read etc/*.cmd (they hold password
hashes), so the printers, classes, setups and DEFAULT a station must check a
request against are published on the spool, readable by everyone and writable
only by the service account: ``servers/<NAME>.site.json``, one per
configuration.  `printnet init` writes it from the etc/ it sets up (so a cold
spool, before any server has run, knows its default printer), and each server
writes it again from its configuration when it starts and when it reloads.

A file per server name (not one shared file): two servers with different
etc/ folders never overwrite each other's, and a station sees the union.
A configuration published under a new name (SERVER NAME= changed, or `init`
named it by the host before the first server ran) removes its files under
old names (the same host and etc/ folder recorded in them).
Where their DEFAULT lines differ, `site_default` decides (docs/COMPAT.md):
the configuration whose printers.cmd was changed last wins, because that is
the administrator's latest word; equal times fall to the server name that
sorts first, so every station picks the same one.  The time is the
printers.cmd file's, not the publication's, so servers re-publishing do not
make the winner flip.

Not the server file ``servers/<NAME>.json`` (the heartbeat and printer
status, rewritten every second): the site file changes only with the
configuration, and its name does not end in ``<NAME>.json`` alone so readers
of server files skip it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from printnet.spool.layout import Spool
from printnet.spool.publish import HOST, read_bytes, unlink_quietly, write_atomic

if TYPE_CHECKING:
    from printnet.config import Config

SITE_SUFFIX = ".site.json"
SITE_KIND = "printnet-site"
SITE_VERSION = 1
MAX_SITE_BYTES = 1 << 20


@dataclass(frozen=True)
class Site:
    """One published configuration."""

    server: str
    default: str | None
    printers: frozenset[str]
    classes: dict[str, tuple[str, ...]]
    setups: frozenset[str]
    configured: float  # mtime of the printers.cmd it was made from
    path: Path
    etc: str = ""  # the etc/ folder it was made from, and the digest of its texts
    sources: str = ""
    site_name: str | None = None  # SITE in its server.cmd (the office; docs/SITES.md)


def site_record(config: Config) -> dict[str, Any]:
    """What `publish_site` writes for `config` (no secrets: names only)."""
    try:
        configured = os.stat(config.etc / "printers.cmd").st_mtime
    except OSError:
        configured = 0.0
    return {
        "kind": SITE_KIND, "version": SITE_VERSION, "server": config.server.name,
        "default": config.default_printer, "printers": sorted(config.printers),
        "classes": {c: list(m) for c, m in sorted(config.classes.items())},
        "setups": sorted(config.setups), "configured": configured,
        # Which configuration this is: a renamed server (SERVER NAME= changed, or
        # init's host name before the first server run) replaces its old file.
        "host": HOST, "etc": str(config.etc),
        # The digest of the server.cmd and printers.cmd texts it was made from: a
        # station whose own etc/ (this same folder) holds these texts uses this record
        # instead of parsing them (`own_site`), which is most of a request's start-up.
        "sources": config.sources,
        "site": config.server.site,
    }


def sources_digest(server_text: bytes, printers_text: bytes) -> str:
    """sha256 of a configuration's two command files, as `site_record` publishes it."""
    import hashlib

    digest = hashlib.sha256(b"printnet-site-sources 1\0")
    for text in (server_text, printers_text):
        digest.update(b"%d\0" % len(text))
        digest.update(text)
    return digest.hexdigest()


def own_site(sites: list[Site], etc: Path, server_text: bytes,
             printers_text: bytes) -> Site | None:
    """The published site made from exactly these texts of the etc/ folder `etc`
    (None if none is: the station parses its etc/ itself, as before).

    Equal texts in the same folder parse to the same printers, classes, setups and
    DEFAULT, and a site is published only after its configuration loaded without
    error, so nothing a station checks a request against can differ."""
    if not sites:
        return None
    try:
        where = str(etc.resolve())
    except (OSError, RuntimeError):
        return None
    digest = sources_digest(server_text, printers_text)
    for site in sites:
        if site.sources == digest and site.etc == where:
            return site
    return None


def publish_site(spool: Spool, config: Config) -> Path:
    """Write servers/<NAME>.site.json for `config` (atomic; mode 0644).

    The server package calls this at start and after each reload:
    ``publish_site(service.spool, config)`` for each spool it serves."""
    path = spool.servers / f"{config.server.name}{SITE_SUFFIX}"
    record = site_record(config)
    data = json.dumps(record, indent=1, sort_keys=True).encode() + b"\n"
    try:
        unchanged = read_bytes(path, MAX_SITE_BYTES) == data
    except OSError:
        unchanged = False
    if not unchanged:  # no rewrite, no new mtime on a shared disk
        write_atomic(path, data, mode=0o644, sync=False)
    _forget_old_names(spool, path, record)
    return path


def _forget_old_names(spool: Spool, mine: Path, record: dict[str, Any]) -> None:
    """Remove site files of this same configuration (host and etc/) under another name."""
    try:
        names = [n for n in os.listdir(spool.servers) if is_site_file(n) and n != mine.name]
    except OSError:
        return
    for name in names:
        try:
            other = json.loads(read_bytes(spool.servers / name, MAX_SITE_BYTES))
        except (OSError, ValueError):
            continue
        if isinstance(other, dict) and other.get("host") == record["host"] \
                and other.get("etc") == record["etc"]:
            unlink_quietly(spool.servers / name)


def is_site_file(name: str) -> bool:
    return name.endswith(SITE_SUFFIX) and not name.startswith(".")


def read_sites(spool: Spool) -> tuple[list[Site], list[str]]:
    """Every published site, and one "cannot read" line per file that could not be read."""
    sites: list[Site] = []
    problems: list[str] = []
    try:
        names = sorted(n for n in os.listdir(spool.servers) if is_site_file(n))
    except FileNotFoundError:
        return sites, problems
    except OSError as exc:
        from printnet.readable import cannot_read

        return sites, [cannot_read(spool.servers, exc)]
    for name in names:
        path = spool.servers / name
        try:
            record = json.loads(read_bytes(path, MAX_SITE_BYTES))
        except OSError as exc:
            from printnet.readable import cannot_read

            problems.append(cannot_read(path, exc))
            continue
        except ValueError:
            problems.append(f"{path}: not a site file (bad JSON)")
            continue
        site = _decode(record, path)
        if site is None:
            problems.append(f"{path}: not a site file of version {SITE_VERSION}")
        else:
            sites.append(site)
    return sites, problems


def _names(value: object) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _decode(record: object, path: Path) -> Site | None:
    if not isinstance(record, dict) or record.get("kind") != SITE_KIND \
            or record.get("version") != SITE_VERSION:
        return None
    classes_raw = record.get("classes")
    classes = {str(c): tuple(_names(m)) for c, m in classes_raw.items()} \
        if isinstance(classes_raw, dict) else {}
    default = record.get("default")
    configured = record.get("configured")
    return Site(
        server=str(record.get("server") or path.name[: -len(SITE_SUFFIX)]),
        default=default if isinstance(default, str) and default else None,
        printers=frozenset(_names(record.get("printers"))), classes=classes,
        setups=frozenset(_names(record.get("setups"))),
        configured=float(configured) if isinstance(configured, int | float) else 0.0,
        path=path, etc=str(record.get("etc") or ""), sources=str(record.get("sources") or ""),
        site_name=str(record["site"]) if isinstance(record.get("site"), str) else None,
    )


def site_default(sites: list[Site]) -> Site | None:
    """The site whose DEFAULT applies: the latest-changed configuration with a
    DEFAULT; equal times, the server name that sorts first."""
    with_default = [s for s in sites if s.default]
    if not with_default:
        return None
    return min(with_default, key=lambda s: (-s.configured, s.server))
