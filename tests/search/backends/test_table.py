"""The backend table: every name maps to a module with the same interface; "auto" resolves
by device."""

from __future__ import annotations

from types import ModuleType

import pytest
import torch

from snl_cli.search import BACKENDS, backend_name, pick_backend

INTERFACE = ("search", "gather", "patch_sum", "accumulate_flows", "unavailable_reason")


@pytest.mark.parametrize("name", list(BACKENDS))
def test_every_backend_is_a_module_with_the_interface(name: str) -> None:
    module = BACKENDS[name]
    assert isinstance(module, ModuleType)
    missing = [f for f in INTERFACE if not callable(getattr(module, f, None))]
    assert not missing, f"backend {name!r} lacks {missing}"
    reason = module.unavailable_reason()
    assert reason is None or (isinstance(reason, str) and reason)


def test_auto_means_cpu_on_cpu_and_cuda_on_cuda() -> None:
    assert backend_name("auto", torch.device("cpu")) == "cpu"
    assert backend_name("auto", torch.device("cuda")) == "cuda"
    assert backend_name("emulate", torch.device("cpu")) == "emulate"
    assert pick_backend("auto", torch.device("cpu")) is BACKENDS["cpu"]
    assert pick_backend("torch", torch.device("cpu")) is BACKENDS["torch"]
