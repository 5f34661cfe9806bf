"""STAN with a noise-level input on real noisy/clean photographs: told the level it estimates
itself (blind, the default) or fixed levels, one pass per image, PSNR of the 8-bit output.

Usage: python scripts/level_on_pairs.py WEIGHTS PAIRS [PAIRS ...] [--limit 20]
            [--levels 3 5 8 12]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from snl_cli.metrics import psnr
from snl_cli.model.stan import estimate_level
from snl_cli.model.weights import load_stan
from snl_cli.pairs import load_pairs
from snl_cli.video.images import quantize


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("weights")
    parser.add_argument("pairs", nargs="+")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--levels", type=float, nargs="+", default=[3.0, 5.0, 8.0, 12.0])
    args = parser.parse_args()
    model, _ = load_stan(args.weights)
    if not model.cfg.level_input:
        raise SystemExit(f"{args.weights}: these weights have no level input")
    model.eval()
    result = {}
    for folder in args.pairs:
        scores: dict[str, list[float]] = {"estimated": [], **{f"{v:g}": [] for v in args.levels}}
        estimates = []
        for noisy, clean in load_pairs(Path(folder))[: args.limit]:
            x = torch.from_numpy(noisy).permute(2, 0, 1).float().div(255)[None, None]
            est = estimate_level(x)
            estimates.append(float(est))
            for name in scores:
                level = est if name == "estimated" else torch.full_like(est, float(name))
                with torch.no_grad():
                    out = model(x, None, level=level)[0, 0]
                scores[name].append(psnr([quantize(out.permute(1, 2, 0).numpy())], [clean]))
        result[folder] = {
            "estimated_level": round(float(np.mean(estimates)), 2),
            **{k: round(float(np.mean(v)), 3) for k, v in scores.items()},
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
