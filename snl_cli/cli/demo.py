"""`snl demo`: the main job on a clip shipped with the source, in one command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from snl_cli.cli.common import cli_errors, emit


def demo(
    clip: Annotated[
        Path | None,
        typer.Argument(help=r"Clean clip to use \[default: demo/dog.mp4 of the source checkout]."),
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the results.")] = Path(
        "demo-out"
    ),
    sigma: Annotated[float, typer.Option(min=0, max=100, help="Noise level added.")] = 25.0,
    seed: Annotated[int, typer.Option(help="Noise seed.")] = 0,
    model: Annotated[
        str | None, typer.Option(help=r"stan or nlm \[default: stan if installed].")
    ] = None,
    overwrite: Annotated[
        bool,
        typer.Option(help="Replace noisy.mkv, denoised.mp4 and comparison.png of an earlier run."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON summary on stdout.")] = False,
) -> None:
    """Add noise to a clean clip, denoise it, and write noisy/denoised videos + a comparison.

    Writes noisy.mkv, denoised.mp4 and comparison.png into --out; existing ones are kept
    unless --overwrite is given.
    """
    from snl_cli.cli.report import ProgressReporter
    from snl_cli.console import out_console
    from snl_cli.demo import run_demo

    with cli_errors(), ProgressReporter("demo") as reporter:
        result = run_demo(
            clip, out, sigma=sigma, seed=seed, model=model, reporter=reporter, overwrite=overwrite
        )

    def render(r: dict) -> None:
        out_console.print(
            f"{r['model']} on {Path(r['clip']).name} ({r['frames']} frames, σ {r['sigma']:g}): "
            f"PSNR {r['psnr_noisy']:.2f} dB noisy → {r['psnr_denoised']:.2f} dB denoised "
            f"(SSIM {r['ssim_noisy']:.3f} → {r['ssim_denoised']:.3f}), {r['fps']:.2f} fps"
        )
        out_console.print(f"wrote {r['noisy']}, {r['denoised']}, {r['comparison']}")

    emit(result, as_json, render)
