"""Install and uninstall: every form of holding an os function is caught, and put back exactly."""

import builtins
import errno
import importlib
import io
import os
import posixpath
import sys
import textwrap
import types
from os import stat as stat_held_before
from os.path import realpath as realpath_held_before

import pytest

import zcsdfs
import zcsdfs.shim as shim
from zcsdfs.shim.patching import SUPPORT_SETS


def module_snapshot():
    """Every callable module attribute, by identity, plus the os.supports_* sets.

    Only callables: the shim patches functions and classes, while modules may
    legitimately rebind plain data (caches, counters) or import more modules
    while the test runs (other tests' threads, lazy imports).
    """
    attrs = {(name, key): id(value) for name, module in list(sys.modules.items())
             if isinstance(getattr(module, "__dict__", None), dict)
             for key, value in list(vars(module).items()) if callable(value)}
    return attrs, {s: set(getattr(os, s)) for s in SUPPORT_SETS}


def changed_since(before):
    """Callables that were there before and are bound to something else now."""
    now, sets = module_snapshot()
    moved = {key for key, ident in before[0].items() if key in now and now[key] != ident}
    return moved, sets == before[1]


@pytest.fixture
def memory():
    vol = zcsdfs.Volume.memory("tiny")
    yield vol
    vol.unmount()


def test_uninstall_restores_every_name_exactly(memory):
    before = module_snapshot()
    originals = (os.stat, os.open, builtins.open, io.open, io.FileIO, posixpath.realpath, os.listdir)
    shim.install("/zcsd-patch", memory)
    try:
        assert os.stat is not originals[0] and builtins.open is not originals[2]
        assert stat_held_before is os.stat and realpath_held_before is posixpath.realpath
        assert os.open in os.supports_dir_fd and os.stat in os.supports_follow_symlinks
    finally:
        shim.uninstall()
    assert (os.stat, os.open, builtins.open, io.open, io.FileIO, posixpath.realpath, os.listdir) == originals
    assert changed_since(before) == (set(), True)
    assert sys.modules[__name__].stat_held_before is originals[0]


