"""``python -m zcsdfs.cli``: the same as the ``zcsdfs`` command."""

import sys

from zcsdfs.cli import main

sys.exit(main())
