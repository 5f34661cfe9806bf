"""Noise synthesis: each component checked against the statistics it must have."""

from __future__ import annotations

import random
from dataclasses import replace

import numpy as np
import pytest
import torch

from snl_cli import synthetic as S


def _corr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(np.corrcoef(a.flatten().double().numpy(), b.flatten().double().numpy())[0, 1])


def test_srgb_curve_matches_the_standard() -> None:
    # IEC 61966-2-1 reference points: 18% grey is sRGB 0.4613, linear 0.2140 is sRGB 0.5
    lin = torch.tensor([0.0, 0.002, 0.18, 0.2140, 1.0], dtype=torch.float64)
    srgb = S.linear_to_srgb(lin)
    expected = [0.0, 0.002 * 12.92, 0.46135, 0.5, 1.0]
    assert np.allclose(srgb.numpy(), expected, atol=2e-4)
    assert torch.allclose(S.srgb_to_linear(srgb), lin, atol=1e-9)


def test_shot_noise_variance_grows_with_signal() -> None:
    shot, read = 0.004, 2e-5
    gen = torch.Generator().manual_seed(0)
    for level in (0.05, 0.2, 0.6):
        flat = torch.full((200_000,), level, dtype=torch.float64)
        noisy = S.poisson_gaussian(flat, shot, read, gen)
        expected = shot * level + read
        assert abs(float(noisy.var()) / expected - 1) < 0.03, level
        assert abs(float(noisy.mean()) - level) < 3 * (expected / 200_000) ** 0.5


def test_demosaic_keeps_flat_colour_and_correlates_neighbours() -> None:
    colour = torch.tensor([0.7, 0.4, 0.2]).view(1, 3, 1, 1)
    flat = colour.expand(1, 3, 16, 16).clone()
    assert torch.allclose(S.demosaic(S.mosaic(flat)), flat, atol=1e-6)
    gen = torch.Generator().manual_seed(1)
    raw = torch.randn(1, 1, 256, 256, generator=gen)  # white noise on the photosites
    rgb = S.demosaic(raw)
    assert abs(_corr(raw[..., :, :-1], raw[..., :, 1:])) < 0.02
    for c in range(3):  # interpolated sites share their neighbours' noise
        assert _corr(rgb[:, c, :, :-1], rgb[:, c, :, 1:]) > 0.3


def test_camera_noise_is_cross_channel_correlated_and_independent_in_time() -> None:
    grey = torch.full((4, 3, 96, 96), 0.5)
    cam = S.bench_degradation("demosaic", 20)
    noisy = cam.apply(grey, torch.Generator().manual_seed(2))
    noise = noisy - grey
    assert _corr(noise[:, 0], noise[:, 1]) != pytest.approx(0, abs=0.05)
    assert abs(_corr(noise[:-1], noise[1:])) < 0.03  # frame to frame: independent
    assert _corr(noise[..., :-1], noise[..., 1:]) > 0.2  # spatially correlated
    gaussian = S.gaussian(grey, 20, torch.Generator().manual_seed(2)) - grey
    assert abs(_corr(gaussian[..., :-1], gaussian[..., 1:])) < 0.03


@pytest.mark.parametrize("kind", ["shot", "demosaic", "jpeg"])
def test_bench_levels_are_calibrated_to_sigma_at_mid_grey(kind: str) -> None:
    grey = torch.full((2, 3, 128, 128), 0.5)
    for sigma in (10, 30):
        noisy = S.bench_noisy(grey, kind, sigma, seed=3)
        measured = float((noisy - grey).std()) * 255
        low = 0.5 if kind == "jpeg" else 0.9  # JPEG removes part of the noise
        assert low * sigma < measured < 1.1 * sigma, (kind, sigma, measured)


def test_shot_noise_is_larger_in_bright_linear_values() -> None:
    cam = S.bench_degradation("shot", 20)
    dark, bright = torch.full((2, 3, 64, 64), 0.15), torch.full((2, 3, 64, 64), 0.85)
    gen = torch.Generator().manual_seed(4)
    lin_dark = S.srgb_to_linear(cam.apply(dark, gen)) - S.srgb_to_linear(dark)
    lin_bright = S.srgb_to_linear(cam.apply(bright, gen)) - S.srgb_to_linear(bright)
    assert float(lin_bright.var()) > 3 * float(lin_dark.var())


