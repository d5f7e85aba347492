"""The protocol codec and dispatcher, without a kernel: bytes in, bytes out."""

from __future__ import annotations

import errno
import itertools
import os
import stat
import struct
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from zcsdfs.fuse import protocol as p
from zcsdfs.fuse.protocol import InitFlag, Opcode
from zcsdfs.fuse import server as server_module
from zcsdfs.fuse.server import Options, Server, interruptible, long_running
from zcsdfs.fuse.transport import Limits
from zcsdfs.volume import Volume

_unique = itertools.count(2)
KERNEL_FLAGS = int(InitFlag.ASYNC_READ | InitFlag.MAX_PAGES | InitFlag.DO_READDIRPLUS | InitFlag.POSIX_LOCKS
                   | InitFlag.INIT_EXT | InitFlag.WRITEBACK_CACHE)


def request(opcode, body=b"", nodeid=p.ROOT_ID, uid=0, gid=0, pid=0, unique=None) -> bytes:
    unique = next(_unique) if unique is None else unique
    return p.IN_HEADER.pack(p.IN_HEADER.size + len(body), opcode, unique, nodeid, uid, gid, pid, 0, 0) + body


def reply(server, data) -> tuple[int, int, bytes]:
    """(errno, unique, payload) of the server's answer to ``data``."""
    out = server.handle([data])
    assert out is not None
    raw = b"".join(bytes(b) for b in out)
    length, error, unique = p.OUT_HEADER.unpack_from(raw)
    assert length == len(raw)
    return -error, unique, raw[p.OUT_HEADER.size:]


def ok(server, opcode, body=b"", **kw) -> bytes:
    code, _, payload = reply(server, request(opcode, body, **kw))
    assert code == 0, os.strerror(code)
    return payload


def init_body(minor=p.MINOR, flags=KERNEL_FLAGS) -> bytes:
    return p.INIT_IN.pack(7, minor, 1 << 17, flags & 0xFFFFFFFF, flags >> 32)


@pytest.fixture
def volume():
    v = Volume.memory()
    yield v
    v.unmount()


@pytest.fixture
def server(volume):
    """An initialised server whose bugs fail the test: an unexpected exception propagates
    instead of becoming an EIO reply (``Server.strict``)."""
    s = Server(volume.vfs, Options(entry_timeout=2.5, attr_timeout=0.5))
    s.strict = True
    ok(s, Opcode.INIT, init_body())
    return s


def lookup(server, name, parent=p.ROOT_ID, **kw):
    payload = ok(server, Opcode.LOOKUP, name.encode() + b"\0", nodeid=parent, **kw)
    nodeid, _, entry_valid, attr_valid, entry_nsec, attr_nsec = p.ENTRY_HEAD.unpack_from(payload)
    fields = p.ATTR.unpack_from(payload, p.ENTRY_HEAD.size)
    return nodeid, fields, (entry_valid, entry_nsec, attr_valid, attr_nsec)


def create(server, name, mode=0o644, parent=p.ROOT_ID, flags=os.O_RDWR):
    payload = ok(server, Opcode.CREATE, p.CREATE_IN.pack(flags, stat.S_IFREG | mode, 0, 0) + name.encode() + b"\0",
                 nodeid=parent)
    nodeid = p.ENTRY_HEAD.unpack_from(payload)[0]
    fh, open_flags, _ = p.OPEN_OUT.unpack_from(payload, p.ENTRY_OUT_SIZE)
    return nodeid, fh, open_flags


def test_init_negotiates_down_to_the_kernel(volume):
    s = Server(volume.vfs, Options(max_write=1 << 20))
    payload = ok(s, Opcode.INIT, init_body(minor=38))
    major, minor, readahead, flags, _, _, max_write, _, max_pages, _, flags2, _ = p.INIT_OUT.unpack(payload)
    assert (major, minor, readahead, max_write, max_pages) == (7, 38, 1 << 17, 1 << 20, 256)
    got = InitFlag(flags | flags2 << 32)
    assert InitFlag.MAX_PAGES in got and InitFlag.DO_READDIRPLUS in got
    assert InitFlag.POSIX_LOCKS not in got            # offered by the kernel, not wanted
    assert InitFlag.WRITEBACK_CACHE not in got        # only with the option
    assert InitFlag.ATOMIC_O_TRUNC not in got         # wanted, not offered
    assert s.minor == 38


