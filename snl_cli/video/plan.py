"""The writer's decisions, known before anything is written: `plan_output(like, path)`.

Container from the output suffix, encoder following the input, the pixel format closest
to the input's that the encoder takes at this frame size, the colour tags to write, and
which audio/subtitle streams the container can hold. `snl denoise --json` reports it.
"""

from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from snl_cli.errors import InputError, OutputError, UsageError
from snl_cli.video.colour import ColourTags
from snl_cli.video.images import IMAGE_SUFFIXES, JPEG_SUFFIXES
from snl_cli.video.probe import ClipInfo

# Inputs whose codec is lossless get a lossless output by default.
LOSSLESS_CODECS = frozenset(
    {"ffv1", "png", "apng", "rawvideo", "utvideo", "huffyuv", "ffvhuff", "magicyuv",
     "qtrle", "tiff", "bmp", "zlib", "v210", "v410", "r210", "r10k", "lagarith"}
)  # fmt: skip
FOLLOW_CODEC = {"h264": "libx264", "hevc": "libx265"}
# Rate-control defaults per encoder: "visually lossless" is the right default for a
# denoiser's output; --crf/--preset override them.
CRF_DEFAULTS: dict[str, dict[str, str]] = {
    "libx264": {"crf": "16", "preset": "medium"},
    "libx265": {"crf": "18", "preset": "medium"},  # and `x265_params` for the frame size
    "libvpx-vp9": {"crf": "24", "b": "0", "deadline": "good", "cpu-used": "4"},
    "libsvtav1": {"crf": "24", "preset": "8"},
}
# libx265's cu-tree corrupts the heap on frames smaller than this (a crash within a few dozen
# encodes in one process); below it `x265_params` turns cu-tree off
X265_CUTREE_MIN_SIDE = 64
# Encoders that code 4:2:0 / 4:2:2 at odd sizes (the others need even dimensions).
ODD_CHROMA_OK = frozenset({"ffv1"})
_PRESET_KEY = {"libx264": "preset", "libx265": "preset", "libsvtav1": "preset"}
_RGB_TO_YUV_TAGS: ColourTags = {
    "range": "tv",
    "space": "bt709",
    "primaries": "bt709",
    "transfer": "iec61966-2-1",
}


@dataclass(frozen=True)
class OutputPlan:
    """The writer's decisions for one output, known before anything is written.

    Attributes:
        path: the final output path.
        kind: "video" (a file), "images" (a folder of PNGs) or "image" (one picture, for a
            one-frame input: PNG, TIFF or JPEG by its suffix).
        container: muxer name for video ("mp4", "matroska", ...), None for folders.
        codec: video encoder ("libx264", "ffv1", ...) or "png".
        pix_fmt: encoder pixel format ("yuv420p10le", ...; "rgb24"/"rgb48be" for PNGs).
        bit_depth: bits per component written.
        options: encoder options (crf, preset, ...).
        color: colour tags written on the stream and frames.
        copied: streams copied from the input, e.g. "audio:aac".
        dropped: streams the output container cannot hold, with the reason.
        time_base: the encoder's time base; the input's, unless the encoder refuses it
            (MPEG-1/2 take only 1/frame-rate), then frame pts are moved onto 1/fps.
    """

    path: Path
    kind: str
    container: str | None
    codec: str
    pix_fmt: str
    bit_depth: int
    options: dict[str, str] = field(default_factory=dict)
    color: ColourTags = field(default_factory=dict)
    copied: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    time_base: Fraction | None = None

    def to_json(self) -> dict[str, Any]:
        """Plain-JSON form, for `snl denoise --json`."""
        return {
            "path": str(self.path),
            "kind": self.kind,
            "container": self.container,
            "codec": self.codec,
            "pix_fmt": self.pix_fmt,
            "bit_depth": self.bit_depth,
            "options": dict(self.options),
            "color": dict(self.color),
            "copied": list(self.copied),
            "dropped": list(self.dropped),
            "time_base": None if self.time_base is None else str(self.time_base),
        }


def is_frame_folder(path: Path) -> bool:
    """An output is a frame folder when it is an existing folder or has no suffix."""
    return path.is_dir() or not path.suffix


