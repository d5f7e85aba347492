"""Crash consistency: every crash state mounts, passes fsck and holds what was made durable.

ACE-style workloads (a few operations, each followed by fsync, fdatasync or
sync, or by nothing) run on a fresh file system while the device records its
commands. For every crash state the device could be left in, the recovered
file system must equal the state after some prefix of the operations that
includes every operation completed before the last durability call that
returned — nothing lost that was promised, nothing foreign, no mixture.
"""

import random
import stat

import pytest

from zcsdfs.lfs import fsck, mkfs, mount
from zcsdfs.zns import ZonedDevice
from zcsdfs.zns.crash import Recorder, crash_states


def snapshot(fs):
    """Everything a program could observe, except times: path -> attributes and contents."""
    out = {}
    stack = [("", fs.ROOT)]
    while stack:
        path, ino = stack.pop()
        st = fs.getattr(ino)
        xattrs = tuple(sorted((n, fs.getxattr(ino, n)) for n in fs.listxattr(ino)))
        if stat.S_ISREG(st.st_mode):
            body = fs.read(ino, 0, st.st_size)
        elif stat.S_ISLNK(st.st_mode):
            body = fs.readlink(ino)
        else:
            body = None
            for e in fs.readdir(ino):
                stack.append((f"{path}/{e.name}", e.ino))
        out[path or "/"] = (ino, st.st_mode, st.st_nlink, st.st_uid, st.st_size, body, xattrs)
    return out


def _ino(fs, path):
    ino = fs.ROOT
    for part in path.split("/"):
        ino = fs.lookup(ino, part)
    return ino


def _parent(fs, path):
    head, _, name = path.rpartition("/")
    return (_ino(fs, head) if head else fs.ROOT), name


OPS = {
    "create": lambda fs, p: fs.create(*_parent(fs, p)),
    "mkdir": lambda fs, p: fs.mkdir(*_parent(fs, p)),
    "append": lambda fs, p: fs.write(_ino(fs, p), fs.getattr(_ino(fs, p)).st_size, b"+" * 5000),
    "overwrite": lambda fs, p: fs.write(_ino(fs, p), 100, b"#" * 300),
    "truncate_down": lambda fs, p: fs.truncate(_ino(fs, p), 1000),
    "truncate_up": lambda fs, p: fs.truncate(_ino(fs, p), 20000),
    "link": lambda fs, p: fs.link(_ino(fs, p), fs.ROOT, "hard"),
    "unlink": lambda fs, p: fs.unlink(*_parent(fs, p)),
    "rename": lambda fs, p: fs.rename(*_parent(fs, p), _ino(fs, "D"), "moved"),
    "rename_over": lambda fs, p: fs.rename(*_parent(fs, p), fs.ROOT, "B"),
    "rmdir": lambda fs, p: fs.rmdir(*_parent(fs, p)),
    "symlink": lambda fs, p: fs.symlink(*_parent(fs, p), "A"),
    "setxattr": lambda fs, p: fs.setxattr(_ino(fs, p), "user.k", b"value"),
    "removexattr": lambda fs, p: fs.removexattr(_ino(fs, p), "user.old"),
}


def persist(fs, how, path):
    if how == "fsync":
        fs.fsync(_ino(fs, path))
    elif how == "fsync_parent":
        fs.fsync(_parent(fs, path)[0])
    elif how == "fdatasync":
        fs.fdatasync(_ino(fs, path))
    elif how == "sync":
        fs.sync()


def fresh():
    """A file system holding A (9000 bytes, an xattr), B and an empty directory D, all durable."""
    device = ZonedDevice.memory("tiny")
    mkfs(device)
    fs = mount(device)
    a = fs.create(fs.ROOT, "A")
    fs.write(a, 0, bytes(range(256)) * 35 + b"tail")
    fs.setxattr(a, "user.old", b"1")
    fs.write(fs.create(fs.ROOT, "B"), 0, b"bee")
    fs.mkdir(fs.ROOT, "D")
    fs.sync()
    return device, fs


def run_workload(steps, *, exhaustive_limit=16, samples=3):
    """``steps``: (op, path, persistence or None). Checks every crash state; returns how many."""
    device, fs = fresh()
    recorder = Recorder(device)
    states = [snapshot(fs)]
    durable_at = [(0, 0)]  # (commands recorded, operations whose effects must survive)
    for op, path, how in steps:
        OPS[op](fs, path)
        states.append(snapshot(fs))
        if how is not None:
            persist(fs, how, path)
            durable_at.append((len(recorder.commands), len(states) - 1))
    recorder.detach()
    checked = 0
    for crash in crash_states(recorder, exhaustive_limit=exhaustive_limit, samples=samples, seed=len(steps)):
        must = max(n for point, n in durable_at if point <= crash.point)
        crashed = crash.device()
        report = fsck(crashed)
        assert report.clean, (crash, report.errors)
        recovered = snapshot(mount(crashed))
        assert any(recovered == s for s in states[must:]), (
            f"crash {crash}: state is none of the states after operation {must} or later")
        assert fsck(crashed).clean
        checked += 1
    return checked


