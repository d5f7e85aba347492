"""The stand-ins for ``os``, ``os.path``, ``io`` and ``builtins`` functions while the shim is installed.

Each stand-in asks the router where its path or descriptor lives and calls
either the original function, with the caller's arguments untouched, or the
same-named method of that volume, with the path as the volume names it;
errors then name the caller's paths, as ``os`` would. Functions written in
Python on top of these (``os.walk``, ``os.makedirs``, ``shutil``,
``pathlib``, ``glob``, ``tempfile``, the ``os.path`` predicates) need no
stand-in: they look their ``os`` functions up at call time.

zcsdfs itself goes through the stand-ins too (its volumes reach the real
file system through ``os``): a path under a prefix is in the volume for
everybody in the process, as a mount point would be.
"""

from __future__ import annotations

import errno
import functools
import io
import os
import posixpath
import types

from zcsdfs import io as zcsdfs_io
from zcsdfs import tracked_umask as zcsdfs_umask
from zcsdfs.scandir import DirEntry as VolumeDirEntry
from zcsdfs.vfs.errors import os_error
from zcsdfs.volume import close_range
from zcsdfs.shim.router import router


#: original -> stand-in: what ``patching`` puts in place of each original.
STAND_INS: dict[object, object] = {}


def _call(fn, names, *args, **kwargs):
    """Run a volume method; its errors name the caller's paths instead of the volume's.

    ``names`` pairs each path the volume was given with the caller's
    spelling of it: ``(where, path)`` or ``(where, path, where2, path2)``.
    """
    try:
        return fn(*args, **kwargs)
    except OSError as exc:
        if names is None or exc.filename is None:
            raise
        raise _renamed(exc, names) from None


def _renamed(exc: OSError, names) -> OSError:
    def caller_name(name):
        for where, path in zip(names[::2], names[1::2]):
            if name is where or name == where:
                return path
        return name
    filename2 = None if exc.filename2 is None else caller_name(exc.filename2)
    return os_error(exc.errno, caller_name(exc.filename), filename2)


def _stand_in(original):
    """Register the decorated function as the stand-in for ``original``."""
    def register(fn):
        functools.update_wrapper(fn, original)
        STAND_INS[original] = fn
        return fn
    return register


# -- descriptors -----------------------------------------------------------------------------

def _fd_function(name: str, accepts_objects: bool = False):
    """A stand-in for an ``os`` function whose first argument is a descriptor."""
    original = getattr(os, name)

    @_stand_in(original)
    def shimmed(fd, *args, **kwargs):
        if accepts_objects and not isinstance(fd, int) and hasattr(fd, "fileno"):
            fd = fd.fileno()
        for mount in router.mounts:
            if mount.volume.holds(fd):  # the method checks the number is still the volume's
                return _call(getattr(mount.volume, name), None, fd, *args, **kwargs)
        return original(fd, *args, **kwargs)
    return shimmed


FD_FUNCTIONS = ("close", "dup", "read", "readv", "write", "writev", "pread", "preadv", "pwrite",
                "pwritev", "lseek", "fstat", "ftruncate", "posix_fallocate", "posix_fadvise",
                "fstatvfs", "fchmod", "fchown", "set_blocking", "get_blocking", "isatty")
for _name in FD_FUNCTIONS:
    _fd_function(_name)
for _name in ("fsync", "fdatasync"):
    _fd_function(_name, accepts_objects=True)

_dup2 = os.dup2


@_stand_in(os.dup2)
def dup2(fd, fd2, inheritable=True):
    source, target = router.owner(fd), router.owner(fd2)
    if source is None and target is None:
        return _dup2(fd, fd2, inheritable)
    if source is not None and target is not None and target is not source:
        _call(target.volume.close, None, fd2)
    return _call((source or target).volume.dup2, None, fd, fd2, inheritable)


_closerange = os.closerange


@_stand_in(os.closerange)
def closerange(fd_low, fd_high):
    """Close every descriptor in the range through whoever owns it, sparing each volume's reserve."""
    mounts = router.mounts
    if not mounts:
        return _closerange(fd_low, fd_high)
    close_range([mount.volume for mount in mounts], fd_low, fd_high, _closerange)


