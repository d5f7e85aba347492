"""Real programs on a real mount, each result checked (not just the exit status)."""

from __future__ import annotations

import contextlib
import filecmp
import hashlib
import os
import re
import shutil
import sqlite3
import subprocess

import pytest

from tests.fuse.conftest import needs_fuse, require

pytestmark = needs_fuse


def run(cmd, cwd=None, **kw) -> str:
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120, **kw)
    assert done.returncode == 0, f"{cmd}: {done.stderr}{done.stdout}"
    return done.stdout


def digest(path) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_coreutils(mnt, tmp_path):
    data = os.urandom(3 << 20) + b"tail"
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    run(["cp", str(src), "a.bin"], cwd=mnt)
    assert digest(f"{mnt}/a.bin") == digest(src)
    run(["mkdir", "-p", "d/e"], cwd=mnt)
    run(["mv", "a.bin", "d/e/b.bin"], cwd=mnt)
    run(["ln", "d/e/b.bin", "hard"], cwd=mnt)
    run(["ln", "-s", "d/e/b.bin", "soft"], cwd=mnt)
    assert run(["ls", "-1", mnt]).split() == ["d", "hard", "soft"]
    assert run(["stat", "-c", "%h %s %F", "hard"], cwd=mnt).strip() == f"2 {len(data)} regular file"
    assert run(["readlink", "soft"], cwd=mnt).strip() == "d/e/b.bin"
    assert run(["stat", "-L", "-c", "%i", "soft"], cwd=mnt) == run(["stat", "-c", "%i", "hard"], cwd=mnt)
    run(["dd", "if=/dev/zero", "of=z", "bs=64k", "count=16", "conv=fsync", "status=none"], cwd=mnt)
    assert os.path.getsize(f"{mnt}/z") == 1 << 20
    run(["dd", "if=hard", "of=part", "bs=4096", "skip=10", "count=3", "status=none"], cwd=mnt)
    assert open(f"{mnt}/part", "rb").read() == data[40960:40960 + 12288]
    assert sorted(run(["find", ".", "-type", "f"], cwd=mnt).split()) == ["./d/e/b.bin", "./hard", "./part", "./z"]
    kib = int(run(["du", "-sk", "."], cwd=mnt).split()[0])
    assert (len(data) + (1 << 20) + 12288) // 1024 <= kib < (len(data) + (1 << 20)) // 1024 + 64
    run(["tar", "-cf", str(tmp_path / "t.tar"), "-C", mnt, "."])
    out = tmp_path / "out"
    out.mkdir()
    run(["tar", "-xf", str(tmp_path / "t.tar"), "-C", str(out)])
    assert digest(out / "d/e/b.bin") == digest(src)
    assert os.readlink(out / "soft") == "d/e/b.bin"
    run(["tar", "-xf", str(tmp_path / "t.tar"), "-C", mnt, "--transform", "s,^\\./,copy/,"])
    assert digest(f"{mnt}/copy/hard") == digest(src)
    run(["rm", "-r", "copy", "d"], cwd=mnt)
    assert run(["stat", "-c", "%h", "hard"], cwd=mnt).strip() == "1"


def test_copytree_filecmp(mnt, tmp_path):
    tree = tmp_path / "tree"
    for i in range(6):
        sub = tree / f"dir{i}" / "inner"
        sub.mkdir(parents=True)
        for j in range(5):
            (sub / f"f{j}.txt").write_bytes(os.urandom(1000 * (i * 5 + j) + 1))
    (tree / "link").symlink_to("dir0")
    dst = os.path.join(mnt, "copy")
    shutil.copytree(tree, dst, symlinks=True)
    cmp = filecmp.dircmp(tree, dst)
    stack = [cmp]
    while stack:
        c = stack.pop()
        assert not (c.left_only or c.right_only or c.diff_files or c.funny_files), c.report()
        stack.extend(c.subdirs.values())
    for i in range(6):
        for j in range(5):
            rel = f"dir{i}/inner/f{j}.txt"
            assert filecmp.cmp(tree / rel, os.path.join(dst, rel), shallow=False)
    back = tmp_path / "back"
    shutil.copytree(dst, back, symlinks=True)
    assert os.readlink(back / "link") == "dir0"
    shutil.rmtree(dst)
    assert os.listdir(mnt) == []


