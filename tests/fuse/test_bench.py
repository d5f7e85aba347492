"""bench/fuse.py runs: its quick mode over zcsdfs and tmpfs (the other columns mount the same way)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

from tests.fuse.conftest import needs_fuse

BENCH = os.path.join(os.path.dirname(__file__), "..", "..", "bench", "fuse.py")


@needs_fuse
def test_quick_bench_prints_the_table_and_server_cpu_per_opcode(tmp_path):
    out = tmp_path / "figures.json"
    done = subprocess.run([sys.executable, BENCH, "--quick", "--systems", "zcsdfs,T", "--json", str(out)],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    figures = json.loads(out.read_text())
    assert figures["runs"] == 3 and len(figures["loads"]) == 6  # three interleaved runs of two systems
    expected = {"create+4KiB write+close", "stat", "readdir", "unlink", "tar xf", "sqlite inserts"}
    if shutil.which("fio"):
        expected |= {"fio 4KiB randread QD1 direct", "fio 4KiB randwrite QD1 direct",
                     "fio 1MiB buffered write (rw handle)"}
    if shutil.which("db_bench"):
        expected.add("db_bench fillrandom")
    for system in ("zcsdfs", "T"):
        results = figures["results"][system]
        assert set(results) == expected
        assert all(len(values) == 3 and all(v > 0 for v in values) for values in results.values())
    creates = {(system, opcode): (n, timed, us) for system, workload, opcode, n, timed, us in figures["cpu"]
               if workload == "create+4KiB write+close"}
    n, timed, us = creates["zcsdfs", "CREATE"]
    assert 3 * 95 <= n <= 3 * 100  # quick mode creates 100 files a run (counts may rarely lose one)
    assert 0 < timed < n and us > 0  # about an eighth of them timed
    assert ("T", "CREATE") not in creates  # tmpfs has no server to ask
    assert "zcsdfs / T" in done.stdout and "µs CPU / request" in done.stdout
