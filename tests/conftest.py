"""Shared fixtures: synthetic clips and frame folders made with PyAV inside tmp_path.

`make_clip("name.mkv", **options)` and `make_frames("folder", **options)` wrap the helpers
in tests/media.py (see there for the options); test modules may also import `media`
directly for the read-back helpers (decode_rgb, packets, psnr, ...).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import media
import pytest
from typer.testing import CliRunner

BT709_TV = {"range": "tv", "space": "bt709", "primaries": "bt709", "transfer": "bt709"}


@pytest.fixture
def make_clip(tmp_path: Path) -> Callable[..., Path]:
    """Factory writing a synthetic clip into tmp_path: make_clip("a.mp4", audio=True)."""

    def make(name: str, **options: object) -> Path:
        return media.make_clip(tmp_path / name, **options)

    return make


@pytest.fixture
def make_frames(tmp_path: Path) -> Callable[..., Path]:
    """Factory writing a folder of images into tmp_path; returns the folder."""

    def make(name: str = "frames", **options: object) -> Path:
        folder = tmp_path / name
        media.make_frames(folder, **options)
        return folder

    return make


@pytest.fixture
def h264_aac(make_clip: Callable[..., Path]) -> Path:
    """13 frames of 64x48 H.264 yuv420p, BT.709 limited range, with stereo AAC (mp4)."""
    return make_clip("h264_aac.mp4", frames=13, audio=True, color=BT709_TV)


@pytest.fixture
def hevc10(make_clip: Callable[..., Path]) -> Path:
    """8 frames of 64x48 10-bit HEVC (yuv420p10le), BT.709 limited range (mkv)."""
    return make_clip("hevc10.mkv", codec="libx265", pix_fmt="yuv420p10le", color=BT709_TV)


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread() -> Iterator[None]:
    """The test tensors are tiny: on a 2-core machine shared with other work, one torch
    thread runs them up to ~50x faster than two (no thread-pool hand-offs)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def runner() -> CliRunner:
    """Typer's in-process runner; stdout and stderr are kept apart."""
    return CliRunner()
