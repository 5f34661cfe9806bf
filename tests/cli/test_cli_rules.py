"""Rules every command follows: `--debug` before or after the command, one multi-value rule
(`--x a b`, `--x a,b`, `--x a --x b`), and `--help` that shows every help text whole (no
bracketed default eaten by Rich markup) and no value type beside flags."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main

from snl_cli.cli import app
from snl_cli.cli.common import DEBUG_ENV, MULTI_VALUE, normalise_argv
from snl_cli.errors import SnlError


def _commands(command=None, path: tuple[str, ...] = ()):
    """(path, click command) of every leaf command under the root."""
    command = command or typer.main.get_command(app)
    for name, child in getattr(command, "commands", {}).items():
        if getattr(child, "commands", None):
            yield from _commands(child, (*path, name))
        else:
            yield (*path, name), child


# A command line per command that fails with an input error (missing file or folder).
def _failing(path: tuple[str, ...], tmp: Path) -> list[str]:
    missing = str(tmp / "missing.mp4")
    return {
        ("info",): ["info", missing],
        ("train",): ["train", "--data", missing, "-o", str(tmp / "w.safetensors")],
        ("align",): ["align", missing],
        ("denoise",): ["denoise", missing, "-o", str(tmp / "out.mp4")],
        ("preview",): ["preview", missing, "-o", str(tmp / "p.png")],
        ("batch",): ["batch", str(tmp / "missing"), "-o", str(tmp / "outdir")],
        ("bench", "search"): ["bench", "search", "--sizes", "huge"],  # a usage error
        ("bench", "denoise"): ["bench", "denoise", missing],
        ("bench", "pairs"): ["bench", "pairs", str(tmp / "missing")],
        ("demo",): ["demo", missing, "-o", str(tmp / "demo")],
    }[path]


ALL_COMMANDS = [path for path, _ in _commands()]


def test_every_command_has_a_failing_case(tmp_path) -> None:
    for path in ALL_COMMANDS:
        _failing(path, tmp_path)  # KeyError names a command added without a case


@pytest.mark.parametrize("path", ALL_COMMANDS, ids="-".join)
def test_debug_after_the_command_shows_the_traceback(path, runner, tmp_path, monkeypatch):
    monkeypatch.setenv(DEBUG_ENV, "0")  # restored after the test; --debug sets it
    args = _failing(path, tmp_path)
    plain = runner.invoke(app, args)
    assert plain.exit_code in (1, 2), plain.output
    assert plain.stderr.splitlines()[-1].startswith("snl: error:") or plain.exit_code == 2
    assert "Traceback" not in plain.stderr
    for debug_args in (["--debug", *args], [*args, "--debug"]):
        monkeypatch.setenv(DEBUG_ENV, "0")
        result = runner.invoke(app, debug_args)
        assert os.environ[DEBUG_ENV] == "1", debug_args
        if plain.exit_code == 1:  # an input error: --debug shows its traceback
            assert isinstance(result.exception, SnlError), (debug_args, result.output)


def test_debug_after_the_command_in_the_installed_entry_point(tmp_path) -> None:
    env = {**os.environ, DEBUG_ENV: ""}
    code = "from snl_cli.cli import main; main()"
    result = subprocess.run(
        [sys.executable, "-c", code, "info", str(tmp_path / "missing.mp4"), "--debug"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert result.returncode != 0
    assert "Traceback" in result.stderr and "InputError" in result.stderr


def test_debug_after_a_double_dash_is_an_argument() -> None:
    assert normalise_argv(["info", "--", "--debug"]) == ["info", "--", "--debug"]


# ---- one multi-value rule -------------------------------------------------------------------


def test_every_repeatable_option_follows_the_rule() -> None:
    repeatable = {
        path: {opt for p in command.params if getattr(p, "multiple", False) for opt in p.opts}
        for path, command in _commands()
    }
    declared = {path: set(flags) for path, flags in MULTI_VALUE.items()}
    assert {p: f for p, f in repeatable.items() if f} == declared


@pytest.mark.parametrize(
    "spelling",
    [
        ["--sigma", "20", "30", "--methods", "nlm", "bm3d"],
        ["--sigma", "20,30", "--methods", "nlm,bm3d"],
        ["--sigma=20,30", "--methods=nlm,bm3d"],
        ["--sigma", "20", "--sigma", "30", "--methods", "nlm", "--methods", "bm3d"],
        ["--sigma", "20,", "30", "--methods", "nlm", "--debug", "--methods", "bm3d"],
    ],
)
def test_three_spellings_give_the_same_command_line(spelling) -> None:
    argv = normalise_argv(["bench", "denoise", "clip.mp4", *spelling, "--frames", "4"])
    assert [a for a in argv if a != "--debug"] == [
        "bench", "denoise", "clip.mp4", "--sigma", "20", "--sigma", "30",
        "--methods", "nlm", "--methods", "bm3d", "--frames", "4",
    ]  # fmt: skip


def test_paths_are_never_split_at_commas_and_other_commands_are_untouched() -> None:
    argv = ["train", "--data", "a,b.mp4", "c", "--val", "d", "-o", "w.safetensors"]
    assert normalise_argv(argv) == [
        "train", "--data", "a,b.mp4", "--data", "c", "--val", "d", "-o", "w.safetensors",
    ]  # fmt: skip
    argv = ["denoise", "x.mp4", "--sigma", "20", "-o", "y.mp4"]
    assert normalise_argv(argv) == argv


def test_a_flag_without_values_is_left_for_click_to_report(runner) -> None:
    assert normalise_argv(["bench", "search", "--sizes"]) == ["bench", "search", "--sizes"]
    result = runner.invoke(app, ["bench", "search", "--sizes"])
    assert result.exit_code == 2 and "--sizes" in result.stderr


@pytest.mark.parametrize(
    "sizes", [["tiny", "huge", "giant"], ["tiny,huge,giant"], ["tiny", "--sizes", "huge,giant"]]
)
def test_the_test_runner_sees_the_rule_too(runner, sizes) -> None:
    result = runner.invoke(app, ["bench", "search", "--sizes", *sizes])
    assert result.exit_code == 2, result.output
    assert "unknown huge, giant" in " ".join(result.stderr.split())


# ---- --help ---------------------------------------------------------------------------------


def _help(runner, path: tuple[str, ...]) -> str:
    """`--help` on a wide terminal, boxes removed and wrapping collapsed."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COLUMNS", "300")  # Rich's width for Typer's help console
        result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    return " ".join(re.sub("[│╭╮╰╯─]", " ", result.stdout).split())


@pytest.mark.parametrize("path", [(), ("bench",), *ALL_COMMANDS], ids=lambda p: "-".join(p))
def test_help_shows_every_help_text_whole_and_no_type_for_flags(runner, path) -> None:
    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    shown = _help(runner, path)
    for param in command.params:
        text = " ".join((getattr(param, "help", None) or "").replace("\\[", "[").split())
        assert text in shown, f"{'-'.join(path)} {param.name}: {text!r} not in --help"
    assert "<bool>" not in shown


def test_the_bracketed_defaults_named_in_the_issue_are_shown(runner) -> None:
    assert "Frame rate of a frame folder [default: 25]." in _help(runner, ("info",))
    train = _help(runner, ("train",))
    assert "[default: OUT.ckpt]" in train and "[default: 1, or --init's;" in train
    assert "[default: demo/dog.mp4 of the source checkout]" in _help(runner, ("demo",))
