"""Everything the CLI prints: errors and progress on stderr, results on stdout."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

err_console = Console(stderr=True, highlight=False)
out_console = Console(highlight=False)


def print_json(data: Any) -> None:
    """Write one JSON document on stdout (nothing else goes there with --json)."""
    sys.stdout.write(json.dumps(data, indent=2, default=_json_default) + "\n")
    sys.stdout.flush()


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "__fspath__"):
        return str(value)
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def error(message: str) -> None:
    """One `snl: error: message` line on stderr: the only place that writes the prefix."""
    err_console.print(f"snl: error: {message}", markup=False, highlight=False, soft_wrap=True)


def warn(message: str) -> None:
    """One warning line on stderr."""
    err_console.print(f"[yellow]snl: warning:[/] {message}", markup=True, soft_wrap=True)


def info(message: str) -> None:
    """One informational line on stderr (kept off stdout so --json stays clean)."""
    err_console.print(message, markup=False, soft_wrap=True)


class FrameProgress:
    """A Rich progress bar counting frames with fps and ETA, on stderr.

    Use as a context manager; `advance(n)` after each processed batch. `rate=False` leaves
    the fps column out (for bars that count something else, such as seconds of training).
    """

    def __init__(
        self, description: str, total: int | None, enabled: bool = True, rate: bool = True
    ) -> None:
        self.enabled = enabled
        rate_column = [TextColumn("{task.fields[fps]} fps")] if rate else []
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            *rate_column,
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=err_console,
            transient=False,
            disable=not enabled,
        )
        self._task = self._progress.add_task(description, total=total, fps=_rate(0.0))

    def __enter__(self) -> FrameProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def advance(self, n: int = 1, **fields: Any) -> None:
        task = self._progress.tasks[0]
        elapsed = task.elapsed or 0.0
        fps = (task.completed + n) / elapsed if elapsed > 0 else 0.0
        self._progress.update(self._task, advance=n, fps=_rate(fps), **fields)

    def set_description(self, text: str) -> None:
        self._progress.update(self._task, description=text)


def _rate(fps: float) -> str:
    """Frames per second to show: two decimals below 10 (slow CPU runs read 0.25, not 0.2)."""
    return f"{fps:6.2f}" if fps < 10 else f"{fps:6.1f}"
