"""Compile the example kernels: ``python -m zcsdfs.csd.kernels.build``.

The objects are committed next to their sources so that users without clang
can run them; the flags make the output reproducible (no debug info, no
paths: clang runs in this directory on the bare file name), so a test can
rebuild them and compare.
"""

from __future__ import annotations

import argparse
import errno
import subprocess
from pathlib import Path

from rich.console import Console

KERNELS_DIR = Path(__file__).resolve().parent
INCLUDE_DIR = KERNELS_DIR.parent / "include"
# The include path is relative (clang runs in KERNELS_DIR) so no absolute path reaches the objects.
CFLAGS = ("-O2", "-g0", "-mcpu=v3", "-ffreestanding", "-target", "bpf", "-I", "../include", "-c")


def sources() -> list[Path]:
    return sorted(KERNELS_DIR.glob("*.c"))


def compile_kernel(source: Path, output: Path, clang: str = "clang") -> Path:
    """Compile one C kernel into an eBPF object at ``output``."""
    done = subprocess.run(
        [clang, *CFLAGS, source.name, "-o", str(Path(output).resolve())],
        cwd=source.parent, capture_output=True, text=True,
    )
    if done.returncode:
        raise OSError(errno.EINVAL, f"{source.name}: clang failed: {done.stderr.strip()}")
    return Path(output)


def build(out_dir: Path = KERNELS_DIR, clang: str = "clang") -> list[Path]:
    """Compile every kernel source into ``out_dir``; the objects written."""
    return [compile_kernel(src, Path(out_dir) / f"{src.stem}.o", clang) for src in sources()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=KERNELS_DIR, help="directory for the objects")
    parser.add_argument("--clang", default="clang", help="clang executable (needs the BPF target)")
    args = parser.parse_args(argv)
    console = Console()
    try:
        built = build(args.out, args.clang)
    except OSError as e:
        console.print(f"[red]error:[/red] {e}")
        return 1
    for path in built:
        console.print(f"built {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
