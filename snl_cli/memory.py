"""How much memory a denoising run may use, and the tile that fits it.

`auto_tile` picks the tile a run of chunk windows cuts its frames into so that the denoiser's
working set fits `work_budget`; `stream_footprint` and `estimate_peak` predict a run's peak
resident memory from numbers measured on this machine (README, Limitations).
"""

from __future__ import annotations

import os

import torch

from snl_cli.defaults import WORK_BUDGET
from snl_cli.denoisers import Denoiser
from snl_cli.tiles import MIN_TILE, Tile, axis_cores, tile_grid

MEMORY_SHARE = 0.5  # of the memory available when the run starts, for auto tiles
# Resident memory of a CPU run besides the denoiser's working set, measured with
# `/usr/bin/time -v snl denoise` and psutil (see README, Limitations): ~330-360 MB before the
# first window (Python, torch, PyAV, OpenCV, numba, the model), and per pixel of each frame
# of a window 35 B at 960x540 (41.5 tiled): the frames held (float32 RGB), the window's copy
# for the denoiser, its output and the blend sums.
RESIDENT_BASE = 400 << 20
PIPELINE_BYTES_PER_PIXEL = 40
# A streamed run takes its buffers from a pooled heap (`heap.pooled_heap`: 1.6x faster at
# 960x540, 1.5x at 1920x1080) when its footprint then stays small: it grows to ~1600 bytes
# per pixel of a frame besides the process (1.26 GB peak at 960x540, 3.7 GB at 1920x1080,
# against 0.97 and 2.6 GB with each buffer its own mmap).
POOLED_BYTES_PER_PIXEL = 1600
POOL_BUDGET = 3 << 29  # 1.5 GiB: frames up to ~1 megapixel (1280x720)


def fits_pooled_heap(pixels: int) -> bool:
    """Whether a streamed run on frames of `pixels` pixels takes its buffers from the pooled
    heap (`heap.pooled_heap`): when its footprint there stays under POOL_BUDGET."""
    return pixels * POOLED_BYTES_PER_PIXEL <= POOL_BUDGET


def available_memory(device: torch.device) -> int:
    """Bytes that can be allocated now on `device` (free GPU memory, or available RAM)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 4 << 30


def work_budget(denoiser: Denoiser, frames: int, height: int, width: int) -> int:
    """Bytes the denoiser's working set may take with windows of `frames` frames: WORK_BUDGET
    (see `snl_cli.defaults`), less when MEMORY_SHARE of the memory available now cannot hold
    it besides the process and the window's frame-sized buffers (never under 1/8 of it); on
    CUDA, MEMORY_SHARE of the free GPU memory."""
    share = int(MEMORY_SHARE * available_memory(denoiser.device))
    if denoiser.device.type == "cuda":
        return share
    left = share - estimate_peak(denoiser, frames, height, width, 0)
    return max(min(WORK_BUDGET, left), WORK_BUDGET // 8)


def estimate_peak(denoiser: Denoiser, frames: int, height: int, width: int, piece: int) -> int:
    """Predicted peak resident bytes of a CPU run with windows of `frames` frames whose largest
    tile holds `piece` pixels: the process, the window's frame-sized buffers and the
    denoiser's working set."""
    work = frames * piece * denoiser.bytes_per_pixel
    return RESIDENT_BASE + frames * height * width * PIPELINE_BYTES_PER_PIXEL + work


def _axis_tiles(size: int, tile: int, halo: int) -> tuple[int, int]:
    """(pixels computed along the axis, longest piece) for tiles of `tile` (halo included),
    as `denoise_tiled` cuts them when the frame is tiled."""
    starts, core = axis_cores(size, max(MIN_TILE, tile - 2 * halo), max(1, halo))
    lengths = [min(size, s + core + halo) - max(0, s - halo) for s in starts]
    return sum(lengths), max(lengths)


def auto_tile(denoiser: Denoiser, frames: int, height: int, width: int) -> Tile:
    """The tile (height, width) whose working set fits `work_budget` with the fewest pixels
    computed (halos and overlaps are computed twice); strips are allowed.

    Returns max(height, width) (no tiling) when a whole frame fits, and the smallest tile
    when nothing fits.
    """
    budget = work_budget(denoiser, frames, height, width) // max(1, denoiser.bytes_per_pixel)
    if frames * height * width <= budget:
        return max(height, width)
    halo = denoiser.halo
    smallest = MIN_TILE + 2 * halo

    def lengths(size: int) -> dict[int, tuple[int, int]]:
        sides = {*range(smallest, size + 2 * halo, 16), size + 2 * halo}
        return {side: _axis_tiles(size, side, halo) for side in sorted(sides)}

    best: tuple[tuple[int, int], Tile] | None = None
    for tile_h, (sum_h, long_h) in lengths(height).items():
        for tile_w, (sum_w, long_w) in lengths(width).items():
            if frames * long_h * long_w > budget:
                continue
            key = (sum_h * sum_w, -long_h * long_w)  # fewest pixels, then the largest tiles
            if best is None or key < best[0]:
                best = (key, tile_h if tile_h == tile_w else (tile_h, tile_w))
    return smallest if best is None else best[1]


def stream_footprint(denoiser: Denoiser, height: int, width: int, tile: Tile) -> int:
    """Predicted peak resident bytes of a streamed run: the process, what the streams keep per
    pixel of the frame (`stream_state_bytes_per_pixel`) and the working set of one tile
    (`stream_bytes_per_pixel` less the state)."""
    per_pixel = getattr(denoiser, "stream_bytes_per_pixel", 0)
    state = getattr(denoiser, "stream_state_bytes_per_pixel", per_pixel)
    grid = tile_grid(height, width, tile, denoiser.halo)
    largest = max((p.y1 - p.y0) * (p.x1 - p.x0) for p in grid)
    return RESIDENT_BASE + height * width * state + largest * (per_pixel - state)
