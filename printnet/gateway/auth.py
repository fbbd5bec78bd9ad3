"""Who a gateway request is for: the identity rules and HTTP Basic.

IPP's requesting-user-name and LPD's user line are claims, not proofs
(docs/SECURITY.md, docs/GATEWAY.md "Identity").  `identify` applies
etc/gateway.cmd's AUTH line:

* AUTH NONE USER=x: everyone is x (``guest``).
* Valid Basic credentials: that user (``basic``).  Under AUTH BASIC, wrong
  credentials are refused (`AuthRequired`, HTTP 401), never taken as a claim.
* From a NETWORKS= network: the claimed name (``trust``), if printnet accepts
  it as a user name; no claim: the guest USER=, else `Forbidden`.
* From elsewhere: the guest USER=, else `AuthRequired` (BASIC) or `Forbidden`.

`BasicCheck` verifies a password against the users file (scrypt, via
`printnet.passwords`) and remembers a success for a minute: a client sends
its credentials with every request, and each check costs some 50 ms of CPU.
"""

from __future__ import annotations

import base64
import binascii
import functools
import ipaddress
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from printnet.errors import AuthRequired, Forbidden
from printnet.gateway.settings import GatewaySettings
from printnet.model import clean_text, valid_user
from printnet.passwords import verify_password

REMEMBER: Final = 60.0  # seconds a verified (user, password) is not checked again
MAX_REMEMBERED: Final = 1000


@dataclass(frozen=True)
class Identity:
    """Who a job belongs to, and how the gateway knows: basic, trust or guest."""

    user: str
    how: str


def trusted(settings: GatewaySettings, peer_host: str) -> bool:
    """Whether `peer_host` is inside NETWORKS= (IPv4-mapped IPv6 counts as IPv4)."""
    return _trusted(settings.networks, peer_host)


@functools.lru_cache(maxsize=4096)
def _trusted(networks: tuple[Any, ...], peer_host: str) -> bool:
    # Cached: every request asks, and parsing an address costs more than the request's
    # other checks; the answer depends only on the networks and the address.
    try:
        addr = ipaddress.ip_address(peer_host.split("%", maxsplit=1)[0])
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return any(addr in net for net in networks)


def parse_basic(authorization: str) -> tuple[str, str] | None:
    """(user, password) of an HTTP Basic Authorization header; None if it is not one."""
    scheme, _, blob = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        text = base64.b64decode(blob.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    user, sep, password = text.partition(":")
    return (user, password) if sep else None


class BasicCheck:
    """The user an Authorization header proves, or None (thread-safe)."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._verified: dict[tuple[str, str], float] = {}

    def __call__(self, authorization: str) -> str | None:
        creds = parse_basic(authorization)
        if creds is None or not self.settings.users:
            return None
        user, password = creds
        stored = self.settings.users.get(user)
        if stored is None:
            return None
        now = time.monotonic()
        with self._lock:
            if now - self._verified.get(creds, -1e9) < REMEMBER:
                return user
        if not verify_password(password, stored):
            return None
        with self._lock:
            if len(self._verified) > MAX_REMEMBERED:
                self._verified.clear()
            self._verified[creds] = now
        return user


def identify(settings: GatewaySettings, basic: Callable[[str], str | None],
             authorization: str | None, peer_host: str, claimed: str | None) -> Identity:
    """The rules of the module docstring; AuthRequired (401) or Forbidden (403)."""
    s = settings
    if s.auth == "none":
        assert s.guest is not None  # settings refuse AUTH NONE without USER=
        return Identity(s.guest, "guest")
    if authorization:
        user = basic(authorization)
        if user is not None:
            return Identity(user, "basic")
        if s.auth == "basic":
            raise AuthRequired("wrong user name or password")
    if trusted(s, peer_host):
        if claimed:
            if not valid_user(claimed):
                raise Forbidden(f"{clean_text(claimed, 40)!r} is not a user name printnet "
                                "accepts (A-Z a-z 0-9 _ . @ -)")
            return Identity(claimed, "trust")
        if s.guest is not None:
            return Identity(s.guest, "guest")
        raise Forbidden("no user name given (requesting-user-name)")
    if s.guest is not None:
        return Identity(s.guest, "guest")
    if s.auth == "basic":
        raise AuthRequired("this gateway needs a user name and password")
    raise Forbidden(f"{clean_text(peer_host, 60)} is not a trusted network ({s.source})")
