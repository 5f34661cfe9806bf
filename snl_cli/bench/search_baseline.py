"""The "unfold" baseline: an N3Net-style search over patch databases.

Both videos are unfolded into patch databases (C*ps^2 values per pixel, mirrored at the
borders); for each query frame (and head) the candidate patches are gathered into one
tensor (queries x candidates x C*ps^2) and their distances computed with one batched
matrix product, l2 as |q|^2 + |k|^2 - 2 q.k, then top-k. This is the approach the in-place
search is measured against. It returns the same dists and inds as `shifted_nls`: a
fractional position interpolates the 4 neighbouring database patches, which equals the
mirrored bilinear read everywhere except for a patch centre past the frame edge.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from snl_cli.search.spec import SearchSpec


def patch_database(x: Tensor, ps: int, heads: int) -> Tensor:
    """(B, T, C, H, W) -> (B, T, heads, C/heads*ps*ps, H*W): every pixel's patch, copied."""
    B, T, C, H, W = x.shape
    half = ps // 2
    padded = F.pad(x.reshape(B * T, C, H, W), (half, half, half, half), mode="reflect")
    return F.unfold(padded, ps).reshape(B, T, heads, (C // heads) * ps * ps, H * W)


def _positions(t: int, offsets: Tensor | None, spec: SearchSpec, b: int, like: Tensor):
    """Frames (N,), rows and columns (nQ, N) of every candidate of the queries of frame t."""
    ws, s1 = spec.ws, spec.stride1
    on = {"dtype": like.dtype, "device": like.device}
    qy = (torch.arange(spec.nH, **on) * spec.stride0).view(-1, 1)
    qx = (torch.arange(spec.nW, **on) * spec.stride0).view(1, -1)
    cell = (torch.arange(ws, **on) - ws // 2) * s1
    neighbours = spec.neighbours(t)
    frames, rows, cols = [], [], []
    for tp in spec.window(t):
        cy, cx = qy.expand(spec.nH, spec.nW), qx.expand(spec.nH, spec.nW)
        if tp != t and offsets is not None:
            slot = neighbours.index(tp)
            cy, cx = cy + offsets[b, t, slot, 0], cx + offsets[b, t, slot, 1]
        if spec.full_ws:
            cy = cy.clamp(*spec.center_bounds(spec.H))
            cx = cx.clamp(*spec.center_bounds(spec.W))
        py = cy.reshape(-1, 1, 1) + cell.view(1, ws, 1)
        px = cx.reshape(-1, 1, 1) + cell.view(1, 1, ws)
        rows.append(py.expand(-1, ws, ws).reshape(-1, ws * ws))
        cols.append(px.expand(-1, ws, ws).reshape(-1, ws * ws))
        frames.append(torch.full((ws * ws,), tp, device=like.device))
    return torch.cat(frames), torch.cat(rows, 1), torch.cat(cols, 1)


def _gather(db: Tensor, frames: Tensor, rows: Tensor, cols: Tensor, H: int, W: int) -> Tensor:
    """Candidate patches (nQ, N, D) from a database (T*H*W, D), bilinear between patches."""
    y0, x0 = rows.floor(), cols.floor()
    wy, wx = (rows - y0).to(db.dtype), (cols - x0).to(db.dtype)
    base = frames.view(1, -1) * (H * W)
    out = None
    for dy, weight_y in ((0, 1 - wy), (1, wy)):
        for dx, weight_x in ((0, 1 - wx), (1, wx)):
            weight = weight_y * weight_x
            if dy + dx and not bool((weight != 0).any()):
                continue  # integer positions: a single gather
            r = (y0.long() + dy).clamp(0, H - 1)
            c = (x0.long() + dx).clamp(0, W - 1)
            part = db.index_select(0, (base + r * W + c).reshape(-1)).view(*rows.shape, -1)
            if dy + dx == 0 and bool((weight == 1).all()):
                out = part
            elif out is None:
                out = part.mul_(weight.unsqueeze(-1))
            else:
                out.addcmul_(part, weight.unsqueeze(-1))
    return out


def unfold_search(
    q: Tensor,
    k: Tensor,
    offsets: Tensor | None,
    spec: SearchSpec,
    max_gather_bytes: int = 2 * 2**30,
) -> tuple[Tensor, Tensor]:
    """The same result as `snl_cli.search.shifted_nls` (dists, inds), the N3Net way.

    Args:
        q, k: (B, T, C, H, W); offsets: (B, T, Wn, 2, nH, nW) or None.
        spec: the search, as built by `snl_cli.search.api.make_spec`.
        max_gather_bytes: the queries of a frame are split into chunks whose gathered
            candidate patches stay below this size.

    Returns:
        dists (B, heads, T, nH, nW, K) and inds (B, heads, T, nH, nW, K, 3).
    """
    B, T, _, H, W = q.shape
    q_db, k_db = patch_database(q, spec.ps, spec.heads), patch_database(k, spec.ps, spec.heads)
    query_index = (
        torch.arange(spec.nH, device=q.device).view(-1, 1) * spec.stride0 * W
        + torch.arange(spec.nW, device=q.device).view(1, -1) * spec.stride0
    ).reshape(-1)
    n_queries = query_index.numel()
    row_bytes = spec.n_candidates * q_db.shape[3] * q.element_size()
    chunk = max(1, min(n_queries, max_gather_bytes // row_bytes))
    dists = q.new_empty(B, spec.heads, T, n_queries, spec.topk)
    inds = q.new_empty(B, spec.heads, T, n_queries, spec.topk, 3)
    for b in range(B):
        for h in range(spec.heads):
            # the key database of this head as (T*H*W, D) rows: one copied patch per pixel
            keys = k_db[b, :, h].permute(0, 2, 1).reshape(T * H * W, -1)
            for t in range(T):
                frames, rows, cols = _positions(t, offsets, spec, b, q)
                queries = q_db[b, t, h][:, query_index].T  # (nQ, D)
                for start in range(0, n_queries, chunk):
                    part = slice(start, start + chunk)
                    best, where = _top(keys, queries[part], frames, rows[part], cols[part], spec)
                    dists[b, h, t, part] = best
                    inds[b, h, t, part] = where
    shape = (B, spec.heads, T, spec.nH, spec.nW, spec.topk)
    return dists.view(shape), inds.view(*shape, 3)


def _top(
    keys: Tensor, queries: Tensor, frames: Tensor, rows: Tensor, cols: Tensor, spec: SearchSpec
) -> tuple[Tensor, Tensor]:
    """Top-k of a chunk of queries (nQ, D): dists (nQ, K) and positions (nQ, K, 3)."""
    H, W = spec.H, spec.W
    cand = _gather(keys, frames, rows, cols, H, W)  # (nQ, N, D): the copied candidates
    dist = torch.bmm(cand, queries.unsqueeze(-1)).squeeze(-1)
    if spec.dist == "l2":
        norms = torch.linalg.vector_norm(cand, dim=-1).square_()
        dist = norms.sub_(dist.mul_(2)).add_(queries.square().sum(1, keepdim=True))
    del cand
    if not spec.full_ws:
        outside = (rows < 0) | (rows > H - 1) | (cols < 0) | (cols > W - 1)
        dist = dist.masked_fill(outside, float("-inf") if spec.largest else float("inf"))
    best, order = dist.topk(spec.topk, dim=1, largest=spec.largest)
    where = torch.stack(
        [frames[order].to(rows.dtype), rows.gather(1, order), cols.gather(1, order)], -1
    )
    return best, where
