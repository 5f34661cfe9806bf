"""Pieces of `snl bench denoise`: lossless noisy copies and seeded noise."""

from __future__ import annotations

import numpy as np

from snl_cli.bench.denoise import add_noise, load_clean, write_lossless


def test_lossless_round_trip(tmp_path) -> None:
    rng = np.random.default_rng(0)
    frames = [(rng.random((30, 42, 3)) * 255).astype(np.uint8) for _ in range(3)]
    path = tmp_path / "n.mkv"
    write_lossless(frames, path)
    back = load_clean(path, 10)
    assert len(back) == 3
    for a, b in zip(frames, back, strict=True):
        assert np.array_equal(a, b)


def test_noise_is_seeded_and_has_the_asked_level() -> None:
    clean = [np.full((64, 64, 3), 128, np.uint8)] * 2
    a, b = add_noise(clean, 20, seed=5), add_noise(clean, 20, seed=5)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert abs(np.std(np.stack(a).astype(float) - 128) - 20) < 0.5