def test_init_with_newer_kernel_minor_answers_ours(volume):
    s = Server(volume.vfs, Options(writeback_cache=True))
    major, minor, *_ , flags2, _ = p.INIT_OUT.unpack(ok(s, Opcode.INIT, init_body(minor=99)))
    assert (major, minor) == (7, p.MINOR)
    assert InitFlag.WRITEBACK_CACHE in InitFlag(s.flags)


def test_init_refuses_protocols_before_7_31(volume):
    s = Server(volume.vfs)
    code, _, _ = reply(s, request(Opcode.INIT, p.INIT_IN.pack(7, 30, 0, 0, 0)[:16]))
    assert code == errno.EPROTO
    code, _, _ = reply(s, request(Opcode.GETATTR, p.GETATTR_IN.pack(0, 0, 0)))
    assert code == errno.EIO  # nothing is served before a successful INIT


def test_lookup_counts_and_forget(server):
    nodeid = create(server, "f")[0]
    assert server.nodes.lookups(nodeid) == 1
    again, fields, valid = lookup(server, "f")
    assert again == nodeid and server.nodes.lookups(nodeid) == 2
    assert valid == (2, 500_000_000, 0, 500_000_000)
    assert stat.S_ISREG(fields[9])
    assert server.handle([request(Opcode.FORGET, p.FORGET_IN.pack(1), nodeid=nodeid)]) is None
    assert server.nodes.lookups(nodeid) == 1
    body = p.BATCH_FORGET_IN.pack(1, 0) + p.FORGET_ONE.pack(nodeid, 1)
    assert server.handle([request(Opcode.BATCH_FORGET, body)]) is None
    code, _, _ = reply(server, request(Opcode.GETATTR, p.GETATTR_IN.pack(0, 0, 0), nodeid=nodeid))
    assert code == errno.ESTALE  # a forgotten id is never reused
    newer, _, _ = lookup(server, "f")
    assert newer > nodeid


def test_write_read_getattr_roundtrip(server):
    nodeid, fh, open_flags = create(server, "data")
    assert open_flags & p.FOPEN_KEEP_CACHE and open_flags & p.FOPEN_NOFLUSH  # close(2) sends no FLUSH
    data = os.urandom(70_000)
    out = ok(server, Opcode.WRITE, p.WRITE_IN.pack(fh, 5, len(data), 0, 0, 0, 0) + data, nodeid=nodeid)
    assert p.WRITE_OUT.unpack(out)[0] == len(data)
    got = ok(server, Opcode.READ, p.READ_IN.pack(fh, 0, 100_000, 0, 0, 0, 0), nodeid=nodeid)
    assert got == bytes(5) + data
    attr = p.ATTR.unpack_from(ok(server, Opcode.GETATTR, p.GETATTR_IN.pack(0, 0, 0), nodeid=nodeid),
                              p.ATTR_OUT_HEAD.size)
    assert attr[1] == len(data) + 5
    ok(server, Opcode.RELEASE, p.RELEASE_IN.pack(fh, 0, 0, 0), nodeid=nodeid)
    code, _, _ = reply(server, request(Opcode.READ, p.READ_IN.pack(fh, 0, 10, 0, 0, 0, 0), nodeid=nodeid))
    assert code == errno.EBADF


def test_stats_count_requests_per_opcode_with_latencies(server):
    before = server.stats()
    nodeid, fh, _ = create(server, "counted")
    for _ in range(3):
        ok(server, Opcode.GETATTR, p.GETATTR_IN.pack(0, 0, 0), nodeid=nodeid)
    code, _, _ = reply(server, request(Opcode.READ, p.READ_IN.pack(fh + 99, 0, 10, 0, 0, 0, 0), nodeid=nodeid))
    assert code == errno.EBADF  # a failed request counts too
    stats = server.stats()
    assert stats.requests == before.requests + 5
    assert stats.opcodes["GETATTR"].requests == 3 and stats.opcodes["CREATE"].requests == 1
    assert stats.opcodes["READ"].requests == 1
    assert 0 < stats.opcodes["GETATTR"].p50_us <= stats.opcodes["GETATTR"].p99_us <= stats.opcodes["GETATTR"].max_us
    assert (stats.open_handles, stats.in_flight, stats.unexpected) == (1, 0, 0)
    assert list(stats.opcodes)[0] == "GETATTR"  # busiest first


