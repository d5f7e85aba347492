"""The image backend: durability across processes, the lock, and refusing bad files."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from zcsdfs import cli
from zcsdfs.zns import BadImage, DeviceBusy, ForeignImage, Geometry, ZonedDevice, ZoneState
from zcsdfs.zns.backend import ENTRY, HEADER, TABLE_HEAD

BS = 4096
GEOMETRY = Geometry(zones=8, zone_size=16, zone_capacity=12, block_size=BS, max_open=4, max_active=6)


def block(tag: int, n: int = 1) -> bytes:
    return b"".join(bytes([tag, i]) * (BS // 2) for i in range(n))


def python(code: str, *args: str, **kwargs) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (a new process, as after a restart)."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], capture_output=True,
                          text=True, timeout=60, **kwargs)


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "dev.zns"
    ZonedDevice.create(path, GEOMETRY).close_device()
    return path


# -- durability ------------------------------------------------------------------------


def test_flushed_data_survives_a_new_process(image):
    with ZonedDevice.open(image) as dev:
        dev.write(0, block(1, 3))
        assert dev.append(1, block(2, 12)) == 16  # fills zone 1
        dev.open_zone(2)
        dev.flush()
    out = python("""
        import sys
        from zcsdfs.zns import ZonedDevice
        with ZonedDevice.open(sys.argv[1]) as dev:
            for z in dev.report(0, 3):
                print(z.state.name, z.write_pointer)
            print(dev.read(0, 4).hex())
            print(dev.read(16, 12).hex())
    """, str(image))
    assert out.returncode == 0, out.stderr
    # After a power cycle no zone is open: written zones are CLOSED, an opened empty one EMPTY.
    assert out.stdout.splitlines() == ["CLOSED 3", "FULL 32", "EMPTY 32",
                                       (block(1, 3) + bytes(BS)).hex(), block(2, 12).hex()]


def test_reopen_restores_states_and_counts(image):
    with ZonedDevice.open(image) as dev:
        dev.append(0, block(1))
        dev.open_zone(1)
        dev.append(2, block(2, 12))
        dev.append(3, block(3))
        dev.finish(3)
        dev.faults.make_read_only(4)
        dev.faults.make_offline(5)
    with ZonedDevice.open(image) as dev:
        assert [z.state for z in dev.report()] == [
            ZoneState.CLOSED, ZoneState.EMPTY, ZoneState.FULL, ZoneState.FULL, ZoneState.READ_ONLY,
            ZoneState.OFFLINE, ZoneState.EMPTY, ZoneState.EMPTY]
        assert (dev.open_zones, dev.active_zones) == (0, 1)
        assert dev.read(48, 2) == block(3) + bytes(BS)  # finished zone: zeros after its data
        assert dev.append(0, block(9)) == 1  # a closed zone takes writes where it stopped


KILLED_WRITER = """
    import sys
    from zcsdfs.zns import ZonedDevice

    def block(tag, n=1):
        return b"".join(bytes([tag, i]) * 2048 for i in range(n))

    dev = ZonedDevice.open(sys.argv[1])
    dev.append(4, block(40, 2)); dev.append(5, block(50, 2)); dev.flush()
    dev.write(0, block(1, 2))
    dev.flush()
    dev.write(2, block(2, 3))              # zone 0: not flushed
    dev.append(1, block(3, 4))             # zone 1: not flushed
    dev.append(2, block(4, 2), fua=True)   # zone 2: FUA, durable
    dev.append(3, block(5, 2))
    dev.append(3, block(6, 1), fua=True)   # zone 3: FUA covers the zone's earlier writes too
    dev.reset(4)                           # durable on completion
    dev.append(5, block(51, 1))
    dev.finish(5)                          # durable on completion, with the zone's data
    dev.append(6, block(7, 1))             # zone 6: not flushed
    print("ready", flush=True)
    sys.stdin.read()                       # wait to be killed
