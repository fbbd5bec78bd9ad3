"""The power-loss model: a filesystem in memory that knows what is durable.

Pure (no I/O, `now` is a parameter): `powerloss.daemon` serves it over FUSE,
the unit tests drive it directly.  Independent of printnet.

State
    *live* — what processes see: inodes (`Node`) with data, attributes and,
    for folders, entries.  *durable* — what a disk would give back after a
    power cut if nothing more were written: a second set of inodes.  Between
    them, everything not yet made durable:

    * a **namespace log** of atomic operations, in the order they happened:
      `Alloc` (an inode comes to exist, nameless), `Entry` (a name is added),
      `Unlink` (a name is removed; also rmdir), `Rename` (one atomic step:
      the old name goes, the new one comes, a replaced inode loses a name);
    * per inode, a list of **data operations**: `Write`, `Truncate`,
      `Attr` (mode, owner, times).

Durability (what the kernel forwards to a FUSE filesystem)
    * fsync/fdatasync of a file: its data and attributes become durable —
      not its name: the inode may come back from a cut without any name.
    * fsync of a folder: every pending namespace operation that adds or
      removes a name *in that folder* becomes durable, with the operations
      it depends on (below), and the folder's own inode and attributes — not
      the folder's name in its parent.
    * `sync_all` (the control command ``sync``): everything.  syncfs(2) and
      sync(2) never reach a FUSE filesystem (Linux forwards FUSE_SYNCFS only
      to virtiofs), so a program relying on them here is, correctly, not
      helped.

What a cut keeps (`crash`, seeded), after ALICE's and LazyFS's models
    * Namespace operations: each pending one is kept with probability
      `p_meta`, independently; then the kept set is closed under
      *dependencies*: operation B depends on an earlier A if they write the
      same key, or one writes a key the other reads.  Keys: a name
      (folder, name), an inode's names (for Entry/Unlink/Rename of that
      inode: its names change in order), an inode's existence (Alloc writes
      it; Entry into a folder reads the folder's, and the named inode's).
      So: the history of any one name and any one inode is a prefix; across
      names anything goes (a later rename in another folder can survive
      while an earlier one is lost), and renames are atomic.
    * Data operations: each pending write is independently kept whole,
      kept *torn* (a prefix cut at a 512-byte sector boundary), or lost;
      each truncate and attribute change kept or lost.  Kept ones are
      applied in their order; a write past the durable end leaves zeros
      before it (a hole), as delayed allocation can.
    * An inode that comes back without any name is gone (an orphan).
"""

from __future__ import annotations

import errno
import random
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final

ROOT: Final = 1
SECTOR: Final = 512
Key = tuple[str, int, bytes]  # ("E", folder, name) | ("O", inode, b"") | ("I", inode, b"")


class FsError(Exception):
    """An operation refused with an errno (the FUSE layer answers with it)."""

    def __init__(self, code: int) -> None:
        super().__init__(errno.errorcode.get(code, str(code)))
        self.errno = code


@dataclass
class Node:
    """An inode: a file, folder, symlink or special file."""

    ino: int
    mode: int
    uid: int
    gid: int
    atime_ns: int
    mtime_ns: int
    ctime_ns: int
    data: bytearray = field(default_factory=bytearray)
    entries: dict[bytes, int] = field(default_factory=dict)
    target: bytes = b""
    rdev: int = 0
    nlink: int = 0  # live state only: kept current by the operations

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.mode)

    def copy(self) -> Node:
        return Node(self.ino, self.mode, self.uid, self.gid, self.atime_ns, self.mtime_ns,
                    self.ctime_ns, bytearray(self.data), dict(self.entries), self.target,
                    self.rdev, self.nlink)

    def attrs_from(self, other: Node) -> None:
        self.mode, self.uid, self.gid = other.mode, other.uid, other.gid
        self.atime_ns, self.mtime_ns, self.ctime_ns = other.atime_ns, other.mtime_ns, other.ctime_ns


# -- operations ------------------------------------------------------------------------


@dataclass(frozen=True)
class Alloc:
    node: Node  # the inode as created (no data, no entries)


@dataclass(frozen=True)
class Entry:
    parent: int
    name: bytes
    ino: int


@dataclass(frozen=True)
class Unlink:
    parent: int
    name: bytes
    ino: int
    is_dir: bool


@dataclass(frozen=True)
class Rename:
    parent_old: int
    name_old: bytes
    parent_new: int
    name_new: bytes
    ino: int
    victim: int  # 0 if no inode was replaced


NsOp = Alloc | Entry | Unlink | Rename


