"""Node ids: the handles the kernel holds for inodes, with its lookup counts.

Every reply that hands the kernel a node (LOOKUP, CREATE, MKNOD, MKDIR,
SYMLINK, LINK, each READDIRPLUS entry) counts one lookup; FORGET gives back
as many as it says, and a node whose count reaches zero is dropped. Ids are
numbers we allocate, never reused, so a stale id from the kernel can never
name a different inode; the root is always 1 and never forgotten.
"""

from __future__ import annotations

import errno
import threading

from zcsdfs.fuse.protocol import ROOT_ID


class StaleNode(OSError):
    def __init__(self, nodeid: int):
        super().__init__(errno.ESTALE, f"node id {nodeid} is not known (forgotten or never given)")


class NodeTable:
    def __init__(self, root_ino: int):
        self._lock = threading.Lock()
        self._ino: dict[int, int] = {ROOT_ID: root_ino}       # node id -> inode
        self._node: dict[int, int] = {root_ino: ROOT_ID}      # inode -> node id
        self._lookups: dict[int, int] = {}                    # node id -> count (root: not counted)
        self._next = ROOT_ID + 1

    def ino(self, nodeid: int) -> int:
        """The inode behind ``nodeid``; ESTALE for ids the kernel should no longer hold."""
        try:
            return self._ino[nodeid]
        except KeyError:
            raise StaleNode(nodeid) from None

    def remember(self, ino: int) -> int:
        """The node id for ``ino``, counting one more lookup by the kernel."""
        with self._lock:
            nodeid = self._node.get(ino)
            if nodeid is None:
                nodeid = self._next
                self._next += 1
                self._ino[nodeid] = ino
                self._node[ino] = nodeid
            if nodeid != ROOT_ID:
                self._lookups[nodeid] = self._lookups.get(nodeid, 0) + 1
            return nodeid

    def forget(self, nodeid: int, nlookup: int) -> None:
        """The kernel dropped ``nlookup`` references; unknown ids are ignored (FORGET has no reply)."""
        with self._lock:
            count = self._lookups.get(nodeid)
            if count is None:
                return
            if count > nlookup:
                self._lookups[nodeid] = count - nlookup
                return
            del self._lookups[nodeid]
            del self._node[self._ino.pop(nodeid)]

    def lookups(self, nodeid: int) -> int:
        """How many lookups the kernel holds on ``nodeid`` (0 when unknown)."""
        return self._lookups.get(nodeid, 0)

    def __len__(self) -> int:
        return len(self._ino)
