"""Running the zcsdfs CLI in-process from a test: exit status, stdout, stderr."""

from __future__ import annotations

from zcsdfs import cli


def run(capsys, *argv) -> tuple[int, str, str]:
    try:
        status = cli.main([str(a) for a in argv])
    except SystemExit as exc:
        status = exc.code
    out, err = capsys.readouterr()
    return status, out, err
