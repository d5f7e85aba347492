"""Shared fixtures for the eBPF VM tests: the conformance suite's files.

A test that takes ``data_file`` runs once per positive ``.data`` file of the
suite, one that takes ``negative_file`` once per file under ``negative/``, and
one that takes ``assembler_reject`` once per ``negative/invalid_*`` file (the
programs that must not even assemble).
"""

from __future__ import annotations

from pathlib import Path

import pytest

CONFORMANCE = Path(__file__).resolve().parents[3] / "shared" / "conformance" / "bpf_conformance"


def pytest_generate_tests(metafunc):
    for fixture, pattern in (("data_file", "*.data"), ("negative_file", "negative/*.data"),
                             ("assembler_reject", "negative/invalid_*.data")):
        if fixture in metafunc.fixturenames:
            files = sorted(CONFORMANCE.glob(pattern))
            if not files:
                raise pytest.UsageError(f"no conformance files match {CONFORMANCE / pattern}")
            metafunc.parametrize(fixture, files, ids=[f.name for f in files])


@pytest.fixture(scope="session")
def conformance_dir() -> Path:
    if not CONFORMANCE.is_dir():
        pytest.fail(f"conformance suite missing at {CONFORMANCE}")
    return CONFORMANCE
