"""The `snl` command line: one module per command, registered here."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from snl_cli import __version__
from snl_cli.cli.common import DEBUG_ENV, SnlGroup, show_notices

app = typer.Typer(
    name="snl",
    cls=SnlGroup,
    help="Video denoising with Shifted Non-Local Search.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"snl {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[
        bool,
        typer.Option(
            "--debug",
            help="Show full tracebacks for unexpected errors (before or after the command).",
        ),
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Video denoising with Shifted Non-Local Search."""
    show_notices()
    if debug:
        os.environ[DEBUG_ENV] = "1"


def _register() -> None:
    from snl_cli.cli import align, batch, bench, demo, denoise, info, preview, train

    app.command("info")(info.info)
    app.command("train")(train.train)
    app.command("align")(align.align)
    app.command("denoise")(denoise.denoise)
    app.command("preview")(preview.preview)
    app.command("batch", cls=batch.BatchCommand)(batch.batch)
    app.add_typer(bench.app, name="bench")
    app.command("demo")(demo.demo)


_register()


def main() -> None:
    """Console-script entry point."""
    from snl_cli.cli.common import raise_on_sigterm

    raise_on_sigterm()
    app()
