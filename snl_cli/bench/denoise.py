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
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from snl_cli.errors import InputError, UsageError
from snl_cli.metrics import psnr, ssim
from snl_cli.peers import PEERS, tune
from snl_cli.synthetic import BENCH_KINDS, noisy_frames

SNL_METHODS = ("stan", "nlm")
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
        unknown = [m for m in self.methods if _snl_method(m) is None and m not in PEERS]
        if unknown:
            known = ", ".join([*SNL_METHODS, *PEERS])
            raise UsageError(
                f"--methods: unknown {', '.join(unknown)}; choose from {known}, "
                "or stan:WEIGHTS for STAN with other weights"
            )
        for method in self.methods:
            weights = (_snl_method(method) or ("", None))[1]
            if weights is not None and not Path(weights).is_file():
                raise InputError("no such weights file", weights)
        if self.frames < 2:
            raise UsageError(f"--frames: expected at least 2, got {self.frames}")


def _snl_method(method: str) -> tuple[str, str | None] | None:
    """(model, weights) of an snl method: "stan", "nlm", or "stan:PATH" (STAN with the weights
    at PATH, so that two sets of weights can be measured side by side); None for other names."""
    if method in SNL_METHODS:
        return method, None
    name, sep, path = method.partition(":")
    return (name, path) if name == "stan" and sep and path else None


def expand_clips(paths: list[Path]) -> list[Path]:
    """A clip is a video file or a frame folder; a folder of clips expands to its clips."""
    from snl_cli.video.plan import is_frame_folder

    clips: list[Path] = []
    for path in paths:
        if not path.exists():
            raise InputError("no such file or folder", path)
        if path.is_dir() and not is_frame_folder(path):
            inner = sorted(p for p in path.iterdir() if p.is_dir() or p.is_file())
            clips.extend(p for p in inner if p.is_file() or is_frame_folder(p))
        else:
            clips.append(path)
    if not clips:
        raise InputError("no clips found", paths[0] if paths else ".")
    return clips


def load_clean(path: Path, frames: int) -> list[np.ndarray]:
    """The first `frames` frames as uint8 RGB (H, W, 3)."""
    from snl_cli.video import read_frames

    out = [
        np.clip(np.rint(f.rgb * 255), 0, 255).astype(np.uint8)
        for f in read_frames(path, stop=frames)
    ]
    if len(out) < 2:
        raise InputError(f"needs at least 2 frames, has {len(out)}", path)
    return out


def write_lossless(frames: list[np.ndarray], path: Path, fps: int = 25) -> None:
    """Write uint8 RGB frames losslessly (FFV1, bgr0) so decoding gives them back exactly."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=fps)
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = "bgr0"
        stream.codec_context.time_base = Fraction(1, fps)
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="bgr0")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


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
    frames = load_clean(out_path, 10**9)
    return frames, float(summary["fps"]), summary


def run_denoise_bench(bench: DenoiseBench, step: Callable[[str], None] | None = None) -> dict:
    """Measure every method on every clip and sigma; returns {"rows": [...], ...}."""
    bench.check()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="snl-bench-") as tmp:
        for clip in bench.clips:
            clean = load_clean(clip, bench.frames)
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
    snl = _snl_method(method)
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
            "method": method if method in SNL_METHODS else f"stan:{Path(weights).stem}",
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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    fig.savefig(path, dpi=120)
    plt.close(fig)
