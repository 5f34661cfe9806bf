"""Alignment diagnostics: how well does each search method find frame t+wt in frame t?

For each pair (t, t+wt) of a clip: the query frame is t+wt, the search frame is t. Both
are searched with seeded Gaussian noise of level sigma added (0-255 scale), exactly as the
denoiser sees them; frame t+wt is then rebuilt from the CLEAN frame t at each query's
top-1 match and compared with the clean frame t+wt (PSNR, dB). As in the paper's
alignment study, every query pixel's ps×ps clean patch at its match is folded back and
overlapping patches are averaged (`snl_cli.search.patch_sum` with ps), so a match is
judged by its whole patch, and a fractional match is read bilinearly.

Methods, all through `snl_cli.search.shifted_nls` (top-1, l2, full_ws) so that they differ
only in where they look:
    identity     the same position (ws = 1, no offsets);
    flow         the flow-predicted position (ws = 1, offsets from the flow);
    nls          the best of a ws×ws window at the same position;
    shifted_nls  the best of a ws×ws window centred on the flow-predicted position.

The flow is `snl_cli.flow.estimate_flows` on the noisy frames, chained from t+wt back to
t by `snl_cli.search.accumulate_flows` (one step when wt = 1).

How one pair is searched with the operator: a 2-frame clip q = [noisy t, noisy t+wt] with
the operator's wt = 1 (T = 2 < 3, so each frame's window is both frames). The key clip is
[noisy t, a constant far outside the data]: the query frame's own-frame candidates can then
never be the top-1, and the top-1 is the best candidate of frame t. The search also runs
for the queries of frame t; that half of the work is thrown away (it is in the times).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from snl_cli.errors import InputError, UsageError
from snl_cli.metrics import psnr_tensor

METHODS = ("identity", "flow", "nls", "shifted_nls")
WINDOWED = ("nls", "shifted_nls")
# Key value for the query's own frame: its l2 distance to any real patch is ~1e6 per value,
# while real candidates (values in [0, 1] plus noise) stay below ~10 per value.
_FAR = 1e3


@dataclass(frozen=True)
class AlignParams:
    """Options of one alignment run; see `align_clip`."""

    ws: int = 9
    wt: int = 1
    ps: int = 3
    sigma: float = 15.0
    seed: int = 0
    sweep_ws: tuple[int, ...] = ()
    backend: str = "auto"

    def check(self) -> None:
        """Raise UsageError for values the search cannot take."""
        for name, value in (("ws", self.ws), ("ps", self.ps)):
            if value < 1 or value % 2 == 0:
                raise UsageError(f"--{name} must be an odd integer >= 1, got {value}")
        for value in self.sweep_ws:
            if value < 1 or value % 2 == 0:
                raise UsageError(f"--sweep-ws values must be odd integers >= 1, got {value}")
        if self.wt < 1:
            raise UsageError(f"--wt must be >= 1, got {self.wt}")
        if not self.sigma >= 0:
            raise UsageError(f"--sigma must be >= 0 (0-255 scale), got {self.sigma}")


@dataclass
class _PairResult:
    psnr: dict[str, float]
    border: dict[str, float]
    ms: dict[str, float]


def parse_frames(text: str | None) -> tuple[int | None, int | None]:
    """Parse an `A:B` frame range (start inclusive, stop exclusive; either may be empty).

    Raises:
        UsageError: when it is not of that form.
    """
    if text is None or text.strip() in ("", ":"):
        return None, None
    parts = text.split(":")
    try:
        if len(parts) != 2:
            raise ValueError(text)
        start, stop = (int(p) if p.strip() else None for p in parts)
    except ValueError:
        raise UsageError(f"--frames: expected A:B (e.g. 0:10), got {text!r}") from None
    if (start is not None and start < 0) or (stop is not None and stop < 0):
        raise UsageError(f"--frames: expected non-negative frame numbers, got {text!r}")
    if start is not None and stop is not None and stop <= start:
        raise UsageError(f"--frames: expected A < B, got {text!r}")
    return start, stop


def check_range(
    start: int | None, stop: int | None, n_frames: int | None, wt: int, path: str | Path
) -> tuple[int, int | None]:
    """Resolve a frame range against the clip length; InputError when it does not fit."""
    first = start or 0
    if n_frames is not None:
        last = n_frames if stop is None else stop
        if first >= n_frames or last > n_frames:
            raise InputError(
                f"frame range {first}:{last} is outside the clip ({n_frames} frames)", path
            )
        _check_length(last - first, wt, path)
        return first, last
    if stop is not None:
        _check_length(stop - first, wt, path)
    return first, stop


def _check_length(n_frames: int, wt: int, path: str | Path) -> None:
    if n_frames < wt + 1:
        raise InputError(
            f"need at least {wt + 1} frames to align frame t+{wt} with frame t, got {n_frames}",
            path,
        )


def add_noise(video: Tensor, sigma: float, seed: int) -> Tensor:
    """video + N(0, (sigma/255)^2), seeded, not clipped (the Gaussian noise model)."""
    if sigma == 0:
        return video
    gen = torch.Generator(device="cpu").manual_seed(seed)
    noise = torch.randn(video.shape, generator=gen, dtype=torch.float32)
    return video + noise.to(video) * (sigma / 255)


def _pair_offsets(fflow: Tensor, bflow: Tensor, t: int, wt: int, backend: str) -> Tensor:
    """Offsets (1, 2, 1, 2, H, W) of the 2-frame search clip [t, t+wt].

    Slot (1, 0) holds the chained flow from each pixel of frame t+wt back to frame t; the
    slot of frame t's own queries is zero (their results are not used).
    """
    from snl_cli.search import accumulate_flows

    sub_f, sub_b = fflow[t : t + wt + 1][None], bflow[t : t + wt + 1][None]
    # T' = wt + 1 < 2·wt + 1 frames, so the window of the last frame is the whole sub-clip
    # and its first neighbour slot is frame t.
    chained = accumulate_flows(sub_f, sub_b, wt, backend=backend)[:, wt, 0]
    offsets = chained.new_zeros(1, 2, 1, *chained.shape[1:])
    offsets[0, 1, 0] = chained[0]
    return offsets


def _border_share(inds: Tensor, offsets: Tensor | None, ws: int) -> float:
    """Share of top-1 matches of the query frame on the border of their ws×ws window."""
    H, W = inds.shape[3:5]
    radius = ws // 2
    ys = torch.arange(H, dtype=inds.dtype, device=inds.device).view(H, 1)
    xs = torch.arange(W, dtype=inds.dtype, device=inds.device).view(1, W)
    cy, cx = ys.expand(H, W), xs.expand(H, W)
    if offsets is not None:
        cy, cx = cy + offsets[0, 1, 0, 0], cx + offsets[0, 1, 0, 1]
    cy, cx = (_clamp_centre(c, size, radius) for c, size in ((cy, H), (cx, W)))
    match = inds[0, 0, 1, :, :, 0]
    dy, dx = (match[..., 1] - cy).abs(), (match[..., 2] - cx).abs()
    on_border = (dy > radius - 0.5) | (dx > radius - 0.5)
    return on_border.double().mean().item()


def _clamp_centre(c: Tensor, size: int, radius: int) -> Tensor:
    """The full_ws rule of DESIGN.md: keep the window inside the frame."""
    lo, hi = float(radius), float(size - 1 - radius)
    if lo > hi:
        lo = hi = (size - 1) / 2
    return c.clamp(lo, hi)


def rebuild_pair(
    noisy: Tensor,
    clean: Tensor,
    offsets: Tensor | None,
    *,
    ws: int,
    ps: int,
    backend: str,
) -> tuple[Tensor, Tensor]:
    """Top-1 search of frame 1 in frame 0 of a 2-frame clip, then the fold of clean patches.

    Args:
        noisy: (1, 2, C, H, W) searched frames [t, t+wt].
        clean: (1, 2, C, H, W) the same frames, clean.
        offsets: (1, 2, 1, 2, H, W) or None.

    Returns:
        the rebuilt query frame (C, H, W) and the matches (1, 1, 2, H, W, 1, 3).
    """
    from snl_cli.search import patch_sum, shifted_nls

    keys = torch.cat([noisy[:, :1], torch.full_like(noisy[:, 1:], _FAR)], 1)
    _, inds = shifted_nls(
        noisy, keys, offsets, ws=ws, wt=1, ps=ps, topk=1, full_ws=True, backend=backend
    )
    weights = torch.ones(inds.shape[:-1], dtype=clean.dtype, device=clean.device)
    rebuilt = patch_sum(clean, weights, inds, ps=ps, backend=backend)
    return rebuilt[0, 1], inds


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, 1000 * (time.perf_counter() - start)


def _align_pair(
    noisy: Tensor,
    clean: Tensor,
    offsets: Tensor,
    methods: Sequence[str],
    ws: int,
    params: AlignParams,
) -> _PairResult:
    """PSNR, border share and time of each method on one 2-frame clip."""
    result = _PairResult({}, {}, {})
    for method in methods:
        window = ws if method in WINDOWED else 1
        shift = offsets if method in ("flow", "shifted_nls") else None
        (rebuilt, inds), ms = _timed(
            lambda w=window, s=shift: rebuild_pair(
                noisy, clean, s, ws=w, ps=params.ps, backend=params.backend
            )
        )
        result.psnr[method] = psnr_tensor(rebuilt, clean[0, 1])
        result.ms[method] = ms
        if method in WINDOWED:
            result.border[method] = _border_share(inds, shift, ws)
    return result


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def _summarise(results: list[_PairResult], methods: Sequence[str]) -> dict[str, Any]:
    return {
        "summary": {m: _mean([r.psnr[m] for r in results]) for m in methods},
        "border_hits": {m: _mean([r.border[m] for r in results]) for m in methods if m in WINDOWED},
        "time_ms": {m: _mean([r.ms[m] for r in results]) for m in methods},
    }


def border_chance(ws: int) -> float:
    """Share of a ws×ws window's cells on its border: what matches scattered by noise hit."""
    return 1.0 - max(ws - 2, 0) ** 2 / ws**2


