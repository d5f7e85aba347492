"""Prefix scans pushed down to the device: the ``sst_prefix`` CSD kernel over each live SST.

The kernel (sst_prefix.c, shipped compiled next to its source) parses a block-based table
and returns, of each user key under the prefix, its newest entry at or below a snapshot's
sequence number: user key, value and the internal key's trailer (sequence and type). With
``value_at=(offset, field)`` it returns the value only where the value holds ``field`` at
``offset`` (a field of up to 8 bytes); the entries it did not select come back as their key
alone ("shadows": a newer entry hides an older one of another file whatever its value),
or not at all when no key can be in two of the files scanned (their key ranges are
disjoint, as after a full compaction). The host then

1. takes a snapshot and notes its sequence number, so that nothing newer counts;
2. reads the memtables (live and immutable) through a memtable-only iterator at that
   snapshot: what is there is newer than any table's entry for the same key;
3. binds the kernel to every live SST file whose key range meets the prefix
   (``posix_fadvise`` with its advice value, one ``pread``), keeping for each user key
   its newest entry;
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
TYPE_DELETION, TYPE_VALUE, TYPE_SINGLE_DELETION, UNSELECTED = 0x0, 0x1, 0x7, 0xFF
VALUE_AT, SHADOWS = 1, 2  # the kernel's flags
MAX_PREFIX, MAX_FIELD = 256, 8
RETRIES = 8
_HEAD = struct.Struct("<IIQ")
_ARGS = struct.Struct("<QIIII")  # snapshot sequence, flags, value offset, prefix and field lengths
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
    end = len(view)
    unpack = _HEAD.unpack_from
    at = 0
    while at < end:
        if at + 16 > end:
            raise OSError(errno.EIO, f"sst_prefix output cut short at byte {at}")
        ulen, vlen, trailer = unpack(view, at)
        k = at + 16
        v = k + ulen
        at = v + vlen
        if at > end:
            raise OSError(errno.EIO, f"sst_prefix output: an entry at byte {k - 16} runs past its end")
        yield bytes(view[k:v]), trailer >> 8, trailer & 0xFF, bytes(view[v:at])


def kernel_args(sequence: int, prefix: bytes, value_at, shadows: bool) -> bytes:
    """The kernel's argument blob (sst_prefix.c's head comment)."""
    offset, field = value_at if value_at is not None else (0, b"")
    flags = (VALUE_AT if value_at is not None else 0) | (SHADOWS if shadows else 0)
    return _ARGS.pack(sequence, flags, offset, len(prefix), len(field)) + prefix + field


def check_value_at(value_at):
    """``(offset, field)`` with a field of 1 to 8 bytes, or None."""
    if value_at is None:
        return None
    offset, field = value_at
    if type(offset) is not int or not 0 <= offset < 1 << 32:
        raise ValueError(f"value_at's offset must be an int in [0, 2**32), not {offset!r}")
    if not isinstance(field, (bytes, bytearray, memoryview)) or not 1 <= len(field) <= MAX_FIELD:
        raise ValueError(f"value_at's field must be 1 to {MAX_FIELD} bytes")
    return offset, bytes(field)


def value_holds(value: bytes, value_at) -> bool:
    offset, field = value_at
    return value[offset:offset + len(field)] == field


def disjoint(files) -> bool:
    """Whether no two of ``files`` (live_files records) have overlapping key ranges."""
    spans = sorted((f["smallest"], f["largest"]) for f in files)
    return all(a[1] < b[0] for a, b in zip(spans, spans[1:]))


def _table_entries(db, files, advice: int, tally: list):
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
        get = newest.get
        for key, seq, kind, value in parse(out):
            old = get(key)
            if old is None or seq > old[0]:
                newest[key] = (seq, kind, value)
            tally[1] += 1
    return newest


def offloaded_scan(db, prefix: bytes, value_at=None) -> list[tuple[bytes, bytes]]:
    if db.range_deleted:
        raise OSError(errno.EOPNOTSUPP, "scan_prefix(offload=True) does not see range deletions, and this "
                                        "DB has them: use offload=False")
    if len(prefix) > MAX_PREFIX:
        raise OSError(errno.EINVAL, f"scan_prefix(offload=True) takes prefixes of at most {MAX_PREFIX} bytes")
    from zcsdfs.csd import advice as advice_for
    end = successor(prefix)
    before = db.volume.csd_stats()
    for _ in range(RETRIES):
        with db.snapshot() as snap:
            sequence = lib.zr_snapshot_sequence(snap._handle())
            with db.iter(prefix=prefix, _snapshot=snap, _memtable_only=True) as it:
                it.seek_to_first()
                memtable = {}
                while it.valid():
                    key, value = it.item()
                    memtable[key] = value
                    it.next()
                it.check()
            deletes = sum(int(db.property_value(p) or 0) for p in
                          ("rocksdb.num-deletes-active-mem-table", "rocksdb.num-deletes-imm-mem-tables"))
            live = [f for f in db.live_files() if f["largest"] >= prefix and (end is None or f["smallest"] < end)]
            files = [f["name"] for f in live]
            shadows = not disjoint(live)
            advice = advice_for(kernel().with_args(kernel_args(sequence, prefix, value_at, shadows)))
            tally = [0, 0]
            try:
                tables = _table_entries(db, files, advice, tally)
            except FileNotFoundError:
                continue  # a compaction replaced a table meanwhile: again, from a new snapshot
            result = {k: v for k, v in memtable.items() if value_at is None or value_holds(v, value_at)}
            read = snap._read
            for key, (_, kind, value) in tables.items():
                if key in memtable:
                    continue
                if kind in (TYPE_DELETION, TYPE_SINGLE_DELETION, UNSELECTED):
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
