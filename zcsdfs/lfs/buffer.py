"""The write buffer: small writes held in memory, as a page cache holds them, until they go
out together as one log unit (F2FS's page cache and its segment.c write-out, in one place).

Small data writes (up to ``data.SMALL_WRITE`` blocks) collect here and go
out together as one unit when the buffer fills, before any operation that
needs them on the device (a read of a buffered file, a truncate, freeing
the inode), and at fsync/sync/unmount; so a 4 KiB write costs a memory
copy, not a header block. Records of other operations queued meanwhile
travel in the same unit, ahead of the buffered data's records, so the unit
holds a batch of operations that a crash keeps whole or not at all and the
log still holds them in the order they were made (a crash loses a suffix,
never a middle). The buffer never holds more than fits in one unit, nor
more than the free space can take. ``getattr`` answers the buffered size
and times.

The state lives on the file system (``FileSystem.__init__``): a separate
object would cost an attribute hop on every small write.
"""

from __future__ import annotations

import functools
from time import clock_gettime_ns as _clock

from attrs import evolve as attrs_evolve

from zcsdfs.lfs import records
from zcsdfs.lfs.attributes import Stat
from zcsdfs.lfs.clock import CLOCK_REALTIME_COARSE, _now
from zcsdfs.lfs.inode import Inode
from zcsdfs.lfs.log import Stream
from zcsdfs.lfs.reader import TreeReader


def _settled(method):
    """Run an operation after the write buffer has gone out, so it sees every earlier write's
    size and times and is logged after them."""
    @functools.wraps(method)
    def run(self, *args, **kwargs):
        with self._lock:
            if self._dirty:
                self._flush_dirty()
            return method(self, *args, **kwargs)
    return run


