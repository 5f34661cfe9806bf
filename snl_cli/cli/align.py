"""`snl align`: how well each search method aligns consecutive frames of a clip."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from snl_cli.cli.common import cli_errors, emit
from snl_cli.console import FrameProgress, err_console, out_console

METHODS = ("identity", "flow", "nls", "shifted_nls")


def _odd_sizes(text: str | None) -> tuple[int, ...]:
    if not text:
        return ()
    try:
        sizes = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise typer.BadParameter(
            f"expected odd integers separated by commas, got {text!r}", param_hint="--sweep-ws"
        ) from None
    return sizes


def align(
    src: Annotated[Path, typer.Argument(metavar="INPUT", help="Video file or frame folder.")],
    ws: Annotated[int, typer.Option(help="Search window side (odd), pixels.")] = 9,
    wt: Annotated[int, typer.Option(help="Frame distance: frame t+wt is found in frame t.")] = 1,
    ps: Annotated[int, typer.Option(help="Patch side (odd) for matching and rebuilding.")] = 3,
    sigma: Annotated[
        float, typer.Option(help="Gaussian noise added before the search (0-255 scale).")
    ] = 15.0,
    frames: Annotated[
        str | None, typer.Option(help="Frame range A:B (B excluded), e.g. 0:10.")
    ] = None,
    sweep_ws: Annotated[
        str | None, typer.Option("--sweep-ws", help="Also try these ws, e.g. 3,5,9,13.")
    ] = None,
    plot: Annotated[
        Path | None, typer.Option(help="Write a PNG of PSNR per pair (and the sweep).")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --plot file.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of the added noise.")] = 0,
    backend: Annotated[
        str, typer.Option(help="Search backend: auto, torch, cpu, cuda, emulate.")
    ] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Rebuild each frame t+1 from frame t at every pixel's best match, and score it.

    identity: the same position. flow: the optical-flow position.
    nls: the best of a ws×ws window at the same position.
    shifted_nls: the best of a ws×ws window centred on the flow.
    The search sees the clip plus seeded noise (--sigma).
    The rebuild reads the clean clip.
    """
    from snl_cli.align import AlignParams, align_file
    from snl_cli.plots import plot_alignment

    params = AlignParams(
        ws=ws, wt=wt, ps=ps, sigma=sigma, seed=seed, sweep_ws=_odd_sizes(sweep_ws),
        backend=backend,
    )  # fmt: skip
    with cli_errors():
        params.check()
        with FrameProgress("align", None, enabled=err_console.is_terminal) as bar:
            report = align_file(src, params, frames=frames, progress=bar.advance)
        if plot is not None:
            report["plot"] = str(plot_alignment(report, plot, overwrite=overwrite))
    emit(report, as_json, _render)


def _render(report: dict[str, Any]) -> None:
    out_console.print(_pairs_table(report))
    if report["sweep"]:
        out_console.print(_sweep_table(report))
    flow = report["flow_magnitude"]
    border = report["border_hits"]
    times = report["time_ms"]
    out_console.print(
        f"flow magnitude (px): p50 {flow['p50']:.2f}, p90 {flow['p90']:.2f}, "
        f"p99 {flow['p99']:.2f}   border hits: nls {100 * border['nls']:.0f}%, "
        f"shifted_nls {100 * border['shifted_nls']:.0f}% "
        f"(noise alone: {100 * report['border_chance']:.0f}%)"
    )
    out_console.print(
        "time per pair (ms): "
        + ", ".join(f"{name} {times[name]:.0f}" for name in METHODS)
        + f"; optical flow {times['flow_estimate']:.0f}"
    )
    if "plot" in report:
        out_console.print(f"plot: {report['plot']}")
    out_console.print(f"[bold]verdict:[/] {report['verdict']}")


def _pairs_table(report: dict[str, Any]) -> Table:
    params = report["params"]
    table = Table(
        title=f"{report.get('input', '')}: PSNR (dB) of frame t+{params['wt']} rebuilt from "
        f"frame t (σ={params['sigma']:g}, ws={params['ws']}, ps={params['ps']})",
        title_justify="left",
    )
    table.add_column("t", justify="right")
    for method in METHODS:
        table.add_column(method, justify="right")
    best = max(METHODS, key=lambda m: report["summary"][m])
    for pair in report["pairs"]:
        table.add_row(str(pair["t"]), *(f"{pair[m]:.2f}" for m in METHODS))
    table.add_section()
    table.add_row(
        "mean",
        *(
            f"[bold]{report['summary'][m]:.2f}[/]" if m == best else f"{report['summary'][m]:.2f}"
            for m in METHODS
        ),
    )
    return table


def _sweep_table(report: dict[str, Any]) -> Table:
    table = Table(title="ws sweep: mean PSNR (dB), border hits", title_justify="left")
    for name in ("ws", "nls", "shifted_nls", "nls border", "shifted border", "ms shifted"):
        table.add_column(name, justify="right")
    for row in report["sweep"]:
        table.add_row(
            str(row["ws"]),
            f"{row['nls']:.2f}",
            f"{row['shifted_nls']:.2f}",
            f"{100 * row['border_nls']:.0f}%",
            f"{100 * row['border_shifted_nls']:.0f}%",
            f"{row['ms_shifted_nls']:.0f}",
        )
    return table