def _two_descriptors(first, second):
    """The volume both descriptors belong to, None if both are real; EXDEV-like mixes are the
    volume method's to refuse (it knows the errno Linux gives), two volumes here."""
    a, b = router.owner(first), router.owner(second)
    if a is not None and b is not None and a is not b:
        return False
    return a or b


_sendfile, _copy_file_range = os.sendfile, os.copy_file_range


@_stand_in(os.sendfile)
def sendfile(out_fd, in_fd, offset, count):
    mount = _two_descriptors(out_fd, in_fd)
    if mount is None:
        return _sendfile(out_fd, in_fd, offset, count)
    if mount is False:
        raise os_error(errno.EINVAL)  # as Linux, for files it cannot splice
    return _call(mount.volume.sendfile, None, out_fd, in_fd, offset, count)


@_stand_in(os.copy_file_range)
def copy_file_range(src, dst, count, offset_src=None, offset_dst=None):
    mount = _two_descriptors(src, dst)
    if mount is None:
        return _copy_file_range(src, dst, count, offset_src, offset_dst)
    if mount is False:
        raise os_error(errno.EXDEV)
    return _call(mount.volume.copy_file_range, None, src, dst, count, offset_src, offset_dst)


# -- paths -----------------------------------------------------------------------------------

_MISSING = object()


def _path_function(name: str, result=None, optional: bool = False):
    """A stand-in for an ``os`` function whose first argument is a path (or, where os allows, a
    descriptor; with ``optional``, None or nothing for the current directory).
    ``result(mount, value, path)`` adjusts what a volume returns."""
    original = getattr(os, name)

    @_stand_in(original)
    def shimmed(path=_MISSING, *args, **kwargs):
        if path is _MISSING:
            if not optional:
                return original(*args, **kwargs)  # os's own TypeError
            path = None
        if isinstance(path, int):
            mount = router.owner(path)
            if mount is None:
                return original(path, *args, **kwargs)
            value = _call(getattr(mount.volume, name), None, path, *args, **kwargs)
            return value if result is None else result(mount, value, path)
        if path is None and optional:
            place = None if router.cwd is None else (router.cwd, ".", None)
        else:
            place = router.locate(path, kwargs.get("dir_fd"))
        if place is None:
            return original(path, *args, **kwargs)
        mount, where, dir_fd = place
        if "dir_fd" in kwargs:
            kwargs["dir_fd"] = dir_fd
        if mount is None:
            return original(where, *args, **kwargs)
        value = _call(getattr(mount.volume, name), (where, path), where, *args, **kwargs)
        return value if result is None else result(mount, value, path)
    return shimmed


PATH_FUNCTIONS = ("open", "stat", "lstat", "access", "chmod", "chown", "lchown", "utime", "truncate",
                  "mkdir", "mkfifo", "mknod", "unlink", "remove", "rmdir", "getxattr", "setxattr",
                  "removexattr", "statvfs")
for _name in PATH_FUNCTIONS:
    _path_function(_name)
for _name in ("listdir", "listxattr"):
    _path_function(_name, optional=True)


def _link_text(mount, target, path):
    """``readlink``: an absolute target is rooted at the volume, so outside it starts with the prefix."""
    if target[:1] in ("/", b"/"):
        return mount.outside(target)
    return target


readlink = _path_function("readlink", result=_link_text)


class Entry:
    """A ``DirEntry`` of a directory in a volume, with ``path`` spelled as the caller spelled the directory."""

    __slots__ = ("_entry", "name", "path")

    def __init__(self, entry, path):
        self._entry = entry
        self.name = entry.name
        self.path = path

    def inode(self) -> int:
        return self._entry.inode()

    def is_dir(self, *, follow_symlinks: bool = True) -> bool:
        return self._entry.is_dir(follow_symlinks=follow_symlinks)

    def is_file(self, *, follow_symlinks: bool = True) -> bool:
        return self._entry.is_file(follow_symlinks=follow_symlinks)

    def is_symlink(self) -> bool:
        return self._entry.is_symlink()

    def is_junction(self) -> bool:
        return False

    def stat(self, *, follow_symlinks: bool = True) -> os.stat_result:
        return self._entry.stat(follow_symlinks=follow_symlinks)

    def __fspath__(self):
        return self.path

    def __repr__(self) -> str:
        return f"<DirEntry {self.name!r}>"


