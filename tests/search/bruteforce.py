"""An independent float64 brute force of the search operators, written from DESIGN.md.

Plain Python and numpy loops, one query and one candidate at a time; nothing here calls
snl_cli, so the torch reference and every backend are checked against the contract itself.
Arrays are numpy float64 with the shapes of DESIGN.md.
"""

from __future__ import annotations

import math

import numpy as np


def mirror(i: int, size: int) -> int:
    """Mirror an integer index into [0, size-1] without repeating the edge, periodically."""
    period = 2 * (size - 1)
    i = abs(i) % period
    return period - i if i > size - 1 else i


def bilinear(frame: np.ndarray, y: float, x: float) -> np.ndarray:
    """Value of frame (C, H, W) at fractional (y, x): 4 corners, each index mirrored."""
    _, H, W = frame.shape
    y0, x0 = math.floor(y), math.floor(x)
    wy, wx = y - y0, x - x0
    out = np.zeros(frame.shape[0])
    for dy, weight_y in ((0, 1 - wy), (1, wy)):
        for dx, weight_x in ((0, 1 - wx), (1, wx)):
            out += weight_y * weight_x * frame[:, mirror(y0 + dy, H), mirror(x0 + dx, W)]
    return out


def window(t: int, T: int, wt: int) -> list[int]:
    """The 2*wt+1 frames searched for frame t (sliding at clip ends), or all T if fewer."""
    if T < 2 * wt + 1:
        return list(range(T))
    start = min(max(t - wt, 0), T - 1 - 2 * wt)
    return list(range(start, start + 2 * wt + 1))


def clamp_centre(c: float, size: int, radius: float) -> float:
    lo, hi = radius, size - 1 - radius
    if lo > hi:
        return (size - 1) / 2
    return min(max(c, lo), hi)


def patch(frame: np.ndarray, y: float, x: float, ps: int) -> np.ndarray:
    """The ps x ps patch centred on (y, x), (ps, ps, C), read bilinearly with mirroring."""
    half = ps // 2
    rows = [
        [bilinear(frame, y + u, x + v) for v in range(-half, half + 1)]
        for u in range(-half, half + 1)
    ]
    return np.array(rows)


