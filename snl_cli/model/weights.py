"""Pretrained weights: safetensors file + JSON manifest, checked by sha256 before use."""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path

from snl_cli.errors import WeightsError
from snl_cli.model.stan import STAN, STANConfig

DEFAULT_NAME = "stan"


def default_weights_path() -> Path:
    """The weights shipped inside the package (snl_cli/weights/stan.safetensors)."""
    return Path(str(resources.files("snl_cli.weights").joinpath(f"{DEFAULT_NAME}.safetensors")))


def manifest_path(weights: Path) -> Path:
    return weights.with_suffix(".json")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(weights: Path) -> dict:
    """Load and sanity-check the manifest beside `weights`."""
    path = manifest_path(weights)
    if not path.is_file():
        raise WeightsError(f"manifest {path.name} is missing", weights)
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise WeightsError(f"manifest {path.name} is unreadable: {exc}", weights) from exc
    for key in ("architecture", "sha256"):
        if key not in manifest:
            raise WeightsError(f"manifest {path.name} has no {key!r}", weights)
    return manifest


def load_stan(path: str | Path | None = None, *, verify: bool = True) -> tuple[STAN, dict]:
    """Build STAN from a weights file after checking its sha256 against the manifest.

    Args:
        path: a .safetensors file; None for the weights shipped with snl.
        verify: check the file's sha256 (always on in the CLI).

    Returns:
        (model in eval mode, manifest dict).

    Raises:
        WeightsError: missing, corrupt or mismatched weights.
    """
    from safetensors.torch import load_file

    weights = Path(path) if path is not None else default_weights_path()
    if not weights.is_file():
        hint = " (train them with `snl train`, or use --model nlm)" if path is None else ""
        raise WeightsError(f"weights file not found{hint}", weights)
    manifest = read_manifest(weights)
    if verify:
        actual = sha256_file(weights)
        if actual != manifest["sha256"]:
            raise WeightsError(
                f"sha256 mismatch: the file is corrupt or not the one its manifest describes "
                f"(expected {manifest['sha256'][:12]}…, got {actual[:12]}…)",
                weights,
            )
    try:
        cfg = STANConfig.from_dict(manifest["architecture"])
        model = STAN(cfg)
        state = load_file(str(weights))
        model.load_state_dict(state)
    except Exception as exc:  # safetensors raises its own error types
        raise WeightsError(f"cannot load weights: {exc}", weights) from exc
    return model.eval(), manifest


def save_stan(model: STAN, path: str | Path, manifest: dict) -> dict:
    """Write weights + manifest (with the file's sha256) atomically; returns the manifest."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    state = {name: t.detach().contiguous().cpu() for name, t in model.state_dict().items()}
    save_file(state, str(tmp))
    manifest = {**manifest, "architecture": model.cfg.to_dict(), "sha256": sha256_file(tmp)}
    man_tmp = tmp.with_suffix(".json.tmp")
    man_tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    tmp.replace(path)
    man_tmp.replace(manifest_path(path))
    return manifest
