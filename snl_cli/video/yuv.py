"""Exact planar YUV <-> float RGB in numpy: `yuv_to_rgb(frame, tags)`, `rgb_to_yuv(...)`.

swscale rounds to 8 or 16 bits between its stages and biases some paths (full range,
8-bit 4:2:0 through rgb24) by up to a level. Here every step is float32: the matrix from
the clip's tags (BT.601 when untagged, as FFmpeg assumes), the range (limited or full),
and chroma resampling that respects the siting. MPEG-2/H.264/HEVC site 4:2:0 and 4:2:2
chroma on the left luma column and, for 4:2:0, halfway between rows; JPEG ("yuvj")
centres it both ways. Upsampling is linear between chroma sites; downsampling is its
least-squares inverse, so a frame read and written unchanged gets its code values back
(exactly away from the borders, and with the same mean everywhere).
"""

from __future__ import annotations

import functools
import re

import av
import numpy as np

# (Kr, Kb) luma weights of the YUV matrices; untagged and unknown ones use BT.601.
_KR_KB = {
    "bt709": (0.2126, 0.0722),
    "fcc": (0.30, 0.11),
    "bt470bg": (0.299, 0.114),
    "smpte170m": (0.299, 0.114),
    "smpte240m": (0.212, 0.087),
    "bt2020nc": (0.2627, 0.0593),
    "bt2020c": (0.2627, 0.0593),
}
_BT601 = (0.299, 0.114)
_PLANAR = re.compile(r"^yuv(j?)(420|422|440|444)p(?:(9|10|12|14|16)le)?$")
_SUBSAMPLING = {
    "420": (True, True), "422": (True, False), "440": (False, True), "444": (False, False),
}  # fmt: skip


def handles(pix_fmt: str) -> bool:
    """Whether `pix_fmt` is a little-endian planar YUV format this module converts."""
    return bool(_PLANAR.match(pix_fmt))


def yuv_to_rgb(frame: av.VideoFrame, tags: dict[str, str | None]) -> np.ndarray:
    """A planar YUV frame -> float32 RGB (H, W, 3), clipped to [0, 1]."""
    jpeg, sub_x, sub_y, depth = _layout(frame.format.name)
    dtype = np.uint16 if depth > 8 else np.uint8
    y, u, v = (_plane_array(p, dtype).astype(np.float32) for p in frame.planes[:3])
    full = jpeg or tags.get("range") == "pc"
    y, u, v = _normalise(y, u, v, depth, full)
    height, width = y.shape
    if sub_x:
        u, v = (_upsample(c, 1, width, 0.5 if jpeg else 0.0) for c in (u, v))
    if sub_y:
        u, v = (_upsample(c, 0, height, 0.5) for c in (u, v))
    kr, kb = _KR_KB.get(tags.get("space") or "", _BT601)
    kg = 1.0 - kr - kb
    red = y + np.float32(2 * (1 - kr)) * v
    blue = y + np.float32(2 * (1 - kb)) * u
    green = (y - np.float32(kr) * red - np.float32(kb) * blue) * np.float32(1 / kg)
    rgb = np.stack([red, green, blue], axis=-1)
    return np.clip(rgb, 0.0, 1.0, out=rgb)


def rgb_to_yuv(rgb: np.ndarray, pix_fmt: str, tags: dict[str, str | None]) -> av.VideoFrame:
    """Float RGB (H, W, 3) in [0, 1] -> a planar YUV frame of `pix_fmt` (accurate rounding)."""
    jpeg, sub_x, sub_y, depth = _layout(pix_fmt)
    rgb = np.asarray(rgb, dtype=np.float32)
    kr, kb = _KR_KB.get(tags.get("space") or "", _BT601)
    red, green, blue = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = np.float32(kr) * red + np.float32(1 - kr - kb) * green + np.float32(kb) * blue
    u = (blue - y) * np.float32(1 / (2 * (1 - kb)))
    v = (red - y) * np.float32(1 / (2 * (1 - kr)))
    if sub_x:
        u, v = (_downsample(c, 1, 0.5 if jpeg else 0.0) for c in (u, v))
    if sub_y:
        u, v = (_downsample(c, 0, 0.5) for c in (u, v))
    full = jpeg or tags.get("range") == "pc"
    codes = _quantise(y, u, v, depth, full)
    height, width = y.shape
    frame = av.VideoFrame(width, height, pix_fmt)
    for plane, values in zip(frame.planes, codes, strict=True):
        _plane_array(plane, values.dtype)[...] = values
    return frame


