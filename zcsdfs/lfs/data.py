"""The data path: writes, reads, truncation and fallocate of regular files (F2FS's data.c).

Small writes go to the write buffer (``buffer.py``); larger writes go
straight out as units (header + blocks). A partial block is read, patched
and rewritten whole (read-modify-write); bytes past the end of file in the
last block are zeroed whenever the file grows over them, so truncating
down then up, or writing past the end, reads zeros in between. Writes that
overwrite mapped blocks go to the hot stream, writes of new blocks to the
cold one (blocks that were overwritten once are likely to be again), unless
the caller says ``cold``. Access times follow Linux's ``relatime``
(``touch_atime``).

Space is never reserved ahead: a log-structured file system needs new
blocks at every overwrite, so ``fallocate`` promises only what it can check
(enough free blocks now) and extends the size; punching a hole unmaps
whole blocks and rewrites the partial blocks at its edges with zeros, all
in one unit. Reads copy from the device outside the lock (see
``reader.py``).
"""

from __future__ import annotations

import stat

from zcsdfs.lfs import records
from zcsdfs.lfs.buffer import WriteBuffer, _settled
from zcsdfs.lfs.checksums import crc as _crc
from zcsdfs.lfs.checksums import damaged
from zcsdfs.lfs.clock import RELATIME_AGE, _now
from zcsdfs.lfs.errors import IllegalSeek, Invalid, IsADirectory, NoSpace, NoSuchDevice, NotSupported, TooBig
from zcsdfs.lfs.inode import Inode
from zcsdfs.lfs.log import LIFETIME_STREAMS, MAX_UNIT_DATA_BLOCKS, Stream

MAX_FILE_SIZE = 1 << 46
FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02
FALLOC_FL_LINUX_MODES = 0x7F  # every mode bit Linux knows; the others it refuses before asking the file system
SMALL_WRITE = 16  # blocks; larger writes bypass the write buffer


