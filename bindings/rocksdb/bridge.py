"""The Python half of RocksDB's FileSystem: filesystem.cc's callbacks, served by the vfs.

One ``Bridge`` per open DB holds the volume and the files RocksDB has open (handles are
small integers; the C++ side never sees Python objects). The callbacks run on whichever
thread RocksDB uses (the caller's, or its flush and compaction threads); cffi takes the GIL
for them, and the lfs's own lock serialises what must be. They return 0 or an errno: an
``OSError`` from the vfs becomes its errno, anything else EIO, kept on the bridge so the
DB can raise it on the Python side.
"""

from __future__ import annotations

import errno
import itertools
import os

from zcsdfs.vfs.errors import os_error

from ._native import ffi, lib

READ, CREATE_TRUNC, CREATE_KEEP, DIRECTORY = range(4)
UNLINK, MKDIR, RMDIR, RENAME, LINK = range(5)

_FLAGS = {
    READ: os.O_RDONLY | os.O_NOATIME,
    CREATE_TRUNC: os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
    CREATE_KEEP: os.O_WRONLY | os.O_CREAT,
    DIRECTORY: os.O_RDONLY | os.O_DIRECTORY | os.O_NOATIME,
}

_bridges: dict[int, "Bridge"] = {}
_locks: set[tuple[int, int]] = set()  # (id of the volume's lfs, inode) of every LOCK held here
_ids = itertools.count(1)


class Bridge:
    """A volume as one DB's file system."""

    def __init__(self, volume, *, lifetime_hints: bool = True):
        self.volume = volume
        self.vfs = volume.vfs
        self.caller = volume.caller
        self.root = volume.vfs.root
        self.lifetime_hints = lifetime_hints
        self.files: dict[int, object] = {}
        self.locks: dict[str, tuple[int, int]] = {}
        self.failure: BaseException | None = None  # a non-OSError raised by a callback
        self.bytes_written = 0  # what RocksDB appended (write amplification's denominator)
        self.bytes_read = 0  # what RocksDB read from its files (what crossed to the host)
        self._handles = itertools.count(1)
        self.id = next(_ids)
        _bridges[self.id] = self

    def forget(self) -> None:
        """Close what RocksDB left open and stop answering for this bridge."""
        for key in self.locks.values():
            _locks.discard(key)
        self.locks.clear()
        for of in list(self.files.values()):
            self.vfs.close(of)
        self.files.clear()
        _bridges.pop(self.id, None)

    # -- the operations (paths are absolute in the volume) ------------------------------------

    def open(self, path: str, mode: int) -> tuple[int, int]:
        of = self.vfs.open(self.caller, path, self.root, _FLAGS[mode], 0o644)
        handle = next(self._handles)
        self.files[handle] = of
        return handle, self.vfs.getattr(of.ino).st_size

    def close(self, handle: int) -> None:
        self.vfs.close(self.files.pop(handle))

    def stat(self, path: str):
        return self.vfs.stat(self.caller, path, self.root)

    def children(self, path: str) -> list[str]:
        ino = self.vfs.lookup(self.caller, path, self.root)
        return [e.name for e in self.vfs.readdir(self.caller, ino)]

    def path_op(self, op: int, a: str, b: str) -> None:
        vfs, caller, root = self.vfs, self.caller, self.root
        if op == UNLINK:
            vfs.unlink(caller, a, root)
        elif op == MKDIR:
            vfs.mkdir(caller, a, root, 0o755)
        elif op == RMDIR:
            vfs.rmdir(caller, a, root)
        elif op == RENAME:
            vfs.rename(caller, a, root, b, root, 0)
        elif op == LINK:
            vfs.link(caller, a, root, b, root, False)
        else:
            raise os_error(errno.EINVAL)

    def lock(self, path: str, acquire: bool) -> None:
        """Take or drop a DB's LOCK file; EAGAIN if this process already holds it."""
        if acquire:
            handle, _ = self.open(path, CREATE_KEEP)
            key = (id(self.volume.fs), self.files[handle].ino)
            self.close(handle)
            if key in _locks:
                raise os_error(errno.EAGAIN, path)
            _locks.add(key)
            self.locks[path] = key
        else:
            _locks.discard(self.locks.pop(path, None))

    def hint(self, handle: int, hint: int) -> None:
        """RocksDB's WriteLifeTimeHint has Linux's RWH_WRITE_LIFE_* numbering: F_SET_RW_HINT."""
        if self.lifetime_hints and 0 <= hint <= 5:
            self.vfs.set_write_hint(self.files[handle], hint)


