"""Colour tags: FFmpeg's names for the numeric tags, and the swscale settings that use them.

Decoding converts YUV to RGB with the clip's own matrix and range; encoding converts back
with the same pair, so a clip that passes through unchanged keeps its colours. Untagged
YUV is treated as FFmpeg treats it: BT.601 matrix, limited ("tv") range.
"""

from __future__ import annotations

from typing import Any

import av
from av.video.reformatter import Interpolation

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


def to_rgb(frame: av.VideoFrame, tags: ColourTags, deep: bool) -> av.VideoFrame:
    """Convert a decoded frame to rgb24 (8-bit) or rgb48le (deep) with its own matrix/range."""
    fmt = "rgb48le" if deep else "rgb24"
    if frame.format.is_rgb or frame.format.name.startswith(("gray", "ya", "pal")):
        return frame.reformat(format=fmt, interpolation=SCALE_FLAGS)
    return frame.reformat(
        format=fmt,
        src_colorspace=sws_matrix(tags),
        src_color_range=_sws_range(tags, frame.format.name),
        dst_color_range="JPEG",
        interpolation=SCALE_FLAGS,
    )


def from_rgb(frame: av.VideoFrame, pix_fmt: str, tags: ColourTags) -> av.VideoFrame:
    """Convert an RGB frame to `pix_fmt` with the target matrix and range, tagged."""
    fmt = av.VideoFormat(pix_fmt)
    if fmt.is_rgb or pix_fmt.startswith(("gray", "ya")):
        out = frame.reformat(format=pix_fmt, interpolation=SCALE_FLAGS)
    else:
        out = frame.reformat(
            format=pix_fmt,
            src_color_range="JPEG",
            dst_colorspace=sws_matrix(tags),
            dst_color_range=_sws_range(tags, pix_fmt),
            interpolation=SCALE_FLAGS,
        )
    apply_tags(out, tags)
    return out


def sws_matrix(tags: ColourTags) -> str:
    """The swscale matrix name for a YUV clip (BT.601 when untagged, as FFmpeg does)."""
    return _SWS_MATRIX.get(tags.get("space") or "", "ITU601")


def _sws_range(tags: ColourTags, pix_fmt: str) -> str:
    if tags.get("range") == "pc" or pix_fmt.startswith("yuvj"):
        return "JPEG"
    return "MPEG"
