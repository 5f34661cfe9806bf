"""The emulated kernel objects behave like CuPy RawKernels, and check what a GPU would not."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest
import torch

from snl_cli.search import shifted_nls
from snl_cli.search.backends.launcher import entry_points

i32 = np.int32


def gather_args(v: torch.Tensor, inds: torch.Tensor, out: torch.Tensor) -> tuple:
    B, T, C, H, W = v.shape
    return (v, inds, out, i32(B), i32(T), i32(C), i32(H), i32(W), i32(1), i32(2), i32(2), i32(1))


@pytest.fixture
def small() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    v = torch.rand(1, 1, 1, 3, 3, dtype=torch.float64)
    inds = torch.zeros(1, 1, 1, 2, 2, 1, 3, dtype=torch.float64)
    out = torch.empty(1, 1, 1, 1, 1, 2, 2, dtype=torch.float64)
    return v, inds, out


def test_every_entry_point_loads_with_its_signature(emulate: ModuleType) -> None:
    for name in entry_points():
        kernel = emulate.runtime.kernel(name)
        real = "f32" if name.endswith("_f32") else "f64"
        assert kernel.signature, name
        assert all(code in ("i32", "f32", "f64", "f32*", "f64*") for code in kernel.signature)
        assert not any(code.startswith("f") and real not in code for code in kernel.signature)


def test_kernel_call_like_cupy(emulate: ModuleType, small) -> None:
    v, inds, out = small
    inds[..., 1:] = 1.5
    emulate.runtime.kernel("snl_gather_fwd_f64")((1,), (128,), gather_args(v, inds, out))
    torch.testing.assert_close(out.flatten(), v[0, 0, 0, 1:, 1:].mean().expand(4))


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        (lambda a: (a[0].float(), *a[1:]), TypeError, "expected torch.float64"),
        (lambda a: (*a[:3], 1, *a[4:]), TypeError, "expected numpy.int32, got int"),
        (lambda a: (*a[:3], np.int64(1), *a[4:]), TypeError, "expected numpy.int32"),
        (lambda a: a[:-1], TypeError, "expected 12 arguments"),
        (lambda a: (a[0].transpose(3, 4), *a[1:]), ValueError, "contiguous"),
    ],
    ids=["dtype", "python_int", "int64", "count", "strided"],
)
def test_kernel_rejects_bad_arguments(emulate: ModuleType, small, change, error, message) -> None:
    kernel = emulate.runtime.kernel("snl_gather_fwd_f64")
    with pytest.raises(error, match=message):
        kernel((1,), (128,), change(gather_args(*small)))


@pytest.mark.parametrize(
    ("grid", "block"),
    [((0,), (128,)), ((1, 70000), (32,)), ((1,), (2048,)), ((1,), (32, 32, 2))],
    ids=["empty_grid", "grid_y", "block_x", "block_threads"],
)
def test_kernel_enforces_cuda_launch_limits(emulate: ModuleType, small, grid, block) -> None:
    with pytest.raises(ValueError, match="limits"):
        emulate.runtime.kernel("snl_gather_fwd_f64")(grid, block, gather_args(*small))


def test_unknown_kernel(emulate: ModuleType) -> None:
    with pytest.raises(KeyError, match="snl_nothing_fwd_f32"):
        emulate.runtime.kernel("snl_nothing_fwd_f32")


def test_threads_do_not_change_results(emulate: ModuleType, monkeypatch) -> None:
    gen = torch.Generator().manual_seed(0)
    q = torch.rand(1, 3, 2, 9, 8, generator=gen, dtype=torch.float64)
    k = torch.rand(q.shape, generator=gen, dtype=torch.float64)
    results = []
    for threads in ("1", "3"):
        monkeypatch.setenv("SNL_EMULATE_THREADS", threads)
        results.append(shifted_nls(q, k, ws=3, ps=3, topk=5, stride1=0.5, backend="emulate"))
    assert torch.equal(results[0][0], results[1][0]) and torch.equal(results[0][1], results[1][1])


def test_library_is_cached(emulate: ModuleType) -> None:
    path = emulate.build_library()
    assert path.exists() and emulate.build_library() == path
    assert not list(path.parent.glob(".build-*")), "a temporary build folder was left behind"


def test_missing_compiler_is_reported(emulate: ModuleType, monkeypatch) -> None:
    monkeypatch.setenv("CXX", "no-such-compiler-snl")
    reason = emulate.unavailable_reason()
    assert reason is not None and "no-such-compiler-snl" in reason
