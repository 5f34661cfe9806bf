"""patch_sum on every backend: the brute force (fold + coverage), gradcheck, torch's gradients."""

from __future__ import annotations

import bruteforce
import pytest
import torch
from search_cases import Backend, as_numpy
from test_gather import random_inds

from snl_cli.search import patch_sum

CASES = [  # (B, T, C, H, W, heads, K, ps, stride0)
    (1, 2, 2, 5, 6, 1, 3, 3, 1),
    (1, 3, 4, 6, 5, 2, 2, 3, 2),
    (2, 2, 2, 4, 5, 1, 2, 1, 1),
    (1, 2, 2, 6, 7, 1, 2, 5, 2),
    (1, 2, 2, 7, 7, 1, 1, 3, 4),  # stride0 > ps: pixels no patch covers are 0
]


def _inputs(dims: tuple[int, ...], dtype: torch.dtype, seed: int):
    B, T, C, H, W, heads, K, _, stride0 = dims
    nH, nW = -(-H // stride0), -(-W // stride0)
    gen = torch.Generator().manual_seed(seed)
    v = torch.rand(B, T, C, H, W, generator=gen, dtype=torch.float64)
    weights = torch.randn(B, heads, T, nH, nW, K, generator=gen, dtype=torch.float64)
    inds = random_inds((B, heads, T, nH, nW, K), T, H, W, seed=seed + 1)
    return v.to(dtype), weights.to(dtype), inds.to(dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("dims", CASES)
def test_matches_brute_force(backend: Backend, dims: tuple[int, ...], dtype: torch.dtype) -> None:
    ps, stride0 = dims[-2:]
    v, weights, inds = _inputs(dims, dtype, seed=1)
    out = patch_sum(
        backend.put(v), backend.put(weights), backend.put(inds), ps=ps, stride0=stride0,
        backend=backend.name,
    )  # fmt: skip
    assert out.shape == v.shape and out.dtype == dtype and out.device == backend.device
    want = bruteforce.patch_sum(as_numpy(v), as_numpy(weights), as_numpy(inds), ps, stride0)
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(out.cpu().double(), torch.from_numpy(want), rtol=tol, atol=tol)


GRAD_DIMS = [(1, 2, 2, 4, 5, 1, 2, 3, 1), (1, 2, 4, 5, 4, 2, 2, 3, 2)]


@pytest.mark.parametrize("dims", GRAD_DIMS)
def test_gradcheck(backend: Backend, dims: tuple[int, ...]) -> None:
    ps, stride0 = dims[-2:]
    inputs = tuple(backend.put(x).requires_grad_() for x in _inputs(dims, torch.float64, 3))

    def f(v, weights, inds):
        return patch_sum(v, weights, inds, ps=ps, stride0=stride0, backend=backend.name)

    # the torch reference is slow per probe: fast mode (random projections) keeps it quick
    assert torch.autograd.gradcheck(f, inputs, fast_mode=backend.name == "torch")


@pytest.mark.parametrize("dims", GRAD_DIMS)
def test_gradients_equal_reference(backend: Backend, dims: tuple[int, ...]) -> None:
    ps, stride0 = dims[-2:]
    base = _inputs(dims, torch.float64, 5)
    inputs = tuple(backend.put(x).requires_grad_() for x in base)
    out = patch_sum(*inputs, ps=ps, stride0=stride0, backend=backend.name)
    weight = torch.randn(out.shape, generator=torch.Generator().manual_seed(6), dtype=out.dtype)
    grads = torch.autograd.grad(out, inputs, weight.to(out.device))
    ref_inputs = tuple(x.clone().requires_grad_() for x in base)
    ref = patch_sum(*ref_inputs, ps=ps, stride0=stride0, backend="torch")
    want = torch.autograd.grad(ref, ref_inputs, weight)
    for name, got, expected in zip(("v", "weights", "inds"), grads, want, strict=True):
        torch.testing.assert_close(got.cpu(), expected, rtol=1e-10, atol=1e-10, msg=name)
