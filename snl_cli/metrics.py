"""Image quality metrics on RGB frames: PSNR (of numpy frames or of tensors) and SSIM."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


def psnr(a: Sequence[np.ndarray], b: Sequence[np.ndarray], peak: float = 255.0) -> float:
    """PSNR in dB over all frames, pixels and channels (one MSE for the whole clip).

    Args:
        a, b: frames (H, W, C) of the same shapes, values on the 0..peak scale.
    """
    total, count = 0.0, 0
    for x, y in zip(a, b, strict=True):
        diff = x.astype(np.float64) - y.astype(np.float64)
        total += float(np.square(diff).sum())
        count += diff.size
    mse = total / max(count, 1)
    return float(10 * np.log10(peak**2 / max(mse, 1e-12)))


def psnr_tensor(a: Tensor, b: Tensor, peak: float = 1.0) -> float:
    """PSNR in dB of two tensors of the same shape (one MSE over every value), in float64;
    values on the 0..peak scale (default [0, 1])."""
    return psnr([a.detach().double().cpu().numpy()], [b.detach().double().cpu().numpy()], peak)


def _gaussian_1d(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float64) - size // 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    return g / g.sum()


def _blur(x: Tensor, g: Tensor) -> Tensor:
    """Valid-window Gaussian filter of (N, 1, H, W): the 2-D window is the outer product of
    g with itself, so two 1-D passes compute it (2*11 instead of 121 taps per pixel)."""
    return F.conv2d(F.conv2d(x, g.view(1, 1, -1, 1)), g.view(1, 1, 1, -1))


def ssim(a: Sequence[np.ndarray], b: Sequence[np.ndarray], peak: float = 255.0) -> float:
    """Mean SSIM (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03),
    averaged over channels and frames; valid windows only (no padding)."""
    g = _gaussian_1d()
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    scores = []
    for x, y in zip(a, b, strict=True):
        xt = torch.from_numpy(np.asarray(x, dtype=np.float64)).permute(2, 0, 1).unsqueeze(1)
        yt = torch.from_numpy(np.asarray(y, dtype=np.float64)).permute(2, 0, 1).unsqueeze(1)
        mu_x, mu_y = _blur(xt, g), _blur(yt, g)
        sxx = _blur(xt * xt, g) - mu_x**2
        syy = _blur(yt * yt, g) - mu_y**2
        sxy = _blur(xt * yt, g) - mu_x * mu_y
        num = (2 * mu_x * mu_y + c1) * (2 * sxy + c2)
        den = (mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2)
        scores.append(float((num / den).mean()))
    return float(np.mean(scores))
