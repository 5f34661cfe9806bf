"""Still images: listing folders in natural order, decoding, writing PNG frames, and writing
one picture in the format its suffix names.

Images are decoded and PNGs encoded with FFmpeg's own image codecs through PyAV, like video;
JPEG and TIFF pictures are encoded by OpenCV.
"""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from snl_cli.errors import InputError, OutputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
JPEG_SUFFIXES = (".jpg", ".jpeg")
JPEG_QUALITY = 95  # a written JPEG picture's quality (OpenCV, 4:4:4 chroma)
_DIGITS = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple:
    """Sort key that orders embedded numbers by value: frame2 < frame10."""
    parts = _DIGITS.split(name.casefold())
    return tuple((0, int(p), p) if p.isdigit() else (1, 0, p) for p in parts)


def list_images(folder: Path) -> list[Path]:
    """The image files directly in `folder`, in natural order (hidden files skipped).

    Raises:
        InputError: the folder cannot be listed or holds no images.
    """
    try:
        entries = [
            p
            for p in folder.iterdir()
            if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file()
        ]
    except OSError as exc:
        raise InputError(exc.strerror or "cannot list folder", folder) from exc
    if not entries:
        kinds = "/".join(s.lstrip(".") for s in IMAGE_SUFFIXES)
        raise InputError(f"no images ({kinds}) in folder", folder)
    return sorted(entries, key=lambda p: natural_key(p.name))


def decode_image(path: Path) -> tuple[av.VideoFrame, str]:
    """Decode the first (only) picture of an image file.

    Returns:
        The frame and the name of the codec that decoded it ("png", "mjpeg", "tiff").

    Raises:
        InputError: the file is empty or is not an image FFmpeg can decode.
    """
    try:
        if path.stat().st_size == 0:
            raise InputError("empty file", path)
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            for frame in container.decode(stream):
                return frame, stream.codec_context.name
    except (av.FFmpegError, OSError, IndexError) as exc:
        cause = getattr(exc, "strerror", None) or "not a readable image"
        raise InputError(f"cannot decode image: {cause}", path) from exc
    raise InputError("cannot decode image: no picture in file", path)


def quantize(rgb: np.ndarray, white: float = 255, dtype: type = np.uint8) -> np.ndarray:
    """Float RGB in [0, 1] -> integer code values: rint(rgb * white), clipped to `dtype`'s
    range (uint8 by default: 0..255). The one conversion of frames to integers."""
    top = np.iinfo(dtype).max
    return np.clip(np.rint(rgb * np.float32(white)), 0, top).astype(dtype)


def write_png(path: Path, rgb: np.ndarray, deep: bool) -> None:
    """Write float RGB (H, W, 3) in [0, 1] as an 8-bit or (deep) 16-bit PNG.

    Raises:
        OutputError: the file cannot be written.
    """
    scale, dtype, fmt = (65535, np.uint16, "rgb48le") if deep else (255, np.uint8, "rgb24")
    pixels = quantize(np.asarray(rgb, np.float32), scale, dtype)
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format=fmt)
    context = av.CodecContext.create("png", "w")
    context.width, context.height = frame.width, frame.height
    context.pix_fmt = "rgb48be" if deep else "rgb24"
    context.time_base = Fraction(1, 25)
    frame = frame.reformat(format=context.pix_fmt)
    frame.pts = 0
    data = b"".join(bytes(p) for p in context.encode(frame))
    data += b"".join(bytes(p) for p in context.encode())
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise OutputError(exc.strerror or "cannot write", path) from exc


def write_picture(path: Path, rgb: np.ndarray, deep: bool) -> None:
    """Write float RGB (H, W, 3) in [0, 1] as one picture in the format of `path`'s suffix:
    PNG or TIFF, 8-bit or (deep) 16-bit, or JPEG (8-bit, quality JPEG_QUALITY, 4:4:4).

    Raises:
        OutputError: the file cannot be encoded or written.
    """
    import cv2

    suffix = path.suffix.lower()
    if suffix == ".png":
        write_png(path, rgb, deep)
        return
    jpeg = suffix in JPEG_SUFFIXES
    deep = deep and not jpeg
    white, dtype = (65535, np.uint16) if deep else (255, np.uint8)
    pixels = quantize(np.asarray(rgb, np.float32), white, dtype)
    params = []
    if jpeg:
        sampling = cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444
        params = [
            cv2.IMWRITE_JPEG_QUALITY,
            JPEG_QUALITY,
            cv2.IMWRITE_JPEG_SAMPLING_FACTOR,
            sampling,
        ]
    ok, data = cv2.imencode(suffix, np.ascontiguousarray(pixels[..., ::-1]), params)
    if not ok:
        raise OutputError(f"cannot encode a {suffix} picture", path)
    try:
        path.write_bytes(data.tobytes())
    except OSError as exc:
        raise OutputError(exc.strerror or "cannot write", path) from exc
