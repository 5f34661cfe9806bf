"""read_frames(): values, timing and order checked against formulas and plain PyAV."""

from __future__ import annotations

import inspect
from fractions import Fraction
from pathlib import Path

import av
import media
import numpy as np
import pytest

from snl_cli.errors import InputError
from snl_cli.video import read_frames

# Kr, Kb of the YUV matrices (ITU-R BT.709 and BT.601).
MATRICES = {"bt709": (0.2126, 0.0722), "bt601": (0.299, 0.114)}


def _constant_yuv_clip(path: Path, yuv: tuple[int, int, int], depth: int, tags: dict) -> Path:
    """A lossless (FFV1) 4:4:4 clip whose every pixel has the given Y, U, V codes."""
    pix_fmt = "yuv444p" if depth == 8 else f"yuv444p{depth}le"
    dtype = np.uint8 if depth == 8 else np.uint16
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = 8, 4, pix_fmt
        media.set_tags(stream.codec_context, tags)
        frame = media.planar_frame([np.full((4, 8), v, dtype) for v in yuv], pix_fmt)
        media.set_tags(frame, tags)
        frame.pts = 0
        container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def _expected_rgb(yuv, depth: int, matrix: str, full: bool) -> np.ndarray:
    """RGB in [0, 1] from Y'CbCr codes by the ITU formulas."""
    kr, kb = MATRICES[matrix]
    top = (1 << depth) - 1
    y, u, v = (float(c) for c in yuv)
    if full:
        luma, pb, pr = y / top, (u - (top + 1) / 2) / top, (v - (top + 1) / 2) / top
    else:
        unit = 1 << (depth - 8)
        luma, pb, pr = (
            (y - 16 * unit) / (219 * unit),
            (u - 128 * unit) / (224 * unit),
            (v - 128 * unit) / (224 * unit),
        )
    red = luma + 2 * (1 - kr) * pr
    blue = luma + 2 * (1 - kb) * pb
    green = (luma - kr * red - kb * blue) / (1 - kr - kb)
    return np.clip([red, green, blue], 0, 1)


@pytest.mark.parametrize(
    ("tags", "matrix", "full"),
    [
        ({"range": "tv", "space": "bt709"}, "bt709", False),
        ({"range": "pc", "space": "bt709"}, "bt709", True),
        ({"range": "tv", "space": "smpte170m"}, "bt601", False),
        ({}, "bt601", False),  # untagged: FFmpeg's default, BT.601 limited range
    ],
)
@pytest.mark.parametrize("depth", [8, 10])
def test_colour_matrix_and_range(tmp_path, tags, matrix, full, depth):
    unit = 1 << (depth - 8)
    yuv = (120 * unit, 100 * unit, 170 * unit)
    clip = _constant_yuv_clip(tmp_path / "c.mkv", yuv, depth, tags)
    (frame,) = read_frames(clip)
    expected = _expected_rgb(yuv, depth, matrix, full)
    assert np.abs(frame.rgb[1, 3] - expected).max() < (1.5 / 255 if depth == 8 else 2e-3)


def test_ten_bit_precision_survives(tmp_path):
    # 300 distinct 10-bit luma codes must give more distinct values than 8 bits could hold.
    path = tmp_path / "ramp.mkv"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = 300, 2, "yuv444p10le"
        planes = np.empty((3, 2, 300), np.uint16)
        planes[0] = np.arange(300, 600)
        planes[1:] = 512
        frame = media.planar_frame(list(planes), "yuv444p10le")
        frame.pts = 0
        container.mux(stream.encode(frame))
        container.mux(stream.encode())
    (read,) = read_frames(path)
    grey = read.rgb[0, :, 1]
    assert len(np.unique(grey)) > 256
    assert np.allclose(grey, (np.arange(300, 600) - 64) / 876, atol=1e-3)