def search_candidates(
    q: np.ndarray,
    k: np.ndarray,
    offsets: np.ndarray | None,
    *,
    ws: int,
    wt: int,
    ps: int,
    stride0: int,
    stride1: float,
    dist: str,
    heads: int,
    full_ws: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Every candidate of every query, in no particular order.

    Returns:
        dists (B, heads, T, nH, nW, N) and positions (B, heads, T, nH, nW, N, 3) as
        (t', y, x), with N = window frames * ws^2.
    """
    B, T, C, H, W = q.shape
    nH, nW = -(-H // stride0), -(-W // stride0)
    Ch = C // heads
    n_frames = len(window(0, T, wt))
    N = n_frames * ws * ws
    radius = stride1 * (ws // 2)
    bad = -math.inf if dist == "prod" else math.inf
    dists = np.zeros((B, heads, T, nH, nW, N))
    pos = np.zeros((B, heads, T, nH, nW, N, 3))
    for b in range(B):
        for t in range(T):
            frames = window(t, T, wt)
            neighbours = [f for f in frames if f != t]
            for i in range(nH):
                for j in range(nW):
                    y, x = i * stride0, j * stride0
                    q_patch = patch(q[b, t], y, x, ps)
                    n = 0
                    for tp in frames:
                        cy, cx = float(y), float(x)
                        if tp != t and offsets is not None:
                            slot = neighbours.index(tp)
                            cy += offsets[b, t, slot, 0, i, j]
                            cx += offsets[b, t, slot, 1, i, j]
                        if full_ws:
                            cy = clamp_centre(cy, H, radius)
                            cx = clamp_centre(cx, W, radius)
                        for a in range(ws):
                            for c in range(ws):
                                py = cy + stride1 * (a - ws // 2)
                                px = cx + stride1 * (c - ws // 2)
                                pos[b, :, t, i, j, n] = (tp, py, px)
                                inside = 0 <= py <= H - 1 and 0 <= px <= W - 1
                                if not full_ws and not inside:
                                    dists[b, :, t, i, j, n] = bad
                                else:
                                    k_patch = patch(k[b, tp], py, px, ps)
                                    for h in range(heads):
                                        qh = q_patch[..., h * Ch : (h + 1) * Ch]
                                        kh = k_patch[..., h * Ch : (h + 1) * Ch]
                                        if dist == "l2":
                                            d = float(((qh - kh) ** 2).sum())
                                        else:
                                            d = float((qh * kh).sum())
                                        dists[b, h, t, i, j, n] = d
                                n += 1
    return dists, pos


def check_search(
    dists: np.ndarray,
    inds: np.ndarray,
    all_dists: np.ndarray,
    all_pos: np.ndarray,
    *,
    largest: bool,
    rtol: float,
    atol: float,
) -> None:
    """Assert that (dists, inds) is a valid top-k of the brute-force candidates.

    The distances must equal the sorted best brute-force distances, and every returned
    position must be a distinct real candidate whose brute-force distance is the one
    returned (so ties may come in any order).
    """
    K = dists.shape[-1]
    order = np.sort(all_dists, axis=-1)
    expected = order[..., ::-1][..., :K] if largest else order[..., :K]
    np.testing.assert_allclose(dists, expected, rtol=rtol, atol=atol, err_msg="top-k distances")
    flat_d = dists.reshape(-1, K)
    flat_i = inds.reshape(-1, K, 3)
    cand_d = all_dists.reshape(flat_d.shape[0], -1)
    cand_p = all_pos.reshape(flat_d.shape[0], -1, 3)
    for n in range(flat_d.shape[0]):
        close = np.abs(flat_i[n][:, None, :] - cand_p[n][None, :, :]).max(-1) < 1e-4
        found = close.argmax(1)
        if not close.any(1).all():
            raise AssertionError(f"query {n}: positions {flat_i[n]} are not candidates")
        if len(set(found.tolist())) != K:
            raise AssertionError(f"query {n}: a candidate is returned twice: {flat_i[n]}")
        np.testing.assert_allclose(
            flat_d[n], cand_d[n][found], rtol=rtol, atol=atol, err_msg=f"query {n}: distance"
        )


def gather(v: np.ndarray, inds: np.ndarray) -> np.ndarray:
    """(B, heads, T, K, C/heads, nH, nW): v read bilinearly at every match."""
    B, T, C = v.shape[:3]
    _, heads, _, nH, nW, K, _ = inds.shape
    Ch = C // heads
    out = np.zeros((B, heads, T, K, Ch, nH, nW))
    for b in range(B):
        for h in range(heads):
            frames = v[b, :, h * Ch : (h + 1) * Ch]
            for t in range(T):
                for i in range(nH):
                    for j in range(nW):
                        for n in range(K):
                            tp, y, x = inds[b, h, t, i, j, n]
                            out[b, h, t, n, :, i, j] = bilinear(frames[round(tp)], y, x)
    return out


def patch_sum(
    v: np.ndarray, weights: np.ndarray, inds: np.ndarray, ps: int, stride0: int
) -> np.ndarray:
    """(B, T, C, H, W): the weighted matched patches folded back, divided by coverage."""
    B, T, C, H, W = v.shape
    _, heads, _, nH, nW, K, _ = inds.shape
    Ch = C // heads
    half = ps // 2
    out = np.zeros((B, T, C, H, W))
    count = np.zeros((H, W))
    for i in range(nH):
        for j in range(nW):
            for u in range(-half, half + 1):
                for d in range(-half, half + 1):
                    Y, X = i * stride0 + u, j * stride0 + d
                    if 0 <= Y < H and 0 <= X < W:
                        count[Y, X] += 1
    for b in range(B):
        for h in range(heads):
            frames = v[b, :, h * Ch : (h + 1) * Ch]
            for t in range(T):
                for i in range(nH):
                    for j in range(nW):
                        for n in range(K):
                            tp, y, x = inds[b, h, t, i, j, n]
                            w = weights[b, h, t, i, j, n]
                            for u in range(-half, half + 1):
                                for d in range(-half, half + 1):
                                    Y, X = i * stride0 + u, j * stride0 + d
                                    if 0 <= Y < H and 0 <= X < W:
                                        val = bilinear(frames[round(tp)], y + u, x + d)
                                        out[b, t, h * Ch : (h + 1) * Ch, Y, X] += w * val
    return np.where(count > 0, out / np.maximum(count, 1), 0.0)


def accumulate_flows(fflow: np.ndarray, bflow: np.ndarray, wt: int, stride0: int) -> np.ndarray:
    """(B, T, Wn, 2, nH, nW): follow the flows one frame at a time from each query."""
    B, T, _, H, W = fflow.shape
    nH, nW = -(-H // stride0), -(-W // stride0)
    Wn = len(window(0, T, wt)) - 1
    out = np.zeros((B, T, Wn, 2, nH, nW))
    for b in range(B):
        for t in range(T):
            neighbours = [f for f in window(t, T, wt) if f != t]
            for slot, tp in enumerate(neighbours):
                flows, step = (fflow, 1) if tp > t else (bflow, -1)
                for i in range(nH):
                    for j in range(nW):
                        y, x = float(i * stride0), float(j * stride0)
                        for tau in range(t, tp, step):
                            dy, dx = bilinear(flows[b, tau], y, x)
                            y, x = y + dy, x + dx
                        out[b, t, slot, :, i, j] = (y - i * stride0, x - j * stride0)
    return out
