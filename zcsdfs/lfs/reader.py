"""Reading a tree of inodes: the operations a live file system and a snapshot share.

A ``TreeReader`` answers lookups, attributes, directory listings, symbolic
links, extended attributes, data reads and SEEK_DATA/SEEK_HOLE from a
namespace and the device under it. ``FileSystem`` adds the operations that
change things; a ``Snapshot`` adds nothing, which is what makes it read-only.

Large reads copy from the device without holding the file system's lock,
so they do not hold up other readers or writers of other files. Under the
lock such a read takes the mapped runs of its range (a ``ReadPlan``) and
pins the zones they lie in, as a frozen view does: GC never relocates from a
pinned zone and a checkpoint never resets one, and the log never
overwrites, so the blocks stay what the plan says until the copy ends and
the pins are dropped. Small reads copy under the lock: pinning and
unpinning would cost more than the copy.
"""

from __future__ import annotations

import stat
import threading

import attrs

from zcsdfs.lfs.attributes import DirEntry, Stat
from zcsdfs.lfs.checksums import damaged
from zcsdfs.lfs.directory import as_name
from zcsdfs.lfs.errors import (
    Invalid,
    IsADirectory,
    NoData,
    NoSuchAddress,
    NotADirectory,
    NotFound,
    NotSupported,
    OutOfRange,
)
from zcsdfs.lfs.inode import Inode
from zcsdfs.lfs.namespace import ROOT_INO

XATTR_NAME_MAX = 255
XATTR_NAMESPACES = ("user.", "trusted.", "security.")
UNLOCKED_READ_BLOCKS = 16  # reads of more blocks than this copy outside the lock


CAPABILITY = "security.capability"  # file capabilities, which a write or chown removes


