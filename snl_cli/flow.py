"""Frame-to-frame optical flow on noisy video, in the search operator's convention.

Convention (the one `snl_cli.search.accumulate_flows` takes):
    - channel order (dy, dx), in pixels (OpenCV returns (dx, dy); we swap);
    - ``fflow[t]`` is the displacement from frame t to frame t+1, sampled on frame t's
      grid: pixel (y, x) of frame t is at (y + dy, x + dx) in frame t+1. The last
      frame's ``fflow`` is zero;
    - ``bflow[t]`` is the displacement from frame t to frame t-1 on frame t's grid. The
      first frame's ``bflow`` is zero.

The flow is OpenCV's DIS (dense inverse search, preset "medium") on the grey frames after a
Gaussian blur of 1 px: ~20 ms per 480p frame pair on two CPU cores. `scripts/flow_study.py`
chose it by flow-only alignment PSNR on noisy DAVIS 480p footage (sigma 15/30/50): it beat
DIS's faster presets (~1.2 dB), Farneback (~1 dB, 3x slower), our torch block-matching
pyramid (0.4-1.8 dB, 10x slower on the CPU) and OpenCV-contrib TV-L1 with its defaults
(2-4 dB, ~16 s per pair). The blur helps at every noise level measured, clean frames
included, so it does not depend on sigma; blurring more (2 px) hurts.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

METHODS = ("dis", "farneback", "zero")
BLUR = 1.0
MIN_SIZE = 16  # OpenCV's DIS crashes (segfault) below this; such frames get zero flow
_GREY = (0.299, 0.587, 0.114)  # ITU-R BT.601 weights, as cv2.COLOR_RGB2GRAY


def _to_grey_u8(video: Tensor) -> np.ndarray:
    """(T, C, H, W) float in [0, 1], C = 1 or 3 -> (T, H, W) uint8 (values clipped)."""
    video = video.detach().float().cpu()
    if video.shape[1] == 3:
        weights = torch.tensor(_GREY).view(1, 3, 1, 1)
        video = (video * weights).sum(1, keepdim=True)
    grey = video[:, 0].clamp(0, 1).mul(255).round()
    return grey.to(torch.uint8).numpy()


def _pair_flow(query: np.ndarray, search: np.ndarray, method: str) -> np.ndarray:
    """Flow from each pixel of `query` to its match in `search`, (H, W, 2) as (dx, dy)."""
    if min(query.shape) < MIN_SIZE:
        method = "zero"
    if method == "dis":
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        return dis.calc(query, search, None)
    if method == "farneback":
        return cv2.calcOpticalFlowFarneback(query, search, None, 0.5, 5, 21, 3, 7, 1.5, 0)
    return np.zeros((*query.shape, 2), np.float32)


def pair_flow(query: Tensor, search: Tensor, *, method: str = "dis", blur: float = BLUR) -> Tensor:
    """Flow from the query frame to the search frame, on the query frame's grid.

    Args:
        query: (C, H, W) float in [0, 1], C = 1 or 3.
        search: (C, H, W), same shape.
        method: "dis" (default), "farneback" or "zero".
        blur: Gaussian pre-blur in pixels (0 to switch it off).

    Returns:
        (2, H, W) float32 (dy, dx) on the CPU: pixel (y, x) of `query` is at
        (y + dy, x + dx) in `search`.
    """
    _check_method(method)
    grey = _blur(_to_grey_u8(torch.stack([query, search])), blur)
    return _as_dydx(_pair_flow(grey[0], grey[1], method))


def _blur(grey: np.ndarray, blur: float) -> np.ndarray:
    if blur <= 0:
        return grey
    return np.stack([cv2.GaussianBlur(frame, (0, 0), blur) for frame in grey])


def _shrink(grey: np.ndarray, factor: int) -> np.ndarray:
    """(T, H, W) uint8 -> (T, ceil(H/factor), ceil(W/factor)) by area averaging."""
    if factor == 1:
        return grey
    _, H, W = grey.shape
    size = (-(-W // factor), -(-H // factor))  # cv2 takes (width, height)
    return np.stack([cv2.resize(frame, size, interpolation=cv2.INTER_AREA) for frame in grey])


def _as_dydx(flow_dxdy: np.ndarray) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(flow_dxdy[..., ::-1].transpose(2, 0, 1)))


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"method: expected one of {', '.join(METHODS)}, got {method!r}")


def _pair_flows(greys: list[np.ndarray], method: str) -> list[tuple[Tensor, Tensor]]:
    """Forward and backward flows of every clip (each grey (T, H, W) uint8), its frame pairs
    spread over a thread pool (OpenCV releases the GIL): fflow, bflow (T, 2, H, W) each."""
    jobs = [(g[t], g[t + 1]) for g in greys for t in range(len(g) - 1)]
    jobs += [(g[t + 1], g[t]) for g in greys for t in range(len(g) - 1)]
    with ThreadPoolExecutor(max_workers=min(len(jobs), os.cpu_count() or 1) or 1) as pool:
        flows = iter(pool.map(lambda pair: _as_dydx(_pair_flow(*pair, method)), jobs))
    out = []
    for g in greys:
        T, H, W = g.shape
        out.append((torch.zeros(T, 2, H, W), torch.zeros(T, 2, H, W)))
    for (fflow, _), g in zip(out, greys, strict=True):
        for t in range(len(g) - 1):
            fflow[t] = next(flows)
    for (_, bflow), g in zip(out, greys, strict=True):
        for t in range(len(g) - 1):
            bflow[t + 1] = next(flows)
    return out


def estimate_flows(
    video: Tensor, *, method: str = "dis", blur: float = BLUR, downscale: int = 1
) -> tuple[Tensor, Tensor]:
    """Forward and backward flows between consecutive frames.

    Args:
        video: (T, C, H, W) or (B, T, C, H, W), float in [0, 1] (noisy values outside are
            clipped), C = 1 or 3, any device.
        method: "dis" (default, see the module docstring), "farneback" or "zero"
            (no motion: turns Shifted-NLS into plain NLS). Frames under 16 px on a side
            get zero flow (DIS cannot run on them). Frame pairs run on a thread pool.
        blur: Gaussian pre-blur in pixels before the flow (0 to switch it off).
        downscale: estimate on frames shrunk by up to this factor (area average after the
            blur), then resample the flows to full size: DIS at half size costs a quarter.
            Frames are not shrunk below 16 px on a side, so small ones keep a real flow.

    Returns:
        fflow, bflow: each (T, 2, H, W) or (B, T, 2, H, W) like `video`, float32 on the
        video's device, (dy, dx) in pixels; `fflow[t]` from t to t+1 (last zero),
        `bflow[t]` from t to t-1 (first zero), both on frame t's grid.

    Raises:
        ValueError: on a bad shape or method.
    """
    _check_method(method)
    if video.dim() not in (4, 5) or video.shape[-3] not in (1, 3):
        raise ValueError(
            f"video: expected (T, C, H, W) or (B, T, C, H, W) with C = 1 or 3, "
            f"got shape {tuple(video.shape)}"
        )
    if downscale < 1:
        raise ValueError(f"downscale: expected an integer >= 1, got {downscale}")
    clips = video if video.dim() == 5 else video.unsqueeze(0)
    downscale = max(1, min(downscale, min(video.shape[-2:]) // MIN_SIZE))
    greys = [_shrink(_blur(_to_grey_u8(clip), blur), downscale) for clip in clips]
    pairs = _pair_flows(greys, method)
    fflow = torch.stack([p[0] for p in pairs])
    bflow = torch.stack([p[1] for p in pairs])
    if downscale > 1:
        size = tuple(video.shape[-2:])
        fflow, bflow = resize_flows(fflow, size), resize_flows(bflow, size)
    fflow, bflow = fflow.to(video.device), bflow.to(video.device)
    if video.dim() == 4:
        return fflow[0], bflow[0]
    return fflow, bflow


def resize_flows(flow: Tensor, size: tuple[int, int]) -> Tensor:
    """Resample flows to another frame size and rescale their values to its pixels.

    Args:
        flow: (..., 2, H, W) (dy, dx).
        size: target (h, w).

    Returns:
        (..., 2, h, w): bilinear (area-like when shrinking by antialiasing) and scaled by
        h/H for dy and w/W for dx.
    """
    lead, (H, W) = flow.shape[:-3], flow.shape[-2:]
    flat = flow.reshape(-1, 2, H, W)
    shrinking = size[0] < H or size[1] < W
    out = F.interpolate(flat, size=size, mode="bilinear", align_corners=False, antialias=shrinking)
    scale = torch.tensor([size[0] / H, size[1] / W], dtype=out.dtype, device=out.device)
    return (out * scale.view(1, 2, 1, 1)).reshape(*lead, 2, *size)


def flow_magnitude_percentiles(
    flow: Tensor, percentiles: tuple[float, ...] = (50.0, 90.0, 99.0)
) -> dict[str, float]:
    """Percentiles of the flow length in pixels over all pixels of all frames.

    Args:
        flow: (..., 2, H, W) (dy, dx).
        percentiles: in [0, 100].

    Returns:
        {"p50": …, "p90": …, "p99": …} (keys follow `percentiles`), in pixels.
    """
    magnitude = flow.detach().float().square().sum(-3).sqrt().flatten().cpu()
    if magnitude.numel() > 2**24:  # torch.quantile's input limit; a strided subsample suffices
        magnitude = magnitude[:: magnitude.numel() // 2**24 + 1]
    qs = torch.tensor([p / 100 for p in percentiles])
    values = torch.quantile(magnitude, qs).tolist() if magnitude.numel() else [0.0] * len(qs)
    return {f"p{p:g}": float(v) for p, v in zip(percentiles, values, strict=True)}