@dataclass(frozen=True)
class Write:
    offset: int
    data: bytes


@dataclass(frozen=True)
class Truncate:
    size: int


@dataclass(frozen=True)
class Attr:
    mode: int
    uid: int
    gid: int
    atime_ns: int
    mtime_ns: int
    ctime_ns: int


DataOp = Write | Truncate | Attr


def _keys(op: NsOp) -> tuple[set[Key], set[Key]]:
    """(writes, reads) of a namespace operation (see the module docstring)."""
    if isinstance(op, Alloc):
        return {("I", op.node.ino, b"")}, set()
    if isinstance(op, Entry):
        return ({("E", op.parent, op.name), ("O", op.ino, b"")},
                {("I", op.parent, b""), ("I", op.ino, b"")})
    if isinstance(op, Unlink):
        writes = {("E", op.parent, op.name), ("O", op.ino, b"")}
        if op.is_dir:
            writes.add(("I", op.ino, b""))
        return writes, {("I", op.parent, b"")}
    writes = {("E", op.parent_old, op.name_old), ("E", op.parent_new, op.name_new),
              ("O", op.ino, b"")}
    if op.victim:
        writes.add(("O", op.victim, b""))
    return writes, {("I", op.parent_old, b""), ("I", op.parent_new, b""), ("I", op.ino, b"")}


def _folders(op: NsOp) -> set[int]:
    """The folders whose entries `op` changes."""
    if isinstance(op, Alloc):
        return set()
    if isinstance(op, Rename):
        return {op.parent_old, op.parent_new}
    return {op.parent}


# -- applying operations to a set of inodes (the durable image) -----------------------


def _apply_ns(nodes: dict[int, Node], op: NsOp) -> None:
    """Apply a namespace operation to a durable image, tolerating what is missing."""
    if isinstance(op, Alloc):
        if op.node.ino not in nodes:
            nodes[op.node.ino] = op.node.copy()
        return
    if isinstance(op, Entry):
        if op.parent in nodes and op.ino in nodes:
            nodes[op.parent].entries[op.name] = op.ino
        return
    if isinstance(op, Unlink):
        folder = nodes.get(op.parent)
        if folder is not None and folder.entries.get(op.name) == op.ino:
            del folder.entries[op.name]
        return
    old, new = nodes.get(op.parent_old), nodes.get(op.parent_new)
    if old is not None and old.entries.get(op.name_old) == op.ino:
        del old.entries[op.name_old]
    if new is not None and op.ino in nodes:
        new.entries[op.name_new] = op.ino


def _apply_data(node: Node, op: DataOp) -> None:
    if isinstance(op, Write):
        end = op.offset + len(op.data)
        if len(node.data) < op.offset:
            node.data.extend(bytes(op.offset - len(node.data)))
        node.data[op.offset:end] = op.data
    elif isinstance(op, Truncate):
        if op.size < len(node.data):
            del node.data[op.size:]
        else:
            node.data.extend(bytes(op.size - len(node.data)))
    else:
        node.mode, node.uid, node.gid = op.mode, op.uid, op.gid
        node.atime_ns, node.mtime_ns, node.ctime_ns = op.atime_ns, op.mtime_ns, op.ctime_ns


def reachable(nodes: dict[int, Node]) -> dict[int, Node]:
    """The inodes reachable from the root (orphans dropped), with nlink recomputed."""
    out: dict[int, Node] = {}
    links: dict[int, int] = {}
    stack = [ROOT]
    links[ROOT] = 2
    while stack:
        ino = stack.pop()
        if ino in out or ino not in nodes:
            continue
        node = out[ino] = nodes[ino].copy()
        for name, child in list(node.entries.items()):
            if child not in nodes:
                del node.entries[name]  # a name whose inode never became durable
                continue
            kid = nodes[child]
            if kid.is_dir:
                if child in out or links.get(child):  # a folder has one name only
                    del node.entries[name]
                    continue
                links[child] = 2
                links[ino] = links.get(ino, 2) + 1
            else:
                links[child] = links.get(child, 0) + 1
            stack.append(child)
    for ino, node in out.items():
        node.nlink = links.get(ino, 1)
    return out


# -- the model ---------------------------------------------------------------------------


@dataclass
class Stats:
    ops: int = 0
    fsyncs: int = 0
    fsyncdirs: int = 0
    cuts: int = 0


