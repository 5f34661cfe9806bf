"""The "torch" backend: a plain, readable reference of every operator.

Built from differentiable torch ops only, so autograd gives every gradient; it materialises
all candidates and is meant for small inputs and for checking the fast backends.
"""

from __future__ import annotations

import torch
from torch import Tensor

from snl_cli.search.jit import mirror
from snl_cli.search.spec import SearchSpec


def unavailable_reason() -> str | None:
    return None


def bilinear(frames: Tensor, t: Tensor, y: Tensor, x: Tensor) -> Tensor:
    """Bilinear reads with mirrored corner indices.

    Args:
        frames: (B, C, T, H, W).
        t: integer frame per point, (B, N), long.
        y, x: fractional positions, (B, N).

    Returns:
        (B, C, N); differentiable in frames, y and x.
    """
    B, C, T, H, W = frames.shape
    flat = frames.reshape(B, C, T * H * W)
    y0f, x0f = torch.floor(y), torch.floor(x)
    wy, wx = y - y0f, x - x0f
    y0, x0 = y0f.long(), x0f.long()
    base = t * (H * W)
    out = 0
    for dy, weight_y in ((0, 1 - wy), (1, wy)):
        rows = mirror(y0 + dy, H)
        for dx, weight_x in ((0, 1 - wx), (1, wx)):
            cols = mirror(x0 + dx, W)
            index = (base + rows * W + cols).unsqueeze(1).expand(B, C, -1)
            out = out + (weight_y * weight_x).unsqueeze(1) * flat.gather(2, index)
    return out


