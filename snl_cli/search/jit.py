"""numba settings of every CPU kernel, and the mirror rule every backend reads borders with.

The "cpu" backend's kernels (`snl_cli.search.backends.cpu`) and STAN's fused attention
(`snl_cli.model.attend_cpu`) compile with these flags; they, the "torch" reference and the
CPU backend's index tables all read outside the frame through `mirror` (the CUDA sources
in kernels/ write the same rule in C++: `snl_reflect` in common.cuh).
"""

from __future__ import annotations

from typing import TypeVar

from numba import njit
from numba.extending import overload

# IEEE arithmetic everywhere except the direct search (and the fused attention), where
# reassociation lets LLVM vectorise the sums over a patch row (measured 2.1x at ps=5, 1.08x
# at ps=1; the box path is 15% slower with it). Never "nnan"/"ninf": invalid candidates are
# inf and must compare.
JIT = dict(cache=True, fastmath=False, nogil=True)
PAR = dict(parallel=True, **JIT)
PAR_REASSOC = dict(PAR, fastmath={"reassoc", "contract", "nsz", "arcp"})

Index = TypeVar("Index")


def mirror(i: Index, size: int) -> Index:
    """Integer index i mirrored into [0, size-1] without repeating the edge (-1 -> 1,
    size -> size-2), periodic far away; size >= 2.

    Plain arithmetic, so one definition serves Python ints, numpy arrays, torch tensors and
    (compiled) numba kernels.
    """
    last = size - 1
    return last - abs(last - abs(i) % (2 * last))


_mirror_compiled = njit(inline="always", **JIT)(mirror)


@overload(mirror, inline="always", jit_options=JIT)
def _mirror_in_kernels(i, size):
    """`mirror` inside numba kernels: most reads are inside the frame and skip the division."""

    def impl(i, size):
        if 0 <= i < size:
            return i
        return _mirror_compiled(i, size)

    return impl
