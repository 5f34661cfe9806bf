"""Tests for snl_cli/tiles.py: a stream per tile (`TiledStream`) against the tiled window
(`denoise_tiled`), the region a preview asks for, and the tiles a streamed run picks."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from snl_cli.tiles import (
    STREAM_TILE_PIXELS,
    STREAM_WHOLE_PIXELS,
    TiledStream,
    axis_cores,
    denoise_tiled,
    stream_tile,
    tile_grid,
)

CPU = torch.device("cpu")


class Blur:
    """Mean of frames t-1..t+1 (sliding at the ends), then a 3x3 box blur, zero padded: its
    output depends on the neighbours in time and on the tile's edges."""

    name, context, halo, bytes_per_pixel, device = "blur", 1, 4, 64, CPU

    def __call__(self, clip: torch.Tensor, sigma: float) -> torch.Tensor:
        T = clip.shape[0]
        if T >= 3:
            starts = torch.arange(T).sub(1).clamp(0, T - 3)
            clip = (clip[starts] + clip[starts + 1] + clip[starts + 2]) / 3
        return F.avg_pool2d(F.pad(clip, (1, 1, 1, 1)), 3, stride=1)


class BlurStream:
    """`Blur` one frame at a time, written independently of it: each output once the next
    frame is in (or at the end)."""

    def __init__(self, made: list) -> None:
        self.frames: list[torch.Tensor] = []
        self.out = 0
        made.append(self)

    def _output(self, t: int) -> torch.Tensor:
        T = len(self.frames)
        s = min(max(t - 1, 0), max(T - 3, 0)) if T >= 3 else None
        frame = self.frames[t] if s is None else sum(self.frames[s : s + 3]) / 3
        return F.avg_pool2d(F.pad(frame[None], (1, 1, 1, 1)), 3, stride=1)[0]

    def push(self, frame: torch.Tensor) -> list:
        self.frames.append(frame.clone())
        return []  # whether t-1 slides depends on the clip's length: wait for close

    def close(self) -> list:
        return [self._output(t) for t in range(len(self.frames))]


@pytest.mark.parametrize("tile", [200, 64, (40, 100), (100, 30)])
def test_a_stream_per_tile_writes_what_the_tiled_window_writes(tile) -> None:
    torch.manual_seed(0)
    clip = torch.rand(5, 3, 70, 90)
    made: list = []
    tiled = TiledStream(lambda: BlurStream(made), 70, 90, tile, Blur.halo)
    outs = [o for frame in clip for o in tiled.push(frame)] + tiled.close()
    assert len(made) == len(tile_grid(70, 90, tile, Blur.halo))
    torch.testing.assert_close(torch.stack(outs), denoise_tiled(Blur(), clip, 0.0, tile))
    # and the tiles do not show: the whole frame's blur, to float precision
    torch.testing.assert_close(torch.stack(outs), Blur()(clip, 0.0), atol=1e-6, rtol=0)


def test_a_region_runs_only_the_tiles_that_touch_it() -> None:
    torch.manual_seed(1)
    clip = torch.rand(4, 3, 64, 120)
    region = (10, 30, 5, 25)  # y0, y1, x0, x1: inside the first tile's core
    made: list = []
    tiled = TiledStream(lambda: BlurStream(made), 64, 120, 48, Blur.halo, region)
    outs = torch.stack([o for frame in clip for o in tiled.push(frame)] + tiled.close())
    assert 1 == len(made) < len(tile_grid(64, 120, 48, Blur.halo))
    whole = denoise_tiled(Blur(), clip, 0.0, 48)
    torch.testing.assert_close(outs[..., 10:30, 5:25], whole[..., 10:30, 5:25])
    assert outs[..., :, 64:].abs().max() == 0  # no tile ran there (the first core: 0-64)


@pytest.mark.parametrize(("height", "width"), [(1080, 1920), (2160, 3840), (4320, 7680)])
def test_stream_tile_cuts_only_frames_over_the_budget(height: int, width: int) -> None:
    halo = 32
    tile = stream_tile(height, width, halo)
    grid = tile_grid(height, width, tile, halo)
    if height * width <= STREAM_WHOLE_PIXELS:
        assert len(grid) == 1
        return
    assert all((p.y1 - p.y0) * (p.x1 - p.x0) <= STREAM_TILE_PIXELS for p in grid)
    # a few tiles, each nearly as large as allowed (halos and overlaps aside)
    assert len(grid) <= 1.5 * height * width / STREAM_TILE_PIXELS
    if height == 2160:
        assert len(grid) == 6


@pytest.mark.parametrize(
    ("size", "core", "overlap"), [(1080, 960, 32), (1920, 960, 32), (100, 40, 8), (37, 64, 4)]
)
def test_axis_cores_cover_with_the_fewest_even_cores(size: int, core: int, overlap: int) -> None:
    starts, length = axis_cores(size, core, overlap)
    count = len(starts)
    # the fewest cores of at most `core` that can cover the axis overlapping by `overlap`
    assert length <= core and count == max(1, math.ceil((size - overlap) / (core - overlap)))
    covered = np.zeros(size, int)
    for a in starts:
        covered[a : a + length] += 1
    assert covered.min() >= 1 and starts[-1] + length == size
    for a, b in itertools.pairwise(starts):
        assert overlap <= a + length - b <= overlap + 2  # shared evenly: no wider than needed


def test_a_frame_just_over_the_tile_is_cut_in_halves_not_in_overlapping_tiles() -> None:
    # 1080 rows in tiles of at most 1024: two tiles of ~1080/2 plus halos, not two of 1024
    grid = tile_grid(1080, 1920, 1024, 32)
    computed = sum((p.y1 - p.y0) * (p.x1 - p.x0) for p in grid)
    assert len(grid) == 2 * 3
    assert computed < 1.3 * 1080 * 1920
