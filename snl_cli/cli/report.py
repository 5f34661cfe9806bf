"""What the denoising commands print on stderr while they run: the pipeline's `Reporter`
(a start line, the noise seen, a frame bar, warnings)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from snl_cli.console import FrameProgress, info, warn

if TYPE_CHECKING:
    from snl_cli.video import ClipInfo


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
        sigma = summary["sigma"]
        told = "blind" if sigma is None else f"sigma {sigma:g} ({summary['sigma_source']})"
        tiles = f", tiles of {summary['tile']} px" if summary["tile"] else ""
        if summary.get("streamed"):
            how = f"one frame at a time{tiles}"
        else:
            how = f"chunk {summary['chunk']} overlap {summary['overlap']}{tiles}"
        info(
            f"{summary['input']} -> {summary['output']}: {clip.frames} frames "
            f"{clip.width}x{clip.height}, model {summary['model']} on {summary['device']}, "
            f"{told}, {how}"
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

    def phase(self, label: str, total: int) -> None:
        """A bar for another step (e.g. the demo's SSIM), counted by `advanced`."""
        self.close()
        self._bar = FrameProgress(label, total=total)
        self._bar.__enter__()


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
