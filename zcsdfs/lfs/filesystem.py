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

The data path (writes, reads, truncate, fallocate) is in ``data.py`` and the
write buffer that small writes collect in is in ``buffer.py``; this module
keeps the namespace operations and the orchestration: logging, checkpoints,
garbage collection, snapshots and frozen views, durability.
"""

from __future__ import annotations

import stat
import threading
import time

from zcsdfs.events import EventBus
from zcsdfs.lfs import records
from zcsdfs.lfs.attributes import Stat, StatFs
from zcsdfs.lfs.buffer import _settled
from zcsdfs.lfs.clock import _clamp_time, _now
from zcsdfs.lfs.data import FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, MAX_FILE_SIZE, DataPath  # noqa: F401 (their home was here)
from zcsdfs.lfs.device import Device
from zcsdfs.lfs.directory import NAME_MAX, as_name, as_new_name
from zcsdfs.lfs.errors import (
    ArgumentTooBig,
    Busy,
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
    TooManyLinks,
    Unmounted,
)
from zcsdfs.lfs.frozen import FrozenView
from zcsdfs.lfs.gc import check_policy, choose_victim, collect
from zcsdfs.lfs.inode import Inode
from zcsdfs.lfs.log import MAX_UNIT_DATA_BLOCKS, Role, Stream
from zcsdfs.lfs.namespace import ROOT_INO
from zcsdfs.lfs.reader import ZonePins
from zcsdfs.lfs.recovery import recover
from zcsdfs.lfs.snapshot import Snapshot, SnapshotInfo, rollback, snapshot_name
from zcsdfs.lfs.stats import Tally, note_checkpoint, note_gc
from zcsdfs.lfs.usage import capacity, usable_blocks

LINK_MAX = 65000
PATH_MAX = 4096
XATTR_SIZE_MAX = 65536
XATTR_CREATE = 1
XATTR_REPLACE = 2
PENDING_LIMIT = 16 << 10  # bytes of queued records before they go out as a metadata unit
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
MKNOD_TYPES = (stat.S_IFREG, stat.S_IFIFO, stat.S_IFCHR, stat.S_IFBLK, stat.S_IFSOCK)


class FileSystem(DataPath):
    """A mounted zcsdfs. Build it with ``zcsdfs.lfs.mount(device)``."""

    readonly = False  # ReadOnlyFileSystem (readonly.py) refuses every change

    def __init__(self, device: Device, gc_policy: str = "greedy"):
        # Fewer than 30 instance attributes: past CPython's shared-key limit the instance
        # dict is materialised and every self.x on the write path gets slower (measured:
        # 4 KiB pwrite 3.7 -> 4.1 us in bench/api.py). Group new state in a record instead.
        self.gc_policy = check_policy(gc_policy)  # foreground GC's victim selection
        self.device = device
        self.block_size = device.block_size
        self._lock = threading.RLock()
        r, self.writer, self.checkpointer, self.recovery = recover(device, self.readonly)
        # every data block's checksum, by LBA (checksums.py): per zone, for the small-read path
        self._sum_index = (self.writer.sums.tables, device.geometry.zone_size)
        self.sb, self.ns = r.sb, r.ns
        self.snapshots: dict[str, Snapshot] = {name: Snapshot(self, name, created, ns)
                                               for name, (created, ns) in r.snapshots.items()}
        self.viewed = ZonePins(device.geometry.zones, device.geometry.zone_size)  # by frozen views and reads
        self.writer.on_low_space = self._reclaim
        self.user_blocks_written = 0
        self.tally = Tally(getattr(device, "events", None) or EventBus())  # counts and the stack's bus
        self.tally.usage_base = r.usage
        self._reclaiming = False
        self._grouping = False  # a write's CONTINUED units are going out: no checkpoint until the last
        self._pending: list[bytes] = []
        self._pending_len = 0
        self._held: dict[int, int] = {}
        self._dirty: dict[int, dict[int, bytes]] = {}  # the write buffer: ino -> file block -> data
        self._dirty_attrs: dict[int, tuple[int, int]] = {}  # ino -> buffered (size, mtime)
        self._dirty_new: dict[int, int] = {}  # ino -> buffered blocks not mapped yet (for st_blocks)
        self._dirty_blocks = 0
        self._dirty_stream = None  # HOT once the buffer overwrites data, COLD for good once it holds cold data
        self._mixing = False  # records queued behind buffered writes: the buffer's unit must not reclaim
        self.write_hints: dict[int, Stream] = {}  # ino -> lifetime stream (set_write_hint)
        self._flushing = False
        zone_room = device.geometry.zone_capacity // 2
        self.buffer_limit = max(1, min(256, MAX_UNIT_DATA_BLOCKS, zone_room))
        self._mounted = True
        if not self.readonly:
            self.checkpoint()

    @property
    def events(self) -> EventBus:
        """The stack's event bus (GC runs and checkpoints here; see ``stats.py``)."""
        return self.tally.events

    def _check_usable(self) -> None:
        if not self._mounted:
            raise Unmounted("the file system is unmounted")

    # -- logging ----------------------------------------------------------------------------

    def _log(self, *recs) -> None:
        """Apply one operation's records and queue them for the log, as one atomic group."""
        encoded = b"".join(records.encode(rec) for rec in recs)  # first: a record that cannot be stored changes nothing
        if self._dirty:  # they travel in the buffer's unit, ahead of its data (buffer.py)
            recs, encoded = self._queue_behind(recs, encoded)
        for rec in recs:
            self.ns.apply(rec)
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
        """Write the buffered data, then the queued records as a metadata unit."""
        if self._dirty:
            self._flush_dirty()
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
        """Write the changed metadata and a checkpoint root, flush, and reset the zones it no longer needs."""
        with self._lock:
            started = time.perf_counter()
            if self._dirty and not self._flushing:  # (while flushing, it covers what came before)
                self._flush_dirty()
            w = self.writer
            snapshots = {name: (snap.created_ns, snap.ns) for name, snap in self.snapshots.items()}
            freed = self.checkpointer.write(w, self.ns, self.usage(), snapshots, self.viewed)
            self._take_pending()
            w.since_checkpoint = 0
            for z in freed:
                w.release(z)
            note_checkpoint(self, freed, started)

    def _reclaim(self) -> None:
        """Called when data would dip into the reserve: checkpoint, then collect garbage.

        Never in the middle of a multi-unit write (``_write_blocks``): a
        checkpoint would save it half done.
        """
        if self._reclaiming or self._grouping:
            return
        self._reclaiming = True
        try:
            self.checkpoint()
            w = self.writer
            failed: set[int] = set()
            for _ in w.log_zones:
                if len(w.free_zones()) > w.reserve:
                    break
                if self._collect_one(None, failed) is None:
                    break
        finally:
            self._reclaiming = False

    def _collect_one(self, policy: str | None, failed: set[int]) -> bool | None:
        """Clean one victim: True if it was freed, False if not (it joins ``failed``, so this pass
        never picks it again), None if there is no victim left."""
        victim = choose_victim(self, policy or self.gc_policy, failed)
        if victim is None:
            return None
        started, valid = time.perf_counter(), self.ns.valid[victim]
        moved = collect(self, victim)
        self.tally.gc_blocks_moved += moved
        self.checkpoint()
        note_gc(self, victim, policy or self.gc_policy, valid, moved, started)
        if self.writer.role[victim] is Role.FREE:
            return True
        failed.add(victim)
        return False

    @property
    def sums(self):
        """Every data block's checksum, by LBA (``checksums.BlockSums``)."""
        return self.writer.sums

    @property
    def checkpoint_interval(self) -> int:
        """Blocks logged between checkpoints: one zone's worth, so roll-forward stays short."""
        return self.device.geometry.zone_capacity

    @property
    def gc_blocks_moved(self) -> int:
        """Blocks garbage collection has relocated since mount."""
        return self.tally.gc_blocks_moved

    @property
    def damaged_zones(self) -> list[int]:
        """Zones GC found live blocks failing their checksums in: they stay until those blocks are
        no longer referenced (``fsck`` names the files)."""
        with self._lock:
            return sorted(self.writer.damaged)

    @_settled
    def gc(self, zones: int = 1, policy: str | None = None) -> int:
        """Background garbage collection of up to ``zones`` victims; returns the zones freed.

        ``policy`` ("greedy" or "cost-benefit") defaults to the mount's ``gc_policy``.
        A victim that cannot be freed (a damaged zone) is passed over for the next.
        """
        with self._lock:
            if policy is not None:
                check_policy(policy)
            freed = 0
            failed: set[int] = set()
            for _ in range(zones + len(self.writer.log_zones)):  # each zone fails at most once
                if freed == zones:
                    break
                done = self._collect_one(policy, failed)
                if done is None:
                    break
                freed += done
            return freed

    # -- snapshots and frozen views -----------------------------------------------------------

    def create_snapshot(self, name: str) -> SnapshotInfo:
        """Take a named, read-only snapshot of the whole volume; durable when this returns."""
        with self._lock:
            self._check_usable()
            name = snapshot_name(name)
            if name in self.snapshots:
                raise Exists(f"snapshot {name!r} exists", name)
            if self._dirty:
                self._flush_dirty()
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

    @_settled
    def delete_snapshot(self, name: str) -> None:
        """Delete a snapshot; blocks only it referenced become garbage. Durable when this returns."""
        with self._lock:
            self.snapshot(name)
            self._forget_snapshot(name)
            self.checkpoint()

    @_settled
    def rollback(self, name: str) -> None:
        """Make the live tree a copy of snapshot ``name``; durable and crash-safe (``snapshot.rollback``)."""
        rollback(self, name)

    def _forget_snapshot(self, name: str) -> None:
        snap = self.snapshots.pop(name)
        snap.ns.drop()
        snap.deleted = True

    def freeze(self, ino: int) -> FrozenView:
        """A frozen view of a regular file's blocks; GC leaves them in place until it is released."""
        with self._lock:
            if ino in self._dirty:
                self._flush_dirty()
            return FrozenView(self, self._file(ino))

    # -- creating and removing names ----------------------------------------------------------

    def _new_inode(self, mode: int, uid: int, gid: int, nlink: int, size: int = 0,
                   target: str = "", rdev: int = 0) -> records.Inode:
        now = _now()
        ino = self.ns.next_ino
        self.ns.next_ino += 1
        return records.Inode(ino, mode, uid, gid, nlink, size, now, now, now, target, rdev)

    def _prepare_new(self, dir_ino: int, name) -> tuple[Inode, str]:
        d = self._dir(dir_ino)
        name = as_new_name(name)
        if name in d.entries:
            raise Exists(f"{name!r} already exists in directory {dir_ino}", name)
        if d.nlink == 0:
            raise NotFound(f"directory {dir_ino} was removed", name)
        return d, name

    def create(self, dir_ino: int, name: str | bytes, mode: int = 0o644, uid: int = 0, gid: int = 0) -> int:
        """Create an empty regular file; EEXIST if the name is taken."""
        return self.mknod(dir_ino, name, stat.S_IFREG | (mode & 0o7777), 0, uid, gid)

    def mknod(self, dir_ino: int, name: str | bytes, mode: int, rdev: int = 0, uid: int = 0, gid: int = 0) -> int:
        """Create a regular file, FIFO, socket, or character or block device numbered ``rdev``.

        As mknod(2): a mode with no file type makes a regular file, a directory
        type is EPERM and any other type EINVAL; ``rdev`` is kept for device
        nodes only.
        """
        kind = stat.S_IFMT(mode) or stat.S_IFREG
        if kind == stat.S_IFDIR:
            raise NotPermitted("mknod cannot make a directory (use mkdir)", name)
        if kind not in MKNOD_TYPES:
            raise Invalid(f"mknod cannot make file type {kind:#o}", name)
        if kind not in (stat.S_IFCHR, stat.S_IFBLK):
            rdev = 0
        if not 0 <= rdev < 1 << 64:
            raise Invalid(f"device number {rdev} is out of range", name)
        with self._lock:
            d, name = self._prepare_new(dir_ino, name)
            rec = self._new_inode(kind | (mode & 0o7777), uid, gid, 1, rdev=rdev)
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
            # an open directory lives on, empty and unlinked, until its last release
            gone = node.record(nlink=0, ctime_ns=now) if self._held.get(node.ino) else records.Free(node.ino)
            self._log(records.Undentry(d.ino, name), gone,
                      d.record(nlink=d.nlink - 1, mtime_ns=now, ctime_ns=now))

    def rename(self, old_dir: int, old_name: str | bytes, new_dir: int, new_name: str | bytes,
               flags: int = 0) -> None:
        """Move an entry, replacing what ``new_name`` named (POSIX rules); atomic across crashes.

        ``flags`` as renameat2(2): RENAME_NOREPLACE fails with EEXIST if
        ``new_name`` exists; RENAME_EXCHANGE swaps two existing entries.
        """
        with self._lock:
            if flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE) or flags == RENAME_NOREPLACE | RENAME_EXCHANGE:
                raise Invalid(f"invalid rename flags {flags:#x}", old_name)
            od, nd = self._dir(old_dir), self._dir(new_dir)
            old_name, new_name = as_name(old_name), as_name(new_name)
            for n in (old_name, new_name):
                if n in (".", ".."):
                    raise Busy(f"cannot rename {n!r}", n)
            src = self.ns.inodes[self.lookup(old_dir, old_name)]
            existing = nd.entries.get(new_name)
            if flags & RENAME_NOREPLACE and existing is not None:
                raise Exists(f"{new_name!r} exists in directory {new_dir}", new_name)
            if flags & RENAME_EXCHANGE:
                if existing is None:
                    raise NotFound(f"no entry {new_name!r} in directory {new_dir} to exchange with", new_name)
                self._exchange(od, old_name, nd, new_name)
                return
            if existing == src.ino:
                return
            if src.is_dir and self._inside(nd, src.ino):
                raise Invalid(f"cannot move directory {old_name!r} into itself", new_name)
            if existing is not None and self.ns.inodes[existing].is_dir and self._inside(od, existing):
                raise NotEmpty(f"{new_name!r} contains {old_name!r}", new_name)
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

    def _exchange(self, od: Inode, old_name: str, nd: Inode, new_name: str) -> None:
        """RENAME_EXCHANGE: each name now names what the other did, in one log group."""
        src, dst = self.ns.inodes[od.entries[old_name]], self.ns.inodes[nd.entries[new_name]]
        if src.ino == dst.ino:
            return
        if src.is_dir and self._inside(nd, src.ino) or dst.is_dir and self._inside(od, dst.ino):
            raise Invalid(f"cannot exchange {old_name!r} with {new_name!r}: one contains the other", new_name)
        nlink = {od.ino: od.nlink, nd.ino: nd.nlink}
        if src.is_dir != dst.is_dir:  # a subdirectory moves from one parent to the other
            moving = 1 if src.is_dir else -1
            nlink[od.ino] -= moving
            nlink[nd.ino] += moving
        now = _now()
        recs = [records.Dentry(od.ino, old_name, dst.ino), records.Dentry(nd.ino, new_name, src.ino),
                src.record(ctime_ns=now), dst.record(ctime_ns=now)]
        for d in {od.ino: od, nd.ino: nd}.values():
            recs.append(d.record(nlink=nlink[d.ino], mtime_ns=now, ctime_ns=now))
        self._log(*recs)

    def _inside(self, d: Inode, ancestor: int) -> bool:
        """Whether directory ``d`` is the directory ``ancestor`` or below it."""
        while d.ino != ancestor:
            if d.ino == ROOT_INO:
                return False
            d = self.ns.inodes[d.parent]
        return True

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
            for key, value in (("uid", uid), ("gid", gid), ("atime_ns", _clamp_time(atime_ns)),
                               ("mtime_ns", _clamp_time(mtime_ns))):
                if value is not None:
                    changes[key] = value
            if mtime_ns is not None and ino in self._dirty_attrs:  # the time given wins over the last write's
                self._dirty_attrs[ino] = (self._dirty_attrs[ino][0], None)
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
            total, free = capacity(total, used + self._dirty_blocks)
            files = 1 << 32
            return StatFs(self.block_size, self.block_size, total, free, free, files,
                          files - len(self.ns.inodes), files - len(self.ns.inodes), NAME_MAX)

    def usage(self) -> records.Usage:
        """Lifetime totals: those saved by the last checkpoint mounted from plus this mount's."""
        base = self.tally.usage_base
        return records.Usage(base.user_blocks + self.user_blocks_written,
                             base.device_blocks + self.writer.blocks_written + self.checkpointer.blocks_written,
                             base.gc_blocks + self.gc_blocks_moved)

    @property
    def write_amplification(self) -> float:
        """Device blocks written by the log and checkpoints per user data block written, this mount."""
        device_blocks = self.writer.blocks_written + self.checkpointer.blocks_written
        return device_blocks / self.user_blocks_written if self.user_blocks_written else 0.0

    def unmount(self) -> None:
        """Write the buffer, checkpoint (so the next mount rolls nothing forward) and stop serving."""
        with self._lock:
            if not self._mounted:
                return
            if self._dirty:
                self._flush_dirty()
            self.checkpoint()
            self._mounted = False

    def __enter__(self) -> "FileSystem":
        return self

    def __exit__(self, *exc) -> None:
        self.unmount()
