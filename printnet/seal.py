"""Sealed documents: the format of a document encrypted on the spool (SEAL=ON).

Owns the cryptography of sealing, nothing of keys on disk (`printnet.keys`)
or of the spool:

* a fresh random **job key** (32 bytes) per job;
* the job key **wrapped** for every recipient (each print server's X25519
  public key) with HPKE (RFC 9180, base mode, suite DHKEM(X25519,
  HKDF-SHA256), HKDF-SHA256, AES-256-GCM), ``info`` = ``printnet-seal-v1``
  + the job id, so a wrap copied into another job's request does not open;
* each document cut into 1 MiB **chunks**, each encrypted with AES-256-GCM
  under the job key: nonce = file number (4 bytes) + chunk index (8 bytes),
  never reused because the key is the job's own; associated data = version,
  job id, file name, chunk index and a **final** flag (1 on the last chunk
  only).  So a changed chunk, chunks swapped or reordered, a document cut off
  at a chunk boundary, and a document copied from another job all fail
  authentication, and `open_document` says which.

A sealed file is exactly the chunks' ciphertexts one after another:
``sealed_size(n) = n + 16 * max(1, ceil(n / CHUNK))`` (an empty document is
one empty final chunk).  The request's `size` and `sha256` of a sealed file
describe these sealed bytes, so the request reveals nothing of the document
beyond its length.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import BinaryIO, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hpke import AEAD, KDF, KEM, Suite

from printnet.errors import SealError
from printnet.model import SEAL_CHUNK, Seal

CHUNK: Final = SEAL_CHUNK
TAG: Final = 16  # bytes of AES-GCM's tag per chunk
VERSION: Final = b"printnet-seal-v1\0"
SUITE: Final = Suite(KEM.X25519, KDF.HKDF_SHA256, AEAD.AES_256_GCM)


@dataclass(frozen=True)
class Recipient:
    """A print server's published public key."""

    kid: str
    public: X25519PublicKey
    server: str = ""


def key_id(public: X25519PublicKey) -> str:
    """16 hex digits naming a key: from its raw public bytes."""
    return hashlib.sha256(public.public_bytes_raw()).hexdigest()[:16]


def sealed_size(size: int) -> int:
    """Bytes on the spool of a sealed document of `size` bytes."""
    chunks = max(1, -(-size // CHUNK))
    return size + TAG * chunks


def _info(job_id: str) -> bytes:
    return VERSION + job_id.encode()


def new_job_key() -> bytes:
    return os.urandom(32)


def wrap(job_key: bytes, job_id: str, recipients: Iterable[Recipient]) -> Seal:
    """The job key wrapped for each recipient (HPKE), as the request's `seal`."""
    keys = {r.kid: base64.b64encode(SUITE.encrypt(job_key, r.public, info=_info(job_id)))
            .decode() for r in recipients}
    if not keys:
        raise SealError("no public key to seal to")
    return Seal(keys=tuple(sorted(keys.items())))


def unwrap(seal: Seal, job_id: str, keyring: Mapping[str, X25519PrivateKey]) -> bytes:
    """The job key, opened with one of our private keys (SealError if none fits)."""
    mine = [(kid, w) for kid, w in seal.keys if kid in keyring]
    if not mine:
        listed = ", ".join(kid for kid, _ in seal.keys)
        raise SealError(f"sealed to keys this server does not hold ({listed})")
    for kid, wrapped in mine:
        try:
            key = SUITE.decrypt(base64.b64decode(wrapped), keyring[kid], info=_info(job_id))
        except (InvalidTag, ValueError):
            continue
        if len(key) == 32:
            return key
    raise SealError("the job key does not open: the seal was changed or is another job's")


def _nonce(file_no: int, index: int) -> bytes:
    return file_no.to_bytes(4, "big") + index.to_bytes(8, "big")


def _aad(job_id: str, name: str, index: int, final: bool) -> bytes:
    return (VERSION + job_id.encode() + b"\0" + name.encode() + b"\0"
            + index.to_bytes(8, "big") + (b"\1" if final else b"\0"))


def _file_no(name: str) -> int:
    if not name.isdigit() or len(name) > 3:
        raise SealError(f"bad data file name {name!r}")
    return int(name)


def _read_full(reader: BinaryIO) -> bytes:
    """CHUNK bytes, or fewer only at the end (a pipe may return short reads)."""
    chunk = reader.read(CHUNK)
    while chunk and len(chunk) < CHUNK and (more := reader.read(CHUNK - len(chunk))):
        chunk += more
    return chunk


def seal_chunks(job_key: bytes, job_id: str, name: str, reader: BinaryIO) -> Iterator[bytes]:
    """The sealed chunks of what `reader` yields (read a chunk ahead: the last is marked)."""
    aead = AESGCM(job_key)
    file_no = _file_no(name)
    index = 0
    chunk = _read_full(reader)
    while True:
        following = _read_full(reader) if len(chunk) == CHUNK else b""
        final = not following
        yield aead.encrypt(_nonce(file_no, index), chunk, _aad(job_id, name, index, final))
        if final:
            return
        chunk, index = following, index + 1


def seal_bytes(job_key: bytes, job_id: str, name: str, data: bytes) -> bytes:
    import io

    return b"".join(seal_chunks(job_key, job_id, name, io.BytesIO(data)))


def open_document(job_key: bytes, job_id: str, name: str, sealed: bytes) -> bytes:
    """The document, decrypted in memory; SealError saying what was done to it."""
    aead = AESGCM(job_key)
    file_no = _file_no(name)
    step = CHUNK + TAG
    count = max(1, -(-len(sealed) // step))
    if len(sealed) < TAG or (len(sealed) % step and len(sealed) % step < TAG):
        raise SealError(f"data file {name}: sealed data cut off inside a chunk (truncated)")
    out = []
    for index in range(count):
        part = sealed[index * step:(index + 1) * step]
        final = index == count - 1
        try:
            out.append(aead.decrypt(_nonce(file_no, index), part,
                                    _aad(job_id, name, index, final)))
        except InvalidTag:
            raise SealError(f"data file {name}: "
                            + _diagnose(aead, job_id, name, file_no, part, index, final)) \
                from None
    return b"".join(out)


def _diagnose(aead: AESGCM, job_id: str, name: str, file_no: int, part: bytes,
              index: int, final: bool) -> str:
    """Why chunk `index` fails: tried as other positions (only after a failure)."""
    def opens(i: int, last: bool) -> bool:
        try:
            aead.decrypt(_nonce(file_no, i), part, _aad(job_id, name, i, last))
        except InvalidTag:
            return False
        return True

    if final and opens(index, False):
        return (f"sealed data ends after chunk {index}, which is not the last "
                "(truncated)")
    for i in range(max(0, index - 64), index + 65):
        if i != index and (opens(i, False) or opens(i, True)):
            return f"chunk {index} is chunk {i} of the document (reordered)"
    if index == 0:
        return ("chunk 0 fails authentication: changed, or another job's document "
                "(it does not open with this job's key)")
    return f"chunk {index} fails authentication (changed)"


def load_private(raw: bytes) -> X25519PrivateKey:
    return X25519PrivateKey.from_private_bytes(raw)


def load_public(raw: bytes) -> X25519PublicKey:
    return X25519PublicKey.from_public_bytes(raw)
