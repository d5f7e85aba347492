"""Threads: several threads on volume and real paths at once, while another prefix comes and goes."""

import os
import threading

import zcsdfs
import zcsdfs.shim as shim
from tests.shim.conftest import PREFIX

ROUNDS = 40


def worker(root, index, errors, barrier):
    barrier.wait()
    try:
        for n in range(ROUNDS):
            path = os.path.join(root, f"t{index}-{n}")
            with open(path, "wb") as f:
                f.write(bytes([index]) * (n + 1))
            fd = os.open(path, os.O_RDONLY)
            try:
                assert os.read(fd, 1000) == bytes([index]) * (n + 1)
                assert os.fstat(fd).st_size == n + 1
            finally:
                os.close(fd)
            with open(os.path.join(root, "shared"), "ab") as f:
                f.write(b"%02d\n" % index)
            os.unlink(path)
    except BaseException as exc:  # reported by the main thread
        errors.append(exc)


def test_threads_on_both_sides(volume, tmp_path):
    roots = [PREFIX, str(tmp_path)] * 3
    errors: list = []
    barrier = threading.Barrier(len(roots) + 1)
    threads = [threading.Thread(target=worker, args=(root, i, errors, barrier)) for i, root in enumerate(roots)]
    for t in threads:
        t.start()
    barrier.wait()
    for _ in range(10):  # mount and unmount a second prefix while the workers run
        extra = zcsdfs.Volume.memory("tiny")
        with shim.mounted("/zcsdfs-shim-extra", extra):
            open("/zcsdfs-shim-extra/x", "w").close()
        extra.unmount()
    for t in threads:
        t.join()
    assert errors == []
    for root in (PREFIX, str(tmp_path)):
        assert os.listdir(root) == ["shared"]
        with open(os.path.join(root, "shared"), "rb") as f:
            lines = f.read().splitlines()
        assert len(lines) == 3 * ROUNDS
        assert {int(line) for line in lines} == {i for i, r in enumerate(roots) if r == root}
