"""The in-process caller: the current process's ids, read only when a check needs them."""

import os

import zcsdfs
from zcsdfs.vfs import caller as caller_module
from zcsdfs.vfs.caller import Caller


def test_current_reads_the_process_ids():
    c = Caller.current()
    assert (c.uid, c.gid, c.groups, c.pid) == (os.geteuid(), os.getegid(), frozenset(os.getgroups()), os.getpid())
    assert c.is_root == (os.geteuid() == 0)
    assert c.in_group(os.getegid())


def test_each_call_reads_afresh(monkeypatch):
    first = Caller.current()
    assert first.uid == os.geteuid()
    monkeypatch.setattr(caller_module.os, "geteuid", lambda: 4321)
    assert Caller.current().uid == 4321  # a seteuid between calls takes effect
    assert first.uid != 4321 or os.geteuid() == 4321  # a caller keeps what it read


def test_pwrite_asks_for_no_ids(monkeypatch):
    volume = zcsdfs.Volume.memory("qemu")
    try:
        fd = volume.open("/f", os.O_CREAT | os.O_RDWR, 0o644)
        asked = []
        for name in ("geteuid", "getegid", "getgroups", "getpid"):
            real = getattr(os, name)
            monkeypatch.setattr(caller_module.os, name, lambda real=real, name=name: asked.append(name) or real())
        assert volume.pwrite(fd, b"x" * 4096, 0) == 4096
        assert asked == []
        volume.fchmod(fd, 0o4755)  # a set-id bit: now the write must know who writes
        asked.clear()
        volume.pwrite(fd, b"y", 0)
        assert "geteuid" in asked
        volume.close(fd)
    finally:
        volume.unmount()
