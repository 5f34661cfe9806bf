"""Synthetic media for the tests, made with PyAV inside tmp_path (nothing is committed).

The helpers write clips and frame folders with known content and read files back with
plain PyAV, so tests can compare snl's behaviour against independent facts.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import Interpolation

# FFmpeg's numeric colour tags for the names the tests use.
RANGE_IDS = {"tv": 1, "pc": 2}
SPACE_IDS = {"bt709": 1, "bt470bg": 5, "smpte170m": 6, "bt2020nc": 9}
PRIMARIES_IDS = {"bt709": 1, "bt470bg": 5, "smpte170m": 6, "bt2020": 9}
TRANSFER_IDS = {"bt709": 1, "smpte170m": 6, "iec61966-2-1": 13, "smpte2084": 16}
# swscale's matrix names for the same spaces.
SWS_SPACE = {"bt709": "ITU709", "bt470bg": "ITU601", "smpte170m": "ITU601", "bt2020nc": "BT2020"}
VFR_STEPS_MS = (40, 80, 40, 120, 40, 33, 67)
QUIET_X265 = "log-level=error"
_FLAGS = Interpolation.BICUBIC | Interpolation.ACCURATE_RND


def pattern(index: int, width: int, height: int) -> np.ndarray:
    """Smooth, moving, in-gamut RGB content in [0, 1], (H, W, 3) float64."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    t = 0.35 * index
    red = 0.5 + 0.35 * np.sin(x / 9.0 + t) * np.cos(y / 11.0)
    green = 0.45 + 0.3 * np.cos((x + y) / 13.0 - t)
    blue = 0.5 + 0.3 * np.sin(y / 7.0 + 0.5 * t)
    return np.clip(np.stack([red, green, blue], axis=-1), 0.0, 1.0)


def rgb_frame(rgb: np.ndarray, depth: int) -> av.VideoFrame:
    """An rgb24 (depth 8) or rgb48le frame from float RGB in [0, 1]."""
    if depth > 8:
        return av.VideoFrame.from_ndarray(_quantise(rgb, 65535, np.uint16), format="rgb48le")
    return av.VideoFrame.from_ndarray(_quantise(rgb, 255, np.uint8), format="rgb24")


def planar_frame(planes: Sequence[np.ndarray], pix_fmt: str) -> av.VideoFrame:
    """A frame of a planar format filled plane by plane (uint8 or uint16 codes)."""
    height, width = planes[0].shape
    frame = av.VideoFrame(width, height, pix_fmt)
    for plane, values in zip(frame.planes, planes, strict=True):
        dtype = np.uint16 if values.dtype == np.uint16 else np.uint8
        rows = np.frombuffer(plane, dtype).reshape(plane.height, -1)
        rows[:, : values.shape[1]] = values
    return frame


def _quantise(rgb: np.ndarray, scale: int, dtype: type) -> np.ndarray:
    return np.clip(np.rint(rgb * scale), 0, scale).astype(dtype)


def make_clip(
    path: Path,
    *,
    frames: int = 8,
    size: tuple[int, int] = (64, 48),
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    fps: int = 25,
    vfr: bool = False,
    pts: Sequence[int] | None = None,
    time_base: Fraction | None = None,
    audio: bool | str = False,
    subtitles: bool = False,
    rotation: int = 0,
    color: dict[str, str] | None = None,
    options: dict[str, str] | None = None,
) -> Path:
    """Write a small synthetic clip and return its path.

    Args:
        path: target; the extension picks the container.
        frames: number of video frames.
        size: (width, height).
        codec, pix_fmt: the video encoder and its pixel format.
        fps: nominal rate; with `vfr` the frame durations vary (VFR_STEPS_MS, 1/1000 base).
        pts, time_base: explicit timestamps, overriding `fps`/`vfr`.
        audio: True for stereo AAC at 48 kHz, or an audio encoder name.
        subtitles: add a SubRip stream (language "eng") with two cues.
        rotation: display rotation in degrees, counter-clockwise.
        color: FFmpeg names for "range", "space", "primaries", "transfer".
        options: encoder options (defaults: fast, high quality, quiet).
    """
    width, height = size
    stamps, base = _timestamps(frames, fps, vfr, pts, time_base)
    color = color or {}
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps, options=_options(codec, options))
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.codec_context.time_base = base
        stream.time_base = base
        set_tags(stream.codec_context, color)
        if rotation:
            stream.set_display_rotation(rotation)
        extra = _add_audio(container, audio) if audio else None
        sub = _add_subtitles(container) if subtitles else None
        depth = max(c.bits for c in av.VideoFormat(pix_fmt).components)
        for index, stamp in enumerate(stamps):
            frame = _to_format(rgb_frame(pattern(index, width, height), depth), pix_fmt, color)
            frame.pts, frame.time_base = stamp, base
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
        end = float((stamps[-1] + 1) * base) if stamps else 0.0
        if extra is not None:
            _write_audio(container, extra, end)
        if sub is not None:
            _write_subtitles(container, sub)
    return path


