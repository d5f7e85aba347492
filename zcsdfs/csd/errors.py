"""Errors of the eBPF VM.

Every failure a caller can cause is an ``OSError`` with the errno Linux would
give: a program the loader or verifier refuses is EINVAL (as bpf(2) answers
for a rejected program), a malformed ELF object is ENOEXEC, and a runtime
fault stops the program with EFAULT (bad memory access), ETIME (instruction
budget exhausted, or deadline passed), E2BIG (output or call depth beyond its
bound) or EACCES (a device block outside the bound file); a kernel that ends
with a negative status fails with EIO.
"""

from __future__ import annotations

import errno


class BpfError(OSError):
    """Base of every VM error."""

    errno_value = errno.EINVAL

    def __init__(self, message: str, *, pc: int | None = None, filename: str | None = None):
        self.pc = pc
        self.reason = message
        text = message if pc is None else f"insn {pc}: {message}"
        super().__init__(self.errno_value, text)
        if filename is not None:
            self.filename = filename


class AssemblyError(BpfError):
    """Assembly text that does not parse; ``pc`` is the 1-based source line."""

    def __init__(self, message: str, *, line: int | None = None, filename: str | None = None):
        self.line = line
        BpfError.__init__(self, message if line is None else f"line {line}: {message}", filename=filename)


class ElfError(BpfError):
    """An ELF object the loader cannot use."""

    errno_value = errno.ENOEXEC


class ProgramRefused(BpfError):
    """The verifier (or the loader's structural checks) refused the program."""


class UnsupportedInstruction(ProgramRefused):
    """An opcode outside the groups we implement (e.g. legacy packet access)."""


class RuntimeFault(BpfError):
    """The program was stopped while running."""

    errno_value = errno.EFAULT


class MemoryFault(RuntimeFault):
    """A load, store or atomic outside every region the program may touch."""


class BudgetExceeded(RuntimeFault):
    """The instruction budget ran out (the program may loop forever)."""

    errno_value = errno.ETIME


class DeadlineExceeded(RuntimeFault):
    """The run went past its wall-clock deadline (slow work, or a loop of helper calls)."""

    errno_value = errno.ETIME


class LimitExceeded(RuntimeFault):
    """Call depth or output size beyond its bound."""

    errno_value = errno.E2BIG


class HelperFault(RuntimeFault):
    """A helper refused its arguments at run time."""

    errno_value = errno.EINVAL


class AccessDenied(RuntimeFault):
    """A kernel asked for a device block outside the file it is bound to, or to write."""

    errno_value = errno.EACCES


class KernelFailed(RuntimeFault):
    """The kernel ran to its end but returned a negative status (its own error code)."""

    errno_value = errno.EIO

    def __init__(self, message: str, *, status: int, pc: int | None = None):
        self.status = status
        super().__init__(message, pc=pc)
