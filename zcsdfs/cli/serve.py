"""CLI: ``zcsdfs serve [IMAGE] --socket-path SOCK`` (a virtio-fs device for QEMU) and ``zcsdfs devices``.

``serve`` is a vhost-user back end for QEMU's ``vhost-user-fs-pci``; option
names follow virtiofsd's where they mean the same (``--socket-path``,
``--fd``, ``--tag``, ``-o``). It serves one front end until it disconnects,
then checkpoints and exits; ``--keep-serving`` waits for the next one
instead. SIGINT and SIGTERM end the connection as a disconnect would (the
rings stop, guest memory is unmapped), then the volume is checkpointed.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import select
import signal
import socket
import stat

from zcsdfs.cli import subcommand
from zcsdfs.cli.fuse import HELP_OPTIONS, parse_options
from zcsdfs.cli.lfs import add_gc_policy

log = logging.getLogger("zcsdfs.serve")
MOUNT_ONLY = ("allow_other", "default_permissions", "threads", "awake_ms")


def run_dir() -> str:
    """Where ``serve`` records its socket, for ``devices``: /run/zcsdfs as root, else the user's runtime dir."""
    if os.geteuid() == 0:
        return "/run/zcsdfs"
    return os.path.join(os.environ.get("XDG_RUNTIME_DIR") or f"/tmp/zcsdfs-{os.getuid()}", "zcsdfs")


def register(sub) -> None:
    p = subcommand(sub, "serve", "serve a volume to QEMU guests as a virtio-fs device (vhost-user)", cmd_serve,
                   examples=("zcsdfs serve disk.zns --socket-path /tmp/vfs.sock --tag zcsdfs",
                             "zcsdfs serve --socket-path /tmp/vfs.sock --queues 2 -o ro   # the default device",
                             "# then: qemu-system-x86_64 ... -chardev socket,id=c,path=/tmp/vfs.sock \\",
                             "#         -device vhost-user-fs-pci,chardev=c,tag=zcsdfs"))
    p.add_argument("image", nargs="?", help="image file (default: the embedded default device)")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--socket-path", metavar="SOCK", help="listen on this Unix socket (QEMU: -chardev socket,path=SOCK)")
    where.add_argument("--fd", type=int, metavar="FD", help="use this already listening socket descriptor")
    p.add_argument("--tag", default="zcsdfs", help="the tag the guest mounts (default: zcsdfs; QEMU's tag= must match)")
    p.add_argument("--queues", type=int, default=1, metavar="N",
                   help="request queues, one worker each (QEMU's num-request-queues; default 1)")
    p.add_argument("--keep-serving", action="store_true",
                   help="after the front end disconnects, wait for the next one instead of exiting")
    p.add_argument("-o", dest="options", action="append", default=[], metavar="OPT[,OPT...]",
                   help="options as for mount, those that concern the server: ro, writeback_cache, "
                        "entry_timeout=SECONDS, attr_timeout=SECONDS, negative_timeout=SECONDS, "
                        "poll_us=MICROSECONDS (how long a worker looks for the next request before it "
                        "sleeps; default 0)")
    p.add_argument("--log-level", default="info", choices=("error", "warn", "info", "debug"))
    add_gc_policy(p)
    p = subcommand(sub, "devices", "list what this machine can serve or use: images, servers, zoned devices",
                   cmd_devices, examples=("zcsdfs devices", "zcsdfs devices --json"))
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def server_options(texts: list[str], fsname: str):
    options = parse_options(texts, fsname)
    given = {item.partition("=")[0] for text in texts for item in text.split(",") if item}
    for name in MOUNT_ONLY:
        if name in given:
            raise OSError(errno.EINVAL, f"option {name} applies to mount only (known: {HELP_OPTIONS})")
    return options


