"""Safe, faithful writing: `VideoWriter` encodes frames like the input clip.

What the written clip keeps from the input (`like`):
- every frame's pts, in the input's time base (variable frame rate survives);
- bit depth and pixel-format family (10-bit 4:2:0 in, 10-bit 4:2:0 out), where the
  encoder allows it;
- the exact frame size, also when odd (see `choose_pix_fmt`);
- colour tags (range, matrix, primaries, transfer) and the display rotation;
- audio and subtitle packets, copied unchanged and interleaved with the video as it is
  written (a second demuxer reads them from the input, so memory stays flat).

The output goes to a hidden temporary file beside the target and is renamed into place
only on a clean exit; any exception (Ctrl-C included) removes it. A target without a
suffix, or an existing folder, is a frame folder: one PNG per frame, 8- or 16-bit by the
input's depth, named after the input's images (stem + .png) or 000001.png, 000002.png...
"""

from __future__ import annotations

import contextlib
import os
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import numpy as np

from snl_cli.errors import InputError, OutputError
from snl_cli.video.colour import apply_tags, from_rgb
from snl_cli.video.images import write_picture, write_png
from snl_cli.video.plan import OutputPlan, plan_output
from snl_cli.video.probe import ClipInfo
from snl_cli.video.reader import Frame
from snl_cli.video.safety import (
    check_output_path,
    commit_dir,
    commit_file,
    discard,
    temp_dir_beside,
    temp_file_beside,
)


