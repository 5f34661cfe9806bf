"""Matplotlib figures written as PNG (Agg backend, no display), safely renamed into place:
`pyplot()` and `save_figure` serve every figure snl draws (alignment, bench, demo)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

# One colour and marker per method, the same in every figure.
STYLE = {
    "identity": ("tab:gray", "x"),
    "flow": ("tab:blue", "s"),
    "nls": ("tab:orange", "^"),
    "shifted_nls": ("tab:green", "o"),
}


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, dst: Path, *, dpi: int, overwrite: bool = True) -> Path:
    """Write `fig` under a temporary name beside `dst` (format from its suffix; PNG without
    one), rename it into place and close the figure; returns dst.

    Raises:
        OutputError: dst cannot be written (or exists, without overwrite).
    """
    from snl_cli.video.safety import write_atomically

    try:
        write_atomically(Path(dst), lambda tmp: fig.savefig(tmp, dpi=dpi), overwrite)
    finally:
        pyplot().close(fig)
    return Path(dst)


def plot_alignment(report: dict[str, Any], dst: Path, *, overwrite: bool = False) -> Path:
    """PSNR per frame pair per method; with a ws sweep, a second panel of PSNR vs ws.

    Args:
        report: the dict of `snl_cli.align.align_clip`.
        dst: PNG path; written under a temporary name, then renamed.
        overwrite: replace an existing `dst`.

    Returns:
        dst.

    Raises:
        OutputError: dst exists (without overwrite) or cannot be written.
    """
    from snl_cli.video.safety import check_output_path

    plt = pyplot()
    check_output_path(report.get("input", ""), dst, overwrite)
    panels = 2 if report.get("sweep") else 1
    fig, axes = plt.subplots(1, panels, figsize=(6.5 * panels, 4.2), squeeze=False)
    _pairs_panel(axes[0, 0], report)
    if panels == 2:
        _sweep_panel(axes[0, 1], report)
    params = report["params"]
    name = Path(report.get("input", "clip")).name
    fig.suptitle(
        f"Alignment of {name}: frame t+{params['wt']} rebuilt from frame t "
        f"(σ={params['sigma']:g}, ps={params['ps']}, top-1)"
    )
    fig.tight_layout()
    return save_figure(fig, dst, dpi=90, overwrite=overwrite)


def _pairs_panel(ax: Any, report: dict[str, Any]) -> None:
    ts = [pair["t"] for pair in report["pairs"]]
    for method, (colour, marker) in STYLE.items():
        mean = report["summary"][method]
        ax.plot(
            ts,
            [pair[method] for pair in report["pairs"]],
            color=colour,
            marker=marker,
            markersize=4,
            label=f"{method} (mean {mean:.2f} dB)",
        )
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("frame pair t (query t+wt, searched in t)")
    ax.set_ylabel("PSNR of the rebuilt frame (dB)")
    ax.set_title(f"per pair, ws={report['params']['ws']}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def _sweep_panel(ax: Any, report: dict[str, Any]) -> None:
    sweep = report["sweep"]
    sizes = [row["ws"] for row in sweep]
    for method in ("nls", "shifted_nls"):
        colour, marker = STYLE[method]
        ax.plot(sizes, [row[method] for row in sweep], color=colour, marker=marker, label=method)
    for method in ("flow", "identity"):
        colour, _ = STYLE[method]
        ax.axhline(
            report["summary"][method], color=colour, linestyle="--", label=f"{method} (ws=1)"
        )
    ax.set_xticks(sizes)
    ax.set_xlabel("search window ws (pixels)")
    ax.set_ylabel("mean PSNR (dB)")
    ax.set_title("grid-size sweep")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