def verdict(
    summary: dict[str, float], border_hits: dict[str, float], ws: int, motion_p90: float
) -> str:
    """One line a person can act on: the gain of shifted_nls and whether ws is too small.

    A border share means something only against `border_chance` (noise alone scatters top-1
    matches over the window: 40% land on the border of a 9×9 window), so the line speaks
    of the motion (flow p90 against the window radius) and of a border share well above
    chance.
    """
    gain_flow = summary["shifted_nls"] - summary["flow"]
    gain_nls = summary["shifted_nls"] - summary["nls"]
    best = max(METHODS, key=lambda m: summary[m])
    line = (
        f"best: {best}; shifted_nls is {gain_flow:+.2f} dB over flow and "
        f"{gain_nls:+.2f} dB over nls at ws={ws}"
    )
    if gain_nls < 0:
        line += "; nls beats shifted_nls: the flow misleads the search on this clip"
    elif motion_p90 > ws // 2:
        line += f"; flow p90 {motion_p90:.1f} px > window radius {ws // 2}: nls misses that motion"
    chance = border_chance(ws)
    shifted = border_hits.get("shifted_nls", 0.0)
    if shifted > max(0.2, 1.2 * chance):
        line += (
            f"; {100 * shifted:.0f}% of shifted_nls matches on the window border "
            f"(chance {100 * chance:.0f}%): try a larger ws"
        )
    return line


