"""Station side: put jobs and control requests into a spool.

About 770 lines on purpose: the publishing order below is one protocol, and its
two copy paths (a small job in one piece, a large or piped one under a writer
lock), the folder handles and the durability passes share its invariants.

Publishing order (a crash at any point leaves no visible half-job):

1. each job's files are copied into its data folder, hashing as they go: a job of
   small regular files (`SMALL_JOB`) straight into ``data/<id>/`` (nobody looks at
   a folder before its request is in new/), standard input and larger jobs into
   ``data/.<id>.<unique>/`` (a dot-name), renamed to ``data/<id>`` when complete;
2. the request file is written to ``tmp/.<unique>``;
3. everything written so far is made durable: each file, job folder and request
   fsynced while still open, then data/ for the folders' names (in a batch on a
   local disk, one syncfs for all of it instead).  tmp/ is not synced: only the
   names the requests get in new/ must last;
4. each request is renamed to ``new/<id>.req`` and ``new/`` is fsynced.

Only then are the ids printed: an acknowledged job survives `kill -9` and a
power cut (tests/test_powerloss.py cuts the power the moment submit returns).
A station that may not open data/ and new/ (a multi-user spool: drop folders
it cannot list) makes each of the two folder passes with a syncfs of the
filesystem (`publish.fsync_dir`).  A small job costs four metadata operations
(mkdir, two creates, one rename), fewer than anything else on the path; names
are made relative to O_PATH handles of the folders (`_Dirs`).  A crash before
step 4 leaves dot-named temp files and data folders without requests;
`purge_leftovers` removes them once they are older than its age limit.

A data folder being copied can be large (a pipe into `printnet request -`),
so its leftovers must not wait a day: while copying such a job, the writer holds an
exclusive flock on ``data/.<id>.<unique>/.writer`` (which also records its
host and pid).  The kernel drops that lock when the writer dies, however it
dies (kill -9 included), and on NFSv4 and GlusterFS the server side drops it
with the client's lease, so a free lock proves the writer gone;
`purge_abandoned` (run by the servers and by `spool purge`) removes such
folders once they are `ABANDONED_GRACE` seconds old.  The grace covers the
instants between mkdir and the lock, and between unlinking .writer (it must
not reach the job folder, whose names intake checks) and the rename; a
folder without a .writer older than the grace is abandoned too.  A pid or
start time would prove nothing about a writer on another host; a lock does.

Standard input has a size limit (`DEFAULT_MAX_STDIN`, `--max-stdin`,
PRINTNET_MAX_STDIN): `cat /dev/zero | printnet request -` stops with a clear
message instead of filling the spool.

Files are read with the station user's own rights (the copy *is* the
permission check: the server never opens a path a user named).  `-` reads
standard input.  A text job submitted without an encoding gets the one its
bytes show, detected while they are copied (`printnet.charset.Sniffer`: UTF-8
if every file decodes, else the documented fallback).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, cast

from printnet.charset import Sniffer
from printnet.errors import SpoolError, SpoolFull, UsageError
from printnet.model import (
    MAX_FILES,
    MAX_TITLE,
    ControlAction,
    ControlRequest,
    Format,
    JobIdGenerator,
    PrintRequest,
    SpooledFile,
    clean_text,
)

if TYPE_CHECKING:
    from printnet.model import Seal
    from printnet.seal import Recipient
from printnet.spool.layout import CTL_SUFFIX, REQ_SUFFIX, Spool, is_visible
from printnet.spool.publish import (
    LOCAL_DISK_FS,
    NO_DIR_FSYNC,
    fs_type,
    fsync_dir,
    fsync_file,
    sync_filesystem,
    translate,
    unique_name,
    write_all,
)

CHUNK = 1 << 20
# Modes are set exactly (not left to the umask).  In a spool set up for several
# users (docs/SECURITY.md), data/ and tmp/ are setgid: what a station creates
# belongs to the spool group, of which only the service account is a member.
DATA_DIR_MODE = 0o770  # the servers read the files and, purging, remove them
DATA_FILE_MODE = 0o640  # the servers read them; other users cannot
REQUEST_MODE = 0o640
SYNCFS_BATCH = 16  # written paths from which one syncfs beats an fsync each (local disks)
SMALL_JOB = 1 << 20  # bytes of regular files a job copies in one piece, without a .writer
WRITER = ".writer"  # the copying station's lock file inside data/.<id>.<unique>/
ABANDONED_GRACE = 15.0  # seconds before a data folder whose writer is gone is removed
DEFAULT_MAX_STDIN = 256 << 20  # bytes of standard input per job (0: no limit)

# (bytes copied so far, bytes expected or None for a pipe): a station's progress display
Progress = Callable[[int, int | None], None]

_ids = JobIdGenerator()


def new_id(now: datetime | None = None) -> str:
    """A fresh job (or control request) id from this process's generator."""
    ts = now or datetime.now(UTC)
    return _ids.next(int(ts.timestamp() * 1000), int.from_bytes(os.urandom(5), "big"))


