"""Write N keys into a DB in a volume image, or check them all, in a process of its own.

``python -m tests.rocksdb.bulk write IMAGE N`` fills, flushes, compacts and closes;
``python -m tests.rocksdb.bulk check IMAGE N`` reopens and checks every key and value
(and that there is nothing else), printing one summary line.
"""

import sys

import zcsdfs
from zcsdfs.rocksdb import DB, Options, WriteBatch

OPTIONS = Options(write_buffer_size=8 << 20, target_file_size_base=8 << 20, max_bytes_for_level_base=32 << 20)
STRIDE = 7919  # a prime: keys are written in a scattered order


def key(k: int) -> bytes:
    return b"key%013d" % k


def value(k: int) -> bytes:
    return (b"%010d" % k) * 10


def write(image: str, n: int) -> None:
    with zcsdfs.Volume(image) as vol, DB("/bulk", volume=vol, options=OPTIONS) as db:
        batch = WriteBatch()
        for i in range(n):
            k = i * STRIDE % n
            batch.put(key(k), value(k))
            if len(batch) == 1000:
                db.write(batch)
                batch.clear()
        db.write(batch)
        db.flush()
        db.compact_range()
        files = db.live_files()
        print(f"wrote {n} keys: {len(files)} SSTs, levels {sorted({f['level'] for f in files})}")


def check(image: str, n: int) -> None:
    with zcsdfs.Volume(image) as vol, DB("/bulk", volume=vol, options=OPTIONS) as db:
        count = 0
        for (k, v) in db.items():
            if k != key(count) or v != value(count):
                raise SystemExit(f"entry {count}: {k!r} {v[:20]!r}... expected {key(count)!r}")
            count += 1
        if count != n:
            raise SystemExit(f"{count} keys, expected {n}")
        for k in range(0, n, max(1, n // 1000)):  # point reads too, through the SSTs' indexes
            if db[key(k)] != value(k):
                raise SystemExit(f"get {key(k)!r} is wrong")
        names = vol.listdir("/bulk")
        print(f"checked {count} keys; files: {sum(x.endswith('.sst') for x in names)} .sst, "
              f"{sum(x.startswith('MANIFEST-') for x in names)} MANIFEST, {sum(x.endswith('.log') for x in names)} .log")


if __name__ == "__main__":
    {"write": write, "check": check}[sys.argv[1]](sys.argv[2], int(sys.argv[3]))
