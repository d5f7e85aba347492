"""Control flow: functions, jump targets, fall-off, call graph and reachability.

A function runs from its entry (pc 0 or a ``call local`` target) to the next
entry; jumps must stay inside it and it must not run past its end. The call
graph reachable from pc 0 must be acyclic (no recursion, as in Linux) and no
deeper than the engines' frame limit, so the verifier can follow every call
in its own context.
Every reachable instruction must have a path to an exit of its function.
Unreachable code is allowed (the conformance suite has some) and reported,
but its jumps must still be valid and it must not fall off the end either,
because the engines translate every instruction.
"""

from __future__ import annotations

import bisect

import attrs

from zcsdfs.csd import isa
from zcsdfs.csd.errors import ProgramRefused
from zcsdfs.csd.program import Program

MAX_FRAMES = 8


@attrs.frozen
class ControlFlow:
    functions: tuple[int, ...]  # entry pcs, ascending; functions[0] == 0
    reachable: frozenset[int]
    loop_heads: frozenset[int]  # targets of jumps that go backwards
    merges: frozenset[int]  # pcs entered by more than one edge (or after a call returns)


def jump_target(insn: isa.Instruction, pc: int) -> int:
    """Target of a jump (gotol keeps its offset in imm) or of a local call."""
    if insn.cls == isa.JMP32 and insn.op == isa.JA or insn.op == isa.CALL:
        return pc + 1 + insn.imm
    return pc + 1 + insn.off


def is_local_call(insn: isa.Instruction) -> bool:
    return insn.cls == isa.JMP and insn.op == isa.CALL and insn.src == isa.CALL_LOCAL


def is_helper_call(insn: isa.Instruction) -> bool:
    return insn.cls == isa.JMP and insn.op == isa.CALL and insn.src == isa.CALL_HELPER


def is_exit(insn: isa.Instruction) -> bool:
    return insn.cls == isa.JMP and insn.op == isa.EXIT


def is_jump(insn: isa.Instruction) -> bool:
    return insn.cls in (isa.JMP, isa.JMP32) and insn.op not in (isa.CALL, isa.EXIT)


def is_goto(insn: isa.Instruction) -> bool:
    return is_jump(insn) and insn.op == isa.JA


def analyse(program: Program, halves: frozenset[int]) -> ControlFlow:
    insns, n = program.insns, len(program.insns)
    pcs = [pc for pc in range(n) if pc not in halves]

    def check_target(pc: int, target: int, what: str) -> None:
        if not 0 <= target < n:
            raise ProgramRefused(f"{what} target {target} is outside the program (0..{n - 1})", pc=pc)
        if target in halves:
            raise ProgramRefused(f"{what} target {target} is the middle of an lddw", pc=pc)

    entries = {0}
    for pc in pcs:
        if is_local_call(insns[pc]):
            target = jump_target(insns[pc], pc)
            check_target(pc, target, "call")
            entries.add(target)
    functions = tuple(sorted(entries))

    def function_of(pc: int) -> int:
        return functions[bisect.bisect_right(functions, pc) - 1]

    def function_end(entry: int) -> int:
        i = functions.index(entry)
        return functions[i + 1] if i + 1 < len(functions) else n

    successors: dict[int, tuple[int, ...]] = {}
    loop_heads = set()
    calls: dict[int, set[int]] = {f: set() for f in functions}
    for pc in pcs:
        insn = insns[pc]
        entry = function_of(pc)
        end = function_end(entry)
        nxt = pc + (2 if insn.is_lddw else 1)
        succ = []
        if is_jump(insn):
            target = jump_target(insn, pc)
            check_target(pc, target, "jump")
            if not entry <= target < end:
                raise ProgramRefused(f"jump target {target} is outside its function ({entry}..{end - 1})", pc=pc)
            succ.append(target)
            if target <= pc:
                loop_heads.add(target)
        if is_local_call(insn):
            callee = jump_target(insn, pc)
            calls[entry].add(callee)
            succ.append(callee)
        if not (is_exit(insn) or is_goto(insn)):
            if nxt >= end:
                raise ProgramRefused("execution falls off the end of the "
                                     + ("program" if end == n else f"function at {entry}"), pc=pc)
            succ.append(nxt)
        successors[pc] = tuple(succ)

    _check_call_graph(calls)
    edges: dict[int, int] = {0: 1}  # the program is entered at 0
    for pc, succ in successors.items():
        for target in succ:
            edges[target] = edges.get(target, 0) + 1
        if is_local_call(insns[pc]):
            edges[pc + 1] = 2  # reached from each exit of the callee
    merges = frozenset(pc for pc, count in edges.items() if count > 1)
    reachable = {0}
    todo = [0]
    while todo:
        for s in successors[todo.pop()]:
            if s not in reachable:
                reachable.add(s)
                todo.append(s)
    _check_way_out(insns, successors, reachable)
    return ControlFlow(functions, frozenset(reachable), frozenset(loop_heads), merges)


def _check_way_out(insns, successors: dict[int, tuple[int, ...]], reachable: set[int]) -> None:
    """Refuse a reachable instruction from which no path leads to an exit of
    its function (``loop: add r0, 1; ja loop``): such a program can only end
    by running out of time, so it is a bug or an attack, never a kernel.
    A local call counts as returning (the callee is checked on its own)."""
    before: dict[int, list[int]] = {}
    for pc, succ in successors.items():
        callee = jump_target(insns[pc], pc) if is_local_call(insns[pc]) else None
        for target in succ:
            if target != callee or target == pc + 1:
                before.setdefault(target, []).append(pc)
    out = {pc for pc in successors if is_exit(insns[pc])}
    todo = list(out)
    while todo:
        for pc in before.get(todo.pop(), ()):
            if pc not in out:
                out.add(pc)
                todo.append(pc)
    trapped = reachable - out
    if trapped:
        # name the loop: a trapped jump target reached backwards from inside the trap
        heads = {t for pc in trapped for t in successors[pc] if t <= pc and t in trapped}
        pc = min(heads or trapped)
        raise ProgramRefused("a loop with no way out starts here: no path from it reaches exit", pc=pc)


def _check_call_graph(calls: dict[int, set[int]]) -> None:
    """Refuse recursion and call chains deeper than the engines allow."""
    height: dict[int, int] = {}  # frames needed by a call to f, f's own included
    active: list[int] = []

    def visit(f: int) -> int:
        if f in active:
            raise ProgramRefused(f"recursive call to the function at {f}", pc=f)
        if len(active) >= MAX_FRAMES:
            chain = " -> ".join(map(str, active + [f]))
            raise ProgramRefused(f"call chain {chain} needs more than {MAX_FRAMES} frames", pc=f)
        if f not in height:
            active.append(f)
            height[f] = 1 + max((visit(g) for g in calls[f]), default=0)
            active.pop()
        if len(active) + height[f] > MAX_FRAMES:
            raise ProgramRefused(f"calls through the function at {f} need more than {MAX_FRAMES} frames", pc=f)
        return height[f]

    visit(0)
