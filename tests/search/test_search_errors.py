"""Bad input to the search operators: a ValueError that names the argument and what it wanted."""

from __future__ import annotations

import pytest
import torch

from snl_cli.errors import BackendUnavailable
from snl_cli.search import accumulate_flows, gather, patch_sum, pick_backend, shifted_nls


def _video(*shape: int, dtype: torch.dtype = torch.float32, device: str = "cpu") -> torch.Tensor:
    return torch.zeros(shape or (1, 3, 4, 6, 6), dtype=dtype, device=device)


Q = _video()
SEARCH_ERRORS = [
    (dict(q=_video(3, 4, 6, 6)), "q: expected 5 dims"),
    (dict(q=Q.numpy()), "q: expected a torch.Tensor"),
    (dict(q=Q.long(), k=Q.long()), "q: expected float32 or float64"),
    (dict(k=_video(1, 3, 4, 6, 7)), "k: expected the shape of q"),
    (dict(k=_video(dtype=torch.float64)), "k: dtype torch.float64 but q is torch.float32"),
    (dict(k=_video(device="meta")), "k: on meta but q is on cpu"),
    (dict(q=_video(1, 3, 4, 1, 6), k=_video(1, 3, 4, 1, 6)), "q: expected H, W >= 2"),
    (dict(ps=4), "ps: expected an odd patch size, got 4"),
    (dict(ps=0), "ps: expected an integer >= 1"),
    (dict(ws=0), "ws: expected an integer >= 1"),
    (dict(ws=2.0), "ws: expected an integer"),
    (dict(wt=-1), "wt: expected an integer >= 0"),
    (dict(heads=3), "heads: C=4 is not divisible by heads=3"),
    (dict(stride0=0), "stride0: expected an integer >= 1"),
    (dict(stride1=0.0), "stride1: expected a number > 0"),
    (dict(dist="cosine"), "dist: expected one of l2, prod"),
    (dict(topk=28, ws=3), "topk: 28 is more than the 27 candidates"),
    (dict(topk=0), "topk: expected an integer >= 1"),
    (dict(offsets=torch.zeros(1, 3, 2, 2, 6, 5)), "offsets: expected shape (B, T, Wn, 2, nH, nW)"),
    (dict(offsets=torch.zeros(1, 3, 2, 2, 6, 6, dtype=torch.float64)), "offsets: dtype"),
    (dict(offsets=[0.0]), "offsets: expected a torch.Tensor or None"),
    (dict(backend="gpu"), "backend: unknown 'gpu'"),
]


@pytest.mark.parametrize(("change", "message"), SEARCH_ERRORS, ids=[m for _, m in SEARCH_ERRORS])
def test_search_rejects(change: dict, message: str) -> None:
    args = dict(q=Q, k=Q, offsets=None, ws=3, ps=3, topk=4, backend="torch")
    args.update(change)
    q, k, offsets = args.pop("q"), args.pop("k"), args.pop("offsets")
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        shifted_nls(q, k, offsets, **args)


def test_cuda_backend_needs_cuda_tensors() -> None:
    """On CPU tensors "cuda" is refused: unavailable here, or a ValueError on the device."""
    with pytest.raises((ValueError, BackendUnavailable)):
        pick_backend("cuda", torch.device("cpu"))


V = _video(1, 3, 4, 6, 6, dtype=torch.float64)
INDS = torch.zeros(1, 2, 3, 6, 6, 2, 3, dtype=torch.float64)
WEIGHTS = torch.zeros(1, 2, 3, 6, 6, 2, dtype=torch.float64)
GATHER_ERRORS = [
    (dict(v=V[0]), "v: expected 5 dims"),
    (dict(inds=INDS[..., :2]), r"inds: expected \(B, heads, T, nH, nW, K, 3\)"),
    (dict(inds=INDS[0]), r"inds: expected \(B, heads, T, nH, nW, K, 3\)"),
    (dict(inds=INDS[:, :, :2]), "inds: batch/time"),
    (dict(inds=torch.zeros(1, 3, 3, 6, 6, 2, 3, dtype=torch.float64)), "not divisible by heads=3"),
    (dict(inds=INDS.float()), "inds: dtype"),
    (dict(inds=INDS + torch.tensor([3.0, 0, 0], dtype=torch.float64)), r"inds: frame index"),
    (dict(inds=INDS - torch.tensor([1.0, 0, 0], dtype=torch.float64)), r"inds: frame index"),
]


@pytest.mark.parametrize(("change", "message"), GATHER_ERRORS, ids=[m for _, m in GATHER_ERRORS])
@pytest.mark.parametrize("operator", ["gather", "patch_sum"])
def test_gather_and_patch_sum_reject(change: dict, message: str, operator: str) -> None:
    args = dict(v=V, inds=INDS)
    args.update(change)
    with pytest.raises(ValueError, match=message):
        if operator == "gather":
            gather(args["v"], args["inds"], backend="torch")
        else:
            weights = torch.zeros(args["inds"].shape[:-1], dtype=args["v"].dtype)
            patch_sum(args["v"], weights, args["inds"], ps=3, backend="torch")


PATCH_SUM_ERRORS = [
    (dict(weights=WEIGHTS[..., :1]), "weights: expected shape"),
    (dict(weights=WEIGHTS.float()), "weights: dtype"),
    (dict(ps=2), "ps: expected an odd patch size"),
    (dict(stride0=2), r"inds: query grid \(6, 6\) does not match v with stride0=2"),
    (dict(stride0=0), "stride0: expected an integer >= 1"),
]


@pytest.mark.parametrize(
    ("change", "message"), PATCH_SUM_ERRORS, ids=[m for _, m in PATCH_SUM_ERRORS]
)
def test_patch_sum_rejects(change: dict, message: str) -> None:
    args = dict(v=V, weights=WEIGHTS, inds=INDS, ps=3, stride0=1)
    args.update(change)
    with pytest.raises(ValueError, match=message):
        patch_sum(args.pop("v"), args.pop("weights"), args.pop("inds"), **args, backend="torch")


FLOW = torch.zeros(1, 3, 2, 5, 5)
FLOW_ERRORS = [
    (dict(fflow=torch.zeros(1, 3, 3, 5, 5)), "fflow: expected 2 channels"),
    (dict(fflow=FLOW[0]), "fflow: expected 5 dims"),
    (dict(bflow=FLOW[:, :2]), "bflow: expected shape"),
    (dict(bflow=FLOW.double()), "bflow: dtype"),
    (dict(wt=-1), "wt: expected an integer >= 0"),
    (
        dict(fflow=torch.zeros(1, 3, 2, 1, 5), bflow=torch.zeros(1, 3, 2, 1, 5)),
        "fflow: expected H, W >= 2",
    ),
]


@pytest.mark.parametrize(("change", "message"), FLOW_ERRORS, ids=[m for _, m in FLOW_ERRORS])
def test_accumulate_flows_rejects(change: dict, message: str) -> None:
    args = dict(fflow=FLOW, bflow=FLOW, wt=1)
    args.update(change)
    with pytest.raises(ValueError, match=message):
        accumulate_flows(args["fflow"], args["bflow"], args["wt"], backend="torch")


@pytest.mark.parametrize("name", ["cpu", "torch"])
def test_backends_check_the_same(name: str) -> None:
    """The checks run before dispatch, so every backend refuses alike."""
    with pytest.raises(ValueError, match="ps: expected an odd patch size"):
        shifted_nls(Q, Q, ps=2, backend=name)
