"""The control socket of a running server: snapshots and an event stream, as JSON lines.

A running ``zcsdfs mount`` listens on a Unix socket in a directory only its
owner can enter: ``$XDG_RUNTIME_DIR/zcsdfs/``, or ``/run/zcsdfs/`` for root.
The socket is named after the mount's device number (``st_dev`` of the
mount point, ``dev-MAJOR:MINOR.sock``), so a client finds it from the mount
point alone, and a stale one can never answer for a newer mount. The
socket is mode 0600 and every connection's peer credentials (SO_PEERCRED)
are checked: a process of any other uid is refused.

Requests and replies are one JSON object per line:

- ``{"op": "stats"}`` -> ``{"ok": true, "stats": {...}}`` (``Stack.stats``);
- ``{"op": "events"}`` -> ``{"ok": true}``, then ``{"event": {...}}`` per
  event until the client hangs up (a slow client loses events, never slows
  the server: ``{"dropped": N}`` says how many);
- anything else -> ``{"ok": false, "error": "..."}``.

Each connection is served by its own thread, so a stats query never runs
on (or waits behind) the request path: it takes the file system's lock for
as long as one snapshot takes, as any request would.
"""

from __future__ import annotations

import enum
import errno
import json
import os
import queue
import socket
import stat
import struct
import threading

import attrs

MAX_CLIENTS = 8
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
                    op = request.get("op") if isinstance(request, dict) else None
                except ValueError:
                    op = None
                if op == "stats":
                    self._reply(conn, {"ok": True, "stats": plain(self.stack.stats(self.server))})
                elif op == "events":
                    self._stream(conn)
                    return
                else:
                    self._reply(conn, {"ok": False, "error": "unknown request (ops: stats, events)"})
        except OSError:
            pass  # the client hung up mid-reply
        finally:
            conn.close()
            self._clients.release()

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


def _ask(mountpoint, op: str, directory: str | None, timeout: float | None):
    """Connect, send ``op`` and read the first reply line; (reply, line reader)."""
    path = socket_path(mountpoint, directory)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as sock:
        sock.settimeout(10.0)
        try:
            sock.connect(path)
        except (FileNotFoundError, ConnectionRefusedError):
            raise OSError(errno.ENOENT, "no zcsdfs server answers for this mount point",
                          os.fspath(mountpoint)) from None
        sock.sendall(json.dumps({"op": op}).encode() + b"\n")
        reader = sock.makefile("rb")  # holds the connection open until it is closed
        sock.settimeout(timeout)
    try:
        reply = json.loads(reader.readline() or b'{"ok": false, "error": "the server hung up"}')
        if not reply.get("ok"):
            error = reply.get("error", "")
            raise OSError(errno.EACCES if "permission" in error else errno.EIO, f"the server refused: {error}",
                          os.fspath(mountpoint))
    except BaseException:
        reader.close()
        raise
    return reply, reader


def request_stats(mountpoint, *, directory: str | None = None) -> dict:
    """The stats of the server of the mount at ``mountpoint`` (as ``plain`` made them)."""
    reply, reader = _ask(mountpoint, "stats", directory, 10.0)
    reader.close()
    return reply["stats"]


class EventStream:
    """The events of a running server, as ``plain`` dicts; iterate, then ``close``."""

    def __init__(self, mountpoint, *, directory: str | None = None):
        _, self._reader = _ask(mountpoint, "events", directory, None)

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
