"""STAN's attention aggregation at inference on the CPU: one numba kernel per block.

For each query pixel and head the kernel scores the block's matches (or takes the search's
distances), keeps the k_agg best, softmaxes them and applies the learned rank-and-channel
combination, reading q, k and v in channels-last layout, where a pixel's channels of one head
are contiguous. The unfused path (`ShiftedNLSAttention._aggregate`) builds (k_agg, Ch, h, w)
gathers, distances, weights and a weighted stack per frame and multiplies them in torch; this
kernel holds nothing but the output. It computes what that path computes, to float32
rounding: ranks are ordered by distance, ties by match order.
"""

from __future__ import annotations

import numpy as np
import torch
from numba import njit, prange, uint64
from torch import Tensor

from snl_cli.search.jit import PAR_REASSOC, mirror


@njit(**PAR_REASSOC)
def _aggregate_kernel(
    qk: np.ndarray,
    v: np.ndarray,
    inds: np.ndarray,
    dists: np.ndarray,
    scale: np.ndarray,
    mix: np.ndarray,
    first: int,
    out: np.ndarray,
) -> None:
    """out (B*T, h, w, heads*Ch) = the attention output of the queries of T frames,
    frames first..first+T-1 of the Tk frames of qk and v.

    qk: (B*Tk, h, w, 2*heads*qk), queries then keys; v: (B*Tk, h, w, heads*Ch);
    inds: (B, heads, T, h, w, K, 3) whole-pixel (frame of the Tk, y, x) positions;
    dists: (B, heads, T, h, w, K), or shape (0, ...) to compute them from q and k;
    scale: (heads,); mix: (heads, Ch_out, k_agg * Ch_in). All C-contiguous.

    The gathers read flat views at uint64 offsets: numba checks signed indices for
    wraparound on every access (and mixing uint64 with int64 gives float64, hence the casts).
    """
    B, heads, T, h, w, K = inds.shape[:6]
    Tk = qk.shape[0] // B
    Ch = mix.shape[1]
    k_agg = mix.shape[2] // Ch
    C2, C = qk.shape[3], v.shape[3]
    split = C2 // 2
    dim = split // heads
    recompute = dists.shape[0] == 0
    qk_flat, v_flat, mix_flat, out_flat = (
        qk.reshape(-1),
        v.reshape(-1),
        mix.reshape(-1),
        out.reshape(-1),
    )
    for task in prange(heads * B * T * h):  # heads outermost: a head's keys and values
        y = task % h  # are 1/heads of the data, so a row's windows stay in cache
        t = (task // h) % T
        b = (task // (h * T)) % B
        hd = task // (h * T * B)
        n = b * T + t  # the output's frame; the query's own is b * Tk + first + t
        d = np.empty(K, np.float32)
        pixel = np.empty(K, np.uint64)  # flat pixel index (frame row, y, x) of each match
        best = np.empty(k_agg, np.float32)
        where = np.empty(k_agg, np.int64)
        stack = np.empty(k_agg * Ch, np.float32)
        for x in range(w):
            here = (n * h + y) * w + x
            own = ((b * Tk + first + t) * h + y) * w + x
            for j in range(K):
                f = b * Tk + int(inds[b, hd, t, y, x, j, 0])
                yy = mirror(int(inds[b, hd, t, y, x, j, 1]), h)
                xx = mirror(int(inds[b, hd, t, y, x, j, 2]), w)
                pixel[j] = uint64((f * h + yy) * w + xx)
            if recompute:
                q0 = uint64(own * C2 + hd * dim)
                for j in range(K):
                    k0 = pixel[j] * uint64(C2) + uint64(split + hd * dim)
                    s = np.float32(0.0)
                    for c in range(dim):
                        diff = qk_flat[q0 + uint64(c)] - qk_flat[k0 + uint64(c)]
                        s += diff * diff
                    d[j] = s
            else:
                d[:] = dists[b, hd, t, y, x]
            # the k_agg smallest, ascending; a tie keeps the earlier match first (sorted
            # input, as the search's, costs one comparison per match)
            count = 0
            for j in range(K):
                dj = d[j]
                if count == k_agg and dj >= best[k_agg - 1]:
                    continue
                i = min(count, k_agg - 1)
                while i > 0 and best[i - 1] > dj:
                    best[i] = best[i - 1]
                    where[i] = where[i - 1]
                    i -= 1
                best[i] = dj
                where[i] = j
                count = min(count + 1, k_agg)
            total = np.float32(0.0)
            nearest = best[0]
            for r in range(count):
                best[r] = np.exp(-scale[hd] * (best[r] - nearest))
                total += best[r]
            # the rank-and-channel combination: Ch dot products of length count * Ch
            for r in range(count):
                weight = best[r] / total
                v0 = pixel[where[r]] * uint64(C) + uint64(hd * Ch)
                for ci in range(Ch):
                    stack[r * Ch + ci] = weight * v_flat[v0 + uint64(ci)]
            for co in range(Ch):
                m0 = uint64((hd * Ch + co) * k_agg * Ch)
                s = np.float32(0.0)
                for i in range(count * Ch):
                    s += mix_flat[m0 + uint64(i)] * stack[i]
                out_flat[here * C + hd * Ch + co] = s


def channels_last_array(x: Tensor) -> np.ndarray:
    """(N, C, h, w) tensor -> (N, h, w, C) C-contiguous float32 numpy array (no copy when x
    is already float32 channels-last)."""
    x = x.float().contiguous(memory_format=torch.channels_last)
    return x.permute(0, 2, 3, 1).numpy()


def aggregate(
    qk: Tensor,
    v: Tensor,
    inds: Tensor,
    dists: Tensor | None,
    scale: Tensor,
    mix: Tensor,
    first: int = 0,
) -> Tensor:
    """Attention output of the queries of T frames, fused (inference only, CPU).

    Args:
        qk: (B*Tk, 2*heads*qk, h, w), queries then keys; v: (B*Tk, heads*Ch, h, w); any
            memory format (channels-last float32 is read in place).
        inds: (B, heads, T, h, w, K, 3) whole-pixel match positions (frame in the Tk, y, x)
            of the queries of frames first..first+T-1 (all Tk frames: T = Tk, first = 0).
        dists: (B, heads, T, h, w, K) distances of those matches, or None to compute them.
        scale: (heads,) softmax temperature; mix: (heads, Ch, k_agg, Ch) learned combination.

    Returns:
        (B*T, heads*Ch, h, w) float32, channels-last.
    """
    B, _, T = inds.shape[:3]
    C, h, w = v.shape[1:]
    k_agg = min(mix.shape[2], inds.shape[-2])
    heads, ch = mix.shape[:2]
    flat_mix = mix[:, :, :k_agg].float().reshape(heads, ch, k_agg * ch).contiguous()
    out = torch.empty(B * T, C, h, w, memory_format=torch.channels_last)
    no_dists = np.zeros((0, 1, 1, 1, 1, 1), np.float32)
    _aggregate_kernel(
        channels_last_array(qk),
        channels_last_array(v),
        inds.contiguous().numpy(),
        no_dists if dists is None else dists.float().contiguous().numpy(),
        scale.float().contiguous().numpy(),
        flat_mix.numpy(),
        first,
        out.permute(0, 2, 3, 1).numpy(),
    )
    return out
