"""`snl demo` on a generated clip: files written, PSNR improves, comparison image is valid."""

from __future__ import annotations

import json
import re

import media

from snl_cli.cli import app


def test_demo_writes_files_and_improves_psnr(make_clip, runner, tmp_path) -> None:
    clip = make_clip("clean.mp4", frames=4, size=(64, 48), options={"crf": "1"})
    out = tmp_path / "demo"
    result = runner.invoke(app, ["demo", str(clip), "--out", str(out), "--model", "nlm", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["frames"] == 4
    assert 19.0 < report["psnr_noisy"] < 21.5  # sigma 25 on 8-bit content
    assert report["psnr_denoised"] > report["psnr_noisy"] + 3
    for key in ("noisy", "denoised"):
        assert (out / report[key].split("/")[-1]).stat().st_size > 0
    assert (out / "comparison.png").read_bytes()[:4] == b"\x89PNG"
    assert re.search(r"ssim .* 8/8", result.stderr)  # 4 noisy + 4 denoised frames scored

    # A second run refuses to replace them, before any work, and names the first one.
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    again = runner.invoke(app, ["demo", str(clip), "--out", str(out), "--model", "nlm"])
    assert again.exit_code == 1
    assert again.stderr == (
        f"snl: error: {out / 'noisy.mkv'}: already exists; pass --overwrite to replace it\n"
    )
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_demo_overwrite_replaces_only_its_own_files(make_clip, runner, tmp_path) -> None:
    clip = make_clip("clean.mp4", frames=3, size=(48, 32))
    out = tmp_path / "demo"
    out.mkdir()
    (out / "denoised.mp4").write_bytes(b"old")
    (out / "notes.txt").write_text("mine")
    refused = runner.invoke(app, ["demo", str(clip), "--out", str(out), "--model", "nlm"])
    assert refused.exit_code == 1 and "denoised.mp4: already exists" in refused.stderr
    assert sorted(p.name for p in out.iterdir()) == ["denoised.mp4", "notes.txt"]
    args = ["demo", str(clip), "--out", str(out), "--model", "nlm", "--overwrite", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (out / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in out.iterdir()) == [
        "comparison.png", "denoised.mp4", "noisy.mkv", "notes.txt",
    ]  # fmt: skip
    assert len(media.decode_rgb(out / "denoised.mp4")) == 3


def test_demo_refuses_to_write_over_its_input(make_clip, runner, tmp_path) -> None:
    clip = make_clip("noisy.mkv", frames=3, size=(48, 32), codec="ffv1", pix_fmt="bgr0")
    data = clip.read_bytes()
    args = ["demo", str(clip), "--out", str(tmp_path), "--model", "nlm", "--overwrite"]
    result = runner.invoke(app, args)
    assert result.exit_code == 1 and "output is the input" in result.stderr
    assert clip.read_bytes() == data


def test_demo_missing_clip_is_one_line(runner, tmp_path) -> None:
    result = runner.invoke(app, ["demo", str(tmp_path / "nope.mp4"), "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "nope.mp4" in result.stderr
