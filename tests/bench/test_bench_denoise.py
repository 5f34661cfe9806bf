"""Pieces of `snl bench denoise`: seeded noise."""

from __future__ import annotations

import numpy as np

from snl_cli.synthetic import noisy_frames


def test_noise_is_seeded_and_has_the_asked_level() -> None:
    clean = [np.full((64, 64, 3), 128, np.uint8)] * 2
    a, b = noisy_frames(clean, "gaussian", 20, 5), noisy_frames(clean, "gaussian", 20, 5)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert abs(np.std(np.stack(a).astype(float) - 128) - 20) < 0.5


def test_camera_kinds_are_seeded_uint8_and_not_gaussian() -> None:
    rng = np.random.default_rng(1)
    clean = [np.clip(rng.normal(128, 30, (32, 48, 3)), 0, 255).astype(np.uint8) for _ in range(3)]
    for kind in ("shot", "demosaic", "x264", "hevc", "camera"):
        a, b = noisy_frames(clean, kind, 15, 9), noisy_frames(clean, kind, 15, 9)
        assert len(a) == 3 and a[0].dtype == np.uint8 and a[0].shape == (32, 48, 3)
        assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True)), kind
        assert not np.array_equal(a[0], clean[0])
