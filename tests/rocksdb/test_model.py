"""The DB against a dict under hypothesis: puts, deletes, batches, iterators, snapshots,
flushes, compactions and reopening, on small memtables so that data moves between levels."""

import bisect

import hypothesis.strategies as st
from hypothesis import settings
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, precondition, rule

import zcsdfs
from zcsdfs.rocksdb import DB, Options, WriteBatch
from zcsdfs.zns import ZonedDevice

from .conftest import GEOMETRY

keys = st.binary(min_size=0, max_size=4).map(lambda b: b"k" + b)  # few keys: many overwrites
values = st.binary(max_size=300)
OPTIONS = Options(write_buffer_size=16 << 10, target_file_size_base=16 << 10,
                  max_bytes_for_level_base=64 << 10, level0_file_num_compaction_trigger=2)


def expected_walk(model: dict, start, backwards: bool, lower, upper):
    ks = sorted(k for k in model if (lower is None or k >= lower) and (upper is None or k < upper))
    if backwards:
        end = len(ks) if start is None else bisect.bisect_right(ks, start)
        return [(k, model[k]) for k in reversed(ks[:end])]
    begin = 0 if start is None else bisect.bisect_left(ks, start)
    return [(k, model[k]) for k in ks[begin:]]


class DBModel(RuleBasedStateMachine):
    snapshots = Bundle("snapshots")

    @initialize()
    def open(self):
        self.vol = zcsdfs.Volume(ZonedDevice.memory(GEOMETRY))
        self.db = DB("/db", volume=self.vol, options=OPTIONS)
        self.model = {}
        self.views = []  # (snapshot, the model when it was taken)

    @rule(k=keys, v=values, sync=st.booleans())
    def put(self, k, v, sync):
        self.db.put(k, v, sync=sync)
        self.model[k] = v

    @rule(k=keys)
    def delete(self, k):
        del self.db[k]
        self.model.pop(k, None)

    @rule(ops=st.lists(st.tuples(keys, st.none() | values), max_size=20))
    def batch(self, ops):
        b = WriteBatch()
        for k, v in ops:
            if v is None:
                b.delete(k)
            else:
                b.put(k, v)
        self.db.write(b)
        for k, v in ops:
            if v is None:
                self.model.pop(k, None)
            else:
                self.model[k] = v

    @rule(k=keys)
    def get(self, k):
        assert self.db.get(k) == self.model.get(k)
        assert (k in self.db) == (k in self.model)

    @rule(start=st.none() | keys, backwards=st.booleans(), lower=st.none() | keys, upper=st.none() | keys)
    def walk(self, start, backwards, lower, upper):
        got = list(self.db.items(start, backwards=backwards, lower=lower, upper=upper))
        assert got == expected_walk(self.model, start, backwards, lower, upper)

    @rule(prefix=st.binary(max_size=2).map(lambda b: b"k" + b))
    def prefix(self, prefix):
        got = list(self.db.keys(prefix=prefix))
        assert got == sorted(k for k in self.model if k.startswith(prefix))

    @precondition(lambda self: len(self.views) < 3)
    @rule()
    def snapshot(self):
        self.views.append((self.db.snapshot(), dict(self.model)))

    @precondition(lambda self: self.views)
    @rule(k=keys, which=st.integers(0, 2))
    def read_snapshot(self, k, which):
        snap, model = self.views[which % len(self.views)]
        assert snap.get(k) == model.get(k)
        assert list(snap.items()) == sorted(model.items())

    @precondition(lambda self: self.views)
    @rule()
    def release(self):
        snap, _ = self.views.pop(0)
        snap.release()

    @rule()
    def flush(self):
        self.db.flush()

    @rule()
    def compact(self):
        self.db.compact_range()

    @rule()
    def reopen(self):
        for snap, _ in self.views:
            snap.release()
        self.views.clear()
        self.db.close()
        self.db = DB("/db", volume=self.vol, options=OPTIONS)

    @invariant()
    def size(self):
        if hasattr(self, "db"):
            assert len(list(self.db.keys())) == len(self.model)

    def teardown(self):
        if hasattr(self, "db"):
            self.db.close()
            self.vol.unmount()


TestDBModel = DBModel.TestCase
TestDBModel.settings = settings(max_examples=40, stateful_step_count=40, deadline=None)
