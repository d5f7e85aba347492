"""The live tree as plain data, walked a page at a time: the inspector's Files view, the
control socket's ``files`` op and the paths of the files kernels are bound to.

A walk holds the file system's lock for ``PAGE`` entries at a time, so a
writer waits for one page, never for the whole tree: a directory's entries are read when the walk
reaches it, and a file removed meanwhile is left out, as if the walk had
passed it already.
"""

from __future__ import annotations

MAX_FILES = 200_000  # files listed in one snapshot; a bigger tree is cut (``files_truncated``)
PAGE = 500  # entries walked per hold of the file system's lock


def _entries(fs, path: str = "/", ino: int = 1, page: int = PAGE):
    """(path, ino, depth, node) depth first from ``path``, the lock held a page at a time
    (each yielded under it: read the node before yielding back)."""
    stack = [(path, ino, 0)]
    while stack:
        with fs._lock:
            inodes = fs.ns.inodes
            for _ in range(page):
                if not stack:
                    break
                path, ino, depth = stack.pop()
                node = inodes.get(ino)
                if node is None:
                    continue
                yield path, ino, depth, node
                if node.is_dir:
                    base = path.rstrip("/")
                    for name, child in sorted(node.entries.items(), reverse=True):
                        shown = name.decode(errors="replace") if isinstance(name, bytes) else name
                        stack.append((f"{base}/{shown}", child, depth + 1))


def file_list(fs, limit: int = MAX_FILES, page: int = PAGE) -> tuple[list[dict], bool]:
    """Every regular file, directory and symlink of ``fs``'s live tree, depth first, with its
    extents ``[first file block, lba, blocks]``; (list, whether it was cut at ``limit``)."""
    out: list[dict] = []
    walk = _entries(fs, page=page)
    try:
        for path, ino, depth, node in walk:
            if len(out) >= limit:
                return out, True
            entry = {"path": path, "ino": ino, "depth": depth, "size": node.size,
                     "kind": "dir" if node.is_dir else "file" if node.is_reg else "symlink" if node.is_symlink
                     else "other", "blocks": 0, "extents": []}
            if node.is_reg:
                entry["blocks"] = node.extents.blocks
                entry["extents"] = [[first, lba, count] for first, lba, count in node.extents]
            out.append(entry)
    finally:
        walk.close()  # lets go of the lock now, not when the generator is collected
    return out, False


def _resolves(fs, path: str, ino: int) -> bool:
    """Whether ``path`` still names inode ``ino`` (a remembered path after renames)."""
    with fs._lock:
        inodes, cur = fs.ns.inodes, 1
        for part in path.strip("/").split("/"):
            if not part:
                continue
            node = inodes.get(cur)
            if node is None or not node.is_dir:
                return False
            child = node.entries.get(part)
            if child is None:
                child = node.entries.get(part.encode())
            if child is None:
                return False
            cur = child
        return cur == ino


def ino_paths(fs, inos, known: dict[int, str] | None = None) -> dict[int, str]:
    """A path of each of ``inos`` (one of its names, for a file with several), walking the tree
    only until all are found; ``known``: paths found before, kept while they still resolve."""
    known = known if known is not None else {}
    out = {ino: known[ino] for ino in inos if ino in known and _resolves(fs, known[ino], ino)}
    wanted = set(inos) - set(out)
    if wanted:
        walk = _entries(fs)
        try:
            for path, ino, _depth, _node in walk:
                if ino in wanted:
                    out[ino] = path
                    wanted.discard(ino)
                    if not wanted:
                        break
        finally:
            walk.close()
    known.update(out)
    return out


def name_bindings(data: dict, fs, known: dict[int, str]) -> None:
    """Give each kernel binding of a snapshot (``data["csd"]["bound"]``, plain) the path of its file."""
    csd = data.get("csd")
    if not csd or not csd.get("bound") or fs is None:
        return
    paths = ino_paths(fs, {b["ino"] for b in csd["bound"]}, known)
    csd["bound"] = [dict(b, path=paths.get(b["ino"])) for b in csd["bound"]]
