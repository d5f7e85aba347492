"""Directory entry names: what a name may be, and the errors for what it may not.

Names are str in memory (``os.fsdecode`` of the bytes a program passed, so
any byte string round-trips) and at most 255 bytes on disk, as on ext4 and
F2FS. "." and ".." are not stored: lookup answers them from the inode.
"""

from __future__ import annotations

import os

from zcsdfs.lfs.errors import Exists, Invalid, NameTooLong

NAME_MAX = 255


def as_name(name: str | bytes) -> str:
    """Normalise a caller's name to str, refusing what no directory can hold."""
    raw = name if isinstance(name, bytes) else os.fsencode(name)
    text = name if isinstance(name, str) else os.fsdecode(name)
    if not raw or b"/" in raw or b"\0" in raw:
        raise Invalid(f"invalid file name {text!r}", text)
    if len(raw) > NAME_MAX:
        raise NameTooLong(f"file name of {len(raw)} bytes exceeds {NAME_MAX}", text)
    return text


def as_new_name(name: str | bytes) -> str:
    """A name to create: as ``as_name``, and never "." or ".." (which always exist)."""
    text = as_name(name)
    if text in (".", ".."):
        raise Exists(f"{text!r} already exists", text)
    return text
