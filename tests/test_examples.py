"""Every program in examples/ runs as its docstring says and prints what it promises."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fuse.conftest import needs_fuse

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
BIN = Path(sys.executable).parent


@pytest.fixture
def env(tmp_path):
    """The examples' environment: this interpreter's zcsdfs first on PATH, the default device in tmp_path."""
    return dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}", ZCSDFS_DEVICE=str(tmp_path / "default.zns"))


def run(argv, env, cwd) -> str:
    result = subprocess.run([str(a) for a in argv], capture_output=True, text=True, env=env, cwd=cwd, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def test_every_example_is_tested():
    tested = {"os_api.py", "shim_app.py", "fuse_mount.py", "csd_fadvise.py", "opencsd_xattr.py", "csd_kernels.py"}
    assert {p.name for p in EXAMPLES.glob("*.py")} == tested
    readme = (EXAMPLES / "README.md").read_text()
    assert all(f"`{name}`" in readme for name in tested)


def test_os_api(env, tmp_path):
    out = run([sys.executable, EXAMPLES / "os_api.py"], env, tmp_path)
    assert out.splitlines()[0] == "b'hello'"
    assert "hello.txt" in out and "squares.csv" in out and "MiB free of" in out
    import zcsdfs
    with zcsdfs.Volume(tmp_path / "default.zns") as vol:  # it went to the default device, and stayed
        assert sorted(vol.listdir("/examples")) == ["hello.txt", "squares.csv"]


def test_shim_app_under_zcsdfs_run(env, tmp_path):
    out = run([BIN / "zcsdfs", "run", "--mount", "/zcsd=memory", "--", sys.executable, EXAMPLES / "shim_app.py"],
              env, tmp_path)
    assert out.splitlines() == ["100 lines; last: event 99", "['app.log', 'app.log.1']"]


def test_shim_app_tells_how_to_run_it(env, tmp_path):
    result = subprocess.run([sys.executable, EXAMPLES / "shim_app.py", str(tmp_path / "nowhere")],
                            capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 1 and "zcsdfs run -- python" in result.stderr


def test_csd_fadvise(env, tmp_path):
    out = run([sys.executable, EXAMPLES / "csd_fadvise.py"], env, tmp_path)
    assert "read returned 2048 bytes for a 4 MiB file" in out
    assert "returned 2,048" in out


def test_opencsd_xattr_in_process(env, tmp_path):
    out = run([sys.executable, EXAMPLES / "opencsd_xattr.py"], env, tmp_path)
    assert "kernel: 131072 of 262144 values above 2^31 (host check: 131072); 8 bytes came back" in out


def test_csd_kernels(env, tmp_path):
    out = run([sys.executable, EXAMPLES / "csd_kernels.py"], env, tmp_path)
    assert "may contain: {b'alice': 1, b'bob': 1, b'carol': 0}" in out


@needs_fuse
def test_fuse_mount_and_opencsd_through_it(env, tmp_path):
    image, mnt = tmp_path / "f.zns", tmp_path / "mnt"
    out = run([sys.executable, EXAMPLES / "fuse_mount.py", image, mnt], env, tmp_path)
    assert "copies match: True" in out and "copy.bin" in out
    assert not os.path.ismount(mnt)
    run([BIN / "zcsdfs", "mount", image, mnt], env, tmp_path)
    try:
        out = run([sys.executable, EXAMPLES / "opencsd_xattr.py", mnt], env, tmp_path)
    finally:
        run([BIN / "zcsdfs", "umount", mnt], env, tmp_path)
    assert "kernel: 131072 of 262144 values above 2^31 (host check: 131072); 8 bytes came back" in out
