"""`snl denoise INPUT -o OUTPUT`: one clip in, the same clip denoised out.

The options shared with `snl batch` are defined here once (the `*Opt` aliases) and turned
into a `DenoiseOptions` by `denoise_options`.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from snl_cli.cli.common import cli_errors, emit
from snl_cli.console import FrameProgress, info, out_console, warn
from snl_cli.defaults import DEFAULT_CHUNK

if TYPE_CHECKING:
    from snl_cli.pipeline import DenoiseOptions
    from snl_cli.video import ClipInfo


class Model(str, Enum):
    stan = "stan"
    nlm = "nlm"


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


ModelOpt = Annotated[
    Model | None,
    typer.Option(
        "--model", help=r"Denoiser \[default: stan when its weights are installed, else nlm]."
    ),
]
SigmaOpt = Annotated[
    str,
    typer.Option(
        "--sigma", metavar="auto|N", help="Noise level on the 0-255 scale, or auto (estimated)."
    ),
]
ChunkOpt = Annotated[int, typer.Option("--chunk", min=1, help="Frames denoised together.")]
OverlapOpt = Annotated[
    int | None,
    typer.Option(
        "--overlap", min=0, help=r"Context frames on each side of a chunk \[default: the model's]."
    ),
]
TileOpt = Annotated[
    int | None,
    typer.Option(
        "--tile", min=64, metavar="PX", help=r"Largest tile side \[default: from free memory]."
    ),
]
DeviceOpt = Annotated[Device, typer.Option("--device", help="Where to run.")]
CodecOpt = Annotated[
    str | None,
    typer.Option(
        "--codec", help=r"Video encoder, e.g. libx264, libx265, ffv1 \[default: follow the input]."
    ),
]
CrfOpt = Annotated[
    int | None, typer.Option("--crf", min=0, help="Encoder quality (lower is better).")
]
PresetOpt = Annotated[str | None, typer.Option("--preset", help="Encoder speed preset.")]
WeightsOpt = Annotated[
    Path | None,
    typer.Option("--weights", help=r"STAN weights file \[default: the ones shipped with snl]."),
]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Replace an existing output.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the summary as JSON on stdout.")]


def parse_sigma(text: str) -> float | None:
    """ "auto" → None; a number in [0, 255] → float; anything else is a usage error."""
    if text.strip().lower() == "auto":
        return None
    try:
        value = float(text)
    except ValueError:
        raise typer.BadParameter(
            f"expected auto or a number, got {text!r}", param_hint="--sigma"
        ) from None
    if not 0 <= value <= 255:
        raise typer.BadParameter(f"expected 0 to 255, got {value:g}", param_hint="--sigma")
    return value


def denoise_options(
    *,
    model: Model | None,
    sigma: str,
    chunk: int,
    overlap: int | None,
    tile: int | None,
    device: Device,
    codec: str | None,
    crf: int | None,
    preset: str | None,
    overwrite: bool,
    weights: Path | None = None,
) -> DenoiseOptions:
    """The pipeline's options from the command-line values (usage errors raised here)."""
    from snl_cli.pipeline import DenoiseOptions

    if overlap is not None and overlap > chunk:
        raise typer.BadParameter(
            f"expected at most --chunk ({chunk}) frames, got {overlap}", param_hint="--overlap"
        )
    return DenoiseOptions(
        model=model.value if model else None,
        sigma=parse_sigma(sigma),
        chunk=chunk,
        overlap=overlap,
        tile=tile,
        device=device.value,
        codec=codec,
        crf=crf,
        preset=preset,
        overwrite=overwrite,
        weights=None if weights is None else str(weights),
    )


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
    overwrite: OverwriteOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Denoise one clip; audio, subtitles, timestamps, bit depth and colour are kept."""
    options = denoise_options(
        model=model, sigma=sigma, chunk=chunk, overlap=overlap, tile=tile, device=device,
        codec=codec, crf=crf, preset=preset, overwrite=overwrite, weights=weights,
    )  # fmt: skip
    from snl_cli.pipeline import denoise_file

    with cli_errors(), ProgressReporter() as reporter:
        summary = denoise_file(src, out, options, reporter)
    emit(summary, as_json, render_summary)


class ProgressReporter:
    """The pipeline's Reporter on stderr: a start line, a frame bar, warnings."""

    def __init__(self, label: str | None = None) -> None:
        self.label = label
        self._bar: FrameProgress | None = None

    def __enter__(self) -> ProgressReporter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None

    def started(self, clip: ClipInfo, summary: dict[str, Any]) -> None:
        how = "given" if summary["sigma_source"] == "given" else "estimated"
        tiles = f", tiles of {summary['tile']} px" if summary["tile"] else ""
        info(
            f"{summary['input']} -> {summary['output']}: {clip.frames} frames "
            f"{clip.width}x{clip.height}, model {summary['model']} on {summary['device']}, "
            f"sigma {summary['sigma']:g} ({how}), chunk {summary['chunk']} "
            f"overlap {summary['overlap']}{tiles}"
        )
        self.close()
        self._bar = FrameProgress(self.label or "denoise", total=clip.frames)
        self._bar.__enter__()

    def advanced(self, frames: int) -> None:
        if self._bar is not None:
            self._bar.advance(frames)

    def warned(self, message: str) -> None:
        warn(message)


def render_summary(summary: dict[str, Any]) -> None:
    """One human line on stdout: what was written, how fast, with which σ."""
    fps = summary["fps"] or 0.0
    out_console.print(
        f"denoised {summary['frames']} frames in {summary['seconds']:.1f} s "
        f"({fps:.2f} fps), sigma {summary['sigma']:g}, model {summary['model']} -> "
        f"{summary['output']}",
        markup=False,
        soft_wrap=True,
    )
