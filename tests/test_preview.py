"""Tests for snl_cli/preview.py and `snl preview`: the preview's crop equals the same crop
of a full `denoise` run bit for bit (PNG frames in and out, read back with PyAV), it runs
only the tiles touching the crop, and its strip, labels and errors."""

from __future__ import annotations

import json

import av
import media
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from snl_cli.cli import app
from snl_cli.pipeline import DenoiseOptions, denoise_file
from snl_cli.preview import make_preview, window_range

CPU = torch.device("cpu")


class BlurMean:
    """Mean of frames t-1..t+1 (sliding at the window ends), then a 3x3 box blur with
    zero padding: its output depends on the window and on the tile edges, like a real
    model, so a preview that ran other frames or other tiles would not match."""

    name, context, halo, bytes_per_pixel, device = "blurmean", 1, 4, 64, CPU

    def __init__(self) -> None:
        self.pixels = 0

    def __call__(self, clip: torch.Tensor, sigma: float) -> torch.Tensor:
        self.pixels += clip.shape[0] * clip.shape[2] * clip.shape[3]
        T = clip.shape[0]
        if T >= 3:
            starts = torch.arange(T).sub(1).clamp(0, T - 3)
            clip = (clip[starts] + clip[starts + 1] + clip[starts + 2]) / 3
        return F.avg_pool2d(F.pad(clip, (1, 1, 1, 1)), 3, stride=1) * (1 + sigma / 1000)


@pytest.fixture
def noisy_frames(tmp_path):
    """14 PNG frames (8-bit RGB), 160x96, smooth content with colour noise."""
    folder = tmp_path / "noisy"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(14):
        clean = media.pattern(i, 160, 96)
        noisy = np.clip(clean + rng.normal(0, 0.06, clean.shape), 0, 1)
        media.write_image(folder / f"f{i:03d}.png", noisy)
    return folder


def _png(path) -> np.ndarray:
    with av.open(str(path)) as container:
        return next(container.decode(video=0)).to_ndarray(format="rgb24")


def test_window_range_matches_the_chunk_loop() -> None:
    """Brute force: the windows of the chunk loop that hold each frame."""
    for chunk, overlap in [(4, 1), (32, 2), (5, 0), (3, 3)]:
        for frame in range(60):
            holding = [
                k for k in range(40) if k * chunk - overlap <= frame < (k + 1) * chunk + overlap
            ]
            assert window_range(frame, chunk, overlap) == (holding[0], holding[-1])


@pytest.mark.parametrize(
    ("frame", "crop", "controls"),
    [
        (3, (4, 4, 30, 20), {}),  # in two windows (blended), inside one tile
        (6, (90, 50, 60, 40), {"luma": 0.4, "chroma": 1.0, "grain": 0.3}),
        (13, (0, 0, 160, 96), {"strength": 0.7}),  # the last frame, the whole frame
    ],
)
def test_preview_crop_equals_the_full_run(tmp_path, noisy_frames, frame, crop, controls):
    options = DenoiseOptions(chunk=4, overlap=1, tile=64, **controls)
    full = tmp_path / "full"
    denoise_file(noisy_frames, full, options, denoiser=BlurMean())
    png = tmp_path / "preview.png"
    model = BlurMean()
    summary = make_preview(noisy_frames, png, options, frame=frame, crop=crop, denoiser=model)
    image = _png(png)
    x, y, w, h = crop
    bx, by, bw, bh = summary["panels"][1]["box"]
    written = _png(sorted(full.iterdir())[frame])
    np.testing.assert_array_equal(image[by : by + bh, bx : bx + bw], written[y : y + h, x : x + w])
    ix, iy, iw, ih = summary["panels"][0]["box"]
    source = _png(sorted(noisy_frames.iterdir())[frame])
    np.testing.assert_array_equal(image[iy : iy + ih, ix : ix + iw], source[y : y + h, x : x + w])
    if frame == 3:
        # One of the 3x2 tiles ran: cores of at most 64 - 2·4 = 56 px overlapping by 4, shared
        # evenly (rows: 2 of (96 + 4) / 2 = 50; columns: 3 of (160 + 2·4) / 3 = 56), the top-left
        # one read with its 4 px halo on its inner sides: 54x60. It ran over the frames of the
        # two windows holding frame 3 within 2 (2·context) of it: 1-4 of 0-4, and 3-5 of 3-8
        # (the full run: 6 tiles, 14 frames).
        assert summary["windows"] == [0, 1]
        assert model.pixels == (4 + 3) * 54 * 60


