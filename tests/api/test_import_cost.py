"""``import zcsdfs`` and its first call load no command-line or terminal machinery.

A program that swaps ``import os`` for ``import zcsdfs as os`` pays for the
file system, not for argparse (which the ``crc32c`` package's ``__init__``
imports for its command line) or rich (the CLI's tables). Run in a fresh
interpreter, since this one has loaded both for other tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from zcsdfs.zns import crc32c

PROGRAM = """
import json, sys
import zcsdfs
{setup}
zcsdfs.stat("/")
print(json.dumps(sorted(sys.modules)))
"""
MEMORY = "zcsdfs.mount(zcsdfs.zns.ZonedDevice.memory(zcsdfs.zns.Geometry.preset('tiny')))"


def loaded_after_first_call(setup: str, env: dict | None = None) -> set[str]:
    out = subprocess.run([sys.executable, "-c", PROGRAM.format(setup=setup)], capture_output=True, text=True,
                         check=True, env=env)
    return set(json.loads(out.stdout))


def heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in ("argparse", "rich", "rich_argparse"))


def test_memory_volume_loads_neither_argparse_nor_rich():
    modules = loaded_after_first_call(MEMORY)
    assert "zcsdfs.lfs" in modules  # the call went through the stack
    assert heavy(modules) == []
    assert "crc32c" not in modules  # the package's __init__ (its command line, importlib.metadata)


def test_default_device_loads_neither_argparse_nor_rich(tmp_path):
    env = dict(os.environ, ZCSDFS_DEVICE=str(tmp_path / "default.zns"))
    modules = loaded_after_first_call("", env)
    assert (tmp_path / "default.zns").exists()
    assert heavy(modules) == []


def test_crc32c_is_the_packages_own_without_its_init():
    """The same function as ``crc32c.crc32c`` (the check value of CRC-32C, and chaining)."""
    import crc32c as package
    data = bytes(range(256)) * 33
    assert crc32c.crc32c(b"123456789") == 0xE3069283
    assert crc32c.crc32c(data[1000:], crc32c.crc32c(data[:1000])) == package.crc32c(data)
    assert crc32c.hardware_based == package.hardware_based
