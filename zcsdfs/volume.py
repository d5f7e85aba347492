"""A Volume: one mounted zcsdfs with the whole ``os`` file surface as methods.

``zcsdfs.stat(...)`` and friends are these methods on the process's default
volume; ``Volume`` objects give several independent volumes in one process.
Signatures, return types and errors follow Python's ``os`` on Linux:
paths may be str, bytes or path-like (bytes in, bytes out), functions that
take a path also take a descriptor where ``os`` does, and every failure is an
``OSError`` with Linux's errno and the file names ``os`` would report.

Paths always name files in the volume; its root is "/". Descriptor
numbers are real descriptors of the process, reserved for zcsdfs (see
``vfs.files``); a descriptor zcsdfs did not open (a pipe, a socket, a real
file) is passed to the real ``os`` function, so ``import zcsdfs as os``
keeps working for code that mixes both.
"""

from __future__ import annotations

import copy
import errno
import operator
import os
import stat as stat_module
import weakref

from zcsdfs import tracked_umask
from zcsdfs.stack import build_stack
from zcsdfs.vfs.caller import Caller
from zcsdfs.vfs.errors import bad_fd, os_error
from zcsdfs.vfs.files import Descriptors, OpenFile, all_numbers
from zcsdfs.zns import ZonedDevice

def _fspath(path) -> tuple[str, bool]:
    """(path as str, whether the caller used bytes); os's TypeError and ValueError for bad ones."""
    path = os.fspath(path)
    if isinstance(path, bytes):
        if b"\0" in path:
            raise ValueError("embedded null byte")
        return os.fsdecode(path), True
    if "\0" in path:
        raise ValueError("embedded null byte")
    return path, False


def _seconds(ns: int) -> float:
    """Float seconds computed as CPython does (whole seconds plus ns * 1e-9), to the same bits."""
    return ns // 10**9 + (ns % 10**9) * 1e-9


