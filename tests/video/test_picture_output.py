"""One picture out for a one-frame input (`snl denoise photo.jpg -o clean.png`): PNG and TIFF
keep the input's bit depth and match the frame-folder output exactly, JPEG is close to it,
a one-frame cut of a video can be written as a picture, a clip of several frames is refused
in one line, and an interrupted run leaves nothing."""

from __future__ import annotations

from pathlib import Path

import av
import media
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from snl_cli.errors import OutputError
from snl_cli.pipeline import DenoiseOptions, denoise_file
from snl_cli.video import is_temp_name


class BoxBlur:
    """3×3 mean, edge-replicated (deterministic, cheap)."""

    name, context, halo, bytes_per_pixel, device = "box", 0, 2, 64, torch.device("cpu")
    uses_sigma = False

    def __call__(self, clip: torch.Tensor, sigma: float) -> torch.Tensor:
        return F.avg_pool2d(F.pad(clip, (1, 1, 1, 1), mode="replicate"), 3, stride=1)


def _photo(path: Path, depth: int = 8) -> Path:
    rng = np.random.default_rng(3)
    noisy = np.clip(media.pattern(0, 40, 32) + rng.normal(0, 0.05, (32, 40, 3)), 0, 1)
    media.write_image(path, noisy, depth)
    return path


def _options() -> DenoiseOptions:
    return DenoiseOptions(ensemble=1)


@pytest.mark.parametrize(("depth", "suffix"), [(8, ".png"), (16, ".png"), (16, ".tif")])
def test_picture_matches_the_frame_folder_and_keeps_depth(tmp_path, depth, suffix) -> None:
    src = _photo(tmp_path / "in.png", depth)
    summary = denoise_file(src, tmp_path / f"out{suffix}", _options(), denoiser=BoxBlur())
    denoise_file(src, tmp_path / "frames", _options(), denoiser=BoxBlur())
    assert summary["plan"]["kind"] == "image" and summary["plan"]["bit_depth"] == depth
    picture = media.decode_rgb(tmp_path / f"out{suffix}", depth)
    folder = media.decode_rgb(next((tmp_path / "frames").iterdir()), depth)
    assert len(picture) == 1 and np.array_equal(picture[0], folder[0])
    with av.open(str(tmp_path / f"out{suffix}")) as container:
        deep = container.streams.video[0].codec_context.pix_fmt.startswith("rgb48")
    assert deep == (depth > 8)


def test_jpeg_picture_is_close_to_the_lossless_one(tmp_path) -> None:
    src = _photo(tmp_path / "in.png", 16)
    summary = denoise_file(src, tmp_path / "out.jpg", _options(), denoiser=BoxBlur())
    denoise_file(src, tmp_path / "out.png", _options(), denoiser=BoxBlur())
    assert summary["plan"]["bit_depth"] == 8
    assert any("JPEG holds 8 bits" in d for d in summary["plan"]["dropped"])
    jpeg, png = (media.decode_rgb(tmp_path / name)[0] for name in ("out.jpg", "out.png"))
    assert 10 * np.log10(1 / np.mean((jpeg - png) ** 2)) > 40


def test_one_frame_cut_of_a_video_as_a_picture(tmp_path) -> None:
    src = media.make_clip(tmp_path / "in.mkv", frames=6, codec="ffv1")
    cut = DenoiseOptions(frames=(3, 4), ensemble=1)
    denoise_file(src, tmp_path / "frame.png", cut, denoiser=BoxBlur())
    denoise_file(src, tmp_path / "frames", cut, denoiser=BoxBlur())
    picture = media.decode_rgb(tmp_path / "frame.png")
    folder = [media.decode_rgb(p)[0] for p in sorted((tmp_path / "frames").iterdir())]
    assert len(folder) == 1 and np.array_equal(picture[0], folder[0])


def test_several_frames_to_a_picture_is_one_line(tmp_path) -> None:
    src = media.make_clip(tmp_path / "in.mkv", frames=3, codec="ffv1")
    with pytest.raises(OutputError, match="input has 3 frames"):
        denoise_file(src, tmp_path / "out.png", denoiser=BoxBlur())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mkv"]


def test_interrupted_picture_leaves_nothing(tmp_path) -> None:
    class Interrupted(BoxBlur):
        def __call__(self, clip, sigma):
            raise KeyboardInterrupt

    src = _photo(tmp_path / "in.png")
    with pytest.raises(KeyboardInterrupt):
        denoise_file(src, tmp_path / "out.png", _options(), denoiser=Interrupted())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png"]
    assert not [p for p in tmp_path.iterdir() if is_temp_name(p.name)]
