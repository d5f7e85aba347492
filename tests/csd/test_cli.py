"""``zcsdfs kernel ...`` end to end: output and exit statuses."""

from __future__ import annotations

import json
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


# -- limits, helpers, JSON and mistakes ----------------------------------------------------

LONG_LOOP = "mov %r0, 0\nmov %r1, 0x7fffffff\nsub %r1, 1\njne %r1, 0, -2\nexit\n"  # minutes in the interpreter


def run_command(*args) -> subprocess.CompletedProcess:
    """The real command, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "zcsdfs.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=120)


def one_line_error(done: subprocess.CompletedProcess, status: int = 1) -> str:
    assert done.returncode == status, done
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("zcsdfs") and done.stderr.count("\n") == 1, done.stderr
    return done.stderr


@pytest.mark.parametrize("engine", ["interp", "jit"])
def test_run_stops_a_runaway_kernel_with_a_clear_error(tmp_path, engine):
    source = tmp_path / "long.s"
    source.write_text(LONG_LOOP)
    err = one_line_error(run_command("kernel", "run", source, "--engine", engine))
    assert "insn 2: time limit of 1 s exceeded" in err or "insn 2: instruction budget of" in err
    err = one_line_error(run_command("kernel", "run", source, "--engine", engine, "--max-insns", "1000"))
    assert "instruction budget of 1000 exhausted" in err
    err = one_line_error(run_command("kernel", "run", source, "--engine", engine, "--max-insns", str(1 << 50),
                                     "--timeout", "0.1"))
    assert "time limit of 0.1 s exceeded" in err


@pytest.mark.parametrize("option, value", [("--max-insns", "0"), ("--max-insns", "x"), ("--timeout", "-1"),
                                           ("--timeout", "nan"), ("--timeout", "inf")])
def test_run_refuses_bad_limits(capsys, source, option, value):
    with pytest.raises(SystemExit) as info:
        zcsdfs(capsys, "run", source, option, value)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}" in err and "Traceback" not in err


def test_opencsd_helpers_verify_and_run_the_shipped_kernel(capsys, tmp_path):
    kernel = KERNELS / "opencsd_count_above.o"
    status, _, err = zcsdfs(capsys, "verify", kernel)
    assert status == 1 and "unknown helper 8" in err
    status, out, _ = zcsdfs(capsys, "verify", kernel, "--helpers", "opencsd")
    assert status == 0 and "accepted" in out
    values = tmp_path / "values.bin"
    values.write_bytes(b"".join(n.to_bytes(4, "little") for n in (1, 0x80000000, 5, 0xFFFFFFFF, 0x90000000)))
    for engine in ("interp", "jit"):
        status, out, err = zcsdfs(capsys, "run", kernel, "--helpers", "opencsd", "--file", values, "--engine", engine)
        assert (status, err) == (0, "")
        assert out == "0x0\noutput " + (3).to_bytes(8, "little").hex() + "\n"


def test_run_binds_a_storage_kernel_to_a_file(capsys, tmp_path):
    values = tmp_path / "values.bin"
    values.write_bytes(b"".join(n.to_bytes(4, "little") for n in (1, 2, 3, 400)))
    status, out, err = zcsdfs(capsys, "run", KERNELS / "sum_u32.o", "--section", "csd/read_stream", "--file", values)
    assert (status, err) == (0, "")
    assert out.splitlines()[1] == "output " + (406).to_bytes(8, "little").hex()


def test_verify_json(capsys, source, tmp_path):
    status, out, _ = zcsdfs(capsys, "verify", source, "--json")
    verdict = json.loads(out)
    assert status == 0
    assert verdict["accepted"] is True and verdict["slots"] == 4 and verdict["checked"] == [0, 1]
    bad = tmp_path / "bad.s"
    bad.write_text("mov %r0, 0\njgt %r10, %r1, +1\nmov %r0, 1\nexit\n")
    status, out, _ = zcsdfs(capsys, "verify", bad, "--json")
    refusal = json.loads(out)
    assert status == 1
    assert refusal["accepted"] is False and refusal["pc"] == 1 and "compares" in refusal["reason"]


def test_conformance_json(capsys, tmp_path):
    (tmp_path / "good.data").write_text("-- asm\nmov %r0, 1\nexit\n-- result\n0x1\n")
    status, out, _ = zcsdfs(capsys, "conformance", tmp_path, "--json", "--engine", "both")
    report = json.loads(out)
    assert status == 0
    assert (report["passed"], report["failed"], report["skipped"]) == (2, 0, 0)
    assert {t["engine"] for t in report["tests"]} == {"interp", "jit"}


def test_conformance_of_nothing_is_an_error(tmp_path):
    err = one_line_error(run_command("kernel", "conformance", tmp_path))
    assert "no conformance tests" in err and str(tmp_path) in err
    (tmp_path / "notes.txt").write_text("not a test")
    one_line_error(run_command("kernel", "conformance", tmp_path))


def test_a_file_with_no_program_fails(capsys, tmp_path):
    (tmp_path / "expects_an_error.data").write_text("-- error\nanything\n")
    (tmp_path / "only_comments.data").write_text("-- asm\n# nothing here\n-- result\n0x0\n")
    status, out, _ = zcsdfs(capsys, "conformance", tmp_path)
    assert status == 1
    assert out.splitlines()[-1] == "0 passed, 2 failed, 0 skipped"
    assert all("holds no program" in line for line in out.splitlines()[:-1])


def test_conformance_shows_progress_on_a_terminal(capsys, monkeypatch, tmp_path):
    import io

    from rich.console import Console

    from zcsdfs.cli import csd as cli

    screen = io.StringIO()
    monkeypatch.setattr(cli, "Console", lambda **_: Console(file=screen, force_terminal=True, width=80))
    for i in range(3):
        (tmp_path / f"t{i}.data").write_text("-- asm\nmov %r0, 1\nexit\n-- result\n0x1\n")
    assert zcsdfs(capsys, "conformance", tmp_path)[0] == 0
    assert "conformance" in screen.getvalue() and "3/3" in screen.getvalue()