"""


def test_sigkill_before_flush(image):
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(KILLED_WRITER), str(image)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline() == "ready\n", child.stderr.read()
        with pytest.raises(DeviceBusy) as caught:  # the writer still holds the image
            ZonedDevice.open(image)
        assert caught.value.errno == errno.EBUSY
        assert "busy" in str(caught.value) and str(image) == caught.value.filename
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
        child.stdin.close()
        child.stdout.close()
        child.stderr.close()
    assert child.returncode == -signal.SIGKILL

    with ZonedDevice.open(image) as dev:
        zones = dev.report()
        # Zone 0: the write pointer is back at the flushed point; what follows reads as zeros.
        assert (zones[0].state, zones[0].write_pointer) == (ZoneState.CLOSED, 2)
        assert dev.read(0, 6) == block(1, 2) + bytes(4 * BS)
        assert (zones[1].state, zones[1].write_pointer) == (ZoneState.EMPTY, 16)
        assert dev.read(16, 4) == bytes(4 * BS)
        assert (zones[2].state, zones[2].write_pointer) == (ZoneState.CLOSED, 34)
        assert dev.read(32, 2) == block(4, 2)
        assert zones[3].write_pointer == 48 + 3
        assert dev.read(48, 3) == block(5, 2) + block(6, 1)
        assert (zones[4].state, zones[4].write_pointer) == (ZoneState.EMPTY, 64)
        assert dev.read(64, 2) == bytes(2 * BS)
        assert zones[5].state is ZoneState.FULL
        assert dev.read(80, 4) == block(50, 2) + block(51, 1) + bytes(BS)
        assert zones[6].state is ZoneState.EMPTY
        # The device is usable again where the crash left it.
        dev.write(2, block(8))
        assert dev.read(2, 1) == block(8)


def test_clean_close_keeps_everything(image):
    with ZonedDevice.open(image) as dev:
        dev.append(0, block(1, 2))
    # close_device flushes: nothing was lost.
    out = python("""
        import sys
        from zcsdfs.zns import ZonedDevice
        with ZonedDevice.open(sys.argv[1]) as dev:
            print(dev.read(0, 2).hex())
    """, str(image))
    assert out.stdout.strip() == block(1, 2).hex()


# -- the lock --------------------------------------------------------------------------


def test_second_open_in_the_same_process_is_busy(image):
    dev = ZonedDevice.open(image)
    with pytest.raises(DeviceBusy) as caught:
        ZonedDevice.open(image)
    assert caught.value.errno == errno.EBUSY
    dev.close_device()
    ZonedDevice.open(image).close_device()  # free again once closed


def test_open_in_another_process_is_busy(image):
    with ZonedDevice.open(image):
        out = python("""
            import sys
            from zcsdfs.zns import ZonedDevice, DeviceBusy
            try:
                ZonedDevice.open(sys.argv[1])
            except DeviceBusy as exc:
                print(exc.errno, exc)
        """, str(image))
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"{errno.EBUSY} ")
    assert "device busy" in out.stdout


def test_create_refuses_an_existing_file(image):
    with pytest.raises(FileExistsError):
        ZonedDevice.create(image, GEOMETRY)
    ZonedDevice.open(image).close_device()  # and left it alone


def test_closed_device_refuses_commands(image):
    dev = ZonedDevice.open(image)
    dev.close_device()
    for command in (lambda: dev.read(0, 1), lambda: dev.write(0, block(1)), lambda: dev.append(0, block(1)),
                    lambda: dev.reset(0), lambda: dev.finish(0), lambda: dev.flush()):
        with pytest.raises(OSError, match="closed"):
            command()


def test_writes_reach_reads_through_the_page_cache(image):
    """Writes go to the file with pwrite, reads come from the mapping: both are the one page cache."""
    with ZonedDevice.open(image) as dev:
        dev.write(0, block(1, 2))
        dev.append(0, block(2))
        assert dev.read(0, 3) == block(1, 2) + block(2)
        assert dev.read_bytes(1, 100, 5000) == (block(1, 2) + block(2))[BS + 100:BS + 5100]
    with open(image, "rb") as f:
        data = f.read()
    assert data.count(block(1, 2) + block(2)) == 1


def test_a_failing_image_write_is_an_error_not_a_signal(image):
    """A write the host file system refuses (here: past RLIMIT_FSIZE) raises OSError (with a
    mapping it would be SIGBUS), and the write pointer stays where it was."""
    done = python("""
        import errno, resource, sys
        from zcsdfs.zns import ZonedDevice
        dev = ZonedDevice.open(sys.argv[1])
        resource.setrlimit(resource.RLIMIT_FSIZE, (8192, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
        try:
            dev.append(1, bytes(4096))
        except OSError as exc:
            print(errno.errorcode[exc.errno], dev.zone(1).write_pointer)
    """, str(image))
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["EFBIG", str(GEOMETRY.zone_size)]


# -- bad files -------------------------------------------------------------------------


def header_fields(path) -> dict:
    raw = open(path, "rb").read(HEADER.size)
    names = ("magic version size bs zones zone_size zone_capacity max_open max_active "
             "table_offset table_size data_offset").split()
    return dict(zip(names, HEADER.unpack(raw)))


def poke(path, offset: int, data: bytes) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


def flip(path, offset: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0xFF]))


def table_copy(path, copy: int) -> int:
    h = header_fields(path)
    return h["table_offset"] + copy * h["table_size"]


def corrupt_header(path):
    flip(path, 24)  # inside the geometry


def corrupt_version(path):
    poke(path, 8, (99).to_bytes(4, "little"))


def corrupt_both_tables(path):
    flip(path, table_copy(path, 0) + 20)
    flip(path, table_copy(path, 1) + 20)


def truncate_data(path):
    os.truncate(path, os.path.getsize(path) - BS)


def truncate_header(path):
    os.truncate(path, 20)


def foreign(path):
    with open(path, "wb") as f:
        f.write(b"#!/bin/sh\necho this is not a zoned device\n" * 200)


def empty(path):
    os.truncate(path, 0)


BAD = [
    (corrupt_header, BadImage, errno.EUCLEAN, "header fails its CRC32C"),
    (corrupt_version, BadImage, errno.EUCLEAN, "version 99 is not supported"),
    (corrupt_both_tables, BadImage, errno.EUCLEAN, "no valid zone table"),
    (truncate_data, BadImage, errno.EUCLEAN, "truncated"),
    (truncate_header, BadImage, errno.EUCLEAN, "truncated inside its header"),
    (foreign, ForeignImage, errno.EMEDIUMTYPE, "not a zcsdfs device image"),
    (empty, ForeignImage, errno.EMEDIUMTYPE, "not a zcsdfs device image"),
]
IDS = [b[0].__name__ for b in BAD]


@pytest.mark.parametrize("damage, cls, err, words", BAD, ids=IDS)
def test_bad_image_is_refused(image, damage, cls, err, words):
    damage(image)
    with pytest.raises(cls) as caught:
        ZonedDevice.open(image)
    assert caught.value.errno == err
    assert words in str(caught.value)
    assert caught.value.filename == str(image)
    # The refusal released the file and its lock: a second try fails the same way, not as busy.
    with pytest.raises(cls):
        ZonedDevice.open(image)


@pytest.mark.parametrize("damage, cls, err, words", BAD, ids=IDS)
@pytest.mark.parametrize("command", [["zones"], ["device", "info"]], ids=["zones", "device-info"])
def test_bad_image_via_cli(image, damage, cls, err, words, command, capsys):
    damage(image)
    assert cli.main([*command, str(image)]) == 1
    out, err_text = capsys.readouterr()
    assert out == ""
    assert err_text.count("\n") == 1 and err_text.endswith("\n")
    assert err_text.startswith("zcsdfs: ")
    assert words in err_text and str(image) in err_text
    assert "Traceback" not in err_text


@pytest.mark.parametrize("damage", [corrupt_both_tables, foreign])
def test_bad_image_via_cli_process(image, damage):
    damage(image)
    out = subprocess.run([sys.executable, "-m", "zcsdfs", "zones", str(image)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 1
    assert out.stdout == ""
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    assert str(image) in out.stderr


def generation(path, copy: int) -> int:
    with open(path, "rb") as f:
        f.seek(table_copy(path, copy))
        magic, gen, _ = TABLE_HEAD.unpack(f.read(TABLE_HEAD.size))
    assert magic == b"ZTAB"
    return gen


def newest_copy(path) -> int:
    return max((0, 1), key=lambda copy: generation(path, copy))


def test_damaged_older_table_loses_nothing(image):
    with ZonedDevice.open(image) as dev:
        dev.append(0, block(1))
        dev.flush()
        dev.append(0, block(2))
    flip(image, table_copy(image, 1 - newest_copy(image)) + 20)
    with ZonedDevice.open(image) as dev:
        assert dev.zone(0).write_pointer == 2
        assert dev.read(0, 2) == block(1) + block(2)
    # Closing wrote a fresh table over the damaged copy, so the other one may now go bad.
    flip(image, table_copy(image, 1 - newest_copy(image)) + 20)
    with ZonedDevice.open(image) as dev:
        assert dev.read(0, 3) == block(1) + block(2) + bytes(BS)


def test_damaged_newest_table_falls_back_to_the_previous_durable_point(image):
    with ZonedDevice.open(image) as dev:
        dev.append(0, block(1))
        dev.flush()           # this table says: zone 0 holds 1 block
        dev.append(0, block(2))
    # ... and the newest one (written by close) says 2. Damage it.
    flip(image, table_copy(image, newest_copy(image)) + 20)
    with ZonedDevice.open(image) as dev:
        assert (dev.zone(0).state, dev.zone(0).write_pointer) == (ZoneState.CLOSED, 1)
        assert dev.read(0, 2) == block(1) + bytes(BS)
        dev.append(0, block(3))
    with ZonedDevice.open(image) as dev:
        assert dev.read(0, 2) == block(1) + block(3)


def test_an_image_of_many_zones_reopens_with_the_state_of_the_zones_in_use(tmp_path):
    """Zone state is kept only for zones touched; every state kind survives a reopen, the rest read EMPTY."""
    g = Geometry(zones=50_000, zone_size=4, zone_capacity=4)
    path = tmp_path / "many.zns"
    with ZonedDevice.create(path, g) as dev:
        dev.append(7, block(1))  # CLOSED after reopen
        dev.append(40_000, block(2, 4))  # FULL by writes
        dev.append(12_345, block(3))
        dev.finish(12_345)  # FULL by finish
        dev.append(49_999, block(4, 2))
        dev.flush()
        dev.append(49_999, block(5))  # not flushed: gone after the reopen (close flushes, so reset below)
        dev.reset(49_999)
        dev.open(3)  # explicitly open, nothing written: EMPTY again after a power cycle
        assert [z.index for z in dev.report_used()] == [3, 7, 12_345, 40_000]
    with ZonedDevice.open(path) as dev:
        used = {z.index: (z.state, z.write_pointer - z.start) for z in dev.report_used()}
        assert used == {7: (ZoneState.CLOSED, 1), 12_345: (ZoneState.FULL, 4), 40_000: (ZoneState.FULL, 4)}
        assert dev.zone(3).state is ZoneState.EMPTY and dev.zone(49_999).write_pointer == dev.zone(49_999).start
        assert dev.active_zones == 1
        assert dev.read(40_000 * 4, 4) == block(2, 4) and dev.read(7 * 4, 1) == block(1)
        assert dev.counters.zones[7].blocks_read == 1 and dev.counters.blocks_read == 5
    assert ZonedDevice.open(path).report(7, 1)[0].state is ZoneState.CLOSED


def test_a_zone_table_entry_out_of_range_is_named_among_many(tmp_path):
    g = Geometry(zones=10_000, zone_size=4, zone_capacity=4)
    path = tmp_path / "bad.zns"
    ZonedDevice.create(path, g).close_device()
    import crc32c
    from zcsdfs.zns.backend import CRC, HEADER_BLOCK
    raw = bytearray(path.read_bytes()[:HEADER_BLOCK * 128])
    table_size = -(-(TABLE_HEAD.size + g.zones * ENTRY.size + CRC.size) // HEADER_BLOCK) * HEADER_BLOCK
    for copy in (0, 1):
        at = HEADER_BLOCK + copy * table_size
        ENTRY.pack_into(raw, at + TABLE_HEAD.size + 9_876 * ENTRY.size, ZoneState.CLOSED, 5)  # past capacity 4
        end = at + TABLE_HEAD.size + g.zones * ENTRY.size
        CRC.pack_into(raw, end, crc32c.crc32c(bytes(raw[at:end])))
    with open(path, "r+b") as f:
        f.write(raw)
    with pytest.raises(BadImage) as info:
        ZonedDevice.open(path)
    assert "zone 9876" in str(info.value)


def test_both_zone_table_copies_stay_whole_when_only_changed_entries_are_written(tmp_path):
    """Each save writes the entries its copy lacks; either copy must pass its CRC32C and hold a
    state the device was in (the older one, one save earlier)."""
    from zcsdfs.zns.backend import ImageBackend

    g = Geometry(zones=20_000, zone_size=4, zone_capacity=4)
    path = tmp_path / "t.zns"
    with ZonedDevice.create(path, g) as dev:
        for zone in (5, 9_000, 19_999, 6, 7):
            dev.append(zone, block(zone % 250))
            dev.flush()
        dev.finish(9_000)
        dev.reset(6)
    backend = ImageBackend.open(str(path))
    try:
        copies = sorted(backend._parse_table(backend._table_offset + c * backend._table_size) for c in (0, 1))
    finally:
        backend.close()
    (old_gen, old), (new_gen, new) = copies
    assert new_gen == old_gen + 1
    entry = lambda table, z: ENTRY.unpack_from(table, z * ENTRY.size)  # noqa: E731
    assert [entry(new, z) for z in (5, 6, 7, 9_000, 19_999, 0)] == [
        (ZoneState.CLOSED, 1), (ZoneState.EMPTY, 0), (ZoneState.CLOSED, 1), (ZoneState.FULL, 1),
        (ZoneState.CLOSED, 1), (ZoneState.EMPTY, 0)]
    assert entry(old, 6) == (ZoneState.CLOSED, 1) and entry(old, 9_000) == (ZoneState.FULL, 1)  # before the reset
    assert sum(1 for z in range(g.zones) if entry(old, z) != entry(new, z)) == 1
