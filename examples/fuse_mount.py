"""A FUSE mount: any program uses the volume through the kernel.

    python examples/fuse_mount.py IMAGE MOUNTPOINT

Makes IMAGE (a small device) if it is missing, mounts it at MOUNTPOINT with
``zcsdfs mount``, works on it with ordinary tools (``cp``, ``sha256sum``,
``ls``), and unmounts. Needs /dev/fuse, and root or fusermount3 (Debian's
fuse3 package).
"""

import os
import subprocess
import sys

image, mountpoint = sys.argv[1:3]


def zcsdfs(*args):
    subprocess.run(["zcsdfs", *args], check=True)


if not os.path.exists(image):
    zcsdfs("device", "create", image, "--zones", "16", "--zone-size", "16M")
    zcsdfs("mkfs", image)
os.makedirs(mountpoint, exist_ok=True)
zcsdfs("mount", image, mountpoint)
try:
    with open(os.path.join(mountpoint, "data.bin"), "wb") as f:
        f.write(os.urandom(3 << 20))
    subprocess.run(["cp", os.path.join(mountpoint, "data.bin"), os.path.join(mountpoint, "copy.bin")], check=True)
    sums = subprocess.run(["sha256sum", "data.bin", "copy.bin"], cwd=mountpoint, check=True,
                          capture_output=True, text=True).stdout.split()
    print("copies match:", sums[0] == sums[2])
    subprocess.run(["ls", "-l", mountpoint], check=True)
finally:
    zcsdfs("umount", mountpoint)