SINGLE = [
    ("create", "C"), ("mkdir", "E"), ("append", "A"), ("overwrite", "A"), ("truncate_down", "A"),
    ("truncate_up", "A"), ("link", "A"), ("unlink", "A"), ("rename", "A"), ("rename_over", "A"),
    ("rmdir", "D"), ("symlink", "S"), ("setxattr", "B"), ("removexattr", "A"),
]


@pytest.mark.parametrize("how", ["fsync", "fsync_parent", "fdatasync", "sync"])
@pytest.mark.parametrize("op,path", SINGLE, ids=[op for op, _ in SINGLE])
def test_one_operation(op, path, how):
    if how in ("fsync", "fdatasync") and op in ("unlink", "rename", "rename_over", "rmdir"):
        how = "fsync_parent"  # the name is gone: persist through its directory
    assert run_workload([(op, path, how)]) > 1


SEQUENCES = [
    [("create", "C", None), ("append", "C", "fsync")],
    [("append", "A", None), ("rename", "A", "sync")],
    [("create", "D/x", "fsync_parent"), ("rename_over", "A", None), ("append", "B", "fdatasync")],
    [("truncate_down", "A", "fsync"), ("truncate_up", "A", None), ("overwrite", "A", "fsync")],
    [("link", "A", None), ("unlink", "A", "fsync_parent"), ("append", "hard", "fsync")],
    [("mkdir", "E", None), ("create", "E/f", None), ("append", "E/f", "sync"), ("rmdir", "D", None)],
]


@pytest.mark.parametrize("steps", SEQUENCES, ids=[str(i) for i in range(len(SEQUENCES))])
def test_sequences(steps):
    assert run_workload(steps) > len(steps)


@pytest.mark.parametrize("seed", range(3))
def test_random_history(seed):
    """Seeded random operations on a handful of names, with durability calls sprinkled in."""
    rng = random.Random(seed)
    device, fs = fresh()
    recorder = Recorder(device)
    states, durable_at = [snapshot(fs)], [(0, 0)]
    for _ in range(12):
        files = [p for p, v in states[-1].items() if stat.S_ISREG(v[1])]
        path = "/" + rng.choice(["A", "B", "C", "D/c", "D/d"])
        kind = rng.choice(["write", "create", "unlink", "rename", "truncate"])
        parent, name = _parent(fs, path[1:])
        exists = path in states[-1]
        if kind == "create" and not exists:
            fs.create(parent, name)
        elif kind == "write" and path in files:
            fs.write(_ino(fs, path[1:]), rng.randrange(20000), bytes([rng.randrange(256)]) * rng.randrange(1, 9000))
        elif kind == "unlink" and path in files:
            fs.unlink(parent, name)
        elif kind == "rename" and path in files:
            target = "/" + rng.choice(["A", "B", "C", "D/c", "D/d"])
            if target not in states[-1] or target in files:
                tparent, tname = _parent(fs, target[1:])
                fs.rename(parent, name, tparent, tname)
        elif kind == "truncate" and path in files:
            fs.truncate(_ino(fs, path[1:]), rng.randrange(15000))
        else:
            continue
        states.append(snapshot(fs))
        if rng.random() < 0.4:
            fs.sync()
            durable_at.append((len(recorder.commands), len(states) - 1))
    recorder.detach()
    for crash in crash_states(recorder, exhaustive_limit=8, samples=2, seed=seed):
        must = max(n for point, n in durable_at if point <= crash.point)
        crashed = crash.device()
        assert fsck(crashed).clean
        recovered = snapshot(mount(crashed))
        assert any(recovered == s for s in states[must:])


def test_a_write_of_several_units_is_atomic():
    """One write() larger than a zone's room is logged as several units; no crash state shows part of it."""
    device, fs = fresh()
    a = _ino(fs, "A")
    before = fs.writer.next_seq
    big = bytes([7]) * (60 * 4096)  # more than a tiny zone's 48 blocks: at least two units
    recorder = Recorder(device)
    states = [snapshot(fs)]
    fs.write(a, 4096, big)
    states.append(snapshot(fs))
    assert fs.writer.next_seq - before >= 2
    fs.sync()
    recorder.detach()
    checked = 0
    for crash in crash_states(recorder, exhaustive_limit=24, samples=4, seed=1):
        crashed = crash.device()
        report = fsck(crashed)
        assert report.clean, (crash, report.errors)
        assert snapshot(mount(crashed)) in states, f"crash {crash}: the write is partly applied"
        checked += 1
    assert checked > 10
