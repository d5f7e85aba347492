"""fsck: check every invariant of a file system image without changing it.

It replays the log in memory exactly as mount would (``recovery.replay``)
and then checks the result from scratch: extents inside written parts of
log zones and never sharing a block, valid-block counts equal to what the
extents reference (both the checkpoint's saved counts and the live ones),
no blocks mapped past the end of a file, the directory tree connected with
every inode reachable, and link counts right. Snapshots are checked the
same way; their references count towards the valid blocks of each zone.
The checkpoint's body chunks (which loading already checked against their
CRCs) must lie in zones the checkpoint keeps and share no block with a
file. Then the scrub: every block a file or snapshot maps is read and
checked against its data checksum, and each one failing is reported with
the file's path and offset.

What counts as an error (exit status 4, as fsck(8)'s "errors left
uncorrected"): anything above, a damaged superblock copy, a fallback to an
older checkpoint (the newer one's state is lost), a log unit after the
checkpoint failing its CRC (durable operations after it are lost), and a
zone GC marked damaged. What a crash leaves by design is a note: units
that were never made durable (after a sequence gap, or a multi-unit write
without its last unit) and orphans, which mount frees. A device that holds
no zcsdfs volume, or one of another format, is an operational error (8).
"""

from __future__ import annotations

import bisect
import itertools
import os
import stat

import attrs

from zcsdfs.lfs.directory import NAME_MAX
from zcsdfs.lfs.errors import FsError, NotZcsdfs, UnsupportedFormat
from zcsdfs.lfs.log import Role
from zcsdfs.lfs.namespace import ROOT_INO, Namespace
from zcsdfs.lfs.progress import Progress, Steps
from zcsdfs.lfs.recovery import replay
from zcsdfs.lfs.format import LOG_MAGICS
from zcsdfs.lfs.scan import Walk, read_unit, written_end


CLEAN, CORRECTED, UNCORRECTED, OPERATIONAL = 0, 1, 4, 8  # fsck(8)'s exit codes


@attrs.define
class FsckReport:
    """What fsck found. ``exit_code`` follows fsck(8): 0 clean, 4 errors left, 8 operational error.

    fsck only reads, so it never corrects anything and never answers 1
    (as ``e2fsck -n``); mount's own repairs (orphans freed, a torn log
    tail dropped) are expected after a crash and are notes, not errors.
    """

    errors: list[str] = attrs.Factory(list)
    notes: list[str] = attrs.Factory(list)  # what a crash leaves (orphans, units after a gap): not errors
    inodes: int = 0
    files: int = 0
    directories: int = 0
    valid_blocks: int = 0
    snapshots: int = 0
    scrubbed_blocks: int = 0  # data blocks read and checked against their checksums
    damaged: list = attrs.Factory(list)  # (path, file offset) of every block failing its checksum
    operational: str | None = None  # why nothing could be checked (not a zcsdfs volume, another format)
    _seen: set = attrs.field(factory=set, repr=False)

    @property
    def clean(self) -> bool:
        return not self.errors and self.operational is None

    @property
    def exit_code(self) -> int:
        if self.operational is not None:
            return OPERATIONAL
        return UNCORRECTED if self.errors else CLEAN

    def error(self, message: str) -> None:
        """Record a problem once, however many checks find it."""
        if message not in self._seen:
            self._seen.add(message)
            self.errors.append(message)