@dataclass(frozen=True)
class Source:
    """One file to print: a path, or an open binary stream (standard input)."""

    name: str
    path: Path | None = None
    stream: BinaryIO | None = None
    ref: bool = False  # `--ref`: name the file in the request instead of spooling it


def check_sources(sources: Sequence[Source], *, one_job: bool = True) -> None:
    """Validate before writing anything: files exist, are regular and readable.

    `one_job=False`: the sources become one job each (`--each`), so their number
    is not limited by MAX_FILES."""
    if not sources:
        raise UsageError("no files to print")
    if one_job and len(sources) > MAX_FILES:
        raise UsageError(f"at most {MAX_FILES} files in one job")
    for src in sources:
        if src.path is None:
            continue
        try:
            st = os.stat(src.path)
        except FileNotFoundError:
            raise UsageError(f"{src.name}: no such file") from None
        except OSError as exc:
            raise UsageError(f"{src.name}: {exc.strerror}") from None
        import stat as stat_mod

        if not stat_mod.S_ISREG(st.st_mode):
            raise UsageError(f"{src.name}: not a regular file")
        if not os.access(src.path, os.R_OK):
            from printnet.readable import cannot_read

            raise UsageError(cannot_read(src.name))


class Submitter:
    """Publishes print and control requests to one spool."""

    def __init__(self, spool: Spool, *, user: str, station: str, min_free: int = 0,
                 max_stdin: int = DEFAULT_MAX_STDIN, progress: Progress | None = None,
                 seal_to: Sequence[Recipient] = ()) -> None:
        self.spool = spool
        self.user = user
        self.station = station
        self.min_free = min_free  # bytes that must stay free on the spool's disk
        self.max_stdin = max_stdin  # 0: standard input has no limit
        self.progress = progress
        self._expected: int | None = None
        self._copied = 0
        self.seal_to = tuple(seal_to)  # SEAL=ON: the servers' keys (printnet.seal)
        # The bits a create would clear: only then is a file's mode set again (a
        # metadata operation per file; `printnet request` sets a umask that clears none).
        self._umask = _read_umask()

    # -- print requests ----------------------------------------------------------

    def submit(self, template: PrintRequest, sources: Sequence[Source]) -> PrintRequest:
        return self.submit_many([(template, sources)])[0]

    def submit_many(
        self, jobs: Sequence[tuple[PrintRequest, Sequence[Source]]],
        *, password: str | None = None,
    ) -> list[PrintRequest]:
        """Publish several jobs with one durability pass.  Returns them with ids and files.

        The templates' id, user, station, submitted and files are filled in here.
        """
        sizes = [_source_size(s) for _, srcs in jobs for s in srcs]
        self._check_space(sum(sizes))
        streams = any(s.stream is not None for _, srcs in jobs for s in srcs)
        self._expected, self._copied = (None if streams else sum(sizes)), 0
        # A batch on a local disk is made durable by one syncfs; anything smaller, or on
        # a share, by an fsync of each file while it is still open (`Durability`).
        paths = sum(len(srcs) + 2 for _, srcs in jobs)  # its files, folder, request
        bulk = paths >= SYNCFS_BATCH and fs_type(self.spool.tmp) in LOCAL_DISK_FS
        staged: list[tuple[PrintRequest, str]] = []
        written: list[Path] = []  # by the slow path, fsynced by name unless `bulk`
        folders: list[tuple[str, Path]] = []
        published: set[str] = set()
        dirs = _Dirs(self.spool)
        try:
            small = self.seal_to == ()
            pos = 0
            for template, sources in jobs:
                now = datetime.now(UTC)
                job_id = new_id(now)
                sniffer = (Sniffer() if template.format is Format.TEXT
                           and template.encoding is None else None)
                job_key, sealed = self._job_key(job_id)
                n = len(sources)
                if small and _small_job(sources, sizes[pos:pos + n]):
                    files = self._copy_small(job_id, sources, dirs, sniffer, bulk, folders)
                else:
                    final, files = self._copy_data(job_id, sources, written, sniffer, job_key)
                    folders.append((job_id, final))
                pos += n
                req = replace(
                    template, id=job_id, user=self.user, station=self.station,
                    submitted=now, files=tuple(files),
                    encoding=sniffer.result if sniffer is not None else template.encoding,
                    title=clean_text(
                        template.title or (files[0].original if files else ""), MAX_TITLE
                    ),
                    password=None if password is None else _proof(password, job_id),
                    seal=sealed,
                )
                staged.append((req, _write_request(dirs.tmp, req.encode(), sync=not bulk,
                                                   umask=self._umask)))
            self._sync(written, bulk)
            for req, tmp in staged:
                os.rename(tmp, req.id + REQ_SUFFIX, src_dir_fd=dirs.tmp, dst_dir_fd=dirs.new)
                published.add(req.id)
            self._sync_published()
        except OSError as exc:
            for _, tmp in staged:
                with contextlib.suppress(OSError):  # best effort: the disk is failing
                    os.unlink(tmp, dir_fd=dirs.tmp)
            # Jobs whose request was not published leave no data folder behind: on a
            # full disk that space is what the next try needs.
            for job_id, path in folders:
                if job_id not in published:
                    _rmtree(path)
            raise translate(exc, self.spool.root) from exc
        finally:
            dirs.close()
        return [req for req, _ in staged]

    def _sync(self, written: list[Path], bulk: bool = False) -> None:
        """Make every job's files, its folder and the folder's name in data/ durable,
        and the request files' contents, before any request is published.

        `bulk`: one syncfs for all of it (the files were not fsynced one by one).
        Else each file and job folder was fsynced as it was written (the slow path's
        files in `written` are fsynced here), and data/ is fsynced for the folders'
        names.  tmp/ is not: only the names the requests get in new/ must last."""
        if bulk and (sync_filesystem(self.spool.tmp) or _sync_all()):
            return  # one syncfs covered every file and folder of the batch
        for path in written:
            if path.is_dir():
                fsync_dir(path)
            else:
                fsync_file(path)
        fsync_dir(self.spool.data)

    def _sync_published(self) -> None:
        """The requests' names in new/: once durable, their ids may be printed."""
        fsync_dir(self.spool.new)

    def _copy_small(self, job_id: str, sources: Sequence[Source], dirs: _Dirs,
                    sniffer: Sniffer | None, bulk: bool,
                    folders: list[tuple[str, Path]]) -> list[SpooledFile]:
        """`_copy_data` for a job of small regular files (`_small_job`), with fewer
        metadata operations (what a batch is bound by): the folder is made under the
        job's own name (no rename: until its request is in new/ nobody looks at it,
        and mkdir, unlike a rename over an empty folder, never takes over a folder
        someone else made), without a .writer lock (its copy is over in moments; a
        crash leaves a small folder of no job, which `purge_leftovers` removes), each
        file read in one piece and, unless `bulk`, fsynced while open, as the folder."""
        os.mkdir(job_id, DATA_DIR_MODE, dir_fd=dirs.data)
        files = []
        try:
            folder = os.open(job_id, os.O_RDONLY | os.O_DIRECTORY, dir_fd=dirs.data)
            try:
                for i, src in enumerate(sources):
                    assert src.path is not None
                    files.append(self._copy_file(src, str(i), folder, sniffer, bulk))
                # Only now: a chmod by a non-member of the folder's group clears its
                # setgid bit, and the files above had to inherit the group first.
                if self._umask & DATA_DIR_MODE:
                    os.fchmod(folder, DATA_DIR_MODE)
                if not bulk:
                    _fsync_folder(folder)
            finally:
                os.close(folder)
        except BaseException:
            _rmtree(self.spool.data / job_id)
            raise
        folders.append((job_id, self.spool.data / job_id))
        return files

    def _copy_file(self, src: Source, name: str, folder: int, sniffer: Sniffer | None,
                   bulk: bool) -> SpooledFile:
        assert src.path is not None
        try:
            fd = os.open(src.path, os.O_RDONLY)
        except FileNotFoundError:
            raise UsageError(f"{src.name}: no such file") from None
        try:
            chunks = []
            while chunk := os.read(fd, CHUNK):
                chunks.append(chunk)
        finally:
            os.close(fd)
        data = b"".join(chunks)
        if sniffer is not None:
            sniffer.feed(data)
            sniffer.end_file()
        out = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, DATA_FILE_MODE, dir_fd=folder)
        try:
            if self._umask & DATA_FILE_MODE:
                os.fchmod(out, DATA_FILE_MODE)  # whatever the umask: the servers must read it
            write_all(out, data)
            if not bulk:
                os.fsync(out)
        finally:
            os.close(out)
        if self.progress is not None and data:
            self._copied += len(data)
            self.progress(self._copied, self._expected)
        return SpooledFile(name, clean_text(src.name, 255), len(data),
                           hashlib.sha256(data).hexdigest())

    def _job_key(self, job_id: str) -> tuple[bytes | None, Seal | None]:
        """SEAL=ON: a fresh job key and its wraps for the servers' keys."""
        if not self.seal_to:
            return None, None
        from printnet import seal

        key = seal.new_job_key()
        return key, seal.wrap(key, job_id, self.seal_to)

    def _copy_data(
        self, job_id: str, sources: Sequence[Source], written: list[Path],
        sniffer: Sniffer | None = None,
        job_key: bytes | None = None,
    ) -> tuple[Path, list[SpooledFile]]:
        tmp_dir = self.spool.data / unique_name("." + job_id)
        os.mkdir(tmp_dir, DATA_DIR_MODE)
        files = []
        lock_fd = -1
        try:
            lock_fd = _hold_writer_lock(tmp_dir / WRITER)
            for i, src in enumerate(sources):
                if src.ref:
                    files.append(_reference(src, str(i)))
                    continue
                dest = tmp_dir / str(i)
                sealer = None if job_key is None else (job_key, job_id, str(i))
                size, digest = self._copy(src, dest, sniffer, sealer)
                files.append(SpooledFile(str(i), clean_text(src.name, 255), size, digest))
            # Only now: a chmod by a non-member of the folder's group clears its setgid
            # bit, and the files above had to inherit the group first.
            os.chmod(tmp_dir, DATA_DIR_MODE)
            # RACE: from here the lock file is gone while we still hold the folder; the
            # unlink refreshed the folder's mtime, so `purge_abandoned`'s grace covers
            # the instant until the rename.
            os.unlink(tmp_dir / WRITER)
            final = self.spool.job_data(job_id)
            os.rename(tmp_dir, final)
        except BaseException:
            _rmtree(tmp_dir)
            raise
        finally:
            if lock_fd >= 0:
                os.close(lock_fd)
        written.extend(final / f.name for f in files if f.ref is None)
        written.append(final)
        return final, files

    def _check_space(self, needed: int) -> None:
        if self.min_free <= 0:
            return
        try:
            st = os.statvfs(self.spool.root)
        except OSError:
            return
        free = st.f_bavail * st.f_frsize
        if free - needed < self.min_free:
            raise SpoolFull(
                f"the spool has {free // (1 << 20)} MiB free, below its guard of "
                f"{self.min_free // (1 << 20)} MiB: not accepting new requests"
            )

    def _copy(self, src: Source, dest: Path, sniffer: Sniffer | None = None,
              sealer: tuple[bytes, str, str] | None = None) -> tuple[int, str]:
        """Copy (sealed: encrypt) `src` to `dest`; the size and sha256 of what was written."""
        digest = hashlib.sha256()
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, DATA_FILE_MODE)
        try:
            with open(fd, "wb", closefd=True) as out:
                os.fchmod(fd, DATA_FILE_MODE)  # whatever the umask: the servers must read it
                if src.stream is not None:
                    self._pump(src.stream, out, digest, self.max_stdin, sniffer, sealer)
                else:
                    assert src.path is not None
                    # Opened with the station user's rights; O_NOFOLLOW is not used on
                    # purpose: a user may print through their own symlinks.
                    with open(src.path, "rb") as reader_file:
                        self._pump(reader_file, out, digest, 0, sniffer, sealer)
                size = out.tell()
                if sniffer is not None:
                    sniffer.end_file()
        except OSError as exc:
            if isinstance(exc, FileNotFoundError) and src.path is not None:
                raise UsageError(f"{src.name}: no such file") from None
            raise
        return size, digest.hexdigest()

    def _pump(self, reader: BinaryIO, out: BinaryIO, digest: hashlib._Hash,
              limit: int, sniffer: Sniffer | None = None,
              sealer: tuple[bytes, str, str] | None = None) -> None:
        tap = _Tap(self, reader, limit, sniffer)
        if sealer is not None:  # the plaintext never reaches the disk
            from printnet.seal import seal_chunks

            for sealed in seal_chunks(*sealer, cast(BinaryIO, tap)):
                digest.update(sealed)
                out.write(sealed)
            return
        while chunk := tap.read(CHUNK):
            digest.update(chunk)
            out.write(chunk)

    # -- control requests --------------------------------------------------------

    def control(self, action: ControlAction, job_ids: Sequence[str]) -> ControlRequest:
        now = datetime.now(UTC)
        req = ControlRequest(new_id(now), self.user, self.station, now, action, tuple(job_ids))
        try:
            tmp = self.spool.tmp / _write_request(self.spool.tmp, req.encode(), sync=True,
                                                  umask=self._umask)
        except OSError as exc:
            raise translate(exc, self.spool.tmp) from exc
        try:
            os.rename(tmp, self.spool.new / (req.id + CTL_SUFFIX))
            fsync_dir(self.spool.new)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise translate(exc, self.spool.new) from exc
        return req


