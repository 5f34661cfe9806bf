"""The "cpu" backend's whole-pixel fast paths against the torch reference: the "int" search
(integer-valued offsets, as STAN rounds them) and gather at integer and fractional matches."""

from __future__ import annotations

import bruteforce
import pytest
import torch
from search_cases import Case, as_numpy

from snl_cli.search import gather, shifted_nls
from snl_cli.search.api import make_spec
from snl_cli.search.backends import cpu
from snl_cli.search.backends.cpu import int_kernels

pytestmark = pytest.mark.skipif(
    cpu.unavailable_reason() is not None, reason=f"cpu backend: {cpu.unavailable_reason()}"
)


def integer_offsets(c: Case, scale: float, seed: int, dtype: torch.dtype) -> torch.Tensor:
    """Whole-pixel offsets (B, T, Wn, 2, nH, nW) of the case, some large enough to clamp."""
    q, _, _ = c.inputs()
    spec = make_spec(q, q, None, **c.kwargs())
    shape = (c.B, c.T, spec.Wn, 2, spec.nH, spec.nW)
    gen = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(shape, generator=gen, dtype=torch.float64)).round().to(dtype)


INT_CASES = [
    Case("int_base", T=3, H=8, W=9, params=dict(ws=3, ps=1, topk=5)),
    Case("int_ps3", T=3, H=7, W=8, seed=1, params=dict(ws=5, ps=3, topk=6)),
    Case("int_heads_prod", C=6, seed=2, params=dict(heads=3, ps=1, ws=5, topk=8, dist="prod")),
    Case("int_short_clip", T=2, H=6, W=7, seed=3, params=dict(wt=2, ws=3, ps=1, topk=7)),
    Case("int_stride0", H=9, W=8, seed=4, params=dict(stride0=2, ws=5, ps=3, topk=4)),
    Case("int_stride1", H=9, W=10, seed=5, params=dict(stride1=2, ws=3, ps=1, topk=5)),
    Case("int_open", H=6, W=7, seed=6, params=dict(full_ws=False, ws=5, ps=3, topk=9)),
    Case("int_open_prod", T=2, H=5, W=6, seed=7, params=dict(full_ws=False, ws=3, dist="prod")),
    # windows wider than the frame: mirrored reads make equal candidates (ties)
    Case("int_clamp_empty", H=5, W=7, seed=8, params=dict(ws=9, ps=1, topk=6)),
    # ws > LANES: a window row takes two vectors
    Case("int_wide", T=2, H=17, W=17, seed=9, params=dict(ws=17, ps=1, topk=12, stride0=3)),
    # K > 4 * ws: no threshold from the lanes' smallest keys, every candidate is ranked
    Case("int_many", T=3, H=5, W=5, seed=10, params=dict(ws=3, ps=1, topk=20)),
    # ... or, past 128 candidates, inserted into the top-k
    Case("int_many_wide", T=3, H=9, W=9, seed=12, params=dict(ws=7, ps=1, topk=30)),
    Case("int_batch", B=2, C=4, T=4, H=6, W=5, seed=11, params=dict(heads=2, ps=1, wt=1)),
]


def _compare(
    dists: torch.Tensor, inds: torch.Tensor, ref_d: torch.Tensor, ref_i: torch.Tensor
) -> None:
    tol = 1e-10 if dists.dtype == torch.float64 else 1e-5
    torch.testing.assert_close(dists, ref_d, rtol=tol, atol=tol)
    # random inputs have no ties among valid candidates: the same matches, in the same order
    finite = ref_d.isfinite().unsqueeze(-1).expand_as(ref_i)
    assert torch.equal(inds[finite], ref_i[finite])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("c", INT_CASES, ids=lambda c: c.name)
def test_int_search_equals_reference(c: Case, dtype: torch.dtype) -> None:
    q, k, _ = c.inputs(dtype)
    offsets = integer_offsets(c, scale=3.0, seed=c.seed + 100, dtype=dtype)
    if not c.kwargs()["full_ws"]:
        offsets[..., 0, 0] = 1e6  # a window far outside the frame: only invalid candidates
    spec = make_spec(q, k, offsets, **c.kwargs())
    assert cpu.forward_method(offsets, spec) == "int"
    dists, inds = shifted_nls(q, k, offsets, backend="cpu", **c.kwargs())
    if c.name == "int_clamp_empty":  # ties: any of the equal candidates may come first
        kw = {key: v for key, v in c.kwargs().items() if key != "topk"}
        everything = bruteforce.search_candidates(*map(as_numpy, (q, k, offsets)), **kw)
        tol = 1e-9 if dtype == torch.float64 else 2e-4
        bruteforce.check_search(
            as_numpy(dists), as_numpy(inds), *everything, largest=False, rtol=tol, atol=tol
        )
        return
    ref_d, ref_i = shifted_nls(q, k, offsets, backend="torch", **c.kwargs())
    _compare(dists, inds, ref_d, ref_i)


