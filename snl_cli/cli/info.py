"""`snl info`: what snl sees in a clip (a Rich table, or one JSON object)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from snl_cli.cli.common import cli_errors, emit
from snl_cli.console import out_console


def info(
    src: Annotated[Path, typer.Argument(metavar="INPUT", help="Video file or frame folder.")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object on stdout.")
    ] = False,
    fps: Annotated[
        float | None, typer.Option("--fps", help=r"Frame rate of a frame folder \[default: 25].")
    ] = None,
    noise: Annotated[
        bool,
        typer.Option(
            "--noise",
            help="Also estimate the noise per channel (Y, Cb, Cr or R, G, B) and per "
            "brightness band (dark, mid, bright) on 5 frames of the first 10 seconds.",
        ),
    ] = False,
) -> None:
    """Show frames, size, rate, pixel format, colour, rotation and streams of a clip."""
    if fps is not None and fps <= 0:
        raise typer.BadParameter(f"must be > 0, got {fps}", param_hint="--fps")
    from snl_cli.video import probe

    with cli_errors():
        clip = probe(src, fps=fps)
        data = clip.to_json()
        if noise:
            data["noise"] = _noise(clip, fps)
    emit(data, as_json, _render)


def _noise(clip: Any, fps: float | None) -> dict[str, Any]:
    """The noise report on up to 5 frames spread over the first 10 s (250 frames at most)."""
    from snl_cli.noise import noise_report, pick_frames
    from snl_cli.pipeline import _report_matrix
    from snl_cli.video import read_frames

    span = min(clip.frames, max(1, min(250, round(10 * float(clip.fps)))))
    wanted = set(pick_frames(span))
    frames = read_frames(clip.path, stop=max(wanted) + 1, fps=fps)
    picked = [f.rgb for f in frames if f.index in wanted]
    report = noise_report(picked, _report_matrix(clip))
    return {**report, "frames": sorted(wanted)}


def _render(data: dict[str, Any]) -> None:
    # Text, not a markup string: a file name such as "clip [final].mp4" is shown as is.
    table = Table(title=Text(data["path"]), show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    for label, value in _rows(data):
        table.add_row(label, Text(value))
    out_console.print(table)
    if "noise" in data:
        out_console.print(_noise_table(data["noise"]))


def _noise_table(report: dict[str, Any]) -> Table:
    names = report["channels"]
    table = Table(title="noise sigma (0-255 scale)", title_justify="left")
    for column in ("band", "pixels", *names):
        table.add_column(column, justify="left" if column == "band" else "right")

    def cells(values: dict[str, Any]) -> list[str]:
        return ["-" if values.get(n) is None else f"{values[n]:.2f}" for n in names]

    table.add_row("all", "100%", *cells(report["overall"]))
    for band, values in report["bands"].items():
        table.add_row(band, f"{100 * values['share']:.0f}%", *cells(values))
    return table


def _rows(data: dict[str, Any]) -> list[tuple[str, str]]:
    rows = [
        ("kind", data["kind"] + (" (truncated)" if data["truncated"] else "")),
        ("frames", str(data["frames"])),
        ("size", f"{data['width']}x{data['height']}"),
        ("fps", _rate(data["fps"], data["fps_exact"])),
        ("duration", f"{data['duration']:.3f} s"),
        ("codec", data["codec"]),
        ("pixel format", f"{data['pix_fmt']} ({data['bit_depth']}-bit)"),
        ("rotation", f"{data['rotation']}°"),
        ("colour", _colour(data["color"])),
        ("time base", data["time_base"]),
        ("audio", _streams(data["audio"], "{codec} {channels} ch {sample_rate} Hz")),
        ("subtitles", _streams(data["subtitles"], "{codec} ({language})")),
    ]
    if data["container"]:
        rows.insert(1, ("container", data["container"]))
    return rows


def _rate(fps: float, exact: str) -> str:
    return f"{fps:g}" if "/" not in exact else f"{fps:g} ({exact})"


def _colour(color: dict[str, str | None]) -> str:
    parts = [f"{key} {value or 'unset'}" for key, value in color.items()]
    return ", ".join(parts)


def _streams(entries: list[dict[str, Any]], template: str) -> str:
    return "; ".join(template.format(**entry) for entry in entries) or "none"
