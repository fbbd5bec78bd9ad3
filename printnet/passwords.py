"""Console and queue passwords: slow salted hashes, never clear text.

Two kinds of secret are stored in `etc/`:

**Console password** (`PASSWORD <hash>` in server.cmd) — checked by the server
when an operator types it, so an ordinary password hash does::

    scrypt$<n>$<r>$<p>$<salt>$<hash>

`hashlib.scrypt` with n = 2**14, r = 8, p = 1, a 16-byte random salt and a
32-byte result; salt and hash in base64 without padding.  Cost: about 16 MiB of
memory (128 * r * n bytes) and some 50 ms of CPU per hash on a 2-core machine,
so an offline guesser gets about 20 guesses per second per core.  Parameters
are stored with each hash, so raising them later keeps old hashes working.
`verify_password` refuses parameters beyond `MAX_MEMORY` (a hostile or broken
hash must not make the server allocate gigabytes).

**Queue password** (`PRINTER ... PASSWORD=<hash>` in printers.cmd) — a station
cannot read `etc/`, and a request file on the shared disk must never carry the
clear password.  So a station sends a *proof* bound to its job::

    key   = scrypt(password, salt=QUEUE_SALT, n=2**14, r=8, p=1, dklen=32)
    proof = hex(HMAC-SHA256(key, b"printnet/queue-proof/v1\\0" + job_id))

and the server stores the key itself::

    qscrypt$<n>$<r>$<p>$<key>

Trade-offs, chosen for simplicity:

* The salt is a fixed per-purpose string, because the station must derive the
  key without asking anyone.  The same password therefore gives the same stored
  key on every printer and installation (a dictionary can be precomputed once,
  though every entry still costs a full scrypt).
* The stored key is *password-equivalent for proofs*: whoever can read
  printers.cmd can make valid proofs without knowing the password (not recover
  the password, except by guessing at scrypt cost).  Keep etc/ private (the
  default files are created mode 0600).
* A proof is bound to one job id; it cannot be moved to another request.  Job
  ids are unique, so a copied request with the same id is a duplicate, which
  intake refuses.  Anyone who can read a request file can guess passwords
  offline against its proof, again at scrypt cost per guess.

This module does no I/O besides `secrets` for salts.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import unicodedata
from typing import Final

from printnet.errors import ValidationError

SCRYPT_N: Final = 2**14  # CPU/memory cost (a power of two)
SCRYPT_R: Final = 8  # block size
SCRYPT_P: Final = 1  # parallelism
SALT_BYTES: Final = 16
HASH_BYTES: Final = 32
MAX_MEMORY: Final = 64 * 2**20  # bytes: the most a stored hash may make scrypt use
MAX_PASSWORD: Final = 1024  # characters

QUEUE_SALT: Final = b"printnet/queue-password/v1"
_PROOF_CONTEXT: Final = b"printnet/queue-proof/v1\0"

_B64: Final = r"[A-Za-z0-9+/]+"
_HASH_RE: Final = re.compile(
    rf"scrypt\$([0-9]{{1,8}})\$([0-9]{{1,3}})\$([0-9]{{1,3}})\$({_B64})\$({_B64})"
)
_QHASH_RE: Final = re.compile(
    rf"qscrypt\$([0-9]{{1,8}})\$([0-9]{{1,3}})\$([0-9]{{1,3}})\$({_B64})"
)
_PROOF_RE: Final = re.compile(r"[0-9a-f]{64}")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes | None:
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def _secret(password: str) -> bytes:
    if not password:
        raise ValidationError("password", "must not be empty")
    if len(password) > MAX_PASSWORD:
        raise ValidationError("password", f"longer than {MAX_PASSWORD} characters")
    # NFC: the same password typed through different input methods hashes alike.
    return unicodedata.normalize("NFC", password).encode("utf-8", "surrogatepass")


def _sane(n: int, r: int, p: int) -> bool:
    return (
        n >= 2
        and n & (n - 1) == 0
        and 1 <= r <= 64
        and 1 <= p <= 16
        and 128 * r * n + 128 * r * p <= MAX_MEMORY
    )


def _scrypt(secret: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        secret, salt=salt, n=n, r=r, p=p, dklen=HASH_BYTES, maxmem=MAX_MEMORY + 2**20
    )


# ---------------------------------------------------------------------------
# Console password


def hash_password(password: str) -> str:
    """A new salted scrypt hash of `password` (`scrypt$n$r$p$salt$hash`)."""
    secret = _secret(password)
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _scrypt(secret, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def _parse_hash(stored: str) -> tuple[int, int, int, bytes, bytes] | None:
    m = _HASH_RE.fullmatch(stored)
    if m is None:
        return None
    n, r, p = int(m[1]), int(m[2]), int(m[3])
    salt, digest = _unb64(m[4]), _unb64(m[5])
    if not _sane(n, r, p) or salt is None or digest is None:
        return None
    if not 8 <= len(salt) <= 64 or len(digest) != HASH_BYTES:
        return None
    return n, r, p, salt, digest


def valid_hash(stored: str) -> bool:
    """Whether `stored` is a well-formed console-password hash with sane parameters."""
    return _parse_hash(stored) is not None


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` matches `stored`; False for a malformed hash (constant-time)."""
    parsed = _parse_hash(stored)
    if parsed is None:
        return False
    try:
        secret = _secret(password)
    except ValidationError:
        return False
    n, r, p, salt, digest = parsed
    return hmac.compare_digest(_scrypt(secret, salt, n, r, p), digest)


# ---------------------------------------------------------------------------
# Queue password


def _queue_key(password: str) -> bytes:
    return _scrypt(_secret(password), QUEUE_SALT, SCRYPT_N, SCRYPT_R, SCRYPT_P)


def hash_queue_password(password: str) -> str:
    """What printers.cmd stores for a queue password (`qscrypt$n$r$p$key`)."""
    return f"qscrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(_queue_key(password))}"


def _parse_queue_hash(stored: str) -> bytes | None:
    m = _QHASH_RE.fullmatch(stored)
    if m is None:
        return None
    key = _unb64(m[4])
    if not _sane(int(m[1]), int(m[2]), int(m[3])) or key is None or len(key) != HASH_BYTES:
        return None
    return key


def valid_queue_hash(stored: str) -> bool:
    """Whether `stored` is a well-formed queue-password hash (`qscrypt$...`)."""
    return _parse_queue_hash(stored) is not None


def _proof(key: bytes, job_id: str) -> str:
    msg = _PROOF_CONTEXT + job_id.encode("utf-8", "surrogatepass")
    return hmac.new(key, msg, hashlib.sha256).hexdigest()


def queue_proof(password: str, job_id: str) -> str:
    """The proof a station puts in its print request: 64 hex digits, bound to `job_id`."""
    return _proof(_queue_key(password), job_id)


def verify_queue_proof(stored_hash: str, proof: str, job_id: str) -> bool:
    """Whether `proof` was made for `job_id` with the password behind `stored_hash`.

    Cheap (one HMAC): the slow part was paid by the station.  False for a
    malformed hash or proof.  Constant-time in the proof.
    """
    key = _parse_queue_hash(stored_hash)
    if key is None or _PROOF_RE.fullmatch(proof) is None:
        return False
    return hmac.compare_digest(_proof(key, job_id), proof)
