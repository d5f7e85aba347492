"""Computational storage: the eBPF VM and the kernels it runs beside the data.

The VM lives in this package: ``isa`` (instruction encoding), ``asm`` and
``disasm`` (text syntax), ``elf`` (loader for clang objects), ``verifier``,
``interpreter`` (the reference engine) and ``jit`` (llvmlite), sharing the
contracts in ``program``, ``helpers``, ``memory`` and ``errors``.
"""
