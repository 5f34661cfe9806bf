"""Tests for snl_cli/pipeline.py: chunk windows and blending, tiles, streaming memory,
σ handling and clean-up, with small stand-in denoisers whose exact output we know."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import textwrap
from fractions import Fraction
from pathlib import Path

import av
import media
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from snl_cli.errors import OutputError, UsageError
from snl_cli.memory import auto_tile
from snl_cli.pipeline import (
    DenoiseOptions,
    _ChunkRun,
    _Lookahead,
    check_options,
    denoise_file,
    ramp_weights,
)
from snl_cli.tiles import denoise_tiled, tile_starts
from snl_cli.video import Frame, is_temp_name

CPU = torch.device("cpu")


class BoxBlur:
    """3×3 mean, edge-replicated: a spatial denoiser with a 1-pixel reach."""

    name, context, halo, bytes_per_pixel, device = "box", 0, 2, 64, CPU

    def __call__(self, clip: torch.Tensor, sigma: float) -> torch.Tensor:
        return F.avg_pool2d(F.pad(clip, (1, 1, 1, 1), mode="replicate"), 3, stride=1)


class TemporalMean:
    """Mean of frames t-1..t+1, the window sliding at the clip ends (as Shifted-NLS's)."""

    name, context, halo, bytes_per_pixel, device = "tmean", 1, 0, 64, CPU

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, clip: torch.Tensor, sigma: float) -> torch.Tensor:
        self.calls += 1
        T = clip.shape[0]
        if T < 3:
            return clip.mean(0, keepdim=True).expand_as(clip).clone()
        starts = torch.arange(T).sub(1).clamp(0, T - 3)
        return (clip[starts] + clip[starts + 1] + clip[starts + 2]) / 3


class Collect:
    """A Reporter that remembers what it was told."""

    def __init__(self) -> None:
        self.summary: dict | None = None
        self.frames = 0
        self.warnings: list[str] = []

    def started(self, info, summary) -> None:
        self.summary = dict(summary)

    def advanced(self, frames: int) -> None:
        self.frames += frames

    def warned(self, message: str) -> None:
        self.warnings.append(message)


def _frames(count: int, size: tuple[int, int] = (24, 16), seed: int = 0) -> list[Frame]:
    rng = np.random.default_rng(seed)
    w, h = size
    return [
        Frame(rng.random((h, w, 3), dtype=np.float32), pts=3 * i, time_base=Fraction(1, 75),
              index=i)
        for i in range(count)
    ]  # fmt: skip


def _run(frames: list[Frame], denoiser, chunk: int, overlap: int) -> list[Frame]:
    run = _ChunkRun(denoiser, 10.0, chunk, overlap, tile=10_000)
    return list(run.frames(_Lookahead(iter(frames))))


