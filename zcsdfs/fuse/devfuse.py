"""The /dev/fuse transport: mount, then serve requests from worker threads until unmounted.

As root we open /dev/fuse and call mount(2) ourselves (through cffi in ABI
mode) with ``fd=N`` in the mount data; otherwise ``fusermount3`` (setuid
root, from Debian's fuse3) does the mount and passes the descriptor back
over a socket, as libfuse does. Each worker reads whole requests into its
own preallocated buffer (big enough for ``max_write`` plus headers, as the
kernel demands), hands them to the server and writes the reply with one
``writev``. Reading ENODEV means the file system was unmounted: the workers
stop and ``wait`` returns.

Workers take turns as leader and followers: only the leader reads. It serves
a quick request itself and goes back to reading, so a stream of small
requests (one program creating files) costs no thread wake-ups or GIL
hand-offs. Before a request that may take long (a large READ or WRITE,
fsync, see ``server.long_running``) it hands the reading over to a
follower if another request is already waiting, so that one is served
meanwhile; a COPY_FILE_RANGE always hands over, so an INTERRUPT for it can
be read while it runs. (Handing over when nothing waits would only make the
next request wake a sleeping follower.)

Before it sleeps in read(2), the leader polls the device for up to
``MountOptions.poll_us`` microseconds, yielding the CPU to anything else
runnable. On a virtual machine an idle vCPU halts, and waking it costs
about 20 us; a program issuing requests one after another sends its next
one sooner than that, and finds the leader awake. Measured here with
access(2) in a loop, per call, with the other vCPU busy / idle: every
worker reading at once 19-27 / 30-37 us; the leader alone, sleeping at once
14 / 66-76 us; the leader polling first 15 / 28-32 us.

While requests keep coming the leader also holds a PM QoS request that
keeps idle CPUs from halting (``cpulatency.py``), so the program's vCPU is
awake when the reply wakes the program; it lets go after ``awake_ms``
without a request. Measured per 4 KiB O_DIRECT write/read, server and
program free to run on either vCPU: 34-36 / 33 us without the hold, 18 / 16
us with it.

If this process dies, the kernel fails every access to the mount with
ENOTCONN until it is unmounted; the image is recovered at its next mount.
"""

from __future__ import annotations

import errno
import os
import select
import shutil
import socket
import stat
import subprocess
import threading
import time

import attrs
import cffi

from zcsdfs.fuse.cpulatency import CpuLatency
from zcsdfs.fuse.server import Options, Server, interruptible, long_running

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MNT_DETACH = 2
HEADROOM = 4096  # request header and WRITE's fixed part, rounded up to a page

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
    default_permissions: bool = False
    readonly: bool = False
    fsname: str = "zcsdfs"
    threads: int = 4
    poll_us: int = 50  # how long the leader polls before sleeping in read(2); 0: never
    awake_ms: int = 20  # how long idle CPUs are kept from halting after a request (cpulatency.py); 0: never
    server: Options = Options()

    def kernel_options(self) -> list[str]:
        opts = []
        if self.allow_other:
            opts.append("allow_other")
        if self.default_permissions:
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


class Session:
    """One mount served over /dev/fuse."""

    def __init__(self, vfs, mountpoint, options: MountOptions = MountOptions()):
        self.mountpoint = os.path.abspath(os.fspath(mountpoint))
        self.options = options
        self.server = Server(vfs, attrs.evolve(options.server, groups_from_proc=True))
        root_mode = vfs.getattr(vfs.root).st_mode
        if os.geteuid() == 0:
            self.fd = _mount_syscall(self.mountpoint, root_mode, options)
        else:
            self.fd = _mount_fusermount(self.mountpoint, options)
        self.errors: list[OSError] = []
        self._reading = threading.Lock()  # held by the leader: the one worker reading /dev/fuse
        self._awake = CpuLatency(options.awake_ms)  # used by the leader only
        self._workers = [threading.Thread(target=self._work, name=f"fuse-{i}", daemon=True)
                         for i in range(max(1, options.threads))]
        for t in self._workers:
            t.start()

    def _work(self) -> None:
        buf = bytearray(self.options.server.max_write + HEADROOM)
        view = memoryview(buf)
        fd, handle, reading, awake = self.fd, self.server.handle, self._reading, self._awake
        poll_for = self.options.poll_us / 1e6
        pending = select.poll()
        pending.register(fd, select.POLLIN)
        leading = False
        try:
            while True:
                if not leading:
                    reading.acquire()
                    leading = True
                if poll_for:
                    until = time.perf_counter() + poll_for
                    while not pending.poll(0) and time.perf_counter() < until:
                        os.sched_yield()
                if awake.held and not pending.poll(awake.hold_ms):
                    awake.release()  # quiet for hold_ms: let idle CPUs halt again
                try:
                    n = os.readv(fd, [buf])
                except OSError as exc:
                    if exc.errno in (errno.ENOENT, errno.EINTR, errno.EAGAIN):
                        continue  # the request was interrupted before we read it
                    if exc.errno != errno.ENODEV:
                        self.errors.append(exc)
                    return  # unmounted (or the connection broke); the next leader reads ENODEV too
                awake.hold()
                request = view[:n]
                if long_running(request) and (interruptible(request) or pending.poll(0)):
                    reading.release()  # a follower serves the others (and INTERRUPTs) meanwhile
                    leading = False
                reply = handle(request)
                if reply is None:
                    continue
                try:
                    os.writev(fd, reply)
                except OSError as exc:
                    if exc.errno not in (errno.ENOENT, errno.ENODEV):  # interrupted or unmounted meanwhile
                        self.errors.append(exc)
        finally:
            if leading:
                reading.release()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Whether the kernel's INIT has been answered (the mount serves requests)."""
        return self.server.initialized.wait(timeout)

    def unmount(self, lazy: bool = False) -> None:
        unmount(self.mountpoint, lazy)

    def wait(self) -> None:
        """Block until the file system is unmounted and every worker has stopped."""
        for t in self._workers:
            t.join()
        self._awake.release()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
