"""Prefix scans pushed down to the device: the ``sst_prefix`` CSD kernel over each live SST.

The kernel (sst_prefix.c, shipped compiled next to its source) parses a block-based table
and returns only the entries whose user key starts with the prefix: user key, value and
the internal key's trailer (sequence number and type). The host then

1. takes a snapshot and notes its sequence number, so that nothing newer counts;
2. reads the memtables (live and immutable) through a memtable-only iterator at that
   snapshot: what is there is newer than any table's entry for the same key;
3. binds the kernel to every live SST file (``posix_fadvise`` with its advice value, one
   ``pread``), keeping for each user key its newest entry at or below the snapshot;
4. drops table values that a memtable deletion hides: only when the memtables hold
   deletions at all (``rocksdb.num-deletes-*``), by asking RocksDB whether the key may
   exist at the snapshot without any I/O (``KeyMayExist``).

A file that a compaction deletes between listing and opening restarts the scan. Tables
the kernel cannot read (compressed, another format) make the scan fail with the
kernel's error in the ``zcsdfs.csd`` log. Range deletions are not supported (they live in
a block of their own): the kernel refuses a table that has them, and a handle that wrote
some refuses to offload.
"""

from __future__ import annotations

import errno
import os
import struct
import threading

import attrs

from ._native import ffi, lib
from .iterator import successor

KERNEL_PATH = os.path.join(os.path.dirname(__file__), "sst_prefix.o")
TYPE_DELETION, TYPE_VALUE, TYPE_SINGLE_DELETION = 0x0, 0x1, 0x7
RETRIES = 8
_HEAD = struct.Struct("<IIQ")
_kernel = None
_kernel_lock = threading.Lock()


@attrs.frozen
class ScanStats:
    """One offloaded scan: files scanned, bytes the kernels read next to the data and bytes
    they returned to the host, entries they returned, and the size of those files."""

    files: int
    bytes_read: int
    bytes_returned: int
    entries: int
    table_bytes: int


def kernel():
    """The sst_prefix kernel, verified and compiled once per process."""
    global _kernel
    with _kernel_lock:
        if _kernel is None:
            from zcsdfs.csd import load
            from pathlib import Path
            _kernel = load(Path(KERNEL_PATH))
        return _kernel


def parse(output: bytes):
    """(user key, sequence, type, value) of each entry in a kernel's output."""
    view = memoryview(output)
    at = 0
    while at < len(view):
        if at + _HEAD.size > len(view):
            raise OSError(errno.EIO, f"sst_prefix output cut short at byte {at}")
        ulen, vlen, trailer = _HEAD.unpack_from(view, at)
        at += _HEAD.size
        if at + ulen + vlen > len(view):
            raise OSError(errno.EIO, f"sst_prefix output: an entry at byte {at - _HEAD.size} runs past its end")
        key = bytes(view[at:at + ulen])
        at += ulen
        yield key, trailer >> 8, trailer & 0xFF, bytes(view[at:at + vlen])
        at += vlen


def _table_entries(db, files, prefix: bytes, advice: int, tally: list):
    """The newest entry of each user key over ``files`` (FileNotFoundError if one went)."""
    vol = db.volume
    newest: dict[bytes, tuple[int, int, bytes]] = {}
    for name in files:
        fd = vol.open(db.path + name, os.O_RDONLY)
        try:
            size = vol.fstat(fd).st_size
            vol.posix_fadvise(fd, 0, 0, advice)
            try:
                out = vol.pread(fd, 2 * size + (1 << 16), 0)
            except OSError as exc:
                raise OSError(exc.errno, f"the sst_prefix kernel failed on {db.path + name} "
                                         f"(see the zcsdfs.csd log)") from None
        finally:
            vol.close(fd)
        tally[0] += size
        for key, seq, kind, value in parse(out):
            tally[1] += 1
            if seq > tally[2]:
                continue
            old = newest.get(key)
            if old is None or seq > old[0]:
                newest[key] = (seq, kind, value)
    return newest


def offloaded_scan(db, prefix: bytes) -> list[tuple[bytes, bytes]]:
    if db.range_deleted:
        raise OSError(errno.EOPNOTSUPP, "scan_prefix(offload=True) does not see range deletions, and this "
                                        "DB has them: use offload=False")
    advice = None
    before = db.volume.csd_stats()
    for _ in range(RETRIES):
        with db.snapshot() as snap:
            sequence = lib.zr_snapshot_sequence(snap._handle())
            with db.iter(prefix=prefix, _snapshot=snap, _memtable_only=True) as it:
                it.seek_to_first()
                memtable = {}
                while it.valid():
                    memtable[it.key()] = it.value()
                    it.next()
                it.check()
            deletes = sum(int(db.property_value(p) or 0) for p in
                          ("rocksdb.num-deletes-active-mem-table", "rocksdb.num-deletes-imm-mem-tables"))
            files = [f["name"] for f in db.live_files()
                     if f["largest"] >= prefix and (successor(prefix) is None or f["smallest"] < successor(prefix))]
            if advice is None:
                from zcsdfs.csd import advice as advice_for
                advice = advice_for(kernel().with_args(prefix))
            tally = [0, 0, sequence]
            try:
                tables = _table_entries(db, files, prefix, advice, tally)
            except FileNotFoundError:
                continue  # a compaction replaced a table meanwhile: again, from a new snapshot
            result = dict(memtable)
            read = snap._read
            for key, (_, kind, value) in tables.items():
                if key in result:
                    continue
                if kind in (TYPE_DELETION, TYPE_SINGLE_DELETION):
                    continue
                if kind != TYPE_VALUE:
                    raise OSError(errno.EOPNOTSUPP, f"entry type {kind} (merge, blob or wide column) in a "
                                                    f"table: scan_prefix(offload=True) reads plain values")
                if deletes and not lib.rocksdb_key_may_exist(db._handle(), read, key, len(key), ffi.NULL,
                                                             ffi.NULL, ffi.NULL, 0, ffi.NULL):
                    continue  # a deletion in the memtables hides it
                result[key] = value
        after = db.volume.csd_stats()
        db.last_scan = ScanStats(len(files), after.bytes_read - before.bytes_read,
                                 after.bytes_returned - before.bytes_returned, tally[1], tally[0])
        return sorted(result.items())
    raise OSError(errno.EAGAIN, f"scan_prefix: the live tables kept changing ({RETRIES} tries)")
