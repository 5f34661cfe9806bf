"""Do tiles show? A stream per tile (`snl_cli.tiles.TiledStream`) against whole frames.

DAVIS 2016 val dog, goat and kite-surf, the first 10 frames at 854x480, seeded Gaussian noise
of sigma 20; the shipped STAN streamed whole, then in tiles of TILE px (halo included; 854x480
cut into 4x2). Prints PSNR against the clean frames over the whole frame and over the seam
bands (the pixels where neighbouring tiles are blended), for both runs. Run from the
repository root with ../shared/data present: `python scripts/tile_seams.py`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from snl_cli.denoisers import make_denoiser
from snl_cli.metrics import psnr_tensor
from snl_cli.tiles import TiledStream, tile_grid

SIGMA = 20.0
TILE = 320
CLIPS = [Path("../shared/data/davis2016-val-480p") / name for name in ("dog", "goat", "kite-surf")]


def main() -> None:
    denoiser = make_denoiser("stan")
    rows = []
    for clip in CLIPS:
        torch.manual_seed(0)
        files = sorted(clip.glob("*.jpg"))[:10]
        frames = [np.asarray(Image.open(f), np.float32) / 255 for f in files]
        clean = torch.stack([torch.from_numpy(f).permute(2, 0, 1) for f in frames])
        noisy = (clean + SIGMA / 255 * torch.randn_like(clean)).clamp(0, 1)
        noisy = torch.round(noisy * 255) / 255
        H, W = clean.shape[-2:]

        def run(tile: int, H: int = H, W: int = W, noisy: torch.Tensor = noisy) -> torch.Tensor:
            stream = TiledStream(lambda: denoiser.stream(SIGMA), H, W, tile, denoiser.halo)
            outs = [out for frame in noisy for out in stream.push(frame)] + stream.close()
            return torch.stack(outs)

        whole, tiled = run(max(H, W)), run(TILE)
        weight = torch.zeros(H, W)
        for p in tile_grid(H, W, TILE, denoiser.halo):
            weight[p.y : p.y + p.h, p.x : p.x + p.w] += (p.weight < 1).float()
        band = weight > 0  # blended pixels
        rows.append((clip.name, psnr_tensor(whole, clean), psnr_tensor(tiled, clean),
                     psnr_tensor(whole[..., band], clean[..., band]),
                     psnr_tensor(tiled[..., band], clean[..., band]),
                     psnr_tensor(tiled, whole), band.float().mean().item()))  # fmt: skip
    print(
        "| clip | whole | tiled | Δ | seam bands: whole | tiled | Δ | tiled vs whole | band share |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, w, t, bw, bt, tw, share in rows:
        print(
            f"| {name} | {w:.3f} | {t:.3f} | {t - w:+.3f} | {bw:.3f} | {bt:.3f} | {bt - bw:+.3f} "
            f"| {tw:.1f} | {share:.0%} |"
        )


if __name__ == "__main__":
    main()