def fsck(device, scrub: bool = True, progress: Progress | None = None) -> FsckReport:
    """Check the file system on ``device``; ``report.clean`` is True when nothing is wrong.

    ``scrub`` reads every block a file or snapshot maps and checks it
    against its checksum (the metadata checks read only metadata).
    ``progress`` is called as ``progress.py`` says: reading the checkpoint
    and log counts one, each metadata check one, then every data block
    verified and every log zone scrubbed one each.
    """
    report = FsckReport()
    steps = Steps(progress, 1)
    steps.advance(0, "reading the checkpoint and the log")
    try:
        r = replay(device)
    except (NotZcsdfs, UnsupportedFormat) as e:
        report.operational = e.strerror
        return report
    except FsError as e:
        report.error(f"cannot replay: {e.strerror}")
        return report
    for message in r.damage:
        report.error(message)
    report.notes.extend(m for m in r.messages if m not in r.damage)
    ns = r.ns
    trees = [ns] + [snap for _, snap in r.snapshots.values()]
    steps.grow(4 + (sum(node.extents.blocks for tree in trees for node in tree.inodes.values() if node.is_reg)
                    + sum(r.role(zone) is not Role.FREE for zone in r.table) if scrub else 0))
    steps.advance(1, "checking the metadata")
    _check_checkpoint_counts(r, report)
    _check_body(r, device, report)
    steps.advance(1, "checking the metadata")
    _check_extents(ns, r, device, report)
    steps.advance(1, "checking the metadata")
    _check_tree(ns, report)
    steps.advance(1, "checking the metadata")
    for name, (_, snap) in r.snapshots.items():
        snap_report = FsckReport()
        _check_tree(snap, snap_report)
        for e in snap_report.errors:
            report.error(f"snapshot {name!r}: {e}")
    for zone, rec in sorted(r.table.items()):
        if rec.damaged and r.role(zone) is not Role.FREE:
            report.error(f"zone {zone} is damaged: GC found live blocks there failing their checksums")
    if scrub:
        _scrub(r, device, report, steps)
        _scrub_log(r, device, report, steps)
    steps.finish("checked")
    report.inodes = len(ns.inodes)
    report.snapshots = len(r.snapshots)
    return report


SCRUB_BLOCKS = 256  # blocks read and checked at a time


def _paths(ns: Namespace) -> dict[int, str]:
    """A path for every inode reachable from the root (the first name found for a hard link)."""
    paths = {ROOT_INO: "/"}
    stack = [ROOT_INO]
    while stack:
        d = ns.inodes.get(stack.pop())
        if d is None or not d.is_dir:
            continue
        base = paths[d.ino].rstrip("/")
        for name, child in d.entries.items():
            if child not in paths:
                paths[child] = f"{base}/{name}"
                stack.append(child)
    return paths


def _scrub(r, device, report: FsckReport, steps: Steps) -> None:
    """Read every block a tree maps and check it against its checksum; name each damaged file and offset.

    A block several trees share (a snapshot's) is read once, and reported for each file mapping it.
    """
    g = device.geometry
    bs = g.block_size
    sums = r.ns.sums
    verdict: dict[int, bool] = {}  # lba -> good, for blocks a snapshot may share (only with snapshots)
    shared = bool(r.snapshots)
    trees = [("", r.ns)] + [(f"snapshot {name!r}: ", snap) for name, (_, snap) in r.snapshots.items()]
    buf = memoryview(bytearray(SCRUB_BLOCKS * bs))
    for where, ns in trees:
        paths = None
        for node in ns.inodes.values():
            if not node.is_reg:
                continue
            for first, lba, count in node.extents:
                if lba // g.zone_size in r.sb.checkpoint_zones:
                    steps.advance(count, "verifying data blocks")
                    continue  # reported by the extent checks
                for at in range(0, count, SCRUB_BLOCKS):
                    n = min(SCRUB_BLOCKS, count - at)
                    steps.advance(n, "verifying data blocks")
                    start = lba + at
                    if shared and all(start + i in verdict for i in range(n)):
                        bad = [i for i in range(n) if not verdict[start + i]]
                    else:
                        bad = _check_run(device, sums, start, buf[:n * bs])
                        report.scrubbed_blocks += n
                        if shared:
                            verdict.update((start + i, i not in bad) for i in range(n))
                    if not bad:
                        continue
                    if paths is None:
                        paths = _paths(ns)
                    path = paths.get(node.ino, f"<inode {node.ino}, unreachable>")
                    for i in bad:
                        offset = (first + at + i) * bs
                        report.damaged.append((where + path, offset))
                        report.error(f"{where}{path} (inode {node.ino}): data block at offset {offset} "
                                     f"(LBA {start + i}) fails its CRC32C checksum")


