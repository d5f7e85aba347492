"""Running a real command with its stderr on a pseudo-terminal, as a person's shell gives it."""

from __future__ import annotations

import os
import pty
import subprocess


def run_with_terminal_stderr(command: list[str], env: dict) -> tuple[int, bytes, bytes]:
    """Run ``command`` with stdout on a pipe and stderr on a terminal; (status, stdout, what the
    terminal showed)."""
    leader, follower = pty.openpty()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=follower, env=env)
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    out = child.stdout.read()
    status = child.wait(timeout=120)
    child.stdout.close()
    os.close(leader)
    return status, out, seen
