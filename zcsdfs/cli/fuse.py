"""CLI: ``zcsdfs mount [IMAGE] MOUNTPOINT [-f] [-o ...]`` and ``zcsdfs umount MOUNTPOINT``.

Without ``-f`` the server daemonises and the command returns once the kernel
has been answered (the mount is usable); errors before that point are
reported by the command itself. SIGINT and SIGTERM unmount; the server then
checkpoints the volume and lets go of the image. ``umount`` returns only
after that, by waiting for the image's lock, so a script can mount the
image again (or fsck it) straight away.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import signal

import attrs

from zcsdfs.cli import describe, subcommand
from zcsdfs.control import ControlServer
from zcsdfs.fuse.devfuse import MountOptions, Session, unmount
from zcsdfs.fuse.server import Options
from zcsdfs.stack import build_stack
from zcsdfs.zns import default_device_path

log = logging.getLogger("zcsdfs.fuse")
FLAGS = {"allow_other", "default_permissions", "ro", "writeback_cache"}
VALUES = {"entry_timeout": float, "attr_timeout": float, "negative_timeout": float, "threads": int,
          "poll_us": int, "awake_ms": int}
HELP_OPTIONS = ("allow_other, default_permissions, ro, writeback_cache, entry_timeout=SECONDS, "
                "attr_timeout=SECONDS, negative_timeout=SECONDS (default 0), threads=N, "
                "poll_us=MICROSECONDS (0: sleep at once), awake_ms=MILLISECONDS (0: let idle CPUs halt), "
                "snapshot=NAME (serve that snapshot, read-only)")


def register(sub) -> None:
    p = subcommand(sub, "mount", "serve a volume through FUSE at a mount point", cmd_mount)
    p.add_argument("paths", nargs="+", metavar="[IMAGE] MOUNTPOINT",
                   help="image file (default: the embedded default device) and mount point")
    p.add_argument("-f", "--foreground", action="store_true", help="stay in the foreground")
    p.add_argument("-o", dest="options", action="append", default=[], metavar="OPT[,OPT...]",
                   help=f"mount options: {HELP_OPTIONS}")
    p = subcommand(sub, "umount", "unmount a zcsdfs FUSE mount and wait for its server to finish",
                   cmd_umount)
    p.add_argument("mountpoint")


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
            elif eq and key in VALUES:
                try:
                    values[key] = VALUES[key](value)
                    if not values[key] >= 0:  # also refuses nan
                        raise ValueError(value)
                except ValueError:
                    raise OSError(errno.EINVAL, f"bad value for mount option {key}: {value!r}") from None
            else:
                raise OSError(errno.EINVAL, f"unknown mount option {item!r} (known: {HELP_OPTIONS})")
    server = Options(writeback_cache="writeback_cache" in flags,
                     **{key: values[key] for key in ("entry_timeout", "attr_timeout", "negative_timeout")
                        if key in values})
    return MountOptions(allow_other="allow_other" in flags, default_permissions="default_permissions" in flags,
                        readonly="ro" in flags, fsname=fsname, server=server,
                        **{key: values[key] for key in ("threads", "poll_us", "awake_ms") if key in values})


def cmd_mount(args) -> int:
    if len(args.paths) > 2:
        raise OSError(errno.EINVAL, "expected [IMAGE] MOUNTPOINT")
    if len(args.paths) == 2:
        image, mountpoint = os.path.abspath(args.paths[0]), args.paths[1]
    else:
        image, mountpoint = None, args.paths[0]  # the embedded default device
    if not os.path.isdir(mountpoint):
        raise OSError(errno.ENOTDIR, "mount point is not a directory", mountpoint)
    snapshot, args.options = snapshot_option(args.options)
    options = parse_options(args.options, image or default_device_path())
    if snapshot is not None:  # a snapshot is read-only, and the kernel is told so
        options = attrs.evolve(options, readonly=True)
    if args.foreground:
        return serve(image, mountpoint, options, snapshot=snapshot)
    return daemonise(image, mountpoint, options, snapshot)


def daemonise(image: str | None, mountpoint: str, options: MountOptions, snapshot: str | None = None) -> int:
    """Fork a server; return when it reports the mount ready, or raise what it failed with."""
    ready_r, ready_w = os.pipe()
    if os.fork():
        os.close(ready_w)
        with os.fdopen(ready_r, "rb") as pipe:
            message = pipe.read()
        if message == b"ready":
            return 0
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
        status = serve(image, mountpoint, options, ready_w, snapshot=snapshot)
    except OSError as exc:
        os.write(ready_w, f"{exc.errno or errno.EIO}\0{describe(exc)}".encode())
    finally:
        os._exit(status)


def serve(image: str | None, mountpoint: str, options: MountOptions, ready_fd: int | None = None,
          snapshot: str | None = None) -> int:
    """Mount ``image`` (None: the embedded default device; or its ``snapshot``) at ``mountpoint``
    and serve until unmounted; checkpoint on the way out (read-only: write nothing at all).
    While mounted it answers its control socket (``zcsdfs.control``: stats and events)."""
    stack = build_stack(image, readonly=options.readonly, snapshot=snapshot)
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
        session.wait_ready()
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
    target = os.path.realpath(mountpoint)
    with open("/proc/self/mountinfo") as info:
        for line in info:
            fields = line.split()
            sep = fields.index("-")
            if _unescape(fields[4]) == target and fields[sep + 1] == "fuse.zcsdfs":
                return _unescape(fields[sep + 2])
    return None


def _unescape(text: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes."""
    for code in ("040", "011", "012", "134"):
        text = text.replace("\\" + code, chr(int(code, 8)))
    return text


def cmd_umount(args) -> int:
    source = mount_source(args.mountpoint)
    if source is None:
        raise OSError(errno.EINVAL, "not a zcsdfs mount", args.mountpoint)
    unmount(args.mountpoint)
    if os.path.isfile(source):
        fd = os.open(source, os.O_RDONLY | os.O_CLOEXEC)
        try:
            # Granted once the server has checkpointed and closed the image (a read-only
            # server holds a shared lock, so only an exclusive one waits for it too).
            fcntl.flock(fd, fcntl.LOCK_EX)
        finally:
            os.close(fd)
    return 0

