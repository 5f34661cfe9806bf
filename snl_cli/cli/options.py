"""Options shared by the commands that denoise (`snl denoise`, `snl batch`, `snl preview`):
the `*Opt` aliases, defined once, and `denoise_options`, which turns their values into a
`DenoiseOptions` (usage errors raised here). Also the one `--device` type (`Device`,
`DeviceOpt`) every command uses."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from snl_cli.denoisers import MODELS

if TYPE_CHECKING:
    from snl_cli.pipeline import DenoiseOptions


class Device(str, Enum):
    """Where to run: `--device` of every command."""

    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


Model = Enum("Model", {name: name for name in MODELS}, type=str)  # the `--model` choices


ModelOpt = Annotated[
    Model | None,
    typer.Option(
        "--model", help=r"Denoiser \[default: stan when its weights are installed, else nlm]."
    ),
]
SigmaOpt = Annotated[
    str,
    typer.Option(
        "--sigma",
        metavar="auto|N",
        help="Noise level on the 0-255 scale, or auto (estimated from the clip). Read by nlm "
        "and by STAN weights with a level input (the shipped ones): a higher level denoises "
        "harder.",
    ),
]
ChunkOpt = Annotated[
    int,
    typer.Option(
        "--chunk",
        min=1,
        help="Frames denoised together in a chunked run (STAN on the CPU "
        "streams frames one at a time instead).",
    ),
]
OverlapOpt = Annotated[
    int | None,
    typer.Option(
        "--overlap", min=0, help=r"Context frames on each side of a chunk \[default: the model's]."
    ),
]
TileOpt = Annotated[
    int | None,
    typer.Option(
        "--tile",
        min=64,
        metavar="PX",
        help=r"Largest tile side, halo included \[default: STAN on the CPU streams whole "
        r"frames up to 2560x1088, tiles of at most 1.6 MP above; chunked runs tile from the "
        r"free memory].",
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
        "input + S x (denoised - input). It blends rather than steering the shipped STAN's "
        "noise level, which moves its output too little to span that range (--sigma nudges it).",
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
EnsembleOpt = Annotated[
    str,
    typer.Option(
        "--ensemble",
        metavar="auto|N",
        help="Passes of the geometric self-ensemble (1, 2, 4 or 8 flipped/transposed copies, "
        "averaged): better, N times slower. auto: 8 for a one-frame input (a photo), 1 for "
        "video.",
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


def parse_ensemble(text: str) -> int | None:
    """ "auto" → None; one of ensemble.PASSES → int; anything else is a usage error."""
    from snl_cli.ensemble import PASSES

    if text.strip().lower() == "auto":
        return None
    if text.strip() not in {str(p) for p in PASSES}:
        choices = ", ".join(str(p) for p in PASSES)
        raise typer.BadParameter(
            f"expected auto or {choices}, got {text!r}", param_hint="--ensemble"
        )
    return int(text)


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
    ensemble: str = "auto",
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
        ensemble=parse_ensemble(ensemble),
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
