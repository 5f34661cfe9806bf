"""probe(): metadata checked against how the clips were made and against plain PyAV."""

from __future__ import annotations

import json
from fractions import Fraction

import av
import media
import pytest

from snl_cli.errors import InputError
from snl_cli.video import probe

BT709_TV = {"range": "tv", "space": "bt709", "primaries": "bt709", "transfer": "bt709"}
REQUIRED_KEYS = {
    "frames", "width", "height", "fps", "duration", "codec", "pix_fmt", "bit_depth",
    "rotation", "color", "audio",
}  # fmt: skip


def _decodable(path) -> int:
    """Frames plain PyAV decodes, skipping packets the decoder rejects."""
    count = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            try:
                count += len(stream.decode(packet))
            except av.FFmpegError:
                continue
    return count


def test_h264_aac_fields(h264_aac):
    info = probe(h264_aac)
    assert (info.kind, info.frames, info.width, info.height) == ("video", 13, 64, 48)
    assert info.fps == 25
    assert info.duration == pytest.approx(13 / 25, abs=0.01)
    assert (info.codec, info.pix_fmt, info.bit_depth) == ("h264", "yuv420p", 8)
    assert info.color == BT709_TV
    assert info.audio == [{"codec": "aac", "channels": 2, "sample_rate": 48000}]
    assert info.subtitles == []
    assert info.rotation == 0
    assert not info.truncated


def test_hevc_10_bit(hevc10):
    info = probe(hevc10)
    assert (info.codec, info.pix_fmt, info.bit_depth) == ("hevc", "yuv420p10le", 10)


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_frame_count_exact(make_clip, suffix):
    clip = make_clip(f"count{suffix}", frames=11)
    with av.open(str(clip)) as container:
        header = container.streams.video[0].frames
    assert header == (11 if suffix == ".mp4" else 0)  # Matroska does not store the count
    assert probe(clip).frames == 11 == _decodable(clip)


def test_rotation_and_subtitles(make_clip):
    clip = make_clip("rot.mkv", rotation=90, subtitles=True)
    info = probe(clip)
    assert info.rotation == 90
    assert info.subtitles == [{"codec": "subrip", "language": "eng"}]


def test_vfr_time_base_and_duration(make_clip):
    clip = make_clip("vfr.mkv", frames=7, vfr=True)
    info = probe(clip)
    assert info.time_base == Fraction(1, 1000)
    assert info.frames == 7
    steps = media.VFR_STEPS_MS
    assert info.duration == pytest.approx((sum(steps[:6]) + 1) / 1000, abs=0.05)
    assert float(info.fps) == pytest.approx(7 / info.duration, rel=0.01)  # the real average


def test_truncated_mkv_counts_decodable_frames(make_clip, tmp_path):
    clip = make_clip("long.mkv", frames=16)
    cut = media.truncate(clip, 0.6, tmp_path / "cut.mkv")
    info = probe(cut)
    assert 0 < info.frames < 16
    assert info.frames == _decodable(cut)


def test_truncated_faststart_mp4_is_flagged(make_clip, tmp_path):
    clip = make_clip("fast.mp4", frames=16, options={"crf": "0", "preset": "ultrafast"})
    # Rewrite with the index first (as streaming tools do) so a cut keeps the header.
    fast = tmp_path / "faststart.mp4"
    faststart = {"movflags": "faststart"}
    with av.open(str(clip)) as src, av.open(str(fast), "w", options=faststart) as dst:
        out = dst.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:
                packet.stream = out
                dst.mux(packet)
    cut = media.truncate(fast, 0.7, tmp_path / "cut.mp4")
    info = probe(cut)
    assert info.truncated
    assert info.frames == _decodable(cut) < 16


def test_image_folder(make_frames):
    folder = make_frames(names=["frame10.png", "frame2.png", "frame1.png"], depth=16)
    info = probe(folder)
    assert info.kind == "images"
    assert info.files == ("frame1.png", "frame2.png", "frame10.png")
    assert (info.frames, info.width, info.height, info.bit_depth) == (3, 64, 48, 16)
    assert (info.fps, info.time_base) == (25, Fraction(1, 25))
    assert probe(folder, fps=30).time_base == Fraction(1, 30)


@pytest.mark.parametrize(("ext", "codec", "depth"), [("jpg", "mjpeg", 8), ("tif", "tiff", 16)])
def test_other_image_kinds(make_frames, ext, codec, depth):
    info = probe(make_frames(ext=ext, depth=depth, frames=2))
    assert (info.codec, info.bit_depth, info.frames) == (codec, depth, 2)


def test_to_json_is_plain_json(h264_aac):
    data = json.loads(json.dumps(probe(h264_aac).to_json()))
    assert REQUIRED_KEYS <= data.keys()
    assert data["fps"] == 25.0 and data["frames"] == 13
    assert data["audio"] == [{"codec": "aac", "channels": 2, "sample_rate": 48000}]


@pytest.mark.parametrize("name", media.BAD_INPUTS)
def test_bad_input(tmp_path, name):
    path, phrase = media.make_bad_inputs(tmp_path / "bad")[name]
    with pytest.raises(InputError) as caught:
        probe(path)
    assert caught.value.path == str(path)
    assert phrase in caught.value.message
