"""`snl batch FOLDER -o OUTDIR`: every clip below a folder, resumable, shardable."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from snl_cli.cli.common import cli_errors, emit
from snl_cli.cli.denoise import (
    ChunkOpt,
    CodecOpt,
    CrfOpt,
    Device,
    DeviceOpt,
    JsonOpt,
    ModelOpt,
    OverlapOpt,
    OverwriteOpt,
    PresetOpt,
    ProgressReporter,
    SigmaOpt,
    TileOpt,
    WeightsOpt,
    denoise_options,
)
from snl_cli.console import err_console, out_console
from snl_cli.defaults import DEFAULT_CHUNK
from snl_cli.errors import EXIT_FAILURE


def batch(
    folder: Annotated[Path, typer.Argument(metavar="FOLDER", help="Folder of clips.")],
    outdir: Annotated[
        Path, typer.Option("-o", "--output", metavar="OUTDIR", help="Folder for the results.")
    ],
    pattern: Annotated[
        str, typer.Option("--pattern", help="Only clips whose name matches, e.g. '*.mp4'.")
    ] = "*",
    recursive: Annotated[
        bool, typer.Option("--recursive/--no-recursive", help="Look in nested subfolders too.")
    ] = False,
    shard: Annotated[
        str | None,
        typer.Option("--shard", metavar="I/N", help="Process share I of N (1-based)."),
    ] = None,
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
    """Denoise every video and frame folder below FOLDER; finished clips are skipped."""
    options = denoise_options(
        model=model, sigma=sigma, chunk=chunk, overlap=overlap, tile=tile, device=device,
        codec=codec, crf=crf, preset=preset, overwrite=overwrite, weights=weights,
    )  # fmt: skip
    from snl_cli.batch import BatchOptions, parse_shard, run_batch

    with cli_errors():
        share = parse_shard(shard) if shard is not None else None
        report = run_batch(
            folder, outdir, options, BatchOptions(pattern, recursive, share), _Events()
        )
    emit(report, as_json, _render)
    if report["failed"]:
        raise typer.Exit(EXIT_FAILURE)


class _Events:
    """Per-clip progress bars and one line per finished clip, on stderr."""

    @contextmanager
    def clip(self, rel: str, number: int, count: int) -> Iterator[ProgressReporter]:
        with ProgressReporter(f"[{number}/{count}] {rel}") as reporter:
            yield reporter

    def done(self, result: dict[str, Any]) -> None:
        if result["status"] == "failed":
            err_console.print(f"snl: error: {result['error']}", markup=False, soft_wrap=True)
        elif result["status"] == "skipped":
            err_console.print(f"skipped {result['input']}: {result['reason']}", markup=False)


def _render(report: dict[str, Any]) -> None:
    table = Table(title=f"{report['folder']} -> {report['outdir']}", title_justify="left")
    for column in ("clip", "status", "frames", "fps", "sigma", "note"):
        table.add_column(
            column, justify="right" if column in ("frames", "fps", "sigma") else "left"
        )
    for row in report["clips"]:
        note = row.get("cause") or row.get("reason") or ""
        table.add_row(
            row["input"],
            row["status"],
            str(row.get("frames", "")),
            f"{row['fps']:.2f}" if row.get("fps") else "",
            f"{row['sigma']:g}" if row.get("sigma") is not None else "",
            note,
        )
    out_console.print(table)
    out_console.print(
        f"{report['done']} done, {report['skipped']} skipped, {report['failed']} failed; "
        f"{report['frames']} frames in {report['seconds']:.1f} s",
        markup=False,
    )
