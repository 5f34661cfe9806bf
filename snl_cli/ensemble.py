"""Geometric self-ensemble: a denoiser run on flipped and transposed copies of a clip, the
outputs turned back and averaged (the "self-ensemble" of Lim et al., EDSR, 2017).

A trained network is not exactly equivariant to flips and transposition, so its error
differs from one orientation to another, and the average of several carries less of it.
On the held-out real photographs 8 passes gain 0.1-0.4 dB over one (docs/model.md), at 8
times the cost: `snl denoise` uses them on one-frame inputs (photos), where that cost is a
second or two, and one pass on video unless `--ensemble N` says otherwise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from torch import Tensor

    from snl_cli.denoisers import Denoiser

PASSES = (1, 2, 4, 8)  # identity; + left-right flip; + up-down flips; + the transposed four
PHOTO_PASSES = 8  # the default for a one-frame input


def orient(clip: Tensor, k: int) -> Tensor:
    """Symmetry k (0-7) of the square applied to the last two axes of `clip` (…, H, W): bit 0
    flips left-right, bit 1 up-down, bit 2 transposes first (then (…, W, H))."""
    if k & 4:
        clip = clip.transpose(-1, -2)
    dims = [d for bit, d in ((1, -1), (2, -2)) if k & bit]
    return clip.flip(dims) if dims else clip


def unorient(clip: Tensor, k: int) -> Tensor:
    """The inverse of `orient(·, k)`."""
    dims = [d for bit, d in ((1, -1), (2, -2)) if k & bit]
    clip = clip.flip(dims) if dims else clip
    return clip.transpose(-1, -2) if k & 4 else clip


def ensemble_passes(requested: int | None, frames: int | None) -> int:
    """Passes for a clip of `frames` frames: `requested`, or (None, "auto") PHOTO_PASSES for
    a one-frame input and 1 for video."""
    if requested is not None:
        return requested
    return PHOTO_PASSES if frames == 1 else 1


def ensembled(
    denoiser: Denoiser, requested: int | None, frames: int | None
) -> tuple[Denoiser, int]:
    """`denoiser` wrapped in the self-ensemble `ensemble_passes` picks for a clip (or cut) of
    `frames` frames, and its passes (1: `denoiser` itself)."""
    passes = ensemble_passes(requested, frames)
    return (Ensemble(denoiser, passes) if passes > 1 else denoiser), passes


class Ensemble:
    """`base` averaged over the first `passes` symmetries of `orient`; the same interface
    (`denoisers.Denoiser`), run in chunk windows (it does not stream)."""

    offers_stream = False

    def __init__(self, base: Denoiser, passes: int) -> None:
        if passes not in PASSES:
            raise ValueError(f"passes: expected one of {PASSES}, got {passes}")
        self.base, self.passes = base, passes
        self.name = base.name
        self.context, self.halo = base.context, base.halo
        self.device: torch.device = base.device
        self.uses_sigma = getattr(base, "uses_sigma", True)
        self.bytes_per_pixel = base.bytes_per_pixel + 16  # the float32 sum and its copy

    def __call__(self, clip: Tensor, sigma: float) -> Tensor:
        """clip (T, 3, H, W) in [0, 1] → the mean of the oriented passes, same shape."""
        total = self.base(clip, sigma).float()
        for k in range(1, self.passes):
            total += unorient(self.base(orient(clip, k).contiguous(), sigma).float(), k)
        return total / self.passes
