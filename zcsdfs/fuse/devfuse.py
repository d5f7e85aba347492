"""The /dev/fuse transport, and mounting: what connects the kernel to a ``Server``.

As root we open /dev/fuse and call mount(2) ourselves (through cffi in ABI
mode) with ``fd=N`` in the mount data; otherwise ``fusermount3`` (setuid
root, from Debian's fuse3) does the mount and passes the descriptor back
over a socket, as libfuse does. ``DevFuse`` is the ``Transport`` over that
descriptor: each worker reads whole requests into its own preallocated
buffer (big enough for ``max_write`` plus headers, as the kernel demands)
and writes each reply with one ``writev`` (joined first when it has more
pieces than writev takes: a large directory's READDIR). Reading ENODEV (or ECONNABORTED) means the file
system was unmounted (or its connection aborted): receivers return None and the workers stop.
``Session`` puts the pieces together: mount, transport, server, worker pool
(``pool.py``).

Permissions: the server checks each operation on the inode it names, but
the kernel resolves paths through its own dentry cache, so search
permission on the directories above a cached inode is checked only by the
kernel, with ``default_permissions``. A mount other users can reach
(``allow_other``) therefore always gets it; without ``allow_other`` only the
mounting user can use the mount at all.

If this process dies, the kernel fails every access to the mount with
ENOTCONN until it is unmounted; the image is recovered at its next mount.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import shutil
import socket
import stat
import subprocess
import threading

import attrs
import cffi

from zcsdfs.fuse.pool import PoolOptions
from zcsdfs.fuse.server import Options
from zcsdfs.fuse.serving import Serving, start
from zcsdfs.fuse.transport import Incoming, Limits, Reply

log = logging.getLogger(__name__)

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MNT_DETACH = 2
HEADROOM = 4096  # request header and WRITE's fixed part, rounded up to a page
URING_MODES = ("auto", "on", "off")
IOV_MAX = os.sysconf("SC_IOV_MAX")  # the most buffers one writev takes (1024 on Linux)

_ffi = cffi.FFI()
_ffi.cdef("""
int mount(const char *source, const char *target, const char *filesystemtype,
          unsigned long mountflags, const void *data);
