"""Tests for the noise report (snl_cli/noise.py `noise_report`, `snl info --noise`): known
noise added to the Y, Cb and Cr code values of a lossless clip, different in each
brightness band, is read back within 15 % per band and channel."""

from __future__ import annotations

import json
from fractions import Fraction

import av
import media
import numpy as np
import pytest

from snl_cli.cli import app
from snl_cli.noise import noise_report

# Code-value σ added per band (dark, mid, bright), 8-bit limited range.
SIGMA_Y = (8.0, 5.0, 3.0)
SIGMA_C = (10.0, 4.0, 2.0)
SIZE = (240, 96)


def _clean_luma(width: int, height: int) -> np.ndarray:
    """A ramp from dark to bright across the width (full-range luma in [0.12, 0.88])."""
    y, x = np.mgrid[0:height, 0:width]
    return 0.12 + 0.76 * x / (width - 1) + 0.01 * np.sin(y / 7.0)


def _noisy_planes(seed: int) -> list[np.ndarray]:
    width, height = SIZE
    rng = np.random.default_rng(seed)
    luma = _clean_luma(width, height)
    band = np.digitize(luma, [1 / 3, 2 / 3])
    sy, sc = np.array(SIGMA_Y)[band], np.array(SIGMA_C)[band]
    y = 16 + 219 * luma + rng.normal(0, 1, luma.shape) * sy
    cb = 128 + rng.normal(0, 1, luma.shape) * sc
    cr = 128 + rng.normal(0, 1, luma.shape) * sc
    return [np.clip(np.rint(p), 0, 255).astype(np.uint8) for p in (y, cb, cr)]


def _clip(path) -> None:
    width, height = SIZE
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv444p"
        stream.codec_context.time_base = Fraction(1, 25)
        media.set_tags(stream.codec_context, {"range": "tv", "space": "bt709"})
        for index in range(5):
            frame = media.planar_frame(_noisy_planes(index), "yuv444p")
            media.set_tags(frame, {"range": "tv", "space": "bt709"})
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def test_info_noise_tracks_the_added_noise_per_band(tmp_path, runner) -> None:
    path = tmp_path / "noisy.mkv"
    _clip(path)
    result = runner.invoke(app, ["info", str(path), "--noise", "--json"])
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)["noise"]
    assert report["channels"] == ["Y", "Cb", "Cr"]
    # Code values → the report's full-range 0–255 units: 219 luma and 224 chroma steps.
    for i, band in enumerate(("dark", "mid", "bright")):
        values = report["bands"][band]
        assert values["share"] > 0.1
        assert values["Y"] == pytest.approx(SIGMA_Y[i] * 255 / 219, rel=0.15), band
        for name in ("Cb", "Cr"):
            assert values[name] == pytest.approx(SIGMA_C[i] * 255 / 224, rel=0.15), band
    table = runner.invoke(app, ["info", str(path), "--noise"], env={"COLUMNS": "120"})
    assert "dark" in table.stdout and "Cb" in table.stdout


def test_rgb_report_and_clean_content() -> None:
    width, height = 120, 90
    clean = media.pattern(0, width, height).astype(np.float32)
    report = noise_report([clean])
    assert report["channels"] == ["R", "G", "B"]
    assert all(v < 1.0 for v in report["overall"].values())
    rng = np.random.default_rng(1)
    noisy = np.clip(clean + rng.normal(0, 6 / 255, clean.shape), 0, 1).astype(np.float32)
    report = noise_report([noisy])
    for name in "RGB":
        assert report["overall"][name] == pytest.approx(6.0, rel=0.1)