def plan_output(
    like: ClipInfo,
    path: str | os.PathLike[str],
    *,
    codec: str | None = None,
    crf: int | None = None,
    preset: str | None = None,
) -> OutputPlan:
    """Decide container, encoder, pixel format and copied streams for an output.

    Default encoder: follow the input (H.264 -> libx264, HEVC -> libx265, a lossless
    codec -> ffv1, anything else -> libx264); if the container cannot hold it, the
    container's own default encoder (e.g. libvpx-vp9 for .webm).

    Raises:
        UsageError: an unknown encoder, or crf/preset for an encoder without them.
        OutputError: the suffix names no known container, or the container cannot hold
            the requested encoder.
    """
    path = Path(path)
    if is_frame_folder(path):
        deep = like.bit_depth > 8
        return OutputPlan(
            path=path,
            kind="images",
            container=None,
            codec="png",
            pix_fmt="rgb48be" if deep else "rgb24",
            bit_depth=16 if deep else 8,
            dropped=_side_streams(like, frozenset(), "a frame folder holds no {kind}")[1],
        )
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return _picture_plan(like, path)
    muxer, supported = _muxer(path)
    failures = []
    for encoder in _encoder_candidates(like, path, codec, muxer, supported):
        pix_fmt = choose_pix_fmt(encoder, like.pix_fmt, like.width, like.height)
        options = _encoder_options(encoder, crf, preset)
        if encoder == "libx265":
            options["x265-params"] = x265_params(like.width, like.height)
        try:
            time_base = trial_encode(like, muxer, encoder, pix_fmt, options)
        except (av.FFmpegError, ValueError) as exc:
            failures.append(f"{encoder}: {_ffmpeg_cause(exc)}")
            continue
        copied, dropped = _side_streams(like, supported, f"{muxer} cannot hold {{codec}}")
        return OutputPlan(
            path=path,
            kind="video",
            container=muxer,
            codec=encoder,
            pix_fmt=pix_fmt,
            bit_depth=max(c.bits for c in av.VideoFormat(pix_fmt).components),
            options=options,
            color=_output_tags(like, pix_fmt),
            copied=copied,
            dropped=dropped,
            time_base=time_base,
        )
    reason = "; ".join(failures)
    raise OutputError(
        f"{muxer} cannot be written from this clip ({like.width}x{like.height}, "
        f"{float(like.fps):g} fps): {reason}; try a .mkv or .mp4 output",
        path,
    )


def trial_encode(
    like: ClipInfo, muxer: str, encoder: str, pix_fmt: str, options: dict[str, str]
) -> Fraction:
    """Encode two blank frames into `muxer` in memory, as the writer will; return the
    encoder time base that worked (the input's, else 1/fps).

    Catches before any decoding what only the encoder or muxer knows: frame rates MPEG-2
    refuses, sizes DV cannot hold, codecs a muxer rejects at its header.

    Raises:
        av.FFmpegError, ValueError: the last failure, when neither time base works.
    """
    rate = Fraction(like.fps).limit_denominator(1_000_000) or Fraction(25)
    error: Exception | None = None
    for time_base in dict.fromkeys([like.time_base, 1 / rate]):
        try:
            _encode_blank(muxer, encoder, pix_fmt, options, like, time_base, rate)
        except (av.FFmpegError, ValueError) as exc:
            error = exc
            continue
        return time_base
    assert error is not None
    raise error


