"""``build_stack``: the one way to assemble device -> lfs -> vfs, for every front end.

The os API (``Volume``), the FUSE commands and the commands that only
inspect an image (``fsck``, ``zones``, ``device info``, ``df``, ``stats``)
all open through here, so they share one policy:

- The device comes from ``zcsdfs.zns.open_device`` (an image path), is
  given as an object, or is the embedded default device (None).
- A blank device is formatted only when that cannot destroy anything a
  user made: the embedded default device on first use, a memory device,
  or when the caller says ``create=True``. A blank image is otherwise
  refused with a hint (``zcsdfs mkfs IMAGE``), and a device holding
  something else is never touched.
- ``readonly=True`` means not one byte of the image changes: the image is
  opened O_RDONLY under a shared lock, the lfs rolls the log forward in
  memory and writes no checkpoint, and every change answers EROFS.

``Stack.stats()`` snapshots every layer built (``StackStats``), and
``Stack.events`` is the bus every layer publishes its events on.
"""

from __future__ import annotations

import errno
import os

import attrs

from zcsdfs.lfs import Device, mkfs, mount
from zcsdfs.lfs.errors import NotZcsdfs
from zcsdfs.lfs.gc import DEFAULT_POLICY, check_policy
from zcsdfs.lfs.snapshot import SnapshotView
from zcsdfs.lfs.stats import held_still, lfs_stats
from zcsdfs.vfs.core import Vfs
from zcsdfs.vfs.stats import csd_stats, vfs_stats
from zcsdfs.zns import ZoneState, ZonedDevice, default_device_path, ensure_default_device, open_device
from zcsdfs.zns.stats import device_stats

LAYERS = ("device", "lfs", "vfs")


@attrs.define
class Stack:
    """The layers of one opened volume, bottom up; ``fs`` and ``vfs`` are None when not built."""

    device: Device
    fs: object = None  # zcsdfs.lfs.FileSystem
    vfs: Vfs | None = None
    readonly: bool = False
    owns_device: bool = True  # whether ``close`` closes the device (it was opened here)

    @property
    def events(self):
        """The stack's ``zcsdfs.events.EventBus``: zone changes, GC runs, checkpoints, kernel runs."""
        return self.device.events

    def stats(self, server=None, previous: "StackStats | None" = None) -> "StackStats":
        """A snapshot of every layer built, taken at one moment (under the lfs's lock);
        ``server``: a front end whose ``stats()`` to add (the FUSE server's, when it has one);
        ``previous``: an earlier snapshot, whose records of unchanged zones are reused (a watcher
        polling several times a second copies only what changed)."""
        if self.fs is None:
            return StackStats(device_stats(self.device, previous and previous.device))
        with held_still(self.fs):
            device = device_stats(self.device, previous and previous.device)
            lfs = lfs_stats(self.fs, previous and previous.lfs)
        vfs = csd = None
        if self.vfs is not None:
            vfs, csd = vfs_stats(self.vfs), csd_stats(self.vfs)
        server_stats = getattr(server, "stats", None)  # hook: the FUSE server's own counters
        return StackStats(device, lfs, vfs, csd, server_stats() if server_stats is not None else None)

    def close(self) -> None:
        """Unmount the lfs (a checkpoint, unless read-only) and let go of the device if opened here."""
        try:
            if self.fs is not None:
                self.fs.unmount()
        finally:
            if self.owns_device:
                self.device.close_device()

    def __enter__(self) -> "Stack":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@attrs.frozen
class StackStats:
    """One snapshot per layer (None for a layer not built, or a server without stats)."""

    device: object  # zcsdfs.zns.stats.DeviceStats
    lfs: object = None  # zcsdfs.lfs.stats.LfsStats
    vfs: object = None  # zcsdfs.vfs.stats.VfsStats
    csd: object = None  # zcsdfs.csd.stats.CsdVolumeStats
    server: object = None  # what the FUSE server's stats() gives


def is_blank(device: Device) -> bool:
    """Every zone empty: nothing on it to lose."""
    return all(z.state is ZoneState.EMPTY for z in device.report())


def build_stack(image_or_device=None, *, readonly: bool = False, create: bool = False,
                gc_policy: str = DEFAULT_POLICY, upto: str = "vfs", snapshot: str | None = None) -> Stack:
    """Open ``image_or_device`` (an image path, a device object, or None for the embedded default
    device) and build the layers up to ``upto`` ("device", "lfs" or "vfs").

    ``snapshot=NAME``: the vfs shows that snapshot instead of the live tree, and the whole stack
    is read-only (``fs`` is still the volume's lfs, for stats)."""
    if upto not in LAYERS:
        raise ValueError(f"upto must be one of {LAYERS}, not {upto!r}")
    check_policy(gc_policy)  # before anything is opened
    if snapshot is not None:
        readonly = True
    formattable = create
    if image_or_device is None:
        path = default_device_path()
        if not readonly:
            path = ensure_default_device()
            formattable = True  # the embedded default device is formatted on first use
        elif not os.path.exists(path):
            raise FileNotFoundError(errno.ENOENT, "the default device does not exist yet "
                                    "(any zcsdfs command that writes creates it)", path)
        image_or_device = path
    owns = not isinstance(image_or_device, ZonedDevice)
    device = open_device(image_or_device, readonly=readonly) if owns else image_or_device
    if device.path is None:
        formattable = True  # a memory device: nothing outlives the process, nothing to protect
    stack = Stack(device, readonly=readonly or device.readonly, owns_device=owns)
    try:
        if upto == "device":
            return stack
        if is_blank(device):
            if not formattable or stack.readonly:
                raise NotZcsdfs("the device holds no file system (make one with `zcsdfs mkfs "
                                f"{device.path or 'IMAGE'}`)", device.path)
            mkfs(device)
        stack.fs = mount(device, gc_policy, readonly=stack.readonly)
        if upto == "vfs":
            shown = stack.fs if snapshot is None else SnapshotView(stack.fs, snapshot)
            stack.vfs = Vfs(shown, readonly=stack.readonly)
    except BaseException:
        if stack.fs is not None:
            stack.fs.unmount()
        if owns:
            device.close_device()
        raise
    return stack
