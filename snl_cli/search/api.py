"""Argument checks and backend dispatch for the search operators: the only front door."""

from __future__ import annotations

from types import ModuleType

import torch
from torch import Tensor

from snl_cli.errors import BackendUnavailable
from snl_cli.search.backends import BACKENDS
from snl_cli.search.spec import DISTS, SearchSpec

FLOAT_DTYPES = (torch.float32, torch.float64)


def backend_name(name: str, device: torch.device) -> str:
    """The backend a name means for tensors on `device`: "auto" is "cuda" for CUDA tensors,
    else "cpu"; any other name is itself."""
    if name == "auto":
        return "cuda" if device.type == "cuda" else "cpu"
    return name


def pick_backend(name: str, device: torch.device) -> ModuleType:
    """Resolve a backend name ("auto" included) to its module, or raise why it cannot run."""
    name = backend_name(name, device)
    if name not in BACKENDS:
        raise ValueError(f"backend: unknown {name!r}; choose one of auto, {', '.join(BACKENDS)}")
    module = BACKENDS[name]
    if (reason := module.unavailable_reason()) is not None:
        raise BackendUnavailable(f"backend {name!r} cannot run here: {reason}")
    wants_cuda = name == "cuda"
    if wants_cuda != (device.type == "cuda"):
        where = "CUDA" if wants_cuda else "CPU"
        raise ValueError(f"backend: {name!r} needs {where} tensors, got tensors on {device}")
    return module


def available_backends(device: torch.device | str = "cpu") -> list[str]:
    """Names of the backends that can run tensors on `device` here."""
    device = torch.device(device)
    names = []
    for name in BACKENDS:
        try:
            pick_backend(name, device)
        except (BackendUnavailable, ValueError, ImportError):
            continue
        names.append(name)
    return names


def _check_video(name: str, x: object) -> Tensor:
    if not isinstance(x, Tensor):
        raise ValueError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 5:
        raise ValueError(f"{name}: expected 5 dims (B, T, C, H, W), got shape {tuple(x.shape)}")
    if x.dtype not in FLOAT_DTYPES:
        raise ValueError(f"{name}: expected float32 or float64, got {x.dtype}")
    return x


def _same(name: str, x: Tensor, ref: Tensor, ref_name: str) -> None:
    if x.device != ref.device:
        raise ValueError(f"{name}: on {x.device} but {ref_name} is on {ref.device}")
    if x.dtype != ref.dtype:
        raise ValueError(f"{name}: dtype {x.dtype} but {ref_name} is {ref.dtype}")


