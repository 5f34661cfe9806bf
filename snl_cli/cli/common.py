"""Shared pieces of the commands: error rendering, the --debug switch, output helpers."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager

import typer

from snl_cli.console import error, print_json
from snl_cli.errors import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_TERMINATED, SnlError, Terminated

DEBUG_ENV = "SNL_DEBUG"


def debug_enabled() -> bool:
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


def fail(message: str, code: int = EXIT_FAILURE) -> typer.Exit:
    """Print `snl: error: message` on stderr and return the Exit to raise."""
    error(message)
    return typer.Exit(code)


@contextmanager
def cli_errors() -> Iterator[None]:
    """Turn library failures into one stderr line and an exit code, never a traceback.

    SnlError -> its message, exit 1 (2 for usage errors); Ctrl-C -> exit 130, SIGTERM -> 143;
    anything else -> a one-line summary that points at --debug.
    """
    try:
        yield
    except (typer.Exit, typer.Abort, typer.BadParameter):
        raise
    except SnlError as exc:
        if debug_enabled():
            raise
        raise fail(str(exc), exc.exit_code) from None
    except Terminated:
        raise fail("terminated", EXIT_TERMINATED) from None
    except KeyboardInterrupt:
        raise fail("interrupted", EXIT_INTERRUPTED) from None
    except MemoryError:
        raise fail("out of memory; try a smaller --chunk or --tile") from None
    except Exception as exc:
        if debug_enabled():
            raise
        name = type(exc).__name__
        raise fail(f"{name}: {exc} (run with --debug for the traceback)") from None


def raise_on_sigterm() -> None:
    """Make SIGTERM raise `Terminated` in the main thread (see `cli_errors`)."""

    def handler(signum: int, frame: object) -> None:
        raise Terminated

    signal.signal(signal.SIGTERM, handler)


def emit(result: dict, as_json: bool, render) -> None:
    """Print `result` as JSON on stdout, or call `render(result)` for humans."""
    if as_json:
        print_json(result)
    else:
        render(result)


# Options that take several values after one flag (`--sigma 20 30 40`), per command path.
MULTI_VALUE: dict[tuple[str, ...], frozenset[str]] = {
    ("train",): frozenset({"--data", "--val", "--stills"}),
    ("bench", "denoise"): frozenset({"--sigma", "--methods"}),
}


def expand_multi_values(argv: list[str]) -> list[str]:
    """Rewrite `--data A B C` as `--data A --data B --data C` (Click takes one value per flag).

    Only for the commands and flags listed in MULTI_VALUE; anything else is returned as is.
    """
    flags = next((f for path, f in MULTI_VALUE.items() if tuple(argv[: len(path)]) == path), None)
    if flags is None:
        return argv
    out: list[str] = []
    current = None
    for arg in argv:
        if arg in flags:
            current = arg
            out.append(arg)
            continue
        if arg.startswith("-") and not _is_number(arg):
            current = None
        elif current is not None and out[-1] != current:
            out.append(current)
        out.append(arg)
    return out


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