class _Tap:
    """Reads the source for `Submitter._pump`: applies the limit, feeds the sniffer and
    reports progress on the plaintext, whether it is then written as is or sealed."""

    def __init__(self, owner: Submitter, reader: BinaryIO, limit: int,
                 sniffer: Sniffer | None) -> None:
        self.owner = owner
        self.reader = reader
        self.limit = limit
        self.sniffer = sniffer
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        chunk = self.reader.read(n)
        self.size += len(chunk)
        if self.limit and self.size > self.limit:
            raise UsageError(
                f"standard input is larger than {_size_text(self.limit)}, the limit for "
                "standard input (--max-stdin SIZE or PRINTNET_MAX_STDIN raises it; "
                "0: no limit); nothing was queued")
        if self.sniffer is not None:
            self.sniffer.feed(chunk)
        owner = self.owner
        if owner.progress is not None and chunk:
            owner._copied += len(chunk)
            owner.progress(owner._copied, owner._expected)
        return chunk


def _read_umask() -> int:
    """This process's umask, read once (from /proc: setting it to learn it would race
    with other threads creating files); 0o777 when unknown, so every mode is set."""
    try:
        with open("/proc/self/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o777



class _Dirs:
    """O_PATH handles on data/, tmp/ and new/ for a batch: each name is then made
    relative to its folder (no path walk per file), and a station that may not list
    the drop folders can still use them."""

    def __init__(self, spool: Spool) -> None:
        flags = os.O_PATH | os.O_DIRECTORY
        self.fds: list[int] = []
        try:
            for path in (spool.data, spool.tmp, spool.new):
                self.fds.append(os.open(path, flags))
        except OSError as exc:
            self.close()
            raise translate(exc, path) from exc
        self.data, self.tmp, self.new = self.fds

    def close(self) -> None:
        for fd in self.fds:
            os.close(fd)
        self.fds = []


def _small_job(sources: Sequence[Source], sizes: Sequence[int]) -> bool:
    """A job `Submitter._copy_small` copies: regular files only, SMALL_JOB bytes at most."""
    return all(s.path is not None and s.stream is None and not s.ref for s in sources) \
        and sum(sizes) <= SMALL_JOB


def _write_request(tmp: int | Path, data: bytes, *, sync: bool, umask: int) -> str:
    """A request file in tmp/ (a folder fd or path) under a new dot-name; that name.

    Created with REQUEST_MODE, so never more open than that; set again only if the
    umask took bits away (the servers must read it).  On failure nothing is left."""
    name = unique_name()
    dir_fd, path = (tmp, name) if isinstance(tmp, int) else (None, str(tmp / name))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, REQUEST_MODE, dir_fd=dir_fd)
    try:
        if umask & REQUEST_MODE:
            os.fchmod(fd, REQUEST_MODE)
        write_all(fd, data)
        if sync:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(path, dir_fd=dir_fd)
        raise
    os.close(fd)
    return name


