"""The rich terminal inspector: ``zcsdfs inspect`` and ``inspect(volume)``.

Textual is imported only when the app runs, so ``--once``/``--json`` and
``import zcsdfs.tui`` stay light.
"""

from __future__ import annotations


def inspect(volume, *, name: str | None = None, interval: float = 0.25) -> None:
    """Run the full-screen inspector on ``volume`` (an in-process ``zcsdfs.Volume``) in this
    terminal until the user quits; GC, snapshot and checkpoint act on it (unless it is read-only)."""
    from zcsdfs.tui.app import run
    from zcsdfs.tui.source import volume_source
    source = volume_source(volume)
    if name is not None:
        source.name = name
    run(source, interval=interval)
