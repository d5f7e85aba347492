"""zcsdfs: a computational-storage file system you can import.

The os-compatible surface (``import zcsdfs as os``) grows here as the vfs
layer lands; for now the package exposes the zoned device in ``zcsdfs.zns``
and the eBPF runtime in ``zcsdfs.csd``.
"""

__version__ = "0.1.0"
