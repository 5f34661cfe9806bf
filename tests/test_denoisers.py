"""A run that compiles numba kernels says so once (`snl_cli.denoisers.compile_notices`)."""

from __future__ import annotations

import numpy as np
from numba import njit

from snl_cli.denoisers import compile_notices


def test_first_compile_is_told_once_and_cached_code_is_not() -> None:
    @njit(cache=False)
    def add_one(x):
        return x + 1

    @njit(cache=False)
    def twice(x):
        return 2 * x

    said: list[str] = []
    with compile_notices(said.append):
        assert add_one(np.int64(1)) == 2  # compiles: told
        assert twice(np.int64(2)) == 4  # compiles too, but one line is enough
        assert add_one(np.int64(5)) == 6  # already compiled
    assert len(said) == 1 and "add_one" in said[0] and "compiling" in said[0]

    said.clear()
    with compile_notices(said.append):
        assert add_one(np.int64(7)) == 8 and twice(np.int64(1)) == 2  # compiled before
    assert said == []
    add_one(np.float64(1.0))  # compiles outside the block: nobody is told
    assert said == []
