"""`snl batch FOLDER -o OUTDIR`: every clip below a folder, resumable, shardable, on one
machine or a Ray cluster (`--ray`); `snl batch --status OUTDIR` says what is done."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from typer.core import TyperCommand

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
from snl_cli.console import err_console, error, out_console
from snl_cli.defaults import DEFAULT_CHUNK
from snl_cli.errors import EXIT_FAILURE

# `--ray` takes an optional ADDRESS: it is the next word only when that looks like one.
_ADDRESS = re.compile(r"^(auto|local|(ray://)?[A-Za-z0-9_.\-\[\]:]+:\d+)$")


class BatchCommand(TyperCommand):
    """`snl batch` with `--ray [ADDRESS]`: a bare `--ray` means a local Ray instance.

    Click has no optional option values, so a bare `--ray` (followed by nothing, another
    option, or a word that is not an address: "auto", "local", HOST:PORT, ray://HOST:PORT)
    becomes `--ray=local` before parsing.
    """

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        args = list(args)
        for i, arg in enumerate(args):
            if arg == "--":
                break
            if arg != "--ray":
                continue
            following = args[i + 1] if i + 1 < len(args) else None
            if following is None or not _ADDRESS.match(following) or Path(following).exists():
                args[i] = "--ray=local"
        return super().parse_args(ctx, args)


def batch(
    folder: Annotated[
        Path | None, typer.Argument(metavar="FOLDER", help="Folder of clips.", show_default=False)
    ] = None,
    outdir: Annotated[
        Path | None,
        typer.Option("-o", "--output", metavar="OUTDIR", help="Folder for the results."),
    ] = None,
    pattern: Annotated[
        str, typer.Option("--pattern", help="Only clips whose name matches, e.g. '*.mp4'.")
    ] = "*",
    recursive: Annotated[
        bool, typer.Option("--recursive/--no-recursive", help="Look in nested subfolders too.")
    ] = False,
    photos: Annotated[
        bool,
        typer.Option(
            "--photos",
            help="Every image is a photograph of its own, also in subfolders (not a frame "
            "sequence). Images directly in FOLDER always are.",
        ),
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
    strength: StrengthOpt = 1.0,
    luma: LumaOpt = None,
    chroma: ChromaOpt = None,
    grain: GrainOpt = 0.0,
    ensemble: EnsembleOpt = "auto",
    overwrite: OverwriteOpt = False,
    strict: StrictOpt = False,
    retry_failed: Annotated[
        bool,
        typer.Option("--retry-failed", help="Only the clips whose last run failed."),
    ] = False,
    status: Annotated[
        Path | None,
        typer.Option(
            "--status",
            metavar="OUTDIR",
            help="Merge OUTDIR's manifests (all shards): list done, failed and missing clips.",
        ),
    ] = None,
    ray: Annotated[
        str | None,
        typer.Option(
            "--ray",
            metavar="[ADDRESS]",
            help="Run on Ray: a local instance, or 'auto', HOST:PORT, ray://HOST:PORT.",
            rich_help_panel="Ray cluster",
        ),
    ] = None,
    gpus_per_clip: Annotated[
        float | None,
        typer.Option(
            "--gpus-per-clip",
            min=0,
            help=r"GPUs one clip holds \[default: 1 if the cluster has GPUs, else 0].",
            rich_help_panel="Ray cluster",
        ),
    ] = None,
    cpus_per_clip: Annotated[
        float,
        typer.Option(
            "--cpus-per-clip",
            min=0,
            help="CPU cores one clip holds.",
            rich_help_panel="Ray cluster",
        ),
    ] = 1.0,
    retries: Annotated[
        int,
        typer.Option(
            "--retries", min=0, help="Tries more when a worker dies.", rich_help_panel="Ray cluster"
        ),
    ] = 2,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            help=r"Workers to start \[default: as many as the resources fit].",
            rich_help_panel="Ray cluster",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Denoise every video and frame folder below FOLDER; finished clips are skipped."""
    if status is not None:
        if folder is not None or outdir is not None:
            raise typer.BadParameter("--status OUTDIR takes no FOLDER or -o")
        _status(status, as_json)
        return
    if folder is None or outdir is None:
        raise typer.BadParameter("expected FOLDER -o OUTDIR (or --status OUTDIR)")
    options = denoise_options(
        model=model, sigma=sigma, chunk=chunk, overlap=overlap, tile=tile, device=device,
        codec=codec, crf=crf, preset=preset, overwrite=overwrite, weights=weights,
        strength=strength, luma=luma, chroma=chroma, grain=grain, ensemble=ensemble, strict=strict,
    )  # fmt: skip
    from snl_cli.batch import BatchOptions, parse_shard, run_batch

    with cli_errors():
        share = parse_shard(shard) if shard is not None else None
        which = BatchOptions(pattern, recursive, share, retry_failed=retry_failed, photos=photos)
        if ray is None:
            report = run_batch(folder, outdir, options, which, _Events())
        else:
            from snl_cli.cluster import RayOptions, parse_address, run_batch_ray

            cluster = RayOptions(parse_address(ray), gpus_per_clip, cpus_per_clip, retries, workers)
            with _ClusterEvents() as events:
                report = run_batch_ray(folder, outdir, options, which, events, cluster)
    emit(report, as_json, _render)
    if report["failed"]:
        raise typer.Exit(EXIT_FAILURE)


def _status(outdir: Path, as_json: bool) -> None:
    from snl_cli.batch import batch_status

    with cli_errors():
        report = batch_status(outdir)
    emit(report, as_json, _render_status)
    if report["failed"] or report["missing"]:
        raise typer.Exit(EXIT_FAILURE)


class _Events:
    """Per-clip progress bars and one line per finished clip, on stderr."""

    @contextmanager
    def clip(self, rel: str, number: int, count: int) -> Iterator[ProgressReporter]:
        with ProgressReporter(f"[{number}/{count}] {rel}") as reporter:
            yield reporter

    def done(self, result: dict[str, Any]) -> None:
        if result["status"] == "failed":
            error(result["error"])
        elif result["status"] == "skipped":
            err_console.print(f"skipped {result['input']}: {result['reason']}", markup=False)


class _ClusterEvents:
    """One bar over all clips (clips done, frames/s across workers, ETA) on stderr."""

    def __init__(self) -> None:
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("clips {task.fields[fps]} frames/s"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=err_console,
        )
        self.task: Any = None
        self.start = time.perf_counter()

    def __enter__(self) -> _ClusterEvents:
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def started(self, clips: int, workers: int, resources: str) -> None:
        err_console.print(
            f"ray: {clips} clips on {workers} workers ({resources} each)", markup=False
        )
        self.task = self.progress.add_task("ray", total=clips, fps="0.00")
        self.start = time.perf_counter()
        self.progress.start()

    def progressed(self, clips: int, frames: int) -> None:
        if self.task is not None:
            rate = frames / max(time.perf_counter() - self.start, 1e-9)
            self.progress.update(self.task, completed=clips, fps=f"{rate:.2f}")

    def retried(self, rel: str, attempt: int, cause: str) -> None:
        err_console.print(
            f"snl: warning: {rel}: worker died ({cause}); try {attempt}", markup=False
        )

    def done(self, result: dict[str, Any]) -> None:
        if result["status"] == "failed":
            error(result["error"])
        elif result["status"] == "skipped":
            err_console.print(f"skipped {result['input']}: {result['reason']}", markup=False)
        for message in result.get("warnings", []):
            err_console.print(f"snl: warning: {result['input']}: {message}", markup=False)


def _render_status(report: dict[str, Any]) -> None:
    table = Table(title=f"{report['folder']} -> {report['outdir']}", title_justify="left")
    for column in ("clip", "status", "note"):
        table.add_column(column)
    for row in report["clips"]:
        table.add_row(row["input"], row["status"], row["note"])
    out_console.print(table)
    out_console.print(
        f"{report['done']} done, {report['failed']} failed, {report['missing']} missing "
        f"(manifests: {', '.join(report['manifests'])})",
        markup=False,
    )


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
