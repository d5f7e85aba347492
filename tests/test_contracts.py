"""The seams between layers: each implementation satisfies the Protocol of the layer above,
by name and signature, and the device contract holds in behaviour on every backend."""

from __future__ import annotations

import errno
import inspect
from typing import Protocol

import pytest

import zcsdfs
from zcsdfs.lfs import Device, mkfs, mount
from zcsdfs.vfs.filesystem import FileSystem
from zcsdfs.vfs.protocol import Vfs
from zcsdfs.zns import Geometry, ZonedDevice, ZoneState, open_device

GEOMETRY = Geometry(zones=4, zone_size=16, zone_capacity=12, block_size=4096)


def members(protocol: type[Protocol]) -> dict[str, inspect.Signature]:
    """The methods a Protocol declares, with their signatures."""
    return {name: inspect.signature(value) for name, value in vars(protocol).items()
            if callable(value) and not name.startswith("_")}


def mismatches(obj, protocol) -> list[str]:
    """Where ``obj`` does not provide what ``protocol`` declares: a missing method, or a
    parameter the protocol names that the implementation lacks or takes differently."""
    found = []
    for name, wanted in members(protocol).items():
        method = getattr(obj, name, None)
        if method is None:
            found.append(f"{name}: missing")
            continue
        have = inspect.signature(method).parameters
        for pname, param in list(wanted.parameters.items())[1:]:  # past self
            mine = have.get(pname)
            if mine is None:
                found.append(f"{name}: no parameter {pname}")
            elif (mine.kind is inspect.Parameter.KEYWORD_ONLY) != (param.kind is inspect.Parameter.KEYWORD_ONLY):
                found.append(f"{name}: {pname} is {mine.kind.description}, the protocol says {param.kind.description}")
            elif (mine.default is inspect.Parameter.empty) != (param.default is inspect.Parameter.empty):
                found.append(f"{name}: {pname} optional in one and not the other")
    return found


@pytest.fixture(params=["memory", "image"])
def device(request, tmp_path):
    if request.param == "memory":
        dev = ZonedDevice.memory(GEOMETRY)
    else:
        dev = ZonedDevice.create(tmp_path / "dev.zns", GEOMETRY)
    yield dev
    dev.close_device()


def test_devices_satisfy_the_lfs_device_protocol(device, tmp_path):
    assert isinstance(device, Device)
    assert mismatches(device, Device) == []


def test_a_read_only_image_device_satisfies_it_too(tmp_path):
    ZonedDevice.create(tmp_path / "ro.zns", GEOMETRY).close_device()
    with open_device(tmp_path / "ro.zns", readonly=True) as dev:
        assert isinstance(dev, Device) and dev.readonly and mismatches(dev, Device) == []


def test_the_device_contract(device):
    """What the lfs relies on, checked the same way on every backend."""
    bs, g = device.block_size, device.geometry
    assert bs == g.block_size and not device.readonly
    assert [z.state for z in device.report()] == [ZoneState.EMPTY] * g.zones
    block = lambda n: bytes([n]) * bs  # noqa: E731
    first = device.append(1, block(1) + block(2))
    assert first == g.zone_size and device.zone(1).write_pointer == first + 2
    assert device.zone(1).state is ZoneState.IMPLICIT_OPEN
    assert device.append(1, block(3)) == first + 2
    device.write(first + 3, block(4))
    with pytest.raises(OSError) as info:
        device.write(first + 7, block(5))  # not at the write pointer
    assert info.value.errno == errno.EIO
    assert device.read(first, 4) == block(1) + block(2) + block(3) + block(4)
    assert device.read(first + 4, 1) == bytes(bs)  # below capacity, unwritten: zeros
    assert device.read_bytes(first + 1, 10, 5) == block(2)[:5]
    buf = bytearray(2 * bs)
    device.read_into(first + 2, buf)
    assert bytes(buf) == block(3) + block(4)
    device.flush()
    device.finish(1)
    assert device.zone(1).state is ZoneState.FULL
    with pytest.raises(OSError):
        device.append(1, block(6))
    device.reset(1)
    assert (device.zone(1).state, device.zone(1).write_pointer) == (ZoneState.EMPTY, first)
    assert device.read(first, 1) == bytes(bs)
    device.append(2, block(7))
    device.reset_all()
    assert all(z.state is ZoneState.EMPTY for z in device.report())
    with pytest.raises(OSError) as info:
        device.append(0, block(8) * (g.zone_capacity + 1))  # past the zone's capacity
    assert device.zone(0).write_pointer == 0


def test_the_lfs_satisfies_the_vfs_file_system_protocol():
    device = ZonedDevice.memory("tiny")
    mkfs(device)
    fs = mount(device)
    assert isinstance(fs, FileSystem) and mismatches(fs, FileSystem) == []
    fs.unmount()
    ro = mount(device, readonly=True)
    assert isinstance(ro, FileSystem) and ro.readonly and mismatches(ro, FileSystem) == []


def test_the_vfs_satisfies_the_front_end_protocol():
    with zcsdfs.Volume.memory("tiny") as volume:
        assert isinstance(volume.vfs, Vfs) and mismatches(volume.vfs, Vfs) == []


def test_the_check_itself_finds_a_missing_method_and_a_wrong_parameter():
    class Partial:
        def getattr(self, inode):  # wrong name
            return None

    problems = mismatches(Partial(), FileSystem)
    assert "getattr: no parameter ino" in problems and "lookup: missing" in problems
    assert not isinstance(Partial(), FileSystem)


def test_hot_objects_keep_their_attributes_inline():
    """CPython keeps up to 29 instance attributes in a shared-key layout; one more and every
    attribute load on the object gets slower (the lfs's 4 KiB pwrite went 3.7 -> 4.1 us)."""
    with zcsdfs.Volume.memory("tiny") as volume:
        for obj in (volume.fs, volume.vfs, volume.device, volume):
            assert len(vars(obj)) < 30, type(obj).__name__
