"""Server side: take requests in from new/, or reject them with a reason.

Protocol:

* `scan()` lists the names in new/ (names only: no stat per file, which costs
  milliseconds each on a network share).  Dot-names are temp files and NFS
  leftovers and are ignored; every other name is taken in or rejected.
* `claim(name)` renames ``new/<name>`` to ``received/.<name>.<unique>`` and
  then to ``received/<name>``.  Whoever wins the first rename owns the
  request; the unique destination lets the winner verify its win after NFS
  reports a false ENOENT for a retransmitted rename.  A server that dies
  between the two renames leaves a dot-name that `finish_claims()` completes
  (any server, at start and periodically) — never deletes.
* `inspect(path)` opens the claimed file without following symlinks and
  without blocking on FIFOs, checks it is a regular file of sane size, that
  its name matches its id, that the user it names is the file's owner (root
  and the service account may act for others), and that the job's data
  folder holds exactly the files listed, with their sizes, as regular files
  with one link each, owned by that user.  A server's own checks (printer
  known, limits) are a callback.  A print request that passes is then
  **sealed**: when its file belongs to someone other than this server's
  user, it is replaced by a copy of the bytes just validated, written by the
  server (temp file in tmp/, renamed over), so that its owner cannot change
  it after the checks (received/ is the service account's; the file was
  still the station's).  The data's sha256, recorded in the sealed request,
  is verified again when the job prints.
* `reject(path, reason)` moves the file to rejected/ (under a safe name) and
  writes ``<name>.reason`` beside it.  Rejection never stops the server.
"""

from __future__ import annotations

import errno
import os
import pwd
import re
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from printnet.errors import PrintnetError, RequestInvalid, SpoolError
from printnet.model import MAX_REQUEST_BYTES, PrintRequest, Request, clean_text, decode_request
from printnet.spool.layout import CTL_SUFFIX, REQ_SUFFIX, Spool, is_visible
from printnet.spool.publish import unique_name, write_atomic

DEFER_LIMIT: Final = 600.0  # seconds a claimed request may fail to read before rejection
# Opening a claimed request fails with these because of the file itself (a socket,
# no permission): it is rejected.  Any other error is the share's: tried again.
_REFUSED_ERRNOS: Final = frozenset({errno.ENXIO, errno.EACCES, errno.EPERM, errno.ENODEV,
                                    errno.EOVERFLOW, errno.EFBIG, errno.ETXTBSY})

_NAME_RE: Final = re.compile(r"([0-9A-HJKMNP-TV-Z]{18})\.(req|ctl)")
_SAFE_RE: Final = re.compile(r"[A-Za-z0-9_.-]{1,120}")


@dataclass(frozen=True)
class Taken:
    """A request this server took in: the file in received/ and its contents."""

    path: Path
    request: Request
    owner: str


_names: dict[int, tuple[str, float]] = {}
NAME_TTL: Final = 10.0  # seconds a uid's user name is remembered


def user_name(uid: int) -> str:
    # Cached a few seconds: a server looks up the owner of every request it takes
    # in, and each getpwuid() reads the passwd database again.
    now = time.monotonic()
    hit = _names.get(uid)
    if hit is not None and now - hit[1] < NAME_TTL:
        return hit[0]
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid{uid}"  # not remembered: the account may be created any moment
    _names[uid] = (name, now)
    return name


SERVICE_USER: Final = user_name(os.geteuid())


