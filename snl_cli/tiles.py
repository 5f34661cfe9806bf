"""Frames cut into overlapping tiles, denoised tile by tile and blended back.

A tile is given as a square side or (height, width), halo included: each tile's core is
read with the denoiser's `halo` of extra context on every inner side, and neighbouring
cores overlap by at least `halo` pixels, over which their outputs are blended with linear
ramps (weights that sum to one), so tile borders do not show.

Two ways to run tiles: `denoise_tiled` on a window of frames (the chunk loop), and
`TiledStream`, one frame stream per tile fed in lockstep (the streamed loop), so that a
frame larger than a stream's memory budget (`stream_tile`) still goes one frame at a time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from snl_cli.denoisers import Denoiser, FrameStream

MIN_TILE = 64
Tile = int | tuple[int, int]  # a square tile's side, or (height, width), halo included
# A stream's footprint grows with the frame (`stream_bytes_per_pixel`; 2.4-2.6 GB peak at
# 1920x1080): frames up to STREAM_WHOLE_PIXELS (1920x1080 and a little more) stream whole,
# larger ones in tiles of at most STREAM_TILE_PIXELS, halo included (3840x2160: 2x3)
STREAM_WHOLE_PIXELS = 2560 * 1088
STREAM_TILE_PIXELS = 1_600_000


def tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Start positions of tiles of `tile` pixels covering `size` with at least `overlap`."""
    if tile >= size:
        return [0]
    step = max(1, tile - overlap)
    count = math.ceil((size - tile) / step) + 1
    return [round(i * (size - tile) / (count - 1)) for i in range(count)]


def axis_cores(size: int, core: int, overlap: int) -> tuple[list[int], int]:
    """(starts, length) of the tile cores along an axis of `size` pixels: as few cores of at
    most `core` pixels as cover it overlapping by at least `overlap`, each shrunk to share it
    evenly (a 1080-pixel axis in cores of at most 960 gets two of ~556, not two of 960)."""
    count = len(tile_starts(size, core, overlap))
    if count == 1:
        return [0], min(core, size)
    length = min(core, math.ceil((size + (count - 1) * overlap) / count))
    return tile_starts(size, length, overlap), length


def axis_ramp(start: int, length: int, total: int, fade: int) -> Tensor:
    """1-D blend weight (length,) of a tile's core along one axis of `total` pixels: ramps
    in over `fade` pixels at its inner edges."""
    pos = torch.arange(length, dtype=torch.float32)
    weight = torch.ones(length)
    if fade > 0:
        if start > 0:
            weight = torch.minimum(weight, (pos + 0.5) / fade)
        if start + length < total:
            weight = torch.minimum(weight, (length - pos - 0.5) / fade)
    return weight


def tile_shape(tile: Tile) -> tuple[int, int]:
    """(height, width) of a tile given as a square side or as (height, width)."""
    return (tile, tile) if isinstance(tile, int) else (int(tile[0]), int(tile[1]))


def tile_summary(tile: Tile, height: int, width: int) -> int | str | None:
    """What a summary says about tiles: None when one tile holds the frame, the side of a
    square tile, or "HxW"."""
    th, tw = tile_shape(tile)
    if th >= height and tw >= width:
        return None
    return th if th == tw else f"{th}x{tw}"


@dataclass(frozen=True)
class TilePiece:
    """One tile of a frame: its core [y, y+h) x [x, x+w), read with its halo as
    [y0, y1) x [x0, x1), and the core's blend weight (h, w)."""

    y: int
    x: int
    h: int
    w: int
    y0: int
    y1: int
    x0: int
    x1: int
    weight: Tensor

    def core(self, piece: Tensor) -> Tensor:
        """The core of a denoised piece (..., y1-y0, x1-x0) -> (..., h, w)."""
        return piece[..., self.y - self.y0 : self.y - self.y0 + self.h,
                     self.x - self.x0 : self.x - self.x0 + self.w]  # fmt: skip

    def touches(self, region: tuple[int, int, int, int]) -> bool:
        """Whether the core meets `region` (y0, y1, x0, x1)."""
        y0, y1, x0, x1 = region
        return self.y < y1 and y0 < self.y + self.h and self.x < x1 and x0 < self.x + self.w


def tile_grid(height: int, width: int, tile: Tile, halo: int) -> list[TilePiece]:
    """The tiles of a height x width frame, in row-major order (one when it fits a tile)."""
    tile_h, tile_w = tile_shape(tile)
    if tile_h >= height and tile_w >= width:
        return [TilePiece(0, 0, height, width, 0, height, 0, width, torch.ones(height, width))]
    fade = max(1, halo)
    rows, h = axis_cores(height, max(MIN_TILE, tile_h - 2 * halo), fade)
    cols, w = axis_cores(width, max(MIN_TILE, tile_w - 2 * halo), fade)
    pieces = []
    for y in rows:
        for x in cols:
            weight = axis_ramp(y, h, height, fade).view(-1, 1) * axis_ramp(x, w, width, fade)
            y0, y1 = max(0, y - halo), min(height, y + h + halo)
            x0, x1 = max(0, x - halo), min(width, x + w + halo)
            pieces.append(TilePiece(y, x, h, w, y0, y1, x0, x1, weight))
    return pieces


