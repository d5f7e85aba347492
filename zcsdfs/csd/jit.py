"""The JIT: eBPF -> LLVM IR (``jit_codegen``) -> native code, called through cffi.

:class:`Jit` has the interpreter's face and gives exactly its results and
errors, at native speed. Compiling goes through llvmlite's new pass manager
and one MCJIT engine per program (compilations share no state, so they run
concurrently); running allocates a context struct, the stack frames and the
region table, calls the entry point through a cffi
function pointer, and turns the status the code left in the context into
the error (:class:`MemoryFault`, :class:`BudgetExceeded`,
:class:`LimitExceeded`, or whatever a helper raised). The same run object is
the ``vm`` Python helpers receive, with real addresses.

Compiled code is cached per process, keyed by the program's digest, the
native helpers it may use and the set of checked instructions, so a second
``Jit`` of the same program compiles nothing.
"""

from __future__ import annotations

import threading

import attrs
import cffi
import llvmlite.binding as llvm

from zcsdfs.csd import isa, jit_native, memory  # noqa: F401 (jit_native registers the storage helpers' forms)
from zcsdfs.csd.errors import (
    BpfError, BudgetExceeded, DeadlineExceeded, HelperFault, LimitExceeded, MemoryFault, ProgramRefused,
)
from zcsdfs.csd.helpers import HelperSet, Ret
from zcsdfs.csd.jit_codegen import (
    ACCESS_KINDS,
    CTX_FIELDS,
    FRAME_SIZE,
    MAX_FRAMES,
    NATIVES,
    STATUS_BUDGET,
    STATUS_DEADLINE,
    STATUS_DEPTH,
    STATUS_HELPER,
    STATUS_OK,
    STATUS_STOP,
    ModuleEmitter,
)
from zcsdfs.csd.limits import JIT_CHECK, Meter, needs_clock
from zcsdfs.csd.program import Program

MASK64 = (1 << 64) - 1

ffi = cffi.FFI()
ffi.cdef(
    "struct bpf_jit_ctx {" + " ".join(f"uint64_t {name};" for name in CTX_FIELDS) + "};"
    "struct bpf_region { uint64_t start, len, writable; };"
)
DISPATCH_TYPE = "uint64_t(struct bpf_jit_ctx *, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t)"
ENTRY_TYPE = "uint64_t(*)(struct bpf_jit_ctx *)"

# ---------------------------------------------------------------- compiling and caching

@attrs.frozen
class Compiled:
    """Native code for one (program, native helpers, checked set)."""

    entry: object  # cffi function pointer
    natives: tuple[str, ...]  # native helper names, in state-slot order
    owner: object = attrs.field(default=None, eq=False, repr=False)  # the engine and context holding the code


class _Compiler:
    """Compiles each program in its own LLVM context, target machine and MCJIT
    engine, so compilations share nothing and run outside any lock (llvmlite
    releases the GIL): a small kernel never waits for a large one. The lock
    guards only the cache; engines are kept for the life of the process."""

    def __init__(self):
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        self.target = llvm.Target.from_triple(llvm.get_process_triple())
        self.cpu, self.features = llvm.get_host_cpu_name(), llvm.get_host_cpu_features().flatten()
        self.lock = threading.Lock()
        self.cache: dict[tuple, Compiled] = {}
        self.serial = 0
        self.compilations = 0

    def get(self, program: Program, helpers: HelperSet, checked: frozenset[int] | None,
            clock: bool = False) -> tuple[Compiled, bool]:
        natives = tuple(sorted((h.number, h.native) for h in helpers if h.native in NATIVES))
        key = (program.digest, natives, checked, clock)
        with self.lock:
            compiled = self.cache.get(key)
            if compiled is not None:
                return compiled, True
            self.serial += 1
            serial = self.serial
        compiled = self.compile(program, helpers, checked, f"bpf{serial}", clock)
        with self.lock:
            kept = self.cache.setdefault(key, compiled)
            self.compilations += 1
        return kept, False

    def compile(self, program: Program, helpers: HelperSet, checked: frozenset[int] | None, name: str,
                clock: bool = False) -> Compiled:
        emitter = ModuleEmitter(program, helpers, checked, name, clock)
        context = llvm.create_context()
        module = llvm.parse_assembly(emitter.emit(), context=context)
        module.verify()
        machine = self.target.create_target_machine(cpu=self.cpu, features=self.features, opt=2, jit=True)
        tuning = llvm.create_pipeline_tuning_options(speed_level=2)
        passes = llvm.create_pass_builder(machine, tuning)
        passes.getModulePassManager().run(module, passes)
        engine = llvm.create_mcjit_compiler(module, machine)  # owns the module and the machine
        engine.finalize_object()
        address = engine.get_function_address(f"{emitter.name}_run")
        names = tuple(sorted(emitter.native_slots, key=emitter.native_slots.get))
        return Compiled(ffi.cast(ENTRY_TYPE, address), names, (context, engine))  # the engine goes first


