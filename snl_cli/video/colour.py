"""Colour tags: FFmpeg's names for the numeric tags, and the conversions that use them.

Decoding converts YUV to RGB with the clip's own matrix and range; encoding converts back
with the same pair, so a clip that passes through unchanged keeps its colours (planar YUV
in float32 by `snl_cli.video.yuv`, other layouts by swscale through 16-bit RGB). Untagged
YUV is treated as FFmpeg treats it: BT.601 matrix, limited ("tv") range.
"""

from __future__ import annotations

import functools
from typing import Any

import av
import numpy as np
from av.video.reformatter import Interpolation

from snl_cli.video import yuv
from snl_cli.video.images import quantize

# FFmpeg's names (av_color_*_name) for the tags; 0/2 mean "unspecified" and map to None.
RANGE_NAMES = {1: "tv", 2: "pc"}
SPACE_NAMES = {
    0: "gbr", 1: "bt709", 4: "fcc", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m",
    8: "ycgco", 9: "bt2020nc", 10: "bt2020c", 11: "smpte2085", 12: "chroma-derived-nc",
    13: "chroma-derived-c", 14: "ictcp", 15: "ipt-c2", 16: "ycgco-re", 17: "ycgco-ro",
}  # fmt: skip
PRIMARIES_NAMES = {
    1: "bt709", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 8: "film",
    9: "bt2020", 10: "smpte428", 11: "smpte431", 12: "smpte432", 22: "ebu3213",
}  # fmt: skip
TRANSFER_NAMES = {
    1: "bt709", 4: "gamma22", 5: "gamma28", 6: "smpte170m", 7: "smpte240m", 8: "linear",
    9: "log100", 10: "log316", 11: "iec61966-2-4", 12: "bt1361e", 13: "iec61966-2-1",
    14: "bt2020-10", 15: "bt2020-12", 16: "smpte2084", 17: "smpte428", 18: "arib-std-b67",
}  # fmt: skip
_TABLES = {
    "range": RANGE_NAMES,
    "space": SPACE_NAMES,
    "primaries": PRIMARIES_NAMES,
    "transfer": TRANSFER_NAMES,
}
# AVFrame / AVCodecContext attribute holding each tag.
_ATTRIBUTES = {
    "range": "color_range",
    "space": "colorspace",
    "primaries": "color_primaries",
    "transfer": "color_trc",
}
# swscale matrices (SWS_CS_*) for the YUV matrices it knows; anything else gets BT.601.
_SWS_MATRIX = {
    "bt709": "ITU709",
    "fcc": "FCC",
    "bt470bg": "ITU601",
    "smpte170m": "ITU601",
    "smpte240m": "SMPTE240M",
    "bt2020nc": "BT2020",
    "bt2020c": "BT2020",
}
# Bicubic chroma resampling with accurate rounding: the best YUV->RGB->YUV round trip
# among swscale's modes (FULL_CHR_H_INT corrupts rgb48 output in FFmpeg 8.1).
SCALE_FLAGS = Interpolation.BICUBIC | Interpolation.ACCURATE_RND

ColourTags = dict[str, str | None]


def tags_of(source: Any) -> ColourTags:
    """The four colour tags of a frame or codec context, as FFmpeg names (None if unset)."""
    return {
        key: table.get(int(getattr(source, _ATTRIBUTES[key]) or 0))
        for key, table in _TABLES.items()
    }


def merge_tags(primary: ColourTags, fallback: ColourTags) -> ColourTags:
    """Tags from `primary`, each missing one taken from `fallback`."""
    return {key: primary.get(key) or fallback.get(key) for key in _TABLES}


def apply_tags(target: Any, tags: ColourTags) -> None:
    """Set the known tags on a frame or encoder context (unknown ones stay unspecified)."""
    for key, name in tags.items():
        code = _code(key, name)
        if code is not None:
            setattr(target, _ATTRIBUTES[key], code)


def _code(key: str, name: str | None) -> int | None:
    if name is None:
        return None
    for code, known in _TABLES[key].items():
        if known == name:
            return code
    return None


def to_rgb(frame: av.VideoFrame, tags: ColourTags, deep: bool) -> np.ndarray:
    """Decoded frame -> float32 RGB (H, W, 3) in [0, 1], with the clip's matrix and range.

    Planar YUV is converted in float32 by `yuv.yuv_to_rgb` (exact levels, chroma siting).
    Other YUV layouts go through swscale's rgb48le (see `white_level`), never rgb24: an
    8-bit intermediate costs about a level of luma on the way back. 8-bit RGB and gray
    (images) go through rgb24, which is exact for them; deeper ones through rgb48le.
    """
    name = frame.format.name
    if yuv.handles(name):
        return yuv.yuv_to_rgb(frame, tags)
    if not (deep or _is_yuv(name)):
        pixels = _swscale_rgb(frame, tags, "rgb24").to_ndarray()
        return pixels.astype(np.float32) * np.float32(1 / 255)
    white = white_level(name, _sws_range(tags, name), sws_matrix(tags))
    pixels = _swscale_rgb(frame, tags, "rgb48le").to_ndarray()
    return np.minimum(pixels.astype(np.float32) * np.float32(1 / white), np.float32(1))