class VideoWriter:
    """Write frames like the input clip; rename into place only on a clean exit.

    Use as a context manager::

        with VideoWriter("out.mkv", probe("in.mkv")) as writer:
            for frame in read_frames("in.mkv"):
                writer.write(process(frame))

    Args:
        path: a video file (the suffix picks the container) or a folder for PNG frames.
        like: the input's ClipInfo; size, timing, depth, colour, rotation, audio and
            subtitles are taken from it (and the side streams from `like.path`).
        codec, crf, preset: encoder overrides (see `plan_output` for the defaults).
        overwrite: replace an existing output.
        start_pts: write a part of the clip that starts at this pts (input time base):
            video pts and the copied side packets shift by it so the output starts at 0;
            side packets before it, or after the last frame written, are left out.

    Raises:
        OutputError: the output exists (without `overwrite`), is the input, or cannot be
            written.
        UsageError: bad codec/crf/preset combination.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        like: ClipInfo,
        *,
        codec: str | None = None,
        crf: int | None = None,
        preset: str | None = None,
        overwrite: bool = False,
        start_pts: int | None = None,
    ) -> None:
        self.path = Path(path)
        self.like = like
        self.overwrite = overwrite
        check_output_path(like.path, self.path, overwrite)
        self.plan = plan_output(like, self.path, codec=codec, crf=crf, preset=preset)
        sinks = {"images": _ImageSink, "image": _PictureSink, "video": _VideoSink}
        self._sink: _ImageSink | _PictureSink | _VideoSink = sinks[self.plan.kind](self.plan, like)
        self.start_pts = start_pts
        if start_pts is not None and isinstance(self._sink, _VideoSink):
            self._sink.cut_start = float(start_pts * like.time_base)
        self.frames_written = 0
        self.repaired_pts = 0
        self._last_pts: int | None = None

    def __enter__(self) -> VideoWriter:
        self._sink.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self._sink.abort()
            return
        if self.frames_written == 0:
            self._sink.abort()
            raise OutputError("no frames were written", self.path)
        try:
            self._sink.finish(self.overwrite)
        except BaseException:
            self._sink.abort()
            raise

    def write(
        self,
        frame: Frame | np.ndarray,
        *,
        pts: int | None = None,
        time_base: Fraction | None = None,
        name: str | None = None,
    ) -> None:
        """Encode one frame.

        Args:
            frame: a Frame, or float RGB (H, W, 3) in [0, 1] (numpy or anything
                `np.asarray` accepts, e.g. a CPU tensor).
            pts, time_base: timestamp for an array (default: the next frame at the
                input's average rate); a Frame carries its own.
            name: file name stem for frame-folder outputs (a Frame carries its own).

        Raises:
            ValueError: wrong shape.
            OutputError: the encoder or the disk failed.
        """
        if isinstance(frame, Frame):
            rgb, pts, time_base, name = frame.rgb, frame.pts, frame.time_base, frame.name
        else:
            rgb = frame
        rgb = np.asarray(rgb, dtype=np.float32)
        expected = (self.like.height, self.like.width, 3)
        if rgb.shape != expected:
            raise ValueError(f"frame shape must be {expected}, got {rgb.shape}")
        out_pts = self._out_pts(pts, time_base)
        self._sink.write(rgb, out_pts, name, self.frames_written)
        self.frames_written += 1
        self._last_pts = out_pts

    def _out_pts(self, pts: int | None, time_base: Fraction | None) -> int:
        """The pts in the output's time base; missing pts continue at the average rate.

        A pts that does not increase (duplicate stamps in a broken input, or two frames
        rounded onto one tick of a coarser encoder time base) is moved one frame duration
        (at the clip's average rate) past the previous one and counted in `repaired_pts`.
        """
        base = self.time_base
        if pts is None:
            step = 1 / (self.like.fps * base)
            out = round(self.frames_written * step)
        elif time_base is None or Fraction(time_base) == base:
            out = int(pts)
        else:
            out = round(pts * Fraction(time_base) / base)
        if self.start_pts is not None and pts is not None:
            out -= round(self.start_pts * self.like.time_base / base)
        if self._last_pts is not None and out <= self._last_pts:
            out = self._last_pts + max(1, round(1 / (self.like.fps * base)))
            self.repaired_pts += 1
        return out

    @property
    def time_base(self) -> Fraction:
        """The time base of the written pts (the input's unless the encoder refused it)."""
        return self.plan.time_base or self.like.time_base


class _VideoSink:
    """Encoder, muxer and side-stream copier behind VideoWriter for video files."""

    def __init__(self, plan: OutputPlan, like: ClipInfo) -> None:
        self.plan = plan
        self.like = like
        self.tmp: Path | None = None
        self.output: av.container.OutputContainer | None = None
        self.source: av.container.InputContainer | None = None
        self.stream: av.VideoStream | None = None
        self.side_map: dict[int, av.stream.Stream] = {}
        self.side_packets = None
        self.pending: av.Packet | None = None
        self.deep = plan.bit_depth > 8
        self.time_base = plan.time_base or like.time_base
        self.cut_start: float | None = None  # seconds: a part of the clip is written
        self.last_time = 0.0

    def open(self) -> None:
        os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints a banner unless told
        self.tmp = temp_file_beside(self.plan.path)
        try:
            self.output = av.open(str(self.tmp), "w")
            self.stream = self._add_video_stream()
            self._open_side_streams()
        except BaseException as exc:
            self.abort()
            if isinstance(exc, av.FFmpegError):
                cause = f"cannot set up the encoder: {exc.strerror}"
                raise OutputError(cause, self.plan.path) from exc
            raise

    def _add_video_stream(self) -> av.VideoStream:
        like, plan = self.like, self.plan
        stream = self.output.add_stream(plan.codec, rate=like.fps, options=dict(plan.options))
        stream.width, stream.height, stream.pix_fmt = like.width, like.height, plan.pix_fmt
        # The input's time base, not 1/fps: each frame's pts is kept, so VFR survives
        # (unless the encoder takes only 1/fps, as MPEG-1/2 do: see plan_output).
        stream.codec_context.time_base = self.time_base
        stream.time_base = self.time_base
        apply_tags(stream.codec_context, plan.color)
        if like.rotation:
            stream.set_display_rotation(like.rotation)
        return stream

    def _open_side_streams(self) -> None:
        """Open a second demuxer on the input for its tags and the streams to copy."""
        if self.like.kind != "video":
            return
        try:
            self.source = av.open(str(self.like.path), metadata_errors="replace")
        except av.FFmpegError as exc:
            raise InputError(f"cannot reopen: {exc.strerror}", self.like.path) from exc
        _copy_tags(self.source.metadata, self.output.metadata)
        if self.source.streams.video:
            _copy_tags(self.source.streams.video[0].metadata, self.stream.metadata)
        if not self.plan.copied:
            self._close_source()
            return
        wanted = {label.split(":", 1)[1] for label in self.plan.copied}
        selected = []
        for source_stream in (*self.source.streams.audio, *self.source.streams.subtitles):
            context = source_stream.codec_context
            codec = context.codec.canonical_name if context is not None else None
            if codec in wanted:
                copy = self.output.add_stream_from_template(source_stream)
                _copy_stream_tags(source_stream, copy)
                self.side_map[source_stream.index] = copy
                selected.append(source_stream)
        if selected:
            self.side_packets = self.source.demux(*selected)

    def write(self, rgb: np.ndarray, pts: int, name: str | None, index: int) -> None:
        frame = from_rgb(rgb, self.plan.pix_fmt, self.plan.color, self.deep)
        frame.pts, frame.time_base = pts, self.time_base
        self.last_time = float(pts * self.time_base)
        try:
            self.output.mux(self.stream.encode(frame))
            self._copy_side_packets(until=float(pts * self.time_base))
        except av.FFmpegError as exc:
            raise OutputError(f"encoding failed: {exc.strerror}", self.plan.path) from exc
        except OSError as exc:
            raise OutputError(exc.strerror or "write failed", self.plan.path) from exc

    def _copy_side_packets(self, until: float | None) -> None:
        """Mux the copied streams' packets up to `until` seconds (None: all of them)."""
        while self.side_packets is not None:
            if self.pending is None:
                self.pending = self._next_side_packet()
                if self.pending is None:
                    return
            packet = self.pending
            stamp = packet.dts if packet.dts is not None else packet.pts
            seconds = float(stamp * packet.time_base) - (self.cut_start or 0.0)
            if until is not None and seconds > until:
                return
            if self.cut_start is not None:
                self.pending = None
                if until is None and seconds > self.last_time + 1.0:
                    self.side_packets = None  # well past the part written: stop demuxing
                    return
                if not self._shift_into_cut(packet, seconds):
                    continue
            packet.stream = self.side_map[packet.stream.index]
            self.output.mux(packet)
            self.pending = None

    def _shift_into_cut(self, packet: av.Packet, seconds: float) -> bool:
        """Shift a packet by the cut's start; False for one outside the part written."""
        end = self.last_time + 1 / float(self.like.fps)
        if seconds < -1e-6 or seconds >= end - 1e-6:
            return False
        shift = round(self.cut_start / packet.time_base)
        if packet.pts is not None:
            packet.pts -= shift
        if packet.dts is not None:
            packet.dts -= shift
        return True

    def _next_side_packet(self) -> av.Packet | None:
        while True:
            try:
                packet = next(self.side_packets)
            except (StopIteration, av.FFmpegError):
                self.side_packets = None  # a damaged tail ends the copy, as it ends decoding
                return None
            if packet.size and (packet.dts is not None or packet.pts is not None):
                return packet

    def finish(self, overwrite: bool) -> None:
        try:
            self.output.mux(self.stream.encode())
            self._copy_side_packets(until=None)
            self.output.close()
        except av.FFmpegError as exc:
            raise OutputError(f"encoding failed: {exc.strerror}", self.plan.path) from exc
        except OSError as exc:
            raise OutputError(exc.strerror or "write failed", self.plan.path) from exc
        self._close_source()
        commit_file(self.tmp, self.plan.path, overwrite)
        self.tmp = None

    def abort(self) -> None:
        if self.output is not None:
            # Failing already: a close error must not hide the first one; the file goes.
            with contextlib.suppress(Exception):
                self.output.close()
            self.output = None
        self._close_source()
        if self.tmp is not None:
            discard(self.tmp)
            self.tmp = None

    def _close_source(self) -> None:
        if self.source is not None:
            self.source.close()
            self.source = None


class _ImageSink:
    """PNG frames in a hidden folder beside the target, renamed into place at the end."""

    def __init__(self, plan: OutputPlan, like: ClipInfo) -> None:
        self.plan = plan
        self.like = like
        self.tmp: Path | None = None
        self.deep = plan.bit_depth > 8

    def open(self) -> None:
        self.tmp = temp_dir_beside(self.plan.path)

    def write(self, rgb: np.ndarray, pts: int, name: str | None, index: int) -> None:
        file_name = f"{Path(name).stem}.png" if name else f"{index + 1:06d}.png"
        target = self.tmp / file_name
        if target.exists():
            raise OutputError(f"two input frames map to {file_name}", self.plan.path)
        write_png(target, rgb, self.deep)

    def finish(self, overwrite: bool) -> None:
        commit_dir(self.tmp, self.plan.path, overwrite)
        self.tmp = None

    def abort(self) -> None:
        if self.tmp is not None:
            discard(self.tmp)
            self.tmp = None


class _PictureSink:
    """One picture in a hidden file beside the target, renamed into place at the end."""

    def __init__(self, plan: OutputPlan, like: ClipInfo) -> None:
        self.plan = plan
        self.tmp: Path | None = None
        self.written = False

    def open(self) -> None:
        self.tmp = temp_file_beside(self.plan.path)

    def write(self, rgb: np.ndarray, pts: int, name: str | None, index: int) -> None:
        if self.written:
            raise OutputError("a picture holds one frame; give a folder for frames", self.plan.path)
        write_picture(self.tmp, rgb, self.plan.bit_depth > 8)
        self.written = True

    def finish(self, overwrite: bool) -> None:
        commit_file(self.tmp, self.plan.path, overwrite)
        self.tmp = None

    def abort(self) -> None:
        if self.tmp is not None:
            discard(self.tmp)
            self.tmp = None


# Tags the muxer writes afresh (Matroska statistics, MP4 brands, encoder) are not copied.
_RECOMPUTED_TAGS = (
    "DURATION", "NUMBER_OF_", "_STATISTICS_", "BPS", "ENCODER", "MAJOR_BRAND",
    "MINOR_VERSION", "COMPATIBLE_BRANDS", "HANDLER_NAME", "VENDOR_ID", "ROTATE",
)  # fmt: skip


def _copy_tags(source: dict, target: dict) -> None:
    """Copy metadata such as title, language and creation time."""
    for key, value in source.items():
        if not key.upper().startswith(_RECOMPUTED_TAGS):
            target[key] = value


def _copy_stream_tags(source: av.stream.Stream, target: av.stream.Stream) -> None:
    """Language, title and default/forced flags travel with a copied stream."""
    _copy_tags(source.metadata, target.metadata)
    target.disposition = source.disposition.value