int umount2(const char *target, int flags);
""")
_libc = _ffi.dlopen(None)


@attrs.frozen
class MountOptions:
    """How the kernel is asked to mount (the server's own promises are ``server``)."""

    allow_other: bool = False
    default_permissions: bool = False  # always on with allow_other (see the module's docstring)
    readonly: bool = False
    fsname: str = "zcsdfs"
    threads: int = 4
    poll_us: int = 50  # how long the leader polls before sleeping in read(2); 0: never
    awake_ms: int = 20  # how long idle CPUs are kept from halting after a request (cpulatency.py); 0: never
    uring: str = "auto"  # FUSE over io_uring (fuse_uring.py): auto (where the kernel serves it), on, off
    server: Options = Options()

    @property
    def kernel_checks(self) -> bool:
        """Whether the kernel checks permissions too (``default_permissions``)."""
        return self.default_permissions or self.allow_other

    def pool(self) -> PoolOptions:
        """The worker pool's options (EINVAL when out of range)."""
        try:
            return PoolOptions(threads=self.threads, poll_us=self.poll_us, awake_ms=self.awake_ms)
        except ValueError as exc:
            raise OSError(errno.EINVAL, f"mount options: {exc}") from None

    def use_uring(self) -> bool:
        """Whether to serve over io_uring: "auto" where the kernel serves it; "on" refuses
        (EOPNOTSUPP, with the reason) where it cannot."""
        from zcsdfs.fuse import fuse_uring  # here, not at the top: fuse_uring builds on DevFuse
        if self.uring not in URING_MODES:
            raise OSError(errno.EINVAL, f"mount options: uring={self.uring} (expected auto, on or off)")
        if self.uring == "off":
            return False
        why = fuse_uring.unavailable()
        if why is not None and self.uring == "on":
            raise OSError(errno.EOPNOTSUPP, f"uring=on: {why}")
        return why is None

    def kernel_options(self) -> list[str]:
        opts = []
        if self.allow_other:
            opts.append("allow_other")
        if self.kernel_checks:
            opts.append("default_permissions")
        return opts


def _check(result: int, what: str, path: str) -> None:
    if result != 0:
        code = _ffi.errno
        raise OSError(code, f"{what}: {os.strerror(code)}", path)


def _mount_syscall(mountpoint: str, root_mode: int, options: MountOptions) -> int:
    fd = os.open("/dev/fuse", os.O_RDWR | os.O_CLOEXEC)
    try:
        data = ",".join([f"fd={fd}", f"rootmode={stat.S_IFMT(root_mode):o}", f"user_id={os.getuid()}",
                         f"group_id={os.getgid()}", *options.kernel_options()])
        flags = MS_NOSUID | MS_NODEV | (MS_RDONLY if options.readonly else 0)
        _check(_libc.mount(options.fsname.encode(), os.fsencode(mountpoint), b"fuse.zcsdfs", flags,
                           data.encode()), "mount", mountpoint)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _mount_fusermount(mountpoint: str, options: MountOptions) -> int:
    """Ask fusermount3 to mount; it sends the /dev/fuse descriptor back over a socket pair."""
    tool = shutil.which("fusermount3")
    if tool is None:
        raise OSError(errno.EPERM, "mounting without root needs fusermount3 (Debian's fuse3)", mountpoint)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with ours, theirs:
        opts = ",".join([f"fsname={options.fsname}", "subtype=zcsdfs", *options.kernel_options(),
                         *(["ro"] if options.readonly else [])])
        env = dict(os.environ, _FUSE_COMMFD=str(theirs.fileno()))
        done = subprocess.run([tool, "-o", opts, "--", mountpoint], env=env, pass_fds=(theirs.fileno(),),
                              stderr=subprocess.PIPE, text=True)
        if done.returncode != 0:
            raise OSError(errno.EPERM, f"fusermount3: {done.stderr.strip()}", mountpoint)
        theirs.close()
        _, fds, _, _ = socket.recv_fds(ours, 1, 1)
    if not fds:
        raise OSError(errno.EIO, "fusermount3 sent no /dev/fuse descriptor", mountpoint)
    os.set_inheritable(fds[0], False)
    return fds[0]


def unmount(mountpoint: str, lazy: bool = False) -> None:
    """Unmount a FUSE file system (umount2 as root, else fusermount3 -u)."""
    mountpoint = os.path.abspath(mountpoint)
    if os.geteuid() == 0:
        _check(_libc.umount2(os.fsencode(mountpoint), MNT_DETACH if lazy else 0), "umount", mountpoint)
        return
    tool = shutil.which("fusermount3") or "fusermount3"
    done = subprocess.run([tool, "-u", *(["-z"] if lazy else []), "--", mountpoint],
                          stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise OSError(errno.EINVAL, f"fusermount3 -u: {done.stderr.strip()}", mountpoint)


def mounted_at(path: str) -> tuple[str, str] | None:
    """(file system type, source) of the mount whose mount point is ``path``, if one is there
    (the topmost, when mounts are stacked); None otherwise."""
    path = os.path.abspath(path)  # resolved without stat(2) on ``path``: a stuck server would never answer
    target = os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))
    found = None
    with open("/proc/self/mountinfo") as info:
        for line in info:
            fields = line.split()
            sep = fields.index("-")
            if _unescape(fields[4]) == target:
                found = (fields[sep + 1], _unescape(fields[sep + 2]))
    return found


