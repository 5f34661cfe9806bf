"""`snl align`: the JSON report, the table and verdict, the plot, one-line errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import media
import pytest
import torch
import torch.nn.functional as F

from snl_cli.cli import app

ARGS = ["--backend", "torch", "--ws", "3", "--sigma", "5"]


@pytest.fixture
def moving_frames(tmp_path: Path) -> Path:
    """A folder of 3 PNG frames (32x24) of a texture moving by (2, -3) px per frame."""
    gen = torch.Generator().manual_seed(0)
    big = F.avg_pool2d(torch.rand(1, 3, 40, 48, generator=gen), 3, 1, 1)[0]
    folder = tmp_path / "moving"
    folder.mkdir()
    for t in range(3):
        crop = big[:, 8 - 2 * t : 32 - 2 * t, 8 + 3 * t : 40 + 3 * t]
        media.write_image(folder / f"{t:05d}.png", crop.permute(1, 2, 0).numpy())
    return folder


def test_json_report(runner, moving_frames):
    result = runner.invoke(app, ["align", str(moving_frames), *ARGS, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    methods = {"identity", "flow", "nls", "shifted_nls"}
    assert [pair["t"] for pair in data["pairs"]] == [0, 1]
    assert all(set(pair) == {"t"} | methods for pair in data["pairs"])
    assert set(data["summary"]) == methods
    assert data["summary"]["shifted_nls"] > data["summary"]["nls"] + 3
    assert data["input"] == str(moving_frames)
    assert set(data["flow_magnitude"]) == {"p50", "p90", "p99"}
    assert set(data["time_ms"]) == methods | {"flow_estimate"}


def test_table_verdict_sweep_and_plot(runner, moving_frames, tmp_path):
    plot = tmp_path / "align.png"
    args = ["align", str(moving_frames), *ARGS, "--frames", "1:3", "--sweep-ws", "1,3"]
    result = runner.invoke(app, [*args, "--plot", str(plot)])
    assert result.exit_code == 0, result.output
    for text in ("shifted_nls", "mean", "verdict:", "ws sweep", "border hits", str(plot)):
        assert text in result.stdout
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    umask = os.umask(0)
    os.umask(umask)
    assert plot.stat().st_mode & 0o777 == 0o666 & ~umask  # like any new file, not 0600
    import matplotlib.image

    assert matplotlib.image.imread(plot).shape[:2][1] > 800  # two panels side by side
    again = runner.invoke(app, [*args, "--plot", str(plot)])
    assert again.exit_code == 1
    assert "already exists" in again.stderr


@pytest.mark.parametrize(
    ("extra", "code", "phrase"),
    [
        (["--frames", "0:1"], 1, "at least 2 frames"),
        (["--frames", "2:9"], 1, "outside the clip (3 frames)"),
        (["--frames", "x"], 2, "--frames"),
        (["--ws", "4"], 2, "--ws must be an odd"),
        (["--ps", "0"], 2, "--ps must be an odd"),
        (["--sweep-ws", "3,a"], 2, "--sweep-ws"),
    ],
)
def test_bad_options_are_one_line(runner, moving_frames, extra, code, phrase):
    result = runner.invoke(app, ["align", str(moving_frames), *ARGS, *extra])
    assert result.exit_code == code
    assert phrase in result.stderr
    assert "Traceback" not in result.output
    assert result.stdout == ""


def test_single_frame_and_missing_input(runner, tmp_path, moving_frames):
    for frame in sorted(moving_frames.iterdir())[1:]:
        frame.unlink()
    result = runner.invoke(app, ["align", str(moving_frames), *ARGS])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"snl: error: {moving_frames}: need at least 2 frames to align frame t+1 with frame t, "
        "got 1"
    ]
    missing = runner.invoke(app, ["align", str(tmp_path / "nope.mp4"), *ARGS])
    assert missing.exit_code == 1
    assert len(missing.stderr.splitlines()) == 1
    assert "Traceback" not in missing.output


@pytest.mark.parametrize("size", [(1, 1), (15, 20)])
def test_tiny_frames_refused_with_the_minimum(runner, make_frames, size) -> None:
    folder = make_frames("tiny", frames=3, size=size)
    result = runner.invoke(app, ["align", str(folder), *ARGS])
    assert result.exit_code == 1, result.output
    assert result.stderr.count("\n") == 1
    assert f"frames are {size[0]}x{size[1]}; snl needs at least 16x16 pixels" in result.stderr


def test_the_minimum_size_aligns(runner, make_frames) -> None:
    folder = make_frames("small", frames=3, size=(16, 16))
    result = runner.invoke(app, ["align", str(folder), *ARGS, "--json"])
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["pairs"]) == 2
