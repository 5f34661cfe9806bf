"""`snl bench pairs` on generated noisy/clean pairs: the report, the oracle sweep, errors."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from snl_cli.cli import app


def _pairs(root: Path, count: int = 2, sigma: float = 20.0) -> Path:
    rng = np.random.default_rng(0)
    for sub in ("noisy", "clean"):
        (root / sub).mkdir(parents=True)
    y, x = np.mgrid[0:48, 0:56]
    for i in range(count):
        clean = np.stack([y * 4, x * 4, (x + y + 20 * i) * 2], -1).clip(0, 255).astype(np.uint8)
        noisy = np.clip(np.rint(clean + rng.normal(0, sigma, clean.shape)), 0, 255)
        cv2.imwrite(str(root / "clean" / f"{i}.png"), clean[..., ::-1])
        cv2.imwrite(str(root / "noisy" / f"{i}.png"), noisy.astype(np.uint8)[..., ::-1])
    return root


def test_bench_pairs_json(runner, tmp_path) -> None:
    folder = _pairs(tmp_path / "set")
    args = ["bench", "pairs", str(folder), "--methods", "nlm,nlmeans", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    summary = {r["method"]: r for r in report["summary"]}
    assert set(summary) == {"noisy", "nlm", "nlmeans"}
    # sigma 20 Gaussian on 8-bit values: about 22.1 dB before denoising
    assert 21.0 < summary["noisy"]["psnr"] < 23.0 and summary["noisy"]["images"] == 2
    assert summary["nlmeans"]["gain"] > 3
    assert summary["nlm"]["gain"] > 0
    sweep = [r for r in report["rows"] if r["method"] == "nlmeans"]
    assert all(r["settings"].startswith("s=") for r in sweep)
    ours = [r for r in report["rows"] if r["method"] == "nlm"]
    assert all(r["settings"] == "blind, ensemble 8" for r in ours)  # a photo's default


def test_bench_pairs_ensemble_option_reaches_snl(runner, tmp_path) -> None:
    folder = _pairs(tmp_path / "set", count=1)
    args = ["bench", "pairs", str(folder), "--methods", "nlm", "--ensemble", "2", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = [r for r in json.loads(result.stdout)["rows"] if r["method"] == "nlm"]
    assert [r["settings"] for r in rows] == ["blind, ensemble 2"]


def test_bench_pairs_missing_partner_is_one_line(runner, tmp_path) -> None:
    folder = _pairs(tmp_path / "set")
    (folder / "clean" / "1.png").unlink()
    result = runner.invoke(app, ["bench", "pairs", str(folder)])
    assert result.exit_code == 1
    assert "no clean/1.png for noisy/1.png" in result.output
    assert "Traceback" not in result.output
