"""`snl denoise INPUT -o OUTPUT`: one clip in, the same clip denoised out (its options are
shared with `snl batch` and `snl preview`: `snl_cli.cli.options`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from snl_cli.cli.common import cli_errors, emit
from snl_cli.cli.options import (
    ChromaOpt,
    ChunkOpt,
    CodecOpt,
    CrfOpt,
    Device,
    DeviceOpt,
    EnsembleOpt,
    GrainOpt,
    JsonOpt,
    LumaOpt,
    ModelOpt,
    OverlapOpt,
    OverwriteOpt,
    PresetOpt,
    SigmaOpt,
    StrengthOpt,
    StrictOpt,
    TileOpt,
    WeightsOpt,
    denoise_options,
)
from snl_cli.cli.report import ProgressReporter
from snl_cli.console import out_console
from snl_cli.defaults import DEFAULT_CHUNK


def denoise(
    src: Annotated[Path, typer.Argument(metavar="INPUT", help="Video file or frame folder.")],
    out: Annotated[Path, typer.Option("-o", "--output", help="Output file, or folder for frames.")],
    model: ModelOpt = None,
    sigma: SigmaOpt = "auto",
    chunk: ChunkOpt = DEFAULT_CHUNK,
    overlap: OverlapOpt = None,
    tile: TileOpt = None,
    device: DeviceOpt = Device.auto,
    codec: CodecOpt = None,
    crf: CrfOpt = None,
    preset: PresetOpt = None,
    weights: WeightsOpt = None,
    strength: StrengthOpt = 1.0,
    luma: LumaOpt = None,
    chroma: ChromaOpt = None,
    grain: GrainOpt = 0.0,
    ensemble: EnsembleOpt = "auto",
    frames: Annotated[
        str | None,
        typer.Option(
            "--frames",
            metavar="A:B",
            help=r"Only frames A to B-1 (from 0; 'A:' runs to the end) \[default: all].",
        ),
    ] = None,
    start: Annotated[
        float | None,
        typer.Option(
            "--start", min=0.0, metavar="T", help=r"Start at T seconds \[default: the start]."
        ),
    ] = None,
    duration: Annotated[
        float | None,
        typer.Option(
            "--duration", min=0.0, metavar="D", help=r"Only D seconds \[default: to the end]."
        ),
    ] = None,
    overwrite: OverwriteOpt = False,
    strict: StrictOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Denoise one clip; audio, subtitles, timestamps, bit depth and colour are kept.

    With --frames or --start/--duration only that part is written; its timestamps start
    at 0 and the audio and subtitles are cut to the same span.
    """
    options = denoise_options(
        model=model, sigma=sigma, chunk=chunk, overlap=overlap, tile=tile, device=device,
        codec=codec, crf=crf, preset=preset, overwrite=overwrite, weights=weights,
        strength=strength, luma=luma, chroma=chroma, grain=grain, ensemble=ensemble, frames=frames,
        start=start, duration=duration, strict=strict,
    )  # fmt: skip
    from snl_cli.pipeline import denoise_file

    with cli_errors(), ProgressReporter() as reporter:
        summary = denoise_file(src, out, options, reporter)
    emit(summary, as_json, render_summary)


def render_summary(summary: dict[str, Any]) -> None:
    """One human line on stdout: what was written, how fast, with which σ."""
    fps = summary["fps"] or 0.0
    out_console.print(
        f"denoised {summary['frames']} frame{'' if summary['frames'] == 1 else 's'} in "
        f"{summary['seconds']:.1f} s "
        f"({fps:.2f} fps, the first after {summary.get('first_frame_seconds') or 0:.1f} s), "
        f"{_told(summary)}, model {summary['model']} -> "
        f"{summary['output']}",
        markup=False,
        soft_wrap=True,
    )


def _told(summary: dict[str, Any]) -> str:
    return "blind" if summary["sigma"] is None else f"sigma {summary['sigma']:g}"
