"""Victim selection: greedy against cost-benefit, the zone ages behind it, and ``zcsdfs gc``."""

from __future__ import annotations

import errno

import pytest

from tests.lfs.clirun import run
from zcsdfs.lfs import filesystem, fsck, gc, mkfs, mount, records
from zcsdfs.lfs.gc import cost_benefit_victim, greedy_victim
from zcsdfs.lfs.log import Role
from zcsdfs.zns import Geometry, ZonedDevice

BS = 4096
CAPACITY = 64
GEOMETRY = Geometry(zones=12, zone_size=CAPACITY, zone_capacity=CAPACITY, block_size=BS)


def zone_of(fs, ino: int, block: int) -> int:
    return fs.ns.inodes[ino].extents.lookup(block) // CAPACITY


def old_full_and_young_empty(policy: str = "greedy", device=None):
    """An old zone 69% valid and a young one 48% valid, each written by one file.

    Between the two, 60 metadata units age the old zone. Returns the
    device, the mounted file system, the old zone and the young zone.
    """
    device = device or ZonedDevice.memory(GEOMETRY)
    mkfs(device)
    fs = mount(device, gc_policy=policy)
    old = fs.create(fs.ROOT, "old")
    fs.write(old, 0, b"o" * (CAPACITY - 1) * BS)  # one header block and the data fill a zone
    fs.write(old, 0, b"O" * 19 * BS)
    for i in range(60):
        fs.setattr(old, mode=0o600 + i % 2)
        fs.fsync(old)
    young = fs.create(fs.ROOT, "young")
    fs.write(young, 0, b"y" * (CAPACITY - 1) * BS)
    fs.write(young, 0, b"Y" * 32 * BS)
    fs.checkpoint()  # frees sealed zones without valid blocks, which either policy would take first
    old_zone, young_zone = zone_of(fs, old, CAPACITY - 2), zone_of(fs, young, CAPACITY - 2)
    assert old_zone != young_zone
    assert (fs.ns.valid[old_zone], fs.ns.valid[young_zone]) == (CAPACITY - 1 - 19, CAPACITY - 1 - 32)
    return device, fs, old_zone, young_zone


def contents_intact(fs) -> None:
    old, young = fs.lookup(fs.ROOT, "old"), fs.lookup(fs.ROOT, "young")
    assert fs.read(old, 0, CAPACITY * BS) == b"O" * 19 * BS + b"o" * (CAPACITY - 1 - 19) * BS
    assert fs.read(young, 0, CAPACITY * BS) == b"Y" * 32 * BS + b"y" * (CAPACITY - 1 - 32) * BS


def test_victims_differ_between_policies():
    _, fs, old_zone, young_zone = old_full_and_young_empty()
    assert greedy_victim(fs) == young_zone
    assert cost_benefit_victim(fs) == old_zone


@pytest.mark.parametrize("policy", ["greedy", "cost-benefit"])
def test_gc_cleans_the_zone_its_policy_prefers(policy):
    device, fs, old_zone, young_zone = old_full_and_young_empty()
    assert fs.gc(1, policy=policy) == 1
    cleaned, kept = (young_zone, old_zone) if policy == "greedy" else (old_zone, young_zone)
    assert fs.writer.role[cleaned] is Role.FREE
    assert fs.writer.role[kept] is Role.SEALED
    contents_intact(fs)
    assert fsck(device).clean
    contents_intact(mount(device))


@pytest.mark.parametrize("policy", ["greedy", "cost-benefit"])
def test_mount_option_picks_foreground_victims(policy, monkeypatch):
    """Filling the device makes foreground GC run; its first victim follows the mount's policy."""
    device, fs, old_zone, young_zone = old_full_and_young_empty(policy)
    victims = []

    def collect(fs, zone):
        victims.append(zone)
        return gc.collect(fs, zone)

    monkeypatch.setattr(filesystem, "collect", collect)
    filler = fs.create(fs.ROOT, "filler")
    fs.write(filler, 0, b"f" * len(fs.writer.free_zones()) * CAPACITY * BS)
    assert victims[0] == (young_zone if policy == "greedy" else old_zone)
    contents_intact(fs)
    assert fsck(device).clean


def test_unknown_policy_is_einval():
    device = ZonedDevice.memory(GEOMETRY)
    mkfs(device)
    with pytest.raises(OSError) as info:
        mount(device, gc_policy="oldest")
    assert info.value.errno == errno.EINVAL
    fs = mount(device)
    with pytest.raises(OSError) as info:
        fs.gc(1, policy="random")
    assert info.value.errno == errno.EINVAL and "cost-benefit" in str(info.value)


def test_zone_ages_survive_checkpoints_and_roll_forward():
    device, fs, old_zone, young_zone = old_full_and_young_empty()
    later = fs.create(fs.ROOT, "later")
    fs.write(later, 0, b"l" * 3 * BS)  # logged after the checkpoint: recovered by roll-forward
    fs.sync()
    modified = dict(fs.writer.modified)
    assert modified[old_zone] < modified[young_zone] < fs.writer.next_seq
    remounted = mount(device)  # a crash: no unmount
    assert remounted.writer.modified == modified


