"""The per-call paths of zcsdfs.rocksdb, A/B in one process: a memtable get and put through
fast.cc (what DB.get/DB.put do) against the same call through RocksDB's C API by cffi's ABI
mode (what they did before fast.cc: an error cell, a malloc'd copy, ffi.unpack, free),
and rocksdict's get and put on tmpfs when it is installed. Interleaved rounds; prints
min / median / max microseconds a call.

    python bench/rocksdb_paths.py [--keys N] [--rounds R]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import tempfile
import time

import zcsdfs
from zcsdfs.rocksdb import DB
from zcsdfs.rocksdb._native import ffi, lib
from zcsdfs.zns import ZonedDevice


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keys", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    rng = random.Random(1)
    keys = [b"%016d" % rng.randrange(10**12) for _ in range(args.keys)]
    value = b"v" * 100
    vol = zcsdfs.Volume(ZonedDevice.memory("qemu"))
    db = DB("/db", volume=vol)
    for k in keys:
        db.put(k, value)
    err, size = ffi.new("char**"), ffi.new("size_t*")
    handle, read, write = db._db, db._read, db._write[False, False]

    def abi_get(k):
        p = lib.rocksdb_get(handle, read, k, len(k), size, err)
        out = ffi.unpack(p, size[0])
        lib.rocksdb_free(p)
        return out

    def abi_put(k, v):
        lib.rocksdb_put(handle, write, k, len(k), v, len(v), err)

    paths = {"get: fast.cc (DB.get)": (db.get, False), "get: C API by cffi ABI": (abi_get, False),
             "put: fast.cc (DB.put)": (db.put, True), "put: C API by cffi ABI": (abi_put, True)}
    work = None
    try:
        from rocksdict import Options, Rdict
        work = tempfile.mkdtemp(dir="/dev/shm")
        opt = Options(raw_mode=True)
        opt.create_if_missing(True)
        rd = Rdict(os.path.join(work, "db"), opt)
        for k in keys:
            rd.put(k, value)
        paths["get: rocksdict"] = (rd.get, False)
        paths["put: rocksdict"] = (rd.put, True)
    except ImportError:
        rd = None
    probe = keys[:]
    times = {name: [] for name in paths}
    for _ in range(args.rounds):
        rng.shuffle(probe)
        for name, (fn, is_put) in paths.items():
            t = time.perf_counter()
            if is_put:
                for k in probe:
                    fn(k, value)
            else:
                for k in probe:
                    fn(k)
            times[name].append((time.perf_counter() - t) / len(probe) * 1e6)
    print(f"{args.keys:,} keys in the memtable, {args.rounds} interleaved rounds, load average "
          f"{os.getloadavg()[0]:.1f}: microseconds a call, min / median / max")
    for name, t in times.items():
        t.sort()
        print(f"  {name:26} {t[0]:6.2f} / {statistics.median(t):6.2f} / {t[-1]:6.2f}")
    db.close()
    vol.unmount()
    if rd is not None:
        rd.close()
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
