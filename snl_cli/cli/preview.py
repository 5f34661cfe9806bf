"""`snl preview INPUT -o preview.png`: one frame's crop, input | output, before a long run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from snl_cli.cli.common import cli_errors, emit
from snl_cli.cli.options import (
    ChromaOpt,
    ChunkOpt,
    Device,
    DeviceOpt,
    EnsembleOpt,
    GrainOpt,
    JsonOpt,
    LumaOpt,
    ModelOpt,
    OverlapOpt,
    OverwriteOpt,
    SigmaOpt,
    StrengthOpt,
    TileOpt,
    WeightsOpt,
    denoise_options,
)
from snl_cli.cli.report import ProgressReporter
from snl_cli.console import out_console
from snl_cli.defaults import DEFAULT_CHUNK


def preview(
    src: Annotated[Path, typer.Argument(metavar="INPUT", help="Video file or frame folder.")],
    out: Annotated[Path, typer.Option("-o", "--output", help="PNG image to write.")],
    frame: Annotated[
        int | None,
        typer.Option("--frame", min=0, metavar="N", help=r"Frame index \[default: the middle]."),
    ] = None,
    at_time: Annotated[
        float | None,
        typer.Option("--time", min=0.0, metavar="T", help="Or the frame shown at T seconds."),
    ] = None,
    crop: Annotated[
        str | None,
        typer.Option(
            "--crop", metavar="X,Y,W,H", help=r"Region in pixels \[default: the whole frame]."
        ),
    ] = None,
    strengths: Annotated[
        str | None,
        typer.Option(
            "--strengths",
            metavar="S1,S2,...",
            help="One output panel per strength, e.g. 0.5,0.75,1 (a strip of variants).",
        ),
    ] = None,
    model: ModelOpt = None,
    sigma: SigmaOpt = "auto",
    chunk: ChunkOpt = DEFAULT_CHUNK,
    overlap: OverlapOpt = None,
    tile: TileOpt = None,
    device: DeviceOpt = Device.auto,
    weights: WeightsOpt = None,
    strength: StrengthOpt = 1.0,
    luma: LumaOpt = None,
    chroma: ChromaOpt = None,
    grain: GrainOpt = 0.0,
    ensemble: EnsembleOpt = "auto",
    overwrite: OverwriteOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Denoise one frame's crop exactly as `snl denoise` with the same options would, and
    write input | output side by side at 100 % pixels, labelled, as a PNG.

    Only the chunk window(s) holding the frame and the tiles touching the crop are run, so
    the crop matches the full run bit for bit (8-bit, lossless output, same --tile).
    """
    options = denoise_options(
        model=model, sigma=sigma, chunk=chunk, overlap=overlap, tile=tile, device=device,
        codec=None, crf=None, preset=None, overwrite=overwrite, weights=weights,
        strength=strength, luma=luma, chroma=chroma, grain=grain, ensemble=ensemble,
    )  # fmt: skip
    values = None if strengths is None else _parse_strengths(strengths)
    from snl_cli.preview import make_preview, parse_crop

    with cli_errors(), ProgressReporter() as reporter:
        box = None if crop is None else parse_crop(crop)
        summary = make_preview(
            src, out, options, frame=frame, at_time=at_time, crop=box, strengths=values,
            overwrite=overwrite, reporter=reporter,
        )  # fmt: skip
    emit(summary, as_json, _render)


def _parse_strengths(text: str) -> list[float]:
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise typer.BadParameter(
            f"expected numbers like 0.5,0.75,1, got {text!r}", param_hint="--strengths"
        ) from None
    if not values or any(not 0 <= v <= 1 for v in values):
        raise typer.BadParameter(
            f"expected numbers in [0, 1], got {text!r}", param_hint="--strengths"
        )
    return values


def _render(summary: dict[str, Any]) -> None:
    x, y, w, h = summary["crop"]
    out_console.print(
        f"preview of frame {summary['frame']} ({w}x{h} at {x},{y}), model {summary['model']}"
        f" -> {summary['output']} in {summary['seconds']:.1f} s",
        markup=False,
        soft_wrap=True,
    )
