"""Training-free video denoising: flow-shifted non-local means on the Shifted-NLS operator.

For every query patch on a grid of step `stride0`, `shifted_nls` finds the `topk` most
similar ps×ps patches in a ws×ws window of each of the 2·wt+1 nearest frames, centred on
where the optical flow (`snl_cli.flow`) says the patch went. The matched patches of the
noisy clip are averaged with weights that fall with their distance, and `patch_sum` folds
the overlapping averaged patches back into frames (patch-wise aggregation: every pixel is
the mean of the ~(ps/stride0)² patch estimates that cover it).

The search runs on the channel mean of the clip: its noise variance is σ²/3 and it costs a
third of an RGB search. With d the mean squared difference per pixel of two such patches,
a match weighs w = exp(−max(d − 2σ²/3, 0) / (h²·σ²/3)): the noise's own contribution
(2σ²/3 for two independent patches) is taken off, so true matches weigh about 1, and the
bandwidth h shrinks slowly with σ (h = 1.1·(20/σ)^0.45: 1.5 at σ 10, 1.1 at 20, 0.8 at
40, fitted to the best h measured at σ 10, 20, 30 and 40).
The query's own patch (d = 0, but only because its noise is compared with itself) weighs
like its best other match, at most one bandwidth away, so clean input stays clean.

Flow offsets are rounded to whole pixels: every candidate is then an original pixel with
the full noise variance, so distances are comparable between candidates.

Tuned with `scripts/eval_nlm.py`-style sweeps on 9-frame 428×240 crops of four DAVIS
sequences (bmx-trees, cows, horsejump-high, paragliding-launch) at σ 20 and 40; measured
there: ps 9 beats 7 by 0.1–0.25 dB at the same cost, ws 7 matches ws 9 and 11 (the flow
does the long reach), wt 2 beats 1 by 0.2 dB and 3 adds nothing, stride0 3 adds 0.2 dB for
twice the time and 5 loses 0.15–0.3, 48 matches beat 32 by 0.2 and equal 64. A second,
estimate-guided pass (BM3D's basic → final) lost 0.3 dB at σ 20 and gained nothing at σ 40,
so there is none.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from snl_cli.search import accumulate_flows, patch_sum, shifted_nls

MIN_FLOW_SIZE = 16


@dataclass(frozen=True)
class NLMSettings:
    """Parameters of `nlm_denoise`.

    Attributes:
        ps: patch side (odd).
        ws: search window side in each frame.
        wt: temporal radius (frames on each side searched).
        topk: matches averaged per query patch.
        stride0: step of the query grid (≤ ps so every pixel is covered).
        h: weight bandwidth, in units of the guide's noise; None: 1.1·(20/σ)^0.45.
        flows: flow method of `snl_cli.flow.estimate_flows` ("zero": plain NLM).

    Other Parameters:
        backend: search backend ("auto": the fast one for the clip's device).
    """

    ps: int = 9
    ws: int = 7
    wt: int = 2
    topk: int = 48
    stride0: int = 4
    h: float | None = None
    flows: str = "dis"
    backend: str = "auto"

    def __post_init__(self) -> None:
        if self.ps < 1 or self.ps % 2 == 0:
            raise ValueError(f"ps: expected an odd patch size, got {self.ps}")
        if not 1 <= self.stride0 <= self.ps:
            raise ValueError(f"stride0: expected 1 to ps={self.ps}, got {self.stride0}")

    def bandwidth(self, sigma: float) -> float:
        """h for a noise level σ (0–255 scale)."""
        if self.h is not None:
            return self.h
        return min(max(1.1 * (20.0 / max(sigma, 1.0)) ** 0.45, 0.6), 2.0)


def nlm_denoise(
    video: Tensor,
    sigma: float,
    settings: NLMSettings | None = None,
    flows: tuple[Tensor, Tensor] | None = None,
) -> Tensor:
    """Denoise a clip with flow-shifted non-local means.

    Args:
        video: (T, 3, H, W) float in [0, 1].
        sigma: noise standard deviation on the 0–255 scale.
        settings: see NLMSettings.
        flows: (fflow, bflow), each (T, 2, H, W), to reuse; None estimates them.

    Returns:
        (T, 3, H, W), same dtype and device.
    """
    settings = settings or NLMSettings()
    if video.dim() != 4 or video.shape[1] != 3:
        raise ValueError(f"video: expected (T, 3, H, W), got {tuple(video.shape)}")
    guide_var = (max(float(sigma), 0.5) / 255.0) ** 2 / 3
    T, _, H, W = video.shape
    if flows is None:
        flows = _flows(video, settings)
    pad = settings.stride0
    noisy = _pad(video, pad)
    offsets = _offsets(flows, settings, pad, T)
    dists, inds = _search(noisy.mean(1, keepdim=True), offsets, settings)
    bandwidth = settings.bandwidth(sigma) ** 2 * guide_var
    weights = _weights(dists, settings.ps**2, bandwidth, 2 * guide_var)
    estimate = patch_sum(noisy[None], weights, inds, ps=settings.ps, stride0=settings.stride0,
                         backend=settings.backend)[0]  # fmt: skip
    return estimate[..., :H, :W].clamp(0, 1)


def _flows(video: Tensor, settings: NLMSettings) -> tuple[Tensor, Tensor]:
    from snl_cli.flow import estimate_flows

    # OpenCV's DIS fails or crashes on frames under ~16 pixels a side (11x40 segfaults);
    # motion hardly matters at that size, so those get plain non-local means.
    method = settings.flows if min(video.shape[-2:]) >= MIN_FLOW_SIZE else "zero"
    return estimate_flows(video, method=method)


def _pad(x: Tensor, amount: int) -> Tensor:
    """Mirror-pad bottom and right so the last query row/column covers the frame edge."""
    if min(x.shape[-2:]) <= amount:
        return F.pad(x, (0, amount, 0, amount), mode="replicate")
    return F.pad(x, (0, amount, 0, amount), mode="reflect")


def _offsets(
    flows: tuple[Tensor, Tensor], settings: NLMSettings, pad: int, T: int
) -> Tensor | None:
    if T < 2 or settings.wt == 0:
        return None
    fflow, bflow = (_pad(f.float(), pad) for f in flows)
    offsets = accumulate_flows(fflow[None], bflow[None], settings.wt, stride0=settings.stride0,
                               backend=settings.backend)  # fmt: skip
    return torch.round(offsets)


def _search(guide: Tensor, offsets: Tensor | None, settings: NLMSettings) -> tuple[Tensor, Tensor]:
    T = guide.shape[0]
    wt = settings.wt if T > 1 else 0
    frames = min(2 * wt + 1, T)
    topk = min(settings.topk, frames * settings.ws**2)
    return shifted_nls(guide[None], guide[None], offsets if wt else None, ws=settings.ws,
                       wt=wt, ps=settings.ps, topk=topk, stride0=settings.stride0,
                       backend=settings.backend)  # fmt: skip


def _weights(dists: Tensor, pixels: int, bandwidth: float, offset: float) -> Tensor:
    """exp(−max(d/pixels − offset, 0) / bandwidth), normalised over the matches.

    The first match is the query itself (d = 0); it gets the distance of the best other
    match, capped at one bandwidth. Distances are shifted by their minimum first, so the
    exponentials never all underflow (σ → 0).

    Args:
        dists: (B, heads, T, nH, nW, K), best first.

    Returns:
        (B, heads, T, nH, nW, K), summing to 1 over K.
    """
    d = (dists / pixels - offset).clamp_min(0)
    if d.shape[-1] > 1:
        d[..., 0] = d[..., 1:].amin(-1).clamp_max(bandwidth)
    weights = torch.exp((d.amin(-1, keepdim=True) - d) / bandwidth)
    return weights / weights.sum(-1, keepdim=True)


class NLMDenoiser:
    """`--model nlm`: the Denoiser interface around `nlm_denoise`."""

    name = "nlm"
    uses_sigma = True

    def __init__(self, settings: NLMSettings | None = None, device: torch.device | None = None):
        self.settings = settings or NLMSettings()
        self.device = device or torch.device("cpu")
        self.context = self.settings.wt
        # Spatial reach of one output pixel: search radius, patch radius, query step.
        self.halo = self.settings.ws // 2 + self.settings.ps // 2 + self.settings.stride0 + 8
        # Measured peak 247 B per pixel and frame at the defaults (random 854x480 frames):
        # frames and copies, flows, and per query K distances, positions and weights.
        self.bytes_per_pixel = 64 + (64 * self.settings.topk) // self.settings.stride0**2

    @torch.no_grad()
    def __call__(self, clip: Tensor, sigma: float) -> Tensor:
        return nlm_denoise(clip.float(), sigma, self.settings)
