"""Sealing keys on disk: a server's private keys (local) and their public halves (spool).

Owns:

* the **keys folder** of a server (`keys_folder`): ``--keys DIR``, else
  ``$PRINTNET_KEYS``, else ``KEYS`` in server.cmd, else
  ``/var/lib/printnet/keys``.  A local folder, 0700, with one 0600 file
  ``<kid>.key`` per key (JSON: kid, server, created, private, retired).  It
  must not be inside a spool it serves (`check_local`): private keys never
  go on the share.
* **publication**: the public half of each current key is written to the
  spool as ``servers/<kid>.pub`` (servers/ is the service account's, so no
  station can plant a key there); stations seal to every key published
  there (`published`).
* `create`, `rotate` (a new key is published and the server's old current
  ones retired: unpublished, but kept, so jobs sealed to them still print),
  `keyring` (every private key, current and retired, for opening).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from printnet import seal
from printnet.errors import SealError, UsageError
from printnet.model import PrintRequest
from printnet.spool.layout import Spool
from printnet.spool.publish import read_bytes, write_atomic

DEFAULT_FOLDER: Final = Path("/var/lib/printnet/keys")
KEY_SUFFIX: Final = ".key"
PUB_SUFFIX: Final = ".pub"
FOLDER_MODE: Final = 0o700
KEY_MODE: Final = 0o600


@dataclass(frozen=True)
class LocalKey:
    kid: str
    server: str
    created: str
    private: X25519PrivateKey
    retired: bool = False


def keys_folder(explicit: Path | None = None, configured: Path | None = None) -> Path:
    """Where this server's private keys are (see the module docstring for the order)."""
    if explicit is not None:
        return explicit
    env = os.environ.get("PRINTNET_KEYS")
    if env:
        return Path(env)
    return configured or DEFAULT_FOLDER


def check_local(folder: Path, spools: tuple[Path, ...]) -> None:
    """UsageError if `folder` lies inside a spool (private keys never go on the share)."""
    where = folder.resolve()
    for spool in spools:
        root = spool.resolve()
        if where == root or root in where.parents:
            raise UsageError(f"keys folder {folder} is inside the spool {spool}: private "
                             "keys must stay on the server's local disk (--keys DIR)")


def _open_folder(folder: Path, *, create: bool) -> None:
    if create:
        folder.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    try:
        st = os.lstat(folder)
    except FileNotFoundError:
        raise SealError(f"no keys folder {folder}: create a key with `printnet keys create`") \
            from None
    if not stat.S_ISDIR(st.st_mode):
        raise SealError(f"keys folder {folder} is not a folder")
    if st.st_uid != os.geteuid():
        raise SealError(f"keys folder {folder} belongs to uid {st.st_uid}, not to this server")
    if st.st_mode & 0o077:
        if create:
            os.chmod(folder, FOLDER_MODE)
        else:
            raise SealError(f"keys folder {folder} is open to others (mode "
                            f"{stat.S_IMODE(st.st_mode):04o}); it must be {FOLDER_MODE:04o}")


def local_keys(folder: Path) -> list[LocalKey]:
    """Every key in the folder, oldest first; SealError for an unsafe folder or file."""
    _open_folder(folder, create=False)
    out = []
    for name in sorted(os.listdir(folder)):
        if not name.endswith(KEY_SUFFIX) or name.startswith("."):
            continue
        path = folder / name
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_mode & 0o077 or st.st_uid != os.geteuid():
                raise SealError(f"key file {path} must be a regular 0600 file of this server's")
            obj = json.loads(os.read(fd, 1 << 16))
        except ValueError:
            raise SealError(f"key file {path} is not a key file") from None
        finally:
            os.close(fd)
        try:
            private = seal.load_private(base64.b64decode(obj["private"]))
            out.append(LocalKey(kid=str(obj["kid"]), server=str(obj.get("server", "")),
                                created=str(obj.get("created", "")), private=private,
                                retired=bool(obj.get("retired", False))))
        except (KeyError, ValueError, TypeError):
            raise SealError(f"key file {path} is not a key file") from None
    out.sort(key=lambda k: (k.created, k.kid))
    return out


def keyring(folder: Path) -> dict[str, X25519PrivateKey]:
    """Key id -> private key, for opening sealed jobs (retired keys included)."""
    try:
        return {k.kid: k.private for k in local_keys(folder)}
    except SealError:
        return {}


def _write_key(folder: Path, key: LocalKey) -> None:
    raw = key.private.private_bytes_raw()
    obj = {"kid": key.kid, "server": key.server, "created": key.created,
           "private": base64.b64encode(raw).decode(), "retired": key.retired}
    data = (json.dumps(obj) + "\n").encode()
    tmp = folder / f".{key.kid}.tmp"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, KEY_MODE)
    try:
        os.fchmod(fd, KEY_MODE)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, folder / (key.kid + KEY_SUFFIX))