def _guarded(fn):
    """A callback body: 0 on success, the errno of an OSError, EIO (remembered) otherwise."""
    def call(fs, *args):
        bridge = _bridges.get(fs)
        if bridge is None:
            return errno.EBADF
        try:
            fn(bridge, *args)
            return 0
        except OSError as exc:
            return exc.errno or errno.EIO
        except BaseException as exc:  # noqa: BLE001 -- handed to the DB's caller, not dropped
            bridge.failure = exc
            return errno.EIO
    return call


def _path(p) -> str:
    return os.fsdecode(ffi.string(p))


@_guarded
def _open(b, path, mode, h, size):
    h[0], size[0] = b.open(_path(path), mode)


@_guarded
def _close(b, h):
    b.close(h)


@_guarded
def _read(b, h, offset, n, buf, got):
    data = b.vfs.read(b.files[h], n, offset)
    ffi.memmove(buf, data, len(data))
    got[0] = len(data)
    b.bytes_read += len(data)


@_guarded
def _write(b, h, offset, buf, n):
    data = ffi.buffer(buf, n)[:]  # a copy: the lfs may keep what it is given
    done = b.vfs.write(b.caller, b.files[h], data, offset)
    b.bytes_written += done
    if done != n:  # the lfs writes short only when space ran out
        raise os_error(errno.ENOSPC)


@_guarded
def _sync(b, h, data_only):
    b.vfs.fsync(b.files[h], bool(data_only))


@_guarded
def _truncate(b, h, size):
    b.vfs.truncate(b.caller, b.files[h].ino, size, check_access=False)


@_guarded
def _hint(b, h, hint):
    b.hint(h, hint)


@_guarded
def _stat(b, path, size, mtime, nlink, is_dir):
    st = b.stat(_path(path))
    size[0] = st.st_size
    mtime[0] = st.st_mtime_ns // 10**9  # RocksDB wants seconds, as PosixFileSystem gives
    nlink[0] = st.st_nlink
    is_dir[0] = 1 if (st.st_mode & 0o170000) == 0o040000 else 0


@_guarded
def _inode(b, path, ino):
    ino[0] = b.vfs.lookup(b.caller, _path(path), b.root)


@_guarded
def _children(b, path, out):
    for name in b.children(_path(path)):
        raw = os.fsencode(name)
        lib.zr_push_child(out, raw, len(raw))


@_guarded
def _path_op(b, op, a, b2):
    b.path_op(op, _path(a), _path(b2))


@_guarded
def _free_space(b, out):
    s = b.vfs.statfs()
    out[0] = s.f_bavail * s.f_frsize


@_guarded
def _lock(b, path, acquire):
    b.lock(_path(path), bool(acquire))


def _install() -> None:
    table = ffi.new("struct zr_callbacks *")
    kept = []
    for name, fn in (("open", _open), ("close", _close), ("read", _read), ("write", _write),
                     ("sync", _sync), ("truncate", _truncate), ("hint", _hint), ("stat", _stat),
                     ("inode", _inode), ("children", _children), ("path_op", _path_op),
                     ("free_space", _free_space), ("lock", _lock)):
        ctype = ffi.typeof(getattr(table, name))
        cb = ffi.callback(ctype, fn, error=errno.EIO)
        setattr(table, name, cb)
        kept.append(cb)
    lib.zr_set_callbacks(table)
    _install.kept = (table, kept)  # the C side keeps raw pointers: these must live forever


_install()
