"""Permission checks as an unprivileged caller, on both sides.

Setup runs as root; the body runs as uid 1000 (``user=``): on the real side
in a forked child that dropped root, on zcsdfs through ``vol.as_user``. The
hard-link test follows this machine's fs.protected_hardlinks=1, Linux's
default on every mainstream distribution.
"""

import errno

import pytest

from tests.api.tree import get, put

U = (1000, 1000)


def setup(osx):
    """Root-owned files and directories in every mode the tests need, plus a user's own."""
    put(osx, "secret", b"s", 0o600)
    put(osx, "public", b"p", 0o644)
    put(osx, "shared", b"w", 0o666)
    put(osx, "runme", b"#!", 0o755)
    osx.mkdir("closed", 0o700)
    put(osx, "closed/x", b"x")
    osx.mkdir("search", 0o711)
    put(osx, "search/known", b"k")
    osx.mkdir("readonly", 0o755)
    put(osx, "readonly/x", b"x")
    osx.mkdir("open", 0o777)
    osx.chmod("open", 0o777)
    osx.mkdir("sticky", 0o777)
    osx.chmod("sticky", 0o1777)
    put(osx, "sticky/roots", b"r", 0o666)
    put(osx, "sticky/users", b"u", 0o644)
    osx.chown("sticky/users", *U)
    put(osx, "mine", b"m", 0o644)
    osx.chown("mine", *U)
    put(osx, "grp_read", b"g", 0o640)
    osx.chown("grp_read", 0, 1000)
    put(osx, "grp_denied", b"g", 0o604)
    osx.chown("grp_denied", 0, 1000)
    put(osx, "owner_denied", b"o", 0o077)
    osx.chown("owner_denied", *U)
    put(osx, "suid", b"s", 0o666)
    osx.chmod("suid", 0o6777)
    osx.mkdir("sgid", 0o777)
    osx.chown("sgid", 0, 5000)
    osx.chmod("sgid", 0o2777)
    osx.symlink("secret", "to_secret")


def read(path):
    return lambda osx: get(osx, path)


def write(path, flags="O_WRONLY"):
    def body(osx):
        fd = osx.open(path, getattr(osx, flags))
        osx.write(fd, b"!")
        osx.close(fd)
        return get(osx, path) if path != "suid" else osx.stat(path)
    return body


