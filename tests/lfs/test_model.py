"""The file system against an in-memory model, under random operation sequences.

After every step the whole tree (names, types, link counts, sizes, contents,
symlink targets, device numbers, extended attributes) must equal the
model's. Remounts come in two kinds: clean (unmount, mount) and after a crash
that follows a sync (mount without unmount), both of which must lose nothing.
Snapshots keep a copy of the model taken with them; reading one compares the
snapshot's whole tree with that copy. With snapshots holding old blocks the
small device can fill up: ENOSPC is then an allowed answer (and must change
nothing), never otherwise.
"""

import copy
import errno
import stat

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from zcsdfs.lfs import fsck, mkfs, mount
from zcsdfs.lfs.filesystem import FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, RENAME_EXCHANGE, RENAME_NOREPLACE
from zcsdfs.zns import Geometry, ZonedDevice

NAMES = st.sampled_from(["a", "b", "c", "d"])
SNAPSHOTS = st.sampled_from(["s1", "s2"])
DEVICES = st.sampled_from([(stat.S_IFIFO, 0), (stat.S_IFSOCK, 0), (stat.S_IFCHR, 0x0103), (stat.S_IFBLK, 0x0801)])
GEOMETRY = Geometry(zones=12, zone_size=40, zone_capacity=32, max_open=3, max_active=5)


class Node:
    def __init__(self, kind, target="", mode=0, rdev=0):
        self.kind = kind  # "file", "dir", "link", "special" (FIFO, socket, device)
        self.data = bytearray()
        self.target = target
        self.entries = {}
        self.xattrs = {}
        self.nlink = 2 if kind == "dir" else 1
        self.mode = mode  # the file type of a special node
        self.rdev = rdev


class FileSystemMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.device = ZonedDevice.memory(GEOMETRY)
        mkfs(self.device)
        self.fs = mount(self.device)
        self.nodes = {self.fs.ROOT: Node("dir")}
        self.dirs = [self.fs.ROOT]
        self.snapshots = {}  # name -> the model's nodes when it was taken

    # -- helpers ------------------------------------------------------------------------------

    def pick_dir(self, i):
        return self.dirs[i % len(self.dirs)]

    def entry(self, d, name):
        return self.nodes[d].entries.get(name)

    def files(self):
        return sorted(ino for ino, n in self.nodes.items() if n.kind == "file")

    def expect_errno(self, code, fn, *args):
        try:
            fn(*args)
        except OSError as e:
            assert e.errno == code, (fn.__name__, e)
        else:
            raise AssertionError(f"{fn.__name__}{args} did not fail with {errno.errorcode[code]}")

    def drop(self, ino):
        node = self.nodes[ino]
        node.nlink -= 1
        if node.nlink == 0:
            del self.nodes[ino]

    def full(self, error):
        """Whether an error is the ENOSPC snapshots may cause (their blocks are not the model's)."""
        return error.errno == errno.ENOSPC and bool(self.snapshots)

    # -- rules --------------------------------------------------------------------------------

    @rule(d=st.integers(0, 10), name=NAMES)
    def create(self, d, name):
        d = self.pick_dir(d)
        if self.entry(d, name) is not None:
            self.expect_errno(errno.EEXIST, self.fs.create, d, name)
            return
        ino = self.fs.create(d, name)
        self.nodes[ino] = Node("file")
        self.nodes[d].entries[name] = ino

    @rule(d=st.integers(0, 10), name=NAMES)
    def mkdir(self, d, name):
        d = self.pick_dir(d)
        if self.entry(d, name) is not None:
            self.expect_errno(errno.EEXIST, self.fs.mkdir, d, name)
            return
        ino = self.fs.mkdir(d, name)
        self.nodes[ino] = Node("dir")
        self.nodes[d].entries[name] = ino
        self.nodes[d].nlink += 1
        self.dirs.append(ino)

    @rule(d=st.integers(0, 10), name=NAMES, link_to=st.text("xyz/.", min_size=1, max_size=8))
    def symlink(self, d, name, link_to):
        d = self.pick_dir(d)
        if self.entry(d, name) is None:
            ino = self.fs.symlink(d, name, link_to)
            self.nodes[ino] = Node("link", link_to)
            self.nodes[d].entries[name] = ino

    @precondition(lambda self: self.files())
    @rule(i=st.integers(0, 100), offset=st.integers(0, 20000), size=st.integers(1, 9000),
          byte=st.integers(0, 255))
    def write(self, i, offset, size, byte):
        ino = self.files()[i % len(self.files())]
        data = self.nodes[ino].data
        try:
            written = self.fs.write(ino, offset, bytes([byte]) * size)
        except OSError as e:
            if not self.full(e):
                raise
            return
        assert written == size or self.snapshots and written < size
        if written and offset > len(data):
            data.extend(bytes(offset - len(data)))
        data[offset:offset + written] = bytes([byte]) * written

    @precondition(lambda self: self.files())
    @rule(i=st.integers(0, 100), size=st.integers(0, 25000))
    def truncate(self, i, size):
        ino = self.files()[i % len(self.files())]
        data = self.nodes[ino].data
        try:
            self.fs.truncate(ino, size)
        except OSError as e:
            if not self.full(e):
                raise
            return
        if size < len(data):
            del data[size:]
        else:
            data.extend(bytes(size - len(data)))

    @precondition(lambda self: self.files())
    @rule(i=st.integers(0, 100), d=st.integers(0, 10), name=NAMES)
    def link(self, i, d, name):
        ino = self.files()[i % len(self.files())]
        d = self.pick_dir(d)
        if self.entry(d, name) is not None:
            self.expect_errno(errno.EEXIST, self.fs.link, ino, d, name)
            return
        self.fs.link(ino, d, name)
        self.nodes[d].entries[name] = ino
        self.nodes[ino].nlink += 1

    @rule(d=st.integers(0, 10), name=NAMES)
    def unlink(self, d, name):
        d = self.pick_dir(d)
        ino = self.entry(d, name)
        if ino is None:
            self.expect_errno(errno.ENOENT, self.fs.unlink, d, name)
        elif self.nodes[ino].kind == "dir":
            self.expect_errno(errno.EISDIR, self.fs.unlink, d, name)
        else:
            self.fs.unlink(d, name)
            del self.nodes[d].entries[name]
            self.drop(ino)

    @rule(d=st.integers(0, 10), name=NAMES)
    def rmdir(self, d, name):
        d = self.pick_dir(d)
        ino = self.entry(d, name)
        if ino is None:
            self.expect_errno(errno.ENOENT, self.fs.rmdir, d, name)
        elif self.nodes[ino].kind != "dir":
            self.expect_errno(errno.ENOTDIR, self.fs.rmdir, d, name)
        elif self.nodes[ino].entries:
            self.expect_errno(errno.ENOTEMPTY, self.fs.rmdir, d, name)
        else:
            self.fs.rmdir(d, name)
            del self.nodes[d].entries[name]
            self.nodes[d].nlink -= 1
            del self.nodes[ino]
            self.dirs.remove(ino)

    def inside(self, d, ancestor):
        """Whether directory ``d`` is ``ancestor`` or below it."""
        while True:
            if d == ancestor:
                return True
            if d == self.fs.ROOT:
                return False
            d = next(p for p in self.dirs if d in self.nodes[p].entries.values())

    @rule(od=st.integers(0, 10), oname=NAMES, nd=st.integers(0, 10), nname=NAMES)
    def rename(self, od, oname, nd, nname):
        self.move(self.pick_dir(od), oname, self.pick_dir(nd), nname)

    def move(self, od, oname, nd, nname, flags=0):
        """A rename that replaces, or (with RENAME_NOREPLACE) one whose target does not exist."""
        src = self.entry(od, oname)
        dst = self.entry(nd, nname)
        if src is None:
            self.expect_errno(errno.ENOENT, self.fs.rename, od, oname, nd, nname, flags)
            return
        s, t = self.nodes[src], self.nodes.get(dst)
        if src == dst:
            self.fs.rename(od, oname, nd, nname, flags)
            return
        if s.kind == "dir" and self.inside(nd, src):
            self.expect_errno(errno.EINVAL, self.fs.rename, od, oname, nd, nname, flags)
            return
        if t is not None and t.kind == "dir" and self.inside(od, dst):  # the target holds the source
            self.expect_errno(errno.ENOTEMPTY, self.fs.rename, od, oname, nd, nname, flags)
            return
        if t is not None:
            if s.kind == "dir" and t.kind != "dir":
                return self.expect_errno(errno.ENOTDIR, self.fs.rename, od, oname, nd, nname, flags)
            if s.kind != "dir" and t.kind == "dir":
                return self.expect_errno(errno.EISDIR, self.fs.rename, od, oname, nd, nname, flags)
            if t.kind == "dir" and t.entries:
                return self.expect_errno(errno.ENOTEMPTY, self.fs.rename, od, oname, nd, nname, flags)
        self.fs.rename(od, oname, nd, nname, flags)
        del self.nodes[od].entries[oname]
        self.nodes[nd].entries[nname] = src
        if t is not None:
            if t.kind == "dir":
                del self.nodes[dst]
                self.dirs.remove(dst)
                self.nodes[nd].nlink -= 1
            else:
                self.drop(dst)
        if s.kind == "dir":
            self.nodes[od].nlink -= 1
            self.nodes[nd].nlink += 1

    @rule(d=st.integers(0, 10), name=NAMES, kind=DEVICES)
    def mknod(self, d, name, kind):
        d = self.pick_dir(d)
        mode, rdev = kind
        if self.entry(d, name) is not None:
            self.expect_errno(errno.EEXIST, self.fs.mknod, d, name, mode | 0o644, rdev)
            return
        ino = self.fs.mknod(d, name, mode | 0o644, rdev)
        self.nodes[ino] = Node("special", mode=mode, rdev=rdev)
        self.nodes[d].entries[name] = ino

    @rule(od=st.integers(0, 10), oname=NAMES, nd=st.integers(0, 10), nname=NAMES)
    def rename_noreplace(self, od, oname, nd, nname):
        od, nd = self.pick_dir(od), self.pick_dir(nd)
        if self.entry(od, oname) is None:
            self.expect_errno(errno.ENOENT, self.fs.rename, od, oname, nd, nname, RENAME_NOREPLACE)
        elif self.entry(nd, nname) is not None:
            self.expect_errno(errno.EEXIST, self.fs.rename, od, oname, nd, nname, RENAME_NOREPLACE)
        else:
            self.move(od, oname, nd, nname, RENAME_NOREPLACE)

    @rule(od=st.integers(0, 10), oname=NAMES, nd=st.integers(0, 10), nname=NAMES)
    def rename_exchange(self, od, oname, nd, nname):
        od, nd = self.pick_dir(od), self.pick_dir(nd)
        src, dst = self.entry(od, oname), self.entry(nd, nname)
        if src is None or dst is None:
            self.expect_errno(errno.ENOENT, self.fs.rename, od, oname, nd, nname, RENAME_EXCHANGE)
            return
        s, t = self.nodes[src], self.nodes[dst]
        if src != dst and (s.kind == "dir" and self.inside(nd, src) or t.kind == "dir" and self.inside(od, dst)):
            self.expect_errno(errno.EINVAL, self.fs.rename, od, oname, nd, nname, RENAME_EXCHANGE)
            return
        self.fs.rename(od, oname, nd, nname, RENAME_EXCHANGE)
        self.nodes[od].entries[oname], self.nodes[nd].entries[nname] = dst, src
        moving = (s.kind == "dir") - (t.kind == "dir")
        self.nodes[od].nlink -= moving
        self.nodes[nd].nlink += moving

    @precondition(lambda self: self.files())
    @rule(i=st.integers(0, 100), offset=st.integers(0, 25000), length=st.integers(1, 12000), keep=st.booleans())
    def fallocate(self, i, offset, length, keep):
        ino = self.files()[i % len(self.files())]
        data = self.nodes[ino].data
        try:
            self.fs.fallocate(ino, offset, length, FALLOC_FL_KEEP_SIZE if keep else 0)
        except OSError as e:
            if not self.full(e):
                raise
            return
        if not keep and offset + length > len(data):
            data.extend(bytes(offset + length - len(data)))

    @precondition(lambda self: self.files())
    @rule(i=st.integers(0, 100), offset=st.integers(0, 25000), length=st.integers(1, 12000))
    def punch_hole(self, i, offset, length):
        ino = self.files()[i % len(self.files())]
        data = self.nodes[ino].data
        try:
            self.fs.fallocate(ino, offset, length, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)
        except OSError as e:
            if not self.full(e):
                raise
            return
        end = min(offset + length, len(data))
        if offset < end:
            data[offset:end] = bytes(end - offset)

    @rule(name=SNAPSHOTS)
    def create_snapshot(self, name):
        if name in self.snapshots:
            self.expect_errno(errno.EEXIST, self.fs.create_snapshot, name)
            return
        self.fs.create_snapshot(name)
        self.snapshots[name] = copy.deepcopy(self.nodes)

    @rule(name=SNAPSHOTS)
    def delete_snapshot(self, name):
        if name not in self.snapshots:
            self.expect_errno(errno.ENOENT, self.fs.delete_snapshot, name)
            return
        self.fs.delete_snapshot(name)
        del self.snapshots[name]

    @precondition(lambda self: self.snapshots)
    @rule(name=SNAPSHOTS)
    def read_snapshot(self, name):
        if name in self.snapshots:
            self.compare(self.fs.snapshot(name), self.snapshots[name])

    @rule(i=st.integers(0, 100), name=st.sampled_from(["user.a", "trusted.b", "security.c"]),
          value=st.binary(max_size=20), remove=st.booleans())
    def xattr(self, i, name, value, remove):
        inos = sorted(self.nodes)
        ino = inos[i % len(inos)]
        xattrs = self.nodes[ino].xattrs
        if remove:
            if name in xattrs:
                self.fs.removexattr(ino, name)
                del xattrs[name]
            else:
                self.expect_errno(errno.ENODATA, self.fs.removexattr, ino, name)
        else:
            self.fs.setxattr(ino, name, value)
            xattrs[name] = value

    @rule(i=st.integers(0, 100))
    def fsync(self, i):
        inos = sorted(self.nodes)
        self.fs.fsync(inos[i % len(inos)])

    @rule(zones=st.integers(1, 3), policy=st.sampled_from(["greedy", "cost-benefit"]))
    def gc(self, zones, policy):
        """Background GC: moves blocks of live files and snapshots, and must change nothing visible."""
        self.fs.gc(zones, policy)

    @rule()
    def remount(self):
        self.fs.unmount()
        assert fsck(self.device).clean
        self.fs = mount(self.device)
        assert self.fs.recovery.replayed == 0

    @rule()
    def crash_after_sync(self):
        self.fs.sync()
        report = fsck(self.device)
        assert report.clean, report.errors
        self.fs = mount(self.device)

    # -- the check -----------------------------------------------------------------------------

    @invariant()
    def matches_model(self):
        self.compare(self.fs, self.nodes)
        assert not any(self.fs.viewed)  # every read dropped its pins

    def compare(self, tree, nodes):
        """The live file system or a snapshot against the model's nodes."""
        assert len(tree.ns.inodes) == len(nodes)
        for ino, node in nodes.items():
            st_ = tree.getattr(ino)
            assert st_.st_nlink == node.nlink, ino
            assert dict((n, tree.getxattr(ino, n)) for n in tree.listxattr(ino)) == node.xattrs
            if node.kind == "file":
                assert stat.S_ISREG(st_.st_mode)
                assert st_.st_size == len(node.data)
                assert tree.read(ino, 0, len(node.data) + 10) == bytes(node.data)
            elif node.kind == "link":
                assert tree.readlink(ino) == node.target
            elif node.kind == "special":
                assert (stat.S_IFMT(st_.st_mode), st_.st_rdev) == (node.mode, node.rdev)
            else:
                assert {e.name: e.ino for e in tree.readdir(ino)} == node.entries


TestFileSystem = FileSystemMachine.TestCase
TestFileSystem.settings = settings(max_examples=60, stateful_step_count=40, deadline=None,
                                   suppress_health_check=[HealthCheck.too_slow])
