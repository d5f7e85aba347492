"""What the inspector and the control socket may do to a volume: run GC, take a snapshot,
write a checkpoint. Each says in one sentence what it did; a read-only stack refuses all three."""

from __future__ import annotations

import errno
import time

ACTIONS = ("gc", "snapshot", "checkpoint")


def act(stack, action: str, name: str) -> str:
    """Run ``action`` on ``stack`` (a ``zcsdfs.stack.Stack``; ``name`` says which, in errors)."""
    if action not in ACTIONS:
        raise OSError(errno.EINVAL, f"unknown action {action!r} (actions: {', '.join(ACTIONS)})", name)
    if stack.readonly or stack.fs is None:
        raise OSError(errno.EROFS, f"{name} is read-only: no {action}", name)
    fs = stack.fs
    if action == "gc":
        freed = fs.gc(1)
        return f"GC freed {freed} zone{'s' * (freed != 1)}"
    if action == "checkpoint":
        fs.checkpoint()
        return f"checkpoint {fs.checkpointer.generation} written"
    base = time.strftime("inspect-%Y%m%d-%H%M%S")
    taken, n = base, 1
    while taken in fs.snapshots:
        n += 1
        taken = f"{base}-{n}"
    fs.create_snapshot(taken)
    return f"snapshot {taken} taken"
