"""Where the inspector's snapshots come from: an in-process stack, an image opened
read-only, or a running mount asked over its control socket.

Every source gives the same thing, ``snapshot()``: the plain data of
``Stack.stats`` (``zcsdfs.control.fast_plain``) plus a ``files`` list and a
``target`` record, so ``zcsdfs stats``, ``zcsdfs inspect --once/--json`` and
the full-screen app all read one shape. Actions (GC, snapshot, checkpoint)
go through ``act``, which refuses them on a read-only target.
"""

from __future__ import annotations

import errno
import os
import threading
import time

from zcsdfs.actions import act
from zcsdfs.control import PlainMemo, patch_zones, request, request_stats
from zcsdfs.tree import file_list, name_bindings


def is_mount_target(target) -> bool:
    """Whether ``target`` names a running mount (a directory): refuses a plain directory."""
    if target is None or not os.path.isdir(target):
        return False
    if not os.path.ismount(target):
        raise NotADirectoryError(errno.ENOTDIR, "not an image nor a mount point", os.fspath(target))
    return True


class StackSource:
    """An opened stack (a ``Volume``'s, or one built here from an image)."""

    inline = True  # a snapshot without files copies only the zones that changed, and waits on no I/O

    def __init__(self, stack, *, name: str, owned: bool = False, server=None):
        self.stack = stack
        self.name = name
        self.owned = owned  # close the stack with the source
        self.server = server
        self.kind = "volume" if not owned else "image"
        self._previous = None  # the last Stack.stats: the next one copies only the zones that changed
        self._memo = PlainMemo()
        self._paths: dict[int, str] = {}  # ino -> path, of files kernels are bound to
        self._lock = threading.Lock()  # one snapshot at a time: they share what the last one copied

    @property
    def readonly(self) -> bool:
        return self.stack.readonly

    def snapshot(self, *, files: bool = True) -> dict:
        with self._lock:
            stats = self._previous = self.stack.stats(self.server, self._previous)
            data = self._memo.convert(stats)
            name_bindings(data, self.stack.fs, self._paths)
        data["target"] = {"name": self.name, "kind": self.kind, "readonly": self.readonly,
                          "live_server": False, "taken_ns": time.time_ns()}
        if files and self.stack.fs is not None:
            data["files"], data["files_truncated"] = file_list(self.stack.fs)
        elif files:
            data["files"], data["files_truncated"] = [], False
        return data

    def act(self, action: str) -> str:
        """Run ``action`` ("gc", "snapshot" or "checkpoint"); a sentence saying what it did."""
        return act(self.stack, action, self.name)

    def close(self) -> None:
        if self.owned:
            self.stack.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class MountSource:
    """A running ``zcsdfs mount``, through its control socket: stats, the file list and the
    actions (which the server refuses when it serves a read-only mount)."""

    kind = "mount"

    def __init__(self, mountpoint, *, directory: str | None = None):
        self.name = os.fspath(mountpoint)
        self.mountpoint = mountpoint
        self.directory = directory  # where the control socket is (None: the usual place)
        first = request_stats(mountpoint, directory=directory)  # fail now, with one line, if no server answers
        self.readonly = bool(first.get("lfs", {}).get("readonly", True))
        self._serial: int | None = None  # of the last stats reply: the next asks for changes since
        self._zones: dict[str, list] = {}  # its zone lists, per layer

    def snapshot(self, *, files: bool = True) -> dict:
        reply = request(self.mountpoint, {"op": "stats", "since": self._serial}, directory=self.directory,
                        timeout=10.0)
        data = reply["stats"]
        try:
            patch_zones(data, self._zones)
        except (KeyError, OSError):
            self._serial, self._zones = None, {}  # out of step: the whole lists next time
            raise
        self._serial = reply.get("serial")
        data["target"] = {"name": self.name, "kind": self.kind, "readonly": self.readonly, "live_server": True,
                          "taken_ns": time.time_ns()}
        if files:
            reply = request(self.mountpoint, {"op": "files"}, directory=self.directory)
            data["files"], data["files_truncated"] = reply["files"], reply["truncated"]
        return data

    def act(self, action: str) -> str:
        """Ask the server to run ``action``; its sentence, or OSError with the server's reason."""
        return request(self.mountpoint, {"op": "act", "action": action}, directory=self.directory)["said"]

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_source(target=None):
    """The source for ``target``: a mount point (its control socket), an image path, or None
    (the embedded default device); images are opened read-only, so not one byte changes."""
    if is_mount_target(target):
        return MountSource(target)
    from zcsdfs.stack import build_stack
    stack = build_stack(target, readonly=True)
    return StackSource(stack, name=os.fspath(target) if target is not None else stack.device.path or "(default)",
                       owned=True)


def volume_source(volume) -> StackSource:
    """The source of an in-process ``zcsdfs.Volume`` (actions allowed unless it is read-only)."""
    return StackSource(volume.stack, name=volume.image or repr(volume.device))
