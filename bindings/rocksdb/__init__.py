"""zcsdfs.rocksdb: a real RocksDB (Debian's librocksdb) whose files live in a zcsdfs volume
in this process: RocksDB's ``FileSystem`` is implemented over the vfs (filesystem.cc calling
back into bridge.py), so there is no kernel, mount or root involved.

The API follows rocksdict's ``Rdict`` on bytes keys and values::

    from zcsdfs.rocksdb import DB, Options, WriteBatch
    with DB("/db", volume=zcsdfs.Volume.memory()) as db:
        db[b"k"] = b"v"

Importing needs g++ and librocksdb-dev (the native part is compiled on first import);
without them the ImportError says what to install.
"""

from .errors import RocksDBError
from .options import Options
from .batch import WriteBatch
from .db import DB
from .iterator import Iterator
from .snapshot import Snapshot
from . import lifetime

__all__ = ["DB", "Options", "WriteBatch", "Iterator", "Snapshot", "RocksDBError", "lifetime"]
