"""Progress of long operations (mkfs, fsck): a callable ``(done, total, what)`` the caller passes in.

The file system only counts; a front end renders (the CLI draws a bar on
a terminal), so this layer needs no terminal library. Calls are monotone:
``done`` and ``total`` never decrease, ``done <= total``, and an operation
that completes ends with a call where ``done == total`` (one that fails
stops where it was). ``total`` may grow once, when a step learns how much
follows it (fsck knows the blocks to verify only after reading the
checkpoint). A loop reports at most about a hundred times, so a callback
costs nothing measurable.
"""

from __future__ import annotations

from typing import Callable

Progress = Callable[[int, int, str], None]

REPORTS = 100  # calls a step of many items makes, about


class Steps:
    """Counts work done against a total and calls ``callback`` (if any) when it is worth it."""

    def __init__(self, callback: Progress | None, total: int):
        self._callback = callback
        self.total = total
        self.done = 0
        self._what = ""
        self._next = 0

    def grow(self, extra: int) -> None:
        self.total += extra

    def advance(self, n: int, what: str) -> None:
        self.done = min(self.done + n, self.total)
        if self._callback is None:
            return
        if what != self._what or self.done >= self._next or self.done == self.total:
            self._what = what
            self._next = self.done + max(1, self.total // REPORTS)
            self._callback(self.done, self.total, what)

    def finish(self, what: str) -> None:
        self.advance(self.total - self.done, what)
        if self._callback is not None and self._what != what:  # (advance called it unless nothing changed)
            self._callback(self.done, self.total, what)
