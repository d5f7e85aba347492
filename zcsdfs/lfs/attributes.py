"""What the file system reports: stat, statfs and directory entries.

Field names follow ``os.stat_result`` and ``os.statvfs_result`` so the vfs
layer can hand them to programs unchanged.
"""

from __future__ import annotations

import attrs


@attrs.frozen
class Stat:
    st_ino: int
    st_mode: int
    st_nlink: int
    st_uid: int
    st_gid: int
    st_size: int
    st_blocks: int  # 512-byte units allocated
    st_blksize: int
    st_atime_ns: int
    st_mtime_ns: int
    st_ctime_ns: int
    st_dev: int = 0
    st_rdev: int = 0


@attrs.frozen
class StatFs:
    f_bsize: int
    f_frsize: int
    f_blocks: int
    f_bfree: int
    f_bavail: int
    f_files: int
    f_ffree: int
    f_favail: int
    f_namemax: int
    f_flag: int = 0


@attrs.frozen
class DirEntry:
    name: str
    ino: int
    type: int  # the S_IFMT bits of the inode's mode