def _encode_blank(
    muxer: str,
    encoder: str,
    pix_fmt: str,
    options: dict[str, str],
    like: ClipInfo,
    time_base: Fraction,
    rate: Fraction,
) -> None:
    with av.open(io.BytesIO(), "w", format=muxer) as container:
        stream = container.add_stream(encoder, rate=rate, options=dict(options))
        stream.width, stream.height, stream.pix_fmt = like.width, like.height, pix_fmt
        stream.codec_context.time_base = time_base
        stream.time_base = time_base
        step = max(1, round(1 / (rate * time_base)))
        for index in range(2):
            frame = av.VideoFrame(like.width, like.height, pix_fmt)
            for plane in frame.planes:
                memoryview(plane)[:] = bytes(plane.buffer_size)
            frame.pts, frame.time_base = index * step, time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def _ffmpeg_cause(exc: Exception) -> str:
    """The most telling words of an FFmpeg failure: its last log line, else strerror."""
    text = str(exc)
    if "last error log:" in text:
        return text.split("last error log:", 1)[1].strip().rstrip(".")
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def _muxer(path: Path) -> tuple[str, frozenset[str]]:
    """The muxer FFmpeg picks for `path`'s suffix, and the codecs it can hold."""
    probe_target = io.BytesIO()
    probe_target.name = path.name  # av.open guesses the format from this name
    try:
        with av.open(probe_target, "w") as container:
            name = container.format.name
            extra = _UNLISTED_MUXERS.get(name, frozenset())
            return name, frozenset(container.supported_codecs) | extra
    except (av.FFmpegError, ValueError) as exc:
        raise OutputError(f"no known video container for suffix {path.suffix!r}", path) from exc


def _encoder_candidates(
    like: ClipInfo, path: Path, codec: str | None, muxer: str, supported: frozenset[str]
) -> list[str]:
    """Encoders to try, best first: --codec alone, else the one following the input and
    then the container's own default. Muxers that do not list their codecs (MPEG-TS/PS)
    get the trial encode to decide."""
    if codec is not None:
        codec = _check_encoder(codec)
        if supported and not _muxable(codec, supported) and _lists_codecs(muxer):
            raise OutputError(f"{muxer} cannot hold {codec} video; try a .mkv output", path)
        return [codec]
    if like.codec in FOLLOW_CODEC:
        wanted = FOLLOW_CODEC[like.codec]
    elif like.codec in LOSSLESS_CODECS:
        wanted = "ffv1"
    else:
        wanted = "libx264"
    candidates = []
    if _muxable(wanted, supported) or not _lists_codecs(muxer):
        candidates.append(wanted)
    with av.open(io.BytesIO(), "w", format=muxer) as container:
        fallback = container.default_video_codec
    if fallback and fallback != "none":
        with contextlib.suppress(av.FFmpegError, ValueError):
            candidates.append(av.codec.Codec(fallback, "w").name)
    if not candidates:
        raise OutputError(f"{muxer} cannot hold {wanted} video; try a .mkv output", path)
    return list(dict.fromkeys(candidates))


# Muxers whose codec list (avformat_query_codec) is complete; the others are tried.
def _lists_codecs(muxer: str) -> bool:
    return muxer not in _UNLISTED_MUXERS


_MPEG_PS = {"h264", "hevc", "mpeg1video", "mpeg2video", "mpeg4", "mp2", "mp3", "ac3", "dts",
            "pcm_dvd"}  # fmt: skip
# What FFmpeg's MPEG-TS/PS muxers hold beyond the few codecs they list.
_UNLISTED_MUXERS: dict[str, frozenset[str]] = {
    "mpegts": frozenset(_MPEG_PS | {"aac", "aac_latm", "eac3", "opus", "truehd", "av1", "vvc",
                                    "dvb_subtitle", "dvb_teletext", "hdmv_pgs_subtitle"}),
    "mpeg": frozenset(_MPEG_PS), "vob": frozenset(_MPEG_PS), "svcd": frozenset(_MPEG_PS),
    "vcd": frozenset(_MPEG_PS), "dvd": frozenset(_MPEG_PS), "mxf": frozenset(), "gxf": frozenset(),
}  # fmt: skip


def _check_encoder(codec: str) -> str:
    """The encoder's own name ("h264" -> "libx264"), or UsageError."""
    try:
        found = av.codec.Codec(codec, "w")
    except (av.FFmpegError, ValueError) as exc:
        raise UsageError(f"unknown video encoder {codec!r}") from exc
    if found.type != "video":
        raise UsageError(f"{codec!r} is a {found.type} encoder, not a video encoder")
    return found.name


def _muxable(encoder: str, supported: frozenset[str]) -> bool:
    """Whether the muxer accepts the codec this encoder produces."""
    if encoder in supported:
        return True
    try:
        canonical = av.codec.Codec(encoder, "w").canonical_name
    except (av.FFmpegError, ValueError):
        return False
    return canonical in supported


