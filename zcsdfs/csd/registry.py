"""The kernel registry: ``load(path) -> Kernel`` (or ``load(asm=text)``), verified and compiled once per content.

A :class:`Kernel` is what the vfs binds to a file. ``kernel.run(view,
offset, length)`` runs it over a frozen view of that file (see
:mod:`zcsdfs.csd.fileview`) and returns its output: for a read-stream
kernel, what ``pread`` returns.

**Kinds.** ``read-stream`` (the kernel reads the file and its output is the
read's result), ``write-event`` (run after a write, with the written range)
and ``write-stream`` (transforms data being written). An ELF object says
the kind in its section name, ``SEC("csd/read_stream")``, ``"csd/write_event"``
or ``"csd/write_stream"`` (the part after the last ``/``, with ``_`` for
``-``); any other section (``.text``, as OpenCSD kernels use) and assembly
text default to read-stream, and ``kind=`` overrides.

**ABIs.** A kernel that calls any of helpers 1-8 uses OpenCSD's
(:mod:`zcsdfs.csd.opencsd`): its input memory is the FluffleFS call
context, it sees the whole file and ``dims`` carry the range. Otherwise it
uses ours (:mod:`zcsdfs.csd.stdlib`): it sees the range ``[offset,
offset + length)`` as its whole file (``zcsd_read(0, ...)`` reads byte
``offset``), and its input memory is its *argument blob* -- a threshold, a
pattern, a key list -- given as ``args=`` to ``run`` or fixed with
:meth:`Kernel.with_args`. Arguments never change the program, so one
compiled kernel serves every argument.

**Results.** The output is what the kernel returned through
``zcsd_return_data`` (or ``bpf_return_data``), at most ``output_limit``
bytes (default: the larger of the range and 1 MiB). The kernel's r0 is its
status, read as a C ``int``: negative fails the run with
:class:`KernelFailed` (EIO). Faults stop a run with the VM's errors
(``MemoryFault``, ``BudgetExceeded``, ``LimitExceeded``, ``AccessDenied``),
all ``OSError``; the vfs turns them into EIO and a log line.

**Limits.** A run may execute ``BASE_BUDGET + INSTRUCTIONS_PER_BYTE * n``
instructions and take ``BASE_TIMEOUT + SECONDS_PER_BYTE * n`` seconds
(:mod:`zcsdfs.csd.limits`), ``n`` being the bytes the kernel may read (the
range, or the whole file under OpenCSD's ABI): work grows with the data,
and a kernel that runs away over little data stops within about a second
in either engine (``BudgetExceeded`` or ``DeadlineExceeded``, both ETIME).
``budget=`` and ``timeout=`` of :meth:`Kernel.call` override them.

**Engines.** ``"auto"`` (the default) is the JIT when llvmlite is
installed, else the interpreter. Verification happens once, at load; each
engine is built once, on first use.
"""

from __future__ import annotations

import errno
import functools
import importlib.util
import os
import threading
import time
from pathlib import Path

import attrs

from zcsdfs.csd import engine as engines
from zcsdfs.csd import isa, limits, opencsd, stdlib, verifier
from zcsdfs.csd.asm import assemble
from zcsdfs.csd.elf import load_elf, program_sections
from zcsdfs.csd.errors import ElfError, KernelFailed
from zcsdfs.csd.fileview import MemoryFile
from zcsdfs.csd.helpers import HelperSet
from zcsdfs.csd.program import Program

KINDS = ("read-stream", "write-event", "write-stream")
DEFAULT_KIND = "read-stream"
ABIS = ("zcsdfs", "opencsd")
MIN_OUTPUT_LIMIT = 1 << 20


@functools.cache
def kernel_helpers() -> HelperSet:
    """Every helper a kernel may call: OpenCSD's 1-8 and ours from 32."""
    return HelperSet(opencsd.helpers() + stdlib.HELPERS)


def default_engine() -> str:
    """The JIT when llvmlite is installed, else the interpreter."""
    return "jit" if importlib.util.find_spec("llvmlite") is not None else "interp"


@attrs.define
class KernelStats:
    """What one kernel has done, over all its runs (failed runs included)."""

    calls: int = 0
    failures: int = 0
    instructions: int = 0
    bytes_read: int = 0  # from the device (the file), by the kernel's reads
    bytes_returned: int = 0  # to the host: the outputs
    seconds: float = 0.0


@attrs.frozen
class Call:
    """One run: its output and its data movement."""

    output: bytes
    status: int
    instructions: int
    bytes_read: int
    bytes_returned: int
    seconds: float