def from_rgb(rgb: np.ndarray, pix_fmt: str, tags: ColourTags, deep: bool) -> av.VideoFrame:
    """Float RGB (H, W, 3) in [0, 1] -> a `pix_fmt` frame with the target matrix and range.

    The inverse of `to_rgb`, by the same routes: a frame read and written unchanged keeps
    its code values (planar YUV: luma exactly, chroma up to resampling at the borders).
    The returned frame carries `tags`.
    """
    if yuv.handles(pix_fmt):
        out = yuv.rgb_to_yuv(rgb, pix_fmt, tags)
        apply_tags(out, tags)
        return out
    rgb = np.asarray(rgb, dtype=np.float32)
    if deep or _is_yuv(pix_fmt):
        white = white_level(pix_fmt, _sws_range(tags, pix_fmt), sws_matrix(tags))
        pixels = quantize(rgb, white, np.uint16)
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format="rgb48le")
    else:
        pixels = quantize(rgb)
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format="rgb24")
    if _is_yuv(pix_fmt):
        out = frame.reformat(
            format=pix_fmt,
            src_color_range="JPEG",
            dst_colorspace=sws_matrix(tags),
            dst_color_range=_sws_range(tags, pix_fmt),
            interpolation=SCALE_FLAGS,
        )
    else:
        out = frame.reformat(format=pix_fmt, interpolation=SCALE_FLAGS)
    apply_tags(out, tags)
    return out


def _swscale_rgb(frame: av.VideoFrame, tags: ColourTags, fmt: str) -> av.VideoFrame:
    if not _is_yuv(frame.format.name):
        return frame.reformat(format=fmt, interpolation=SCALE_FLAGS)
    return frame.reformat(
        format=fmt,
        src_colorspace=sws_matrix(tags),
        src_color_range=_sws_range(tags, frame.format.name),
        dst_color_range="JPEG",
        interpolation=SCALE_FLAGS,
    )


def _is_yuv(pix_fmt: str) -> bool:
    fmt = av.VideoFormat(pix_fmt)
    return not fmt.is_rgb and not pix_fmt.startswith(("gray", "ya", "pal", "monob", "monow"))


@functools.lru_cache(maxsize=64)
def white_level(pix_fmt: str, sws_range: str, matrix: str) -> int:
    """The rgb48le value swscale gives this format's nominal white (65535 ideally).

    swscale (FFmpeg 8.1) scales deep YUV and gray by bit shifts: 10-bit limited-range
    white (940) comes out as 65280, not 65535, and full-range 10-bit white as 65472, a
    0.1-0.4 % gain error. Dividing by the measured white (and multiplying by it on the
    way back) gives exact levels and still round-trips code values. RGB formats are exact.
    """
    if not (_is_yuv(pix_fmt) or pix_fmt.startswith(("gray", "ya"))):
        return 65535
    depth = max(c.bits for c in av.VideoFormat(pix_fmt).components)
    try:
        frame = _nominal_white(pix_fmt, depth, sws_range == "JPEG")
        tags: ColourTags = {"range": "pc" if sws_range == "JPEG" else "tv"}
        tags["space"] = next((k for k, v in _SWS_MATRIX.items() if v == matrix), None)
        level = int(_swscale_rgb(frame, tags, "rgb48le").to_ndarray()[0, 0, 1])
    except (av.FFmpegError, ValueError):
        return 65535
    return level if level > 32768 else 65535


def _nominal_white(pix_fmt: str, depth: int, full: bool) -> av.VideoFrame:
    """A 2x2 frame of `pix_fmt` holding nominal white, built in a planar twin."""
    suffix = "" if depth == 8 else f"{depth}le"
    if not _is_yuv(pix_fmt):
        planar, codes = f"gray{suffix}", [(1 << depth) - 1]
    else:
        shift = depth - 8
        luma = (1 << depth) - 1 if full else 235 << shift
        planar, codes = f"yuv444p{suffix}", [luma, 128 << shift, 128 << shift]
    frame = av.VideoFrame(2, 2, planar)
    dtype = np.uint16 if depth > 8 else np.uint8
    for plane, code in zip(frame.planes, codes, strict=True):
        np.frombuffer(plane, dtype)[:] = code
    if full:
        frame.color_range = 2
    return frame if planar == pix_fmt else frame.reformat(format=pix_fmt)


def sws_matrix(tags: ColourTags) -> str:
    """The swscale matrix name for a YUV clip (BT.601 when untagged, as FFmpeg does)."""
    return _SWS_MATRIX.get(tags.get("space") or "", "ITU601")


def _sws_range(tags: ColourTags, pix_fmt: str) -> str:
    if tags.get("range") == "pc" or pix_fmt.startswith("yuvj"):
        return "JPEG"
    return "MPEG"
