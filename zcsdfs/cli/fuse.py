"""CLI: ``zcsdfs mount [IMAGE] MOUNTPOINT [-f] [-o ...]`` and ``zcsdfs umount MOUNTPOINT``.

Without ``-f`` the server daemonises and the command returns once the kernel
has been answered (the mount is usable); errors before that point are
reported by the command itself, and a mount whose server failed is undone.
A mount point where something is mounted already is refused. SIGINT and
SIGTERM unmount; the server then checkpoints the volume and lets go of the
image. ``umount`` returns only after that, by waiting for the image's lock,
so a script can mount the image again (or fsck it) straight away; it waits
at most ``--timeout`` seconds, and ``-l`` detaches without waiting.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import math
import os
import shutil
import signal
import subprocess
import time

import attrs

from zcsdfs.cli import describe, subcommand
from zcsdfs.cli.lfs import add_gc_policy
from zcsdfs.control import ControlServer
from zcsdfs.fuse.devfuse import URING_MODES, MountOptions, Session, mounted_at, unmount
from zcsdfs.fuse.pool import MAX_THREADS
from zcsdfs.fuse.server import Options
from zcsdfs.lfs.gc import DEFAULT_POLICY
from zcsdfs.stack import build_stack
from zcsdfs.zns import default_device_path

log = logging.getLogger("zcsdfs.fuse")
FLAGS = {"allow_other", "default_permissions", "ro", "writeback_cache"}
DAY = 86_400.0
# Numeric options: their type and the range a value must lie in.
VALUES = {"entry_timeout": (float, 0.0, DAY), "attr_timeout": (float, 0.0, DAY),
          "negative_timeout": (float, 0.0, DAY), "threads": (int, 1, MAX_THREADS),
          "poll_us": (int, 0, 1_000_000), "awake_ms": (int, 0, 3_600_000)}
HELP_OPTIONS = ("allow_other (implies default_permissions), default_permissions, ro, writeback_cache, "
                "entry_timeout=SECONDS, attr_timeout=SECONDS, negative_timeout=SECONDS (default 0), "
                f"threads=N (1-{MAX_THREADS}, default 4), poll_us=MICROSECONDS (0: sleep at once), "
                "awake_ms=MILLISECONDS (0: let idle CPUs halt), uring=auto|on|off (FUSE over io_uring; "
                "auto: where the kernel serves it), snapshot=NAME (serve that snapshot, read-only)")
UMOUNT_TIMEOUT = 60.0


def register(sub) -> None:
    p = subcommand(sub, "mount", "serve a volume through FUSE at a mount point", cmd_mount)
    p.add_argument("paths", nargs="+", metavar="[IMAGE] MOUNTPOINT",
                   help="image file (default: the embedded default device) and mount point")
    p.add_argument("-f", "--foreground", action="store_true", help="stay in the foreground")
    p.add_argument("-o", dest="options", action="append", default=[], metavar="OPT[,OPT...]",
                   help=f"mount options: {HELP_OPTIONS}")
    add_gc_policy(p)
    p = subcommand(sub, "umount", "unmount a zcsdfs FUSE mount and wait for its server to finish",
                   cmd_umount)
    p.add_argument("mountpoint")
    p.add_argument("-l", "--lazy", action="store_true",
                   help="detach now, even if busy or the server is stuck, and do not wait for the server")
    p.add_argument("--timeout", type=float, default=UMOUNT_TIMEOUT, metavar="SECONDS",
                   help=f"how long to wait for the server to finish (default {UMOUNT_TIMEOUT:g})")


def snapshot_option(texts: list[str]) -> tuple[str | None, list[str]]:
    """``snapshot=NAME`` taken out of the ``-o`` values: (NAME or None, the other values)."""
    snapshot, rest = None, []
    for text in texts:
        items = []
        for item in text.split(","):
            if item.startswith("snapshot="):
                snapshot = item[len("snapshot="):]
            else:
                items.append(item)
        rest.append(",".join(items))
    return snapshot, rest


def parse_options(texts: list[str], fsname: str) -> MountOptions:
    """``-o`` values (comma-separated, repeatable) as mount options."""
    flags, values = set(), {}
    for text in texts:
        for item in filter(None, text.split(",")):
            key, eq, value = item.partition("=")
            if not eq and key in FLAGS:
                flags.add(key)
            elif eq and key == "uring":
                if value not in URING_MODES:
                    raise OSError(errno.EINVAL, f"mount option uring={value}: expected auto, on or off")
                values[key] = value
            elif eq and key in VALUES:
                kind, low, high = VALUES[key]
                try:
                    values[key] = kind(value)
                except ValueError:
                    raise OSError(errno.EINVAL, f"bad value for mount option {key}: {value!r}") from None
                if not (math.isfinite(values[key]) and low <= values[key] <= high):  # also refuses nan
                    raise OSError(errno.EINVAL, f"mount option {key}={value} is out of range "
                                                f"({low:g} to {high:g})")
            else:
                raise OSError(errno.EINVAL, f"unknown mount option {item!r} (known: {HELP_OPTIONS})")
    server = Options(writeback_cache="writeback_cache" in flags,
                     **{key: values[key] for key in ("entry_timeout", "attr_timeout", "negative_timeout")
                        if key in values})
    return MountOptions(allow_other="allow_other" in flags, default_permissions="default_permissions" in flags,
                        readonly="ro" in flags, fsname=fsname, server=server,
                        **{key: values[key] for key in ("threads", "poll_us", "awake_ms", "uring") if key in values})


def cmd_mount(args) -> int:
    if len(args.paths) > 2:
        raise OSError(errno.EINVAL, "expected [IMAGE] MOUNTPOINT")
    if len(args.paths) == 2:
        image, mountpoint = os.path.abspath(args.paths[0]), args.paths[1]
    else:
        image, mountpoint = None, args.paths[0]  # the embedded default device
    already = mounted_at(mountpoint)
    if already is not None:
        raise OSError(errno.EBUSY, f"already a mount point ({already[0]} from {already[1]}); "
                                   "unmount it first", mountpoint)
    if not os.path.isdir(mountpoint):
        raise OSError(errno.ENOTDIR, "mount point is not a directory", mountpoint)
    snapshot, args.options = snapshot_option(args.options)
    options = parse_options(args.options, image or default_device_path())
    if snapshot is not None:  # a snapshot is read-only, and the kernel is told so
        options = attrs.evolve(options, readonly=True)
    if args.foreground:
        return serve(image, mountpoint, options, snapshot=snapshot, gc_policy=args.gc_policy)
    return daemonise(image, mountpoint, options, snapshot, args.gc_policy)


def daemonise(image: str | None, mountpoint: str, options: MountOptions, snapshot: str | None = None,
              gc_policy: str = DEFAULT_POLICY) -> int:
    """Fork a server; return when it reports the mount ready, or raise what it failed with."""
    ready_r, ready_w = os.pipe()
    if os.fork():
        os.close(ready_w)
        with os.fdopen(ready_r, "rb") as pipe:
            message = pipe.read()
        if message == b"ready":
            return 0
        _undo_dead_mount(mountpoint, image or default_device_path())
        code, _, text = message.decode(errors="replace").partition("\0")
        raise OSError(int(code) if code.isdigit() else errno.EIO,
                      text or "the server exited before the mount was ready")
    os.close(ready_r)
    status = 1
    try:
        os.setsid()
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        status = serve(image, mountpoint, options, ready_w, snapshot=snapshot, gc_policy=gc_policy)
    except OSError as exc:
        os.write(ready_w, f"{exc.errno or errno.EIO}\0{describe(exc)}".encode())
    except BaseException as exc:  # a bug: its name and message go to the user, not a silent exit
        os.write(ready_w, f"{errno.EIO}\0the server failed: {type(exc).__name__}: {exc}".encode())
    finally:
        os._exit(status)


def _undo_dead_mount(mountpoint: str, image: str) -> None:
    """Detach a mount of ``image`` at ``mountpoint`` whose server is gone (it died after
    mounting), so the mount point does not answer ENOTCONN."""
    if mounted_at(mountpoint) == ("fuse.zcsdfs", image):
        try:
            unmount(mountpoint, lazy=True)
        except OSError:
            pass  # gone meanwhile


def serve(image: str | None, mountpoint: str, options: MountOptions, ready_fd: int | None = None,
          snapshot: str | None = None, gc_policy: str = DEFAULT_POLICY) -> int:
    """Mount ``image`` (None: the embedded default device; or its ``snapshot``) at ``mountpoint``
    and serve until unmounted; checkpoint on the way out (read-only: write nothing at all).
    While mounted it answers its control socket (``zcsdfs.control``: stats and events)."""
    stack = build_stack(image, readonly=options.readonly, snapshot=snapshot, gc_policy=gc_policy)
    try:
        session = Session(stack.vfs, mountpoint, options)

        def stop(signum, frame):
            try:
                session.unmount()
            except OSError as exc:
                if exc.errno == errno.EBUSY:
                    session.unmount(lazy=True)  # detach now; served until the last file closes
                elif exc.errno != errno.EINVAL:  # EINVAL: unmounted already
                    raise

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        if not session.wait_ready():
            session.unmount(lazy=True)
            reasons = "; ".join(describe(e) for e in session.errors) or "no reason given"
            raise OSError(errno.EIO, f"the server stopped before the kernel's INIT was answered ({reasons})")
        try:
            control = ControlServer(stack, mountpoint, session.server)
        except OSError as exc:  # the mount works without it; `zcsdfs stats` will say none answers
            log.warning("no control socket: %s", describe(exc))
            control = None
        if ready_fd is not None:
            os.write(ready_fd, b"ready")
            os.close(ready_fd)
        try:
            session.wait()
        finally:
            if control is not None:
                control.close()
    finally:
        stack.close()
    return 0


def mount_source(mountpoint: str) -> str | None:
    """The source (our fsname: the image path) of the zcsdfs mount at ``mountpoint``, if one is there."""
    found = mounted_at(mountpoint)
    return found[1] if found is not None and found[0] == "fuse.zcsdfs" else None


def cmd_umount(args) -> int:
    source = mount_source(args.mountpoint)
    if source is None:
        raise OSError(errno.EINVAL, "not a zcsdfs mount", args.mountpoint)
    if not (args.timeout > 0 and math.isfinite(args.timeout)):
        raise OSError(errno.EINVAL, f"--timeout must be a positive number of seconds, not {args.timeout}")
    deadline = time.monotonic() + args.timeout
    hint = (f"the server has not finished within {args.timeout:g} s (stuck, or still writing its "
            f"checkpoint); `zcsdfs umount -l {args.mountpoint}` detaches the mount without waiting")
    _unmount_bounded(args.mountpoint, args.lazy, args.timeout, hint)
    if args.lazy or not os.path.isfile(source):
        return 0
    fd = os.open(source, os.O_RDONLY | os.O_CLOEXEC)
    try:
        # granted once the server has checkpointed and closed the image (a read-only server
        # holds a shared lock, so only an exclusive one waits for it too)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return 0
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise OSError(errno.ETIMEDOUT, f"unmounted, but the server still holds the image after "
                                                   f"{args.timeout:g} s (writing its checkpoint, or stuck); "
                                                   "the image is free once it exits", source) from None
                time.sleep(0.05)
    finally:
        os.close(fd)


def _unmount_bounded(mountpoint: str, lazy: bool, timeout: float, hint: str) -> None:
    """Unmount in a child process, waiting at most ``timeout`` seconds: the kernel waits for
    the server's answer to DESTROY, without bound and without letting a signal in, and only
    a child can be left waiting behind."""
    if os.geteuid() == 0:
        command = [shutil.which("umount") or "umount", *(["-l"] if lazy else []), "--", mountpoint]
    else:
        command = [shutil.which("fusermount3") or "fusermount3", "-u", *(["-z"] if lazy else []), "--",
                   mountpoint]
    try:
        child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, text=True, start_new_session=True)
    except OSError as exc:
        raise OSError(exc.errno, f"cannot run {command[0]}: {exc.strerror}") from None
    try:
        _, err = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        child.returncode = 0  # left behind on purpose: it returns when the server answers
        raise OSError(errno.ETIMEDOUT, hint, mountpoint) from None
    if child.returncode != 0:
        text = err.strip().splitlines()[-1] if err.strip() else f"{command[0]} failed"
        if "busy" in text:
            text += f" (a file on it is open; `zcsdfs umount -l {mountpoint}` detaches it now)"
        raise OSError(errno.EBUSY if "busy" in text else errno.EINVAL, text, mountpoint)