@pytest.mark.parametrize("flags, direct, with_data", [
    (os.O_WRONLY, True, True), (os.O_WRONLY | os.O_APPEND, True, True), (os.O_RDONLY | os.O_DIRECT, True, True),
    (os.O_RDWR, True, False), (os.O_RDWR | os.O_TRUNC, True, True), (os.O_RDWR, False, True),
    (os.O_RDONLY, False, False)])
def test_write_only_and_o_direct_handles_bypass_the_page_cache(server, flags, direct, with_data):
    """So do read-write handles on an empty file (new, or truncated by the open): nothing cached to lose."""
    nodeid, fh, open_flags = create(server, "f", flags=flags)
    assert bool(open_flags & p.FOPEN_DIRECT_IO) == (direct or flags & os.O_ACCMODE == os.O_RDWR)  # new: empty
    if with_data:
        ok(server, Opcode.WRITE, p.WRITE_IN.pack(fh, 0, 2, 0, 0, 0, 0) + b"hi", nodeid=nodeid) \
            if flags & os.O_ACCMODE else server.vfs.fs.write(server.nodes.ino(nodeid), 0, b"hi")
    payload = ok(server, Opcode.OPEN, p.OPEN_IN.pack(flags, 0), nodeid=nodeid)
    assert bool(p.OPEN_OUT.unpack(payload)[1] & p.FOPEN_DIRECT_IO) == direct
    assert p.OPEN_OUT.unpack(payload)[1] & p.FOPEN_KEEP_CACHE  # other handles keep what they cached


def test_writeback_cache_keeps_write_only_handles_cached(volume):
    s = Server(volume.vfs, Options(writeback_cache=True))
    ok(s, Opcode.INIT, init_body())
    _, _, open_flags = create(s, "f", flags=os.O_WRONLY)
    assert not open_flags & p.FOPEN_DIRECT_IO  # the kernel's cache is where such writes go first


CAPS = struct.pack("<IIIII", 0x02000000, 1, 0, 0, 0)  # a vfs_cap_data, revision 2


def _privileged(server, nodeid, mode=0o6755):
    """Give ``nodeid`` setuid, setgid and a security.capability, as root."""
    ok(server, Opcode.SETATTR, p.SETATTR_IN.pack(p.FATTR_MODE, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, stat.S_IFREG | mode,
                                                 0, 0, 0, 0), nodeid=nodeid)
    ok(server, Opcode.SETXATTR, p.SETXATTR_IN.pack(len(CAPS), 0, 0, 0)[:8] + b"security.capability\0" + CAPS,
       nodeid=nodeid)


def _privileges(server, nodeid) -> tuple[int, bool]:
    """(setuid/setgid bits, whether security.capability is there) of ``nodeid``."""
    attr = p.ATTR.unpack_from(ok(server, Opcode.GETATTR, p.GETATTR_IN.pack(0, 0, 0), nodeid=nodeid),
                              p.ATTR_OUT_HEAD.size)
    listed = ok(server, Opcode.LISTXATTR, p.GETXATTR_IN.pack(4096, 0), nodeid=nodeid)
    return attr[9] & (stat.S_ISUID | stat.S_ISGID), b"security.capability\0" in listed


def test_security_capability_of_a_plain_file_is_answered_without_the_vfs(server, monkeypatch):
    """The kernel asks it before the first cached write to each file: ENODATA from the inode's
    empty list; a file that has the attribute still gets it (through the vfs)."""
    nodeid, _, _ = create(server, "plain")
    ask = p.GETXATTR_IN.pack(0, 0) + b"security.capability\0"
    calls = []
    real = server.vfs.getxattr
    monkeypatch.setattr(server.vfs, "getxattr", lambda *a: calls.append(a) or real(*a))
    assert reply(server, request(Opcode.GETXATTR, ask, nodeid=nodeid))[0] == errno.ENODATA
    assert calls == []
    _privileged(server, nodeid)
    assert ok(server, Opcode.GETXATTR, ask, nodeid=nodeid) == p.GETXATTR_OUT.pack(len(CAPS), 0)
    assert len(calls) == 1
    assert reply(server, request(Opcode.GETXATTR, ask, nodeid=12345))[0] == errno.ESTALE