_compiler: _Compiler | None = None
_compiler_lock = threading.Lock()


def compiler() -> _Compiler:
    """The process-wide compiler and cache (created on first use)."""
    global _compiler
    with _compiler_lock:
        if _compiler is None:
            _compiler = _Compiler()
    return _compiler


# ---------------------------------------------------------------- running

@attrs.frozen
class _Region:
    """A buffer the program may address: its real address and a view for helpers."""

    start: int
    view: memoryview
    writable: bool

    def holds(self, addr: int, n: int) -> bool:
        return 0 <= addr - self.start and addr - self.start + n <= len(self.view)


class JitRun(memory.HelperAccess):
    """The state of one run; also the ``vm`` object helpers receive.

    It mirrors ``memory.Memory`` (same checks, same errors) with real
    addresses: ``vm.map`` returns the buffer's own address, and
    ``read``/``write``/``view`` accept exactly the regions the compiled code
    does: the input, the live frames, the data sections and mapped buffers.
    Views handed to helpers are slices of the Python buffers themselves, so
    they stay valid (and safe) after the run.
    """

    def __init__(self, jit: "Jit", code: Compiled, mem, env, budget: int, timeout: float | None):
        self.helpers = jit.helpers
        self.budget = budget
        self.meter = Meter(budget, timeout)  # the counter holds the whole budget
        self.env = env
        self.error: BaseException | None = None
        self.stopped: int | None = None
        self._pinned: list = []  # ffi.from_buffer objects, released when the run ends
        self._owned: list = []  # ffi.new memory the compiled code points into
        self.ctx = ctx = self.allocate("struct bpf_jit_ctx *")
        stack = self.allocate("uint8_t[]", FRAME_SIZE * MAX_FRAMES)
        self.stack = memoryview(ffi.buffer(stack))
        ctx.stack_base = self.address(stack)
        ctx.stack_top = ctx.stack_base + FRAME_SIZE * MAX_FRAMES
        ctx.budget = budget
        ctx.check_at = max(0, budget - JIT_CHECK)
        deadline = self.meter.deadline
        ctx.deadline_ns = MASK64 if deadline is None else int(deadline * 1e9)
        self.input = None
        self.context_address = 0
        if mem is not None:
            buffer = memoryview(memory.context_buffer(mem))
            self.input = _Region(self.pin(buffer), buffer, True)
            ctx.mem_start, ctx.mem_len = self.input.start, len(buffer)
            self.context_address = self.input.start
        self.regions: list[_Region] = []
        sections = self.allocate("uint64_t[]", max(1, len(jit.program.sections)))
        for i, section in enumerate(jit.program.sections):
            sections[i] = self.map(bytearray(section.data) if section.writable else section.data, section.writable)
        ctx.sections = self.address(sections)
        ctx.dispatch = int(ffi.cast("uintptr_t", _dispatch))
        self.native_state: dict[str, object] = {}
        self.natives = [NATIVES[name] for name in code.natives]
        slots = self.allocate("uint64_t[]", max(1, len(self.natives)))
        for i, native in enumerate(self.natives):
            slots[i] = native.prepare(self)
        ctx.native = self.address(slots)

    def allocate(self, ctype: str, *init):
        """``ffi.new`` memory that lives as long as the run."""
        cdata = ffi.new(ctype, *init)
        self._owned.append(cdata)
        return cdata

    def pin(self, buffer) -> int:
        """The address of a Python buffer, held still until the run ends.

        An empty buffer gets a real, non-null address too (nothing can be
        accessed there), as a region has in the interpreter.
        """
        view = memoryview(buffer)
        if not view.nbytes:
            return self.address(self.allocate("char[1]"))
        cdata = ffi.from_buffer(view)
        self._pinned.append(cdata)
        return self.address(cdata)

    @staticmethod
    def address(cdata) -> int:
        return int(ffi.cast("uintptr_t", cdata))

    def release(self) -> None:
        """Let go of the caller's buffers (the compiled code no longer runs)."""
        for cdata in self._pinned:
            ffi.release(cdata)
        self._pinned.clear()

    # -- the vm interface

    def map(self, buffer, writable: bool = False) -> int:
        """Add ``buffer`` as a region for the rest of the run; returns its address."""
        if FIXED_REGIONS + len(self.regions) >= memory.MAX_REGIONS:
            raise LimitExceeded(f"more than {memory.MAX_REGIONS} memory regions in one run")
        view = memoryview(buffer).cast("B")
        if writable and view.readonly:
            raise ValueError("cannot map a read-only buffer as writable")
        if len(view) > memory.OFFSET_MASK:
            raise ValueError(f"a region is at most {memory.OFFSET_MASK} bytes")
        region = _Region(self.pin(view), view, writable)
        self.regions.append(region)
        table = self.allocate("struct bpf_region[]", len(self.regions))
        for entry, r in zip(table, self.regions):
            entry.start, entry.len, entry.writable = r.start, len(r.view), r.writable
        self.ctx.regions = self.address(table)
        self.ctx.nregions = len(self.regions)
        return region.start

    def view(self, addr: int, n: int, writable: bool = False) -> memoryview:
        """``n`` bytes at ``addr`` without copying; faults unless all are in one region."""
        base = self.ctx.stack_base
        frames = [_Region(fp - FRAME_SIZE, self.stack[fp - FRAME_SIZE - base:fp - base], True)
                  for fp in range(self.ctx.fp, self.ctx.stack_top + 1, FRAME_SIZE)]
        regions = ([self.input] if self.input is not None else []) + frames + self.regions
        for region in regions:
            if n >= 0 and region.holds(addr, n) and (region.writable or not writable):
                at = addr - region.start
                return region.view[at:at + n] if writable else region.view[at:at + n].toreadonly()
        kind = "write" if writable else "read"
        raise MemoryFault(f"{kind} of {n} bytes at {self.where(addr)} is outside every {kind}able region",
                          pc=self.ctx.pc)

    def where(self, addr: int) -> str:
        """``addr`` for a message, relative to the nearest region the run knows
        (a host address printed in an error would tell where memory is)."""
        base = self.ctx.stack_base
        named = [("the stack", base, FRAME_SIZE * MAX_FRAMES)]
        if self.input is not None:
            named.append(("the context", self.input.start, len(self.input.view)))
        named += [(f"mapped region {i}", r.start, len(r.view)) for i, r in enumerate(self.regions)]
        best = None
        for name, start, size in named:
            distance = 0 if start <= addr < start + max(size, 1) else min(abs(addr - start), abs(addr - start - size))
            if best is None or distance < best[0]:
                best = (distance, name, addr - start)
        if best is None or best[0] >= 1 << 32:
            return "an address outside every region"
        return f"{best[1]}{best[2]:+#x}"

    def stop(self, r0: int) -> None:
        """End the run once the current helper returns, with ``r0`` as its result."""
        self.stopped = r0 & MASK64

    # -- running

    def call_helper(self, number: int, args: tuple[int, ...]) -> int:
        """Run Python helper ``number`` for the compiled code (through ``_dispatch``)."""
        if self.meter.expired():
            self.ctx.status = STATUS_DEADLINE
            return 0
        helper = self.helpers.get(number)
        try:
            self.sync_natives()
            value = helper.func(self, *args) & MASK64
            if (helper.ret == Ret.PTR_TO_MEM_OR_NULL and value) or helper.ret == Ret.PTR_TO_MEM:
                self._check_returned_memory(helper, value, helper.ret == Ret.PTR_TO_MEM)
            if helper.ret == Ret.PTR_TO_CTX and value != self.context_address:
                raise HelperFault(f"helper {helper.name} returned {self.where(value)}, not the context",
                                  pc=self.ctx.pc)
        except BaseException as exc:  # re-raised by execute() once the native code has returned
            self.error = exc
            self.ctx.status = STATUS_HELPER
            return 0
        if self.stopped is not None:
            self.ctx.status = STATUS_STOP
            self.ctx.stop_r0 = self.stopped
        return value

    def _check_returned_memory(self, helper, addr: int, writable: bool) -> None:
        """The verifier trusts a helper's returned pointer for ``ret_size`` bytes, and
        compiled code then reads (or writes) there unchecked: hold the helper to its signature."""
        try:
            self.view(addr, helper.ret_size, writable)
        except MemoryFault:
            kind = "writable" if writable else "readable"
            raise HelperFault(f"helper {helper.name} returned {self.where(addr)}, not a pointer to "
                              f"{helper.ret_size} {kind} bytes", pc=self.ctx.pc) from None

    def sync_natives(self) -> None:
        """Fold what native helpers did into the env, so Python code sees it."""
        for native in self.natives:
            native.finish(self)

    def execute(self, entry) -> int:
        ctx = self.ctx
        handle = ffi.new_handle(self)  # a local: the run must not refer to itself
        ctx.handle = self.address(handle)
        try:
            r0 = entry(ctx)
            self.sync_natives()
        finally:
            self.release()
        status = ctx.status
        if hasattr(self.env, "instructions"):
            self.env.instructions += self.budget if status == STATUS_BUDGET else self.budget - ctx.budget
        if status == STATUS_OK:
            return r0
        if status == STATUS_STOP:
            return ctx.stop_r0
        if status == STATUS_HELPER:
            error = self.error
            if isinstance(error, BpfError) and error.pc is None:
                raise type(error)(error.reason, pc=ctx.pc) from None
            raise error
        if status == STATUS_BUDGET:
            raise BudgetExceeded(f"instruction budget of {self.budget} exhausted", pc=ctx.pc)
        if status == STATUS_DEADLINE:
            raise DeadlineExceeded(f"time limit of {self.meter.timeout:g} s exceeded", pc=ctx.pc)
        if status == STATUS_DEPTH:
            raise LimitExceeded(f"call depth beyond {MAX_FRAMES} frames", pc=ctx.pc)
        kind = ACCESS_KINDS[ctx.fault_kind]
        region = "readable" if kind == "load" else "writable"
        raise MemoryFault(f"{kind} of {ctx.fault_size} bytes at {self.where(ctx.fault_addr)} "
                          f"is outside every {region} region", pc=ctx.pc)


