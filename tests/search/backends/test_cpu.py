"""The "cpu" backend's own choices: both forward paths agree, and so do one and many threads."""

from __future__ import annotations

import pytest
import torch
from search_cases import SEARCH_CASES, Case, case

from snl_cli.search import shifted_nls
from snl_cli.search.api import make_spec
from snl_cli.search.backends import cpu

pytestmark = pytest.mark.skipif(
    cpu.unavailable_reason() is not None, reason=f"cpu backend: {cpu.unavailable_reason()}"
)


def _spec(c: Case, q: torch.Tensor, offsets: torch.Tensor | None):
    return make_spec(q, q, offsets, **c.kwargs())


BOX_CASES = [c.name for c in SEARCH_CASES if c.name.startswith("box") or c.name in (
    "base", "prod", "open_borders", "open_inf", "heads", "wt2", "short_clip")]  # fmt: skip


@pytest.mark.parametrize("name", BOX_CASES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_box_equals_direct(name: str, dtype: torch.dtype) -> None:
    c = case(name)
    q, k, offsets = c.inputs(dtype)
    spec = _spec(c, q, offsets)
    assert cpu.forward_method(offsets, spec) == "box"
    box_d, box_i = cpu.search_forward(q, k, offsets, spec, method="box")
    dir_d, dir_i = cpu.search_forward(q, k, offsets, spec, method="direct")
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(box_d, dir_d, rtol=tol, atol=tol)
    # random inputs have no ties among valid candidates: the same matches, in the same order
    valid = box_d.isfinite().unsqueeze(-1).expand_as(box_i)
    assert torch.equal(box_i[valid], dir_i[valid])


@pytest.mark.parametrize(
    ("change", "method"),
    [
        (dict(), "box"),
        (dict(offsets=True), "direct"),
        (dict(stride1=0.5), "direct"),
        (dict(stride0=4, ps=3), "direct"),
        (dict(W=4, ws=7), "direct"),  # full_ws centre (W-1)/2 = 1.5 is fractional
    ],
)
def test_forward_method(change: dict, method: str) -> None:
    offsets = change.pop("offsets", False)
    shape = {key: change.pop(key) for key in ("W",) if key in change}
    c = Case("choice", H=8, W=shape.get("W", 8), offsets=offsets, params=change)
    q, _, off = c.inputs()
    assert cpu.forward_method(off, _spec(c, q, off)) == method


@pytest.mark.parametrize("name", ["base", "offsets_heads_prod", "stride1_half_open", "wt2"])
def test_threads_agree(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tiny inputs normally run on one thread; force the thread pool and compare, gradients
    included (the scattering kernels run one destination frame per thread)."""
    c = case(name)

    def run() -> list[torch.Tensor]:
        q, k, offsets = c.inputs()
        inputs = [x.requires_grad_() for x in (q, k, offsets) if x is not None]
        dists, inds = shifted_nls(q, k, offsets, backend="cpu", **c.kwargs())
        loss = dists.masked_fill(dists.isinf(), 0).sum() + inds[..., 1:].sum()
        return [dists, inds, *torch.autograd.grad(loss, inputs)]

    serial = run()
    monkeypatch.setattr(cpu, "SERIAL_WORK", 0)
    parallel = run()
    for a, b in zip(serial, parallel, strict=True):
        assert torch.equal(a, b)