def _scrub_log(r, device, report: FsckReport, steps: Steps) -> None:
    """Walk every sealed and head log zone and check each frame's CRC32C: a damaged unit header, or
    an old body chunk, loses no data while the checkpoint maps the blocks, but it is damage all the
    same. So every written block of a kept log zone is checked by something."""
    for zone in sorted(r.table):  # (a zone the checkpoint does not name is FREE)
        role = r.role(zone)
        if role is Role.FREE:
            continue  # garbage awaiting a reset, or log after the checkpoint (replay checked it)
        steps.advance(1, "verifying the log")
        start = device.zone(zone).start
        # up to where the checkpoint saw whole frames: a head zone's log after that is replay's to check,
        # and a zone sealed after a crash ends where the torn frame starts
        end = min(start + r.table[zone].written, written_end(device, zone))
        walk = Walk(device, r.sb.uuid, LOG_MAGICS, start, end)
        for lba, header in walk:
            if read_unit(device, lba, header) is None:  # a unit, or a checkpoint body chunk
                report.error(f"zone {zone}: frame at LBA {lba} fails its CRC32C")
        if walk.stop < end and walk.reason is not None and "torn" in walk.reason:
            report.notes.append(f"zone {zone}: {walk.reason} at LBA {walk.stop}")
        elif walk.stop < end and (walk.reason != "no frame header" or any(device.read(walk.stop, 1))):
            report.error(f"zone {zone}: the walk of its frames stops at LBA {walk.stop} ({walk.reason}) "
                         f"before its written end {end}")


