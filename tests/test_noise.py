"""Tests for snl_cli/noise.py: Immerkær's σ against the σ of noise we add ourselves."""

from __future__ import annotations

import media
import numpy as np
import pytest

from snl_cli.noise import channel_sigma, estimate_sigma, pick_frames


def _noisy_frames(sigma: float, count: int = 3, size: int = 160, seed: int = 0) -> list:
    """Smooth moving content plus Gaussian noise of `sigma` (0–255 scale), 8-bit rounded."""
    rng = np.random.default_rng(seed)
    frames = []
    for index in range(count):
        clean = media.pattern(index, size, size) * 255.0
        noisy = np.clip(np.round(clean + rng.normal(0.0, sigma, clean.shape)), 0, 255)
        frames.append((noisy / 255.0).astype(np.float32))
    return frames


@pytest.mark.parametrize("sigma", [5.0, 10.0, 20.0, 30.0, 45.0])
def test_estimate_matches_the_noise_added(sigma: float) -> None:
    estimate = estimate_sigma(_noisy_frames(sigma))
    assert abs(estimate - sigma) <= max(1.0, 0.06 * sigma), estimate


def test_clean_content_reads_near_zero() -> None:
    # 8-bit rounding alone is σ ≈ 0.29; the smooth pattern adds almost nothing.
    assert estimate_sigma(_noisy_frames(0.0)) < 1.0


def test_grey_frames_are_estimated_too() -> None:
    frames = _noisy_frames(15.0)
    grey = [frame[..., 1] for frame in frames]
    assert abs(estimate_sigma(grey) - 15.0) <= 1.0


def test_saturated_or_tiny_images_give_no_estimate() -> None:
    assert channel_sigma(np.ones((50, 50), np.float32)) is None
    assert channel_sigma(np.zeros((2, 40), np.float32)) is None
    assert estimate_sigma([np.ones((50, 50, 3), np.float32)]) == 0.0


def test_pick_frames_spreads_over_the_clip() -> None:
    assert pick_frames(0) == []
    assert pick_frames(3) == [0, 1, 2]
    picked = pick_frames(100, 5)
    assert picked[0] == 0 and picked[-1] == 99 and len(picked) == 5
    assert picked == sorted(set(picked))
