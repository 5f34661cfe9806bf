"""STAN with a noise-level input: told the level it estimates itself (blind, the default),
the true sigma, or a fixed level of 25, on DAVIS dog/goat/kite-surf (first 5 frames at
854x480) with seeded Gaussian noise.

Usage: python scripts/level_both_ways.py WEIGHTS [--data ../shared/data/davis2016-val-480p]
"""

from __future__ import annotations

import argparse
import json
import zlib

import numpy as np
import torch

from snl_cli.denoisers import StanDenoiser
from snl_cli.metrics import psnr
from snl_cli.model.stan import estimate_level
from snl_cli.model.weights import load_stan
from snl_cli.sampler import load_clip
from snl_cli.synthetic import noisy_frames


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("weights")
    parser.add_argument("--data", default="../shared/data/davis2016-val-480p")
    args = parser.parse_args()
    model, manifest = load_stan(args.weights)
    if not model.cfg.level_input:
        raise SystemExit(f"{args.weights}: these weights have no level input")
    denoiser = StanDenoiser(model, manifest, torch.device("cpu"))
    result = {}
    for sigma in (10, 30, 50):
        scores: dict[str, list[float]] = {"estimated": [], "true": [], "fixed 25": []}
        estimates = []
        for name in ("dog", "goat", "kite-surf"):
            clean = list(load_clip(f"{args.data}/{name}", 5))
            noisy = noisy_frames(clean, "gaussian", sigma, zlib.crc32(f"{name}:{sigma}".encode()))
            x = torch.from_numpy(np.stack(noisy)).permute(0, 3, 1, 2).float() / 255
            estimate = float(estimate_level(x[None])[0])
            estimates.append(round(estimate, 2))
            for key, level in (("estimated", estimate), ("true", sigma), ("fixed 25", 25.0)):
                out = denoiser(x, level).permute(0, 2, 3, 1).numpy() * 255
                scores[key].append(psnr(list(np.rint(out)), clean))
        result[sigma] = {k: round(float(np.mean(v)), 3) for k, v in scores.items()}
        result[sigma]["estimates"] = estimates
    print(json.dumps(result))


if __name__ == "__main__":
    main()
