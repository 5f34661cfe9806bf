"""Small random search problems shared by the search tests, and their brute-force answers."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cache

import bruteforce
import numpy as np
import torch


@dataclass(frozen=True)
class Backend:
    """A backend name and the device its tensors live on."""

    name: str
    device: torch.device

    def put(self, x: torch.Tensor | None) -> torch.Tensor | None:
        return None if x is None else x.to(self.device)


@dataclass(frozen=True)
class Case:
    """One search problem: video shape, operator parameters and whether offsets are given."""

    name: str
    T: int = 3
    C: int = 2
    H: int = 7
    W: int = 6
    B: int = 1
    offsets: bool = False
    seed: int = 0
    params: dict = field(default_factory=dict)

    def kwargs(self) -> dict:
        base = dict(ws=3, wt=1, ps=3, topk=4, stride0=1, stride1=1.0, dist="l2", heads=1)
        return {**base, "full_ws": True, **self.params}

    def inputs(self, dtype: torch.dtype = torch.float64):
        """q, k (B, T, C, H, W) and offsets (B, T, Wn, 2, nH, nW) or None, on the CPU."""
        gen = torch.Generator().manual_seed(self.seed)
        q = torch.rand(self.B, self.T, self.C, self.H, self.W, generator=gen, dtype=torch.float64)
        k = torch.rand(q.shape, generator=gen, dtype=torch.float64)
        offsets = None
        if self.offsets:
            kw = self.kwargs()
            Wn = min(2 * kw["wt"] + 1, self.T) - 1
            n_h, n_w = -(-self.H // kw["stride0"]), -(-self.W // kw["stride0"])
            shape = (self.B, self.T, Wn, 2, n_h, n_w)
            offsets = fractional_offsets(shape, gen, scale=2.0)

        def cast(x: torch.Tensor | None) -> torch.Tensor | None:
            return None if x is None else x.to(dtype)

        return cast(q), cast(k), cast(offsets)


def fractional_offsets(shape: tuple[int, ...], gen: torch.Generator, scale: float) -> torch.Tensor:
    """Offsets whose fractional parts stay in [0.2, 0.8], away from the bilinear knots."""
    whole = (torch.randn(shape, generator=gen, dtype=torch.float64) * scale).round()
    return whole + 0.2 + 0.6 * torch.rand(shape, generator=gen, dtype=torch.float64)


SEARCH_CASES = [
    Case("base"),
    Case("prod", params=dict(dist="prod")),
    Case("open_borders", H=5, W=6, params=dict(ws=5, topk=12, full_ws=False)),
    Case("open_inf", T=2, H=5, W=5, params=dict(ws=5, topk=20, full_ws=False)),
    Case("stride0", H=7, W=8, params=dict(stride0=2)),
    Case("stride1_half", H=6, W=5, params=dict(ws=5, stride1=0.5)),
    Case("stride1_half_open", H=6, W=5, params=dict(ws=5, stride1=0.5, full_ws=False)),
    Case("offsets", offsets=True, seed=1),
    Case("offsets_open", offsets=True, seed=2, params=dict(full_ws=False, topk=6)),
    Case("offsets_heads_prod", C=4, offsets=True, seed=3, params=dict(heads=2, dist="prod")),
    Case("heads", C=4, seed=4, params=dict(heads=2, ps=1, ws=5)),
    Case("wt2", T=5, H=5, W=5, seed=5, params=dict(wt=2, ps=1, topk=6)),
    Case("wt2_offsets", T=5, H=5, W=4, offsets=True, seed=6, params=dict(wt=2, ps=1)),
    Case("short_clip", T=2, H=5, W=5, seed=7, params=dict(wt=2, topk=5)),
    Case("tiny_frame", T=2, H=3, W=2, seed=8, params=dict(ps=5, ws=5, topk=6)),
    Case("box_stride0", H=9, W=8, seed=10, params=dict(stride0=2, ps=5, ws=3)),
    Case("box_stride1_2", H=9, W=8, seed=11, params=dict(stride1=2, ws=3, topk=5)),
    Case("box_clamp_empty", H=5, W=5, seed=12, params=dict(ws=7, ps=1, topk=8)),
    Case("batch_stride_offsets", B=2, T=2, H=6, W=5, offsets=True, seed=9,
         params=dict(stride0=2, stride1=0.5, ws=4, full_ws=False)),
]  # fmt: skip
FLOAT32_CASES = ["base", "offsets_heads_prod", "stride1_half_open"]


def case(name: str) -> Case:
    return next(c for c in SEARCH_CASES if c.name == name)


def as_numpy(x: torch.Tensor | None) -> np.ndarray | None:
    return None if x is None else x.detach().to("cpu", torch.float64).numpy()


@cache
def brute_search(name: str, dtype: torch.dtype) -> tuple[np.ndarray, np.ndarray]:
    """All candidates of a case (inputs rounded to dtype first), computed once per session."""
    c = case(name)
    q, k, offsets = c.inputs(dtype)
    kw = {key: v for key, v in c.kwargs().items() if key != "topk"}
    return bruteforce.search_candidates(as_numpy(q), as_numpy(k), as_numpy(offsets), **kw)


def with_params(c: Case, **params) -> Case:
    return replace(c, params={**c.params, **params})
