"""Tests for snl_cli/nlm.py: it removes noise we add, follows known motion, keeps clean
content, and handles the small and odd shapes a tile or a chunk can have."""

from __future__ import annotations

import cv2
import media
import numpy as np
import pytest
import torch

from snl_cli.denoisers import Denoiser
from snl_cli.nlm import NLMDenoiser, NLMSettings, nlm_denoise


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return media.psnr(a.numpy(), b.numpy())


def _add_noise(clean: torch.Tensor, sigma: float, seed: int = 0) -> torch.Tensor:
    noise = torch.randn(clean.shape, generator=torch.Generator().manual_seed(seed))
    return (clean + noise * sigma / 255.0).clamp(0, 1)


def _pattern_clip(frames: int, width: int, height: int) -> torch.Tensor:
    clip = np.stack([media.pattern(i, width, height) for i in range(frames)])
    return torch.from_numpy(clip).permute(0, 3, 1, 2).float().contiguous()


def _moving_texture(frames: int, size: int, step: int) -> torch.Tensor:
    """Blurred random texture sliding right by `step` pixels a frame (wrapping around)."""
    rng = np.random.default_rng(3)
    base = cv2.GaussianBlur(rng.random((size, size, 3)).astype(np.float32), (0, 0), 1.2)
    base = (base - base.min()) / (base.max() - base.min()) * 0.8 + 0.1
    clip = np.stack([np.roll(base, step * t, axis=1) for t in range(frames)])
    return torch.from_numpy(clip).permute(0, 3, 1, 2).contiguous()


def test_noise_is_removed_by_a_clear_margin() -> None:
    clean = _pattern_clip(7, 96, 64)
    noisy = _add_noise(clean, 25.0)
    out = nlm_denoise(noisy, 25.0)
    assert out.shape == clean.shape and out.dtype == clean.dtype
    assert _psnr(out, clean) >= _psnr(noisy, clean) + 8.0


def test_flow_shifted_search_follows_motion_beyond_the_window() -> None:
    # 5 px a frame: frames t±2 are 10 px away, beyond the 9x9 window's reach of 4 px.
    clean = _moving_texture(7, 72, step=5)
    noisy = _add_noise(clean, 30.0, seed=1)
    shifted = nlm_denoise(noisy, 30.0, NLMSettings(flows="dis"))
    plain = nlm_denoise(noisy, 30.0, NLMSettings(flows="zero"))
    assert _psnr(shifted, clean) >= _psnr(plain, clean) + 0.5


def test_clean_content_is_kept_at_sigma_zero() -> None:
    clean = _pattern_clip(4, 48, 40)  # smooth motion: no other patch is an exact copy
    assert _psnr(nlm_denoise(clean, 0.0), clean) >= 40.0


@pytest.mark.parametrize(("frames", "height", "width"), [(1, 20, 24), (2, 9, 13), (3, 33, 7)])
def test_small_and_odd_pieces_keep_their_shape(frames: int, height: int, width: int) -> None:
    clean = torch.full((frames, 3, height, width), 0.5)
    noisy = _add_noise(clean, 20.0)
    out = nlm_denoise(noisy, 20.0)
    assert out.shape == noisy.shape
    assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    assert (out - 0.5).abs().mean() < (noisy - 0.5).abs().mean()


def test_bandwidth_follows_sigma_and_settings_are_checked() -> None:
    settings = NLMSettings()
    assert settings.bandwidth(10) > settings.bandwidth(20) > settings.bandwidth(40)
    assert NLMSettings(h=0.9).bandwidth(40) == 0.9
    with pytest.raises(ValueError, match="ps"):
        NLMSettings(ps=6)
    with pytest.raises(ValueError, match="stride0"):
        NLMSettings(ps=5, stride0=6)
    with pytest.raises(ValueError, match="video"):
        nlm_denoise(torch.zeros(2, 1, 8, 8), 10.0)


def test_the_denoiser_fits_the_pipeline_interface() -> None:
    denoiser = NLMDenoiser()
    assert isinstance(denoiser, Denoiser)
    assert denoiser.name == "nlm" and denoiser.context == denoiser.settings.wt
    assert denoiser.halo >= denoiser.settings.ws // 2 + denoiser.settings.ps // 2
    clip = _add_noise(torch.full((2, 3, 16, 16), 0.3), 10.0)
    assert denoiser(clip, 10.0).shape == clip.shape
