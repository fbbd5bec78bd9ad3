"""The gateway's configuration: etc/gateway.cmd and its users file.

Same syntax as the other command files (`printnet.cmdfile`; every error names
its file and line)::

    ; etc/gateway.cmd
    AUTH TRUST NETWORKS=127.0.0.0/8,192.168.1.0/24   ; claimed names from these only
    ; AUTH BASIC                                      ; passwords (etc/gateway.users)
    ; AUTH NONE USER=guest                            ; every job is guest's
    TLS CERT=gateway.pem KEY=gateway.key              ; relative to etc/
    TIMEOUT 30                                        ; seconds a client may stall
    MAXBODY 64M                                       ; largest IPP request body
    USERS gateway.users

* ``AUTH BASIC``: HTTP Basic against the users file.  ``NETWORKS=`` (optional)
  lists networks whose claimed names are also believed (LPD, old clients);
  ``USER=`` (optional) is the guest account for requests without credentials.
* ``AUTH TRUST NETWORKS=...``: a claimed name (IPP requesting-user-name, LPD's
  user line) is believed from those networks only.  From elsewhere: the
  guest ``USER=`` if set, else the request is refused.
* ``AUTH NONE USER=<account>``: every job belongs to that one account.

Without the file the gateway trusts claimed names from the loopback networks
only (127.0.0.0/8, ::1): a fresh install is no more open than
`printnet request` on the same host.

The users file (default ``etc/gateway.users``, mode 0600) has one line per
user, the hash made by `printnet.passwords.hash_password` (scrypt)::

    USER alice PASSWORD=scrypt$16384$8$1$...

`printnet gateway --set-password USER` adds or replaces a line.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from printnet import cmdfile
from printnet.config import _read_text
from printnet.errors import ConfigError
from printnet.model import valid_user
from printnet.passwords import valid_hash

GATEWAY_FILE: Final = "gateway.cmd"
USERS_FILE: Final = "gateway.users"
DEFAULT_MAX_BODY: Final = 64 << 20
DEFAULT_TIMEOUT: Final = 30.0
LOOPBACK: Final = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class _Networks(cmdfile.Value):
    @property
    def describe(self) -> str:
        return "a comma-separated list of networks (10.0.0.0/8, 192.168.1.7, ::1)"

    def convert(self, raw: str) -> tuple[Network, ...]:
        out = []
        for part in raw.split(","):
            try:
                out.append(ipaddress.ip_network(part.strip(), strict=False))
            except ValueError:
                raise ValueError(f"{part.strip()[:40]!r} is not a network "
                                 "(10.0.0.0/8, 192.168.1.7, ::1)") from None
        return tuple(out)


@dataclass(frozen=True)
class _UserName(cmdfile.Value):
    @property
    def describe(self) -> str:
        return "a user name (A-Z a-z 0-9 _ . @ -)"

    def convert(self, raw: str) -> str:
        if not valid_user(raw):
            raise ValueError(f"must be {self.describe}")
        return raw


@dataclass(frozen=True)
class _File(cmdfile.Value):
    @property
    def describe(self) -> str:
        return "a file path (relative: inside etc/)"

    def convert(self, raw: str) -> str:
        if not raw or "\0" in raw or len(raw) > 4096:
            raise ValueError(f"must be {self.describe}")
        return raw


K = cmdfile.Keyword
R = cmdfile.Repeat
GATEWAY_SCHEMA: Final = cmdfile.Schema(GATEWAY_FILE, {
    "AUTH": K("AUTH", R.SINGLE, "how a job's user is established: BASIC, TRUST or NONE",
              "AUTH TRUST NETWORKS=127.0.0.0/8", cmdfile.Choice(("BASIC", "TRUST", "NONE")),
              True, {"NETWORKS": _Networks(), "USER": _UserName()}),
    "USERS": K("USERS", R.SINGLE, "the users file of AUTH BASIC (hashed passwords)",
               "USERS gateway.users", _File(), True),
    "TLS": K("TLS", R.SINGLE, "serve IPP and the page over TLS with this certificate",
             "TLS CERT=gateway.pem KEY=gateway.key", None, False,
             {"CERT": _File(), "KEY": _File()}, frozenset({"CERT"})),
    "TIMEOUT": K("TIMEOUT", R.SINGLE, "seconds a client may stall mid-request",
                 "TIMEOUT 30", cmdfile.Number(1, 3600), True),
    "MAXBODY": K("MAXBODY", R.SINGLE, "largest IPP request (attributes + document)",
                 "MAXBODY 64M", cmdfile.Int(1024, 1 << 40, "bytes", sizes=True), True),
})
USERS_SCHEMA: Final = cmdfile.Schema(USERS_FILE, {
    "USER": K("USER", R.NAMED, "a gateway user and the scrypt hash of their password",
              "USER alice PASSWORD=scrypt$16384$8$1$...", _UserName(), True,
              {"PASSWORD": cmdfile.Check(valid_hash, "a scrypt$... password hash")},
              frozenset({"PASSWORD"})),
})


@dataclass(frozen=True)
class GatewaySettings:
    """What etc/gateway.cmd says (defaults: trust loopback only)."""

    auth: str = "trust"  # basic | trust | none
    networks: tuple[Network, ...] = LOOPBACK
    guest: str | None = None  # USER=: the account of requests nobody vouches for
    users_file: Path | None = None
    users: Mapping[str, str] = field(default_factory=dict)  # user -> scrypt hash
    cert: Path | None = None
    key: Path | None = None
    timeout: float = DEFAULT_TIMEOUT
    max_body: int = DEFAULT_MAX_BODY
    source: str = "(built-in defaults)"


def load(etc: Path) -> GatewaySettings:
    """Read etc/gateway.cmd (absent: the defaults) and the users file; ConfigError."""
    path = etc / GATEWAY_FILE
    if not path.exists():
        return GatewaySettings()
    return parse(_read_text(path), etc, str(path))


def parse(text: str, etc: Path, filename: str) -> GatewaySettings:
    cmds = cmdfile.parse(text, filename, GATEWAY_SCHEMA)
    by = {c.keyword: c for c in cmds}
    auth_cmd = by.get("AUTH")
    auth = str(auth_cmd.value).lower() if auth_cmd else "trust"
    networks: tuple[Network, ...] = LOOPBACK
    guest = None
    if auth_cmd is not None:
        raw = auth_cmd.values.get("NETWORKS")
        if isinstance(raw, tuple):
            networks = raw
        elif auth == "basic":
            networks = ()
        guest = auth_cmd.get_opt_str("USER")
        if auth == "none" and guest is None:
            raise auth_cmd.error("AUTH NONE needs USER=<account>: every job becomes theirs")
        if auth == "trust" and "NETWORKS" not in auth_cmd.values:
            raise auth_cmd.error("AUTH TRUST needs NETWORKS=...: the networks whose claimed "
                                 "user names are believed")
    users_cmd = by.get("USERS")
    users_file = _inside_etc(etc, str(users_cmd.value) if users_cmd else USERS_FILE,
                             users_cmd)
    users: dict[str, str] = {}
    if users_file.exists():
        users = load_users(users_file)
    elif auth == "basic" and users_cmd is not None:
        raise users_cmd.error(f"{users_file}: not found (printnet gateway --set-password USER)")
    cert = key = None
    tls = by.get("TLS")
    if tls is not None:
        cert = _inside_etc(etc, tls.get_str("CERT", ""), tls)
        key = _inside_etc(etc, tls.get_str("KEY", ""), tls) if tls.has("KEY") else None
        for p in (cert, key):
            if p is not None and not p.is_file():
                raise tls.error(f"{p}: not found")
    timeout = by["TIMEOUT"].value if "TIMEOUT" in by else DEFAULT_TIMEOUT
    max_body = by["MAXBODY"].value if "MAXBODY" in by else DEFAULT_MAX_BODY
    assert isinstance(timeout, float) and isinstance(max_body, int)
    return GatewaySettings(auth, networks, guest, users_file, users, cert, key, timeout,
                           max_body, filename)


def _inside_etc(etc: Path, raw: str, cmd: cmdfile.Command | None) -> Path:
    path = Path(raw)
    return path if path.is_absolute() else etc / path


def load_users(path: Path) -> dict[str, str]:
    """The users file: user -> scrypt hash (ConfigError with file and line)."""
    cmds = cmdfile.parse(_read_text(path), str(path), USERS_SCHEMA)
    return {str(c.name): c.get_str("PASSWORD", "") for c in cmds}


def set_password(path: Path, user: str, stored_hash: str) -> None:
    """Add or replace `user`'s line in the users file (atomic rewrite, mode 0600)."""
    import os

    from printnet.spool.publish import write_atomic

    if not valid_user(user):
        raise ConfigError(str(path), 0, f"{user[:40]!r} is not a user name")
    text = _read_text(path) if path.exists() else (
        "; printnet gateway users (AUTH BASIC): USER <name> PASSWORD=<scrypt hash>\n")
    cmdfile.parse(text, str(path), USERS_SCHEMA)  # refuse to edit a broken file
    kept = [line for line in text.splitlines()
            if not (cmdfile.split_line(line)[0][:2] and _names_user(line, user))]
    kept.append(cmdfile.render_command("USER", user, {"PASSWORD": stored_hash}))
    text = "\n".join(kept) + "\n"
    cmdfile.parse(text, str(path), USERS_SCHEMA)
    write_atomic(path, text.encode(), mode=0o600, sync=True)
    os.chmod(path, 0o600)


def _names_user(line: str, user: str) -> bool:
    words = cmdfile.split_line(line)[0]
    return (len(words) >= 2 and words[0].text.upper() == "USER" and words[1].key is None
            and words[1].value == user)