def _fsync_folder(fd: int) -> None:
    """fsync of a job folder this station made (as `publish.fsync_dir`: EINVAL and the
    like mean the filesystem has nothing to wait for; any other error is raised)."""
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in NO_DIR_FSYNC:
            raise


def _sync_all() -> bool:
    os.sync()
    return True


def _proof(password: str, job_id: str) -> str:
    # Imported here, as shutil below: hmac, secrets and base64 (and bz2, lzma) cost a
    # `printnet request` more start-up than its own work, and most never need them.
    from printnet.passwords import queue_proof

    return queue_proof(password, job_id)


def _rmtree(path: Path) -> None:
    """Remove what a failed submit wrote (best effort: the disk may be failing)."""
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def _reference(src: Source, name: str) -> SpooledFile:
    """A file named by reference: its real path, size, mtime and sha256, read now with
    the user's own rights (the server checks them all again at print time)."""
    assert src.path is not None
    path = os.path.realpath(src.path)
    try:
        with open(path, "rb") as fh:
            st = os.fstat(fh.fileno())
            import stat as stat_mod

            if not stat_mod.S_ISREG(st.st_mode):
                raise UsageError(f"{src.name}: not a regular file")
            digest = hashlib.sha256()
            size = 0
            while chunk := fh.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
            after = os.fstat(fh.fileno())
    except FileNotFoundError:
        raise UsageError(f"{src.name}: no such file") from None
    except PermissionError:
        raise UsageError(f"{src.name}: permission denied") from None
    if (after.st_size, after.st_mtime_ns) != (st.st_size, st.st_mtime_ns) or size != st.st_size:
        raise UsageError(f"{src.name}: changed while it was read; try again")
    return SpooledFile(name, clean_text(src.name, 255), size, digest.hexdigest(), ref=path,
                       mtime_ns=st.st_mtime_ns)


