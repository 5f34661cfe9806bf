"""Strength by blending against strength by steering the noise level (docs/cli.md, --strength).

DAVIS dog, first 10 frames, seeded Gaussian noise of sigma 20, the shipped STAN streamed:
for each strength S, the blend input + S (denoised - input) and the model told a level of
S x 20; prints how much each changes the input (std, 0-255) and its PSNR. Run from the
repository root with ../shared/data present: `python scripts/strength_vs_level.py`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from snl_cli.denoisers import make_denoiser
from snl_cli.metrics import psnr_tensor

SIGMA = 20.0
CLIP = Path("../shared/data/davis2016-val-480p/dog")


def main() -> None:
    torch.manual_seed(0)
    denoiser = make_denoiser("stan")
    files = sorted(CLIP.glob("*.jpg"))[:10]
    frames = [np.asarray(Image.open(f), np.float32) / 255 for f in files]
    clean = torch.stack([torch.from_numpy(f).permute(2, 0, 1) for f in frames])
    noisy = (clean + SIGMA / 255 * torch.randn_like(clean)).clamp(0, 1)

    def run(level: float) -> torch.Tensor:
        stream = denoiser.stream(level)
        outs = [out for frame in noisy for out in stream.push(frame)] + stream.close()
        return torch.stack(outs)

    full = run(SIGMA)
    print(f"noisy: {psnr_tensor(noisy, clean):.2f} dB")
    for strength in (0.25, 0.5, 0.75, 1.0):
        blend = noisy + strength * (full - noisy)
        steered = run(SIGMA * strength)
        print(
            f"S {strength}: blend {psnr_tensor(blend, clean):.2f} dB, change "
            f"{(blend - noisy).std() * 255:.2f} | level {SIGMA * strength:g}: "
            f"{psnr_tensor(steered, clean):.2f} dB, change {(steered - noisy).std() * 255:.2f}"
        )


if __name__ == "__main__":
    main()
