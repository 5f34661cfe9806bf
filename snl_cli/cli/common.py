"""Shared pieces of the commands: error rendering, the --debug switch, output helpers."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from typer.core import TyperGroup

from snl_cli.console import error, info, print_json, warn
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


# The one multi-value rule: each option listed here takes several values, written
# `--x a b`, `--x a --x b` or (where marked True: names and numbers, never paths)
# `--x a,b`. Keyed by command path; tests check that every repeatable option is listed.
MULTI_VALUE: dict[tuple[str, ...], dict[str, bool]] = {
    ("train",): {"--data": False, "--val": False, "--stills": False, "--pairs": False,
                 "--val-pairs": False},
    ("bench", "denoise"): {"--sigma": True, "--methods": True},
    ("bench", "search"): {"--backends": True, "--sizes": True},
    ("bench", "pairs"): {"--methods": True},
}  # fmt: skip


def normalise_argv(argv: list[str]) -> list[str]:
    """The command line as Click parses it: `--debug` moved to the front from wherever it
    stands, and multi-value options expanded (see MULTI_VALUE and `expand_multi_values`)."""
    end = argv.index("--") if "--" in argv else len(argv)
    debug = "--debug" in argv[:end]
    rest = [a for a in argv[:end] if a != "--debug"] + argv[end:]
    return (["--debug"] if debug else []) + expand_multi_values(rest)


def expand_multi_values(argv: list[str]) -> list[str]:
    """Rewrite `--data A B C` as `--data A --data B --data C` (Click takes one value per
    flag), and `--sigma 20,30` or `--sigma=20,30` as `--sigma 20 --sigma 30`.

    Only for the commands and flags listed in MULTI_VALUE (options before the command,
    such as `--debug`, are skipped); anything else is returned as is.
    """
    lead = next((i for i, arg in enumerate(argv) if not arg.startswith("-")), len(argv))
    flags = next(
        (f for path, f in MULTI_VALUE.items() if tuple(argv[lead : lead + len(path)]) == path),
        None,
    )
    if flags is None:
        return argv
    out: list[str] = []
    current: str | None = None  # the multi-value flag whose values follow
    bare = False  # `current` has no value yet: kept as written so that Click reports it
    for index, arg in enumerate(argv):
        if arg == "--":
            return out + ([current] if bare else []) + argv[index:]
        name, equals, value = arg.partition("=")
        if name in flags and arg.startswith("--"):
            out += [current] if bare else []
            current, bare = name, not equals
            out += _values(name, value, flags[name]) if equals else []
        elif arg.startswith("-") and not _is_number(arg):
            out += ([current] if bare else []) + [arg]
            current, bare = None, False
        elif current is not None:
            out += _values(current, arg, flags[current])
            bare = False
        else:
            out.append(arg)
    return out + ([current] if bare else [])


def _values(flag: str, value: str, commas: bool) -> list[str]:
    parts = [part for part in value.split(",") if part] if commas else [value]
    return [item for part in parts or [value] for item in (flag, part)]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


class SnlGroup(TyperGroup):
    """The root `snl` group: rewrites the command line before Click parses it (see
    `normalise_argv`), so `snl` and Typer's test runner see the same options; and shows
    no value type beside flags in `--help` (they take none)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        _hide_flag_types(self, ctx)
        return super().parse_args(ctx, normalise_argv(list(args)))


def _hide_flag_types(command: Any, ctx: Any) -> None:
    """Blank the `<bool>` Typer shows beside flags, on every command under `command`."""
    params = list(getattr(command, "params", []))
    with contextlib.suppress(Exception):  # Click versions differ in how --help is made
        params.append(command.get_help_option(ctx))
    for param in params:
        if getattr(param, "is_flag", False) and not getattr(param, "count", False):
            param.metavar = ""
    for child in getattr(command, "commands", {}).values():
        _hide_flag_types(child, ctx)


class _Notices(logging.Handler):
    """Library notices (logger "snl") as stderr lines: warnings as `snl: warning:`."""

    def emit(self, record: logging.LogRecord) -> None:
        (warn if record.levelno >= logging.WARNING else info)(record.getMessage())


def show_notices() -> None:
    """Print what the library logs on "snl" (INFO and up) on stderr; idempotent."""
    logger = logging.getLogger("snl")
    if not any(isinstance(h, _Notices) for h in logger.handlers):
        logger.addHandler(_Notices())
    logger.setLevel(logging.INFO)
    logger.propagate = False
