"""The search kernels, run by the g++ emulation, against the "torch" reference: forward on
both top-k paths (fused per-thread list, write-all + torch.topk), gradients, gradcheck."""

from __future__ import annotations

from types import ModuleType, SimpleNamespace

import pytest
import torch
from search_cases import Case, case
from torch import Tensor

from snl_cli.search import shifted_nls
from snl_cli.search.api import make_spec
from snl_cli.search.backends import reference
from snl_cli.search.backends.launcher import TOPK_MAX
from snl_cli.search.jit import mirror

SHARED = "base prod open_borders stride0 offsets offsets_open offsets_heads_prod heads wt2"
SHARED += " wt2_offsets short_clip"
CASES = [
    *(case(name) for name in SHARED.split()),  # the search tests' problems, as they are
    # More matches than valid candidates near the corners: +inf ties; topk > TOPK_MAX.
    Case("open_inf", T=2, H=5, W=5, params=dict(ws=5, topk=40, full_ws=False)),
    Case("stride1_half", params=dict(ws=5, stride1=0.5)),
    Case("stride1_half_open", params=dict(ws=5, stride1=0.5, full_ws=False)),
    Case("single_frame", T=1, H=5, W=5, seed=8, params=dict(topk=3)),
    # Patches wider than the frame: indices bounce more than once in the mirror.
    Case("tiny_frame", T=2, H=3, W=2, seed=9, params=dict(ps=5, ws=5, topk=6)),
    Case("batch_even_ws", B=2, T=2, H=6, W=5, offsets=True, seed=10,
         params=dict(stride0=2, stride1=0.5, ws=4, full_ws=False)),
    Case("big_topk", offsets=True, seed=11, params=dict(ws=5, topk=TOPK_MAX + 8)),
]  # fmt: skip
FLOAT32 = ["base", "offsets_heads_prod", "stride1_half_open", "big_topk"]


def by_name(name: str) -> Case:
    return next(c for c in CASES if c.name == name)


def run_search(path: str, all_candidates: SimpleNamespace, q, k, offsets, kwargs: dict):
    """The emulated search by the fused path (public API) or the write-all path."""
    if path == "fused":
        return shifted_nls(q, k, offsets, backend="emulate", **kwargs)
    spec = make_spec(q, k, offsets, **kwargs)
    return all_candidates.search(q, k, offsets, spec)


def rescore(q: Tensor, k: Tensor, inds: Tensor, kwargs: dict) -> Tensor:
    """The distance of every match, recomputed from its (t', y, x) with the reference's reads."""
    B, T, C, H, W = q.shape
    heads, ps, stride0 = kwargs["heads"], kwargs["ps"], kwargs["stride0"]
    Ch, half = C // heads, ps // 2
    nH, nW, K = inds.shape[3:6]
    rows, cols = torch.arange(nH) * stride0, torch.arange(nW) * stride0
    dists = q.new_zeros(inds.shape[:-1])
    for h in range(heads):
        pos = inds[:, h].reshape(B, -1, 3)
        frames = k[:, :, h * Ch : (h + 1) * Ch].permute(0, 2, 1, 3, 4)
        for u in range(-half, half + 1):
            for v in range(-half, half + 1):
                kv = reference.bilinear(
                    frames, pos[..., 0].round().long(), pos[..., 1] + u, pos[..., 2] + v
                ).reshape(B, Ch, T, nH, nW, K)
                r, c = mirror(rows + u, H), mirror(cols + v, W)
                qv = q[:, :, h * Ch : (h + 1) * Ch][..., r, :][..., c].permute(0, 2, 1, 3, 4)
                qv = qv.unsqueeze(-1)
                term = (qv - kv) ** 2 if kwargs["dist"] == "l2" else qv * kv
                dists[:, h] += term.sum(1)
    if not kwargs["full_ws"]:
        y, x = inds[..., 1], inds[..., 2]
        outside = (y < 0) | (y > H - 1) | (x < 0) | (x > W - 1)
        bad = float("-inf") if kwargs["dist"] == "prod" else float("inf")
        dists = dists.masked_fill(outside, bad)
    return dists


def assert_matches(dists, inds, ref_dists, kwargs, q, k, rtol: float, atol: float) -> None:
    """Same sorted distances as the reference, and every match really scores its distance.

    Ties (mirrored duplicates, invalid candidates) may pick different matches, so positions
    are checked by re-scoring rather than against the reference's.
    """
    torch.testing.assert_close(dists, ref_dists, rtol=rtol, atol=atol)
    torch.testing.assert_close(rescore(q.double(), k.double(), inds.double(), kwargs),
                               dists.double(), rtol=rtol, atol=atol)  # fmt: skip
    frames = inds[..., 0]
    assert torch.equal(frames, frames.round()) and frames.min() >= 0
    assert frames.max() < q.shape[1]


