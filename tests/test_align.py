"""snl_cli.align on a synthetic clip with a known integer motion."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from snl_cli.align import (
    AlignParams,
    align_clip,
    check_range,
    parse_frames,
    rebuild_pair,
)
from snl_cli.errors import InputError, UsageError
from snl_cli.metrics import psnr_tensor

BACKEND = "torch"  # the reference: every backend agrees with it, and these frames are tiny

SHIFT = (2, -3)  # content moves by (dy, dx) per frame
H, W = 24, 32
MARGIN = 6  # interior rows/cols away from the edges where new content enters


def moving_clip(frames: int = 3, shift: tuple[int, int] = SHIFT, seed: int = 0) -> torch.Tensor:
    """(T, 3, H, W) windows of a smooth random texture; frame t+1(y, x) = frame t(y-2, x+3)."""
    gen = torch.Generator().manual_seed(seed)
    pad = 4 * frames
    big = F.avg_pool2d(torch.rand(1, 3, H + 2 * pad, W + 2 * pad, generator=gen), 3, 1, 1)[0]
    crops = []
    for t in range(frames):
        y0, x0 = pad - shift[0] * t, pad - shift[1] * t
        crops.append(big[:, y0 : y0 + H, x0 : x0 + W])
    return torch.stack(crops)


def true_offsets(shift: tuple[int, int] = SHIFT) -> torch.Tensor:
    """Offsets (1, 2, 1, 2, H, W) of the 2-frame search clip: from frame 1 back to frame 0."""
    offsets = torch.zeros(1, 2, 1, 2, H, W)
    offsets[0, 1, 0, 0] = -shift[0]
    offsets[0, 1, 0, 1] = -shift[1]
    return offsets


def interior(x: torch.Tensor) -> torch.Tensor:
    return x[..., MARGIN:-MARGIN, MARGIN:-MARGIN]


@pytest.mark.parametrize(
    ("ws", "offsets"),
    [(3, "true"), (1, "true"), (7, None)],
    ids=["shifted_nls-ws3", "flow-ws1", "nls-ws7"],
)
def test_search_recovers_the_exact_shift(ws: int, offsets: str | None) -> None:
    clip = moving_clip(frames=2)[None]
    noisy = clip + 0.02 * torch.randn(clip.shape, generator=torch.Generator().manual_seed(1))
    shift = true_offsets() if offsets else None
    rebuilt, inds = rebuild_pair(noisy, clip, shift, ws=ws, ps=3, backend=BACKEND)
    match = inds[0, 0, 1, :, :, 0]  # the query frame's top-1, (H, W, 3)
    ys = torch.arange(H, dtype=match.dtype).view(H, 1).expand(H, W)
    xs = torch.arange(W, dtype=match.dtype).view(1, W).expand(H, W)
    assert (interior(match[..., 0]) == 0).all()
    assert (interior(match[..., 1] - ys) == -SHIFT[0]).all()
    assert (interior(match[..., 2] - xs) == -SHIFT[1]).all()
    assert psnr_tensor(interior(rebuilt), interior(clip[0, 1])) > 60


def test_nls_with_a_small_window_cannot_reach_the_motion() -> None:
    clip = moving_clip(frames=2)[None]
    rebuilt, _ = rebuild_pair(clip, clip, None, ws=3, ps=3, backend=BACKEND)
    assert psnr_tensor(interior(rebuilt), interior(clip[0, 1])) < 35


def test_report_ranks_the_methods_and_has_the_documented_shape() -> None:
    params = AlignParams(ws=3, sigma=0.0, backend=BACKEND, sweep_ws=(3, 7))
    report = align_clip(moving_clip(frames=2), params, first_frame=5)
    assert [p["t"] for p in report["pairs"]] == [5]
    for pair in report["pairs"]:
        assert set(pair) == {"t", "identity", "flow", "nls", "shifted_nls"}
    summary = report["summary"]
    assert set(summary) == {"identity", "flow", "nls", "shifted_nls"}
    # ws 3 cannot reach a 3-pixel motion; centred on the flow it can
    assert summary["shifted_nls"] > summary["nls"] + 5
    assert summary["shifted_nls"] >= summary["flow"]
    assert summary["identity"] < min(summary["flow"], summary["nls"])
    assert report["border_chance"] == pytest.approx(8 / 9)
    assert report["border_hits"]["nls"] > 0.95  # every nls match presses on the border
    assert report["border_hits"]["shifted_nls"] < 0.5  # far below what noise gives
    assert report["flow_magnitude"]["p50"] == pytest.approx(13**0.5, abs=0.3)
    assert [row["ws"] for row in report["sweep"]] == [3, 7]
    assert report["sweep"][1]["nls"] > report["sweep"][0]["nls"] + 5  # ws 7 reaches it
    assert report["params"]["frames"] == [5, 7]
    assert "nls misses that motion" in report["verdict"]


def test_flow_method_is_accurate_on_the_shift() -> None:
    report = align_clip(moving_clip(frames=2), AlignParams(ws=1, sigma=0.0, backend=BACKEND))
    assert report["summary"]["flow"] > report["summary"]["identity"] + 8


def test_frame_distance_wt_chains_the_flows() -> None:
    report = align_clip(moving_clip(frames=3), AlignParams(ws=3, wt=2, sigma=0, backend=BACKEND))
    assert len(report["pairs"]) == 1  # only (0, 2)
    # a (4, -6) motion: out of reach of ws 3 unless centred on the chained flow (new content
    # entering at the edges is ~40% of this tiny frame, so the gap is smaller than at wt 1)
    assert report["summary"]["shifted_nls"] > report["summary"]["nls"] + 2


@pytest.mark.parametrize(
    ("params", "match"),
    [
        (AlignParams(ws=4), "--ws must be an odd"),
        (AlignParams(ps=0), "--ps must be an odd"),
        (AlignParams(wt=0), "--wt must be"),
        (AlignParams(sigma=-1), "--sigma"),
        (AlignParams(sweep_ws=(3, 6)), "--sweep-ws"),
    ],
)
def test_bad_parameters_are_usage_errors(params: AlignParams, match: str) -> None:
    with pytest.raises(UsageError, match=match):
        align_clip(moving_clip(frames=2), params)


def test_one_frame_is_not_enough() -> None:
    with pytest.raises(InputError, match="at least 2 frames"):
        align_clip(moving_clip(frames=1), AlignParams(backend=BACKEND))


def test_frame_ranges() -> None:
    assert parse_frames(None) == (None, None)
    assert parse_frames("2:7") == (2, 7)
    assert parse_frames("3:") == (3, None)
    for bad in ("a:b", "1:2:3", "-1:4", "5", "6:2"):
        with pytest.raises(UsageError, match="--frames"):
            parse_frames(bad)
    assert check_range(2, None, 10, 1, "clip") == (2, 10)
    with pytest.raises(InputError, match="outside the clip"):
        check_range(0, 12, 10, 1, "clip")
    with pytest.raises(InputError, match="at least 2 frames"):
        check_range(4, 5, 10, 1, "clip")
