"""Errors raised by the library; the CLI turns them into one line and an exit code."""

from __future__ import annotations

from pathlib import Path

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_TERMINATED = 143  # 128 + SIGTERM


class Terminated(KeyboardInterrupt):
    """SIGTERM (`kill`, a service manager, a batch scheduler) raised in the main thread, so
    that it unwinds like Ctrl-C: temporary outputs removed, a training checkpoint saved."""


class SnlError(Exception):
    """Base class: a failure the user can act on, rendered as one line."""

    exit_code = EXIT_FAILURE

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        self.path = None if path is None else str(path)
        self.message = message
        super().__init__(f"{self.path}: {message}" if self.path else message)


class InputError(SnlError):
    """An input file or folder cannot be read or is not what we need."""


class OutputError(SnlError):
    """An output cannot be written (exists, same as the input, no space, ...)."""


class UsageError(SnlError):
    """Options that do not fit together; exit code 2."""

    exit_code = EXIT_USAGE


class BackendUnavailable(SnlError):
    """A compute backend (CUDA, the g++ emulation) cannot run on this machine."""


class WeightsError(SnlError):
    """Pretrained weights are missing, corrupt or do not match the model."""
