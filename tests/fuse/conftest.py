"""Real mounts for the FUSE tests: a server in this process over a memory volume.

Each mount point is a fresh directory under /tmp that other users can reach
(the permission tests run programs as a second uid). Teardown unmounts; if
that fails (a test left a file open, or the server is stuck) it aborts the
connection through /sys/fs/fuse/connections, so no test leaves a mount
behind.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

from zcsdfs.fuse.devfuse import MountOptions, Session, unmount
from zcsdfs.volume import Volume

needs_fuse = pytest.mark.skipif(not os.path.exists("/dev/fuse") or os.geteuid() != 0,
                                reason="mounting needs /dev/fuse and root (as in CI)")


def abort_connection(mountpoint: str) -> None:
    """Last resort: tell the kernel to drop the connection, then detach the mount."""
    try:
        dev = os.stat(mountpoint).st_dev
    except OSError:
        dev = None
    if dev is not None:
        abort = f"/sys/fs/fuse/connections/{os.minor(dev)}/abort"
        if os.path.exists(abort):
            with open(abort, "w") as f:
                f.write("1")
    try:
        unmount(mountpoint, lazy=True)
    except OSError:
        pass  # already gone


class Mounted:
    """A live mount: ``path`` to use it, ``session`` and ``volume`` to look behind it."""

    def __init__(self, volume: Volume, options: MountOptions):
        self.volume = volume
        self.path = tempfile.mkdtemp(prefix="zcsdfs-mnt-", dir="/tmp")
        os.chmod(self.path, 0o755)
        self.session = Session(volume.vfs, self.path, options)
        assert self.session.wait_ready(30)

    def close(self) -> None:
        """Unmount (once: a test may close early to look at what unmounting did)."""
        if self.session.fd < 0:
            return
        try:
            self.session.unmount()
        except OSError:
            abort_connection(self.path)
        self.session.wait()
        os.rmdir(self.path)
        assert not self.session.errors, self.session.errors


@pytest.fixture
def mount_factory():
    """mount_factory(options=..., volume=...) -> Mounted; all are torn down at the end."""
    made: list[Mounted] = []

    def make(options: MountOptions = MountOptions(), volume: Volume | None = None) -> Mounted:
        m = Mounted(volume or Volume.memory(), options)
        made.append(m)
        return m

    yield make
    for m in reversed(made):
        m.close()
        if m.volume.mounted:
            m.volume.unmount()


@pytest.fixture
def mnt(mount_factory) -> str:
    """A mount point of a fresh volume, with allow_other so a second uid can be tried."""
    return mount_factory(MountOptions(allow_other=True)).path


def require(*programs: str) -> None:
    missing = [p for p in programs if shutil.which(p) is None]
    if missing:
        pytest.skip(f"not installed: {' '.join(missing)} (CI installs them)")
