"""The backend fixture: every backend of `snl_cli.search.BACKENDS`, skipped with the reason
when it cannot run here, so a new backend joins every test by being registered."""

from __future__ import annotations

import pytest
import torch
from search_cases import Backend

from snl_cli.search import BACKENDS, pick_backend


def _device_for(name: str) -> torch.device:
    if name == "cuda" and torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


@pytest.fixture(params=list(BACKENDS), scope="session")
def backend(request: pytest.FixtureRequest) -> Backend:
    name = request.param
    device = _device_for(name)
    try:
        pick_backend(name, device)
    except Exception as exc:  # BackendUnavailable, ValueError (device), ImportError
        pytest.skip(f"backend {name!r} cannot run here: {exc}")
    return Backend(name, device)
