"""The helper ABI: functions a program calls by number (``call N``).

A helper is registered with a signature so the verifier can check each call
site (pointer arguments must point at readable or writable memory of at least
the size passed in the paired size argument) and type the result. Both
engines call ``func`` for a Python helper; the JIT may instead emit a helper
inline or call a native symbol, which is where speed matters (the storage
helpers that read blocks and return data).
"""

from __future__ import annotations

import enum
from typing import Callable

import attrs


class Arg(enum.Enum):
    """What a helper accepts in one argument register (r1..r5)."""

    SCALAR = "scalar"  # any initialised scalar
    ANYTHING = "anything"  # any initialised value, pointer or scalar
    PTR_TO_MEM = "ptr_to_mem"  # readable memory; size in the next SIZE argument
    PTR_TO_UNINIT_MEM = "ptr_to_uninit_mem"  # writable memory the helper fills
    SIZE = "size"  # > 0 and within the region of the previous pointer argument
    SIZE_OR_ZERO = "size_or_zero"


class Ret(enum.Enum):
    """What a helper leaves in r0."""

    INTEGER = "integer"
    VOID = "void"  # r0 is unreadable after the call
    PTR_TO_MEM_OR_NULL = "ptr_to_mem_or_null"  # readable memory of ret_size bytes, or 0
    PTR_TO_MEM = "ptr_to_mem"  # writable memory of ret_size bytes, never 0 (scratch memory)
    PTR_TO_CTX = "ptr_to_ctx"  # the context, as r1 held it at entry (a call record kept there)


@attrs.frozen
class Helper:
    """One helper.

    ``func(vm, r1, r2, r3, r4, r5) -> int`` runs it for the interpreter (and
    for the JIT through a callback when there is no native form); ``vm`` is
    the running engine's memory and state (see ``memory.py``).
    """

    number: int
    name: str
    args: tuple[Arg, ...] = attrs.field(converter=tuple)
    ret: Ret
    func: Callable[..., int] = attrs.field(eq=False, repr=False)
    ret_size: int = 0
    native: str | None = None  # name of the inline/native form the JIT knows, if any


class HelperSet:
    """Helpers by number; a program may call only what its set registers."""

    def __init__(self, helpers: tuple[Helper, ...] = ()):
        self._by_number: dict[int, Helper] = {}
        for h in helpers:
            self.register(h)

    def register(self, helper: Helper) -> None:
        if len(helper.args) > 5:
            raise ValueError(f"helper {helper.name}: at most 5 arguments")
        if helper.number in self._by_number:
            raise ValueError(f"helper number {helper.number} is taken by {self._by_number[helper.number].name}")
        self._by_number[helper.number] = helper

    def get(self, number: int) -> Helper | None:
        return self._by_number.get(number)

    def __iter__(self):
        return iter(sorted(self._by_number.values(), key=lambda h: h.number))

    def __contains__(self, number: int) -> bool:
        return number in self._by_number
