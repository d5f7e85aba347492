"""An unmodified program: plain ``open``, ``pathlib`` and ``shutil``, nothing of zcsdfs.

    zcsdfs run -- python examples/shim_app.py                 # /zcsd on the default device
    zcsdfs run --mount /zcsd=memory -- python examples/shim_app.py

Under ``zcsdfs run`` every path below /zcsd lives in a zcsdfs volume; the
other paths (this script, /tmp) are the real file system.
"""

import pathlib
import shutil
import sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "/zcsd")
if not root.exists():
    sys.exit(f"{root} does not exist: run me with zcsdfs run -- python {sys.argv[0]}")

(root / "logs").mkdir(exist_ok=True)
with open(root / "logs" / "app.log", "w") as log:
    for i in range(100):
        log.write(f"event {i}\n")
shutil.copy(root / "logs" / "app.log", root / "logs" / "app.log.1")
lines = (root / "logs" / "app.log.1").read_text().splitlines()
print(f"{len(lines)} lines; last: {lines[-1]}")
print(sorted(p.name for p in (root / "logs").iterdir()))
