"""The weights shipped in the package: present, intact, and they denoise."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from snl_cli.denoisers import make_denoiser
from snl_cli.model.weights import default_weights_path, load_stan, sha256_file


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return 10 * math.log10(1 / F.mse_loss(a.double(), b.double()).item())


def _moving_texture(frames: int = 6, size: int = 72) -> torch.Tensor:
    """(T, 3, size, size) in [0, 1]: smooth random texture plus edges, panning 1 px per frame."""
    gen = torch.Generator().manual_seed(3)
    big = size + 2 * frames
    base = F.interpolate(
        torch.rand(1, 3, big // 6, big // 6, generator=gen),
        size=(big, big),
        mode="bicubic",
        align_corners=False,
    )
    yy = torch.arange(big).view(-1, 1).expand(big, big)
    base = base + 0.35 * ((yy // 9) % 2).float()  # stripes: sharp edges to keep
    base = (base - base.min()) / (base.max() - base.min())
    return torch.stack([base[0, :, t : t + size, t : t + size] for t in range(frames)])


def test_shipped_weights_are_intact() -> None:
    path = default_weights_path()
    model, manifest = load_stan(path)
    assert manifest["sha256"] == sha256_file(path)
    assert manifest["val_psnr"]["20"] > 30  # what training measured, recorded for users
    assert sum(p.numel() for p in model.parameters()) > 100_000


def test_shipped_stan_denoises_a_generated_clip() -> None:
    """Better than the noisy input by a wide margin and better than the best box blur."""
    clean = _moving_texture()
    gen = torch.Generator().manual_seed(0)
    noisy = (clean + torch.randn(clean.shape, generator=gen) * 25 / 255).clamp(0, 1)
    denoiser = make_denoiser("stan", device="cpu")
    out = denoiser(noisy, 25.0)
    blurs = [F.avg_pool2d(noisy, k, 1, k // 2, count_include_pad=False) for k in (3, 5)]
    best_blur = max(_psnr(b, clean) for b in blurs)
    got, before = _psnr(out.clamp(0, 1), clean), _psnr(noisy, clean)
    assert got > before + 6, (got, before)
    assert got > best_blur + 1, (got, best_blur)
