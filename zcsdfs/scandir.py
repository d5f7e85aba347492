"""Directory iteration for a volume: ``scandir``'s entries, and ``walk``/``fwalk`` built on it.

``DirEntry`` behaves as ``os.DirEntry``: its type comes with the listing,
so ``is_dir``/``is_file``/``is_symlink`` cost nothing unless a symbolic link
must be followed, and ``stat`` is fetched once and cached.
"""

from __future__ import annotations

import os
import stat as stat_module



class DirEntry:
    __slots__ = ("name", "path", "_volume", "_ino", "_type", "_stat", "_lstat", "_dir_fd")

    def __init__(self, volume, name, path, ino: int, kind: int, dir_fd=None):
        self._volume = volume
        self.name = name
        self.path = path
        self._ino = ino
        self._type = kind
        self._stat = None
        self._lstat = None
        self._dir_fd = dir_fd

    def inode(self) -> int:
        return self._ino

    def is_symlink(self) -> bool:
        return self._type == stat_module.S_IFLNK

    def stat(self, *, follow_symlinks: bool = True) -> os.stat_result:
        if not follow_symlinks or not self.is_symlink():
            if self._lstat is None:
                self._lstat = self._volume.stat(self._where(), dir_fd=self._dir_fd, follow_symlinks=False)
            return self._lstat
        if self._stat is None:
            self._stat = self._volume.stat(self._where(), dir_fd=self._dir_fd)
        return self._stat

    def _where(self):
        return self.name if self._dir_fd is not None else self.path

    def _is(self, kind: int, follow_symlinks: bool) -> bool:
        if follow_symlinks and self.is_symlink():
            try:
                return stat_module.S_IFMT(self.stat().st_mode) == kind
            except FileNotFoundError:
                return False
        return self._type == kind

    def is_dir(self, *, follow_symlinks: bool = True) -> bool:
        return self._is(stat_module.S_IFDIR, follow_symlinks)

    def is_file(self, *, follow_symlinks: bool = True) -> bool:
        return self._is(stat_module.S_IFREG, follow_symlinks)

    def is_junction(self) -> bool:
        return False

    def __fspath__(self):
        return self.path

    def __repr__(self) -> str:
        return f"<DirEntry {self.name!r}>"


class ScandirIterator:
    """What ``scandir`` returns: an iterator and a context manager."""

    def __init__(self, volume, path, entries):
        self._entries = iter(entries)
        self._volume = volume
        self._fd = path if isinstance(path, int) else None
        if self._fd is not None:
            self._prefix = None
        else:
            text = os.fspath(path)
            self._bytes = isinstance(text, bytes)
            self._prefix = text

    def __iter__(self):
        return self

    def __next__(self) -> DirEntry:
        e = next(self._entries)
        if self._fd is not None:
            return DirEntry(self._volume, e.name, e.name, e.ino, e.type, dir_fd=self._fd)
        name = os.fsencode(e.name) if self._bytes else e.name
        return DirEntry(self._volume, name, os.path.join(self._prefix, name), e.ino, e.type)

    def close(self) -> None:
        self._entries = iter(())

    def __enter__(self) -> "ScandirIterator":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def walk(volume, top, topdown=True, onerror=None, followlinks=False):
    """``os.walk`` over a volume."""
    top = os.fspath(top)
    try:
        scan = volume.scandir(top)
    except OSError as exc:
        if onerror is not None:
            onerror(exc)
        return
    dirs, nondirs, walk_into = [], [], []
    with scan:
        for entry in scan:
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            (dirs if is_dir else nondirs).append(entry.name)
            if not topdown and is_dir:
                if followlinks or not entry.is_symlink():
                    walk_into.append(entry.path)
    if topdown:
        yield top, dirs, nondirs
        for name in dirs:
            new_path = os.path.join(top, name)
            if followlinks or not volume.path.islink(new_path):
                yield from walk(volume, new_path, topdown, onerror, followlinks)
    else:
        for new_path in walk_into:
            yield from walk(volume, new_path, topdown, onerror, followlinks)
        yield top, dirs, nondirs


def fwalk(volume, top=".", topdown=True, onerror=None, follow_symlinks=False, dir_fd=None):
    """``os.fwalk`` over a volume: yields (dirpath, dirnames, filenames, dirfd).

    As in ``os``: entries are sorted into dirnames by following symbolic
    links, but a link is only walked into with ``follow_symlinks``; a
    missing ``top`` raises.
    """
    top = os.fspath(top)
    if not follow_symlinks:
        before = volume.stat(top, follow_symlinks=False, dir_fd=dir_fd)
    topfd = volume.open(top, os.O_RDONLY, dir_fd=dir_fd)
    try:
        if follow_symlinks or (stat_module.S_ISDIR(before.st_mode)
                               and os.path.samestat(before, volume.fstat(topfd))):
            yield from _fwalk(volume, topfd, top, topdown, onerror, follow_symlinks)
    finally:
        volume.close(topfd)


def _fwalk(volume, topfd, toppath, topdown, onerror, follow_symlinks):
    as_bytes = isinstance(toppath, bytes)
    dirs, nondirs = [], []
    for entry in volume.scandir(topfd):
        name = os.fsencode(entry.name) if as_bytes else entry.name
        try:
            (dirs if entry.is_dir() else nondirs).append(name)
        except OSError:
            if entry.is_symlink():
                nondirs.append(name)
    if topdown:
        yield toppath, dirs, nondirs, topfd
    for name in dirs:
        try:
            if not follow_symlinks:
                before = volume.stat(name, dir_fd=topfd, follow_symlinks=False)
            dirfd = volume.open(name, os.O_RDONLY, dir_fd=topfd)
        except OSError as exc:
            if onerror is not None:
                onerror(exc)
            continue
        try:
            if follow_symlinks or os.path.samestat(before, volume.fstat(dirfd)):
                yield from _fwalk(volume, dirfd, os.path.join(toppath, name), topdown, onerror,
                                  follow_symlinks)
        finally:
            volume.close(dirfd)
    if not topdown:
        yield toppath, dirs, nondirs, topfd
