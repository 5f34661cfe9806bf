"""`snl info` shows file names and values verbatim (no Rich markup applied)."""

from __future__ import annotations

from typer.testing import CliRunner

from snl_cli.cli import app


def test_brackets_in_the_file_name_are_shown(make_clip):
    clip = make_clip("holiday [final] [bold]cut.mp4", frames=2)
    result = CliRunner().invoke(app, ["info", str(clip)], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "holiday [final] [bold]cut.mp4" in " ".join(result.stdout.split())
