"""The small tree most bodies start from, and helpers bodies share.

After ``tree(osx)`` the current directory holds::

    f          file, b"hello world\\n", mode 0o644
    e          empty file, mode 0o600
    d/         directory 0o755 with d/g (b"in d") and d/sub/ (empty)
    ed/        empty directory 0o700
    ls -> f    symlink to a file
    ld -> d    symlink to a directory
    dangling -> nowhere
    loop -> loop
"""

HELLO = b"hello world\n"

#: Every name ``tree`` makes, with what it is: for parametrising over kinds of path.
NAMES = {"f": "file", "e": "file", "d": "dir", "ed": "dir", "ls": "symlink to file",
         "ld": "symlink to dir", "dangling": "dangling symlink", "loop": "symlink loop"}


def put(osx, path, data=b"", mode=0o644):
    """Create (or truncate) ``path`` holding ``data``, then chmod it to ``mode``."""
    fd = osx.open(path, osx.O_WRONLY | osx.O_CREAT | osx.O_TRUNC, mode)
    try:
        osx.write(fd, data)
    finally:
        osx.close(fd)
    osx.chmod(path, mode)


def get(osx, path):
    """The whole content of ``path``."""
    fd = osx.open(path, osx.O_RDONLY)
    try:
        chunks = []
        while chunk := osx.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        osx.close(fd)


def tree(osx):
    put(osx, "f", HELLO)
    put(osx, "e", b"", 0o600)
    osx.mkdir("d")
    osx.chmod("d", 0o755)
    put(osx, "d/g", b"in d")
    osx.mkdir("d/sub")
    osx.chmod("d/sub", 0o755)
    osx.mkdir("ed", 0o700)
    osx.symlink("f", "ls")
    osx.symlink("d", "ld")
    osx.symlink("nowhere", "dangling")
    osx.symlink("loop", "loop")


def listing(osx, path="."):
    """A directory's names, sorted (readdir order is unspecified)."""
    return sorted(osx.listdir(path))

