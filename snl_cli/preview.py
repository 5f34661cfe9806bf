"""A look before the long run: `make_preview(src, png, options)` denoises one frame's crop.

The preview computes exactly what `snl denoise` with the same options would write for
that crop, bit for bit, and only that. A streamed run (STAN on the CPU) is replayed on the
frames within the model's context of the frame (`stream_range`: 9 frames for STAN, 17 near
the clip's ends), computing only what the frame's output depends on, on the tiles of the
full run that touch the crop (whole frames when it does not tile them). A chunked run is
replayed, of the chunk windows that hold the frame, on the frames within
`pipeline.temporal_reach` (2·context) of it, and of each frame on the tiles of the full
run's tile grid that touch the crop (plus a margin for --grain's blur): when the full run
would not tile the frame, the whole frame is denoised (exactness needs it). Either way a
smaller `--tile`, given to both commands, makes it faster. The preview starts from the same
σ (estimated on the clip's first frames, as the full run does) and applies the same controls.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Generator, Iterator
from contextlib import closing
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from snl_cli.controls import Controls, apply_controls
from snl_cli.denoisers import Denoiser, offers_stream, uses_sigma
from snl_cli.ensemble import ensembled
from snl_cli.errors import InputError, OutputError, UsageError
from snl_cli.noise import noise_report
from snl_cli.pipeline import (
    DenoiseOptions,
    Reporter,
    _ChunkRun,
    _Lookahead,
    _pick_sigma,
    _report_matrix,
    _Silent,
    _StreamRun,
    check_options,
    head_frames,
    run_tile,
)
from snl_cli.tiles import tile_summary
from snl_cli.video import Frame, probe, read_frames
from snl_cli.video.images import quantize

GRAIN_MARGIN = 8  # px: the reach of --grain's Gaussian blur (13-tap kernel at σ 1.5)
LABEL_HEIGHT = 34  # px of label above each panel (two lines of text)
GAP = 4  # px between panels


def window_range(frame: int, chunk: int, overlap: int) -> tuple[int, int]:
    """First and last chunk window (k) of `snl denoise` that hold `frame`.

    Window k spans frames [k·chunk − overlap, (k+1)·chunk + overlap).
    """
    first = max(0, (frame - overlap - chunk) // chunk + 1)  # (k+1)·chunk + overlap > frame
    last = (frame + overlap) // chunk  # k·chunk − overlap <= frame
    return first, last


def stream_range(frame: int, frames: int, context: int) -> tuple[int, int]:
    """The frames [start, stop) a streamed preview of `frame` runs as a clip of its own.

    Inside the clip the output at t depends on the frames within `context` of it only, so a
    clip cut there computes it exactly; within 2·context of the clip's ends, where temporal
    search windows slide inward, on up to 2·context (`pipeline.temporal_reach`).
    """
    reach = context if context * 2 <= frame < frames - 2 * context else 2 * context
    return max(0, frame - reach), frame + reach + 1


def parse_crop(text: str) -> tuple[int, int, int, int]:
    """ "X,Y,W,H" → (x, y, w, h); UsageError for anything else."""
    try:
        x, y, w, h = (int(part) for part in text.split(","))
    except ValueError:
        raise UsageError(f"--crop: expected X,Y,W,H in pixels, got {text!r}") from None
    if x < 0 or y < 0 or w < 1 or h < 1:
        raise UsageError(f"--crop: expected X, Y >= 0 and W, H >= 1, got {text!r}")
    return x, y, w, h


def make_preview(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    options: DenoiseOptions | None = None,
    *,
    frame: int | None = None,
    at_time: float | None = None,
    crop: tuple[int, int, int, int] | None = None,
    strengths: list[float] | None = None,
    overwrite: bool = False,
    denoiser: Denoiser | None = None,
    reporter: Reporter | None = None,
) -> dict[str, Any]:
    """Denoise one frame's crop as `snl denoise` would and write input | output(s) as PNG.

    Args:
        src: input clip.
        dst: PNG to write (temporary file, renamed into place).
        options: the denoise options (controls included); `frames`/`start` are ignored.
        frame, at_time: the frame, by index or by seconds from the first frame (default:
            the middle frame).
        crop: (x, y, w, h) in pixels, clipped to the frame (default: the whole frame).
        strengths: one output panel per --strength value instead of the options' own.
        denoiser: a ready denoiser (tests); None builds `options.model`.

    Returns:
        Summary: input, output, frame, time, crop, model, sigma, blind, noise (the report
        of `snl_cli.noise.noise_report` on the frame), panels [{label, box [x, y, w, h]}],
        tile, windows, seconds.
    """
    options = options or DenoiseOptions()
    reporter = reporter or _Silent()
    check_options(options)
    src, dst = Path(src), Path(dst)
    if dst.suffix.lower() != ".png":
        raise UsageError(f"-o: the preview is a PNG image, got {dst.name!r}")
    if dst.exists() and not overwrite:
        raise OutputError("already exists (pass --overwrite to replace it)", dst)
    if dst.resolve() == src.resolve():
        raise OutputError("is the input", dst)
    started = time.perf_counter()
    info = probe(src)
    index = _pick_frame(src, info, frame, at_time)
    x, y, w, h = _clip_crop(crop, info.width, info.height, src)
    if denoiser is None:
        denoiser = options.make_denoiser()
    denoiser, _ = ensembled(denoiser, options.ensemble, info.frames)
    overlap = denoiser.context if options.overlap is None else options.overlap
    chunk = options.chunk
    window = chunk + 2 * overlap
    streamed = offers_stream(denoiser)
    tile = run_tile(denoiser, options, info, window)
    # σ as the full run picks it: from the clip's first frames, when it is used.
    blind = not uses_sigma(denoiser)
    head = [] if blind else list(_take(read_frames(src), head_frames(denoiser, window, streamed)))
    sigma, _ = _pick_sigma(options.sigma, head, reporter, not blind)
    del head
    margin = GRAIN_MARGIN if (options.grain or strengths) else 0
    region = (max(0, y - margin), min(info.height, y + h + margin),
              max(0, x - margin), min(info.width, x + w + margin))  # fmt: skip
    windows: list[int] | None = None
    run: _ChunkRun | _StreamRun
    if streamed:  # the frames within reach of the frame, as a clip of their own
        start, stop = stream_range(index, info.frames, denoiser.context)
        focus = (index - start, min(stop, info.frames) - start)
        run = _StreamRun(denoiser, sigma, pooled=True, focus=focus, tile=tile, region=region)
    else:
        first_k, last_k = window_range(index, chunk, overlap)
        windows = [first_k, last_k]
        start = max(0, first_k * chunk - overlap)
        stop = (last_k + 1) * chunk + overlap + 1  # +1: the full run looks one frame ahead
        run = _ChunkRun(denoiser, sigma, chunk, overlap, tile, Controls(),
                        first_window=first_k, region=region, focus=index)  # fmt: skip
    stream = _Lookahead(_remembering(read_frames(src, start=start, stop=stop), index))
    try:
        denoised, noisy = _frame_of(run, stream, index, src)
    except ValueError as exc:
        if not streamed:
            raise
        # the replay ended short of the frames the clip declares (a damaged or cut file)
        raise InputError(f"frame {index}: {exc}", src) from None
    finally:
        stream.close()
    # Pixels outside the denoised region take the input, so the controls stay finite.
    ry0, ry1, rx0, rx1 = region
    filled = noisy.copy()
    filled[ry0:ry1, rx0:rx1] = denoised[ry0:ry1, rx0:rx1]
    space = info.color.get("space")
    variants = [options.controls(space)] if not strengths else [
        dataclasses.replace(options.controls(space), strength=s) for s in strengths
    ]  # fmt: skip
    outputs = [apply_controls(noisy, filled, c)[y : y + h, x : x + w] for c in variants]
    report = noise_report([noisy], _report_matrix(info))
    name = denoiser.name
    model_label = f"{name} (blind)" if blind else f"{name}, sigma {sigma:g}"
    noise_text = ", ".join(
        f"{k} {v:g}" for k, v in report["overall"].items() if v is not None
    )  # fmt: skip
    labels = [(f"input, frame {index}", f"noise sigma: {noise_text}")]
    labels += [(f"{model_label}", c.describe()) for c in variants]
    panels = [noisy[y : y + h, x : x + w], *outputs]
    boxes = _write_strip(dst, panels, labels, overwrite)
    return {
        "input": str(src),
        "output": str(dst),
        "frame": index,
        "crop": [x, y, w, h],
        "model": name,
        "sigma": None if blind and options.sigma is None else round(sigma, 2),
        "blind": blind,
        "noise": report,
        "panels": [
            {"label": " | ".join(label), "box": box}
            for label, box in zip(labels, boxes, strict=True)
        ],
        "tile": tile_summary(tile, info.height, info.width),
        "windows": windows,
        "streamed": streamed,
        "chunk": chunk,
        "overlap": overlap,
        "seconds": round(time.perf_counter() - started, 3),
    }


def _take(frames: Generator[Frame, None, None], count: int) -> list[Frame]:
    """The first `count` frames of a reader, which is then closed."""
    with closing(frames):
        return list(islice(frames, count))


def _pick_frame(src: Path, info, frame: int | None, at_time: float | None) -> int:
    if frame is not None and at_time is not None:
        raise UsageError("give either --frame or --time, not both")
    if frame is not None:
        if not 0 <= frame < info.frames:
            raise UsageError(f"--frame: expected 0 to {info.frames - 1}, got {frame}")
        return frame
    if at_time is None:
        return info.frames // 2
    if at_time < 0:
        raise UsageError(f"--time: expected seconds >= 0, got {at_time:g}")
    # The last frame shown at `at_time`: timestamps decide (variable frame rates too).
    origin, best = None, None
    with closing(read_frames(src)) as frames:
        for candidate in frames:
            origin = candidate.time if origin is None else origin
            if candidate.time - origin > at_time + 1e-6:
                break
            best = candidate.index
    if best is None:
        raise InputError("no frame at that time", src)
    return best


def _clip_crop(
    crop: tuple[int, int, int, int] | None, width: int, height: int, src: Path
) -> tuple[int, int, int, int]:
    if crop is None:
        return 0, 0, width, height
    x, y, w, h = crop
    if x >= width or y >= height:
        raise UsageError(f"--crop: {x},{y} is outside the {width}x{height} frame")
    return x, y, min(w, width - x), min(h, height - y)


class _remembering:
    """The frames of a reader, keeping the input of frame `index` (`.kept`) as it passes."""

    def __init__(self, frames: Generator[Frame, None, None], index: int) -> None:
        self.frames, self.index = frames, index
        self.kept: np.ndarray | None = None

    def __iter__(self) -> Iterator[Frame]:
        return self

    def __next__(self) -> Frame:
        frame = next(self.frames)
        if frame.index == self.index:
            self.kept = frame.rgb
        return frame

    def close(self) -> None:
        self.frames.close()


def _frame_of(
    run: _ChunkRun | _StreamRun, stream: _Lookahead, index: int, src: Path
) -> tuple[np.ndarray, np.ndarray]:
    """(denoised, input) RGB of frame `index`, from the run that holds it."""
    for frame in run.frames(stream):
        if frame.index == index:
            noisy = stream.frames.kept
            assert noisy is not None
            return frame.rgb, noisy
    raise InputError(f"frame {index} could not be decoded", src)


def _write_strip(
    dst: Path, panels: list[np.ndarray], labels: list[tuple[str, str]], overwrite: bool
) -> list[list[int]]:
    """Panels side by side under their labels, as an 8-bit RGB PNG; returns their boxes."""
    from PIL import Image, ImageDraw

    h, w = panels[0].shape[:2]
    width = len(panels) * w + (len(panels) - 1) * GAP
    canvas = np.full((LABEL_HEIGHT + h, width, 3), 24, np.uint8)
    boxes = []
    for i, panel in enumerate(panels):
        left = i * (w + GAP)
        canvas[LABEL_HEIGHT:, left : left + w] = quantize(np.asarray(panel, np.float32))
        boxes.append([left, LABEL_HEIGHT, w, h])
    image = Image.fromarray(canvas)
    draw = ImageDraw.Draw(image)
    for (line1, line2), (left, *_) in zip(labels, boxes, strict=True):
        draw.text((left + 4, 3), _fit(line1, w), fill=(255, 255, 255))
        draw.text((left + 4, 18), _fit(line2, w), fill=(200, 200, 200))
    from snl_cli.video.safety import write_atomically

    write_atomically(dst, lambda tmp: image.save(tmp, format="PNG"), overwrite)
    return boxes


def _fit(text: str, width: int) -> str:
    """Cut a label to what fits in `width` pixels of PIL's default 6-px-wide font."""
    chars = max(4, math.floor((width - 8) / 6))
    return text if len(text) <= chars else text[: chars - 1] + "…"