def public_record(key: LocalKey) -> dict[str, Any]:
    public = key.private.public_key()
    return {"printnet-key": 1, "kid": key.kid, "server": key.server, "created": key.created,
            "public": base64.b64encode(public.public_bytes_raw()).decode()}


def publish(spool: Spool, key: LocalKey) -> Path:
    path = spool.servers / (key.kid + PUB_SUFFIX)
    write_atomic(path, (json.dumps(public_record(key)) + "\n").encode(), mode=0o644)
    return path


def unpublish(spool: Spool, kid: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        (spool.servers / (kid + PUB_SUFFIX)).unlink()


def create(folder: Path, server: str, spools: list[Spool]) -> LocalKey:
    """A new key pair: private in `folder`, public published on each spool."""
    check_local(folder, tuple(s.root for s in spools))
    _open_folder(folder, create=True)
    private = X25519PrivateKey.generate()
    key = LocalKey(kid=seal.key_id(private.public_key()), server=server,
                   created=datetime.now(UTC).isoformat(timespec="seconds"), private=private)
    _write_key(folder, key)
    for spool in spools:
        publish(spool, key)
    return key


def rotate(folder: Path, server: str, spools: list[Spool]) -> tuple[LocalKey, list[str]]:
    """A new current key; the server's previous current keys are retired (unpublished,
    kept for the jobs already sealed to them).  Returns (new key, retired ids)."""
    old = [k for k in local_keys(folder) if not k.retired and k.server == server]
    new = create(folder, server, spools)
    for k in old:
        _write_key(folder, LocalKey(k.kid, k.server, k.created, k.private, retired=True))
        for spool in spools:
            unpublish(spool, k.kid)
    return new, [k.kid for k in old]


def published(spool: Spool) -> list[seal.Recipient]:
    """The public keys published on `spool` (servers/*.pub), the ones stations seal to."""
    out: list[seal.Recipient] = []
    try:
        names = sorted(os.listdir(spool.servers))
    except OSError:
        return out
    for name in names:
        if not name.endswith(PUB_SUFFIX) or name.startswith("."):
            continue
        try:
            obj = json.loads(read_bytes(spool.servers / name, 1 << 16))
            public = seal.load_public(base64.b64decode(obj["public"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue
        kid = seal.key_id(public)
        if kid != obj.get("kid") or name != kid + PUB_SUFFIX:
            continue  # a file whose name or id does not match its key: ignored
        out.append(seal.Recipient(kid=kid, public=public, server=str(obj.get("server", ""))))
    return out


class Opener:
    """Opens sealed jobs with this server's keys, in memory only.

    The keyring is read on first use and again whenever a job names none of
    the keys held (a key created or rotated since): a small local folder, read
    only on such a miss.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._ring: dict[str, X25519PrivateKey] = {}

    def ring(self, wanted: tuple[str, ...]) -> dict[str, X25519PrivateKey]:
        if not any(k in self._ring for k in wanted):
            self._ring = keyring(self.folder)
        return self._ring

    def open(self, req: PrintRequest, sealed: list[bytes]) -> list[bytes]:
        """The documents of `req` from their sealed bytes; SealError saying why not."""
        if req.seal is None:
            return sealed
        ring = self.ring(tuple(kid for kid, _ in req.seal.keys))
        job_key = seal.unwrap(req.seal, req.id, ring)
        return [seal.open_document(job_key, req.id, f.name, data)
                for f, data in zip(req.files, sealed, strict=True)]


_openers: dict[Path, Opener] = {}


def opener(configured: Path | None) -> Opener:
    """The process's opener for the keys folder a server with KEYS `configured` uses."""
    folder = keys_folder(None, configured)
    if folder not in _openers:
        _openers[folder] = Opener(folder)
    return _openers[folder]


def seal_doubts(configured: Path | None, spool: Spool) -> list[str]:
    """What a server with sealed printers logs at start about its keys and `spool`."""
    folder = keys_folder(None, configured)
    out = []
    try:
        check_local(folder, (spool.root,))
    except UsageError as exc:
        out.append(str(exc))
    try:
        held = {k.kid for k in local_keys(folder)}
    except (SealError, OSError) as exc:
        held = set()
        out.append(f"sealed printers, but this server's keys cannot be read: {exc}")
    if not held and not out:
        out.append(f"sealed printers, but no key in {folder}: run `printnet keys create`")
    if held and not any(r.kid in held for r in published(spool)):
        out.append(f"none of this server's keys is published on {spool.root}: stations "
                   "cannot seal to it (`printnet keys create` or `rotate` publishes one)")
    return out