def test_modules_imported_while_installed(memory, tmp_path, monkeypatch):
    (tmp_path / "late_module.py").write_text(textwrap.dedent("""
        import os as x
        from os import stat
        from os.path import exists

        def size(path, _stat=x.stat):
            return _stat(path).st_size

        class Holder:
            stat = x.stat
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    with shim.mounted("/zcsd-patch", memory):
        with open("/zcsd-patch/f", "wb") as f:
            f.write(b"12345")
        late = importlib.import_module("late_module")
        assert late.stat("/zcsd-patch/f").st_size == 5
        assert late.x.stat("/zcsd-patch/f").st_size == 5
        assert late.exists("/zcsd-patch/f")
        assert late.size("/zcsd-patch/f") == 5
        assert late.Holder().stat("/zcsd-patch/f").st_size == 5
    assert late.stat is os.stat and late.size.__defaults__ == (os.stat,)
    assert late.Holder.stat is os.stat
    with pytest.raises(FileNotFoundError):
        late.stat("/zcsd-patch/f")
    del sys.modules["late_module"]


def test_held_in_defaults_and_class_attributes_before_install(memory):
    def size(path, _stat=os.stat):
        return _stat(path).st_size

    class Holder:
        lstat = os.lstat
    sys.modules[__name__].size_before, sys.modules[__name__].HolderBefore = size, Holder
    try:
        with shim.mounted("/zcsd-patch", memory):
            with open("/zcsd-patch/g", "wb") as f:
                f.write(b"abc")
            assert size("/zcsd-patch/g") == 3
            assert Holder().lstat("/zcsd-patch/g").st_size == 3
        assert size.__defaults__ == (os.stat,) and vars(Holder)["lstat"] is os.lstat
    finally:
        del sys.modules[__name__].size_before, sys.modules[__name__].HolderBefore


def test_several_prefixes_each_with_its_own_volume(memory):
    other = zcsdfs.Volume.memory("tiny")
    with shim.mounted("/zcsd-a", memory), shim.mounted("/zcsd-b", other):
        assert shim.mounts() == {"/zcsd-a": memory, "/zcsd-b": other}
        with open("/zcsd-a/f", "w") as f:
            f.write("in a")
        assert os.listdir("/zcsd-b") == []
        assert memory.listdir("/") == ["f"]
        with pytest.raises(OSError) as info:
            os.rename("/zcsd-a/f", "/zcsd-b/f")
        assert info.value.errno == errno.EXDEV
        import shutil
        shutil.move("/zcsd-a/f", "/zcsd-b/f")
        assert (memory.listdir("/"), other.listdir("/")) == ([], ["f"])
    assert shim.mounts() == {}
    other.unmount()


def test_one_prefix_goes_the_other_stays(memory):
    other = zcsdfs.Volume.memory("tiny")
    shim.install("/zcsd-a", memory)
    shim.install("/zcsd-b", other)
    try:
        shim.uninstall("/zcsd-a")
        assert not os.path.exists("/zcsd-a")
        assert os.path.isdir("/zcsd-b")
    finally:
        shim.uninstall()
    other.unmount()


def test_bad_prefixes(memory):
    for prefix, code in (("relative", errno.EINVAL), ("/", errno.EINVAL), ("//.", errno.EINVAL)):
        with pytest.raises(OSError) as info:
            shim.install(prefix, memory)
        assert info.value.errno == code
    with shim.mounted("/zcsd-a/", memory):
        with pytest.raises(OSError) as info:
            shim.install("/zcsd-a", memory)
        assert info.value.errno == errno.EBUSY
    with pytest.raises(OSError) as info:
        shim.uninstall("/zcsd-a")
    assert info.value.errno == errno.EINVAL


def test_volume_made_by_install_is_unmounted_by_uninstall(tmp_path):
    from zcsdfs.zns import ZonedDevice
    from zcsdfs.lfs import mkfs
    image = tmp_path / "img.zns"
    with ZonedDevice.create(image, "tiny") as device:
        mkfs(device)
    volume = shim.install("/zcsd-img", image)
    with open("/zcsd-img/kept", "w") as f:
        f.write("durable")
    shim.uninstall()
    assert not volume.mounted
    with zcsdfs.Volume(image) as again:
        assert again.listdir("/") == ["kept"]


def test_file_io_class_checks(memory):
    with shim.mounted("/zcsd-patch", memory):
        with open("/zcsd-patch/f", "wb") as f:
            f.write(b"x")
        raw = io.FileIO("/zcsd-patch/f")
        assert isinstance(raw, io.FileIO) and raw.read() == b"x" and raw.name == "/zcsd-patch/f"
        raw.close()
        with open(__file__, "rb", buffering=0) as real:
            assert isinstance(real, io.FileIO)
        with open("/zcsd-patch/f", "rb") as f:
            assert f.name == "/zcsd-patch/f"


def test_dir_entry_class_checks(memory, tmp_path):
    (tmp_path / "real").write_bytes(b"r")
    real_type = os.DirEntry
    with shim.mounted("/zcsd-patch", memory):
        os.mkdir("/zcsd-patch/d")
        with open("/zcsd-patch/d/f", "wb") as f:
            f.write(b"x")
        ours = list(os.scandir("/zcsd-patch/d"))
        real = list(os.scandir(tmp_path))
        assert [e.name for e in ours] == ["f"] and [e.name for e in real] == ["real"]
        assert all(isinstance(e, os.DirEntry) for e in ours + real)
        assert not isinstance("f", os.DirEntry)
        assert os.DirEntry[str] is not None  # annotations still work
        with pytest.raises(TypeError):
            os.DirEntry()
        # shutil takes the entry's cached stat only for DirEntry instances
        import shutil
        shutil.copytree("/zcsd-patch/d", "/zcsd-patch/copy")
        assert os.listdir("/zcsd-patch/copy") == ["f"]
    assert os.DirEntry is real_type


def test_sendfile_and_copy_file_range_keywords(memory):
    with shim.mounted("/zcsd-patch", memory):
        with open("/zcsd-patch/src", "wb") as f:
            f.write(b"0123456789")
        src = os.open("/zcsd-patch/src", os.O_RDONLY)
        dst = os.open("/zcsd-patch/dst", os.O_CREAT | os.O_RDWR, 0o644)
        try:
            assert os.sendfile(out_fd=dst, in_fd=src, offset=0, count=4) == 4
            assert os.copy_file_range(src=src, dst=dst, count=2, offset_src=8, offset_dst=None) == 2
            assert os.pread(dst, 10, 0) == b"012389"
        finally:
            os.close(src)
            os.close(dst)


def test_umask_held_before_install_is_noted(memory):
    code = textwrap.dedent("""
        from posix import umask  # the original, as a module imported before zcsdfs holds it
        def create_masked(path, mask):
            old = umask(mask)
            try:
                with open(path, "w"):
                    pass
            finally:
                umask(old)
    """)
    module = types.ModuleType("held_umask")
    exec(code, module.__dict__)
    sys.modules["held_umask"] = module
    try:
        with shim.mounted("/zcsd-patch", memory):
            module.create_masked("/zcsd-patch/f", 0o077)
            assert os.stat("/zcsd-patch/f").st_mode & 0o777 == 0o600
    finally:
        del sys.modules["held_umask"]
