"""A QEMU guest for the virtio-fs tests, built from Debian packages and cached.

What a guest needs, made once into ``$ZCSDFS_GUEST_CACHE`` (default
``~/.cache/zcsdfs-guest``):

- Debian's kernel: the package ``linux-image-amd64`` depends on
  (``apt-cache depends``), fetched with ``apt-get download`` and unpacked
  with ``dpkg-deb -x`` (nothing is installed); we keep vmlinuz and the few
  modules the guest loads (virtio, virtio-pci, fuse, virtiofs, 9p).
- busybox from ``busybox-static`` as the guest's shell and tools.
- ``guest_helpers.c`` compiled with ``gcc -static``: the calls busybox
  lacks (setxattr, O_DIRECT reads through a CSD kernel, fsync, running as
  another uid).

``boot`` packs an initramfs (newc cpio, written here) around a test script,
boots it under TCG (no KVM needed) with ``vhost-user-fs-pci`` on the given
socket, and returns the serial console's text. The guest's ``/init``
loads the modules in dependency order (read from each module's modinfo),
mounts the share at /mnt and runs the script; lines the script prints as
``RESULT name ok|FAIL ...`` are what tests check. A boot that does not
reach the script says why with the console's tail.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

HERE = Path(__file__).parent
CACHE = Path(os.environ.get("ZCSDFS_GUEST_CACHE") or Path.home() / ".cache" / "zcsdfs-guest")
MODULES = ("fuse", "virtiofs", "virtio_pci", "netfs", "fscache", "9pnet", "9pnet_virtio", "9p")
QEMU = "qemu-system-x86_64"
BUSYBOX = "/bin/busybox"


class GuestError(Exception):
    """The guest could not be built or did not run its script; the message says why."""


def missing_tools() -> list[str]:
    """What this machine lacks to build or boot a guest (the CI installs them)."""
    tools = [QEMU, "apt-get", "apt-cache", "dpkg-deb", "gcc"]
    missing = [t for t in tools if shutil.which(t) is None]
    if not os.path.exists(BUSYBOX):
        missing.append("busybox-static")
    return missing


def _run(cmd: list[str], **kwargs) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        raise GuestError(f"{' '.join(cmd)} failed: {done.stderr.strip()[-2000:]}")
    return done.stdout


def kernel_package() -> str:
    """The kernel package Debian's generic ``linux-image-amd64`` stands for."""
    def depends() -> list[str]:
        done = subprocess.run(["apt-cache", "depends", "linux-image-amd64"], capture_output=True, text=True)
        return re.findall(r"Depends:\s*(linux-image-[0-9][^\s]*-amd64)", done.stdout)
    found = depends()
    if not found and os.geteuid() == 0:  # a machine whose package lists were never fetched
        _run(["apt-get", "update", "-qq"])
        found = depends()
    if not found:
        cached = sorted(CACHE.glob("linux-image-*"))
        if cached:
            return cached[-1].name
        raise GuestError("apt-cache knows no linux-image-amd64 (run apt-get update)")
    return found[0]


def kernel() -> tuple[Path, list[Path]]:
    """vmlinuz and the modules to load (in dependency order), downloaded and unpacked once."""
    package = kernel_package()
    where = CACHE / package
    if not (where / "vmlinuz").exists():
        with tempfile.TemporaryDirectory(dir=CACHE.parent if CACHE.parent.exists() else None) as tmp:
            _run(["apt-get", "download", package], cwd=tmp)
            deb = next(Path(tmp).glob("*.deb"))
            tree = Path(tmp) / "tree"
            _run(["dpkg-deb", "-x", str(deb), str(tree)])
            staging = Path(tmp) / "staging"
            staging.mkdir()
            shutil.copy(next((tree / "boot").glob("vmlinuz-*")), staging / "vmlinuz")
            found = {p.name.split(".ko")[0]: p for p in (tree / "lib" / "modules").rglob("*.ko*")}
            for name in _order(MODULES, found):
                shutil.copy(found[name], staging / found[name].name)
            (staging / "order").write_text("\n".join(_order(MODULES, found)) + "\n")
            where.parent.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(where, ignore_errors=True)
            staging.rename(where)
    names = (where / "order").read_text().split()
    return where / "vmlinuz", [next(where.glob(f"{name}.ko*")) for name in names]


def _depends(path: Path) -> list[str]:
    """A module's ``depends=`` from its modinfo strings (uncompressed modules, as Debian 12 ships)."""
    data = path.read_bytes()
    match = re.search(rb"\0depends=([^\0]*)\0", data)
    return [d.decode() for d in match.group(1).split(b",") if d] if match else []


def _order(wanted, found: dict[str, Path]) -> list[str]:
    order: list[str] = []

    def visit(name: str) -> None:
        if name in order:
            return
        if name not in found:
            raise GuestError(f"kernel module {name} is not in the kernel package")
        for dep in _depends(found[name]):
            visit(dep)
        order.append(name)
    for name in wanted:
        visit(name)
    return order


