"""Small files share log units: a create, a small write and a close cost a share of a unit,
not a unit each, and a crash still leaves a prefix of the operations."""

import stat

from zcsdfs.lfs import fsck, mkfs, mount
from zcsdfs.lfs.stats import lfs_stats
from zcsdfs.zns import Geometry, ZonedDevice
from zcsdfs.zns.crash import Recorder, crash_states

# zones big enough for a write buffer of 128 blocks, few enough to enumerate crash states
GEOMETRY = Geometry.preset("tiny", zone_size=256, zone_capacity=256)


def fresh():
    device = ZonedDevice.memory(GEOMETRY)
    mkfs(device)
    fs = mount(device)
    fs.sync()
    return device, fs


def small_file(fs, name: str, body: bytes) -> int:
    """What ``open(O_CREAT)``, ``write`` and ``close`` ask of the file system."""
    ino = fs.create(fs.ROOT, name)
    fs.hold(ino)
    fs.write(ino, 0, body)
    fs.release(ino)
    return ino


def body(i: int) -> bytes:
    return bytes([i % 251]) * 4096


def contents(fs) -> dict:
    """name -> (mode, data) of every file in the root, read back (which writes the buffer out)."""
    out = {}
    for e in fs.readdir(fs.ROOT):
        st = fs.getattr(e.ino)
        out[e.name] = (stat.S_IMODE(st.st_mode), fs.read(e.ino, 0, st.st_size))
    return out


def test_small_files_share_units():
    device, fs = fresh()
    before = lfs_stats(fs).units_written
    files = 64
    for i in range(files):
        small_file(fs, f"f{i}", body(i))
    fs.sync()
    units = lfs_stats(fs).units_written - before
    assert units <= files // 16, f"{files} small files took {units} log units"
    fs.unmount()
    again = mount(device)
    assert contents(again) == {f"f{i}": (0o644, body(i)) for i in range(files)}


def test_a_utime_or_chmod_after_a_small_write_keeps_the_write_buffered():
    device, fs = fresh()
    ino = small_file(fs, "a", b"x" * 5000)
    units = lfs_stats(fs).units_written
    fs.setattr(ino, atime_ns=10**18, mtime_ns=2 * 10**18)  # tar's utime
    fs.setattr(ino, mode=0o600)
    assert lfs_stats(fs).units_written == units
    st = fs.getattr(ino)
    assert (st.st_size, st.st_mtime_ns, stat.S_IMODE(st.st_mode)) == (5000, 2 * 10**18, 0o600)
    other = small_file(fs, "b", b"y" * 100)
    written = fs.getattr(other).st_mtime_ns
    fs.setattr(other, mode=0o640)  # the write's mtime stays: chmod changes only ctime
    fs.sync()
    fs.unmount()
    again = mount(device)
    st = again.getattr(ino)
    assert (st.st_size, st.st_mtime_ns, st.st_atime_ns, stat.S_IMODE(st.st_mode)) == (5000, 2 * 10**18, 10**18, 0o600)
    assert again.read(ino, 0, 5000) == b"x" * 5000
    st = again.getattr(other)
    assert (st.st_size, st.st_mtime_ns, stat.S_IMODE(st.st_mode)) == (100, written, 0o640)


def test_freeing_a_buffered_file_writes_the_buffer_first():
    device, fs = fresh()
    keep = small_file(fs, "keep", b"k" * 4096)
    gone = fs.create(fs.ROOT, "gone")
    fs.hold(gone)
    fs.write(gone, 0, b"g" * 4096)
    fs.unlink(fs.ROOT, "gone")
    fs.release(gone)  # frees the inode
    fs.sync()
    fs.unmount()
    again = mount(device)
    assert contents(again) == {"keep": (0o644, b"k" * 4096)}
    assert again.read(keep, 0, 4096) == b"k" * 4096
    assert fsck(device).clean


def test_every_crash_state_of_batched_small_files_is_a_prefix():
    """Small files, a chmod, a utime, a rename and an unlink between them, syncs now and then:
    every crash state, at every command and every torn tail, mounts, passes fsck and holds the
    files as some prefix of the operations left them, including everything synced."""
    device, fs = fresh()
    recorder = Recorder(device)
    model: dict[str, tuple[int, bytes]] = {}
    states = [dict(model)]
    durable_at = [(0, 0)]
    for i in range(40):
        name = f"f{i}"
        small_file(fs, name, body(i))
        model[name] = (0o644, body(i))
        states.append(dict(model))
        if i % 7 == 3:
            fs.setattr(fs.lookup(fs.ROOT, name), mode=0o600)
            model[name] = (0o600, model[name][1])
            states.append(dict(model))
        if i % 9 == 4:
            fs.setattr(fs.lookup(fs.ROOT, name), mtime_ns=10**18)
        if i % 11 == 5:
            fs.rename(fs.ROOT, name, fs.ROOT, f"r{i}")
            model[f"r{i}"] = model.pop(name)
            states.append(dict(model))
        if i % 13 == 6 and f"f{i - 1}" in model:
            fs.unlink(fs.ROOT, f"f{i - 1}")
            del model[f"f{i - 1}"]
            states.append(dict(model))
        if i % 17 == 16:
            fs.sync()
            durable_at.append((len(recorder.commands), len(states) - 1))
    fs.sync()
    durable_at.append((len(recorder.commands), len(states) - 1))
    recorder.detach()
    units = sum(1 for c in recorder.commands if c.name == "write")
    assert units < 40  # batched: far fewer data writes than files
    assert contents(fs) == model
    checked = 0
    for crash in crash_states(recorder, exhaustive_limit=16, samples=3, seed=7):
        must = max(n for point, n in durable_at if point <= crash.point)
        crashed = crash.device()
        report = fsck(crashed)
        assert report.clean, (crash, report.errors)
        recovered = contents(mount(crashed))
        assert recovered in states[must:], f"crash {crash}: not the state after any operation from {must} on"
        checked += 1
    assert checked > len(recorder.commands)
