"""Real mounts for the FUSE tests: a server in this process over a memory volume.

Each mount point is a fresh directory under /tmp that other users can reach
(the permission tests run programs as a second uid). Teardown unmounts; if
that fails (a test left a file open, or the server is stuck) it aborts the
connection through /sys/fs/fuse/connections, so no test leaves a mount
behind; and a run killed outright (its servers die with it) has its dead
mounts detached by the next run.
"""

from __future__ import annotations

import errno
import gc
import os
import shutil
import tempfile
import threading

import pytest

from zcsdfs.fuse.devfuse import MountOptions, Session, unmount
from zcsdfs.fuse.fuse_uring import ENABLE as ENABLE_URING
from zcsdfs.fuse.uring import supported as uring_supported
from zcsdfs.volume import Volume

# What a mount whose server died answers: ENOTCONN; over io_uring, a request that comes while
# the kernel tears the connection down (after the process is gone, when the ring lets go of
# /dev/fuse) may be ended ECONNABORTED, or ECANCELED if it was handed to the dead ring.
DEAD = (errno.ENOTCONN, errno.ECONNABORTED, errno.ECANCELED)

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


def mounts_of_tests() -> list[str]:
    """Mount points of zcsdfs mounts made by these tests (fresh /tmp/zcsdfs-mnt-* directories)."""
    found = []
    with open("/proc/self/mountinfo") as info:
        for line in info:
            fields = line.split()
            point = fields[4].replace("\\040", " ")
            if fields[fields.index("-") + 1] == "fuse.zcsdfs" and point.startswith("/tmp/zcsdfs-mnt-"):
                found.append(point)
    return found


def stat_errno(point: str, patience: float = 5.0) -> int | None:
    """The errno of stat(``point``): None when it succeeds or has not answered within
    ``patience`` seconds (a live mount whose server is busy; the stat stays behind in a thread)."""
    result = []

    def look():
        try:
            os.stat(point)
            result.append(None)
        except OSError as exc:
            result.append(exc.errno)

    t = threading.Thread(target=look, daemon=True)
    t.start()
    t.join(patience)
    return result[0] if result else None


@pytest.fixture(scope="session", autouse=True)
def clear_dead_mounts():
    """A run killed mid-test (its server died with it) leaves a mount that answers ENOTCONN;
    detach those before this run starts. Live ones (another run's) are left alone."""
    if os.geteuid() == 0:
        detach_dead_mounts()


def detach_dead_mounts() -> None:
    for point in mounts_of_tests():
        if stat_errno(point) not in DEAD:
            continue  # alive (or busy: another run's server may be paused; not ours to judge)
        abort_connection(point)
        try:
            os.rmdir(point)
        except OSError:
            pass  # still busy; the lazy unmount frees it later


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
        refused = None
        try:
            try:
                self.session.unmount()
            except OSError as exc:
                if exc.errno != errno.EBUSY:
                    raise
                gc.collect()  # a file object the test dropped without closing still holds the mount
                self.session.unmount()
        except OSError as exc:
            refused = exc
            abort_connection(self.path)
        self.session.wait()
        os.rmdir(self.path)
        assert refused is None, f"unmount refused ({refused}): a file on the mount was left open"
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


def set_enable_uring(on: bool) -> bool:
    """Switch FUSE over io_uring on or off in the fuse module (root only); returns what it was.
    Connections made meanwhile keep what they negotiated."""
    with open(ENABLE_URING) as f:
        was = f.read().strip() in ("Y", "1")
    with open(ENABLE_URING, "w") as f:
        f.write("Y" if on else "N")
    return was


@pytest.fixture
def uring_enabled():
    """FUSE over io_uring switched on for the test (as CI runs: root), then put back."""
    if not os.path.exists(ENABLE_URING) or os.geteuid() != 0:
        pytest.skip(f"FUSE over io_uring needs {ENABLE_URING} (Linux 6.14+) and root to switch it on")
    why = uring_supported()
    if why:
        pytest.skip(why)
    was = set_enable_uring(True)
    yield
    set_enable_uring(was)


@pytest.fixture
def uring_disabled():
    """FUSE over io_uring switched off for the test, then put back."""
    if not os.path.exists(ENABLE_URING) or os.geteuid() != 0:
        pytest.skip(f"needs {ENABLE_URING} (Linux 6.14+) and root to switch it off")
    was = set_enable_uring(False)
    yield
    set_enable_uring(was)


@pytest.fixture(params=["devfuse", "uring"])
def mnt(request, mount_factory) -> str:
    """A mount point of a fresh volume, with allow_other so a second uid can be tried; served
    over /dev/fuse, and again over io_uring."""
    over_uring = request.param == "uring"
    if over_uring:
        request.getfixturevalue("uring_enabled")
    m = mount_factory(MountOptions(allow_other=True, uring="on" if over_uring else "off"))
    assert m.session.uring == over_uring
    return m.path


def require(*programs: str) -> None:
    missing = [p for p in programs if shutil.which(p) is None]
    if missing:
        pytest.skip(f"not installed: {' '.join(missing)} (CI installs them)")
