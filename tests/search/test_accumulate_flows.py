"""accumulate_flows on every backend: the brute force, gradcheck, torch's gradients."""

from __future__ import annotations

import bruteforce
import pytest
import torch
from search_cases import Backend, as_numpy

from snl_cli.search import accumulate_flows, shifted_nls

CASES = [  # (B, T, H, W, wt, stride0)
    (1, 5, 5, 6, 2, 1),
    (2, 4, 6, 5, 1, 2),
    (1, 2, 4, 4, 2, 1),  # T < 2*wt+1: the window is the whole clip
    (1, 6, 4, 5, 3, 1),
]


def _flows(B: int, T: int, H: int, W: int, seed: int, scale: float = 1.5):
    """Flows with fractional parts in [0.2, 0.8], so chained positions avoid the knots."""
    gen = torch.Generator().manual_seed(seed)

    def one() -> torch.Tensor:
        whole = (torch.randn(B, T, 2, H, W, generator=gen, dtype=torch.float64) * scale).round()
        return whole + 0.2 + 0.6 * torch.rand(B, T, 2, H, W, generator=gen, dtype=torch.float64)

    return one(), one()


@pytest.mark.parametrize("dims", CASES)
def test_matches_brute_force(backend: Backend, dims: tuple[int, ...]) -> None:
    B, T, H, W, wt, stride0 = dims
    fflow, bflow = _flows(B, T, H, W, seed=1)
    out = accumulate_flows(
        backend.put(fflow), backend.put(bflow), wt, stride0=stride0, backend=backend.name
    )
    want = bruteforce.accumulate_flows(as_numpy(fflow), as_numpy(bflow), wt, stride0)
    assert out.shape == want.shape and out.device == backend.device
    torch.testing.assert_close(out.cpu(), torch.from_numpy(want), rtol=1e-12, atol=1e-12)


def test_constant_flow_adds_up(backend: Backend) -> None:
    """A uniform motion of (dy, dx) per frame gives offsets (t'-t)*(dy, dx)."""
    fflow = torch.zeros(1, 5, 2, 6, 7, dtype=torch.float64)
    fflow[:, :, 0], fflow[:, :, 1] = 0.5, -0.25
    out = accumulate_flows(backend.put(fflow), backend.put(-fflow), 2, backend=backend.name)
    for t in range(5):
        start = min(max(t - 2, 0), 0)
        others = [f for f in range(start, start + 5) if f != t]
        for slot, tp in enumerate(others):
            torch.testing.assert_close(
                out[0, t, slot, 0].cpu(), torch.full((6, 7), 0.5 * (tp - t), dtype=torch.float64)
            )
            torch.testing.assert_close(
                out[0, t, slot, 1].cpu(), torch.full((6, 7), -0.25 * (tp - t), dtype=torch.float64)
            )


def test_gradcheck(backend: Backend) -> None:
    fflow, bflow = (backend.put(x).requires_grad_() for x in _flows(1, 3, 4, 4, seed=2, scale=0.5))

    def f(fflow, bflow):
        return accumulate_flows(fflow, bflow, 2, backend=backend.name)

    assert torch.autograd.gradcheck(f, (fflow, bflow))


def test_offsets_feed_the_search(backend: Backend) -> None:
    """The offsets have the shape shifted_nls expects, with the same stride0."""
    fflow, bflow = _flows(1, 4, 8, 6, seed=3)
    offsets = accumulate_flows(
        backend.put(fflow), backend.put(bflow), 1, stride0=2, backend=backend.name
    )
    q = backend.put(torch.rand(1, 4, 2, 8, 6, dtype=torch.float64))
    dists, _ = shifted_nls(q, q, offsets, ws=3, ps=1, topk=2, stride0=2, backend=backend.name)
    assert dists.shape == (1, 1, 4, 4, 3, 2)
