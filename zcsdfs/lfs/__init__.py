"""The log-structured file system on zones: inodes, extents, log writer, checkpoints, recovery, GC.

Layout (on-disk format 3; format 2 volumes are read too). Zones 0 and 1 are checkpoint zones: each
starts with a copy of the superblock (``superblock.py``; mkfs writes both,
and mount uses either when the other is damaged) followed by checkpoints
appended one after another. Every other zone is a log zone. Every write is
an append; nothing is ever written in place. Images of format 1 (before
data checksums) are refused with a message saying so.

Log units (``format.py``, ``log.py``). A unit is one append: a header block
(magic, version, fs uuid, global sequence number, flags, stream, lengths,
and a CRC32C covering the whole unit) followed by metadata records and then
data blocks. The records (``records.py``) say what changed: inode
attributes, directory entries, extended attributes, truncations, and for
data blocks ``Data(ino, first file block, count)``, whose blocks are the
unit's data in order, so the header doubles as GC's reverse map. Four
streams (metadata, hot data, cold data, GC) each have a head zone, within
the device's active-zone limit less one for the checkpoint zone. One
operation is one unit, except a write too large for one (over 1024 blocks,
or past the room left in a zone): its units are all flagged CONTINUED but
the last, and are applied together or not at all.

Data checksums (``checksums.py``). Every data block has a CRC32C, as on
btrfs and ZFS, kept with the metadata rather than beside the data: in
memory a table by LBA (shared by snapshots and frozen views), in the log
implied by the unit (its CRC is taken over its header seeded with the data's
checksum chain), in checkpoints in the ``Map`` records of the extents. The
values are chained within a unit (each continues the CRC32C of the block
before it), so one CRC32C call checks a whole run of blocks. Every block
read from the device is checked: file reads, read-modify-write of partial
blocks, snapshots, frozen views (what CSD kernels read), GC relocation and
fsck's scrub. A mismatch fails the read with EIO and logs the inode and
file offset on the ``zcsdfs.lfs`` logger. Metadata (unit headers, records,
checkpoint roots and body chunks, the superblock) has its own CRC32Cs.

Checkpoints (``checkpoint.py``). A checkpoint is a small root frame in a
checkpoint zone plus a body in the log. The root holds counters (next
sequence number, next inode number), the role (HEAD of a stream, SEALED),
written blocks and valid blocks of each log zone that is not free and empty
(or, for a large table, chunks in the log holding the sealed zones' records),
and a list of body chunks (LBA, blocks, CRC32C). The body is the metadata image, every
inode, entry, extent and extended attribute, in groups of 256 inode
numbers, each group one or more chunk frames on the metadata stream; a
checkpoint rewrites only the groups changed since the last one, and a
small volume keeps its whole image inline in the root. So the image may be
any size; zones holding live chunks are never reset, and GC moves them
like data. The two checkpoint zones are used in turn; the one with the
latest root is never reset. Checkpoints are taken at mount, at unmount,
after about one zone of log, and when space runs low; each is preceded
and followed by a flush.

Recovery (``recovery.py``). Mount loads the newest checkpoint whose root
and chunks pass their CRCs (falling back to older ones with a warning, but
never to one whose zones were reset since; ``fsck`` reports a fallback as an
error, since what the newer checkpoint held is lost), then reads the log
written after it (HEAD zones from their recorded positions, FREE zones from
their start) and replays units in sequence order from the checkpoint's next
sequence number, stopping at the first gap or damaged unit and dropping a
CONTINUED group whose last unit is missing. It never reads more than the
log since the last checkpoint.

Space (``gc.py``). Valid-block counts per zone follow every extent change;
a checkpoint frees sealed zones with none. When data would dip into the
reserve (one free zone, kept for metadata and GC), a checkpoint and then
GC run: a victim chosen by the mount's policy (greedy: fewest valid blocks;
cost-benefit: Sprite LFS's ``(1-u) * age / (1+u)``, age from the sequence
number of the zone's last unit, saved in the checkpoint) has its live
blocks (found through its unit headers) copied to the GC stream, a
checkpoint is made durable, then the zone is reset. A device full of live
data answers ENOSPC and stays consistent and mountable. A victim whose unit
header fails its CRC has its live blocks found through the extent maps
instead; a live block failing its checksum is left in place (logged with
its inode and offset), the rest move, and the zone is marked damaged
(saved in checkpoints, ``FileSystem.damaged_zones``, ``DiskUsage``,
``fsck``): GC never picks it again and goes on with other victims. It is
freed once nothing references its bad blocks.

Snapshots (``snapshot.py``) are copies of the metadata saved after the
live image in every checkpoint; their references count in the per-zone
valid blocks, and GC moves each shared block once, remapping every tree
(``Kept`` records carry blocks only snapshots reference). Frozen views
(``frozen.py``) pin one file's blocks in memory for CSD kernels: GC skips
and checkpoints never reset a zone a view pins. ``usage.py`` reads space
accounting without mounting (``zcsdfs df``); the CLI is ``zcsdfs.cli.lfs``.

What is durable when (the promises a program can rely on):

- ``fsync``/``fdatasync`` of a file: its data, size and attributes, and
  every operation completed before the call, on any file.
- ``fsync`` of a directory: its entries (and, as above, everything before).
- ``sync()`` and ``unmount()``: everything.
- ``rename`` is atomic: after a crash the target names the old or the new
  file, never neither; every operation is atomic in this sense.
- ``write`` is atomic too, whatever its size: after a crash a file holds
  all of one write's bytes (with the size and times it set) or none of
  them. A write logged as several units is applied only with its last
  unit, and no checkpoint is taken in between. The one exception is a
  write that runs out of space part way: it returns short, and the part
  it reports written is what a crash keeps or drops as one.
- After a crash the file system holds exactly the effects of some prefix
  of the operations performed, at least up to the last fsync or sync.
"""

from zcsdfs.lfs.device import Device
from zcsdfs.lfs.errors import Corrupted, FsError, NotZcsdfs
from zcsdfs.lfs.filesystem import FileSystem
from zcsdfs.lfs.fsck import FsckReport, fsck
from zcsdfs.lfs.mkfs import mkfs


def mount(device: Device, gc_policy: str = "greedy", *, readonly: bool | None = None) -> FileSystem:
    """Mount the file system on ``device``: recover, then write a fresh checkpoint.

    ``gc_policy`` picks foreground GC's victims: a name in ``gc.POLICIES`` ("greedy" or
    "cost-benefit"); another is EINVAL naming them.
    ``readonly`` (the default on a read-only device) recovers in memory, writes
    nothing and refuses every change with EROFS (``readonly.py``).
    """
    if readonly is None:
        readonly = getattr(device, "readonly", False)
    if readonly:
        from zcsdfs.lfs.readonly import ReadOnlyFileSystem
        return ReadOnlyFileSystem(device, gc_policy)
    return FileSystem(device, gc_policy)


__all__ = ["Device", "mkfs", "mount", "fsck", "FileSystem", "FsckReport", "FsError", "Corrupted", "NotZcsdfs"]
