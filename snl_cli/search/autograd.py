"""Autograd Functions shared by the compiled backends ("cpu", "emulate", "cuda").

A backend supplies an `ops` object with raw, non-differentiable forward and backward
functions; the Functions here wire them into autograd and add what is the same for every
backend: how a gradient on a match position reaches the offsets (through the full_ws clamp).

The ops interface (all tensors contiguous, on the device of the inputs):
    search_forward(q, k, offsets, spec) -> (dists, inds)
    search_backward(grad_dists, q, k, inds, spec, need_pos) -> (grad_q, grad_k, grad_pos | None)
    gather_forward(v, inds) -> out
    gather_backward(grad_out, v, inds, need_pos) -> (grad_v, grad_pos | None)
    patch_sum_forward(v, weights, inds, ps, stride0) -> out
    patch_sum_backward(grad_out, v, weights, inds, ps, stride0, need_pos)
        -> (grad_v, grad_weights, grad_pos | None)
grad_pos is d loss / d (y, x) of each match, (B, heads, T, nH, nW, K, 2).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from snl_cli.search.spec import SearchSpec


def offsets_grad(grad_pos: Tensor, inds: Tensor, offsets: Tensor, spec: SearchSpec) -> Tensor:
    """Route d loss / d match position to the offsets that placed each match.

    A match in neighbour frame t' of query (t, y, x) sits at clamp(q + offsets[t, slot]) + cell,
    so its position moves one-for-one with the offset unless the full_ws clamp is active.

    Args:
        grad_pos: (B, heads, T, nH, nW, K, 2).
        inds: (B, heads, T, nH, nW, K, 3).
        offsets: (B, T, Wn, 2, nH, nW).

    Returns:
        (B, T, Wn, 2, nH, nW).
    """
    grad = torch.zeros_like(offsets)
    frames = inds[..., 0].round().long()  # (B, heads, T, nH, nW, K)
    H, W = spec.H, spec.W
    q_y = torch.arange(spec.nH, device=offsets.device, dtype=offsets.dtype) * spec.stride0
    q_x = torch.arange(spec.nW, device=offsets.device, dtype=offsets.dtype) * spec.stride0
    for t in range(spec.T):
        for slot, tp in enumerate(spec.neighbours(t)):
            mask = (frames[:, :, t] == tp).unsqueeze(-1)  # (B, heads, nH, nW, K, 1)
            g = (grad_pos[:, :, t] * mask).sum(dim=(1, 4))  # (B, nH, nW, 2)
            g = g.permute(0, 3, 1, 2)  # (B, 2, nH, nW)
            if spec.full_ws:
                cy = q_y.view(-1, 1) + offsets[:, t, slot, 0]
                cx = q_x.view(1, -1) + offsets[:, t, slot, 1]
                lo_y, hi_y = spec.center_bounds(H)
                lo_x, hi_x = spec.center_bounds(W)
                free = torch.stack([(cy >= lo_y) & (cy <= hi_y), (cx >= lo_x) & (cx <= hi_x)], 1)
                g = g * free
            grad[:, t, slot] = g
    return grad


class ShiftedNLSFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, q: Tensor, k: Tensor, offsets: Tensor | None, spec: SearchSpec, ops: Any):
        q, k = q.contiguous(), k.contiguous()
        offsets = None if offsets is None else offsets.contiguous()
        dists, inds = ops.search_forward(q, k, offsets, spec)
        ctx.spec, ctx.ops = spec, ops
        ctx.save_for_backward(q, k, offsets, inds)
        return dists, inds

    @staticmethod
    def backward(ctx: Any, grad_dists: Tensor | None, grad_inds: Tensor | None):
        q, k, offsets, inds = ctx.saved_tensors
        spec, ops = ctx.spec, ctx.ops
        need_q, need_k, need_off = ctx.needs_input_grad[:3]
        need_pos = need_off and offsets is not None
        grad_q = grad_k = grad_off = None
        grad_pos = None
        if grad_dists is not None and (need_q or need_k or need_pos):
            grad_q, grad_k, grad_pos = ops.search_backward(
                grad_dists.contiguous(), q, k, inds, spec, need_pos
            )
        if need_pos:
            if grad_inds is not None:
                extra = grad_inds[..., 1:]
                grad_pos = extra if grad_pos is None else grad_pos + extra
            if grad_pos is not None:
                grad_off = offsets_grad(grad_pos, inds, offsets, spec)
        return (grad_q if need_q else None), (grad_k if need_k else None), grad_off, None, None


class GatherFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, v: Tensor, inds: Tensor, ops: Any) -> Tensor:
        v, inds = v.contiguous(), inds.contiguous()
        ctx.ops = ops
        ctx.save_for_backward(v, inds)
        return ops.gather_forward(v, inds)

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor):
        v, inds = ctx.saved_tensors
        need_v, need_inds = ctx.needs_input_grad[:2]
        grad_v, grad_pos = ctx.ops.gather_backward(grad_out.contiguous(), v, inds, need_inds)
        grad_inds = None
        if need_inds and grad_pos is not None:
            grad_inds = torch.cat([torch.zeros_like(grad_pos[..., :1]), grad_pos], -1)
        return (grad_v if need_v else None), grad_inds, None


class PatchSumFunction(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any, v: Tensor, weights: Tensor, inds: Tensor, ps: int, stride0: int, ops: Any
    ) -> Tensor:
        v, weights, inds = v.contiguous(), weights.contiguous(), inds.contiguous()
        ctx.ops, ctx.ps, ctx.stride0 = ops, ps, stride0
        ctx.save_for_backward(v, weights, inds)
        return ops.patch_sum_forward(v, weights, inds, ps, stride0)

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor):
        v, weights, inds = ctx.saved_tensors
        need_v, need_w, need_inds = ctx.needs_input_grad[:3]
        grad_v, grad_w, grad_pos = ctx.ops.patch_sum_backward(
            grad_out.contiguous(), v, weights, inds, ctx.ps, ctx.stride0, need_inds
        )
        grad_inds = None
        if need_inds and grad_pos is not None:
            grad_inds = torch.cat([torch.zeros_like(grad_pos[..., :1]), grad_pos], -1)
        return (
            grad_v if need_v else None,
            grad_w if need_w else None,
            grad_inds,
            None,
            None,
            None,
        )


def make_operators(ops: Any):
    """The backend entry points `search`, `gather` and `patch_sum` for a compiled backend,
    built on its raw `ops` (each backend adds its own `accumulate_flows`)."""

    def search(q: Tensor, k: Tensor, offsets: Tensor | None, spec: SearchSpec):
        return ShiftedNLSFunction.apply(q, k, offsets, spec, ops)

    def gather(v: Tensor, inds: Tensor) -> Tensor:
        return GatherFunction.apply(v, inds, ops)

    def patch_sum(v: Tensor, weights: Tensor, inds: Tensor, ps: int, stride0: int) -> Tensor:
        return PatchSumFunction.apply(v, weights, inds, ps, stride0, ops)

    return search, gather, patch_sum