def _noisy_folder(folder: Path, frames: int, size: tuple[int, int], sigma: float) -> np.ndarray:
    """PNG frames of the moving test pattern plus Gaussian noise; returns the clean frames."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    clean = np.stack([media.pattern(i, *size) for i in range(frames)])
    for i, image in enumerate(clean):
        noisy = np.clip(image + rng.normal(0, sigma / 255.0, image.shape), 0, 1)
        media.write_image(folder / f"f{i:03d}.png", noisy)
    return clean


# ---- chunk windows -------------------------------------------------------------------------


@pytest.mark.parametrize(("chunk", "overlap"), [(8, 2), (5, 5), (1, 0), (4, 1), (16, 3), (4, 3)])
def test_window_weights_sum_to_one_on_every_frame(chunk: int, overlap: int) -> None:
    # Exactly one where at most two windows meet (2·overlap <= chunk); else the pipeline
    # divides by the sum, which must then be positive.
    for total in (1, 7, 8, 9, 23, 40):
        sums = np.zeros(total)
        k = 0
        while True:  # the windows the pipeline visits, written out independently
            first, end = max(0, k * chunk - overlap), min(total, (k + 1) * chunk + overlap)
            last = end == total
            sums[first:end] += ramp_weights(end - first, overlap, first > 0, not last)
            if last:
                break
            k += 1
        if 2 * overlap <= chunk:
            assert np.allclose(sums, 1.0), (chunk, overlap, total, sums)
        assert sums.min() > 0


@pytest.mark.parametrize("total", [1, 2, 9, 10, 11, 17, 33])
def test_every_frame_comes_out_once_in_order_with_its_timing(total: int) -> None:
    frames = _frames(total)
    out = _run(frames, TemporalMean(), chunk=4, overlap=2)
    assert [f.index for f in out] == list(range(total))
    assert [(f.pts, f.time_base) for f in out] == [(f.pts, f.time_base) for f in frames]


def test_per_frame_denoiser_gives_identical_output_whatever_the_chunking() -> None:
    frames = _frames(21)
    reference = np.stack([f.rgb for f in _run(frames, BoxBlur(), chunk=64, overlap=0)])
    for chunk, overlap in ((1, 0), (4, 2), (5, 5), (8, 3)):
        out = np.stack([f.rgb for f in _run(frames, BoxBlur(), chunk, overlap)])
        np.testing.assert_allclose(out, reference, atol=1e-6)


def test_temporal_denoiser_seams_are_invisible() -> None:
    frames = _frames(40)
    clip = torch.from_numpy(np.stack([f.rgb for f in frames])).permute(0, 3, 1, 2)
    whole = TemporalMean()(clip, 0.0).permute(0, 2, 3, 1).numpy()
    chunked = np.stack([f.rgb for f in _run(frames, TemporalMean(), chunk=8, overlap=2)])
    assert media.psnr(chunked, whole) >= 40.0
    hard_cut = np.stack([f.rgb for f in _run(frames, TemporalMean(), chunk=8, overlap=0)])
    assert media.psnr(chunked, whole) > media.psnr(hard_cut, whole) + 3.0


def test_frames_held_stay_bounded_on_a_long_stream() -> None:
    held = []

    def stream():
        for frame in _frames(200, size=(8, 8)):
            held.append(len(look.buffer))
            yield frame

    look = _Lookahead(stream())
    run = _ChunkRun(TemporalMean(), 0.0, chunk=6, overlap=2, tile=10_000)
    count = 0
    for _ in run.frames(look):
        count += 1
        assert len(run._sums) <= 6 + 2 * 2
    assert count == 200
    assert max(held) <= 6 + 2 * 2 + 1


# ---- tiles ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("size", "tile", "overlap"), [(100, 40, 8), (37, 64, 4), (200, 70, 30)])
def test_tiles_cover_with_the_overlap_asked(size: int, tile: int, overlap: int) -> None:
    starts = tile_starts(size, tile, overlap)
    assert starts[0] == 0 and starts[-1] + min(tile, size) == size
    for a, b in itertools.pairwise(starts):
        assert a + tile - b >= overlap


def test_tiled_result_equals_whole_frame_result() -> None:
    clip = torch.rand(3, 3, 131, 197, generator=torch.Generator().manual_seed(0))
    whole = BoxBlur()(clip, 0.0)
    for tile in (64, 80, 100, (64, 100), (140, 80), (131 + 4, 90)):
        tiled = denoise_tiled(BoxBlur(), clip, 0.0, tile)
        torch.testing.assert_close(tiled, whole, atol=1e-6, rtol=0)


class _Pieces(BoxBlur):
    """BoxBlur that records the (height, width) of every piece it is given."""

    def __init__(self, halo: int, bytes_per_pixel: int) -> None:
        self.halo, self.bytes_per_pixel, self.shapes = halo, bytes_per_pixel, []

    def __call__(self, clip: torch.Tensor, sigma: float) -> torch.Tensor:
        self.shapes.append(tuple(clip.shape[-2:]))
        return clip


def _pieces(denoiser: _Pieces, height: int, width: int, tile) -> list[tuple[int, int]]:
    denoiser.shapes = []
    denoise_tiled(denoiser, torch.zeros(1, 3, height, width), 0.0, tile)
    return denoiser.shapes


def test_auto_tile_skips_tiling_when_a_whole_window_fits(monkeypatch) -> None:
    import snl_cli.memory as memory

    monkeypatch.setattr(memory, "available_memory", lambda device: 64 << 30)
    assert auto_tile(BoxBlur(), 20, 480, 854) == 854  # 20·480·854·64 B ≈ 0.5 GiB: whole frames


@pytest.mark.parametrize(("height", "width"), [(540, 960), (300, 1000), (1000, 250)])
def test_auto_tile_fits_the_budget_with_the_fewest_pixels(monkeypatch, height, width) -> None:
    """Run the tiles auto_tile picks: the largest piece fits the working-set budget, and no
    square tile that fits computes fewer pixels (counted from the pieces actually run)."""
    import snl_cli.memory as memory

    monkeypatch.setattr(memory, "available_memory", lambda device: 64 << 30)
    monkeypatch.setattr(memory, "WORK_BUDGET", 256 << 20)
    frames, denoiser = 20, _Pieces(halo=16, bytes_per_pixel=400)
    budget_pixels = (256 << 20) // (frames * 400)
    shapes = _pieces(denoiser, height, width, auto_tile(denoiser, frames, height, width))
    assert len(shapes) > 1 and max(h * w for h, w in shapes) <= budget_pixels
    computed = sum(h * w for h, w in shapes)
    for side in range(64 + 32, max(height, width), 16):
        square = _pieces(denoiser, height, width, side)
        if max(h * w for h, w in square) <= budget_pixels:
            assert computed <= sum(h * w for h, w in square), side


def test_auto_tile_leaves_room_for_the_frames_a_window_holds(monkeypatch) -> None:
    """With little memory available, the frame-sized buffers of the window come first."""
    import snl_cli.memory as memory

    monkeypatch.setattr(memory, "available_memory", lambda device: 3 << 30)
    denoiser = _Pieces(halo=16, bytes_per_pixel=400)
    fixed = memory.estimate_peak(denoiser, 20, 540, 960, 0)
    share = int(memory.MEMORY_SHARE * (3 << 30))
    shapes = _pieces(denoiser, 540, 960, auto_tile(denoiser, 20, 540, 960))
    assert fixed + 20 * 400 * max(h * w for h, w in shapes) <= share


# ---- denoise_file ----------------------------------------------------------------------------


def test_sigma_is_estimated_from_the_clip(tmp_path: Path) -> None:
    src = tmp_path / "noisy"
    _noisy_folder(src, 6, (96, 80), sigma=12.0)
    report = Collect()
    summary = denoise_file(src, tmp_path / "out", DenoiseOptions(chunk=4, overlap=1), report,
                           denoiser=TemporalMean())  # fmt: skip
    assert summary["sigma_source"] == "estimated"
    assert abs(summary["sigma"] - 12.0) <= 1.5
    assert report.summary["sigma"] == summary["sigma"]
    assert report.frames == summary["frames"] == 6
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        f"f{i:03d}.png" for i in range(6)
    ]


def test_sigma_outside_the_range_is_clamped_with_a_warning(tmp_path: Path) -> None:
    src = tmp_path / "very_noisy"
    _noisy_folder(src, 3, (96, 80), sigma=80.0)
    report = Collect()
    summary = denoise_file(src, tmp_path / "out", DenoiseOptions(chunk=4), report,
                           denoiser=TemporalMean())  # fmt: skip
    assert summary["sigma"] == 50.0 and summary["sigma_estimate"] > 50.0
    assert any("outside [0, 50]" in w for w in report.warnings)


def test_given_sigma_reaches_the_denoiser(tmp_path: Path) -> None:
    seen = []

    class Spy(TemporalMean):
        def __call__(self, clip, sigma):
            seen.append(sigma)
            return super().__call__(clip, sigma)

    src = media.make_clip(tmp_path / "in.mp4", frames=5)
    summary = denoise_file(src, tmp_path / "out.mp4", DenoiseOptions(sigma=17.0), denoiser=Spy())
    assert seen and set(seen) == {17.0}
    assert summary["sigma_source"] == "given" and summary["sigma_estimate"] is None


def test_small_overlap_warns(tmp_path: Path) -> None:
    src = media.make_clip(tmp_path / "in.mp4", frames=5)
    report = Collect()
    denoise_file(src, tmp_path / "out.mp4", DenoiseOptions(overlap=0, sigma=5), report,
                 denoiser=TemporalMean())  # fmt: skip
    assert any("chunk boundaries may show" in w for w in report.warnings)


def test_interrupt_leaves_no_output_and_no_temporary_file(tmp_path: Path) -> None:
    class Interrupted(TemporalMean):
        def __call__(self, clip, sigma):
            if self.calls == 1:
                raise KeyboardInterrupt
            return super().__call__(clip, sigma)

    src = media.make_clip(tmp_path / "in.mp4", frames=12, audio=True)
    before = set(tmp_path.iterdir())
    with pytest.raises(KeyboardInterrupt):
        denoise_file(src, tmp_path / "out.mp4", DenoiseOptions(chunk=4, overlap=1, sigma=5),
                     denoiser=Interrupted())  # fmt: skip
    assert set(tmp_path.iterdir()) == before


def test_existing_output_and_output_equal_to_input_are_refused(tmp_path: Path) -> None:
    src = media.make_clip(tmp_path / "in.mp4", frames=3)
    dst = tmp_path / "out.mp4"
    dst.write_bytes(b"keep me")
    with pytest.raises(OutputError, match="already exists"):
        denoise_file(src, dst, DenoiseOptions(sigma=5), denoiser=TemporalMean())
    assert dst.read_bytes() == b"keep me"
    with pytest.raises(OutputError, match="output is the input"):
        denoise_file(src, src, DenoiseOptions(sigma=5, overwrite=True), denoiser=TemporalMean())
    denoise_file(src, dst, DenoiseOptions(sigma=5, overwrite=True), denoiser=TemporalMean())
    assert media.video_frames_meta(dst)[0].width == 64


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (DenoiseOptions(chunk=0), "--chunk"),
        (DenoiseOptions(chunk=4, overlap=5), "--overlap"),
        (DenoiseOptions(tile=10), "--tile"),
        (DenoiseOptions(sigma=300.0), "--sigma"),
    ],
)
def test_bad_options_are_usage_errors(options: DenoiseOptions, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        check_options(options)


# ---- memory ------------------------------------------------------------------------------

_PEAK_SCRIPT = textwrap.dedent(
    """
    import json, resource, sys
    sys.path.insert(0, {tests!r})
    import torch
    import snl_cli.memory as memory
    from test_pipeline import TemporalMean
    from snl_cli.pipeline import DenoiseOptions, denoise_file

    torch.set_num_threads(1)
    if len(sys.argv) > 4:  # a working-set budget: the frames are tiled on their own
        memory.WORK_BUDGET = int(sys.argv[4])
    if len(sys.argv) > 3 and sys.argv[3]:  # STAN weights: the real denoiser and heap regime
        tile = int(sys.argv[5]) if len(sys.argv) > 5 else None  # a stream per tile
        options = DenoiseOptions(chunk=8, sigma=10, model="stan", weights=sys.argv[3], tile=tile)
        summary = denoise_file(sys.argv[1], sys.argv[2], options)
    else:
        summary = denoise_file(sys.argv[1], sys.argv[2],
                               DenoiseOptions(chunk=8, overlap=2, sigma=10),
                               denoiser=TemporalMean())
    try:  # this process's own peak (ru_maxrss also counts the parent's, shared until exec)
        with open("/proc/self/status") as status:
            peak = next(int(l.split()[1]) for l in status if l.startswith("VmHWM:"))
    except OSError:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps([peak, summary["tile"]]))
    """
)


def _gradient_clip(path: Path, frames: int, size: tuple[int, int]) -> Path:
    """A lossless (FFV1) clip of a gradient sliding sideways: cheap to make and to code."""
    width, height = size
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 // width, y * 255 // height, (x + y) * 127 // (width + height)], -1)
    base = base.astype(np.uint8)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index in range(frames):
            rgb = np.ascontiguousarray(np.roll(base, 3 * index, axis=1))
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def _peak_rss_kib(src: Path, dst: Path, *args: str, tiled: list | None = None) -> int:
    """Peak resident KiB of a child process denoising src; args: STAN weights ("" for the
    stand-in), then a working-set budget in bytes, then STAN's tile. `tiled` receives the
    run's tile."""
    script = _PEAK_SCRIPT.format(tests=str(Path(__file__).parent))
    done = subprocess.run(
        [sys.executable, "-c", script, str(src), str(dst), *args],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    peak, tile = json.loads(done.stdout.strip().splitlines()[-1])
    if tiled is not None:
        tiled.append(tile)
    return peak


def test_peak_memory_does_not_grow_with_clip_length(tmp_path: Path) -> None:
    # 640x360: one float RGB frame is 2.7 MB, so holding 96 frames would add ~260 MB.
    size = (640, 360)
    short = _gradient_clip(tmp_path / "short.mkv", 24, size)
    long = _gradient_clip(tmp_path / "long.mkv", 96, size)
    peak_short = _peak_rss_kib(short, tmp_path / "short_out.mkv", "")
    peak_long = _peak_rss_kib(long, tmp_path / "long_out.mkv", "")
    assert peak_long <= 1.3 * peak_short, (peak_short, peak_long)
    assert len(media.video_frames_meta(tmp_path / "long_out.mkv")) == 96
    assert not [p for p in tmp_path.iterdir() if is_temp_name(p.name)]


@pytest.mark.parametrize("tile", [None, 192])
def test_stan_peak_memory_does_not_grow_with_clip_length(tmp_path: Path, tile) -> None:
    """STAN streams frames (`snl_cli.model.stream`) with its buffers in a pooled heap
    (`snl_cli.heap.pooled_heap`, trimmed only at the end), whole or a stream per tile
    (`tiles.TiledStream`): the footprint must still not grow with the clip, 16 frames
    against 64 within 10%."""
    from snl_cli.model.stan import STAN, STANConfig
    from snl_cli.model.weights import save_stan

    cfg = STANConfig(channels=(8, 16), heads=2, qk_dim=4, attn_blocks=1, ws=5, topk=4, k_agg=2)
    weights = tmp_path / "tiny.safetensors"
    save_stan(STAN(cfg), weights, {"note": "untrained"})
    size = (480, 272)
    short = _gradient_clip(tmp_path / "short.mkv", 16, size)
    long = _gradient_clip(tmp_path / "long.mkv", 64, size)
    args = (str(weights),) if tile is None else (str(weights), "0", str(tile))
    tiles: list = []
    peak_short = _peak_rss_kib(short, tmp_path / "short_out.mkv", *args, tiled=tiles)
    peak_long = _peak_rss_kib(long, tmp_path / "long_out.mkv", *args, tiled=tiles)
    assert tiles == [tile, tile]  # 480x272 in 192 px tiles: 4x2
    assert peak_long <= 1.1 * peak_short, (peak_short, peak_long)
    assert len(media.video_frames_meta(tmp_path / "long_out.mkv")) == 64


def test_tiled_peak_memory_does_not_grow_with_clip_length(tmp_path: Path) -> None:
    """The tiled path (a chunked denoiser; STAN streams whole frames instead, see
    `test_stan_peak_memory_does_not_grow_with_clip_length`): with a working-set budget too
    small for whole 480x272 windows, auto_tile cuts the frames on its own, and the footprint
    stays within 10% from 3 windows to 9; an untiled run peaks higher."""
    budget = str(32 << 20)  # the stand-in: 12-frame windows, 64 B per pixel
    size = (480, 272)
    short = _gradient_clip(tmp_path / "short.mkv", 24, size)
    long = _gradient_clip(tmp_path / "long.mkv", 72, size)
    tiles: list = []
    peak_short = _peak_rss_kib(short, tmp_path / "s.mkv", "", budget, tiled=tiles)
    peak_long = _peak_rss_kib(long, tmp_path / "l.mkv", "", budget, tiled=tiles)
    assert tiles[0] is not None and tiles[0] == tiles[1], tiles
    assert peak_long <= 1.1 * peak_short, (peak_short, peak_long)
    assert len(media.video_frames_meta(tmp_path / "l.mkv")) == 72
    untiled = _peak_rss_kib(long, tmp_path / "u.mkv", "", str(8 << 30), tiled=tiles)
    assert tiles[2] is None and peak_long < untiled, (peak_long, untiled, tiles)


def test_stan_weights_plug_into_the_pipeline(tmp_path: Path) -> None:
    from snl_cli.model.stan import STAN, STANConfig
    from snl_cli.model.weights import save_stan

    cfg = STANConfig(channels=(8, 16), heads=2, qk_dim=4, attn_blocks=1, ws=5, topk=4, k_agg=2)
    weights = tmp_path / "tiny.safetensors"
    save_stan(STAN(cfg), weights, {"note": "untrained: the output conv is zero, an identity"})
    src = media.make_clip(tmp_path / "in.mkv", frames=5, size=(64, 48), codec="ffv1")
    out = tmp_path / "out.mkv"
    summary = denoise_file(src, out, DenoiseOptions(model="stan", weights=str(weights), sigma=5))
    assert summary["model"] == "stan" and summary["frames"] == 5
    assert media.psnr(np.stack(media.decode_rgb(out)), np.stack(media.decode_rgb(src))) > 40


def test_a_level_reading_stan_is_told_the_clips_sigma(tmp_path: Path) -> None:
    """A model with a noise-level plane reads --sigma, or the clip's own estimate."""
    from snl_cli.model.stan import STAN, STANConfig
    from snl_cli.model.weights import save_stan
    from snl_cli.noise import estimate_sigma

    torch.manual_seed(3)
    cfg = STANConfig(channels=(8, 16), heads=2, qk_dim=4, attn_blocks=1, ws=5, topk=4, k_agg=2)
    model = STAN(cfg).with_level_input()
    with torch.no_grad():
        torch.nn.init.normal_(model.out.weight, std=0.05)
        model.inp.weight[:, -1].normal_(std=0.5)
    weights = tmp_path / "told.safetensors"
    save_stan(model, weights, {"note": "untrained, level plane weights set"})
    src = tmp_path / "noisy"  # PNG frames: 8-bit RGB, read alike by snl and by PyAV
    src.mkdir()
    rng = np.random.default_rng(0)
    for i in range(5):
        noisy = media.pattern(i, 64, 48) + rng.normal(0, 0.05, (48, 64, 3))
        media.write_image(src / f"f{i}.png", np.clip(noisy, 0, 1))
    outs = {}
    for sigma in (5.0, 40.0, None):
        out = tmp_path / f"out-{sigma or 0:g}"
        opts = DenoiseOptions(model="stan", weights=str(weights), sigma=sigma)
        summary = denoise_file(src, out, opts)
        outs[sigma] = np.stack([media.decode_rgb(p)[0] for p in sorted(out.iterdir())])
    assert np.abs(outs[5.0] - outs[40.0]).max() > 2 / 255  # the level steers the output
    frames = [media.decode_rgb(p)[0].astype(np.float32) for p in sorted(src.iterdir())]
    assert 5 < estimate_sigma(frames) < 20  # noise of sigma 12.75 on a smooth pattern
    assert summary["sigma_source"] == "estimated"
    assert summary["sigma"] == pytest.approx(estimate_sigma(frames), abs=0.01)


class _Chunked:
    """A denoiser as it is, except that it offers no frame stream: runs go in chunk windows."""

    offers_stream = False

    def __init__(self, denoiser) -> None:
        self.denoiser = denoiser

    def __getattr__(self, name: str):
        return getattr(self.denoiser, name)

    def __call__(self, clip, sigma):
        return self.denoiser(clip, sigma)


@pytest.mark.parametrize("tile", [None, 100])
def test_stan_streams_and_writes_what_a_whole_clip_window_writes(tmp_path: Path, tile) -> None:
    """On the CPU STAN runs one frame at a time (`snl_cli.model.stream`); the files it
    writes equal, bit for bit, a chunked run whose one window holds the whole clip; with
    tiles, a stream per tile equals that window's tiles (`tiles.denoise_tiled`)."""
    from snl_cli.denoisers import make_denoiser
    from snl_cli.model.stan import STAN, STANConfig
    from snl_cli.model.weights import save_stan

    torch.manual_seed(4)
    cfg = STANConfig(channels=(8, 16), heads=2, qk_dim=4, attn_blocks=2, ws=3, topk=4, k_agg=2,
                     input_frames=3, level_input=True)  # fmt: skip
    model = STAN(cfg)
    torch.nn.init.normal_(model.out.weight, std=0.1)  # not the identity
    weights = tmp_path / "small.safetensors"
    save_stan(model, weights, {"note": "random"})
    src = tmp_path / "noisy"
    _noisy_folder(src, 9, (150, 100) if tile else (60, 44), sigma=20)
    options = DenoiseOptions(model="stan", weights=str(weights), sigma=20.0, chunk=64, tile=tile)
    denoiser = make_denoiser("stan", weights=str(weights), device="cpu")
    streamed = denoise_file(src, tmp_path / "a", options, denoiser=denoiser)
    chunked = denoise_file(src, tmp_path / "b", options, denoiser=_Chunked(denoiser))
    assert streamed["streamed"] and streamed["chunk"] is None and streamed["tile"] == tile
    assert not chunked["streamed"] and chunked["chunk"] == 64
    a = np.stack([media.decode_rgb(p)[0] for p in sorted((tmp_path / "a").iterdir())])
    b = np.stack([media.decode_rgb(p)[0] for p in sorted((tmp_path / "b").iterdir())])
    source = np.stack([media.decode_rgb(p)[0] for p in sorted(src.iterdir())])
    assert a.shape == source.shape and np.abs(a - source).max() > 10 / 255
    np.testing.assert_array_equal(a, b)
