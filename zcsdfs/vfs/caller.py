"""Who is asking: the identity every vfs operation is checked against.

In-process the caller is the current process (its effective ids, read at
each call so ``os.seteuid`` takes effect, and only when a check needs them);
the FUSE server builds one per request from the header's uid, gid and pid.
"""

from __future__ import annotations

import os

import attrs


@attrs.frozen
class Caller:
    uid: int
    gid: int
    groups: frozenset[int] = frozenset()
    pid: int = 0

    @classmethod
    def current(cls) -> "Caller":
        return CurrentProcess()

    @property
    def is_root(self) -> bool:
        return self.uid == 0

    def in_group(self, gid: int) -> bool:
        return gid == self.gid or gid in self.groups


class CurrentProcess(Caller):
    """The calling process, its ids read from the kernel the first time a check asks for one.

    Most descriptor operations (a ``pwrite`` to a file without set-id bits or
    CSD bindings) ask for none, and so make no system calls for them.
    """

    def __init__(self):
        pass  # the fields stay empty until __getattr__ fills them

    def __getattr__(self, name: str):
        if name not in ("uid", "gid", "groups", "pid"):
            raise AttributeError(name)
        ids = os.geteuid(), os.getegid(), frozenset(os.getgroups()), os.getpid()
        for field, value in zip(("uid", "gid", "groups", "pid"), ids):
            object.__setattr__(self, field, value)
        return getattr(self, name)
