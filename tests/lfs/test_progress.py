"""Progress of mkfs and fsck: monotone callbacks from the lfs, a bar on a terminal only, never with --json."""

import json
import os
import subprocess
import sys

from tests.terminal import run_with_terminal_stderr
from zcsdfs.lfs import fsck, mkfs, mount
from zcsdfs.zns import ZonedDevice


def calls_of(run) -> list[tuple[int, int, str]]:
    calls = []
    run(lambda done, total, what: calls.append((done, total, what)))
    return calls


def assert_monotone(calls):
    assert calls, "no progress reported"
    for (done, total, _), (done2, total2, _) in zip(calls, calls[1:]):
        assert done <= done2 and total <= total2
    assert all(0 <= done <= total for done, total, _ in calls)
    assert calls[-1][0] == calls[-1][1]  # ends complete


def used_device():
    device = ZonedDevice.memory("tiny")
    mkfs(device)
    fs = mount(device)
    for i in range(6):
        fs.write(fs.create(fs.ROOT, f"f{i}"), 0, bytes([i + 1]) * 40 * 4096)
    fs.unmount()
    return device


def test_fsck_reports_monotone_progress_over_every_block():
    device = used_device()
    calls = calls_of(lambda cb: fsck(device, progress=cb))
    assert_monotone(calls)
    whats = [what for _, _, what in calls]
    assert "verifying data blocks" in whats and "verifying the log" in whats
    assert calls[-1][1] >= 6 * 40  # every data block counts


def test_mkfs_reports_monotone_progress_with_a_step_per_zone_reset():
    device = used_device()
    used = len(device.report_used())
    calls = calls_of(lambda cb: mkfs(device, progress=cb))
    assert_monotone(calls)
    assert calls[-1][1] == used + 2
    assert [what for _, _, what in calls][0] == "resetting zones"


def _command(*argv, stderr_terminal: bool, tmp_path):
    """Run the real command with stdout on a pipe and stderr on a terminal (or a pipe); return
    (status, stdout, stderr)."""
    env = dict(os.environ, XDG_DATA_HOME=str(tmp_path / "data"), TERM="xterm", COLUMNS="120")
    env.pop("ZCSDFS_DEVICE", None)
    command = [sys.executable, "-m", "zcsdfs.cli", *map(str, argv)]
    if not stderr_terminal:
        done = subprocess.run(command, capture_output=True, env=env, timeout=120)
        return done.returncode, done.stdout, done.stderr
    return run_with_terminal_stderr(command, env)


def test_the_commands_draw_progress_on_a_terminal_and_keep_json_clean(tmp_path):
    image = tmp_path / "dev.zns"
    device = ZonedDevice.create(image, "tiny")
    device.close_device()

    status, out, err = _command("mkfs", image, "--json", stderr_terminal=True, tmp_path=tmp_path)
    assert status == 0 and err == b""  # no bar with --json, even on a terminal
    assert json.loads(out)["uuid"]
    status, out, err = _command("fsck", image, "--json", stderr_terminal=True, tmp_path=tmp_path)
    assert status == 0 and err == b""
    assert json.loads(out)["clean"] is True

    status, out, err = _command("fsck", image, stderr_terminal=True, tmp_path=tmp_path)
    assert status == 0 and b"clean" in out
    assert b"fsck " in err and b"Traceback" not in err  # the bar, on the terminal
    status, out, err = _command("mkfs", image, "--force", stderr_terminal=True, tmp_path=tmp_path)
    assert status == 0 and b"made zcsdfs" in out and b"mkfs " in err

    status, out, err = _command("fsck", image, stderr_terminal=False, tmp_path=tmp_path)
    assert status == 0 and err == b""  # nothing on a pipe
