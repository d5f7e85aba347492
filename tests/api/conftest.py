"""One body, two file systems: each test body runs on the real ``os`` and on zcsdfs.

A body is a function of ``osx``, the module-like side it runs on: the real
``os`` with its cwd in a fresh temporary directory, or a fresh memory
``zcsdfs.Volume`` with its cwd at ``/``. Bodies use relative paths only, so
both roots look the same. ``both.run(body)`` captures each side's outcome —
the normalised return value, or the exception's class, errno and filenames —
and asserts the two are equal, and that the real side did what the test says
it should (succeed by default, or fail with ``fails=<errno>``).

Normalising keeps what Linux promises and drops what differs between any two
file systems: stat results become type, permission bits, size (not for
directories), link count and owner; inode and device numbers and times are
dropped (bodies that test times return the comparisons they make);
descriptors returned by ``open``/``dup``/``dup2`` become ``"fd"``.

Permission bodies run as another user (``user=(uid, gid)``): on the real side
in a forked child that drops root with ``setresuid``, on zcsdfs through
``vol.as_user``. Setup always runs as root.

``ZCSDFS_API_SIDE=real`` runs the second side on the real ``os`` too, in
another directory: a suite that fails that way has a wrong test, not a zcsdfs
bug. zcsdfs-only tests (the ``vol`` fixture) skip in that mode.
"""

import io
import os
import pickle
import stat

import pytest

#: ``run(..., fails=ANY)``: the real side may succeed or fail; only agreement is checked.
ANY = "any outcome"

#: The geometry of the volumes tests make: small, so that making one is cheap.
GEOMETRY = "tiny"

STANDIN = os.environ.get("ZCSDFS_API_SIDE") == "real"

KINDS = {stat.S_IFREG: "file", stat.S_IFDIR: "dir", stat.S_IFLNK: "symlink",
         stat.S_IFIFO: "fifo", stat.S_IFSOCK: "socket", stat.S_IFCHR: "chr", stat.S_IFBLK: "blk"}


class Fd(int):
    """A descriptor a body got from open/dup/dup2: compared as "a descriptor", not by number."""


def stat_fields(st: os.stat_result) -> dict:
    """The stat fields every Linux file system agrees on (a directory's size is its own business)."""
    kind = KINDS[stat.S_IFMT(st.st_mode)]
    fields = {"type": kind, "mode": oct(stat.S_IMODE(st.st_mode)), "nlink": st.st_nlink,
              "uid": st.st_uid, "gid": st.st_gid}
    if kind != "dir":
        fields["size"] = st.st_size
    return fields


def statvfs_fields(st: os.statvfs_result) -> dict:
    """What holds for any file system's statvfs: consistent counts and 255-byte names."""
    return {"statvfs": True, "bsize>0": st.f_bsize > 0, "frsize>0": st.f_frsize > 0,
            "blocks>=bfree>=bavail": st.f_blocks >= st.f_bfree >= st.f_bavail,
            "files>=ffree": st.f_files >= st.f_ffree, "namemax": st.f_namemax}


def is_dir_entry(value) -> bool:
    return all(hasattr(value, a) for a in ("name", "path", "is_dir", "is_file", "is_symlink", "inode"))


def normalise(value):
    """Turn a body's return value into plain data both sides can be compared (and pickled) on."""
    if isinstance(value, Fd):
        return "fd" if value >= 0 else int(value)
    if isinstance(value, os.stat_result):
        return stat_fields(value)
    if isinstance(value, os.statvfs_result):
        return statvfs_fields(value)
    if is_dir_entry(value):
        return {"entry": value.name, "path": value.path, "is_symlink": value.is_symlink(),
                "is_dir": value.is_dir(follow_symlinks=False),
                "is_file": value.is_file(follow_symlinks=False)}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, dict):
        return {k: normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise(v) for v in value]
    if isinstance(value, tuple):
        return tuple(normalise(v) for v in value)
    if isinstance(value, (set, frozenset)):
        return sorted(normalise(v) for v in value)
    if isinstance(value, (str, int, float, bool, type(None))):
        return value
    return ("object", type(value).__name__)


def builtin_class(e: BaseException) -> str:
    """The built-in exception class a program's ``except`` clauses see (zcsdfs may subclass it)."""
    return next(c.__name__ for c in type(e).__mro__ if c.__module__ == "builtins")


def outcome_of(body, osx):
    """("ok", value) or ("raises", built-in class, errno, filename, filename2)."""
    try:
        return ("ok", normalise(body(osx)))
    except OSError as e:
        return ("raises", builtin_class(e), e.errno, e.filename, e.filename2)
    except (TypeError, ValueError, LookupError, BufferError, NotImplementedError) as e:
        return ("raises", builtin_class(e), None, None, None)


class RealOs:
    """The real ``os`` with ``io`` beside it, shaped like a Volume."""

    io = io

    def __getattr__(self, name):
        return getattr(os, name)


