"""snl_cli.flow: convention, accuracy on a known translation, helpers, bad input."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from snl_cli.flow import (
    estimate_flows,
    flow_magnitude_percentiles,
    pair_flow,
    resize_flows,
)

SHIFT = (2, -3)  # (dy, dx) per frame
INNER = (slice(None), slice(None), slice(16, -16), slice(16, -16))


def shifted_clip(frames: int = 4, shift: tuple[int, int] = SHIFT, seed: int = 0) -> torch.Tensor:
    """(T, 3, 96, 128) smooth random texture moving by `shift` pixels per frame (wrapping)."""
    gen = torch.Generator().manual_seed(seed)
    base = F.avg_pool2d(torch.rand(1, 3, 96, 128, generator=gen), 3, 1, 1)
    return torch.cat([base.roll((shift[0] * t, shift[1] * t), (2, 3)) for t in range(frames)])


@pytest.mark.parametrize("method", ["dis", "farneback"])
def test_recovers_a_known_translation(method: str) -> None:
    fflow, bflow = estimate_flows(shifted_clip(), method=method)
    want = torch.tensor(SHIFT, dtype=torch.float32).view(1, 2, 1, 1)
    assert (fflow[:-1][INNER] - want).abs().median() < 0.1
    assert (bflow[1:][INNER] + want).abs().median() < 0.1


def test_downscaled_estimate_is_returned_at_full_size_in_full_size_pixels() -> None:
    shift = (4, -6)  # even, so that the half-size frames move by whole pixels too
    fflow, bflow = estimate_flows(shifted_clip(shift=shift), downscale=2)
    assert fflow.shape == (4, 2, 96, 128)
    want = torch.tensor(shift, dtype=torch.float32).view(1, 2, 1, 1)
    assert (fflow[:-1][INNER] - want).abs().median() < 0.25
    assert (bflow[1:][INNER] + want).abs().median() < 0.25
    with pytest.raises(ValueError, match="downscale"):
        estimate_flows(shifted_clip(), downscale=0)


def test_downscale_stops_at_the_smallest_size_dis_can_take() -> None:
    """96 px frames shrink by 6 at most (16 px), not to zero flow: asking for 16 gives 6."""
    clip = shifted_clip(shift=(6, -6))
    capped = estimate_flows(clip, downscale=16)
    torch.testing.assert_close(capped, estimate_flows(clip, downscale=6), rtol=0, atol=0)
    assert capped[0][:-1][INNER].abs().median() > 3  # a real flow, not the zero fallback


def test_convention_ends_are_zero_and_shapes_follow_the_input() -> None:
    video = shifted_clip(frames=3)
    fflow, bflow = estimate_flows(video)
    assert fflow.shape == bflow.shape == (3, 2, 96, 128)
    assert fflow.dtype == torch.float32
    assert not fflow[-1].any() and not bflow[0].any()
    assert fflow[0].abs().sum() > 0 and bflow[-1].abs().sum() > 0


def test_batched_input_gives_batched_flows_per_clip() -> None:
    clip = shifted_clip(frames=3)
    fflow, _ = estimate_flows(torch.stack([clip, clip.flip(0)]))
    assert fflow.shape == (2, 3, 2, 96, 128)
    single, _ = estimate_flows(clip)
    torch.testing.assert_close(fflow[0], single)
    # the reversed clip moves the other way
    assert fflow[1, 0][INNER[1:]].mean((1, 2)).sign().tolist() == [-1.0, 1.0]


def test_grey_input_and_zero_method() -> None:
    grey = shifted_clip(frames=2).mean(1, keepdim=True)
    fflow, _ = estimate_flows(grey)
    assert fflow[0][INNER[1:]].mean((1, 2)).round().tolist() == list(map(float, SHIFT))
    zero_f, zero_b = estimate_flows(grey, method="zero")
    assert not zero_f.any() and not zero_b.any()


def test_pair_flow_matches_the_clip_flows() -> None:
    video = shifted_clip(frames=2)
    _, bflow = estimate_flows(video)
    torch.testing.assert_close(pair_flow(video[1], video[0]), bflow[1])


@pytest.mark.parametrize(
    ("shape", "method", "match"),
    [
        ((2, 96, 128), "dis", "video: expected"),
        ((2, 2, 96, 128), "dis", "C = 1 or 3"),
        ((2, 3, 96, 128), "tvl1", "method: expected one of"),
    ],
)
def test_bad_input_names_the_argument(shape: tuple[int, ...], method: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        estimate_flows(torch.zeros(shape), method=method)


def test_resize_flows_rescales_values() -> None:
    flow = torch.stack([torch.full((8, 12), 2.0), torch.full((8, 12), -3.0)])[None]
    small = resize_flows(flow, (4, 3))
    assert small.shape == (1, 2, 4, 3)
    torch.testing.assert_close(small[0, :, 0, 0], torch.tensor([1.0, -0.75]))


def test_magnitude_percentiles() -> None:
    flow = torch.zeros(2, 10, 10)
    flow[0] = 3.0
    flow[1] = 4.0
    flow[:, :, :5] = 0.0  # half still, half moving by 5 px
    stats = flow_magnitude_percentiles(flow, (25, 75, 100))
    assert stats == pytest.approx({"p25": 0.0, "p75": 5.0, "p100": 5.0})
