"""What limits STAN on real photographs: three probes on real noisy/clean pairs, each photo
denoised as a one-frame clip, PSNR of the 8-bit output.

- gain on the pairs trained on against the held-out ones (over-fitting or not);
- multi-scale fusion: the coarse band of the output replaced by that of the output at ½ (and
  ¼) resolution, for low-frequency noise a small receptive field would miss;
- a second pass averaged in, (D(x) + D(D(x))) / 2: a stronger denoise, blind.

Usage: python scripts/photo_probes.py WEIGHTS PAIRS [PAIRS ...] [--limit 20] [--passes 1|8]
       python scripts/photo_probes.py WEIGHTS --gaussian CLIP [CLIP ...]  (the second pass on
       each clip's first frame, top-left 384x256, with seeded Gaussian noise at sigma 10/25/50)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from snl_cli.clips import read_uint8
from snl_cli.ensemble import orient, unorient
from snl_cli.metrics import psnr
from snl_cli.model.stan import estimate_level
from snl_cli.model.weights import load_stan
from snl_cli.pairs import load_pairs
from snl_cli.video.images import quantize


def denoiser(model: torch.nn.Module, passes: int):
    """x (1, 1, 3, H, W) in [0, 1] -> the model's output, averaged over `passes` orientations."""

    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            outs = [unorient(model(z, None, level=estimate_level(z)), k)
                    for k in range(passes) for z in [orient(x, k).contiguous()]]  # fmt: skip
        return torch.stack(outs).mean(0).clamp(0, 1)

    return run


def _down(y: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(y[0], 2)[None]


def _up(y: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(y[0], size=size, mode="bilinear", align_corners=False)[None]


def fused(run, x: torch.Tensor, y: torch.Tensor, levels: int) -> torch.Tensor:
    """`y` (the full-resolution output) with its coarse band taken from the output at ½^levels."""
    x2 = _down(x)
    d2 = run(x2) if levels == 1 else fused(run, x2, run(x2), levels - 1)
    return y + _up(d2 - _down(y), x.shape[-2:])


def _uint8(out: torch.Tensor) -> np.ndarray:
    return quantize(out[0, 0].permute(1, 2, 0).numpy())


def _tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image).permute(2, 0, 1).float().div(255)[None, None]


def gaussian_probe(run, clips: list[str]) -> dict[str, dict[str, float]]:
    """The second pass averaged in, on Gaussian noise: one frame per clip, sigma 10/25/50."""
    rng = np.random.default_rng(0)
    frames = [read_uint8(Path(c), stop=1)[0][:256, :384] for c in clips]
    result = {}
    for sigma in (10, 25, 50):
        plain, averaged = [], []
        for clean in frames:
            noisy = np.clip(np.round(clean + rng.normal(0, sigma, clean.shape)), 0, 255)
            y = run(_tensor(noisy.astype(np.uint8)))
            plain.append(psnr([_uint8(y)], [clean]))
            averaged.append(psnr([_uint8((y + run(y)) / 2)], [clean]))
        result[f"sigma {sigma}"] = {
            "plain": round(float(np.mean(plain)), 3),
            "second pass averaged": round(float(np.mean(averaged)), 3),
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("weights")
    parser.add_argument("pairs", nargs="*")
    parser.add_argument("--gaussian", nargs="+", default=None, metavar="CLIP")
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--passes", type=int, default=1, choices=(1, 8))
    args = parser.parse_args()
    model, _ = load_stan(args.weights)
    run = denoiser(model.eval(), args.passes)
    if args.gaussian:
        print(json.dumps(gaussian_probe(run, args.gaussian), indent=2))
        return
    result = {}
    for folder in args.pairs:
        scores: dict[str, list[float]] = {k: [] for k in ("noisy", "plain", "fused½", "fused¼",
                                                          "second pass averaged")}  # fmt: skip
        for noisy, clean in load_pairs(Path(folder))[: args.limit]:
            h, w = noisy.shape[0] // 4 * 4, noisy.shape[1] // 4 * 4
            noisy, clean = noisy[:h, :w], clean[:h, :w]
            x = _tensor(noisy)
            y = run(x)
            outs = {"plain": y, "fused½": fused(run, x, y, 1), "fused¼": fused(run, x, y, 2),
                    "second pass averaged": (y + run(y)) / 2}  # fmt: skip
            scores["noisy"].append(psnr([noisy], [clean]))
            for name, out in outs.items():
                scores[name].append(psnr([_uint8(out)], [clean]))
        result[folder] = {k: round(float(np.mean(v)), 3) for k, v in scores.items()}
        print(folder, result[folder], flush=True)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
