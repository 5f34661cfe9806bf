"""The one launcher of the kernels in kernels/*.cu, shared by the "cuda" and "emulate" backends.

Everything that is the same on a GPU and in the CPU emulation lives here: which entry point,
grid and block, the argument order and scalar types, output allocation (torch, on the
inputs' device) and the top-k strategy. A *runtime* supplies the rest through one method,
`kernel(name)`, returning an object called like a CuPy RawKernel, `kern(grid, block, args)`,
where args holds torch tensors (contiguous, on the runtime's device) and numpy scalars typed
exactly as the kernel parameters (np.int32 for int, np.float32/np.float64 for T). How a
tensor becomes a pointer, which stream runs the launch and how the sources are compiled is
the runtime's business (`cuda`: CuPy + NVRTC; `emulate`: g++).

Entry points are `snl_<op>_<pass>_<f32|f64>`; their parameter lists are the SNL_*_PARAMS
macros at the top of each .cu file, which the argument tuples below follow one for one.
"""

from __future__ import annotations

import importlib
import math
import re
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

from snl_cli.search.autograd import make_operators
from snl_cli.search.spec import SearchSpec

TOPK_MAX = 32
"""Largest topk kept by the search kernel's per-thread list (compiled in as SNL_TOPK_MAX);
above it every candidate is written and torch.topk selects."""

BLOCK = 128
"""Threads per block of every launch (1-D). No kernel uses shared memory or barriers."""

_MAX_GRID_X = 2**31 - 1
_SUFFIX = {torch.float32: "f32", torch.float64: "f64"}
_SCALAR = {torch.float32: np.float32, torch.float64: np.float64}
_ENTRY = re.compile(r'extern\s+"C"\s+__global__\s+void\s+(\w+)\s*\(')
_INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"\s*$', re.MULTILINE)


class Kernel(Protocol):
    """A compiled entry point, called like `cupy.RawKernel`."""

    def __call__(self, grid: tuple[int, ...], block: tuple[int, ...], args: tuple) -> None: ...


class Runtime(Protocol):
    """Where kernels come from and run: CuPy on a GPU, or the g++ emulation on the CPU."""

    def kernel(self, name: str) -> Kernel: ...


@cache
def kernels_dir() -> Path:
    """The folder holding kernels/*.cu: the package `snl_cli.kernels` (installed or editable)."""
    return Path(importlib.import_module("snl_cli.kernels").__file__).parent


@cache
def entry_points() -> dict[str, Path]:
    """Every `extern "C" __global__` kernel name, mapped to the .cu file defining it."""
    found: dict[str, Path] = {}
    for path in sorted(kernels_dir().glob("*.cu")):
        for name in _ENTRY.findall(path.read_text()):
            found[name] = path
    return found


def compile_defines() -> tuple[str, ...]:
    """Preprocessor definitions every build of the kernels gets (NVRTC and g++ alike)."""
    return (f"-DSNL_TOPK_MAX={TOPK_MAX}",)


def inline_source(path: Path, _seen: frozenset[Path] = frozenset()) -> str:
    """The text of a .cu file with its local `#include "..."` headers pasted in.

    CuPy keys its on-disk kernel cache on the source text, so headers must be part of it:
    otherwise an edited common.cuh would reuse a stale binary.
    """
    path = path.resolve()
    if path in _seen:
        return ""

    def paste(match: re.Match[str]) -> str:
        header = path.parent / match.group(1)
        return inline_source(header, _seen | {path}) if header.exists() else match.group(0)

    return _INCLUDE.sub(paste, path.read_text())


def _grid(n: int) -> tuple[int]:
    blocks = math.ceil(n / BLOCK)
    if blocks > _MAX_GRID_X:
        raise ValueError(f"launch of {n} threads exceeds the CUDA grid limit")
    return (blocks,)


