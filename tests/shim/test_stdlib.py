"""pathlib, shutil, tempfile, glob and os.walk on absolute paths: one body under a real temporary
directory and under the mount prefix, results compared; and the clear failure of C-level I/O."""

import errno
import glob
import os
import pathlib
import shutil
import sqlite3
import tempfile

import pytest

from tests.shim.conftest import PREFIX


def compare(tmp_path, volume, body):
    """``body(root)`` on a real directory and on the prefix; the results must be equal."""
    real = body(str(tmp_path))
    shimmed = body(PREFIX)
    assert shimmed == real
    return real


def test_pathlib_methods(tmp_path, volume):
    def body(root):
        base = pathlib.Path(root) / "p"
        base.mkdir()
        (base / "sub").mkdir(parents=True, exist_ok=True)
        (base / "a.txt").write_text("alpha\n")
        (base / "b.bin").write_bytes(b"\x00\x01")
        (base / "sub" / "c.txt").touch()
        (base / "b.bin").rename(base / "sub" / "b2.bin")
        (base / "link").symlink_to("a.txt")
        with (base / "a.txt").open("a") as f:
            f.write("more\n")
        out = {
            "iterdir": sorted(p.name for p in base.iterdir()),
            "glob": sorted(str(p.relative_to(base)) for p in base.glob("*.txt")),
            "rglob": sorted(str(p.relative_to(base)) for p in base.rglob("*")),
            "read": (base / "a.txt").read_text(), "bytes": (base / "sub" / "b2.bin").read_bytes(),
            "size": (base / "a.txt").stat().st_size, "exists": [(base / n).exists() for n in ("a.txt", "zz")],
            "is": [(base / "sub").is_dir(), (base / "a.txt").is_file(), (base / "link").is_symlink()],
            "resolve": str((base / "link").resolve().relative_to(pathlib.Path(root).resolve())),
            "samefile": (base / "link").samefile(base / "a.txt"),
            "readlink": str((base / "link").readlink()),
        }
        (base / "sub" / "c.txt").unlink()
        with pytest.raises(FileNotFoundError):
            (base / "sub" / "c.txt").unlink()
        out["after unlink"] = sorted(os.listdir(base / "sub"))
        return out
    assert compare(tmp_path, volume, body)["read"] == "alpha\nmore\n"


def test_shutil_functions(tmp_path, volume):
    def body(root):
        src = os.path.join(root, "src")
        os.makedirs(os.path.join(src, "deep", "er"))
        for name, data in (("a", b"A" * 5000), ("deep/b", b"B"), ("deep/er/c", b"")):
            with open(os.path.join(src, name), "wb") as f:
                f.write(data)
        os.chmod(os.path.join(src, "a"), 0o640)
        shutil.copy(os.path.join(src, "a"), os.path.join(root, "copy"))
        shutil.copy2(os.path.join(src, "a"), os.path.join(root, "copy2"))
        shutil.copytree(src, os.path.join(root, "tree"))
        shutil.move(os.path.join(root, "tree", "deep"), os.path.join(root, "moved"))
        walked = sorted((os.path.relpath(d, root), sorted(ds), sorted(fs)) for d, ds, fs in os.walk(root))
        modes = [oct(os.stat(os.path.join(root, n)).st_mode) for n in ("copy", "copy2", "tree/a")]
        same_time = os.stat(os.path.join(root, "copy2")).st_mtime_ns == os.stat(os.path.join(src, "a")).st_mtime_ns
        shutil.rmtree(os.path.join(root, "tree"))
        usage = shutil.disk_usage(root)
        return walked, modes, same_time, sorted(os.listdir(root)), usage.total >= usage.used >= 0
    compare(tmp_path, volume, body)


def test_tempfile_and_glob(tmp_path, volume):
    def body(root):
        fd, name = tempfile.mkstemp(suffix=".tmp", dir=root)
        os.write(fd, b"mk")
        os.close(fd)
        out = [os.path.dirname(name) == root, os.path.getsize(name)]
        with tempfile.TemporaryDirectory(dir=root) as d:
            out.append(os.path.isdir(d) and d.startswith(root))
            with tempfile.NamedTemporaryFile("w+", dir=d, suffix=".txt") as f:
                f.write("named")
                f.flush()
                f.seek(0)
                out += [f.read(), os.path.basename(glob.glob(os.path.join(d, "*.txt"))[0]) == os.path.basename(f.name)]
            with tempfile.TemporaryFile(dir=d) as f:
                f.write(b"anon")
                f.seek(0)
                out.append(f.read())
            with tempfile.SpooledTemporaryFile(max_size=4, dir=d) as f:
                f.write(b"spilled over")
                f.seek(0)
                out.append(f.read())
            out.append(os.listdir(d))
        found = glob.glob(os.path.join(root, "**"), recursive=True)
        out.append(sorted(os.path.relpath(p, root) if p != name else "<mkstemp>" for p in found))
        out.append(glob.glob("*.tmp", root_dir=root) == [os.path.basename(name)])
        return out
    compare(tmp_path, volume, body)


def test_sqlite3_under_the_prefix_fails_clearly(volume):
    with pytest.raises(OSError) as info:
        sqlite3.connect(f"{PREFIX}/db.sqlite")
    assert info.value.errno == errno.EOPNOTSUPP
    assert "sqlite3.connect does its file I/O in C" in str(info.value)
    assert info.value.filename == f"{PREFIX}/db.sqlite"
    with pytest.raises(OSError):
        sqlite3.connect(f"file:{PREFIX}/db.sqlite?mode=rwc", uri=True)
    sqlite3.connect(":memory:").close()


def test_numpy_fromfile_fails_clearly(volume, tmp_path):
    numpy = pytest.importorskip("numpy")
    with open(f"{PREFIX}/a.bin", "wb") as f:
        f.write(bytes(range(8)))
    for source in (f"{PREFIX}/a.bin", open(f"{PREFIX}/a.bin", "rb")):
        with pytest.raises(OSError) as info:
            numpy.fromfile(source, dtype=numpy.uint8)
        assert info.value.errno == errno.EOPNOTSUPP
        assert "numpy.fromfile does its file I/O in C" in str(info.value)
    source.close()
    (tmp_path / "real.bin").write_bytes(bytes(range(4)))
    assert numpy.fromfile(tmp_path / "real.bin", dtype=numpy.uint8).tolist() == [0, 1, 2, 3]
    with open(f"{PREFIX}/a.bin", "rb") as f:  # reading through Python works
        assert numpy.frombuffer(f.read(), dtype=numpy.uint8).tolist() == list(range(8))
