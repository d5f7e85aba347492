"""Unmodified programs under ``zcsdfs run`` (and ``python -m zcsdfs.shim``), their files checked
afterwards by mounting the same image directly."""

import os
import subprocess
import sys
import textwrap

import pytest

import zcsdfs
from zcsdfs.zns import ZonedDevice
from zcsdfs.lfs import mkfs

APP = textwrap.dedent("""
    import json, logging, os, pathlib, shutil, sys, tempfile, zipfile

    root = pathlib.Path(sys.argv[1])
    (root / "src" / "nested").mkdir(parents=True)
    (root / "src" / "config.json").write_text(json.dumps({"zones": 32, "name": sys.argv[2]}))
    (root / "src" / "nested" / "data.bin").write_bytes(bytes(range(256)) * 40)
    shutil.copytree(root / "src", root / "backup")
    with tempfile.TemporaryDirectory(dir=root) as scratch:
        archive = pathlib.Path(scratch) / "out.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
            for path in sorted((root / "backup").rglob("*")):
                if path.is_file():
                    z.write(path, path.relative_to(root))
        shutil.copy(archive, root / "bundle.zip")
    with zipfile.ZipFile(root / "bundle.zip") as z:
        z.extractall(root / "unpacked")
    log = logging.getLogger("app")
    handler = logging.FileHandler(root / "app.log")
    log.addHandler(handler)
    log.warning("config %s", json.loads((root / "unpacked" / "backup" / "config.json").read_text()))
    handler.close()
    print(sorted(os.listdir(root)), os.getcwd() == os.path.realpath("."))
""")


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "dev.zns"
    with ZonedDevice.create(path, "tiny") as device:
        mkfs(device)
    return path


def run(args, cwd):
    return subprocess.run(args, capture_output=True, text=True, cwd=cwd, timeout=120)


def test_program_under_zcsdfs_run(tmp_path, image):
    (tmp_path / "app.py").write_text(APP)
    done = run([sys.executable, "-m", "zcsdfs.cli", "run", "--mount", f"/zcsd-app={image}", "--",
                "python", "app.py", "/zcsd-app", "demo"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['app.log', 'backup', 'bundle.zip', 'src', 'unpacked'] True"
    with zcsdfs.Volume(image) as vol:
        assert sorted(vol.listdir("/")) == ["app.log", "backup", "bundle.zip", "src", "unpacked"]
        with vol.io.open("/app.log") as f:
            assert f.read() == "config {'zones': 32, 'name': 'demo'}\n"
        with vol.io.open("/unpacked/backup/nested/data.bin", "rb") as f:
            assert f.read() == bytes(range(256)) * 40
    assert sorted(os.listdir(tmp_path)) == ["app.py", "dev.zns"]


def test_python_dash_m_zcsdfs_shim_with_two_mounts(tmp_path, image):
    code = ("import os, shutil; open('/a/f', 'w').write('x'); shutil.move('/a/f', '/b/g'); "
            "print(os.listdir('/a'), os.listdir('/b'))")
    done = run([sys.executable, "-m", "zcsdfs.shim", "--mount", f"/a={image}", "--mount", "/b=memory:tiny",
                "-c", code], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[] ['g']"


def test_program_errors_and_exit_status_pass_through(tmp_path):
    (tmp_path / "fail.py").write_text("import sys\nopen('/zcsd-x/missing')\n")
    done = run([sys.executable, "-m", "zcsdfs.shim", "--mount", "/zcsd-x=memory:tiny", "fail.py"], cwd=tmp_path)
    assert done.returncode == 1
    assert "FileNotFoundError: [Errno 2] No such file or directory: '/zcsd-x/missing'" in done.stderr
    (tmp_path / "exit.py").write_text("raise SystemExit(7)\n")
    assert run([sys.executable, "-m", "zcsdfs.shim", "--mount=/z=memory:tiny", "exit.py"], cwd=tmp_path).returncode == 7


def test_zcsdfs_run_refuses_other_programs(tmp_path):
    done = run([sys.executable, "-m", "zcsdfs.cli", "run", "--", "ls", "/"], cwd=tmp_path)
    assert done.returncode == 1
    assert "the shim works inside Python programs only" in done.stderr


def test_missing_device_image(tmp_path):
    done = run([sys.executable, "-m", "zcsdfs.shim", "--mount", f"/z={tmp_path}/nope.zns", "-c", "pass"],
               cwd=tmp_path)
    assert done.returncode == 2
    assert "no such device image" in done.stderr
