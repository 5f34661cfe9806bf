"""`snl info`: the table, the JSON object, and one-line errors for bad input."""

from __future__ import annotations

import json

import media
import pytest

from snl_cli.cli import app


def test_table(runner, h264_aac):
    result = runner.invoke(app, ["info", str(h264_aac)])
    assert result.exit_code == 0, result.stderr
    for text in ("13", "64x48", "h264", "yuv420p (8-bit)", "bt709", "aac 2 ch 48000 Hz"):
        assert text in result.stdout
    assert result.stderr == ""


def test_json_h264_aac(runner, h264_aac):
    result = runner.invoke(app, ["info", str(h264_aac), "--json"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)  # exactly one JSON document, nothing else
    assert data["frames"] == 13
    assert (data["width"], data["height"], data["fps"]) == (64, 48, 25.0)
    assert data["duration"] == pytest.approx(0.52, abs=0.01)
    assert (data["codec"], data["pix_fmt"], data["bit_depth"]) == ("h264", "yuv420p", 8)
    assert data["rotation"] == 0
    assert data["color"] == {
        "range": "tv",
        "space": "bt709",
        "primaries": "bt709",
        "transfer": "bt709",
    }
    assert data["audio"] == [{"codec": "aac", "channels": 2, "sample_rate": 48000}]


def test_json_hevc_10_bit_rotated_mkv(runner, make_clip):
    clip = make_clip("r.mkv", codec="libx265", pix_fmt="yuv420p10le", rotation=90, frames=9)
    data = json.loads(runner.invoke(app, ["info", str(clip), "--json"]).stdout)
    assert (data["frames"], data["codec"], data["pix_fmt"]) == (9, "hevc", "yuv420p10le")
    assert (data["bit_depth"], data["rotation"], data["audio"]) == (10, 90, [])


def test_json_frame_folder(runner, make_frames):
    folder = make_frames(frames=5, depth=16)
    result = runner.invoke(app, ["info", str(folder), "--json", "--fps", "50"])
    data = json.loads(result.stdout)
    assert (data["kind"], data["frames"], data["bit_depth"], data["fps"]) == ("images", 5, 16, 50)
    assert data["duration"] == pytest.approx(0.1)


@pytest.mark.parametrize("name", media.BAD_INPUTS)
@pytest.mark.parametrize("as_json", [False, True])
def test_bad_input_is_one_line(runner, tmp_path, name, as_json):
    path, phrase = media.make_bad_inputs(tmp_path / "bad")[name]
    result = runner.invoke(app, ["info", str(path)] + (["--json"] if as_json else []))
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"snl: error: {path}: ")
    assert phrase in lines[0]
    assert "Traceback" not in result.output
    assert result.stdout == ""


@pytest.mark.parametrize(
    "args", [["info"], ["info", "a.mp4", "--bogus"], ["info", "a.mp4", "--fps", "0"]]
)
def test_usage_errors_exit_2(runner, args):
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "Traceback" not in result.output
