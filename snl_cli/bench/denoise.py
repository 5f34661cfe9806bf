"""`snl bench denoise`: quality and speed of snl's denoisers and FFmpeg's, on clean footage
with seeded synthetic noise (`--noise`: Gaussian or a camera kind, `snl_cli.synthetic`).

snl runs end to end (`snl_cli.pipeline.denoise_file`: decode, flow, denoise, encode) on a
lossless FFV1 copy of the noisy clip, so its fps include decoding and encoding and its PSNR is
measured on the decoded output. FFmpeg's filters run in-process on the frames already in
memory, each tuned per clip: for Gaussian noise by a small strength sweep around the true
sigma, for the other kinds over each filter's whole range (`peers.tune`): their best case.
"""

from __future__ import annotations

import tempfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from snl_cli.clips import read_uint8, write_lossless
from snl_cli.denoisers import MODELS
from snl_cli.errors import InputError, UsageError
from snl_cli.metrics import psnr, ssim
from snl_cli.peers import PEERS, tune
from snl_cli.synthetic import BENCH_KINDS, noisy_frames

DEFAULT_METHODS = ("stan", "nlm", "bm3d", "nlmeans", "fftdnoiz", "dctdnoiz")


@dataclass
class DenoiseBench:
    """What to measure."""

    clips: list[Path]
    sigmas: list[float] = field(default_factory=lambda: [20.0, 30.0, 40.0])
    frames: int = 20
    methods: list[str] = field(default_factory=lambda: list(DEFAULT_METHODS))
    seed: int = 0
    tune_frames: int = 6
    weights: str | None = None
    noise: str = "gaussian"

    def check(self) -> None:
        if self.noise not in BENCH_KINDS:
            raise UsageError(
                f"--noise: expected one of {', '.join(BENCH_KINDS)}, got {self.noise!r}"
            )
        unknown = [m for m in self.methods if snl_method(m) is None and m not in PEERS]
        if unknown:
            known = ", ".join([*MODELS, *PEERS])
            raise UsageError(
                f"--methods: unknown {', '.join(unknown)}; choose from {known}, "
                "or stan:WEIGHTS for STAN with other weights"
            )
        for method in self.methods:
            weights = (snl_method(method) or ("", None))[1]
            if weights is not None and not Path(weights).is_file():
                raise InputError("no such weights file", weights)
        if self.frames < 2:
            raise UsageError(f"--frames: expected at least 2, got {self.frames}")


def snl_method(method: str) -> tuple[str, str | None] | None:
    """(model, weights) of an snl method: "stan", "nlm", or "stan:PATH" (STAN with the weights
    at PATH, so that two sets of weights can be measured side by side); None for other names."""
    if method in MODELS:
        return method, None
    name, sep, path = method.partition(":")
    return (name, path) if name == "stan" and sep and path else None


def _run_snl(
    method: str, noisy_path: Path, out_path: Path, sigma: float, weights: str | None
) -> tuple[list[np.ndarray], float, dict]:
    from snl_cli.pipeline import DenoiseOptions, denoise_file

    options = DenoiseOptions(
        model=method,
        sigma=None if method == "stan" else sigma,
        overwrite=True,
        weights=weights,
    )
    summary = denoise_file(noisy_path, out_path, options)
    frames = read_uint8(out_path)
    return frames, float(summary["fps"]), summary


