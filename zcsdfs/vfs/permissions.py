"""POSIX permission checks, as Linux makes them (without ACLs or capabilities beyond root).

Root may read and write anything and search any directory; it may execute
a file only if some execute bit is set. Everyone else gets the owner,
group or other bits, whichever class matches first.
"""

from __future__ import annotations

import stat

from zcsdfs.vfs.caller import Caller
from zcsdfs.vfs.errors import access_denied, not_permitted

R, W, X = 4, 2, 1


def allowed(caller: Caller, st, want: int) -> bool:
    """Whether ``caller`` may access an inode with attributes ``st`` for ``want`` (R|W|X bits)."""
    mode = st.st_mode
    if caller.is_root:
        if want & X and not stat.S_ISDIR(mode):
            return bool(mode & 0o111)
        return True
    if caller.uid == st.st_uid:
        bits = (mode >> 6) & 7
    elif caller.in_group(st.st_gid):
        bits = (mode >> 3) & 7
    else:
        bits = mode & 7
    return want & bits == want


def check(caller: Caller, st, want: int, filename=None) -> None:
    if not allowed(caller, st, want):
        raise access_denied(filename)


def check_owner(caller: Caller, st, filename=None) -> None:
    """chmod, utime with explicit times and xattrs on others' files need ownership (or root)."""
    if not caller.is_root and caller.uid != st.st_uid:
        raise not_permitted(filename)


def check_sticky(caller: Caller, dir_st, victim_st, filename=None) -> None:
    """In a sticky directory only the owner of an entry or of the directory may remove it."""
    if (dir_st.st_mode & stat.S_ISVTX and not caller.is_root
            and caller.uid not in (dir_st.st_uid, victim_st.st_uid)):
        raise not_permitted(filename)
