"""Computational storage: OpenCSD's entropy headline, reproduced and beaten, plus concurrent writers.

Run as ``python bench/csd.py`` (1 GiB; ``--size 256M`` for a quick run), or
``zcsdfs bench entropy --size 1G`` for the headline alone. Prints the wall,
user and sys seconds and the bytes crossing from device to host of:
the ``histogram`` kernel bound with ``posix_fadvise`` (JIT; interpreter on
a prefix, scaled), and the host reading the file (numpy; pure Python on a
prefix, scaled); OpenCSD's figures (40.2 s offloaded vs 112.9 s Python,
512x less data) next to ours. Then kernel reads through a snapshot while
1 to 4 threads overwrite the file, with both throughputs. The volume is on
a memory device sized for the file (see ``zcsdfs.cli.entropy``).
"""

from __future__ import annotations

import argparse

from rich.console import Console

from zcsdfs.cli import entropy as bench
from zcsdfs.cli.zns import parse_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1G", help="file size (default 1G)")
    parser.add_argument("--interp-size", default="8M", help="prefix the interpreter runs on (default 8M)")
    parser.add_argument("--python-size", default="32M", help="prefix pure Python counts (default 32M)")
    parser.add_argument("--concurrent-size", default="256M", help="file of the concurrent experiment")
    parser.add_argument("--reads", type=int, default=4, help="kernel reads per writer count")
    args = parser.parse_args()
    console = Console(highlight=False, width=150)
    size = parse_size(args.size)
    figures, truth = bench.headline(size, min(size, parse_size(args.interp_size)),
                                    min(size, parse_size(args.python_size)))
    bench.print_headline(console, figures, truth)
    concurrent_size = parse_size(args.concurrent_size)
    bench.print_concurrent(console, bench.concurrent(concurrent_size, reads=args.reads), concurrent_size)


if __name__ == "__main__":
    main()
