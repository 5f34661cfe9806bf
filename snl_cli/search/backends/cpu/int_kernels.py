"""numba kernel of the "cpu" backend's integer-position search (`snl_cli.search.backends.cpu`
wraps it).

When every candidate sits on a whole pixel (integer-valued offsets, integer stride1, integer
full_ws bounds), nothing is interpolated and the candidates of a window row are pixels
stride1 apart in one key row. `int_layout` stores each key row per head and channel, padded on
both sides with its mirrored pixels and split into its stride1 phases:

    kpad[(((bh*T + f)*H + r)*Ch + c)*Wp + p*Wm + m] = k[b, f, h*Ch + c, r, mirror(X)]
    with X + pad = p + stride1*m,  0 <= p < stride1,  Wp = stride1*Wm,

so that, for one query pixel and channel, LANES candidates of a window row are one contiguous
vector load (`simd`) wherever the window is, borders included; a row of
more than LANES candidates takes several vectors. Keys are l2 or -prod (smaller is better).

Selecting the top-k is the other half of the work: inserting 243 candidates in visiting order
into a sorted top-20 costs ~K * (1 + ln(N / K)) = 70 shifting insertions with a mispredicted
branch each, more than computing the distances. Instead, per query: (1) every key goes to a
buffer, and each lane keeps its r = ceil(K / lanes) smallest keys in registers; (2) tau = the
k-th smallest of those r * lanes keys is >= the k-th best overall (they are distinct
candidates); (3) the few candidates <= tau (K + 4.5 on average for K = 20 on STAN's 480p
features, DAVIS dog) are ranked by counting, a vector of keys at a time, and the first K
placed by rank (past 128 survivors, when K exceeds what 4 registers per lane cover, they are
inserted instead). Ties keep visiting order, so the result does not depend on threads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numba import njit, prange
from numba.cpython.unsafe.numbers import trailing_zeros

from snl_cli.search.backends.cpu.simd import (
    LANES,
    popcount,
    vadd_prod,
    vadd_sq_diff,
    vcount_le,
    vcount_less,
    vinf,
    vkeep,
    vmask_le,
    vmask_less,
    vpush,
    vstore,
    vzeros,
)
from snl_cli.search.jit import JIT, PAR

if TYPE_CHECKING:
    from snl_cli.search.backends.cpu import SearchArgs


def layout_pad(ws: int, ps: int, s1: int) -> int:
    """Columns of mirrored padding each side of a kpad row: every vector load a search with
    these parameters makes (full_ws or not) stays inside the padded row."""
    return s1 * (ws // 2 + LANES) + ps // 2 + 1


@njit(**JIT)
def whole_numbers(x: np.ndarray) -> bool:
    """Whether every element of x (C-contiguous) is a whole number or infinite (not NaN)."""
    for value in x.reshape(-1):  # noqa: SIM110 (numba compiles loops, not all(generator))
        if value != np.floor(value):
            return False
    return True


@njit(**PAR)
def pad_key_rows(k: np.ndarray, heads: int, cols: np.ndarray, kpad: np.ndarray) -> None:
    """kpad (flat) = the key rows of k (B, T, C, H, W) per head, frame, row and channel, each
    row read through cols (Wp,): the mirrored, phase-split column of each element."""
    B, T, C, H, _ = k.shape
    Ch, Wp = C // heads, cols.shape[0]
    for n in prange(B * heads * T * H):
        r = n % H
        f, h, b = (n // H) % T, (n // (H * T)) % heads, n // (H * T * heads)
        for c in range(Ch):
            src = k[b, f, h * Ch + c, r]
            dst = kpad[(n * Ch + c) * Wp : (n * Ch + c + 1) * Wp]
            for X in range(Wp):
                dst[X] = src[cols[X]]


@njit(inline="always", **JIT)
def _rank(keys: np.ndarray, n: int, s: int) -> int:
    """Rank of keys[s] among keys[:n] (ties: the earlier first); keys[n:] padded with +inf
    to a whole vector."""
    key = keys[s]
    block = s - s % LANES
    rank = 0
    for start in range(0, block, LANES):
        rank += vcount_le(keys, start, key)
    before = (1 << (s - block)) - 1
    rank += popcount(vmask_le(keys, block, key) & before)
    rank += popcount(vmask_less(keys, block, key) & ~(before << 1 | 1))
    for start in range(block + LANES, n, LANES):
        rank += vcount_less(keys, start, key)
    return rank


@njit(inline="always", **JIT)
def _rank_sort(
    keys: np.ndarray,
    codes: np.ndarray,
    n: int,
    out_keys: np.ndarray,
    out_codes: np.ndarray,
) -> None:
    """out_* = the len(out_keys) smallest of keys[:n] with their codes, ascending; ties keep
    their order in keys. Each key's rank is counted a vector of keys at a time (n^2 / LANES
    vector compares, no data-dependent branches); keys must have a vector of room past n."""
    keys[n : n - n % LANES + LANES] = np.inf
    K = out_keys.shape[0]
    for s in range(n):
        rank = _rank(keys, n, s)
        if rank < K:
            out_keys[rank] = keys[s]
            out_codes[rank] = codes[s]


@njit(inline="always", **JIT)
def _insertion_sort(
    keys: np.ndarray,
    codes: np.ndarray,
    n: int,
    out_keys: np.ndarray,
    out_codes: np.ndarray,
) -> None:
    """`_rank_sort` by insertion into the sorted top-k: O(n K) worst case instead of n^2 /
    LANES, for when many candidates survive (top-k larger than the lanes' registers hold)."""
    K = out_keys.shape[0]
    count = 0
    for s in range(n):
        key = keys[s]
        if count == K and not key < out_keys[K - 1]:
            continue
        m = count if count < K else K - 1
        count = min(count + 1, K)
        while m > 0 and out_keys[m - 1] > key:
            out_keys[m] = out_keys[m - 1]
            out_codes[m] = out_codes[m - 1]
            m -= 1
        out_keys[m] = key
        out_codes[m] = codes[s]


@njit(inline="always", **JIT)
def _select(keys: np.ndarray, n: int, rank: int) -> float:
    """The finite key of the given rank among keys[:n] (n a multiple of LANES), or +inf."""
    for s in range(n):
        if keys[s] < np.inf and _rank(keys, n, s) == rank:
            return keys[s]
    return np.inf


@njit(**PAR)
def search_forward_int(
    q: np.ndarray,
    kpad: np.ndarray,
    offsets: np.ndarray,
    frames: np.ndarray,
    slots: np.ndarray,
    args: SearchArgs,
    rows: np.ndarray,
    cols: np.ndarray,
    kcol_pad: int,
    Wp: int,
    dists: np.ndarray,
    inds: np.ndarray,
) -> None:
    """Top-k search when every candidate is a whole pixel; one query row (b, head, t, i) per
    parallel iteration.

    See the module docstring for the layout and the selection.

    Args:
        q: (B, Tq, C, H, W) query frames: the clip's, or a run of them (`frames` says
            which key frames each one searches; Tq = len(frames)).
        kpad: flat padded key rows of all args.T frames (see the module docstring), Wp
            long, kcol_pad = pad.
        offsets: (B, Tq, Wn, 2, nH, nW) with integer values, read only when args.has_offsets.
        frames, slots: (Tq, Wt) window frames of each query frame and their offsets slot
            (-1: the query's own frame).
        args: the search's scalars (`SearchArgs`; stride1 and the full_ws clamp whole numbers).
        rows, cols: mirror tables with offset args.pad (query patches and key rows).
        dists: out, (B, heads, Tq, nH, nW, K); inds: out, (B, heads, Tq, nH, nW, K, 3).
    """
    B, heads, H, W, Ch = args.B, args.heads, args.H, args.W, args.Ch
    T = frames.shape[0]  # query frames; the key rows hold args.T
    ws, ps, stride0, s1 = args.ws, args.ps, args.stride0, int(args.stride1)
    is_l2, full_ws, pad = args.is_l2, args.full_ws, args.pad
    nH, nW, K = dists.shape[3], dists.shape[4], dists.shape[5]
    Wt = frames.shape[1]
    Wm = Wp // s1
    half, wh = ps // 2, ws // 2
    sign = 1.0 if is_l2 else -1.0
    n_chunks = (ws + LANES - 1) // LANES
    n_vectors = Wt * ws * n_chunks
    lanes = min(ws, LANES)
    levels = -(-K // lanes)  # at most 4 (in registers); more: no tau
    # candidate code = vector * LANES + lane; each vector's window frame and cell offset
    vec_w = np.empty(n_vectors, dtype=np.int64)
    vec_dy = np.empty(n_vectors, dtype=np.int64)
    vec_dx = np.empty(n_vectors, dtype=np.int64)
    for vec in range(n_vectors):
        vec_w[vec] = vec // (ws * n_chunks)
        vec_dy[vec] = s1 * ((vec // n_chunks) % ws - wh)
        vec_dx[vec] = s1 * ((vec % n_chunks) * LANES - wh)
    # a window centre farther than this from the frame has no valid candidate (full_ws off);
    # tested before any float -> int conversion, so huge offsets cannot overflow
    reach = float(s1 * (ws - 1) + 1)
    for n in prange(B * heads * T * nH):
        i = n % nH
        t = (n // nH) % T
        h = (n // (nH * T)) % heads
        b = n // (nH * T * heads)
        y = i * stride0
        head_row = (b * heads + h) * args.T
        qpatch = np.empty(ps * ps * Ch, dtype=q.dtype)  # sign * q: key = l2 or -prod
        keys_all = np.empty(n_vectors * LANES, dtype=q.dtype)
        smallest = np.empty(4 * LANES, dtype=q.dtype)
        keys = np.empty(K, dtype=q.dtype)
        codes = np.zeros(K, dtype=np.int64)  # valid codes even if NaN keys leave holes
        hit_keys = np.empty((n_vectors + 1) * LANES, dtype=q.dtype)
        hit_codes = np.empty(n_vectors * LANES, dtype=np.int64)
        cys = np.empty(Wt, dtype=np.float64)  # window centres, to decode the codes
        cxs = np.empty(Wt, dtype=np.float64)
        for j in range(nW):
            x = j * stride0
            for u in range(ps):
                ro = rows[y + u - half + pad]
                for v in range(ps):
                    co = cols[x + v - half + pad]
                    for c in range(Ch):
                        qpatch[(u * ps + v) * Ch + c] = sign * q[b, t, h * Ch + c, ro, co]
            low0, low1, low2, low3 = vinf(kpad), vinf(kpad), vinf(kpad), vinf(kpad)
            for w in range(Wt):
                tp, slot = frames[t, w], slots[t, w]
                fy, fx = float(y), float(x)
                if args.has_offsets and slot >= 0:
                    fy += offsets[b, t, slot, 0, i, j]
                    fx += offsets[b, t, slot, 1, i, j]
                if full_ws:
                    fy = min(max(fy, args.lo_y), args.hi_y)
                    fx = min(max(fx, args.lo_x), args.hi_x)
                cys[w], cxs[w] = fy, fx
                inside = full_ws or (-reach < fy < H - 1 + reach and -reach < fx < W - 1 + reach)
                cy, cx = (int(fy), int(fx)) if inside else (0, 0)
                frame_row = (head_row + tp) * H
                for a in range(ws):
                    py = cy + s1 * (a - wh)
                    row_ok = inside and (full_ws or 0 <= py <= H - 1)
                    for chunk in range(n_chunks):
                        vec = (w * ws + a) * n_chunks + chunk
                        n_l = min(LANES, ws - chunk * LANES)
                        px0 = cx + s1 * (chunk * LANES - wh)
                        # lanes [l_lo, l_hi) hold valid candidates (all n_l with full_ws)
                        l_lo, l_hi = 0, n_l
                        if not full_ws:
                            if not row_ok:
                                l_hi = 0
                            while l_lo < l_hi and px0 + s1 * l_lo < 0:
                                l_lo += 1
                            while l_hi > l_lo and px0 + s1 * (l_hi - 1) > W - 1:
                                l_hi -= 1
                        acc = vzeros(kpad)
                        if l_lo < l_hi:
                            for u in range(ps):
                                row = (frame_row + rows[py + u - half + pad]) * Ch
                                for v in range(ps):
                                    X = px0 + v - half + kcol_pad  # > 0
                                    start = row * Wp + X
                                    if s1 > 1:  # phase-split rows (an integer division)
                                        start = row * Wp + (X % s1) * Wm + X // s1
                                    q0 = (u * ps + v) * Ch
                                    for c in range(Ch):
                                        if is_l2:
                                            vadd_sq_diff(acc, kpad, start + c * Wp, qpatch[q0 + c])
                                        else:
                                            vadd_prod(acc, kpad, start + c * Wp, qpatch[q0 + c])
                        # invalid candidates are +inf, lanes past the window row NaN (never
                        # selected, never counted in a rank)
                        vkeep(acc, ((1 << l_hi) - 1) ^ ((1 << l_lo) - 1), np.inf)
                        vkeep(acc, (1 << n_l) - 1, np.nan)
                        vstore(keys_all, vec * LANES, acc)
                        # the lanes' `levels` smallest keys, in registers
                        vpush(low0, acc)
                        if levels > 1:
                            vpush(low1, acc)
                        if levels > 2:
                            vpush(low2, acc)
                        if levels > 3:
                            vpush(low3, acc)
            # tau: the k-th smallest of the lanes' `levels` smallest keys, >= the k-th best
            vstore(smallest, 0, low0)
            vstore(smallest, LANES, low1)
            vstore(smallest, 2 * LANES, low2)
            vstore(smallest, 3 * LANES, low3)
            tau = _select(smallest, levels * LANES, K - 1) if levels <= 4 else np.inf
            n_hits = n_bad = 0
            for vec in range(n_vectors):
                if tau < np.inf:
                    hits = vmask_le(keys_all, vec * LANES, tau)
                else:  # every finite key, and non-finite ones while they may be needed
                    hits = vmask_less(keys_all, vec * LANES, np.inf)
                    for lane in range(min(LANES, ws - (vec % n_chunks) * LANES)):
                        if not (hits >> lane) & 1 and n_bad < K:
                            hits |= 1 << lane
                            n_bad += 1
                while hits:
                    code = vec * LANES + trailing_zeros(hits)
                    hits &= hits - 1
                    hit_keys[n_hits] = keys_all[code]
                    hit_codes[n_hits] = code
                    n_hits += 1
            if n_hits <= 8 * LANES:
                _rank_sort(hit_keys, hit_codes, n_hits, keys, codes)
            else:
                _insertion_sort(hit_keys, hit_codes, n_hits, keys, codes)
            row_dists, row_inds = dists[b, h, t, i, j], inds[b, h, t, i, j]
            for m in range(K):
                vec, lane = codes[m] // LANES, codes[m] % LANES
                w = vec_w[vec]
                row_dists[m] = sign * keys[m]
                row_inds[m, 0] = frames[t, w]
                row_inds[m, 1] = cys[w] + vec_dy[vec]
                row_inds[m, 2] = cxs[w] + vec_dx[vec] + s1 * lane
