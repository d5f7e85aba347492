"""Tests of the zoned device (zcsdfs.zns)."""
