"""The vfs: POSIX semantics over the lfs, for a caller, by path or by open file.

Every front end calls these methods with a ``Caller``: the os API with the
current process, the FUSE server with the request's ids. Paths are str
(``os.fsdecode`` of what the program passed) and relative ones start at the
inode ``start``; the lfs below knows nothing of paths or permissions.

Errors carry Linux's errno; the front end sets the file names a program
sees (``os`` puts the path, not an inode number, in ``filename``).
"""

from __future__ import annotations

import errno
import os
import stat

from zcsdfs.events import EventBus
from zcsdfs.lfs.filesystem import XATTR_CREATE, XATTR_REPLACE
from zcsdfs.lfs.reader import CAPABILITY
from zcsdfs.vfs.cache import BlockCache
from zcsdfs.vfs.caller import Caller
from zcsdfs.vfs.csd import Bindings
from zcsdfs.vfs.errors import bad_fd, os_error
from zcsdfs.vfs.files import OpenFile
from zcsdfs.vfs.filesystem import FileSystem
from zcsdfs.vfs.inodes import InodeOperations
from zcsdfs.vfs.permissions import R, W, X, allowed, check, check_owner, check_sticky
from zcsdfs.vfs.walk import Resolved, Walker

OPEN_FLAGS = (os.O_ACCMODE | os.O_CREAT | os.O_EXCL | os.O_TRUNC | os.O_APPEND | os.O_DIRECTORY
              | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_SYNC | os.O_DSYNC | os.O_NONBLOCK | os.O_NOCTTY
              | os.O_LARGEFILE | os.O_NOATIME | os.O_DIRECT)
SYNC_FLAGS = os.O_SYNC | os.O_DSYNC
STATUS_FLAGS = os.O_APPEND | os.O_SYNC | os.O_DSYNC | os.O_NONBLOCK
POSIX_ADVICE = range(os.POSIX_FADV_NORMAL, os.POSIX_FADV_NOREUSE + 1)
READAHEAD_MIN = 128 << 10
READAHEAD_MAX = 2 << 20
COPY_CHUNK = 1 << 20
USER_XATTR_TYPES = (stat.S_IFREG, stat.S_IFDIR)


