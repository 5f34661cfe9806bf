"""Real noisy/clean image pairs on disk: `FOLDER/noisy/NAME` beside `FOLDER/clean/NAME`.

The layout of the real-noise sets (PolyU, Nam) and of `snl train --pairs` and
`snl bench pairs`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from snl_cli.clips import read_image
from snl_cli.errors import InputError
from snl_cli.video.images import IMAGE_SUFFIXES


def pair_names(folder: Path) -> list[str]:
    """Names of the images in `folder/noisy` that have a partner in `folder/clean`, sorted.

    Raises:
        InputError: no noisy/ or clean/ folder, a noisy image without its clean partner, or
        no pairs at all.
    """
    noisy_dir, clean_dir = folder / "noisy", folder / "clean"
    if not (noisy_dir.is_dir() and clean_dir.is_dir()):
        raise InputError("expected noisy/ and clean/ folders with matching image names", folder)
    names = sorted(
        p.name
        for p in noisy_dir.iterdir()
        if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
    )
    for name in names:
        if not (clean_dir / name).is_file():
            raise InputError(f"no clean/{name} for noisy/{name}", folder)
    if not names:
        raise InputError("no image pairs", folder)
    return names


def load_pairs(folder: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """Every pair of `folder` as (noisy, clean), each uint8 (H, W, 3) of the same shape."""
    pairs = []
    for name in pair_names(folder):
        noisy, clean = read_image(folder / "noisy" / name), read_image(folder / "clean" / name)
        if noisy.shape != clean.shape:
            raise InputError(f"{name}: noisy {noisy.shape} and clean {clean.shape} differ", folder)
        pairs.append((noisy, clean))
    return pairs
