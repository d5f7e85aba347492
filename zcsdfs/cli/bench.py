"""CLI: ``zcsdfs bench entropy``, OpenCSD's headline experiment (``entropy.py`` holds it).

The experiment needs numpy (the ``bench`` extra), so it is imported only
when the command runs.
"""

from __future__ import annotations

import errno
import os

from zcsdfs.cli import add_json, group, print_json, progress, subcommand
from zcsdfs.cli.zns import parse_size

MIN_SIZE = 4096  # the histogram kernel answers 2 KiB per read: smaller files cannot hold an answer


def register(sub) -> None:
    bsub = group(sub, "bench", "benchmarks of computational storage",
                 "Benchmarks of computational storage, each printing its figures next to anchors measured "
                 "in the same run.", ("zcsdfs bench entropy --size 256M", "zcsdfs bench entropy --json"))
    p = subcommand(bsub, "entropy", "Shannon entropy of a file: bound kernel vs host (OpenCSD's headline)",
                   cmd_entropy,
                   description="Shannon entropy of a file in a memory volume, computed four ways: the "
                               "histogram kernel bound by posix_fadvise (JIT and interpreter) against "
                               "reading the data into the host (numpy and pure Python). Prints wall, user "
                               "and sys seconds and the bytes that crossed to the host. Needs numpy "
                               "(pip install 'zcsdfs[bench]') and memory for the file.",
                   examples=("zcsdfs bench entropy                # 1 GiB, as OpenCSD measured",
                             "zcsdfs bench entropy --size 64M --interp-size 1M --python-size 4M",
                             "zcsdfs bench entropy --size 16M --json"))
    p.add_argument("--size", type=parse_size, default=1 << 30, metavar="SIZE",
                   help="file size, at least 4K (K/M/G suffixes; default 1G)")
    p.add_argument("--interp-size", type=parse_size, default=8 << 20, metavar="SIZE",
                   help="prefix the interpreter runs on, scaled to the full size (default 8M)")
    p.add_argument("--python-size", type=parse_size, default=32 << 20, metavar="SIZE",
                   help="prefix pure Python counts, scaled to the full size (default 32M)")
    add_json(p)


def check_sizes(args) -> tuple[int, int, int]:
    """The three sizes, each at least MIN_SIZE and the file within half the machine's memory."""
    for option, value in (("--size", args.size), ("--interp-size", args.interp_size),
                          ("--python-size", args.python_size)):
        if value < MIN_SIZE:
            raise OSError(errno.EINVAL, f"{option} must be at least 4K (the histogram kernel answers "
                                        f"2 KiB per read), not {value} bytes")
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if args.size > memory // 2:
        raise OSError(errno.ENOMEM, f"--size {args.size >> 20} MiB does not fit: the file lives in a memory "
                                    f"volume and this machine has {memory >> 20} MiB")
    return args.size, min(args.size, args.interp_size), min(args.size, args.python_size)


def cmd_entropy(args) -> int:
    size, interp_size, python_size = check_sizes(args)
    try:
        from zcsdfs.cli import entropy as bench
    except ModuleNotFoundError as exc:  # numpy is the bench extra
        raise OSError(errno.ENOPKG, f"zcsdfs bench needs {exc.name}: pip install 'zcsdfs[bench]'") from None
    from rich.console import Console

    with progress("entropy benchmark", len(bench.STEPS)) as advance:
        figures, truth = bench.headline(size, interp_size, python_size, step=advance)
    if args.json:
        print_json(bench.headline_json(figures, truth))
    else:
        bench.print_headline(Console(highlight=False), figures, truth)
    return 0
