"""`snl bench search`: the JSON report's structure on a tiny size, and usage errors."""

from __future__ import annotations

import json
import math

from typer.testing import CliRunner

from snl_cli.cli.bench import app


def test_search_json_tiny() -> None:
    result = CliRunner().invoke(app, ["search", "--json", "--sizes", "tiny", "--repeat", "1"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["device"] == "cpu" and report["backends"] == ["cpu", "unfold"]
    (case,) = report["cases"]
    assert case["name"] == "tiny"
    assert case["size"]["thw"] == 2 * 16 * 16 and case["size"]["ws2"] == 9
    for backend in ("cpu", "unfold"):
        measured = case["results"][backend]
        assert "error" not in measured, measured
        assert measured["time_s"] > 0 and measured["peak_mb"] >= 0
        assert len(measured["times_s"]) == 1
    ratios = case["ratios"]["cpu"]
    for key in ("speedup", "memory_saving"):
        assert isinstance(ratios[key], float) and math.isfinite(ratios[key]) and ratios[key] > 0
    assert set(report["scaling"]) == {"cpu", "unfold"}


def test_search_table() -> None:
    result = CliRunner().invoke(
        app, ["search", "--sizes", "tiny", "--repeat", "1", "--backends", "cpu"]
    )
    assert result.exit_code == 0, result.output
    assert "tiny" in result.stdout and "cpu" in result.stdout


def test_unknown_size_is_a_usage_error() -> None:
    result = CliRunner().invoke(app, ["search", "--sizes", "huge"])
    assert result.exit_code == 2
    assert "unknown huge" in result.output


def test_registered_under_snl() -> None:
    from snl_cli.cli import app as snl

    result = CliRunner().invoke(snl, ["bench", "search", "--help"])
    assert result.exit_code == 0
    assert "--backends" in result.stdout
