"""The FUSE wire protocol: opcodes, flags and the structures of requests and replies.

Layouts follow the kernel's ``include/uapi/linux/fuse.h`` (little-endian,
natural alignment). We speak 7.31 and later and answer INIT with the lower of
the kernel's minor version and ``MINOR``; nothing here knows which transport
(/dev/fuse or virtio-fs) carries the bytes.

A request is an ``fuse_in_header`` followed by the operation's fixed part and
then, for some operations, NUL-terminated names or raw data. A reply is a
``fuse_out_header`` (length, negated errno, the request's ``unique``)
followed by the operation's reply structure.
"""

from __future__ import annotations

import enum
import os
import stat
import struct
import sys

import attrs

MAJOR = 7
MINOR = 45
MIN_MINOR = 31
ROOT_ID = 1


class Opcode(enum.IntEnum):
    LOOKUP = 1
    FORGET = 2
    GETATTR = 3
    SETATTR = 4
    READLINK = 5
    SYMLINK = 6
    MKNOD = 8
    MKDIR = 9
    UNLINK = 10
    RMDIR = 11
    RENAME = 12
    LINK = 13
    OPEN = 14
    READ = 15
    WRITE = 16
    STATFS = 17
    RELEASE = 18
    FSYNC = 20
    SETXATTR = 21
    GETXATTR = 22
    LISTXATTR = 23
    REMOVEXATTR = 24
    FLUSH = 25
    INIT = 26
    OPENDIR = 27
    READDIR = 28
    RELEASEDIR = 29
    FSYNCDIR = 30
    GETLK = 31
    SETLK = 32
    SETLKW = 33
    ACCESS = 34
    CREATE = 35
    INTERRUPT = 36
    BMAP = 37
    DESTROY = 38
    IOCTL = 39
    POLL = 40
    NOTIFY_REPLY = 41
    BATCH_FORGET = 42
    FALLOCATE = 43
    READDIRPLUS = 44
    RENAME2 = 45
    LSEEK = 46
    COPY_FILE_RANGE = 47
    SETUPMAPPING = 48
    REMOVEMAPPING = 49
    SYNCFS = 50
    TMPFILE = 51
    STATX = 52
    COPY_FILE_RANGE_64 = 53


# Operations the kernel sends without waiting for (or wanting) a reply.
NO_REPLY = frozenset({Opcode.FORGET, Opcode.BATCH_FORGET, Opcode.NOTIFY_REPLY})


class InitFlag(enum.IntFlag):
    """Capabilities in INIT's ``flags`` (low 32 bits) and ``flags2`` (high 32 bits)."""

    ASYNC_READ = 1 << 0
    POSIX_LOCKS = 1 << 1
    ATOMIC_O_TRUNC = 1 << 3
    EXPORT_SUPPORT = 1 << 4
    BIG_WRITES = 1 << 5
    DONT_MASK = 1 << 6
    FLOCK_LOCKS = 1 << 10
    AUTO_INVAL_DATA = 1 << 12
    DO_READDIRPLUS = 1 << 13
    READDIRPLUS_AUTO = 1 << 14
    ASYNC_DIO = 1 << 15
    WRITEBACK_CACHE = 1 << 16
    PARALLEL_DIROPS = 1 << 18
    HANDLE_KILLPRIV = 1 << 19
    POSIX_ACL = 1 << 20
    ABORT_ERROR = 1 << 21
    MAX_PAGES = 1 << 22
    CACHE_SYMLINKS = 1 << 23
    HANDLE_KILLPRIV_V2 = 1 << 28
    SETXATTR_EXT = 1 << 29
    INIT_EXT = 1 << 30
    DIRECT_IO_ALLOW_MMAP = 1 << 36  # 7.39: shared mmap of a direct-I/O handle, kept coherent by the kernel
    OVER_IO_URING = 1 << 41  # 7.42: requests may be served over io_uring (fuse_uring.py)


# OPEN/CREATE reply flags.
FOPEN_DIRECT_IO = 1 << 0
FOPEN_KEEP_CACHE = 1 << 1
FOPEN_CACHE_DIR = 1 << 3
FOPEN_NOFLUSH = 1 << 5