class Vfs(InodeOperations):
    """One mounted lfs, served to callers, by path or (``InodeOperations``) by inode."""

    def __init__(self, fs: FileSystem, *, readonly: bool = False):
        self.fs = fs
        self.readonly = readonly
        self.events = getattr(fs, "events", None) or EventBus()  # the stack's bus (kernel runs here)
        self.walker = Walker(fs)
        self.cache = BlockCache(fs.block_size)
        self.root = fs.ROOT
        self.csd = Bindings(self)  # CSD kernels bound to open files

    # -- resolution ---------------------------------------------------------------------------

    def resolve(self, caller: Caller, path: str, start: int, follow: bool = True) -> Resolved:
        return self.walker.resolve(caller, path, start, follow=follow)

    def resolve_name(self, caller: Caller, path: str, start: int) -> Resolved:
        """Where a name to create or remove is: its last component is never followed."""
        return self.walker.resolve(caller, path, start, follow=False, name=True)

    def lookup(self, caller: Caller, path: str, start: int, follow: bool = True) -> int:
        """The inode ``path`` names; ENOENT if missing, ENOTDIR for "file/"."""
        r = self.resolve(caller, path, start, follow)
        if r.ino is None:
            raise os_error(errno.ENOENT)
        if r.slash and not stat.S_ISDIR(self.fs.getattr(r.ino).st_mode):
            raise os_error(errno.ENOTDIR)
        return r.ino

    def _parent_for_change(self, caller: Caller, r: Resolved):
        """Adding or removing a name needs write and search permission on its directory;
        returns the directory's Stat."""
        self._check_writable()
        pst = self.fs.getattr(r.parent)
        check(caller, pst, W | X)
        return pst

    def _check_writable(self) -> None:
        if self.readonly:
            raise os_error(errno.EROFS)

    def _new_owner(self, caller: Caller, pst, mode: int) -> tuple[int, int, int]:
        """uid, gid and mode of a new inode in the directory ``pst`` describes: a setgid
        directory passes on its group (and, to subdirectories, the setgid bit)."""
        gid = caller.gid
        if pst.st_mode & stat.S_ISGID:
            gid = pst.st_gid
            if stat.S_ISDIR(mode):
                mode |= stat.S_ISGID
        elif mode & stat.S_ISGID and not caller.is_root and not caller.in_group(gid):
            mode &= ~stat.S_ISGID
        return caller.uid, gid, mode

    # -- attributes ---------------------------------------------------------------------------

    def getattr(self, ino: int):
        return self.fs.getattr(ino)

    def stat(self, caller: Caller, path: str, start: int, follow: bool = True):
        return self.fs.getattr(self.lookup(caller, path, start, follow))

    def access(self, caller: Caller, path: str, start: int, mode: int, follow: bool = True) -> bool:
        """``os.access``: False instead of an error when the answer is no."""
        try:
            self.access_inode(caller, self.lookup(caller, path, start, follow), mode)
        except OSError:
            return False
        return True

    def chmod(self, caller: Caller, ino: int, mode: int):
        self._check_writable()
        st = self.fs.getattr(ino)
        check_owner(caller, st)
        mode &= 0o7777
        if not caller.is_root and not caller.in_group(st.st_gid):
            mode &= ~stat.S_ISGID
        return self.fs.setattr(ino, mode=mode)

    def chown(self, caller: Caller, ino: int, uid: int, gid: int):
        """Root may give a file away; an owner may only change its group to one of theirs."""
        self._check_writable()
        st = self.fs.getattr(ino)
        uid = None if uid == -1 else uid
        gid = None if gid == -1 else gid
        if not caller.is_root:
            if caller.uid != st.st_uid or (uid is not None and uid != st.st_uid) \
                    or (gid is not None and gid != st.st_gid and not caller.in_group(gid)):
                raise os_error(errno.EPERM)
        mode = None
        if not stat.S_ISDIR(st.st_mode) and (uid is not None or gid is not None) \
                and st.st_mode & (stat.S_ISUID | stat.S_ISGID):
            kill = stat.S_ISUID | (stat.S_ISGID if st.st_mode & stat.S_IXGRP else 0)
            mode = st.st_mode & 0o7777 & ~kill
        if not stat.S_ISDIR(st.st_mode) and (uid is not None or gid is not None) \
                and CAPABILITY in self.fs.listxattr(ino):
            self.fs.removexattr(ino, CAPABILITY)  # as Linux: a change of owner drops file capabilities
        return self.fs.setattr(ino, uid=uid, gid=gid, mode=mode)

    def utime(self, caller: Caller, ino: int, atime_ns: int | None, mtime_ns: int | None, now: bool):
        """Set times: to now (``now``; the owner or anyone who may write) or to given values
        (the owner only)."""
        self._check_writable()
        st = self.fs.getattr(ino)
        if now:
            if not caller.is_root and caller.uid != st.st_uid and not allowed(caller, st, W):
                raise os_error(errno.EACCES)
        else:
            check_owner(caller, st)
        return self.fs.setattr(ino, atime_ns=atime_ns, mtime_ns=mtime_ns)

    def truncate(self, caller: Caller, ino: int, size: int, check_access: bool = True,
                 kill_suidgid: bool = False) -> None:
        self._check_writable()
        st = self.fs.getattr(ino)
        if stat.S_ISDIR(st.st_mode):
            raise os_error(errno.EISDIR)
        if not stat.S_ISREG(st.st_mode):
            raise os_error(errno.EINVAL)
        if check_access:
            check(caller, st, W)
        if size < 0:
            raise os_error(errno.EINVAL)
        self.cache.drop(ino)
        self.fs.truncate(ino, size)
        self._drop_privileges(caller, ino, kill_suidgid)

    def _drop_privileges(self, caller: Caller, ino: int, kill_suidgid: bool = False) -> None:
        """What Linux's file_remove_privs does after a write or truncate: file capabilities
        go whoever writes; setuid (and setgid with group exec) go unless root writes, or
        ``kill_suidgid`` (the writer lacks CAP_FSETID: FUSE's KILL_SUIDGID flags)."""
        fs = self.fs
        if not fs.privileged(ino):
            return  # neither set-id bits nor file capabilities: the common case, without a look-up
        if CAPABILITY in fs.listxattr(ino):
            fs.removexattr(ino, CAPABILITY)
        mode = fs.getattr(ino).st_mode
        if (caller.is_root and not kill_suidgid) or not mode & (stat.S_ISUID | stat.S_ISGID):
            return
        kill = stat.S_ISUID | (stat.S_ISGID if mode & stat.S_IXGRP else 0)
        if mode & kill:
            fs.setattr(ino, mode=mode & 0o7777 & ~kill)

    # -- names --------------------------------------------------------------------------------

    def mkdir(self, caller: Caller, path: str, start: int, mode: int) -> int:
        r = self.resolve_name(caller, path, start)
        if r.ino is not None:
            raise os_error(errno.EEXIST)
        pst = self._parent_for_change(caller, r)
        uid, gid, mode = self._new_owner(caller, pst, stat.S_IFDIR | (mode & 0o1777))
        return self.fs.mkdir(r.parent, r.name, mode & 0o7777, uid, gid)

    def mknod(self, caller: Caller, path: str, start: int, mode: int, rdev: int = 0) -> int:
        r = self.resolve_name(caller, path, start)
        if r.ino is not None:
            raise os_error(errno.EEXIST)
        if r.slash:
            raise os_error(errno.ENOENT)
        kind = stat.S_IFMT(mode) or stat.S_IFREG
        if kind in (stat.S_IFCHR, stat.S_IFBLK) and not caller.is_root:
            raise os_error(errno.EPERM)
        pst = self._parent_for_change(caller, r)
        uid, gid, perm = self._new_owner(caller, pst, kind | (mode & 0o7777))
        return self.fs.mknod(r.parent, r.name, perm, rdev, uid, gid)

    def symlink(self, caller: Caller, target: str, path: str, start: int) -> int:
        r = self.resolve_name(caller, path, start)
        if r.ino is not None:
            raise os_error(errno.EEXIST)
        if r.slash:
            raise os_error(errno.ENOENT)
        pst = self._parent_for_change(caller, r)
        uid, gid, _ = self._new_owner(caller, pst, stat.S_IFLNK)
        return self.fs.symlink(r.parent, r.name, target, uid, gid)

    def readlink(self, caller: Caller, path: str, start: int) -> str:
        r = self.resolve(caller, path, start, follow=False)
        if r.ino is None:
            raise os_error(errno.ENOENT)
        if r.slash and not stat.S_ISDIR(self.fs.getattr(r.ino).st_mode):
            raise os_error(errno.ENOTDIR)
        return self.readlink_inode(r.ino)

    def link(self, caller: Caller, src: str, src_start: int, dst: str, dst_start: int,
             follow: bool = False) -> None:
        """``link(2)``: a symbolic link source is linked itself unless ``follow``; the checks
        (protected_hardlinks among them) are ``link_inode``'s."""
        ino = self.lookup(caller, src, src_start, follow)
        self._link(caller, ino, self.resolve_name(caller, dst, dst_start))

    def unlink(self, caller: Caller, path: str, start: int) -> None:
        r = self.resolve_name(caller, path, start)
        if r.ino is None:
            raise os_error(errno.ENOENT)
        st = self.fs.getattr(r.ino)
        if stat.S_ISDIR(st.st_mode):
            raise os_error(errno.EISDIR)
        if r.slash:
            raise os_error(errno.ENOTDIR)
        check_sticky(caller, self._parent_for_change(caller, r), st)
        self.fs.unlink(r.parent, r.name)
        self.cache.drop(r.ino)

    def rmdir(self, caller: Caller, path: str, start: int) -> None:
        r = self.resolve_name(caller, path, start)
        if r.ino is None:
            raise os_error(errno.ENOENT)
        if r.name == "":
            raise os_error(errno.EBUSY)
        st = self.fs.getattr(r.ino)
        if not stat.S_ISDIR(st.st_mode):
            raise os_error(errno.ENOTDIR)
        if r.name == ".":
            raise os_error(errno.EINVAL)
        if r.name == "..":
            raise os_error(errno.ENOTEMPTY)
        check_sticky(caller, self._parent_for_change(caller, r), st)
        self.fs.rmdir(r.parent, r.name)

    def rename(self, caller: Caller, src: str, src_start: int, dst: str, dst_start: int,
               flags: int = 0) -> None:
        s = self.resolve_name(caller, src, src_start)
        d = self.resolve_name(caller, dst, dst_start)
        if s.ino is None:
            raise os_error(errno.ENOENT)
        if s.name in ("", ".", "..") or d.name in ("", ".", ".."):
            raise os_error(errno.EBUSY)
        if d.ino is not None and d.ino != s.ino and self._is_ancestor(d.ino, s.parent):
            raise os_error(errno.ENOTEMPTY)  # the target is an ancestor of the source
        sst = self.fs.getattr(s.ino)
        is_dir = stat.S_ISDIR(sst.st_mode)
        if (s.slash or d.slash) and not is_dir:
            raise os_error(errno.ENOTDIR)
        spst = self._parent_for_change(caller, s)
        dpst = self._parent_for_change(caller, d)
        check_sticky(caller, spst, sst)
        if d.ino is not None and d.ino != s.ino:
            check_sticky(caller, dpst, self.fs.getattr(d.ino))
        if is_dir and s.parent != d.parent:
            check(caller, sst, W)  # its ".." changes
        if flags:
            self.fs.rename(s.parent, s.name, d.parent, d.name, flags=flags)
        else:
            self.fs.rename(s.parent, s.name, d.parent, d.name)
        if d.ino is not None:
            self.cache.drop(d.ino)

    def _is_ancestor(self, ancestor: int, ino: int) -> bool:
        """Whether directory ``ancestor`` is ``ino`` or lies on its path to the root."""
        while True:
            if ino == ancestor:
                return True
            if ino == self.root:
                return False
            ino = self.fs.lookup(ino, "..")

    def readdir(self, caller: Caller, ino: int):
        st = self.fs.getattr(ino)
        if not stat.S_ISDIR(st.st_mode):
            raise os_error(errno.ENOTDIR)
        check(caller, st, R)
        if not self.readonly:
            self.fs.touch_atime(ino)
        return self.fs.readdir(ino)

    def path_of(self, ino: int) -> str:
        """The absolute path of directory ``ino`` (ENOENT once it has been removed)."""
        fs = self.fs
        parts = []
        while ino != self.root:
            parent = fs.lookup(ino, "..")
            for entry in fs.readdir(parent):
                if entry.ino == ino:
                    parts.append(entry.name)
                    break
            else:
                raise os_error(errno.ENOENT)
            ino = parent
        return "/" + "/".join(reversed(parts))

    # -- extended attributes ------------------------------------------------------------------

    def _xattr_access(self, caller: Caller, ino: int, name: str, want: int) -> None:
        if name in ("user.", "trusted.", "security.", "system."):
            raise os_error(errno.EINVAL)
        st = self.fs.getattr(ino)
        if name.startswith("user."):
            if stat.S_IFMT(st.st_mode) not in USER_XATTR_TYPES:
                raise os_error(errno.EPERM if want == W else errno.ENODATA)
            check(caller, st, want)
        elif name.startswith("trusted.") and not caller.is_root:
            raise os_error(errno.EPERM if want == W else errno.ENODATA)
        elif want == W:
            check_owner(caller, st)

    def getxattr(self, caller: Caller, ino: int, name: str) -> bytes:
        if self.csd.handles(name):
            return self.csd.getxattr(caller, ino, name)
        self._xattr_access(caller, ino, name, R)
        return self.fs.getxattr(ino, name)

    def setxattr(self, caller: Caller, ino: int, name: str, value: bytes, flags: int = 0) -> None:
        if self.csd.handles(name):
            return self.csd.setxattr(caller, ino, name, value, flags)
        self._check_writable()
        if flags & ~(XATTR_CREATE | XATTR_REPLACE):
            raise os_error(errno.EINVAL)
        self._xattr_access(caller, ino, name, W)
        self.fs.setxattr(ino, name, value, flags)

    def removexattr(self, caller: Caller, ino: int, name: str) -> None:
        if self.csd.handles(name):
            return self.csd.removexattr(caller, ino, name)
        self._check_writable()
        self._xattr_access(caller, ino, name, W)
        self.fs.removexattr(ino, name)

    def listxattr(self, caller: Caller, ino: int) -> list[str]:
        names = self.fs.listxattr(ino)
        if not caller.is_root:
            names = [n for n in names if not n.startswith("trusted.")]
        return names + self.csd.listxattr(caller, ino)

    # -- open files ---------------------------------------------------------------------------

    def open(self, caller: Caller, path: str, start: int, flags: int, mode: int = 0o666, *,
             kill_suidgid: bool = False) -> OpenFile:
        """``open(2)``: ``mode`` is the final permission (the front end applied the umask);
        ``kill_suidgid``: an O_TRUNC opener without CAP_FSETID (see ``_drop_privileges``)."""
        if flags & os.O_TMPFILE == os.O_TMPFILE:
            raise os_error(errno.EOPNOTSUPP)
        creat, excl = flags & os.O_CREAT, flags & os.O_EXCL
        if creat and flags & os.O_DIRECTORY:
            raise os_error(errno.EINVAL)  # as Linux 6.4 and later
        if creat and path.endswith("/"):
            raise os_error(errno.EISDIR)
        r = self.resolve(caller, path, start, follow=not (flags & os.O_NOFOLLOW or (creat and excl)))
        if r.ino is None:
            if not creat:
                raise os_error(errno.ENOENT)
            if r.slash:
                raise os_error(errno.EISDIR)
            pst = self._parent_for_change(caller, r)
            uid, gid, perm = self._new_owner(caller, pst, stat.S_IFREG | (mode & 0o7777))
            ino = self.fs.create(r.parent, r.name, perm & 0o7777, uid, gid)
            return self._opened(caller, ino, flags, False)
        if creat and excl:
            raise os_error(errno.EEXIST)
        st = self.fs.getattr(r.ino)
        kind = stat.S_IFMT(st.st_mode)
        if kind == stat.S_IFLNK:
            raise os_error(errno.ELOOP)
        if kind == stat.S_IFDIR:
            if creat or flags & os.O_ACCMODE != os.O_RDONLY or flags & os.O_TRUNC:
                raise os_error(errno.EISDIR)
        elif flags & os.O_DIRECTORY or r.slash:
            raise os_error(errno.ENOTDIR)
        elif kind != stat.S_IFREG:
            raise os_error(errno.ENXIO)
        # access mode 3 (O_ACCMODE) asks for read and write permission and grants neither
        want = {os.O_RDONLY: R, os.O_WRONLY: W}.get(flags & os.O_ACCMODE, R | W)
        truncate = bool(flags & os.O_TRUNC) and kind == stat.S_IFREG
        return self._grant(caller, r.ino, st, want | (W if truncate else 0), flags, truncate, kill_suidgid)

    def open_inode(self, caller: Caller, ino: int, flags: int, *, kill_suidgid: bool = False) -> OpenFile:
        """Open an inode found by lookup (FUSE's OPEN), with the same checks as ``open``."""
        st = self.fs.getattr(ino)
        want = {os.O_RDONLY: R, os.O_WRONLY: W, os.O_RDWR: R | W}.get(flags & os.O_ACCMODE, R)
        if stat.S_ISDIR(st.st_mode) and want & W:
            raise os_error(errno.EISDIR)
        truncate = bool(flags & os.O_TRUNC) and stat.S_ISREG(st.st_mode)
        return self._grant(caller, ino, st, want | (W if flags & os.O_TRUNC else 0), flags, truncate,
                           kill_suidgid)

    def _grant(self, caller: Caller, ino: int, st, want: int, flags: int, truncate: bool,
               kill_suidgid: bool = False) -> OpenFile:
        """The checks and effects every open of an existing inode shares."""
        if want & W:
            self._check_writable()
        check(caller, st, want)
        if truncate:
            self.cache.drop(ino)
            self.fs.truncate(ino, 0)
            self._drop_privileges(caller, ino, kill_suidgid)
        return self._opened(caller, ino, flags, stat.S_ISDIR(st.st_mode))

    def _opened(self, caller: Caller, ino: int, flags: int, is_dir: bool) -> OpenFile:
        self.fs.hold(ino)
        of = OpenFile(ino, flags & OPEN_FLAGS, is_dir, pid=caller.pid)
        self.csd.opened(of)
        return of

    def close(self, of: OpenFile) -> None:
        """Drop one reference to a description; the last one releases the inode."""
        of.refs -= 1
        if of.refs == 0:
            self.csd.closed(of)
            self.fs.release(of.ino)

    def set_status_flags(self, of: OpenFile, flags: int) -> None:
        of.flags = (of.flags & ~STATUS_FLAGS) | (flags & STATUS_FLAGS)

    def read(self, of: OpenFile, size: int, offset: int | None = None, *, caller: Caller | None = None,
             kernels: bool = True) -> bytes:
        """Read at ``offset``, or at the description's offset (advancing it); a bound CSD kernel
        answers instead of the data (see ``vfs.csd``) unless ``kernels`` is False (the FUSE
        server filling the page cache every process shares)."""
        if not of.readable:
            raise bad_fd()
        if of.is_dir:
            raise os_error(errno.EISDIR)
        if size < 0:
            raise os_error(errno.EINVAL)
        if offset is not None and offset < 0:
            raise os_error(errno.EINVAL)
        if kernels:
            computed = self.csd.read(of, size, offset, caller)
            if computed is not None:
                return computed
        if offset is not None:
            return self._read(of, offset, size)
        with of.lock:
            data = self._read(of, of.offset, size)
            of.offset += len(data)
            return data

    def _read(self, of: OpenFile, offset: int, size: int) -> bytes:
        if size and not of.flags & os.O_NOATIME and not self.readonly:
            self.fs.touch_atime(of.ino)
        if of.advice == os.POSIX_FADV_SEQUENTIAL or self.cache.caches(of.ino):
            return self._read_cached(of, offset, size)
        return self.fs.read(of.ino, offset, size)

    def _read_cached(self, of: OpenFile, offset: int, size: int) -> bytes:
        fs, bs = self.fs, self.fs.block_size
        file_size = fs.getattr(of.ino).st_size
        end = min(offset + size, file_size)
        if offset >= end:
            return b""
        first, last = offset // bs, -(-end // bs)
        data = self.cache.get(of.ino, first, last - first)
        if data is None:
            data = fs.read(of.ino, first * bs, (last - first) * bs).ljust((last - first) * bs, b"\0")
            self.cache.put(of.ino, first, data)
        if of.advice == os.POSIX_FADV_SEQUENTIAL:
            self._read_ahead(of, end, file_size)
        return data[offset - first * bs:end - first * bs]

    def _read_ahead(self, of: OpenFile, end: int, file_size: int) -> None:
        """Keep a window of cached data ahead of a sequential reader, refilled when half used."""
        window = of.readahead or READAHEAD_MIN
        frontier = of.readahead_end
        if frontier >= file_size or end + window // 2 < frontier:
            return
        start = max(frontier, end)
        self._fill(of.ino, start, window, file_size)
        of.readahead_end = start + window
        of.readahead = min(window * 2, READAHEAD_MAX)

    def _fill(self, ino: int, offset: int, length: int, file_size: int) -> None:
        """Read ``[offset, offset+length)`` (clipped to the file) into the cache where missing."""
        bs = self.fs.block_size
        end = min(offset + length, file_size) if length else file_size
        if offset >= end:
            return
        first, last = offset // bs, -(-end // bs)
        missing = self.cache.missing(ino, first, last - first)
        if not missing:
            return
        lo, hi = missing[0], missing[-1] + 1
        data = self.fs.read(ino, lo * bs, (hi - lo) * bs)
        self.cache.put(ino, lo, data.ljust((hi - lo) * bs, b"\0"))

    def write(self, caller: Caller | None, of: OpenFile, data, offset: int | None = None, *,
              kill_suidgid: bool = False) -> int:
        """Write at ``offset``, or at the description's offset (advancing it); O_APPEND writes
        go to the end of file atomically. ``caller`` None is the current process, made only when
        a CSD binding or a privilege drop needs it (the in-process hot path needs neither).
        ``kill_suidgid``: see ``_drop_privileges``."""
        if not of.writable:
            raise bad_fd()
        if self.readonly:
            raise os_error(errno.EROFS)
        fs = self.fs
        ino = of.ino
        self.cache.drop(ino)
        csd = self.csd if self.csd.any(of) else None
        if csd and caller is None:
            caller = Caller.current()
        stored = csd.transform(of, caller, data, offset) if csd else data  # a write-stream kernel's output
        cold = of.advice == os.POSIX_FADV_NOREUSE  # written once, not expected to change: cold zones
        if offset is not None and not of.flags & os.O_APPEND:
            if offset < 0:
                raise os_error(errno.EINVAL)
            at = offset
            done = fs.write(ino, offset, stored, cold)
        else:
            if offset is not None and offset < 0:
                raise os_error(errno.EINVAL)
            with of.lock:
                if of.append:
                    at, done = fs.append(ino, stored, cold)  # end of file and the write, as one step
                    if offset is None:
                        of.offset = at + done
                else:
                    at = of.offset
                    done = fs.write(ino, at, stored, cold)
                    of.offset += done
        if csd:
            done = csd.written(of, caller, data, stored, at, done)
        if of.flags & SYNC_FLAGS:
            fs.fsync(ino)
        if fs.privileged(ino):
            self._drop_privileges(caller or Caller.current(), ino, kill_suidgid)
        return done

    def seek(self, of: OpenFile, offset: int, whence: int) -> int:
        with of.lock:
            if whence == os.SEEK_SET:
                new = offset
            elif whence == os.SEEK_CUR:
                new = of.offset + offset
            elif whence == os.SEEK_END:
                new = self.fs.getattr(of.ino).st_size + offset
            elif whence in (os.SEEK_DATA, os.SEEK_HOLE):
                if of.is_dir:
                    raise os_error(errno.EINVAL)
                if offset < 0:
                    raise os_error(errno.ENXIO)
                find = self.fs.seek_data if whence == os.SEEK_DATA else self.fs.seek_hole
                new = find(of.ino, offset)
            else:
                raise os_error(errno.EINVAL)
            if new < 0:
                raise os_error(errno.EINVAL)
            of.offset = new
            return new

    def fsync(self, of: OpenFile, data_only: bool = False) -> None:
        if data_only:
            self.fs.fdatasync(of.ino)
        else:
            self.fs.fsync(of.ino)

    def fallocate(self, of: OpenFile, offset: int, length: int, mode: int = 0) -> None:
        if offset < 0 or length <= 0:
            raise os_error(errno.EINVAL)
        if not of.writable:
            raise bad_fd()
        if of.is_dir:
            raise os_error(errno.EISDIR)
        self._check_writable()
        self.cache.drop(of.ino)
        self.fs.fallocate(of.ino, offset, length, mode)

    def copy_range(self, caller: Caller, src: OpenFile, dst: OpenFile, count: int,
                   offset_src: int | None = None, offset_dst: int | None = None, *, stop=None) -> int:
        """The copy of ``copy_file_range(2)`` and ``sendfile`` between two descriptions of this
        volume (their own checks, such as O_APPEND and overlapping ranges, are the callers'):
        at the given offsets, or at and advancing the descriptions' own. The file's bytes are
        copied (never a CSD kernel's answer), in chunks; ``stop()`` is asked between chunks
        (an interrupted request stops early, with what it copied so far)."""
        if count < 0 or (offset_src is not None and offset_src < 0) \
                or (offset_dst is not None and offset_dst < 0):
            raise os_error(errno.EINVAL)
        if src.is_dir or dst.is_dir:
            raise os_error(errno.EISDIR)
        if not src.readable or not dst.writable:
            raise bad_fd()
        done = 0
        while done < count and not (stop and stop()):
            at = None if offset_src is None else offset_src + done
            data = self.read(src, min(COPY_CHUNK, count - done), at, kernels=False)
            if not data:
                break
            written = self.write(caller, dst, data, None if offset_dst is None else offset_dst + done)
            done += written
            if written < len(data):
                break
        return done

    def fadvise(self, of: OpenFile, offset: int, length: int, advice: int) -> None:
        """``posix_fadvise``: readahead and cache hints; NOREUSE sends later writes to cold zones.

        Values outside POSIX's are reserved for CSD kernels and give EINVAL
        until one is registered.
        """
        if self.csd.fadvise(of, offset, length, advice):  # bound a kernel (NORMAL also unbinds)
            return
        if offset < 0 or length < 0 or advice not in POSIX_ADVICE:
            raise os_error(errno.EINVAL)
        if of.is_dir:
            return
        bs = self.fs.block_size
        if advice == os.POSIX_FADV_WILLNEED:
            self._fill(of.ino, offset, length, self.fs.getattr(of.ino).st_size)
            return
        if advice == os.POSIX_FADV_DONTNEED:
            first = -(-offset // bs)
            count = None if not length else max(0, (offset + length) // bs - first)
            self.cache.drop(of.ino, first, count)
            return
        of.advice = advice
        of.readahead, of.readahead_end = 0, 0

    def set_write_hint(self, of: OpenFile, hint: int) -> None:
        """``fcntl(F_SET_RW_HINT)``: the lifetime of the data written to the file from now on
        (RWH_WRITE_LIFE_*); the lfs gives each lifetime zones of its own. Linux sets it on the
        inode, so it holds for every descriptor of the file."""
        if not 0 <= hint <= 5:
            raise os_error(errno.EINVAL)
        self.fs.set_write_hint(of.ino, hint)

    def write_hint(self, of: OpenFile) -> int:
        """``fcntl(F_GET_RW_HINT)``."""
        return self.fs.write_hint(of.ino)

    # -- volume -------------------------------------------------------------------------------

    def statfs(self):
        return self.fs.statfs()

    def sync(self) -> None:
        self.fs.sync()
