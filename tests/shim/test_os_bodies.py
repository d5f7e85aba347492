"""Every tests/api body that compares zcsdfs with the real os, run again through the shim.

The bodies are collected here under names prefixed with their module's;
the ``both`` fixture of this package makes their second side plain
``os``/``io`` calls under the mount prefix (see conftest, which also lists
the bodies whose answer differs on purpose).
"""

import inspect

from tests.api import (test_attrs, test_dirs, test_fdops, test_io, test_links, test_open, test_path,
                       test_permissions, test_rename, test_rw, test_seek, test_stat, test_stdlib,
                       test_walk, test_xattr)

MODULES = (test_attrs, test_dirs, test_fdops, test_io, test_links, test_open, test_path,
           test_permissions, test_rename, test_rw, test_seek, test_stat, test_stdlib, test_walk,
           test_xattr)


def _borrowed():
    for module in MODULES:
        short = module.__name__.rpartition(".")[2][len("test_"):]
        for name, fn in vars(module).items():
            if name.startswith("test_") and inspect.isfunction(fn) and fn.__module__ == module.__name__:
                params = inspect.signature(fn).parameters
                if "both" in params and "vol" not in params:
                    yield f"test_{short}__{name[len('test_'):]}", fn


for _name, _fn in _borrowed():
    globals()[_name] = _fn
del _name, _fn
