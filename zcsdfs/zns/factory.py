"""``open_device``: the one way to get a device for a path.

Today a path names an image file; a Linux zoned block device (``/dev/nvme0n2``)
is where a second backend plugs in, behind the same call, so no caller
needs to know which it got.
"""

from __future__ import annotations

import errno
import os
import stat

from zcsdfs.zns.device import ZonedDevice


def open_device(path: str | os.PathLike, *, readonly: bool = False) -> ZonedDevice:
    """Open the device at ``path``; ``readonly`` opens it so that not one byte of it changes
    (every command that would change it answers EROFS)."""
    path = os.fspath(path)
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, path) from None
    if stat.S_ISBLK(mode):
        raise OSError(errno.EOPNOTSUPP, "zoned block devices are not supported yet (use an image file)", path)
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, "Is a directory (not a device image)", path)
    return ZonedDevice.open_image(path, readonly=readonly)