class Listing:
    """What ``os.scandir`` returns for a directory in a volume: an iterator and a context manager."""

    def __init__(self, entries, directory):
        self._entries = entries
        self._directory = directory

    def __iter__(self):
        return self

    def __next__(self) -> Entry:
        entry = next(self._entries)
        return Entry(entry, posixpath.join(self._directory, entry.name))

    def close(self) -> None:
        self._entries.close()

    def __enter__(self) -> "Listing":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_DirEntry = os.DirEntry


class _DirEntryType(type):
    """``isinstance(e, os.DirEntry)`` holds for real entries and for a volume's alike (shutil
    asks it before using an entry's cached ``stat``); os.DirEntry cannot be subclassed."""

    def __instancecheck__(cls, obj):
        return isinstance(obj, (_DirEntry, Entry, VolumeDirEntry))

    def __subclasscheck__(cls, sub):
        return issubclass(sub, (_DirEntry, Entry, VolumeDirEntry))


class DirEntry(metaclass=_DirEntryType):
    """``os.DirEntry`` while the shim is installed."""

    def __new__(cls, *args, **kwargs):
        raise TypeError("cannot create 'posix.DirEntry' instances")

    __class_getitem__ = classmethod(types.GenericAlias)


DirEntry.__module__ = _DirEntry.__module__
STAND_INS[_DirEntry] = DirEntry


def _listing(mount, entries, path):
    if isinstance(path, int):
        return entries
    return Listing(entries, "." if path is None else os.fspath(path))


scandir = _path_function("scandir", result=_listing, optional=True)


def _two_path_function(name: str):
    """A stand-in for rename/replace/link: both paths in one file system, or EXDEV."""
    original = getattr(os, name)

    @_stand_in(original)
    def shimmed(src, dst, *, src_dir_fd=None, dst_dir_fd=None, **kwargs):
        a, b = router.locate(src, src_dir_fd), router.locate(dst, dst_dir_fd)
        if (a is None and b is None):
            return original(src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd, **kwargs)
        mount_a, where_a, fd_a = a or (None, src, src_dir_fd)
        mount_b, where_b, fd_b = b or (None, dst, dst_dir_fd)
        if mount_a is not mount_b:
            raise os_error(errno.EXDEV, src, dst)
        if mount_a is None:
            return original(where_a, where_b, src_dir_fd=fd_a, dst_dir_fd=fd_b, **kwargs)
        return _call(getattr(mount_a.volume, name), (where_a, src, where_b, dst), where_a, where_b,
                     src_dir_fd=fd_a, dst_dir_fd=fd_b, **kwargs)
    return shimmed


rename = _two_path_function("rename")
replace = _two_path_function("replace")
link = _two_path_function("link")

_symlink = os.symlink


@_stand_in(os.symlink)
def symlink(src, dst, target_is_directory=False, *, dir_fd=None):
    """A link in a volume stores an absolute target under its prefix as rooted at the volume;
    any other absolute target also resolves inside the volume (links never lead out of it)."""
    place = router.locate(dst, dir_fd)
    if place is None:
        return _symlink(src, dst, target_is_directory, dir_fd=dir_fd)
    mount, where, fd = place
    if mount is None:
        return _symlink(src, where, target_is_directory, dir_fd=fd)
    target = src
    if os.fspath(src)[:1] in ("/", b"/"):
        found = router.locate(src)
        if found is not None and found[0] is mount:
            target = found[1]
    return _call(mount.volume.symlink, (target, src, where, dst), target, where, target_is_directory, dir_fd=fd)


# -- the umask --------------------------------------------------------------------------------

# Importing zcsdfs made os.umask note each new umask (volumes apply it to every create); a module
# that took the original before (``from os import umask``) gets the noting one too.
STAND_INS[zcsdfs_umask._real] = zcsdfs_umask.umask


# -- the current directory -------------------------------------------------------------------

_chdir, _fchdir, _getcwd = os.chdir, os.fchdir, os.getcwd