def _query_grid(n: int, stride0: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    return torch.arange(n, device=device, dtype=dtype) * stride0


def _head_frames(v: Tensor, heads: int) -> Tensor:
    """(B, T, C, H, W) -> (B, heads, C/heads, T, H, W)."""
    B, T, C, H, W = v.shape
    return v.reshape(B, T, heads, C // heads, H, W).permute(0, 2, 3, 1, 4, 5).contiguous()


def search(q: Tensor, k: Tensor, offsets: Tensor | None, spec: SearchSpec) -> tuple[Tensor, Tensor]:
    """All candidates, exhaustively, then torch.topk; see `snl_cli.search.shifted_nls`."""
    B, _, _, H, W = q.shape
    nH, nW, ws, heads, Ch = spec.nH, spec.nW, spec.ws, spec.heads, spec.Ch
    dev, dtype = q.device, q.dtype
    qy = _query_grid(nH, spec.stride0, dev, dtype).view(nH, 1).expand(nH, nW)
    qx = _query_grid(nW, spec.stride0, dev, dtype).view(1, nW).expand(nH, nW)
    cell = (torch.arange(ws, device=dev, dtype=dtype) - ws // 2) * spec.stride1
    half = spec.ps // 2
    patch = range(-half, half + 1)
    rows_q = torch.arange(nH, device=dev) * spec.stride0
    cols_q = torch.arange(nW, device=dev) * spec.stride0
    k_frames = k.permute(0, 2, 1, 3, 4).contiguous()  # (B, C, T, H, W), reshaped per read
    bad = float("-inf") if spec.largest else float("inf")

    all_dists, all_inds = [], []
    for t in range(spec.T):
        neighbours = spec.neighbours(t)
        dists_t, inds_t = [], []
        for tp in spec.window(t):
            cy, cx = qy.expand(B, nH, nW), qx.expand(B, nH, nW)
            if tp != t and offsets is not None:
                slot = neighbours.index(tp)
                cy, cx = cy + offsets[:, t, slot, 0], cx + offsets[:, t, slot, 1]
            if spec.full_ws:
                cy = cy.clamp(*spec.center_bounds(H))
                cx = cx.clamp(*spec.center_bounds(W))
            py = (cy[..., None, None] + cell.view(ws, 1)).expand(B, nH, nW, ws, ws)
            px = (cx[..., None, None] + cell.view(1, ws)).expand(B, nH, nW, ws, ws)
            frame = torch.full((B, nH * nW * ws * ws), tp, device=dev, dtype=torch.long)
            dist = q.new_zeros(B, heads, nH, nW, ws, ws)
            for u in patch:
                for v in patch:
                    kv = bilinear(k_frames, frame, (py + u).reshape(B, -1), (px + v).reshape(B, -1))
                    kv = kv.reshape(B, heads, Ch, nH, nW, ws, ws)
                    rows, cols = mirror(rows_q + u, H), mirror(cols_q + v, W)
                    qv = q[:, t][:, :, rows][:, :, :, cols].reshape(B, heads, Ch, nH, nW, 1, 1)
                    term = (qv - kv) ** 2 if spec.dist == "l2" else qv * kv
                    dist = dist + term.sum(2)
            if not spec.full_ws:
                outside = (py < 0) | (py > H - 1) | (px < 0) | (px > W - 1)
                dist = dist.masked_fill(outside.unsqueeze(1), bad)
            pos = torch.stack([torch.full_like(py, tp), py, px], dim=-1)
            dists_t.append(dist.reshape(B, heads, nH, nW, ws * ws))
            inds_t.append(pos.reshape(B, 1, nH, nW, ws * ws, 3).expand(B, heads, -1, -1, -1, 3))
        dists_all, inds_all = torch.cat(dists_t, -1), torch.cat(inds_t, -2)
        best, order = torch.topk(dists_all, spec.topk, dim=-1, largest=spec.largest, sorted=True)
        picked = inds_all.gather(-2, order.unsqueeze(-1).expand(*order.shape, 3))
        all_dists.append(best)
        all_inds.append(picked)
    return torch.stack(all_dists, 2), torch.stack(all_inds, 2)


def gather(v: Tensor, inds: Tensor) -> Tensor:
    """Bilinear value of v at each match; see `snl_cli.search.gather`."""
    B, T, C = v.shape[:3]
    _, heads, _, nH, nW, K, _ = inds.shape
    frames = _head_frames(v, heads)
    out = []
    for h in range(heads):
        pos = inds[:, h].reshape(B, -1, 3)
        vals = bilinear(frames[:, h], pos[..., 0].round().long(), pos[..., 1], pos[..., 2])
        out.append(vals.reshape(B, C // heads, T, nH, nW, K).permute(0, 2, 5, 1, 3, 4))
    return torch.stack(out, 1)


def patch_sum(v: Tensor, weights: Tensor, inds: Tensor, ps: int, stride0: int) -> Tensor:
    """Weighted, folded, count-normalised patch sum; see `snl_cli.search.patch_sum`."""
    B, T, C, H, W = v.shape
    _, heads, _, nH, nW, K, _ = inds.shape
    Ch = C // heads
    frames = _head_frames(v, heads)
    rows_q = torch.arange(nH, device=v.device) * stride0
    cols_q = torch.arange(nW, device=v.device) * stride0
    half = ps // 2
    count = torch.zeros(H * W, dtype=v.dtype, device=v.device)
    offsets = [(u, d) for u in range(-half, half + 1) for d in range(-half, half + 1)]
    targets = []
    for u, d in offsets:
        rows, cols = rows_q + u, cols_q + d
        ok = ((rows >= 0) & (rows < H)).view(nH, 1) & ((cols >= 0) & (cols < W)).view(1, nW)
        target = (rows.view(nH, 1) * W + cols.view(1, nW))[ok]
        count = count.index_add(0, target, torch.ones_like(target, dtype=v.dtype))
        targets.append((ok, target))
    per_head = []
    for h in range(heads):
        pos = inds[:, h].reshape(B, -1, 3)
        frame = pos[..., 0].round().long()
        out = v.new_zeros(B, Ch, T, H * W)
        for (u, d), (ok, target) in zip(offsets, targets, strict=True):
            vals = bilinear(frames[:, h], frame, pos[..., 1] + u, pos[..., 2] + d)
            summed = (vals.reshape(B, Ch, T, nH, nW, K) * weights[:, h].unsqueeze(1)).sum(-1)
            out = out.index_add(-1, target, summed[..., ok])
        per_head.append(out)
    out = torch.stack(per_head, 1)
    normed = torch.where(count > 0, out / count.clamp_min(1), torch.zeros_like(out))
    return normed.reshape(B, heads * Ch, T, H, W).permute(0, 2, 1, 3, 4)


def accumulate_flows(fflow: Tensor, bflow: Tensor, wt: int, stride0: int) -> Tensor:
    """Chain flows step by step from each query; see `snl_cli.search.accumulate_flows`."""
    B, T, _, H, W = fflow.shape
    spec = SearchSpec(B=B, T=T, C=1, H=H, W=W, wt=wt, stride0=stride0)
    nH, nW = spec.nH, spec.nW
    qy = _query_grid(nH, stride0, fflow.device, fflow.dtype).view(nH, 1).expand(nH, nW)
    qx = _query_grid(nW, stride0, fflow.device, fflow.dtype).view(1, nW).expand(nH, nW)
    qy, qx = qy.reshape(1, -1).expand(B, -1), qx.reshape(1, -1).expand(B, -1)
    # (B, 2, T, H, W), made contiguous once: bilinear() reshapes it on every chain step
    fwd = fflow.permute(0, 2, 1, 3, 4).contiguous()
    bwd = bflow.permute(0, 2, 1, 3, 4).contiguous()
    per_t = []
    for t in range(T):
        slots = []
        for tp in spec.neighbours(t):
            flows, step = (fwd, 1) if tp > t else (bwd, -1)
            # the first step starts on whole pixels: its bilinear read is the grid's own value
            first = flows[:, :, t, ::stride0, ::stride0].reshape(B, 2, -1)
            y, x = qy + first[:, 0], qx + first[:, 1]
            for tau in range(t + step, tp, step):
                frame = torch.full_like(qy, tau, dtype=torch.long)
                delta = bilinear(flows, frame, y, x)
                y, x = y + delta[:, 0], x + delta[:, 1]
            slots.append(torch.stack([y - qy, x - qx], 1).reshape(B, 2, nH, nW))
        empty = fflow.new_zeros(B, 0, 2, nH, nW)
        per_t.append(torch.stack(slots, 1) if slots else empty)
    return torch.stack(per_t, 1)
