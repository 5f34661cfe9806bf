"""shifted_nls on every backend: the brute force, float64 gradcheck, gradients equal torch's."""

from __future__ import annotations

import bruteforce
import pytest
import torch
from search_cases import (
    FLOAT32_CASES,
    SEARCH_CASES,
    Backend,
    Case,
    as_numpy,
    brute_search,
    case,
    fractional_offsets,
)

from snl_cli.search import shifted_nls


def _run(backend: Backend, c: Case, dtype: torch.dtype):
    q, k, offsets = (backend.put(x) for x in c.inputs(dtype))
    return shifted_nls(q, k, offsets, backend=backend.name, **c.kwargs())


def _check(backend: Backend, name: str, dtype: torch.dtype) -> None:
    c = case(name)
    dists, inds = _run(backend, c, dtype)
    kw = c.kwargs()
    n_h, n_w = -(-c.H // kw["stride0"]), -(-c.W // kw["stride0"])
    assert dists.shape == (c.B, kw["heads"], c.T, n_h, n_w, kw["topk"])
    assert inds.shape == (*dists.shape, 3)
    assert dists.dtype == inds.dtype == dtype
    assert dists.device == inds.device == backend.device
    all_dists, all_pos = brute_search(name, dtype)
    tol = 1e-9 if dtype == torch.float64 else 2e-4
    bruteforce.check_search(
        as_numpy(dists), as_numpy(inds), all_dists, all_pos,
        largest=kw["dist"] == "prod", rtol=tol, atol=tol,
    )  # fmt: skip


@pytest.mark.parametrize("name", [c.name for c in SEARCH_CASES])
def test_matches_brute_force(backend: Backend, name: str) -> None:
    _check(backend, name, torch.float64)


@pytest.mark.parametrize("name", FLOAT32_CASES)
def test_matches_brute_force_float32(backend: Backend, name: str) -> None:
    _check(backend, name, torch.float32)


def test_window_frames_and_self_offset(backend: Backend) -> None:
    """Matches come from the sliding window only; the query's own frame ignores offsets."""
    c = Case("window", T=4, H=5, W=5, seed=3, params=dict(ws=5, topk=75, ps=1))
    q, k, _ = c.inputs()
    huge = torch.full((1, 4, 2, 2, 5, 5), 40.0, dtype=torch.float64)
    _, inds = shifted_nls(
        backend.put(q), backend.put(k), backend.put(huge), backend=backend.name, **c.kwargs()
    )
    frames = inds[..., 0].cpu()
    for t, allowed in enumerate([(0, 1, 2), (0, 1, 2), (1, 2, 3), (1, 2, 3)]):
        assert set(frames[:, :, t].unique().tolist()) == set(allowed)
    own = inds[..., 0] == torch.arange(4, device=inds.device).view(1, 1, 4, 1, 1, 1)
    ys = torch.arange(5, dtype=inds.dtype, device=inds.device).view(1, 1, 1, 5, 1, 1)
    # full_ws keeps the own-frame window inside the frame around the query itself
    own_y = inds[..., 1][own].view(1, 1, 4, 5, 5, 25)
    assert ((own_y - ys.expand(1, 1, 4, 5, 5, 1)).abs() <= 4).all()


GRAD_CASES = [
    Case("g_l2", T=2, H=4, W=5, offsets=True, seed=20, params=dict(topk=3)),
    Case("g_prod_open", T=2, H=4, W=5, offsets=True, seed=21,
         params=dict(topk=3, dist="prod", full_ws=False)),
    Case("g_heads_half", T=2, C=4, H=4, W=4, offsets=True, seed=22,
         params=dict(topk=3, heads=2, ps=1, stride1=0.5, ws=4)),
    Case("g_stride0_wt2", T=3, H=5, W=4, offsets=True, seed=23,
         params=dict(topk=4, stride0=2, wt=2)),
]  # fmt: skip


def _grad_inputs(c: Case, backend: Backend):
    q, k, _ = c.inputs()
    kw = c.kwargs()
    Wn = min(2 * kw["wt"] + 1, c.T) - 1
    n_h, n_w = -(-c.H // kw["stride0"]), -(-c.W // kw["stride0"])
    gen = torch.Generator().manual_seed(c.seed + 100)
    offsets = fractional_offsets((c.B, c.T, Wn, 2, n_h, n_w), gen, scale=1.0)
    return tuple(backend.put(x).requires_grad_() for x in (q, k, offsets))


def _differentiable(c: Case, name: str):
    def f(q, k, offsets):
        dists, inds = shifted_nls(q, k, offsets, backend=name, **c.kwargs())
        return dists.masked_fill(dists.isinf(), 0), inds[..., 1:]

    return f


@pytest.mark.parametrize("c", GRAD_CASES, ids=lambda c: c.name)
def test_gradcheck(backend: Backend, c: Case) -> None:
    inputs = _grad_inputs(c, backend)
    # the torch reference recomputes every candidate per probe: fast mode keeps it quick
    fast = backend.name == "torch"
    assert torch.autograd.gradcheck(_differentiable(c, backend.name), inputs, fast_mode=fast)


@pytest.mark.parametrize("c", GRAD_CASES, ids=lambda c: c.name)
def test_gradients_equal_reference(backend: Backend, c: Case) -> None:
    inputs = _grad_inputs(c, backend)
    outputs = _differentiable(c, backend.name)(*inputs)
    gen = torch.Generator().manual_seed(5)
    weights = [torch.randn(o.shape, generator=gen, dtype=o.dtype).to(o.device) for o in outputs]
    grads = torch.autograd.grad(outputs, inputs, weights)
    ref_inputs = tuple(x.detach().cpu().requires_grad_() for x in inputs)
    ref_outputs = _differentiable(c, "torch")(*ref_inputs)
    ref_grads = torch.autograd.grad(ref_outputs, ref_inputs, [w.cpu() for w in weights])
    for name, got, want in zip(("q", "k", "offsets"), grads, ref_grads, strict=True):
        torch.testing.assert_close(got.cpu(), want, rtol=1e-9, atol=1e-9, msg=name)


def test_no_offsets_gradients(backend: Backend) -> None:
    """Without offsets only q and k get gradients; l2 and prod both."""
    for dist in ("l2", "prod"):
        c = Case("plain", T=2, H=4, W=4, seed=30, params=dict(topk=3, dist=dist))
        q, k, _ = (backend.put(x) for x in c.inputs())
        q.requires_grad_()
        k.requires_grad_()
        dists, _ = shifted_nls(q, k, backend=backend.name, **c.kwargs())
        gq, gk = torch.autograd.grad(dists.sum(), (q, k))
        ref_q, ref_k = (x.detach().cpu().requires_grad_() for x in (q, k))
        ref, _ = shifted_nls(ref_q, ref_k, backend="torch", **c.kwargs())
        want_q, want_k = torch.autograd.grad(ref.sum(), (ref_q, ref_k))
        torch.testing.assert_close(gq.cpu(), want_q, rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(gk.cpu(), want_k, rtol=1e-9, atol=1e-9)
