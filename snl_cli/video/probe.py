"""Clip metadata: `probe(path)` describes a video file or a folder of frames.

The numbers are facts about the file, not guesses from the header alone: the frame count
is counted by demuxing when the container does not store it (Matroska, WebM) and is
reduced to the complete packets when an MP4 index points past the end of a truncated file.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from snl_cli.errors import InputError, SnlError
from snl_cli.video.colour import ColourTags, merge_tags, tags_of
from snl_cli.video.images import IMAGE_SUFFIXES, decode_image, list_images

DEFAULT_IMAGE_FPS = Fraction(25)
_HW_FORMATS = ("vaapi", "cuda", "qsv", "vdpau", "d3d11", "d3d12", "dxva2", "videotoolbox")


@dataclass(frozen=True)
class ClipInfo:
    """What snl knows about one input clip.

    Attributes:
        path: the file or folder.
        kind: "video" (a file) or "images" (a folder of frames).
        frames: exact frame count (complete packets for a truncated file).
        width, height: coded frame size in pixels (before display rotation).
        fps: average frame rate; for folders the rate asked for (25 by default).
        duration: seconds.
        codec: FFmpeg codec name ("h264", "hevc", "png", ...).
        pix_fmt: pixel format of the decoded frames ("yuv420p10le", "rgb48be", ...).
        bit_depth: bits per component (8, 10, 12, 16).
        rotation: display rotation in degrees counter-clockwise, 0/90/180/270.
        color: FFmpeg names of "range", "space", "primaries", "transfer" (None if unset).
        audio: one {codec, channels, sample_rate} per audio stream.
        subtitles: one {codec, language} per subtitle stream.
        time_base: the video stream's time base; frame pts count in it.
        files: for folders, the image names in natural order.
        container: demuxer name ("mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", ...).
        truncated: the file ends before its own index does.
        declared_frames: the frame count the file's header declares (None if it has none);
            more than `frames` when the file is truncated.
    """

    path: Path
    kind: str
    frames: int
    width: int
    height: int
    fps: Fraction
    duration: float
    codec: str
    pix_fmt: str
    bit_depth: int
    rotation: int
    color: ColourTags
    audio: list[dict[str, Any]] = field(default_factory=list)
    subtitles: list[dict[str, Any]] = field(default_factory=list)
    time_base: Fraction = Fraction(1, 25)
    files: tuple[str, ...] = ()
    container: str | None = None
    truncated: bool = False
    declared_frames: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The dict printed by `snl info --json` (plain JSON types only)."""
        return {
            "path": str(self.path),
            "kind": self.kind,
            "frames": self.frames,
            "width": self.width,
            "height": self.height,
            "fps": round(float(self.fps), 6),
            "fps_exact": str(self.fps),
            "duration": round(self.duration, 6),
            "codec": self.codec,
            "pix_fmt": self.pix_fmt,
            "bit_depth": self.bit_depth,
            "rotation": self.rotation,
            "color": dict(self.color),
            "audio": [dict(a) for a in self.audio],
            "subtitles": [dict(s) for s in self.subtitles],
            "time_base": str(self.time_base),
            "container": self.container,
            "truncated": self.truncated,
            "declared_frames": self.declared_frames,
        }


def probe(path: str | os.PathLike[str], *, fps: Fraction | float | None = None) -> ClipInfo:
    """Describe a video file or a folder of images.

    Args:
        path: a file FFmpeg can demux, or a folder of png/jpg/jpeg/tif/tiff images.
        fps: frame rate for image folders (default 25); ignored for video files.

    Raises:
        InputError: missing path, empty or unreadable file, no video stream, no decodable
            frame, an unsupported pixel format, or a folder without images.
    """
    path = Path(path)
    if not path.exists():
        raise InputError("no such file or folder", path)
    if path.is_dir():
        return _probe_images(path, fps)
    return _probe_video(path)  # open_input refuses pipes and devices


