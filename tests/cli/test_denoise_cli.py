"""`snl denoise` end to end with the nlm model on generated clips: what must survive
(audio and subtitle packets, timestamps, bit depth, colour, rotation, frame names), what
must improve (PSNR), chunk seams, the data-safety rules, and one-line errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import media
import numpy as np
import pytest
import torch

from snl_cli.cli import app
from snl_cli.video import is_temp_name, probe

BT709_TV = {"range": "tv", "space": "bt709", "primaries": "bt709", "transfer": "bt709"}


def _denoise(runner, src: Path, dst: Path, *extra: str):
    return runner.invoke(app, ["denoise", str(src), "-o", str(dst), "--model", "nlm", *extra])


def _noisy_frames(folder: Path, frames: int, size: tuple[int, int], sigma: float) -> np.ndarray:
    """PNG frames of the moving test pattern plus Gaussian noise; returns the clean frames."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(7)
    clean = np.stack([media.pattern(i, *size) for i in range(frames)])
    for i, image in enumerate(clean):
        noisy = np.clip(image + rng.normal(0, sigma / 255.0, image.shape), 0, 1)
        media.write_image(folder / f"{i:04d}.png", noisy)
    return clean


def _read_folder(folder: Path) -> np.ndarray:
    return np.stack([media.decode_rgb(p)[0] for p in sorted(folder.glob("*.png"))])


def _leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob("*") if is_temp_name(p.name)]


# ---- what the output keeps -------------------------------------------------------------------


