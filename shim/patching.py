"""Putting the stand-ins in place of the originals, everywhere a module holds one, and back.

Replacing ``os.stat`` in ``os`` is not enough: ``from os import stat``,
``from os.path import realpath`` and ``open`` in ``builtins`` are the same
function objects held in other module dictionaries, and ``def close(self,
unlink=_os.unlink)`` (tempfile) holds one in a default argument. ``install``
walks every module in ``sys.modules`` (its globals, its functions' defaults,
its classes' attributes and their methods' defaults) and swaps each value
that *is* an original for its stand-in, recording where; ``restore`` puts
the originals back and walks again for stand-ins that modules imported in
between copied (``from os import stat`` after install hands out the
stand-in, as it should).

Left alone: ``posix`` and ``_io``, the C modules the originals come from
(the import system reads source files through them), and zcsdfs itself,
whose own modules need no stand-ins. An original kept before install in a
closure, a container or an instance stays the original.

``os.supports_fd`` and friends list functions by identity (``shutil``
checks ``os.open in os.supports_dir_fd``); each stand-in joins the sets its
original is in.

Modules that do their file I/O in C get a different kind of stand-in (see
``opaque``); those modules are often imported after install, so an import
hook adds their stand-ins when they finish loading.
"""

from __future__ import annotations

import importlib.abc
import os
import sys
import types

SOURCES = frozenset({"posix", "_io"})
SUPPORT_SETS = ("supports_dir_fd", "supports_fd", "supports_follow_symlinks", "supports_effective_ids")


def _patchable(name: str, module) -> bool:
    if name in SOURCES or name == "zcsdfs" or name.startswith("zcsdfs."):
        return False
    return isinstance(getattr(module, "__dict__", None), dict)


HEAPTYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE: a class made by a class statement, whose attributes can be set


class Patches:
    """The stand-ins of one installation, and every place they were put."""

    def __init__(self, stand_ins: dict):
        self._stand_ins: dict = {}
        self._by_id: dict = {}
        self._placed: list[tuple[object, str, object]] = []  # (holder, key, what was there)
        self._hook: _LoadHook | None = None
        self.active = False
        self._learn(stand_ins)

    def _learn(self, stand_ins: dict) -> None:
        # A built-in function kept in a class attribute does not bind to instances; a Python
        # function would, so each goes in wrapped as a (callable) staticmethod.
        stand_ins = {o: staticmethod(s) if isinstance(s, types.FunctionType) else s
                     for o, s in stand_ins.items()}
        self._stand_ins.update(stand_ins)
        self._by_id.update({id(o): (o, s) for o, s in stand_ins.items()})

    def _stand_in_for(self, value):
        found = self._by_id.get(id(value))
        return found[1] if found is not None and found[0] is value else None

    def add(self, stand_ins: dict) -> None:
        """More stand-ins (for a module loaded after install), put in place at once."""
        self._learn(stand_ins)
        self._visit(self._stand_in_for, self._placed)

    def apply(self, watched: dict) -> None:
        """Put every stand-in in place; ``watched`` maps top-level module names to a function
        giving the stand-ins for that module once it is loaded."""
        self._visit(self._stand_in_for, self._placed)
        for set_name in SUPPORT_SETS:
            support = getattr(os, set_name)
            support.update(s for o, s in self._stand_ins.items() if o in support)
        self._hook = _LoadHook(watched, self)
        sys.meta_path.insert(0, self._hook)
        self.active = True

    def restore(self) -> None:
        """Put every original back where it was, and wherever a stand-in was copied since."""
        sys.meta_path.remove(self._hook)
        for set_name in SUPPORT_SETS:
            getattr(os, set_name).difference_update(self._stand_ins.values())
        for holder, key, before in reversed(self._placed):
            _set(holder, key, before)
        self._placed.clear()
        originals = {id(s): (s, o) for o, s in self._stand_ins.items()}

        def original_for(value):
            found = originals.get(id(value))
            return found[1] if found is not None and found[0] is value else None
        self._visit(original_for, None)
        self.active = False

    def _visit(self, swap, placed) -> None:
        """Replace each value ``swap`` maps to something in every place a module keeps functions:
        its globals, the default arguments of its functions, its classes' attributes and their
        methods' defaults. What was replaced is appended to ``placed``."""
        for name, module in list(sys.modules.items()):
            if not _patchable(name, module):
                continue
            namespace = module.__dict__
            for key, value in list(namespace.items()):
                new = swap(value)
                if new is not None:
                    _put(namespace, key, new, placed)
                elif isinstance(value, types.FunctionType):
                    _visit_defaults(value, swap, placed)
                elif isinstance(value, type) and value.__module__ == name and value.__flags__ & HEAPTYPE:
                    _visit_class(value, swap, placed)


def _set(holder, key, value) -> None:
    if isinstance(holder, dict):
        holder[key] = value
    else:
        setattr(holder, key, value)


def _get(holder, key):
    return holder[key] if isinstance(holder, dict) else getattr(holder, key)


def _put(holder, key, value, placed) -> None:
    if placed is not None:
        placed.append((holder, key, _get(holder, key)))
    _set(holder, key, value)


def _visit_defaults(function, swap, placed) -> None:
    defaults = function.__defaults__
    if defaults and any(swap(d) is not None for d in defaults):
        _put(function, "__defaults__", tuple(swap(d) or d for d in defaults), placed)
    kwdefaults = function.__kwdefaults__
    if kwdefaults and any(swap(d) is not None for d in kwdefaults.values()):
        _put(function, "__kwdefaults__", {k: swap(d) or d for k, d in kwdefaults.items()}, placed)


def _visit_class(cls, swap, placed) -> None:
    for key, value in list(vars(cls).items()):
        new = swap(value)
        if new is not None:
            _put(cls, key, new, placed)
            continue
        inner = value.__func__ if isinstance(value, (staticmethod, classmethod)) else value
        if isinstance(inner, types.FunctionType):
            _visit_defaults(inner, swap, placed)


class _LoadHook(importlib.abc.MetaPathFinder):
    """Adds the stand-ins for a watched module when it has finished loading."""

    def __init__(self, watched: dict, patches: Patches):
        self._watched = watched
        self._patches = patches

    def find_spec(self, fullname, path, target=None):
        if fullname not in self._watched:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _ThenPatch(spec.loader, self._watched[fullname], self._patches)
        return spec


class _ThenPatch(importlib.abc.Loader):
    """A loader that runs the real one, then hands the module back to it and adds stand-ins."""

    def __init__(self, loader, stand_ins_for, patches: Patches):
        self._loader = loader
        self._stand_ins_for = stand_ins_for
        self._patches = patches

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        module.__spec__.loader = module.__loader__ = self._loader
        self._loader.exec_module(module)
        if self._patches.active:
            self._patches.add(self._stand_ins_for(module))
