"""The control socket of a running server: snapshots and an event stream, as JSON lines.

A running ``zcsdfs mount`` listens on a Unix socket in a directory only its
owner can enter: ``$XDG_RUNTIME_DIR/zcsdfs/``, or ``/run/zcsdfs/`` for root.
The socket is named after the mount's device number (``st_dev`` of the
mount point, ``dev-MAJOR:MINOR.sock``), so a client finds it from the mount
point alone, and a stale one can never answer for a newer mount. The
socket is mode 0600 and every connection's peer credentials (SO_PEERCRED)
are checked: a process of any other uid is refused.

Requests and replies are one JSON object per line:

- ``{"op": "stats"}`` -> ``{"ok": true, "stats": {...}, "serial": N}`` (``Stack.stats``,
  the files kernels are bound to named by path); with ``"since": M``, the serial
  of an earlier reply the client kept, each ``zone_list`` (the device's, the
  log's) comes as ``{"changed": {"INDEX": zone, ...}}``: only the zones that
  changed since snapshot M (``patch_zones`` puts them back in place), so a
  watcher of thousands of zones costs the server little to encode and itself
  little to parse (an M too old gets the whole lists);
- ``{"op": "files", "limit": N}`` -> ``{"ok": true, "files": [...], "truncated":
  bool}``: the live tree, depth first, each entry with its extents
  (``zcsdfs.tree.file_list``; ``limit`` is optional, at most ``MAX_FILES``);
- ``{"op": "act", "action": "gc" | "snapshot" | "checkpoint"}`` -> ``{"ok": true,
  "said": "..."}`` (``zcsdfs.actions``; a read-only mount answers EROFS);
- ``{"op": "events"}`` -> ``{"ok": true}``, then ``{"event": {...}}`` per
  event until the client hangs up (a slow client loses events, never slows
  the server: ``{"dropped": N}`` says how many);
- anything else (not JSON, not an object, an unknown op, a field of the
  wrong type) -> ``{"ok": false, "error": "...", "errno": "EINVAL"}``, and the
  connection stays open for the next request.

Each connection is served by its own thread, so a query never runs on (or
waits behind) the request path: a stats snapshot takes the file system's
lock for one pass over the zones, copying only those that changed since
the last one (``Stack.stats(previous=)``), and the file list takes it a
page of entries at a time.
"""

from __future__ import annotations

import collections
import enum
import errno
import itertools
import json
import os
import queue
import socket
import stat
import struct
import threading

import attrs

from zcsdfs.actions import ACTIONS, act
from zcsdfs.tree import MAX_FILES, file_list, name_bindings

_SCALARS = (int, float, str, bool, type(None))
_NOT_ATTRS = object()
_fields: dict[type, object] = {}  # type -> its attrs field names, or _NOT_ATTRS
MAX_CLIENTS = 8
RECENT_SNAPSHOTS = 16  # the zone lists of the last stats replies, kept for "since"
ZONE_LAYERS = ("device", "lfs")  # the layers whose zone_list a "since" reply sends as changes
MAX_REQUEST = 4096  # bytes in one request line
EVENT_BACKLOG = 1024
REFUSAL_WAIT = 2.0  # seconds a refused peer has to hang up  # events queued for one slow client before they are dropped