# Regions memory.Memory counts before any section: null, context and the frames.
FIXED_REGIONS = 2 + MAX_FRAMES


@ffi.callback(DISPATCH_TYPE)
def _dispatch(ctx, number, r1, r2, r3, r4, r5):
    """The single entry from compiled code into Python helpers."""
    run = ffi.from_handle(ffi.cast("void *", ctx.handle))
    return run.call_helper(number, (r1, r2, r3, r4, r5))


class Jit:
    """A program compiled to native code; ``run`` has the interpreter's semantics.

    ``verdict.checked`` (from the verifier) names the memory instructions
    that need a run-time bounds check; with no verdict every one is checked.
    """

    def __init__(self, program: Program, helpers: HelperSet | None = None, budget: int = 1 << 30, verdict=None,
                 timeout: float | None = None):
        self.program = program
        self.helpers = helpers if helpers is not None else HelperSet()
        self.budget = budget
        self.timeout = timeout
        self.checked = None if verdict is None else frozenset(verdict.checked)
        for pc, insn in enumerate(program.insns):
            if insn.opcode == isa.JMP | isa.CALL and insn.src == isa.CALL_HELPER and insn.imm not in self.helpers:
                raise ProgramRefused(f"call to unknown helper {insn.imm}", pc=pc)
        self.code, self.cached = compiler().get(program, self.helpers, self.checked)
        self._clocked: Compiled | None = None

    def clocked(self) -> Compiled:
        """The build that reads the clock in loops, for runs whose budget outlasts their deadline."""
        if self._clocked is None:
            self._clocked = compiler().get(self.program, self.helpers, self.checked, clock=True)[0]
        return self._clocked

    def run(self, mem=None, *, env=None, budget: int | None = None, timeout: float | None = None) -> int:
        """Run once with input memory ``mem`` (r1/r2) and ``env`` for helpers; returns r0.

        ``budget`` and ``timeout`` (seconds) override the JIT's for this run; an ``env`` with an
        ``instructions`` attribute gets the instructions charged added to it
        (per basic block, as the interpreter counts them).
        """
        budget = self.budget if budget is None else budget
        timeout = self.timeout if timeout is None else timeout
        code = self.clocked() if needs_clock(budget, timeout) else self.code
        return JitRun(self, code, mem, env, budget, timeout).execute(code.entry)
