"""File objects over zcsdfs descriptors: ``zcsdfs.io.open`` is ``io.open`` for a volume.

``FileIO`` is a ``RawIOBase`` over a zcsdfs descriptor; ``open`` wraps it in
the same buffered and text classes the built-in ``open`` uses, so
``json``, ``csv``, ``zipfile`` and friends see ordinary file objects.
"""

from __future__ import annotations

import io
import os

DEFAULT_BUFFER_SIZE = io.DEFAULT_BUFFER_SIZE


def _parse_mode(mode: str) -> tuple[int, bool, bool, bool]:
    """(os flags, readable, writable, binary) for an ``open`` mode string, as io.open checks it."""
    chars = set(mode)
    if not isinstance(mode, str):
        raise TypeError(f"invalid mode: {mode!r}")
    if len(chars) != len(mode) or chars - set("rwxab+t") or len(chars & set("rwxa")) != 1:
        raise ValueError(f"invalid mode: {mode!r}")
    if "b" in chars and "t" in chars:
        raise ValueError("can't have text and binary mode at once")
    plus = "+" in chars
    if "r" in chars:
        flags, readable, writable = (os.O_RDWR if plus else os.O_RDONLY), True, plus
    elif "w" in chars:
        flags, readable, writable = (os.O_RDWR if plus else os.O_WRONLY) | os.O_CREAT | os.O_TRUNC, plus, True
    elif "x" in chars:
        flags, readable, writable = (os.O_RDWR if plus else os.O_WRONLY) | os.O_CREAT | os.O_EXCL, plus, True
    else:
        flags, readable, writable = (os.O_RDWR if plus else os.O_WRONLY) | os.O_CREAT | os.O_APPEND, plus, True
    return flags | os.O_CLOEXEC, readable, writable, "b" in chars


class FileIO(io.RawIOBase):
    """Raw binary I/O on a zcsdfs descriptor (``io.FileIO``'s interface)."""

    def __init__(self, volume, file, mode: str = "r", closefd: bool = True, opener=None):
        super().__init__()
        flags, self._readable, self._writable, _ = _parse_mode(mode.replace("b", "") + "b")
        self._volume = volume
        self._seekable = None
        if isinstance(file, int):
            if file < 0:
                raise ValueError("negative file descriptor")
            volume.fstat(file)
            self._fd = file
        else:
            if not closefd:
                raise ValueError("Cannot use closefd=False with file name")
            self._fd = opener(file, flags) if opener else volume.open(file, flags, 0o666)
        self._closefd = closefd
        self.name = file
        self.mode = _raw_mode(mode)
        try:
            import stat as stat_module
            if stat_module.S_ISDIR(volume.fstat(self._fd).st_mode):
                raise IsADirectoryError(21, os.strerror(21), file)
            if "a" in mode:
                volume.lseek(self._fd, 0, os.SEEK_END)
        except BaseException:
            if closefd:
                volume.close(self._fd)
            raise

    def fileno(self) -> int:
        self._checkClosed()
        return self._fd

    def readable(self) -> bool:
        self._checkClosed()
        return self._readable

    def writable(self) -> bool:
        self._checkClosed()
        return self._writable

    def seekable(self) -> bool:
        self._checkClosed()
        return True

    def readinto(self, buffer) -> int:
        self._checkClosed()
        if not self._readable:
            raise io.UnsupportedOperation("File not open for reading")
        view = memoryview(buffer).cast("B")
        data = self._volume.read(self._fd, view.nbytes)
        view[:len(data)] = data
        return len(data)

    def readall(self) -> bytes:
        self._checkClosed()
        if not self._readable:
            raise io.UnsupportedOperation("File not open for reading")
        chunks = []
        while True:
            chunk = self._volume.read(self._fd, 1 << 20)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)

    def write(self, data) -> int:
        self._checkClosed()
        if not self._writable:
            raise io.UnsupportedOperation("File not open for writing")
        return self._volume.write(self._fd, data)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        self._checkClosed()
        return self._volume.lseek(self._fd, offset, whence)

    def tell(self) -> int:
        return self.seek(0, os.SEEK_CUR)

    def truncate(self, size=None) -> int:
        self._checkClosed()
        if not self._writable:
            raise io.UnsupportedOperation("File not open for writing")
        size = self.tell() if size is None else size
        self._volume.ftruncate(self._fd, size)
        return size

    def isatty(self) -> bool:
        self._checkClosed()
        return False

    @property
    def closefd(self) -> bool:
        return self._closefd

    def close(self) -> None:
        if self.closed:
            return
        try:
            super().close()
        finally:
            if self._closefd:
                self._volume.close(self._fd)

    def __repr__(self) -> str:
        if self.closed:
            return "<zcsdfs.io.FileIO [closed]>"
        return f"<zcsdfs.io.FileIO name={self.name!r} mode={self.mode!r} closefd={self._closefd}>"


