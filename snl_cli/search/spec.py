"""The one description of a search: parameters, derived sizes and the temporal window."""

from __future__ import annotations

import math
from dataclasses import dataclass

DISTS = ("l2", "prod")


@dataclass(frozen=True)
class SearchSpec:
    """Everything a backend needs to know about one `shifted_nls` call.

    Built once by `snl_cli.search.api` after the arguments are checked; backends and autograd
    Functions take it whole, so the parameter list lives here only.
    """

    B: int
    T: int
    C: int
    H: int
    W: int
    ws: int = 9
    wt: int = 1
    ps: int = 7
    topk: int = 10
    stride0: int = 1
    stride1: float = 1.0
    dist: str = "l2"
    heads: int = 1
    full_ws: bool = True

    @property
    def nH(self) -> int:
        return math.ceil(self.H / self.stride0)

    @property
    def nW(self) -> int:
        return math.ceil(self.W / self.stride0)

    @property
    def Wt(self) -> int:
        """Frames in each temporal window (the query frame included)."""
        return min(2 * self.wt + 1, self.T)

    @property
    def Wn(self) -> int:
        """Neighbours per query frame (window frames other than the query's own)."""
        return self.Wt - 1

    @property
    def Ch(self) -> int:
        """Channels per head."""
        return self.C // self.heads

    @property
    def n_candidates(self) -> int:
        return self.Wt * self.ws * self.ws

    @property
    def largest(self) -> bool:
        """True when a larger distance is a better match (prod)."""
        return self.dist == "prod"

    @property
    def radius(self) -> float:
        """Half-width of the search window in pixels: stride1 * (ws // 2)."""
        return self.stride1 * (self.ws // 2)

    def window_start(self, t: int) -> int:
        """First frame of the temporal window of frame t (the window slides at clip ends)."""
        if self.T < 2 * self.wt + 1:
            return 0
        return min(max(t - self.wt, 0), self.T - 1 - 2 * self.wt)

    def window(self, t: int) -> list[int]:
        """All frames searched for queries of frame t, in increasing time order."""
        s = self.window_start(t)
        return list(range(s, s + self.Wt))

    def neighbours(self, t: int) -> list[int]:
        """The window frames other than t, in increasing time order (the offsets' Wn axis)."""
        return [f for f in self.window(t) if f != t]

    def center_bounds(self, size: int) -> tuple[float, float]:
        """Range [lo, hi] that full_ws clamps a window centre to along an axis of `size`."""
        lo, hi = self.radius, size - 1 - self.radius
        if lo > hi:
            lo = hi = (size - 1) / 2
        return lo, hi
