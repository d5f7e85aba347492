"""CRC32C (Castagnoli), computed by the ``crc32c`` package's compiled extension, loaded on its own.

Importing the package runs its ``__init__``, which imports its command line
(argparse) and ``importlib.metadata`` (for ``__version__``; that pulls in
email and zipfile): tens of milliseconds and some sixty modules on the first
``import zcsdfs``, for one function. The function lives in the extension
module ``crc32c._crc32c``, which needs only libc and imports no Python
module, so it is loaded here straight from its file with the standard
extension loader: the same code (hardware CRC32C where the CPU has it), none
of the package's start-up. Where the package is laid out differently and the
file is not there, the package is imported as usual.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys

EXTENSION = "crc32c._crc32c"


def _extension():
    """The extension module, loaded from its file without running the package's ``__init__``."""
    loaded = sys.modules.get(EXTENSION)
    if loaded is not None:
        return loaded
    package = importlib.util.find_spec("crc32c")  # finds the package; runs none of it
    if package is not None and package.submodule_search_locations:
        spec = importlib.machinery.PathFinder.find_spec(EXTENSION, package.submodule_search_locations)
        if spec is not None and isinstance(spec.loader, importlib.machinery.ExtensionFileLoader):
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module
    import crc32c
    return crc32c


_module = _extension()
crc32c = _module.crc32c  # crc32c(data, value=0) -> int: continues ``value`` over ``data``
hardware_based: bool = _module.hardware_based
