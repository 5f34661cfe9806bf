"""`snl demo` on a generated clip: files written, PSNR improves, comparison image is valid."""

from __future__ import annotations

import json

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


def test_demo_missing_clip_is_one_line(runner, tmp_path) -> None:
    result = runner.invoke(app, ["demo", str(tmp_path / "nope.mp4"), "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "nope.mp4" in result.stderr
