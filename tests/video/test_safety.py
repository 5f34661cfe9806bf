"""Data-safety rules beside the writer: stale temporary files of a killed run are removed
(and said on stderr), a missing output folder is created (and said), pipes and devices are
refused as input with one line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import media
import pytest

from snl_cli.cli import app
from snl_cli.video import is_temp_name, safety


def _temps(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if is_temp_name(p.name)]


def _killed_writer(dst: Path) -> Path:
    """Start a process that opens snl's temporary file for `dst`, writes into it, and is
    SIGKILLed mid-write (no cleanup can run); returns the file it leaves."""
    code = (
        "import sys, time; from pathlib import Path\n"
        "from snl_cli.video.safety import temp_file_beside\n"
        "tmp = temp_file_beside(Path(sys.argv[1])); tmp.write_bytes(b'partial' * 1000)\n"
        "print(tmp, flush=True); time.sleep(600)\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code, str(dst)], stdout=subprocess.PIPE, text=True
    )
    try:
        leftover = Path(process.stdout.readline().strip())
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    assert leftover.exists() and is_temp_name(leftover.name)
    return leftover


def test_the_next_run_removes_what_a_killed_run_left(runner, make_clip, tmp_path, monkeypatch):
    clip = make_clip("clip.mp4", frames=3)
    out = tmp_path / "out" / "denoised.mp4"
    out.parent.mkdir()
    leftover = _killed_writer(out)
    other = _killed_writer(out.with_suffix(".mkv"))  # another output's: not this run's business
    time.sleep(0.05)
    monkeypatch.setattr(safety, "RUN_STARTED", time.time())  # the next run starts now
    result = runner.invoke(app, ["denoise", str(clip), "-o", str(out), "--model", "nlm"])
    assert result.exit_code == 0, result.output
    assert f"removed {leftover}, a temporary file an interrupted run left" in result.stderr
    assert not leftover.exists() and other.exists()
    assert _temps(out.parent) == [other]
    assert len(media.decode_rgb(out)) == 3


def test_only_our_names_for_this_output_and_older_than_the_run_are_removed(tmp_path):
    dst = tmp_path / "b.mp4"
    ours = safety.temp_file_beside(dst)
    folder = safety.temp_dir_beside(tmp_path / "b")  # the frame-folder output "b"
    keep = [tmp_path / ".b.snl-notes.txt", tmp_path / ".bb.snl-x1.mp4", tmp_path / "b.snl-x.mp4"]
    for path in keep:
        path.write_bytes(b"user data")
    assert safety.remove_stale_temps(dst) == []  # newer than this run: a writer at work
    assert safety.remove_stale_temps(dst, before=time.time() + 1) == [ours]
    assert safety.remove_stale_temps(tmp_path / "b", before=time.time() + 1) == [folder]
    assert all(p.read_bytes() == b"user data" for p in keep)
    assert sorted(os.listdir(tmp_path)) == sorted(p.name for p in keep)


def test_a_missing_output_folder_is_created_and_said(runner, make_clip, tmp_path):
    clip = make_clip("clip.mp4", frames=3)
    out = tmp_path / "new" / "deeper" / "out.mp4"
    result = runner.invoke(app, ["denoise", str(clip), "-o", str(out), "--model", "nlm"])
    assert result.exit_code == 0, result.output
    assert f"created the folder {out.parent} for out.mp4" in result.stderr
    assert len(media.decode_rgb(out)) == 3
    again = runner.invoke(app, ["denoise", str(clip), "-o", str(out), "--model", "nlm",
                                "--overwrite"])  # fmt: skip
    assert again.exit_code == 0 and "created the folder" not in again.stderr


@pytest.mark.parametrize("kind", ["fifo", "device"])
@pytest.mark.parametrize("command", ["info", "denoise"])
def test_pipes_and_devices_are_refused_in_one_line(runner, tmp_path, kind, command):
    if kind == "fifo":
        src = tmp_path / "stream.mp4"
        os.mkfifo(src)  # nobody writes: opening it would hang
    else:
        src = Path("/dev/null")
    args = [command, str(src)] + (["-o", str(tmp_path / "o.mp4")] if command == "denoise" else [])
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    assert result.stderr.count("\n") == 1
    what = "a pipe" if kind == "fifo" else "a device or socket"
    assert f"snl: error: {src}: is {what};" in result.stderr
    assert "pipes are not supported" in result.stderr
