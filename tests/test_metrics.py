"""PSNR and SSIM against hand-computed values and known properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from snl_cli.metrics import psnr, psnr_tensor, ssim


def test_psnr_known_value() -> None:
    a = [np.zeros((4, 4, 3), np.uint8)]
    b = [np.full((4, 4, 3), 10, np.uint8)]
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 100))


def test_psnr_pools_the_mse_over_frames() -> None:
    a = [np.zeros((2, 2, 1)), np.zeros((2, 2, 1))]
    b = [np.zeros((2, 2, 1)), np.full((2, 2, 1), 2.0)]
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 2))


def test_psnr_tensor_known_value() -> None:
    # (2, 3, 4, 4) in [0, 1]: half the values off by 0.1, so MSE = 0.005 on a peak of 1.
    a = torch.zeros(2, 3, 4, 4)
    b = a.clone()
    b[0] = 0.1
    assert psnr_tensor(a, b) == pytest.approx(10 * math.log10(1 / 0.005))
    assert psnr_tensor(a * 255, b * 255, peak=255.0) == pytest.approx(10 * math.log10(200))


def test_ssim_identity_and_degradation() -> None:
    rng = np.random.default_rng(0)
    x = (rng.random((32, 32, 3)) * 255).astype(np.uint8)
    assert ssim([x], [x]) == pytest.approx(1.0)
    noisy = np.clip(x + rng.normal(0, 25, x.shape), 0, 255)
    worse = np.clip(x + rng.normal(0, 60, x.shape), 0, 255)
    assert ssim([x], [worse]) < ssim([x], [noisy]) < 1.0


def test_ssim_of_a_constant_shift_matches_the_luminance_term() -> None:
    x = np.full((16, 16, 1), 100.0)
    y = np.full((16, 16, 1), 120.0)
    c1 = (0.01 * 255) ** 2
    want = (2 * 100 * 120 + c1) / (100**2 + 120**2 + c1)
    assert ssim([x], [y]) == pytest.approx(want)


def test_ssim_matches_a_direct_2d_window_computation() -> None:
    """Against a plain float64 loop over every valid 11x11 window (no separable filtering)."""
    rng = np.random.default_rng(4)
    x = rng.integers(0, 256, (16, 18, 2)).astype(np.float64)
    y = np.clip(x + rng.normal(0, 25, x.shape), 0, 255)
    coords = np.arange(11) - 5
    g = np.exp(-(coords**2) / (2 * 1.5**2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    values = []
    for c in range(2):
        for i in range(16 - 10):
            for j in range(18 - 10):
                px, py = x[i : i + 11, j : j + 11, c], y[i : i + 11, j : j + 11, c]
                mx, my = (w * px).sum(), (w * py).sum()
                vx, vy = (w * px * px).sum() - mx**2, (w * py * py).sum() - my**2
                cov = (w * px * py).sum() - mx * my
                num = (2 * mx * my + c1) * (2 * cov + c2)
                values.append(num / ((mx**2 + my**2 + c1) * (vx + vy + c2)))
    assert ssim([x], [y]) == pytest.approx(float(np.mean(values)), rel=1e-12)