class KernelOps:
    """The `ops` interface of `snl_cli.search.autograd`, implemented with kernel launches.

    Args:
        runtime: where kernels are compiled and run.
        topk_max: largest topk served by the fused per-thread top-k (at most TOPK_MAX);
            tests lower it to drive the write-all + torch.topk path.
    """

    def __init__(self, runtime: Runtime, topk_max: int = TOPK_MAX) -> None:
        if not 0 <= topk_max <= TOPK_MAX:
            raise ValueError(f"topk_max: expected 0..{TOPK_MAX}, got {topk_max}")
        self.runtime = runtime
        self.topk_max = topk_max

    def _launch(self, op: str, dtype: torch.dtype, n: int, args: tuple) -> None:
        if n == 0:  # a grid of 0 blocks is a CUDA launch error; there is nothing to do
            return
        kern = self.runtime.kernel(f"snl_{op}_{_SUFFIX[dtype]}")
        kern(_grid(n), (BLOCK,), args)

    # --- search -------------------------------------------------------------------------

    def search_forward(
        self, q: Tensor, k: Tensor, offsets: Tensor | None, spec: SearchSpec
    ) -> tuple[Tensor, Tensor]:
        B, T, C, H, W = q.shape
        heads, nH, nW, dtype = spec.heads, spec.nH, spec.nW, q.dtype
        fused = spec.topk <= self.topk_max
        K = spec.topk if fused else spec.n_candidates
        dists = q.new_empty(B, heads, T, nH, nW, K)
        inds = q.new_empty(B, heads, T, nH, nW, K, 3)
        (lo_y, hi_y), (lo_x, hi_x) = spec.center_bounds(H), spec.center_bounds(W)
        i32, real = np.int32, _SCALAR[dtype]
        args = (
            q, k, q if offsets is None else offsets, dists, inds,
            i32(B), i32(T), i32(C), i32(H), i32(W), i32(heads), i32(nH), i32(nW),
            i32(spec.wt), i32(spec.ws), i32(spec.ps), i32(spec.stride0), real(spec.stride1),
            i32(spec.full_ws), real(lo_y), real(hi_y), real(lo_x), real(hi_x),
            i32(spec.largest), i32(offsets is not None), i32(K), i32(not fused),
        )  # fmt: skip
        self._launch("search_fwd", dtype, B * heads * T * nH * nW, args)
        if fused:
            return dists, inds
        dists, order = torch.topk(dists, spec.topk, dim=-1, largest=spec.largest, sorted=True)
        inds = inds.gather(-2, order.unsqueeze(-1).expand(*order.shape, 3))
        return dists, inds

    def search_backward(
        self,
        grad_dists: Tensor,
        q: Tensor,
        k: Tensor,
        inds: Tensor,
        spec: SearchSpec,
        need_pos: bool,
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        B, T, C, H, W = q.shape
        K = inds.shape[-2]
        grad_q, grad_k = torch.zeros_like(q), torch.zeros_like(k)
        grad_pos = q.new_zeros(*inds.shape[:-1], 2) if need_pos else None
        i32 = np.int32
        args = (
            grad_dists, q, k, inds, grad_q, grad_k, grad_q if grad_pos is None else grad_pos,
            i32(B), i32(T), i32(C), i32(H), i32(W), i32(spec.heads), i32(spec.nH),
            i32(spec.nW), i32(spec.ps), i32(spec.stride0), i32(spec.full_ws),
            i32(spec.largest), i32(K), i32(need_pos),
        )  # fmt: skip
        self._launch("search_bwd", q.dtype, grad_dists.numel(), args)
        return grad_q, grad_k, grad_pos

    # --- gather -------------------------------------------------------------------------

    def gather_forward(self, v: Tensor, inds: Tensor) -> Tensor:
        B, T, C, H, W = v.shape
        _, heads, _, nH, nW, K, _ = inds.shape
        out = v.new_empty(B, heads, T, K, C // heads, nH, nW)
        i32 = np.int32
        args = (
            v, inds, out, i32(B), i32(T), i32(C), i32(H), i32(W), i32(heads), i32(nH),
            i32(nW), i32(K),
        )  # fmt: skip
        self._launch("gather_fwd", v.dtype, B * heads * T * K * nH * nW, args)
        return out

    def gather_backward(
        self, grad_out: Tensor, v: Tensor, inds: Tensor, need_pos: bool
    ) -> tuple[Tensor, Tensor | None]:
        B, T, C, H, W = v.shape
        _, heads, _, nH, nW, K, _ = inds.shape
        grad_v = torch.zeros_like(v)
        grad_pos = v.new_zeros(*inds.shape[:-1], 2) if need_pos else None
        i32 = np.int32
        args = (
            grad_out, v, inds, grad_v, grad_v if grad_pos is None else grad_pos,
            i32(B), i32(T), i32(C), i32(H), i32(W), i32(heads), i32(nH), i32(nW), i32(K),
            i32(need_pos),
        )  # fmt: skip
        self._launch("gather_bwd", v.dtype, B * heads * T * K * nH * nW, args)
        return grad_v, grad_pos

    # --- weighted patch sum -------------------------------------------------------------

    def patch_sum_forward(
        self, v: Tensor, weights: Tensor, inds: Tensor, ps: int, stride0: int
    ) -> Tensor:
        B, T, C, H, W = v.shape
        _, heads, _, nH, nW, K, _ = inds.shape
        out = torch.empty_like(v)
        i32 = np.int32
        args = (
            v, weights, inds, out, i32(B), i32(T), i32(C), i32(H), i32(W), i32(heads),
            i32(nH), i32(nW), i32(K), i32(ps), i32(stride0),
        )  # fmt: skip
        self._launch("patch_sum_fwd", v.dtype, v.numel(), args)
        return out

    def patch_sum_backward(
        self,
        grad_out: Tensor,
        v: Tensor,
        weights: Tensor,
        inds: Tensor,
        ps: int,
        stride0: int,
        need_pos: bool,
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        B, T, C, H, W = v.shape
        _, heads, _, nH, nW, K, _ = inds.shape
        grad_v = torch.zeros_like(v)
        grad_w = torch.zeros_like(weights)
        grad_pos = v.new_zeros(*inds.shape[:-1], 2) if need_pos else None
        i32 = np.int32
        args = (
            grad_out, v, weights, inds, grad_v, grad_w, grad_v if grad_pos is None else grad_pos,
            i32(B), i32(T), i32(C), i32(H), i32(W), i32(heads), i32(nH), i32(nW), i32(K),
            i32(ps), i32(stride0), i32(need_pos),
        )  # fmt: skip
        self._launch("patch_sum_bwd", v.dtype, weights.numel(), args)
        return grad_v, grad_w, grad_pos

    # --- flow accumulation (not part of the autograd ops interface) ---------------------

    def flows_forward(self, fflow: Tensor, bflow: Tensor, wt: int, stride0: int) -> Tensor:
        B, T, _, H, W = fflow.shape
        spec = SearchSpec(B=B, T=T, C=1, H=H, W=W, wt=wt, stride0=stride0)
        offsets = fflow.new_empty(B, T, spec.Wn, 2, spec.nH, spec.nW)
        i32 = np.int32
        args = (
            fflow, bflow, offsets, i32(B), i32(T), i32(H), i32(W), i32(wt), i32(spec.nH),
            i32(spec.nW), i32(stride0),
        )  # fmt: skip
        self._launch("flows_fwd", fflow.dtype, offsets.numel() // 2, args)
        return offsets

    def flows_backward(
        self, grad_offsets: Tensor, fflow: Tensor, bflow: Tensor, wt: int, stride0: int
    ) -> tuple[Tensor, Tensor]:
        B, T, _, H, W = fflow.shape
        spec = SearchSpec(B=B, T=T, C=1, H=H, W=W, wt=wt, stride0=stride0)
        grad_f, grad_b = torch.zeros_like(fflow), torch.zeros_like(bflow)
        i32 = np.int32
        args = (
            grad_offsets, fflow, bflow, grad_f, grad_b, i32(B), i32(T), i32(H), i32(W),
            i32(wt), i32(spec.nH), i32(spec.nW), i32(stride0),
        )  # fmt: skip
        self._launch("flows_bwd", fflow.dtype, grad_offsets.numel() // 2, args)
        return grad_f, grad_b


class FlowsFunction(torch.autograd.Function):
    """accumulate_flows through the flows_fwd / flows_bwd kernels."""

    @staticmethod
    def forward(ctx: Any, fflow: Tensor, bflow: Tensor, wt: int, stride0: int, ops: KernelOps):
        fflow, bflow = fflow.contiguous(), bflow.contiguous()
        ctx.wt, ctx.stride0, ctx.ops = wt, stride0, ops
        ctx.save_for_backward(fflow, bflow)
        return ops.flows_forward(fflow, bflow, wt, stride0)

    @staticmethod
    def backward(ctx: Any, grad_offsets: Tensor):
        fflow, bflow = ctx.saved_tensors
        grad_f, grad_b = ctx.ops.flows_backward(
            grad_offsets.contiguous(), fflow, bflow, ctx.wt, ctx.stride0
        )
        need_f, need_b = ctx.needs_input_grad[:2]
        return (grad_f if need_f else None), (grad_b if need_b else None), None, None, None


def make_backend(ops: KernelOps):
    """The four entry points of a backend module (`search`, `gather`, `patch_sum`,
    `accumulate_flows`), differentiable, built on kernel `ops`."""
    search, gather, patch_sum = make_operators(ops)

    def accumulate_flows(fflow: Tensor, bflow: Tensor, wt: int, stride0: int) -> Tensor:
        return FlowsFunction.apply(fflow, bflow, wt, stride0, ops)

    return search, gather, patch_sum, accumulate_flows