def _unescape(text: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes."""
    for code in ("040", "011", "012", "134"):
        text = text.replace("\\" + code, chr(int(code, 8)))
    return text


def mount(mountpoint: str, root_mode: int, options: MountOptions = MountOptions()) -> int:
    """Mount a FUSE file system at ``mountpoint``; returns the connected /dev/fuse descriptor.

    Refuses (EBUSY) a mount point where something is mounted already: a
    second mount would hide the first, whose server then keeps its image
    locked with nothing left to unmount it by."""
    mountpoint = os.path.abspath(mountpoint)
    already = mounted_at(mountpoint)
    if already is not None:
        raise OSError(errno.EBUSY, f"already a mount point ({already[0]} from {already[1]}); "
                                   f"unmount it first", mountpoint)
    if os.geteuid() == 0:
        return _mount_syscall(mountpoint, root_mode, options)
    return _mount_fusermount(mountpoint, options)


class DevFuse:
    """The ``Transport`` over a connected /dev/fuse descriptor (see the module's docstring).

    ``buffer_size``: each worker's request buffer, at least ``max_write`` plus
    ``HEADROOM``. The descriptor is the caller's to close (``close``), after
    the workers stopped."""

    limits = Limits(max_pages=None, interrupts=True, notifications=True, local_callers=True)

    def __init__(self, fd: int, buffer_size: int):
        self.fd = fd
        self.buffer_size = buffer_size
        self._polls = threading.local()

    def receiver(self):
        buf = bytearray(self.buffer_size)
        view = memoryview(buf)
        fd = self.fd

        def receive() -> Incoming | None:
            while True:
                try:
                    n = os.readv(fd, [buf])
                except OSError as exc:
                    if exc.errno in (errno.ENOENT, errno.EINTR, errno.EAGAIN):
                        continue  # the request was interrupted before we read it
                    if exc.errno in (errno.ENODEV, errno.ECONNABORTED):
                        return None  # unmounted, or the connection was aborted: nothing left to serve
                    raise
                return Incoming((view[:n],))

        return receive

    def ready(self, timeout: float) -> bool:
        poll = getattr(self._polls, "poll", None)
        if poll is None:  # one per thread: a poll object refuses concurrent use
            poll = self._polls.poll = select.poll()
            poll.register(self.fd, select.POLLIN)
        return bool(poll.poll(timeout * 1000))

    def reply(self, incoming: Incoming, reply: Reply | None) -> None:
        if reply is None:
            return
        if len(reply) > IOV_MAX:  # writev refuses more pieces (EINVAL), and the request would hang
            reply = [b"".join(reply)]
        try:
            os.writev(self.fd, reply)
        except OSError as exc:
            if exc.errno not in (errno.ENOENT, errno.ENODEV):  # interrupted or unmounted meanwhile
                raise

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _uring_transport(fd: int, options: MountOptions):
    """The io_uring transport over ``fd``; with uring=auto, /dev/fuse's when the ring cannot
    be set up (the reason is logged)."""
    from zcsdfs.fuse.fuse_uring import FuseUring  # see MountOptions.use_uring
    try:
        return FuseUring(fd, options.server.max_write + HEADROOM)
    except OSError as exc:
        if options.uring == "on":
            raise
        log.warning("FUSE over io_uring unavailable (%s); serving /dev/fuse", exc)
        return DevFuse(fd, options.server.max_write + HEADROOM)


class Session:
    """One mount: mount, transport (io_uring or /dev/fuse, ``MountOptions.uring``), server and
    worker pool."""

    def __init__(self, vfs, mountpoint, options: MountOptions = MountOptions()):
        self.mountpoint = os.path.abspath(os.fspath(mountpoint))
        self.options = options
        pool = options.pool()  # out-of-range numbers fail here, before anything is mounted
        uring = options.use_uring()
        fd = mount(self.mountpoint, vfs.getattr(vfs.root).st_mode, options)
        self.transport = DevFuse(fd, options.server.max_write + HEADROOM)
        try:
            if uring:
                self.transport = _uring_transport(fd, options)
            self.serving: Serving = start(vfs, self.transport, options.server, pool)
        except BaseException:
            self._abandon()
            raise
        self.server = self.serving.server

    @property
    def uring(self) -> bool:
        """Whether requests come over io_uring (known once INIT has been answered)."""
        return getattr(self.transport, "active", None) == "uring"

    def _abandon(self) -> None:
        """Undo a mount nobody will serve: detach it, so no process waits on it."""
        try:
            unmount(self.mountpoint, lazy=True)
        except OSError:
            pass  # nothing mounted any more
        self.transport.close()

    @property
    def fd(self) -> int:
        return self.transport.fd

    @property
    def errors(self) -> list:
        return self.serving.pool.errors

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Whether the kernel's INIT has been answered (the mount serves requests); False when
        the workers stopped first, or on timeout."""
        if not self.serving.ready(timeout):
            return False
        settled = getattr(self.transport, "settled", None)  # io_uring's: the ring set up, or not
        return settled is None or settled.wait(timeout)

    def unmount(self, lazy: bool = False) -> None:
        unmount(self.mountpoint, lazy)

    def wait(self) -> None:
        """Block until the file system is unmounted and every worker has stopped."""
        self.serving.wait()
        self.transport.close()