def _layout(pix_fmt: str) -> tuple[bool, bool, bool, int]:
    """(jpeg, horizontal subsampling, vertical subsampling, bit depth)."""
    match = _PLANAR.match(pix_fmt)
    if match is None:
        raise ValueError(f"not a planar little-endian YUV format: {pix_fmt}")
    jpeg, kind, bits = match.groups()
    return bool(jpeg), *_SUBSAMPLING[kind], int(bits or 8)


def _plane_array(plane: av.video.plane.VideoPlane, dtype: type) -> np.ndarray:
    """A writable (height, width) view of a plane, without its row padding."""
    itemsize = np.dtype(dtype).itemsize
    rows = np.frombuffer(plane, dtype).reshape(plane.height, plane.line_size // itemsize)
    return rows[:, : plane.width]


def _normalise(y, u, v, depth: int, full: bool):
    """Code values -> luma in [0, 1] and chroma in [-0.5, 0.5] (nominal)."""
    if full:
        peak = np.float32((1 << depth) - 1)
        mid = np.float32(1 << (depth - 1))
        return y / peak, (u - mid) / peak, (v - mid) / peak
    scale = np.float32(1 << (depth - 8))
    return (
        (y - 16 * scale) / (219 * scale),
        (u - 128 * scale) / (224 * scale),
        (v - 128 * scale) / (224 * scale),
    )


def _quantise(y, u, v, depth: int, full: bool) -> list[np.ndarray]:
    """The inverse of `_normalise`, rounded to the nearest code and clipped to the depth."""
    top = (1 << depth) - 1
    dtype = np.uint16 if depth > 8 else np.uint8
    if full:
        mid = 1 << (depth - 1)
        planes = [y * top, u * top + mid, v * top + mid]
    else:
        scale = 1 << (depth - 8)
        planes = [y * (219 * scale) + 16 * scale, u * (224 * scale) + 128 * scale,
                  v * (224 * scale) + 128 * scale]  # fmt: skip
    return [np.clip(np.rint(p), 0, top).astype(dtype) for p in planes]


def _upsample(chroma: np.ndarray, axis: int, size: int, siting: float) -> np.ndarray:
    """Linear interpolation of chroma sited at 2k + siting onto `size` luma positions."""
    count = chroma.shape[axis]
    where = np.clip((np.arange(size, dtype=np.float64) - siting) / 2, 0, count - 1)
    low = np.floor(where).astype(np.intp)
    high = np.minimum(low + 1, count - 1)
    frac = (where - low).astype(np.float32)
    shape = [1, 1]
    shape[axis] = size
    frac = frac.reshape(shape)
    a, b = np.take(chroma, low, axis=axis), np.take(chroma, high, axis=axis)
    return a + (b - a) * frac


def _downsample(full: np.ndarray, axis: int, siting: float) -> np.ndarray:
    """Chroma at 2k + siting from a full-resolution plane: the least-squares inverse of
    `_upsample` as a short FIR filter (edges replicated)."""
    count = (full.shape[axis] + 1) // 2
    taps = _least_squares_taps(siting)
    before = max(0, -min(offset for offset, _ in taps))
    after = max(0, max(offset for offset, _ in taps) + 2)
    pad = [(0, 0), (0, 0)]
    pad[axis] = (before, after)
    padded = np.pad(full, pad, mode="edge")
    if axis == 0:
        padded = padded.T
    out = np.zeros((padded.shape[0], count), np.float32)
    for offset, weight in taps:
        start = before + offset
        out += np.float32(weight) * padded[:, start : start + 2 * count : 2]
    return out.T if axis == 0 else out


@functools.lru_cache(maxsize=4)
def _least_squares_taps(siting: float, length: int = 64) -> tuple[tuple[int, float], ...]:
    """(offset from luma 2k, weight) pairs giving chroma k: the middle row of the
    pseudo-inverse of the linear upsampler, without the weights below 2e-4."""
    luma = np.arange(2 * length)
    where = np.clip((luma - siting) / 2, 0, length - 1)
    low = np.floor(where).astype(int)
    high = np.minimum(low + 1, length - 1)
    frac = where - low
    up = np.zeros((2 * length, length))
    np.add.at(up, (luma, low), 1 - frac)
    np.add.at(up, (luma, high), frac)
    row = np.linalg.pinv(up)[length // 2]
    kept = np.flatnonzero(np.abs(row) > 2e-4)
    weights = row[kept] / row[kept].sum()
    centre = 2 * (length // 2)
    return tuple((int(i - centre), float(w)) for i, w in zip(kept, weights, strict=True))