def _timestamps(
    frames: int,
    fps: int,
    vfr: bool,
    pts: Sequence[int] | None,
    time_base: Fraction | None,
) -> tuple[list[int], Fraction]:
    if pts is not None:
        return list(pts), time_base or Fraction(1, fps)
    if vfr:
        steps = [VFR_STEPS_MS[i % len(VFR_STEPS_MS)] for i in range(frames)]
        return [sum(steps[:i]) for i in range(frames)], Fraction(1, 1000)
    return list(range(frames)), Fraction(1, fps)


def _options(codec: str, options: dict[str, str] | None) -> dict[str, str]:
    if options is not None:
        return options
    if codec == "libx264":
        return {"crf": "12", "preset": "ultrafast"}
    if codec == "libx265":
        return {"crf": "8", "preset": "ultrafast", "x265-params": QUIET_X265}
    return {}


def set_tags(context: av.codec.context.CodecContext, color: dict[str, str]) -> None:
    """Set colour tags given by FFmpeg name on an encoder context or a frame."""
    if "range" in color:
        context.color_range = RANGE_IDS[color["range"]]
    if "space" in color:
        context.colorspace = SPACE_IDS[color["space"]]
    if "primaries" in color:
        context.color_primaries = PRIMARIES_IDS[color["primaries"]]
    if "transfer" in color:
        context.color_trc = TRANSFER_IDS[color["transfer"]]


def _to_format(frame: av.VideoFrame, pix_fmt: str, color: dict[str, str]) -> av.VideoFrame:
    """Convert RGB to the stream's format with the clip's own matrix and range."""
    if av.VideoFormat(pix_fmt).is_rgb:
        return frame.reformat(format=pix_fmt)
    space = SWS_SPACE.get(color.get("space", ""), "ITU601")
    full = color.get("range") == "pc"
    out = frame.reformat(
        format=pix_fmt,
        src_color_range="JPEG",
        dst_colorspace=space,
        dst_color_range="JPEG" if full else "MPEG",
        interpolation=_FLAGS,
    )
    set_tags(out, color)
    return out


def _add_audio(container: av.container.OutputContainer, audio: bool | str) -> av.AudioStream:
    codec = "aac" if audio is True else str(audio)
    stream = container.add_stream(codec, rate=48000)
    stream.layout = "stereo"
    return stream


def _write_audio(container: av.container.OutputContainer, stream: av.AudioStream, end: float):
    rate, chunk = 48000, 1024
    total = max(int(end * rate), chunk)
    t = np.arange(total) / rate
    tone = (0.2 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)
    fmt = stream.codec_context.format.name
    for start in range(0, total, chunk):
        piece = tone[start : start + chunk]
        planes = np.stack([piece, piece]) if fmt.endswith("p") else np.stack([piece, piece]).T
        if fmt.startswith("s16"):
            planes = (planes * 32767).astype(np.int16)
        data = planes if fmt.endswith("p") else planes.reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(data), format=fmt, layout="stereo")
        frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
        container.mux(stream.encode(frame))
    container.mux(stream.encode())


def _add_subtitles(container: av.container.OutputContainer) -> av.stream.Stream:
    stream = container.add_mux_stream("subrip")
    stream.time_base = Fraction(1, 1000)
    stream.metadata["language"] = "eng"
    return stream


def _write_subtitles(container: av.container.OutputContainer, stream: av.stream.Stream) -> None:
    for start, length, text in ((0, 120, b"first cue"), (120, 100, b"second cue")):
        packet = av.Packet(text)
        packet.stream = stream
        packet.pts = packet.dts = start
        packet.duration = length
        packet.time_base = Fraction(1, 1000)
        container.mux(packet)


