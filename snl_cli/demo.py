"""`snl demo`: add noise to a clean clip, denoise it with the default model, show the result.

Writes `noisy.mkv` (lossless, so the noise is exactly what was added), `denoised.mp4` (what
`snl denoise` gives a user: libx264), and `comparison.png` (noisy | denoised | clean crops of
the middle frame); PSNR is measured on the decoded files against the clean clip. Like every
snl command it refuses to replace existing outputs unless told to (`overwrite`), checked
before any work, and writes each file under a temporary name renamed into place.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np

import snl_cli
from snl_cli.errors import InputError
from snl_cli.metrics import psnr, ssim

DEMO_SIGMA = 25.0
OUTPUTS = ("noisy.mkv", "denoised.mp4", "comparison.png")


class DemoReporter(Protocol):
    """The pipeline's Reporter (see `snl_cli.pipeline.Reporter`) plus a second phase."""

    def started(self, info: Any, summary: dict[str, Any]) -> None: ...
    def advanced(self, frames: int) -> None: ...
    def warned(self, message: str) -> None: ...
    def phase(self, label: str, total: int) -> None:
        """A new step of `total` units begins (reported through `advanced`)."""


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
    reporter: DemoReporter | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Noise, denoise and compare; returns the summary (paths, PSNR before/after, fps).

    Raises:
        InputError: the clip is missing or unreadable.
        OutputError: an output (`OUTPUTS` in `out_dir`) exists and not `overwrite`, or is
            the clip itself.
    """
    from snl_cli.clips import read_uint8, write_lossless
    from snl_cli.pipeline import DenoiseOptions, denoise_file
    from snl_cli.synthetic import noisy_frames
    from snl_cli.video import check_output_path, probe
    from snl_cli.video.safety import write_atomically

    clip = clip or default_clip()
    if not clip.exists():
        raise InputError("demo clip not found (run from a source checkout or pass a clip)", clip)
    noisy_path, denoised_path, comparison = (out_dir / name for name in OUTPUTS)
    for path in (noisy_path, denoised_path, comparison):
        check_output_path(clip, path, overwrite)
    info = probe(clip)
    clean = read_uint8(clip, frames or info.frames, min_frames=2)
    noisy = noisy_frames(clean, "gaussian", sigma, seed)
    fps = max(1, round(float(info.fps))) if info.fps else 25
    write_atomically(noisy_path, lambda tmp: write_lossless(noisy, tmp, fps=fps), overwrite)
    options = DenoiseOptions(model=model, codec="libx264", crf=16, overwrite=overwrite)
    summary = denoise_file(noisy_path, denoised_path, options, reporter)
    denoised = read_uint8(denoised_path, len(clean), min_frames=2)
    write_comparison(noisy, denoised, clean, comparison, overwrite=overwrite)
    if reporter is not None:
        reporter.phase("ssim", 2 * len(clean))
    ssim_noisy, ssim_denoised = (_mean_ssim(x, clean, reporter) for x in (noisy, denoised))
    return {
        "clip": str(clip),
        "frames": len(clean),
        "sigma": sigma,
        "model": summary["model"],
        "psnr_noisy": round(psnr(noisy, clean), 2),
        "psnr_denoised": round(psnr(denoised, clean), 2),
        "ssim_noisy": round(ssim_noisy, 4),
        "ssim_denoised": round(ssim_denoised, 4),
        "fps": summary["fps"],
        "sigma_used": summary["sigma"],
        "noisy": str(noisy_path),
        "denoised": str(denoised_path),
        "comparison": str(comparison),
    }


def _mean_ssim(
    frames: list[np.ndarray], clean: list[np.ndarray], reporter: DemoReporter | None
) -> float:
    """`metrics.ssim` (the mean of per-frame scores), one frame at a time, reported."""
    scores = []
    for frame, reference in zip(frames, clean, strict=True):
        scores.append(ssim([frame], [reference]))
        if reporter is not None:
            reporter.advanced(1)
    return float(np.mean(scores))


def write_comparison(
    noisy: list[np.ndarray],
    denoised: list[np.ndarray],
    clean: list[np.ndarray],
    path: Path,
    crop: int = 240,
    overwrite: bool = True,
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
    save_figure(fig, path, dpi=100, overwrite=overwrite)
