"""Rolling a volume back to a snapshot: the files become the snapshot's, atomically and durably."""

import errno
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from tests.lfs.test_crash import snapshot as observe
from zcsdfs.lfs import fsck, mkfs, mount
from zcsdfs.zns import Geometry, ZonedDevice
from zcsdfs.zns.crash import Recorder, crash_states


def volume_with_history():
    """A file system with snapshot "s" of (/A, /D), then changed: A rewritten, B made, D removed."""
    device = ZonedDevice.memory("tiny")
    mkfs(device)
    fs = mount(device)
    a = fs.create(fs.ROOT, "A")
    fs.write(a, 0, b"before" * 1000)
    fs.setxattr(a, "user.k", b"1")
    fs.mkdir(fs.ROOT, "D")
    fs.create_snapshot("s")
    fs.write(a, 0, b"after!" * 3000)
    fs.write(fs.create(fs.ROOT, "B"), 0, b"bee" * 5000)
    fs.rmdir(fs.ROOT, "D")
    fs.sync()
    return device, fs


def test_rollback_restores_the_snapshot_and_keeps_it():
    device, fs = volume_with_history()
    want = observe(fs.snapshot("s"))
    fs.rollback("s")
    assert observe(fs) == want
    assert [i.name for i in fs.list_snapshots()] == ["s"]
    fs.write(fs.create(fs.ROOT, "C"), 0, b"c")  # the rolled-back tree takes changes
    fs.unmount()
    assert fsck(device).clean
    again = mount(device)
    assert set(observe(again)) == set(want) | {"/C"}
    assert observe(again.snapshot("s")) == want


def test_rollback_frees_what_only_the_old_tree_used():
    device, fs = volume_with_history()
    used = fs.statfs().f_blocks - fs.statfs().f_bfree
    fs.rollback("s")
    fs.delete_snapshot("s")
    assert fs.statfs().f_blocks - fs.statfs().f_bfree < used
    fs.unmount()
    assert fsck(device).clean


def test_rollback_refuses_while_files_are_open_and_unknown_names():
    device, fs = volume_with_history()
    fs.hold(fs.lookup(fs.ROOT, "A"))
    before = observe(fs)
    with pytest.raises(OSError) as exc:
        fs.rollback("s")
    assert exc.value.errno == errno.EBUSY
    assert observe(fs) == before
    with pytest.raises(OSError) as exc:
        fs.rollback("t")
    assert exc.value.errno == errno.ENOENT


def test_rollback_is_atomic_in_every_crash_state():
    device, fs = volume_with_history()
    old = observe(fs)
    new = observe(fs.snapshot("s"))
    recorder = Recorder(device)
    fs.rollback("s")
    recorder.detach()
    seen = set()
    checked = 0
    for crash in crash_states(recorder, exhaustive_limit=64, samples=4):
        crashed = crash.device()
        report = fsck(crashed)
        assert report.clean, (crash, report.errors)
        state = observe(mount(crashed))
        assert state in (old, new), f"crash {crash}: a mixture of the old tree and the snapshot"
        seen.add("new" if state == new else "old")
        if crash.point == len(recorder.commands):
            assert state == new, "the rollback returned, so it must be durable"
        checked += 1
    assert seen == {"old", "new"} and checked > 2


KILLED = textwrap.dedent("""\
    import os, signal, sys
    from zcsdfs.lfs import mount
    from zcsdfs.lfs import checkpoint
    from zcsdfs.zns import ZonedDevice

    device = ZonedDevice.open(sys.argv[1])
    fs = mount(device)
    write_root = checkpoint.Checkpointer._write_root

    def die_after_root(self, generation, body):  # the rollback's root reaches the image, then the process dies
        write_root(self, generation, body)
        os.kill(os.getpid(), signal.SIGKILL)

    checkpoint.Checkpointer._write_root = die_after_root
    fs.rollback(sys.argv[2])
""")


@pytest.mark.parametrize("at", ["before", "after"])
def test_rollback_killed_leaves_the_old_tree_or_the_snapshot(tmp_path, at):
    """A process killed during a rollback of an image: the next mount sees one tree or the other."""
    path = tmp_path / "v.zns"
    ZonedDevice.create(path, Geometry.preset("tiny")).close_device()
    with ZonedDevice.open(path) as device:
        mkfs(device)
        fs = mount(device)
        a = fs.create(fs.ROOT, "A")
        fs.write(a, 0, b"before" * 1000)
        fs.create_snapshot("s")
        fs.write(a, 0, b"after!" * 3000)
        old = observe(fs)
        new = observe(fs.snapshot("s"))
        fs.unmount()
    script = KILLED if at == "after" else KILLED.replace("write_root(self, generation, body)\n", "")
    child = subprocess.run([sys.executable, "-c", script, str(path), "s"], capture_output=True, text=True,
                           timeout=120)
    assert child.returncode == -signal.SIGKILL, child.stderr
    with ZonedDevice.open(path) as device:
        assert fsck(device).clean
        assert observe(mount(device)) == (new if at == "after" else old)
