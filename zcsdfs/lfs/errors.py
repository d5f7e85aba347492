"""Errors of the file system, each an ``OSError`` with the errno Linux gives.

The vfs layer above passes these through unchanged, so a program sees the
same errno it would see on ext4 or F2FS; ``filename`` carries the name the
failing operation was given, where there is one.
"""

from __future__ import annotations

import errno


class FsError(OSError):
    """Base of every file system error."""

    errno_value = errno.EIO

    def __init__(self, message: str, name: str | bytes | None = None):
        super().__init__(self.errno_value, message)
        if name is not None:
            self.filename = name


class NotFound(FsError):
    errno_value = errno.ENOENT


class Exists(FsError):
    errno_value = errno.EEXIST


class NotADirectory(FsError):
    errno_value = errno.ENOTDIR


class IsADirectory(FsError):
    errno_value = errno.EISDIR


class NotEmpty(FsError):
    errno_value = errno.ENOTEMPTY


class NameTooLong(FsError):
    errno_value = errno.ENAMETOOLONG


class NoSpace(FsError):
    errno_value = errno.ENOSPC


class NoData(FsError):
    """No such extended attribute (Linux's ENOATTR is ENODATA)."""

    errno_value = errno.ENODATA


class Invalid(FsError):
    errno_value = errno.EINVAL


class NotSupported(FsError):
    """An extended attribute namespace this layer does not store, or a fallocate mode it lacks."""

    errno_value = errno.EOPNOTSUPP


class OutOfRange(FsError):
    """An extended attribute name or value longer than the limits."""

    errno_value = errno.ERANGE


class ArgumentTooBig(FsError):
    """An extended attribute value over the size limit."""

    errno_value = errno.E2BIG


class NotPermitted(FsError):
    errno_value = errno.EPERM


class TooBig(FsError):
    errno_value = errno.EFBIG


class TooManyLinks(FsError):
    errno_value = errno.EMLINK


class CrossDevice(FsError):
    errno_value = errno.EXDEV


class Busy(FsError):
    """Renaming "." or ".." (Linux refuses with EBUSY: they are in use as mount points of the path)."""

    errno_value = errno.EBUSY


class NoSuchAddress(FsError):
    """SEEK_DATA or SEEK_HOLE at or past the end of file, or SEEK_DATA with no data after the offset."""

    errno_value = errno.ENXIO


class IllegalSeek(FsError):
    """fallocate on a FIFO."""

    errno_value = errno.ESPIPE


class NoSuchDevice(FsError):
    """fallocate on an inode that is neither a regular file nor a directory nor a FIFO."""

    errno_value = errno.ENODEV


class Corrupted(FsError):
    """An on-disk record failed its checks (Linux's EFSCORRUPTED is EUCLEAN)."""

    errno_value = errno.EUCLEAN


class NotZcsdfs(FsError):
    """No zcsdfs superblock: mount(2) answers EINVAL for a wrong file system type."""

    errno_value = errno.EINVAL


class ReadOnly(FsError):
    """A change to a file system mounted read-only."""

    errno_value = errno.EROFS


class UnsupportedFormat(FsError):
    """A zcsdfs volume of another on-disk format version: mount(2) answers EINVAL."""

    errno_value = errno.EINVAL


class DataCorrupted(FsError):
    """A data block that fails its checksum: the read fails with EIO, as on btrfs or ZFS."""

    errno_value = errno.EIO


class Unmounted(FsError):
    """An operation on a file system after ``unmount``."""

    errno_value = errno.ESHUTDOWN
