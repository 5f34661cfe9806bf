"""snl_cli.clips: which paths are clips, 8-bit reads against FFmpeg's own decode, lossless
writes, and the one float-to-integer conversion."""

from __future__ import annotations

from pathlib import Path

import av
import media
import numpy as np
import pytest

from snl_cli.clips import expand_clips, read_image, read_uint8, walk_clips, write_lossless
from snl_cli.errors import InputError
from snl_cli.video.images import quantize


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    (tmp_path / "set").mkdir()
    media.make_clip(tmp_path / "set" / "a.mp4", frames=3)
    media.make_frames(tmp_path / "set" / "frames", frames=2)
    (tmp_path / "set" / "notes.txt").write_text("not a clip")
    (tmp_path / "set" / ".hidden.mp4").write_bytes(b"x")
    (tmp_path / "set" / "empty").mkdir()
    return tmp_path


def test_expand_takes_clips_as_they_are_and_folders_of_clips_by_content(root: Path) -> None:
    folder = root / "set"
    assert expand_clips([folder / "a.mp4"]) == [folder / "a.mp4"]
    assert expand_clips([str(folder / "frames")]) == [folder / "frames"]  # a frame folder
    # A folder of clips: its videos and frame folders; text, hidden and empty ones left out.
    assert expand_clips([folder]) == [folder / "a.mp4", folder / "frames"]
    assert list(walk_clips(folder)) == [folder / "a.mp4", folder / "frames"]


def test_expand_refuses_missing_paths_and_empty_folders(root: Path) -> None:
    with pytest.raises(InputError, match="no such file or folder"):
        expand_clips([root / "nope"])
    with pytest.raises(InputError, match="no clips found"):
        expand_clips([root / "set" / "empty"])


def test_read_uint8_gives_the_stored_codes(root: Path) -> None:
    folder = root / "set" / "frames"
    expected = []
    for path in sorted(folder.iterdir()):
        with av.open(str(path)) as container:
            expected.append(next(container.decode(video=0)).to_ndarray(format="rgb24"))
    got = read_uint8(folder)
    assert len(got) == 2 and all(g.dtype == np.uint8 for g in got)
    assert all(np.array_equal(g, e) for g, e in zip(got, expected, strict=True))
    assert np.array_equal(read_image(folder / "frame0.png"), expected[0])
    assert len(read_uint8(root / "set" / "a.mp4", stop=2)) == 2
    with pytest.raises(InputError, match="needs at least 4 frames, has 3"):
        read_uint8(root / "set" / "a.mp4", min_frames=4)


def test_write_lossless_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    frames = [(rng.random((30, 42, 3)) * 255).astype(np.uint8) for _ in range(3)]
    path = tmp_path / "n.mkv"
    write_lossless(frames, path)
    back = read_uint8(path)
    assert len(back) == 3
    for a, b in zip(frames, back, strict=True):
        assert np.array_equal(a, b)


def test_quantize_rounds_and_clips() -> None:
    rgb = np.array([[[-0.1, 0.0, 0.5 / 255], [1.5 / 255, 0.5, 1.2]]], np.float32)
    # rint rounds halves to even: 0.5 -> 0, 1.5 -> 2, 127.5 -> 128.
    assert quantize(rgb).tolist() == [[[0, 0, 0], [2, 128, 255]]]
    deep = quantize(np.array([1.0, 0.5], np.float32), 65535, np.uint16)
    assert deep.dtype == np.uint16 and deep.tolist() == [65535, 32768]
