"""The "cpu" backend: numba loops that compute every (query, candidate) pair in place.

Nothing here copies patches: the frames are re-laid out per head and channels-last once
(the size of the input), each parallel iteration keeps one query patch, a strip of ps rows
of the key frame and a running top-k of K entries, and the outputs are the only other
allocation. The kernels live in `kernels` (direct and box search, search backward,
patch_sum), `int_kernels` (the whole-pixel search, with the vector helpers of `simd`) and
`gather_kernels`; this module lays the tensors out for them, hands them the scalars of a
search as one `SearchArgs` record, and plugs them into the shared autograd Functions of
`snl_cli.search.autograd`.

Three forward paths, same results:
    "direct": any positions (offsets, fractional stride1): each candidate patch is compared
        with the query patch, reading ps interpolated rows of the key frame once per window
        row and stopping an l2 sum early once it exceeds the current k-th best.
    "box": integer positions (no offsets, integer stride1, integer full_ws bounds): for each
        displacement between query and candidate, the per-pixel distances are summed over
        ps x ps boxes, so each pixel pair is computed once instead of ps^2 times.
    "int": integer positions with per-query offsets (integer-valued offsets, as STAN rounds
        them): the candidates of a window row are consecutive pixels of one padded key row,
        compared with the query a vector of candidates at a time (`int_kernels`).

Other Parameters:
    SERIAL_WORK: below this many multiply-adds a call runs on one thread.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from snl_cli.search.autograd import make_operators
from snl_cli.search.backends import reference
from snl_cli.search.jit import mirror
from snl_cli.search.spec import SearchSpec

# Waking the thread pool costs ~0.1 ms on an idle machine and ~10 ms on a busy one: more
# than the whole work of a small call.
SERIAL_WORK = 2_000_000


def unavailable_reason() -> str | None:
    """None when numba imports, else why the backend cannot run."""
    try:
        import numba  # noqa: F401
    except ImportError as exc:
        return f"numba is not installed ({exc})"
    return None


def _kernels() -> ModuleType:
    """The numba kernels, imported (and loaded from numba's disk cache) on first use."""
    from snl_cli.search.backends.cpu import kernels

    return kernels


def _int_kernels() -> ModuleType:
    """The whole-pixel search kernels (see `_kernels`)."""
    from snl_cli.search.backends.cpu import int_kernels

    return int_kernels


def _gather_kernels() -> ModuleType:
    """The gather kernels (see `_kernels`)."""
    from snl_cli.search.backends.cpu import gather_kernels

    return gather_kernels


class SearchArgs(NamedTuple):
    """The scalars of one search as the search kernels take them: one argument instead of
    twenty (numba passes it by value; its fields are typed once, so floats stay float)."""

    B: int
    heads: int
    T: int
    H: int
    W: int
    Ch: int
    ws: int
    ps: int
    stride0: int
    stride1: float
    is_l2: bool
    full_ws: bool
    has_offsets: bool
    lo_y: float  # the full_ws clamp of window centres: [lo_y, hi_y] x [lo_x, hi_x]
    hi_y: float
    lo_x: float
    hi_x: float
    pad: int  # index i of the mirror tables is at i + pad


def search_args(spec: SearchSpec, has_offsets: bool = False) -> SearchArgs:
    """The `SearchArgs` of a search (mirror tables padded as `_bounds` says)."""
    clamp, _, pad = _bounds(spec)
    lo_y, hi_y, lo_x, hi_x = (float(x) for x in clamp)
    return SearchArgs(
        spec.B, spec.heads, spec.T, spec.H, spec.W, spec.Ch, spec.ws, spec.ps, spec.stride0,
        float(spec.stride1), spec.dist == "l2", bool(spec.full_ws), bool(has_offsets),
        lo_y, hi_y, lo_x, hi_x, int(pad),
    )  # fmt: skip


@contextmanager
def _threads(work: float) -> Iterator[None]:
    """Run the kernels called inside on one thread when `work` is small (thread-local)."""
    import numba

    before = numba.get_num_threads()
    if work < SERIAL_WORK:
        numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(before)


def _np(x: Tensor) -> np.ndarray:
    """A contiguous numpy view (or copy) of a CPU tensor, outside autograd."""
    return np.ascontiguousarray(x.detach().numpy())


def heads_last(x: Tensor, heads: int) -> np.ndarray:
    """(B, T, C, H, W) -> (B*heads*T*H, W*Ch): per-head channels-last rows, as numpy."""
    B, T, C, H, W = x.shape
    Ch = C // heads
    y = x.detach().reshape(B, T, heads, Ch, H, W).permute(0, 2, 1, 4, 5, 3).contiguous()
    return y.numpy().reshape(B * heads * T * H, W * Ch)


def heads_first(rows: np.ndarray, B: int, T: int, heads: int, H: int, W: int) -> Tensor:
    """Inverse of `heads_last`: (B*heads*T*H, W*Ch) -> (B, T, C, H, W) tensor."""
    Ch = rows.shape[1] // W
    x = torch.from_numpy(rows).reshape(B, heads, T, H, W, Ch)
    return x.permute(0, 2, 1, 5, 3, 4).reshape(B, T, heads * Ch, H, W).contiguous()


def _shape(v: Tensor, heads: int) -> np.ndarray:
    """(B, heads, T, H, W, Ch) of v, as the kernels take it."""
    B, T, C, H, W = v.shape
    return np.array([B, heads, T, H, W, C // heads], dtype=np.int64)


def mirror_table(size: int, pad: int) -> np.ndarray:
    """table[i + pad] = `mirror`(i, size), i in [-pad, size+pad)."""
    return mirror(np.arange(-pad, size + pad, dtype=np.int64), size)


def _window_tables(spec: SearchSpec) -> tuple[np.ndarray, np.ndarray]:
    """(T, Wt) frames of each window and, per frame, its offsets slot (-1 for t itself)."""
    frames = np.array([spec.window(t) for t in range(spec.T)], dtype=np.int64)
    slots = np.full_like(frames, -1)
    for t in range(spec.T):
        neighbours = spec.neighbours(t)
        for w, tp in enumerate(frames[t]):
            if tp != t:
                slots[t, w] = neighbours.index(tp)
    return frames, slots


def _bounds(spec: SearchSpec) -> tuple[np.ndarray, np.ndarray, int]:
    """full_ws clamp bounds, valid-position bounds (both (lo_y, hi_y, lo_x, hi_x)), table pad."""
    lo_y, hi_y = spec.center_bounds(spec.H)
    lo_x, hi_x = spec.center_bounds(spec.W)
    clamp = np.array([lo_y, hi_y, lo_x, hi_x], dtype=np.float64)
    reach = math.ceil(spec.radius) + 1
    if spec.full_ws:  # every clamped position is valid; the bounds only reject NaN
        valid = [-reach, spec.H - 1 + reach, -reach, spec.W - 1 + reach]
    else:
        valid = [0, spec.H - 1, 0, spec.W - 1]
    pad = 2 * reach + spec.ps // 2 + 2
    return clamp, np.array(valid, dtype=np.float64), pad


def _integer_valued(x: Tensor) -> bool:
    """Whether every element of x is a whole number (NaN is not)."""
    return bool(_int_kernels().whole_numbers(_np(x)))


def forward_method(offsets: Tensor | None, spec: SearchSpec) -> str:
    """ "box" or "int" when every candidate sits on an integer pixel, else "direct".

    Without offsets "box" is taken where boxes pay off; with integer-valued offsets, "int".
    """
    if not float(spec.stride1).is_integer():
        return "direct"
    clamp, _, _ = _bounds(spec)
    if spec.full_ws and not np.all(clamp == np.round(clamp)):
        return "direct"
    if offsets is not None:
        return "int" if _integer_valued(offsets) else "direct"
    # the box path evaluates every pixel of the query rows: with a sparse query grid the
    # direct path does less
    return "box" if spec.stride0 <= max(1, spec.ps // 2) else "direct"


def _band(spec: SearchSpec) -> int:
    """Query rows per parallel task of the box path: a few tasks per thread, small halos."""
    from numba import get_num_threads

    frames = spec.B * spec.heads * spec.T
    per_frame = -(-4 * get_num_threads() // frames)
    return max(8, -(-spec.nH // per_frame))


def _search_work(spec: SearchSpec) -> float:
    queries = spec.B * spec.heads * spec.T * spec.nH * spec.nW
    return queries * spec.n_candidates * spec.ps**2 * spec.Ch


def search_forward(
    q: Tensor, k: Tensor, offsets: Tensor | None, spec: SearchSpec, method: str = "auto"
) -> tuple[Tensor, Tensor]:
    """Raw forward of the search (no autograd); see `snl_cli.search.shifted_nls`.

    Args:
        method: "auto", "direct", "box" or "int" (see the module docstring); "box" and "int"
            need integer positions, "box" no offsets.
    """
    if method == "auto":
        method = forward_method(offsets, spec)
    if method == "int":
        return _search_forward_int(q, k, offsets, spec)
    kernels = _kernels()
    dtype = q.detach().numpy().dtype
    frames, slots = _window_tables(spec)
    _, valid, pad = _bounds(spec)
    args = search_args(spec, has_offsets=offsets is not None)
    dists = np.empty((spec.B, spec.heads, spec.T, spec.nH, spec.nW, spec.topk), dtype)
    inds = np.empty((*dists.shape, 3), dtype)
    rows, cols = mirror_table(spec.H, pad), mirror_table(spec.W, pad)
    with _threads(_search_work(spec)):
        if method == "box":
            # the videos as they are: (B*T*C*H, W) rows, one channel per row
            kernels.search_forward_box(
                _np(q).reshape(-1, spec.W), _np(k).reshape(-1, spec.W), frames, args, rows, cols,
                _band(spec), dists, inds,
            )  # fmt: skip
        else:
            off = np.zeros((1, 1, 1, 2, 1, 1), dtype) if offsets is None else _np(offsets)
            kernels.search_forward(
                heads_last(q, spec.heads), heads_last(k, spec.heads), off, frames, slots, args,
                valid, rows, cols, dists, inds,
            )  # fmt: skip
    return torch.from_numpy(dists), torch.from_numpy(inds)


def int_layout(k: Tensor, heads: int, pad: int, s1: int) -> tuple[np.ndarray, int]:
    """(B, T, C, H, W) -> the padded, phase-split key rows of `int_kernels`.

    Returns:
        kpad, flat; Wp, the length of one padded row (W + 2*pad rounded up to s1).
    """
    W = k.shape[-1]
    Wp = -(-(W + 2 * pad) // s1) * s1
    mirrored = mirror(np.arange(-pad, Wp - pad, dtype=np.int64), W)
    # phase p of the row first, then the next: X + pad = p + s1 * m
    order = np.arange(Wp).reshape(Wp // s1, s1).T.reshape(-1)
    kpad = np.empty(k.numel() // W * Wp, k.detach().numpy().dtype)
    _int_kernels().pad_key_rows(_np(k), heads, mirrored[order], kpad)
    return kpad, Wp


def _search_forward_int(
    q: Tensor,
    k: Tensor,
    offsets: Tensor | None,
    spec: SearchSpec,
    queries: tuple[int, int] | None = None,
) -> tuple[Tensor, Tensor]:
    """`search_forward` with method "int"; `queries` (first, stop) searches only the queries
    of those frames (offsets then hold only theirs, see `search_queries`)."""
    int_kernels = _int_kernels()
    dtype = q.detach().numpy().dtype
    first, stop = queries or (0, spec.T)
    frames, slots = (table[first:stop] for table in _window_tables(spec))
    args = search_args(spec, has_offsets=offsets is not None)
    s1 = int(spec.stride1)
    kcol_pad = int_kernels.layout_pad(spec.ws, spec.ps, s1)
    dists = np.empty((spec.B, spec.heads, stop - first, spec.nH, spec.nW, spec.topk), dtype)
    inds = np.empty((*dists.shape, 3), dtype)
    off = np.zeros((1, 1, 1, 2, 1, 1), dtype) if offsets is None else _np(offsets)
    with _threads(_search_work(spec) * (stop - first) / spec.T):
        kpad, Wp = int_layout(k, spec.heads, kcol_pad, s1)
        int_kernels.search_forward_int(
            _np(q[:, first:stop]), kpad, off, frames, slots, args,
            mirror_table(spec.H, args.pad), mirror_table(spec.W, args.pad), kcol_pad, Wp,
            dists, inds,
        )  # fmt: skip
    return torch.from_numpy(dists), torch.from_numpy(inds)


def search_queries(
    q: Tensor, k: Tensor, offsets: Tensor | None, spec: SearchSpec, first: int, stop: int
) -> tuple[Tensor, Tensor] | None:
    """Forward only: the search of the queries of frames first..stop-1 alone, offsets
    (B, stop-first, Wn, 2, nH, nW) or None, when the search is on whole pixels with offsets
    ("int"); None otherwise (the caller then searches every frame and keeps those)."""
    if offsets is None or forward_method(offsets, spec) != "int":
        return None
    return _search_forward_int(q, k, offsets, spec, (first, stop))


def _buckets(inds: Tensor, heads: int, T: int) -> tuple[np.ndarray, np.ndarray]:
    """Matches grouped by the frame they read, per (b, head): (order, starts) for the kernels
    that scatter into frames, so that each parallel iteration owns one frame."""
    B = inds.shape[0]
    frames = inds[..., 0].detach().round().long()
    head = torch.arange(B * heads).view(B, heads, *([1] * (inds.dim() - 3)))
    keys = (head * T + frames).reshape(-1).numpy()
    return _kernels().bucket_order(keys, B * heads * T)


def _pos_grad(inds: Tensor, need_pos: bool) -> np.ndarray:
    """Zeroed d loss / d (y, x) per match, or a dummy of the same rank and dtype."""
    shape = (*inds.shape[:-1], 2) if need_pos else (1,) * 7
    return np.zeros(shape, inds.detach().numpy().dtype)


def search_backward(
    grad_dists: Tensor, q: Tensor, k: Tensor, inds: Tensor, spec: SearchSpec, need_pos: bool
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Raw backward of the search: d loss / d q, d k and d match position (y, x).

    Returns:
        grad_q, grad_k (B, T, C, H, W); grad_pos (B, heads, T, nH, nW, K, 2) or None.
    """
    kernels = _kernels()
    B, T, heads, H, W = spec.B, spec.T, spec.heads, spec.H, spec.W
    qflat, kflat = heads_last(q, heads), heads_last(k, heads)
    grad_q, grad_k = np.zeros_like(qflat), np.zeros_like(kflat)
    grad_pos = _pos_grad(inds, need_pos)
    g, pos = _np(grad_dists), _np(inds)
    args = search_args(spec)
    with _threads(g.size * spec.ps**2 * spec.Ch):
        kernels.search_backward_q(g, qflat, kflat, pos, args, need_pos, grad_q, grad_pos)
        order, starts = _buckets(inds, heads, T)
        kernels.search_backward_k(g, qflat, kflat, pos, args, order, starts, grad_k)
    return (
        heads_first(grad_q, B, T, heads, H, W),
        heads_first(grad_k, B, T, heads, H, W),
        torch.from_numpy(grad_pos) if need_pos else None,
    )


def gather_forward(v: Tensor, inds: Tensor) -> Tensor:
    """Raw forward of `snl_cli.search.gather`: (B, heads, T, K, C/heads, nH, nW)."""

    B, T, C = v.shape[:3]
    _, heads, _, nH, nW, K, _ = inds.shape
    out = np.empty((B, heads, T, K, C // heads, nH, nW), v.detach().numpy().dtype)
    with _threads(out.size):
        _gather_kernels().gather_forward(_np(v), _np(inds), out)
    return torch.from_numpy(out)


def _channel_groups(B: int, heads: int, Ch: int) -> int:
    """Channel groups per head for the scatter of the gather backward: enough parallel
    tasks (B * heads * groups) for the threads, each group re-reading the match positions."""
    from numba import get_num_threads

    return max(1, min(Ch, -(-2 * get_num_threads() // (B * heads))))


def gather_backward(
    grad_out: Tensor, v: Tensor, inds: Tensor, need_pos: bool
) -> tuple[Tensor, Tensor | None]:
    """Raw backward of `snl_cli.search.gather`: d loss / d v (B, T, C, H, W) and d match
    position (B, heads, T, nH, nW, K, 2) or None."""
    gather_kernels = _gather_kernels()
    B, _, C = v.shape[:3]
    heads = inds.shape[1]
    g, pos = _np(grad_out), _np(inds)
    grad_v = np.zeros(v.shape, g.dtype)
    grad_pos = None
    with _threads(grad_out.numel()):
        groups = _channel_groups(B, heads, C // heads)
        gather_kernels.gather_backward_v(g, pos, groups, grad_v)
        if need_pos:
            grad_pos = np.empty((*inds.shape[:-1], 2), g.dtype)
            gather_kernels.gather_backward_pos(g, _np(v), pos, grad_pos)
    return torch.from_numpy(grad_v), None if grad_pos is None else torch.from_numpy(grad_pos)


def coverage(H: int, W: int, ps: int, stride0: int) -> np.ndarray:
    """(H, W) number of query patches (on the stride0 grid) covering each pixel."""

    def axis(size: int) -> np.ndarray:
        n = -(-size // stride0)
        hits = np.zeros(size, dtype=np.int64)
        for d in range(-(ps // 2), ps // 2 + 1):
            pixels = np.arange(n) * stride0 + d
            np.add.at(hits, pixels[(pixels >= 0) & (pixels < size)], 1)
        return hits

    return np.outer(axis(H), axis(W))


def patch_sum_forward(v: Tensor, weights: Tensor, inds: Tensor, ps: int, stride0: int) -> Tensor:
    """Raw forward of `snl_cli.search.patch_sum`: (B, T, C, H, W)."""
    heads = inds.shape[1]
    H, W = v.shape[-2:]
    out = np.empty(v.shape, v.detach().numpy().dtype)
    count = coverage(H, W, ps, stride0).astype(out.dtype)
    with _threads(inds.numel() * ps**2 * v.shape[2] / heads):
        _kernels().patch_sum_forward(
            heads_last(v, heads), _np(weights), _np(inds), _shape(v, heads), ps, stride0,
            count, out,
        )  # fmt: skip
    return torch.from_numpy(out)


def patch_sum_backward(
    grad_out: Tensor, v: Tensor, weights: Tensor, inds: Tensor, ps: int, stride0: int,
    need_pos: bool,
) -> tuple[Tensor, Tensor, Tensor | None]:  # fmt: skip
    """Raw backward of `snl_cli.search.patch_sum`.

    Returns:
        d loss / d v (B, T, C, H, W), / d weights (B, heads, T, nH, nW, K) and / d match
        position (B, heads, T, nH, nW, K, 2) or None.
    """
    B, T, _, H, W = v.shape
    heads = inds.shape[1]
    count = torch.from_numpy(coverage(H, W, ps, stride0)).to(v.dtype)
    grad_norm = torch.where(count > 0, grad_out / count.clamp_min(1), torch.zeros_like(grad_out))
    vflat = heads_last(v, heads)
    grad_v = np.zeros_like(vflat)
    grad_weights = np.empty(weights.shape, vflat.dtype)
    grad_pos = _pos_grad(inds, need_pos)
    with _threads(inds.numel() * ps**2 * v.shape[2] / heads * 3):
        order, starts = _buckets(inds, heads, T)
        _kernels().patch_sum_backward(
            heads_last(grad_norm, heads), vflat, _np(weights), _np(inds), _shape(v, heads), ps,
            stride0, need_pos, order, starts, grad_v, grad_weights, grad_pos,
        )  # fmt: skip
    return (
        heads_first(grad_v, B, T, heads, H, W),
        torch.from_numpy(grad_weights),
        torch.from_numpy(grad_pos) if need_pos else None,
    )


class _Ops:
    """The raw ops interface of `snl_cli.search.autograd`, implemented with numba."""

    search_forward = staticmethod(search_forward)
    search_backward = staticmethod(search_backward)
    gather_forward = staticmethod(gather_forward)
    gather_backward = staticmethod(gather_backward)
    patch_sum_forward = staticmethod(patch_sum_forward)
    patch_sum_backward = staticmethod(patch_sum_backward)


search, gather, patch_sum = make_operators(_Ops)


def accumulate_flows(fflow: Tensor, bflow: Tensor, wt: int, stride0: int) -> Tensor:
    """The reference's vectorised torch chain, autograd included: one bilinear read per step
    and query, a few ms at 96x96 (see `snl bench search`), not worth a kernel."""
    return reference.accumulate_flows(fflow, bflow, wt, stride0)
