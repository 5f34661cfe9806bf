"""Weights files: round trip, sha256 verification, clear errors."""

from __future__ import annotations

import json

import pytest
import torch

from snl_cli.errors import WeightsError
from snl_cli.model.stan import STAN, STANConfig
from snl_cli.model.weights import load_stan, save_stan, sha256_file

SMALL = STANConfig(channels=(8, 16), heads=2, qk_dim=4, attn_blocks=1, ws=3, topk=4, k_agg=2)


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    model = STAN(SMALL)
    path = tmp_path / "w.safetensors"
    manifest = save_stan(model, path, {"steps": 3})
    return model, path, manifest


def test_round_trip(saved) -> None:
    model, path, manifest = saved
    assert manifest["sha256"] == sha256_file(path)
    assert json.loads(path.with_suffix(".json").read_text())["architecture"] == SMALL.to_dict()
    loaded, man = load_stan(path)
    assert man["steps"] == 3
    assert not loaded.training
    original, restored = model.state_dict(), loaded.state_dict()
    assert original.keys() == restored.keys()
    for name, tensor in original.items():
        assert torch.equal(tensor, restored[name]), name


def test_corrupt_file_is_refused(saved) -> None:
    _, path, _ = saved
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="sha256 mismatch"):
        load_stan(path)


def test_missing_file_and_manifest(tmp_path, saved) -> None:
    with pytest.raises(WeightsError, match="not found"):
        load_stan(tmp_path / "nope.safetensors")
    _, path, _ = saved
    path.with_suffix(".json").unlink()
    with pytest.raises(WeightsError, match="manifest"):
        load_stan(path)


def test_truncated_file_with_matching_hash_fails_cleanly(saved) -> None:
    _, path, _ = saved
    path.write_bytes(path.read_bytes()[:100])
    manifest = json.loads(path.with_suffix(".json").read_text())
    manifest["sha256"] = sha256_file(path)
    path.with_suffix(".json").write_text(json.dumps(manifest))
    with pytest.raises(WeightsError, match="cannot load"):
        load_stan(path)
