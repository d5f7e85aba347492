"""bench/rocksdb.py --quick: every section runs, the perf one as interleaved rounds with their spread."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_quick_bench_prints_every_section():
    done = subprocess.run([sys.executable, "bench/rocksdb.py", "--quick"], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "1000"}, timeout=600)
    assert done.returncode == 0, done.stderr
    out = " ".join(done.stdout.split())  # a title rich wraps reads as one line
    assert "min / median / max of 3 interleaved rounds" in out and "load average" in out
    for workload in ("fillrandom", "readrandom", "seekrandom", "overwrite"):
        assert workload in out
    assert "File-system write amplification" in out and "Scans of 20,000 keys" in out
    assert "prefix 07-" in out and "value field 42" in out and "offloaded (sst_prefix)" in out
