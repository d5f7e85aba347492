"""Loading a program into an engine: verify first, then build the interpreter or the JIT.

Both engines have the same face (:class:`Engine`): ``run(mem=None, *,
env=None) -> int`` runs the program once with ``mem`` as its context and
returns r0. Nothing runs unverified through :func:`load`.
"""

from __future__ import annotations

from typing import Protocol

from zcsdfs.csd import verifier
from zcsdfs.csd.helpers import HelperSet
from zcsdfs.csd.program import Program

DEFAULT_BUDGET = 1 << 30
ENGINES = ("interp", "jit")


class Engine(Protocol):
    """A loaded program, ready to run any number of times."""

    program: Program

    def run(self, mem=None, *, env=None, budget: int | None = None, timeout: float | None = None) -> int:
        """Run once: r1 = address of ``mem`` (r2 its length); returns r0 (unsigned 64-bit).

        ``budget`` overrides the engine's instruction budget for this run,
        ``timeout`` its deadline in seconds (``BudgetExceeded`` and
        ``DeadlineExceeded`` stop the run, both ETIME).
        When ``env`` has an ``instructions`` attribute, the instructions the
        run executed are added to it.
        """


def load(
    program: Program,
    helpers: HelperSet | None = None,
    *,
    engine: str = "interp",
    budget: int = DEFAULT_BUDGET,
    timeout: float | None = None,
) -> Engine:
    """Verify ``program`` against ``helpers`` and build ``engine`` for it.

    ``budget`` (instructions) and ``timeout`` (seconds; None: none) are the
    run-time limits of each run unless ``run`` overrides them.

    Raises ``ProgramRefused`` (EINVAL) when the verifier refuses the program.
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if budget <= 0:
        raise ValueError(f"the instruction budget must be positive, not {budget}")
    helpers = helpers if helpers is not None else HelperSet()
    verdict = verifier.verify(program, helpers)
    if engine == "jit":
        from zcsdfs.csd.jit import Jit

        return Jit(program, helpers, budget, verdict, timeout=timeout)
    from zcsdfs.csd.interpreter import Interpreter

    return Interpreter(program, helpers, budget, verdict, timeout=timeout)
