"""The power-loss filesystem served over FUSE: `powerloss.model` behind a mount point.

    python -m powerloss.daemon MOUNT --image DIR --out DIR [--seed N]

Why pyfuse3 (libfuse3) rather than fusepy (libfuse2): the model is inode-based
(hard links, renames of open files, fsync of a folder by its handle), which is
exactly FUSE's low-level API that pyfuse3 exposes — fusepy offers only the
path-based high-level API, where every call must resolve a path again and an
open file that was renamed is found by a path that no longer exists.  Debian
here ships libfuse3 (fuse3, libfuse3-dev) and not libfuse2; pyfuse3 is
maintained and carries type stubs (mypy --strict); fusepy is untyped and
unmaintained since 2018.

The daemon keeps the whole filesystem in memory.  It starts from the tree in
``--image`` (all of it durable: a disk after a reboot) and, when it stops,
writes a tree to ``--out``: after a **cut**, the image the power cut leaves
(`PowerModel.crash`, seeded); after a clean stop (SIGTERM, ``quit``), all of
it.  ``--out`` is written beside and renamed into place, so a reader never
sees half an image.  A harness checks the image with plain file access (no
FUSE in between) and mounts it again for the next "boot".

Writes are write-through (no writeback cache): every write(2) reaches the
model before it returns, and fsync(2)/fdatasync(2) and fsync of a folder
arrive as FSYNC and FSYNCDIR.

Control: one command a line on standard input, one JSON line of answer on
standard output (``{"ok": ...}``, or an event):

    arm K before|after REGEX   cut at the K-th operation whose description
                               matches REGEX (before it is done, or after it
                               is done but before the caller hears of it)
    disarm
    cut [worst]                cut now (between two operations); `worst`: every
                               pending operation is lost; `names`: every name
                               change kept, every unsynced write lost
    eio RATE OPS [REGEX]       fail a fraction RATE of the operations of the
                               kinds OPS (comma list of read, write, fsync,
                               meta) on matching paths with EIO; nothing of a
                               failed operation is done
    eio off
    slow SECONDS COUNT [REGEX] the next COUNT attribute changes (setattr: utime,
                               chmod, truncate) of matching paths take SECONDS
                               longer (a slow share; other calls go on)
    sync                       make everything durable (like sync(2))
    stats                      counts
    quit                       clean stop

Descriptions: ``create /new/x``, ``mkdir /data/.x``, ``write /tmp/.tmp.1``,
``setattr /locks/a``, ``fsync /done/.tmp.2``, ``fsyncdir /new``, ``link
/master/.tmp.3 -> /master/j.0000000001.00000002``, ``rename /new/a -> /b``,
``unlink /x``, ``rmdir /x``, ``read /x``.  Once cut, the daemon answers no
request again: the processes on the mount hang until they are killed and the
daemon is killed (which aborts the connection), as after a real power cut
nothing they do reaches the disk.  An event ``{"event": "cut", ...}`` says
the image is written.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import random
import re
import shutil
import signal
import stat
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyfuse3
import trio

from powerloss.model import ROOT, FsError, Node, PowerModel, walk

TIMEOUT = 1.0  # kernel entry/attribute cache: the model is this mount's only writer


def _now() -> int:
    return time.time_ns()


# -- images on disk ---------------------------------------------------------------------


def load_image(folder: Path) -> dict[int, Node]:
    """A directory tree as model inodes (hard links kept; owners, modes, times kept)."""
    nodes: dict[int, Node] = {}
    st = os.lstat(folder)
    nodes[ROOT] = _node(ROOT, st)
    seen: dict[int, int] = {}
    counter = [ROOT]

    def visit(path: Path, ino: int) -> None:
        with os.scandir(path) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            est = entry.stat(follow_symlinks=False)
            name = os.fsencode(entry.name)
            if not stat.S_ISDIR(est.st_mode) and est.st_nlink > 1 and est.st_ino in seen:
                nodes[ino].entries[name] = seen[est.st_ino]
                continue
            counter[0] += 1
            child = counter[0]
            node = nodes[child] = _node(child, est)
            nodes[ino].entries[name] = child
            seen[est.st_ino] = child
            if stat.S_ISDIR(est.st_mode):
                visit(Path(entry.path), child)
            elif stat.S_ISREG(est.st_mode):
                node.data = bytearray(Path(entry.path).read_bytes())
            elif stat.S_ISLNK(est.st_mode):
                node.target = os.fsencode(os.readlink(entry.path))

    visit(folder, ROOT)
    return nodes


def _node(ino: int, st: os.stat_result) -> Node:
    return Node(ino, st.st_mode, st.st_uid, st.st_gid, st.st_atime_ns, st.st_mtime_ns,
                st.st_ctime_ns, rdev=st.st_rdev)


def store_image(nodes: dict[int, Node], out: Path) -> None:
    """Write an image as a directory tree at `out` (replaced whole, by a rename)."""
    tmp = out.with_name(out.name + ".writing")
    shutil.rmtree(tmp, ignore_errors=True)
    os.mkdir(tmp)
    first: dict[int, str] = {}
    folders: list[tuple[str, Node]] = []
    for rel, node in walk(nodes):
        path = str(tmp) + rel
        if node.ino in first:
            os.link(first[node.ino], path)
            continue
        first[node.ino] = path
        kind = stat.S_IFMT(node.mode)
        if kind == stat.S_IFDIR:
            os.mkdir(path, 0o700)
            folders.append((path, node))
            continue
        if kind == stat.S_IFREG:
            with open(path, "wb") as fh:
                fh.write(node.data)
        elif kind == stat.S_IFLNK:
            os.symlink(node.target, path)
        else:
            os.mknod(path, node.mode, node.rdev)
        _attrs(path, node)
    folders.append((str(tmp), nodes[ROOT]))
    for path, node in reversed(folders):  # contents first: their creation changed mtimes
        _attrs(path, node)
    if out.exists():
        shutil.rmtree(out)
    os.rename(tmp, out)


def _attrs(path: str, node: Node) -> None:
    os.chown(path, node.uid, node.gid, follow_symlinks=False)
    if not stat.S_ISLNK(node.mode):
        os.chmod(path, stat.S_IMODE(node.mode))
    os.utime(path, ns=(node.atime_ns, node.mtime_ns), follow_symlinks=False)


# -- the FUSE operations -------------------------------------------------------------


class Cut(Exception):
    """Raised inside a handler once the power is cut: the request is never answered."""


class PowerFs(pyfuse3.Operations):
    """FUSE operations over a `PowerModel`, with cut points and an EIO injector."""

    enable_writeback_cache = False

    def __init__(self, model: PowerModel, out: Path, seed: int) -> None:
        super().__init__()
        self.m = model
        self.out = out
        self.rng = random.Random(seed)
        self.eio_rng = random.Random(seed ^ 0x5EED)
        self.frozen = False
        self.files: dict[int, int] = {}  # fh -> ino
        self.dirs: dict[int, list[tuple[bytes, int]]] = {}
        self.dir_ino: dict[int, int] = {}
        self.next_fh = 1
        self.armed: tuple[int, str, re.Pattern[str]] | None = None
        self.matches = 0
        self.eio: tuple[float, frozenset[str], re.Pattern[str]] | None = None
        self.slow: tuple[float, int, re.Pattern[str]] | None = None  # see `command`
        self.injected: dict[str, int] = {}
        self.counts: dict[str, int] = {}

    # -- cut points and errors ----------------------------------------------------

    def _watching(self) -> bool:
        return self.armed is not None or self.eio is not None

    def _before(self, kind: str, desc: Callable[[], str]) -> str:
        """Gate at the start of an operation: frozen, a cut before it, or EIO."""
        if self.frozen:
            raise Cut
        self.counts[kind] = self.counts.get(kind, 0) + 1
        if not self._watching():
            return ""
        text = desc()
        if self.eio is not None:
            rate, ops, pattern = self.eio
            group = kind if kind in ("read", "write", "fsync") else "meta"
            if kind == "fsyncdir":
                group = "fsync"
            if group in ops and pattern.search(text) and self.eio_rng.random() < rate:
                self.injected[group] = self.injected.get(group, 0) + 1
                raise FsError(errno.EIO)
        if self.armed is not None and self.armed[1] == "before" and self._hit(text):
            self.cut(f"before {text}")
            raise Cut
        return text

    def _after(self, text: str) -> None:
        if self.armed is not None and self.armed[1] == "after" and text and self._hit(text):
            self.cut(f"after {text}")
            raise Cut

    def _hit(self, text: str) -> bool:
        assert self.armed is not None
        if not self.armed[2].search(text):
            return False
        self.matches += 1
        return self.matches >= self.armed[0]

    def cut(self, why: str, *, worst: bool | str = False) -> None:
        """Power off: write the image a cut leaves, then never answer again.

        `worst`: every pending operation is lost (the unit tests' deterministic cut)."""
        if self.frozen:
            return
        pending = self.m.pending()
        if worst == "names":  # every name change kept, every unsynced write lost
            image = self.m.crash(self.rng, p_meta=1.0, p_keep=0.0, p_torn=0.0)
        elif worst:
            image = self.m.crash(self.rng, p_meta=0.0, p_keep=0.0, p_torn=0.0)
        else:
            image = self.m.crash(self.rng)
        store_image(image, self.out)
        self.frozen = True
        emit({"event": "cut", "why": why, "pending": pending, "ops": self.m.stats.ops})

    # -- attributes --------------------------------------------------------------------

    def attrs(self, node: Node) -> pyfuse3.EntryAttributes:
        a = pyfuse3.EntryAttributes()
        a.st_ino = node.ino
        a.generation = 0
        a.entry_timeout = TIMEOUT
        a.attr_timeout = TIMEOUT
        a.st_mode = node.mode
        a.st_nlink = max(node.nlink, 0)
        a.st_uid = node.uid
        a.st_gid = node.gid
        a.st_rdev = node.rdev
        size = len(node.target) if stat.S_ISLNK(node.mode) else len(node.data)
        a.st_size = size
        a.st_blksize = 4096
        a.st_blocks = (size + 511) // 512
        a.st_atime_ns = node.atime_ns
        a.st_mtime_ns = node.mtime_ns
        a.st_ctime_ns = node.ctime_ns
        return a

    def _fh(self, ino: int) -> int:
        fh = self.next_fh
        self.next_fh += 1
        self.files[fh] = ino
        return fh

    # -- handlers --------------------------------------------------------------------------

    async def _run(self, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except FsError as exc:
            raise pyfuse3.FUSEError(exc.errno) from None
        except Cut:
            await trio.sleep_forever()

    async def lookup(self, parent_inode: int, name: bytes,
                     ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        def op() -> pyfuse3.EntryAttributes:
            if self.frozen:
                raise Cut
            return self.attrs(self.m.lookup(parent_inode, name))
        result: pyfuse3.EntryAttributes = await self._run(op)
        return result

    async def getattr(self, inode: int, ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        def op() -> pyfuse3.EntryAttributes:
            if self.frozen:
                raise Cut
            return self.attrs(self.m.node(inode))
        result: pyfuse3.EntryAttributes = await self._run(op)
        return result

    async def setattr(self, inode: int, attr: pyfuse3.EntryAttributes,
                      fields: pyfuse3.SetattrFields, fh: int | None,
                      ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        if self.slow is not None:
            seconds, left, pattern = self.slow
            if left > 0 and pattern.search(f"setattr {self.m.path(inode)}"):
                self.slow = (seconds, left - 1, pattern)
                await trio.sleep(seconds)  # other requests are served meanwhile

        def op() -> pyfuse3.EntryAttributes:
            text = self._before("setattr", lambda: f"setattr {self.m.path(inode)}")
            node = self.m.setattr(
                inode, _now(),
                size=attr.st_size if fields.update_size else None,
                mode=attr.st_mode if fields.update_mode else None,
                uid=attr.st_uid if fields.update_uid else None,
                gid=attr.st_gid if fields.update_gid else None,
                atime_ns=attr.st_atime_ns if fields.update_atime else None,
                mtime_ns=attr.st_mtime_ns if fields.update_mtime else None)
            self._after(text)
            return self.attrs(node)
        result: pyfuse3.EntryAttributes = await self._run(op)
        return result

    async def readlink(self, inode: int, ctx: pyfuse3.RequestContext) -> bytes:
        def op() -> bytes:
            if self.frozen:
                raise Cut
            return self.m.node(inode).target
        result: bytes = await self._run(op)
        return result

    def _make(self, kind: str, parent: int, name: bytes, mode: int,
              ctx: pyfuse3.RequestContext, *, target: bytes = b"",
              rdev: int = 0) -> Node:
        text = self._before(kind, lambda: f"{kind} {self.m.child_path(parent, name)}")
        node = self.m.create(parent, name, mode, ctx.uid, self._gid(parent, ctx), _now(),
                             target=target, rdev=rdev)
        self._after(text)
        return node

    def _gid(self, parent: int, ctx: pyfuse3.RequestContext) -> int:
        folder = self.m.node(parent)
        return folder.gid if folder.mode & stat.S_ISGID else ctx.gid

    async def mknod(self, parent_inode: int, name: bytes, mode: int, rdev: int,
                    ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        def op() -> pyfuse3.EntryAttributes:
            return self.attrs(self._make("create", parent_inode, name,
                                         mode & ~ctx.umask, ctx, rdev=rdev))
        result: pyfuse3.EntryAttributes = await self._run(op)
        return result

    async def mkdir(self, parent_inode: int, name: bytes, mode: int,
                    ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        def op() -> pyfuse3.EntryAttributes:
            parent = self.m.node(parent_inode)
            setgid = parent.mode & stat.S_ISGID
            bits = (mode & ~ctx.umask & 0o7777) | setgid
            return self.attrs(self._make("mkdir", parent_inode, name,
                                         stat.S_IFDIR | bits, ctx))
        result: pyfuse3.EntryAttributes = await self._run(op)
        return result

    async def symlink(self, parent_inode: int, name: bytes, target: bytes,
                      ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        def op() -> pyfuse3.EntryAttributes:
            return self.attrs(self._make("create", parent_inode, name,
                                         stat.S_IFLNK | 0o777, ctx, target=target))
        result: pyfuse3.EntryAttributes = await self._run(op)
        return result

    async def create(self, parent_inode: int, name: bytes, mode: int, flags: int,
                     ctx: pyfuse3.RequestContext) -> tuple[pyfuse3.FileInfo,
                                                           pyfuse3.EntryAttributes]:
        def op() -> tuple[pyfuse3.FileInfo, pyfuse3.EntryAttributes]:
            node = self._make("create", parent_inode, name,
                              stat.S_IFREG | (mode & ~ctx.umask & 0o7777), ctx)
            return pyfuse3.FileInfo(fh=self._fh(node.ino)), self.attrs(node)
        result: tuple[pyfuse3.FileInfo, pyfuse3.EntryAttributes] = await self._run(op)
        return result

    async def unlink(self, parent_inode: int, name: bytes,
                     ctx: pyfuse3.RequestContext) -> None:
        def op() -> None:
            text = self._before("unlink",
                                lambda: f"unlink {self.m.child_path(parent_inode, name)}")
            self.m.unlink(parent_inode, name, _now())
            self._after(text)
        await self._run(op)

    async def rmdir(self, parent_inode: int, name: bytes,
                    ctx: pyfuse3.RequestContext) -> None:
        def op() -> None:
            text = self._before("rmdir",
                                lambda: f"rmdir {self.m.child_path(parent_inode, name)}")
            self.m.unlink(parent_inode, name, _now(), is_dir=True)
            self._after(text)
        await self._run(op)

    async def rename(self, parent_inode_old: int, name_old: bytes, parent_inode_new: int,
                     name_new: bytes, flags: int, ctx: pyfuse3.RequestContext) -> None:
        def op() -> None:
            if flags & pyfuse3.RENAME_EXCHANGE:
                raise FsError(errno.EINVAL)
            text = self._before("rename", lambda: (
                f"rename {self.m.child_path(parent_inode_old, name_old)} -> "
                f"{self.m.child_path(parent_inode_new, name_new)}"))
            self.m.rename(parent_inode_old, name_old, parent_inode_new, name_new, _now(),
                          noreplace=bool(flags & pyfuse3.RENAME_NOREPLACE))
            self._after(text)
        await self._run(op)

    async def link(self, inode: int, new_parent_inode: int, new_name: bytes,
                   ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        def op() -> pyfuse3.EntryAttributes:
            text = self._before("link", lambda: (
                f"link {self.m.path(inode)} -> "
                f"{self.m.child_path(new_parent_inode, new_name)}"))
            node = self.m.link(inode, new_parent_inode, new_name, _now())
            self._after(text)
            return self.attrs(node)
        result: pyfuse3.EntryAttributes = await self._run(op)
        return result

    async def open(self, inode: int, flags: int, ctx: pyfuse3.RequestContext) -> pyfuse3.FileInfo:
        def op() -> pyfuse3.FileInfo:
            if self.frozen:
                raise Cut
            node = self.m.node(inode)
            if node.is_dir:
                raise FsError(errno.EISDIR)
            return pyfuse3.FileInfo(fh=self._fh(inode))
        result: pyfuse3.FileInfo = await self._run(op)
        return result

    async def read(self, fh: int, off: int, size: int) -> bytes:
        def op() -> bytes:
            ino = self.files[fh]
            self._before("read", lambda: f"read {self.m.path(ino)}")
            return self.m.read(ino, off, size)
        result: bytes = await self._run(op)
        return result

    async def write(self, fh: int, off: int, buf: bytes) -> int:
        def op() -> int:
            ino = self.files[fh]
            text = self._before("write", lambda: f"write {self.m.path(ino)}")
            n = self.m.write(ino, off, buf, _now())
            self._after(text)
            return n
        result: int = await self._run(op)
        return result

    async def flush(self, fh: int) -> None:
        return None

    async def release(self, fh: int) -> None:
        self.files.pop(fh, None)

    async def fsync(self, fh: int, datasync: bool) -> None:
        def op() -> None:
            ino = self.files[fh]
            text = self._before("fsync", lambda: f"fsync {self.m.path(ino)}")
            self.m.fsync(ino)
            self._after(text)
        await self._run(op)

    async def opendir(self, inode: int, ctx: pyfuse3.RequestContext) -> int:
        def op() -> int:
            if self.frozen:
                raise Cut
            folder = self.m.folder(inode)
            fh = self.next_fh
            self.next_fh += 1
            self.dirs[fh] = sorted(folder.entries.items())
            self.dir_ino[fh] = inode
            return fh
        result: int = await self._run(op)
        return result

    async def readdir(self, fh: int, start_id: int, token: pyfuse3.ReaddirToken) -> None:
        def op() -> None:
            if self.frozen:
                raise Cut
            entries = self.dirs[fh]
            for i in range(start_id, len(entries)):
                name, ino = entries[i]
                node = self.m.live.get(ino)
                if node is None:
                    continue
                if not pyfuse3.readdir_reply(token, name, self.attrs(node), i + 1):
                    break
        await self._run(op)

    async def releasedir(self, fh: int) -> None:
        self.dirs.pop(fh, None)
        self.dir_ino.pop(fh, None)

    async def fsyncdir(self, fh: int, datasync: bool) -> None:
        def op() -> None:
            ino = self.dir_ino[fh]
            text = self._before("fsyncdir", lambda: f"fsyncdir {self.m.path(ino)}")
            self.m.fsyncdir(ino)
            self._after(text)
        await self._run(op)

    async def statfs(self, ctx: pyfuse3.RequestContext) -> pyfuse3.StatvfsData:
        s = pyfuse3.StatvfsData()
        used = sum(len(n.data) for n in self.m.live.values()) // 4096
        s.f_bsize = s.f_frsize = 4096
        s.f_blocks = 1 << 20  # 4 GiB
        s.f_bfree = s.f_bavail = max(s.f_blocks - used, 0)
        s.f_files = 1 << 20
        s.f_ffree = s.f_favail = max(s.f_files - len(self.m.live), 0)
        s.f_namemax = 255
        return s

    async def access(self, inode: int, mode: int, ctx: pyfuse3.RequestContext) -> bool:
        return True

    # -- control ---------------------------------------------------------------------------

    def command(self, line: str) -> dict[str, Any]:
        words = line.split(maxsplit=3)
        if not words:
            return {"ok": "nothing"}
        verb = words[0]
        if verb == "arm":
            self.armed = (int(words[1]), words[2], re.compile(words[3]))
            self.matches = 0
            return {"ok": "armed"}
        if verb == "disarm":
            self.armed = None
            return {"ok": "disarmed"}
        if verb == "cut":
            mode = words[1] if len(words) > 1 else ""
            self.cut(f"manual {mode}".strip(),
                     worst="names" if mode == "names" else mode == "worst")
            return {"ok": "cut"}
        if verb == "eio":
            if words[1] == "off":
                self.eio = None
            else:
                pattern = re.compile(words[3] if len(words) > 3 else "")
                self.eio = (float(words[1]), frozenset(words[2].split(",")), pattern)
            return {"ok": "eio"}
        if verb == "slow":
            self.slow = (float(words[1]), int(words[2]),
                         re.compile(words[3] if len(words) > 3 else ""))
            return {"ok": "slow"}
        if verb == "sync":
            self.m.sync_all()
            return {"ok": "synced"}
        if verb == "stats":
            return {"ok": "stats", "ops": self.m.stats.ops, "fsyncs": self.m.stats.fsyncs,
                    "fsyncdirs": self.m.stats.fsyncdirs, "pending": self.m.pending(),
                    "injected": self.injected, "counts": self.counts,
                    "frozen": self.frozen}
        if verb == "quit":
            self.stop()
            return {"ok": "quit"}
        return {"error": f"unknown command {verb!r}"}

    def stop(self) -> None:
        """A clean stop: everything is written (unless the power was cut before)."""
        if not self.frozen:
            store_image(self.m.clean_image(), self.out)
            self.frozen = True
        pyfuse3.terminate()


def emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def _control(fs: PowerFs) -> None:
    stream = trio.lowlevel.FdStream(os.dup(0))
    buf = b""
    while True:
        chunk = await stream.receive_some(65536)
        if not chunk:
            fs.stop()
            return
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            try:
                emit(fs.command(line.decode()))
            except (ValueError, IndexError, re.error) as exc:
                emit({"error": str(exc)})


async def _signals(fs: PowerFs) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for _ in signals:
            fs.stop()
            return


async def _serve(fs: PowerFs) -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_control, fs)
        nursery.start_soon(_signals, fs)
        await pyfuse3.main()
        nursery.cancel_scope.cancel()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="powerloss.daemon", description=__doc__.split("\n")[0])
    ap.add_argument("mount", type=Path)
    ap.add_argument("--image", type=Path, help="tree to start from (default: empty)")
    ap.add_argument("--out", type=Path, required=True, help="where the image is written")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    nodes = load_image(args.image) if args.image is not None else None
    fs = PowerFs(PowerModel(nodes, now=_now()), args.out, args.seed)
    options = set(pyfuse3.default_options)
    options |= {"fsname=powerfs", "subtype=powerfs", "allow_other", "default_permissions"}
    pyfuse3.init(fs, str(args.mount), options)
    emit({"event": "mounted", "inodes": len(fs.m.live)})
    try:
        trio.run(_serve, fs)
    finally:
        pyfuse3.close(unmount=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
