"""Write lifetime hints: RocksDB's ``WriteLifeTimeHint`` and Linux's ``F_SET_RW_HINT`` values.

The two enumerations have the same numbers (RocksDB copied Linux's): NOT_SET 0, NONE 1,
SHORT 2 (WAL), MEDIUM 3 (L0), LONG 4, EXTREME 5 (deeper levels).
"""

from __future__ import annotations

NOT_SET, NONE, SHORT, MEDIUM, LONG, EXTREME = range(6)
NAMES = {NOT_SET: "not set", NONE: "none", SHORT: "short", MEDIUM: "medium", LONG: "long",
         EXTREME: "extreme"}


def advice_for_hint(hint: int):
    """What the vfs is told for a file with this hint (None: nothing)."""
    return None
