"""Peak memory in `snl bench denoise`: a child's own peak (wait4) and this process's growth
(sampled), checked against allocations of a known size; and the stan/bm3d line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from snl_cli.bench.denoise import PeakRSS, pattern_clip, run_with_peak, speed_and_memory
from snl_cli.errors import InputError

_ALLOCATE = (
    "import numpy as np, sys\na = np.ones(int(sys.argv[1]) << 20, np.uint8)\nprint(a.sum())\n"
)


def test_child_peak_counts_what_the_child_touched(tmp_path: Path, monkeypatch) -> None:
    """The child's own peak, not this (larger) process's: 1 vs 300 MB touched differ by 300."""
    (tmp_path / "alloc.py").write_text(_ALLOCATE)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    ballast = np.ones(400 << 20, np.uint8)  # this process is bigger than either child
    small_out, small = run_with_peak(["alloc", "1"], tmp_path, "x")
    big_out, big = run_with_peak(["alloc", "300"], tmp_path, "x")
    assert ballast.sum() == 400 << 20
    assert int(big_out) == 300 << 20 and int(small_out) == 1 << 20
    assert small < 200, small
    assert 290 <= big - small <= 330, (small, big)


def test_a_failing_child_is_one_input_error(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "broken.py").write_text("import sys\nsys.exit('snl: error: x.mkv: broken')\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    with pytest.raises(InputError, match=r"snl denoise failed: snl: error: x\.mkv: broken"):
        run_with_peak(["broken"], tmp_path, "snl denoise")


def test_peak_rss_sees_a_block_that_comes_and_goes() -> None:
    with PeakRSS() as peak:
        block = np.ones(200 << 20, np.uint8)
        block.sum()
        del block
    assert 190 <= peak.mb <= 260, peak.mb
    with PeakRSS() as idle:
        pass
    assert idle.mb < 20


def test_speed_ratio_and_memory_per_clip() -> None:
    rows = [
        {"clip": "a", "size": "960x540", "sigma": 20, "method": "stan", "fps": 3.0, "peak_mb": 900},
        {"clip": "a", "size": "960x540", "sigma": 20, "method": "bm3d", "fps": 6.0, "peak_mb": 80},
        {"clip": "a", "size": "960x540", "sigma": 20, "method": "noisy", "fps": None},
        {"clip": "b", "size": "64x48", "sigma": 20, "method": "stan", "fps": 3.0, "peak_mb": 1},
    ]
    lines = speed_and_memory(rows)
    assert len(lines) == 1  # clip b has no bm3d row
    assert lines[0]["ratio"] == pytest.approx(0.5)
    assert lines[0]["peak_mb"] == {"stan": 900, "bm3d": 80}


def test_pattern_clip_is_lossless_and_sized(tmp_path: Path) -> None:
    import av

    path = pattern_clip(tmp_path / "p.mkv", 96, 64, 5)
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 5 and frames[0].shape == (64, 96, 3)
    assert not np.array_equal(frames[0], frames[4])  # it moves