def _check_run(device, sums, lba: int, view: memoryview) -> list[int]:
    """Indexes of the blocks read from ``lba`` into ``view`` that fail their checksums."""
    try:
        device.read_into(lba, view)
    except OSError:
        return list(range(view.nbytes // device.block_size))  # unreadable: the extent checks say why
    return [] if sums.ok(lba, view) else sums.bad(lba, view)


def _check_checkpoint_counts(r, report: FsckReport) -> None:
    """The valid counts a checkpoint saved must equal those its own extents give."""
    image_valid = r.loaded.image_valid
    for zone, rec in r.table.items():
        if rec.valid != image_valid[zone]:
            report.error(f"checkpoint {r.loaded.generation} saves {rec.valid} valid blocks for zone "
                                 f"{zone}, its extents reference {image_valid[zone]}")


def _check_body(r, device, report: FsckReport) -> None:
    """Body chunks lie in zones the checkpoint keeps (not FREE ones) and overlap no file's blocks."""
    g = device.geometry
    trees = [("", r.ns)] + [(f"snapshot {name!r}: ", snap) for name, (_, snap) in r.snapshots.items()]
    extents = sorted((lba, count, node.ino) for _, ns in trees for node in ns.inodes.values() if node.is_reg
                     for _, lba, count in node.extents)
    starts = [lba for lba, _, _ in extents]
    for where, ns in trees:
        for chunks in ns.chunks.values():
            for chunk in chunks:
                zone = chunk.lba // g.zone_size
                if r.role(zone) is Role.FREE:
                    report.error(f"{where}body chunk of group {chunk.group} at LBA {chunk.lba} lies in "
                                         f"zone {zone}, which the checkpoint records as free")
                i = max(bisect.bisect_right(starts, chunk.lba) - 1, 0)
                for lba, count, ino in extents[i:]:
                    if lba >= chunk.lba + chunk.blocks:
                        break
                    if lba + count > chunk.lba:
                        report.error(f"{where}body chunk of group {chunk.group} at LBA {chunk.lba} "
                                             f"shares blocks with inode {ino}")


def _check_extents(ns: Namespace, r, device, report: FsckReport) -> None:
    g = device.geometry
    valid = [0] * g.zones
    ends = list(range(0, g.blocks, g.zone_size))  # a zone never written ends at its start
    for z in device.report_used():
        ends[z.index] = min(z.write_pointer, z.start + z.capacity)
    report.files = sum(node.is_reg for node in ns.inodes.values())
    _check_tree_extents(ns, "", r, g, ends, valid, report)
    for name, (_, snap) in r.snapshots.items():
        _check_tree_extents(snap, f"snapshot {name!r}: ", r, g, ends, valid, report)
    for zone in range(g.zones) if valid != ns.valid else ():
        if valid[zone] != ns.valid[zone]:
            report.error(f"zone {zone} counts {ns.valid[zone]} valid blocks, extents reference "
                                 f"{valid[zone]}")
    report.valid_blocks = sum(valid)


def _check_tree_extents(ns: Namespace, where: str, r, g, ends, valid: list[int], report: FsckReport) -> None:
    """One tree's extents: inside written log zones, within file sizes, no block mapped twice.

    Adds the tree's references to ``valid``: trees may share blocks, and each reference counts.
    """
    bs = g.block_size
    used: list[tuple[int, int, int]] = []
    mine = [0] * g.zones
    for node in ns.inodes.values():
        if not node.is_reg:
            continue
        last = -(-node.size // bs)
        if node.extents.end() > last:
            report.error(f"{where}inode {node.ino} maps block {node.extents.end() - 1} past its size "
                                 f"{node.size}")
        blocks = 0
        for first, lba, count in node.extents:
            blocks += count
            used.append((lba, count, node.ino))
            for zone in range(lba // g.zone_size, (lba + count - 1) // g.zone_size + 1):
                lo = max(lba, zone * g.zone_size)
                hi = min(lba + count, (zone + 1) * g.zone_size)
                if zone in r.sb.checkpoint_zones:
                    report.error(f"{where}inode {node.ino} block {first} maps into checkpoint zone {zone}")
                elif hi > ends[zone]:
                    report.error(f"{where}inode {node.ino} maps LBAs {lo}..{hi - 1} beyond the written "
                                         f"end {ends[zone]} of zone {zone}")
                mine[zone] += hi - lo
        if blocks != node.extents.blocks:
            report.error(f"{where}inode {node.ino} counts {node.extents.blocks} blocks, its extents "
                                 f"hold {blocks}")
    used.sort()
    for (a, n, ino), (b, _, other) in zip(used, used[1:]):
        if a + n > b:
            report.error(f"{where}inodes {ino} and {other} both map LBA {b}")
    for zone in itertools.compress(range(g.zones), mine):  # (the zones this tree references)
        if mine[zone] > g.zone_capacity:
            report.error(f"{where}zone {zone} has {mine[zone]} valid blocks, more than its capacity")
        valid[zone] += mine[zone]


def _check_tree(ns: Namespace, report: FsckReport) -> None:
    inodes = ns.inodes
    root = inodes.get(ROOT_INO)
    if root is None or not root.is_dir:
        report.error("the root directory is missing")
        return
    links = {ino: 0 for ino in inodes}
    subdirs = {ino: 0 for ino in inodes}
    seen = {ROOT_INO}
    stack = [root]
    while stack:
        d = stack.pop()
        report.directories += 1
        for name, child in d.entries.items():
            raw = os.fsencode(name)
            if not raw or len(raw) > NAME_MAX or b"/" in raw or b"\0" in raw or name in (".", ".."):
                report.error(f"directory {d.ino} holds an invalid name {name!r}")
            node = inodes.get(child)
            if node is None:
                report.error(f"entry {name!r} in directory {d.ino} names missing inode {child}")
                continue
            links[child] += 1
            if node.is_dir:
                subdirs[d.ino] += 1
                if child in seen:
                    report.error(f"directory {child} is reachable twice (via {name!r} in {d.ino})")
                    continue
                if node.parent != d.ino:
                    report.error(f"directory {child} records parent {node.parent}, is in {d.ino}")
                stack.append(node)
            seen.add(child)
    for ino, node in inodes.items():
        if ino not in seen:
            if node.nlink == 0:
                report.notes.append(f"inode {ino} is an orphan (removed while open); mount frees it")
            else:
                report.error(f"inode {ino} is not reachable from the root")
            continue
        expected = 2 + subdirs[ino] if node.is_dir else links[ino]
        if node.nlink != expected:
            report.error(f"inode {ino} has link count {node.nlink}, expected {expected}")
        if node.is_symlink and node.size != len(os.fsencode(node.target)):
            report.error(f"symbolic link {ino} has size {node.size} for a target of "
                                 f"{len(os.fsencode(node.target))} bytes")
        if stat.S_IFMT(node.mode) == 0:
            report.error(f"inode {ino} has no file type")