def _blockiness(frame: np.ndarray) -> float:
    """Mean |step| across 8-px column boundaries over the mean |step| elsewhere."""
    steps = np.abs(np.diff(frame.astype(np.float64), axis=1)).mean(axis=(0, 2))
    at_edges = steps[7::8]
    inside = np.delete(steps, np.arange(7, steps.size, 8))
    return float(at_edges.mean() / inside.mean())


def test_jpeg_really_ran() -> None:
    y, x = torch.meshgrid(torch.linspace(0, 1, 64), torch.linspace(0, 1, 64), indexing="ij")
    smooth = torch.stack([y, x, (x + y) / 2])[None]
    noisy = S.gaussian(smooth, 15, torch.Generator().manual_seed(5))
    out = S.jpeg(noisy, 30)
    frame = (out[0].permute(1, 2, 0).numpy() * 255).round()
    assert _blockiness(frame) > 1.2  # 8x8 DCT blocks show
    assert _blockiness((noisy[0].permute(1, 2, 0).numpy() * 255).round()) < 1.1
    assert float((out - smooth).std()) < float((noisy - smooth).std())  # fine noise removed


@pytest.mark.parametrize("codec, crf", [("x264", 30), ("hevc", 34)])
def test_video_codec_really_ran_over_the_clip(codec: str, crf: float) -> None:
    y, x = torch.meshgrid(torch.linspace(0, 1, 48), torch.linspace(0, 1, 50), indexing="ij")
    clip = torch.stack([torch.stack([y, x, (x + y) / 2]).roll(t, -1) for t in range(6)])
    noisy = S.gaussian(clip, 20, torch.Generator().manual_seed(6))
    out = S.encode_video(noisy, crf, codec)
    assert out.shape == noisy.shape
    # the encoder at a high crf smooths most of the noise away: the output is closer to the
    # clean clip than the noisy input was, and differs from the noisy input by much more than
    # rounding
    assert float((out - clip).pow(2).mean()) < 0.5 * float((noisy - clip).pow(2).mean())
    assert float((out - noisy).abs().mean()) * 255 > 5


def test_degrade_mixture_draws_both_families_and_quantises() -> None:
    rng = random.Random(7)
    clip = torch.rand(3, 3, 32, 32)
    families = set()
    for _ in range(12):
        noisy, family = S.degrade(clip, "mix", rng)
        families.add(family)
        assert noisy.shape == clip.shape
        assert torch.equal(noisy * 255, torch.round(noisy * 255))
    assert families == {"gaussian", "camera"}
    with pytest.raises(ValueError, match="unknown noise kind"):
        S.degrade(clip, "speckle", rng)


def test_mixture_shares_and_codec_on_gaussian_noise() -> None:
    y, x = torch.meshgrid(torch.linspace(0, 1, 48), torch.linspace(0, 1, 48), indexing="ij")
    clip = torch.stack([torch.stack([y, x, (x + y) / 2]).roll(t, -1) for t in range(4)])
    only_camera = S.Mixture(gaussian_share=0.0)
    assert {S.degrade(clip, "mix", random.Random(s), mixture=only_camera)[1] for s in range(6)} == {
        "camera"
    }
    checked = 0
    for seed in range(12):
        plain, family = S.degrade(clip, "mix", random.Random(seed), mixture=S.Mixture(1.0))
        coded, coded_family = S.degrade(
            clip, "mix", random.Random(seed), mixture=S.Mixture(1.0, 1.0)
        )
        assert (family, coded_family) == ("gaussian", "gaussian+codec")
        assert torch.equal(coded * 255, torch.round(coded * 255))
        assert float((coded - plain).abs().mean()) * 255 > 0.5  # a codec really ran
        if float((plain - clip).std()) * 255 > 15:  # strong noise: the codec removed some
            checked += 1
            assert float((coded - clip).pow(2).mean()) < float((plain - clip).pow(2).mean())
    assert checked >= 3


