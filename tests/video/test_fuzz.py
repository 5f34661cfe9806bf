"""Fuzzed inputs: mutated real containers and random bytes through `probe` and the reader,
and `snl info` on some of them. Any byte string gives a result or one InputError line,
never another exception or a hang. A few hundred cases here; thousands under `slow`."""

from __future__ import annotations

import time
from pathlib import Path

import media
import numpy as np
import pytest
from typer.testing import CliRunner

from snl_cli.cli import app
from snl_cli.errors import SnlError
from snl_cli.video import probe, read_frames

SEEDS = {
    "h264.mp4": {"codec": "libx264"},
    "ffv1.mkv": {"codec": "ffv1"},
    "h264.ts": {"codec": "libx264"},
    "mpeg4.avi": {"codec": "mpeg4"},
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> list[bytes]:
    folder = tmp_path_factory.mktemp("seeds")
    seeds = [media.make_clip(folder / n, frames=4, size=(32, 24), **o) for n, o in SEEDS.items()]
    image = folder / "one.png"
    media.write_image(image, media.pattern(0, 16, 16))
    return [p.read_bytes() for p in [*seeds, image]]


def mutate(data: bytes, rng: np.random.Generator) -> bytes:
    """Flip bytes, cut, splice or duplicate a span: the damage real files suffer."""
    buf = bytearray(data)
    for _ in range(int(rng.integers(1, 6))):
        kind = int(rng.integers(0, 5))
        at = int(rng.integers(0, max(1, len(buf))))
        if kind == 0 and buf:
            buf[at] = int(rng.integers(0, 256))
        elif kind == 1:
            buf = buf[:at]
        elif kind == 2:
            span = bytes(rng.integers(0, 256, int(rng.integers(1, 64)), dtype=np.uint8))
            buf[at:at] = span
        elif kind == 3 and buf:
            end = min(len(buf), at + int(rng.integers(1, 256)))
            buf[at:at] = buf[at:end]
        else:
            end = min(len(buf), at + int(rng.integers(1, 256)))
            del buf[at:end]
    return bytes(buf)


def check_one(path: Path, data: bytes) -> None:
    """probe + read every frame: success or SnlError, within a few seconds."""
    path.write_bytes(data)
    began = time.monotonic()
    try:
        info = probe(path)
        count = sum(1 for _ in read_frames(path))
        assert count >= 1 and info.width > 0
    except SnlError as exc:
        assert "\n" not in str(exc)
    assert time.monotonic() - began < 10, "took too long (hang?)"


def run_cases(corpus: list[bytes], tmp_path: Path, cases: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for case in range(cases):
        if case % 10 == 9:
            data = bytes(rng.integers(0, 256, int(rng.integers(0, 2048)), dtype=np.uint8))
        else:
            data = mutate(corpus[case % len(corpus)], rng)
        suffix = (".mp4", ".mkv", ".ts", ".avi", ".png")[case % len(corpus)]
        check_one(tmp_path / f"case{suffix}", data)


def test_fuzzed_inputs_never_crash(corpus, tmp_path):
    run_cases(corpus, tmp_path, cases=200, seed=21)


@pytest.mark.slow
def test_fuzzed_inputs_never_crash_long(corpus, tmp_path):
    run_cases(corpus, tmp_path, cases=3000, seed=2021)


def test_info_on_fuzzed_files_is_exit_0_or_one_line(corpus, tmp_path):
    rng = np.random.default_rng(5)
    runner = CliRunner()
    for case in range(30):
        path = tmp_path / f"c{case}.mkv"
        path.write_bytes(mutate(corpus[case % len(corpus)], rng))
        result = runner.invoke(app, ["info", str(path)])
        assert result.exit_code in (0, 1), result.output
        if result.exit_code:
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("snl: error:"), result.stderr
