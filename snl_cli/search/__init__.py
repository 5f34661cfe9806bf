"""Shifted Non-Local Search and its companions.

Shape letters used in every docstring of this package:
    B batch, T frames, C channels, H, W frame height and width, heads channel groups,
    nH = ceil(H / stride0), nW = ceil(W / stride0) the query grid, Wn neighbours per frame
    (the temporal window's frames other than the query's own, in increasing time order),
    K (= topk) matches per query.

Backends: "torch" (reference), "cpu" (fast CPU path), "cuda" (CuPy RawKernel), "emulate"
(the CUDA sources compiled with g++ for the CPU); "auto" picks cuda or cpu by device.
"""

from snl_cli.search.api import (
    BACKENDS,
    accumulate_flows,
    available_backends,
    backend_name,
    gather,
    patch_sum,
    pick_backend,
    shifted_nls,
)
from snl_cli.search.spec import SearchSpec

__all__ = [
    "BACKENDS",
    "SearchSpec",
    "accumulate_flows",
    "available_backends",
    "backend_name",
    "gather",
    "patch_sum",
    "pick_backend",
    "shifted_nls",
]