def _positive_int(name: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    return value


def make_spec(
    q: Tensor,
    k: Tensor,
    offsets: Tensor | None,
    *,
    ws: int,
    wt: int,
    ps: int,
    topk: int,
    stride0: int,
    stride1: float,
    dist: str,
    heads: int,
    full_ws: bool,
) -> SearchSpec:
    """Check every argument of `shifted_nls` and build its SearchSpec.

    Raises:
        ValueError: naming the argument and what was expected.
    """
    _check_video("q", q)
    _check_video("k", k)
    if k.shape != q.shape:
        raise ValueError(f"k: expected the shape of q {tuple(q.shape)}, got {tuple(k.shape)}")
    _same("k", k, q, "q")
    B, T, C, H, W = q.shape
    if H < 2 or W < 2:
        raise ValueError(f"q: expected H, W >= 2, got H={H}, W={W}")
    _positive_int("ws", ws)
    _positive_int("wt", wt, minimum=0)
    _positive_int("ps", ps)
    if ps % 2 == 0:
        raise ValueError(f"ps: expected an odd patch size, got {ps}")
    _positive_int("heads", heads)
    if C % heads:
        raise ValueError(f"heads: C={C} is not divisible by heads={heads}")
    _positive_int("stride0", stride0)
    if isinstance(stride1, bool) or not isinstance(stride1, int | float) or not stride1 > 0:
        raise ValueError(f"stride1: expected a number > 0, got {stride1!r}")
    if dist not in DISTS:
        raise ValueError(f"dist: expected one of {', '.join(DISTS)}, got {dist!r}")
    spec = SearchSpec(
        B=B, T=T, C=C, H=H, W=W, ws=ws, wt=wt, ps=ps, topk=1, stride0=stride0,
        stride1=float(stride1), dist=dist, heads=heads, full_ws=bool(full_ws),
    )  # fmt: skip
    _positive_int("topk", topk)
    if topk > spec.n_candidates:
        raise ValueError(
            f"topk: {topk} is more than the {spec.n_candidates} candidates "
            f"({spec.Wt} frames x ws^2={ws * ws})"
        )
    if offsets is not None:
        if not isinstance(offsets, Tensor):
            raise ValueError(f"offsets: expected a torch.Tensor or None, got {type(offsets)}")
        want = (B, T, spec.Wn, 2, spec.nH, spec.nW)
        if tuple(offsets.shape) != want:
            raise ValueError(
                f"offsets: expected shape (B, T, Wn, 2, nH, nW) = {want}, "
                f"got {tuple(offsets.shape)}"
            )
        _same("offsets", offsets, q, "q")
    return SearchSpec(**{**spec.__dict__, "topk": topk})


def shifted_nls(
    q: Tensor,
    k: Tensor,
    offsets: Tensor | None = None,
    *,
    ws: int = SearchSpec.ws,
    wt: int = SearchSpec.wt,
    ps: int = SearchSpec.ps,
    topk: int = SearchSpec.topk,
    stride0: int = SearchSpec.stride0,
    stride1: float = SearchSpec.stride1,
    dist: str = SearchSpec.dist,
    heads: int = SearchSpec.heads,
    full_ws: bool = SearchSpec.full_ws,
    queries: tuple[int, int] | None = None,
    backend: str = "auto",
) -> tuple[Tensor, Tensor]:
    """Shifted non-local search: the top-k patch matches of every query in nearby frames.

    Args:
        q: query video, (B, T, C, H, W), float32 or float64.
        k: key video, same shape, device and dtype as q.
        offsets: predicted displacement (dy, dx) of each query in each neighbour frame,
            (B, T, Wn, 2, nH, nW), or None for a plain non-local search.
        ws: side of the search grid; wt: temporal radius; ps: odd patch size;
        topk: matches kept; stride0: query grid stride; stride1: search grid spacing;
        dist: "l2" (smaller is better) or "prod" (larger is better); heads: channel groups
        searched independently; full_ws: clamp window centres so the window stays inside.
        queries: (first, stop) to search only the queries of frames first..stop-1, each in
            its window of the whole clip (streaming inference: one new frame at a time);
            offsets then hold those frames only, (B, stop-first, Wn, 2, nH, nW), and so do
            the outputs. Inference only (no gradients).
        backend: "auto", "torch", "cpu", "cuda" or "emulate".

    Returns:
        dists (B, heads, T, nH, nW, topk), best first; inds (B, heads, T, nH, nW, topk, 3),
        float absolute (t', y, x) of each match. Differentiable in q, k and offsets.
    """
    first, stop = (0, q.shape[1]) if queries is None else _check_queries(queries, q)
    some = None
    if offsets is not None and queries is not None:
        n = stop - first
        if not isinstance(offsets, Tensor) or offsets.dim() != 6 or offsets.shape[1] != n:
            shape = tuple(offsets.shape) if isinstance(offsets, Tensor) else type(offsets).__name__
            raise ValueError(f"offsets: expected (B, {n}, Wn, 2, nH, nW) for queries "
                             f"{queries}, got {shape}")  # fmt: skip
        some = _frames_at(offsets, first, q.shape[1])
    spec = make_spec(
        q, k, offsets if some is None else some, ws=ws, wt=wt, ps=ps, topk=topk,
        stride0=stride0, stride1=stride1, dist=dist, heads=heads, full_ws=full_ws,
    )  # fmt: skip
    module = pick_backend(backend, q.device)
    if queries is None:
        return module.search(q, k, offsets, spec)
    with torch.no_grad():
        found = getattr(module, "search_queries", lambda *_: None)(q, k, offsets, spec, first, stop)
        if found is None:  # this backend searches whole clips: search it, keep the frames
            dists, inds = module.search(q, k, some, spec)
            found = dists[:, :, first:stop], inds[:, :, first:stop]
    return found


def _check_queries(queries: object, q: Tensor) -> tuple[int, int]:
    T = q.shape[1] if isinstance(q, Tensor) and q.dim() == 5 else 0
    if (
        not isinstance(queries, tuple)
        or len(queries) != 2
        or not all(isinstance(x, int) and not isinstance(x, bool) for x in queries)
        or not 0 <= queries[0] < queries[1] <= T
    ):
        raise ValueError(f"queries: expected (first, stop) with 0 <= first < stop <= {T}, "
                         f"got {queries!r}")  # fmt: skip
    return queries


def _frames_at(x: Tensor, first: int, T: int) -> Tensor:
    """x (B, n, ...) placed at frames first..first+n-1 of a (B, T, ...) tensor of zeros."""
    full = x.new_zeros(x.shape[0], T, *x.shape[2:])
    full[:, first : first + x.shape[1]] = x
    return full


def _check_inds(inds: object, v: Tensor) -> Tensor:
    if not isinstance(inds, Tensor) or inds.dim() != 7 or inds.shape[-1] != 3:
        shape = tuple(inds.shape) if isinstance(inds, Tensor) else type(inds).__name__
        raise ValueError(f"inds: expected (B, heads, T, nH, nW, K, 3), got {shape}")
    if inds.shape[0] != v.shape[0] or inds.shape[2] != v.shape[1]:
        raise ValueError(
            f"inds: batch/time {tuple(inds.shape[:3:2])} do not match v's {tuple(v.shape[:2])}"
        )
    if v.shape[2] % inds.shape[1]:
        raise ValueError(f"inds: C={v.shape[2]} of v is not divisible by heads={inds.shape[1]}")
    _same("inds", inds, v, "v")
    if inds.numel():
        # a frame outside the clip would index outside v (compiled backends read raw memory)
        lo, hi = (float(x) for x in inds[..., 0].detach().round().aminmax())
        if not (lo >= 0 and hi <= v.shape[1] - 1):
            raise ValueError(
                f"inds: frame index (inds[..., 0]) expected in [0, {v.shape[1] - 1}], "
                f"got values in [{lo:g}, {hi:g}]"
            )
    return inds


def gather(v: Tensor, inds: Tensor, *, backend: str = "auto") -> Tensor:
    """Read v bilinearly at every match returned by the search.

    Args:
        v: values, (B, T, C, H, W).
        inds: absolute (t, y, x) per match, (B, heads, T, nH, nW, K, 3), float.

    Returns:
        (B, heads, T, K, C/heads, nH, nW); differentiable in v and inds.
    """
    _check_video("v", v)
    _check_inds(inds, v)
    return pick_backend(backend, v.device).gather(v, inds)


def patch_sum(
    v: Tensor,
    weights: Tensor,
    inds: Tensor,
    *,
    ps: int = 1,
    stride0: int = SearchSpec.stride0,
    backend: str = "auto",
) -> Tensor:
    """Weighted sum of the matched ps x ps patches, folded back with overlap normalisation.

    For each query at (t, y, x) and patch offset d: out[t, (y, x) + d] += sum_k w_k *
    v[t'_k, p_k + d] (v read bilinearly, mirrored at borders); output pixels outside the frame
    are skipped, and each pixel is divided by the number of query patches that cover it
    (0 where none does).

    Args:
        v: values, (B, T, C, H, W).
        weights: (B, heads, T, nH, nW, K).
        inds: (B, heads, T, nH, nW, K, 3) from `shifted_nls`.

    Returns:
        (B, T, C, H, W); differentiable in v, weights and inds.
    """
    _check_video("v", v)
    _check_inds(inds, v)
    _positive_int("ps", ps)
    if ps % 2 == 0:
        raise ValueError(f"ps: expected an odd patch size, got {ps}")
    _positive_int("stride0", stride0)
    if not isinstance(weights, Tensor) or tuple(weights.shape) != tuple(inds.shape[:-1]):
        shape = tuple(weights.shape) if isinstance(weights, Tensor) else type(weights).__name__
        raise ValueError(f"weights: expected shape {tuple(inds.shape[:-1])}, got {shape}")
    _same("weights", weights, v, "v")
    H, W = v.shape[-2:]
    n_h, n_w = -(-H // stride0), -(-W // stride0)
    if tuple(inds.shape[3:5]) != (n_h, n_w):
        raise ValueError(
            f"inds: query grid {tuple(inds.shape[3:5])} does not match v with "
            f"stride0={stride0}: expected {(n_h, n_w)}"
        )
    return pick_backend(backend, v.device).patch_sum(v, weights, inds, ps, stride0)


def accumulate_flows(
    fflow: Tensor,
    bflow: Tensor,
    wt: int,
    *,
    stride0: int = SearchSpec.stride0,
    backend: str = "auto",
) -> Tensor:
    """Chain frame-to-frame flows into the per-neighbour offsets `shifted_nls` takes.

    Args:
        fflow: (B, T, 2, H, W), (dy, dx) from frame t to t+1 on frame t's grid (last is 0).
        bflow: (B, T, 2, H, W), (dy, dx) from frame t to t-1 (first is 0).
        wt: temporal radius of the search.

    Returns:
        offsets (B, T, Wn, 2, nH, nW): for each query on the stride0 grid, the position in
        each neighbour frame (increasing time order) minus the query position, reached by
        following the flows step by step, each read bilinearly. Differentiable.
    """
    _check_video("fflow", fflow)
    _check_video("bflow", bflow)
    if fflow.shape[2] != 2:
        raise ValueError(f"fflow: expected 2 channels (dy, dx), got shape {tuple(fflow.shape)}")
    if bflow.shape != fflow.shape:
        raise ValueError(f"bflow: expected shape {tuple(fflow.shape)}, got {tuple(bflow.shape)}")
    _same("bflow", bflow, fflow, "fflow")
    _positive_int("wt", wt, minimum=0)
    _positive_int("stride0", stride0)
    if fflow.shape[3] < 2 or fflow.shape[4] < 2:
        raise ValueError(f"fflow: expected H, W >= 2, got shape {tuple(fflow.shape)}")
    return pick_backend(backend, fflow.device).accumulate_flows(fflow, bflow, wt, stride0)
