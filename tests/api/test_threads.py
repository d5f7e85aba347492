"""Several threads reading and writing different files and the same file at once.

Every body joins its threads before it returns, and returns only what is
deterministic whatever the interleaving (contents, sorted record sets, sizes).
"""

import threading

import pytest

from tests.api.tree import get

THREADS = 4


def together(work, n=THREADS):
    """Run ``work(i)`` in n threads released at once; re-raise the first failure."""
    start = threading.Barrier(n)
    errors = []

    def run(i):
        start.wait()
        try:
            work(i)
        except BaseException as e:  # handed to the test thread, which re-raises it
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def test_different_files(both):
    def body(osx):
        def work(i):
            fd = osx.open(f"t{i}", osx.O_RDWR | osx.O_CREAT)
            for k in range(100):
                osx.write(fd, bytes([65 + i]) * 97)
            osx.close(fd)
        together(work)
        return [(len(get(osx, f"t{i}")), set(get(osx, f"t{i}"))) for i in range(THREADS)]
    assert both.run(body) == [(9700, [65 + i]) for i in range(THREADS)]


@pytest.mark.parametrize("stride", [1, 7, 4096])
def test_same_file_interleaved_regions(both, stride):
    """Thread i owns every THREADS-th chunk of ``stride`` bytes: chunks share blocks when small."""
    chunks = 400

    def body(osx):
        osx.close(osx.open("shared", osx.O_WRONLY | osx.O_CREAT))

        def work(i):
            fd = osx.open("shared", osx.O_WRONLY)
            for c in range(i, chunks, THREADS):
                osx.pwrite(fd, bytes([48 + i]) * stride, c * stride)
            osx.close(fd)
        together(work)
        content = get(osx, "shared")
        expected = b"".join(bytes([48 + c % THREADS]) * stride for c in range(chunks))
        return len(content), content == expected
    assert both.run(body) == (chunks * stride, True)


def test_append_records_stay_whole(both):
    def body(osx):
        def work(i):
            fd = osx.open("log", osx.O_WRONLY | osx.O_CREAT | osx.O_APPEND)
            for k in range(200):
                osx.write(fd, b"T%d:%04d\n" % (i, k))
            osx.close(fd)
        together(work)
        content = get(osx, "log")
        return len(content), sorted(content.splitlines()) == sorted(
            b"T%d:%04d" % (i, k) for i in range(THREADS) for k in range(200))
    assert both.run(body) == (THREADS * 200 * 8, True)


def test_shared_descriptor_offset_is_not_lost(both):
    def body(osx):
        fd = osx.open("shared", osx.O_WRONLY | osx.O_CREAT)

        def work(i):
            for k in range(150):
                osx.write(fd, b"%d%05d|" % (i, k))
        together(work)
        content = get(osx, "shared")
        return len(content), sorted(content.split(b"|")[:-1]) == sorted(
            b"%d%05d" % (i, k) for i in range(THREADS) for k in range(150))
    assert both.run(body) == (THREADS * 150 * 7, True)


def test_readers_beside_a_writer(both):
    def body(osx):
        fd = osx.open("f", osx.O_RDWR | osx.O_CREAT)
        osx.write(fd, b"A" * 8192)
        seen = set()

        def work(i):
            if i == 0:
                for k in range(100):
                    osx.pwrite(fd, bytes([66 + k % 20]) * 4096, 4096 * (k % 2))
            else:
                rfd = osx.open("f", osx.O_RDONLY)
                for _ in range(100):
                    block = osx.pread(rfd, 4096, 0)
                    seen.add((len(block), set(block) <= set(range(65, 86))))
                osx.close(rfd)
        together(work)
        return sorted(seen), osx.fstat(fd).st_size
    assert both.run(body) == ([(4096, True)], 8192)


def test_namespace_changes_in_parallel(both):
    def body(osx):
        def work(i):
            osx.mkdir(f"dir{i}")
            for k in range(40):
                osx.close(osx.open(f"dir{i}/n{k}", osx.O_WRONLY | osx.O_CREAT))
            for k in range(0, 40, 2):
                osx.rename(f"dir{i}/n{k}", f"dir{i}/r{k}")
            for k in range(0, 40, 4):
                osx.unlink(f"dir{i}/r{k}")
        together(work)
        return [sorted(osx.listdir(f"dir{i}")) for i in range(THREADS)], sorted(osx.listdir("."))
    names, top = both.run(body)
    assert top == [f"dir{i}" for i in range(THREADS)] and len(names[0]) == 30


def test_same_directory_creates(both):
    def body(osx):
        def work(i):
            for k in range(50):
                fd = osx.open(f"c{i}-{k}", osx.O_WRONLY | osx.O_CREAT | osx.O_EXCL)
                osx.write(fd, b"%d" % k)
                osx.close(fd)
        together(work)
        return len(osx.listdir(".")), osx.stat(".").st_nlink
    assert both.run(body) == (THREADS * 50, 2)


def test_exclusive_create_has_one_winner(both):
    def body(osx):
        wins = []

        def work(i):
            for k in range(30):
                try:
                    osx.close(osx.open(f"race{k}", osx.O_WRONLY | osx.O_CREAT | osx.O_EXCL))
                    wins.append(k)
                except FileExistsError:
                    pass
        together(work)
        return sorted(wins)
    assert both.run(body) == list(range(30))


def test_file_objects_in_threads(both):
    def body(osx):
        def work(i):
            with osx.io.open(f"text{i}", "w") as f:
                for k in range(200):
                    f.write(f"{i} line {k}\n")
            with osx.io.open(f"text{i}") as f:
                assert len(f.readlines()) == 200
        together(work)
        return sorted(osx.listdir("."))
    both.run(body)
