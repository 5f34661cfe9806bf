"""`snl bench …`: measurements, one command per subject (a Typer sub-app)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from snl_cli.cli.common import cli_errors, emit
from snl_cli.cli.options import Device, DeviceOpt, EnsembleOpt, parse_ensemble
from snl_cli.console import err_console, out_console

app = typer.Typer(help="Measure speed and memory.", no_args_is_help=True, rich_markup_mode="rich")


@app.callback()
def _bench() -> None:
    """Measure speed and memory (one sub-command per subject)."""


@app.command("search")
def search(
    as_json: Annotated[bool, typer.Option("--json", help="JSON report on stdout.")] = False,
    device: DeviceOpt = Device.cpu,
    backends: Annotated[
        list[str] | None,
        typer.Option(
            "--backends",
            help="Backends to compare: cpu, torch, cuda, emulate and the "
            "'unfold' patch-database baseline (default: cpu,unfold; cuda,unfold on cuda).",
        ),
    ] = None,
    sizes: Annotated[
        list[str] | None,
        typer.Option(
            "--sizes",
            help="Problems: headline, stan, stan-int, thw/4, thw*4, ws5, ws13, "
            "tiny (default: all but tiny).",
        ),
    ] = None,
    repeat: Annotated[int, typer.Option(min=1, help="Timed runs per measurement.")] = 3,
) -> None:
    """Time and peak memory of the search backends against the unfold baseline.

    Ratios: the baseline's time and peak memory over the backend's (fresh process each).
    """
    from snl_cli.bench.search import DEFAULT_SIZES, SIZES, run_search_bench

    chosen = sizes or list(DEFAULT_SIZES)
    unknown = [s for s in chosen if s not in SIZES]
    if unknown:
        raise typer.BadParameter(
            f"unknown {', '.join(unknown)}; choose from {', '.join(SIZES)}", param_hint="--sizes"
        )
    names = backends or None
    with cli_errors():
        from snl_cli.denoisers import resolve_device

        where = resolve_device(device.value).type  # "auto": CUDA when available
        with _progress(len(chosen) * len(names or [0, 0]), enabled=not as_json) as step:
            report = run_search_bench(names, chosen, where, repeat, progress=step)
    emit(report, as_json, _render)


@contextmanager
def _progress(total: int, enabled: bool) -> Iterator[Callable[[str], None]]:
    """A Rich progress line on stderr; yields `step(description)`, called per measurement."""
    from rich.progress import MofNCompleteColumn, Progress, SpinnerColumn, TimeElapsedColumn

    progress = Progress(
        SpinnerColumn(),
        "[bold]{task.description}",
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        disable=not enabled,
        transient=True,
    )
    task = progress.add_task("bench search", total=total)
    started = False

    def step(description: str) -> None:
        nonlocal started
        progress.update(task, description=description, advance=1 if started else 0)
        started = True

    with progress:
        yield step


def _number(value: float | None, unit: str = "", digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}{unit}"


def _render(report: dict[str, Any]) -> None:
    table = Table(
        title=f"Shifted-NLS search on {report['device']} ({report['threads']} threads, "
        f"median of {report['repeat']})",
        title_justify="left",
    )
    for column in ("size", "backend", "time", "peak memory", "speed-up", "memory saving"):
        table.add_column(column, justify="left" if column in ("size", "backend") else "right")
    for case in report["cases"]:
        size = case["size"]
        label = (
            f"{case['name']}\nT={size['T']} C={size['C']} {size['H']}x{size['W']} "
            f"ws={size['ws']} ps={size['ps']}" + (" +offsets" if size["offsets"] else "")
        )
        for i, (backend, result) in enumerate(case["results"].items()):
            ratios = case["ratios"].get(backend, {})
            if "error" in result:
                table.add_row(label if i == 0 else "", backend, result["error"], "", "", "")
                continue
            table.add_row(
                label if i == 0 else "",
                backend,
                _number(1e3 * result["time_s"], " ms"),
                _number(result["peak_mb"], " MiB"),
                _number(ratios.get("speedup"), "x"),
                _number(ratios.get("memory_saving"), "x"),
            )
        table.add_section()
    out_console.print(table)
    for case in report["cases"]:
        for backend, result in case["results"].items():
            if "gather_s" in result:
                size = case["size"]
                out_console.print(
                    f"{case['name']}: {backend} gather of {size['gather_k']} matches x "
                    f"{size['gather_c']} channels {_number(1e3 * result['gather_s'], ' ms')}, "
                    f"with backward {_number(1e3 * result['gather_with_backward_s'], ' ms')}"
                )
    for backend, growth in report["scaling"].items():
        for key, label in (("thw", "T*H*W"), ("ws2", "ws^2")):
            if growth.get(key):
                times = ", ".join(_number(p["time_s"] * 1e3, " ms") for p in growth[key]["points"])
                exponent = growth[key]["exponent"]
                out_console.print(f"{backend}: time ~ ({label})^{exponent:.2f} ({times})")


@app.command("denoise")
def denoise(
    clips: Annotated[
        list[Path],
        typer.Argument(
            metavar="CLIP",
            help="Clean clips: video files, frame folders, or folders of them.",
        ),
    ],
    sigma: Annotated[
        list[float] | None,
        typer.Option("--sigma", help="Noise levels (0-255 scale): --sigma 20 30 40."),
    ] = None,
    frames: Annotated[int, typer.Option(min=2, help="Frames per clip (from the start).")] = 20,
    methods: Annotated[
        list[str] | None,
        typer.Option(
            "--methods",
            help="stan, nlm and FFmpeg's bm3d, nlmeans, fftdnoiz, fftdnoiz-t, dctdnoiz "
            "(default: stan when installed, nlm, bm3d, nlmeans, fftdnoiz, dctdnoiz); "
            "stan:WEIGHTS measures STAN with other weights beside them.",
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Noise seed.")] = 0,
    noise: Annotated[
        str,
        typer.Option(
            help="Noise kind: gaussian, shot (Poisson-Gaussian in linear light), demosaic "
            "(camera mosaic, WB, colour matrix), lowlight, x264 (Gaussian then x264 crf 23), "
            "hevc (Gaussian then x265 crf 28), jpeg, camera (demosaic + chroma smoothing + "
            "sharpening + x264). --sigma sets the level (std at mid-grey before in-camera "
            "processing).",
        ),
    ] = "gaussian",
    weights: Annotated[Path | None, typer.Option(help="STAN weights file.")] = None,
    ensemble: EnsembleOpt = "auto",
    plot: Annotated[Path | None, typer.Option(help="Write a PSNR bar chart (PNG).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON report on stdout.")] = False,
) -> None:
    """PSNR, SSIM and fps of snl and FFmpeg's denoisers on clips with added noise.

    snl runs end to end (decode, denoise, encode); FFmpeg's filters are tuned per clip and
    level: around the true sigma for Gaussian noise, over their whole range for the other
    kinds (their best case).
    """
    from snl_cli.bench.denoise import (
        DEFAULT_METHODS,
        DenoiseBench,
        plot_summary,
        run_denoise_bench,
        speed_and_memory,
        summarise,
    )
    from snl_cli.clips import expand_clips
    from snl_cli.denoisers import default_model

    with cli_errors():
        chosen = methods
        if not chosen:
            chosen = [m for m in DEFAULT_METHODS if m != "stan" or default_model() == "stan"]
        bench = DenoiseBench(
            clips=expand_clips(clips),
            sigmas=list(sigma or [20.0, 30.0, 40.0]),
            frames=frames,
            methods=chosen,
            seed=seed,
            weights=str(weights) if weights else None,
            noise=noise,
            ensemble=parse_ensemble(ensemble),
        )
        bench.check()
        total = len(bench.clips) * len(bench.sigmas) * len(bench.methods)
        with _progress(total, enabled=not as_json) as step:
            report = run_denoise_bench(bench, step)
        report["summary"] = summarise(report["rows"])
        report["stan_vs_bm3d"] = speed_and_memory(report["rows"])
        if plot is not None:
            plot_summary(report["summary"], plot)
            report["plot"] = str(plot)
    emit(report, as_json, _render_denoise)


def _render_denoise(report: dict[str, Any]) -> None:
    table = Table(title="Denoising: PSNR / SSIM / fps / peak memory", title_justify="left")
    numbers = ("σ", "PSNR (dB)", "SSIM", "fps", "peak MB")
    for column in ("clip", "σ", "method", "PSNR (dB)", "SSIM", "fps", "peak MB", "settings"):
        table.add_column(column, justify="right" if column in numbers else "left")
    previous = None
    for row in report["rows"]:
        key = (row["clip"], row["sigma"])
        if previous is not None and key != previous:
            table.add_section()
        previous = key
        table.add_row(
            row["clip"],
            f"{row['sigma']:g}",
            row["method"],
            f"{row['psnr']:.2f}",
            f"{row['ssim']:.3f}",
            _number(row["fps"], digits=2),
            _number(row.get("peak_mb"), digits=0),
            row["settings"],
        )
    out_console.print(table)
    means = Table(title="Mean over clips", title_justify="left")
    for column in ("σ", "method", "PSNR (dB)", "SSIM", "fps", "peak MB"):
        means.add_column(column, justify="left" if column == "method" else "right")
    for row in report["summary"]:
        means.add_row(
            f"{row['sigma']:g}",
            row["method"],
            f"{row['psnr']:.2f}",
            f"{row['ssim']:.3f}",
            _number(row["fps"], digits=2),
            _number(row.get("peak_mb"), digits=0),
        )
    out_console.print(means)
    for line in report.get("stan_vs_bm3d", []):
        peak = line["peak_mb"]
        out_console.print(
            f"{line['clip']} ({line['size']}, σ {line['sigma']:g}): stan runs at "
            f"{line['ratio']:.2f}x bm3d's fps; peak memory stan {_number(peak['stan'], digits=0)} "
            f"MB, bm3d +{_number(peak['bm3d'], digits=0)} MB"
        )
    out_console.print(report["note"])


@app.command("pairs")
def pairs(
    folders: Annotated[
        list[Path],
        typer.Argument(
            metavar="FOLDER", help="Folders of real pairs: noisy/ and clean/ with matching names."
        ),
    ],
    methods: Annotated[
        list[str] | None,
        typer.Option(
            "--methods",
            help="stan, nlm, stan:WEIGHTS and the peers bm3d, nlmeans, fftdnoiz, dctdnoiz, "
            r"opencv-nlm \[default: stan,bm3d,nlmeans,opencv-nlm].",
        ),
    ] = None,
    limit: Annotated[
        int | None, typer.Option(min=1, help="At most this many pairs per folder (sorted).")
    ] = None,
    ensemble: EnsembleOpt = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="JSON report on stdout.")] = False,
) -> None:
    """PSNR and SSIM of snl and its peers on real noisy/clean image pairs.

    snl denoises each noisy image blind, as a one-frame clip, end to end; each peer's strength
    is swept over its whole range per image and the best PSNR kept (their best case).
    """
    from snl_cli.bench.pairs import DEFAULT_PAIR_METHODS, PairsBench, run_pairs_bench

    with cli_errors():
        bench = PairsBench(
            folders=list(folders),
            methods=methods or list(DEFAULT_PAIR_METHODS),
            limit=limit,
            ensemble=parse_ensemble(ensemble),
        )
        bench.check()
        from snl_cli.pairs import pair_names

        count = sum(len(pair_names(f)[:limit]) for f in bench.folders)
        with _progress(count * len(bench.methods), enabled=not as_json) as step:
            report = run_pairs_bench(bench, step)
    emit(report, as_json, _render_pairs)


def _render_pairs(report: dict[str, Any]) -> None:
    table = Table(title="Real pairs: mean PSNR / SSIM", title_justify="left")
    for column in ("set", "method", "images", "PSNR (dB)", "gain (dB)", "SSIM"):
        table.add_column(column, justify="left" if column in ("set", "method") else "right")
    for row in report["summary"]:
        table.add_row(
            row["set"],
            row["method"],
            str(row["images"]),
            f"{row['psnr']:.2f}",
            f"{row['gain']:+.2f}",
            f"{row['ssim']:.3f}",
        )
    out_console.print(table)
    out_console.print(report["note"])
