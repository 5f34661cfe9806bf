"""VideoWriter: round trips checked on the decoded output files and their packets."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import media
import numpy as np
import pytest

from snl_cli.errors import OutputError, UsageError
from snl_cli.video import (
    VideoWriter,
    check_output_path,
    choose_pix_fmt,
    is_temp_name,
    plan_output,
    probe,
    read_frames,
)

FAST = {"preset": "ultrafast"}


def _copy(src: Path, dst: Path, **options) -> list:
    """Read `src` and write every frame unchanged to `dst`; return the frames written."""
    written = []
    with VideoWriter(dst, probe(src), **options) as writer:
        for frame in read_frames(src):
            writer.write(frame)
            written.append(frame)
    return written


def _planes(path: Path) -> list[list[np.ndarray]]:
    """Raw code values of every plane of every frame."""
    out = []
    for frame in media.video_frames_meta(path):
        dtype = np.uint16 if frame.format.components[0].bits > 8 else np.uint8
        out.append([np.frombuffer(p, dtype).copy() for p in frame.planes])
    return out


def test_h264_aac_audio_bit_identical(h264_aac, tmp_path):
    out = tmp_path / "out.mp4"
    _copy(h264_aac, out, **FAST)
    source_audio = media.packets(h264_aac, "audio")
    assert len(source_audio) > 10
    assert media.packets(out, "audio") == source_audio  # same bytes, same pts
    with av.open(str(out)) as container:
        assert container.streams.video[0].codec_context.name == "h264"
        assert container.streams.video[0].frames == 13


def test_hevc_10_bit_stays_10_bit(hevc10, tmp_path):
    out = tmp_path / "out.mkv"
    written = _copy(hevc10, out, crf=4, **FAST)
    frames = media.video_frames_meta(out)
    assert {f.format.name for f in frames} == {"yuv420p10le"}
    with av.open(str(out)) as container:
        assert container.streams.video[0].codec_context.name == "hevc"
    decoded = media.decode_rgb(out, depth=16)
    assert len(decoded) == len(written) == 8
    assert min(media.psnr(w.rgb, d) for w, d in zip(written, decoded, strict=True)) > 35


def test_lossless_10_bit_keeps_code_values(make_clip, tmp_path):
    clip = make_clip("ffv1.mkv", codec="ffv1", pix_fmt="yuv444p10le")
    out = tmp_path / "out.mkv"
    _copy(clip, out)
    for source, copy in zip(_planes(clip), _planes(out), strict=True):
        for a, b in zip(source, copy, strict=True):
            assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


@pytest.mark.parametrize(
    ("codec", "pix_fmt", "expected"),
    [("libx264", "yuv444p", "yuv444p"), ("ffv1", "yuv420p", "yuv420p")],
)
def test_odd_size_kept(make_clip, tmp_path, codec, pix_fmt, expected):
    clip = make_clip(f"odd_{codec}.mkv", size=(63, 37), codec=codec, pix_fmt=pix_fmt)
    out = tmp_path / "out.mkv"
    _copy(clip, out)
    frames = media.video_frames_meta(out)
    assert {(f.width, f.height, f.format.name) for f in frames} == {(63, 37, expected)}


def test_odd_size_420_to_x264_becomes_444(make_clip, tmp_path):
    clip = make_clip("odd.mkv", size=(63, 37), codec="ffv1", pix_fmt="yuv420p10le")
    out = tmp_path / "out.mp4"
    _copy(clip, out, codec="libx264", **FAST)
    frames = media.video_frames_meta(out)
    assert {(f.width, f.height, f.format.name) for f in frames} == {(63, 37, "yuv444p10le")}


def test_choose_pix_fmt():
    assert choose_pix_fmt("libx264", "yuv420p", 64, 48) == "yuv420p"
    assert choose_pix_fmt("libx264", "yuv420p", 63, 37) == "yuv444p"
    assert choose_pix_fmt("libx265", "yuv420p10le", 63, 48) == "yuv444p10le"
    assert choose_pix_fmt("libx264", "yuv422p", 64, 37) == "yuv422p"  # only width matters
    assert choose_pix_fmt("libx264", "yuvj420p", 64, 48) == "yuv420p"
    assert choose_pix_fmt("libx265", "gbrp10le", 64, 48) == "gbrp10le"
    assert choose_pix_fmt("ffv1", "rgb48be", 64, 48) in {"rgb48le", "gbrp16le"}


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_vfr_pts_identical(make_clip, tmp_path, suffix):
    clip = make_clip(f"vfr{suffix}", frames=12, vfr=True, audio=True)
    out = tmp_path / f"out{suffix}"
    _copy(clip, out, **FAST)
    source = [f.pts * f.time_base for f in media.video_frames_meta(clip)]
    copy = [f.pts * f.time_base for f in media.video_frames_meta(out)]
    assert len(set(np.diff(source))) > 1
    assert copy == source


def test_rotation_and_colour_tags_kept(make_clip, tmp_path):
    colour = {"range": "tv", "space": "bt709", "primaries": "bt709", "transfer": "bt709"}
    clip = make_clip("tagged.mp4", rotation=90, color=colour)
    out = tmp_path / "out.mp4"
    _copy(clip, out, **FAST)
    frame = media.video_frames_meta(out)[0]
    assert frame.rotation == 90
    ids = (frame.color_range, frame.colorspace, frame.color_primaries, frame.color_trc)
    assert ids == (media.RANGE_IDS["tv"], 1, 1, 1)


def test_subtitles_copied(make_clip, tmp_path):
    clip = make_clip("subs.mkv", subtitles=True, audio=True)
    out = tmp_path / "out.mkv"
    _copy(clip, out, **FAST)
    assert media.packets(out, "subtitles") == media.packets(clip, "subtitles")
    assert media.packets(out, "audio") == media.packets(clip, "audio")
    with av.open(str(out)) as container:
        assert container.streams.subtitles[0].language == "eng"


def test_subtitles_dropped_where_the_container_cannot_hold_them(make_clip, tmp_path):
    clip = make_clip("subs.mkv", subtitles=True, audio=True)
    plan = plan_output(probe(clip), tmp_path / "out.mp4")
    assert plan.copied == ["audio:aac"]
    assert plan.dropped and plan.dropped[0].startswith("subtitle:subrip")


def test_png_folder_round_trip_16_bit(make_frames, tmp_path):
    folder = make_frames(names=["shot_2.png", "shot_10.png", "shot_1.png"], depth=16)
    out = tmp_path / "clean"
    _copy(folder, out)
    assert sorted(p.name for p in out.iterdir()) == ["shot_1.png", "shot_10.png", "shot_2.png"]
    for name in ("shot_1.png", "shot_2.png", "shot_10.png"):
        with av.open(str(out / name)) as container:
            frame = next(container.decode(video=0))
        assert frame.format.name == "rgb48be"
        with av.open(str(folder / name)) as container:
            original = next(container.decode(video=0))
        assert np.array_equal(frame.to_ndarray(), original.to_ndarray())


def test_jpeg_folder_to_8_bit_pngs(make_frames, tmp_path):
    folder = make_frames(ext="jpg", frames=2)
    out = tmp_path / "pngs"
    _copy(folder, out)
    assert sorted(p.name for p in out.iterdir()) == ["frame0.png", "frame1.png"]
    assert media.video_frames_meta(out / "frame0.png")[0].format.name == "rgb24"


def test_video_to_frame_folder(hevc10, tmp_path):
    out = tmp_path / "frames"
    _copy(hevc10, out)
    with_audio = probe(media.make_clip(tmp_path / "a.mp4", audio=True))
    assert plan_output(with_audio, tmp_path / "pngs").dropped[0].startswith("audio:aac")
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"{i:06d}.png" for i in range(1, 9)]
    assert media.video_frames_meta(out / names[0])[0].format.name == "rgb48be"


def test_images_to_video_default_codec(make_frames, tmp_path):
    folder = make_frames(frames=4)
    out = tmp_path / "out.mkv"
    _copy(folder, out)
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "ffv1"  # lossless PNG in, lossless out
    assert len(media.video_frames_meta(out)) == 4


def _entries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_exception_mid_write_leaves_nothing(h264_aac, tmp_path, error):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(error), VideoWriter(out_dir / "x.mp4", probe(h264_aac), **FAST) as w:
        for frame in read_frames(h264_aac):
            w.write(frame)
            if frame.index == 5:
                assert any(is_temp_name(n) for n in _entries(out_dir))  # was writing
                raise error("stop")
    assert _entries(out_dir) == []


def test_exception_mid_write_frames_folder(make_frames, tmp_path):
    folder = make_frames(frames=3)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(RuntimeError), VideoWriter(out_dir / "pngs", probe(folder)) as w:
        for frame in read_frames(folder):
            w.write(frame)
        raise RuntimeError("late failure")
    assert _entries(out_dir) == []


def test_no_frames_written_is_an_error(h264_aac, tmp_path):
    out = tmp_path / "out" / "x.mp4"
    with pytest.raises(OutputError, match="no frames"), VideoWriter(out, probe(h264_aac)):
        pass
    assert _entries(out.parent) == []


def test_existing_output_refused_without_overwrite(h264_aac, tmp_path):
    out = tmp_path / "out.mp4"
    out.write_bytes(b"precious")
    with pytest.raises(OutputError, match="exists"):
        VideoWriter(out, probe(h264_aac))
    assert out.read_bytes() == b"precious"
    _copy(h264_aac, out, overwrite=True, **FAST)
    assert len(media.video_frames_meta(out)) == 13


def test_output_is_input_refused(h264_aac, tmp_path):
    info = probe(h264_aac)
    twin = tmp_path / "sub" / ".." / h264_aac.name
    link = tmp_path / "link.mp4"
    os.symlink(h264_aac, link)
    for target in (h264_aac, twin, link):
        with pytest.raises(OutputError, match="input"):
            VideoWriter(target, info, overwrite=True)
    with pytest.raises(OutputError, match="input"):
        check_output_path(tmp_path, tmp_path, overwrite=True)
    with pytest.raises(OutputError, match="contains the input"):
        check_output_path(h264_aac, tmp_path, overwrite=True)


def test_output_among_input_frames_refused(make_frames):
    folder = make_frames(frames=2)
    with pytest.raises(OutputError, match="among the input frames"):
        VideoWriter(folder / "frame0.png", probe(folder), overwrite=True)
    assert sorted(p.name for p in folder.iterdir()) == ["frame0.png", "frame1.png"]


def test_folder_overwrite_only_replaces_image_folders(make_frames, tmp_path):
    folder = make_frames(frames=2)
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with (
        pytest.raises(OutputError, match="not only images"),
        VideoWriter(out, probe(folder), overwrite=True) as writer,
    ):
        for frame in read_frames(folder):
            writer.write(frame)
    assert _entries(out) == ["notes.txt"]
    assert not [n for n in _entries(tmp_path) if is_temp_name(n)]


def test_plan_defaults_follow_the_input(make_clip, h264_aac, hevc10, tmp_path):
    before = _entries(tmp_path)
    assert plan_output(probe(h264_aac), tmp_path / "a.mp4").codec == "libx264"
    assert plan_output(probe(hevc10), tmp_path / "b.mkv").codec == "libx265"
    ffv1 = make_clip("l.mkv", codec="ffv1", pix_fmt="yuv422p10le")
    plan = plan_output(probe(ffv1), tmp_path / "c.mkv")
    assert (plan.codec, plan.pix_fmt, plan.bit_depth) == ("ffv1", "yuv422p10le", 10)
    mpeg4 = make_clip("m.mp4", codec="mpeg4", options={})
    assert plan_output(probe(mpeg4), tmp_path / "d.mp4").codec == "libx264"
    assert plan_output(probe(h264_aac), tmp_path / "e.webm").codec == "libvpx-vp9"
    assert _entries(tmp_path) == sorted([*before, "l.mkv", "m.mp4"])  # nothing written


def test_plan_rejects_bad_options(h264_aac, tmp_path):
    info = probe(h264_aac)
    with pytest.raises(UsageError, match="unknown video encoder"):
        plan_output(info, tmp_path / "a.mp4", codec="nope264")
    with pytest.raises(UsageError, match="crf"):
        plan_output(info, tmp_path / "a.mkv", codec="ffv1", crf=10)
    with pytest.raises(OutputError, match="container"):
        plan_output(info, tmp_path / "a.unknownext")
    with pytest.raises(OutputError, match="folder for frames"):
        plan_output(info, tmp_path / "a.png")
    with pytest.raises(OutputError, match="cannot hold"):
        plan_output(info, tmp_path / "a.webm", codec="libx264")


def test_write_arrays_with_rescaled_pts(make_clip, tmp_path):
    info = probe(make_clip("plain.mp4"))
    out = tmp_path / "arrays.mkv"
    with VideoWriter(out, info, **FAST) as writer:
        for index in range(4):
            rgb = media.pattern(index, 64, 48).astype(np.float32)
            writer.write(rgb, pts=index * 80, time_base=Fraction(1, 1000))
        with pytest.raises(ValueError, match="shape"):
            writer.write(np.zeros((4, 4, 3), np.float32))
        # A stamp that goes back (broken input) is repaired to one frame later, counted.
        writer.write(rgb, pts=0, time_base=Fraction(1, 1000))
        assert writer.repaired_pts == 1
    times = [f.pts * f.time_base for f in media.video_frames_meta(out)]
    assert times[:4] == [Fraction(80 * i, 1000) for i in range(4)]
    assert times[4] == times[3] + Fraction(1, 25)


def test_outputs_get_normal_permissions(make_clip, make_frames, tmp_path) -> None:
    """Temporary files are private while written; the result gets a new file's mode."""
    import os

    from snl_cli.video import VideoWriter, probe, read_frames

    umask = os.umask(0)
    os.umask(umask)
    src = make_clip("in.mkv", frames=2)
    out = tmp_path / "out.mkv"
    with VideoWriter(out, probe(src)) as writer:
        for frame in read_frames(src):
            writer.write(frame)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask
    folder = make_frames("pngs", frames=2)
    out_dir = tmp_path / "out_frames"
    with VideoWriter(out_dir, probe(folder)) as writer:
        for frame in read_frames(folder):
            writer.write(frame)
    assert out_dir.stat().st_mode & 0o777 == 0o777 & ~umask


def test_small_hevc_output_survives_many_encodes(make_clip, tmp_path):
    """libx265's cu-tree corrupts the heap on frames smaller than 64 px (the process aborts
    within a few dozen encodes); the plan turns it off there, and 150 encodes of noisy frames
    with the plan's options run in one process."""
    import io

    clip = make_clip("small.mkv", codec="ffv1", size=(48, 40), frames=2)
    plan = plan_output(probe(clip), tmp_path / "out.mkv", codec="libx265")
    rng = np.random.default_rng(0)
    for _ in range(150):
        with av.open(io.BytesIO(), "w", format="matroska") as container:
            stream = container.add_stream(plan.codec, rate=25, options=dict(plan.options))
            stream.width, stream.height, stream.pix_fmt = 48, 40, "yuv420p"
            for pts in range(4):
                image = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
                frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
                frame.pts = pts
                container.mux(stream.encode(frame))
            container.mux(stream.encode())
    big = make_clip("big.mkv", codec="ffv1", size=(64, 64), frames=2)
    params = plan_output(probe(big), tmp_path / "big.mkv", codec="libx265").options["x265-params"]
    assert "cutree" not in params  # cu-tree stays on from 64 px up