def _srgb64(v: np.ndarray) -> np.ndarray:
    """IEC 61966-2-1 on [0, 1], float64, written out independently of snl_cli.synthetic."""
    return np.where(v <= 0.0031308, 12.92 * v, 1.055 * np.maximum(v, 1e-12) ** (1 / 2.4) - 0.055)


@pytest.mark.parametrize("black_clip", [True, False])
def test_black_level_clipping_matches_a_float64_reference(black_clip: bool) -> None:
    # a bare camera (no mosaic, identity colour, no white balance) on a dark flat frame:
    # the mean 8-bit output must match a Monte Carlo of the documented pipeline in float64
    shot, read, level = 0.004, 4e-5, 0.003
    cam = S.CameraNoise(
        shot=shot, read=read, red_gain=1.0, blue_gain=1.0, bayer=False, black_clip=black_clip
    )
    flat = torch.full((1, 3, 256, 256), float(_srgb64(np.array(level))))
    got = cam.apply(flat, torch.Generator().manual_seed(3)).double().numpy()
    rng = np.random.default_rng(0)
    linear = rng.poisson(level / shot, 2_000_000) * shot + rng.normal(0, read**0.5, 2_000_000)
    if black_clip:
        srgb = _srgb64(np.clip(linear, 0, 1))
    else:
        srgb = np.sign(linear) * _srgb64(np.abs(linear))
    expected = np.round(np.clip(srgb, 0, 1) * 255) / 255
    spread = expected.std() / got.size**0.5
    assert abs(got.mean() - expected.mean()) < 4 * spread + 1e-4


def test_clipping_below_black_in_linear_light_brightens_the_shadows() -> None:
    dark = torch.full((2, 3, 128, 128), 20 / 255)
    means = {}
    for black_clip in (True, False):
        cam = replace(S.bench_degradation("lowlight", 20), black_clip=black_clip)
        means[black_clip] = float(cam.apply(dark, torch.Generator().manual_seed(4)).mean()) * 255
    assert means[True] > 20 + 5  # the clipped noise's mean sits well above the clean level
    assert means[False] < means[True] - 5


def test_random_cameras_draw_both_black_level_treatments() -> None:
    rng = random.Random(5)
    draws = [S.random_camera(rng).black_clip for _ in range(400)]
    assert 0.4 < sum(draws) / len(draws) < 0.6


def test_blotchy_noise_is_correlated_over_pixels_and_keeps_its_share_of_the_std() -> None:
    grey = torch.full((2, 3, 128, 128), 0.5)
    bare = S.CameraNoise(shot=0.004, read=1e-5, bayer=False, red_gain=1.0, blue_gain=1.0)
    fine = bare.apply(grey, torch.Generator().manual_seed(6)) - grey
    blotchy = replace(bare, blotch=2.0, blotch_level=0.5)
    noise = blotchy.apply(grey, torch.Generator().manual_seed(6)) - grey
    assert abs(_corr(fine[..., :-2], fine[..., 2:])) < 0.05  # white before
    assert _corr(noise[..., :-2], noise[..., 2:]) > 0.6  # two pixels apart: still alike
    assert float(noise.std() / fine.std()) == pytest.approx(0.5, rel=0.05)
    # the picture's level moves no more than the fine noise moved it (the gamma curve's bias)
    assert float(noise.mean()) == pytest.approx(float(fine.mean()), abs=0.3 / 255)


def test_random_cameras_draw_blotches_only_when_asked() -> None:
    # no draw at share 0, so earlier recipes reproduce exactly: any share above 0 draws once
    # more (the coin), which leaves the generator one step ahead of the share-0 one
    at_zero, above = random.Random(7), random.Random(7)
    assert S.random_camera(at_zero, blotch_share=0.0).blotch == 0.0
    assert S.random_camera(above, blotch_share=1e-12).blotch == 0.0
    at_zero.random()
    assert above.random() == at_zero.random()
    rng = random.Random(8)
    cams = [S.random_camera(rng, blotch_share=0.5) for _ in range(400)]
    blotchy = [c for c in cams if c.blotch > 0]
    assert 0.4 < len(blotchy) / len(cams) < 0.6
    assert all(0.8 <= c.blotch <= 2.5 and 0.3 <= c.blotch_level <= 1.0 for c in blotchy)