def stat_result(st, dev: int) -> os.stat_result:
    """An ``os.stat_result`` from the lfs's attributes."""
    a, m, c = st.st_atime_ns, st.st_mtime_ns, st.st_ctime_ns
    return os.stat_result(
        (st.st_mode, st.st_ino, dev, st.st_nlink, st.st_uid, st.st_gid, st.st_size,
         a // 10**9, m // 10**9, c // 10**9),
        {"st_atime": _seconds(a), "st_mtime": _seconds(m), "st_ctime": _seconds(c),
         "st_atime_ns": a, "st_mtime_ns": m, "st_ctime_ns": c,
         "st_blksize": st.st_blksize, "st_blocks": st.st_blocks, "st_rdev": st.st_rdev})


# fcntl's write lifetime hints (linux/fcntl.h): F_LINUX_SPECIFIC_BASE + 11, + 12, and the values.
F_GET_RW_HINT, F_SET_RW_HINT = 1035, 1036
RWH_WRITE_LIFE_NOT_SET, RWH_WRITE_LIFE_NONE, RWH_WRITE_LIFE_SHORT = 0, 1, 2
RWH_WRITE_LIFE_MEDIUM, RWH_WRITE_LIFE_LONG, RWH_WRITE_LIFE_EXTREME = 3, 4, 5


def _fileno(fd) -> int:
    """A descriptor as os.fsync takes one: an int, or an object with ``fileno()``."""
    if isinstance(fd, int):
        return fd
    fileno = getattr(fd, "fileno", None)
    if fileno is None:
        raise TypeError("argument must be an int, or have a fileno() method.")
    return fileno()


NO_ID = 0xFFFFFFFF  # (uid_t) -1: chown(2)'s "leave it as it is"


def _owner_id(value: int, what: str) -> int:
    """A uid or gid as os.chown takes it: -1 or its unsigned form keeps the current one, and
    anything else that is no 32-bit id is refused before any work (with os's message)."""
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{what} should be integer, not {type(value).__name__}") from None
    if value == -1 or value == NO_ID:
        return -1
    if not 0 <= value < NO_ID:
        raise OverflowError(f"{what} is less than minimum")
    return value


class Volume:
    """One zcsdfs volume, mounted; call ``unmount`` (or let interpreter exit do it)."""

    def __init__(self, device=None, *, gc_policy: str = "greedy", readonly: bool = False, create: bool = False,
                 snapshot: str | None = None, _caller: Caller | None = None):
        """``device``: an image path, a ``ZonedDevice``, or None for the embedded default device;
        see ``zcsdfs.stack.build_stack`` for ``readonly`` and ``create`` (format a blank image).
        ``snapshot=NAME`` opens that snapshot of the volume instead of the live tree, read-only."""
        self.stack = build_stack(device, readonly=readonly, create=create, gc_policy=gc_policy, snapshot=snapshot)
        self.device, self.fs, self.vfs = self.stack.device, self.stack.fs, self.stack.vfs
        self.image = self.device.path if self.stack.owns_device else None  # None for a device object
        self.dev = 0x5A000000 | int.from_bytes(self.fs.sb.uuid[:3], "little")  # st_dev and f_fsid
        self._fds = Descriptors(lost=self.vfs.close)  # a number closed behind our back drops its reference
        self._cwd = self.vfs.root
        self._caller = _caller
        self._origin = None  # the volume an as_user view shows, kept alive by the view
        from zcsdfs.path import VolumePath
        from zcsdfs.io import VolumeIO
        self.path = VolumePath(self)
        self.io = VolumeIO(self)
        # unmount once: on unmount(), when the volume is dropped, or at interpreter exit
        self._release = weakref.finalize(self, _release, self.stack, self.vfs, self._fds)

    @classmethod
    def memory(cls, geometry: str = "qemu", **kwargs) -> "Volume":
        """A fresh volume on a memory device (gone when the process ends)."""
        return cls(ZonedDevice.memory(geometry), **kwargs)

    def as_user(self, uid: int, gid: int, groups=()) -> "Volume":
        """The same volume (files, descriptors) as another caller sees it: the FUSE server's
        situation, and how tests check permissions while running as root."""
        from zcsdfs.path import VolumePath
        from zcsdfs.io import VolumeIO
        view = copy.copy(self)
        view._origin = self._origin or self
        view._caller = Caller(uid, gid, frozenset(groups), os.getpid())
        view.path = VolumePath(view)
        view.io = VolumeIO(view)
        return view

    @property
    def caller(self) -> Caller:
        return self._caller or Caller.current()

    @property
    def mounted(self) -> bool:
        return self._release.alive

    def unmount(self) -> None:
        """Close every descriptor, checkpoint, and let go of the device (and its lock).

        A volume nobody refers to any more is unmounted when it is collected,
        and every volume still mounted at interpreter exit is unmounted then.
        """
        self._release()

    def __enter__(self) -> "Volume":
        return self

    def __exit__(self, *exc) -> None:
        self.unmount()

    def __repr__(self) -> str:
        state = "mounted" if self.mounted else "unmounted"
        return f"<zcsdfs.Volume {self.device!r} {state}>"

    # -- plumbing -----------------------------------------------------------------------------

    def _start(self, path: str, dir_fd) -> int:
        """Where a relative path starts: the current directory or ``dir_fd``'s directory."""
        if dir_fd is None or path.startswith("/"):
            return self._cwd
        of = self._fds.get(dir_fd)
        if not of.is_dir:
            raise os_error(errno.ENOTDIR)
        return of.ino

    def _ino(self, path, dir_fd=None, follow_symlinks=True) -> int:
        """The inode a path (or descriptor, where os takes one) names."""
        if isinstance(path, int):
            return self._fds.get(path).ino
        text, _ = _fspath(path)
        try:
            return self.vfs.lookup(self.caller, text, self._start(text, dir_fd), follow_symlinks)
        except OSError as exc:
            raise os_error(exc.errno, path) from None

    def _file(self, fd) -> OpenFile:
        return self._fds.get(fd)

    def _call(self, fn, *args, filename=None, filename2=None):
        try:
            return fn(*args)
        except OSError as exc:
            raise os_error(exc.errno, filename, filename2) from None

    def _mine(self, fd) -> bool:
        return fd in self._fds

    def owns(self, fd) -> bool:
        """Whether ``fd`` is one of this volume's descriptors (the shim routes descriptors by it)."""
        return fd in self._fds

    def holds(self, fd) -> bool:
        """``owns`` without the check that the number is still ours, for a caller that passes
        ``fd`` straight to a method of this volume: every method checks, and hands a number
        that is no longer ours to the real ``os``."""
        return self._fds.holds(fd)

    def reserves(self, fd) -> bool:
        """Whether ``fd`` is the real descriptor this volume duplicates its descriptors from:
        ``os.closerange`` under the shim must spare it, or the volume could open nothing more."""
        return fd == self._fds._null

    # -- descriptors --------------------------------------------------------------------------

    def umask(self, mask: int) -> int:
        """Set the process's umask (every volume applies it, as the kernel does); returns the old one."""
        return tracked_umask.umask(mask)

    def open(self, path, flags: int, mode: int = 0o777, *, dir_fd=None) -> int:
        text, _ = _fspath(path)
        mode &= ~tracked_umask.current()
        try:
            of = self.vfs.open(self.caller, text, self._start(text, dir_fd), flags, mode)
        except OSError as exc:
            raise os_error(exc.errno, path) from None
        return self._fds.add(of)

    def close(self, fd: int) -> None:
        of = self._fds.find(fd)
        if of is None:
            return os.close(fd)
        self.vfs.close(self._fds.remove(fd))

    def closerange(self, fd_low: int, fd_high: int) -> None:
        """Close this volume's descriptors in the range, and real ones as ``os.closerange``
        would, sparing the numbers any volume holds."""
        close_range((self,), fd_low, fd_high)

    def dup(self, fd: int) -> int:
        of = self._fds.find(fd)
        if of is None:
            return os.dup(fd)
        of.refs += 1
        return self._fds.add(of)

    def dup2(self, fd: int, fd2: int, inheritable: bool = True) -> int:
        if not self._mine(fd):
            if self._mine(fd2):
                self.close(fd2)
            return os.dup2(fd, fd2, inheritable)
        of = self._file(fd)
        if fd == fd2:
            return fd2
        if self._mine(fd2):
            self.close(fd2)
        of.refs += 1
        self._fds.add(of, at=fd2)
        os.set_inheritable(fd2, inheritable)
        return fd2

    def read(self, fd: int, n: int) -> bytes:
        of = self._fds.find(fd)
        if of is None:
            return os.read(fd, n)
        return self.vfs.read(of, n, caller=self._caller)

    def pread(self, fd: int, n: int, offset: int) -> bytes:
        of = self._fds.find(fd)
        if of is None:
            return os.pread(fd, n, offset)
        return self.vfs.read(of, n, offset, caller=self._caller)

    def readv(self, fd: int, buffers) -> int:
        of = self._fds.find(fd)
        if of is None:
            return os.readv(fd, buffers)
        return self._scatter(of, buffers, None)

    def preadv(self, fd: int, buffers, offset: int, flags: int = 0) -> int:
        of = self._fds.find(fd)
        if of is None:
            return os.preadv(fd, buffers, offset, flags)
        return self._scatter(of, buffers, offset)

    def _scatter(self, of: OpenFile, buffers, offset) -> int:
        views = [memoryview(b).cast("B") for b in buffers]
        if any(v.readonly for v in views):
            raise BufferError("Object is not writable.")
        data = self.vfs.read(of, sum(v.nbytes for v in views), offset, caller=self._caller)
        at = 0
        for v in views:
            chunk = data[at:at + v.nbytes]
            v[:len(chunk)] = chunk
            at += len(chunk)
        return len(data)

    def write(self, fd: int, data) -> int:
        of = self._fds.find(fd)
        if of is None:
            return os.write(fd, data)
        return self.vfs.write(self._caller, of, data)

    def pwrite(self, fd: int, data, offset: int) -> int:
        of = self._fds.find(fd)  # one look-up: this is the hottest call there is
        if of is None:
            return os.pwrite(fd, data, offset)
        return self.vfs.write(self._caller, of, data, offset)  # None: the current process, if needed

    def writev(self, fd: int, buffers) -> int:
        of = self._fds.find(fd)
        if of is None:
            return os.writev(fd, buffers)
        return self.vfs.write(self.caller, of, b"".join(bytes(b) for b in buffers))

    def pwritev(self, fd: int, buffers, offset: int, flags: int = 0) -> int:
        of = self._fds.find(fd)
        if of is None:
            return os.pwritev(fd, buffers, offset, flags)
        return self.vfs.write(self.caller, of, b"".join(bytes(b) for b in buffers), offset)

    def lseek(self, fd: int, position: int, whence: int) -> int:
        of = self._fds.find(fd)
        if of is None:
            return os.lseek(fd, position, whence)
        return self.vfs.seek(of, position, whence)

    def fstat(self, fd: int) -> os.stat_result:
        of = self._fds.find(fd)
        if of is None:
            return os.fstat(fd)
        return stat_result(self.vfs.getattr(of.ino), self.dev)

    def fsync(self, fd) -> None:
        fd = _fileno(fd)
        of = self._fds.find(fd)
        if of is None:
            return os.fsync(fd)
        self.vfs.fsync(of)

    def fdatasync(self, fd) -> None:
        fd = _fileno(fd)
        of = self._fds.find(fd)
        if of is None:
            return os.fdatasync(fd)
        self.vfs.fsync(of, data_only=True)

    def ftruncate(self, fd: int, length: int) -> None:
        of = self._fds.find(fd)
        if of is None:
            return os.ftruncate(fd, length)
        if not of.writable or of.is_dir:
            raise os_error(errno.EINVAL)
        self.vfs.truncate(self.caller, of.ino, length, check_access=False)

    def posix_fallocate(self, fd: int, offset: int, length: int) -> None:
        of = self._fds.find(fd)
        if of is None:
            return os.posix_fallocate(fd, offset, length)
        self.vfs.fallocate(of, offset, length)

    def posix_fadvise(self, fd: int, offset: int, length: int, advice: int) -> None:
        of = self._fds.find(fd)
        if of is None:
            return os.posix_fadvise(fd, offset, length, advice)
        self.vfs.fadvise(of, offset, length, advice)

    def fstatvfs(self, fd: int) -> os.statvfs_result:
        of = self._fds.find(fd)
        if of is None:
            return os.fstatvfs(fd)
        return self._statvfs()

    def fchmod(self, fd: int, mode: int) -> None:
        of = self._fds.find(fd)
        if of is None:
            return os.fchmod(fd, mode)
        self.vfs.chmod(self.caller, of.ino, mode)

    def fchown(self, fd: int, uid: int, gid: int) -> None:
        of = self._fds.find(fd)
        if of is None:
            return os.fchown(fd, uid, gid)
        self.vfs.chown(self.caller, of.ino, _owner_id(uid, "uid"), _owner_id(gid, "gid"))

    def fchdir(self, fd: int) -> None:
        of = self._file(fd)
        if not of.is_dir:
            raise os_error(errno.ENOTDIR)
        self._cwd = of.ino

    def sendfile(self, out_fd: int, in_fd: int, offset: int | None, count: int) -> int:
        if not (self._mine(out_fd) and self._mine(in_fd)):
            if self._mine(out_fd) or self._mine(in_fd):
                self._check_real(in_fd if self._mine(out_fd) else out_fd)
                raise os_error(errno.EINVAL)  # no copying between a volume and a real file
            return os.sendfile(out_fd, in_fd, offset, count)
        source, target = self._file(in_fd), self._file(out_fd)
        if target.append:
            raise os_error(errno.EINVAL)  # as Linux: sendfile never appends
        return self._copy(source, target, count, offset, None)

    def copy_file_range(self, src: int, dst: int, count: int, offset_src=None, offset_dst=None) -> int:
        if count < 0:
            raise ValueError("count cannot be negative")
        if not (self._mine(src) and self._mine(dst)):
            if self._mine(src) or self._mine(dst):
                self._check_real(dst if self._mine(src) else src)
                raise os_error(errno.EXDEV)
            return os.copy_file_range(src, dst, count, offset_src, offset_dst)
        s, d = self._file(src), self._file(dst)
        if s.is_dir or d.is_dir:
            raise os_error(errno.EISDIR)
        if d.append:
            raise os_error(errno.EBADF)
        if s.ino == d.ino:
            start_s = s.offset if offset_src is None else offset_src
            start_d = d.offset if offset_dst is None else offset_dst
            if start_s < start_d + count and start_d < start_s + count:
                raise os_error(errno.EINVAL)  # overlapping ranges of one file
        return self._copy(s, d, count, offset_src, offset_dst)

    @staticmethod
    def _check_real(fd: int) -> None:
        """EBADF, as the kernel would give, when ``fd`` is not an open descriptor at all."""
        os.fstat(fd)

    def _copy(self, s: OpenFile, d: OpenFile, count: int, offset_src, offset_dst) -> int:
        return self.vfs.copy_range(self.caller, s, d, count, offset_src, offset_dst)

    def set_blocking(self, fd: int, blocking: bool) -> None:
        of = self._fds.find(fd)
        if of is None:
            return os.set_blocking(fd, blocking)
        self.vfs.set_status_flags(of, of.flags & ~os.O_NONBLOCK if blocking else of.flags | os.O_NONBLOCK)

    def get_blocking(self, fd: int) -> bool:
        of = self._fds.find(fd)
        if of is None:
            return os.get_blocking(fd)
        return not of.flags & os.O_NONBLOCK

    def isatty(self, fd: int) -> bool:
        return False if self._mine(fd) else os.isatty(fd)

    def get_inheritable(self, fd: int) -> bool:
        return os.get_inheritable(fd)

    def set_inheritable(self, fd: int, inheritable: bool) -> None:
        os.set_inheritable(fd, inheritable)

    def fdopen(self, fd: int, mode: str = "r", buffering: int = -1, encoding=None, *args, **kwargs):
        """``os.fdopen``: a file object over a zcsdfs (or real) descriptor."""
        of = self._fds.find(fd)
        if of is None:
            return os.fdopen(fd, mode, buffering, encoding, *args, **kwargs)
        return self.io.open(fd, mode, buffering, encoding, *args, **kwargs)

    # -- paths: attributes --------------------------------------------------------------------

    def stat(self, path, *, dir_fd=None, follow_symlinks: bool = True) -> os.stat_result:
        if isinstance(path, int):
            if dir_fd is not None:
                raise ValueError("stat: can't specify both dir_fd and fd")
            if not follow_symlinks:
                raise ValueError("stat: cannot use fd and follow_symlinks together")
            return self.fstat(path)
        return stat_result(self.vfs.getattr(self._ino(path, dir_fd, follow_symlinks)), self.dev)

    def lstat(self, path, *, dir_fd=None) -> os.stat_result:
        if isinstance(path, int):  # os.lstat takes no descriptor
            raise TypeError(f"lstat: path should be string, bytes or os.PathLike, not {type(path).__name__}")
        return self.stat(path, dir_fd=dir_fd, follow_symlinks=False)

    def access(self, path, mode: int, *, dir_fd=None, effective_ids: bool = False,
               follow_symlinks: bool = True) -> bool:
        text, _ = _fspath(path)
        if mode & ~7:
            raise os_error(errno.EINVAL, path)
        start = self._start(text, dir_fd)
        return self.vfs.access(self.caller, text, start, mode, follow_symlinks)

    def chmod(self, path, mode: int, *, dir_fd=None, follow_symlinks: bool = True) -> None:
        ino = self._ino(path, dir_fd, follow_symlinks)
        if not follow_symlinks and stat_module.S_ISLNK(self.vfs.getattr(ino).st_mode):
            raise NotImplementedError("chmod: follow_symlinks unavailable on this platform")
        self._call(self.vfs.chmod, self.caller, ino, mode, filename=path)

    def chown(self, path, uid: int, gid: int, *, dir_fd=None, follow_symlinks: bool = True) -> None:
        uid, gid = _owner_id(uid, "uid"), _owner_id(gid, "gid")
        ino = self._ino(path, dir_fd, follow_symlinks)
        self._call(self.vfs.chown, self.caller, ino, uid, gid, filename=path)

    def lchown(self, path, uid: int, gid: int) -> None:
        self.chown(path, uid, gid, follow_symlinks=False)

    def utime(self, path, times=None, *, ns=None, dir_fd=None, follow_symlinks: bool = True) -> None:
        if times is not None and ns is not None:
            raise ValueError("utime: you may specify either 'times' or 'ns' but not both")
        if times is not None:
            if not isinstance(times, tuple) or len(times) != 2:
                raise TypeError("utime: 'times' must be either a tuple of two ints or None")
            atime, mtime = (int(round(t * 10**9)) if isinstance(t, float) else int(t) * 10**9
                            for t in times)
        elif ns is not None:
            if not isinstance(ns, tuple) or len(ns) != 2:
                raise TypeError("utime: 'ns' must be a tuple of two ints")
            atime, mtime = ns
        else:
            atime = mtime = None
        try:
            ino = self._ino(path, dir_fd, follow_symlinks)
        except OSError as exc:
            raise os_error(exc.errno) from None  # CPython's utime names no file in its errors
        if atime is None:
            import time
            atime = mtime = time.time_ns()
            self._call(self.vfs.utime, self.caller, ino, atime, mtime, True)
        else:
            self._call(self.vfs.utime, self.caller, ino, atime, mtime, False)

    def truncate(self, path, length: int) -> None:
        if isinstance(path, int):
            return self.ftruncate(path, length)
        ino = self._ino(path)
        self._call(self.vfs.truncate, self.caller, ino, length, filename=path)

    # -- paths: names -------------------------------------------------------------------------

    def mkdir(self, path, mode: int = 0o777, *, dir_fd=None) -> None:
        text, _ = _fspath(path)
        self._call(lambda: self.vfs.mkdir(self.caller, text, self._start(text, dir_fd),
                                          mode & ~tracked_umask.current()), filename=path)

    def makedirs(self, name, mode: int = 0o777, exist_ok: bool = False) -> None:
        head, tail = self.path.split(name)
        if not tail:
            head, tail = self.path.split(head)
        if head and tail and not self.path.exists(head):
            try:
                self.makedirs(head, exist_ok=exist_ok)
            except FileExistsError:
                pass
            cdir = os.curdir.encode() if isinstance(tail, bytes) else os.curdir
            if tail == cdir:
                return
        try:
            self.mkdir(name, mode)
        except OSError:
            if not exist_ok or not self.path.isdir(name):
                raise

    def mkfifo(self, path, mode: int = 0o666, *, dir_fd=None) -> None:
        self.mknod(path, stat_module.S_IFIFO | (mode & 0o7777), dir_fd=dir_fd)

    def mknod(self, path, mode: int = 0o600, device: int = 0, *, dir_fd=None) -> None:
        text, _ = _fspath(path)
        kind = stat_module.S_IFMT(mode)
        self._call(lambda: self.vfs.mknod(self.caller, text, self._start(text, dir_fd),
                                          kind | (mode & 0o7777 & ~tracked_umask.current()), device), filename=path)

    def symlink(self, src, dst, target_is_directory: bool = False, *, dir_fd=None) -> None:
        target, _ = _fspath(src)
        text, _ = _fspath(dst)
        self._call(lambda: self.vfs.symlink(self.caller, target, text, self._start(text, dir_fd)),
                   filename=src, filename2=dst)

    def readlink(self, path, *, dir_fd=None):
        text, as_bytes = _fspath(path)
        target = self._call(lambda: self.vfs.readlink(self.caller, text, self._start(text, dir_fd)),
                            filename=path)
        return os.fsencode(target) if as_bytes else target

    def link(self, src, dst, *, src_dir_fd=None, dst_dir_fd=None, follow_symlinks: bool = True) -> None:
        s, _ = _fspath(src)
        d, _ = _fspath(dst)
        # CPython on Linux calls link(2), which never follows, unless a dir_fd asks for linkat
        follow = follow_symlinks and (src_dir_fd is not None or dst_dir_fd is not None)
        self._call(lambda: self.vfs.link(self.caller, s, self._start(s, src_dir_fd), d,
                                         self._start(d, dst_dir_fd), follow),
                   filename=src, filename2=dst)

    def unlink(self, path, *, dir_fd=None) -> None:
        text, _ = _fspath(path)
        self._call(lambda: self.vfs.unlink(self.caller, text, self._start(text, dir_fd)), filename=path)

    remove = unlink

    def rmdir(self, path, *, dir_fd=None) -> None:
        text, _ = _fspath(path)
        self._call(lambda: self.vfs.rmdir(self.caller, text, self._start(text, dir_fd)), filename=path)

    def removedirs(self, name) -> None:
        self.rmdir(name)
        head, tail = self.path.split(name)
        if not tail:
            head, tail = self.path.split(head)
        while head and tail:
            try:
                self.rmdir(head)
            except OSError:
                break
            head, tail = self.path.split(head)

    def rename(self, src, dst, *, src_dir_fd=None, dst_dir_fd=None, flags: int = 0) -> None:
        s, _ = _fspath(src)
        d, _ = _fspath(dst)
        self._call(lambda: self.vfs.rename(self.caller, s, self._start(s, src_dir_fd), d,
                                           self._start(d, dst_dir_fd), flags),
                   filename=src, filename2=dst)

    def replace(self, src, dst, *, src_dir_fd=None, dst_dir_fd=None) -> None:
        self.rename(src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)

    def renames(self, old, new) -> None:
        head, tail = self.path.split(new)
        if head and tail and not self.path.exists(head):
            self.makedirs(head)
        self.rename(old, new)
        head, tail = self.path.split(old)
        if head and tail:
            try:
                self.removedirs(head)
            except OSError:
                pass

    # -- directories --------------------------------------------------------------------------

    def listdir(self, path=None) -> list:
        if path is None:
            path = "."
        ino = self._ino(path)
        entries = self._call(self.vfs.readdir, self.caller, ino, filename=path)
        if isinstance(path, bytes):
            return [os.fsencode(e.name) for e in entries]
        return [e.name for e in entries]

    def scandir(self, path=None):
        from zcsdfs.scandir import ScandirIterator
        if path is None:
            path = "."
        ino = self._ino(path)
        entries = self._call(self.vfs.readdir, self.caller, ino, filename=path)
        return ScandirIterator(self, path, entries)

    def walk(self, top, topdown: bool = True, onerror=None, followlinks: bool = False):
        from zcsdfs.scandir import walk
        return walk(self, top, topdown, onerror, followlinks)

    def fwalk(self, top=".", topdown: bool = True, onerror=None, *, follow_symlinks: bool = False,
              dir_fd=None):
        from zcsdfs.scandir import fwalk
        return fwalk(self, top, topdown, onerror, follow_symlinks, dir_fd)

    def getcwd(self) -> str:
        return self._call(self.vfs.path_of, self._cwd)

    def getcwdb(self) -> bytes:
        return os.fsencode(self.getcwd())

    def chdir(self, path) -> None:
        if isinstance(path, int):
            return self.fchdir(path)
        ino = self._ino(path)
        st = self.vfs.getattr(ino)
        if not stat_module.S_ISDIR(st.st_mode):
            raise os_error(errno.ENOTDIR, path)
        from zcsdfs.vfs.permissions import X, allowed
        if not allowed(self.caller, st, X):
            raise os_error(errno.EACCES, path)
        self._cwd = ino

    # -- extended attributes ------------------------------------------------------------------

    @staticmethod
    def _xattr_name(attribute) -> str:
        text, _ = _fspath(attribute)
        return text

    def getxattr(self, path, attribute, *, follow_symlinks: bool = True) -> bytes:
        ino = self._ino(path, None, follow_symlinks)
        name = self._xattr_name(attribute)
        return self._call(self.vfs.getxattr, self.caller, ino, name, filename=path)

    def setxattr(self, path, attribute, value, flags: int = 0, *, follow_symlinks: bool = True) -> None:
        ino = self._ino(path, None, follow_symlinks)
        name = self._xattr_name(attribute)
        self._call(self.vfs.setxattr, self.caller, ino, name, bytes(value), flags, filename=path)

    def listxattr(self, path=None, *, follow_symlinks: bool = True) -> list[str]:
        ino = self._ino("." if path is None else path, None, follow_symlinks)
        return self._call(self.vfs.listxattr, self.caller, ino, filename=path)

    def removexattr(self, path, attribute, *, follow_symlinks: bool = True) -> None:
        ino = self._ino(path, None, follow_symlinks)
        name = self._xattr_name(attribute)
        self._call(self.vfs.removexattr, self.caller, ino, name, filename=path)

    def fcntl(self, fd: int, cmd: int, arg=0):
        """``fcntl.fcntl`` for the write lifetime hints, as Linux takes them: ``F_SET_RW_HINT``
        with an 8-byte buffer holding an RWH_WRITE_LIFE_* value (``struct.pack("Q", hint)``),
        ``F_GET_RW_HINT`` with an 8-byte buffer that comes back holding the hint. The lfs puts
        each lifetime's data in zones of its own (ZenFS's placement), so files that die
        together free whole zones. Other commands on zcsdfs descriptors: EINVAL."""
        if not self._mine(fd):
            import fcntl
            return fcntl.fcntl(fd, cmd, arg)
        of = self._file(fd)
        if cmd not in (F_GET_RW_HINT, F_SET_RW_HINT) or isinstance(arg, int):
            raise os_error(errno.EINVAL)  # an int is no pointer: Linux would say EFAULT
        buf = bytes(arg)
        if len(buf) < 8:
            raise os_error(errno.EFAULT)
        if cmd == F_SET_RW_HINT:
            self.vfs.set_write_hint(of, int.from_bytes(buf[:8], "little"))
            return buf
        return self.vfs.write_hint(of).to_bytes(8, "little") + buf[8:]

    # -- the volume ---------------------------------------------------------------------------

    def statvfs(self, path) -> os.statvfs_result:
        if isinstance(path, int):
            return self.fstatvfs(path)
        self._ino(path)
        return self._statvfs()

    def _statvfs(self) -> os.statvfs_result:
        s = self.vfs.statfs()
        flag = os.ST_NOSUID | os.ST_NODEV | (os.ST_RDONLY if self.vfs.readonly else 0)
        return os.statvfs_result((s.f_bsize, s.f_frsize, s.f_blocks, s.f_bfree, s.f_bavail, s.f_files,
                                  s.f_ffree, s.f_favail, flag, s.f_namemax), {"f_fsid": self.dev})

    def sync(self) -> None:
        self.vfs.sync()

    # -- computational storage ----------------------------------------------------------------

    def csd_stats(self):
        """Totals of every CSD kernel run on this volume (a ``zcsdfs.vfs.csd.CsdStats`` copy)."""
        return copy.copy(self.vfs.csd.stats)

    def csd_result(self, fd: int) -> bytes:
        """The last output of the write-event kernel bound to ``fd`` (or to this process's file)."""
        return self.vfs.csd.event_result(self._file(fd), self._caller)


def _release(stack, vfs, fds) -> None:
    """Unmount what a Volume held: its descriptors, then its stack (the lfs, and the device it opened).

    A ``weakref.finalize`` callback: it refers to no Volume, so a dropped one
    is collected, and runs at most once.
    """
    for of in {id(of): of for of in fds.close_all()}.values():  # dup'd ones once
        of.refs = 1
        vfs.close(of)
    stack.close()


def close_range(volumes, fd_low: int, fd_high: int, real_closerange=None) -> None:
    """``os.closerange(fd_low, fd_high)`` in a process with zcsdfs ``volumes``: each one's
    descriptors in the range closed through it, then the real ones in the range closed, sparing
    every number a zcsdfs table holds (any volume's descriptors, and the reserved number each
    duplicates them from: without it a volume could open nothing more).

    ``Volume.closerange`` passes its own volume; the shim's ``os.closerange`` passes every
    mounted one, and the original ``os.closerange`` as ``real_closerange`` (the default looks
    ``os.closerange`` up at call time, so under the shim it is the stand-in)."""
    for volume in volumes:
        for fd in sorted(fd for fd, _ in volume._fds.items() if fd_low <= fd < fd_high):
            volume.close(fd)
    real_closerange = real_closerange or os.closerange
    low = fd_low
    for fd in sorted(all_numbers()) + [fd_high]:
        if fd < low or fd > fd_high:
            continue
        if low < fd:
            real_closerange(low, fd)
        low = fd + 1