class Kernel:
    """A verified program bound to nothing yet; run it over any file view.

    Get one from :func:`load`. ``name``, ``kind`` (one of :data:`KINDS`),
    ``abi`` (one of :data:`ABIS`), ``digest`` (the program's content hash)
    and ``stats`` (a :class:`KernelStats`, updated by every run).
    """

    def __init__(self, program: Program, *, name: str, kind: str, engine: str, args: bytes = b"",
                 shared: "_Compiled | None" = None):
        self.program = program
        self.name = name
        self.kind = kind
        self.digest = program.digest
        self.engine = engine
        self.args = bytes(args)
        self._compiled = shared if shared is not None else _Compiled(program)
        self.abi = self._compiled.abi
        self.stats = KernelStats()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Kernel({self.name!r}, kind={self.kind!r}, abi={self.abi!r}, digest={self.digest[:12]})"

    def with_args(self, args: bytes) -> "Kernel":
        """This kernel with ``args`` as its default argument blob (same compiled code, own stats)."""
        return Kernel(self.program, name=self.name, kind=self.kind, engine=self.engine, args=args,
                      shared=self._compiled)

    def run(self, view, offset: int = 0, length: int | None = None, **options) -> bytes:
        """The kernel's output over ``view`` for the range (see :meth:`call` for the options)."""
        return self.call(view, offset, length, **options).output

    def call(self, view, offset: int = 0, length: int | None = None, *, args: bytes | None = None,
             engine: str | None = None, budget: int | None = None, timeout: float | None = None,
             output_limit: int | None = None) -> Call:
        """Run once over bytes ``[offset, offset + length)`` of ``view`` (``length`` None: to the end).

        ``budget`` (instructions) and ``timeout`` (seconds) replace the
        limits the registry's rule gives (see the module docstring).

        ``view`` is a file view (:mod:`zcsdfs.csd.fileview`) or a sequence
        of extents, which becomes a :class:`MemoryFile`.
        """
        if not isinstance(view, MemoryFile) and isinstance(view, (list, tuple)):
            view = MemoryFile(view)
        if offset < 0 or (length is not None and length < 0):
            raise OSError(errno.EINVAL, f"negative offset or length ({offset}, {length})")
        end = view.size if length is None else min(view.size, offset + length)
        start = min(offset, end)
        requested = end - start if length is None else length
        limit = max(requested, MIN_OUTPUT_LIMIT) if output_limit is None else output_limit
        if self.abi == "opencsd":
            env, span = self._opencsd_env(view, limit), view.size
            mem = opencsd.call_info(op=opencsd.FLFS_READ_STREAM, size=requested, offset=offset, ino=view.ino,
                                    file_size=view.size, lbas=view.lbas())
        else:
            env, span = _window_env(view, start, end, limit, self.name), end - start
            mem = bytearray(self.args if args is None else args)
        run_limits = limits.for_bytes(span, max_insns=budget, timeout=timeout)
        began = time.perf_counter()
        status = None
        try:
            r0 = self._compiled.engine(engine or self.engine).run(mem, env=env, budget=run_limits.max_insns,
                                                                  timeout=run_limits.timeout)
            status = isa.to_s32(r0 & 0xFFFFFFFF)
            if status < 0:
                raise KernelFailed(f"kernel {self.name} returned status {status}", status=status)
        finally:
            seconds = time.perf_counter() - began
            returned = len(env.output) if status is not None and status >= 0 else 0
            with self._lock:
                s = self.stats
                s.calls += 1
                s.failures += status is None or status < 0
                s.instructions += env.instructions
                s.bytes_read += env.bytes_read
                s.bytes_returned += returned
                s.seconds += seconds
        return Call(bytes(env.output), status, env.instructions, env.bytes_read, returned, seconds)

    def _opencsd_env(self, view, limit: int) -> opencsd.OpenCsdEnv:
        common = dict(block_size=view.block_size, file_size=view.size, output_limit=limit, name=self.name,
                      lbas=view.lbas(), zone_size=view.zone_size, zone_capacity=view.zone_capacity)
        extents = _lent(view, 0, view.size)
        if extents is not None:
            return opencsd.OpenCsdEnv(extents, **common)
        return opencsd.OpenCsdEnv(reader=_reader(view, 0), **common)


def _lent(view, start: int, end: int):
    """Bytes ``[start, end)`` of ``view`` as buffers a JIT kernel reads without leaving native
    code, when the view can lend them (a MemoryFile; a frozen view whose device lends its
    memory); None otherwise: then the kernel reads through ``view.read``."""
    window = getattr(view, "window", None)
    return None if window is None else window(start, end)


def _window_env(view, start: int, end: int, limit: int, name: str) -> stdlib.StorageEnv:
    """The range ``[start, end)`` of ``view`` as a whole file, for our ABI."""
    extents = _lent(view, start, end)
    if extents is not None:
        return stdlib.StorageEnv(extents, block_size=view.block_size, output_limit=limit, name=name)
    return stdlib.StorageEnv(reader=_reader(view, start), file_size=end - start, block_size=view.block_size,
                             output_limit=limit, name=name)


def _reader(view, base: int):
    def read_into(offset: int, dst: memoryview) -> int:
        data = view.read(base + offset, len(dst))
        dst[:len(data)] = data
        return len(data)
    return read_into