def run_denoise_bench(bench: DenoiseBench, step: Callable[[str], None] | None = None) -> dict:
    """Measure every method on every clip and sigma; returns {"rows": [...], ...}."""
    bench.check()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="snl-bench-") as tmp:
        for clip in bench.clips:
            clean = read_uint8(clip, bench.frames, min_frames=2)
            for sigma in bench.sigmas:
                seed = bench.seed + zlib.crc32(f"{clip.name}:{sigma}".encode())
                noisy = noisy_frames(clean, bench.noise, sigma, seed)
                base = {"clip": clip.name, "sigma": sigma, "frames": len(clean)}
                rows.append(
                    {
                        **base,
                        "method": "noisy",
                        "psnr": psnr(noisy, clean),
                        "ssim": ssim(noisy, clean),
                        "fps": None,
                        "settings": "",
                    }
                )
                noisy_path = Path(tmp) / f"{clip.name}-{sigma:g}.mkv"
                write_lossless(noisy, noisy_path)
                for method in bench.methods:
                    if step is not None:
                        step(f"{clip.name} σ{sigma:g} {method}")
                    rows.append(
                        {**base, **_measure(method, noisy, clean, noisy_path, sigma, bench)}
                    )
    return {
        "rows": rows,
        "sigmas": bench.sigmas,
        "noise": bench.noise,
        "frames": bench.frames,
        "note": "snl: end to end (decode + denoise + encode, lossless FFV1 in and out); "
        "stan is blind, nlm is given the nominal sigma; FFmpeg filters: in memory, strength "
        + (
            "tuned per clip and sigma with the true sigma (their best case)"
            if bench.noise == "gaussian"
            else "swept over its whole range per clip and level (their best case)"
        ),
    }


def _measure(
    method: str,
    noisy: list[np.ndarray],
    clean: list[np.ndarray],
    noisy_path: Path,
    sigma: float,
    bench: DenoiseBench,
) -> dict[str, Any]:
    snl = snl_method(method)
    if snl is not None:
        model, weights = snl
        out_path = noisy_path.with_name(f"{noisy_path.stem}-{zlib.crc32(method.encode()):08x}.mkv")
        frames, fps, summary = _run_snl(
            model, noisy_path, out_path, sigma, weights or bench.weights
        )
        settings = f"sigma={summary['sigma']} ({summary['sigma_source']})"
        if model == "stan":
            settings = f"blind, {Path(weights).name}" if weights else "blind"
        return {
            "method": method if method in MODELS else f"stan:{Path(weights).stem}",
            "psnr": psnr(frames, clean),
            "ssim": ssim(frames, clean),
            "fps": fps,
            "settings": settings,
        }
    known = sigma if bench.noise == "gaussian" else None
    result = tune(PEERS[method], noisy, clean, known, tune_frames=bench.tune_frames)
    return {
        "method": method,
        "psnr": result.psnr,
        "ssim": ssim(result.frames, clean),
        "fps": result.fps,
        "settings": result.args,
    }


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean PSNR/SSIM and fps per (method, sigma) over the clips."""
    keys = sorted({(r["method"], r["sigma"]) for r in rows}, key=lambda k: (k[1], k[0]))
    out = []
    for method, sigma in keys:
        sel = [r for r in rows if r["method"] == method and r["sigma"] == sigma]
        fps = [r["fps"] for r in sel if r["fps"]]
        out.append(
            {
                "method": method,
                "sigma": sigma,
                "psnr": float(np.mean([r["psnr"] for r in sel])),
                "ssim": float(np.mean([r["ssim"] for r in sel])),
                "fps": float(np.mean(fps)) if fps else None,
                "clips": len(sel),
            }
        )
    return out


def plot_summary(summary: list[dict[str, Any]], path: Path) -> None:
    """Grouped bars: PSNR per method, one group per sigma."""
    from snl_cli.plots import pyplot, save_figure

    plt = pyplot()
    sigmas = sorted({r["sigma"] for r in summary})
    methods = list(dict.fromkeys(r["method"] for r in summary))
    width = 0.8 / len(methods)
    fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(sigmas), 4))
    for i, method in enumerate(methods):
        values = [
            next((r["psnr"] for r in summary if r["method"] == method and r["sigma"] == s), np.nan)
            for s in sigmas
        ]
        xs = np.arange(len(sigmas)) + i * width
        ax.bar(xs, values, width, label=method)
    ax.set_xticks(np.arange(len(sigmas)) + 0.4 - width / 2, [f"σ = {s:g}" for s in sigmas])
    ax.set_ylabel("PSNR (dB), higher is better")
    ax.set_title("Denoising quality (mean over clips)")
    low = np.nanmin([r["psnr"] for r in summary])
    ax.set_ylim(low - 1, None)
    ax.legend(ncols=min(len(methods), 4), fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
