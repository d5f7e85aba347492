"""Escape attempts: ``..`` chains, symbolic links, and descriptors carried from one side to the other."""

import errno
import io
import os

import pytest

from tests.shim.conftest import PREFIX


@pytest.fixture
def outside(tmp_path):
    """A real directory with a file whose name also exists in the volume."""
    (tmp_path / "secret").write_bytes(b"real secret")
    return tmp_path


@pytest.fixture
def inside(volume):
    os.makedirs(f"{PREFIX}/d/sub")
    with open(f"{PREFIX}/secret", "wb") as f:
        f.write(b"volume secret")
    return volume


def test_dotdot_out_of_the_prefix_reaches_the_real_file_system(inside, outside):
    up = "/.." * 8
    with open(f"{PREFIX}/d/sub{up}{outside}/secret", "rb") as f:
        assert f.read() == b"real secret"
    assert os.path.exists(f"{PREFIX}/../{outside}/secret")


def test_dotdot_from_the_real_side_into_the_prefix_reaches_the_volume(inside, outside):
    with open(f"{outside}/../../../../../../..{PREFIX}/secret", "rb") as f:
        assert f.read() == b"volume secret"
    assert os.listdir(f"//{PREFIX}/./d") == ["sub"]


def test_relative_dotdot_from_a_cwd_in_the_volume(inside, outside, monkeypatch):
    monkeypatch.chdir(PREFIX + "/d/sub")
    assert os.getcwd() == PREFIX + "/d/sub"
    assert open("../../secret", "rb").read() == b"volume secret"
    relative_out = os.path.relpath(f"{outside}/secret", PREFIX + "/d/sub")
    assert open(relative_out, "rb").read() == b"real secret"


def test_absolute_symlink_in_the_volume_stays_in_the_volume(inside, outside):
    os.symlink(f"{outside}/secret", f"{PREFIX}/link")
    assert os.readlink(f"{PREFIX}/link") == f"{PREFIX}{outside}/secret"
    with pytest.raises(FileNotFoundError):
        open(f"{PREFIX}/link", "rb")
    os.symlink("/secret", f"{PREFIX}/rooted")
    assert open(f"{PREFIX}/rooted", "rb").read() == b"volume secret"
    assert os.path.realpath(f"{PREFIX}/rooted") == f"{PREFIX}/secret"


def test_symlink_to_a_path_under_the_prefix_round_trips(inside):
    os.symlink(f"{PREFIX}/secret", f"{PREFIX}/d/l")
    assert inside.readlink("/d/l") == "/secret"
    assert os.readlink(f"{PREFIX}/d/l") == f"{PREFIX}/secret"
    assert open(f"{PREFIX}/d/l", "rb").read() == b"volume secret"


def test_relative_symlink_cannot_climb_out_of_the_volume(inside, outside):
    os.symlink("../" * 12 + str(outside).lstrip("/") + "/secret", f"{PREFIX}/d/climb")
    with pytest.raises(FileNotFoundError):
        open(f"{PREFIX}/d/climb", "rb")
    resolved = os.path.realpath(f"{PREFIX}/d/climb")
    assert resolved.startswith(PREFIX + "/")


def test_descriptor_numbers_never_collide(inside, outside):
    real = os.open(f"{outside}/secret", os.O_RDONLY)
    mine = os.open(f"{PREFIX}/secret", os.O_RDONLY)
    try:
        assert real != mine
        assert os.read(mine, 6) == b"volume"
        assert os.read(real, 4) == b"real"
        assert os.fstat(mine).st_dev == inside.dev
        assert os.fstat(real).st_dev != inside.dev
    finally:
        os.close(mine)
        os.close(real)
    with pytest.raises(OSError) as info:
        os.fstat(mine)
    assert info.value.errno == errno.EBADF


def test_volume_descriptor_in_c_code_fails_with_ebadf(inside):
    fd = os.open(f"{PREFIX}/secret", os.O_RDONLY)
    try:
        raw = io.FileIO.__mro__[1](fd, "rb", closefd=False)  # the real _io.FileIO reads in C
        with pytest.raises(OSError) as info:
            raw.read()
        assert info.value.errno == errno.EBADF
    finally:
        os.close(fd)


def test_dup2_of_a_real_descriptor_over_a_volume_one(inside, outside):
    real = os.open(f"{outside}/secret", os.O_RDONLY)
    mine = os.open(f"{PREFIX}/secret", os.O_RDONLY)
    try:
        assert os.dup2(real, mine) == mine
        assert not inside.owns(mine)
        assert os.read(mine, 4) == b"real"
    finally:
        os.close(mine)
        os.close(real)


def test_mixed_descriptors_for_sendfile_and_copy_file_range(inside, outside):
    real = os.open(f"{outside}/copy", os.O_WRONLY | os.O_CREAT)
    mine = os.open(f"{PREFIX}/secret", os.O_RDONLY)
    try:
        with pytest.raises(OSError) as info:
            os.sendfile(real, mine, 0, 5)
        assert info.value.errno == errno.EINVAL
        with pytest.raises(OSError) as info:
            os.copy_file_range(mine, real, 5)
        assert info.value.errno == errno.EXDEV
    finally:
        os.close(mine)
        os.close(real)


def test_dir_fd_keeps_relative_paths_on_its_side(inside, outside):
    mine = os.open(f"{PREFIX}/d", os.O_RDONLY | os.O_DIRECTORY)
    real = os.open(outside, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert os.stat("sub", dir_fd=mine).st_dev == inside.dev
        assert os.stat("secret", dir_fd=real).st_size == len(b"real secret")
        with pytest.raises(FileNotFoundError):
            os.stat("sub", dir_fd=real)
        assert os.stat("../secret", dir_fd=mine).st_size == len(b"volume secret")
        assert os.stat(f"{outside}/secret", dir_fd=mine).st_size == len(b"real secret")
    finally:
        os.close(mine)
        os.close(real)


def test_rename_and_link_across_the_boundary_are_exdev(inside, outside):
    for fn in (os.rename, os.replace, os.link):
        with pytest.raises(OSError) as info:
            fn(f"{PREFIX}/secret", f"{outside}/moved")
        assert info.value.errno == errno.EXDEV
        assert (info.value.filename, info.value.filename2) == (f"{PREFIX}/secret", f"{outside}/moved")
        with pytest.raises(OSError) as info:
            fn(f"{outside}/secret", f"{PREFIX}/moved")
        assert info.value.errno == errno.EXDEV
    assert sorted(os.listdir(PREFIX)) == ["d", "secret"]


def test_errors_name_the_callers_path(inside):
    with pytest.raises(FileNotFoundError) as info:
        os.stat(f"{PREFIX}/d/missing")
    assert info.value.filename == f"{PREFIX}/d/missing"
    with pytest.raises(IsADirectoryError) as info:
        open(f"{PREFIX}/d")
    assert info.value.filename == f"{PREFIX}/d"