def align_clip(
    video: Tensor,
    params: AlignParams | None = None,
    *,
    first_frame: int = 0,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Alignment report of a clean clip: per pair and per method PSNR, border hits, times.

    Args:
        video: clean frames (T, C, H, W) float in [0, 1], T >= wt + 1.
        params: options (ws, wt, ps, sigma, seed, sweep_ws, backend).
        first_frame: number of video[0] in the source clip (pairs are reported with it).
        progress: called with 1 after each pair.

    Returns:
        {
          "pairs": [{"t", "identity", "flow", "nls", "shifted_nls"}, ...]: PSNR (dB) of
              frame t+wt rebuilt from frame t,
          "summary": {method: mean dB},
          "border_hits": {"nls", "shifted_nls": share of top-1 matches on the window
              border}, "border_chance": the share that noise alone gives,
          "flow_magnitude": {"p50", "p90", "p99"}: px, flow from frame t+wt to t,
          "time_ms": {method: mean per pair, "flow_estimate": one frame pair's flow},
          "sweep": [{"ws", "nls", "shifted_nls", "border_nls", ...}] (with sweep_ws),
          "params": {...}, "verdict": one line,
        }

    Raises:
        UsageError: bad parameters. InputError: too few frames.
    """
    from snl_cli.flow import estimate_flows, flow_magnitude_percentiles

    params = params or AlignParams()
    params.check()
    if video.dim() != 4 or video.shape[0] < params.wt + 1:
        raise InputError(
            f"need at least {params.wt + 1} frames to align frame t+{params.wt} with "
            f"frame t, got video of shape {tuple(video.shape)}"
        )
    video = video.float()
    noisy = add_noise(video, params.sigma, params.seed)
    (fflow, bflow), flow_ms = _timed(lambda: estimate_flows(noisy))
    pairs, results, sweeps, motion = [], [], {ws: [] for ws in params.sweep_ws}, []
    for t in range(video.shape[0] - params.wt):
        idx = [t, t + params.wt]
        offsets = _pair_offsets(fflow, bflow, t, params.wt, params.backend)
        motion.append(offsets[0, 1, 0])
        pair_noisy, pair_clean = noisy[idx][None], video[idx][None]
        result = _align_pair(pair_noisy, pair_clean, offsets, METHODS, params.ws, params)
        results.append(result)
        pairs.append({"t": first_frame + t, **result.psnr})
        for ws in params.sweep_ws:
            sweeps[ws].append(_align_pair(pair_noisy, pair_clean, offsets, WINDOWED, ws, params))
        if progress is not None:
            progress(1)
    report: dict[str, Any] = {"pairs": pairs, **_summarise(results, METHODS)}
    report["time_ms"]["flow_estimate"] = flow_ms / max(1, 2 * (video.shape[0] - 1))
    report["flow_magnitude"] = flow_magnitude_percentiles(torch.stack(motion))
    report["sweep"] = [_sweep_row(ws, sweeps[ws]) for ws in params.sweep_ws]
    report["params"] = {
        "ws": params.ws, "wt": params.wt, "ps": params.ps, "sigma": params.sigma,
        "seed": params.seed, "topk": 1, "backend": params.backend,
        "frames": [first_frame, first_frame + video.shape[0]],
    }  # fmt: skip
    report["border_chance"] = border_chance(params.ws)
    report["verdict"] = verdict(
        report["summary"], report["border_hits"], params.ws, report["flow_magnitude"]["p90"]
    )
    return report


def _sweep_row(ws: int, results: list[_PairResult]) -> dict[str, float]:
    summary = _summarise(results, WINDOWED)
    return {
        "ws": ws,
        "border_chance": border_chance(ws),
        **summary["summary"],
        **{f"border_{m}": v for m, v in summary["border_hits"].items()},
        **{f"ms_{m}": v for m, v in summary["time_ms"].items()},
    }


def align_file(
    path: Path,
    params: AlignParams | None = None,
    *,
    frames: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """`align_clip` on a video file or frame folder; see it for the report.

    Args:
        path: video file or folder of frames.
        params: options.
        frames: "A:B" range of frame numbers (stop exclusive), None for all.
        progress: called with 1 after each pair.

    Raises:
        InputError: unreadable input, frames under 16x16, range outside the clip, too few
            frames.
        UsageError: bad options.
    """
    from snl_cli.video import probe, read_frames
    from snl_cli.video.plan import check_frame_size

    params = params or AlignParams()
    params.check()
    start, stop = parse_frames(frames)
    info = probe(path)
    check_frame_size(info)  # the optical flow and the search need room, as in denoise
    first, last = check_range(start, stop, _frame_count(info), params.wt, path)
    clip = read_frames(path, start=first, stop=last)
    rgb = [torch.from_numpy(frame.rgb).permute(2, 0, 1) for frame in clip]
    if not rgb and first > 0:
        raise InputError(f"frame range starts at {first}, after the end of the clip", path)
    _check_length(len(rgb), params.wt, path)
    report = align_clip(torch.stack(rgb), params, first_frame=first, progress=progress)
    report["input"] = str(path)
    return report


def _frame_count(info: Any) -> int | None:
    count = getattr(info, "frames", None)
    return count if isinstance(count, int) and count > 0 else None
