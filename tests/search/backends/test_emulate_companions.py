"""gather, patch_sum and accumulate_flows kernels, run by the g++ emulation, against the
"torch" reference: forward, gradients and float64 gradcheck."""

from __future__ import annotations

from types import ModuleType

import pytest
import torch
from torch import Tensor

from snl_cli.search import accumulate_flows, gather, patch_sum, shifted_nls


def matches(B: int, heads: int, T: int, nH: int, nW: int, K: int, H: int, W: int, seed: int):
    """Random (t', y, x): integer frames, positions spilling over the borders (mirrored reads),
    fractional parts in [0.2, 0.8] (away from the bilinear knots, for gradcheck)."""
    gen = torch.Generator().manual_seed(seed)
    shape = (B, heads, T, nH, nW, K)
    t = torch.randint(0, T, shape, generator=gen).double()
    y = (
        torch.randint(-2, H + 2, shape, generator=gen)
        + 0.2
        + 0.6 * torch.rand(shape, generator=gen)
    )
    x = (
        torch.randint(-2, W + 2, shape, generator=gen)
        + 0.2
        + 0.6 * torch.rand(shape, generator=gen)
    )
    return torch.stack([t, y.double(), x.double()], -1)


def video(B: int, T: int, C: int, H: int, W: int, seed: int) -> Tensor:
    return torch.rand(
        B, T, C, H, W, generator=torch.Generator().manual_seed(seed), dtype=torch.float64
    )


def grads_of(fn, inputs: list[Tensor], seed: int) -> tuple[Tensor, list[Tensor]]:
    """Output and input gradients of a random linear loss on fn(*inputs)."""
    leaves = [x.detach().clone().requires_grad_(True) for x in inputs]
    out = fn(*leaves)
    weight = torch.rand(out.shape, generator=torch.Generator().manual_seed(seed), dtype=out.dtype)
    if out.requires_grad:  # the reference's empty outputs (no neighbours) are constants
        (out * weight).sum().backward()
    return out.detach(), [torch.zeros_like(x) if x.grad is None else x.grad for x in leaves]


def assert_same(fn_emulate, fn_reference, inputs: list[Tensor], seed: int, tol: float) -> None:
    out, grads = grads_of(fn_emulate, inputs, seed)
    ref_out, ref_grads = grads_of(fn_reference, inputs, seed)
    torch.testing.assert_close(out, ref_out, rtol=tol, atol=tol)
    for n, (g, r) in enumerate(zip(grads, ref_grads, strict=True)):
        torch.testing.assert_close(g, r, rtol=tol, atol=tol, msg=f"gradient of input {n}")


GATHER = [
    dict(B=1, T=3, C=2, H=5, W=6, heads=1, K=3, nH=5, nW=6),
    dict(B=2, T=2, C=4, H=4, W=5, heads=2, K=2, nH=2, nW=3),
]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("shape", GATHER, ids=["plain", "heads_batch"])
def test_gather_matches_reference(emulate: ModuleType, shape: dict, dtype: torch.dtype) -> None:
    s = shape
    v = video(s["B"], s["T"], s["C"], s["H"], s["W"], seed=1).to(dtype)
    inds = matches(s["B"], s["heads"], s["T"], s["nH"], s["nW"], s["K"], s["H"], s["W"], 2)
    tol = 1e-10 if dtype == torch.float64 else 1e-5
    assert_same(
        lambda v, i: gather(v, i, backend="emulate"),
        lambda v, i: gather(v, i, backend="torch"),
        [v, inds.to(dtype)],
        seed=3,
        tol=tol,
    )


def test_gather_of_search_matches(emulate: ModuleType) -> None:
    q, k = video(1, 3, 2, 6, 5, seed=4), video(1, 3, 2, 6, 5, seed=5)
    _, inds = shifted_nls(q, k, ws=3, ps=1, topk=4, stride1=0.5, backend="emulate")
    v = video(1, 3, 2, 6, 5, seed=6)
    torch.testing.assert_close(gather(v, inds, backend="emulate"), gather(v, inds, backend="torch"))


def test_gather_gradcheck(emulate: ModuleType) -> None:
    v = video(1, 2, 2, 4, 5, seed=7).requires_grad_(True)
    inds = matches(1, 2, 2, 2, 3, 2, 4, 5, seed=8).requires_grad_(True)
    run = lambda v, i: gather(v, i, backend="emulate")  # noqa: E731
    assert torch.autograd.gradcheck(run, (v, inds), eps=1e-6, atol=1e-6)