def make_frames(
    folder: Path,
    *,
    frames: int = 6,
    size: tuple[int, int] = (64, 48),
    ext: str = "png",
    depth: int = 8,
    names: Sequence[str] | None = None,
) -> list[Path]:
    """Write a folder of still images (PNG, JPEG or TIFF) and return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    names = list(names) if names is not None else [f"frame{i}.{ext}" for i in range(frames)]
    width, height = size
    paths = []
    for index, name in enumerate(names):
        path = folder / name
        write_image(path, pattern(index, width, height), depth)
        paths.append(path)
    return paths


def write_image(path: Path, rgb: np.ndarray, depth: int = 8) -> None:
    """Encode one float RGB image with FFmpeg's image encoders (by extension)."""
    ext = path.suffix.lower().lstrip(".")
    codec, pix_fmt = {
        "png": ("png", "rgb48be" if depth > 8 else "rgb24"),
        "jpg": ("mjpeg", "yuvj444p"),
        "jpeg": ("mjpeg", "yuvj444p"),
        "tif": ("tiff", "rgb48le" if depth > 8 else "rgb24"),
        "tiff": ("tiff", "rgb48le" if depth > 8 else "rgb24"),
    }[ext]
    height, width = rgb.shape[:2]
    context = av.CodecContext.create(codec, "w")
    context.width, context.height, context.pix_fmt = width, height, pix_fmt
    context.time_base = Fraction(1, 25)
    if codec == "mjpeg":
        context.color_range = RANGE_IDS["pc"]
    frame = rgb_frame(rgb, depth).reformat(format=pix_fmt)
    frame.pts = 0
    data = b"".join(bytes(p) for p in context.encode(frame))
    data += b"".join(bytes(p) for p in context.encode())
    path.write_bytes(data)


def make_audio_only(path: Path, seconds: float = 0.3) -> Path:
    """An AAC-only file (no video stream)."""
    with av.open(str(path), "w") as container:
        stream = _add_audio(container, True)
        _write_audio(container, stream, seconds)
    return path


def make_bayer(path: Path, frames: int = 3, size: tuple[int, int] = (16, 8)) -> Path:
    """Raw Bayer (bayer_rggb8) video in NUT: decodable, but not a format snl takes."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("rawvideo", rate=25)
        stream.width, stream.height, stream.pix_fmt = *size, "bayer_rggb8"
        for index in range(frames):
            frame = av.VideoFrame(*size, "bayer_rggb8")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def truncate(path: Path, fraction: float, target: Path | None = None) -> Path:
    """Copy the first `fraction` of a file's bytes to `target` (default: in place)."""
    data = path.read_bytes()
    target = target or path
    target.write_bytes(data[: int(len(data) * fraction)])
    return target


BAD_INPUTS = ["missing", "empty", "random", "broken_png", "no_images", "truncated", "bayer",
              "audio_only"]  # fmt: skip


def make_bad_inputs(folder: Path) -> dict[str, tuple[Path, str]]:
    """Broken inputs by name, each with a phrase its error message must contain."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "empty.mp4").write_bytes(b"")
    (folder / "random.mp4").write_bytes(garbage(4096))
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + garbage(256))
    (folder / "no_images").mkdir(exist_ok=True)
    (folder / "no_images" / "notes.txt").write_text("not an image")
    clip = make_clip(folder / "whole.mp4", frames=8)
    return {
        "missing": (folder / "missing.mp4", "no such file"),
        "empty": (folder / "empty.mp4", "empty file"),
        "random": (folder / "random.mp4", "cannot read as video"),
        "broken_png": (folder / "broken.png", "no decodable image"),
        "no_images": (folder / "no_images", "no images"),
        "truncated": (truncate(clip, 0.5, folder / "truncated.mp4"), "cannot read as video"),
        "bayer": (make_bayer(folder / "bayer.nut"), "unsupported pixel format bayer_rggb8"),
        "audio_only": (make_audio_only(folder / "audio_only.m4a"), "no video stream"),
    }


# ---- reading back with plain PyAV ---------------------------------------------------------


def decode_rgb(path: Path, depth: int = 8) -> list[np.ndarray]:
    """Every frame of the first video stream as float RGB in [0, 1] (frame's own tags)."""
    fmt, scale = ("rgb48le", 65535.0) if depth > 8 else ("rgb24", 255.0)
    with av.open(str(path)) as container:
        return [
            f.reformat(format=fmt, interpolation=_FLAGS).to_ndarray().astype(np.float64) / scale
            for f in container.decode(video=0)
        ]


def video_frames_meta(path: Path) -> list[av.VideoFrame]:
    """Decoded frames of the first video stream (for pts, tags, rotation, format)."""
    with av.open(str(path)) as container:
        return list(container.decode(video=0))


def packets(path: Path, kind: str) -> list[tuple[bytes, Fraction | None]]:
    """(payload, pts in seconds) of every non-empty packet of the first `kind` stream."""
    with av.open(str(path)) as container:
        stream = getattr(container.streams, kind)[0]
        return [
            (bytes(p), None if p.pts is None else p.pts * p.time_base)
            for p in container.demux(stream)
            if p.size
        ]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB for images in [0, 1]."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(1.0 / mse)


def garbage(size: int, seed: int = 0) -> bytes:
    """`size` seeded random bytes: a damaged file that no demuxer reads as video, the same in
    every run (os.urandom bytes are sometimes sniffed as audio: "no video stream")."""
    return random.Random(seed).randbytes(size)