def static_binary(source: Path) -> Path:
    """``source`` compiled with ``gcc -static``, once per version of the source."""
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:12]
    binary = CACHE / f"{source.stem}-{digest}"
    if not binary.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        tmp = binary.with_suffix(".tmp")
        _run(["gcc", "-static", "-O2", "-o", str(tmp), str(source)])
        tmp.rename(binary)
    return binary


def helpers() -> Path:
    """The static helper program the guest tests call as /bin/zh."""
    return static_binary(HERE / "guest_helpers.c")


# -- the initramfs ----------------------------------------------------------------------------

def _cpio_entry(name: str, mode: int, data: bytes = b"", ino: int = 0) -> bytes:
    fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name) + 1, 0]
    head = b"070701" + b"".join(b"%08x" % f for f in fields) + name.encode() + b"\0"
    head += b"\0" * (-len(head) % 4)
    return head + data + b"\0" * (-len(data) % 4)


def cpio(entries: list[tuple[str, int, bytes]]) -> bytes:
    """A newc archive of (name, mode, data); directories before what they hold."""
    out = [_cpio_entry(name, mode, data, i + 1) for i, (name, mode, data) in enumerate(entries)]
    return b"".join(out) + _cpio_entry("TRAILER!!!", 0)


INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
for m in $(cat /modules/order); do insmod /modules/$m.ko || echo "GUEST-ERROR insmod $m"; done
echo GUEST-BOOTED
if mount -t virtiofs TAG /mnt; then
    echo GUEST-MOUNTED
    sh /test.sh
    echo "GUEST-DONE $?"
else
    echo "GUEST-ERROR mount -t virtiofs failed"
fi
poweroff -f
"""


def initramfs(script: str, tag: str, extra: dict[str, bytes] | None = None) -> bytes:
    _, modules = kernel()
    entries: list[tuple[str, int, bytes]] = [(d, 0o40755, b"") for d in
                                             ("bin", "dev", "proc", "sys", "tmp", "mnt", "mnt2", "modules",
                                              "etc", "root")]
    entries.append(("bin/busybox", 0o100755, Path(BUSYBOX).read_bytes()))
    entries.append(("bin/zh", 0o100755, helpers().read_bytes()))
    order = []
    for path in modules:
        name = path.name.split(".ko")[0]
        order.append(name)
        entries.append((f"modules/{name}.ko", 0o100644, path.read_bytes()))
    entries.append(("modules/order", 0o100644, ("\n".join(order) + "\n").encode()))
    entries.append(("etc/passwd", 0o100644, b"root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/tmp:/bin/sh\n"))
    entries.append(("init", 0o100755, INIT.replace("TAG", tag).encode()))
    entries.append(("test.sh", 0o100755, script.encode()))
    for name, data in (extra or {}).items():
        entries.append((name, 0o100755, data))
    return cpio(entries)


def boot(socket_path: str, script: str, *, tag: str = "zcsdfs", queues: int = 1, timeout: float = 300,
         memory_mb: int = 512, queue_size: int | None = None,
         extra_args: list[str] = (), extra_files: dict[str, bytes] | None = None, workdir: str) -> str:
    """Boot a guest that runs ``script``; the console text. Raises GuestError if it never got there.

    ``queue_size``: the request queues' size (QEMU's default 128 lets a request carry 124 pages)."""
    vmlinuz, _ = kernel()
    initrd = Path(workdir) / "initrd.cpio"
    initrd.write_bytes(initramfs(script, tag, extra_files))
    console = Path(workdir) / "console.log"
    cmd = [QEMU, "-accel", "tcg", "-m", str(memory_mb), "-smp", "1",
           "-object", f"memory-backend-memfd,id=mem,size={memory_mb}M,share=on", "-numa", "node,memdev=mem",
           "-chardev", f"socket,id=vufs,path={socket_path}",
           "-device", f"vhost-user-fs-pci,chardev=vufs,tag={tag},num-request-queues={queues}"
                      + (f",queue-size={queue_size}" if queue_size else ""),
           *extra_args,
           "-kernel", str(vmlinuz), "-initrd", str(initrd),
           "-append", "console=ttyS0 panic=-1 loglevel=4 tsc=reliable",
           "-display", "none", "-serial", f"file:{console}", "-monitor", "none", "-nodefaults"]
    try:
        done = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise GuestError(f"the guest did not power off within {timeout} s; console tail:\n"
                         + _tail(console)) from None
    text = console.read_text(errors="replace") if console.exists() else ""
    if "GUEST-DONE" not in text:
        raise GuestError(f"the guest did not finish its script (qemu exit {done.returncode}: "
                         f"{done.stderr.strip()[-1000:]}); console tail:\n" + _tail(console))
    return text


def _tail(console: Path, lines: int = 40) -> str:
    if not console.exists():
        return "(no console output)"
    return "\n".join(console.read_text(errors="replace").splitlines()[-lines:])


def results(console: str) -> dict[str, str]:
    """``RESULT name status...`` lines: name -> the rest."""
    found = {}
    for line in console.splitlines():
        line = line.strip("\r")
        if line.startswith("RESULT "):
            _, name, rest = (line.split(" ", 2) + [""])[:3]
            found[name] = rest
    return found