def test_frames_match_plain_pyav(h264_aac):
    frames = list(read_frames(h264_aac))
    reference = media.decode_rgb(h264_aac, 16)
    assert len(frames) == len(reference) == 13
    for index, (frame, ref) in enumerate(zip(frames, reference, strict=True)):
        assert frame.rgb.dtype == np.float32 and frame.rgb.shape == (48, 64, 3)
        assert frame.index == index and frame.name is None
        # FFmpeg's 16-bit white is 0.4 % low (colour.white_level) and it centres 4:2:0
        # chroma where MPEG sites it left: the same picture, not the same bits.
        assert abs(float((frame.rgb - ref).mean())) < 1 / 255
        assert media.psnr(frame.rgb, ref) > 40
        assert np.abs(frame.rgb - ref).max() < 10 / 255


def test_vfr_pts_and_time_base(make_clip):
    clip = make_clip("vfr.mkv", frames=9, vfr=True)
    expected = [f.pts for f in media.video_frames_meta(clip)]
    frames = list(read_frames(clip))
    assert [f.pts for f in frames] == expected
    assert len(set(np.diff(expected))) > 1  # really variable
    assert all(f.time_base == Fraction(1, 1000) for f in frames)
    assert frames[2].time == pytest.approx(expected[2] / 1000)


def test_start_stop(h264_aac):
    full = list(read_frames(h264_aac))
    part = list(read_frames(h264_aac, start=3, stop=7))
    assert [f.index for f in part] == [3, 4, 5, 6]
    assert [f.pts for f in part] == [f.pts for f in full[3:7]]
    assert np.array_equal(part[0].rgb, full[3].rgb)
    with pytest.raises(ValueError, match="start"):
        read_frames(h264_aac, start=5, stop=2)


def test_is_lazy_generator(h264_aac):
    frames = read_frames(h264_aac)
    assert inspect.isgenerator(frames)
    first = next(frames)
    assert first.index == 0
    frames.close()  # closing early releases the file


def test_odd_size(make_clip):
    clip = make_clip("odd.mp4", size=(63, 37), pix_fmt="yuv444p")
    assert {f.rgb.shape for f in read_frames(clip)} == {(37, 63, 3)}


def test_image_folder_natural_order_and_timing(make_frames):
    folder = make_frames(names=["f10.png", "f2.png", "f1.png", "f03.png"])
    frames = list(read_frames(folder, fps=50))
    assert [f.name for f in frames] == ["f1.png", "f2.png", "f03.png", "f10.png"]
    assert [f.pts for f in frames] == [0, 1, 2, 3]
    assert all(f.time_base == Fraction(1, 50) for f in frames)
    assert next(read_frames(folder)).time_base == Fraction(1, 25)


def test_sixteen_bit_png_precision(make_frames):
    folder = make_frames(depth=16, frames=1)
    (frame,) = read_frames(folder)
    codes = np.rint(frame.rgb * 65535).astype(np.int64)
    assert np.any(codes % 257 != 0)  # not 8-bit values stretched to 16 bits
    truth = media.pattern(0, 64, 48)
    assert np.abs(frame.rgb - truth).max() < 2e-5


@pytest.mark.parametrize("ext", ["jpg", "jpeg", "tif", "tiff"])
def test_other_image_kinds(make_frames, ext):
    frames = list(read_frames(make_frames(ext=ext, frames=2)))
    assert len(frames) == 2
    tolerance = 0.05 if ext.startswith("jp") else 1 / 255
    assert np.abs(frames[1].rgb - media.pattern(1, 64, 48)).max() < tolerance


def test_odd_image_size_names_the_file(tmp_path, make_frames):
    folder = make_frames(frames=3)
    media.write_image(folder / "frame1.png", media.pattern(1, 32, 48))
    with pytest.raises(InputError, match="32x48") as caught:
        list(read_frames(folder))
    assert caught.value.path == str(folder / "frame1.png")


def test_truncated_mkv_yields_what_decodes(make_clip, tmp_path):
    clip = make_clip("long.mkv", frames=16)
    cut = media.truncate(clip, 0.6, tmp_path / "cut.mkv")
    frames = list(read_frames(cut))
    assert 0 < len(frames) < 16
    assert len(frames) == len(media.video_frames_meta(cut))


@pytest.mark.parametrize("name", media.BAD_INPUTS)
def test_bad_input(tmp_path, name):
    path, phrase = media.make_bad_inputs(tmp_path / "bad")[name]
    with pytest.raises(InputError, match=phrase) as caught:
        list(read_frames(path))
    assert caught.value.path == str(path)