class _Compiled:
    """A program's verdict and its engines, shared by every Kernel made from it."""

    def __init__(self, program: Program):
        self.program = program
        self.helpers = kernel_helpers()
        self.verdict = verifier.verify(program, self.helpers)
        called = {i.imm for i in program.insns if i.opcode == isa.JMP | isa.CALL and i.src == isa.CALL_HELPER}
        self.abi = "opencsd" if called & set(opencsd.NUMBERS) else "zcsdfs"
        self._engines: dict[str, engines.Engine] = {}
        self._lock = threading.Lock()

    def engine(self, name: str) -> engines.Engine:
        if name not in engines.ENGINES:
            raise ValueError(f"unknown engine {name!r}; choose one of {', '.join(engines.ENGINES)}")
        with self._lock:
            built = self._engines.get(name)
            if built is None:
                if name == "jit":
                    from zcsdfs.csd.jit import Jit
                    built = Jit(self.program, self.helpers, limits.BASE_BUDGET, self.verdict)
                else:
                    from zcsdfs.csd.interpreter import Interpreter
                    built = Interpreter(self.program, self.helpers, limits.BASE_BUDGET, self.verdict)
                self._engines[name] = built
            return built


_cache: dict[tuple, Kernel] = {}
_cache_lock = threading.Lock()


def load(source=None, *, asm: str | None = None, name: str | None = None, kind: str | None = None,
         engine: str = "auto") -> Kernel:
    """The kernel in ``source`` -- a path (``str`` or path-like) to an ELF
    object, ELF bytes or a :class:`Program` -- or in the assembly text ``asm``.

    ``name`` picks the entry function of an ELF object (and names the
    kernel; default: the function's name), ``kind`` the kind (default: from
    the section, else read-stream). Loading the same content again gives
    the same :class:`Kernel`. Refusals are ``ProgramRefused`` (EINVAL),
    bad objects ``ElfError`` (ENOEXEC), a missing file ``FileNotFoundError``.

    Verification and compilation happen outside the registry's lock, so a
    small kernel never waits for a large one to compile.
    """
    if kind is not None and kind not in KINDS:
        raise ValueError(f"unknown kernel kind {kind!r}; choose one of {', '.join(KINDS)}")
    engine = default_engine() if engine == "auto" else engine
    if engine not in engines.ENGINES:
        raise ValueError(f"unknown engine {engine!r}; choose auto or one of {', '.join(engines.ENGINES)}")
    if (source is None) == (asm is None):
        raise TypeError("load() takes a source (a path, ELF bytes or a Program) or asm= text, and not both")
    if asm is not None:
        program, found_kind = assemble(asm), kind or DEFAULT_KIND
    else:
        program, found_kind = _program(source, name, kind)
    label = name or program.name
    key = (program.digest, label, found_kind, engine)
    with _cache_lock:
        kernel = _cache.get(key)
    if kernel is not None:
        return kernel
    kernel = Kernel(program, name=label, kind=found_kind, engine=engine)  # verifies
    kernel._compiled.engine(engine)  # compile now: a load that succeeds runs
    with _cache_lock:
        return _cache.setdefault(key, kernel)


def _program(source, name: str | None, kind: str | None) -> tuple[Program, str]:
    if isinstance(source, Program):
        return source, kind or DEFAULT_KIND
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if isinstance(source, str) and not os.path.exists(source):
            raise FileNotFoundError(errno.ENOENT, "no such kernel file (assembly text goes through "
                                    "load(asm=...))", source)
        try:
            return _elf(path.read_bytes(), name, kind)
        except ElfError as exc:
            exc.filename = str(path)
            raise
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _elf(bytes(source), name, kind)
    raise TypeError(f"load() cannot use a {type(source).__name__}: pass a path, ELF bytes, a Program or asm=")


def _section_kind(section: str) -> str | None:
    kind = section.rsplit("/", 1)[-1].replace("_", "-")
    return kind if kind in KINDS else None


def _elf(data: bytes, name: str | None, kind: str | None) -> tuple[Program, str]:
    sections = program_sections(data)
    candidates = [s for s, functions in sections.items() if name is None or name in functions]
    if name is not None and not candidates:
        raise ElfError(f"no function named {name} in a code section")
    if kind is not None and len(candidates) > 1:
        candidates = [s for s in candidates if _section_kind(s) == kind] or candidates
    if len(candidates) > 1:
        named = [s for s in candidates if s != ".text"]
        candidates = [s for s in named if _section_kind(s) == DEFAULT_KIND] or named
    if len(candidates) != 1:
        raise ElfError(f"expected one kernel, found sections: {', '.join(sections) or 'none'}; pass name= or kind=")
    section = candidates[0]
    return load_elf(data, name=name, section=section), kind or _section_kind(section) or DEFAULT_KIND