PATCH_SUM = [
    dict(ps=1, stride0=1, heads=1, C=2, K=3),
    dict(ps=3, stride0=1, heads=2, C=4, K=2),
    dict(ps=3, stride0=2, heads=1, C=2, K=2),
    dict(ps=1, stride0=2, heads=1, C=1, K=2),  # stride0 > ps: uncovered pixels stay 0
    dict(ps=5, stride0=3, heads=1, C=1, K=1),
]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("p", PATCH_SUM, ids=lambda p: "ps{ps}_s{stride0}_h{heads}".format(**p))
def test_patch_sum_matches_reference(emulate: ModuleType, p: dict, dtype: torch.dtype) -> None:
    B, T, H, W = 2, 3, 6, 5
    nH, nW = -(-H // p["stride0"]), -(-W // p["stride0"])
    v = video(B, T, p["C"], H, W, seed=10).to(dtype)
    inds = matches(B, p["heads"], T, nH, nW, p["K"], H, W, seed=11).to(dtype)
    weights = torch.randn(inds.shape[:-1], generator=torch.Generator().manual_seed(12), dtype=dtype)
    weights[..., 0] = 0  # a zero weight still needs its gradient
    kw = dict(ps=p["ps"], stride0=p["stride0"])
    tol = 1e-10 if dtype == torch.float64 else 1e-5
    assert_same(
        lambda v, w, i: patch_sum(v, w, i, backend="emulate", **kw),
        lambda v, w, i: patch_sum(v, w, i, backend="torch", **kw),
        [v, weights, inds],
        seed=13,
        tol=tol,
    )


def test_patch_sum_gradcheck(emulate: ModuleType) -> None:
    B, T, C, H, W, K = 1, 2, 2, 4, 5, 2
    v = video(B, T, C, H, W, seed=14).requires_grad_(True)
    inds = matches(B, 1, T, 2, 3, K, H, W, seed=15).requires_grad_(True)
    weights = torch.randn(inds.shape[:-1], generator=torch.Generator().manual_seed(16),
                          dtype=torch.float64, requires_grad=True)  # fmt: skip
    run = lambda v, w, i: patch_sum(v, w, i, ps=3, stride0=2, backend="emulate")  # noqa: E731
    assert torch.autograd.gradcheck(run, (v, weights, inds), eps=1e-6, atol=1e-6)


FLOWS = [
    dict(T=4, wt=1, stride0=1),
    dict(T=5, wt=2, stride0=2),
    dict(T=2, wt=2, stride0=1),  # T < 2*wt+1: the window is the whole clip
    dict(T=1, wt=1, stride0=1),  # no neighbours: empty offsets
]


def flows(T: int, H: int, W: int, seed: int) -> tuple[Tensor, Tensor]:
    gen = torch.Generator().manual_seed(seed)
    fflow = torch.randn(2, T, 2, H, W, generator=gen, dtype=torch.float64) * 1.5
    bflow = torch.randn(2, T, 2, H, W, generator=gen, dtype=torch.float64) * 1.5
    return fflow, bflow


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("p", FLOWS, ids=lambda p: "T{T}_wt{wt}_s{stride0}".format(**p))
def test_accumulate_flows_matches_reference(emulate: ModuleType, p: dict, dtype) -> None:
    fflow, bflow = flows(p["T"], 6, 7, seed=20)
    kw = dict(wt=p["wt"], stride0=p["stride0"])
    tol = 1e-10 if dtype == torch.float64 else 1e-4
    assert_same(
        lambda f, b: accumulate_flows(f, b, backend="emulate", **kw),
        lambda f, b: accumulate_flows(f, b, backend="torch", **kw),
        [fflow.to(dtype), bflow.to(dtype)],
        seed=21,
        tol=tol,
    )


def test_accumulate_flows_gradcheck(emulate: ModuleType) -> None:
    fflow, bflow = flows(5, 4, 5, seed=22)
    fflow, bflow = fflow[:1].requires_grad_(True), bflow[:1].requires_grad_(True)
    run = lambda f, b: accumulate_flows(f, b, wt=2, stride0=2, backend="emulate")  # noqa: E731
    assert torch.autograd.gradcheck(run, (fflow, bflow), eps=1e-6, atol=1e-6)


def test_flows_feed_the_search_end_to_end(emulate: ModuleType) -> None:
    # offsets from the flows, search, gather: gradients reach the flows through both kernels.
    fflow, bflow = flows(3, 6, 5, seed=23)
    q, k = video(2, 3, 2, 6, 5, seed=24), video(2, 3, 2, 6, 5, seed=25)
    results = {}
    for backend in ("emulate", "torch"):
        f, b = fflow.clone().requires_grad_(True), bflow.clone().requires_grad_(True)
        offsets = accumulate_flows(f, b, wt=1, backend=backend)
        dists, inds = shifted_nls(q, k, offsets, ws=3, ps=1, topk=2, backend=backend)
        loss = dists.sum() + gather(k, inds, backend=backend).sum()
        loss.backward()
        results[backend] = (dists.detach(), f.grad, b.grad)
    for got, ref in zip(results["emulate"], results["torch"], strict=True):
        torch.testing.assert_close(got, ref, rtol=1e-9, atol=1e-9)
