"""`snl bench denoise`: the report's shape and numbers that must hold on a generated clip."""

from __future__ import annotations

import json

from snl_cli.cli import app
from snl_cli.cli.common import expand_multi_values


def test_multi_value_flags_expand_only_where_declared() -> None:
    argv = ["bench", "denoise", "a.mp4", "--sigma", "20", "30", "--frames", "4"]
    assert expand_multi_values(argv) == [
        "bench", "denoise", "a.mp4", "--sigma", "20", "--sigma", "30", "--frames", "4",
    ]  # fmt: skip
    assert expand_multi_values(["denoise", "x", "--sigma", "20"]) == [
        "denoise",
        "x",
        "--sigma",
        "20",
    ]


def test_bench_denoise_json(make_frames, runner, tmp_path) -> None:
    folder = make_frames("clean", frames=4, size=(48, 40))
    plot = tmp_path / "bars.png"
    args = ["bench", "denoise", str(folder), "--sigma", "25", "--frames", "4",
            "--methods", "nlm,nlmeans", "--json", "--plot", str(plot)]  # fmt: skip
    result = runner.invoke(app, expand_multi_values(args))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    rows = {r["method"]: r for r in report["rows"]}
    assert set(rows) == {"noisy", "nlm", "nlmeans"}
    # sigma 25 on 8-bit clean content: about 20.2 dB before any denoising
    assert 19.0 < rows["noisy"]["psnr"] < 21.5
    assert rows["nlm"]["psnr"] > rows["noisy"]["psnr"] + 3
    assert rows["nlmeans"]["psnr"] > rows["noisy"]["psnr"]
    assert rows["nlmeans"]["settings"].startswith("s=")
    assert all(0 < r["ssim"] <= 1 for r in report["rows"])
    assert rows["nlm"]["fps"] > 0
    assert [s["method"] for s in report["summary"]] == ["nlm", "nlmeans", "noisy"]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_denoise_ensemble_reaches_snl(make_frames, runner) -> None:
    folder = make_frames("clean", frames=3, size=(48, 40))
    args = ["bench", "denoise", str(folder), "--sigma", "25", "--frames", "3",
            "--methods", "nlm", "--ensemble", "2", "--json"]  # fmt: skip
    result = runner.invoke(app, expand_multi_values(args))
    assert result.exit_code == 0, result.output
    rows = {r["method"]: r for r in json.loads(result.stdout)["rows"]}
    assert rows["nlm"]["settings"].endswith(", ensemble 2")
    assert rows["nlm"]["psnr"] > rows["noisy"]["psnr"] + 3


def test_bench_denoise_unknown_method(make_frames, runner) -> None:
    folder = make_frames("clean", frames=3, size=(32, 32))
    result = runner.invoke(app, ["bench", "denoise", str(folder), "--methods", "magic"])
    assert result.exit_code == 2
    assert "magic" in result.stderr
    assert "Traceback" not in result.output


def test_bench_denoise_two_sets_of_stan_weights(make_frames, runner, tmp_path) -> None:
    """`stan:PATH` measures other weights beside the shipped ones. An untrained STAN is the
    identity (its output layer starts at zero), so its row must score the noisy input's PSNR,
    while the shipped weights denoise."""
    from snl_cli.model.stan import STAN, STANConfig
    from snl_cli.model.weights import save_stan

    identity = tmp_path / "identity.safetensors"
    save_stan(STAN(STANConfig(channels=(8, 16), heads=2, qk_dim=4, ws=3, topk=4, k_agg=2)),
              identity, {"steps": 0})  # fmt: skip
    folder = make_frames("clean", frames=4, size=(64, 48))
    args = ["bench", "denoise", str(folder), "--sigma", "25", "--frames", "4",
            "--methods", "stan", f"stan:{identity}", "--json"]  # fmt: skip
    result = runner.invoke(app, expand_multi_values(args))
    assert result.exit_code == 0, result.output
    rows = {r["method"]: r for r in json.loads(result.stdout)["rows"]}
    assert set(rows) == {"noisy", "stan", "stan:identity"}
    assert abs(rows["stan:identity"]["psnr"] - rows["noisy"]["psnr"]) < 0.05
    assert rows["stan:identity"]["settings"] == "blind, identity.safetensors"
    assert rows["stan"]["psnr"] > rows["noisy"]["psnr"] + 3


def test_bench_denoise_missing_weights(make_frames, runner, tmp_path) -> None:
    folder = make_frames("clean", frames=3, size=(32, 32))
    missing = tmp_path / "nope.safetensors"
    result = runner.invoke(app, ["bench", "denoise", str(folder), "--methods", f"stan:{missing}"])
    assert result.exit_code != 0
    assert "nope.safetensors" in result.stderr and "no such weights file" in result.stderr
    assert "Traceback" not in result.output


def test_bench_denoise_camera_noise_sweeps_peers_without_sigma(make_frames, runner) -> None:
    folder = make_frames("clean", frames=3, size=(48, 40))
    args = ["bench", "denoise", str(folder), "--sigma", "15", "--frames", "3",
            "--methods", "nlmeans", "--noise", "demosaic", "--json"]  # fmt: skip
    result = runner.invoke(app, expand_multi_values(args))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["noise"] == "demosaic"
    rows = {r["method"]: r for r in report["rows"]}
    assert rows["nlmeans"]["psnr"] > rows["noisy"]["psnr"]
    assert "whole range" in report["note"]


def test_bench_denoise_unknown_noise_is_a_usage_error(make_frames, runner) -> None:
    folder = make_frames("clean", frames=3, size=(48, 40))
    result = runner.invoke(app, ["bench", "denoise", str(folder), "--noise", "speckle"])
    assert result.exit_code == 2
    assert "--noise" in result.output and "speckle" in result.output