def test_git(mnt):
    require("git")
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@e", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@e", HOME=mnt)
    repo = os.path.join(mnt, "repo")
    run(["git", "init", "-q", repo], env=env)
    for i in range(20):
        with open(os.path.join(repo, f"file{i}.txt"), "w") as f:
            f.write(f"line {i}\n" * (i + 1))
    run(["git", "add", "."], cwd=repo, env=env)
    run(["git", "commit", "-q", "-m", "first"], cwd=repo, env=env)
    os.rename(os.path.join(repo, "file0.txt"), os.path.join(repo, "renamed.txt"))
    run(["git", "add", "-A"], cwd=repo, env=env)
    run(["git", "commit", "-q", "-m", "second"], cwd=repo, env=env)
    run(["git", "fsck", "--full", "--strict"], cwd=repo, env=env)
    assert run(["git", "log", "--format=%s"], cwd=repo, env=env).split() == ["second", "first"]
    assert run(["git", "show", "HEAD:file3.txt"], cwd=repo, env=env) == "line 3\n" * 4
    assert run(["git", "status", "--porcelain"], cwd=repo, env=env) == ""


def test_sqlite(mnt):
    path = os.path.join(mnt, "db.sqlite")
    with contextlib.closing(sqlite3.connect(path)) as db, db:  # the connection's "with" only commits
        db.execute("create table t (k integer primary key, v text)")
        db.executemany("insert into t values (?, ?)", ((i, f"value-{i}" * 10) for i in range(5000)))
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("create index iv on t (v)")
        assert db.execute("select count(*), sum(k) from t").fetchone() == (5000, sum(range(5000)))
        assert db.execute("select v from t where k = 4321").fetchone() == ("value-4321" * 10,)
        db.execute("delete from t where k % 2 = 0")
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("pragma integrity_check").fetchone() == ("ok",)
        assert db.execute("select count(*) from t").fetchone() == (2500,)


@pytest.mark.parametrize("rw,bs,size", [("write", "64k", "8M"), ("randwrite", "4k", "2M"),
                                        ("randrw", "16k", "4M")])
def test_fio_verify(mnt, rw, bs, size):
    require("fio")
    out = run(["fio", "--name=job", f"--filename={mnt}/fio.dat", f"--rw={rw}", f"--bs={bs}", f"--size={size}",
               "--ioengine=psync", "--verify=crc32c", "--verify_fatal=1", "--verify_state_save=0", "--randrepeat=1", "--output-format=terse",
               "--terse-version=3"])
    fields = out.strip().splitlines()[-1].split(";")
    assert fields[4] == "0", out  # the job's error status
    read_kb, write_kb = int(fields[5]), int(fields[46])
    total_kb = int(size[:-1]) * 1024
    assert write_kb == total_kb if rw != "randrw" else 0 < write_kb < total_kb
    assert read_kb >= total_kb // 2  # the verify pass read back what was written
    assert os.path.getsize(f"{mnt}/fio.dat") == total_kb * 1024


def test_db_bench(mnt):
    require("db_bench")
    db = os.path.join(mnt, "rocks")
    common = [f"--db={db}", "--num=3000", "--value_size=100", "--compression_type=none", "--threads=1"]
    out = run(["db_bench", "--benchmarks=fillrandom,overwrite,fillseq,readrandom", *common])
    for bench in ("fillrandom", "overwrite", "fillseq", "readrandom"):
        assert re.search(rf"^{bench}\s*:.*3000 operations", out, re.M), out
    assert "(3000 of 3000 found)" in out, out
    again = run(["db_bench", "--benchmarks=readrandom", "--use_existing_db=1", *common])
    assert "(3000 of 3000 found)" in again, again
    assert any(name.endswith(".sst") for name in os.listdir(db))
