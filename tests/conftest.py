"""Settings every test shares."""

import subprocess
import sys

# CPython before 3.11.4 (Debian 12's python3 is 3.11.2) holds the GIL across vfork(): a child that
# touches a FUSE mount served by threads of the test process before it execs (subprocess.run(...,
# cwd=mountpoint) chdirs there) waits for an answer those threads, waiting for the GIL, never give,
# and the run hangs. Fork instead of vfork there (gh-104372 released the GIL in 3.11.4 and 3.12).
if sys.version_info < (3, 11, 4):
    subprocess._USE_VFORK = False
