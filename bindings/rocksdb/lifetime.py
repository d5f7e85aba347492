"""Write lifetime hints: RocksDB's ``WriteLifeTimeHint`` is Linux's ``F_SET_RW_HINT`` value.

RocksDB sets one on every file it writes (``FSWritableFile::SetWriteLifeTimeHint``): WAL
SHORT, L0 and L1 tables MEDIUM, L2 LONG, deeper levels EXTREME. The bridge hands it to the
vfs (``Vfs.set_write_hint``, what ``Volume.fcntl(fd, F_SET_RW_HINT, ...)`` does for os API
users), and the lfs writes each class into zones of its own, so that the tables a
compaction deletes together free whole zones and GC has little to move.
"""

from zcsdfs.volume import (  # the same numbers, under both names
    F_GET_RW_HINT,
    F_SET_RW_HINT,
    RWH_WRITE_LIFE_EXTREME as EXTREME,
    RWH_WRITE_LIFE_LONG as LONG,
    RWH_WRITE_LIFE_MEDIUM as MEDIUM,
    RWH_WRITE_LIFE_NONE as NONE,
    RWH_WRITE_LIFE_NOT_SET as NOT_SET,
    RWH_WRITE_LIFE_SHORT as SHORT,
)

NAMES = {NOT_SET: "not set", NONE: "none", SHORT: "short", MEDIUM: "medium", LONG: "long",
         EXTREME: "extreme"}

__all__ = ["F_GET_RW_HINT", "F_SET_RW_HINT", "NOT_SET", "NONE", "SHORT", "MEDIUM", "LONG", "EXTREME", "NAMES"]
