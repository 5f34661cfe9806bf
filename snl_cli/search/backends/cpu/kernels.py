"""numba kernels of the "cpu" backend (raw, no autograd; `snl_cli.search.backends.cpu` wraps
them): the direct and box search, the search backward and the weighted patch sum.

The search kernels take the scalars of a search as one record, `args` (`SearchArgs`: sizes,
operator parameters, the full_ws clamp and the mirror tables' offset).

Layouts, set up by `snl_cli.search.backends.cpu`:
    frames per head, channels last, flattened to rows: (B*heads*T*H, W*Ch), so that the
    ps*Ch values of a patch row sit side by side in memory and row r of frame f of head
    (b, h) is ((b*heads + h)*T + f)*H + r;
    mirror tables: rows[i + pad] = i mirrored into [0, H-1] (likewise cols), for every
    integer index a search can touch.

Parallel loops never let two iterations write the same element: forward passes own their
output slice; gradients that scatter into a frame are computed bucket by bucket, one bucket
per destination frame (see `bucket_order`), so no atomics, no private copies, and the
result is deterministic.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from numba import njit, prange

from snl_cli.search.jit import JIT, PAR, PAR_REASSOC, mirror

if TYPE_CHECKING:
    from snl_cli.search.backends.cpu import SearchArgs


@njit(inline="always", **JIT)
def _insert(
    keys: np.ndarray,
    pos: np.ndarray,
    count: int,
    key: float,
    tp: int,
    py: float,
    px: float,
) -> int:
    """Insert (key, position) into the ascending top-k arrays; return the new count."""
    K = keys.shape[0]
    if count < K:
        n = count
        count += 1
    elif key < keys[K - 1]:
        n = K - 1
    else:
        return count
    while n > 0 and keys[n - 1] > key:
        keys[n] = keys[n - 1]
        pos[n, 0] = pos[n - 1, 0]
        pos[n, 1] = pos[n - 1, 1]
        pos[n, 2] = pos[n - 1, 2]
        n -= 1
    keys[n] = key
    pos[n, 0] = tp
    pos[n, 1] = py
    pos[n, 2] = px
    return count


@njit(inline="always", **JIT)
def _row_dist(
    qq: np.ndarray,
    kk: np.ndarray,
    is_l2: bool,
) -> float:
    """l2 or prod of two equal-length contiguous rows (slices: no index checks, vectorised)."""
    acc = qq.dtype.type(0)
    if is_l2:
        for e in range(qq.shape[0]):
            d = qq[e] - kk[e]
            acc += d * d
    else:
        for e in range(qq.shape[0]):
            acc += qq[e] * kk[e]
    return acc


@njit(inline="always", **JIT)
def _row_dist_lerp(
    qq: np.ndarray,
    kk: np.ndarray,
    Ch: int,
    w0: float,
    w1: float,
    is_l2: bool,
) -> float:
    """Like `_row_dist` with k interpolated between pixel x and x+1 of kk (Ch longer)."""
    acc = qq.dtype.type(0)
    for e in range(qq.shape[0]):
        kv = w0 * kk[e] + w1 * kk[e + Ch]
        if is_l2:
            d = qq[e] - kv
            acc += d * d
        else:
            acc += qq[e] * kv
    return acc


@njit(inline="always", **JIT)
def _strip(
    kflat: np.ndarray,
    frame_row: int,
    y0: int,
    wy: float,
    X0: int,
    L: int,
    Ch: int,
    W: int,
    rows: np.ndarray,
    cols: np.ndarray,
    pad: int,
    out: np.ndarray,
) -> None:
    """out[u, x*Ch + c] = k at row y0 + u - ps//2 + wy (interpolated), column X0 + x < X0 + L.

    One strip serves the ws candidates of a window row: they share the rows and wy, and
    differ only by where they start in it.
    """
    ps = out.shape[0]
    half = ps // 2
    one = out.dtype.type(1)
    inside = X0 >= 0 and X0 + L <= W
    n = L * Ch
    for u in range(ps):
        r0 = frame_row + rows[y0 + u - half + pad]
        r1 = frame_row + rows[y0 + u - half + 1 + pad]
        dst = out[u, :n]
        if inside:
            k0, k1 = kflat[r0, X0 * Ch : X0 * Ch + n], kflat[r1, X0 * Ch : X0 * Ch + n]
            if wy == 0:
                dst[:] = k0
            else:
                for e in range(n):
                    dst[e] = (one - wy) * k0[e] + wy * k1[e]
            continue
        for x in range(L):
            col = cols[X0 + x + pad] * Ch
            k0, k1 = kflat[r0, col : col + Ch], kflat[r1, col : col + Ch]
            for c in range(Ch):
                dst[x * Ch + c] = (one - wy) * k0[c] + wy * k1[c]


@njit(inline="always", **JIT)
def _strip_dist(
    qpatch: np.ndarray,
    strip: np.ndarray,
    off: int,
    wx: float,
    Ch: int,
    is_l2: bool,
    limit: float,
) -> float:
    """Patch distance of the candidate starting at element `off` of each strip row."""
    n = qpatch.shape[1]
    one = strip.dtype.type(1)
    acc = qpatch.dtype.type(0)
    for u in range(qpatch.shape[0]):
        if wx == 0:
            acc += _row_dist(qpatch[u], strip[u, off : off + n], is_l2)
        else:
            kk = strip[u, off : off + n + Ch]
            acc += _row_dist_lerp(qpatch[u], kk, Ch, one - wx, wx, is_l2)
        if acc >= limit:
            break
    return acc


@njit(**PAR_REASSOC)
def search_forward(
    qflat: np.ndarray,
    kflat: np.ndarray,
    offsets: np.ndarray,
    frames: np.ndarray,
    slots: np.ndarray,
    args: SearchArgs,
    valid: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    dists: np.ndarray,
    inds: np.ndarray,
) -> None:
    """Top-k search for any positions, one query row (b, head, t, i) per parallel iteration.

    Each query patch is compared with every candidate in place; the candidates of a window
    row share one interpolated strip of k (see `_strip`).

    Args:
        qflat, kflat: (B*heads*T*H, W*Ch) channels-last frames.
        offsets: (B, T, Wn, 2, nH, nW), read only when args.has_offsets.
        frames: (T, Wt) window frames of each t; slots: (T, Wt) offset slot or -1 (t itself).
        args: the search's scalars (`SearchArgs`).
        valid: (lo_y, hi_y, lo_x, hi_x) positions outside are invalid candidates.
        rows, cols: mirror tables with offset args.pad.
        dists: out, (B, heads, T, nH, nW, K); inds: out, (B, heads, T, nH, nW, K, 3).
    """
    B, heads, T, H, W, Ch = args.B, args.heads, args.T, args.H, args.W, args.Ch
    ws, ps, stride0, stride1 = args.ws, args.ps, args.stride0, args.stride1
    is_l2, full_ws, pad = args.is_l2, args.full_ws, args.pad
    nH, nW, K = dists.shape[3], dists.shape[4], dists.shape[5]
    Wt = frames.shape[1]
    half, wh = ps // 2, ws // 2
    sign = 1.0 if is_l2 else -1.0
    for n in prange(B * heads * T * nH):
        i = n % nH
        t = (n // nH) % T
        h = (n // (nH * T)) % heads
        b = n // (nH * T * heads)
        y = i * stride0
        head_row = (b * heads + h) * T
        qpatch = np.empty((ps, ps * Ch), dtype=qflat.dtype)
        keys = np.empty(K, dtype=qflat.dtype)
        pos = np.empty((K, 3), dtype=np.float64)
        strip = np.empty((ps, (math.ceil(stride1 * (ws - 1)) + ps + 3) * Ch), dtype=qflat.dtype)
        for j in range(nW):
            x = j * stride0
            for u in range(ps):
                ro = (head_row + t) * H + rows[y + u - half + pad]
                for v in range(ps):
                    col = cols[x + v - half + pad] * Ch
                    for c in range(Ch):
                        qpatch[u, v * Ch + c] = qflat[ro, col + c]
            count = 0
            for w in range(Wt):
                tp, slot = frames[t, w], slots[t, w]
                frame_row = (head_row + tp) * H
                cy, cx = float(y), float(x)
                if args.has_offsets and slot >= 0:
                    cy += offsets[b, t, slot, 0, i, j]
                    cx += offsets[b, t, slot, 1, i, j]
                if full_ws:
                    cy = min(max(cy, args.lo_y), args.hi_y)
                    cx = min(max(cx, args.lo_x), args.hi_x)
                for a in range(ws):
                    py = cy + stride1 * (a - wh)
                    row_ok = valid[0] <= py <= valid[1]
                    lo, hi = ws, -1  # valid candidates of the row: a run of a2
                    for a2 in range(ws):
                        px = cx + stride1 * (a2 - wh)
                        if row_ok and valid[2] <= px <= valid[3]:
                            lo, hi = min(lo, a2), a2
                        elif count < K:
                            count = _insert(keys, pos, count, np.inf, tp, py, px)
                    if hi < 0:
                        continue
                    y0 = math.floor(py)
                    X0 = math.floor(cx + stride1 * (lo - wh)) - half
                    L = math.floor(cx + stride1 * (hi - wh)) + half + 2 - X0
                    wy = strip.dtype.type(py - y0)
                    _strip(kflat, frame_row, y0, wy, X0, L, Ch, W, rows, cols, pad, strip)
                    for a2 in range(lo, hi + 1):
                        px = cx + stride1 * (a2 - wh)
                        x0 = math.floor(px)
                        wx = strip.dtype.type(px - x0)
                        limit = keys[K - 1] if is_l2 and count == K else np.inf
                        off = (x0 - half - X0) * Ch
                        key = sign * _strip_dist(qpatch, strip, off, wx, Ch, is_l2, limit)
                        if count == K and not key < keys[K - 1]:
                            continue
                        count = _insert(keys, pos, count, key, tp, py, px)
            for m in range(K):
                dists[b, h, t, i, j, m] = sign * keys[m]
                inds[b, h, t, i, j, m, 0] = pos[m, 0]
                inds[b, h, t, i, j, m, 1] = pos[m, 1]
                inds[b, h, t, i, j, m, 2] = pos[m, 2]


@njit(inline="always", **JIT)
def _pixel_dists(
    q2d: np.ndarray,
    k2d: np.ndarray,
    q_row: int,
    k_row: int,
    stride: int,
    Ch: int,
    X0: int,
    dx: int,
    W: int,
    cols: np.ndarray,
    pad: int,
    is_l2: bool,
    out: np.ndarray,
) -> None:
    """out[xx] = distance between q pixel X0+xx and k pixel X0+xx+dx of one row pair.

    q2d, k2d: channel-first rows (.., W); channel c of the q row is q2d[q_row + c*stride]
    (likewise k). Columns are mirrored outside [0, W-1]; the run where both pixels are
    inside is processed one channel at a time over contiguous memory (vectorised).
    """
    nX = out.shape[0]
    out[:] = 0
    lo = min(max(X0, -dx, 0), X0 + nX)
    hi = max(min(X0 + nX, W - dx, W), lo)
    for c in range(Ch):
        qr, kr = q2d[q_row + c * stride], k2d[k_row + c * stride]
        for xx in range(lo - X0):
            X = X0 + xx
            if is_l2:
                d = qr[cols[X + pad]] - kr[cols[X + dx + pad]]
                out[xx] += d * d
            else:
                out[xx] += qr[cols[X + pad]] * kr[cols[X + dx + pad]]
        for xx in range(hi - X0, nX):
            X = X0 + xx
            if is_l2:
                d = qr[cols[X + pad]] - kr[cols[X + dx + pad]]
                out[xx] += d * d
            else:
                out[xx] += qr[cols[X + pad]] * kr[cols[X + dx + pad]]
        qs, ks, run = qr[lo:hi], kr[lo + dx : hi + dx], out[lo - X0 : hi - X0]
        if is_l2:
            for x in range(hi - lo):
                d = qs[x] - ks[x]
                run[x] += d * d
        else:
            for x in range(hi - lo):
                run[x] += qs[x] * ks[x]


@njit(inline="always", **JIT)
def _shifts(
    n: int,
    stride0: int,
    full_ws: bool,
    lo: float,
    hi: float,
) -> np.ndarray:
    """Clamped centre minus query position along one axis, for each of n queries (ints)."""
    out = np.empty(n, dtype=np.int64)
    for i in range(n):
        y = i * stride0
        c = min(max(float(y), lo), hi) if full_ws else float(y)
        out[i] = int(c) - y
    return out


@njit(inline="always", **JIT)
def _has(
    shift: int,
    d: int,
    s1: int,
    ws: int,
) -> bool:
    """Whether displacement d is one of a query's window displacements shift + s1*(a - ws//2)."""
    a = d - shift + s1 * (ws // 2)
    return 0 <= a <= s1 * (ws - 1) and (s1 == 1 or a % s1 == 0)


@njit(**PAR)
def search_forward_box(
    q2d: np.ndarray,
    k2d: np.ndarray,
    frames: np.ndarray,
    args: SearchArgs,
    rows: np.ndarray,
    cols: np.ndarray,
    band: int,
    dists: np.ndarray,
    inds: np.ndarray,
) -> None:
    """Top-k search for integer positions (no offsets, integer stride1), displacement-major.

    For a fixed displacement (dy, dx) between query and candidate, the patch distance of
    every query is a ps x ps box sum of per-pixel distances e(Y, X) (with mirrored reads, e
    is translation invariant), so each pixel pair is computed once per displacement instead
    of ps^2 times. Queries whose full_ws centre is clamped have other displacements; those
    are visited too, only over the queries that use them. One parallel iteration per
    (b, head, t, band of `band` query rows); q2d, k2d are the videos (B, T, C, H, W) as
    (B*T*C*H, W) rows, other arguments as `search_forward` (args.stride1 a whole number).
    """
    B, heads, T, H, W, Ch = args.B, args.heads, args.T, args.H, args.W, args.Ch
    ws, ps, stride0, s1 = args.ws, args.ps, args.stride0, int(args.stride1)
    is_l2, full_ws, pad = args.is_l2, args.full_ws, args.pad
    C = heads * Ch
    nH, nW, K = dists.shape[3], dists.shape[4], dists.shape[5]
    Wt = frames.shape[1]
    half, wh = ps // 2, ws // 2
    sign = 1.0 if is_l2 else -1.0
    n_bands = (nH + band - 1) // band
    shift_x = _shifts(nW, stride0, full_ws, args.lo_x, args.hi_x)
    for n in prange(B * heads * T * n_bands):
        i0 = (n % n_bands) * band
        t = (n // n_bands) % T
        h = (n // (n_bands * T)) % heads
        b = n // (n_bands * T * heads)
        ni = min(nH - i0, band)
        shift_y = _shifts(i0 + ni, stride0, full_ws, args.lo_y, args.hi_y)[i0:]
        count = np.zeros((ni, nW), dtype=np.int64)
        keys = np.empty((ni, nW, K), dtype=q2d.dtype)
        pos = np.empty((ni, nW, K, 3), dtype=np.float64)
        e = np.empty(((ni - 1) * stride0 + ps, (nW - 1) * stride0 + ps), dtype=q2d.dtype)
        hbox = np.empty((e.shape[0], nW), dtype=q2d.dtype)
        vbox = np.empty(nW, dtype=q2d.dtype)
        for w in range(Wt):
            tp = frames[t, w]
            for dy in range(shift_y.min() - s1 * wh, shift_y.max() + s1 * wh + 1):
                ilo, ihi = ni, -1
                for i in range(ni):
                    if _has(shift_y[i], dy, s1, ws):
                        ilo, ihi = min(ilo, i), i
                if ihi < 0:
                    continue
                Y0 = (i0 + ilo) * stride0 - half
                nY = (ihi - ilo) * stride0 + ps
                for dx in range(shift_x.min() - s1 * wh, shift_x.max() + s1 * wh + 1):
                    jlo, jhi = nW, -1
                    for j in range(nW):
                        if _has(shift_x[j], dx, s1, ws):
                            jlo, jhi = min(jlo, j), j
                    if jhi < 0:
                        continue
                    X0 = jlo * stride0 - half
                    nX = (jhi - jlo) * stride0 + ps
                    nJ = jhi - jlo + 1
                    for yy in range(nY):
                        Y = Y0 + yy
                        q_row = ((b * T + t) * C + h * Ch) * H + rows[Y + pad]
                        k_row = ((b * T + tp) * C + h * Ch) * H + rows[Y + dy + pad]
                        _pixel_dists(
                            q2d, k2d, q_row, k_row, H, Ch, X0, dx, W, cols, pad, is_l2,
                            e[yy, :nX],
                        )  # fmt: skip
                        for jj in range(nJ):
                            acc = e.dtype.type(0)
                            for v in range(ps):
                                acc += e[yy, jj * stride0 + v]
                            hbox[yy, jj] = acc
                    for i in range(ilo, ihi + 1):
                        if not _has(shift_y[i], dy, s1, ws):
                            continue
                        yy0 = (i - ilo) * stride0
                        vbox[:nJ] = hbox[yy0, :nJ]
                        for u in range(1, ps):
                            for jj in range(nJ):
                                vbox[jj] += hbox[yy0 + u, jj]
                        py = (i0 + i) * stride0 + dy
                        row_ok = full_ws or 0 <= py <= H - 1
                        for jj in range(nJ):
                            j = jlo + jj
                            if not _has(shift_x[j], dx, s1, ws):
                                continue
                            px = j * stride0 + dx
                            key = np.inf
                            if row_ok and (full_ws or 0 <= px <= W - 1):
                                key = sign * vbox[jj]
                            if count[i, j] == K and not key < keys[i, j, K - 1]:
                                continue  # the common case: no better than the k-th best
                            count[i, j] = _insert(
                                keys[i, j], pos[i, j], count[i, j], key, tp, py, px
                            )
        for i in range(ni):
            for j in range(nW):
                for m in range(K):
                    dists[b, h, t, i0 + i, j, m] = sign * keys[i, j, m]
                    inds[b, h, t, i0 + i, j, m, 0] = pos[i, j, m, 0]
                    inds[b, h, t, i0 + i, j, m, 1] = pos[i, j, m, 1]
                    inds[b, h, t, i0 + i, j, m, 2] = pos[i, j, m, 2]


@njit(**JIT)
def bucket_order(
    keys: np.ndarray,
    n_buckets: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Counting sort of match indices by destination bucket (b, head, frame).

    Returns:
        order: the match indices grouped by bucket; starts: (n_buckets + 1,) bucket bounds.
    """
    starts = np.zeros(n_buckets + 1, dtype=np.int64)
    for m in range(keys.shape[0]):
        starts[keys[m] + 1] += 1
    for n in range(n_buckets):
        starts[n + 1] += starts[n]
    fill = starts[:-1].copy()
    order = np.empty(keys.shape[0], dtype=np.int64)
    for m in range(keys.shape[0]):
        order[fill[keys[m]]] = m
        fill[keys[m]] += 1
    return order, starts


@njit(inline="always", **JIT)
def _cell(
    frame_row: int,
    yy: int,
    xx: int,
    H: int,
    W: int,
    Ch: int,
) -> tuple[int, int, int, int]:
    """Rows and column offsets (mirrored) of the 4 corners of the cell at integer (yy, xx)."""
    return (
        frame_row + mirror(yy, H), frame_row + mirror(yy + 1, H),
        mirror(xx, W) * Ch, mirror(xx + 1, W) * Ch,
    )  # fmt: skip


@njit(inline="always", **JIT)
def _invalid(
    py: float,
    px: float,
    H: int,
    W: int,
    full_ws: bool,
) -> bool:
    """A candidate without full_ws outside the frame has a constant (inf) distance."""
    return not full_ws and not (0 <= py <= H - 1 and 0 <= px <= W - 1)


@njit(inline="always", **JIT)
def _match(
    flat_index: int,
    nH: int,
    nW: int,
    K: int,
    T: int,
    heads: int,
) -> tuple[int, int, int, int, int, int]:
    """(b, h, t, i, j, m) of a flat match index of (B, heads, T, nH, nW, K)."""
    m = flat_index % K
    j = (flat_index // K) % nW
    i = (flat_index // (K * nW)) % nH
    t = (flat_index // (K * nW * nH)) % T
    h = (flat_index // (K * nW * nH * T)) % heads
    b = flat_index // (K * nW * nH * T * heads)
    return b, h, t, i, j, m


@njit(inline="always", **JIT)
def _search_pair_grad(
    g: float,
    qflat: np.ndarray,
    kflat: np.ndarray,
    q_row: int,
    k_row: int,
    y: int,
    x: int,
    py: float,
    px: float,
    ps: int,
    H: int,
    W: int,
    Ch: int,
    is_l2: bool,
    grad_q: np.ndarray,
    grad_k: np.ndarray,
) -> tuple[float, float]:
    """Gradients of one (query, match) distance with upstream gradient g.

    Adds d/dq into grad_q (if it has rows) and d/dk into grad_k (if it has rows); returns
    d/d(py, px). q_row, k_row: first flat row of the query's and the match's frame.
    """
    half = ps // 2
    fy, fx = math.floor(py), math.floor(px)
    wy, wx = py - fy, px - fx
    dy_sum, dx_sum = 0.0, 0.0
    for u in range(ps):
        qr = q_row + mirror(y + u - half, H)
        for v in range(ps):
            qc = mirror(x + v - half, W) * Ch
            r0, r1, c0, c1 = _cell(k_row, fy + u - half, fx + v - half, H, W, Ch)
            for c in range(Ch):
                k00, k01 = kflat[r0, c0 + c], kflat[r0, c1 + c]
                k10, k11 = kflat[r1, c0 + c], kflat[r1, c1 + c]
                top = k00 + wx * (k01 - k00)
                bottom = k10 + wx * (k11 - k10)
                kv = top + wy * (bottom - top)
                qv = qflat[qr, qc + c]
                if is_l2:
                    dq = 2 * g * (qv - kv)
                    dk = -dq
                else:
                    dq = g * kv
                    dk = g * qv
                if grad_q.shape[0]:
                    grad_q[qr, qc + c] += dq
                if grad_k.shape[0]:
                    grad_k[r0, c0 + c] += dk * (1 - wy) * (1 - wx)
                    grad_k[r0, c1 + c] += dk * (1 - wy) * wx
                    grad_k[r1, c0 + c] += dk * wy * (1 - wx)
                    grad_k[r1, c1 + c] += dk * wy * wx
                dy_sum += dk * (bottom - top)
                dx_sum += dk * ((1 - wy) * (k01 - k00) + wy * (k11 - k10))
    return dy_sum, dx_sum


@njit(**PAR)
def search_backward_q(
    grad_dists: np.ndarray,
    qflat: np.ndarray,
    kflat: np.ndarray,
    inds: np.ndarray,
    args: SearchArgs,
    need_pos: bool,
    grad_q: np.ndarray,
    grad_pos: np.ndarray,
) -> None:
    """d loss / d q (into grad_q, the layout of qflat) and d loss / d match position.

    Parallel over (b, head, t): the queries of a frame write only into that frame of q, and
    each match into its own grad_pos entry, (B, heads, T, nH, nW, K, 2).
    """
    B, heads, T, H, W, Ch = args.B, args.heads, args.T, args.H, args.W, args.Ch
    ps, stride0, is_l2, full_ws = args.ps, args.stride0, args.is_l2, args.full_ws
    nH, nW, K = grad_dists.shape[3], grad_dists.shape[4], grad_dists.shape[5]
    no_k = np.empty((0, 0), dtype=kflat.dtype)
    for n in prange(B * heads * T):
        t, h, b = n % T, (n // T) % heads, n // (T * heads)
        head_row = (b * heads + h) * T
        for i in range(nH):
            for j in range(nW):
                for m in range(K):
                    g = grad_dists[b, h, t, i, j, m]
                    tp = round(inds[b, h, t, i, j, m, 0])
                    py, px = inds[b, h, t, i, j, m, 1], inds[b, h, t, i, j, m, 2]
                    dy, dx = 0.0, 0.0
                    if g != 0 and not _invalid(py, px, H, W, full_ws):
                        dy, dx = _search_pair_grad(
                            g, qflat, kflat, (head_row + t) * H, (head_row + tp) * H,
                            i * stride0, j * stride0, py, px, ps, H, W, Ch, is_l2, grad_q, no_k,
                        )  # fmt: skip
                    if need_pos:
                        grad_pos[b, h, t, i, j, m, 0] = dy
                        grad_pos[b, h, t, i, j, m, 1] = dx


@njit(**PAR)
def search_backward_k(
    grad_dists: np.ndarray,
    qflat: np.ndarray,
    kflat: np.ndarray,
    inds: np.ndarray,
    args: SearchArgs,
    order: np.ndarray,
    starts: np.ndarray,
    grad_k: np.ndarray,
) -> None:
    """d loss / d k (into grad_k, the layout of kflat), one bucket (b, head, frame) per
    parallel iteration: all matches that read a frame are handled by one thread."""
    B, heads, T, H, W, Ch = args.B, args.heads, args.T, args.H, args.W, args.Ch
    ps, stride0, is_l2, full_ws = args.ps, args.stride0, args.is_l2, args.full_ws
    nH, nW, K = grad_dists.shape[3], grad_dists.shape[4], grad_dists.shape[5]
    no_q = np.empty((0, 0), dtype=qflat.dtype)
    for bucket in prange(B * heads * T):
        for s in range(starts[bucket], starts[bucket + 1]):
            b, h, t, i, j, m = _match(order[s], nH, nW, K, T, heads)
            g = grad_dists[b, h, t, i, j, m]
            tp = round(inds[b, h, t, i, j, m, 0])
            py, px = inds[b, h, t, i, j, m, 1], inds[b, h, t, i, j, m, 2]
            if g == 0 or _invalid(py, px, H, W, full_ws):
                continue
            head_row = (b * heads + h) * T
            _search_pair_grad(
                g, qflat, kflat, (head_row + t) * H, (head_row + tp) * H, i * stride0,
                j * stride0, py, px, ps, H, W, Ch, is_l2, no_q, grad_k,
            )  # fmt: skip


@njit(inline="always", **JIT)
def _query_index(
    Y: int,
    d: int,
    stride0: int,
    n: int,
) -> int:
    """Index of the query at Y - d on the stride0 grid of n queries, or -1 if none."""
    y = Y - d
    if y < 0 or y % stride0:
        return -1
    i = y // stride0
    return i if i < n else -1


@njit(**PAR)
def patch_sum_forward(
    vflat: np.ndarray,
    weights: np.ndarray,
    inds: np.ndarray,
    shape: np.ndarray,
    ps: int,
    stride0: int,
    count: np.ndarray,
    out: np.ndarray,
) -> None:
    """out (B, T, C, H, W): each pixel pulls the weighted matches of the query patches that
    cover it, divided by their number (count, (H, W)); one (b, h, t, row) per iteration."""
    B, heads, T, H, W, Ch = shape[0], shape[1], shape[2], shape[3], shape[4], shape[5]
    nH, nW, K = inds.shape[3], inds.shape[4], inds.shape[5]
    half = ps // 2
    for n in prange(B * heads * T * H):
        Y = n % H
        t, h, b = (n // H) % T, (n // (H * T)) % heads, n // (H * T * heads)
        head_row = (b * heads + h) * T
        acc = np.empty(Ch, dtype=vflat.dtype)
        for X in range(W):
            acc[:] = 0
            for du in range(-half, half + 1):
                i = _query_index(Y, du, stride0, nH)
                if i < 0:
                    continue
                for dv in range(-half, half + 1):
                    j = _query_index(X, dv, stride0, nW)
                    if j < 0:
                        continue
                    for m in range(K):
                        w = weights[b, h, t, i, j, m]
                        tp = round(inds[b, h, t, i, j, m, 0])
                        py, px = inds[b, h, t, i, j, m, 1] + du, inds[b, h, t, i, j, m, 2] + dv
                        fy, fx = math.floor(py), math.floor(px)
                        wy, wx = py - fy, px - fx
                        r0, r1, c0, c1 = _cell((head_row + tp) * H, fy, fx, H, W, Ch)
                        for c in range(Ch):
                            top = vflat[r0, c0 + c] + wx * (vflat[r0, c1 + c] - vflat[r0, c0 + c])
                            bot = vflat[r1, c0 + c] + wx * (vflat[r1, c1 + c] - vflat[r1, c0 + c])
                            acc[c] += w * (top + wy * (bot - top))
            cnt = count[Y, X]
            for c in range(Ch):
                out[b, t, h * Ch + c, Y, X] = acc[c] / cnt if cnt > 0 else 0


@njit(**PAR)
def patch_sum_backward(
    grad_flat: np.ndarray,
    vflat: np.ndarray,
    weights: np.ndarray,
    inds: np.ndarray,
    shape: np.ndarray,
    ps: int,
    stride0: int,
    need_pos: bool,
    order: np.ndarray,
    starts: np.ndarray,
    grad_v: np.ndarray,
    grad_weights: np.ndarray,
    grad_pos: np.ndarray,
) -> None:
    """Gradients of `patch_sum_forward`, one bucket (b, head, frame read) per iteration.

    grad_flat: d loss / d out already divided by count, in the layout of vflat. Writes
    grad_v (layout of vflat), grad_weights (B, heads, T, nH, nW, K) and, when need_pos,
    grad_pos (B, heads, T, nH, nW, K, 2).
    """
    B, heads, T, H, W, Ch = shape[0], shape[1], shape[2], shape[3], shape[4], shape[5]
    nH, nW, K = inds.shape[3], inds.shape[4], inds.shape[5]
    half = ps // 2
    for bucket in prange(B * heads * T):
        for s in range(starts[bucket], starts[bucket + 1]):
            b, h, t, i, j, m = _match(order[s], nH, nW, K, T, heads)
            head_row = (b * heads + h) * T
            w = weights[b, h, t, i, j, m]
            tp = round(inds[b, h, t, i, j, m, 0])
            dw, dy_sum, dx_sum = 0.0, 0.0, 0.0
            for du in range(-half, half + 1):
                Y = i * stride0 + du
                if Y < 0 or Y >= H:
                    continue
                for dv in range(-half, half + 1):
                    X = j * stride0 + dv
                    if X < 0 or X >= W:
                        continue
                    py, px = inds[b, h, t, i, j, m, 1] + du, inds[b, h, t, i, j, m, 2] + dv
                    fy, fx = math.floor(py), math.floor(px)
                    wy, wx = py - fy, px - fx
                    r0, r1, c0, c1 = _cell((head_row + tp) * H, fy, fx, H, W, Ch)
                    g_row = (head_row + t) * H + Y
                    for c in range(Ch):
                        g = grad_flat[g_row, X * Ch + c]
                        k00, k01 = vflat[r0, c0 + c], vflat[r0, c1 + c]
                        k10, k11 = vflat[r1, c0 + c], vflat[r1, c1 + c]
                        top = k00 + wx * (k01 - k00)
                        bottom = k10 + wx * (k11 - k10)
                        dw += g * (top + wy * (bottom - top))
                        gw = g * w
                        grad_v[r0, c0 + c] += gw * (1 - wy) * (1 - wx)
                        grad_v[r0, c1 + c] += gw * (1 - wy) * wx
                        grad_v[r1, c0 + c] += gw * wy * (1 - wx)
                        grad_v[r1, c1 + c] += gw * wy * wx
                        dy_sum += gw * (bottom - top)
                        dx_sum += gw * ((1 - wy) * (k01 - k00) + wy * (k11 - k10))
            grad_weights[b, h, t, i, j, m] = dw
            if need_pos:
                grad_pos[b, h, t, i, j, m, 0] = dy_sum
                grad_pos[b, h, t, i, j, m, 1] = dx_sum
