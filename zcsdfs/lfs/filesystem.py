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

Small data writes (up to ``SMALL_WRITE`` blocks) collect in a write
buffer, as a page cache would hold them, and go out together as one unit
when the buffer fills, before any other operation is logged, and at
fsync/sync/unmount; so a 4 KiB write costs a memory copy, not a header
block, and the log still holds the operations in the order they were made
(a crash loses a suffix of them, never a middle). The buffer never holds
more than fits in one unit, nor more than the free space can take. Reads
of a buffered file write the buffer out first; ``getattr`` answers the
buffered size and times. Larger writes go straight out as units (header +
blocks). A partial block is read, patched and rewritten whole
(read-modify-write); bytes past the end of file in the last block are
zeroed whenever the file grows over them, so truncating down then up, or
writing past the end, reads zeros in between. Writes that overwrite mapped
blocks go to the hot stream, writes of new blocks to the cold one (blocks
that were overwritten once are likely to be again), unless the caller says
``cold``. Access times follow Linux's ``relatime`` (``touch_atime``), and
timestamps come from the coarse real-time clock, as Linux's do.

Space is never reserved ahead: a log-structured file system needs new
blocks at every overwrite, so ``fallocate`` promises only what it can check
(enough free blocks now) and extends the size; punching a hole unmaps
whole blocks and rewrites the partial blocks at its edges with zeros, all
in one unit. Reads copy from the device outside the lock (see
``reader.py``).
"""

from __future__ import annotations

import functools
import stat
import threading
import time

from attrs import evolve as attrs_evolve

from zcsdfs.events import EventBus
from zcsdfs.lfs import records
from zcsdfs.lfs.attributes import Stat, StatFs
from zcsdfs.lfs.checksums import crc as _crc
from zcsdfs.lfs.checksums import damaged
from zcsdfs.lfs.device import Device
from zcsdfs.lfs.directory import NAME_MAX, as_name, as_new_name
from zcsdfs.lfs.errors import (
    ArgumentTooBig,
    Busy,
    Exists,
    IllegalSeek,
    Invalid,
    IsADirectory,
    NameTooLong,
    NoData,
    NoSpace,
    NoSuchDevice,
    NotADirectory,
    NotEmpty,
    NotFound,
    NotPermitted,
    NotSupported,
    TooBig,
    TooManyLinks,
    Unmounted,
)
from zcsdfs.lfs.frozen import FrozenView
from zcsdfs.lfs.gc import check_policy, choose_victim, collect
from zcsdfs.lfs.inode import Inode
from zcsdfs.lfs.log import LIFETIME_STREAMS, MAX_UNIT_DATA_BLOCKS, Role, Stream
from zcsdfs.lfs.namespace import ROOT_INO
from zcsdfs.lfs.reader import TreeReader, ZonePins
from zcsdfs.lfs.recovery import recover
from zcsdfs.lfs.snapshot import Snapshot, SnapshotInfo, rollback, snapshot_name
from zcsdfs.lfs.stats import Tally, note_checkpoint, note_gc
from zcsdfs.lfs.usage import capacity, usable_blocks

MAX_FILE_SIZE = 1 << 46
LINK_MAX = 65000
PATH_MAX = 4096
XATTR_SIZE_MAX = 65536
XATTR_CREATE = 1
XATTR_REPLACE = 2
PENDING_LIMIT = 16 << 10  # bytes of queued records before they go out as a metadata unit
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02
FALLOC_FL_LINUX_MODES = 0x7F  # every mode bit Linux knows; the others it refuses before asking the file system
MKNOD_TYPES = (stat.S_IFREG, stat.S_IFIFO, stat.S_IFCHR, stat.S_IFBLK, stat.S_IFSOCK)


SMALL_WRITE = 16  # blocks; larger writes bypass the write buffer
RELATIME_AGE = 24 * 3600 * 10**9
CLOCK_REALTIME_COARSE = 5  # Linux's clock id; Python's time module does not name it


def _now() -> int:
    """Timestamps as Linux takes them for inodes: the coarse (per-tick) real-time clock."""
    return time.clock_gettime_ns(CLOCK_REALTIME_COARSE)


TIME_MAX_S = (1 << 63) // 10**9  # whole seconds of a signed 64-bit nanosecond timestamp, either way


def _clamp_time(ns: int | None) -> int | None:
    """A timestamp the inode can hold: out of range, the nearest whole second that fits, as
    Linux's timestamp_truncate does with a file system's time limits."""
    if ns is None or -TIME_MAX_S * 10**9 <= ns <= TIME_MAX_S * 10**9:
        return ns
    return TIME_MAX_S * 10**9 if ns > 0 else -TIME_MAX_S * 10**9


def _settled(method):
    """Run an operation after the write buffer has gone out, so it sees every earlier write's
    size and times and is logged after them."""
    @functools.wraps(method)
    def run(self, *args, **kwargs):
        with self._lock:
            if self._dirty:
                self._flush_dirty()
            return method(self, *args, **kwargs)
    return run


class FileSystem(TreeReader):
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
        self._dirty_hot = False
        self._dirty_cold = False
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
        if self._dirty:
            self._flush_dirty()
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

    @_settled
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

    @_settled
    def mkdir(self, dir_ino: int, name: str | bytes, mode: int = 0o755, uid: int = 0, gid: int = 0) -> int:
        with self._lock:
            d, name = self._prepare_new(dir_ino, name)
            if d.nlink >= LINK_MAX:
                raise TooManyLinks(f"directory {dir_ino} has {d.nlink} links", name)
            rec = self._new_inode(stat.S_IFDIR | (mode & 0o7777), uid, gid, 2, self.block_size)
            self._log(rec, records.Dentry(d.ino, name, rec.ino),
                      d.record(nlink=d.nlink + 1, mtime_ns=rec.ctime_ns, ctime_ns=rec.ctime_ns))
            return rec.ino

    @_settled
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

    @_settled
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

    @_settled
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

    @_settled
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

    @_settled
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

    @_settled
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

    def write(self, ino: int, offset: int, data, cold: bool = False) -> int:
        """Write ``data`` at ``offset``; returns the bytes written (short only when space ran out).

        ``cold`` places the blocks with data not expected to change (posix_fadvise NOREUSE).
        """
        with self._lock:
            node = self._file(ino)
            data = memoryview(data).cast("B")
            size = data.nbytes
            if offset < 0:
                raise Invalid(f"negative offset {offset}")
            if not size:
                return 0
            end = offset + size
            if end > MAX_FILE_SIZE:
                raise TooBig(f"write to {end} bytes exceeds the maximum file size {MAX_FILE_SIZE}")
            bs = self.block_size
            first, last = offset // bs, -(-end // bs)
            if last - first <= SMALL_WRITE:
                if self._dirty_blocks + last - first > self.buffer_limit:
                    self._flush_dirty()
                # once filling, free space for a whole buffer was there when it started
                if self._dirty or self.statfs().f_bfree >= 2 * self.buffer_limit:
                    self._buffer(node, offset, data, cold)
                    return size
            if self._dirty:
                self._flush_dirty()
            if offset > node.size and first > node.size // bs:
                self._zero_tail(node)
            if offset % bs or end % bs:  # partial blocks: read, patch, rewrite whole
                buf = bytearray((last - first) * bs)
                if offset % bs:
                    self._read_block(node, first, memoryview(buf)[:bs])
                if end % bs and (last - 1 != first or not offset % bs):
                    self._read_block(node, last - 1, memoryview(buf)[-bs:])
                buf[offset - first * bs:end - first * bs] = data
            else:
                buf = data  # whole blocks go out as they are, one copy fewer
            overwrite = not cold and any(lba is not None for _, _, lba in node.extents.runs(first, last - first))
            stream = self.write_hints.get(ino) or (Stream.HOT if overwrite else Stream.COLD)
            done = self._write_blocks(node, first, buf, end, stream)
            self.user_blocks_written += done
            self._maybe_checkpoint()
            return size if done == last - first else max(0, (first + done) * bs - offset)

    def set_write_hint(self, ino: int, hint: int) -> None:
        """F_SET_RW_HINT: the expected lifetime of data written to ``ino`` from now on, as
        Linux's RWH_WRITE_LIFE_* (0 not set, 1 none, 2 short, 3 medium, 4 long, 5 extreme).
        Each lifetime's data goes to zones of its own; kept in memory, as Linux keeps it."""
        if not 0 <= hint <= 5:
            raise Invalid(f"write lifetime hint {hint} is not 0-5")
        with self._lock:
            self._node(ino)
            if hint < 2:
                self.write_hints.pop(ino, None)
            else:
                self.write_hints[ino] = LIFETIME_STREAMS[hint - 2]
                if len(self.write_hints) % 1024 == 0:  # now and then, forget removed files
                    self.write_hints = {i: h for i, h in self.write_hints.items() if i in self.ns.inodes}

    def write_hint(self, ino: int) -> int:
        """F_GET_RW_HINT: the hint ``set_write_hint`` gave ``ino`` (0 when none)."""
        stream = self.write_hints.get(ino)
        return 0 if stream is None else stream - Stream.SHORT + 2

    # -- the write buffer ------------------------------------------------------------------

    def append(self, ino: int, data, cold: bool = False) -> tuple[int, int]:
        """Write ``data`` at the end of the file, found and written in one step (O_APPEND);
        returns where it went and how many bytes were written."""
        with self._lock:
            at = self.getattr(ino).st_size
            return at, self.write(ino, at, data, cold)

    def _buffer(self, node: Inode, offset: int, data: memoryview, cold: bool) -> None:
        """Hold a small write in the buffer, patching partial blocks from what the file holds.

        A whole aligned block, the usual small write, is held as it is.
        """
        bs = self.block_size
        ino = node.ino
        attrs = self._dirty_attrs.get(ino)
        size = node.size if attrs is None else attrs[0]
        end = offset + data.nbytes
        first = offset // bs
        blocks = self._dirty.get(ino)
        if blocks is None:
            blocks = self._dirty[ino] = {}
        if offset > size and size % bs and first > size // bs:  # zeros between the old end and the write
            tail = size // bs
            self._hold_block(node, blocks, tail, bytes(self._block_now(node, blocks, tail, size)[:size % bs]).ljust(bs, b"\0"), cold)
        if end - offset == bs and offset == first * bs:
            held = data.obj if type(data.obj) is bytes and len(data.obj) == bs else data.tobytes()
            self._hold_block(node, blocks, first, held, cold)
            last = first + 1
        else:
            last = -(-end // bs)
            for b in range(first, last):
                lo, hi = max(offset, b * bs), min(end, (b + 1) * bs)
                if hi - lo == bs:
                    block = bytes(data[lo - offset:hi - offset])
                else:
                    patched = self._block_now(node, blocks, b, size)
                    patched[lo - b * bs:hi - b * bs] = data[lo - offset:hi - offset]
                    block = bytes(patched)
                self._hold_block(node, blocks, b, block, cold)
        self._dirty_attrs[ino] = (end if end > size else size, _now())
        self.user_blocks_written += last - first
        if self._dirty_blocks >= self.buffer_limit:
            self._flush_dirty()

    def _hold_block(self, node: Inode, blocks: dict, block: int, data: bytes, cold: bool) -> None:
        """Hold ``data`` as file block ``block``, noting whether it is new to the file (for
        st_blocks) and whether the buffer overwrites data (hot) or is cold."""
        if cold:
            self._dirty_cold = True
        if block not in blocks:
            self._dirty_blocks += 1
            if not node.extents.mapped(block):
                self._dirty_new[node.ino] = self._dirty_new.get(node.ino, 0) + 1
            elif not cold:
                self._dirty_hot = True
        blocks[block] = data

    def _block_now(self, node: Inode, blocks: dict, block: int, size: int) -> bytearray:
        """File block ``block`` as the file has it now, buffered or on the device."""
        held = blocks.get(block)
        if held is not None:
            return bytearray(held)
        out = bytearray(self.block_size)
        self._read_block(node, block, memoryview(out))
        return out

    def _flush_dirty(self) -> None:
        """Write the whole buffer as one log unit (after any queued records), in file order.

        The unit is atomic, so a crash keeps all of the buffered writes or
        none; on ENOSPC the buffer stays as it was.
        """
        if self._flushing:  # room() reclaiming space calls back into the file system
            return
        dirty, attrs = self._dirty, self._dirty_attrs
        recs: list = []
        chunks: list[bytes] = []
        for ino in sorted(dirty):
            node = self.ns.inodes[ino]
            blocks = dirty[ino]
            run_start = prev = None
            for b in sorted(blocks):
                if prev is None or b != prev + 1:
                    if prev is not None:
                        recs.append(records.Data(ino, run_start, prev + 1 - run_start))
                    run_start = b
                prev = b
                chunks.append(blocks[b])
            if prev is not None:
                recs.append(records.Data(ino, run_start, prev + 1 - run_start))
            size, mtime = attrs[ino]
            recs.append(node.record(size=max(size, node.size), mtime_ns=mtime, ctime_ns=mtime))
        stream = Stream.HOT if self._dirty_hot and not self._dirty_cold else Stream.COLD
        hinted = {self.write_hints.get(ino) for ino in dirty}
        if len(hinted) == 1 and None not in hinted:  # all of one declared lifetime: its zones
            stream = hinted.pop()
        encoded = b"".join(records.encode(rec) for rec in recs)
        total = len(chunks)
        self._flushing = True
        try:
            self.writer.room(stream, self._pending_len + len(encoded), total, least=total)
        finally:
            self._flushing = False
        lba = self.writer.append(stream, self._take_pending() + encoded, b"".join(chunks))
        self._dirty, self._dirty_attrs, self._dirty_new = {}, {}, {}
        self._dirty_blocks = 0
        self._dirty_hot = self._dirty_cold = False
        self.ns.apply_unit(recs, lba)
        self._maybe_checkpoint()

    def read(self, ino: int, offset: int, size: int) -> bytes:
        with self._lock:
            if ino in self._dirty:
                self._flush_dirty()
            node = self.ns.inodes.get(ino)
            if node is not None and node.extents is not None and offset >= 0 and size > 0:
                # one mapped run (the usual case): a single copy from the device
                end = min(offset + size, node.size)
                if offset >= end:
                    return b""
                bs = self.block_size
                first, last = offset // bs, (end - 1) // bs
                run = node.extents.extent_at(first)
                if run is not None and run[1] > last - first:
                    n = last - first + 1  # whole blocks, to check them against their checksums
                    lba = run[0]
                    data = self.device.read_bytes(lba, 0, n * bs)
                    tables, zone_size = self._sum_index
                    zone, at = divmod(lba, zone_size)  # BlockSums.ok, inlined: every small read comes here
                    table = tables[zone]
                    if table is None or _crc(data, table[at - 1]) != table[at + n - 1]:
                        raise damaged(self.sums, ino, first, lba, data, bs)
                    skip = offset - first * bs
                    return data if skip == 0 and end - offset == n * bs else data[skip:end - first * bs]
        return super().read(ino, offset, size)

    def getattr(self, ino: int) -> Stat:
        st = super().getattr(ino)
        held = self._dirty_attrs.get(ino)
        if held is None:
            return st
        size, mtime = held
        extra = self._dirty_new.get(ino, 0)
        return attrs_evolve(st, st_size=max(size, st.st_size), st_mtime_ns=mtime, st_ctime_ns=mtime,
                            st_blocks=st.st_blocks + extra * (self.block_size // 512))

    def seek_data(self, ino: int, offset: int) -> int:
        with self._lock:
            if ino in self._dirty:
                self._flush_dirty()
            return super().seek_data(ino, offset)

    def seek_hole(self, ino: int, offset: int) -> int:
        with self._lock:
            if ino in self._dirty:
                self._flush_dirty()
            return super().seek_hole(ino, offset)

    def touch_atime(self, ino: int) -> None:
        """Record a read access as Linux's relatime does: only when the access time is not after
        the last change, or is a day old, so that reads rarely write."""
        node = self.ns.inodes.get(ino)
        if node is not None and ino not in self._dirty_attrs and node.atime_ns > node.mtime_ns \
                and node.atime_ns > node.ctime_ns and _now() - node.atime_ns < RELATIME_AGE:
            return  # the common case, decided without the lock
        self._touch_atime(ino)

    @_settled
    def _touch_atime(self, ino: int) -> None:
        node = self._node(ino)
        now = _now()
        if node.atime_ns <= node.mtime_ns or node.atime_ns <= node.ctime_ns or now - node.atime_ns >= RELATIME_AGE:
            self._log(node.record(atime_ns=now))

    def _read_block(self, node: Inode, block: int, out: memoryview) -> None:
        """Fill ``out`` with file block ``block`` as the file has it (zeros past the end of file)."""
        lba = node.extents.lookup(block)
        if lba is None:
            return
        self.device.read_into(lba, out)
        if not self.sums.ok(lba, out):
            raise damaged(self.sums, node.ino, block, lba, out, self.block_size)
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

    def _write_blocks(self, node: Inode, first: int, buf, end: int, stream: Stream) -> int:
        """Log whole blocks from file block ``first``; the file grows to ``end`` bytes as they land.

        One unit if they fit, else several, all but the last flagged
        CONTINUED so that roll-forward applies them together or not at all:
        the write is atomic across a crash. No checkpoint or GC runs in
        between (it would save the write half done), so when the write needs
        more zones than are free, GC runs first. If space runs out part way,
        a metadata unit closes the group and the write is short. Returns the
        blocks written; raises ENOSPC only if none could be.
        """
        bs = self.block_size
        total = len(buf) // bs
        view = memoryview(buf)
        sample = records.encode(records.Data(node.ino, first, 1)) + records.encode(node.record())
        w = self.writer
        if total > 1:
            self._make_room(stream, total)
        done = 0
        try:
            while done < total:
                self._grouping = done > 0  # before the first unit, reclaiming is still safe
                try:
                    count = w.room(stream, self._pending_len + len(sample), total - done)
                except NoSpace:
                    if done:
                        self._close_group(node)
                        return done
                    raise
                now = _now()
                block = first + done
                size = max(node.size, min(end, (block + count) * bs))
                data_rec = records.Data(node.ino, block, count)
                inode_rec = node.record(size=size, mtime_ns=now, ctime_ns=now)
                recs = self._take_pending() + records.encode(data_rec) + records.encode(inode_rec)
                lba = w.append(stream, recs, view[done * bs:(done + count) * bs], continued=done + count < total)
                self.ns.apply(data_rec, lba)
                self.ns.apply(inode_rec)
                done += count
        finally:
            self._grouping = False
        return done

    def _available(self, stream: Stream) -> int:
        """Blocks ``stream`` can append before data would dip into the reserve."""
        w = self.writer
        head = w.heads.get(w.route[stream])
        left = w.room_left(head) if head is not None else 0
        return left + max(0, len(w.free_zones()) - w.reserve) * self.device.geometry.zone_capacity

    def _make_room(self, stream: Stream, blocks: int) -> None:
        """Before a write of several units: checkpoint and collect garbage until ``blocks`` of data
        (and a header block per unit) fit, or nothing more can be freed."""
        cap = self.device.geometry.zone_capacity
        need = blocks + 2 * (-(-blocks // MAX_UNIT_DATA_BLOCKS) + -(-blocks // cap) + 1)
        if self._reclaiming or self._available(stream) >= need:
            return
        self._reclaiming = True
        try:
            self.checkpoint()
            failed: set[int] = set()
            for _ in range(2 * len(self.writer.log_zones)):  # bounded: each pass frees a zone or fails one
                if self._available(stream) >= need or self._collect_one(None, failed) is None:
                    break
        finally:
            self._reclaiming = False

    def _close_group(self, node: Inode) -> None:
        """End a CONTINUED group cut short by ENOSPC with a metadata unit, so the blocks logged stay."""
        encoded = records.encode(node.record())
        self.writer.room(Stream.META, len(encoded), 0)
        self.writer.append(Stream.META, encoded)

    @_settled
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

    @_settled
    def fallocate(self, ino: int, offset: int, length: int, mode: int = 0) -> None:
        """fallocate(2): allocate (mode 0 or FALLOC_FL_KEEP_SIZE) or punch a hole.

        Allocating checks that the range's unmapped blocks fit in the free
        space (ENOSPC otherwise) and, without KEEP_SIZE, grows the file to
        ``offset + length`` as truncate would. FALLOC_FL_PUNCH_HOLE must come
        with FALLOC_FL_KEEP_SIZE; other modes are EOPNOTSUPP.
        """
        with self._lock:
            if offset < 0 or length <= 0:
                raise Invalid(f"fallocate of {length} bytes at offset {offset}")
            punch = mode & FALLOC_FL_PUNCH_HOLE
            if mode & ~FALLOC_FL_LINUX_MODES or punch and not mode & FALLOC_FL_KEEP_SIZE:
                raise NotSupported(f"fallocate mode {mode:#x}")
            node = self._node(ino)
            if stat.S_ISFIFO(node.mode):
                raise IllegalSeek(f"fallocate on FIFO inode {ino}")
            if node.is_dir:
                raise IsADirectory(f"inode {ino} is a directory")
            if not node.is_reg:
                raise NoSuchDevice(f"fallocate on inode {ino}, which is not a regular file")
            end = offset + length
            if end > MAX_FILE_SIZE:
                raise TooBig(f"fallocate to {end} bytes exceeds the maximum file size {MAX_FILE_SIZE}")
            if mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE):
                raise NotSupported(f"fallocate mode {mode:#x} (only allocation and hole punching)")
            if punch:
                self._punch(node, offset, end)
            else:
                self._allocate(node, offset, end, keep_size=bool(mode & FALLOC_FL_KEEP_SIZE))

    def _allocate(self, node: Inode, offset: int, end: int, keep_size: bool) -> None:
        """Check that the unmapped blocks of the range fit in the free space; grow the size unless kept."""
        bs = self.block_size
        first = offset // bs
        missing = sum(count for _, count, lba in node.extents.runs(first, -(-end // bs) - first) if lba is None)
        free = self.statfs().f_bfree
        if missing > free:
            raise NoSpace(f"fallocate needs {missing} blocks, {free} are free")
        now = _now()
        if keep_size or end <= node.size:
            self._log(node.record(ctime_ns=now))
            return
        self._zero_tail(node)
        self._log(node.record(size=end, mtime_ns=now, ctime_ns=now))

    def _punch(self, node: Inode, offset: int, end: int) -> None:
        """Unmap the whole blocks of the range and zero its partial edge blocks, in one log unit."""
        end = min(end, node.size)
        if offset >= end:
            return  # past the end of file: nothing to punch (as on ext4)
        bs = self.block_size
        lo = -(-offset // bs)
        hi = -(-end // bs) if end == node.size else end // bs  # the last block reads zeros past the size
        recs: list = []
        edges: list[tuple[int, bytearray]] = []
        for block in sorted({offset // bs, (end - 1) // bs}):
            if lo <= block < hi or node.extents.lookup(block) is None:
                continue  # unmapped whole, or a hole already
            buf = bytearray(bs)
            self._read_block(node, block, memoryview(buf))
            start, stop = max(offset - block * bs, 0), min(end - block * bs, bs)
            buf[start:stop] = bytes(stop - start)
            edges.append((block, buf))
            recs.append(records.Data(node.ino, block, 1))
        if hi > lo and any(lba is not None for _, _, lba in node.extents.runs(lo, hi - lo)):
            recs.append(records.Punch(node.ino, lo, hi - lo))
        now = _now()
        recs.append(node.record(mtime_ns=now, ctime_ns=now))
        if not edges:
            self._log(*recs)
            return
        encoded = b"".join(records.encode(rec) for rec in recs)
        self.writer.room(Stream.HOT, self._pending_len + len(encoded), len(edges), least=len(edges))
        lba = self.writer.append(Stream.HOT, self._take_pending() + encoded, b"".join(buf for _, buf in edges))
        self.ns.apply_unit(recs, lba)
        self.user_blocks_written += len(edges)
        self._maybe_checkpoint()

    # -- attributes ---------------------------------------------------------------------------

    @_settled
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
            self._log(node.record(**changes))
            return self.getattr(ino)

    @_settled
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

    @_settled
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
