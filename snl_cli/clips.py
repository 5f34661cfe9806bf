"""Clips on disk: finding video files and frame folders, and holding a clip whole as 8-bit
frames (training, benchmarks, the demo).

A clip is a video file, a frame folder (a folder holding images) or a photograph.
`walk_clips` lists the clips below a folder (`snl batch`); `expand_clips` takes paths that
are clips or folders of clips (`snl train --data`, `snl bench denoise`). `read_uint8`
decodes frames as uint8 RGB (H, W, 3) and `write_lossless` writes such frames so that
decoding gives them back exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np

from snl_cli.errors import InputError
from snl_cli.video.images import IMAGE_SUFFIXES, quantize
from snl_cli.video.safety import is_temp_name

VIDEO_SUFFIXES = frozenset(
    {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".mts",
     ".m2ts", ".wmv", ".flv", ".y4m", ".nut", ".mxf", ".ogv", ".3gp"}
)  # fmt: skip


def holds_images(folder: Path) -> bool:
    """True when `folder` holds at least one (not hidden) image: it is a frame folder."""
    try:
        return any(
            p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
            for p in folder.iterdir()
        )
    except OSError:
        return False


def walk_clips(
    folder: Path, recursive: bool = False, skip: Path | None = None, photos: bool = False
) -> Iterator[Path]:
    """Video files (by suffix), frame folders and photographs in `folder`, in name order; with
    `recursive` also in its subfolders that are not frame folders.

    Image files directly in `folder` (the top level) are photographs: one-frame clips each,
    since a collection of clips holds no loose frames. A folder holding images below it is a
    frame folder (one clip, a frame sequence), unless `photos`: then every image file is a
    photograph of its own, and a subfolder of images is looked into (as a frame folder would
    be found) even without `recursive`.

    Hidden entries (snl's temporary outputs among them) and `skip` (a resolved path: the
    output folder when it lies inside the input folder) are left out.

    Raises:
        InputError: `folder` cannot be listed.
    """
    return _walk(folder, recursive, skip, photos, top=True)


def _walk(
    folder: Path, recursive: bool, skip: Path | None, photos: bool, top: bool
) -> Iterator[Path]:
    """`walk_clips` below `folder`; `top`: `folder` is the one walked, not a subfolder."""
    try:
        entries = sorted(folder.iterdir())
    except OSError as exc:
        raise InputError(exc.strerror or "cannot list folder", folder) from exc
    for entry in entries:
        if entry.name.startswith(".") or is_temp_name(entry.name):
            continue
        if skip is not None and entry.resolve() == skip:
            continue
        if entry.is_dir():
            images = holds_images(entry)
            if images and not photos:
                yield entry
            elif recursive or (images and top):  # photos: a folder of them, one level down
                yield from _walk(entry, recursive, skip, photos, top=False)
        elif entry.is_file():
            suffix = entry.suffix.lower()
            if suffix in VIDEO_SUFFIXES or ((photos or top) and suffix in IMAGE_SUFFIXES):
                yield entry


def expand_clips(paths: list[Path] | list[str]) -> list[Path]:
    """Each path is a clip (a file of any kind, or a frame folder) or a folder of clips,
    which stands for the clips directly in it (`walk_clips`).

    Raises:
        InputError: a path does not exist, or no clip is found.
    """
    clips: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise InputError("no such file or folder", path)
        if path.is_file() or holds_images(path):
            clips.append(path)
        else:
            clips.extend(walk_clips(path))
    if not clips:
        raise InputError("no clips found", paths[0] if paths else ".")
    return clips


def read_uint8(path: Path, stop: int | None = None, min_frames: int = 0) -> list[np.ndarray]:
    """The first `stop` frames (None: all) of a clip or image, each uint8 RGB (H, W, 3).

    Raises:
        InputError: fewer than `min_frames` frames.
    """
    from snl_cli.video import read_frames

    frames = [quantize(frame.rgb) for frame in read_frames(path, stop=stop)]
    if len(frames) < min_frames:
        raise InputError(f"needs at least {min_frames} frames, has {len(frames)}", path)
    return frames


def read_image(path: Path) -> np.ndarray:
    """One image (or a clip's first frame) as uint8 RGB (H, W, 3)."""
    frames = read_uint8(path, stop=1)
    if not frames:
        raise InputError("no frames", path)
    return frames[0]


def write_lossless(frames: list[np.ndarray], path: Path, fps: int = 25) -> None:
    """Write uint8 RGB frames (H, W, 3) losslessly (FFV1, bgr0) so decoding gives them back
    exactly."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=fps)
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = "bgr0"
        stream.codec_context.time_base = Fraction(1, fps)
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="bgr0")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
