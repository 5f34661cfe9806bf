"""The geometric self-ensemble: its symmetries against numpy's, its average against a
hand-derived reference on a denoiser that is not flip-equivariant, and when `snl denoise`
uses it (one-frame inputs by default, video only when asked)."""

from __future__ import annotations

import json
from pathlib import Path

import media
import numpy as np
import pytest
import torch

from snl_cli.cli import app
from snl_cli.ensemble import Ensemble, ensemble_passes, orient, unorient
from snl_cli.pipeline import DenoiseOptions, denoise_file

CPU = torch.device("cpu")


class ShiftRight:
    """Moves the picture one pixel right (wrapping): as far from flip-equivariant as it gets."""

    name, context, halo, bytes_per_pixel, device = "shift", 0, 0, 64, CPU

    def __call__(self, clip: torch.Tensor, sigma: float) -> torch.Tensor:
        return clip.roll(1, -1)


def _neighbours(x: torch.Tensor, axes: tuple[int, ...]) -> torch.Tensor:
    """Mean of the wrapped ±1 shifts of x along `axes`."""
    shifts = [x.roll(s, a) for a in axes for s in (1, -1)]
    return sum(shifts) / len(shifts)


def test_orientations_are_the_eight_symmetries_and_invert() -> None:
    x = torch.arange(3 * 4 * 5, dtype=torch.float64).reshape(1, 3, 4, 5)
    seen = {orient(x, k).numpy().tobytes() + bytes(orient(x, k).shape) for k in range(8)}
    a = x.numpy()
    numpy_dihedral = [
        np.rot90(m, r, axes=(-2, -1)) for m in (a, np.swapaxes(a, -1, -2)) for r in range(4)
    ]
    assert seen == {np.ascontiguousarray(m).tobytes() + bytes(m.shape) for m in numpy_dihedral}
    for k in range(8):
        assert torch.equal(unorient(orient(x, k), k), x)


@pytest.mark.parametrize(("passes", "axes"), [(2, (-1,)), (4, (-1,)), (8, (-1, -2))])
def test_ensemble_averages_the_turned_back_passes(passes: int, axes: tuple[int, ...]) -> None:
    clip = torch.rand(2, 3, 6, 9)
    # flipped left-right, a right shift turns into a left one; transposed, into a vertical one
    out = Ensemble(ShiftRight(), passes)(clip, 0.0)
    assert torch.allclose(out, _neighbours(clip, axes), atol=1e-6)


def test_ensemble_keeps_an_equivariant_denoiser_exact() -> None:
    clip = torch.rand(3, 3, 8, 12)
    square = Ensemble(type("Sq", (ShiftRight,), {"__call__": lambda s, c, g: c * c})(), 8)
    assert torch.allclose(square(clip, 0.0), clip * clip, atol=1e-6)


def test_passes_default_to_eight_for_a_photo_and_one_for_video() -> None:
    assert ensemble_passes(None, 1) == 8 and ensemble_passes(None, 2) == 1
    assert ensemble_passes(4, 1) == 4 and ensemble_passes(2, 30) == 2
    with pytest.raises(ValueError):
        Ensemble(ShiftRight(), 3)


def _folder(path: Path, frames: int) -> np.ndarray:
    path.mkdir()
    images = np.stack([media.pattern(i, 24, 18) for i in range(frames)])
    for i, image in enumerate(images):
        media.write_image(path / f"{i:03d}.png", image)
    return np.stack([media.decode_rgb(p)[0] for p in sorted(path.iterdir())])


def _written(path: Path) -> np.ndarray:
    return np.stack([media.decode_rgb(p)[0] for p in sorted(path.iterdir())])


def test_denoise_file_ensembles_a_photo_but_not_a_video(tmp_path: Path) -> None:
    photo = torch.from_numpy(_folder(tmp_path / "photo", 1)).permute(0, 3, 1, 2)
    summary = denoise_file(tmp_path / "photo", tmp_path / "p_out", denoiser=ShiftRight())
    expected = _neighbours(photo, (-1, -2)).permute(0, 2, 3, 1).numpy()
    assert summary["ensemble"] == 8
    assert np.abs(_written(tmp_path / "p_out") - expected).max() <= 0.5 / 255 + 1e-9

    video = _folder(tmp_path / "video", 3)
    summary = denoise_file(tmp_path / "video", tmp_path / "v_out", denoiser=ShiftRight())
    assert summary["ensemble"] == 1
    assert np.array_equal(_written(tmp_path / "v_out"), np.roll(video, 1, axis=2))

    asked = DenoiseOptions(ensemble=2)
    summary = denoise_file(tmp_path / "video", tmp_path / "v2_out", asked, denoiser=ShiftRight())
    clip = torch.from_numpy(video).permute(0, 3, 1, 2)
    expected = _neighbours(clip, (-1,)).permute(0, 2, 3, 1).numpy()
    assert summary["ensemble"] == 2 and summary["streamed"] is False
    assert np.abs(_written(tmp_path / "v2_out") - expected).max() <= 0.5 / 255 + 1e-9


def test_cli_reports_the_passes(runner, tmp_path: Path) -> None:
    _folder(tmp_path / "photo", 1)
    args = ["denoise", str(tmp_path / "photo"), "-o", str(tmp_path / "out"), "--model", "nlm"]
    result = runner.invoke(app, [*args, "--ensemble", "4", "--json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["ensemble"] == 4
