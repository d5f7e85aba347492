"""Shared fixtures for the eBPF VM tests: the conformance suite's files.

The suite lives outside the repository. It is found through the environment
variable ``ZCSDFS_CONFORMANCE`` (a directory), else in the workspace beside
the clone (``../shared/conformance/bpf_conformance``); without either, the
tests that need it skip with that reason, so a plain clone passes its own
test command.

A test that takes ``data_file`` runs once per positive ``.data`` file of the
suite, one that takes ``negative_file`` once per file under ``negative/``, and
one that takes ``assembler_reject`` once per ``negative/invalid_*`` file (the
programs that must not even assemble).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ENV = "ZCSDFS_CONFORMANCE"
WORKSPACE = Path(__file__).resolve().parents[2].parent / "shared" / "conformance" / "bpf_conformance"


def conformance_location() -> tuple[Path | None, str]:
    """The suite's directory (None if missing) and, when missing, why."""
    configured = os.environ.get(ENV)
    if configured:
        path = Path(configured)
        if path.is_dir():
            return path, ""
        return None, f"${ENV} is {configured}, which is not a directory"
    if WORKSPACE.is_dir():
        return WORKSPACE, ""
    return None, f"the bpf_conformance suite is not available: set ${ENV} to its directory (none at {WORKSPACE})"


CONFORMANCE, MISSING = conformance_location()


def pytest_generate_tests(metafunc):
    for fixture, pattern in (("data_file", "*.data"), ("negative_file", "negative/*.data"),
                             ("assembler_reject", "negative/invalid_*.data")):
        if fixture in metafunc.fixturenames:
            if CONFORMANCE is None:
                metafunc.parametrize(fixture, [pytest.param(None, marks=pytest.mark.skip(reason=MISSING))],
                                     ids=["no-suite"])
                continue
            files = sorted(CONFORMANCE.glob(pattern))
            if not files:
                raise pytest.UsageError(f"no conformance files match {CONFORMANCE / pattern}")
            metafunc.parametrize(fixture, files, ids=[f.name for f in files])


@pytest.fixture(scope="session")
def conformance_dir() -> Path:
    if CONFORMANCE is None:
        pytest.skip(MISSING)
    return CONFORMANCE