class WriteBuffer(TreeReader):
    """The write buffer's operations, mixed into ``FileSystem``."""

    def _queue_behind(self, recs: tuple, encoded: bytes) -> tuple[tuple, bytes]:
        """Let an operation's records wait for the unit that writes the buffer, instead of
        writing the buffer out first: a create, a close or a utime between small writes then
        costs no unit of its own. Returns the records and their encoding; inode records of
        buffered files are given the buffered size and times (the buffer's own inode record,
        written after them, would otherwise undo them).

        The buffer goes out first when a record needs its data on the device (freeing,
        truncating or mapping a buffered file), and when its unit might need a zone from the
        reserve: reclaiming space part way through would checkpoint the queued records, or move
        them in a GC unit, ahead of writes made before them. Free zones are counted once per
        buffer; until it goes out nothing else is appended, so they cannot run lower.
        """
        dirty, held = self._dirty, self._dirty_attrs
        merged = None
        flush = False
        for i, rec in enumerate(recs):
            ino = getattr(rec, "ino", None)
            if ino not in dirty:
                continue
            kind = type(rec)
            if kind is records.Inode:
                size, mtime = held[ino]
                node = self.ns.inodes[ino]
                changes = {"size": max(rec.size, size)}
                if mtime is not None:  # times the operation did not set are the last write's
                    if rec.mtime_ns == node.mtime_ns:
                        changes["mtime_ns"] = mtime
                    if rec.ctime_ns == node.ctime_ns:
                        changes["ctime_ns"] = mtime
                if merged is None:
                    merged = list(recs)
                merged[i] = attrs_evolve(rec, **changes)
            elif kind is not records.Xattr and kind is not records.Unxattr:
                flush = True
        if not flush and not self._mixing:
            flush = len(self.writer.free_zones()) <= self.writer.reserve
            self._mixing = not flush
        if merged is None:
            if flush:
                self._flush_dirty()
            return recs, encoded
        if flush:
            self._flush_dirty()
        else:
            for rec in merged:
                if type(rec) is records.Inode and rec.ino in held:
                    held[rec.ino] = (held[rec.ino][0], None)  # the record carries them now
        return merged, b"".join(records.encode(rec) for rec in merged)

    def _buffer_block(self, node: Inode, offset: int, data: bytes, cold: bool) -> bool:
        """``_buffer`` of one whole aligned block into a buffer with room for it, in fewer steps
        (it is most of what small writes are); False, holding nothing, if the write needs zeros
        between the old end of file and itself."""
        ino = node.ino
        attrs = self._dirty_attrs.get(ino)
        size = node.size if attrs is None else attrs[0]
        bs = self.block_size
        if offset > size and size % bs:
            return False
        block = offset // bs
        blocks = self._dirty.get(ino)
        if blocks is None:
            blocks = self._dirty[ino] = {}
        if cold:
            self._dirty_stream = Stream.COLD
        if block not in blocks:  # _hold_block, inlined
            self._dirty_blocks += 1
            if not node.extents.mapped(block):
                self._dirty_new[ino] = self._dirty_new.get(ino, 0) + 1
            elif not cold:
                self._dirty_stream = self._dirty_stream or Stream.HOT
        blocks[block] = data
        end = offset + bs
        self._dirty_attrs[ino] = (end if end > size else size, _clock(CLOCK_REALTIME_COARSE))
        self.user_blocks_written += 1
        if self._dirty_blocks >= self.buffer_limit:
            self._flush_dirty()
        return True

    def _buffer(self, node: Inode, offset: int, data: memoryview, cold: bool) -> None:
        """Hold a small write in the buffer, patching partial blocks from what the file holds.

        A whole aligned block, the usual small write, is held as it is.
        """
        bs = self.block_size
        ino = node.ino
        attrs = self._dirty_attrs.get(ino)
        size = node.size if attrs is None else attrs[0]
        end = offset + data.nbytes
        first = offset // bs
        blocks = self._dirty.get(ino)
        if blocks is None:
            blocks = self._dirty[ino] = {}
        if offset > size and size % bs and first > size // bs:  # zeros between the old end and the write
            tail = size // bs
            self._hold_block(node, blocks, tail, bytes(self._block_now(node, blocks, tail, size)[:size % bs]).ljust(bs, b"\0"), cold)
        if end - offset == bs and offset == first * bs:
            held = data.obj if type(data.obj) is bytes and len(data.obj) == bs else data.tobytes()
            self._hold_block(node, blocks, first, held, cold)
            last = first + 1
        else:
            last = -(-end // bs)
            for b in range(first, last):
                lo, hi = max(offset, b * bs), min(end, (b + 1) * bs)
                if hi - lo == bs:
                    block = bytes(data[lo - offset:hi - offset])
                else:
                    patched = self._block_now(node, blocks, b, size)
                    patched[lo - b * bs:hi - b * bs] = data[lo - offset:hi - offset]
                    block = bytes(patched)
                self._hold_block(node, blocks, b, block, cold)
        self._dirty_attrs[ino] = (end if end > size else size, _now())
        self.user_blocks_written += last - first
        if self._dirty_blocks >= self.buffer_limit:
            self._flush_dirty()

    def _hold_block(self, node: Inode, blocks: dict, block: int, data: bytes, cold: bool) -> None:
        """Hold ``data`` as file block ``block``, noting whether it is new to the file (for
        st_blocks) and whether the buffer overwrites data (hot) or is cold."""
        if cold:
            self._dirty_stream = Stream.COLD
        if block not in blocks:
            self._dirty_blocks += 1
            if not node.extents.mapped(block):
                self._dirty_new[node.ino] = self._dirty_new.get(node.ino, 0) + 1
            elif not cold:
                self._dirty_stream = self._dirty_stream or Stream.HOT
        blocks[block] = data

    def _block_now(self, node: Inode, blocks: dict, block: int, size: int) -> bytearray:
        """File block ``block`` as the file has it now, buffered or on the device."""
        held = blocks.get(block)
        if held is not None:
            return bytearray(held)
        out = bytearray(self.block_size)
        self._read_block(node, block, memoryview(out))
        return out

    def _flush_dirty(self) -> None:
        """Write the whole buffer as one log unit (after any queued records), in file order.

        The unit is atomic, so a crash keeps all of the buffered writes or
        none; on ENOSPC the buffer stays as it was.
        """
        if self._flushing:  # room() reclaiming space calls back into the file system
            return
        dirty, attrs = self._dirty, self._dirty_attrs
        recs: list = []
        chunks: list[bytes] = []
        for ino in sorted(dirty):
            node = self.ns.inodes[ino]
            blocks = dirty[ino]
            run_start = prev = None
            for b in sorted(blocks):
                if prev is None or b != prev + 1:
                    if prev is not None:
                        recs.append(records.Data(ino, run_start, prev + 1 - run_start))
                    run_start = b
                prev = b
                chunks.append(blocks[b])
            if prev is not None:
                recs.append(records.Data(ino, run_start, prev + 1 - run_start))
            size, mtime = attrs[ino]
            if mtime is None:  # a record queued since the last write carries the times
                recs.append(node.record(size=max(size, node.size)))
            else:
                recs.append(node.record(size=max(size, node.size), mtime_ns=mtime, ctime_ns=mtime))
        stream = Stream.HOT if self._dirty_stream is Stream.HOT else Stream.COLD
        hinted = {self.write_hints.get(ino) for ino in dirty}
        if len(hinted) == 1 and None not in hinted:  # all of one declared lifetime: its zones
            stream = hinted.pop()
        encoded = b"".join(records.encode(rec) for rec in recs)
        total = len(chunks)
        self._flushing = True
        try:
            self.writer.room(stream, self._pending_len + len(encoded), total, least=total)
        finally:
            self._flushing = False
        lba = self.writer.append(stream, self._take_pending() + encoded, b"".join(chunks))
        self._dirty, self._dirty_attrs, self._dirty_new = {}, {}, {}
        self._dirty_blocks = 0
        self._dirty_stream = None
        self._mixing = False
        self.ns.apply_unit(recs, lba)
        self._maybe_checkpoint()

    def getattr(self, ino: int) -> Stat:
        st = super().getattr(ino)
        held = self._dirty_attrs.get(ino)
        if held is None:
            return st
        size, mtime = held
        extra = self._dirty_new.get(ino, 0)
        if mtime is None:
            return attrs_evolve(st, st_size=max(size, st.st_size), st_blocks=st.st_blocks + extra * (self.block_size // 512))
        return attrs_evolve(st, st_size=max(size, st.st_size), st_mtime_ns=mtime, st_ctime_ns=mtime,
                            st_blocks=st.st_blocks + extra * (self.block_size // 512))