def plain(value):
    """``value`` as JSON can hold it: records become objects (with their ``type``), enums their names."""
    if attrs.has(type(value)):
        out = {"type": type(value).__name__}
        for field in attrs.fields(type(value)):
            out[field.name] = plain(getattr(value, field.name))
        return out
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, dict):
        return {str(plain(k)): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    return value


def fast_plain(value, memo: "PlainMemo | None" = None):
    """``plain``'s result, several times faster on a snapshot of thousands of
    zones (field names looked up once per type): the inspector takes one several times a second.
    With ``memo``, a record converted last time (the same object: an unchanged zone's, see
    ``Stack.stats(previous=)``) gives the same dict back; treat those dicts as read-only."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    names = _fields.get(kind)
    if names is None:
        names = _fields[kind] = (tuple(f.name for f in attrs.fields(kind)) if attrs.has(kind)
                                 else _NOT_ATTRS)
    if names is not _NOT_ATTRS:
        if memo is not None:
            return memo.record(value, names)
        out = {"type": kind.__name__}
        for name in names:
            out[name] = fast_plain(getattr(value, name))
        return out
    if isinstance(value, (list, tuple)):
        return [fast_plain(v) for v in value] if memo is None else memo.sequence(value)
    return plain(value)  # enums, dicts, bytes: rare


class PlainMemo:
    """The dicts of the last snapshot's records, by record: the next conversion reuses those of
    records it meets again and forgets the rest."""

    def __init__(self):
        self._last: dict[int, tuple] = {}  # id(record) -> (record, dict, ids of the records inside it)
        self._next: dict[int, tuple] = {}

    def record(self, value, names) -> dict:
        key = id(value)
        hit = self._last.get(key)
        if hit is not None and hit[0] is value:
            self._keep(key, hit)
            return hit[1]
        remembered = self._next
        before = len(remembered)
        out = {"type": type(value).__name__}
        for name in names:
            out[name] = fast_plain(getattr(value, name), self)
        inner = tuple(itertools.islice(remembered, before, None))  # the records met inside it
        remembered[key] = (value, out, inner)
        return out

    def _keep(self, key: int, hit: tuple) -> None:
        """Remember a record met again, and the records inside it (met again with it)."""
        self._next[key] = hit
        for inner in hit[2]:
            entry = self._last.get(inner)
            if entry is not None:
                self._keep(inner, entry)

    def sequence(self, values) -> list:
        last, remembered, out = self._last, self._next, []
        for value in values:
            hit = last.get(id(value))
            if hit is not None and hit[0] is value:
                if hit[2]:
                    self._keep(id(value), hit)
                else:
                    remembered[id(value)] = hit
                out.append(hit[1])
            else:
                out.append(fast_plain(value, self))
        return out

    def convert(self, value):
        """``value`` as plain data; the records met now are the ones remembered for next time."""
        self._next = {}
        out = fast_plain(value, self)
        self._last = self._next
        return out


def runtime_directory() -> str:
    """Where control sockets live for this user."""
    if os.geteuid() == 0:
        return "/run/zcsdfs"
    base = os.environ.get("XDG_RUNTIME_DIR") or f"/tmp/zcsdfs-{os.geteuid()}"
    return os.path.join(base, "zcsdfs")


def socket_path(mountpoint, directory: str | None = None) -> str:
    """The control socket of the mount at ``mountpoint``."""
    dev = os.stat(mountpoint).st_dev
    return os.path.join(directory or runtime_directory(), f"dev-{os.major(dev)}:{os.minor(dev)}.sock")


def _private_directory(path: str) -> None:
    """Make ``path`` a directory only this user can enter (tightening one it already owns)."""
    os.makedirs(path, mode=0o700, exist_ok=True)
    st = os.lstat(path)
    if st.st_uid != os.geteuid() or not stat.S_ISDIR(st.st_mode):
        raise PermissionError(errno.EACCES, "control directory belongs to another user", path)
    if st.st_mode & 0o077:
        os.chmod(path, 0o700)


def peer_uid(conn: socket.socket) -> int:
    _pid, uid, _gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                         struct.calcsize("3i")))
    return uid


class ControlServer:
    """Serve ``stack`` (a ``zcsdfs.stack.Stack``) and ``server`` (a front end with an optional
    ``stats()``) on the control socket of ``mountpoint``, from threads of its own."""

    def __init__(self, stack, mountpoint, server=None, *, directory: str | None = None):
        self.stack = stack
        self.server = server
        self.name = os.fspath(mountpoint)
        self._snapshot_lock = threading.Lock()  # one stats reply at a time (serials in order)
        self._stats_lock = threading.Lock()  # one snapshot at a time: they share what the last one copied
        self._previous = None
        self._memo = PlainMemo()
        self._paths: dict[int, str] = {}  # ino -> path, of files kernels are bound to
        self._serial = 0
        self._recent: collections.OrderedDict[int, dict] = collections.OrderedDict()  # serial -> zone lists
        directory = directory or runtime_directory()
        _private_directory(directory)
        self.path = socket_path(mountpoint, directory)
        if os.path.exists(self.path):
            os.unlink(self.path)  # our device number: a previous server of this mount died
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        old = os.umask(0o177)
        try:
            self._listener.bind(self.path)
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)
        self._listener.listen(MAX_CLIENTS)
        self._clients = threading.BoundedSemaphore(MAX_CLIENTS)
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="zcsdfs-control", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop listening and remove the socket; event streams end."""
        if self._closed.is_set():
            return
        self._closed.set()
        try:
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # not connected: accept wakes on close below
        self._listener.close()
        self._thread.join()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return  # closed
            if not self._clients.acquire(blocking=False):
                threading.Thread(target=self._refuse, args=(conn, "too many control clients"),
                                 name="zcsdfs-control-refusal", daemon=True).start()
                continue
            threading.Thread(target=self._serve, args=(conn,), name="zcsdfs-control-client", daemon=True).start()

    @staticmethod
    def _refuse(conn: socket.socket, why: str) -> None:
        """Say why, then wait (briefly) for the peer to hang up: closing with its request
        unread would reset the connection, and the peer might never read the reason."""
        try:
            conn.settimeout(REFUSAL_WAIT)
            conn.sendall(json.dumps({"ok": False, "error": why}).encode() + b"\n")
            conn.shutdown(socket.SHUT_WR)
            while conn.recv(MAX_REQUEST):
                pass
        except OSError:
            pass  # the peer went already, or lingers: either way it is refused
        conn.close()

    def _serve(self, conn: socket.socket) -> None:
        try:
            if peer_uid(conn) != os.geteuid():
                self._refuse(conn, "permission denied: not the owner of this mount")
                return
            reader = conn.makefile("rb")
            while not self._closed.is_set():
                line = reader.readline(MAX_REQUEST + 1)
                if not line:
                    return
                if len(line) > MAX_REQUEST:
                    self._reply(conn, {"ok": False, "error": "request too long"})
                    return
                try:
                    request = json.loads(line)
                except ValueError:
                    request = None
                if isinstance(request, dict) and request.get("op") == "events":
                    self._stream(conn)
                    return
                try:
                    reply = self._answer(request)
                except OSError as exc:
                    reply = {"ok": False, "error": exc.strerror or str(exc),
                             "errno": errno.errorcode.get(exc.errno, "EIO")}
                self._reply(conn, reply)
        except OSError:
            pass  # the client hung up mid-reply
        finally:
            conn.close()
            self._clients.release()

    def _answer(self, request) -> dict:
        """The reply to one request (not ``events``); OSError for one that cannot be served."""
        if not isinstance(request, dict):
            raise OSError(errno.EINVAL, "a request is one JSON object a line")
        op = request.get("op")
        if op == "stats":
            since = request.get("since")
            if since is not None and type(since) is not int:
                raise OSError(errno.EINVAL, "since must be the serial of an earlier stats reply")
            return self._stats_reply(since)
        if op == "files":
            limit = request.get("limit", MAX_FILES)
            if type(limit) is not int or not 0 < limit <= MAX_FILES:
                raise OSError(errno.EINVAL, f"limit must be a whole number from 1 to {MAX_FILES}")
            if self.stack.fs is None:
                return {"ok": True, "files": [], "truncated": False}
            files, truncated = file_list(self.stack.fs, limit)
            return {"ok": True, "files": files, "truncated": truncated}
        if op == "act":
            action = request.get("action")
            if action not in ACTIONS:
                raise OSError(errno.EINVAL, f"action must be one of {', '.join(ACTIONS)}")
            return {"ok": True, "said": act(self.stack, action, self.name)}
        raise OSError(errno.EINVAL, "unknown request (ops: stats, files, act, events)")

    def _stats_reply(self, since: int | None) -> dict:
        with self._snapshot_lock:
            data = self.stats()
            self._serial += 1
            serial = self._serial
            self._recent[serial] = {layer: data[layer]["zone_list"] for layer in ZONE_LAYERS if data.get(layer)}
            while len(self._recent) > RECENT_SNAPSHOTS:
                self._recent.popitem(last=False)
            base = self._recent.get(since) if since is not None else None
        if base is not None:
            for layer, old in base.items():
                new = data[layer]["zone_list"]
                if len(old) == len(new):  # the dicts of unchanged zones are the same objects (PlainMemo)
                    changed = {str(i): zone for i, (was, zone) in enumerate(zip(old, new)) if was is not zone}
                    data[layer] = dict(data[layer], zone_list={"changed": changed})
        return {"ok": True, "stats": data, "serial": serial}

    def stats(self) -> dict:
        """A snapshot as plain data, copying only what changed since the last one."""
        with self._stats_lock:
            self._previous = self.stack.stats(self.server, self._previous)
            data = self._memo.convert(self._previous)
            name_bindings(data, self.stack.fs, self._paths)
            return data

    @staticmethod
    def _reply(conn: socket.socket, message: dict) -> None:
        conn.sendall(json.dumps(message).encode() + b"\n")

    def _stream(self, conn: socket.socket) -> None:
        events: queue.Queue = queue.Queue(EVENT_BACKLOG)
        dropped = 0

        def deliver(event) -> None:
            nonlocal dropped
            try:
                events.put_nowait(event)
            except queue.Full:
                dropped += 1

        unsubscribe = self.stack.events.subscribe(deliver)
        try:
            self._reply(conn, {"ok": True})
            reported = 0
            while not self._closed.is_set():
                try:
                    event = events.get(timeout=0.2)
                except queue.Empty:
                    continue
                if dropped != reported:
                    reported = dropped
                    self._reply(conn, {"dropped": dropped})
                self._reply(conn, {"event": plain(event)})
        finally:
            unsubscribe()


def _ask(mountpoint, message: dict, directory: str | None, timeout: float | None):
    """Connect, send ``message`` and read the first reply line; (reply, line reader)."""
    path = socket_path(mountpoint, directory)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as sock:
        sock.settimeout(10.0)
        try:
            sock.connect(path)
        except (FileNotFoundError, ConnectionRefusedError):
            raise OSError(errno.ENOENT, "no zcsdfs server answers for this mount point",
                          os.fspath(mountpoint)) from None
        sock.sendall(json.dumps(message).encode() + b"\n")
        reader = sock.makefile("rb")  # holds the connection open until it is closed
        sock.settimeout(timeout)
    try:
        reply = json.loads(reader.readline() or b'{"ok": false, "error": "the server hung up"}')
        if not reply.get("ok"):
            error = reply.get("error", "")
            number = getattr(errno, str(reply.get("errno")), None)
            if number is None:
                number = errno.EACCES if "permission" in error else errno.EIO
            raise OSError(number, f"the server refused: {error}", os.fspath(mountpoint))
    except BaseException:
        reader.close()
        raise
    return reply, reader


def request(mountpoint, message: dict, *, directory: str | None = None, timeout: float = 60.0) -> dict:
    """Send one request (``{"op": ...}``) to the server of the mount at ``mountpoint``; its reply
    (OSError with the server's reason when it refuses)."""
    reply, reader = _ask(mountpoint, message, directory, timeout)
    reader.close()
    return reply


def request_stats(mountpoint, *, directory: str | None = None) -> dict:
    """The stats of the server of the mount at ``mountpoint`` (as ``plain`` made them)."""
    return request(mountpoint, {"op": "stats"}, directory=directory, timeout=10.0)["stats"]


def patch_zones(stats: dict, kept: dict[str, list]) -> None:
    """Put a ``since`` reply's changed zones in place: ``kept`` holds each layer's zone list of
    the reply it was asked since (and is updated to this one's); the dict of an unchanged zone
    stays the same object, so what was drawn from it can be reused."""
    for layer in ZONE_LAYERS:
        part = stats.get(layer)
        if not part:
            continue
        zones = part["zone_list"]
        if isinstance(zones, dict):
            zones = list(kept[layer])
            for index, zone in zones_changed(part["zone_list"]["changed"], len(zones)):
                zones[index] = zone
            part["zone_list"] = zones
        kept[layer] = zones


def zones_changed(changed: dict, count: int):
    """(index, zone) of a ``since`` reply's changes, each index checked against the list's length."""
    for key, zone in changed.items():
        index = int(key)
        if not 0 <= index < count:
            raise OSError(errno.EPROTO, f"the server sent zone {index} of {count}")
        yield index, zone


class EventStream:
    """The events of a running server, as ``plain`` dicts; iterate, then ``close``."""

    def __init__(self, mountpoint, *, directory: str | None = None):
        _, self._reader = _ask(mountpoint, {"op": "events"}, directory, None)

    def __iter__(self):
        for line in self._reader:
            message = json.loads(line)
            if "event" in message:
                yield message["event"]

    def close(self) -> None:
        self._reader.close()

    def __enter__(self) -> "EventStream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