def test_killpriv_v2_is_kept_by_the_server(server):
    """With HANDLE_KILLPRIV_V2 the kernel stops asking before each write; the server drops privileges."""
    assert InitFlag.HANDLE_KILLPRIV_V2 in InitFlag(
        p.INIT_OUT.unpack(ok(Server(server.vfs), Opcode.INIT, init_body(flags=KERNEL_FLAGS | 1 << 28)))[3])
    suidgid = stat.S_ISUID | stat.S_ISGID
    nodeid, fh, _ = create(server, "prog", mode=0o755)

    def write(write_flags):
        ok(server, Opcode.WRITE, p.WRITE_IN.pack(fh, 0, 2, write_flags, 0, 0, 0) + b"hi", nodeid=nodeid)

    _privileged(server, nodeid)
    write(0)  # root with CAP_FSETID: the capability goes, the mode bits stay
    assert _privileges(server, nodeid) == (suidgid, False)
    _privileged(server, nodeid)
    write(p.FUSE_WRITE_KILL_SUIDGID)  # a writer without CAP_FSETID
    assert _privileges(server, nodeid) == (0, False)
    _privileged(server, nodeid, mode=0o6745)
    write(p.FUSE_WRITE_KILL_SUIDGID)  # setgid without group execute is file locking, not privilege
    assert _privileges(server, nodeid) == (stat.S_ISGID, False)

    _privileged(server, nodeid)
    ok(server, Opcode.SETATTR, p.SETATTR_IN.pack(p.FATTR_SIZE | p.FATTR_KILL_SUIDGID, 0, 0, 1, 0, 0, 0, 0, 0,
                                                 0, 0, 0, 0, 0, 0, 0), nodeid=nodeid)
    assert _privileges(server, nodeid) == (0, False)
    _privileged(server, nodeid)
    ok(server, Opcode.SETATTR, p.SETATTR_IN.pack(p.FATTR_UID, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0),
       nodeid=nodeid)
    assert _privileges(server, nodeid) == (0, False)  # chown drops setuid, and setgid with group execute
    _privileged(server, nodeid)
    ok(server, Opcode.OPEN, p.OPEN_IN.pack(os.O_WRONLY | os.O_TRUNC, p.FUSE_OPEN_KILL_SUIDGID), nodeid=nodeid)
    assert _privileges(server, nodeid) == (0, False)
    _privileged(server, nodeid)
    ok(server, Opcode.OPEN, p.OPEN_IN.pack(os.O_RDONLY, 0), nodeid=nodeid)
    assert _privileges(server, nodeid) == (suidgid, True)  # opening alone changes nothing