# SETATTR's ``valid`` bits.
FATTR_MODE = 1 << 0
FATTR_UID = 1 << 1
FATTR_GID = 1 << 2
FATTR_SIZE = 1 << 3
FATTR_ATIME = 1 << 4
FATTR_MTIME = 1 << 5
FATTR_FH = 1 << 6
FATTR_ATIME_NOW = 1 << 7
FATTR_MTIME_NOW = 1 << 8
FATTR_KILL_SUIDGID = 1 << 11

FUSE_WRITE_KILL_SUIDGID = 1 << 2  # WRITE's write_flags: the writer lacks CAP_FSETID
FUSE_OPEN_KILL_SUIDGID = 1 << 0   # OPEN's open_flags: the same, for an O_TRUNC open

FUSE_GETATTR_FH = 1 << 0
FUSE_FSYNC_FDATASYNC = 1 << 0
COMPAT_SETXATTR_IN_SIZE = 8  # without SETXATTR_EXT the kernel sends only size and flags

# Fixed parts (struct formats, little-endian, no implicit padding).
IN_HEADER = struct.Struct("<IIQQIIIHH")      # len opcode unique nodeid uid gid pid total_extlen padding
OUT_HEADER = struct.Struct("<IiQ")           # len error unique
INIT_IN = struct.Struct("<IIIII44x")         # major minor max_readahead flags flags2 unused[11]
INIT_IN_MIN = 16                             # major minor max_readahead flags (before 7.36)
INIT_OUT = struct.Struct("<IIIIHHIIHHII24x")  # ... flags2 max_stack_depth, request_timeout + unused
ATTR = struct.Struct("<QQQqqqIIIIIIIIII")    # fuse_attr, 88 bytes (times: signed seconds)
ENTRY_HEAD = struct.Struct("<QQQQII")        # nodeid generation entry_valid attr_valid (+ nsecs)
ATTR_OUT_HEAD = struct.Struct("<QII")        # attr_valid attr_valid_nsec dummy
GETATTR_IN = struct.Struct("<IIQ")           # getattr_flags dummy fh
SETATTR_IN = struct.Struct("<IIQQQqqqIIIIIIII")   # times are the kernel's signed seconds (pre-1970: negative)
MKNOD_IN = struct.Struct("<IIII")            # mode rdev umask padding
MKDIR_IN = struct.Struct("<II")              # mode umask
RENAME_IN = struct.Struct("<Q")              # newdir
RENAME2_IN = struct.Struct("<QII")           # newdir flags padding
LINK_IN = struct.Struct("<Q")                # oldnodeid
OPEN_IN = struct.Struct("<II")               # flags open_flags
CREATE_IN = struct.Struct("<IIII")           # flags mode umask open_flags
OPEN_OUT = struct.Struct("<QIi")             # fh open_flags backing_id
RELEASE_IN = struct.Struct("<QIIQ")          # fh flags release_flags lock_owner
FLUSH_IN = struct.Struct("<QIIQ")            # fh unused padding lock_owner
READ_IN = struct.Struct("<QQIIQII")          # fh offset size read_flags lock_owner flags padding
WRITE_IN = READ_IN                           # fh offset size write_flags lock_owner flags padding
WRITE_OUT = struct.Struct("<II")             # size padding
STATFS_OUT = struct.Struct("<QQQQQIIII24x")  # blocks bfree bavail files ffree bsize namelen frsize padding spare[6]
FSYNC_IN = struct.Struct("<QII")             # fh fsync_flags padding
SETXATTR_IN = struct.Struct("<IIII")         # size flags setxattr_flags padding
GETXATTR_IN = struct.Struct("<II")           # size padding
GETXATTR_OUT = struct.Struct("<II")          # size padding
ACCESS_IN = struct.Struct("<II")             # mask padding
INTERRUPT_IN = struct.Struct("<Q")           # unique
FORGET_IN = struct.Struct("<Q")              # nlookup
BATCH_FORGET_IN = struct.Struct("<II")       # count dummy
FORGET_ONE = struct.Struct("<QQ")            # nodeid nlookup
DIRENT = struct.Struct("<QQII")              # ino off namelen type
FALLOCATE_IN = struct.Struct("<QQQII")       # fh offset length mode padding
LSEEK_IN = struct.Struct("<QQII")            # fh offset whence padding
LSEEK_OUT = struct.Struct("<Q")              # offset
COPY_FILE_RANGE_IN = struct.Struct("<QQQQQQQ")  # fh_in off_in nodeid_out fh_out off_out len flags

