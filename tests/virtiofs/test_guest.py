"""A real Linux guest (Debian's kernel under QEMU's TCG) mounting a zcsdfs volume with virtiofs.

``test_a_file_larger_than_the_guest_s_memory``: a guest with the least RAM
it boots with writes a file half as large again through its page cache, and
reads it back intact from what the server holds (after drop_caches, after a
remount); the host then finds the same bytes.

One QEMU run, two boots: the first does coreutils-style work, tar, dd with
checksums, fsync, renames over files, xattrs, a second uid, a CSD kernel
through O_DIRECT and ENOSPC, then reboots while mounted; the second boot
checks what the first left, writes, unmounts (DESTROY), reloads the virtiofs
driver (a device reset), mounts again and powers off. The
server is ``zcsdfs serve`` in its own process: when QEMU exits it
checkpoints and exits, and then the image must be fsck-clean and hold, read
in-process, exactly what the guest wrote.
"""

from __future__ import annotations

import hashlib
import os
import random
import socket
import subprocess
import sys

import numpy as np
import pytest

from tests.virtiofs import guest
from zcsdfs.csd import kernels
from zcsdfs.lfs.fsck import fsck
from zcsdfs.volume import Volume
from zcsdfs.zns import Geometry, ZonedDevice

pytestmark = pytest.mark.skipif(bool(guest.missing_tools()),
                                reason=f"the guest needs {' '.join(guest.missing_tools())} (CI installs them)")

CSD_DATA = random.Random(7).randbytes(1 << 20)
CSD_READ = 256 << 10

SCRIPT = r"""
cd /mnt
r() { n=$1; shift; if "$@" >/tmp/out 2>&1; then echo "RESULT $n ok"; else echo "RESULT $n FAIL $(tail -c 300 /tmp/out | tr '\n' ' ')"; fi; }
if [ -e /mnt/phase1 ]; then
    r reboot_consistent sh -c 'grep -q before-reboot /mnt/phase1 && [ "$(sha256sum < /mnt/big | cut -d" " -f1)" = "$(cat /mnt/big.sha)" ] && [ "$(cat /mnt/x)" = new ]'
    r second_mount sh -c 'echo after-reboot > /mnt/phase2 && sync'
    cd /
    r umount umount /mnt
    r driver_reload sh -c 'rmmod virtiofs && insmod /modules/virtiofs.ko && mount -t virtiofs zcsdfs /mnt && [ "$(cat /mnt/phase2)" = after-reboot ] && echo reloaded > /mnt/reload && umount /mnt'
    exit 0
fi
r mkdir mkdir -p d1/d2/d3
r cp sh -c 'cp /bin/busybox d1/bb && cmp /bin/busybox d1/bb'
r mv sh -c 'mv d1/bb d1/d2/bb2 && [ ! -e d1/bb ] && cmp /bin/busybox d1/d2/bb2'
r ln sh -c 'ln d1/d2/bb2 d1/hard && [ "$(stat -c %h d1/hard)" = 2 ]'
r symlink sh -c 'ln -s d2/bb2 d1/sym && [ "$(readlink d1/sym)" = d2/bb2 ] && cmp d1/sym /bin/busybox'
r rm sh -c 'rm d1/hard && [ "$(stat -c %h d1/d2/bb2)" = 1 ] && rm -r d1/d2/d3 && [ ! -e d1/d2/d3 ]'
mkdir -p /tmp/src/a/b
for i in $(seq 1 40); do echo "file $i" > /tmp/src/a/f$i; done
dd if=/dev/urandom of=/tmp/src/a/b/rand bs=1k count=300 2>/dev/null
ln -s f1 /tmp/src/a/link
r tar_in sh -c 'tar -C /tmp/src -cf - a | tar -C /mnt -xf - && diff -r /tmp/src/a /mnt/a'
r tar_out sh -c 'mkdir /tmp/back && tar -C /mnt -cf - a | tar -C /tmp/back -xf - && diff -r /tmp/src/a /tmp/back/a'
r find sh -c '[ "$(find /mnt/a -type f | wc -l)" = 41 ] && [ "$(find /mnt/a -type l)" = /mnt/a/link ]'
r dd sh -c 'dd if=/dev/urandom of=/tmp/big bs=64k count=96 2>/dev/null && dd if=/tmp/big of=/mnt/big bs=64k 2>/dev/null && sync && echo 3 > /proc/sys/vm/drop_caches && cmp /tmp/big /mnt/big'
sha256sum < /mnt/big | cut -d' ' -f1 > /mnt/big.sha
echo "HASH big $(cat /mnt/big.sha)"
r fsync sh -c 'echo 1234567 > /mnt/synced && /bin/zh fsync /mnt/synced'
r sync sync
r rename_over sh -c 'echo old > x && echo new > y && mv y x && [ "$(cat x)" = new ] && [ ! -e y ]'
r xattr sh -c '/bin/zh setxattr x user.color blue && [ "$(/bin/zh getxattr x user.color)" = blue ]'
mkdir /mnt/private; chmod 700 /mnt/private; echo secret > /mnt/private/s
mkdir /mnt/pub; chmod 1777 /mnt/pub; echo mine > /mnt/rootfile; chmod 644 /mnt/rootfile; touch /mnt/pub/rootowned
r uid_read_denied sh -c '! /bin/zh runas 1000 1000 /bin/cat /mnt/private/s'
r uid_write_denied sh -c '! /bin/zh runas 1000 1000 /bin/sh -c "echo x > /mnt/rootfile" && [ "$(cat /mnt/rootfile)" = mine ]'
r uid_create sh -c '/bin/zh runas 1000 1000 /bin/sh -c "echo theirs > /mnt/pub/u" && [ "$(stat -c %u:%g /mnt/pub/u)" = 1000:1000 ]'
r uid_sticky sh -c '! /bin/zh runas 1000 1000 /bin/rm -f /mnt/pub/rootowned && [ -e /mnt/pub/rootowned ]'
/bin/zh csd /mnt/csd/data /mnt/csd/histogram.o 262144 && echo "RESULT csd ok" || echo "RESULT csd FAIL"
/bin/zh fill /mnt/fill > /tmp/fill; cat /tmp/fill
r enospc grep -q "^FILLED [0-9]* 28$" /tmp/fill
r enospc_recovered sh -c 'rm /mnt/fill && sync && dd if=/dev/zero of=/mnt/after bs=1M count=4 2>/dev/null && sync && [ "$(stat -c %s /mnt/after)" = 4194304 ]'
echo before-reboot > /mnt/phase1
sync
echo GUEST-REBOOTING
reboot -f
"""