def test_int_windows_clamped_at_borders() -> None:
    """Offsets pushing every window past the frame: full_ws clamps them back inside."""
    c = Case("clamped", T=3, H=7, W=8, params=dict(ws=5, ps=1, topk=6))
    q, k, _ = c.inputs()
    spec = make_spec(q, k, None, **c.kwargs())
    offsets = torch.full((1, 3, spec.Wn, 2, spec.nH, spec.nW), 50.0, dtype=torch.float64)
    offsets[:, :, :, 1] = -50.0
    dists, inds = shifted_nls(q, k, offsets, backend="cpu", **c.kwargs())
    ref_d, ref_i = shifted_nls(q, k, offsets, backend="torch", **c.kwargs())
    _compare(dists, inds, ref_d, ref_i)
    neighbours = inds[..., 0] != torch.arange(3, dtype=inds.dtype).view(1, 1, 3, 1, 1, 1)
    assert (inds[..., 1][neighbours] >= 7 - 1 - 4).all()  # centre clamped to H-1-2, window 5
    assert (inds[..., 2][neighbours] <= 4).all()


def test_fractional_offsets_stay_direct() -> None:
    c = Case("fractional", offsets=True)
    q, _, offsets = c.inputs()
    assert cpu.forward_method(offsets, make_spec(q, q, offsets, **c.kwargs())) == "direct"
    offsets = offsets.round()
    offsets[0, 0, 0, 0, 0, 0] = float("nan")
    assert cpu.forward_method(offsets, make_spec(q, q, offsets, **c.kwargs())) == "direct"


@pytest.mark.parametrize("name", ["int_base", "int_open", "int_wide"])
def test_int_equals_direct(name: str) -> None:
    """The same problem through both forward paths of the backend."""
    c = next(c for c in INT_CASES if c.name == name)
    q, k, _ = c.inputs()
    offsets = integer_offsets(c, scale=2.0, seed=1, dtype=torch.float64)
    spec = make_spec(q, k, offsets, **c.kwargs())
    fast = cpu.search_forward(q, k, offsets, spec, method="int")
    slow = cpu.search_forward(q, k, offsets, spec, method="direct")
    _compare(*fast, *slow)


def test_int_gradients_equal_reference() -> None:
    """The backward (dists -> q, k; inds -> offsets) after an "int" forward."""
    c = Case("grad", T=3, C=4, H=6, W=7, params=dict(ws=3, ps=3, topk=4, heads=2))
    offsets = integer_offsets(c, scale=2.0, seed=5, dtype=torch.float64)
    grads = []
    for backend in ("cpu", "torch"):
        q, k, _ = c.inputs()
        q, k, off = q.requires_grad_(), k.requires_grad_(), offsets.clone().requires_grad_()
        dists, inds = shifted_nls(q, k, off, backend=backend, **c.kwargs())
        weight = torch.linspace(-1, 1, dists.numel(), dtype=dists.dtype).view(dists.shape)
        loss = (dists * weight).sum() + inds[..., 1:].sum()
        grads.append(torch.autograd.grad(loss, (q, k, off)))
    for name, got, want in zip(("q", "k", "offsets"), *grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10, msg=name)


def test_int_threads_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    c = INT_CASES[-1]
    q, k, _ = c.inputs()
    offsets = integer_offsets(c, scale=2.0, seed=3, dtype=torch.float64)
    serial = shifted_nls(q, k, offsets, backend="cpu", **c.kwargs())
    monkeypatch.setattr(cpu, "SERIAL_WORK", 0)
    parallel = shifted_nls(q, k, offsets, backend="cpu", **c.kwargs())
    for a, b in zip(serial, parallel, strict=True):
        assert torch.equal(a, b)


