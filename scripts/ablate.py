"""Does the shifted search earn its place? STAN with its attention knocked out or its flow
zeroed, at inference, on held-out clips (centre crops), beside the full model.

Usage: python scripts/ablate.py WEIGHTS CLIP... [--noise KIND] [--sigma S] [--frames N]
Knock-outs at inference say how much the trained network relies on a part, not what it would
score if trained without it (that needs a training run per variant). "wt2" searches t-2..t+2
instead of t-1..t+1 (the network trained with t±1), with and without the flow.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import zlib
from pathlib import Path

import numpy as np
import torch
from torch import nn

from snl_cli.flow import estimate_flows
from snl_cli.metrics import psnr
from snl_cli.model.weights import load_stan
from snl_cli.sampler import load_clip
from snl_cli.synthetic import noisy_frames


def _set_wt(model, wt: int) -> None:
    cfg = dataclasses.replace(model.cfg, wt=wt)
    for module in (model, *model.attn):
        module.cfg = cfg


def run(model, noisy: torch.Tensor, variant: str) -> torch.Tensor:
    flows = estimate_flows(noisy, downscale=model.flow_downscale)
    if variant.endswith("no-flow"):
        flows = tuple(torch.zeros_like(f) for f in flows)
    attn, wt = model.attn, model.cfg.wt
    if variant == "no-attention":
        model.attn = nn.ModuleList()
    if variant.startswith("wt2"):
        _set_wt(model, 2)
    with torch.inference_mode():
        out = model(noisy[None], tuple(f[None] for f in flows))[0]
    model.attn = attn
    _set_wt(model, wt)
    return out.clamp(0, 1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("weights")
    parser.add_argument("clips", nargs="+", type=Path)
    parser.add_argument("--noise", default="gaussian")
    parser.add_argument("--sigma", type=float, default=20)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--crop", type=int, default=256)
    args = parser.parse_args()
    model, _ = load_stan(args.weights)
    model.eval()
    variants = ("full", "no-flow", "no-attention", "wt2", "wt2-no-flow")
    scores: dict[str, list[float]] = {v: [] for v in variants}
    for clip_path in args.clips:
        clip = load_clip(clip_path, args.frames)
        _, H, W, _ = clip.shape
        y, x = (H - args.crop) // 2, (W - args.crop) // 2
        clean = [f[y : y + args.crop, x : x + args.crop] for f in clip]
        seed = zlib.crc32(f"{clip_path.name}:{args.sigma}".encode())
        noisy = noisy_frames(clean, args.noise, args.sigma, seed)
        tensor = torch.from_numpy(np.stack(noisy)).permute(0, 3, 1, 2).float() / 255
        for variant, values in scores.items():
            out = run(model, tensor, variant).permute(0, 2, 3, 1).numpy() * 255
            values.append(psnr(list(np.rint(out)), clean))
    print(json.dumps({k: round(float(np.mean(v)), 3) for k, v in scores.items()}))


if __name__ == "__main__":
    main()