ENTRY_OUT_SIZE = ENTRY_HEAD.size + ATTR.size
FS_ENCODING, FS_ERRORS = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()


class ProtocolError(Exception):
    """A request the server cannot make sense of; answered with ``errno`` when it has a unique."""

    def __init__(self, errno_value: int, message: str, unique: int | None = None):
        super().__init__(message)
        self.errno = errno_value
        self.unique = unique


@attrs.define(slots=True)
class Request:
    """One decoded request header, with the bytes that follow it (``interrupted``: an INTERRUPT named it)."""

    opcode: int
    unique: int
    nodeid: int
    uid: int
    gid: int
    pid: int
    body: memoryview
    interrupted: bool = False


def parse(pieces) -> Request:
    """Split a request, given as a sequence of readable buffers, into header and body;
    ProtocolError (EIO) when the framing is wrong.

    One buffer (/dev/fuse) is used as it is. Several (a virtio-fs descriptor
    chain) are used without copying when the header and the body each lie in
    one of them; otherwise the header (40 bytes) or the body is joined, once."""
    if len(pieces) == 1:
        view = memoryview(pieces[0]).cast("B")
        total = len(view)
        if total < IN_HEADER.size:
            raise ProtocolError(5, f"request of {total} bytes is shorter than its header")
        head, body = view, None
    else:
        head, body, total = _split_pieces(pieces)
    length, opcode, unique, nodeid, uid, gid, pid, extlen, _ = IN_HEADER.unpack_from(head)
    if length != total:
        raise ProtocolError(5, f"request says {length} bytes but {total} arrived", unique)
    end = length - 8 * extlen  # extensions (security context, groups) trail the arguments
    if end < IN_HEADER.size:
        raise ProtocolError(5, f"request extensions of {8 * extlen} bytes overrun it", unique)
    if body is None:
        return Request(opcode, unique, nodeid, uid, gid, pid, head[IN_HEADER.size:end])
    return Request(opcode, unique, nodeid, uid, gid, pid, body[:end - IN_HEADER.size])


def _split_pieces(pieces) -> tuple:
    """(header, body, total length) of a request in several buffers."""
    if isinstance(pieces, (bytes, bytearray, memoryview)):
        raise TypeError("a request is a sequence of buffers: pass [buffer], not the buffer")
    views = [v for v in (memoryview(p).cast("B") for p in pieces) if len(v)]
    total = sum(map(len, views))
    if total < IN_HEADER.size:
        raise ProtocolError(5, f"request of {total} bytes is shorter than its header")
    head = views[0] if len(views[0]) >= IN_HEADER.size else memoryview(head_bytes(views, IN_HEADER.size))
    rest, skip = [], IN_HEADER.size  # the body's pieces: what follows the header's 40 bytes
    for v in views:
        if skip >= len(v):
            skip -= len(v)
            continue
        rest.append(v[skip:])
        skip = 0
    if not rest:
        return head, memoryview(b""), total
    if len(rest) == 1:
        return head, rest[0], total
    return head, memoryview(b"".join(rest)), total


def head_bytes(views, n: int) -> bytearray:
    """The first ``n`` bytes across ``views`` (fewer if they hold fewer)."""
    out = bytearray()
    for v in views:
        if len(out) >= n:
            break
        out += v[:n - len(out)]
    return out


def unpack(fmt: struct.Struct, req: Request, size: int | None = None) -> tuple:
    """The fixed part of ``req``'s body (EINVAL when the body is too short)."""
    need = fmt.size if size is None else size
    if len(req.body) < need:
        raise ProtocolError(22, f"{Opcode(req.opcode).name} body of {len(req.body)} bytes, "
                                f"needs {need}", req.unique)
    if size is not None and size < fmt.size:
        return fmt.unpack(bytes(req.body[:size]).ljust(fmt.size, b"\0"))
    return fmt.unpack_from(req.body)


