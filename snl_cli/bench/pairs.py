"""`snl bench pairs`: snl and its peers on real noisy/clean image pairs.

Each noisy image is denoised as a one-frame clip, end to end as a user would (`denoise_file`
on a PNG, output PNG); the peers (FFmpeg's filters and OpenCV's still-image non-local means)
run in memory with their strength swept over its whole range per image and the best PSNR
kept (their best case: an oracle no user has).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from snl_cli.bench.denoise import snl_method
from snl_cli.clips import read_image
from snl_cli.denoisers import MODELS
from snl_cli.errors import UsageError
from snl_cli.metrics import psnr, ssim
from snl_cli.pairs import pair_names
from snl_cli.peers import PEERS, tune

DEFAULT_PAIR_METHODS = ("stan", "bm3d", "nlmeans", "opencv-nlm")


@dataclass
class PairsBench:
    """What to measure: folders of pairs (noisy/, clean/) and the methods."""

    folders: list[Path]
    methods: list[str] = field(default_factory=lambda: list(DEFAULT_PAIR_METHODS))
    limit: int | None = None  # at most this many pairs per folder (the first, sorted)
    ensemble: int | None = None  # snl's self-ensemble passes (None: its default for a photo)

    def check(self) -> None:
        unknown = [m for m in self.methods if snl_method(m) is None and m not in PEERS]
        if unknown:
            known = ", ".join([*MODELS, *PEERS])
            raise UsageError(f"--methods: unknown {', '.join(unknown)}; choose from {known}")
        for folder in self.folders:
            pair_names(folder)  # raises a one-line InputError for a bad folder


def _denoise_image(
    method: str, noisy: np.ndarray, tmp: Path, ensemble: int | None = None
) -> tuple[np.ndarray, dict[str, Any]]:
    """One noisy image through `snl denoise` as a one-frame clip; (output, its summary)."""
    import cv2

    from snl_cli.pipeline import DenoiseOptions, denoise_file

    model, weights = snl_method(method) or (method, None)
    src, dst = tmp / "in", tmp / "out"
    for folder in (src, dst):
        folder.mkdir(exist_ok=True)
        for old in folder.iterdir():
            old.unlink()
    cv2.imwrite(str(src / "00000.png"), np.ascontiguousarray(noisy[..., ::-1]))
    options = DenoiseOptions(model=model, weights=weights, overwrite=True, ensemble=ensemble)
    summary = denoise_file(src, dst, options)
    return read_image(next(p for p in sorted(dst.iterdir()) if not p.name.startswith("."))), summary


def run_pairs_bench(bench: PairsBench, step: Callable[[str], None] | None = None) -> dict:
    """Every method on every pair; returns {"rows": [...], "summary": [...], "note": ...}."""
    bench.check()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="snl-pairs-") as tmp:
        for folder in bench.folders:
            names = pair_names(folder)[: bench.limit]
            for name in names:
                noisy = read_image(folder / "noisy" / name)
                clean = read_image(folder / "clean" / name)
                base = {"set": folder.name, "image": name}
                rows.append(
                    {
                        **base,
                        "method": "noisy",
                        "psnr": psnr([noisy], [clean]),
                        "ssim": ssim([noisy], [clean]),
                        "settings": "",
                    }
                )
                for method in bench.methods:
                    if step is not None:
                        step(f"{folder.name}/{name} {method}")
                    if snl_method(method) is not None:
                        out, summary = _denoise_image(method, noisy, Path(tmp), bench.ensemble)
                        settings = f"blind, ensemble {summary['ensemble']}"
                    else:
                        result = tune(PEERS[method], [noisy], [clean], None)
                        out, settings = result.frames[0], result.args
                    rows.append(
                        {
                            **base,
                            "method": method,
                            "psnr": psnr([out], [clean]),
                            "ssim": ssim([out], [clean]),
                            "settings": settings,
                        }
                    )
    return {
        "rows": rows,
        "summary": summarise_pairs(rows),
        "note": "snl: each noisy image denoised as a one-frame clip, end to end, blind, with "
        "the self-ensemble passes in each row's settings; "
        "peers: strength swept over the filter's whole range per image, best PSNR kept",
    }


def summarise_pairs(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean PSNR/SSIM per (set, method), with the gain over the noisy input."""
    out = []
    for set_name in dict.fromkeys(r["set"] for r in rows):
        noisy = np.mean(
            [r["psnr"] for r in rows if r["set"] == set_name and r["method"] == "noisy"]
        )
        for method in dict.fromkeys(r["method"] for r in rows if r["set"] == set_name):
            sel = [r for r in rows if r["set"] == set_name and r["method"] == method]
            mean = float(np.mean([r["psnr"] for r in sel]))
            out.append(
                {
                    "set": set_name,
                    "method": method,
                    "psnr": mean,
                    "ssim": float(np.mean([r["ssim"] for r in sel])),
                    "gain": mean - float(noisy),
                    "images": len(sel),
                }
            )
    return out
