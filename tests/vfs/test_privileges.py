"""A write, truncate or chown takes away file capabilities, as Linux's file_remove_privs does."""

import os

import pytest

import zcsdfs

CAP = "security.capability"
CAP_V2 = bytes.fromhex("01000002" "00200000" "00000000" "00000000" "00000000")  # VFS_CAP_REVISION_2, cap_net_raw


@pytest.fixture
def volume():
    v = zcsdfs.Volume.memory("qemu")
    yield v
    v.unmount()


def capable_file(volume, mode=0o755):
    fd = volume.open("/bin", os.O_CREAT | os.O_RDWR, mode)
    volume.fchmod(fd, mode)
    volume.setxattr("/bin", CAP, CAP_V2)
    return fd


@pytest.mark.parametrize("change", ["pwrite", "write", "ftruncate", "truncate"])
def test_data_change_drops_capabilities(volume, change):
    fd = capable_file(volume)
    {"pwrite": lambda: volume.pwrite(fd, b"x", 0), "write": lambda: volume.write(fd, b"x"),
     "ftruncate": lambda: volume.ftruncate(fd, 10), "truncate": lambda: volume.truncate("/bin", 10)}[change]()
    assert CAP not in volume.listxattr("/bin")
    volume.close(fd)


def test_chown_drops_capabilities_but_not_of_directories(volume):
    volume.close(capable_file(volume))
    volume.chown("/bin", 1000, 1000)
    assert CAP not in volume.listxattr("/bin")
    volume.mkdir("/d")
    volume.setxattr("/d", CAP, CAP_V2)
    volume.chown("/d", 1000, 1000)
    assert CAP in volume.listxattr("/d")


def test_root_keeps_setuid_others_lose_it(volume):
    fd = capable_file(volume, 0o4777)
    volume.removexattr("/bin", CAP)
    volume.pwrite(fd, b"root", 0)
    assert volume.stat("/bin").st_mode & 0o7777 == 0o4777
    other = volume.as_user(1000, 1000)
    ofd = other.open("/bin", os.O_WRONLY)
    other.pwrite(ofd, b"user", 0)
    assert volume.stat("/bin").st_mode & 0o7777 == 0o777
    other.close(ofd)
    volume.close(fd)


def test_a_plain_file_keeps_its_xattrs(volume):
    fd = volume.open("/f", os.O_CREAT | os.O_RDWR, 0o644)
    volume.setxattr("/f", "user.tag", b"v")
    volume.pwrite(fd, b"data", 0)
    assert volume.getxattr("/f", "user.tag") == b"v"
    volume.close(fd)
