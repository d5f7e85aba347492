"""Reading a tree of inodes: the operations a live file system and a snapshot share.

A ``TreeReader`` answers lookups, attributes, directory listings, symbolic
links, extended attributes and data reads from a namespace and the device
under it. ``FileSystem`` adds the operations that change things; a
``Snapshot`` adds nothing, which is what makes it read-only.
"""

from __future__ import annotations

import stat

from zcsdfs.lfs.attributes import DirEntry, Stat
from zcsdfs.lfs.directory import as_name
from zcsdfs.lfs.errors import Invalid, IsADirectory, NoData, NotADirectory, NotFound, NotSupported, OutOfRange
from zcsdfs.lfs.inode import Inode

XATTR_NAME_MAX = 255
XATTR_NAMESPACES = ("user.", "trusted.", "security.")


class TreeReader:
    """Read-only operations over ``self.ns`` (a namespace) and ``self.device``, under ``self._lock``.

    Subclasses provide ``_check_usable()``, which raises once the tree can no
    longer be read (the file system unmounted, the snapshot deleted).
    """

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
        if node.is_dir:
            raise IsADirectory(f"inode {ino} is a directory")
        if not node.is_reg:
            raise Invalid(f"inode {ino} is not a regular file")
        return node

    def lookup(self, dir_ino: int, name: str | bytes) -> int:
        """The inode ``name`` names in directory ``dir_ino`` ("." and ".." included)."""
        with self._lock:
            d = self._dir(dir_ino)
            name = as_name(name)
            if name == ".":
                return d.ino
            if name == "..":
                return d.parent
            try:
                return d.entries[name]
            except KeyError:
                raise NotFound(f"no entry {name!r} in directory {dir_ino}", name) from None

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

    def getattr(self, ino: int) -> Stat:
        with self._lock:
            n = self._node(ino)
            blocks = n.extents.blocks * (self.block_size // 512) if n.is_reg else 0
            return Stat(n.ino, n.mode, n.nlink, n.uid, n.gid, n.size, blocks, self.block_size,
                        n.atime_ns, n.mtime_ns, n.ctime_ns)

    # -- data

    def read(self, ino: int, offset: int, size: int) -> bytes:
        """Up to ``size`` bytes from ``offset``; holes read as zeros; short at end of file."""
        with self._lock:
            node = self._file(ino)
            if offset < 0 or size < 0:
                raise Invalid(f"negative offset or size ({offset}, {size})")
            return read_extents(self.device, node.extents, node.size, offset, size)

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


def read_extents(device, extents, file_size: int, offset: int, size: int) -> bytes:
    """Up to ``size`` bytes at ``offset`` of a file mapped by ``extents``; holes read as zeros."""
    end = min(offset + size, file_size)
    if offset >= end:
        return b""
    bs = device.block_size
    first, last = offset // bs, -(-end // bs)
    buf = bytearray((last - first) * bs)
    view = memoryview(buf)
    for block, count, lba in extents.runs(first, last - first):
        if lba is not None:
            at = (block - first) * bs
            device.read_into(lba, view[at:at + count * bs])
    return bytes(view[offset - first * bs:end - first * bs])
