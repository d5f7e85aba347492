"""The verifier: every program is checked before either engine runs it.

Three passes, each refusing with :class:`ProgramRefused` naming the pc:

1. structure (``verifier_structure``): at most 65,536 slots, opcodes of our
   groups, unused fields zero, registers, r10 read-only, lddw pairs and
   section references;
2. control flow (``verifier_cfg``): jump and call targets, no fall-off,
   no recursion, at most 8 frames, and a path to exit from every reachable
   instruction (a loop with no way out is refused); unreachable code is
   allowed and reported in :attr:`Verdict.unreachable`;
3. abstract interpretation (``verifier_absint``): register types and ranges,
   stack initialisation, pointer leaks (including comparisons whose outcome
   depends on where memory is), helper signatures, and the bounds of every
   memory access, in at most ``MAX_PROCESSED`` steps.

Only a hostile program makes the verifier refuse; nothing makes it fail
otherwise (tests/csd/test_verifier_fuzz.py). Termination is not proven:
loops with a way out are allowed, and the engines' run-time limits (an
instruction budget and a deadline) stop a program that runs too long.
"""

from __future__ import annotations

import attrs

from zcsdfs.csd.helpers import HelperSet
from zcsdfs.csd.program import Program
from zcsdfs.csd.verifier_absint import analyse
from zcsdfs.csd.verifier_cfg import analyse as control_flow
from zcsdfs.csd.verifier_structure import check_structure


@attrs.frozen
class Verdict:
    """What the verifier proved about an accepted program.

    ``checked`` holds the pcs of loads, stores and atomics that still need
    a run-time bounds check; every other memory access was proven inside
    its stack frame, section or helper memory (or inside the part of the
    context that a comparison of r2 guarantees).
    """

    checked: frozenset[int]
    unreachable: frozenset[int]  # instruction pcs never reached (lddw second halves excluded)
    functions: tuple[int, ...]  # entry pcs: 0 and every local call target
    stack_depth: tuple[tuple[int, int], ...]  # (function entry, deepest frame byte its loads/stores touch)
    processed: int  # instructions analysed, counting revisits of loops and calls


def verify(program: Program, helpers: HelperSet | None = None) -> Verdict:
    """Check ``program`` against the helpers it may call (none if None)."""
    helpers = HelperSet() if helpers is None else helpers
    halves = check_structure(program)
    cfg = control_flow(program, halves)
    analysis = analyse(program, helpers, cfg)
    unreachable = frozenset(range(len(program))) - cfg.reachable - halves
    return Verdict(
        checked=frozenset(analysis.checked),
        unreachable=unreachable,
        functions=cfg.functions,
        stack_depth=tuple(sorted(analysis.stack_depth.items())),
        processed=analysis.processed,
    )
