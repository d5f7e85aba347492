"""Native forms of the storage helpers (``stdlib``) for the JIT.

A kernel that streams a file calls ``zcsd_read`` once per chunk; through a
Python callback each call would cost microseconds, as much as summing the
chunk. Here the helpers are IR at the call site: ``zcsd_read`` copies from a
table of the file's extents (file offset, address, length) with ``memmove``,
``zcsd_return_data`` appends to an output chunk, and the two size queries
load a number.

Each form does only the common case and hands everything else to the
Python helper (no ``StorageEnv`` or one with a ``reader``, a zero length, a buffer outside the
program's memory, output past the chunk), so every error and edge case is
the Python helper's own. The per-run state is one array of u64 (:data:`FIELDS`)
built from the env when the run starts; ``finish`` folds the output and the
bytes-read count back into the env before any Python helper runs and at the end.
"""

from __future__ import annotations

import attrs
import cffi
from llvmlite import ir

from zcsdfs.csd.jit_codegen import I1, I64, PTR, Native, i64, register_native
from zcsdfs.csd.stdlib import StorageEnv

# Slots of the state array.
FIELDS = ("ready", "file_size", "block_size", "extents", "hint", "bytes_read", "out", "out_len", "out_cap")
SLOT = {name: index for index, name in enumerate(FIELDS)}
EXTENT = 3  # u64s per extent-table entry: file offset, address, length
OUTPUT_CHUNK = 64 << 10  # output gathered natively between two syncs with the env

ffi = cffi.FFI()
_raw = ffi.new_allocator(should_clear_after_alloc=False)


@attrs.define
class _State:
    """One run's state array, and the output chunk it points into."""

    slots: object
    out: object = None
    chunk: int = 0


def _prepare(run) -> int:
    state = run.native_state.get("zcsd")
    if state is None:
        state = run.native_state["zcsd"] = _State(run.allocate("uint64_t[]", len(FIELDS)))
        env = run.env
        if isinstance(env, StorageEnv) and env.reader is None:
            table = run.allocate("uint64_t[]", EXTENT * max(1, len(env.extents)))
            for k, (offset, extent) in enumerate(zip(env.offsets, env.extents)):
                table[EXTENT * k:EXTENT * k + EXTENT] = [offset, run.pin(extent), len(extent)]
            state.chunk = max(0, min(OUTPUT_CHUNK, env.output_limit - len(env.output)))
            state.out = _raw("char[]", max(1, state.chunk))
            slots = state.slots
            slots[SLOT["ready"]] = 1
            slots[SLOT["file_size"]] = env.file_size
            slots[SLOT["block_size"]] = env.block_size
            slots[SLOT["extents"]] = run.address(table)
            slots[SLOT["out"]] = run.address(state.out)
            slots[SLOT["out_cap"]] = state.chunk
    return run.address(state.slots)


def _finish(run) -> None:
    state = run.native_state["zcsd"]
    slots = state.slots
    if not slots[SLOT["ready"]]:
        return
    env = run.env
    if slots[SLOT["out_len"]]:
        env.output += ffi.buffer(state.out, slots[SLOT["out_len"]])
        slots[SLOT["out_len"]] = 0
    slots[SLOT["out_cap"]] = max(0, min(state.chunk, env.output_limit - len(env.output)))
    env.bytes_read += slots[SLOT["bytes_read"]]
    slots[SLOT["bytes_read"]] = 0


class _Slots:
    """IR access to the state array of one call site."""

    def __init__(self, fn, state: ir.Value):
        self.b = fn.b
        self.base = self.b.inttoptr(state, PTR)

    def ptr(self, name: str) -> ir.Value:
        return self.b.gep(self.base, [i64(SLOT[name])], source_etype=I64)

    def __getitem__(self, name: str) -> ir.Value:
        return self.b.load(self.ptr(name), typ=I64)

    def __setitem__(self, name: str, value: ir.Value) -> None:
        self.b.store(value, self.ptr(name))


def _fast_or_python(fn, pc: int, number: int, args, fast: ir.Value, emit_fast) -> ir.Value:
    """r0 of ``emit_fast()`` when ``fast`` holds, else of the Python helper."""
    b = fn.b
    with b.if_else(fn.likely(fast)) as (then, otherwise):
        with then:
            fast_r0 = emit_fast()
            fast_end = b.block
        with otherwise:
            slow_r0 = fn.python_helper(pc, number, args)
            slow_end = b.block
    r0 = b.phi(I64)
    r0.add_incoming(fast_r0, fast_end)
    r0.add_incoming(slow_r0, slow_end)
    return r0


