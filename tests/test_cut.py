"""Tests for denoising a part of a clip (`--frames A:B`, `--start T --duration D`): the right
frames, timestamps from 0, and the audio packets of the same span, read back with PyAV."""

from __future__ import annotations

from fractions import Fraction

import media
import numpy as np
import pytest
import torch

from snl_cli.cli import app
from snl_cli.errors import InputError, UsageError
from snl_cli.pipeline import DenoiseOptions, denoise_file

CPU = torch.device("cpu")


class Identity:
    name, context, halo, bytes_per_pixel, device = "identity", 1, 0, 64, CPU

    def __call__(self, clip: torch.Tensor, sigma: float) -> torch.Tensor:
        return clip.clone()


@pytest.fixture
def clip(tmp_path):
    """25 frames at 25 fps of lossless 4:4:4 video with AAC audio (1.0 s)."""
    return media.make_clip(
        tmp_path / "in.mkv", frames=25, size=(32, 24), codec="ffv1", pix_fmt="yuv444p",
        audio=True,
    )  # fmt: skip


def _check_part(src, dst, first: int, count: int) -> None:
    source = media.decode_rgb(src)
    written = media.decode_rgb(dst)
    assert len(written) == count
    for got, want in zip(written, source[first : first + count], strict=True):
        assert np.abs(got - want).max() <= 1.5 / 255
    times = [float(f.pts * f.time_base) for f in media.video_frames_meta(dst)]
    np.testing.assert_allclose(times, np.arange(count) / 25, atol=1e-3)
    # Audio: exactly the source packets that start inside the span, shifted to start at 0.
    start, end = first / 25, (first + count) / 25
    wanted = [(data, t - Fraction(first, 25)) for data, t in media.packets(src, "audio")
              if start - 1e-6 <= t < end - 1e-6]  # fmt: skip
    got = media.packets(dst, "audio")
    assert [d for d, _ in got] == [d for d, _ in wanted]
    np.testing.assert_allclose([float(t) for _, t in got], [float(t) for _, t in wanted],
                               atol=1.5e-3)  # fmt: skip


def test_frames_range(clip, tmp_path) -> None:
    dst = tmp_path / "part.mkv"
    summary = denoise_file(clip, dst, DenoiseOptions(frames=(6, 16)), denoiser=Identity())
    assert summary["frames"] == 10
    assert summary["cut"] == {"first_frame": 6, "start": 0.24}
    _check_part(clip, dst, 6, 10)


def test_start_and_duration(clip, tmp_path) -> None:
    dst = tmp_path / "part.mkv"
    options = DenoiseOptions(start=0.4, duration=0.3, chunk=4)
    summary = denoise_file(clip, dst, options, denoiser=Identity())
    assert summary["frames"] == 8
    _check_part(clip, dst, 10, 8)


def test_open_ended_frames_run_to_the_end(clip, tmp_path) -> None:
    dst = tmp_path / "part.mkv"
    denoise_file(clip, dst, DenoiseOptions(frames=(20, None)), denoiser=Identity())
    _check_part(clip, dst, 20, 5)


def test_a_cut_past_the_end_is_an_input_error(clip, tmp_path) -> None:
    with pytest.raises(InputError, match="no frames in the part asked for"):
        denoise_file(clip, tmp_path / "x.mkv", DenoiseOptions(frames=(40, 50)),
                     denoiser=Identity())  # fmt: skip
    assert not (tmp_path / "x.mkv").exists()


def test_frames_and_start_do_not_mix(clip, tmp_path) -> None:
    with pytest.raises(UsageError, match="either --frames or --start"):
        denoise_file(clip, tmp_path / "x.mkv", DenoiseOptions(frames=(1, 3), start=1.0),
                     denoiser=Identity())  # fmt: skip


def test_cli_flags(clip, tmp_path, runner) -> None:
    bad = runner.invoke(app, ["denoise", str(clip), "-o", str(tmp_path / "o.mkv"),
                              "--frames", "9:3"])  # fmt: skip
    assert bad.exit_code == 2
    assert "expected 0 <= A < B" in bad.stderr
    help_text = runner.invoke(app, ["denoise", "--help"], env={"COLUMNS": "200"}).stdout
    for flag in ("--frames", "--start", "--duration", "--strength", "--luma", "--chroma",
                 "--grain"):  # fmt: skip
        assert flag in help_text
    assert "[default: 1.0]" in help_text and "[default: 0.0]" in help_text
