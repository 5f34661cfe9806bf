"""Tests for snl_cli/controls.py and the controls in the pipeline: strength, luma/chroma in
the clip's own YUV matrix, and grain, against the standards' luma weights, the analytic
Gaussian transfer function and decoded lossless files."""

from __future__ import annotations

import itertools

import media
import numpy as np
import pytest
import torch

from snl_cli.controls import (
    GRAIN_SIGMA,
    Controls,
    apply_controls,
    check_controls,
    fine_residual,
    matrix_of,
)
from snl_cli.pipeline import DenoiseOptions, denoise_file

CPU = torch.device("cpu")
# Luma weights (Kr, Kg, Kb) as the standards print them: BT.601, BT.709, BT.2020.
STANDARD_LUMA = {
    "ITU601": (0.299, 0.587, 0.114),
    "ITU709": (0.2126, 0.7152, 0.0722),
    "BT2020": (0.2627, 0.6780, 0.0593),
}


def _ycbcr(rgb: np.ndarray, matrix: str) -> np.ndarray:
    """Y, Cb, Cr by the textbook formulas (Cb = (B − Y)/(2(1 − Kb)), Cr likewise)."""
    kr, kg, kb = STANDARD_LUMA[matrix]
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    y = kr * r + kg * g + kb * b
    return np.stack([y, (b - y) / (2 * (1 - kb)), (r - y) / (2 * (1 - kr))], axis=-1)


def _pair(seed: int = 0, shape: tuple[int, ...] = (2, 40, 48, 3)) -> tuple[np.ndarray, ...]:
    """(noisy, denoised) in the middle of the range, so no clipping interferes."""
    rng = np.random.default_rng(seed)
    clean = 0.3 + 0.4 * rng.random((*shape[:-1], 1)) * np.ones(3)
    noisy = clean + rng.normal(0, 0.05, shape)
    return noisy.astype(np.float32), clean.astype(np.float32)


def test_strength_blends_linearly() -> None:
    noisy, denoised = _pair()
    for s in (0.0, 0.25, 0.5, 1.0):
        out = apply_controls(noisy, denoised, Controls(strength=s))
        np.testing.assert_allclose(out, noisy + s * (denoised - noisy), atol=1e-6)
    np.testing.assert_array_equal(apply_controls(noisy, denoised, Controls(strength=0)), noisy)


@pytest.mark.parametrize("matrix", sorted(STANDARD_LUMA))
def test_chroma_only_keeps_luma_and_takes_chroma(matrix: str) -> None:
    noisy, denoised = _pair(1)
    out = apply_controls(noisy, denoised, Controls(luma=0.0, chroma=1.0, matrix=matrix))
    got, before, target = (_ycbcr(a, matrix) for a in (out, noisy, denoised))
    np.testing.assert_allclose(got[..., 0], before[..., 0], atol=2e-6)
    np.testing.assert_allclose(got[..., 1:], target[..., 1:], atol=2e-6)


@pytest.mark.parametrize("matrix", sorted(STANDARD_LUMA))
def test_luma_only_keeps_chroma(matrix: str) -> None:
    noisy, denoised = _pair(2)
    out = apply_controls(noisy, denoised, Controls(luma=0.6, chroma=0.0, matrix=matrix))
    got, before, target = (_ycbcr(a, matrix) for a in (out, noisy, denoised))
    np.testing.assert_allclose(got[..., 1:], before[..., 1:], atol=2e-6)
    expected_y = before[..., 0] + 0.6 * (target[..., 0] - before[..., 0])
    np.testing.assert_allclose(got[..., 0], expected_y, atol=2e-6)


def test_matrix_follows_the_clip_tag() -> None:
    assert matrix_of("bt709") == "ITU709"
    assert matrix_of("bt2020nc") == "BT2020"
    assert matrix_of("smpte170m") == "ITU601"
    assert matrix_of(None) == "ITU601"


def test_bad_values_are_named() -> None:
    assert check_controls(Controls(strength=1.5)) == [
        "--strength: expected a number in [0, 1], got 1.5"
    ]
    assert "--grain" in check_controls(Controls(grain=-0.1))[0]
    assert check_controls(Controls(luma=0.3, chroma=1.0, grain=0.5)) == []