class TreeReader:
    """Read-only operations over ``self.ns`` (a namespace) and ``self.device``, under ``self._lock``.

    Subclasses provide ``_check_usable()``, which raises once the tree can no
    longer be read (the file system unmounted, the snapshot deleted),
    ``viewed``, the file system's ``ZonePins``, and ``sums``, its data
    checksums (``checksums.BlockSums``), which every block read is checked
    against.
    """

    ROOT = ROOT_INO

    def _node(self, ino: int) -> Inode:
        self._check_usable()
        try:
            return self.ns.inodes[ino]
        except KeyError:
            raise NotFound(f"no inode {ino}") from None

    def _dir(self, ino: int) -> Inode:
        node = self._node(ino)
        if not node.is_dir:
            raise NotADirectory(f"inode {ino} is not a directory")
        return node

    def _file(self, ino: int) -> Inode:
        node = self._node(ino)
        if node.is_reg:
            return node
        if node.is_dir:
            raise IsADirectory(f"inode {ino} is a directory")
        raise Invalid(f"inode {ino} is not a regular file")

    def lookup(self, dir_ino: int, name: str | bytes) -> int:
        """The inode ``name`` names in directory ``dir_ino`` ("." and ".." included)."""
        ino = self.find(dir_ino, name)
        if ino is None:
            raise NotFound(f"no entry {name!r} in directory {dir_ino}", name)
        return ino

    def find(self, dir_ino: int, name: str | bytes) -> int | None:
        """``lookup`` that answers None for a missing name: a path walk to a name about to be
        created expects the miss, and an exception would cost more than the look-up."""
        with self._lock:
            d = self._dir(dir_ino)
            name = as_name(name)
            if name == ".":
                return d.ino
            if name == "..":
                return d.parent
            return d.entries.get(name)

    def readdir(self, dir_ino: int) -> list[DirEntry]:
        """Entries of a directory, in creation order, without "." and ".."."""
        with self._lock:
            d = self._dir(dir_ino)
            inodes = self.ns.inodes
            return [DirEntry(name, ino, stat.S_IFMT(inodes[ino].mode)) for name, ino in d.entries.items()]

    def readlink(self, ino: int) -> str:
        with self._lock:
            node = self._node(ino)
            if not node.is_symlink:
                raise Invalid(f"inode {ino} is not a symbolic link")
            return node.target

    def privileged(self, ino: int) -> bool:
        """Whether the file carries privileges a write takes away (set-id bits or file
        capabilities): the write path asks this without building a Stat."""
        node = self._node(ino)
        return bool(node.mode & (stat.S_ISUID | stat.S_ISGID)) or CAPABILITY in node.xattrs

    def getattr(self, ino: int) -> Stat:
        with self._lock:
            n = self._node(ino)
            blocks = n.extents.blocks * (self.block_size // 512) if n.is_reg else 0
            return Stat(n.ino, n.mode, n.nlink, n.uid, n.gid, n.size, blocks, self.block_size,
                        n.atime_ns, n.mtime_ns, n.ctime_ns, st_rdev=n.rdev)

    # -- data

    def read(self, ino: int, offset: int, size: int) -> bytes:
        """Up to ``size`` bytes from ``offset``; holes read as zeros; short at end of file.

        A large read copies outside the lock, with the zones it reads pinned.
        """
        with self._lock:
            node = self._file(ino)
            if offset < 0 or size < 0:
                raise Invalid(f"negative offset or size ({offset}, {size})")
            plan = ReadPlan.of(node.extents, self.block_size, node.size, offset, size)
            if plan.blocks <= UNLOCKED_READ_BLOCKS:
                return plan.copy(self.device, self.sums, ino)
            self.viewed.change(plan.spans(), 1)
        try:
            return plan.copy(self.device, self.sums, ino)
        finally:
            self.viewed.change(plan.spans(), -1)

    def seek_data(self, ino: int, offset: int) -> int:
        """lseek's SEEK_DATA: the first offset at or after ``offset`` in a mapped block."""
        with self._lock:
            node = self._seekable(ino, offset)
            for block, _, lba in self._runs_from(node, offset):
                if lba is not None:
                    return max(offset, block * self.block_size)
            raise NoSuchAddress(f"no data at or after offset {offset} of inode {ino}")

    def seek_hole(self, ino: int, offset: int) -> int:
        """lseek's SEEK_HOLE: the first offset at or after ``offset`` in a hole (the end of file is one)."""
        with self._lock:
            node = self._seekable(ino, offset)
            for block, _, lba in self._runs_from(node, offset):
                if lba is None:
                    return max(offset, block * self.block_size)
            return node.size

    def _seekable(self, ino: int, offset: int) -> Inode:
        node = self._file(ino)
        if offset < 0 or offset >= node.size:
            raise NoSuchAddress(f"offset {offset} is outside inode {ino} of {node.size} bytes")
        return node

    def _runs_from(self, node: Inode, offset: int):
        """The file's runs (block, count, lba or None) from the block holding ``offset`` to the end of file."""
        bs = self.block_size
        first = offset // bs
        return node.extents.runs(first, -(-node.size // bs) - first)

    def _xattr_name(self, name: str | bytes) -> str:
        name = name if isinstance(name, str) else name.decode("utf-8", "surrogateescape")
        raw = name.encode("utf-8", "surrogateescape")
        if not raw or len(raw) > XATTR_NAME_MAX:
            raise OutOfRange(f"extended attribute name of {len(raw)} bytes", name)
        if not name.startswith(XATTR_NAMESPACES) or name in XATTR_NAMESPACES:
            raise NotSupported(f"extended attribute {name!r} is not in the user, trusted or security "
                               f"namespace", name)
        return name

    def getxattr(self, ino: int, name: str | bytes) -> bytes:
        with self._lock:
            node = self._node(ino)
            name = self._xattr_name(name)
            try:
                return node.xattrs[name]
            except KeyError:
                raise NoData(f"no extended attribute {name!r}", name) from None

    def listxattr(self, ino: int) -> list[str]:
        with self._lock:
            return list(self._node(ino).xattrs)


@attrs.frozen
class ReadPlan:
    """What reading ``offset`` to ``end`` of a file copies: its mapped runs, taken at one moment."""

    offset: int
    end: int
    first: int  # the file block holding ``offset``
    blocks: int  # file blocks from ``first`` the range touches
    runs: list  # (file block, count, lba) of every mapped run in the range

    @classmethod
    def of(cls, extents, block_size: int, file_size: int, offset: int, size: int) -> "ReadPlan":
        """The plan for up to ``size`` bytes at ``offset`` of a file mapped by ``extents``."""
        end = max(offset, min(offset + size, file_size))
        first, last = offset // block_size, -(-end // block_size)
        runs = [run for run in extents.runs(first, last - first) if run[2] is not None] if end > offset else []
        return cls(offset, end, first, max(last - first, 0), runs)

    def spans(self):
        """(lba, count) of every device range the plan reads."""
        return ((lba, count) for _, count, lba in self.runs)

    def copy(self, device, sums, ino: int) -> bytes:
        """Copy the range from ``device``, checking every block against ``sums``; holes read as zeros.

        A block failing its checksum fails the read with EIO (``DataCorrupted``), logged with the
        inode ``ino`` and the file offset.
        """
        if self.end <= self.offset:
            return b""
        bs = device.block_size
        buf = bytearray(self.blocks * bs)
        view = memoryview(buf)
        for block, count, lba in self.runs:
            at = (block - self.first) * bs
            run = view[at:at + count * bs]
            device.read_into(lba, run)
            if not sums.ok(lba, run):
                raise damaged(sums, ino, block, lba, run, bs)
        return bytes(view[self.offset - self.first * bs:self.end - self.first * bs])


class ZonePins(list):
    """Blocks pinned per zone by frozen views and reads in flight: GC and checkpoints leave such zones be.

    Pins are added under the file system's lock, so a zone GC or a
    checkpoint is working on never gains one behind its back; they are
    dropped under the pins' own lock only, so a read that has finished its
    copy need not wait for the file system's lock again.
    """

    def __init__(self, zones: int, zone_size: int):
        super().__init__([0] * zones)
        self._zone_size = zone_size
        self._lock = threading.Lock()

    def change(self, spans, sign: int) -> None:
        """Add ``sign`` per block to the zones the (lba, count) ``spans`` lie in."""
        zone_size = self._zone_size
        with self._lock:
            for lba, count in spans:
                while count:
                    zone = lba // zone_size
                    n = min(count, (zone + 1) * zone_size - lba)
                    self[zone] += sign * n
                    lba += n
                    count -= n