def _source_size(src: Source) -> int:
    if src.path is None or src.ref:
        return 0
    try:
        return os.stat(src.path).st_size
    except OSError:
        return 0


def _size_text(n: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift} {unit}"
    return f"{n} bytes"


def parse_size(text: str) -> int:
    """``256M``, ``4K``, ``1G``, ``1000``: bytes (K/M/G are 1024-based); UsageError."""
    raw = text.strip().upper().removesuffix("B").removesuffix("I")
    shift = {"K": 10, "M": 20, "G": 30}.get(raw[-1:], 0)
    digits = raw[:-1] if shift else raw
    if not digits.isdigit():
        raise UsageError(f"invalid size {clean_text(text, 20)!r}: use e.g. 4096, 64K, 256M, 1G")
    return int(digits) << shift


def _hold_writer_lock(path: Path) -> int:
    """Create `path` and hold an exclusive flock on it until the fd is closed."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, DATA_FILE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        from printnet.spool.publish import HOST

        os.write(fd, json.dumps({"host": HOST, "pid": os.getpid()}).encode())
    except BaseException:
        os.close(fd)
        raise
    return fd


def writer_alive(folder: Path) -> bool | None:
    """Whether the station copying into data folder `folder` still runs: True while
    its .writer lock is held, False when the lock is free, None without a .writer."""
    try:
        fd = os.open(folder / WRITER, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return None  # no flock here: the age limit of `purge_leftovers` decides
    finally:
        os.close(fd)
    return False


def purge_abandoned(spool: Spool, grace: float = ABANDONED_GRACE,
                    now: float | None = None) -> int:
    """Remove data/.<id>.<unique> folders whose writer is provably gone (its .writer
    lock is free, or there is none) and that are at least `grace` seconds old (by
    the disk's clock).  Returns how many were removed.  Cheap: it reads only
    data/'s dot-names.  The servers call it every few seconds (one line in their
    cycle: ``purge_abandoned(service.spool)``); `spool purge` calls it too."""
    try:
        entries = [e for e in os.scandir(spool.data) if e.name.startswith(".")
                   and not e.name.startswith(".nfs") and e.is_dir(follow_symlinks=False)]
    except OSError:
        return 0
    if not entries:
        return 0
    ref = _disk_now(spool) if now is None else now
    removed = 0
    for entry in entries:
        try:
            age = ref - entry.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue
        if age < grace or writer_alive(Path(entry.path)):
            continue
        removed += _remove(Path(entry.path))
    return removed


def _disk_now(spool: Spool) -> float:
    """The spool disk's clock: the mtime of a file made there now."""
    probe = spool.tmp / unique_name(".probe")
    try:
        probe.touch()
        return probe.stat().st_mtime
    except OSError as exc:
        raise SpoolError(f"{spool.tmp}: {exc.strerror}") from exc
    finally:
        probe.unlink(missing_ok=True)