# Valid --crf ranges and --preset names per encoder (checked before any work).
CRF_RANGES = {"libx264": (0, 51), "libx265": (0, 51), "libvpx-vp9": (0, 63), "libsvtav1": (1, 63)}
_X26X_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow",
                 "slower", "veryslow", "placebo")  # fmt: skip
PRESETS = {"libx264": _X26X_PRESETS, "libx265": _X26X_PRESETS,
           "libsvtav1": tuple(str(n) for n in range(-1, 14))}  # fmt: skip


def x265_params(width: int, height: int) -> str:
    """libx265's own parameters for frames of this size, wherever snl runs it: quiet, and
    cu-tree off on frames smaller than X265_CUTREE_MIN_SIDE (it corrupts the heap there)."""
    if min(width, height) < X265_CUTREE_MIN_SIDE:
        return "log-level=error:no-cutree=1"
    return "log-level=error"


def _encoder_options(encoder: str, crf: int | None, preset: str | None) -> dict[str, str]:
    options = dict(CRF_DEFAULTS.get(encoder, {}))
    if crf is not None:
        if "crf" not in options:
            raise UsageError(f"--crf does not apply to {encoder}")
        low, high = CRF_RANGES.get(encoder, (0, 63))
        if not low <= crf <= high:
            raise UsageError(f"--crf for {encoder}: expected {low} to {high}, got {crf}")
        options["crf"] = str(crf)
    if preset is not None:
        if encoder not in _PRESET_KEY:
            raise UsageError(f"--preset does not apply to {encoder}")
        if preset not in PRESETS[encoder]:
            names = ", ".join(PRESETS[encoder])
            raise UsageError(f"--preset for {encoder}: expected one of {names}; got {preset!r}")
        options[_PRESET_KEY[encoder]] = preset
    return options


def _family(pix_fmt: str) -> str:
    name = pix_fmt
    fmt = av.VideoFormat(name)
    if fmt.is_rgb or name.startswith(("gbr", "rgb", "bgr", "argb", "abgr", "0rgb", "0bgr")):
        return "rgb"
    if name.startswith(("gray", "ya", "y8", "y16")) or len(fmt.components) <= 2:
        return "gray"
    return "yuv"