def _raw_mode(mode: str) -> str:
    """The mode FileIO reports, as io.FileIO spells it (e.g. 'rb+', 'ab', 'xb')."""
    kind = next(c for c in mode if c in "rwxa")
    if "+" in mode:
        return {"r": "rb+", "w": "rb+", "x": "xb+", "a": "ab+"}[kind]
    return {"r": "rb", "w": "wb", "x": "xb", "a": "ab"}[kind]


def open_file(volume, file, mode="r", buffering=-1, encoding=None, errors=None, newline=None,
              closefd=True, opener=None):
    """``io.open`` on a volume: a path in it, or one of its descriptors."""
    if not isinstance(file, int):
        file = os.fspath(file)
    if not isinstance(mode, str):
        raise TypeError(f"open() argument 'mode' must be str, not {type(mode).__name__}")
    _, readable, writable, binary = _parse_mode(mode)
    if binary and encoding is not None:
        raise ValueError("binary mode doesn't take an encoding argument")
    if binary and errors is not None:
        raise ValueError("binary mode doesn't take an errors argument")
    if binary and newline is not None:
        raise ValueError("binary mode doesn't take a newline argument")
    if binary and buffering == 1:
        import warnings
        warnings.warn("line buffering (buffering=1) isn't supported in binary mode, "
                      "the default buffer size will be used", RuntimeWarning, 2)
    raw = FileIO(volume, file, mode.replace("t", ""), closefd,
                 opener=(lambda path, flags: opener(path, flags)) if opener else None)
    result = raw
    try:
        line_buffering = False
        if buffering == 1 or buffering < 0 and raw.isatty():
            buffering = -1
            line_buffering = True
        if buffering < 0:
            buffering = max(DEFAULT_BUFFER_SIZE, volume.fstat(raw.fileno()).st_blksize)
        if buffering == 0:
            if binary:
                return result
            raise ValueError("can't have unbuffered text I/O")
        if readable and writable:
            buffer = io.BufferedRandom(raw, buffering)
        elif writable:
            buffer = io.BufferedWriter(raw, buffering)
        else:
            buffer = io.BufferedReader(raw, buffering)
        result = buffer
        if binary:
            return result
        encoding = io.text_encoding(encoding)
        text = io.TextIOWrapper(buffer, encoding, errors, newline, line_buffering)
        result = text
        text.mode = mode
        return result
    except BaseException:
        result.close()
        raise


class VolumeIO:
    """``zcsdfs.io`` for one volume: ``Volume.io.open`` and ``Volume.io.FileIO``."""

    def __init__(self, volume):
        self._volume = volume

    def open(self, file, mode="r", buffering=-1, encoding=None, errors=None, newline=None,
             closefd=True, opener=None):
        return open_file(self._volume, file, mode, buffering, encoding, errors, newline, closefd, opener)

    def FileIO(self, file, mode="r", closefd=True, opener=None) -> FileIO:
        return FileIO(self._volume, file, mode, closefd, opener)


def open(file, mode="r", buffering=-1, encoding=None, errors=None, newline=None, closefd=True,  # noqa: A001
         opener=None):
    """``io.open`` on the default volume."""
    from zcsdfs import default_volume
    return open_file(default_volume(), file, mode, buffering, encoding, errors, newline, closefd, opener)
