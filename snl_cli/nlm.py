"""Training-free video denoising: flow-shifted non-local means on the Shifted-NLS operator.

For every query patch on a grid of step `stride0`, `shifted_nls` finds the `topk` most
similar ps×ps patches in a ws×ws window of each of the 2·wt+1 nearest frames, centred on
where the optical flow (`snl_cli.flow`) says the patch went. The matched patches of the
noisy clip are averaged with weights that fall with their distance, and `patch_sum` folds
the overlapping averaged patches back into frames (patch-wise aggregation).

Two passes, like BM3D's basic and final estimates:
1. search on the channel mean of the noisy clip (σ²/3 noise, a third of the work of RGB);
   weight w = exp(−max(d − sub·2σ²/3, 0) / (h1²·σ²/3)), d the mean squared patch
   difference;
2. search again on the first estimate, whose residual noise is small, so the matches follow
   the picture rather than the noise; weight w = exp(−d / (h2·σ²)), and average the *noisy*
   patches with them (an estimate-guided NLM; the weights no longer see the noise).
In both passes the query's own patch gets the weight of its best other match (standard
NLM practice: it would otherwise always weigh 1).

Flow offsets are rounded to whole pixels: every candidate is then an original pixel with
the full noise variance, so distances are comparable between candidates, and the search
takes its faster integer path.

Settings (`NLMSettings`) were tuned on DAVIS 480p at σ 20 and 40 with `scripts/eval_nlm.py`.
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
        h1, sub: bandwidth and noise offset of the first pass's weights.
        h2: bandwidth of the second pass's weights (× σ² of the noise).
        passes: 1 (basic estimate only) or 2.
        flows: flow method of `snl_cli.flow.estimate_flows` ("zero": plain NLM).

    Other Parameters:
        backend: search backend ("auto": the fast one for the clip's device).
    """

    ps: int = 7
    ws: int = 9
    wt: int = 2
    topk: int = 48
    stride0: int = 4
    h1: float = 0.8
    sub: float = 1.0
    h2: float = 0.35
    passes: int = 2
    flows: str = "dis"
    backend: str = "auto"

    def __post_init__(self) -> None:
        if self.ps < 1 or self.ps % 2 == 0:
            raise ValueError(f"ps: expected an odd patch size, got {self.ps}")
        if not 1 <= self.stride0 <= self.ps:
            raise ValueError(f"stride0: expected 1 to ps={self.ps}, got {self.stride0}")
        if self.passes not in (1, 2):
            raise ValueError(f"passes: expected 1 or 2, got {self.passes}")


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
    var = (max(float(sigma), 0.5) / 255.0) ** 2
    T, _, H, W = video.shape
    if flows is None:
        flows = _flows(video, settings)
    pad = settings.stride0
    noisy = _pad(video, pad)
    offsets = _offsets(flows, settings, pad, T)
    guide = noisy.mean(1, keepdim=True)
    dists, inds = _search(guide, offsets, settings)
    weights = _weights(dists, settings.ps**2, settings.h1**2 * var / 3, settings.sub * var / 3)
    estimate = patch_sum(noisy[None], weights, inds, ps=settings.ps, stride0=settings.stride0,
                         backend=settings.backend)[0]  # fmt: skip
    if settings.passes == 2:
        dists, inds = _search(estimate.mean(1, keepdim=True), offsets, settings)
        weights = _weights(dists, settings.ps**2, settings.h2 * var, 0.0)
        estimate = patch_sum(noisy[None], weights, inds, ps=settings.ps,
                             stride0=settings.stride0, backend=settings.backend)[0]  # fmt: skip
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
    """exp(−max(d/pixels − offset, 0) / bandwidth), the query's own match capped, summing to 1.

    Args:
        dists: (B, heads, T, nH, nW, K), best first; the first is the query itself.
    """
    d = (dists / pixels - offset).clamp_min(0)
    weights = torch.exp(-d / bandwidth)
    if weights.shape[-1] > 1:
        weights[..., 0] = weights[..., 1:].amax(-1)
    return weights / weights.sum(-1, keepdim=True).clamp_min(1e-12)


class NLMDenoiser:
    """`--model nlm`: the Denoiser interface around `nlm_denoise`."""

    name = "nlm"

    def __init__(self, settings: NLMSettings | None = None, device: torch.device | None = None):
        self.settings = settings or NLMSettings()
        self.device = device or torch.device("cpu")
        self.context = self.settings.wt
        # Spatial reach of one output pixel: search radius, patch radius, query step.
        self.halo = self.settings.ws // 2 + self.settings.ps // 2 + self.settings.stride0 + 8
        # frames, guide, two estimates, flows and offsets (~40 B) + per-query search results.
        self.bytes_per_pixel = 96 + (16 * self.settings.topk) // self.settings.stride0**2

    @torch.no_grad()
    def __call__(self, clip: Tensor, sigma: float) -> Tensor:
        return nlm_denoise(clip.float(), sigma, self.settings)