class DataPath(WriteBuffer):
    """Operations on a regular file's data, mixed into ``FileSystem``."""

    def write(self, ino: int, offset: int, data, cold: bool = False) -> int:
        """Write ``data`` at ``offset``; returns the bytes written (short only when space ran out).

        ``cold`` places the blocks with data not expected to change (posix_fadvise NOREUSE).
        """
        with self._lock:
            node = self.ns.inodes.get(ino)
            if node is None or node.extents is None or not self._mounted:
                node = self._file(ino)  # which says why not
            bs = self.block_size
            if type(data) is bytes and len(data) == bs and self._dirty and self._dirty_blocks < self.buffer_limit \
                    and 0 <= offset < MAX_FILE_SIZE and not offset % bs and self._buffer_block(node, offset, data, cold):
                return bs  # the usual small write, one whole block into a buffer that is filling
            data = memoryview(data).cast("B")
            size = data.nbytes
            if offset < 0:
                raise Invalid(f"negative offset {offset}")
            if not size:
                return 0
            end = offset + size
            if end > MAX_FILE_SIZE:
                raise TooBig(f"write to {end} bytes exceeds the maximum file size {MAX_FILE_SIZE}")
            first, last = offset // bs, -(-end // bs)
            if last - first <= SMALL_WRITE:
                if self._dirty_blocks + last - first > self.buffer_limit:
                    self._flush_dirty()
                # once filling, free space for a whole buffer was there when it started
                if self._dirty or self.statfs().f_bfree >= 2 * self.buffer_limit:
                    self._buffer(node, offset, data, cold)
                    return size
            if self._dirty:
                self._flush_dirty()
            if offset > node.size and first > node.size // bs:
                self._zero_tail(node)
            if offset % bs or end % bs:  # partial blocks: read, patch, rewrite whole
                buf = bytearray((last - first) * bs)
                if offset % bs:
                    self._read_block(node, first, memoryview(buf)[:bs])
                if end % bs and (last - 1 != first or not offset % bs):
                    self._read_block(node, last - 1, memoryview(buf)[-bs:])
                buf[offset - first * bs:end - first * bs] = data
            else:
                buf = data  # whole blocks go out as they are, one copy fewer
            overwrite = not cold and any(lba is not None for _, _, lba in node.extents.runs(first, last - first))
            stream = self.write_hints.get(ino) or (Stream.HOT if overwrite else Stream.COLD)
            done = self._write_blocks(node, first, buf, end, stream)
            self.user_blocks_written += done
            self._maybe_checkpoint()
            return size if done == last - first else max(0, (first + done) * bs - offset)

    def set_write_hint(self, ino: int, hint: int) -> None:
        """F_SET_RW_HINT: the expected lifetime of data written to ``ino`` from now on, as
        Linux's RWH_WRITE_LIFE_* (0 not set, 1 none, 2 short, 3 medium, 4 long, 5 extreme).
        Each lifetime's data goes to zones of its own; kept in memory, as Linux keeps it."""
        if not 0 <= hint <= 5:
            raise Invalid(f"write lifetime hint {hint} is not 0-5")
        with self._lock:
            self._node(ino)
            if hint < 2:
                self.write_hints.pop(ino, None)
            else:
                self.write_hints[ino] = LIFETIME_STREAMS[hint - 2]
                if len(self.write_hints) % 1024 == 0:  # now and then, forget removed files
                    self.write_hints = {i: h for i, h in self.write_hints.items() if i in self.ns.inodes}

    def write_hint(self, ino: int) -> int:
        """F_GET_RW_HINT: the hint ``set_write_hint`` gave ``ino`` (0 when none)."""
        stream = self.write_hints.get(ino)
        return 0 if stream is None else stream - Stream.SHORT + 2

    def append(self, ino: int, data, cold: bool = False) -> tuple[int, int]:
        """Write ``data`` at the end of the file, found and written in one step (O_APPEND);
        returns where it went and how many bytes were written."""
        with self._lock:
            at = self.getattr(ino).st_size
            return at, self.write(ino, at, data, cold)

    def read(self, ino: int, offset: int, size: int) -> bytes:
        with self._lock:
            if ino in self._dirty:
                self._flush_dirty()
            node = self.ns.inodes.get(ino)
            if node is not None and node.extents is not None and offset >= 0 and size > 0:
                # one mapped run (the usual case): a single copy from the device
                end = min(offset + size, node.size)
                if offset >= end:
                    return b""
                bs = self.block_size
                first, last = offset // bs, (end - 1) // bs
                run = node.extents.extent_at(first)
                if run is not None and run[1] > last - first:
                    n = last - first + 1  # whole blocks, to check them against their checksums
                    lba = run[0]
                    data = self.device.read_bytes(lba, 0, n * bs)
                    tables, zone_size = self._sum_index
                    zone, at = divmod(lba, zone_size)  # BlockSums.ok, inlined: every small read comes here
                    table = tables[zone]
                    if table is None or _crc(data, table[at - 1]) != table[at + n - 1]:
                        raise damaged(self.sums, ino, first, lba, data, bs)
                    skip = offset - first * bs
                    return data if skip == 0 and end - offset == n * bs else data[skip:end - first * bs]
        return super().read(ino, offset, size)

    def seek_data(self, ino: int, offset: int) -> int:
        with self._lock:
            if ino in self._dirty:
                self._flush_dirty()
            return super().seek_data(ino, offset)

    def seek_hole(self, ino: int, offset: int) -> int:
        with self._lock:
            if ino in self._dirty:
                self._flush_dirty()
            return super().seek_hole(ino, offset)

    def touch_atime(self, ino: int) -> None:
        """Record a read access as Linux's relatime does: only when the access time is not after
        the last change, or is a day old, so that reads rarely write."""
        node = self.ns.inodes.get(ino)
        if node is not None and ino not in self._dirty_attrs and node.atime_ns > node.mtime_ns \
                and node.atime_ns > node.ctime_ns and _now() - node.atime_ns < RELATIME_AGE:
            return  # the common case, decided without the lock
        self._touch_atime(ino)

    @_settled
    def _touch_atime(self, ino: int) -> None:
        node = self._node(ino)
        now = _now()
        if node.atime_ns <= node.mtime_ns or node.atime_ns <= node.ctime_ns or now - node.atime_ns >= RELATIME_AGE:
            self._log(node.record(atime_ns=now))

    def _read_block(self, node: Inode, block: int, out: memoryview) -> None:
        """Fill ``out`` with file block ``block`` as the file has it (zeros past the end of file)."""
        lba = node.extents.lookup(block)
        if lba is None:
            return
        self.device.read_into(lba, out)
        if not self.sums.ok(lba, out):
            raise damaged(self.sums, node.ino, block, lba, out, self.block_size)
        valid = node.size - block * self.block_size
        if valid < self.block_size:
            out[max(valid, 0):] = bytes(self.block_size - max(valid, 0))

    def _zero_tail(self, node: Inode) -> None:
        """Rewrite the last block with zeros past the end of file, before the file grows over them."""
        bs = self.block_size
        if not node.size % bs:
            return
        block = node.size // bs
        if node.extents.lookup(block) is None:
            return
        buf = bytearray(bs)
        self._read_block(node, block, memoryview(buf))
        self._write_blocks(node, block, buf, node.size, Stream.HOT)

    def _write_blocks(self, node: Inode, first: int, buf, end: int, stream: Stream) -> int:
        """Log whole blocks from file block ``first``; the file grows to ``end`` bytes as they land.

        One unit if they fit, else several, all but the last flagged
        CONTINUED so that roll-forward applies them together or not at all:
        the write is atomic across a crash. No checkpoint or GC runs in
        between (it would save the write half done), so when the write needs
        more zones than are free, GC runs first. If space runs out part way,
        a metadata unit closes the group and the write is short. Returns the
        blocks written; raises ENOSPC only if none could be.
        """
        bs = self.block_size
        total = len(buf) // bs
        view = memoryview(buf)
        sample = records.encode(records.Data(node.ino, first, 1)) + records.encode(node.record())
        w = self.writer
        if total > 1:
            self._make_room(stream, total)
        done = 0
        try:
            while done < total:
                self._grouping = done > 0  # before the first unit, reclaiming is still safe
                try:
                    count = w.room(stream, self._pending_len + len(sample), total - done)
                except NoSpace:
                    if done:
                        self._close_group(node)
                        return done
                    raise
                now = _now()
                block = first + done
                size = max(node.size, min(end, (block + count) * bs))
                data_rec = records.Data(node.ino, block, count)
                inode_rec = node.record(size=size, mtime_ns=now, ctime_ns=now)
                recs = self._take_pending() + records.encode(data_rec) + records.encode(inode_rec)
                lba = w.append(stream, recs, view[done * bs:(done + count) * bs], continued=done + count < total)
                self.ns.apply(data_rec, lba)
                self.ns.apply(inode_rec)
                done += count
        finally:
            self._grouping = False
        return done

    def _available(self, stream: Stream) -> int:
        """Blocks ``stream`` can append before data would dip into the reserve."""
        w = self.writer
        head = w.heads.get(w.route[stream])
        left = w.room_left(head) if head is not None else 0
        return left + max(0, len(w.free_zones()) - w.reserve) * self.device.geometry.zone_capacity

    def _make_room(self, stream: Stream, blocks: int) -> None:
        """Before a write of several units: checkpoint and collect garbage until ``blocks`` of data
        (and a header block per unit) fit, or nothing more can be freed."""
        cap = self.device.geometry.zone_capacity
        need = blocks + 2 * (-(-blocks // MAX_UNIT_DATA_BLOCKS) + -(-blocks // cap) + 1)
        if self._reclaiming or self._available(stream) >= need:
            return
        self._reclaiming = True
        try:
            self.checkpoint()
            failed: set[int] = set()
            for _ in range(2 * len(self.writer.log_zones)):  # bounded: each pass frees a zone or fails one
                if self._available(stream) >= need or self._collect_one(None, failed) is None:
                    break
        finally:
            self._reclaiming = False

    def _close_group(self, node: Inode) -> None:
        """End a CONTINUED group cut short by ENOSPC with a metadata unit, so the blocks logged stay."""
        encoded = records.encode(node.record())
        self.writer.room(Stream.META, len(encoded), 0)
        self.writer.append(Stream.META, encoded)

    @_settled
    def truncate(self, ino: int, size: int) -> None:
        with self._lock:
            node = self._file(ino)
            if size < 0:
                raise Invalid(f"negative size {size}")
            if size > MAX_FILE_SIZE:
                raise TooBig(f"size {size} exceeds the maximum file size {MAX_FILE_SIZE}")
            if size > node.size:
                self._zero_tail(node)
            now = _now()
            recs = []
            keep = -(-size // self.block_size)
            if node.extents.end() > keep:
                recs.append(records.Truncate(ino, keep))
            recs.append(node.record(size=size, mtime_ns=now, ctime_ns=now))
            self._log(*recs)

    @_settled
    def fallocate(self, ino: int, offset: int, length: int, mode: int = 0) -> None:
        """fallocate(2): allocate (mode 0 or FALLOC_FL_KEEP_SIZE) or punch a hole.

        Allocating checks that the range's unmapped blocks fit in the free
        space (ENOSPC otherwise) and, without KEEP_SIZE, grows the file to
        ``offset + length`` as truncate would. FALLOC_FL_PUNCH_HOLE must come
        with FALLOC_FL_KEEP_SIZE; other modes are EOPNOTSUPP.
        """
        with self._lock:
            if offset < 0 or length <= 0:
                raise Invalid(f"fallocate of {length} bytes at offset {offset}")
            punch = mode & FALLOC_FL_PUNCH_HOLE
            if mode & ~FALLOC_FL_LINUX_MODES or punch and not mode & FALLOC_FL_KEEP_SIZE:
                raise NotSupported(f"fallocate mode {mode:#x}")
            node = self._node(ino)
            if stat.S_ISFIFO(node.mode):
                raise IllegalSeek(f"fallocate on FIFO inode {ino}")
            if node.is_dir:
                raise IsADirectory(f"inode {ino} is a directory")
            if not node.is_reg:
                raise NoSuchDevice(f"fallocate on inode {ino}, which is not a regular file")
            end = offset + length
            if end > MAX_FILE_SIZE:
                raise TooBig(f"fallocate to {end} bytes exceeds the maximum file size {MAX_FILE_SIZE}")
            if mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE):
                raise NotSupported(f"fallocate mode {mode:#x} (only allocation and hole punching)")
            if punch:
                self._punch(node, offset, end)
            else:
                self._allocate(node, offset, end, keep_size=bool(mode & FALLOC_FL_KEEP_SIZE))

    def _allocate(self, node: Inode, offset: int, end: int, keep_size: bool) -> None:
        """Check that the unmapped blocks of the range fit in the free space; grow the size unless kept."""
        bs = self.block_size
        first = offset // bs
        missing = sum(count for _, count, lba in node.extents.runs(first, -(-end // bs) - first) if lba is None)
        free = self.statfs().f_bfree
        if missing > free:
            raise NoSpace(f"fallocate needs {missing} blocks, {free} are free")
        now = _now()
        if keep_size or end <= node.size:
            self._log(node.record(ctime_ns=now))
            return
        self._zero_tail(node)
        self._log(node.record(size=end, mtime_ns=now, ctime_ns=now))

    def _punch(self, node: Inode, offset: int, end: int) -> None:
        """Unmap the whole blocks of the range and zero its partial edge blocks, in one log unit."""
        end = min(end, node.size)
        if offset >= end:
            return  # past the end of file: nothing to punch (as on ext4)
        bs = self.block_size
        lo = -(-offset // bs)
        hi = -(-end // bs) if end == node.size else end // bs  # the last block reads zeros past the size
        recs: list = []
        edges: list[tuple[int, bytearray]] = []
        for block in sorted({offset // bs, (end - 1) // bs}):
            if lo <= block < hi or node.extents.lookup(block) is None:
                continue  # unmapped whole, or a hole already
            buf = bytearray(bs)
            self._read_block(node, block, memoryview(buf))
            start, stop = max(offset - block * bs, 0), min(end - block * bs, bs)
            buf[start:stop] = bytes(stop - start)
            edges.append((block, buf))
            recs.append(records.Data(node.ino, block, 1))
        if hi > lo and any(lba is not None for _, _, lba in node.extents.runs(lo, hi - lo)):
            recs.append(records.Punch(node.ino, lo, hi - lo))
        now = _now()
        recs.append(node.record(mtime_ns=now, ctime_ns=now))
        if not edges:
            self._log(*recs)
            return
        encoded = b"".join(records.encode(rec) for rec in recs)
        self.writer.room(Stream.HOT, self._pending_len + len(encoded), len(edges), least=len(edges))
        lba = self.writer.append(Stream.HOT, self._take_pending() + encoded, b"".join(buf for _, buf in edges))
        self.ns.apply_unit(recs, lba)
        self.user_blocks_written += len(edges)
        self._maybe_checkpoint()
