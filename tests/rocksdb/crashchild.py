"""A writer to be killed: ``python -m tests.rocksdb.crashchild IMAGE SEED`` puts keys with
``sync=True`` (and unsynced ones between them) and prints each synced key's number once
``put`` has returned; the test kills it with SIGKILL at a point of its choosing."""

import random
import sys

import zcsdfs
from zcsdfs.rocksdb import DB, Options, WriteBatch

OPTIONS = Options(write_buffer_size=64 << 10, target_file_size_base=64 << 10,
                  max_bytes_for_level_base=256 << 10, level0_file_num_compaction_trigger=2)


def synced_key(i: int) -> bytes:
    return b"synced%08d" % i


def value(i: int, seed: int) -> bytes:
    return (b"%d:%d;" % (seed, i)) * (1 + i % 50)


def main(image: str, seed: int) -> None:
    rng = random.Random(seed)
    vol = zcsdfs.Volume(image)
    db = DB("/db", volume=vol, options=OPTIONS)
    i = 0
    while True:
        for _ in range(rng.randrange(20)):  # unsynced writes: may be lost, never half-applied
            j = rng.randrange(1 << 20)
            db.put(b"loose%08d" % j, value(j, seed))
        if rng.random() < 0.2:
            batch = WriteBatch()
            batch.put(synced_key(i), value(i, seed))
            batch.put(b"pair%08d" % i, value(i, seed))
            db.write(batch, sync=True)
        else:
            db.put(synced_key(i), value(i, seed), sync=True)
        sys.stdout.write(f"{i}\n")
        sys.stdout.flush()
        i += 1


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
