"""The file system: operations on inodes and names, each logged before it returns.

The API is path-free: directories are named by inode number and entries by
name, as in FUSE's low-level protocol; the vfs layer above walks paths and
checks permissions. Each mutating operation builds its metadata records,
applies them to the namespace and queues them; queued records travel in the
next log unit written (a data write carries them ahead of its own records,
so the log order is the order of operations) or in a metadata unit of their
own once enough accumulate, or at fsync/sync.

One operation's records always travel in one unit, so each operation is
atomic after a crash (rename included). Durability is by ``fsync``,
``fdatasync`` and ``sync``, which write the queued records and flush the
device; see the package docstring for the properties.

Data writes go out at once as units (header + blocks). A partial block is
read, patched and rewritten whole (read-modify-write); bytes past the end
of file in the last block are zeroed whenever the file grows over them, so
truncating down then up, or writing past the end, reads zeros in between.
Writes that overwrite mapped blocks go to the hot stream, writes of new
blocks to the cold one (blocks that were overwritten once are likely to be
again). Access times are not updated by reads (as with ``noatime``).
"""

from __future__ import annotations

import stat
import threading
import time

from zcsdfs.lfs import records
from zcsdfs.lfs.attributes import Stat, StatFs
from zcsdfs.lfs.checkpoint import image
from zcsdfs.lfs.directory import NAME_MAX, as_name, as_new_name
from zcsdfs.lfs.errors import (
    ArgumentTooBig,
    Exists,
    Invalid,
    IsADirectory,
    NameTooLong,
    NoData,
    NoSpace,
    NotADirectory,
    NotEmpty,
    NotFound,
    NotPermitted,
    TooBig,
    TooManyLinks,
    Unmounted,
)
from zcsdfs.lfs.frozen import FrozenView
from zcsdfs.lfs.gc import check_policy, choose_victim, collect
from zcsdfs.lfs.inode import Inode
from zcsdfs.lfs.log import Role, Stream
from zcsdfs.lfs.namespace import ROOT_INO
from zcsdfs.lfs.reader import TreeReader
from zcsdfs.lfs.recovery import recover
from zcsdfs.lfs.snapshot import Snapshot, SnapshotInfo, snapshot_name
from zcsdfs.lfs.usage import usable_blocks

MAX_FILE_SIZE = 1 << 46
LINK_MAX = 65000
PATH_MAX = 4096
XATTR_SIZE_MAX = 65536
XATTR_CREATE = 1
XATTR_REPLACE = 2
PENDING_LIMIT = 16 << 10  # bytes of queued records before they go out as a metadata unit


def _now() -> int:
    return time.time_ns()


