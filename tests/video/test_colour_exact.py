"""Colour exactness: a clip passed through unchanged comes back with its own levels.

References are independent of snl's conversion code: the raw code values of the planes
(decoded by plain PyAV) and FFmpeg's own RGB conversion of input and output alike.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import media
import numpy as np
import pytest
import torch

from snl_cli.pipeline import DenoiseOptions, denoise_file
from snl_cli.video import VideoWriter, probe, read_frames

FORMATS = ["yuv420p", "yuv444p", "yuv420p10le", "yuv422p10le"]


class Identity:
    """A denoiser with nothing to do: returns its input."""

    name, context, halo, bytes_per_pixel = "identity", 0, 0, 64
    device = torch.device("cpu")

    def __call__(self, clip: torch.Tensor, sigma: float) -> torch.Tensor:
        return clip


def noisy_clip(path: Path, pix_fmt: str, color: dict[str, str] | None = None) -> Path:
    """Five lossless (FFV1) frames of the test pattern plus noise, 64x48."""
    color = color or {}
    rng = np.random.default_rng(7)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, pix_fmt
        stream.codec_context.time_base = Fraction(1, 25)
        media.set_tags(stream.codec_context, color)
        for index in range(5):
            rgb = np.clip(media.pattern(index, 64, 48) + rng.normal(0, 0.06, (48, 64, 3)), 0, 1)
            frame = media._to_format(media.rgb_frame(rgb, 16), pix_fmt, color)
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def plane_codes(path: Path) -> list[list[np.ndarray]]:
    """Raw code values of every plane of every frame (row padding removed)."""
    out = []
    for frame in media.video_frames_meta(path):
        dtype = np.uint16 if frame.format.components[0].bits > 8 else np.uint8
        planes = []
        for plane in frame.planes:
            rows = np.frombuffer(plane, dtype).reshape(plane.height, -1)
            planes.append(rows[:, : plane.width].astype(np.float64))
        out.append(planes)
    return out


def mean_shift(src: Path, out: Path) -> np.ndarray:
    """Mean (output - input) code value per plane, over all frames."""
    a, b = plane_codes(src), plane_codes(out)
    assert len(a) == len(b) == 5
    pairs = zip(a, b, strict=True)
    shifts = [[(y - x).mean() for x, y in zip(fa, fb, strict=True)] for fa, fb in pairs]
    return np.mean(shifts, 0)


@pytest.mark.parametrize("pix_fmt", FORMATS)
@pytest.mark.parametrize("rng", ["tv", "pc"])
def test_reader_writer_round_trip_keeps_levels(tmp_path, pix_fmt, rng):
    src = noisy_clip(tmp_path / "in.mkv", pix_fmt, {"range": rng})
    out = tmp_path / "out.mkv"
    with VideoWriter(out, probe(src)) as writer:
        for frame in read_frames(src):
            writer.write(frame)
    shift = mean_shift(src, out)
    assert np.all(np.abs(shift) <= 0.05), shift  # the bar is 0.5; the fix is much better
    # Luma comes back code for code; chroma within a level (resampled 4:2:x).
    (first_in, *_), (first_out, *_) = plane_codes(src), plane_codes(out)
    assert np.array_equal(first_in[0], first_out[0])
    assert max(np.abs(b - a).max() for a, b in zip(first_in, first_out, strict=True)) <= 1


@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuv444p", "yuv420p10le"])
def test_identity_denoise_keeps_colour_in_rgb(tmp_path, pix_fmt):
    """The issue's measure: FFmpeg's RGB of output vs input, mean per channel within 0.5."""
    src = noisy_clip(tmp_path / "in.mkv", pix_fmt, media_tags())
    out = tmp_path / "out.mkv"
    summary = denoise_file(src, out, DenoiseOptions(sigma=0), denoiser=Identity())
    assert summary["frames"] == 5 and summary["plan"]["codec"] == "ffv1"
    depth = 16 if "10" in pix_fmt else 8
    before, after = media.decode_rgb(src, depth), media.decode_rgb(out, depth)
    for a, b in zip(before, after, strict=True):
        shift = (b - a).reshape(-1, 3).mean(0) * 255
        assert np.all(np.abs(shift) <= 0.5), shift


def media_tags() -> dict[str, str]:
    return {"range": "tv", "space": "bt709", "primaries": "bt709", "transfer": "bt709"}


def test_reader_has_no_level_bias_against_ffmpeg(tmp_path):
    """4:4:4 needs no chroma resampling: snl's RGB equals FFmpeg's 16-bit RGB to 1/1000."""
    src = noisy_clip(tmp_path / "in.mkv", "yuv444p10le", media_tags())
    reference = media.decode_rgb(src, 16)
    for frame, ref in zip(read_frames(src), reference, strict=True):
        # swscale's deep YUV white is 65280/65535 (see colour.white_level): undo that gain
        inside = (ref > 0.02) & (ref < 0.98)
        ratio = np.median(frame.rgb[inside] / ref[inside])
        assert abs(ratio - 1) < 0.005
        assert abs(float((frame.rgb - ref * ratio).mean())) < 0.2 / 255
        assert np.abs(frame.rgb - ref * ratio).max() < 5 / 1023