def paths_for(case: Case) -> list[str]:
    return ["fused", "all"] if case.kwargs()["topk"] <= TOPK_MAX else ["all"]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_search_forward_matches_reference(emulate: ModuleType, all_candidates, case: Case) -> None:
    q, k, offsets = case.inputs(torch.float64)
    kwargs = case.kwargs()
    ref = shifted_nls(q, k, offsets, backend="torch", **kwargs)
    for path in ["fused", "all"]:
        dists, inds = run_search(path, all_candidates, q, k, offsets, kwargs)
        assert dists.shape == ref[0].shape and inds.shape == ref[1].shape
        assert_matches(dists, inds, ref[0], kwargs, q, k, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", FLOAT32)
def test_search_forward_float32(emulate: ModuleType, all_candidates, name: str) -> None:
    case = by_name(name)
    q, k, offsets = case.inputs(torch.float32)
    kwargs = case.kwargs()
    ref = shifted_nls(q, k, offsets, backend="torch", **kwargs)
    for path in paths_for(case):
        dists, inds = run_search(path, all_candidates, q, k, offsets, kwargs)
        assert dists.dtype == inds.dtype == torch.float32
        assert_matches(dists, inds, ref[0], kwargs, q, k, rtol=1e-5, atol=1e-5)


def test_fused_path_is_used_up_to_topk_max(emulate: ModuleType, monkeypatch) -> None:
    # The fused list must really serve topk <= TOPK_MAX: write-all would allocate every
    # candidate; spy on the kernel's K argument.
    seen = []
    kernel = emulate.runtime.kernel("snl_search_fwd_f64")
    original = type(kernel).__call__

    def spy(self, grid, block, args, **kw):
        seen.append((int(args[-2]), int(args[-1])))  # K, write_all
        return original(self, grid, block, args, **kw)

    monkeypatch.setattr(type(kernel), "__call__", spy)
    q, k, _ = by_name("base").inputs(torch.float64)
    shifted_nls(q, k, backend="emulate", ws=3, ps=1, topk=TOPK_MAX // 2)
    shifted_nls(q, k, backend="emulate", ws=7, ps=1, topk=TOPK_MAX + 1)
    assert seen == [(TOPK_MAX // 2, 0), (3 * 49, 1)]


# tiny_frame has exact finite ties (mirrored duplicates), so matches may differ by backend.
GRAD_CASES = [c for c in CASES if c.name != "tiny_frame"]


def _search_loss(dists: Tensor, inds: Tensor, seed: int) -> Tensor:
    """A loss that weighs every valid distance and match position differently.

    Invalid matches (infinite distance) are left out: they tie, so which of them a backend
    returns is arbitrary.
    """
    gen = torch.Generator().manual_seed(seed)
    finite = torch.isfinite(dists)
    w_d = torch.rand(dists.shape, generator=gen, dtype=dists.dtype) * finite
    w_p = torch.rand(inds[..., 1:].shape, generator=gen, dtype=inds.dtype) * finite[..., None]
    return (torch.where(finite, dists, 0) * w_d).sum() + (inds[..., 1:] * w_p).sum()


@pytest.mark.parametrize("case", GRAD_CASES, ids=lambda c: c.name)
def test_search_gradients_match_reference(emulate: ModuleType, all_candidates, case: Case) -> None:
    kwargs = case.kwargs()
    grads = {}
    for path in ["torch", *paths_for(case)]:
        q, k, offsets = case.inputs(torch.float64)
        leaves = [x for x in (q, k, offsets) if x is not None]
        for x in leaves:
            x.requires_grad_(True)
        if path == "torch":
            dists, inds = shifted_nls(q, k, offsets, backend="torch", **kwargs)
        else:
            dists, inds = run_search(path, all_candidates, q, k, offsets, kwargs)
        _search_loss(dists, inds, case.seed).backward()
        grads[path] = (inds.detach()[torch.isfinite(dists)], [x.grad for x in leaves])
    ref_inds, ref_grads = grads.pop("torch")
    for path, (inds, got) in grads.items():
        # Same valid matches (no finite ties in these cases), else gradients cannot agree.
        torch.testing.assert_close(inds, ref_inds, rtol=0, atol=1e-12)
        for name, g, r in zip(["q", "k", "offsets"], got, ref_grads, strict=False):
            torch.testing.assert_close(g, r, rtol=1e-9, atol=1e-9, msg=f"{path}: grad {name}")


@pytest.mark.parametrize(
    "params",
    [
        dict(ws=3, ps=3, topk=3),
        dict(ws=3, ps=1, topk=3, dist="prod", full_ws=False, stride1=0.5),
        dict(ws=2, ps=3, topk=2, heads=2, stride0=2, wt=2),
    ],
    ids=["l2", "prod_open", "heads_stride0_wt2"],
)
def test_search_gradcheck(emulate: ModuleType, params: dict) -> None:
    case = Case("gradcheck", T=3, C=2, H=5, W=5, offsets=True, seed=21, params=params)
    q, k, offsets = case.inputs(torch.float64)
    for x in (q, k, offsets):
        x.requires_grad_(True)
    kwargs = case.kwargs()

    def run(q, k, offsets):
        dists, inds = shifted_nls(q, k, offsets, backend="emulate", **kwargs)
        return dists, inds[..., 1:]

    assert torch.autograd.gradcheck(run, (q, k, offsets), eps=1e-6, atol=1e-6)


def test_search_gradcheck_write_all_path(emulate: ModuleType, all_candidates) -> None:
    case = Case("gradcheck_all", T=2, C=2, H=5, W=4, offsets=True, seed=22)
    q, k, offsets = case.inputs(torch.float64)
    for x in (q, k, offsets):
        x.requires_grad_(True)
    spec = make_spec(q, k, offsets, **case.kwargs())

    def run(q, k, offsets):
        dists, inds = all_candidates.search(q, k, offsets, spec)
        return dists, inds[..., 1:]

    assert torch.autograd.gradcheck(run, (q, k, offsets), eps=1e-6, atol=1e-6)
