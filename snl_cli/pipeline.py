"""Denoise a whole clip with bounded memory: `denoise_file(src, dst, options)`.

Decoding, denoising and encoding are streamed. A denoiser that offers a frame stream
(`denoisers.frame_stream`: STAN on the CPU) takes the frames one at a time and gives each
output back as soon as it is determined, holding a few frames whatever the clip's length;
frames larger than a stream's budget are cut into tiles, each with its own stream, fed in
lockstep (`tiles.TiledStream`, `tiles.stream_tile`).

Other denoisers go through temporal chunks of `chunk` frames with `overlap` frames of
context on each side, so consecutive chunk windows share 2·overlap frames. A frame's output
is the weighted mean over the windows that hold it; a window's weight ramps linearly from ~0
at an edge it shares with another window to 1 at 2·overlap frames inside (clip ends are not
shared edges), so the weights of two windows sum to one across their overlap and chunk
boundaries do not show. Only the current window (chunk + 2·overlap frames, plus one read
ahead) and the 2·overlap frames still being blended are held. Frames larger than the tile
size are cut into overlapping tiles (`tiles.denoise_tiled`), so a 4K clip fits in the memory
that a tile needs.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections import deque
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from snl_cli.controls import Controls, apply_controls, check_controls, matrix_of
from snl_cli.defaults import DEFAULT_CHUNK
from snl_cli.denoisers import (
    Denoiser,
    FrameStream,
    compile_notices,
    frame_stream,
    make_denoiser,
    offers_stream,
    uses_sigma,
)
from snl_cli.ensemble import ensembled
from snl_cli.errors import InputError, UsageError
from snl_cli.heap import pooled_heap, steady_heap
from snl_cli.memory import auto_tile, available_memory, fits_pooled_heap, stream_footprint
from snl_cli.noise import SIGMA_RANGE, estimate_sigma, noise_report, pick_frames
from snl_cli.tiles import (
    MIN_TILE,
    Tile,
    TiledStream,
    denoise_tiled,
    stream_tile,
    tile_summary,
)
from snl_cli.video import ClipInfo, Frame, VideoWriter, check_output_path, probe, read_frames
from snl_cli.video.plan import check_frame_size, plan_output


@dataclass(frozen=True)
class DenoiseOptions:
    """Everything `snl denoise` (and each file of `snl batch`) can be told.

    Attributes:
        model: "stan" or "nlm"; None picks STAN when its weights are installed, else nlm.
        sigma: noise level on the 0–255 scale; None estimates it from a few frames.
        chunk: frames denoised together (the stride of the temporal chunks).
        overlap: frames of context on each side of a chunk; None uses the model's need.
        tile: largest tile side in pixels; None picks it from the available memory.
        device: "auto", "cpu" or "cuda".
        codec, crf, preset: encoder overrides (see `snl_cli.video.plan_output`).
        overwrite: replace an existing output.
        weights: STAN weights file (None: the shipped ones).
        strength, luma, chroma, grain: post-denoise controls (see `snl_cli.controls`).
        frames: (first, stop) frame indices to denoise, stop exclusive or None (the end).
        start, duration: the part to denoise in seconds from the first frame (None: all).
        strict: a clip that yields fewer frames than it declares (truncated, corrupt)
            fails instead of being written short with a warning.
        ensemble: passes of the geometric self-ensemble (1, 2, 4 or 8, `snl_cli.ensemble`);
            None: 8 for a one-frame input (a photo), 1 for video.
    """

    model: str | None = None
    sigma: float | None = None
    chunk: int = DEFAULT_CHUNK
    overlap: int | None = None
    tile: int | None = None
    device: str = "auto"
    codec: str | None = None
    crf: int | None = None
    preset: str | None = None
    overwrite: bool = False
    weights: str | None = None
    strength: float = 1.0
    luma: float | None = None
    chroma: float | None = None
    grain: float = 0.0
    frames: tuple[int, int | None] | None = None
    start: float | None = None
    duration: float | None = None
    strict: bool = False
    ensemble: int | None = None

    def settings(self) -> dict[str, Any]:
        """The options that change the pixels written (what a batch manifest compares).

        The controls and the cut are listed only when set, so that manifests written
        before they existed still match a run with the defaults.
        """
        keys = ("model", "sigma", "chunk", "overlap", "codec", "crf", "preset", "weights")
        settings = {key: getattr(self, key) for key in keys}
        defaults = DenoiseOptions()
        for key in ("strength", "luma", "chroma", "grain", "frames", "start", "duration",
                    "ensemble"):  # fmt: skip
            if getattr(self, key) != getattr(defaults, key):
                settings[key] = getattr(self, key)
        return settings

    def make_denoiser(self) -> Denoiser:
        """The denoiser these options name (`model`, `device`, `weights`)."""
        return make_denoiser(self.model, device=self.device, weights=self.weights)

    def controls(self, space: str | None = None) -> Controls:
        """The post-denoise controls, in the YUV matrix of a clip tagged `space`."""
        return Controls(self.strength, self.luma, self.chroma, self.grain, matrix_of(space))


class Reporter(Protocol):
    """What `denoise_file` tells its caller while it runs (the CLI draws it on stderr)."""

    def started(self, info: ClipInfo, summary: dict[str, Any]) -> None:
        """Once, before the first frame is written: clip facts, model, σ, chunking."""

    def advanced(self, frames: int) -> None:
        """After `frames` more frames have been written."""

    def warned(self, message: str) -> None:
        """Something the user should know (σ clamped, overlap below the model's need)."""


class _Silent:
    def started(self, info: ClipInfo, summary: dict[str, Any]) -> None:
        pass

    def advanced(self, frames: int) -> None:
        pass

    def warned(self, message: str) -> None:
        pass


def check_options(options: DenoiseOptions) -> None:
    """Raise UsageError for options that cannot work together (before any work)."""
    if options.chunk < 1:
        raise UsageError(f"--chunk: expected at least 1 frame, got {options.chunk}")
    if options.overlap is not None and not 0 <= options.overlap <= options.chunk:
        raise UsageError(
            f"--overlap: expected 0 to --chunk ({options.chunk}) frames, got {options.overlap}"
        )
    if options.tile is not None and options.tile < MIN_TILE:
        raise UsageError(f"--tile: expected at least {MIN_TILE} pixels, got {options.tile}")
    if options.sigma is not None and not 0 <= options.sigma <= 255:
        raise UsageError(f"--sigma: expected auto or a number in [0, 255], got {options.sigma}")
    for problem in check_controls(options.controls()):
        raise UsageError(problem)
    _check_cut(options)


def _check_cut(options: DenoiseOptions) -> None:
    if options.frames is not None:
        first, stop = options.frames
        if first < 0 or (stop is not None and stop <= first):
            raise UsageError(f"--frames: expected 0 <= A < B, got {first}:{stop}")
        if options.start is not None or options.duration is not None:
            raise UsageError("--frames: give either --frames or --start/--duration, not both")
    if options.start is not None and options.start < 0:
        raise UsageError(f"--start: expected seconds >= 0, got {options.start:g}")
    if options.duration is not None and options.duration <= 0:
        raise UsageError(f"--duration: expected seconds > 0, got {options.duration:g}")


def denoise_file(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    options: DenoiseOptions | None = None,
    reporter: Reporter | None = None,
    *,
    denoiser: Denoiser | None = None,
) -> dict[str, Any]:
    """Denoise one clip (a video file or a folder of frames) into `dst`.

    The output keeps every frame's timestamp, the bit depth, colour tags, rotation and
    the audio/subtitle packets (see `snl_cli.video.VideoWriter`); it appears under `dst`
    only when complete.

    Args:
        src: input clip.
        dst: output file or folder (the same kind as the input is usual).
        options: see DenoiseOptions.
        reporter: receives progress and warnings (None: silent).
        denoiser: a ready denoiser (tests, batch runs reusing one); None builds
            `options.model`.

    Returns:
        Summary: input, output, model, device, frames, seconds, fps, first_frame_seconds
        (from the call, the model's loading included, to the first frame handed to the
        encoder), streamed (one frame at a time, or in chunk windows), sigma (used; None
        for a blind denoiser without a given σ), sigma_source ("given", "estimated" or
        "unused"), sigma_estimate, blind, noise (what the first frames show), chunk,
        overlap, tile, width, height and the writer's plan.

    Raises:
        InputError, OutputError, UsageError, WeightsError: one-line failures.
        KeyboardInterrupt: passed on after the temporary output is removed.
    """
    entered = time.perf_counter()
    options = options or DenoiseOptions()
    reporter = reporter or _Silent()
    check_options(options)
    steady_heap()
    src, dst = Path(src), Path(dst)
    check_output_path(src, dst, options.overwrite)
    info = probe(src)
    check_frame_size(info)
    part = (
        info
        if not _is_cut(options)
        else dataclasses.replace(info, frames=_cut_length(info, options))
    )
    plan = plan_output(part, dst, codec=options.codec, crf=options.crf, preset=options.preset)
    for dropped in plan.dropped:
        reporter.warned(f"{dst}: {dropped} is left out")
    if plan.kind in ("images", "image") and info.rotation:
        reporter.warned(
            f"{dst}: the display rotation ({info.rotation}°) is left out; pictures are "
            "written as stored"
        )
    if denoiser is None:
        denoiser = options.make_denoiser()
    denoiser, passes = ensembled(denoiser, options.ensemble, part.frames)
    overlap = denoiser.context if options.overlap is None else options.overlap
    if overlap < denoiser.context:
        reporter.warned(
            f"--overlap {overlap} is below the {denoiser.name} model's temporal context "
            f"({denoiser.context} frames): chunk boundaries may show"
        )
    window = options.chunk + 2 * overlap
    streamed = offers_stream(denoiser)
    tile = run_tile(denoiser, options, info, window)
    if streamed:
        _warn_stream_memory(denoiser, info, tile, reporter)
    controls = options.controls(info.color.get("space"))
    start = time.perf_counter()
    stream = _Lookahead(cut_frames(src, options))
    try:
        first_frames = stream.fill(head_frames(denoiser, window, streamed))
        if not first_frames:
            raise InputError(f"no frames in the part asked for ({_describe_cut(options)})", src)
        needed = uses_sigma(denoiser)
        sigma, estimate = _pick_sigma(options.sigma, first_frames, reporter, needed)
        sampled = [first_frames[i].rgb for i in pick_frames(len(first_frames))]
        noise = noise_report(sampled, _report_matrix(info))
        summary = {
            "input": str(src),
            "output": str(dst),
            "model": denoiser.name,
            "device": str(denoiser.device),
            "frames": 0,
            "width": info.width,
            "height": info.height,
            "sigma": round(sigma, 2) if options.sigma is not None or needed else None,
            "sigma_source": _sigma_source(options.sigma, needed),
            "sigma_estimate": None if estimate is None else round(estimate, 2),
            "chunk": None if streamed else options.chunk,
            "overlap": None if streamed else overlap,
            "streamed": streamed,
            "tile": tile_summary(tile, info.height, info.width),
            "blind": not needed,
            "ensemble": passes,
            "noise": noise["overall"],
            "controls": controls.to_json(),
        }
        cut_start = None
        if _is_cut(options):
            cut_start = first_frames[0].pts
            summary["cut"] = {"first_frame": first_frames[0].source_index,
                              "start": round(first_frames[0].time, 6)}  # fmt: skip
            info = part
        with VideoWriter(dst, info, codec=options.codec, crf=options.crf,
                         preset=options.preset, overwrite=options.overwrite,
                         start_pts=cut_start) as writer:  # fmt: skip
            summary["plan"] = writer.plan.to_json()
            reporter.started(info, summary)
            run: _ChunkRun | _StreamRun
            if streamed:
                run = _StreamRun(denoiser, sigma, controls, tile=tile)
            else:
                run = _ChunkRun(denoiser, sigma, options.chunk, overlap, tile, controls)
            with compile_notices(reporter.warned):  # a first run says what it compiles
                for frame in run.frames(stream):
                    writer.write(frame)
                    if not summary["frames"]:
                        summary["first_frame_seconds"] = round(time.perf_counter() - entered, 3)
                    summary["frames"] += 1
                    reporter.advanced(1)
            _account_for_losses(summary, info, writer, options, reporter, _is_cut(options))
    finally:
        stream.close()
    seconds = time.perf_counter() - start
    summary["seconds"] = round(seconds, 3)
    summary["fps"] = round(summary["frames"] / seconds, 3) if seconds > 0 else None
    return summary


def _account_for_losses(
    summary: dict[str, Any],
    info: ClipInfo,
    writer: VideoWriter,
    options: DenoiseOptions,
    reporter: Reporter,
    cut: bool,
) -> None:
    """Frames the input declares but did not yield, and repaired timestamps: counted in
    the summary, warned about, and with `options.strict` a failure (output discarded)."""
    expected = info.declared_frames if info.truncated and info.declared_frames else info.frames
    lost = 0 if cut else max(0, expected - summary["frames"])
    summary["frames_lost"] = lost
    summary["pts_repaired"] = writer.repaired_pts
    if lost:
        why = "the file is truncated" if info.truncated else "damaged frames could not be decoded"
        summary["frames_lost_reason"] = why
        message = f"{lost} of {expected} frames lost: {why}"
        if options.strict:
            raise InputError(f"{message} (--strict)", info.path)
        reporter.warned(f"{info.path}: {message}; denoised the {summary['frames']} that decode")
    if writer.repaired_pts:
        reporter.warned(
            f"{info.path}: {writer.repaired_pts} frames had timestamps that did not increase; "
            "each was moved one frame after the previous"
        )


def _report_matrix(info: ClipInfo) -> str | None:
    """The YUV matrix the noise report uses for a clip (None: an RGB clip, report R, G, B)."""
    from snl_cli.video.colour import sws_matrix

    is_rgb = info.pix_fmt.startswith(("gbr", "rgb", "bgr", "gray", "pal"))
    return None if is_rgb else sws_matrix(info.color)


def _is_cut(options: DenoiseOptions) -> bool:
    return options.frames is not None or options.start is not None or options.duration is not None


def _describe_cut(options: DenoiseOptions) -> str:
    if options.frames is not None:
        first, stop = options.frames
        return f"--frames {first}:{'' if stop is None else stop}"
    return f"--start {options.start or 0:g} --duration {options.duration or 'all'}"


def _cut_length(info: ClipInfo, options: DenoiseOptions) -> int:
    """Frames expected in the cut (for the progress bar; the run counts what it writes)."""
    if options.frames is not None:
        first, stop = options.frames
        return max(0, min(info.frames, stop if stop is not None else info.frames) - first)
    begin = round((options.start or 0.0) * float(info.fps))
    length = info.frames if options.duration is None else round(options.duration * float(info.fps))
    end = begin + length
    return max(0, min(info.frames, end) - begin)


def cut_frames(src: str | os.PathLike[str], options: DenoiseOptions) -> Iterator[Frame]:
    """The frames `options` asks for (--frames, or --start/--duration), indexed from 0.

    Each frame keeps its pts (the writer shifts them, see `VideoWriter(start_pts=...)`);
    `source_index` is its index in the whole clip. Times count from the first frame.
    """
    if options.frames is not None:
        first, stop = options.frames
        frames: Iterator[Frame] = read_frames(src, start=first, stop=stop)
    else:
        first, frames = 0, read_frames(src)
    begin, length = options.start, options.duration
    origin: float | None = None
    index = 0
    for frame in frames:
        origin = frame.time if origin is None else origin
        if begin is not None or length is not None:
            offset = frame.time - origin - (begin or 0.0)
            if offset < -1e-6:
                continue
            if length is not None and offset >= length - 1e-6:
                return
        yield _Indexed(frame.rgb, frame.pts, frame.time_base, index, frame.name, frame.index)
        index += 1


@dataclass(frozen=True, eq=False)
class _Indexed(Frame):
    """A Frame renumbered from 0 within a cut; `source_index` is its index in the clip."""

    source_index: int = 0


def _pick_sigma(
    given: float | None, frames: list[Frame], reporter: Reporter, needed: bool = True
) -> tuple[float, float | None]:
    """(σ to use, raw estimate or None): estimated from up to 5 of the first frames, unless
    given or not `needed` (a blind denoiser: 0, never read)."""
    if given is not None:
        return float(given), None
    if not needed:
        return 0.0, None
    estimate = estimate_sigma(frames[i].rgb for i in pick_frames(len(frames)))
    low, high = SIGMA_RANGE
    sigma = min(max(estimate, low), high)
    if sigma != estimate:
        reporter.warned(
            f"estimated sigma {estimate:.1f} is outside [{low:g}, {high:g}]; using {sigma:g} "
            f"(pass --sigma to choose)"
        )
    return sigma, estimate


def _sigma_source(given: float | None, needed: bool) -> str:
    """ "given", "estimated", or "unused" (a blind denoiser, no --sigma: nothing estimated)."""
    return "given" if given is not None else ("estimated" if needed else "unused")


class _Lookahead:
    """A frame iterator with a buffer: `fill(n)` reads until n frames are buffered."""

    def __init__(self, frames: Iterator[Frame]) -> None:
        self.frames = frames
        self.buffer: deque[Frame] = deque()
        self.ended = False

    def fill(self, count: int) -> list[Frame]:
        while len(self.buffer) < count and not self.ended:
            try:
                self.buffer.append(next(self.frames))
            except StopIteration:
                self.ended = True
        return list(self.buffer)

    def close(self) -> None:
        """Close the reader (and its file) now rather than whenever it is collected."""
        close = getattr(self.frames, "close", None)
        if close is not None:
            close()
        self.buffer.clear()

    def drop_before(self, index: int) -> None:
        while self.buffer and self.buffer[0].index < index:
            self.buffer.popleft()


def run_tile(denoiser: Denoiser, options: DenoiseOptions, info: ClipInfo, window: int) -> Tile:
    """The tile a run cuts frames into: --tile, else for a streamed run `tiles.stream_tile`,
    for chunk windows of `window` frames `auto_tile` (max(height, width): no tiles)."""
    if options.tile is not None:
        return options.tile
    if offers_stream(denoiser):
        return stream_tile(info.height, info.width, denoiser.halo)
    return auto_tile(denoiser, window, info.height, info.width)


def _warn_stream_memory(denoiser: Denoiser, info: ClipInfo, tile: Tile, reporter: Reporter) -> None:
    """Say so when a streamed run is predicted to need more memory than is available: the
    state of every tile's stream and one tile's working set (`stream_footprint`)."""
    need = stream_footprint(denoiser, info.height, info.width, tile)
    have = available_memory(denoiser.device)
    if need > have:
        reporter.warned(
            f"{info.path}: one frame at a time this clip needs ~{need / 1e9:.1f} GB, more than "
            f"the {have / 1e9:.1f} GB available; pass a smaller --tile"
        )


def head_frames(denoiser: Denoiser, window: int, streamed: bool) -> int:
    """Frames read before the first is denoised, σ and the noise report taken from them: a
    chunk window and one more (to know whether another follows), or for a streamed run
    2·context + 1 (a window's frames would only sit in memory)."""
    return 2 * denoiser.context + 1 if streamed else window + 1


_GONE = np.empty((0, 0, 3), np.float32)  # a waiting frame's pixels, not kept


class _StreamRun:
    """The frame loop of a streamed run: each frame is pushed into the denoiser's
    `frame_stream` as it is read and comes out as soon as the stream completes it."""

    def __init__(
        self,
        denoiser: Denoiser,
        sigma: float,
        controls: Controls | None = None,
        pooled: bool | None = None,
        focus: tuple[int, int] | None = None,
        tile: Tile | None = None,
        region: tuple[int, int, int, int] | None = None,
    ):
        """`pooled`: run in `heap.pooled_heap` (None: when the frame is small enough,
        `memory.fits_pooled_heap`); it changes the speed and the footprint, not the output.
        `focus` (frame, frames): only that frame of a clip of `frames` frames is denoised
        (`snl preview`); the others come out as their input (not valid). `tile`: frames are
        cut into these tiles, a stream each (None: whole frames); `region` (y0, y1, x0, x1):
        only the tiles touching it run (pixels elsewhere are not valid)."""
        self.denoiser, self.sigma = denoiser, sigma
        self.controls = controls or Controls()
        self.pooled, self.focus = pooled, focus
        self.tile, self.region = tile, region

    def frames(self, stream: _Lookahead) -> Iterator[Frame]:
        """Yield the denoised frames in order."""
        waiting: deque[Frame] = deque()  # pushed, not yet out
        head = stream.fill(1)
        height, width = head[0].rgb.shape[:2] if head else (0, 0)

        def tile_stream() -> FrameStream:
            run = frame_stream(self.denoiser, self.sigma, self.focus)
            assert run is not None
            return run

        keep_input = self.focus is not None or not self.controls.is_identity
        tile = max(height, width) if self.tile is None else self.tile
        run = TiledStream(tile_stream, height, width, tile, self.denoiser.halo, self.region)
        pooled = fits_pooled_heap(height * width) if self.pooled is None else self.pooled
        with pooled_heap() if pooled else nullcontext():  # reuse the same pages every frame
            while True:
                ended = not stream.fill(1)
                if ended:
                    outs = run.close()
                else:
                    frame = stream.buffer.popleft()
                    # the input waits only for the controls (or as an out-of-focus output):
                    # ~6 frames of float RGB, 0.6 GB at 3840x2160
                    waiting.append(frame if keep_input else dataclasses.replace(frame, rgb=_GONE))
                    outs = run.push(torch.from_numpy(frame.rgb).permute(2, 0, 1))
                for out in outs:
                    frame = waiting.popleft()
                    if out is None:  # out of focus
                        yield frame
                        continue
                    rgb = np.ascontiguousarray(out.permute(1, 2, 0).numpy())
                    rgb = apply_controls(frame.rgb, rgb, self.controls)
                    yield dataclasses.replace(frame, rgb=rgb)
                if ended:
                    return


class _ChunkRun:
    """The chunk loop: windows of chunk + 2·overlap frames, blended where they overlap."""

    def __init__(
        self,
        denoiser: Denoiser,
        sigma: float,
        chunk: int,
        overlap: int,
        tile: Tile,
        controls: Controls | None = None,
        *,
        first_window: int = 0,
        region: tuple[int, int, int, int] | None = None,
        focus: int | None = None,
    ):
        """`first_window` > 0 starts at that window (`snl preview`: the frames before it
        come out incomplete); `region` (y0, y1, x0, x1) denoises only the tiles touching it
        (pixels elsewhere are not valid), see `denoise_tiled`; `focus` denoises, of each
        window, only the frames within `temporal_reach` of that frame, whose output does not
        depend on the others (the others come out as their input: not valid)."""
        self.denoiser, self.sigma = denoiser, sigma
        self.controls = controls or Controls()
        self.first_window, self.region, self.focus = first_window, region, focus
        self.chunk, self.overlap, self.tile = chunk, overlap, tile
        self._sums: dict[int, np.ndarray] = {}
        self._weights: dict[int, float] = {}

    def frames(self, stream: _Lookahead) -> Iterator[Frame]:
        """Yield the denoised frames in order, each as soon as no later window holds it."""
        chunk, overlap = self.chunk, self.overlap
        k = self.first_window
        while True:
            first = max(0, k * chunk - overlap)
            wanted = (k + 1) * chunk + overlap
            stream.drop_before(first)
            buffered = stream.fill(wanted - first + 1)  # one more: is there a next window?
            pieces = buffered[: wanted - first]
            if not pieces:
                return
            last = len(buffered) <= wanted - first
            self._add_window(pieces, shared_start=first > 0, shared_end=not last)
            done = pieces[-1].index + 1 if last else (k + 1) * chunk - overlap
            for frame in pieces:
                if frame.index >= done:
                    break
                yield self._finish(frame)
            if last:
                return
            k += 1

    def _add_window(self, pieces: list[Frame], shared_start: bool, shared_end: bool) -> None:
        weights = ramp_weights(len(pieces), self.overlap, shared_start, shared_end)
        lo, hi = 0, len(pieces)
        if self.focus is not None:
            at, reach = self.focus - pieces[0].index, temporal_reach(self.denoiser)
            lo, hi = max(0, at - reach), min(len(pieces), at + reach + 1)
        height, width = pieces[0].rgb.shape[:2]
        clip = torch.empty(hi - lo, 3, height, width)  # filled in place: one copy, not two
        for i, frame in enumerate(pieces[lo:hi]):
            clip[i].copy_(torch.from_numpy(frame.rgb).permute(2, 0, 1))
        out = denoise_tiled(self.denoiser, clip, self.sigma, self.tile, self.region)
        del clip  # the stream still holds the frames; the window's copy can go before the sums
        out = out.permute(0, 2, 3, 1).numpy()
        for frame, rgb, weight in zip(pieces[lo:hi], out, weights[lo:hi], strict=True):
            if frame.index in self._sums:
                self._sums[frame.index] += weight * rgb
                self._weights[frame.index] += weight
            else:
                self._sums[frame.index] = weight * rgb
                self._weights[frame.index] = weight

    def _finish(self, frame: Frame) -> Frame:
        if frame.index not in self._sums:  # out of focus: not denoised, not valid
            return frame
        rgb = self._sums.pop(frame.index) / self._weights.pop(frame.index)
        rgb = apply_controls(frame.rgb, np.clip(rgb, 0.0, 1.0, out=rgb), self.controls)
        return dataclasses.replace(frame, rgb=rgb)


def temporal_reach(denoiser: Denoiser) -> int:
    """Frames each side of t that a window's output at t can depend on: `context`, and up to
    twice that near the window's ends, where a temporal search window slides inward instead
    of running past them (measured on the shipped STAN: 6 of its 8 were needed)."""
    return 2 * denoiser.context


def ramp_weights(length: int, overlap: int, shared_start: bool, shared_end: bool) -> list[float]:
    """Blend weight of each frame of a window of `length` frames.

    Linear over the 2·overlap frames next to an edge shared with another window,
    (d + 0.5) / (2·overlap) at distance d from that edge, so that the two windows'
    weights sum to one; 1 elsewhere.
    """
    weights = []
    for i in range(length):
        distances = [i] * shared_start + [length - 1 - i] * shared_end
        d = min(distances, default=math.inf)
        weights.append(1.0 if overlap == 0 else min(1.0, (d + 0.5) / (2 * overlap)))
    return weights
