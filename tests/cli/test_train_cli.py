"""`snl train` end to end on generated frame folders: weights + manifest, resume from the
checkpoint, fine-tuning from weights (--init), and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import media
import numpy as np
import pytest

from snl_cli.cli import app
from snl_cli.model.weights import load_stan, sha256_file

TINY = ["--channels", "8,16,16", "--heads", "2", "--attn-blocks", "1", "--backend", "torch"]


def _clip(folder: Path, frames: int = 4, size: tuple[int, int] = (40, 36)) -> Path:
    folder.mkdir(parents=True)
    for i in range(frames):
        media.write_image(folder / f"{i:03d}.png", media.pattern(i, *size))
    return folder


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("train")
    return _clip(root / "clips" / "a"), _clip(root / "val" / "b", frames=3)


def _train(runner, data, out: Path, minutes: float, *extra: str):
    clips, val = data
    args = ["train", "--data", str(clips.parent), "--val", str(val), "--out", str(out)]
    args += ["--minutes", str(minutes), "--crop", "32", "--frames", "3", "--batch", "1"]
    args += ["--device", "cpu", "--json", *TINY, *extra]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_train_writes_weights_manifest_and_resumes(runner, data, tmp_path) -> None:
    out = tmp_path / "w.safetensors"
    first = _train(runner, data, out, 0.03)
    _, manifest = load_stan(out)
    assert manifest["sha256"] == sha256_file(out) == first["sha256"]
    assert manifest["steps"] >= 1 and sorted(manifest["val_psnr"], key=int) == [
        "10",
        "20",
        "30",
        "40",
        "50",
    ]
    assert manifest["architecture"]["channels"] == [8, 16, 16]
    assert out.with_suffix(".ckpt").is_file()
    # the same command with a larger budget continues from the checkpoint
    budget = round(first["minutes"] + 0.03, 2)  # a slow first step may overshoot its budget
    second = _train(runner, data, out, budget)
    assert second["steps"] > first["steps"] and second["minutes"] >= budget
    assert second["sha256"] != first["sha256"]


def test_step_budget_stops_at_exactly_that_many_steps_and_resumes(runner, data, tmp_path) -> None:
    out = tmp_path / "w.safetensors"
    first = _train(runner, data, out, 30, "--steps", "3")  # minutes would allow far more
    assert first["steps"] == 3 and first["options"]["steps"] == 3
    assert first["minutes"] < 30
    second = _train(runner, data, out, 30, "--steps", "5")  # resumes from the checkpoint
    assert second["steps"] == 5


def test_init_fine_tunes_from_weights(runner, data, tmp_path) -> None:
    base = tmp_path / "base.safetensors"
    _train(runner, data, base, 0.02)
    tuned = _train(runner, data, tmp_path / "tuned.safetensors", 0.02, "--init", str(base))
    assert tuned["fine_tuned_from"]["sha256"] == sha256_file(base)
    model_base, _ = load_stan(base)
    model_tuned, _ = load_stan(tmp_path / "tuned.safetensors")
    # the architecture came from the init weights, and training moved them
    assert model_tuned.cfg.to_dict() == model_base.cfg.to_dict()
    changed = [
        not np.array_equal(a.detach().numpy(), b.detach().numpy())
        for a, b in zip(model_base.parameters(), model_tuned.parameters(), strict=True)
    ]
    assert any(changed)


def test_init_with_more_input_frames_widens_the_input_layer(runner, data, tmp_path) -> None:
    base = tmp_path / "base.safetensors"
    _train(runner, data, base, 0.02)
    wide = tmp_path / "wide.safetensors"
    _train(runner, data, wide, 0.02, "--init", str(base), "--input-frames", "3")
    model_base, _ = load_stan(base)
    model_wide, _ = load_stan(wide)
    assert model_wide.cfg.input_frames == 3
    assert model_wide.cfg.channels == model_base.cfg.channels
    assert model_wide.inp.weight.shape[1] == 3 * model_base.inp.weight.shape[1]
    clips, _ = data
    args = ["train", "--data", str(clips.parent), "--out", str(tmp_path / "narrow.safetensors")]
    result = runner.invoke(
        app, [*args, "--init", str(wide), "--input-frames", "1", "--minutes", "0.01"]
    )
    assert result.exit_code != 0 and "--input-frames" in result.output
    assert "Traceback" not in result.output


def test_level_input_adds_a_plane_that_starts_at_zero_and_learns(runner, data, tmp_path) -> None:
    base = tmp_path / "base.safetensors"
    _train(runner, data, base, 0.02, "--steps", "2")
    told = tmp_path / "told.safetensors"
    manifest = _train(runner, data, told, 5, "--init", str(base), "--level-input", "--steps", "3")
    assert manifest["architecture"]["level_input"] is True
    assert "shown the level" in manifest["noise"]
    model_base, _ = load_stan(base)
    model_told, _ = load_stan(told)
    planes = model_base.inp.weight.shape[1]
    assert model_told.inp.weight.shape[1] == planes + 1
    # three steps from zero: the level plane's weights moved (they get a gradient)
    assert model_told.inp.weight[:, planes].abs().max() > 0


def test_depth_adds_blocks_that_start_as_the_identity_and_learn(runner, data, tmp_path) -> None:
    base = tmp_path / "base.safetensors"
    _train(runner, data, base, 0.02, "--steps", "2")
    deep = tmp_path / "deep.safetensors"
    manifest = _train(runner, data, deep, 5, "--init", str(base), "--depth", "1,2,2", "--steps=1")
    assert manifest["architecture"]["depth"] == [1, 2, 2]
    model_deep, _ = load_stan(deep)
    assert len(model_deep.mid_more) == 1 and len(model_deep.enc_more[1]) == 1
    # one step from zero: the new blocks' second convolutions got a gradient and moved
    assert model_deep.mid_more[0].conv2.weight.abs().max() > 0
    clips, _ = data
    args = ["train", "--data", str(clips.parent), "--out", str(tmp_path / "shallow.safetensors")]
    result = runner.invoke(app, [*args, "--init", str(deep), "--depth", "1,1,1", "--steps", "1"])
    assert result.exit_code != 0 and "--depth" in result.output
    assert "Traceback" not in result.output


def test_search_window_and_frames_with_init_and_from_scratch(runner, data, tmp_path) -> None:
    base = tmp_path / "base.safetensors"
    assert (
        _train(runner, data, base, 0.02, "--steps", "1", "--search-window", "5")["architecture"][
            "ws"
        ]
        == 5
    )
    wide = tmp_path / "wide.safetensors"
    args = ("--init", str(base), "--search-window", "3", "--search-frames", "2", "--steps", "1")
    manifest = _train(runner, data, wide, 5, *args)
    assert (manifest["architecture"]["ws"], manifest["architecture"]["wt"]) == (3, 2)
    model_base, _ = load_stan(base)
    model_wide, _ = load_stan(wide)
    assert (model_base.cfg.ws, model_base.cfg.wt) == (5, 1)
    assert (model_wide.cfg.ws, model_wide.cfg.wt, model_wide.cfg.context) == (3, 2, 2)
    # the weights went on from --init's (one step moved them, the shapes stayed)
    assert manifest["fine_tuned_from"]["sha256"] == sha256_file(base)
    clips, _ = data
    args = ["train", "--data", str(clips.parent), "--out", str(tmp_path / "even.safetensors")]
    for extra in (["--init", str(base)], []):  # fine-tuning or from scratch
        result = runner.invoke(app, [*args, *extra, "--search-window", "4"])
        assert result.exit_code != 0 and "--search-window" in result.output
        assert "odd" in result.output and "Traceback" not in result.output


def test_missing_data_is_a_one_line_error(runner, tmp_path) -> None:
    missing = tmp_path / "nope"
    result = runner.invoke(
        app, ["train", "--data", str(missing), "--out", str(tmp_path / "w.safetensors")]
    )
    assert result.exit_code == 1
    assert "nope" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "w.safetensors").exists()


def test_sigterm_saves_a_checkpoint_and_exits_143(data, tmp_path) -> None:
    """`kill` on a long run (nohup, a scheduler: where Ctrl-C cannot reach) saves the checkpoint
    the same command resumes from, and exits 143 without a traceback or a weights file."""
    import os
    import signal
    import subprocess
    import sys
    import threading

    import torch

    clips, _ = data
    out = tmp_path / "w.safetensors"
    command = [sys.executable, "-m", "snl_cli", "train", "--data", str(clips.parent),
               "--out", str(out), "--minutes", "30", "--crop", "32", "--frames", "3",
               "--batch", "1", "--device", "cpu", *TINY]  # fmt: skip
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    lines: list[str] = []
    stepping = threading.Event()  # set at the first logged step: the training loop is running

    def read() -> None:
        for line in process.stderr:
            lines.append(line)
            if line.startswith("step "):
                stepping.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert stepping.wait(timeout=180), "".join(lines)
        os.kill(process.pid, signal.SIGTERM)
        process.wait(timeout=60)
        reader.join(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    stderr = "".join(lines)
    assert process.returncode == 143, stderr
    assert "terminated" in stderr and "Traceback" not in stderr
    assert not out.exists()
    state = torch.load(out.with_suffix(".ckpt"), map_location="cpu", weights_only=False)
    assert state["state"]["minutes"] > 0 and set(state) >= {"model", "optim"}


def _pairs(folder: Path, count: int = 2, size: tuple[int, int] = (40, 36)) -> Path:
    """Real-pair layout: noisy/NAME beside clean/NAME (noise drawn here, seeded)."""
    rng = np.random.default_rng(0)
    for i in range(count):
        clean = media.pattern(i, *size)
        noisy = np.clip(clean.astype(float) + rng.normal(0, 12, clean.shape), 0, 255)
        (folder / "clean").mkdir(parents=True, exist_ok=True)
        (folder / "noisy").mkdir(parents=True, exist_ok=True)
        media.write_image(folder / "clean" / f"{i}.png", clean)
        media.write_image(folder / "noisy" / f"{i}.png", noisy.astype(np.uint8))
    return folder


def test_camera_noise_and_real_pairs_end_to_end(runner, data, tmp_path) -> None:
    train_pairs = _pairs(tmp_path / "pairs-train")
    val_pairs = _pairs(tmp_path / "pairs-val", count=1)
    out = tmp_path / "w.safetensors"
    # lr 0 keeps the untrained network, which is the identity (a zero-initialised residual):
    # the held-out pair must then score exactly its noisy image's PSNR, computed here
    manifest = _train(runner, data, out, 5, "--steps", "3", "--noise", "camera", "--lr", "0",
                      "--pairs", str(train_pairs), "--val-pairs", str(val_pairs))  # fmt: skip
    assert manifest["steps"] == 3
    assert manifest["options"]["noise"] == "camera" and "camera" in manifest["noise"]
    assert manifest["training_data"]["pairs"] == [str(train_pairs)]
    noisy, clean = (
        cv2.imread(str(val_pairs / sub / "0.png")).astype(np.float64) for sub in ("noisy", "clean")
    )
    expected = 10 * np.log10(255.0**2 / np.mean((noisy - clean) ** 2))
    assert abs(manifest["val_real_psnr"][str(val_pairs)] - expected) < 0.05


def test_unknown_noise_and_broken_pairs_are_one_line_errors(runner, data, tmp_path) -> None:
    clips, _ = data
    base = ["train", "--data", str(clips.parent), "--out", str(tmp_path / "w.safetensors"),
            "--steps", "1", *TINY]  # fmt: skip
    result = runner.invoke(app, [*base, "--noise", "speckle"])
    assert result.exit_code != 0 and "--noise" in result.output and "speckle" in result.output
    result = runner.invoke(app, [*base, "--loss", "l3"])
    assert result.exit_code != 0 and "--loss" in result.output and "l3" in result.output
    broken = _pairs(tmp_path / "broken")
    (broken / "clean" / "1.png").unlink()
    result = runner.invoke(app, [*base, "--pairs", str(broken)])
    assert result.exit_code == 1
    assert "no clean/1.png for noisy/1.png" in result.output
    assert "Traceback" not in result.output


def test_gaussian_and_codec_shares_reach_training(runner, data, tmp_path, monkeypatch) -> None:
    from snl_cli import synthetic

    calls = []
    real_codec = synthetic.random_codec

    def counting_codec(noisy, rng):
        calls.append(noisy.shape)
        return real_codec(noisy, rng)

    monkeypatch.setattr(synthetic, "random_codec", counting_codec)
    out = tmp_path / "w.safetensors"
    manifest = _train(runner, data, out, 5, "--steps", "2", "--noise", "mix",
                      "--gaussian-share", "1", "--codec-share", "1")  # fmt: skip
    # every clip of both steps was Gaussian, then compressed
    assert len(calls) == 2 * manifest["options"]["batch"]
    assert manifest["options"]["gaussian_share"] == 1.0
    assert manifest["options"]["codec_share"] == 1.0
    assert "100% of them then x264" in manifest["noise"]


def test_photo_share_reaches_training_and_the_manifest(runner, data, tmp_path, monkeypatch):
    from snl_cli import train

    frames_drawn = []
    real_degrade = train.degrade

    def counting_degrade(clip, *args):
        frames_drawn.append(clip.shape[0])
        return real_degrade(clip, *args)

    monkeypatch.setattr(train, "degrade", counting_degrade)
    out = tmp_path / "w.safetensors"
    manifest = _train(runner, data, out, 5, "--steps", "2", "--photo-share", "1")
    # every clip's noise was drawn once, on one frame, then repeated
    assert frames_drawn == [1] * (2 * manifest["options"]["batch"])
    assert manifest["options"]["photo_share"] == 1.0
    assert "100% of the synthetic-noise clips shown as photos" in manifest["noise"]


def test_blotch_share_reaches_the_cameras_and_the_manifest(runner, data, tmp_path, monkeypatch):
    from snl_cli import synthetic

    cameras = []
    real_apply = synthetic.CameraNoise.apply

    def recording_apply(self, clip, generator=None):
        cameras.append(self)
        return real_apply(self, clip, generator)

    monkeypatch.setattr(synthetic.CameraNoise, "apply", recording_apply)
    out = tmp_path / "w.safetensors"
    manifest = _train(
        runner, data, out, 5, "--steps", "2", "--noise", "camera", "--blotch-share", "1"
    )
    assert len(cameras) == 2 * manifest["options"]["batch"]
    assert all(0.8 <= c.blotch <= 2.5 for c in cameras)  # every camera left its noise blotchy
    assert manifest["options"]["blotch_share"] == 1.0
    assert "100% of them with the noise left blotchy" in manifest["noise"]


def test_psnr_loss_reaches_training_and_the_manifest(runner, data, tmp_path, monkeypatch):
    from snl_cli import train

    batches = []
    real_loss = train.LOSSES["psnr"]

    def counting_loss(out, clean):
        batches.append(out.shape[0])
        return real_loss(out, clean)

    monkeypatch.setitem(train.LOSSES, "psnr", counting_loss)
    manifest = _train(runner, data, tmp_path / "w.safetensors", 5, "--steps", "2",
                      "--loss", "psnr")  # fmt: skip
    assert batches == [manifest["options"]["batch"]] * 2
    assert manifest["loss"] == "psnr" and manifest["options"]["loss"] == "psnr"


def test_transfer_share_noises_footage_with_real_residuals(runner, data, tmp_path, monkeypatch):
    from snl_cli import train

    calls = []
    real_degrade = train.degrade

    def counting_degrade(*args, **kwargs):
        calls.append(1)
        return real_degrade(*args, **kwargs)

    monkeypatch.setattr(train, "degrade", counting_degrade)
    pairs = _pairs(tmp_path / "pairs-train", size=(64, 64))
    manifest = _train(runner, data, tmp_path / "w.safetensors", 5, "--steps", "2",
                      "--pairs", str(pairs), "--pair-share", "0",
                      "--transfer-share", "1")  # fmt: skip
    assert not calls  # every clip took a real residual, none synthetic noise
    assert manifest["options"]["transfer_share"] == 1.0
    assert "100% of the others with real pairs' noise residuals" in manifest["noise"]