def _radial_power(image: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Mean |FFT|² of a (H, W) image in radial frequency bins (cycles per pixel)."""
    power = np.abs(np.fft.fft2(image)) ** 2
    fy = np.fft.fftfreq(image.shape[0])[:, None]
    fx = np.fft.fftfreq(image.shape[1])[None, :]
    radius = np.hypot(fy, fx)
    return np.array(
        [power[(radius >= lo) & (radius < hi)].mean() for lo, hi in itertools.pairwise(edges)]
    )


@pytest.mark.parametrize("grain", [0.25, 0.6, 1.0])
def test_grain_keeps_its_share_of_the_fine_residual(grain: float) -> None:
    """The kept residual (out − denoised) has the spectrum G·(1 − e^(−2π²σ²f²)) times the
    residual's, measured by FFT in radial bands, and its level follows."""
    rng = np.random.default_rng(3)
    size = 256
    denoised = np.full((size, size, 3), 0.5, np.float32)
    residual = rng.normal(0, 0.04, (size, size, 3)).astype(np.float32)
    noisy = denoised + residual
    out = apply_controls(noisy, denoised, Controls(grain=grain))
    kept = (out - denoised)[..., 1]
    edges = np.array([0.0, 0.01, 0.03, 0.1, 0.2, 0.3, 0.4, 0.5])
    ratio = _radial_power(kept, edges) / _radial_power(residual[..., 1], edges)
    centres = (edges[:-1] + edges[1:]) / 2
    expected = (grain * (1 - np.exp(-2 * np.pi**2 * GRAIN_SIGMA**2 * centres**2))) ** 2
    assert ratio[0] < 0.01 * grain**2  # below 0.01 cycles/px almost nothing comes back
    np.testing.assert_allclose(ratio[3:], expected[3:], rtol=0.1)  # 0.1–0.5 cycles/px
    # Level: white noise through the high-pass keeps a known share of its variance.
    fy, fx = np.meshgrid(np.fft.fftfreq(size), np.fft.fftfreq(size), indexing="ij")
    transfer = 1 - np.exp(-2 * np.pi**2 * GRAIN_SIGMA**2 * (fx**2 + fy**2))
    level = grain * 0.04 * np.sqrt(np.mean(transfer**2))
    assert abs(kept.std() - level) < 0.05 * level


def test_fine_residual_of_smooth_content_is_small() -> None:
    y, x = np.mgrid[0:64, 0:64] / 64.0
    smooth = np.stack([0.5 + 0.2 * np.sin(2 * x + y)] * 3, axis=-1).astype(np.float32)
    assert np.abs(fine_residual(smooth, np.zeros_like(smooth))[4:-4, 4:-4]).max() < 2e-3


# --- through the pipeline: a lossless file in, a lossless file out ---------------------------


class Tint:
    """Moves every pixel: a stand-in denoiser that changes luma and chroma alike."""

    name, context, halo, bytes_per_pixel, device = "tint", 0, 0, 64, CPU

    def __call__(self, clip: torch.Tensor, sigma: float) -> torch.Tensor:
        shift = torch.tensor([0.05, 0.10, -0.05]).view(1, 3, 1, 1)
        return (clip + shift).clamp(0, 1)


def _planes(path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as container:
        return [
            np.stack([f.to_ndarray(format="yuv444p")]).astype(np.int32)[0]
            for f in container.decode(video=0)
        ]


def _lossless_clip(tmp_path, color=None):
    return media.make_clip(
        tmp_path / "in.mkv", frames=4, size=(48, 32), codec="ffv1", pix_fmt="yuv444p",
        color=color,
    )  # fmt: skip


def test_strength_zero_returns_the_input_file(tmp_path) -> None:
    src = _lossless_clip(tmp_path)
    dst = tmp_path / "out.mkv"
    denoise_file(src, dst, DenoiseOptions(strength=0.0), denoiser=Tint())
    for before, after in zip(_planes(src), _planes(dst), strict=True):
        # 8-bit RGB in the middle (the reader's rgb24) costs at most one code.
        assert np.abs(before - after).max() <= 1


@pytest.mark.parametrize("space", ["bt709", "smpte170m", "bt2020nc"])
def test_chroma_only_leaves_the_luma_plane(tmp_path, space: str) -> None:
    src = _lossless_clip(tmp_path, {"range": "tv", "space": space})
    full, chroma_only = tmp_path / "full.mkv", tmp_path / "chroma.mkv"
    denoise_file(src, full, DenoiseOptions(), denoiser=Tint())
    denoise_file(src, chroma_only, DenoiseOptions(luma=0.0, chroma=1.0), denoiser=Tint())
    for before, all_, chroma in zip(*map(_planes, (src, full, chroma_only)), strict=True):
        assert np.abs(all_[0] - before[0]).mean() > 5  # the full denoise moves luma...
        assert np.abs(chroma[0] - before[0]).max() <= 1  # ...chroma-only does not
        np.testing.assert_allclose(chroma[1:], all_[1:], atol=1)  # and takes its chroma