def purge_leftovers(spool: Spool, max_age: float, now: float | None = None) -> int:
    """Remove crash leftovers older than `max_age` seconds: temp names in tmp/,
    new/ and data/, and data folders whose job is known nowhere.  (Half-done
    claims in received/ are finished by intake, never purged.)

    Age is judged against a file this function creates on the same disk, so the
    file server's clock is compared with itself, never with ours.
    """
    probe = spool.tmp / unique_name(".probe")
    try:
        probe.touch()
        ref = probe.stat().st_mtime if now is None else now
    except OSError as exc:
        raise SpoolError(f"{spool.tmp}: {exc.strerror}") from exc
    finally:
        probe.unlink(missing_ok=True)
    removed = purge_abandoned(spool, min(ABANDONED_GRACE, max_age), ref)
    known: set[str] | None = None
    for folder in (spool.tmp, spool.new, spool.data):
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            try:
                age = ref - entry.stat(follow_symlinks=False).st_mtime
            except OSError:
                continue
            if age < max_age or entry.name.startswith(".nfs"):
                continue
            if folder == spool.data and writer_alive(Path(entry.path)):
                continue  # a slow pipe still copying: never purged under its writer
            if is_visible(entry.name):
                if folder != spool.data:
                    continue
                if known is None:
                    known = _known_ids(spool)
                if entry.name in known:
                    continue
            removed += _remove(Path(entry.path))
    return removed


def _known_ids(spool: Spool) -> set[str]:
    ids: set[str] = set()
    for folder in (spool.new, spool.received):
        try:
            ids.update(n.split(".")[0] for n in os.listdir(folder) if is_visible(n))
        except OSError:
            pass
    try:
        ids.update(n[:-5] for n in os.listdir(spool.done) if n.endswith(".json"))
    except OSError:
        pass
    return ids


def _remove(path: Path) -> int:
    try:
        if path.is_dir() and not path.is_symlink():
            import shutil

            shutil.rmtree(path)
        else:
            path.unlink()
        return 1
    except OSError:
        return 0
