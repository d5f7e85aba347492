import sys

from zcsdfs.cli import main

sys.exit(main())