def test_audio_packets_frames_and_colour_survive(runner, h264_aac: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    result = _denoise(runner, h264_aac, out, "--sigma", "10")
    assert result.exit_code == 0, result.stderr
    assert media.packets(out, "audio") == media.packets(h264_aac, "audio")
    frames_in, frames_out = media.video_frames_meta(h264_aac), media.video_frames_meta(out)
    assert [f.pts for f in frames_out] == [f.pts for f in frames_in]
    assert probe(out).color == BT709_TV
    assert "denoised 13 frames" in result.stdout and "sigma 10" in result.stdout


def test_variable_frame_rate_timestamps_survive(runner, make_clip, tmp_path: Path) -> None:
    src = make_clip("vfr.mkv", frames=11, vfr=True)
    out = tmp_path / "out.mkv"
    assert _denoise(runner, src, out, "--sigma", "5", "--chunk", "4").exit_code == 0
    times_in = [f.time for f in media.video_frames_meta(src)]
    times_out = [f.time for f in media.video_frames_meta(out)]
    assert times_out == pytest.approx(times_in, abs=1e-6)
    assert len(set(np.round(np.diff(times_in), 3))) > 1  # really variable


def test_ten_bit_stays_ten_bit(runner, hevc10: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.mkv"
    result = _denoise(runner, hevc10, out, "--sigma", "5")
    assert result.exit_code == 0, result.stderr
    info = probe(out)
    assert (info.pix_fmt, info.bit_depth, info.frames) == ("yuv420p10le", 10, 8)
    assert info.color == BT709_TV
    codes = media.decode_rgb(out, depth=16)[0] * 65535
    assert np.mean(np.abs(codes / 257 - np.round(codes / 257)) > 1e-3) > 0.5  # not 8-bit steps


def test_subtitles_and_rotation_survive(runner, make_clip, tmp_path: Path) -> None:
    src = make_clip("sub.mkv", frames=6, subtitles=True, rotation=90)
    out = tmp_path / "out.mkv"
    assert _denoise(runner, src, out, "--sigma", "5").exit_code == 0
    assert media.packets(out, "subtitles") == media.packets(src, "subtitles")
    assert probe(out).rotation == 90


def test_frame_folder_in_frame_folder_out(runner, make_frames, tmp_path: Path) -> None:
    names = ["shot_9.png", "shot_10.png", "shot_11.png"]
    src = make_frames("in_frames", names=names)
    out = tmp_path / "out_frames"
    result = _denoise(runner, src, out, "--sigma", "5")
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(names)


def test_json_summary_is_alone_on_stdout(runner, h264_aac: Path, tmp_path: Path) -> None:
    result = _denoise(runner, h264_aac, tmp_path / "out.mp4", "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["frames"] == 13 and summary["model"] == "nlm"
    assert summary["sigma_source"] == "estimated" and 0 <= summary["sigma"] <= 50
    assert summary["seconds"] > 0 and summary["fps"] > 0
    assert summary["plan"]["copied"] == ["audio:aac"]
    assert "sigma" in result.stderr  # the start line and the progress bar go to stderr


# ---- what the output improves ----------------------------------------------------------------


def test_nlm_raises_psnr_on_a_noisy_clip(runner, tmp_path: Path) -> None:
    clean = _noisy_frames(tmp_path / "noisy", 8, (96, 64), sigma=25.0)
    noisy = _read_folder(tmp_path / "noisy")
    result = _denoise(runner, tmp_path / "noisy", tmp_path / "out", "--sigma", "25")
    assert result.exit_code == 0, result.stderr
    out = _read_folder(tmp_path / "out")
    assert media.psnr(out, clean) >= media.psnr(noisy, clean) + 8.0


def test_chunk_seams_are_invisible(runner, tmp_path: Path) -> None:
    _noisy_frames(tmp_path / "noisy", 20, (64, 48), sigma=20.0)
    for chunk in ("8", "48"):
        args = ("--sigma", "20", "--chunk", chunk, "--overlap", "2")
        result = _denoise(runner, tmp_path / "noisy", tmp_path / f"out{chunk}", *args)
        assert result.exit_code == 0, result.stderr
    small, whole = _read_folder(tmp_path / "out8"), _read_folder(tmp_path / "out48")
    assert small.shape == whole.shape == (20, 48, 64, 3)
    assert media.psnr(small, whole) >= 40.0


def test_tiles_match_whole_frames(runner, tmp_path: Path) -> None:
    _noisy_frames(tmp_path / "noisy", 3, (128, 96), sigma=20.0)
    runs = {"whole": (), "tiled": ("--tile", "96")}
    for name, extra in runs.items():
        result = _denoise(runner, tmp_path / "noisy", tmp_path / name, "--sigma", "20", *extra)
        assert result.exit_code == 0, result.stderr
    assert media.psnr(_read_folder(tmp_path / "tiled"), _read_folder(tmp_path / "whole")) >= 35.0


# ---- safety --------------------------------------------------------------------------------


def test_existing_output_is_refused_unless_overwrite(runner, h264_aac, tmp_path) -> None:
    out = tmp_path / "out.mp4"
    out.write_bytes(b"precious")
    result = _denoise(runner, h264_aac, out, "--sigma", "5")
    assert result.exit_code == 1
    assert "already exists" in result.stderr and "--overwrite" in result.stderr
    assert out.read_bytes() == b"precious"
    assert _denoise(runner, h264_aac, out, "--sigma", "5", "--overwrite").exit_code == 0
    assert len(media.video_frames_meta(out)) == 13


def test_output_equal_to_input_is_always_refused(runner, h264_aac: Path) -> None:
    before = h264_aac.read_bytes()
    for extra in ((), ("--overwrite",)):
        result = _denoise(runner, h264_aac, h264_aac, "--sigma", "5", *extra)
        assert result.exit_code == 1 and "output is the input" in result.stderr
    assert h264_aac.read_bytes() == before


def test_ctrl_c_in_process_leaves_nothing(runner, h264_aac, tmp_path, monkeypatch) -> None:
    import snl_cli.pipeline as pipeline
    from snl_cli.nlm import NLMDenoiser

    class Interrupted(NLMDenoiser):
        def __call__(self, clip: torch.Tensor, sigma: float) -> torch.Tensor:
            raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "make_denoiser", lambda *a, **k: Interrupted())
    before = sorted(p.name for p in tmp_path.iterdir())
    result = _denoise(runner, h264_aac, tmp_path / "out.mp4", "--sigma", "5")
    assert result.exit_code == 130
    assert "interrupted" in result.stderr and "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.parametrize(
    ("sig", "code", "word"),
    [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")],
)
def test_real_signal_leaves_nothing(tmp_path: Path, sig: int, code: int, word: str) -> None:
    """Ctrl-C and `kill` (SIGTERM) both remove the temporary output and exit 128 + signal."""
    src = _gradient_clip(tmp_path / "in.mkv", frames=150, size=(256, 192))
    out = tmp_path / "out.mkv"
    command = [sys.executable, "-m", "snl_cli", "denoise", str(src), "-o", str(out),
               "--model", "nlm", "--sigma", "10", "--chunk", "4"]  # fmt: skip
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # a shell's background jobs start with SIGINT ignored, which the child would inherit
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 120
        while not _leftovers(tmp_path) and process.poll() is None:
            if time.monotonic() > deadline:
                pytest.fail("the temporary output never appeared")
            time.sleep(0.05)
        assert process.poll() is None, process.communicate()
        time.sleep(0.5)  # well inside the work: a few chunks done
        os.kill(process.pid, sig)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == code, stderr
    assert word in stderr and "Traceback" not in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mkv"]


def _gradient_clip(path: Path, frames: int, size: tuple[int, int]) -> Path:
    """A lossless FFV1 clip of a gradient sliding sideways: quick to make, slow to denoise."""
    import av

    width, height = size
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 // width, y * 255 // height, (x + y) * 127 // (width + height)], -1)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index in range(frames):
            rgb = np.ascontiguousarray(np.roll(base.astype(np.uint8), 3 * index, axis=1))
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


# ---- errors ----------------------------------------------------------------------------------


def test_bad_input_is_one_line_naming_the_file(runner, tmp_path: Path) -> None:
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(media.garbage(2048))
    result = _denoise(runner, bad, tmp_path / "out.mp4")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "broken.mp4" in lines[0] and lines[0].startswith("snl: error:")
    assert not (tmp_path / "out.mp4").exists()


def test_stan_without_weights_is_one_line_and_default_is_nlm(
    runner,
    h264_aac,
    tmp_path,
    monkeypatch,
) -> None:
    import snl_cli.model.weights as weights

    monkeypatch.setattr(weights, "default_weights_path", lambda: tmp_path / "none.safetensors")
    out = tmp_path / "out.mp4"
    result = runner.invoke(app, ["denoise", str(h264_aac), "-o", str(out), "--model", "stan"])
    assert result.exit_code == 1
    assert len(result.stderr.strip().splitlines()) == 1 and "weights" in result.stderr
    assert not out.exists()
    result = runner.invoke(app, ["denoise", str(h264_aac), "-o", str(out), "--json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["model"] == "nlm"


@pytest.mark.parametrize(
    ("extra", "phrase"),
    [
        (("--sigma", "loud"), "--sigma"),
        (("--sigma", "300"), "--sigma"),
        (("--chunk", "0"), "--chunk"),
        (("--chunk", "4", "--overlap", "5"), "--overlap"),
        (("--tile", "8"), "--tile"),
        (("--model", "bm3d"), "--model"),
        (("--ensemble", "3"), "--ensemble"),
    ],
)
def test_usage_errors_exit_2(runner, h264_aac, tmp_path, extra, phrase) -> None:
    result = _denoise(runner, h264_aac, tmp_path / "out.mp4", *extra)
    assert result.exit_code == 2 and phrase in result.stderr
    assert not (tmp_path / "out.mp4").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_a_usage_error(runner, h264_aac, tmp_path) -> None:
    result = _denoise(runner, h264_aac, tmp_path / "out.mp4", "--device", "cuda")
    assert result.exit_code == 2 and "no CUDA device" in result.stderr


def test_weights_option_runs_stan_and_names_a_missing_file(runner, h264_aac, tmp_path) -> None:
    from snl_cli.model.stan import STAN, STANConfig
    from snl_cli.model.weights import save_stan

    cfg = STANConfig(channels=(8, 16), heads=2, qk_dim=4, attn_blocks=1, ws=5, topk=4, k_agg=2)
    weights = tmp_path / "mine.safetensors"
    save_stan(STAN(cfg), weights, {"note": "untrained"})
    args = ["denoise", str(h264_aac), "-o", str(tmp_path / "out.mp4"), "--model", "stan"]
    result = runner.invoke(app, [*args, "--weights", str(weights), "--json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["model"] == "stan"
    args[3] = str(tmp_path / "other.mp4")
    missing = runner.invoke(app, [*args, "--weights", str(tmp_path / "nope.safetensors")])
    assert missing.exit_code == 1 and "nope.safetensors" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