class Side:
    """One file system as a body sees it: os's names, with the descriptors it opens tracked.

    Constants (upper-case names) come from the module (``os`` or ``zcsdfs``);
    everything else from the target (``RealOs()`` or a Volume or its
    ``as_user`` view). Descriptors a body leaves open are closed afterwards.
    """

    def __init__(self, target, constants, closer=None):
        self._target = target
        self._constants = constants
        self._closer = closer or target
        self.fds = set()

    def __getattr__(self, name):
        if name.isupper():
            return getattr(self._constants, name)
        return getattr(self._target, name)

    def open(self, *args, **kwargs):
        return self._track(self._target.open(*args, **kwargs))

    def dup(self, fd):
        return self._track(self._target.dup(fd))

    def dup2(self, fd, fd2, inheritable=True):
        return self._track(self._target.dup2(fd, fd2, inheritable))

    def close(self, fd):
        self._target.close(fd)
        self.fds.discard(int(fd))

    def closerange(self, low, high):
        self._target.closerange(low, high)
        self.fds.difference_update(range(low, high))

    def _track(self, fd):
        self.fds.add(int(fd))
        return Fd(fd)

    def close_leftovers(self):
        for fd in sorted(self.fds):
            try:
                self._closer.close(fd)
            except OSError as e:
                if e.errno != 9:  # EBADF: the body closed it some other way (fdopen, closerange)
                    raise
        self.fds.clear()


def in_child_as(user, fn):
    """Run ``fn()`` in a forked child with root dropped to ``user``; return its pickled result."""
    uid, gid, groups = user
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            os.close(r)
            os.setgroups(list(groups))
            os.setresgid(gid, gid, gid)
            os.setresuid(uid, uid, uid)
            with os.fdopen(w, "wb") as out:
                pickle.dump(fn(), out)
            status = 0
        finally:
            os._exit(status)
    os.close(w)
    with os.fdopen(r, "rb") as inp:
        data = inp.read()
    _, status = os.waitpid(pid, 0)
    assert status == 0 and data, f"the child running as {user} died (status {status})"
    return pickle.loads(data)


class RealSide:
    """The real ``os`` in its own fresh directory."""

    label = "real os"

    def __init__(self, root, monkeypatch):
        root.chmod(0o755)  # like a fresh volume's root, so stat(".") and permission tests agree
        self.root = root
        self.monkeypatch = monkeypatch
        self.side = Side(RealOs(), os)

    def enter(self):
        self.monkeypatch.chdir(self.root)

    def outcome(self, body, user):
        if user is None:
            return outcome_of(body, self.side)
        return in_child_as(user, lambda: outcome_of(body, self.side))


class VolumeSide:
    """A fresh memory zcsdfs Volume, cwd "/"."""

    label = "zcsdfs"

    def __init__(self):
        import zcsdfs

        self.vol = zcsdfs.Volume.memory(GEOMETRY)
        self.side = Side(self.vol, zcsdfs)

    def enter(self):
        pass

    def outcome(self, body, user):
        if user is None:
            return outcome_of(body, self.side)
        uid, gid, groups = user
        view = Side(self.vol.as_user(uid, gid, groups), self.side._constants, closer=self.vol)
        try:
            return outcome_of(body, view)
        finally:
            view.close_leftovers()


def user_of(user):
    """``(uid, gid)`` or ``(uid, gid, groups)`` -> ``(uid, gid, groups)``."""
    if user is None or len(user) == 3:
        return user
    return (*user, ())


class Both:
    """``run(body)``: the body on the real os and on zcsdfs, outcomes compared."""

    def __init__(self, real, other):
        self.sides = [real, other]

    def outcomes(self, body, setup=None, user=None):
        user = user_of(user)
        results = []
        for s in self.sides:
            s.enter()
            try:
                if setup is not None:
                    setup(s.side)
                results.append(s.outcome(body, user))
            finally:
                s.side.close_leftovers()
        return results

    def run(self, body, *, setup=None, user=None, fails=None):
        """Run ``body`` on both sides; return the real side's value, or its failure's errno.

        ``fails`` is what the real side must fail with: an errno, or an
        exception class for failures that are not OSError (ValueError,
        TypeError); ``None`` if it must succeed; or ``ANY``.
        """
        real, other = self.outcomes(body, setup, user)
        if fails is None:
            assert real[0] == "ok", f"the real os failed where the test expects success: {real}"
        elif isinstance(fails, type):
            assert real[:2] == ("raises", fails.__name__), \
                f"the real os gave {real}, the test expects {fails.__name__}"
        elif fails is not ANY:
            assert real[0] == "raises" and real[2] == fails, \
                f"the real os gave {real}, the test expects errno {fails}"
        assert other == real, \
            f"{self.sides[1].label} differs from the real os:\n  real:  {real}\n  other: {other}"
        return real[1] if real[0] == "ok" else real[2]


@pytest.fixture
def both(tmp_path, monkeypatch):
    (tmp_path / "real").mkdir()
    real = RealSide(tmp_path / "real", monkeypatch)
    if STANDIN:
        (tmp_path / "standin").mkdir()
        other = RealSide(tmp_path / "standin", monkeypatch)
        other.label = "stand-in real os"
    else:
        other = VolumeSide()
    yield Both(real, other)
    if not STANDIN:
        other.vol.unmount()


@pytest.fixture
def vol():
    """A fresh memory Volume for zcsdfs-only tests."""
    if STANDIN:
        pytest.skip("ZCSDFS_API_SIDE=real: zcsdfs-only test")
    import zcsdfs

    volume = zcsdfs.Volume.memory(GEOMETRY)
    yield volume
    volume.unmount()

