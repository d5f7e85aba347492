"""``python -m zcsdfs.shim [--mount PREFIX[=DEVICE]]... [--] SCRIPT ARGS...``: see ``runner``."""

import sys

from zcsdfs.shim.runner import main

main(sys.argv[1:])
