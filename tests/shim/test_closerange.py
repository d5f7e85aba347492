"""``os.closerange`` under the shim: the volumes' own ``close_range``, over every mounted volume.

Each mounted volume's descriptors in the range close through it, real ones
close, and every number a zcsdfs table holds is spared: the reserves the
volumes duplicate from, and the descriptors of a volume that is not mounted
(closing those behind its back would leave it a number that is not its own).
"""

import errno
import fcntl
import os

import pytest

import zcsdfs
import zcsdfs.shim as shim
from tests.api.conftest import GEOMETRY


def closed(fd: int) -> bool:
    try:
        fcntl.fcntl(fd, fcntl.F_GETFD)
    except OSError as exc:
        assert exc.errno == errno.EBADF
        return True
    return False


@pytest.fixture
def volumes():
    a, b, c = (zcsdfs.Volume.memory(GEOMETRY) for _ in range(3))
    with shim.mounted("/zcsdfs-closerange-a", a), shim.mounted("/zcsdfs-closerange-b", b):
        yield a, b, c
    for vol in (a, b, c):
        vol.unmount()


def test_closerange_closes_through_each_volume_and_spares_zcsdfs_numbers(volumes):
    a, b, unmounted = volumes
    in_a = os.open("/zcsdfs-closerange-a/f", os.O_CREAT | os.O_RDWR)
    real = os.open(os.devnull, os.O_RDONLY)
    in_b = os.open("/zcsdfs-closerange-b/g", os.O_CREAT | os.O_RDWR)
    in_c = unmounted.open("/h", os.O_CREAT | os.O_RDWR)
    low, high = min(in_a, real, in_b, in_c), max(in_a, real, in_b, in_c) + 1
    above = fcntl.fcntl(real, fcntl.F_DUPFD, high)  # a real one just past the range
    os.closerange(low, high)
    assert not a.owns(in_a) and not b.owns(in_b)
    assert closed(real) and closed(in_a) and closed(in_b)
    assert unmounted.owns(in_c) and unmounted.fstat(in_c).st_size == 0
    assert not closed(above)
    os.close(above)
    unmounted.close(in_c)
    for prefix in ("/zcsdfs-closerange-a", "/zcsdfs-closerange-b"):  # the reserves are still there
        fd = os.open(prefix + "/again", os.O_CREAT | os.O_WRONLY)
        assert os.write(fd, b"x") == 1
        os.close(fd)


def test_volume_closerange_is_the_same_rule(volumes):
    a, b, _ = volumes
    in_a = a.open("/f", os.O_CREAT | os.O_RDWR)
    in_b = b.open("/g", os.O_CREAT | os.O_RDWR)
    real = os.open(os.devnull, os.O_RDONLY)
    a.closerange(min(in_a, in_b, real), max(in_a, in_b, real) + 1)
    assert not a.owns(in_a) and closed(real)
    assert b.owns(in_b) and b.fstat(in_b).st_size == 0  # another volume's number: spared
    b.close(in_b)
