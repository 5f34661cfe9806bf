"""The "cuda" backend: importable and self-explaining without CuPy or a GPU, its CuPy glue
checked against a stand-in CuPy, and (on a machine with a GPU) parity with the reference."""

from __future__ import annotations

import re
import sys
from contextlib import nullcontext
from types import SimpleNamespace
from typing import ClassVar

import pytest
import torch

from snl_cli.errors import BackendUnavailable
from snl_cli.search import accumulate_flows, gather, patch_sum, pick_backend, shifted_nls
from snl_cli.search.backends.launcher import compile_defines


def gpu_reason() -> str | None:
    from snl_cli.search.backends import cuda

    return cuda.unavailable_reason()


def test_cuda_backend_explains_why_it_cannot_run() -> None:
    if gpu_reason() is None:
        pytest.skip("CuPy and a GPU are available here")
    with pytest.raises(BackendUnavailable, match="backend 'cuda' cannot run here"):
        pick_backend("cuda", torch.device("cuda"))


class FakeRawModule:
    """Records what CuPy would be asked to compile."""

    made: ClassVar[list[FakeRawModule]] = []

    def __init__(self, *, code: str, options: tuple[str, ...]) -> None:
        self.code, self.options, self.asked = code, options, []
        FakeRawModule.made.append(self)

    def get_function(self, name: str) -> SimpleNamespace:
        self.asked.append(name)
        return SimpleNamespace(name=name)


@pytest.fixture
def fake_cupy(monkeypatch: pytest.MonkeyPatch) -> type[FakeRawModule]:
    FakeRawModule.made = []
    cupy = SimpleNamespace(RawModule=FakeRawModule, cuda=SimpleNamespace(Device=nullcontext))
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    return FakeRawModule


def test_one_module_per_source_with_headers_inlined(fake_cupy: type[FakeRawModule]) -> None:
    from snl_cli.search.backends.cuda import CupyRuntime

    runtime = CupyRuntime()
    for name in ("snl_search_fwd_f32", "snl_search_bwd_f64", "snl_gather_fwd_f32"):
        assert runtime.function(name).name == name
    assert runtime.function("snl_search_fwd_f32") is runtime.function("snl_search_fwd_f32")
    search, gather_module = fake_cupy.made
    assert search.asked == ["snl_search_fwd_f32", "snl_search_bwd_f64"]
    assert gather_module.asked == ["snl_gather_fwd_f32"]
    for module in fake_cupy.made:
        # CuPy's disk cache keys on the text: the header must be in it, not #included.
        assert not re.search(r'^\s*#\s*include\s+"', module.code, re.MULTILINE)
        assert "snl_reflect" in module.code
        assert set(compile_defines()) <= set(module.options)
        assert not any("fast-math" in option for option in module.options)


def test_cuda_kernel_refuses_cpu_tensors(fake_cupy: type[FakeRawModule]) -> None:
    from snl_cli.search.backends.cuda import CupyRuntime

    kernel = CupyRuntime().kernel("snl_gather_fwd_f32")
    with pytest.raises(ValueError, match="expected CUDA tensors"):
        kernel((1,), (128,), (torch.zeros(1),))


# --- on a GPU: the same kernels, launched by CuPy, against the reference ----------------


@pytest.fixture(scope="module")
def gpu() -> torch.device:
    if (reason := gpu_reason()) is not None:
        pytest.skip(f"backend 'cuda' cannot run here: {reason}")
    from snl_cli.search.backends import cuda

    cuda.prepare()
    return torch.device("cuda")


SEARCHES = [
    dict(ws=3, ps=3, topk=4),
    dict(ws=5, ps=1, topk=6, dist="prod", heads=2, stride1=0.5, full_ws=False),
    dict(ws=4, ps=3, topk=40, stride0=2, wt=2),  # write-all path
]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("params", SEARCHES, ids=["l2", "prod_open_heads", "write_all"])
def test_cuda_search_matches_reference(gpu: torch.device, params: dict, dtype) -> None:
    gen = torch.Generator().manual_seed(0)
    q = torch.rand(2, 5, 4, 9, 8, generator=gen, dtype=torch.float64)
    k = torch.rand(q.shape, generator=gen, dtype=torch.float64)
    fflow = torch.randn(2, 5, 2, 9, 8, generator=gen, dtype=torch.float64)
    bflow = torch.randn(2, 5, 2, 9, 8, generator=gen, dtype=torch.float64)
    wt, stride0 = params.get("wt", 1), params.get("stride0", 1)
    # float32: gradients are summed with atomics in a run-dependent order (seen: 2e-4 apart)
    tol = 1e-9 if dtype == torch.float64 else 1e-3
    out = {}
    for backend, device in (("cuda", gpu), ("torch", torch.device("cpu"))):
        leaves = [x.to(device, dtype).requires_grad_(True) for x in (q, k, fflow, bflow)]
        offsets = accumulate_flows(leaves[2], leaves[3], wt, stride0=stride0, backend=backend)
        dists, inds = shifted_nls(leaves[0], leaves[1], offsets, backend=backend, **params)
        # Invalid matches (infinite distance) tie, so each backend may return different ones:
        # keep them out of the loss.
        valid = torch.isfinite(dists)
        score = torch.where(valid, dists, 0)
        weights = torch.softmax(-score, -1) * valid
        agg = patch_sum(leaves[1], weights, inds, ps=1, stride0=stride0, backend=backend)
        stack = gather(leaves[1], inds, backend=backend)  # (B, heads, T, K, C/heads, nH, nW)
        stack = stack * valid.permute(0, 1, 2, 5, 3, 4).unsqueeze(4)
        loss = score.sum() + agg.sum() + stack.square().sum()
        loss.backward()
        out[backend] = [score.detach(), agg.detach(), *(x.grad for x in leaves)]
    for got, ref in zip(out["cuda"], out["torch"], strict=True):
        torch.testing.assert_close(got.cpu(), ref, rtol=tol, atol=tol)
