"""Fault injection: media errors on read or write, zones going READ_ONLY or OFFLINE.

Upper layers test their error paths with it: a failed write leaves the zone
and its write pointer unchanged, as a Write Fault does on a real drive.
"""

from __future__ import annotations

from zcsdfs.zns.errors import MediaError
from zcsdfs.zns.zone import ZoneState


class FaultInjector:
    def __init__(self, device):
        self._device = device
        self._read_faults: list[list[int]] = []  # [first lba, end lba, times left (-1: forever)]
        self._write_faults: dict[int, int] = {}  # zone -> times left (-1: forever)

    @property
    def active(self) -> bool:
        return bool(self._read_faults or self._write_faults)

    def fail_reads(self, lba: int, nblocks: int = 1, times: int | None = 1) -> None:
        """Reads touching [lba, lba+nblocks) fail with EIO, ``times`` times (None: always)."""
        self._read_faults.append([lba, lba + nblocks, -1 if times is None else times])

    def fail_writes(self, zone: int, times: int | None = 1) -> None:
        """Writes and appends to ``zone`` fail with EIO, ``times`` times (None: always)."""
        self._write_faults[zone] = -1 if times is None else times

    def make_read_only(self, zone: int) -> None:
        self._device._force_state(zone, ZoneState.READ_ONLY)

    def make_offline(self, zone: int) -> None:
        self._device._force_state(zone, ZoneState.OFFLINE)

    def clear(self) -> None:
        self._read_faults.clear()
        self._write_faults.clear()

    def check_read(self, lba: int, nblocks: int) -> None:
        for fault in self._read_faults:
            first, end, left = fault
            if lba < end and first < lba + nblocks:
                self._spend(fault)
                raise MediaError("injected unrecovered read error", lba=max(lba, first))

    def check_write(self, zone: int, lba: int) -> None:
        left = self._write_faults.get(zone)
        if left is None:
            return
        if left > 0:
            left -= 1
            if left:
                self._write_faults[zone] = left
            else:
                del self._write_faults[zone]
        raise MediaError("injected write fault", zone=zone, lba=lba)

    def _spend(self, fault: list[int]) -> None:
        if fault[2] > 0:
            fault[2] -= 1
            if fault[2] == 0:
                self._read_faults.remove(fault)
