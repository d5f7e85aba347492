"""The shape of a zoned namespace: block size, zones, capacity, resource limits."""

from __future__ import annotations

import attrs

from zcsdfs.zns.errors import InvalidField

MiB = 1 << 20


def _positive(instance, attribute, value):
    if value <= 0:
        raise InvalidField(f"{attribute.name} must be positive, not {value}")


def _not_negative(instance, attribute, value):
    if value < 0:
        raise InvalidField(f"{attribute.name} must be 0 (unlimited) or positive, not {value}")


@attrs.frozen
class Geometry:
    """Sizes are in logical blocks; ``max_open``/``max_active`` of 0 mean unlimited."""

    zones: int = attrs.field(validator=_positive)
    zone_size: int = attrs.field(validator=_positive)
    zone_capacity: int = attrs.field(validator=_positive)
    block_size: int = 4096
    max_open: int = attrs.field(default=0, validator=_not_negative)
    max_active: int = attrs.field(default=0, validator=_not_negative)

    def __attrs_post_init__(self):
        bs = self.block_size
        if not 512 <= bs <= 65536 or bs & (bs - 1):
            raise InvalidField(f"block size must be a power of two from 512 to 65536, not {bs}")
        if self.zone_capacity > self.zone_size:
            raise InvalidField(
                f"zone capacity ({self.zone_capacity} blocks) exceeds zone size ({self.zone_size} blocks)")
        if self.max_open and self.max_active and self.max_open > self.max_active:
            raise InvalidField(
                f"max open zones ({self.max_open}) exceeds max active zones ({self.max_active})")

    @property
    def blocks(self) -> int:
        """Number of LBAs in the namespace (zone size times zones)."""
        return self.zones * self.zone_size

    @property
    def capacity_bytes(self) -> int:
        """Bytes that can actually be written (zone capacity times zones)."""
        return self.zones * self.zone_capacity * self.block_size

    @classmethod
    def preset(cls, name: str, **overrides) -> "Geometry":
        try:
            fields = dict(PRESETS[name])
        except KeyError:
            raise InvalidField(f"unknown geometry preset {name!r} (known: {', '.join(PRESETS)})") from None
        fields.update(overrides)
        return cls(**fields)


PRESETS: dict[str, dict[str, int]] = {
    # Small enough for exhaustive tests; capacity < size and tight limits
    # exercise every corner of the state machine.
    "tiny": dict(zones=16, zone_size=64, zone_capacity=48, block_size=4096, max_open=4, max_active=6),
    # QEMU's emulated ZNS NVMe defaults: 128 MiB zones, capacity = size, no limits.
    "qemu": dict(zones=32, zone_size=128 * MiB // 4096, zone_capacity=128 * MiB // 4096, block_size=4096),
    # Western Digital Ultrastar DC ZN540: 2048 MiB zones of which 1077 MiB are
    # writable, 14 open and 14 active. The zone count is a slice of the drive.
    "zn540": dict(zones=32, zone_size=2048 * MiB // 4096, zone_capacity=1077 * MiB // 4096,
                  block_size=4096, max_open=14, max_active=14),
}
