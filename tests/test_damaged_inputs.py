"""Damaged and unusual inputs through `denoise_file`: truncated clips, duplicate
timestamps, tiny frames, options checked before any frame is decoded."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import media
import numpy as np
import pytest
import torch

from snl_cli.errors import InputError, OutputError, UsageError
from snl_cli.pipeline import DenoiseOptions, denoise_file
from snl_cli.video import probe, read_frames


class Identity:
    name, context, halo, bytes_per_pixel = "identity", 0, 0, 64
    device = torch.device("cpu")

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, clip: torch.Tensor, sigma: float) -> torch.Tensor:
        self.calls += 1
        return clip


class Warnings:
    def __init__(self) -> None:
        self.messages: list[str] = []

    def started(self, info, summary) -> None:
        pass

    def advanced(self, frames: int) -> None:
        pass

    def warned(self, message: str) -> None:
        self.messages.append(message)


def faststart_clip(path: Path, frames: int = 20, size: tuple[int, int] = (96, 64)) -> Path:
    """H.264 with B-frames in a faststart MP4 (index first, so a cut file keeps it)."""
    width, height = size
    with av.open(str(path), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=25, options={"preset": "medium"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index in range(frames):
            frame = media.rgb_frame(media.pattern(index, width, height), 8)
            frame = frame.reformat(format="yuv420p")
            frame.pts, frame.time_base = index, Fraction(1, 25)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def test_truncated_clip_every_complete_frame_denoised_and_loss_reported(tmp_path):
    cut = media.truncate(faststart_clip(tmp_path / "full.mp4"), 0.5, tmp_path / "cut.mp4")
    info = probe(cut)
    assert info.truncated and info.declared_frames == 20
    assert len(list(read_frames(cut))) == info.frames  # frame threads lost some before
    warnings = Warnings()
    out = tmp_path / "out.mkv"
    summary = denoise_file(cut, out, DenoiseOptions(sigma=5), warnings, denoiser=Identity())
    assert summary["frames"] == info.frames == len(media.video_frames_meta(out))
    assert summary["frames_lost"] == 20 - info.frames > 0
    assert summary["frames_lost_reason"] == "the file is truncated"
    assert any(f"{20 - info.frames} of 20 frames lost" in m for m in warnings.messages)


def test_truncated_clip_with_strict_fails_and_writes_nothing(tmp_path):
    cut = media.truncate(faststart_clip(tmp_path / "full.mp4"), 0.5, tmp_path / "cut.mp4")
    out = tmp_path / "out.mkv"
    with pytest.raises(InputError, match="frames lost: the file is truncated"):
        denoise_file(cut, out, DenoiseOptions(sigma=5, strict=True), denoiser=Identity())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.mp4", "full.mp4"]


def test_duplicate_timestamps_repaired_with_a_warning(make_clip, tmp_path):
    clip = make_clip("zero.mkv", frames=6, codec="ffv1", pts=[0] * 6, time_base=Fraction(1, 1000))
    info = probe(clip)
    assert info.fps == 25  # not frames / 0.04 s = 150
    warnings = Warnings()
    out = tmp_path / "out.mkv"
    summary = denoise_file(clip, out, DenoiseOptions(sigma=5), warnings, denoiser=Identity())
    assert summary["frames"] == 6 and summary["pts_repaired"] == 5
    times = [float(f.pts * f.time_base) for f in media.video_frames_meta(out)]
    assert np.allclose(np.diff(times), 0.04)
    assert any("did not increase" in m for m in warnings.messages)


@pytest.mark.parametrize("size", [(1, 1), (7, 20), (20, 15)])
def test_tiny_frames_refused_with_the_minimum(make_frames, tmp_path, size):
    folder = make_frames(frames=3, size=size)
    denoiser = Identity()
    with pytest.raises(InputError, match="at least 16x16 pixels"):
        denoise_file(folder, tmp_path / "out", DenoiseOptions(sigma=5), denoiser=denoiser)
    assert denoiser.calls == 0


def test_bad_output_options_refused_before_decoding(make_clip, tmp_path):
    clip = make_clip("c.mp4", frames=4)
    denoiser = Identity()
    with pytest.raises(UsageError, match="--preset"):
        denoise_file(clip, tmp_path / "o.mp4", DenoiseOptions(preset="fastest"), denoiser=denoiser)
    with pytest.raises(UsageError, match="--crf"):
        denoise_file(clip, tmp_path / "o.mp4", DenoiseOptions(crf=100), denoiser=denoiser)
    folder = tmp_path / "frames"
    folder.mkdir()
    (folder / "keep.txt").write_text("x")
    with pytest.raises(OutputError, match="not only images"):
        denoise_file(clip, folder, DenoiseOptions(overwrite=True), denoiser=denoiser)
    with pytest.raises(OutputError, match="dv cannot be written"):
        denoise_file(clip, tmp_path / "o.dv", DenoiseOptions(), denoiser=denoiser)
    assert denoiser.calls == 0


def test_frame_folder_output_says_what_it_leaves_out(make_clip, tmp_path):
    clip = make_clip("r.mp4", frames=3, audio=True, rotation=90)
    warnings = Warnings()
    out = tmp_path / "frames"
    denoise_file(clip, out, DenoiseOptions(sigma=5), warnings, denoiser=Identity())
    assert len(list(out.iterdir())) == 3
    assert any("audio:aac" in m and "left out" in m for m in warnings.messages)
    assert any("rotation (90°) is left out" in m for m in warnings.messages)
