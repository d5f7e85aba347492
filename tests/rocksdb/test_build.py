"""The native part: built on first import into a cache; without a compiler, an ImportError
that says what to install, while the rest of zcsdfs keeps working."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def python(code: str, **env):
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **env})


def test_without_a_compiler_the_import_error_says_what_to_install(tmp_path):
    done = python("import zcsdfs.rocksdb", XDG_CACHE_HOME=str(tmp_path / "cache"), CXX=str(tmp_path / "no-g++"))
    assert done.returncode != 0
    assert "ImportError" in done.stderr and "apt-get install g++ librocksdb-dev" in done.stderr
    ok = python("import zcsdfs; v = zcsdfs.Volume.memory(); v.mkdir('/x'); print(v.listdir('/'))",
                XDG_CACHE_HOME=str(tmp_path / "cache"), CXX=str(tmp_path / "no-g++"))
    assert ok.returncode == 0 and "['x']" in ok.stdout


def test_a_fresh_cache_builds_and_a_second_import_reuses_it(tmp_path):
    cache = tmp_path / "cache"
    first = python("import zcsdfs.rocksdb", XDG_CACHE_HOME=str(cache))
    assert first.returncode == 0, first.stderr
    built = list((cache / "zcsdfs" / "rocksdb").glob("*.so"))
    assert len(built) == 1
    stamp = built[0].stat().st_mtime_ns
    again = python("import zcsdfs.rocksdb", XDG_CACHE_HOME=str(cache), CXX=str(tmp_path / "no-g++"))
    assert again.returncode == 0, again.stderr  # no compiler needed once built
    assert built[0].stat().st_mtime_ns == stamp


def test_without_python_headers_the_import_error_says_so(tmp_path):
    code = ("import sysconfig; paths = sysconfig.get_paths; "
            "sysconfig.get_paths = lambda *a, **k: {**paths(*a, **k), 'include': '/nonexistent/include'}; "
            "import zcsdfs.rocksdb")
    done = python(code, XDG_CACHE_HOME=str(tmp_path / "cache"))
    assert done.returncode != 0
    assert "ImportError" in done.stderr and "no Python.h in /nonexistent/include" in done.stderr
    assert not list((tmp_path / "cache").glob("**/*.so"))  # nothing half-built left behind
