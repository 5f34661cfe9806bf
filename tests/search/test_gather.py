"""gather on every backend: the brute force, float64 gradcheck, gradients equal torch's."""

from __future__ import annotations

import bruteforce
import pytest
import torch
from search_cases import Backend, as_numpy

from snl_cli.search import gather


def random_inds(shape: tuple[int, ...], T: int, H: int, W: int, seed: int) -> torch.Tensor:
    """(B, heads, T, nH, nW, K, 3) matches anywhere in [-1.5, H+0.5) x [-1.5, W+0.5): past the
    borders too (mirrored reads), fractional parts in [0.2, 0.8] (away from the knots)."""
    gen = torch.Generator().manual_seed(seed)
    frames = torch.randint(0, T, shape, generator=gen).double()

    def coordinate(size: int) -> torch.Tensor:
        whole = torch.randint(-2, size + 1, shape, generator=gen).double()
        return whole + 0.2 + 0.6 * torch.rand(shape, generator=gen, dtype=torch.float64)

    return torch.stack([frames, coordinate(H), coordinate(W)], -1)


CASES = [  # (B, T, C, H, W, heads, nH, nW, K)
    (1, 3, 2, 5, 6, 1, 5, 6, 3),
    (2, 2, 4, 4, 5, 2, 2, 3, 2),
]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("dims", CASES)
def test_matches_brute_force(backend: Backend, dims: tuple[int, ...], dtype: torch.dtype) -> None:
    B, T, C, H, W, heads, nH, nW, K = dims
    v = torch.rand(B, T, C, H, W, generator=torch.Generator().manual_seed(1), dtype=dtype)
    inds = random_inds((B, heads, T, nH, nW, K), T, H, W, seed=2).to(dtype)
    out = gather(backend.put(v), backend.put(inds), backend=backend.name)
    assert out.shape == (B, heads, T, K, C // heads, nH, nW)
    assert out.dtype == dtype and out.device == backend.device
    want = bruteforce.gather(as_numpy(v), as_numpy(inds))
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(out.cpu().double(), torch.from_numpy(want), rtol=tol, atol=tol)


def test_integer_positions_read_pixels(backend: Backend) -> None:
    v = torch.arange(2 * 3 * 4 * 5, dtype=torch.float64).reshape(1, 2, 3, 4, 5)
    inds = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64).expand(1, 1, 2, 4, 5, 1, 3)
    out = gather(backend.put(v), backend.put(inds.contiguous()), backend=backend.name)
    assert (out.cpu() == v[0, 1, :, 2, 3].view(1, 1, 1, 1, 3, 1, 1)).all()


def _inputs(backend: Backend, seed: int = 3):
    B, T, C, H, W, heads, nH, nW, K = 1, 2, 4, 4, 4, 2, 2, 3, 2
    v = torch.rand(
        B, T, C, H, W, generator=torch.Generator().manual_seed(seed), dtype=torch.float64
    )
    inds = random_inds((B, heads, T, nH, nW, K), T, H, W, seed=seed + 1)
    return backend.put(v).requires_grad_(), backend.put(inds).requires_grad_()


def test_gradcheck(backend: Backend) -> None:
    v, inds = _inputs(backend)
    assert torch.autograd.gradcheck(lambda v, i: gather(v, i, backend=backend.name), (v, inds))


def test_gradients_equal_reference(backend: Backend) -> None:
    v, inds = _inputs(backend, seed=7)
    out = gather(v, inds, backend=backend.name)
    weight = torch.randn(out.shape, generator=torch.Generator().manual_seed(8), dtype=out.dtype)
    grads = torch.autograd.grad(out, (v, inds), weight.to(out.device))
    ref_v, ref_inds = (x.detach().cpu().requires_grad_() for x in (v, inds))
    ref = gather(ref_v, ref_inds, backend="torch")
    want = torch.autograd.grad(ref, (ref_v, ref_inds), weight)
    for name, got, expected in zip(("v", "inds"), grads, want, strict=True):
        torch.testing.assert_close(got.cpu(), expected, rtol=1e-10, atol=1e-10, msg=name)
