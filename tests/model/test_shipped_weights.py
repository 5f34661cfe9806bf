"""The weights shipped in the package: present, intact, and they denoise."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from snl_cli.denoisers import make_denoiser
from snl_cli.model.weights import default_weights_path, load_stan, sha256_file


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return 10 * math.log10(1 / F.mse_loss(a.double(), b.double()).item())


def _moving_shapes(frames: int = 6, size: int = 72, saturation: float = 0.3) -> torch.Tensor:
    """(T, 3, size, size) in [0, 1]: discs and boxes of random colours on a gradient, softened
    by a 0.7 px Gaussian (camera-like edges), the scene panning 1 px per frame."""
    gen = torch.Generator().manual_seed(3)
    big = size + frames + 8
    yy, xx = torch.meshgrid(torch.arange(big).float(), torch.arange(big).float(), indexing="ij")
    img = torch.stack([0.3 + 0.3 * yy / big, 0.4 + 0.2 * xx / big, 0.5 - 0.2 * yy / big])
    for i in range(14):
        colour = torch.rand(3, generator=gen) * 0.8 + 0.1
        cy, cx, r = (torch.rand(3, generator=gen) * torch.tensor([big, big, big / 5])).tolist()
        if i % 2:
            mask = (yy - cy) ** 2 + (xx - cx) ** 2 < (r + 3) ** 2
        else:
            mask = ((yy - cy).abs() < r + 3) & ((xx - cx).abs() < r * 0.7 + 3)
        img = torch.where(mask, colour.view(3, 1, 1), img)
    taps = torch.exp(-(torch.arange(-3, 4).float() ** 2) / (2 * 0.7**2))
    taps = taps / taps.sum()
    img = F.conv2d(img.unsqueeze(1), taps.view(1, 1, 1, 7), padding=(0, 3))
    img = F.conv2d(img, taps.view(1, 1, 7, 1), padding=(3, 0)).squeeze(1)[:, 4:-4, 4:-4]
    grey = img.mean(0, keepdim=True)
    img = grey + saturation * (img - grey)
    return torch.stack([img[:, t : t + size, t : t + size] for t in range(frames)])


def test_shipped_weights_are_intact() -> None:
    path = default_weights_path()
    model, manifest = load_stan(path)
    assert manifest["sha256"] == sha256_file(path)
    assert manifest["val_psnr"]["20"] > 30  # what training measured, recorded for users
    assert sum(p.numel() for p in model.parameters()) > 100_000


BENCH_WEIGHTS = Path(__file__).resolve().parents[2] / "bench" / "weights"


@pytest.mark.parametrize(
    "path",
    sorted(default_weights_path().parent.glob("*.safetensors"))
    + sorted(BENCH_WEIGHTS.glob("*.safetensors")),
    ids=lambda p: p.stem,
)
def test_every_shipped_weights_file_matches_its_manifest(path) -> None:
    """The default weights (in the wheel) and the baselines `make bench` compares against
    (bench/weights/, in the repository only)."""
    model, manifest = load_stan(path)
    assert manifest["sha256"] == sha256_file(path)
    assert manifest["steps"] > 0 and manifest["command"].startswith("snl train")
    assert manifest["architecture"] == model.cfg.to_dict()


def test_shipped_stan_denoises_a_generated_clip() -> None:
    """Better than the noisy input by a wide margin and better than the best box blur."""
    clean = _moving_shapes()
    gen = torch.Generator().manual_seed(0)
    noisy = (clean + torch.randn(clean.shape, generator=gen) * 25 / 255).clamp(0, 1)
    denoiser = make_denoiser("stan", device="cpu")
    out = denoiser(noisy, 25.0)
    blurs = [F.avg_pool2d(noisy, k, 1, k // 2, count_include_pad=False) for k in (3, 5)]
    best_blur = max(_psnr(b, clean) for b in blurs)
    got, before = _psnr(out.clamp(0, 1), clean), _psnr(noisy, clean)
    assert got > before + 10, (got, before)
    assert got > best_blur + 1.5, (got, best_blur)


def test_shipped_stan_removes_demosaicked_camera_noise() -> None:
    """Camera noise (shot/read noise on a Bayer mosaic, demosaicked, white balance and colour
    matrix: spatially and cross-channel correlated) is removed, not kept as texture: the
    shipped model beats the best box blur by a margin on it, as on Gaussian noise."""
    from snl_cli.synthetic import bench_noisy

    clean = _moving_shapes()
    noisy = bench_noisy(clean, "demosaic", 15, seed=0)
    out = make_denoiser("stan", device="cpu")(noisy, 15.0)
    blurs = [F.avg_pool2d(noisy, k, 1, k // 2, count_include_pad=False) for k in (3, 5, 7)]
    best_blur = max(_psnr(b, clean) for b in blurs)
    got, before = _psnr(out.clamp(0, 1), clean), _psnr(noisy, clean)
    assert got > before + 6, (got, before)
    assert got > best_blur + 2.0, (got, best_blur)
