"""Who is asking: the identity every vfs operation is checked against.

In-process the caller is the current process (its effective ids, read at
each call so ``os.seteuid`` takes effect); the FUSE server builds one per
request from the header's uid, gid and pid.
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
        return cls(os.geteuid(), os.getegid(), frozenset(os.getgroups()), os.getpid())

    @property
    def is_root(self) -> bool:
        return self.uid == 0

    def in_group(self, gid: int) -> bool:
        return gid == self.gid or gid in self.groups
