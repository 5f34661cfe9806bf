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
StrengthOpt = Annotated[
    float,
    typer.Option(
        "--strength",
        min=0.0,
        max=1.0,
        metavar="S",
        help="Blend of input (0) and full denoise (1), for every model: the output is "
        "input + S x (denoised - input); the model itself is not steered.",
    ),
]
LumaOpt = Annotated[
    float | None,
    typer.Option(
        "--luma",
        min=0.0,
        max=1.0,
        metavar="S",
        help=r"Strength for luma (Y of the clip's own YUV matrix) \[default: --strength].",
    ),
]
ChromaOpt = Annotated[
    float | None,
    typer.Option(
        "--chroma",
        min=0.0,
        max=1.0,
        metavar="S",
        help=r"Strength for chroma (Cb, Cr); --luma 0 --chroma 1 removes colour blotches and "
        r"keeps luma grain \[default: --strength].",
    ),
]
GrainOpt = Annotated[
    float,
    typer.Option(
        "--grain",
        min=0.0,
        max=1.0,
        metavar="G",
        help="Share of the fine-scale residual (input - output, high-passed) put back: "
        "0 removes it all, 1 keeps all pixel-scale grain.",
    ),
]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Replace an existing output.")]
StrictOpt = Annotated[
    bool,
    typer.Option(
        "--strict",
        help="Fail on a clip that yields fewer frames than it declares (truncated, corrupt); "
        "without it those frames are reported on stderr and in --json and the rest is written.",
    ),
]
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
    strength: float = 1.0,
    luma: float | None = None,
    chroma: float | None = None,
    grain: float = 0.0,
    frames: str | None = None,
    start: float | None = None,
    duration: float | None = None,
    strict: bool = False,
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
        strength=strength,
        luma=luma,
        chroma=chroma,
        grain=grain,
        frames=None if frames is None else parse_frames(frames),
        start=start,
        duration=duration,
        strict=strict,
    )


def parse_frames(text: str) -> tuple[int, int | None]:
    """ "A:B" → (A, B), "A:" → (A, None): frames A to B-1, counted from 0."""
    first, sep, stop = text.partition(":")
    try:
        if not sep:
            raise ValueError
        a = int(first) if first.strip() else 0
        b = int(stop) if stop.strip() else None
    except ValueError:
        raise typer.BadParameter(
            f"expected A:B (frames A to B-1), got {text!r}", param_hint="--frames"
        ) from None
    if a < 0 or (b is not None and b <= a):
        raise typer.BadParameter(f"expected 0 <= A < B, got {text!r}", param_hint="--frames")
    return a, b


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
        strength=strength, luma=luma, chroma=chroma, grain=grain, frames=frames,
        start=start, duration=duration, strict=strict,
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
        if summary.get("noise") is not None:
            info(noise_line(summary))
        self.close()
        self._bar = FrameProgress(self.label or "denoise", total=clip.frames)
        self._bar.__enter__()

    def advanced(self, frames: int) -> None:
        if self._bar is not None:
            self._bar.advance(frames)

    def warned(self, message: str) -> None:
        warn(message)


def noise_line(summary: dict[str, Any]) -> str:
    """What the model is told and what the clip shows, e.g. "model stan is blind (...)"."""
    seen = ", ".join(
        f"{k} {v:g}" if v is not None else f"{k} ?" for k, v in summary["noise"].items()
    )
    if summary.get("blind"):
        head = f"model {summary['model']} is blind (it estimates the noise itself)"
    else:
        head = f"model {summary['model']} uses sigma {summary['sigma']:g}"
    controls = summary.get("controls") or {}
    blend = ""
    if controls and (controls["luma"], controls["chroma"], controls["grain"]) != (1, 1, 0):
        blend = (
            f"; blend luma {controls['luma']:g} chroma {controls['chroma']:g} "
            f"grain {controls['grain']:g} ({controls['matrix']})"
        )
    return f"{head}; noise seen in the first frames: {seen}{blend}"


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
