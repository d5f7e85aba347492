"""A guest's memory as the vhost-user front end shares it: regions mapped from passed descriptors.

The front end (QEMU) sends a table of regions, each a guest-physical range,
the front end's own virtual address for it (rings are given in those
addresses) and a descriptor with an offset to map. Every address a guest
hands us goes through ``view``/``user_view``, which give a memoryview only
when the whole range lies inside mapped regions, so nothing the guest writes
in a ring can make us touch memory outside them.
"""

from __future__ import annotations

import errno
import logging
import mmap
import os

import attrs

log = logging.getLogger(__name__)

MAX_REGIONS = 8  # VHOST_MEMORY_BASELINE_NREGIONS: what SET_MEM_TABLE can carry
MAX_MEM_SLOTS = 32  # what we offer through CONFIGURE_MEM_SLOTS


class GuestMemoryError(OSError):
    """A guest address or length that is not inside the guest's memory."""

    def __init__(self, message: str):
        super().__init__(errno.EFAULT, message)


@attrs.define(eq=False)
class Region:
    """One mapped region: guest-physical ``gpa`` .. ``gpa + size``, front-end address ``uaddr``."""

    gpa: int
    size: int
    uaddr: int
    mapping: mmap.mmap
    view: memoryview  # exactly the region's bytes within ``mapping``

    def close(self) -> bool:
        """Unmap; False (and the mapping left to the garbage collector) if a view of it is still held."""
        self.view.release()
        try:
            self.mapping.close()
        except BufferError:
            log.error("guest memory region at %#x still in use; unmapped when released", self.gpa)
            return False
        return True


def map_region(fd: int, gpa: int, size: int, uaddr: int, offset: int) -> Region:
    """Map ``size`` bytes of ``fd`` from ``offset``; the descriptor may be closed afterwards."""
    for name, value in (("guest address", gpa), ("size", size), ("user address", uaddr), ("offset", offset)):
        if not 0 <= value < 1 << 64:
            raise GuestMemoryError(f"memory region {name} {value:#x} out of range")
    if size == 0 or gpa + size > 1 << 64 or uaddr + size > 1 << 64:
        raise GuestMemoryError(f"memory region of {size:#x} bytes at {gpa:#x} is empty or wraps")
    try:
        length = os.fstat(fd).st_size
    except OSError as exc:
        raise GuestMemoryError(f"memory region descriptor unusable: {exc.strerror}") from None
    if offset + size > length:
        raise GuestMemoryError(f"memory region {offset:#x}+{size:#x} past the end of its file ({length:#x})")
    start = offset - offset % mmap.ALLOCATIONGRANULARITY
    mapping = mmap.mmap(fd, size + offset - start, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE,
                        offset=start)
    view = memoryview(mapping)[offset - start:offset - start + size]
    return Region(gpa, size, uaddr, mapping, view)


class GuestMemory:
    """The current memory table. Not thread-safe for changes: the device quiesces its queues first."""

    def __init__(self, regions: list[Region] | None = None):
        self.regions: list[Region] = list(regions or [])

    def add(self, region: Region) -> None:
        for other in self.regions:
            if region.gpa < other.gpa + other.size and other.gpa < region.gpa + region.size:
                region.close()
                raise GuestMemoryError(f"memory region at {region.gpa:#x} overlaps the one at {other.gpa:#x}")
        self.regions.append(region)
        self.regions.sort(key=lambda r: r.gpa)

    def remove(self, gpa: int, size: int, uaddr: int) -> bool:
        for region in self.regions:
            if (region.gpa, region.size, region.uaddr) == (gpa, size, uaddr):
                self.regions.remove(region)
                region.close()
                return True
        return False

    def close(self) -> None:
        """Unmap every region."""
        regions, self.regions = self.regions, []
        for region in regions:
            region.close()

    def _find(self, addr: int, length: int, key) -> list[memoryview]:
        if length < 0 or addr < 0:
            raise GuestMemoryError(f"negative address or length {addr:#x}+{length:#x}")
        views, end = [], addr + length
        while True:
            for region in self.regions:
                start = key(region)
                if start <= addr < start + region.size:
                    stop = min(end, start + region.size)
                    views.append(region.view[addr - start:stop - start])
                    addr = stop
                    break
            else:
                raise GuestMemoryError(f"guest range {addr:#x}+{end - addr:#x} is outside guest memory")
            if addr >= end:
                return views

    def spans(self, gpa: int, length: int) -> list[tuple[Region, int, int]]:
        """The guest-physical range as (region, start, end) offsets into each region it covers
        (more than one where it crosses adjacent regions); checked as ``view`` checks."""
        if length <= 0 or gpa < 0:
            if length == 0 and gpa >= 0:
                return []
            raise GuestMemoryError(f"negative address or length {gpa:#x}+{length:#x}")
        for region in self.regions:  # the common case: wholly inside one region
            start = gpa - region.gpa
            if 0 <= start and start + length <= region.size:
                return [(region, start, start + length)]
        found, addr, end = [], gpa, gpa + length
        while addr < end:
            for region in self.regions:
                if region.gpa <= addr < region.gpa + region.size:
                    stop = min(end, region.gpa + region.size)
                    found.append((region, addr - region.gpa, stop - region.gpa))
                    addr = stop
                    break
            else:
                raise GuestMemoryError(f"guest range {addr:#x}+{end - addr:#x} is outside guest memory")
        return found

    def view(self, gpa: int, length: int) -> list[memoryview]:
        """The guest-physical range as views (more than one where it crosses adjacent regions)."""
        if length == 0:
            return []
        return self._find(gpa, length, lambda r: r.gpa)

    def user_view(self, uaddr: int, length: int) -> memoryview:
        """A range given in the front end's addresses (the rings'), which must lie in one region."""
        views = self._find(uaddr, length, lambda r: r.uaddr)
        if len(views) != 1:
            raise GuestMemoryError(f"ring at {uaddr:#x}+{length:#x} crosses memory regions")
        return views[0]

    def user_to_gpa(self, uaddr: int) -> int:
        for region in self.regions:
            if region.uaddr <= uaddr < region.uaddr + region.size:
                return region.gpa + uaddr - region.uaddr
        raise GuestMemoryError(f"front-end address {uaddr:#x} is outside guest memory")