@pytest.mark.parametrize(
    ("frame", "tile", "crop"),
    [(0, None, None), (6, None, None), (7, None, None), (8, None, None), (13, None, None),
     (7, 100, (4, 10, 30, 40)), (13, 100, (110, 50, 50, 46))],
)  # fmt: skip
def test_stan_preview_equals_the_full_run(tmp_path, noisy_frames, frame, tile, crop):
    """A small STAN with the shipped architecture's temporal structure (input stack, two
    attention blocks, flows): its preview, which runs only the frames within 2·context of the
    frame (and with tiles only the tiles' streams that touch the crop), writes what the full
    run writes."""
    from snl_cli.model.stan import STAN, STANConfig
    from snl_cli.model.weights import save_stan

    torch.manual_seed(2)
    cfg = STANConfig(channels=(8, 16), heads=2, qk_dim=4, attn_blocks=2, ws=3, topk=4, k_agg=2,
                     input_frames=3)  # fmt: skip
    model = STAN(cfg)
    torch.nn.init.normal_(model.out.weight, std=0.1)  # not the identity
    weights = tmp_path / "small.safetensors"
    save_stan(model, weights, {"note": "random"})
    options = DenoiseOptions(model="stan", weights=str(weights), chunk=12, tile=tile)
    full = tmp_path / "full"
    assert denoise_file(noisy_frames, full, options)["tile"] == tile  # 4 tiles across
    png = tmp_path / "preview.png"
    summary = make_preview(noisy_frames, png, options, frame=frame, crop=crop)
    x, y, w, h = crop or (0, 0, 160, 96)
    bx, by, bw, bh = summary["panels"][1]["box"]
    written = _png(sorted(full.iterdir())[frame])[y : y + h, x : x + w]
    source = _png(sorted(noisy_frames.iterdir())[frame])[y : y + h, x : x + w]
    assert np.abs(written.astype(int) - source).max() > 10  # the model changed the frame
    np.testing.assert_array_equal(_png(png)[by : by + bh, bx : bx + bw], written)


def test_cli_preview_with_nlm_matches_cli_denoise(tmp_path, noisy_frames, runner):
    common = ["--model", "nlm", "--chunk", "4", "--tile", "64", "--chroma", "0.5"]
    done = runner.invoke(app, ["denoise", str(noisy_frames), "-o", str(tmp_path / "out"),
                               *common])  # fmt: skip
    assert done.exit_code == 0, done.stderr
    png = tmp_path / "p.png"
    result = runner.invoke(app, ["preview", str(noisy_frames), "-o", str(png), "--frame", "5",
                                 "--crop", "70,30,50,40", "--json", *common])  # fmt: skip
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    bx, by, bw, bh = summary["panels"][1]["box"]
    written = _png(sorted((tmp_path / "out").iterdir())[5])
    np.testing.assert_array_equal(_png(png)[by : by + bh, bx : bx + bw], written[30:70, 70:120])
    assert "nlm, sigma" in summary["panels"][1]["label"]
    assert "luma 1, chroma 0.5" in summary["panels"][1]["label"]
    assert set(summary["noise"]["overall"]) == {"R", "G", "B"}


def test_strengths_strip(tmp_path, noisy_frames):
    png = tmp_path / "strip.png"
    summary = make_preview(noisy_frames, png, DenoiseOptions(chunk=4, tile=64), frame=4,
                           crop=(20, 10, 50, 30), strengths=[0.0, 0.5, 1.0],
                           denoiser=BlurMean())  # fmt: skip
    image = _png(png)
    boxes = [p["box"] for p in summary["panels"]]
    assert len(boxes) == 4
    crops = [image[y : y + h, x : x + w].astype(int) for x, y, w, h in boxes]
    np.testing.assert_array_equal(crops[1], crops[0])  # strength 0 is the input
    half = (crops[0] + crops[3]) / 2  # strength 0.5 is halfway, within 8-bit rounding
    assert np.abs(crops[2] - half).max() <= 1
    assert "strength 0.5" in summary["panels"][2]["label"]


def test_errors_are_one_line(tmp_path, noisy_frames, runner):
    cases = [
        (["--crop", "1,2,3"], "expected X,Y,W,H"),
        (["--crop", "500,0,10,10"], "outside the 160x96 frame"),
        (["--frame", "99"], "expected 0 to 13"),
        (["--strengths", "0.5,2"], "expected numbers in [0, 1]"),
    ]
    for extra, message in cases:
        args = ["preview", str(noisy_frames), "-o", str(tmp_path / "p.png"), "--model", "nlm"]
        result = runner.invoke(app, [*args, *extra])
        assert result.exit_code == 2, (extra, result.stderr)
        assert message in result.stderr
        assert "Traceback" not in result.stderr
    bad = runner.invoke(app, ["preview", str(noisy_frames), "-o", str(tmp_path / "p.jpg")])
    assert bad.exit_code == 2 and "PNG" in bad.stderr
    assert not (tmp_path / "p.png").exists()
