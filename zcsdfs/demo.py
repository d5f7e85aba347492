"""``zcsdfs demo``: the main job on the embedded default device.

It creates the default device when missing and shows its zones; later
layers grow it into a tour of the file system and its CSD kernels.
"""

from __future__ import annotations

from zcsdfs.cli import subcommand


def register(sub) -> None:
    subcommand(sub, "demo", "run the demo on the embedded default device", cmd_demo)


def cmd_demo(args) -> int:
    from zcsdfs.zns import ZonedDevice
    from zcsdfs.zns.commands import console, ensure_default_device, show_info, zone_table

    path = ensure_default_device()
    with ZonedDevice.open(path) as device:
        show_info(device)
        console.print(zone_table(device))
    return 0