class PowerModel:
    """A filesystem whose un-synced changes a power cut may drop (module docstring)."""

    def __init__(self, nodes: dict[int, Node] | None = None, *, now: int = 0) -> None:
        if nodes is None:
            root = Node(ROOT, stat.S_IFDIR | 0o755, 0, 0, now, now, now)
            nodes = {ROOT: root}
        self.live: dict[int, Node] = reachable(nodes)
        self.durable: dict[int, Node] = {i: n.copy() for i, n in self.live.items()}
        self.next_ino = max(self.live) + 1
        self.log: dict[int, NsOp] = {}  # seq -> pending namespace operation
        self.seq = 0
        self.writers: dict[Key, list[int]] = {}
        self.readers: dict[Key, list[int]] = {}
        self.by_folder: dict[int, list[int]] = {}
        self.data_log: dict[int, list[DataOp]] = {}
        self.names: dict[int, tuple[int, bytes]] = {}  # ino -> one (parent, name), for paths
        for node in self.live.values():
            for name, child in node.entries.items():
                self.names[child] = (node.ino, name)
        self.stats = Stats()

    # -- bookkeeping -----------------------------------------------------------------

    def _log(self, op: NsOp) -> None:
        self.seq += 1
        self.log[self.seq] = op
        writes, reads = _keys(op)
        for k in writes:
            self.writers.setdefault(k, []).append(self.seq)
        for k in reads:
            self.readers.setdefault(k, []).append(self.seq)
        for folder in _folders(op):
            self.by_folder.setdefault(folder, []).append(self.seq)

    def _data(self, ino: int, op: DataOp) -> None:
        self.data_log.setdefault(ino, []).append(op)

    def _closure(self, seeds: set[int]) -> list[int]:
        """`seeds` and every pending operation they depend on, in log order."""
        out: set[int] = set()
        stack = [s for s in seeds if s in self.log]
        while stack:
            seq = stack.pop()
            if seq in out:
                continue
            out.add(seq)
            writes, reads = _keys(self.log[seq])
            for k in writes:
                for s in self.writers.get(k, ()):
                    if s < seq and s in self.log and s not in out:
                        stack.append(s)
                for s in self.readers.get(k, ()):
                    if s < seq and s in self.log and s not in out:
                        stack.append(s)
            for k in reads:
                for s in self.writers.get(k, ()):
                    if s < seq and s in self.log and s not in out:
                        stack.append(s)
        return sorted(out)

    def pending(self) -> int:
        """Operations not yet durable (namespace and data)."""
        return len(self.log) + sum(len(v) for v in self.data_log.values())

    def path(self, ino: int) -> str:
        """One path of `ino` ("/" for the root; "?" parts for a nameless inode)."""
        parts: list[str] = []
        seen = 0
        while ino != ROOT and seen < 64:
            where = self.names.get(ino)
            if where is None:
                parts.append(f"?{ino}")
                break
            ino, name = where
            parts.append(name.decode(errors="replace"))
            seen += 1
        return "/" + "/".join(reversed(parts))

    def child_path(self, parent: int, name: bytes) -> str:
        base = self.path(parent)
        return (base.rstrip("/") + "/" + name.decode(errors="replace")) if base else base

    # -- reading -----------------------------------------------------------------------

    def node(self, ino: int) -> Node:
        node = self.live.get(ino)
        if node is None:
            raise FsError(errno.ENOENT)
        return node

    def folder(self, ino: int) -> Node:
        node = self.node(ino)
        if not node.is_dir:
            raise FsError(errno.ENOTDIR)
        return node

    def lookup(self, parent: int, name: bytes) -> Node:
        folder = self.folder(parent)
        if name == b".":
            return folder
        if name == b"..":
            return self.node(self.names.get(parent, (ROOT, b""))[0])
        ino = folder.entries.get(name)
        if ino is None:
            raise FsError(errno.ENOENT)
        return self.live[ino]

    def read(self, ino: int, offset: int, size: int) -> bytes:
        return bytes(self.node(ino).data[offset:offset + size])

    # -- changing the namespace --------------------------------------------------------

    def _check_new_name(self, parent: int, name: bytes) -> Node:
        folder = self.folder(parent)
        if name in (b".", b"..") or b"/" in name or not name:
            raise FsError(errno.EINVAL)
        if len(name) > 255:
            raise FsError(errno.ENAMETOOLONG)
        if name in folder.entries:
            raise FsError(errno.EEXIST)
        return folder

    def create(self, parent: int, name: bytes, mode: int, uid: int, gid: int, now: int,
               *, target: bytes = b"", rdev: int = 0) -> Node:
        """A new inode named `parent`/`name` (file, folder, symlink or special file)."""
        folder = self._check_new_name(parent, name)
        self.stats.ops += 1
        ino = self.next_ino
        self.next_ino += 1
        node = Node(ino, mode, uid, gid, now, now, now, target=target, rdev=rdev)
        self._log(Alloc(node.copy()))
        node.nlink = 2 if node.is_dir else 1
        self.live[ino] = node
        folder.entries[name] = ino
        if node.is_dir:
            folder.nlink += 1
        folder.mtime_ns = folder.ctime_ns = now
        self.names[ino] = (parent, name)
        self._log(Entry(parent, name, ino))
        return node

    def link(self, ino: int, parent: int, name: bytes, now: int) -> Node:
        node = self.node(ino)
        if node.is_dir:
            raise FsError(errno.EPERM)
        folder = self._check_new_name(parent, name)
        self.stats.ops += 1
        folder.entries[name] = ino
        folder.mtime_ns = folder.ctime_ns = now
        node.nlink += 1
        node.ctime_ns = now
        self.names[ino] = (parent, name)  # the newest name (a temp name is unlinked next)
        self._log(Entry(parent, name, ino))
        return node

    def unlink(self, parent: int, name: bytes, now: int, *, is_dir: bool = False) -> None:
        folder = self.folder(parent)
        ino = folder.entries.get(name)
        if ino is None:
            raise FsError(errno.ENOENT)
        node = self.live[ino]
        if is_dir and not node.is_dir:
            raise FsError(errno.ENOTDIR)
        if not is_dir and node.is_dir:
            raise FsError(errno.EISDIR)
        if is_dir and node.entries:
            raise FsError(errno.ENOTEMPTY)
        self.stats.ops += 1
        del folder.entries[name]
        folder.mtime_ns = folder.ctime_ns = now
        node.ctime_ns = now
        if is_dir:
            folder.nlink -= 1
            node.nlink = 0
        else:
            node.nlink -= 1
        if self.names.get(ino) == (parent, name):
            del self.names[ino]
            for other in self.live.values() if node.nlink > 0 else ():  # another name
                for n, i in other.entries.items():
                    if i == ino:
                        self.names[ino] = (other.ino, n)
                        break
        self._log(Unlink(parent, name, ino, is_dir))

    def _is_ancestor(self, anc: int, ino: int) -> bool:
        seen = 0
        while seen < 4096:
            if ino == anc:
                return True
            if ino == ROOT:
                return False
            where = self.names.get(ino)
            if where is None:
                return False
            ino = where[0]
            seen += 1
        return False

    def rename(self, p_old: int, n_old: bytes, p_new: int, n_new: bytes, now: int,
               *, noreplace: bool = False) -> None:
        old = self.folder(p_old)
        new = self.folder(p_new)
        ino = old.entries.get(n_old)
        if ino is None:
            raise FsError(errno.ENOENT)
        if n_new in (b".", b"..") or not n_new or b"/" in n_new:
            raise FsError(errno.EINVAL)
        if len(n_new) > 255:
            raise FsError(errno.ENAMETOOLONG)
        node = self.live[ino]
        victim = new.entries.get(n_new, 0)
        if victim == ino:
            return  # same inode: POSIX says do nothing
        if victim:
            if noreplace:
                raise FsError(errno.EEXIST)
            vnode = self.live[victim]
            if node.is_dir and not vnode.is_dir:
                raise FsError(errno.ENOTDIR)
            if not node.is_dir and vnode.is_dir:
                raise FsError(errno.EISDIR)
            if vnode.is_dir and vnode.entries:
                raise FsError(errno.ENOTEMPTY)
        if node.is_dir and self._is_ancestor(ino, p_new):
            raise FsError(errno.EINVAL)
        self.stats.ops += 1
        del old.entries[n_old]
        new.entries[n_new] = ino
        if victim:
            vnode = self.live[victim]
            if vnode.is_dir:
                vnode.nlink = 0
                new.nlink -= 1
            else:
                vnode.nlink -= 1
            vnode.ctime_ns = now
            if self.names.get(victim) == (p_new, n_new):
                del self.names[victim]
        if node.is_dir and p_old != p_new:
            old.nlink -= 1
            new.nlink += 1
        old.mtime_ns = old.ctime_ns = new.mtime_ns = new.ctime_ns = now
        node.ctime_ns = now
        self.names[ino] = (p_new, n_new)
        self._log(Rename(p_old, n_old, p_new, n_new, ino, victim))

    # -- changing data and attributes ------------------------------------------------

    def write(self, ino: int, offset: int, data: bytes, now: int) -> int:
        node = self.node(ino)
        if node.is_dir:
            raise FsError(errno.EISDIR)
        self.stats.ops += 1
        op = Write(offset, bytes(data))
        _apply_data(node, op)
        node.mtime_ns = node.ctime_ns = now
        self._data(ino, op)
        self._data(ino, self._attr(node))
        return len(data)

    @staticmethod
    def _attr(node: Node) -> Attr:
        return Attr(node.mode, node.uid, node.gid, node.atime_ns, node.mtime_ns, node.ctime_ns)

    def setattr(self, ino: int, now: int, *, size: int | None = None, mode: int | None = None,
                uid: int | None = None, gid: int | None = None, atime_ns: int | None = None,
                mtime_ns: int | None = None) -> Node:
        node = self.node(ino)
        self.stats.ops += 1
        if size is not None:
            if node.is_dir:
                raise FsError(errno.EISDIR)
            op = Truncate(size)
            _apply_data(node, op)
            self._data(ino, op)
            node.mtime_ns = now
        if mode is not None:
            node.mode = stat.S_IFMT(node.mode) | stat.S_IMODE(mode)
        if uid is not None:
            node.uid = uid
        if gid is not None:
            node.gid = gid
        if atime_ns is not None:
            node.atime_ns = atime_ns
        if mtime_ns is not None:
            node.mtime_ns = mtime_ns
        node.ctime_ns = now
        self._data(ino, self._attr(node))
        return node

    # -- durability --------------------------------------------------------------------

    def _make_durable(self, seqs: list[int]) -> None:
        for seq in seqs:
            _apply_ns(self.durable, self.log.pop(seq))

    def _persist_inode(self, ino: int) -> None:
        """The inode's data and attributes, as they are now, become durable."""
        live = self.live[ino]
        dur = self.durable.get(ino)
        if dur is None:
            dur = self.durable[ino] = live.copy()
            dur.entries = {}
        dur.attrs_from(live)
        if not live.is_dir:
            dur.data = bytearray(live.data)
        self.data_log.pop(ino, None)

    def fsync(self, ino: int) -> None:
        """fsync/fdatasync of a file: its data and attributes, not its name."""
        self.node(ino)
        self.stats.fsyncs += 1
        seeds = {s for s in self.writers.get(("I", ino, b""), ()) if s in self.log}
        self._make_durable(self._closure(seeds))  # the inode itself exists
        self._persist_inode(ino)

    def fsyncdir(self, ino: int) -> None:
        """fsync of a folder: the names in it (and what they depend on)."""
        self.folder(ino)
        self.stats.fsyncdirs += 1
        seeds = {s for s in self.by_folder.get(ino, ()) if s in self.log}
        seeds |= {s for s in self.writers.get(("I", ino, b""), ()) if s in self.log}
        self._make_durable(self._closure(seeds))
        self.by_folder.pop(ino, None)
        self._persist_inode(ino)

    def sync_all(self) -> None:
        """Everything becomes durable (sync(2) on a real disk; a clean shutdown)."""
        self._make_durable(sorted(self.log))
        for ino in list(self.data_log):
            if ino in self.live:
                self._persist_inode(ino)
        self.data_log.clear()
        self.writers.clear()
        self.readers.clear()
        self.by_folder.clear()

    def crash(self, rng: random.Random, *, p_meta: float = 0.5, p_keep: float = 0.45,
              p_torn: float = 0.15) -> dict[int, Node]:
        """The image a power cut leaves now (the model itself is not changed)."""
        self.stats.cuts += 1
        image = {i: n.copy() for i, n in self.durable.items()}
        chosen = {seq for seq in self.log if rng.random() < p_meta}
        for seq in self._closure(chosen):
            _apply_ns(image, self.log[seq])
        for ino, ops in self.data_log.items():
            node = image.get(ino)
            if node is None:
                continue
            for op in ops:
                r = rng.random()
                if r < p_keep:
                    _apply_data(node, op)
                elif r < p_keep + p_torn and isinstance(op, Write) and len(op.data) > SECTOR:
                    cut = rng.randrange(1, len(op.data) // SECTOR + 1) * SECTOR
                    _apply_data(node, Write(op.offset, op.data[:cut]))
        return reachable(image)

    def clean_image(self) -> dict[int, Node]:
        """What a clean shutdown leaves: everything."""
        return reachable(self.live)


def walk(nodes: dict[int, Node], ino: int = ROOT, prefix: str = "") -> Iterator[tuple[str, Node]]:
    """(path, inode) of every name in an image, folders before their contents."""
    node = nodes[ino]
    for name in sorted(node.entries):
        child = nodes[node.entries[name]]
        path = f"{prefix}/{name.decode(errors='surrogateescape')}"
        yield path, child
        if child.is_dir:
            yield from walk(nodes, child.ino, path)
