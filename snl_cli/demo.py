"""`snl demo`: add noise to a clean clip, denoise it with the default model, show the result.

Writes `noisy.mkv` (lossless, so the noise is exactly what was added), `denoised.mp4` (what
`snl denoise` gives a user: libx264), and `comparison.png` (noisy | denoised | clean crops of
the middle frame); PSNR is measured on the decoded files against the clean clip.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

import snl_cli
from snl_cli.errors import InputError
from snl_cli.metrics import psnr, ssim

DEMO_SIGMA = 25.0


def default_clip() -> Path:
    """The clip shipped in a source checkout (demo/dog.mp4)."""
    return Path(snl_cli.__file__).resolve().parents[1] / "demo" / "dog.mp4"


def run_demo(
    clip: Path | None,
    out_dir: Path,
    *,
    sigma: float = DEMO_SIGMA,
    seed: int = 0,
    model: str | None = None,
    frames: int | None = None,
    reporter=None,
) -> dict[str, Any]:
    """Noise, denoise and compare; returns the summary (paths, PSNR before/after, fps)."""
    from snl_cli.clips import read_uint8, write_lossless
    from snl_cli.pipeline import DenoiseOptions, denoise_file
    from snl_cli.synthetic import noisy_frames
    from snl_cli.video import probe

    clip = clip or default_clip()
    if not clip.exists():
        raise InputError("demo clip not found (run from a source checkout or pass a clip)", clip)
    info = probe(clip)
    clean = read_uint8(clip, frames or info.frames, min_frames=2)
    noisy = noisy_frames(clean, "gaussian", sigma, seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    noisy_path, denoised_path = out_dir / "noisy.mkv", out_dir / "denoised.mp4"
    fps = max(1, round(float(info.fps))) if info.fps else 25
    write_lossless(noisy, noisy_path, fps=fps)
    options = DenoiseOptions(model=model, codec="libx264", crf=16, overwrite=True)
    summary = denoise_file(noisy_path, denoised_path, options, reporter)
    denoised = read_uint8(denoised_path, len(clean), min_frames=2)
    comparison = out_dir / "comparison.png"
    write_comparison(noisy, denoised, clean, comparison)
    return {
        "clip": str(clip),
        "frames": len(clean),
        "sigma": sigma,
        "model": summary["model"],
        "psnr_noisy": round(psnr(noisy, clean), 2),
        "psnr_denoised": round(psnr(denoised, clean), 2),
        "ssim_noisy": round(ssim(noisy, clean), 4),
        "ssim_denoised": round(ssim(denoised, clean), 4),
        "fps": summary["fps"],
        "sigma_used": summary["sigma"],
        "noisy": str(noisy_path),
        "denoised": str(denoised_path),
        "comparison": str(comparison),
    }


def write_comparison(
    noisy: list[np.ndarray],
    denoised: list[np.ndarray],
    clean: list[np.ndarray],
    path: Path,
    crop: int = 240,
) -> None:
    """Side by side crops (noisy | denoised | clean) of the middle frame, labelled."""
    from snl_cli.plots import pyplot, save_figure

    plt = pyplot()
    mid = len(clean) // 2
    h, w = clean[mid].shape[:2]
    size = min(crop, h, w)
    y, x = (h - size) // 2, (w - size) // 2
    panels = [("noisy", noisy[mid]), ("denoised", denoised[mid]), ("clean", clean[mid])]
    fig, axes = plt.subplots(1, 3, figsize=(9, 3.3))
    for ax, (title, frame) in zip(axes, panels, strict=True):
        ax.imshow(frame[y : y + size, x : x + size], interpolation="nearest")
        score = "" if title == "clean" else f" ({psnr([frame], [clean[mid]]):.2f} dB)"
        ax.set_title(title + score)
        ax.axis("off")
    fig.tight_layout()
    save_figure(fig, path, dpi=100)
