"""Does a model shift the mean, and does it remove noise correlated over several pixels?

Two probes, one pass each, every picture denoised as a one-frame clip (as `snl denoise` does a
photo), the level estimated from the picture itself (blind):

- flat: grey frames (levels 30, 50, 80, 128) with white Gaussian noise of std 25, or noise
  blurred by a Gaussian of sigma 1.5 px and scaled to std 10 or 20 ("blotches"): the level the
  estimator reads, the output's mean and its std (what is left of the noise);
- pairs: per real noisy/clean pair, the mean R, G, B of noisy, clean and output, and the share
  of the output's MSE that a global per-channel offset explains.

Usage: python scripts/flat_noise_probe.py WEIGHTS [--pairs DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from snl_cli.metrics import psnr
from snl_cli.model.stan import estimate_level
from snl_cli.model.weights import load_stan
from snl_cli.pairs import load_pairs, pair_names
from snl_cli.synthetic import _blur
from snl_cli.video.images import quantize


def denoise(model: torch.nn.Module, image: np.ndarray) -> tuple[np.ndarray, float]:
    """(H, W, 3) 0-255 -> (the model's 8-bit (H, W, 3) output, one pass, the level it was
    told: the estimate read from the image)."""
    x = torch.from_numpy(image).permute(2, 0, 1).float().div(255)[None, None]
    level = estimate_level(x)
    with torch.no_grad():
        out = model(x, None, level=level)[0, 0].clamp(0, 1)
    return quantize(out.permute(1, 2, 0).numpy()), float(level)


def flat(model: torch.nn.Module, size: int = 256) -> None:
    gen = torch.Generator().manual_seed(0)
    for level in (30, 50, 80, 128):
        for kind, std in (("white", 25), ("blotch", 10), ("blotch", 20)):
            noise = torch.randn(1, 3, size, size, generator=gen)
            if kind == "blotch":
                noise = _blur(noise, 1.5)
                noise /= noise.std()
            noisy = (level + std * noise[0].permute(1, 2, 0)).clamp(0, 255).round().numpy()
            out, estimate = denoise(model, noisy)
            out = out.astype(np.float64)
            print(
                f"level {level:3d} {kind:6s} std {std:2d}: estimate {estimate:4.1f}"
                f", noisy mean {noisy.mean():5.1f}, output mean {out.mean():5.1f}"
                f", output std {out.std():4.1f}"
            )


def pairs(model: torch.nn.Module, folder: Path) -> None:
    for name, (noisy, clean) in zip(pair_names(folder), load_pairs(folder), strict=True):
        out, _ = denoise(model, noisy)
        error = out.astype(np.float64) - clean
        offset = (error.reshape(-1, 3).mean(0) ** 2).mean()
        mse = (error**2).mean()

        def means(a: np.ndarray) -> str:
            return " ".join(f"{v:5.1f}" for v in a.reshape(-1, 3).mean(0))

        print(
            f"{name}: noisy {means(noisy)} | clean {means(clean)} | output {means(out)}"
            f" | PSNR {psnr([out], [clean]):.2f}, offset {offset:.1f} of MSE {mse:.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights")
    parser.add_argument("--pairs", type=Path, help="a folder of noisy/ and clean/ images")
    args = parser.parse_args()
    model, _ = load_stan(args.weights)
    model.eval()
    if args.pairs:
        pairs(model, args.pairs)
    else:
        flat(model)


if __name__ == "__main__":
    main()