def test_version_1_zone_records_read_as_oldest():
    v1 = bytes((records.ZONE,)) + records.KINDS[records.ZONE].body.pack(5, Role.SEALED, 2, CAPACITY, 10)
    assert list(records.decode(v1, "test")) == [records.ZoneRecord(5, Role.SEALED, 2, CAPACITY, 10, 0)]
    v2 = bytes((records.ZONE_V2,)) + records.KINDS[records.ZONE_V2].body.pack(5, Role.SEALED, 2, CAPACITY, 10, 1234)
    assert list(records.decode(v2, "test")) == [records.ZoneRecord(5, Role.SEALED, 2, CAPACITY, 10, 1234, 0)]
    v3 = records.ZoneRecord(5, Role.SEALED, 2, CAPACITY, 10, 1234, 1)
    assert records.encode(v3)[0] == records.ZONE_V3
    assert list(records.decode(records.encode(v3), "test")) == [v3]


@pytest.mark.parametrize("policy", ["greedy", "cost-benefit"])
def test_cli_gc_cleans_and_fsck_stays_clean(tmp_path, capsys, policy):
    path = tmp_path / "dev.zns"
    with ZonedDevice.create(path, GEOMETRY) as device:
        _, fs, old_zone, young_zone = old_full_and_young_empty(device=device)
        fs.unmount()
    status, out, err = run(capsys, "gc", path, "--policy", policy)
    assert status == 0, err
    moved = CAPACITY - 1 - (32 if policy == "greedy" else 19)
    assert f"cleaned 1 zone(s), moved {moved} blocks" in out and "write amplification" in out
    assert run(capsys, "fsck", path)[0] == 0
    with ZonedDevice.open(path) as device:
        fs = mount(device)
        cleaned = young_zone if policy == "greedy" else old_zone
        assert fs.writer.role[cleaned] is Role.FREE
        contents_intact(fs)
        fs.unmount()


def test_cli_gc_rejects_unknown_policy(tmp_path, capsys):
    path = tmp_path / "dev.zns"
    ZonedDevice.create(path, GEOMETRY).close_device()
    assert run(capsys, "mkfs", path)[0] == 0
    status, _, err = run(capsys, "gc", path, "--policy", "oldest")
    assert status != 0 and "invalid choice" in err


@pytest.fixture
def highest_zone():
    """A policy registered for the test only: the candidate zone with the highest number."""
    @gc.register_policy("highest-zone", "the sealed zone with the highest number (a test's)")
    def choose(fs, exclude=()):
        return max(gc.candidates(fs, gc.live_blocks(fs), exclude), default=None)
    yield "highest-zone"
    del gc.POLICIES["highest-zone"]


def test_a_registered_policy_is_one_place_to_add(highest_zone, capsys, tmp_path):
    """Registering is all it takes: mount, build_stack, the stats and the CLI's choices know it."""
    from zcsdfs.lfs.stats import lfs_stats
    from zcsdfs.stack import build_stack
    assert gc.policy_names() == ("greedy", "cost-benefit", highest_zone)
    device, fs, old_zone, young_zone = old_full_and_young_empty(highest_zone)
    assert gc.choose_victim(fs, highest_zone) == max(old_zone, young_zone)
    fs.gc(1)
    stats = lfs_stats(fs)
    assert stats.gc_policy == highest_zone and stats.recent_gc_runs[-1].policy == highest_zone
    assert stats.recent_gc_runs[-1].victim == max(old_zone, young_zone)
    fs.unmount()
    with build_stack(device, gc_policy=highest_zone, upto="lfs") as stack:
        assert stack.fs.gc_policy == highest_zone
    image = tmp_path / "vol.zns"
    ZonedDevice.create(image, GEOMETRY).close_device()
    assert run(capsys, "mkfs", image)[0] == 0
    status, out, err = run(capsys, "gc", image, "--gc-policy", highest_zone, "--json")
    assert status == 0, err
    with pytest.raises(ValueError, match="registered already"):
        gc.register_policy(highest_zone, "again")(lambda fs, exclude=(): None)


def test_build_stack_refuses_an_unknown_policy_before_opening_anything(tmp_path):
    from zcsdfs.stack import build_stack
    with pytest.raises(OSError) as info:
        build_stack(tmp_path / "absent.zns", gc_policy="oldest")  # EINVAL, not ENOENT
    assert info.value.errno == errno.EINVAL
    assert "unknown GC policy 'oldest' (known: greedy, cost-benefit)" in str(info.value)


def test_cli_lists_the_registry_on_a_wrong_name(capsys):
    status, out, err = run(capsys, "gc", "--policy", "oldest")
    assert status == 2 and "invalid choice: 'oldest' (choose from 'greedy', 'cost-benefit')" in err
    status, out, err = run(capsys, "mount", "--help")
    assert status == 0 and "--gc-policy" in out and "cost-benefit" in out
