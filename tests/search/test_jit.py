"""The mirror rule, in every form the package uses it, against reflecting step by step."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from numba import njit

from snl_cli.search.jit import JIT, mirror


def _bounce(i: int, size: int) -> int:
    """Walk from 0 to i one step at a time, turning back at each edge pixel (no repeat)."""
    pos, direction = 0, 1 if i >= 0 else -1
    for _ in range(abs(i)):
        if not 0 <= pos + direction < size:
            direction = -direction
        pos += direction
    return pos


@njit(**JIT)
def _mirror_all(indices: np.ndarray, size: int) -> np.ndarray:
    out = np.empty_like(indices)
    for n in range(indices.shape[0]):
        out[n] = mirror(indices[n], size)
    return out


@pytest.mark.parametrize("size", [2, 3, 5, 8])
def test_mirror_agrees_with_walking_in_every_form(size: int) -> None:
    indices = np.arange(-5 * size, 5 * size, dtype=np.int64)
    want = np.array([_bounce(int(i), size) for i in indices])
    at = dict(zip(indices.tolist(), want.tolist(), strict=True))
    assert at[size] == size - 2 and at[-1] == 1  # the edge is not repeated
    assert [mirror(int(i), size) for i in indices] == want.tolist()
    np.testing.assert_array_equal(mirror(indices, size), want)
    np.testing.assert_array_equal(mirror(torch.from_numpy(indices), size).numpy(), want)
    np.testing.assert_array_equal(_mirror_all(indices, size), want)  # numba, with fast path
