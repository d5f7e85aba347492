"""Run-time limits of one run: an instruction budget and a wall-clock deadline.

Both engines charge each basic block's instructions, on entry, against a
counter, and stop the run at exactly the block that would take it below
zero. The deadline is read where a run can spend long:

- the interpreter's counter holds only a *slice* of the budget
  (``INTERP_SLICE`` instructions, a few milliseconds); when it runs out the
  run's :class:`Meter` gives the next slice and reads the clock;
- compiled code holds the whole budget and reads the clock before each call
  of a Python helper, which is where compiled code is slow; it runs at least
  ``JIT_MIN_RATE`` instructions a second otherwise, so the budget ends the
  run in time, unless the budget is large for the deadline
  (:func:`needs_clock`): then a build that reads the clock itself
  (``clock_gettime``) at outer loop heads and function entries, once every
  ``JIT_CHECK`` instructions, runs it.

The budget bounds work; the deadline bounds time when the work is slow (the
interpreter, or a loop of helper calls). The registry scales both with the
bytes a kernel may read (:func:`for_bytes`): with little data a runaway
kernel stops within about a second in either engine.
"""

from __future__ import annotations

import time

import attrs

BASE_BUDGET = 1 << 24  # instructions any run may execute: ~10-20 ms of JIT code, ~1-5 s of the interpreter
INSTRUCTIONS_PER_BYTE = 64  # more per byte the kernel may read (the shipped kernels need 1-15)
BASE_TIMEOUT = 1.0  # seconds any run may take
SECONDS_PER_BYTE = 20e-6  # more per byte: 64 instructions at the interpreter's ~3 M insn/s on real kernels
INTERP_SLICE = 1 << 16
JIT_CHECK = 1 << 22
JIT_MIN_RATE = 10 ** 8  # instructions per second compiled code sustains at worst (a helper call aside)


def needs_clock(budget: int, timeout: float | None) -> bool:
    """Whether compiled code must read the clock itself: the budget could outlast the deadline."""
    return timeout is not None and budget > timeout * JIT_MIN_RATE


@attrs.frozen
class Limits:
    """``max_insns`` (a positive instruction budget) and ``timeout`` (seconds, None: no deadline)."""

    max_insns: int
    timeout: float | None = None

    def __attrs_post_init__(self):
        if not isinstance(self.max_insns, int) or self.max_insns <= 0:
            raise ValueError(f"the instruction budget must be a positive integer, not {self.max_insns!r}")
        if self.timeout is not None and not self.timeout > 0:
            raise ValueError(f"the timeout must be a positive number of seconds, not {self.timeout!r}")


def for_bytes(n: int, *, max_insns: int | None = None, timeout: float | None = None) -> Limits:
    """The registry's rule for a run that may read ``n`` bytes; either limit may be given instead."""
    return Limits(BASE_BUDGET + INSTRUCTIONS_PER_BYTE * n if max_insns is None else max_insns,
                  BASE_TIMEOUT + SECONDS_PER_BYTE * n if timeout is None else timeout)


class Meter:
    """One run's budget beyond the engine's counter (``reserve``) and its deadline."""

    def __init__(self, budget: int, timeout: float | None, slice_: int | None = None):
        if budget <= 0:
            raise ValueError(f"the instruction budget must be positive, not {budget}")
        if timeout is not None and not timeout > 0:
            raise ValueError(f"the timeout must be a positive number of seconds, not {timeout!r}")
        self.budget = budget
        self.timeout = timeout
        self.first = budget if slice_ is None else min(budget, slice_)  # the counter's value at the start
        self.reserve = budget - self.first
        self.slice = slice_ or budget
        self.deadline = None if timeout is None else time.monotonic() + timeout

    def refill(self, counter: int) -> int | None:
        """The counter's next value after it went to ``counter`` (< 0); None if the budget is spent."""
        deficit = -counter
        if self.reserve < deficit:
            return None
        take = max(deficit, min(self.reserve, self.slice))
        self.reserve -= take
        return take - deficit

    def expired(self) -> bool:
        return self.deadline is not None and time.monotonic() > self.deadline

    def used(self, counter: int) -> int:
        """Instructions executed when the counter holds ``counter``."""
        return self.budget - self.reserve - counter
