"""The FUSE protocol and its transports (/dev/fuse; virtio-fs plugs in through ``transport``).

``serve(vfs, transport, options)`` serves a vfs over any ``Transport`` until
it closes; ``start`` does the same and returns at once (``serving.py``).
"""

from zcsdfs.fuse.serving import Serving, serve, start

__all__ = ["Serving", "serve", "start"]