CASES = {
    "read 0600": (read("secret"), errno.EACCES),
    "read 0644": (read("public"), None),
    "read via symlink to 0600": (read("to_secret"), errno.EACCES),
    "write 0644": (write("public"), errno.EACCES),
    "write 0666": (write("shared"), None),
    "truncate-open 0644": (write("public", "O_TRUNC"), errno.EACCES),
    "read in 0700 dir": (read("closed/x"), errno.EACCES),
    "read known name in 0711 dir": (read("search/known"), None),
    "list 0711 dir": (lambda osx: osx.listdir("search"), errno.EACCES),
    "list 0700 dir": (lambda osx: osx.listdir("closed"), errno.EACCES),
    "stat in 0700 dir": (lambda osx: osx.stat("closed/x"), errno.EACCES),
    "chdir 0700 dir": (lambda osx: osx.chdir("closed"), errno.EACCES),
    "create in 0755 dir": (lambda osx: osx.open("readonly/new", osx.O_WRONLY | osx.O_CREAT), errno.EACCES),
    "create in 0777 dir": (lambda osx: (osx.close(osx.open("open/new", osx.O_WRONLY | osx.O_CREAT, 0o666)),
                                        osx.stat("open/new"))[1], None),
    "mkdir in 0777 dir": (lambda osx: (osx.mkdir("open/nd"), osx.stat("open/nd"))[1], None),
    "mkdir in 0755 dir": (lambda osx: osx.mkdir("readonly/nd"), errno.EACCES),
    "unlink in 0755 dir": (lambda osx: osx.unlink("readonly/x"), errno.EACCES),
    "rename out of 0755 dir": (lambda osx: osx.rename("readonly/x", "open/x"), errno.EACCES),
    "symlink in 0755 dir": (lambda osx: osx.symlink("x", "readonly/l"), errno.EACCES),
    "rmdir in 0755 dir": (lambda osx: osx.rmdir("closed"), errno.EACCES),
    "unlink root's file in sticky dir": (lambda osx: osx.unlink("sticky/roots"), errno.EPERM),
    "rename root's file in sticky dir": (lambda osx: osx.rename("sticky/roots", "sticky/x"), errno.EPERM),
    "unlink own file in sticky dir": (lambda osx: (osx.unlink("sticky/users"), osx.listdir("sticky"))[1], None),
    "chmod root's file": (lambda osx: osx.chmod("public", 0o777), errno.EPERM),
    "chmod own file": (lambda osx: (osx.chmod("mine", 0o600), osx.stat("mine"))[1], None),
    "chmod own file setgid to foreign group": (lambda osx: (osx.chmod("mine", 0o2755), osx.stat("mine"))[1], None),
    "chown own file away": (lambda osx: osx.chown("mine", 0, -1), errno.EPERM),
    "chown own file to self": (lambda osx: (osx.chown("mine", 1000, 1000), osx.stat("mine"))[1], None),
    "chgrp own file to foreign group": (lambda osx: osx.chown("mine", -1, 0), errno.EPERM),
    "chown root's file": (lambda osx: osx.chown("public", 1000, 1000), errno.EPERM),
    "utime now on writable root file": (lambda osx: osx.utime("shared"), None),
    "utime now on read-only root file": (lambda osx: osx.utime("public"), errno.EACCES),
    "utime explicit on writable root file": (lambda osx: osx.utime("shared", ns=(1, 1)), errno.EPERM),
    "utime explicit on own file": (lambda osx: (osx.utime("mine", ns=(1, 2)), osx.stat("mine").st_mtime_ns)[1], None),
    "truncate 0644": (lambda osx: osx.truncate("public", 0), errno.EACCES),
    "truncate 0666": (lambda osx: (osx.truncate("shared", 0), osx.stat("shared"))[1], None),
    "group bits allow": (read("grp_read"), None),
    "group bits deny although other allows": (read("grp_denied"), errno.EACCES),
    "owner bits deny although group/other allow": (read("owner_denied"), errno.EACCES),
    "write clears setuid and setgid": (write("suid"), None),
    "create in setgid dir inherits group": (
        lambda osx: (osx.close(osx.open("sgid/f", osx.O_WRONLY | osx.O_CREAT, 0o644)), osx.mkdir("sgid/d"),
                     osx.stat("sgid/f"), osx.stat("sgid/d"))[2:], None),
    "setxattr on 0644 root file": (lambda osx: osx.setxattr("public", "user.x", b"1"), errno.EACCES),
    "getxattr on 0600 root file": (lambda osx: osx.getxattr("secret", "user.x"), errno.EACCES),
    "setxattr on own file": (lambda osx: (osx.setxattr("mine", "user.x", b"1"), osx.listxattr("mine"))[1], None),
    "hard link to root's 0600 file (protected_hardlinks)": (lambda osx: osx.link("secret", "open/l"), errno.EPERM),
    "hard link to root's 0666 file": (lambda osx: (osx.link("shared", "open/l"), osx.stat("shared"))[1], None),
    "open 0700 dir O_RDONLY": (lambda osx: osx.open("closed", osx.O_RDONLY), errno.EACCES),
}


@pytest.mark.parametrize("case", CASES)
def test_as_user(both, case):
    body, fails = CASES[case]
    both.run(body, setup=setup, user=U, fails=fails)


ACCESS = [(p, m) for p in ("secret", "public", "shared", "runme", "mine", "closed", "closed/x",
                           "search", "grp_read", "grp_denied", "owner_denied", "missing")
          for m in ("F_OK", "R_OK", "W_OK", "X_OK")]


@pytest.mark.parametrize("path,mode", ACCESS)
def test_access_as_user(both, path, mode):
    both.run(lambda osx: osx.access(path, getattr(osx, mode)), setup=setup, user=U)


def test_supplementary_group_allows(both):
    both.run(read("grp_read"), setup=setup, user=(2000, 2000, (1000,)))


def test_chgrp_to_supplementary_group(both):
    def body(osx):
        osx.chown("mine", -1, 3000)
        return osx.stat("mine")
    both.run(body, setup=setup, user=(1000, 1000, (3000,)))


def test_umask_applies_as_user(both):
    def body(osx):
        osx.close(osx.open("open/u", osx.O_WRONLY | osx.O_CREAT, 0o777))
        return osx.stat("open/u")
    both.run(body, setup=setup, user=U)


def test_root_ignores_modes(both):
    def body(osx):
        fd = osx.open("owner_denied", osx.O_RDWR)
        osx.write(fd, b"R")
        return get(osx, "closed/x"), sorted(osx.listdir("closed")), osx.access("secret", osx.W_OK)
    assert both.run(body, setup=setup) == (b"x", ["x"], True)
