"""Timestamps as Linux takes them for inodes, and the limits an inode's times have."""

from __future__ import annotations

import time

RELATIME_AGE = 24 * 3600 * 10**9
CLOCK_REALTIME_COARSE = 5  # Linux's clock id; Python's time module does not name it


def _now() -> int:
    """Timestamps as Linux takes them for inodes: the coarse (per-tick) real-time clock."""
    return time.clock_gettime_ns(CLOCK_REALTIME_COARSE)


TIME_MAX_S = (1 << 63) // 10**9  # whole seconds of a signed 64-bit nanosecond timestamp, either way


def _clamp_time(ns: int | None) -> int | None:
    """A timestamp the inode can hold: out of range, the nearest whole second that fits, as
    Linux's timestamp_truncate does with a file system's time limits."""
    if ns is None or -TIME_MAX_S * 10**9 <= ns <= TIME_MAX_S * 10**9:
        return ns
    return TIME_MAX_S * 10**9 if ns > 0 else -TIME_MAX_S * 10**9