def names(req: Request, offset: int, count: int) -> list[str]:
    """``count`` NUL-terminated names starting at ``offset`` of the body (EINVAL if missing)."""
    parts = bytes(req.body[offset:]).split(b"\0", count)
    if len(parts) <= count or not all(parts[:count]):
        raise ProtocolError(22, f"{Opcode(req.opcode).name} needs {count} NUL-terminated name(s)",
                            req.unique)
    return [p.decode(FS_ENCODING, FS_ERRORS) for p in parts[:count]]  # os.fsdecode, inlined


def out_header(unique: int, error: int, payload_len: int) -> bytes:
    """The reply header; ``error`` is a positive errno (0 for success), sent negated."""
    return OUT_HEADER.pack(OUT_HEADER.size + payload_len, -error, unique)


def encode_dev(rdev: int) -> int:
    """A device number as the kernel's 32-bit ``new_encode_dev`` (what fuse_attr carries)."""
    major, minor = os.major(rdev), os.minor(rdev)
    return (minor & 0xFF) | ((major & 0xFFF) << 8) | ((minor & ~0xFF) << 12)


def decode_dev(value: int) -> int:
    """MKNOD's 32-bit device number as a ``st_rdev`` (``os.makedev``)."""
    return os.makedev((value & 0xFFF00) >> 8, (value & 0xFF) | ((value >> 12) & 0xFFF00))


def attr(st) -> bytes:
    """``fuse_attr`` from the lfs's attributes."""
    a, m, c = st.st_atime_ns, st.st_mtime_ns, st.st_ctime_ns
    return ATTR.pack(st.st_ino, st.st_size, st.st_blocks, a // 10**9, m // 10**9, c // 10**9,
                     a % 10**9, m % 10**9, c % 10**9, st.st_mode, st.st_nlink, st.st_uid, st.st_gid,
                     encode_dev(st.st_rdev), st.st_blksize, 0)


def split_seconds(seconds: float) -> tuple[int, int]:
    """A timeout as the protocol's (seconds, nanoseconds)."""
    whole = int(seconds)
    return whole, int((seconds - whole) * 1e9)


_split = split_seconds


def entry_out(nodeid: int, st, entry_timeout: float, attr_timeout: float) -> bytes:
    """``fuse_entry_out``: the node id the kernel will use, how long it may cache name and attributes."""
    es, ens = _split(entry_timeout)
    at, ans = _split(attr_timeout)
    return ENTRY_HEAD.pack(nodeid, 0, es, at, ens, ans) + attr(st)


def empty_entry() -> bytes:
    """An entry with node id 0: in READDIRPLUS, "no attributes for this one" (``.`` and ``..``)."""
    return bytes(ENTRY_OUT_SIZE)


def negative_entry(entry_timeout: float) -> bytes:
    """LOOKUP's "no such name", which the kernel may remember for ``entry_timeout`` seconds."""
    es, ens = _split(entry_timeout)
    return ENTRY_HEAD.pack(0, 0, es, 0, ens, 0) + bytes(ATTR.size)


def attr_out(st, attr_timeout: float) -> bytes:
    secs, nsecs = _split(attr_timeout)
    return ATTR_OUT_HEAD.pack(secs, nsecs, 0) + attr(st)


def statfs_out(sf) -> bytes:
    return STATFS_OUT.pack(sf.f_blocks, sf.f_bfree, sf.f_bavail, sf.f_files, sf.f_ffree,
                           sf.f_bsize, sf.f_namemax, sf.f_frsize, 0)


def dirent(ino: int, next_offset: int, name: bytes, mode: int) -> bytes:
    """One ``fuse_dirent``, padded to 8 bytes; ``next_offset`` is where READDIR resumes after it."""
    head = DIRENT.pack(ino, next_offset, len(name), stat.S_IFMT(mode) >> 12)
    return (head + name).ljust(-(-(DIRENT.size + len(name)) // 8) * 8, b"\0")
