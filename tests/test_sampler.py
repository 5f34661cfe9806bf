"""Tests for snl_cli/sampler.py: moving stills move, real noise moved onto footage is the
pairs' own residual (a new crop each frame), and --codec-share compresses it."""

from __future__ import annotations

import random

import numpy as np

from snl_cli.sampler import ClipSampler


def test_moving_still_clip_moves() -> None:
    rng = np.random.default_rng(0)
    image = (rng.random((80, 90, 3)) * 255).astype(np.uint8)
    sampler = ClipSampler([], [image], frames=4, crop=32, rng=random.Random(3))
    clip = sampler._moving_still(image)
    assert clip.shape == (4, 3, 32, 32)
    assert (clip[0] - clip[-1]).abs().mean() > 0.01


def _is_crop_of(frame: np.ndarray, field: np.ndarray) -> bool:
    """frame (c, c, 3) equals some crop of field (H, W, 3), flipped in any of the two axes."""
    c = frame.shape[0]
    H, W, _ = field.shape
    for flipped in (field, field[::-1], field[:, ::-1], field[::-1, ::-1]):
        for y in range(H - c + 1):
            for x in range(W - c + 1):
                if np.array_equal(flipped[y : y + c, x : x + c], frame):
                    return True
    return False


def _flat_pair_and_video(size: int, seed: int) -> tuple[np.ndarray, tuple, np.ndarray]:
    """A real pair whose residual is a known random field (size, size, 3) in -20..20, and a
    flat grey video (6, 48, 48, 3) to move its noise onto: (field, (noisy, clean), video)."""
    clean = np.full((size, size, 3), 100, np.uint8)
    field = np.random.default_rng(seed).integers(-20, 21, (size, size, 3))
    return field, ((clean + field).astype(np.uint8), clean), np.full((6, 48, 48, 3), 128, np.uint8)


def _residual(clip, noisy_clip) -> np.ndarray:
    """noisy - clean of a sampled clip, (T, c, c, 3) integers (0-255 scale)."""
    return ((noisy_clip - clip) * 255).round().permute(0, 2, 3, 1).numpy().astype(int)


def test_transfer_adds_real_residuals_independent_per_frame() -> None:
    field, (noisy, clean), video = _flat_pair_and_video(40, seed=1)
    sampler = ClipSampler(
        [video], [], 4, 16, random.Random(0), [(noisy, clean)], pair_share=0.0, transfer_share=1.0
    )
    for _ in range(5):
        clip, noisy_clip = sampler.sample()
        assert noisy_clip is not None
        residual = _residual(clip, noisy_clip)
        assert all(_is_crop_of(frame, field) for frame in residual)
        assert len({frame.tobytes() for frame in residual}) == 4  # a new crop each frame
    plain = ClipSampler([video], [], 4, 16, random.Random(0), [(noisy, clean)], pair_share=0.0)
    assert plain.sample()[1] is None  # default: synthetic noise only


def test_codec_share_compresses_transferred_clips() -> None:
    """--codec-share also sends real-noise clips through a codec: the frames are no longer the
    pair's residual crops, and the codec (lossy, smoothing) takes part of the noise away."""
    field, (noisy, clean), video = _flat_pair_and_video(64, seed=2)
    sampler = ClipSampler(
        [video], [], 4, 32, random.Random(0), [(noisy, clean)], 0.0, 1.0, codec_share=1.0
    )
    for _ in range(3):
        residual = _residual(*sampler.sample())
        assert not any(_is_crop_of(frame, field) for frame in residual)
        assert residual.std() < 0.97 * field.std()
        assert abs(residual.mean()) < 2.0  # compression keeps the picture's level


def test_pairs_are_drawn_in_proportion_to_their_pixels() -> None:
    """A 64x64 pair holds 4x the pixels of a 32x32 one, so it gives 4/5 of the pair clips (a
    set of many small crops must not outweigh a set of few large ones)."""
    small = (np.full((32, 32, 3), 10, np.uint8), np.full((32, 32, 3), 11, np.uint8))
    large = (np.full((64, 64, 3), 200, np.uint8), np.full((64, 64, 3), 201, np.uint8))
    sampler = ClipSampler([], [], 2, 16, random.Random(5), [small, large], pair_share=1.0)
    draws = 2000
    from_large = sum(float(sampler.sample()[0].mean()) > 0.5 for _ in range(draws))
    # binomial(2000, 0.8): sd 17.9; uniform choice would give ~1000
    assert abs(from_large - 0.8 * draws) < 4 * 17.9