@pytest.fixture
def image(tmp_path):
    """A small volume (ENOSPC within reach) holding a CSD kernel and data for it."""
    path = str(tmp_path / "guest.zns")
    ZonedDevice.create(path, Geometry.preset("qemu", zones=24, zone_size=1024, zone_capacity=1024)).close_device()
    with Volume(path, create=True) as vol:
        vol.mkdir("/csd")
        for name, data in (("histogram.o", kernels.object_path("histogram").read_bytes()), ("data", CSD_DATA)):
            fd = vol.open(f"/csd/{name}", os.O_WRONLY | os.O_CREAT, 0o644)
            vol.write(fd, data)
            vol.close(fd)
        vol.chmod("/", 0o755)
    return path


def serve(image: str, sock_path: str) -> subprocess.Popen:
    """``zcsdfs serve`` on a socket that already listens, so QEMU can connect at once."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(sock_path)
    listener.listen(1)
    try:
        return subprocess.Popen([sys.executable, "-m", "zcsdfs", "serve", image, "--fd", str(listener.fileno()),
                                 "--queues", "2"],
                                pass_fds=(listener.fileno(),), stderr=subprocess.PIPE, text=True)
    finally:
        listener.close()


def test_guest_works_on_a_zcsdfs_share_and_the_host_sees_it(image, tmp_path):
    sock_path = str(tmp_path / "vhost.sock")
    server = serve(image, sock_path)
    try:
        console = guest.boot(sock_path, SCRIPT, queues=2, workdir=str(tmp_path), timeout=400)
    except guest.GuestError as exc:
        server.kill()
        server.wait()
        pytest.fail(f"{exc}\nserver: {server.stderr.read()[-3000:]}")
    finally:
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    log = server.stderr.read()
    results = guest.results(console)
    failed = {k: v for k, v in results.items() if v != "ok"}
    assert not failed, f"{failed}\n{console[-3000:]}"
    expected = {"mkdir", "cp", "mv", "ln", "symlink", "rm", "tar_in", "tar_out", "find", "dd", "fsync", "sync",
                "rename_over", "xattr", "uid_read_denied", "uid_write_denied", "uid_create", "uid_sticky", "csd",
                "enospc", "enospc_recovered", "reboot_consistent", "second_mount", "umount", "driver_reload"}
    assert expected <= results.keys(), (expected - results.keys(), console[-3000:])
    assert "GUEST-REBOOTING" in console
    assert server.returncode == 0, log

    hist = next(line for line in console.splitlines() if line.startswith("HISTOGRAM")).split()[1:]
    # one request's worth (a read past queue size - 4 pages is split, and each part is one kernel run)
    expected_hist = np.bincount(np.frombuffer(CSD_DATA[:CSD_READ], np.uint8), minlength=256).tolist()
    assert [int(c) for c in hist] == expected_hist

    device = ZonedDevice.open(image)
    try:
        report = fsck(device)
    finally:
        device.close_device()
    assert report.clean, report.errors
    guest_hash = next(line.split()[2] for line in console.splitlines() if line.startswith("HASH big"))
    with Volume(image, readonly=True) as vol:
        fd = vol.open("/big", os.O_RDONLY)
        big = vol.read(fd, 1 << 30)
        vol.close(fd)
        assert hashlib.sha256(big).hexdigest() == guest_hash and len(big) == 96 * 65536
        for i in range(1, 41):
            fd = vol.open(f"/a/f{i}", os.O_RDONLY)
            assert vol.read(fd, 100) == f"file {i}\n".encode()
            vol.close(fd)
        assert vol.readlink("/a/link") == "f1"
        assert vol.stat("/a/b/rand").st_size == 300 * 1024
        assert vol.stat("/d1/d2/bb2").st_size == os.path.getsize(guest.BUSYBOX)
        assert vol.getxattr("/x", "user.color") == b"blue"
        st = vol.stat("/pub/u")
        assert (st.st_uid, st.st_gid) == (1000, 1000)
        assert vol.stat("/private").st_mode & 0o777 == 0o700
        assert vol.stat("/after").st_size == 4 << 20
        fd = vol.open("/phase2", os.O_RDONLY)
        assert vol.read(fd, 100) == b"after-reboot\n"
        vol.close(fd)
        assert sorted(vol.listdir("/")) == sorted(
            ["csd", "d1", "a", "big", "big.sha", "synced", "x", "private", "pub", "rootfile", "after",
             "phase1", "phase2", "reload"])


GUEST_MB = 96  # the least this kernel and initramfs boot with (64 MiB hangs before the script)
HUGE_MIB = 144  # half as large again as the guest's RAM: the page cache cannot hold it
PATTERN_SEED = 11

HUGE_SCRIPT = f"""
r() {{ n=$1; shift; if "$@" >/tmp/out 2>&1; then echo "RESULT $n ok"; else echo "RESULT $n FAIL $(tail -c 300 /tmp/out | tr '\\n' ' ')"; fi; }}
echo "MEMTOTAL $(sed -n 's/^MemTotal: *\\([0-9]*\\) kB/\\1/p' /proc/meminfo)"
r huge_write /bin/zh pattern write /mnt/huge {HUGE_MIB} {PATTERN_SEED}
echo "CACHED $(sed -n 's/^Cached: *\\([0-9]*\\) kB/\\1/p' /proc/meminfo)"
r huge_read /bin/zh pattern check /mnt/huge {HUGE_MIB} {PATTERN_SEED}
sync; echo 3 > /proc/sys/vm/drop_caches
r huge_read_dropped /bin/zh pattern check /mnt/huge {HUGE_MIB} {PATTERN_SEED}
cd /
r remount sh -c 'umount /mnt && mount -t virtiofs zcsdfs /mnt'
r huge_read_remounted /bin/zh pattern check /mnt/huge {HUGE_MIB} {PATTERN_SEED}
"""


def pattern(mib: int, seed: int) -> bytes:
    """What ``zh pattern`` writes: little-endian words splitmix64(seed + i)."""
    z = np.arange(mib << 17, dtype=np.uint64) + np.uint64(seed)
    z += np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return (z ^ (z >> np.uint64(31))).astype("<u8").tobytes()


def test_a_file_larger_than_the_guest_s_memory(tmp_path):
    image = str(tmp_path / "huge.zns")
    ZonedDevice.create(image, Geometry.preset("qemu", zones=8)).close_device()
    Volume(image, create=True).unmount()
    sock_path = str(tmp_path / "vhost.sock")
    server = serve(image, sock_path)
    try:
        console = guest.boot(sock_path, HUGE_SCRIPT, queues=2, workdir=str(tmp_path), timeout=400,
                             memory_mb=GUEST_MB)
    except guest.GuestError as exc:
        server.kill()
        server.wait()
        pytest.fail(f"{exc}\nserver: {server.stderr.read()[-3000:]}")
    finally:
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    log = server.stderr.read()
    results = guest.results(console)
    assert results == {name: "ok" for name in ("huge_write", "huge_read", "huge_read_dropped", "remount",
                                                "huge_read_remounted")}, console[-3000:]
    assert server.returncode == 0, log
    memtotal_kib = int(next(line.split()[1] for line in console.splitlines() if line.startswith("MEMTOTAL")))
    cached_kib = int(next(line.split()[1] for line in console.splitlines() if line.startswith("CACHED")))
    assert HUGE_MIB << 10 > memtotal_kib > cached_kib, (memtotal_kib, cached_kib)
    device = ZonedDevice.open(image)
    try:
        report = fsck(device)
    finally:
        device.close_device()
    assert report.clean, report.errors
    with Volume(image, readonly=True) as vol:
        fd = vol.open("/huge", os.O_RDONLY)
        data = vol.read(fd, (HUGE_MIB + 1) << 20)
        vol.close(fd)
    assert len(data) == HUGE_MIB << 20
    assert data == pattern(HUGE_MIB, PATTERN_SEED)