def check_regular_file(path: Path) -> None:
    """Raise InputError for a pipe, FIFO, socket or device (/dev/stdin): snl seeks in its
    input and reads it more than once, so only files and frame folders will do."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise InputError(exc.strerror or str(exc), path) from exc
    if not stat.S_ISREG(mode):
        kind = "a pipe" if stat.S_ISFIFO(mode) else "a device or socket"
        raise InputError(
            f"is {kind}; snl reads files and frame folders only (pipes are not supported: "
            "save the stream to a file first)",
            path,
        )


@contextmanager
def open_input(path: Path) -> Iterator[av.container.InputContainer]:
    """Open a media file for reading; FFmpeg and OS failures become InputError."""
    try:
        check_regular_file(path)
        if path.stat().st_size == 0:
            raise InputError("empty file", path)
        with av.open(str(path), metadata_errors="replace") as container:
            yield container
    except SnlError:
        raise
    except av.FFmpegError as exc:
        raise InputError(f"cannot read as video: {_cause(exc)}", path) from exc
    except OSError as exc:
        raise InputError(exc.strerror or str(exc), path) from exc


def video_stream(container: av.container.InputContainer, path: Path) -> av.VideoStream:
    """The first video stream, or InputError("no video stream")."""
    if not container.streams.video:
        raise InputError("no video stream", path)
    return container.streams.video[0]


def decode_packets(container: av.container.InputContainer, stream: av.VideoStream):
    """Decode `stream` frame by frame, skipping packets the decoder rejects.

    A truncated file ends with a partial packet: it is left out when the index says it
    is cut short (fed to a frame-threaded decoder it silently costs the frames still in
    flight), and any corrupt packet the decoder rejects is skipped, as the ffmpeg tool
    does. A demuxer error ends the stream the same way; the decoder is then drained, so
    every frame that can be decoded is yielded.
    """
    partial = _partial_positions(container, stream)
    packets = container.demux(stream)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            return
        except av.FFmpegError:
            with contextlib.suppress(av.FFmpegError):
                yield from stream.decode(None)
            return
        if packet.size and packet.pos in partial:
            continue
        try:
            frames = stream.decode(packet)
        except av.FFmpegError:
            continue
        yield from frames


def _partial_positions(container: av.container.InputContainer, stream: av.VideoStream) -> set:
    """File positions of the packets the index places (partly) past the end of the file."""
    try:
        size = os.fstat(container.file.fileno()).st_size if hasattr(container, "file") else None
    except (OSError, AttributeError, ValueError):
        size = None
    if size is None:
        try:
            size = Path(container.name).stat().st_size
        except (OSError, TypeError):
            return set()
    return {e.pos for e in stream.index_entries if e.pos + e.size > size}


def check_pixel_format(frame: av.VideoFrame, path: Path) -> None:
    """Refuse formats snl cannot convert to RGB and write back (Bayer, hardware, unknown)."""
    fmt = frame.format
    if fmt is None or fmt.name in (None, "none"):
        raise InputError("unsupported pixel format (unknown)", path)
    if fmt.is_bayer or fmt.name.startswith(_HW_FORMATS):
        raise InputError(f"unsupported pixel format {fmt.name}", path)


def no_frame_error(path: Path) -> InputError:
    """The error for a file that opens but yields no frame: a broken image or video."""
    kind = "image" if Path(path).suffix.lower() in IMAGE_SUFFIXES else "video frame"
    return InputError(f"no decodable {kind}", path)


def bit_depth(pix_fmt: str) -> int:
    """Bits per component of a pixel format (the largest component)."""
    return max(c.bits for c in av.VideoFormat(pix_fmt).components)


def _probe_video(path: Path) -> ClipInfo:
    with open_input(path) as container:
        stream = video_stream(container, path)
        first = next(decode_packets(container, stream), None)
        if first is None:
            raise no_frame_error(path)
        check_pixel_format(first, path)
        frames, truncated = _count_frames(container, stream, path)
        broken = _duplicate_timestamps(path)
        duration = None if truncated or broken else _video_duration(stream, container)
        fps = _frame_rate(stream, frames, duration)
        return ClipInfo(
            path=path,
            kind="video",
            frames=frames,
            width=first.width,
            height=first.height,
            fps=fps,
            duration=duration if duration is not None else float(frames / fps),
            codec=_codec_name(stream),
            pix_fmt=first.format.name,
            bit_depth=bit_depth(first.format.name),
            rotation=normalise_rotation(first.rotation),
            color=merge_tags(tags_of(first), tags_of(stream.codec_context)),
            audio=[_audio_entry(s) for s in container.streams.audio],
            subtitles=[_subtitle_entry(s) for s in container.streams.subtitles],
            time_base=stream.time_base or Fraction(1, 90000),
            container=container.format.name,
            truncated=truncated,
            declared_frames=stream.frames or None,
        )


def _count_frames(
    container: av.container.InputContainer, stream: av.VideoStream, path: Path
) -> tuple[int, bool]:
    """(frame count, truncated): the header's count when it is there and fits in the file."""
    entries = stream.index_entries
    if stream.frames > 0 and len(entries) == stream.frames:
        size = path.stat().st_size
        complete = sum(1 for e in entries if e.pos + e.size <= size)
        return complete, complete < stream.frames
    if stream.frames > 0:
        return stream.frames, False
    return _demux_count(path), False