def test_layout_pad_covers_every_read() -> None:
    """kpad rows are long enough for the farthest vector load of any window position."""
    for ws, ps, s1 in [(1, 1, 1), (9, 1, 1), (19, 5, 1), (5, 3, 3)]:
        pad = int_kernels.layout_pad(ws, ps, s1)
        assert pad >= s1 * (ws // 2) + ps // 2 + 1  # leftmost read, full_ws
        assert pad >= s1 * (int_kernels.LANES - 1) + ps // 2  # leftmost read, open windows


def gather_inds(
    shape: tuple[int, ...], T: int, H: int, W: int, seed: int, fractional: float
) -> torch.Tensor:
    """(B, heads, T, nH, nW, K, 3) matches on whole pixels, a few outside the frame (mirrored
    reads), and a share `fractional` of them moved off the pixel grid."""
    gen = torch.Generator().manual_seed(seed)
    frames = torch.randint(0, T, shape, generator=gen).double()
    ys = torch.randint(-2, H + 2, shape, generator=gen).double()
    xs = torch.randint(-2, W + 2, shape, generator=gen).double()
    moved = torch.rand(shape, generator=gen) < fractional
    ys = ys + moved * (0.2 + 0.6 * torch.rand(shape, generator=gen, dtype=torch.float64))
    return torch.stack([frames, ys, xs], -1)


GATHER_DIMS = [  # (B, T, C, H, W, heads, nH, nW, K)
    (1, 3, 4, 6, 7, 2, 6, 7, 3),
    (2, 2, 6, 5, 4, 3, 3, 2, 2),
]


@pytest.mark.parametrize("fractional", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("dims", GATHER_DIMS)
def test_gather_equals_reference(dims: tuple[int, ...], dtype: torch.dtype, fractional: float):
    B, T, C, H, W, heads, nH, nW, K = dims
    gen = torch.Generator().manual_seed(4)
    v = torch.rand(B, T, C, H, W, generator=gen, dtype=torch.float64).to(dtype)
    inds = gather_inds((B, heads, T, nH, nW, K), T, H, W, seed=5, fractional=fractional)
    inds = inds.to(dtype)
    weight = torch.randn((B, heads, T, K, C // heads, nH, nW), generator=gen, dtype=dtype)
    results = []
    for backend in ("cpu", "torch"):
        vv, ii = v.clone().requires_grad_(), inds.clone().requires_grad_()
        out = gather(vv, ii, backend=backend)
        results.append((out, *torch.autograd.grad(out, (vv, ii), weight)))
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    for name, got, want in zip(("out", "v", "inds"), *results, strict=True):
        torch.testing.assert_close(got, want, rtol=tol, atol=tol, msg=name)


def test_gather_backward_without_position_gradient() -> None:
    """Inds that do not require grad (STAN's): only d loss / d v is computed."""
    B, T, C, H, W, heads, nH, nW, K = GATHER_DIMS[0]
    v = torch.rand(B, T, C, H, W, dtype=torch.float64, requires_grad=True)
    inds = gather_inds((B, heads, T, nH, nW, K), T, H, W, seed=6, fractional=0.0)
    out = gather(v, inds, backend="cpu")
    (grad,) = torch.autograd.grad(out.square().sum(), v)
    ref_v = v.detach().clone().requires_grad_()
    (want,) = torch.autograd.grad(gather(ref_v, inds, backend="torch").square().sum(), ref_v)
    torch.testing.assert_close(grad, want, rtol=1e-12, atol=1e-12)
    _, grad_pos = cpu.gather_backward(torch.ones_like(out), v, inds, need_pos=False)
    assert grad_pos is None


def test_gather_threads_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    B, T, C, H, W, heads, nH, nW, K = GATHER_DIMS[1]
    v = torch.rand(B, T, C, H, W, dtype=torch.float64)
    inds = gather_inds((B, heads, T, nH, nW, K), T, H, W, seed=7, fractional=0.5)

    def run() -> list[torch.Tensor]:
        vv, ii = v.clone().requires_grad_(), inds.clone().requires_grad_()
        out = gather(vv, ii, backend="cpu")
        return [out, *torch.autograd.grad(out.square().sum(), (vv, ii))]

    serial = run()
    monkeypatch.setattr(cpu, "SERIAL_WORK", 0)
    for a, b in zip(serial, run(), strict=True):
        assert torch.equal(a, b)
