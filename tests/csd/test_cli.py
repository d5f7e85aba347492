"""``zcsdfs kernel ...`` end to end: output and exit statuses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from zcsdfs.cli import main

KERNELS = Path(__file__).resolve().parents[2] / "zcsdfs" / "csd" / "kernels"


def zcsdfs(capsys, *args) -> tuple[int, str, str]:
    status = main(["kernel", *map(str, args)])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture
def source(tmp_path) -> Path:
    path = tmp_path / "sum.s"
    path.write_text("# sum of the first two input bytes\nldxb %r0, [%r1+0]\nldxb %r2, [%r1+1]\n"
                    "add %r0, %r2\nexit\n")
    return path


def test_asm_prints_slots_and_writes_bytecode(capsys, source, tmp_path):
    status, out, _ = zcsdfs(capsys, "asm", source)
    assert status == 0
    assert out.splitlines() == ["71 10 00 00 00 00 00 00", "71 12 01 00 00 00 00 00",
                                "0f 20 00 00 00 00 00 00", "95 00 00 00 00 00 00 00"]
    binary = tmp_path / "sum.bin"
    assert zcsdfs(capsys, "asm", source, "-o", binary)[0] == 0
    assert binary.read_bytes() == bytes.fromhex("".join(out.split()))
    # Raw bytecode is a PROGRAM too.
    assert zcsdfs(capsys, "run", binary, "--mem", "0305") == (0, "0x8\n", "")


def test_disasm_round_trips(capsys, source, tmp_path):
    status, out, _ = zcsdfs(capsys, "disasm", source)
    assert status == 0
    assert out == "ldxb %r0, [%r1]\nldxb %r2, [%r1+1]\nadd %r0, %r2\nexit\n"
    again = tmp_path / "again.s"
    again.write_text(out)
    assert zcsdfs(capsys, "asm", again)[1] == zcsdfs(capsys, "asm", source)[1]


def test_verify_accepts_and_refuses(capsys, source, tmp_path):
    status, out, _ = zcsdfs(capsys, "verify", source)
    assert status == 0
    assert "accepted" in out
    bad = tmp_path / "bad.s"
    bad.write_text("mov %r0, %r5\nexit\n")
    status, out, err = zcsdfs(capsys, "verify", bad)
    assert status == 1
    assert out == ""
    assert err.count("\n") == 1
    assert str(bad) in err and "insn 0" in err


def test_run_prints_r0_in_hex(capsys, source, tmp_path):
    assert zcsdfs(capsys, "run", source, "--mem", "01 ff") == (0, "0x100\n", "")
    mem = tmp_path / "mem.bin"
    mem.write_bytes(b"\x02\x03")
    assert zcsdfs(capsys, "run", source, "--mem-file", mem) == (0, "0x5\n", "")


def test_run_a_conformance_file_uses_its_memory(capsys, conformance_dir):
    assert zcsdfs(capsys, "run", conformance_dir / "subnet.data") == (0, "0x1\n", "")
    assert zcsdfs(capsys, "run", conformance_dir / "call_unwind_fail.data") == (0, "0x2\n", "")


@pytest.mark.parametrize("engine", ["interp", "jit"])
def test_run_on_each_engine(capsys, conformance_dir, engine):
    path = conformance_dir / "rfc9669_lock_cmpxchg64.data"
    assert zcsdfs(capsys, "run", path, "--engine", engine)[:2] == (0, "0x1\n")


def test_run_an_elf_kernel(capsys):
    values = b"".join(n.to_bytes(4, "little") for n in (1, 2, 3, 400))
    status, out, err = zcsdfs(capsys, "run", KERNELS / "sum_u32.o", "--section", "csd/memory",
                              "--mem", values.hex())
    assert (status, out, err) == (0, "0x196\n", "")
    status, _, err = zcsdfs(capsys, "run", KERNELS / "sum_u32.o")
    assert status == 1
    assert "csd/memory" in err


@pytest.mark.parametrize("args, words", [
    (["run", "MISSING"], "No such file"),
    (["run", "SOURCE", "--mem", "zz"], "not hex"),
    (["run", "SOURCE"], "outside every readable region"),  # no input memory
    (["asm", "BAD"], "line 2: invalid register"),
])
def test_errors_are_one_line_with_status_1(capsys, source, tmp_path, args, words):
    bad = tmp_path / "bad.s"
    bad.write_text("mov %r0, 1\nmov %r0, %r11\nexit\n")
    names = {"SOURCE": source, "BAD": bad, "MISSING": tmp_path / "missing.s"}
    status, out, err = zcsdfs(capsys, *[names.get(a, a) for a in args])
    assert status == 1
    assert out == ""
    assert err.startswith("zcsdfs: ") and err.count("\n") == 1
    assert words in err


def test_conformance_summary_and_status(capsys, conformance_dir, tmp_path):
    status, out, _ = zcsdfs(capsys, "conformance", conformance_dir)
    assert status == 0
    lines = out.splitlines()
    assert lines[-1] == "372 passed, 0 failed, 1 skipped"
    assert lines[:-1] == [line for line in lines[:-1] if line.startswith("skipped callx.data")]

    (tmp_path / "good.data").write_text("-- asm\nmov %r0, 1\nexit\n-- result\n0x1\n")
    (tmp_path / "bad.data").write_text("-- asm\nmov %r0, 1\nexit\n-- result\n0x2\n")
    status, out, _ = zcsdfs(capsys, "conformance", tmp_path, "--engine", "both")
    assert status == 1
    assert out.splitlines() == [
        "FAILED bad.data [interp]: r0 = 0x1, expected 0x2",
        "FAILED bad.data [jit]: r0 = 0x1, expected 0x2",
        "2 passed, 2 failed, 0 skipped",
    ]


def test_the_installed_command(source):
    """The console script end to end, once, as a user would run it."""
    done = subprocess.run([sys.executable, "-m", "zcsdfs.cli", "kernel", "run", str(source), "--mem", "0102"],
                          capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (0, "0x3\n")
