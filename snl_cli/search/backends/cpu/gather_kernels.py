"""numba kernels of the "cpu" backend's `gather` (`snl_cli.search.backends.cpu` wraps them).

v is read in its own layout, (B, T, C, H, W): the C/heads planes of a head are HW apart, so one
match costs one offset computation for all its channels, and for a row of queries (fixed
b, head, t, rank m, i) the reads of one channel plane go to nearby pixels while the writes
to out (B, heads, T, K, Ch, nH, nW) are contiguous. A match on a whole pixel (STAN's rounded
offsets) is a plain copy; a fractional one reads its 4 mirrored corners.

The gradient for v is scattered by the owner of the destination: one parallel task per
(b, head, group of channels) handles every match of that head in a fixed order, so there are
no races, no atomics, no private copies, and the sums do not depend on the thread count.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from snl_cli.search.jit import JIT, PAR, mirror


@njit(inline="always", **JIT)
def _row_taps(
    inds: np.ndarray,
    b: int,
    h: int,
    t: int,
    i: int,
    m: int,
    C: int,
    H: int,
    W: int,
    taps: np.ndarray,
    weights: np.ndarray,
) -> bool:
    """Flat offsets into v of the 4 corners read by each match of a query row, and their
    bilinear weights: taps (uint64: no negative-index wraparound in the loops that use
    them), weights (4, nW). True when every match is a whole pixel inside the frame (then
    only corner 0, of weight 1, matters)."""
    T = inds.shape[2]
    HW = H * W
    Ch = C // inds.shape[1]
    whole = True
    for j in range(inds.shape[4]):
        tp = round(inds[b, h, t, i, j, m, 0])
        py, px = inds[b, h, t, i, j, m, 1], inds[b, h, t, i, j, m, 2]
        fy, fx = math.floor(py), math.floor(px)
        wy, wx = py - fy, px - fx
        plane = ((b * T + tp) * C + h * Ch) * HW
        if wy == 0 and wx == 0 and 0 <= fy < H and 0 <= fx < W:
            base = plane + fy * W + fx
            taps[0, j] = taps[1, j] = taps[2, j] = taps[3, j] = base
            weights[0, j], weights[1, j], weights[2, j], weights[3, j] = 1, 0, 0, 0
            continue
        whole = False
        r0, r1 = mirror(fy, H) * W, mirror(fy + 1, H) * W
        c0, c1 = mirror(fx, W), mirror(fx + 1, W)
        taps[0, j], taps[1, j] = plane + r0 + c0, plane + r0 + c1
        taps[2, j], taps[3, j] = plane + r1 + c0, plane + r1 + c1
        weights[0, j], weights[1, j] = (1 - wy) * (1 - wx), (1 - wy) * wx
        weights[2, j], weights[3, j] = wy * (1 - wx), wy * wx
    return whole


@njit(**PAR)
def gather_forward(v: np.ndarray, inds: np.ndarray, out: np.ndarray) -> None:
    """out (B, heads, T, K, Ch, nH, nW) = v (B, T, C, H, W) read bilinearly at each match of
    inds (B, heads, T, nH, nW, K, 3); one output plane group (b, head, t, rank m) per
    parallel iteration, written one channel plane after the other (one write stream)."""
    B, T, C, H, W = v.shape
    _, heads, _, nH, nW, K, _ = inds.shape
    Ch, HW = C // heads, H * W
    vflat = v.reshape(-1)
    for n in prange(B * heads * T * K):
        m = n % K
        t, h, b = (n // K) % T, (n // (K * T)) % heads, n // (K * T * heads)
        taps = np.empty((nH, 4, nW), dtype=np.uint64)
        weights = np.empty((nH, 4, nW), dtype=v.dtype)
        whole = True
        for i in range(nH):
            whole &= _row_taps(inds, b, h, t, i, m, C, H, W, taps[i], weights[i])
        for c in range(Ch):
            src = vflat[c * HW :]
            for i in range(nH):
                dst = out[b, h, t, m, c, i]
                t0 = taps[i, 0]
                if whole:
                    for j in range(nW):
                        dst[j] = src[t0[j]]
                else:
                    t1, t2, t3 = taps[i, 1], taps[i, 2], taps[i, 3]
                    w0, w1, w2, w3 = weights[i, 0], weights[i, 1], weights[i, 2], weights[i, 3]
                    for j in range(nW):
                        dst[j] = (
                            w0[j] * src[t0[j]] + w1[j] * src[t1[j]]
                            + w2[j] * src[t2[j]] + w3[j] * src[t3[j]]
                        )  # fmt: skip


@njit(**PAR)
def gather_backward_v(
    grad_out: np.ndarray,
    inds: np.ndarray,
    groups: int,
    grad_v: np.ndarray,
) -> None:
    """grad_v (B, T, C, H, W), zeroed: the gradient of `gather_forward` scattered back.

    One parallel task per (b, head, group of channels): the owner of every element it writes,
    visiting the matches in a fixed order (race-free, deterministic).
    """
    B, T, C, H, W = grad_v.shape
    _, heads, _, nH, nW, K, _ = inds.shape
    Ch, HW = C // heads, H * W
    per_group = -(-Ch // groups)
    gflat = grad_v.reshape(-1)
    for n in prange(B * heads * groups):
        g, h, b = n % groups, (n // groups) % heads, n // (groups * heads)
        taps = np.empty((4, nW), dtype=np.uint64)
        weights = np.empty((4, nW), dtype=grad_v.dtype)
        for t in range(T):
            for m in range(K):
                for i in range(nH):
                    whole = _row_taps(inds, b, h, t, i, m, C, H, W, taps, weights)
                    for c in range(g * per_group, min(Ch, (g + 1) * per_group)):
                        go = grad_out[b, h, t, m, c, i]
                        dst = gflat[c * HW :]
                        if whole:
                            tap = taps[0]
                            for j in range(nW):
                                dst[tap[j]] += go[j]
                        else:
                            for corner in range(4):
                                tap, weight = taps[corner], weights[corner]
                                for j in range(nW):
                                    dst[tap[j]] += weight[j] * go[j]


@njit(**PAR)
def gather_backward_pos(
    grad_out: np.ndarray,
    v: np.ndarray,
    inds: np.ndarray,
    grad_pos: np.ndarray,
) -> None:
    """grad_pos (B, heads, T, nH, nW, K, 2): d loss / d (y, x) of each match (the derivative
    of the bilinear read from its floor cell); one query row per parallel iteration."""
    B, T, C, H, W = v.shape
    _, heads, _, nH, nW, K, _ = inds.shape
    Ch, HW = C // heads, H * W
    vflat = v.reshape(-1)
    for n in prange(B * heads * T * nH):
        i = n % nH
        t, h, b = (n // nH) % T, (n // (nH * T)) % heads, n // (nH * T * heads)
        taps = np.empty((nW, 4), dtype=np.uint64)
        cell = np.empty((nW, 2), dtype=v.dtype)
        dy = np.empty(nW, dtype=v.dtype)
        dx = np.empty(nW, dtype=v.dtype)
        for m in range(K):
            for j in range(nW):
                tp = round(inds[b, h, t, i, j, m, 0])
                py, px = inds[b, h, t, i, j, m, 1], inds[b, h, t, i, j, m, 2]
                fy, fx = math.floor(py), math.floor(px)
                cell[j, 0], cell[j, 1] = py - fy, px - fx
                plane = ((b * T + tp) * C + h * Ch) * HW
                r0, r1 = mirror(fy, H) * W, mirror(fy + 1, H) * W
                c0, c1 = mirror(fx, W), mirror(fx + 1, W)
                taps[j, 0], taps[j, 1] = plane + r0 + c0, plane + r0 + c1
                taps[j, 2], taps[j, 3] = plane + r1 + c0, plane + r1 + c1
            dy[:] = 0
            dx[:] = 0
            for c in range(Ch):
                go = grad_out[b, h, t, m, c, i]
                src = vflat[c * HW :]
                for j in range(nW):
                    wy, wx = cell[j, 0], cell[j, 1]
                    v00, v01 = src[taps[j, 0]], src[taps[j, 1]]
                    v10, v11 = src[taps[j, 2]], src[taps[j, 3]]
                    dy[j] += go[j] * ((1 - wx) * (v10 - v00) + wx * (v11 - v01))
                    dx[j] += go[j] * ((1 - wy) * (v01 - v00) + wy * (v11 - v10))
            for j in range(nW):
                grad_pos[b, h, t, i, j, m, 0] = dy[j]
                grad_pos[b, h, t, i, j, m, 1] = dx[j]
