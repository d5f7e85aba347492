"""Where the inspector's snapshots come from: an in-process stack, an image opened
read-only, or a running mount asked over its control socket.

Every source gives the same thing, ``snapshot()``: the plain data of
``Stack.stats`` (``zcsdfs.control.plain``) plus a ``files`` list and a
``target`` record, so ``zcsdfs stats``, ``zcsdfs inspect --once/--json`` and
the full-screen app all read one shape. Actions (GC, snapshot, checkpoint)
go through ``act``, which refuses them on a read-only target.
"""

from __future__ import annotations

import errno
import os
import time

import attrs

from zcsdfs.control import plain, request_stats
from zcsdfs.tree import MAX_FILES, file_list, name_bindings  # noqa: F401 (file_list: the inspector's API)

ACTIONS = ("gc", "snapshot", "checkpoint")
_SCALARS = (int, float, str, bool, type(None))
_NOT_ATTRS = object()
_fields: dict[type, object] = {}  # type -> its attrs field names, or _NOT_ATTRS


def is_mount_target(target) -> bool:
    """Whether ``target`` names a running mount (a directory): refuses a plain directory."""
    if target is None or not os.path.isdir(target):
        return False
    if not os.path.ismount(target):
        raise NotADirectoryError(errno.ENOTDIR, "not an image nor a mount point", os.fspath(target))
    return True


def fast_plain(value, memo: "PlainMemo | None" = None):
    """``zcsdfs.control.plain``'s result, several times faster on a snapshot of thousands of
    zones (field names looked up once per type): the inspector takes one several times a second.
    With ``memo``, a record converted last time (the same object: an unchanged zone's, see
    ``Stack.stats(previous=)``) gives the same dict back; treat those dicts as read-only."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    names = _fields.get(kind)
    if names is None:
        names = _fields[kind] = (tuple(f.name for f in attrs.fields(kind)) if attrs.has(kind)
                                 else _NOT_ATTRS)
    if names is not _NOT_ATTRS:
        if memo is not None:
            return memo.record(value, names)
        out = {"type": kind.__name__}
        for name in names:
            out[name] = fast_plain(getattr(value, name))
        return out
    if isinstance(value, (list, tuple)):
        return [fast_plain(v) for v in value] if memo is None else memo.sequence(value)
    return plain(value)  # enums, dicts, bytes: rare


class PlainMemo:
    """The dicts of the last snapshot's records, by record: the next conversion reuses those of
    records it meets again and forgets the rest."""

    def __init__(self):
        self._last: dict[int, tuple] = {}  # id(record) -> (record, dict): the record kept, so its id stays its own
        self._next: dict[int, tuple] = {}

    def record(self, value, names) -> dict:
        key = id(value)
        hit = self._last.get(key)
        if hit is not None and hit[0] is value:
            self._next[key] = hit
            return hit[1]
        out = {"type": type(value).__name__}
        for name in names:
            out[name] = fast_plain(getattr(value, name), self)
        self._next[key] = (value, out)
        return out

    def sequence(self, values) -> list:
        last, remembered, out = self._last, self._next, []
        for value in values:
            hit = last.get(id(value))
            if hit is not None and hit[0] is value:
                remembered[id(value)] = hit
                out.append(hit[1])
            else:
                out.append(fast_plain(value, self))
        return out

    def convert(self, value):
        """``value`` as plain data; the records met now are the ones remembered for next time."""
        self._next = {}
        out = fast_plain(value, self)
        self._last = self._next
        return out


class StackSource:
    """An opened stack (a ``Volume``'s, or one built here from an image)."""

    def __init__(self, stack, *, name: str, owned: bool = False, server=None):
        self.stack = stack
        self.name = name
        self.owned = owned  # close the stack with the source
        self.server = server
        self.kind = "volume" if not owned else "image"
        self._previous = None  # the last Stack.stats: the next one copies only the zones that changed
        self._memo = PlainMemo()
        self._paths: dict[int, str] = {}  # ino -> path, of files kernels are bound to

    @property
    def readonly(self) -> bool:
        return self.stack.readonly

    def snapshot(self, *, files: bool = True) -> dict:
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
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}")
        if self.readonly or self.stack.fs is None:
            raise OSError(errno.EROFS, f"{self.name} is read-only: no {action}", self.name)
        fs = self.stack.fs
        if action == "gc":
            freed = fs.gc(1)
            return f"GC freed {freed} zone{'s' * (freed != 1)}"
        if action == "checkpoint":
            fs.checkpoint()
            return f"checkpoint {fs.checkpointer.generation} written"
        name = time.strftime("inspect-%Y%m%d-%H%M%S")
        taken, n = name, 1
        while taken in fs.snapshots:
            n += 1
            taken = f"{name}-{n}"
        fs.create_snapshot(taken)
        return f"snapshot {taken} taken"

    def close(self) -> None:
        if self.owned:
            self.stack.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class MountSource:
    """A running ``zcsdfs mount``, through its control socket (stats only: no file list)."""

    kind = "mount"
    readonly = True  # the control socket takes no actions

    def __init__(self, mountpoint):
        self.name = os.fspath(mountpoint)
        self.mountpoint = mountpoint
        request_stats(mountpoint)  # fail now, with one line, if no server answers

    def snapshot(self, *, files: bool = True) -> dict:
        data = request_stats(self.mountpoint)
        data["target"] = {"name": self.name, "kind": self.kind, "readonly": True, "live_server": True,
                          "taken_ns": time.time_ns()}
        if files:
            data["files"], data["files_truncated"] = [], False
        return data

    def act(self, action: str) -> str:
        raise OSError(errno.EROFS, f"the control socket of {self.name} takes no actions ({action})", self.name)

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
