"""The denoisers `snl denoise --model NAME` can run, behind one small interface.

The pipeline (`snl_cli.pipeline`) cuts a clip into temporal chunks and spatial tiles and
hands each piece to a `Denoiser`; it needs to know nothing else about the method. A
denoiser says how many frames of temporal context it wants on each side of a chunk
(`context`), how many pixels of spatial context around a tile (`halo`) and roughly how
much memory one pixel of one frame costs while it runs (`bytes_per_pixel`, used to size
tiles).

Add a method: write a class with these attributes and `__call__`, then one branch in
`make_denoiser`.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from snl_cli.errors import UsageError

MODELS = ("stan", "nlm")


@runtime_checkable
class Denoiser(Protocol):
    """A video denoiser the pipeline can run chunk by chunk and tile by tile.

    Attributes:
        name: the `--model` name.
        context: frames of temporal context wanted on each side of a chunk.
        halo: pixels of spatial context wanted around a tile.
        bytes_per_pixel: peak working memory per pixel per frame of the processed piece.
        device: where the clip tensors passed in should live.
    """

    name: str
    context: int
    halo: int
    bytes_per_pixel: int
    device: torch.device

    def __call__(self, clip: Tensor, sigma: float) -> Tensor:
        """Denoise a piece of a clip.

        Args:
            clip: (T, 3, H, W) float32 in [0, 1] on `device`, T ≥ 1.
            sigma: noise standard deviation on the 0–255 scale.

        Returns:
            (T, 3, H, W) float32 on `device`.
        """
        ...


def resolve_device(device: str) -> torch.device:
    """ "auto" → CUDA when available, else CPU; "cuda" without a GPU is a usage error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available here (use cpu or auto)")
    if device not in ("cpu", "cuda"):
        raise UsageError(f"--device: expected auto, cpu or cuda, got {device!r}")
    return torch.device(device)


def default_model() -> str:
    """ "stan" when the shipped STAN weights are installed, else "nlm"."""
    from snl_cli.model.weights import default_weights_path

    return "stan" if default_weights_path().is_file() else "nlm"


def make_denoiser(
    name: str,
    *,
    device: torch.device | str = "cpu",
    weights: str | None = None,
) -> Denoiser:
    """Build the denoiser called `name`.

    Args:
        name: "stan" or "nlm".
        device: torch device (or "auto"/"cpu"/"cuda").
        weights: STAN weights file (None: the shipped ones).

    Raises:
        UsageError: unknown name or device.
        WeightsError: STAN weights missing or corrupt.
    """
    device = resolve_device(device) if isinstance(device, str) else device
    if name == "nlm":
        from snl_cli.nlm import NLMDenoiser

        return NLMDenoiser(device=device)
    if name == "stan":
        return _make_stan(device, weights)
    raise UsageError(f"--model: expected one of {', '.join(MODELS)}, got {name!r}")


# --- STAN -------------------------------------------------------------------------------
# The learned model. `load_stan` raises WeightsError (one line, exit 1) while no weights
# are installed; the wrapper below is the minimal glue and the place to refine it.


def _make_stan(device: torch.device, weights: str | None) -> Denoiser:
    from snl_cli.model.weights import load_stan

    model, manifest = load_stan(weights)
    return StanDenoiser(model.to(device), manifest, device)


class StanDenoiser:
    """STAN (blind: `sigma` is not used) with DIS flows between consecutive frames."""

    name = "stan"
    halo = 32
    bytes_per_pixel = 4096

    def __init__(self, model: torch.nn.Module, manifest: dict, device: torch.device) -> None:
        self.model = model
        self.manifest = manifest
        self.device = device
        self.context = max(2, int(getattr(model.cfg, "wt", 1)) * 2)

    @torch.no_grad()
    def __call__(self, clip: Tensor, sigma: float) -> Tensor:
        from snl_cli.flow import estimate_flows

        fflow, bflow = estimate_flows(clip)
        out = self.model(clip.unsqueeze(0), (fflow.unsqueeze(0), bflow.unsqueeze(0)))
        return out[0].clamp(0, 1)