def _umin(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    return b.select(b.icmp_unsigned("<", x, y), x, y)


def _emit_read(fn, pc: int, number: int, state: ir.Value, args) -> ir.Value:
    """``zcsd_read(offset, buf, len)``: copy file bytes from the extent table."""
    b = fn.b
    offset, buf, length = args[:3]
    s = _Slots(fn, state)
    usable = b.and_(b.icmp_unsigned("!=", s["ready"], i64(0)), b.icmp_unsigned("!=", length, i64(0)))
    fast = b.and_(usable, fn.in_bounds(buf, length, 1))

    def copy() -> ir.Value:
        file_size = s["file_size"]
        with b.if_else(b.icmp_unsigned(">=", offset, file_size)) as (past_end, inside):
            with past_end:
                past_end_block = b.block
            with inside:
                copied = _emit_copy(fn, s, offset, buf, _umin(b, length, b.sub(file_size, offset)))
                inside_block = b.block
        r0 = b.phi(I64)
        r0.add_incoming(i64(0), past_end_block)
        r0.add_incoming(copied, inside_block)
        return r0

    return _fast_or_python(fn, pc, number, args, fast, copy)


def _emit_copy(fn, s: _Slots, offset: ir.Value, buf: ir.Value, want: ir.Value) -> ir.Value:
    """Copy ``want`` (> 0) bytes of the file at ``offset`` to ``buf``; returns ``want``.

    The search for the first extent starts at the one the previous call
    ended in, so a kernel reading the file in order never scans the table.
    """
    b = fn.b
    table = b.inttoptr(s["extents"], PTR)
    entry = lambda i, k: b.load(b.gep(table, [b.add(b.mul(i, i64(EXTENT)), i64(k))], source_etype=I64), typ=I64)
    hint = s["hint"]
    start_block = b.block
    first = b.select(b.icmp_unsigned(">", entry(hint, 0), offset), i64(0), hint)
    seek, copy, done_block = (fn.fn.append_basic_block(name) for name in ("seek", "copy", "copied"))
    b.branch(seek)

    b.position_at_end(seek)
    i = b.phi(I64)
    i.add_incoming(first, start_block)
    before = b.icmp_unsigned("<=", b.add(entry(i, 0), entry(i, 2)), offset)
    i.add_incoming(b.add(i, i64(1)), seek)
    b.cbranch(before, seek, copy)

    b.position_at_end(copy)
    j = b.phi(I64)
    done = b.phi(I64)
    j.add_incoming(i, seek)
    done.add_incoming(i64(0), seek)
    at = b.sub(b.add(offset, done), entry(j, 0))
    n = _umin(b, b.sub(entry(j, 2), at), b.sub(want, done))
    b.call(fn.m.memmove, [b.inttoptr(b.add(buf, done), PTR), b.inttoptr(b.add(entry(j, 1), at), PTR), n,
                          ir.Constant(I1, 0)])
    done_next = b.add(done, n)
    j.add_incoming(b.add(j, i64(1)), copy)
    done.add_incoming(done_next, copy)
    b.cbranch(b.icmp_unsigned("<", done_next, want), copy, done_block)

    b.position_at_end(done_block)
    s["hint"] = j
    s["bytes_read"] = b.add(s["bytes_read"], want)
    return want


def _emit_return_data(fn, pc: int, number: int, state: ir.Value, args) -> ir.Value:
    """``zcsd_return_data(data, len)``: append to the run's output chunk."""
    b = fn.b
    data, length = args[:2]
    s = _Slots(fn, state)
    used = s["out_len"]
    usable = b.and_(b.icmp_unsigned("!=", s["ready"], i64(0)), b.icmp_unsigned("!=", length, i64(0)))
    room = b.icmp_unsigned("<=", length, b.sub(s["out_cap"], used))
    fast = b.and_(b.and_(usable, room), fn.in_bounds(data, length, 0))

    def append() -> ir.Value:
        b.call(fn.m.memmove, [b.inttoptr(b.add(s["out"], used), PTR), b.inttoptr(data, PTR), length,
                              ir.Constant(I1, 0)])
        s["out_len"] = b.add(used, length)
        return i64(0)

    return _fast_or_python(fn, pc, number, args, fast, append)


def _emit_field(name: str):
    def emit(fn, pc: int, number: int, state: ir.Value, args) -> ir.Value:
        s = _Slots(fn, state)
        ready = fn.b.icmp_unsigned("!=", s["ready"], i64(0))
        return _fast_or_python(fn, pc, number, args, ready, lambda: s[name])
    emit.__doc__ = f"The bound file's {name.replace('_', ' ')}, from the state."
    return emit


for _name, _emit in (("zcsd_read", _emit_read), ("zcsd_return_data", _emit_return_data),
                     ("zcsd_block_size", _emit_field("block_size")), ("zcsd_file_size", _emit_field("file_size"))):
    register_native(_name, Native(emit=_emit, prepare=_prepare, finish=_finish))
