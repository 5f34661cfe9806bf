"""Fixtures for the kernel tests: the g++-emulated kernels, through both top-k paths."""

from __future__ import annotations

from types import ModuleType, SimpleNamespace

import pytest


@pytest.fixture(scope="session")
def emulate() -> ModuleType:
    """The "emulate" backend with its library built; skipped without a C++ compiler."""
    from snl_cli.search.backends import emulate

    if (reason := emulate.unavailable_reason()) is not None:
        pytest.skip(f"backend 'emulate' cannot run here: {reason}")
    emulate.prepare()
    return emulate


@pytest.fixture(scope="session")
def all_candidates(emulate: ModuleType) -> SimpleNamespace:
    """Emulated operators whose search always takes the write-all + torch.topk path."""
    from snl_cli.search.backends.launcher import KernelOps, make_backend

    search, gather, patch_sum, _ = make_backend(KernelOps(emulate.runtime, topk_max=0))
    return SimpleNamespace(search=search, gather=gather, patch_sum=patch_sum)