class FileSystem(TreeReader):
    """A mounted zcsdfs. Build it with ``zcsdfs.lfs.mount(device)``."""

    ROOT = ROOT_INO

    def __init__(self, device, gc_policy: str = "greedy"):
        self.gc_policy = check_policy(gc_policy)  # foreground GC's victim selection
        self.device = device
        self.block_size = device.block_size
        self._lock = threading.RLock()
        r, self.writer, self.checkpointer, self.recovery = recover(device)
        self.sb, self.ns, self._usage_base = r.sb, r.ns, r.usage
        self.snapshots: dict[str, Snapshot] = {name: Snapshot(self, name, created, ns)
                                               for name, (created, ns) in r.snapshots.items()}
        self.viewed = [0] * device.geometry.zones  # blocks per zone pinned by frozen views
        self.writer.on_low_space = self._reclaim
        self.checkpoint_interval = device.geometry.zone_capacity
        self.user_blocks_written = 0
        self.gc_blocks_moved = 0
        self._reclaiming = False
        self._pending: list[bytes] = []
        self._pending_len = 0
        self._held: dict[int, int] = {}
        self._mounted = True
        self.checkpoint()

    def _check_usable(self) -> None:
        if not self._mounted:
            raise Unmounted("the file system is unmounted")

    # -- logging ----------------------------------------------------------------------------

    def _log(self, *recs) -> None:
        """Apply one operation's records and queue them for the log, as one atomic group."""
        for rec in recs:
            self.ns.apply(rec)
        encoded = b"".join(records.encode(rec) for rec in recs)
        self._pending.append(encoded)
        self._pending_len += len(encoded)
        if self._pending_len >= PENDING_LIMIT:
            self._write_pending()

    def _take_pending(self) -> bytes:
        queued = b"".join(self._pending)
        self._pending.clear()
        self._pending_len = 0
        return queued

    def _write_pending(self) -> None:
        """Write the queued records as a metadata unit."""
        if not self._pending:
            return
        self.writer.room(Stream.META, self._pending_len, 0)
        if self._pending:  # a checkpoint taken to make room covers them already
            self.writer.append(Stream.META, self._take_pending())
        self._maybe_checkpoint()

    def _maybe_checkpoint(self) -> None:
        if self.writer.since_checkpoint >= self.checkpoint_interval:
            self.checkpoint()

    def checkpoint(self) -> None:
        """Write a full metadata image, flush, and reset the zones it no longer needs."""
        with self._lock:
            w = self.writer
            freed = [z for z in w.log_zones
                     if w.role[z] is Role.SEALED and self.ns.valid[z] == 0 and self.viewed[z] == 0]
            snapshots = {name: (snap.created_ns, snap.ns) for name, snap in self.snapshots.items()}
            body = image(self.ns, w, freed, self.usage(), snapshots)
            self.checkpointer.write(body)
            self._take_pending()
            w.since_checkpoint = 0
            for z in freed:
                w.release(z)

    def _reclaim(self) -> None:
        """Called when data would dip into the reserve: checkpoint, then collect garbage."""
        if self._reclaiming:
            return
        self._reclaiming = True
        try:
            self.checkpoint()
            w = self.writer
            for _ in w.log_zones:
                if len(w.free_zones()) > w.reserve:
                    break
                if not self._collect_one():
                    break
        finally:
            self._reclaiming = False

    def _collect_one(self, policy: str | None = None) -> bool:
        victim = choose_victim(self, policy or self.gc_policy)
        if victim is None:
            return False
        self.gc_blocks_moved += collect(self, victim)
        self.checkpoint()
        return self.writer.role[victim] is Role.FREE

    def gc(self, zones: int = 1, policy: str | None = None) -> int:
        """Background garbage collection of up to ``zones`` victims; returns the zones freed.

        ``policy`` ("greedy" or "cost-benefit") defaults to the mount's ``gc_policy``.
        """
        with self._lock:
            if policy is not None:
                check_policy(policy)
            freed = 0
            for _ in range(zones):
                if not self._collect_one(policy):
                    break
                freed += 1
            return freed

    # -- snapshots and frozen views -----------------------------------------------------------

    def create_snapshot(self, name: str) -> SnapshotInfo:
        """Take a named, read-only snapshot of the whole volume; durable when this returns."""
        with self._lock:
            self._check_usable()
            name = snapshot_name(name)
            if name in self.snapshots:
                raise Exists(f"snapshot {name!r} exists", name)
            snap = self.snapshots[name] = Snapshot(self, name, _now(), self.ns.snapshot())
            try:
                self.checkpoint()
            except NoSpace:
                self._forget_snapshot(name)
                raise
            return snap.info

    def snapshot(self, name: str) -> Snapshot:
        """The snapshot ``name``, to read files from."""
        with self._lock:
            self._check_usable()
            try:
                return self.snapshots[name]
            except KeyError:
                raise NotFound(f"no snapshot {name!r}", name) from None

    def list_snapshots(self) -> list[SnapshotInfo]:
        """Every snapshot, oldest first."""
        with self._lock:
            self._check_usable()
            return sorted((s.info for s in self.snapshots.values()), key=lambda i: i.created_ns)

    def delete_snapshot(self, name: str) -> None:
        """Delete a snapshot; blocks only it referenced become garbage. Durable when this returns."""
        with self._lock:
            self.snapshot(name)
            self._forget_snapshot(name)
            self.checkpoint()

    def _forget_snapshot(self, name: str) -> None:
        snap = self.snapshots.pop(name)
        snap.ns.drop()
        snap.deleted = True

    def freeze(self, ino: int) -> FrozenView:
        """A frozen view of a regular file's blocks; GC leaves them in place until it is released."""
        with self._lock:
            return FrozenView(self, self._file(ino))

    # -- creating and removing names ----------------------------------------------------------

    def _new_inode(self, mode: int, uid: int, gid: int, nlink: int, size: int = 0,
                   target: str = "") -> records.Inode:
        now = _now()
        ino = self.ns.next_ino
        self.ns.next_ino += 1
        return records.Inode(ino, mode, uid, gid, nlink, size, now, now, now, target)

    def _prepare_new(self, dir_ino: int, name) -> tuple[Inode, str]:
        d = self._dir(dir_ino)
        name = as_new_name(name)
        if name in d.entries:
            raise Exists(f"{name!r} already exists in directory {dir_ino}", name)
        return d, name

    def create(self, dir_ino: int, name: str | bytes, mode: int = 0o644, uid: int = 0, gid: int = 0) -> int:
        """Create an empty regular file; EEXIST if the name is taken."""
        with self._lock:
            d, name = self._prepare_new(dir_ino, name)
            rec = self._new_inode(stat.S_IFREG | (mode & 0o7777), uid, gid, 1)
            self._log(rec, records.Dentry(d.ino, name, rec.ino),
                      d.record(mtime_ns=rec.ctime_ns, ctime_ns=rec.ctime_ns))
            return rec.ino

    def mkdir(self, dir_ino: int, name: str | bytes, mode: int = 0o755, uid: int = 0, gid: int = 0) -> int:
        with self._lock:
            d, name = self._prepare_new(dir_ino, name)
            if d.nlink >= LINK_MAX:
                raise TooManyLinks(f"directory {dir_ino} has {d.nlink} links", name)
            rec = self._new_inode(stat.S_IFDIR | (mode & 0o7777), uid, gid, 2, self.block_size)
            self._log(rec, records.Dentry(d.ino, name, rec.ino),
                      d.record(nlink=d.nlink + 1, mtime_ns=rec.ctime_ns, ctime_ns=rec.ctime_ns))
            return rec.ino

    def symlink(self, dir_ino: int, name: str | bytes, target: str | bytes, uid: int = 0, gid: int = 0) -> int:
        with self._lock:
            d, name = self._prepare_new(dir_ino, name)
            raw = target if isinstance(target, bytes) else target.encode("utf-8", "surrogateescape")
            if not raw:
                raise NotFound("a symbolic link needs a target", name)
            if len(raw) >= PATH_MAX or b"\0" in raw:
                raise NameTooLong(f"symbolic link target of {len(raw)} bytes", name)
            rec = self._new_inode(stat.S_IFLNK | 0o777, uid, gid, 1, len(raw),
                                  raw.decode("utf-8", "surrogateescape"))
            self._log(rec, records.Dentry(d.ino, name, rec.ino),
                      d.record(mtime_ns=rec.ctime_ns, ctime_ns=rec.ctime_ns))
            return rec.ino

    def link(self, ino: int, dir_ino: int, name: str | bytes) -> None:
        """A new name for an existing non-directory inode."""
        with self._lock:
            node = self._node(ino)
            d, name = self._prepare_new(dir_ino, name)
            if node.is_dir:
                raise NotPermitted(f"hard link to directory inode {ino}", name)
            if node.nlink >= LINK_MAX:
                raise TooManyLinks(f"inode {ino} has {node.nlink} links", name)
            now = _now()
            self._log(node.record(nlink=node.nlink + 1, ctime_ns=now), records.Dentry(d.ino, name, ino),
                      d.record(mtime_ns=now, ctime_ns=now))

    def _drop_link(self, node: Inode, now: int) -> list:
        """Records for one fewer link to ``node`` (a file or symlink)."""
        if node.nlink == 1 and not self._held.get(node.ino):
            return [records.Free(node.ino)]
        return [node.record(nlink=node.nlink - 1, ctime_ns=now)]

    def unlink(self, dir_ino: int, name: str | bytes) -> None:
        with self._lock:
            d = self._dir(dir_ino)
            ino = self.lookup(dir_ino, name)
            name = as_name(name)
            node = self.ns.inodes[ino]
            if node.is_dir:
                raise IsADirectory(f"{name!r} is a directory", name)
            now = _now()
            self._log(records.Undentry(d.ino, name), *self._drop_link(node, now),
                      d.record(mtime_ns=now, ctime_ns=now))

    def rmdir(self, dir_ino: int, name: str | bytes) -> None:
        with self._lock:
            d = self._dir(dir_ino)
            name = as_name(name)
            if name == ".":
                raise Invalid("cannot remove '.'", name)
            if name == "..":
                raise NotEmpty("cannot remove '..'", name)
            node = self.ns.inodes[self.lookup(dir_ino, name)]
            if not node.is_dir:
                raise NotADirectory(f"{name!r} is not a directory", name)
            if node.entries:
                raise NotEmpty(f"directory {name!r} is not empty", name)
            now = _now()
            self._log(records.Undentry(d.ino, name), records.Free(node.ino),
                      d.record(nlink=d.nlink - 1, mtime_ns=now, ctime_ns=now))

    def rename(self, old_dir: int, old_name: str | bytes, new_dir: int, new_name: str | bytes) -> None:
        """Move an entry, replacing what ``new_name`` named (POSIX rules); atomic across crashes."""
        with self._lock:
            od, nd = self._dir(old_dir), self._dir(new_dir)
            old_name, new_name = as_name(old_name), as_name(new_name)
            for n in (old_name, new_name):
                if n in (".", ".."):
                    raise Invalid(f"cannot rename {n!r}", n)
            src = self.ns.inodes[self.lookup(old_dir, old_name)]
            existing = nd.entries.get(new_name)
            if existing == src.ino:
                return
            if src.is_dir:
                up = nd
                while True:
                    if up.ino == src.ino:
                        raise Invalid(f"cannot move directory {old_name!r} into itself", new_name)
                    if up.ino == ROOT_INO:
                        break
                    up = self.ns.inodes[up.parent]
            now = _now()
            recs: list = []
            nlink = {od.ino: od.nlink, nd.ino: nd.nlink}
            if existing is not None:
                target = self.ns.inodes[existing]
                if src.is_dir and not target.is_dir:
                    raise NotADirectory(f"{new_name!r} is not a directory", new_name)
                if target.is_dir and not src.is_dir:
                    raise IsADirectory(f"{new_name!r} is a directory", new_name)
                if target.is_dir:
                    if target.entries:
                        raise NotEmpty(f"directory {new_name!r} is not empty", new_name)
                    recs.append(records.Free(target.ino))
                    nlink[nd.ino] -= 1
                else:
                    recs.extend(self._drop_link(target, now))
            if src.is_dir and od.ino != nd.ino:
                nlink[od.ino] -= 1
                nlink[nd.ino] += 1
            recs[:0] = [records.Undentry(od.ino, old_name), records.Dentry(nd.ino, new_name, src.ino)]
            recs.append(src.record(ctime_ns=now))
            for d in {od.ino: od, nd.ino: nd}.values():
                recs.append(d.record(nlink=nlink[d.ino], mtime_ns=now, ctime_ns=now))
            self._log(*recs)

    # -- open files ---------------------------------------------------------------------------

    def hold(self, ino: int) -> None:
        """Keep an inode alive while open, even after its last link goes (vfs calls this on open)."""
        with self._lock:
            self._node(ino)
            self._held[ino] = self._held.get(ino, 0) + 1

    def release(self, ino: int) -> None:
        """Drop one hold; an inode with no links and no holds is freed."""
        with self._lock:
            count = self._held.get(ino, 0)
            if count == 0:
                raise Invalid(f"inode {ino} is not held")
            if count > 1:
                self._held[ino] = count - 1
                return
            del self._held[ino]
            node = self.ns.inodes.get(ino)
            if node is not None and node.nlink == 0:
                self._log(records.Free(ino))

    # -- data -------------------------------------------------------------------------------

    def write(self, ino: int, offset: int, data) -> int:
        """Write ``data`` at ``offset``; returns the bytes written (short only when space ran out)."""
        with self._lock:
            node = self._file(ino)
            data = memoryview(data).cast("B")
            if offset < 0:
                raise Invalid(f"negative offset {offset}")
            if not data.nbytes:
                return 0
            end = offset + data.nbytes
            if end > MAX_FILE_SIZE:
                raise TooBig(f"write to {end} bytes exceeds the maximum file size {MAX_FILE_SIZE}")
            bs = self.block_size
            first, last = offset // bs, -(-end // bs)
            if offset > node.size and first > node.size // bs:
                self._zero_tail(node)
            buf = bytearray((last - first) * bs)
            if offset % bs:
                self._read_block(node, first, memoryview(buf)[:bs])
            if end % bs and (last - 1 != first or not offset % bs):
                self._read_block(node, last - 1, memoryview(buf)[-bs:])
            buf[offset - first * bs:end - first * bs] = data
            overwrite = any(lba is not None for _, _, lba in node.extents.runs(first, last - first))
            done = self._write_blocks(node, first, buf, end, Stream.HOT if overwrite else Stream.COLD)
            self.user_blocks_written += done
            self._maybe_checkpoint()
            return data.nbytes if done == last - first else max(0, (first + done) * bs - offset)

    def _read_block(self, node: Inode, block: int, out: memoryview) -> None:
        """Fill ``out`` with file block ``block`` as the file has it (zeros past the end of file)."""
        lba = node.extents.lookup(block)
        if lba is None:
            return
        self.device.read_into(lba, out)
        valid = node.size - block * self.block_size
        if valid < self.block_size:
            out[max(valid, 0):] = bytes(self.block_size - max(valid, 0))

    def _zero_tail(self, node: Inode) -> None:
        """Rewrite the last block with zeros past the end of file, before the file grows over them."""
        bs = self.block_size
        if not node.size % bs:
            return
        block = node.size // bs
        if node.extents.lookup(block) is None:
            return
        buf = bytearray(bs)
        self._read_block(node, block, memoryview(buf))
        self._write_blocks(node, block, buf, node.size, Stream.HOT)

    def _write_blocks(self, node: Inode, first: int, buf: bytearray, end: int, stream: Stream) -> int:
        """Log whole blocks from file block ``first``; the file grows to ``end`` bytes as they land.

        Each unit carries the inode's new size and times, so every unit on its
        own leaves the file consistent. Returns the blocks written; raises
        ENOSPC only if none could be.
        """
        bs = self.block_size
        total = len(buf) // bs
        view = memoryview(buf)
        sample = records.encode(records.Data(node.ino, first, 1)) + records.encode(node.record())
        done = 0
        while done < total:
            try:
                count = self.writer.room(stream, self._pending_len + len(sample), total - done)
            except NoSpace:
                if done:
                    return done
                raise
            now = _now()
            block = first + done
            size = max(node.size, min(end, (block + count) * bs))
            data_rec = records.Data(node.ino, block, count)
            inode_rec = node.record(size=size, mtime_ns=now, ctime_ns=now)
            recs = self._take_pending() + records.encode(data_rec) + records.encode(inode_rec)
            lba = self.writer.append(stream, recs, view[done * bs:(done + count) * bs])
            self.ns.apply(data_rec, lba)
            self.ns.apply(inode_rec)
            done += count
        return done

    def truncate(self, ino: int, size: int) -> None:
        with self._lock:
            node = self._file(ino)
            if size < 0:
                raise Invalid(f"negative size {size}")
            if size > MAX_FILE_SIZE:
                raise TooBig(f"size {size} exceeds the maximum file size {MAX_FILE_SIZE}")
            if size > node.size:
                self._zero_tail(node)
            now = _now()
            recs = []
            keep = -(-size // self.block_size)
            if node.extents.end() > keep:
                recs.append(records.Truncate(ino, keep))
            recs.append(node.record(size=size, mtime_ns=now, ctime_ns=now))
            self._log(*recs)

    # -- attributes ---------------------------------------------------------------------------

    def setattr(self, ino: int, *, mode: int | None = None, uid: int | None = None, gid: int | None = None,
                size: int | None = None, atime_ns: int | None = None, mtime_ns: int | None = None) -> Stat:
        """Change attributes (the vfs checks who may); ctime becomes now. Returns the new attributes."""
        with self._lock:
            node = self._node(ino)
            if size is not None:
                self.truncate(ino, size)
            changes = dict(ctime_ns=_now())
            if mode is not None:
                changes["mode"] = stat.S_IFMT(node.mode) | (mode & 0o7777)
            for key, value in (("uid", uid), ("gid", gid), ("atime_ns", atime_ns), ("mtime_ns", mtime_ns)):
                if value is not None:
                    changes[key] = value
            self._log(node.record(**changes))
            return self.getattr(ino)

    def setxattr(self, ino: int, name: str | bytes, value: bytes, flags: int = 0) -> None:
        with self._lock:
            node = self._node(ino)
            name = self._xattr_name(name)
            value = bytes(value)
            if len(value) > XATTR_SIZE_MAX:
                raise ArgumentTooBig(f"extended attribute value of {len(value)} bytes exceeds {XATTR_SIZE_MAX}", name)
            if flags & XATTR_CREATE and name in node.xattrs:
                raise Exists(f"extended attribute {name!r} exists", name)
            if flags & XATTR_REPLACE and name not in node.xattrs:
                raise NoData(f"no extended attribute {name!r}", name)
            self._log(records.Xattr(ino, name, value), node.record(ctime_ns=_now()))

    def removexattr(self, ino: int, name: str | bytes) -> None:
        with self._lock:
            node = self._node(ino)
            name = self._xattr_name(name)
            if name not in node.xattrs:
                raise NoData(f"no extended attribute {name!r}", name)
            self._log(records.Unxattr(ino, name), node.record(ctime_ns=_now()))

    # -- durability ---------------------------------------------------------------------------

    def fsync(self, ino: int) -> None:
        """Make the inode's data, attributes and (for a directory) entries durable."""
        with self._lock:
            self._node(ino)
            self._write_pending()
            self.device.flush()

    def fdatasync(self, ino: int) -> None:
        """Make the file's data and size durable (here: the same as fsync)."""
        self.fsync(ino)

    def sync(self) -> None:
        """Make everything durable."""
        with self._lock:
            if not self._mounted:
                raise Unmounted("the file system is unmounted")
            self._write_pending()
            self.device.flush()

    def statfs(self) -> StatFs:
        with self._lock:
            w = self.writer
            total = usable_blocks(self.device.geometry, len(w.log_zones), w.reserve)
            used = sum(self.ns.valid[z] for z in w.log_zones)
            free = max(0, total - used)
            files = 1 << 32
            return StatFs(self.block_size, self.block_size, total, free, free, files,
                          files - len(self.ns.inodes), files - len(self.ns.inodes), NAME_MAX)

    def usage(self) -> records.Usage:
        """Lifetime totals: those saved by the last checkpoint mounted from plus this mount's."""
        base = self._usage_base
        return records.Usage(base.user_blocks + self.user_blocks_written,
                             base.device_blocks + self.writer.blocks_written + self.checkpointer.blocks_written,
                             base.gc_blocks + self.gc_blocks_moved)

    @property
    def write_amplification(self) -> float:
        """Device blocks written by the log and checkpoints per user data block written, this mount."""
        device_blocks = self.writer.blocks_written + self.checkpointer.blocks_written
        return device_blocks / self.user_blocks_written if self.user_blocks_written else 0.0

    def unmount(self) -> None:
        """Checkpoint (so the next mount rolls nothing forward) and stop serving."""
        with self._lock:
            if not self._mounted:
                return
            self.checkpoint()
            self._mounted = False

    def __enter__(self) -> "FileSystem":
        return self

    def __exit__(self, *exc) -> None:
        self.unmount()