class Intake:
    def __init__(
        self,
        spool: Spool,
        *,
        trusted: frozenset[str] = frozenset({"root"}),
        check: Callable[[Request], None] | None = None,
    ) -> None:
        self.spool = spool
        self.trusted = trusted | {SERVICE_USER}  # may submit for others
        self.check = check
        # Claimed requests whose reading failed because of the share, not of the
        # request (EIO, ESTALE, a cut-off mount...): path -> (name, first failure).
        # Rejecting them would lose accepted jobs; they are inspected again later.
        self.deferred: dict[Path, tuple[str, float]] = {}
        # Reason files of requests already moved to rejected/ that the share refused
        # to write: path -> content, written again at each `take`.
        self.reasons_due: dict[Path, bytes] = {}

    def scan(self) -> list[str]:
        try:
            return sorted(n for n in os.listdir(self.spool.new) if is_visible(n))
        except OSError as exc:
            raise SpoolError(f"{self.spool.new}: {exc.strerror}") from exc

    def claim(self, name: str) -> Path | None:
        """Move new/<name> into received/; None if another server won it."""
        src = self.spool.new / name
        mid = self.spool.received / unique_name("." + name[:40])
        try:
            os.rename(src, mid)
        except FileNotFoundError:
            if not mid.exists():  # RACE: lost to another server (or false ENOENT: check)
                return None
        except OSError as exc:
            raise SpoolError(f"{src}: {exc.strerror}") from exc
        return self._finish(mid, name)

    def _finish(self, mid: Path, name: str) -> Path:
        final = self.spool.received / (name if _SAFE_RE.fullmatch(name) else unique_name("bad"))
        if final.exists() or final.is_symlink():
            # A second file with the same name (a replay of an old request): keep both.
            final = self.spool.received / unique_name("dup")
        try:
            os.rename(mid, final)
        except FileNotFoundError:
            if not final.exists():
                raise SpoolError(f"{mid}: vanished during intake") from None
        return final

    def finish_claims(self) -> int:
        """Complete claims a dead server left half-done (dot-names in received/)."""
        done = 0
        for name in os.listdir(self.spool.received):
            if name.startswith(".") and not name.startswith(".nfs"):
                original = name[1:].split(".")[0]
                for suffix in (REQ_SUFFIX, CTL_SUFFIX):
                    if name[1:].startswith(original + suffix):
                        original += suffix
                        break
                try:
                    self._finish(self.spool.received / name, original)
                    done += 1
                except SpoolError:
                    pass
        return done

    def inspect(self, path: Path) -> Taken:
        """Read and validate a claimed request; raise RequestInvalid with the reason."""
        name = path.name
        m = _NAME_RE.fullmatch(name)
        if m is None:
            raise RequestInvalid("name", "not a request file name (<job id>.req or .ctl)")
        data, st = read_regular(path)
        request = decode_request(data)
        if request.id != m.group(1):
            raise RequestInvalid("id", f"{request.id} does not match the file name")
        is_print = isinstance(request, PrintRequest)
        if is_print != (m.group(2) == "req"):
            raise RequestInvalid("kind", "does not match the file name's suffix")
        owner = user_name(st.st_uid)
        if request.user != owner and owner not in self.trusted:
            raise RequestInvalid(
                "user", f"says {request.user!r} but the file belongs to {owner!r}"
            )
        if isinstance(request, PrintRequest):
            if (self.spool.done / f"{request.id}.json").exists():
                raise RequestInvalid("id", "that job has already finished (a replayed request)")
            self._check_data(request, st.st_uid)
        if self.check is not None:
            self.check(request)
        if isinstance(request, PrintRequest) and st.st_uid != os.geteuid():
            self._seal(path, data)
        return Taken(path, request, owner)

    def _seal(self, path: Path, data: bytes) -> None:
        """Replace a station-owned request in received/ by our own copy of `data`."""
        tmp = self.spool.tmp / unique_name(".seal")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o640)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(tmp, path)  # RACE-free: only we can write received/
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise SpoolError(f"{path}: cannot seal the request: {exc.strerror}") from exc

    def _check_data(self, req: PrintRequest, uid: int) -> None:
        try:
            self._check_folder(req, uid)
        except FileNotFoundError:
            raise RequestInvalid("files", "the job's data folder is missing") from None
        except OSError as exc:  # e.g. EACCES: a job we cannot read cannot be printed
            if exc.errno not in (errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.ELOOP):
                # EIO, ESTALE, ENOTCONN, ...: the share failed, not the request.
                raise SpoolError(f"the job's data: {exc.strerror}") from exc
            raise RequestInvalid("files", f"cannot read the job's data: {exc.strerror}") from None

    def _check_folder(self, req: PrintRequest, uid: int) -> None:
        folder = self.spool.job_data(req.id)
        st = os.lstat(folder)
        if not stat.S_ISDIR(st.st_mode):
            raise RequestInvalid("files", "the job's data folder is not a folder")
        if st.st_uid != uid and user_name(uid) not in self.trusted:
            raise RequestInvalid("files", "the job's data belongs to someone else")
        names = set(os.listdir(folder))
        expected = {f.name for f in req.files if f.ref is None}  # --ref: read at print time
        if names != expected:
            # A second look before a rejection (which loses the job): under Gluster's
            # error injection a listing came back wrong *without* an error, once in 7
            # runs of tests/test_faults.py (an accepted job rejected, no errno named).
            names = set(os.listdir(folder))
        if names != expected:
            raise RequestInvalid("files", "the data folder does not hold the files listed")
        for f in req.files:
            if f.ref is not None:
                continue
            fst = os.lstat(folder / f.name)
            if not stat.S_ISREG(fst.st_mode):
                raise RequestInvalid(f"files[{f.name}]", "not a regular file")
            if fst.st_nlink != 1:
                raise RequestInvalid(f"files[{f.name}]", "has other links (a hard link?)")
            if fst.st_uid not in (uid, st.st_uid) and user_name(fst.st_uid) not in self.trusted:
                raise RequestInvalid(f"files[{f.name}]", "belongs to someone else")
            if fst.st_size != f.size:
                raise RequestInvalid(
                    f"files[{f.name}]", f"size {fst.st_size} differs from {f.size} requested"
                )

    def reject(self, path: Path, reason: str) -> Path:
        """Move a claimed file to rejected/ with `<name>.reason` beside it."""
        name = path.name if _SAFE_RE.fullmatch(path.name) else unique_name("bad")
        dest = self.spool.rejected / name
        if dest.exists() or dest.is_symlink():
            dest = self.spool.rejected / unique_name(name[:60])
        try:
            os.rename(path, dest)
        except FileNotFoundError:
            if os.path.lexists(path):  # a false ENOENT: it is still there
                raise SpoolError(f"{path}: cannot be moved to rejected/") from None
        except OSError as exc:
            raise SpoolError(f"{path}: {exc.strerror}") from exc
        text = f"{clean_text(path.name, 200)}: {clean_text(reason, 1000)}\n"
        # The request is in rejected/ now: a failing share that refuses its reason must
        # not make the rejection look undone (it was then neither logged nor given a
        # reason, and the next look found the request gone; tests/test_faults.py).
        self.reasons_due[dest.with_name(dest.name + ".reason")] = text.encode()
        self.write_reasons()
        return dest

    def write_reasons(self) -> None:
        """Write the reason files of rejections that the share refused before."""
        for path, data in list(self.reasons_due.items()):
            try:
                write_atomic(path, data, sync=False)
            except (SpoolError, OSError):
                continue  # again at the next take()
            del self.reasons_due[path]

    def take(self, names: list[str] | None = None, limit: int = 10_000) -> tuple[
        list[Taken], list[tuple[str, str]]
    ]:
        """Claim and inspect up to `limit` requests.  Returns (taken, [(name, reason)])."""
        if self.reasons_due:
            self.write_reasons()
        taken: list[Taken] = []
        rejected: list[tuple[str, str]] = []
        for again, (old_name, _) in list(self.deferred.items())[:limit]:
            self._inspect(again, old_name, taken, rejected)
        for name in (self.scan() if names is None else names)[:limit]:
            # One bad name must not lose the requests already taken in this batch:
            # they are in received/ now, and only our return value enters them.
            try:
                path = self.claim(name)
            except SpoolError:
                continue  # left where it is; the next scan (or reconcile) retries
            if path is None:
                continue
            self._inspect(path, name, taken, rejected)
        return taken, rejected

    def _inspect(self, path: Path, name: str, taken: list[Taken],
                 rejected: list[tuple[str, str]]) -> None:
        again = path in self.deferred
        first = self.deferred.pop(path, (name, time.monotonic()))[1]
        try:
            taken.append(self.inspect(path))
            return
        except FileNotFoundError:
            return  # RACE: another server finished it meanwhile (or a later sweep finds it)
        except RequestInvalid as exc:
            if again and (self.spool.done / f"{name.split('.', maxsplit=1)[0]}.json").exists():
                return  # RACE: another server finished it since it was set aside
            reason = str(exc)
        except (PrintnetError, OSError) as exc:
            # The share failed while we read the request (or sealed it): not the
            # request's fault.  Try again later; reject only if it never works.
            reason = f"cannot be read: {exc}"
            if time.monotonic() - first < DEFER_LIMIT:
                self.deferred[path] = (name, first)
                return
        try:
            self.reject(path, reason)
        except SpoolError:
            # Not moved: it stays claimed in received/; look at it again later.
            if time.monotonic() - first < DEFER_LIMIT:
                self.deferred[path] = (name, first)
            return
        rejected.append((name, reason))


def read_regular(path: Path) -> tuple[bytes, os.stat_result]:
    """Open without following symlinks or blocking on FIFOs; regular files only.

    For every read of a file a station could have put there (new/, and received/,
    which holds whatever a claim moved before it was inspected): a FIFO named
    ``<id>.req`` must not hang a reader, nor a symlink make it read another file.
    Raises `RequestInvalid` (FileNotFoundError if the file is gone).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EMLINK):
            raise RequestInvalid("request", "is a symbolic link") from None
        if exc.errno == errno.EISDIR:
            raise RequestInvalid("request", "is a directory") from None
        if exc.errno not in _REFUSED_ERRNOS:
            # EIO, ESTALE, ENOTCONN, ...: the share failed, not the request.
            raise SpoolError(f"{path}: {exc.strerror}") from exc
        raise RequestInvalid("request", f"cannot be opened: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
            raise RequestInvalid("request", f"is {kind}")
        if st.st_size > MAX_REQUEST_BYTES:
            raise RequestInvalid("request", f"larger than {MAX_REQUEST_BYTES} bytes")
        chunks = []
        remaining = MAX_REQUEST_BYTES + 1
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 65536))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks), st
    finally:
        os.close(fd)
