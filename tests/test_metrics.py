"""PSNR and SSIM against hand-computed values and known properties."""

from __future__ import annotations

import math

import numpy as np
import pytest

from snl_cli.metrics import psnr, ssim


def test_psnr_known_value() -> None:
    a = [np.zeros((4, 4, 3), np.uint8)]
    b = [np.full((4, 4, 3), 10, np.uint8)]
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 100))


def test_psnr_pools_the_mse_over_frames() -> None:
    a = [np.zeros((2, 2, 1)), np.zeros((2, 2, 1))]
    b = [np.zeros((2, 2, 1)), np.full((2, 2, 1), 2.0)]
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 2))


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