def denoise_tiled(
    denoiser: Denoiser,
    clip: Tensor,
    sigma: float,
    tile: Tile,
    region: tuple[int, int, int, int] | None = None,
) -> Tensor:
    """Run `denoiser` on (T, 3, H, W) in overlapping tiles of at most `tile` pixels a side,
    halo included (see the module docstring).

    With `region` (y0, y1, x0, x1) only the tiles that touch it run: its pixels come out
    exactly as in a whole run, the pixels no tile covered are 0.

    Returns:
        (T, 3, H, W) float32 on the CPU.
    """
    T, C, H, W = clip.shape
    device = denoiser.device
    grid = tile_grid(H, W, tile, denoiser.halo)
    if len(grid) == 1:
        return denoiser(clip.to(device), sigma).float().cpu()
    out = torch.zeros(T, C, H, W)
    total = torch.zeros(1, 1, H, W)
    for p in grid:
        if region is not None and not p.touches(region):
            continue
        piece = denoiser(clip[:, :, p.y0 : p.y1, p.x0 : p.x1].to(device), sigma).float().cpu()
        out[:, :, p.y : p.y + p.h, p.x : p.x + p.w] += p.core(piece) * p.weight
        total[:, :, p.y : p.y + p.h, p.x : p.x + p.w] += p.weight
    if region is not None:
        return torch.where(total > 0, out / total.clamp_min(1e-30), 0.0)
    return out.div_(total)  # in place: a second frame-sized copy of the window would not fit


def stream_tile(height: int, width: int, halo: int, pixels: int = STREAM_TILE_PIXELS) -> Tile:
    """The tile a streamed run cuts a height x width frame into: the whole frame up to
    STREAM_WHOLE_PIXELS, else the fewest tiles (then the squarest) of at most `pixels` each,
    halo included."""
    if height * width <= max(pixels, STREAM_WHOLE_PIXELS):
        return max(height, width)
    best: tuple[tuple[int, float], Tile] | None = None
    for rows in range(1, height // MIN_TILE + 1):
        tile_h = _split(height, rows, halo)
        cols = 1
        while cols <= width // MIN_TILE:
            tile_w = _split(width, cols, halo)
            if tile_h * tile_w <= pixels:
                key = (len(tile_grid(height, width, (tile_h, tile_w), halo)),
                       abs(math.log(tile_h / tile_w)))  # fmt: skip
                if best is None or key < best[0]:
                    best = (key, (tile_h, tile_w))
                break
            cols += 1
    return best[1] if best else MIN_TILE + 2 * halo


def _split(size: int, parts: int, halo: int) -> int:
    """The tile side (halo included) that cuts `size` into `parts` tiles overlapping by halo."""
    if parts == 1:
        return size
    return max(MIN_TILE, math.ceil((size + (parts - 1) * max(1, halo)) / parts)) + 2 * halo


class TiledStream:
    """A frame stream over tiles: each tile of every pushed frame goes to its own stream
    (made by `make`), and the tiles' outputs, which come out in lockstep, are blended into
    whole frames. With one tile it is that tile's stream.

    Shape:
        push(frame (3, H, W)) and close() -> the completed outputs (3, H, W) in order, None
        where the streams computed none (out of a focus).
    """

    def __init__(
        self,
        make: Callable[[], FrameStream],
        height: int,
        width: int,
        tile: Tile,
        halo: int,
        region: tuple[int, int, int, int] | None = None,
    ) -> None:
        """`region` (y0, y1, x0, x1): only the tiles that touch it run; its pixels come out
        as in a whole run, the pixels no tile covered are 0."""
        grid = tile_grid(height, width, tile, halo)
        self.whole = len(grid) == 1  # the stream's outputs are the frames
        self.grid = [p for p in grid if region is None or self.whole or p.touches(region)]
        self.streams = [make() for _ in self.grid]
        self.shape = (height, width)
        total = torch.zeros(height, width)
        for p in self.grid:
            total[p.y : p.y + p.h, p.x : p.x + p.w] += p.weight
        self.total = total.clamp_min(1e-30)  # 0 only where no tile runs, and the sums are 0

    def push(self, frame: Tensor) -> list[Tensor | None]:
        return self._blend(s.push(frame[:, p.y0 : p.y1, p.x0 : p.x1])
                           for p, s in zip(self.grid, self.streams, strict=True))  # fmt: skip

    def close(self) -> list[Tensor | None]:
        return self._blend(s.close() for s in self.streams)

    def _blend(self, outputs: Iterator[list[Tensor | None]]) -> list[Tensor | None]:
        """Whole frames from the tiles' outputs of one push (one list per tile)."""
        if self.whole:
            return next(outputs)
        frames: list[Tensor | None] | None = None
        for p, outs in zip(self.grid, outputs, strict=True):
            if frames is None:
                frames = [None if o is None else torch.zeros(3, *self.shape) for o in outs]
            if len(outs) != len(frames):
                raise RuntimeError("tile streams fell out of step")
            for frame, out in zip(frames, outs, strict=True):
                if frame is not None and out is not None:
                    frame[:, p.y : p.y + p.h, p.x : p.x + p.w] += p.core(out) * p.weight
        return [None if f is None else f.div_(self.total) for f in frames or []]