def cmd_serve(args) -> int:
    from zcsdfs.fuse.virtiofs import DeviceOptions, VirtioFs, listen
    from zcsdfs.stack import build_stack
    logging.basicConfig(level={"warn": "WARNING"}.get(args.log_level, args.log_level.upper()),
                        format="zcsdfs serve: %(levelname)s %(message)s")
    from zcsdfs.zns import default_device_path
    default = args.image is None  # the embedded default device: build_stack makes it on first use
    image = os.path.abspath(args.image or default_device_path())
    if not default and not os.path.isfile(image):
        raise OSError(errno.ENOENT, "no such image", image)
    options = server_options(args.options, image)
    given = {item.partition("=")[0] for text in args.options for item in text.split(",") if item}
    device_options = DeviceOptions(tag=args.tag, request_queues=args.queues, server=options.server,
                                   poll_us=options.poll_us if "poll_us" in given else 0)
    if args.fd is not None:
        try:
            listener = socket.socket(fileno=args.fd)
        except OSError as exc:
            raise OSError(exc.errno, f"--fd {args.fd}: {exc.strerror}") from None
        path = listener.getsockname()
    else:
        path = os.path.abspath(args.socket_path)
        listener = listen(path)
    try:
        stack = build_stack(None if default else image, readonly=options.readonly, gc_policy=args.gc_policy)
    except BaseException:
        listener.close()
        if args.fd is None:
            _unlink(path)
        raise
    record = _record(path, image)
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    state = {"stop": False, "conn": None}

    def stop(signum, frame):
        state["stop"] = True
        conn = state["conn"]
        if conn is not None:
            try:
                conn.shutdown(socket.SHUT_RDWR)  # the connection ends as if QEMU had gone
            except OSError:
                pass  # it has ended already

    old = signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    device = None
    cpu_before = sum(os.times()[:2])  # from here on: serving (start-up and imports are not counted)
    try:
        device = VirtioFs(stack.vfs, device_options)
        log.info("serving %s on %s (tag %s, %d request queues)", image, path, args.tag, args.queues)
        waiting = select.poll()  # not select(): a descriptor handed to us by --fd may be past 1024
        waiting.register(listener, select.POLLIN)
        waiting.register(wake_r, select.POLLIN)
        while not state["stop"]:
            if listener.fileno() not in (fd for fd, _ in waiting.poll()):
                continue
            conn, _ = listener.accept()
            with conn:
                state["conn"] = conn
                try:
                    device.serve_connection(conn)
                finally:
                    state["conn"] = None
            if not args.keep_serving:
                break
        device.close()
    finally:
        signal.set_wakeup_fd(old)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        listener.close()
        for fd in (wake_r, wake_w):
            os.close(fd)
        if args.fd is None:
            _unlink(path)
        _unlink(record)
        stack.close()  # checkpoint (read-only: nothing written)
    cpu, served = sum(os.times()[:2]) - cpu_before, device.requests
    log.info("stopped; %s checkpointed; %d requests served, %.2f s of CPU serving (%.0f us a request)",
             image, served, cpu, cpu / max(1, served) * 1e6)
    per, outside = device.cpu_report()
    log.info("CPU per request: %s; outside the handler (rings, eventfds, wake-ups): %.1f us",
             ", ".join(f"{name} {count} x {us:.1f} us" for name, (count, us) in per.items()) or "none", outside)
    return 0


def _unlink(path: str | None) -> None:
    if path:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def _record(sock: str, image: str) -> str | None:
    """Note the running server in ``run_dir()`` (pid, socket, image) so ``devices`` can list it."""
    try:
        os.makedirs(run_dir(), exist_ok=True)
        path = os.path.join(run_dir(), f"serve-{os.getpid()}.json")
        with open(path, "w") as f:
            json.dump({"pid": os.getpid(), "socket": sock, "image": image}, f)
        return path
    except OSError as exc:
        log.warning("cannot record this server in %s: %s", run_dir(), exc.strerror)
        return None


# -- devices ----------------------------------------------------------------------------------

def find_devices() -> dict:
    """Images in the default location, the default device, running servers and zoned block devices."""
    from zcsdfs.zns import default_device_path
    default = default_device_path()
    images = []
    folder = os.path.dirname(default)
    if os.path.isdir(folder):
        for name in sorted(os.listdir(folder)):
            path = os.path.join(folder, name)
            if os.path.isfile(path) and _is_image(path):
                images.append({"path": path, "size": os.path.getsize(path), "default": path == default})
    return {"images": images, "default_device": {"path": default, "exists": os.path.exists(default)},
            "servers": _servers(), "zoned_block_devices": _zoned()}


def _is_image(path: str) -> bool:
    """Whether ``path`` starts with a valid device header (read only: a served image is locked)."""
    from zcsdfs.zns.backend import _read_header
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        _read_header(fd, path)
    except (OSError, ValueError):
        return False
    finally:
        os.close(fd)
    return True


def _servers() -> list[dict]:
    found = []
    try:
        with open("/proc/self/mountinfo") as info:
            for line in info:
                fields = line.split()
                sep = fields.index("-")
                if fields[sep + 1] == "fuse.zcsdfs":
                    found.append({"kind": "fuse", "where": fields[4], "image": fields[sep + 2], "pid": None})
    except OSError:
        pass  # no /proc: no mounts to list
    runs = run_dir()
    if os.path.isdir(runs):
        for name in sorted(os.listdir(runs)):
            try:
                with open(os.path.join(runs, name)) as f:
                    entry = json.load(f)
                os.kill(entry["pid"], 0)
                if not stat.S_ISSOCK(os.stat(entry["socket"]).st_mode):
                    continue
            except (OSError, ValueError, KeyError, TypeError):
                continue  # a server that has exited, or a stray file
            found.append({"kind": "vhost-user", "where": entry["socket"], "image": entry["image"],
                          "pid": entry["pid"]})
    return found


def _zoned() -> list[dict]:
    found = []
    if not os.path.isdir("/sys/block"):
        return found
    for name in sorted(os.listdir("/sys/block")):
        try:
            with open(f"/sys/block/{name}/queue/zoned") as f:
                model = f.read().strip()
        except OSError:
            continue
        if model != "none":
            found.append({"device": f"/dev/{name}", "zoned": model})
    return found


def cmd_devices(args) -> int:
    found = find_devices()
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table
    table = Table("kind", "where", "detail")
    dd = found["default_device"]
    table.add_row("default device", dd["path"], "exists" if dd["exists"] else "not created yet")
    for image in found["images"]:
        table.add_row("image", image["path"], f"{image['size']} bytes" + (" (default)" if image["default"] else ""))
    for server in found["servers"]:
        detail = server["image"] + (f" (pid {server['pid']})" if server["pid"] else "")
        table.add_row(f"{server['kind']} server", server["where"], detail)
    for dev in found["zoned_block_devices"]:
        table.add_row("zoned block device", dev["device"], dev["zoned"])
    Console().print(table)
    return 0