def _subsampling(pix_fmt: str) -> tuple[int, int]:
    """(horizontal, vertical) chroma subsampling as log2 factors."""
    fmt = av.VideoFormat(pix_fmt, 64, 64)
    if len(fmt.components) < 3 or _family(pix_fmt) != "yuv":
        return 0, 0
    chroma = fmt.components[1]
    return (64 // chroma.width).bit_length() - 1, (64 // chroma.height).bit_length() - 1


def _depth(pix_fmt: str) -> int:
    return max(c.bits for c in av.VideoFormat(pix_fmt).components)


def _has_alpha(pix_fmt: str) -> bool:
    return any(c.is_alpha for c in av.VideoFormat(pix_fmt).components)


def choose_pix_fmt(encoder: str, source: str, width: int, height: int) -> str:
    """The encoder pixel format closest to `source`.

    Same family (YUV, RGB, gray), same bit depth (never lower if avoidable), same chroma
    subsampling, no alpha. Full-range "yuvj" formats become their "yuv" twin (the range
    travels as a tag). Odd sizes: 4:2:0 needs an even width and height and 4:2:2 an even
    width, so an input subsampled along an odd axis is written as 4:4:4 at the same
    depth (e.g. 63x37 yuv420p -> yuv444p, yuv420p10le -> yuv444p10le); the size is kept
    exactly, no padding or cropping, at the cost of a larger file and, for H.264, a
    High 4:4:4 profile that some hardware players lack. FFV1 codes odd 4:2:0 itself, so
    it keeps the input's format.
    """
    source = source.replace("yuvj", "yuv", 1) if source.startswith("yuvj") else source
    formats = av.codec.Codec(encoder, "w").video_formats
    names = [f.name for f in formats] if formats else [source]
    odd_ok = encoder in ODD_CHROMA_OK
    candidates = [
        n for n in names if (odd_ok or _fits(n, width, height)) and not n.startswith("yuvj")
    ]
    if not candidates:
        raise OutputError(f"{encoder} cannot encode a {width}x{height} frame")
    return min(candidates, key=lambda n: _distance(n, source))


def _fits(pix_fmt: str, width: int, height: int) -> bool:
    sub_x, sub_y = _subsampling(pix_fmt)
    return not (sub_x and width % 2) and not (sub_y and height % 2)


def _distance(candidate: str, source: str) -> tuple:
    want_x, want_y = _subsampling(source)
    have_x, have_y = _subsampling(candidate)
    depth, want_depth = _depth(candidate), _depth(source)
    return (
        _family(candidate) == "gray" and _family(source) != "gray",  # never lose colour
        _family(candidate) != _family(source),
        depth < want_depth,
        abs(depth - want_depth),
        (have_x > want_x) or (have_y > want_y),
        abs(have_x - want_x) + abs(have_y - want_y),
        _has_alpha(candidate) != _has_alpha(source),
        candidate != source,
        not av.VideoFormat(candidate).is_planar,
        candidate,
    )


def _output_tags(like: ClipInfo, pix_fmt: str) -> ColourTags:
    """The input's tags; RGB going to YUV gets BT.709 limited range (sRGB transfer)."""
    tags = dict(like.color)
    if _family(pix_fmt) == "yuv" and _family(like.pix_fmt) != "yuv":
        tags = {k: (None if tags.get(k) in (None, "gbr", "pc") else tags[k]) for k in tags}
        tags = {k: tags.get(k) or v for k, v in _RGB_TO_YUV_TAGS.items()}
    if _family(pix_fmt) == "rgb":
        tags["space"] = "gbr"
    return tags


def _picture_plan(like: ClipInfo, path: Path) -> OutputPlan:
    """One picture (PNG, TIFF or JPEG by suffix) for a one-frame input.

    Raises:
        OutputError: the input has more than one frame.
    """
    if like.frames != 1:
        raise OutputError(
            f"an image suffix names one picture and the input has {like.frames} frames; "
            "give a folder for frames (or --frames N:N+1 for one)",
            path,
        )
    suffix = path.suffix.lower()
    jpeg = suffix in JPEG_SUFFIXES
    deep = like.bit_depth > 8 and not jpeg
    dropped = _side_streams(like, frozenset(), "a picture holds no {kind}")[1]
    if like.bit_depth > 8 and jpeg:
        dropped.append(f"{like.bit_depth}-bit depth (JPEG holds 8 bits; write .png or .tif)")
    return OutputPlan(
        path=path,
        kind="image",
        container=None,
        codec="mjpeg" if jpeg else "tiff" if suffix in (".tif", ".tiff") else "png",
        pix_fmt="rgb48" if deep else "rgb24",
        bit_depth=16 if deep else 8,
        dropped=dropped,
    )


def _side_streams(
    like: ClipInfo, supported: frozenset[str], reason: str
) -> tuple[list[str], list[str]]:
    """(copied, dropped) stream labels such as "audio:aac"; `reason` explains a drop."""
    copied, dropped = [], []
    entries = [("audio", a) for a in like.audio] + [("subtitle", s) for s in like.subtitles]
    for kind, entry in entries:
        label = f"{kind}:{entry['codec']}"
        if entry["codec"] in supported:
            copied.append(label)
        else:
            dropped.append(f"{label} ({reason.format(kind=kind, codec=entry['codec'])})")
    return copied, dropped


# The smallest frame side the denoisers, optical flow and alignment handle (STAN's
# reflection padding and pyramid need it); smaller frames are refused up front.
MIN_FRAME_SIDE = 16


def check_frame_size(like: ClipInfo) -> None:
    """Raise InputError for frames smaller than MIN_FRAME_SIDE on either side."""
    if min(like.width, like.height) < MIN_FRAME_SIDE:
        raise InputError(
            f"frames are {like.width}x{like.height}; snl needs at least "
            f"{MIN_FRAME_SIDE}x{MIN_FRAME_SIDE} pixels",
            like.path,
        )