def test_readdir_offsets_resume(server):
    names = [f"entry-{i:03}" for i in range(40)]
    for n in names:
        create(server, n)
    fh = p.OPEN_OUT.unpack(ok(server, Opcode.OPENDIR, p.OPEN_IN.pack(os.O_RDONLY, 0)))[0]
    seen, offset = [], 0
    while True:
        payload = ok(server, Opcode.READDIR, p.READ_IN.pack(fh, offset, 256, 0, 0, 0, 0))
        if not payload:
            break
        pos = 0
        while pos < len(payload):
            ino, off, namelen, kind = p.DIRENT.unpack_from(payload, pos)
            seen.append(payload[pos + 24:pos + 24 + namelen].decode())
            offset = off
            pos += -(-(24 + namelen) // 8) * 8
    assert seen == [".", "..", *names]


def test_readdirplus_counts_lookups_but_not_dot_entries(server):
    nodeid = create(server, "x")[0]
    fh = p.OPEN_OUT.unpack(ok(server, Opcode.OPENDIR, p.OPEN_IN.pack(os.O_RDONLY, 0)))[0]
    payload = ok(server, Opcode.READDIRPLUS, p.READ_IN.pack(fh, 0, 4096, 0, 0, 0, 0))
    ids = []
    pos = 0
    while pos < len(payload):
        ids.append(p.ENTRY_HEAD.unpack_from(payload, pos)[0])
        namelen = p.DIRENT.unpack_from(payload, pos + p.ENTRY_OUT_SIZE)[2]
        pos += p.ENTRY_OUT_SIZE + -(-(24 + namelen) // 8) * 8
    assert ids == [0, 0, nodeid]
    assert server.nodes.lookups(nodeid) == 2


def test_xattr_size_protocol(server):
    nodeid = create(server, "x")[0]
    ok(server, Opcode.SETXATTR, p.SETXATTR_IN.pack(5, 0, 0, 0)[:8] + b"user.k\0value", nodeid=nodeid)
    size = p.GETXATTR_OUT.unpack(ok(server, Opcode.GETXATTR, p.GETXATTR_IN.pack(0, 0) + b"user.k\0",
                                    nodeid=nodeid))[0]
    assert size == 5
    code, _, _ = reply(server, request(Opcode.GETXATTR, p.GETXATTR_IN.pack(3, 0) + b"user.k\0", nodeid=nodeid))
    assert code == errno.ERANGE
    assert ok(server, Opcode.GETXATTR, p.GETXATTR_IN.pack(64, 0) + b"user.k\0", nodeid=nodeid) == b"value"
    assert ok(server, Opcode.LISTXATTR, p.GETXATTR_IN.pack(64, 0), nodeid=nodeid) == b"user.k\0"


def test_other_users_are_checked_by_the_server(server):
    nodeid = create(server, "private", mode=0o600)[0]
    code, _, _ = reply(server, request(Opcode.OPEN, p.OPEN_IN.pack(os.O_RDONLY, 0), nodeid=nodeid, uid=1000,
                                       gid=1000))
    assert code == errno.EACCES
    code, _, _ = reply(server, request(Opcode.ACCESS, p.ACCESS_IN.pack(os.R_OK, 0), nodeid=nodeid, uid=1000,
                                       gid=1000))
    assert code == errno.EACCES
    code, _, _ = reply(server, request(Opcode.MKDIR, p.MKDIR_IN.pack(0o755, 0) + b"d\0", uid=1000, gid=1000))
    assert code == errno.EACCES  # the root directory is 0755 root


def test_unknown_and_unimplemented_opcodes_get_enosys(server):
    for opcode in (Opcode.GETLK, Opcode.BMAP, Opcode.IOCTL, Opcode.STATX, 7, 19, 200, 4096):
        code, _, _ = reply(server, request(opcode, bytes(64)))
        assert code == errno.ENOSYS


def test_interrupt_before_start_answers_eintr(server):
    req = p.parse([request(Opcode.STATFS, unique=1000)])
    server.begin(req)
    assert server.handle([request(Opcode.INTERRUPT, p.INTERRUPT_IN.pack(1000))]) is None
    out = b"".join(server.run(req))
    assert p.OUT_HEADER.unpack_from(out) == (16, -errno.EINTR, 1000)
    # an interrupt for a request not (or no longer) in flight: EAGAIN, so the kernel retries it
    code, unique, _ = reply(server, request(Opcode.INTERRUPT, p.INTERRUPT_IN.pack(1000), unique=1001))
    assert (code, unique) == (errno.EAGAIN, 1001)


def test_times_before_1970_and_beyond_the_stored_range(server, volume):
    nodeid = create(server, "old")[0]

    def set_times(atime, mtime):
        body = p.SETATTR_IN.pack(p.FATTR_ATIME | p.FATTR_MTIME, 0, 0, 0, 0, atime, mtime, 0, 5, 7, 0, *[0] * 5)
        ok(server, Opcode.SETATTR, body, nodeid=nodeid)
        return volume.stat("/old")

    st = set_times(-315619200, 0)  # 1960-01-01, sent as the kernel's signed seconds
    assert (st.st_atime_ns, st.st_mtime_ns) == (-315619200 * 10**9 + 5, 7)
    st = set_times(32503680000, -(1 << 62))  # the year 3000, and far before 1678: clamped
    limit = (1 << 63) // 10**9 * 10**9  # to the whole seconds an inode holds, as Linux clamps to a file system's limits
    assert (st.st_atime_ns, st.st_mtime_ns) == (limit, -limit)
    volume.sync()  # the clamped times fit the on-disk records


def test_negative_lookup_answers(volume):
    plain = Server(volume.vfs, Options())
    ok(plain, Opcode.INIT, init_body())
    code, _, _ = reply(plain, request(Opcode.LOOKUP, b"missing\0"))
    assert code == errno.ENOENT
    cached = Server(volume.vfs, Options(negative_timeout=2.5))
    ok(cached, Opcode.INIT, init_body())
    entry = ok(cached, Opcode.LOOKUP, b"missing\0")
    assert len(entry) == p.ENTRY_OUT_SIZE
    assert p.ENTRY_HEAD.unpack_from(entry) == (0, 0, 2, 0, 500_000_000, 0)  # node 0: "no such name"
    assert len(cached.nodes) == 1  # nothing remembered for the kernel to forget
    code, _, _ = reply(cached, request(Opcode.LOOKUP, b"missing\0", nodeid=12345))
    assert code == errno.ESTALE  # only a missing name is cached, not other failures


def test_long_running_requests_are_told_apart():
    def io(opcode, size, carried):
        return request(opcode, p.READ_IN.pack(1, 0, size, 0, 0, 0, 0) + bytes(carried))

    assert long_running([io(Opcode.WRITE, 1 << 20, 1 << 20)])
    assert not long_running([io(Opcode.WRITE, 4096, 4096)])
    assert long_running([io(Opcode.READ, 1 << 20, 0)])
    assert not long_running([io(Opcode.READ, 4096, 0)])
    assert long_running([request(Opcode.FSYNC, p.FSYNC_IN.pack(1, 0, 0) + bytes(16))])
    assert not long_running([request(Opcode.LOOKUP, b"some-name-long-enough\0")])
    assert not long_running([b"\x01\x02"])  # too short to say: refused quickly anyway
    copy = request(Opcode.COPY_FILE_RANGE, p.COPY_FILE_RANGE_IN.pack(1, 0, 2, 3, 0, 1 << 30, 0))
    assert long_running([copy]) and interruptible([copy])
    assert not interruptible([io(Opcode.WRITE, 1 << 20, 1 << 20)])


@pytest.mark.skipif(os.geteuid() != 0, reason="starting a process with other groups needs root (as in CI)")
def test_supplementary_groups_are_read_only_when_a_check_needs_them(volume, monkeypatch):
    s = Server(volume.vfs, Options(), Limits(local_callers=True))
    ok(s, Opcode.INIT, init_body())
    nodeid = create(s, "team", mode=0o060)[0]  # group read-write only, group 4242
    ok(s, Opcode.SETATTR, p.SETATTR_IN.pack(p.FATTR_GID, *[0] * 12, 0, 4242, 0), nodeid=nodeid)
    mine = create(s, "mine", mode=0o600)[0]
    ok(s, Opcode.SETATTR, p.SETATTR_IN.pack(p.FATTR_UID | p.FATTR_GID, *[0] * 12, 1000, 1000, 0), nodeid=mine)
    member = subprocess.Popen(["sleep", "60"], extra_groups=[4242], user=1000, group=1000)
    try:
        reads = []
        real = server_module.proc_groups
        monkeypatch.setattr(server_module, "proc_groups", lambda pid: reads.append(pid) or real(pid))
        as_member = dict(nodeid=nodeid, uid=1000, gid=1000, pid=member.pid)
        ok(s, Opcode.ACCESS, p.ACCESS_IN.pack(os.R_OK | os.W_OK, 0), **as_member)
        assert reads == [member.pid]
        ok(s, Opcode.ACCESS, p.ACCESS_IN.pack(os.R_OK | os.W_OK, 0), nodeid=mine, uid=1000, gid=1000, pid=member.pid)
        assert reads == [member.pid]  # the owner's own file: no /proc read
        code, _, _ = reply(s, request(Opcode.ACCESS, p.ACCESS_IN.pack(os.R_OK, 0), nodeid=nodeid, uid=1001,
                                      gid=1001, pid=os.getpid()))
        assert code == errno.EACCES  # another process, not in group 4242
    finally:
        member.kill()
        member.wait()


def test_truncated_bodies_get_einval(server):
    for opcode, fixed in ((Opcode.WRITE, p.WRITE_IN), (Opcode.SETATTR, p.SETATTR_IN), (Opcode.READ, p.READ_IN),
                          (Opcode.RENAME2, p.RENAME2_IN), (Opcode.CREATE, p.CREATE_IN)):
        code, _, _ = reply(server, request(opcode, bytes(fixed.size - 1)))
        assert code == errno.EINVAL, opcode
    code, _, _ = reply(server, request(Opcode.LOOKUP, b"no-terminator"))
    assert code == errno.EINVAL
    code, _, _ = reply(server, request(Opcode.LOOKUP, b"a/b\0"))
    assert code == errno.EINVAL
    nodeid, fh, _ = create(server, "f")
    code, _, _ = reply(server, request(Opcode.WRITE, p.WRITE_IN.pack(fh, 0, 100, 0, 0, 0, 0) + bytes(10),
                                       nodeid=nodeid))
    assert code == errno.EINVAL  # says 100 bytes, carries 10


def test_bad_framing(server):
    assert server.handle([b"\x01\x02"]) is None  # no header: nothing to answer
    good = request(Opcode.STATFS, unique=77)
    code, unique, _ = reply(server, good + b"extra")  # length field disagrees
    assert (code, unique) == (errno.EIO, 77)


def _still_serving(server):
    statfs = ok(server, Opcode.STATFS)
    assert len(statfs) == p.STATFS_OUT.size


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(opcode=st.sampled_from(list(Opcode)) | st.integers(0, 2**32 - 1), body=st.binary(max_size=200),
       nodeid=st.sampled_from([0, 1, 2, 3, 2**64 - 1]), uid=st.sampled_from([0, 1000]))
def test_fuzzed_requests_never_crash(server, opcode, body, nodeid, uid):
    if opcode == Opcode.INIT:
        return  # a second INIT renegotiates; covered above
    data = request(opcode, body, nodeid=nodeid, uid=uid, gid=uid, unique=555)
    out = server.handle([data])
    if out is not None:
        raw = b"".join(bytes(b) for b in out)
        length, error, unique = p.OUT_HEADER.unpack_from(raw)
        assert length == len(raw) and unique == 555 and -4095 <= error <= 0
    _still_serving(server)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(0, 300), flip=st.integers(0, 299), value=st.integers(0, 255),
       opcode=st.sampled_from([Opcode.WRITE, Opcode.SETATTR, Opcode.CREATE, Opcode.RENAME2, Opcode.SETXATTR,
                               Opcode.READDIRPLUS, Opcode.COPY_FILE_RANGE, Opcode.BATCH_FORGET, Opcode.READ,
                               Opcode.READDIR, Opcode.GETXATTR, Opcode.LISTXATTR]),
       seed=st.binary(min_size=8, max_size=8))
def test_mutated_requests_never_crash(server, cut, flip, value, opcode, seed):
    body = bytearray(seed) * 30 + b"name\0other\0"
    data = bytearray(request(opcode, bytes(body), unique=556))
    data[min(flip, len(data) - 1)] = value
    data = bytes(data[:cut]) if cut < len(data) else bytes(data)
    server.handle([data])
    _still_serving(server)


def test_encode_dev_roundtrip():
    for major, minor in ((0, 0), (8, 1), (259, 3), (4095, 1 << 19)):
        dev = os.makedev(major, minor)
        assert p.decode_dev(p.encode_dev(dev)) == dev


def test_dirent_is_padded_to_eight():
    for n in range(1, 20):
        ent = p.dirent(5, 6, b"x" * n, stat.S_IFDIR)
        assert len(ent) % 8 == 0 and struct.unpack_from("<QQII", ent) == (5, 6, n, 4)


@pytest.mark.parametrize("size", [1 << 30, (1 << 32) - 1])
def test_read_and_readdir_sizes_are_bounded_by_init(server, volume, size):
    """A READ of 1 GiB (or near 4 GiB, where the reply's 32-bit length would overflow) gets at
    most what INIT negotiated, not a reply of that size."""
    nodeid, fh, _ = create(server, "big")
    volume.truncate("/big", 3 << 20)
    got = ok(server, Opcode.READ, p.READ_IN.pack(fh, 0, size, 0, 0, 0, 0), nodeid=nodeid)
    assert len(got) == server.max_read == 256 * 4096
    for i in range(300):
        create(server, f"entry-{i:04}")
    dh = p.OPEN_OUT.unpack(ok(server, Opcode.OPENDIR, p.OPEN_IN.pack(os.O_RDONLY, 0)))[0]
    for opcode in (Opcode.READDIR, Opcode.READDIRPLUS):
        listed = ok(server, opcode, p.READ_IN.pack(dh, 0, size, 0, 0, 0, 0))
        assert 0 < len(listed) <= server.max_read


def test_without_max_pages_the_kernel_default_bounds_reads(volume):
    s = Server(volume.vfs, Options())
    s.strict = True
    flags = KERNEL_FLAGS & ~InitFlag.MAX_PAGES
    fields = p.INIT_OUT.unpack(ok(s, Opcode.INIT, init_body(flags=flags)))
    assert (fields[6], s.max_read) == (32 * 4096, 32 * 4096)  # max_write too: the kernel sends no more


def test_a_bug_in_a_handler_is_counted_and_costs_one_request(volume, monkeypatch):
    s = Server(volume.vfs, Options())
    ok(s, Opcode.INIT, init_body())
    monkeypatch.setattr(s, "_ops", {**s._ops, Opcode.STATFS: lambda req, caller: 1 // 0})
    code, _, _ = reply(s, request(Opcode.STATFS))
    assert (code, s.unexpected) == (errno.EIO, 1)
    s.strict = True
    with pytest.raises(ZeroDivisionError):
        s.handle([request(Opcode.STATFS)])


def test_link_by_inode_has_the_protected_hardlinks_check(server):
    """FUSE's LINK names its source by inode; it gets link(2)'s checks, protected_hardlinks too:
    another user may not link a file they could not read and write."""
    ok(server, Opcode.MKDIR, p.MKDIR_IN.pack(0o1777, 0) + b"tmp\0")
    tmp = lookup(server, "tmp")[0]
    ok(server, Opcode.SETATTR, p.SETATTR_IN.pack(p.FATTR_MODE, *[0] * 10, stat.S_IFDIR | 0o1777, 0, 0, 0, 0),
       nodeid=tmp)
    secret = create(server, "secret", mode=0o600)[0]
    user = dict(uid=1000, gid=1000)
    code, _, _ = reply(server, request(Opcode.LINK, p.LINK_IN.pack(secret) + b"mine\0", nodeid=tmp, **user))
    assert code == errno.EPERM
    public = create(server, "public", mode=0o666)[0]
    entry = ok(server, Opcode.LINK, p.LINK_IN.pack(public) + b"ours\0", nodeid=tmp, **user)
    assert p.ATTR.unpack_from(entry, p.ENTRY_HEAD.size)[10] == 2  # nlink


def test_stats_time_the_cpu_of_a_sample_of_requests(server, monkeypatch):
    """CPU time is read for a random share of requests (stats.CPU_SAMPLE); summed with its count."""
    draws = iter([0.0, 0.99, 0.0])  # timed, not timed, timed
    monkeypatch.setattr(server_module, "_random", lambda: next(draws))
    for _ in range(3):
        ok(server, Opcode.GETATTR, p.GETATTR_IN.pack(0, 0, 0))
    getattr_stats = server.stats().opcodes["GETATTR"]
    assert (getattr_stats.requests, getattr_stats.cpu_samples) == (3, 2)
    assert getattr_stats.cpu_us > 0


def test_a_process_caller_is_reused_only_until_its_groups_are_read(volume, monkeypatch):
    """A stream of requests from one process shares its caller while nothing read its groups;
    once a check read them, the next request reads them again, as fresh as its own."""
    s = Server(volume.vfs, Options(), Limits(local_callers=True))
    read = []
    monkeypatch.setattr(server_module, "proc_groups", lambda pid: read.append(pid) or frozenset())
    callers = []
    real = volume.vfs.getattr
    monkeypatch.setattr(s, "getattr", lambda req, caller: callers.append(caller) or p.attr_out(real(1), 1.0))
    s._ops[Opcode.GETATTR] = s.getattr
    ok(s, Opcode.INIT, init_body())
    for _ in range(2):
        ok(s, Opcode.GETATTR, p.GETATTR_IN.pack(0, 0, 0), uid=1000, gid=1000, pid=77)
    assert callers[0] is callers[1] and read == []
    assert callers[1].groups == frozenset() and read == [77]
    ok(s, Opcode.GETATTR, p.GETATTR_IN.pack(0, 0, 0), uid=1000, gid=1000, pid=77)
    assert callers[2] is not callers[1]
    assert callers[2].groups == frozenset() and read == [77, 77]
    ok(s, Opcode.GETATTR, p.GETATTR_IN.pack(0, 0, 0), uid=1000, gid=1000, pid=78)
    assert callers[3] is not callers[2] and callers[3].pid == 78
