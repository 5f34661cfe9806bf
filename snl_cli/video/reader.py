"""Lazy frame reading: `read_frames(path)` yields float RGB frames one at a time."""

from __future__ import annotations

import os
from collections.abc import Generator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from snl_cli.errors import InputError
from snl_cli.video.colour import merge_tags, tags_of, to_rgb
from snl_cli.video.images import decode_image, list_images
from snl_cli.video.probe import (
    DEFAULT_IMAGE_FPS,
    bit_depth,
    check_pixel_format,
    decode_packets,
    no_frame_error,
    open_input,
    video_stream,
)


@dataclass(frozen=True, eq=False)
class Frame:
    """One decoded frame.

    Attributes:
        rgb: float32 (H, W, 3) in [0, 1], converted with the clip's colour matrix and range.
        pts: presentation time in `time_base` units (as stored in the file).
        time_base: seconds per pts unit.
        index: position in the clip, from 0.
        name: the image's file name for frame folders, else None.
    """

    rgb: np.ndarray
    pts: int
    time_base: Fraction
    index: int
    name: str | None = None

    @property
    def time(self) -> float:
        """Presentation time in seconds."""
        return float(self.pts * self.time_base)


def read_frames(
    path: str | os.PathLike[str],
    *,
    start: int = 0,
    stop: int | None = None,
    fps: Fraction | float | None = None,
) -> Generator[Frame, None, None]:
    """Yield frames `start` to `stop` (exclusive) in order, decoding lazily (a generator:
    `close()` closes the file).

    Only one decoded frame is held at a time, so memory does not grow with clip length.
    8-bit sources decode through rgb24, deeper ones through rgb48le so that 10-bit
    precision survives. Frames before `start` are decoded (exact positions need it) but
    not converted.

    A truncated or partly corrupt file yields every frame that can be decoded and then
    stops, as the ffmpeg tool does; a file with no decodable frame raises InputError.
    Rotated clips are returned as stored: the display rotation is metadata, kept by the
    writer, not applied to the pixels.

    Args:
        path: a video file or a folder of images (natural order, all the same size).
        start, stop: frame index range.
        fps: frame rate for image folders (25 by default): frame i gets pts i in 1/fps.

    Raises:
        InputError: unreadable input (raised on the first `next`), or an image whose size
            differs from the first image's.
        ValueError: a negative `start` or `stop < start`.
    """
    if start < 0 or (stop is not None and stop < start):
        raise ValueError(f"need 0 <= start <= stop, got start={start}, stop={stop}")
    path = Path(path)
    if path.is_dir():
        return _read_images(path, start, stop, fps)
    return _read_video(path, start, stop)


def _read_video(path: Path, start: int, stop: int | None) -> Generator[Frame, None, None]:
    if not path.exists():
        raise InputError("no such file or folder", path)
    with open_input(path) as container:
        stream = video_stream(container, path)
        stream.thread_type = "AUTO"
        stream_tags = tags_of(stream.codec_context)
        step = _frame_step(stream)
        deep: bool | None = None
        index = 0
        for frame in decode_packets(container, stream):
            if stop is not None and index >= stop:
                return
            if deep is None:
                check_pixel_format(frame, path)
                deep = bit_depth(frame.format.name) > 8
            if index >= start:
                tags = merge_tags(tags_of(frame), stream_tags)
                pts = frame.pts if frame.pts is not None else round(index * step)
                rgb = to_rgb(frame, tags, deep)
                yield Frame(rgb, pts, frame.time_base or stream.time_base, index)
            index += 1
        if index == 0:
            raise no_frame_error(path)


def _frame_step(stream: av.VideoStream) -> Fraction:
    """pts units per frame, for the rare frames that carry no pts."""
    rate = stream.average_rate or stream.guessed_rate or DEFAULT_IMAGE_FPS
    return 1 / (Fraction(rate) * (stream.time_base or Fraction(1, 90000)))


def _read_images(
    folder: Path, start: int, stop: int | None, fps: Fraction | float | None
) -> Generator[Frame, None, None]:
    files = list_images(folder)
    rate = Fraction(fps).limit_denominator(1_000_000) if fps else DEFAULT_IMAGE_FPS
    first, _ = decode_image(files[0])
    check_pixel_format(first, files[0])
    deep = bit_depth(first.format.name) > 8
    size = (first.width, first.height)
    for index in range(start, len(files) if stop is None else min(stop, len(files))):
        path = files[index]
        frame = first if index == 0 else decode_image(path)[0]
        if (frame.width, frame.height) != size:
            raise InputError(
                f"image is {frame.width}x{frame.height}, expected {size[0]}x{size[1]} "
                f"like {files[0].name} (a frame folder is one clip; separate photographs: "
                "snl batch --photos)",
                path,
            )
        check_pixel_format(frame, path)
        try:
            rgb = to_rgb(frame, tags_of(frame), deep)
        except av.FFmpegError as exc:
            raise InputError(f"cannot convert to RGB: {exc.strerror}", path) from exc
        yield Frame(rgb, index, 1 / rate, index, path.name)
