"""POSIX behaviour through a real mount: other users, xattrs, renames, space, odd file types."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
import subprocess
import sys
import textwrap

import cffi
import pytest

from zcsdfs.fuse.devfuse import MountOptions
from zcsdfs.fuse.server import Options
from zcsdfs.volume import Volume
from zcsdfs.zns import ZonedDevice
from zcsdfs.zns.geometry import Geometry
from tests.fuse.conftest import needs_fuse

pytestmark = needs_fuse

ffi = cffi.FFI()
ffi.cdef("""
int renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, unsigned int flags);
int fallocate(int fd, int mode, long offset, long len);
""")
libc = ffi.dlopen(None)
AT_FDCWD = -100
RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2
FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE = 1, 2
SYSTEM_PYTHON = "/usr/bin/python3"  # one a second user can execute (ours may live under /root)


def renameat2(old: str, new: str, flags: int) -> None:
    if libc.renameat2(AT_FDCWD, old.encode(), AT_FDCWD, new.encode(), flags) != 0:
        raise OSError(ffi.errno, os.strerror(ffi.errno), old)


def as_user(uid: int, code: str) -> dict:
    """Run ``code`` (which fills ``result``) as ``uid``; returns ``result``."""
    script = "import errno, json, os\nresult = {}\n" + textwrap.dedent(code) + "\nprint(json.dumps(result))"
    done = subprocess.run([SYSTEM_PYTHON, "-c", script], user=uid, group=uid, capture_output=True, text=True,
                          timeout=60, env={"PATH": os.environ["PATH"]})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def needs_second_user() -> None:
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        pytest.skip(f"{SYSTEM_PYTHON} is needed to run code as a second user")


def mount_options_at(path: str) -> set[str]:
    """The super block options of the mount at ``path`` (mountinfo's last field)."""
    with open("/proc/self/mountinfo") as info:
        for line in info:
            fields = line.split()
            if fields[4] == path:
                return set(fields[-1].split(","))
    raise AssertionError(f"nothing mounted at {path}")


def test_allow_other_always_has_the_kernel_check_permissions(mount_factory):
    """The kernel walks cached paths without asking the server, so only it can check search
    permission on a path's directories: a mount other users reach needs default_permissions."""
    shared = mount_factory(MountOptions(allow_other=True)).path
    assert {"allow_other", "default_permissions"} <= mount_options_at(shared)
    private = mount_factory(MountOptions()).path
    assert "default_permissions" not in mount_options_at(private)


def test_second_user_meets_search_permission_and_fifo_modes(mnt):
    """pjdfstest's finds without default_permissions: a secret under a 0700 directory that the
    kernel has cached, and a FIFO opened without permission."""
    needs_second_user()
    os.mkdir(f"{mnt}/d")
    with open(f"{mnt}/d/x", "w") as f:
        f.write("secret")
    os.chmod(f"{mnt}/d/x", 0o644)
    os.chmod(f"{mnt}/d", 0o700)
    os.stat(f"{mnt}/d/x")  # the kernel caches d and d/x
    os.mkfifo(f"{mnt}/fifo", 0o600)
    result = as_user(65534, f"""
        mnt = {mnt!r}
        for name, fn in (("read", lambda: open(mnt + "/d/x").read()),
                         ("stat", lambda: os.stat(mnt + "/d/x")),
                         ("fifo", lambda: os.open(mnt + "/fifo", os.O_RDONLY | os.O_NONBLOCK))):
            try:
                fn()
                result[name] = 0
            except OSError as exc:
                result[name] = exc.errno
    """)
    assert result == {"read": errno.EACCES, "stat": errno.EACCES, "fifo": errno.EACCES}


def test_writeback_cache_lets_a_writer_touch_but_not_choose_times(mount_factory):
    """With writeback_cache the kernel sends touch(1)'s time as a value, not "now": a user who
    may write (not the owner) may still touch, and still may not set times of their choosing."""
    needs_second_user()
    mnt = mount_factory(MountOptions(allow_other=True, server=Options(writeback_cache=True))).path
    with open(f"{mnt}/shared", "w") as f:
        f.write("x")
    os.chmod(f"{mnt}/shared", 0o666)
    old = os.stat(f"{mnt}/shared").st_mtime_ns
    os.utime(f"{mnt}/shared", ns=(1, 1))
    result = as_user(1000, f"""
        path = {mnt!r} + "/shared"
        os.utime(path)  # touch
        result["touched"] = os.stat(path).st_mtime_ns
        try:
            os.utime(path, ns=(5 * 10**9, 5 * 10**9))
            result["chosen"] = 0
        except OSError as exc:
            result["chosen"] = exc.errno
    """)
    assert result["touched"] >= old and result["chosen"] == errno.EPERM
    assert os.stat(f"{mnt}/shared").st_mtime_ns == result["touched"]


def test_second_user(mnt):
    needs_second_user()
    with open(f"{mnt}/secret", "w") as f:
        f.write("root only")
    os.chmod(f"{mnt}/secret", 0o600)
    with open(f"{mnt}/public", "w") as f:
        f.write("everyone")
    os.mkdir(f"{mnt}/shared", 0o1777)
    os.chmod(f"{mnt}/shared", 0o1777)
    with open(f"{mnt}/shared/roots", "w") as f:
        f.write("x")
    with open(f"{mnt}/setuid", "w") as f:
        f.write("#!/bin/sh\n")
    os.chmod(f"{mnt}/setuid", 0o6777)
    result = as_user(1000, f"""
        def attempt(name, fn):
            try:
                fn()
                result[name] = 0
            except OSError as exc:
                result[name] = exc.errno
        mnt = {mnt!r}
        attempt("read_secret", lambda: open(mnt + "/secret").read())
        result["public"] = open(mnt + "/public").read()
        attempt("write_public", lambda: open(mnt + "/public", "a"))
        attempt("mkdir_root", lambda: os.mkdir(mnt + "/mine"))
        attempt("chmod_secret", lambda: os.chmod(mnt + "/secret", 0o666))
        attempt("unlink_sticky", lambda: os.unlink(mnt + "/shared/roots"))
        result["access_secret"] = os.access(mnt + "/secret", os.R_OK)
        with open(mnt + "/shared/own", "w") as f:
            f.write("mine")
        st = os.stat(mnt + "/shared/own")
        result["own"] = [st.st_uid, st.st_gid, oct(st.st_mode & 0o777)]
        os.rename(mnt + "/shared/own", mnt + "/shared/own2")
        os.unlink(mnt + "/shared/own2")
        with open(mnt + "/setuid", "a") as f:  # a write by another user drops setuid and setgid
            f.write("true")
    """)
    assert result == {"read_secret": errno.EACCES, "public": "everyone", "write_public": errno.EACCES,
                      "mkdir_root": errno.EACCES, "chmod_secret": errno.EPERM, "unlink_sticky": errno.EPERM,
                      "access_secret": False, "own": [1000, 1000, "0o644"]}
    assert sorted(os.listdir(f"{mnt}/shared")) == ["roots"]
    assert oct(os.stat(f"{mnt}/setuid").st_mode & 0o7777) == "0o777"


def test_xattrs(mnt):
    path = f"{mnt}/f"
    open(path, "w").close()
    os.setxattr(path, "user.color", b"blue")
    os.setxattr(path, "user.big", os.urandom(1000))
    assert os.getxattr(path, "user.color") == b"blue"
    assert sorted(os.listxattr(path)) == ["user.big", "user.color"]
    with pytest.raises(OSError) as exc:
        os.setxattr(path, "user.color", b"red", os.XATTR_CREATE)
    assert exc.value.errno == errno.EEXIST
    with pytest.raises(OSError) as exc:
        os.setxattr(path, "user.none", b"x", os.XATTR_REPLACE)
    assert exc.value.errno == errno.ENODATA
    os.removexattr(path, "user.color")
    with pytest.raises(OSError) as exc:
        os.getxattr(path, "user.color")
    assert exc.value.errno == errno.ENODATA
    assert os.listxattr(path) == ["user.big"]


def test_renames(mnt):
    def touch(name, text=""):
        with open(f"{mnt}/{name}", "w") as f:
            f.write(text)
    touch("a", "A")
    touch("b", "B")
    os.mkdir(f"{mnt}/d1")
    os.mkdir(f"{mnt}/d2")
    touch("d2/inside")
    os.rename(f"{mnt}/a", f"{mnt}/b")
    assert open(f"{mnt}/b").read() == "A" and not os.path.exists(f"{mnt}/a")
    for src, dst, code in (("b", "d1", errno.EISDIR), ("d1", "b", errno.ENOTDIR), ("d1", "d2", errno.ENOTEMPTY),
                           ("d1", "d1/sub", errno.EINVAL), ("missing", "x", errno.ENOENT)):
        with pytest.raises(OSError) as exc:
            os.rename(f"{mnt}/{src}", f"{mnt}/{dst}")
        assert exc.value.errno == code, (src, dst)
    touch("c", "C")
    with pytest.raises(OSError) as exc:
        renameat2(f"{mnt}/c", f"{mnt}/b", RENAME_NOREPLACE)
    assert exc.value.errno == errno.EEXIST
    renameat2(f"{mnt}/c", f"{mnt}/b", RENAME_EXCHANGE)
    assert open(f"{mnt}/b").read() == "C" and open(f"{mnt}/c").read() == "A"
    renameat2(f"{mnt}/d2", f"{mnt}/c", RENAME_EXCHANGE)  # a directory and a file trade places
    assert os.listdir(f"{mnt}/c") == ["inside"] and open(f"{mnt}/d2").read() == "A"
    os.rename(f"{mnt}/d1", f"{mnt}/c/moved")
    assert os.stat(f"{mnt}/c").st_nlink == 3
    renameat2(f"{mnt}/b", f"{mnt}/fresh", RENAME_NOREPLACE)
    assert sorted(os.listdir(mnt)) == ["c", "d2", "fresh"]


def test_file_larger_than_writeback_window(mnt):
    chunk = os.urandom(1 << 20)
    h = hashlib.sha256()
    with open(f"{mnt}/big", "wb") as f:
        for i in range(48):
            block = chunk[i:] + chunk[:i]
            f.write(block)
            h.update(block)
    assert os.path.getsize(f"{mnt}/big") == 48 << 20
    back = hashlib.sha256()
    with open(f"{mnt}/big", "rb") as f:
        while block := f.read(1 << 20):
            back.update(block)
    assert back.hexdigest() == h.hexdigest()


def test_full_device_then_recovery(mount_factory):
    volume = Volume(ZonedDevice.memory(Geometry(zones=8, zone_size=1024, zone_capacity=1024)))
    mnt = mount_factory(MountOptions(), volume=volume).path
    chunk = os.urandom(1 << 20)
    written = 0
    with pytest.raises(OSError) as exc:
        with open(f"{mnt}/fill", "wb", buffering=0) as f:
            for _ in range(64):
                written += f.write(chunk)
    assert exc.value.errno == errno.ENOSPC
    assert 8 << 20 < written < 32 << 20
    with open(f"{mnt}/fill", "rb") as f:
        assert f.read(1 << 20) == chunk
    os.unlink(f"{mnt}/fill")
    with open(f"{mnt}/after", "wb") as f:
        for _ in range(8):
            f.write(chunk)
        os.fsync(f.fileno())
    assert os.path.getsize(f"{mnt}/after") == 8 << 20


def test_fifo_fallocate_seek_copy_range(mnt):
    os.mkfifo(f"{mnt}/pipe")
    assert stat.S_ISFIFO(os.stat(f"{mnt}/pipe").st_mode)
    fd = os.open(f"{mnt}/sparse", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.posix_fallocate(fd, 0, 1 << 20)
        assert os.fstat(fd).st_size == 1 << 20
        os.pwrite(fd, b"d" * 8192, 512 << 10)
        assert libc.fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 516 << 10, 4096) == 0
        assert os.pread(fd, 8192, 512 << 10) == b"d" * 4096 + bytes(4096)
        assert os.lseek(fd, 0, os.SEEK_DATA) == 512 << 10
        assert os.lseek(fd, 512 << 10, os.SEEK_HOLE) == 516 << 10
        dst = os.open(f"{mnt}/copy", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            assert os.copy_file_range(fd, dst, 8192, 512 << 10, 0) == 8192
            assert os.pread(dst, 9000, 0) == b"d" * 4096 + bytes(4096)
        finally:
            os.close(dst)
    finally:
        os.close(fd)


def test_readonly_mount(mount_factory):
    volume = Volume.memory()
    volume.mkdir("/kept")
    ro = mount_factory(MountOptions(readonly=True), volume=volume).path
    assert os.listdir(ro) == ["kept"]
    with pytest.raises(OSError) as exc:
        open(f"{ro}/new", "w")
    assert exc.value.errno == errno.EROFS


def test_writeback_cache_mount(mount_factory):
    mnt = mount_factory(MountOptions(server=Options(writeback_cache=True))).path
    with open(f"{mnt}/log", "a") as f:
        f.write("one\n")
    with open(f"{mnt}/log", "a") as f:
        f.write("two\n")
    fd = os.open(f"{mnt}/wo", os.O_WRONLY | os.O_CREAT, 0o200)
    os.pwrite(fd, b"abc", 1)  # a partial page: the kernel reads it on a write-only handle
    os.close(fd)
    os.chmod(f"{mnt}/wo", 0o600)
    assert open(f"{mnt}/log").read() == "one\ntwo\n"
    assert open(f"{mnt}/wo", "rb").read() == b"\0abc"


@pytest.mark.parametrize("negative_timeout", [0.0, 60.0])
def test_negative_entries(mount_factory, negative_timeout):
    """Cached "no such name" answers never hide names made through the mount, by any process;
    only a name made behind the kernel's back stays hidden, and only with negative_timeout."""
    m = mount_factory(MountOptions(server=Options(negative_timeout=negative_timeout)))
    names = ("by-child", "dir", "renamed", "linked", "behind")
    for name in names:
        assert not os.path.exists(f"{m.path}/{name}")  # each LOOKUP answered "missing"
    maker = textwrap.dedent(f"""
        import os
        open({m.path!r} + "/by-child", "w").close()
        os.mkdir({m.path!r} + "/dir")
        open({m.path!r} + "/tmp", "w").close()
        os.rename({m.path!r} + "/tmp", {m.path!r} + "/renamed")
        os.link({m.path!r} + "/renamed", {m.path!r} + "/linked")
    """)
    done = subprocess.run([sys.executable, "-c", maker], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    m.volume.close(m.volume.open("/behind", os.O_WRONLY | os.O_CREAT, 0o644))  # not through the kernel
    seen = {name: os.path.exists(f"{m.path}/{name}") for name in names}
    assert seen == {"by-child": True, "dir": True, "renamed": True, "linked": True,
                    "behind": not negative_timeout}


def test_write_only_writes_keep_cached_readers_coherent(mnt):
    """A write-only handle writes around the page cache (FOPEN_DIRECT_IO); a reader's cached pages
    of the range must not survive it."""
    path = f"{mnt}/f"
    with open(path, "wb") as f:
        f.write(b"a" * 3 * 4096)
    reader = os.open(path, os.O_RDONLY)
    try:
        assert os.pread(reader, 3 * 4096, 0) == b"a" * 3 * 4096  # now in the page cache
        writer = os.open(path, os.O_WRONLY)
        try:
            assert os.pwrite(writer, b"b" * 5000, 2000) == 5000
            assert os.pwrite(writer, b"c" * 4096, 3 * 4096) == 4096  # extends the file
        finally:
            os.close(writer)
        assert os.pread(reader, 4 * 4096, 0) == b"a" * 2000 + b"b" * 5000 + b"a" * 5288 + b"c" * 4096
        assert os.fstat(reader).st_size == 4 * 4096
    finally:
        os.close(reader)


def test_read_write_handles_on_new_files_keep_cached_readers_coherent(mnt):
    """A read-write handle on an empty file writes around the page cache too; a reader's cached
    pages must not survive its writes, and it reads back what it wrote."""
    path = f"{mnt}/new"
    rw = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        assert os.pwrite(rw, b"a" * 3 * 4096, 0) == 3 * 4096
        reader = os.open(path, os.O_RDONLY)
        try:
            assert os.pread(reader, 3 * 4096, 0) == b"a" * 3 * 4096  # now in the page cache
            assert os.pwrite(rw, b"b" * 5000, 2000) == 5000
            assert os.pread(rw, 8000, 0) == b"a" * 2000 + b"b" * 5000 + b"a" * 1000
            assert os.pread(reader, 3 * 4096, 0) == b"a" * 2000 + b"b" * 5000 + b"a" * 5288
        finally:
            os.close(reader)
    finally:
        os.close(rw)
    with open(path, "rb") as f:
        assert f.read() == b"a" * 2000 + b"b" * 5000 + b"a" * 5288


def test_shared_mmap_of_an_o_direct_descriptor(mnt):
    """O_DIRECT handles are direct-I/O handles; DIRECT_IO_ALLOW_MMAP keeps MAP_SHARED working."""
    path = f"{mnt}/mapped"
    with open(path, "wb") as f:
        f.write(b"a" * 8192)
    # in a child: a page fault here would hold the GIL the in-process server needs to answer it
    code = textwrap.dedent(f"""
        import mmap, os
        fd = os.open({path!r}, os.O_RDWR | os.O_DIRECT)
        with mmap.mmap(fd, 8192) as m:
            m[100:105] = b"hello"
            m.flush()
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    with open(path, "rb") as f:
        assert f.read() == b"a" * 100 + b"hello" + b"a" * (8192 - 105)


def test_serves_with_one_worker_that_never_polls(mount_factory):
    mnt = mount_factory(MountOptions(threads=1, poll_us=0)).path
    with open(f"{mnt}/f", "wb") as f:
        f.write(b"x" * (3 << 20))  # large writes: the only worker hands reading over to itself
    fd = os.open(f"{mnt}/f", os.O_RDONLY)
    os.fsync(fd)  # FSYNC is long-running too
    os.close(fd)
    assert open(f"{mnt}/f", "rb").read() == b"x" * (3 << 20)
    assert os.listdir(mnt) == ["f"]


def test_times_before_1970(mnt):
    path = f"{mnt}/old"
    open(path, "w").close()
    os.utime(path, ns=(-315619200 * 10**9 + 5, -10**9 // 2))  # 1960, and half a second before 1970
    st = os.stat(path)  # the attributes SETATTR answered with, as the kernel cached them
    assert (st.st_atime_ns, st.st_mtime_ns) == (-315619200 * 10**9 + 5, -10**9 // 2)


def test_a_session_refuses_a_busy_mount_point_and_bad_pool_options(mount_factory):
    """The library refuses what the CLI refuses: mounting over a mount (which would hide it and
    leave its server with nothing to unmount it by) and worker counts out of range."""
    from zcsdfs.fuse.devfuse import Session
    m = mount_factory(MountOptions())
    volume = Volume.memory()
    try:
        with pytest.raises(OSError) as busy:
            Session(volume.vfs, m.path)
        assert busy.value.errno == errno.EBUSY
        with pytest.raises(OSError) as bad:
            Session(volume.vfs, m.path, MountOptions(threads=100_000))
        assert bad.value.errno == errno.EINVAL
    finally:
        volume.unmount()
    with open(f"{m.path}/still-served", "w") as f:
        f.write("yes")