def _demux_count(path: Path) -> int:
    """Count the non-empty packets of the first video stream (no decoding)."""
    count = 0
    with open_input(path) as container:
        stream = video_stream(container, path)
        try:
            for packet in container.demux(stream):
                count += packet.size > 0
        except av.FFmpegError:
            pass  # a damaged tail ends the count, as it ends decoding
    return count


def _duplicate_timestamps(path: Path, packets: int = 64) -> bool:
    """Whether the first video packets repeat a pts (broken muxers, some screen recorders):
    then frames / duration is no frame rate, and the writer repairs the stamps."""
    seen: set[int] = set()
    with open_input(path) as container:
        stream = video_stream(container, path)
        with contextlib.suppress(av.FFmpegError):
            for packet in container.demux(stream):
                if packet.pts is None or not packet.size:
                    continue
                if packet.pts in seen:
                    return True
                seen.add(packet.pts)
                if len(seen) >= packets:
                    break
    return False


def _video_duration(stream: av.VideoStream, container: av.container.InputContainer) -> float | None:
    """Seconds the video stream lasts, from the best source the container offers."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    tag = stream.metadata.get("DURATION")  # Matroska stores each stream's length as a tag
    if tag:
        with contextlib.suppress(ValueError):
            hours, minutes, seconds = tag.split(":")
            return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    if container.duration:
        return container.duration / 1_000_000
    return None


# Above this, a "frame rate" comes from broken timestamps (all frames at pts 0, say).
MAX_PLAUSIBLE_FPS = 240


def _frame_rate(stream: av.VideoStream, frames: int, duration: float | None) -> Fraction:
    """The container's average rate, unless frames / duration disagrees (VFR Matroska).

    Rates above MAX_PLAUSIBLE_FPS come from duplicate or non-increasing timestamps and
    are passed over for the next source (the codec's rate, then 25 fps).
    """
    nominal = stream.average_rate or stream.guessed_rate
    candidates = []
    if frames and duration:
        measured = frames / duration
        if not nominal or abs(measured - nominal) > 0.01 * nominal:
            candidates.append(Fraction(measured).limit_denominator(1001))
    candidates += [Fraction(r) for r in (nominal, stream.codec_context.framerate) if r]
    for rate in candidates:
        if 0 < rate <= MAX_PLAUSIBLE_FPS:
            return rate
    return DEFAULT_IMAGE_FPS


def _codec_name(stream: av.stream.Stream) -> str:
    codec = stream.codec_context.codec
    return getattr(codec, "canonical_name", None) or codec.name


def _audio_entry(stream: av.AudioStream) -> dict[str, Any]:
    context = stream.codec_context
    return {
        "codec": _codec_name(stream),
        "channels": context.layout.nb_channels,
        "sample_rate": context.sample_rate,
    }


def _subtitle_entry(stream: av.stream.Stream) -> dict[str, Any]:
    codec = _codec_name(stream) if stream.codec_context is not None else None
    return {"codec": codec, "language": stream.language}


def normalise_rotation(degrees: float | None) -> int:
    """A display rotation as 0, 90, 180 or 270 (counter-clockwise)."""
    return round(degrees or 0) % 360


def _cause(exc: av.FFmpegError) -> str:
    return exc.strerror or type(exc).__name__


def _probe_images(folder: Path, fps: Fraction | float | None) -> ClipInfo:
    files = list_images(folder)
    first, codec = decode_image(files[0])
    check_pixel_format(first, files[0])
    rate = Fraction(fps).limit_denominator(1_000_000) if fps else DEFAULT_IMAGE_FPS
    return ClipInfo(
        path=folder,
        kind="images",
        frames=len(files),
        width=first.width,
        height=first.height,
        fps=rate,
        duration=float(len(files) / rate),
        codec=codec,
        pix_fmt=first.format.name,
        bit_depth=bit_depth(first.format.name),
        rotation=0,
        color=tags_of(first),
        time_base=1 / rate,
        files=tuple(p.name for p in files),
        container="image folder",
    )
