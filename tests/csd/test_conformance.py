"""The bpf_conformance suite through our engines, and the runner's own judgement."""

from __future__ import annotations

import pytest

from zcsdfs.csd import engine
from zcsdfs.csd.conformance import (
    FAILED,
    PASSED,
    SKIPPED,
    parse_data,
    run_directory,
    summary,
)

# The only tests outside our groups (see shared/conformance/README.md).
EXPECTED_SKIPS = {"callx.data": "callx"}


@pytest.fixture(scope="module", params=engine.ENGINES)
def outcomes(request, conformance_dir):
    return run_directory(conformance_dir, request.param)


def test_every_applicable_test_passes(outcomes):
    failures = [f"{o.test}: {o.reason}" for o in outcomes if o.status == FAILED]
    assert failures == []


def test_only_callx_and_packet_tests_are_skipped(outcomes):
    skipped = {o.test: o.reason for o in outcomes if o.status == SKIPPED}
    assert skipped.keys() == EXPECTED_SKIPS.keys()
    for name, group in EXPECTED_SKIPS.items():
        assert f"group {group} is not implemented" in skipped[name]


def test_every_negative_program_is_refused(outcomes, conformance_dir):
    negatives = {o.test: o for o in outcomes if o.test.startswith("negative/")}
    assert len(negatives) == len(list(conformance_dir.glob("negative/*.data")))
    for o in negatives.values():
        assert o.status == PASSED, o
        assert o.reason  # says how it was refused (or which result was wrong)


def test_whole_suite_ran(outcomes, conformance_dir):
    assert len(outcomes) == len(list(conformance_dir.rglob("*.data")))
    assert summary(outcomes).endswith(f"0 failed, {len(EXPECTED_SKIPS)} skipped")


def write(tmp_path, relative, text):
    path = tmp_path / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_the_runner_reports_wrong_results_and_faults(tmp_path):
    write(tmp_path, "ok.data", "-- asm\nmov %r0, 2\nexit\n-- result\n0x2\n")
    write(tmp_path, "wrong.data", "-- asm\nmov %r0, 2\nexit\n-- result\n0x3\n")
    write(tmp_path, "fault.data", "-- asm\nldxb %r0, [%r1+4]\nexit\n-- mem\n00 01\n-- result\n0x0\n")
    write(tmp_path, "accepted.data", "-- asm\nmov %r0, 0\nexit\n-- error\nmust be refused\n")
    write(tmp_path, "negative/passes.data", "-- asm\nmov %r0, 1\nexit\n-- result\n0x1\n")
    write(tmp_path, "packet.data", "-- raw\n20 00 00 00 00 00 00 00\n95 00 00 00 00 00 00 00\n-- result\n0x0\n")
    results = {o.test: o for o in run_directory(tmp_path, "interp")}
    assert results["ok.data"].status == PASSED
    assert results["wrong.data"].status == FAILED
    assert results["wrong.data"].reason == "r0 = 0x2, expected 0x3"
    assert results["fault.data"].status == FAILED
    assert "runtime fault" in results["fault.data"].reason
    assert results["accepted.data"].status == FAILED
    assert results["negative/passes.data"].status == FAILED
    assert results["packet.data"].status == SKIPPED
    assert "packet" in results["packet.data"].reason


def test_both_engines_give_one_outcome_each(tmp_path):
    write(tmp_path, "ok.data", "-- asm\nmov %r0, 2\nexit\n-- result\n0x2\n")
    assert [o.engine for o in run_directory(tmp_path, "both")] == list(engine.ENGINES)


def test_parse_data_sections(conformance_dir):
    data = parse_data(conformance_dir / "lddw.data")
    assert data.raw == bytes.fromhex("1800000088776655" "0000000044332211" "9500000000000000")
    assert data.result == 0x1122334455667788
    assert data.mem is None
    subnet = parse_data(conformance_dir / "subnet.data")
    assert len(subnet.mem) == 74
    assert subnet.mem[:4] == bytes.fromhex("0000c09f")


def test_missing_directory_is_an_os_error(tmp_path):
    with pytest.raises(NotADirectoryError):
        run_directory(tmp_path / "nope")