@_stand_in(os.fchdir)
def fchdir(fd):
    mount = router.owner(fd)
    if mount is None:
        _fchdir(fd)
    else:
        _call(mount.volume.fchdir, None, fd)
    router.entered(mount)


@_stand_in(os.chdir)
def chdir(path):
    if isinstance(path, int):
        return fchdir(path)
    place = router.locate(path)
    if place is None:
        _chdir(path)
        return router.entered(None)
    mount, where, _ = place
    if mount is None:
        _chdir(where)
    else:
        _call(mount.volume.chdir, (where, path), where)
    router.entered(mount)


@_stand_in(os.getcwd)
def getcwd():
    if router.cwd is None:
        return _getcwd()
    return router.getcwd()


@_stand_in(os.getcwdb)
def getcwdb():
    return os.fsencode(getcwd())


# -- os.path ---------------------------------------------------------------------------------

_realpath = posixpath.realpath


@_stand_in(posixpath.realpath)
def realpath(filename, *, strict=False):
    """Inside a volume, links resolve as the volume resolves them (never out of it)."""
    place = router.locate(filename)
    if place is None:
        return _realpath(filename, strict=strict)
    mount, where, _ = place
    if mount is None:
        return _realpath(where, strict=strict)
    return mount.outside(_call(mount.volume.path.realpath, (where, filename), where, strict=strict))


# -- io --------------------------------------------------------------------------------------

_open, _FileIO = io.open, io.FileIO


def _named(f, name):
    """Give a file object from a volume the name the caller opened it by."""
    raw = getattr(f, "buffer", f)
    raw = getattr(raw, "raw", raw)
    raw.name = name
    return f


@_stand_in(io.open)
def open(file, mode="r", buffering=-1, encoding=None, errors=None, newline=None,  # noqa: A001
         closefd=True, opener=None):
    if isinstance(file, int):
        mount = router.owner(file)
        if mount is None:
            return _open(file, mode, buffering, encoding, errors, newline, closefd, opener)
        return _call(mount.volume.io.open, None, file, mode, buffering, encoding, errors, newline,
                     closefd, opener)
    place = router.locate(file)
    if place is None:
        return _open(file, mode, buffering, encoding, errors, newline, closefd, opener)
    mount, where, _ = place
    if mount is None:
        return _open(where, mode, buffering, encoding, errors, newline, closefd, opener)
    if opener is not None:
        user_opener = opener

        def opener(_where, flags):  # the caller's opener sees the caller's path
            return user_opener(file, flags)
    f = _call(mount.volume.io.open, (where, file), where, mode, buffering, encoding, errors, newline,
              closefd, opener)
    return _named(f, os.fspath(file))


class _FileIOType(type):
    """``isinstance(f, io.FileIO)`` holds for real files and for zcsdfs ones alike."""

    def __instancecheck__(cls, obj):
        return isinstance(obj, (_FileIO, zcsdfs_io.FileIO))

    def __subclasscheck__(cls, sub):
        return issubclass(sub, (_FileIO, zcsdfs_io.FileIO))


class FileIO(_FileIO, metaclass=_FileIOType):
    """``io.FileIO`` that opens files in a volume as ``zcsdfs.io.FileIO`` and real files as before."""

    def __new__(cls, file, mode="r", closefd=True, opener=None):
        if cls is not FileIO:  # a subclass defined while the shim is installed: a real file
            return _FileIO.__new__(cls)
        if isinstance(file, int):
            mount = router.owner(file)
            if mount is None:
                return _FileIO(file, mode, closefd, opener)
            return _call(mount.volume.io.FileIO, None, file, mode, closefd, opener)
        place = router.locate(file)
        if place is None:
            return _FileIO(file, mode, closefd, opener)
        mount, where, _ = place
        if mount is None:
            return _FileIO(where, mode, closefd, opener)
        raw = _call(mount.volume.io.FileIO, (where, file), where, mode, closefd,
                    None if opener is None else (lambda _where, flags: opener(file, flags)))
        return _named(raw, os.fspath(file))


FileIO.__module__ = _FileIO.__module__
FileIO.__qualname__ = FileIO.__name__ = "FileIO"
STAND_INS[_FileIO] = FileIO
del _name
