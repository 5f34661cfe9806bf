"""Tests for snl_cli/batch.py: which clips are found, shards, the manifest and resuming,
with a 3×3 blur standing in for the denoiser (the pipeline is tested elsewhere)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import media
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from snl_cli.batch import (
    BatchOptions,
    batch_status,
    find_clips,
    fingerprint,
    parse_shard,
    run_batch,
    shard_of,
)
from snl_cli.errors import InputError, OutputError, UsageError
from snl_cli.pipeline import DenoiseOptions
from snl_cli.video import is_temp_name


class Blur:
    name, context, halo, bytes_per_pixel, device = "blur", 0, 2, 64, torch.device("cpu")

    def __init__(self, interrupt_on: int | None = None) -> None:
        self.calls = 0
        self.interrupt_on = interrupt_on

    def __call__(self, clip: torch.Tensor, sigma: float) -> torch.Tensor:
        self.calls += 1
        if self.calls == self.interrupt_on:
            raise KeyboardInterrupt
        return F.avg_pool2d(F.pad(clip, (1, 1, 1, 1), mode="replicate"), 3, stride=1)


OPTIONS = DenoiseOptions(sigma=10.0, chunk=4, overlap=0)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """in/a.mp4, in/frames/ (3 PNGs), in/sub/b.mkv, in/sub/deeper/c.mov, plus things to
    ignore: notes.txt, a hidden clip and a temporary output of an interrupted run."""
    root = tmp_path / "in"
    (root / "sub" / "deeper").mkdir(parents=True)
    media.make_clip(root / "a.mp4", frames=5, audio=True)
    media.make_frames(root / "frames", frames=3)
    media.make_clip(root / "sub" / "b.mkv", frames=4)
    media.make_clip(root / "sub" / "deeper" / "c.mov", frames=3)
    (root / "notes.txt").write_text("not a clip")
    media.make_clip(root / ".hidden.mp4", frames=2)
    (root / ".a.snl-x1y2.mp4").write_bytes(b"half")
    return root


def _rels(paths: list[Path], root: Path) -> list[str]:
    return [p.relative_to(root).as_posix() for p in paths]


def _rows(report: dict) -> dict[str, tuple[str, str]]:
    return {
        r["input"]: (r["status"], r.get("reason") or r.get("error", "")) for r in report["clips"]
    }


def test_finds_videos_and_frame_folders(tree: Path) -> None:
    assert _rels(find_clips(tree, BatchOptions()), tree) == ["a.mp4", "frames"]
    every = _rels(find_clips(tree, BatchOptions(recursive=True)), tree)
    assert every == ["a.mp4", "frames", "sub/b.mkv", "sub/deeper/c.mov"]
    only_mkv = find_clips(tree, BatchOptions(pattern="*.mkv", recursive=True))
    assert _rels(only_mkv, tree) == ["sub/b.mkv"]
    with pytest.raises(InputError, match="not a folder"):
        find_clips(tree / "a.mp4", BatchOptions())


def test_output_folder_inside_the_input_is_not_walked(tree: Path) -> None:
    outdir = tree / "sub" / "out"
    outdir.mkdir()
    media.make_clip(outdir / "old.mp4", frames=2)
    found = _rels(find_clips(tree, BatchOptions(recursive=True), exclude=outdir), tree)
    assert "sub/out/old.mp4" not in found and "sub/b.mkv" in found


def test_shards_partition_the_clips_and_stay_put(tree: Path) -> None:
    every = set(_rels(find_clips(tree, BatchOptions(recursive=True)), tree))
    for count in (1, 2, 3, 5):
        shares = [
            set(_rels(find_clips(tree, BatchOptions(recursive=True, shard=(i, count))), tree))
            for i in range(1, count + 1)
        ]
        assert set().union(*shares) == every
        assert sum(len(s) for s in shares) == len(every)
    names = [f"clip{i}.mp4" for i in range(400)]
    counts = [sum(shard_of(n, 4) == i for n in names) for i in range(1, 5)]
    assert min(counts) > 60  # roughly even
    assert all(shard_of(n, 4) == shard_of(n, 4) for n in names)


@pytest.mark.parametrize("text", ["0/3", "4/3", "2", "a/b", "1/0"])
def test_bad_shards_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError, match="--shard"):
        parse_shard(text)
    assert parse_shard("2/8") == (2, 8)


def test_outputs_mirror_the_tree_and_a_bad_clip_does_not_stop_the_rest(tree: Path) -> None:
    (tree / "sub" / "bad.mp4").write_bytes(media.garbage(3000))
    outdir = tree.parent / "out"
    report = run_batch(tree, outdir, OPTIONS, BatchOptions(recursive=True), denoiser=Blur())
    rows = _rows(report)
    assert rows["sub/bad.mp4"][0] == "failed" and "bad.mp4" in rows["sub/bad.mp4"][1]
    assert [rows[r][0] for r in ("a.mp4", "frames", "sub/b.mkv", "sub/deeper/c.mov")] == [
        "done"
    ] * 4
    assert (report["done"], report["failed"], report["skipped"]) == (4, 1, 0)
    assert len(media.video_frames_meta(outdir / "a.mp4")) == 5
    assert media.packets(outdir / "a.mp4", "audio") == media.packets(tree / "a.mp4", "audio")
    assert len(media.video_frames_meta(outdir / "sub" / "deeper" / "c.mov")) == 3
    assert sorted(p.name for p in (outdir / "frames").iterdir()) == [
        "frame0.png", "frame1.png", "frame2.png"
    ]  # fmt: skip
    assert not (outdir / "sub" / "bad.mp4").exists()
    assert not [p for p in outdir.rglob("*") if is_temp_name(p.name)]
    manifest = json.loads((outdir / ".snl-batch.json").read_text())
    statuses = {rel: record["status"] for rel, record in manifest["clips"].items()}
    assert statuses == {"a.mp4": "done", "frames": "done", "sub/b.mkv": "done",
                        "sub/deeper/c.mov": "done", "sub/bad.mp4": "failed"}  # fmt: skip
    assert "bad.mp4" not in manifest["clips"]["sub/bad.mp4"]["cause"]  # the cause, no path


def test_a_second_run_skips_what_is_done_and_redoes_what_is_not(tree: Path) -> None:
    outdir = tree.parent / "out"
    batch = BatchOptions(recursive=True)
    run_batch(tree, outdir, OPTIONS, batch, denoiser=Blur())
    stamps = {p: p.stat().st_mtime_ns for p in outdir.rglob("*") if p.is_file()}

    again = Blur()
    report = run_batch(tree, outdir, OPTIONS, batch, denoiser=again)
    assert report["skipped"] == 4 and report["done"] == 0 and again.calls == 0
    assert {p: p.stat().st_mtime_ns for p in outdir.rglob("*") if p.is_file()
            and not p.name.startswith(".snl-batch")} == {
        p: t for p, t in stamps.items() if not p.name.startswith(".snl-batch")
    }  # fmt: skip

    media.truncate(outdir / "a.mp4", 0.4)  # damaged output
    (outdir / "sub" / "b.mkv").unlink()  # lost output
    media.make_clip(tree / "sub" / "deeper" / "c.mov", frames=4)  # replaced input
    report = run_batch(tree, outdir, OPTIONS, batch, denoiser=Blur())
    rows = _rows(report)
    assert rows["a.mp4"] == ("done", "output changed")
    assert rows["sub/b.mkv"] == ("done", "output missing")
    assert rows["sub/deeper/c.mov"] == ("done", "input changed")
    assert rows["frames"][0] == "skipped"
    assert len(media.video_frames_meta(outdir / "sub" / "deeper" / "c.mov")) == 4

    other = DenoiseOptions(sigma=12.0, chunk=4, overlap=0)
    rows = _rows(run_batch(tree, outdir, other, batch, denoiser=Blur()))
    assert {status for status, _ in rows.values()} == {"done"}
    assert {reason for _, reason in rows.values()} == {"settings changed"}


def test_an_output_snl_did_not_write_is_refused_unless_overwrite(tree: Path) -> None:
    outdir = tree.parent / "out"
    outdir.mkdir()
    (outdir / "a.mp4").write_bytes(b"someone else's file")
    report = run_batch(tree, outdir, OPTIONS, denoiser=Blur())
    assert _rows(report)["a.mp4"][0] == "failed" and "already exists" in _rows(report)["a.mp4"][1]
    assert (outdir / "a.mp4").read_bytes() == b"someone else's file"
    forced = DenoiseOptions(sigma=10.0, chunk=4, overlap=0, overwrite=True)
    assert _rows(run_batch(tree, outdir, forced, denoiser=Blur()))["a.mp4"][0] == "done"


def test_shards_keep_their_own_manifests_and_a_whole_run_reads_them_all(tree: Path) -> None:
    outdir = tree.parent / "out"
    for i in (1, 2):
        run_batch(tree, outdir, OPTIONS, BatchOptions(recursive=True, shard=(i, 2)),
                  denoiser=Blur())  # fmt: skip
    assert {p.name for p in outdir.glob(".snl-batch*.json")} == {
        ".snl-batch-1of2.json", ".snl-batch-2of2.json"
    }  # fmt: skip
    report = run_batch(tree, outdir, OPTIONS, BatchOptions(recursive=True), denoiser=Blur())
    assert report["skipped"] == 4 and report["done"] == 0


def test_interrupt_stops_the_batch_and_keeps_finished_clips(tree: Path) -> None:
    outdir = tree.parent / "out"
    with pytest.raises(KeyboardInterrupt):
        # a.mp4 takes two chunks (calls 1, 2); the frame folder's first chunk is call 3.
        run_batch(tree, outdir, OPTIONS, denoiser=Blur(interrupt_on=3))
    assert (outdir / "a.mp4").is_file() and not (outdir / "frames").exists()
    assert not [p for p in outdir.rglob("*") if is_temp_name(p.name)]
    report = run_batch(tree, outdir, OPTIONS, denoiser=Blur())
    assert _rows(report) == {"a.mp4": ("skipped", _rows(report)["a.mp4"][1]),
                             "frames": ("done", "new")}  # fmt: skip


def test_fingerprint_notices_content_changes(tmp_path: Path) -> None:
    clip = media.make_clip(tmp_path / "x.mp4", frames=3)
    first = fingerprint(clip)
    assert first == fingerprint(clip)
    data = bytearray(clip.read_bytes())
    data[-5] ^= 0xFF
    clip.write_bytes(bytes(data))
    os.utime(clip, ns=(first["mtime_ns"], first["mtime_ns"]))  # same size and mtime
    assert fingerprint(clip)["sha256"] != first["sha256"]
    folder = tmp_path / "f"
    media.make_frames(folder, frames=2)
    before = fingerprint(folder)
    (folder / "frame1.png").unlink()
    assert fingerprint(folder) != before


def test_fingerprint_is_the_same_in_another_process(tree: Path) -> None:
    script = (
        "import json, sys; from pathlib import Path; from snl_cli.batch import fingerprint; "
        "print(json.dumps([fingerprint(Path(p)) for p in sys.argv[1:]]))"
    )
    clips = [tree / "frames", tree / "a.mp4"]
    for seed in ("1", "2"):
        done = subprocess.run(
            [sys.executable, "-c", script, *map(str, clips)],
            capture_output=True, text=True, check=True, env={**os.environ, "PYTHONHASHSEED": seed},
        )  # fmt: skip
        assert json.loads(done.stdout) == [fingerprint(c) for c in clips]


def test_bad_folders(tmp_path: Path, tree: Path) -> None:
    with pytest.raises(OutputError, match="input folder"):
        run_batch(tree, tree, OPTIONS, denoiser=Blur())
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="not a folder"):
        run_batch(tree, tmp_path / "file", OPTIONS, denoiser=Blur())


def test_status_merges_the_shards_manifests_and_retry_failed_reruns_only_failures(
    tree: Path,
) -> None:
    (tree / "sub" / "bad.mp4").write_bytes(media.garbage(3000))
    outdir = tree.parent / "out"
    shares = {"a.mp4": 2, "sub/bad.mp4": 2, "sub/deeper/c.mov": 1, "frames": 3, "sub/b.mkv": 3}
    assert {rel: shard_of(rel, 3) for rel in shares} == shares  # shares never move
    for i in (1, 2):  # a job array of 3 whose third task never ran
        run_batch(tree, outdir, OPTIONS, BatchOptions(recursive=True, shard=(i, 3)),
                  denoiser=Blur())  # fmt: skip
    status = batch_status(outdir)
    assert {r["input"]: r["status"] for r in status["clips"]} == {
        "a.mp4": "done", "sub/deeper/c.mov": "done", "sub/bad.mp4": "failed",
        "frames": "missing", "sub/b.mkv": "missing",
    }  # fmt: skip
    assert status["manifests"] == [".snl-batch-1of3.json", ".snl-batch-2of3.json"]
    assert (status["done"], status["failed"], status["missing"]) == (2, 1, 2)
    bad = next(r for r in status["clips"] if r["input"] == "sub/bad.mp4")
    assert bad["note"].startswith("cannot read as video")

    (outdir / "a.mp4").unlink()
    lost = next(r for r in batch_status(outdir)["clips"] if r["input"] == "a.mp4")
    assert (lost["status"], lost["note"]) == ("missing", "output missing")

    media.make_clip(tree / "sub" / "bad.mp4", frames=2)  # repaired
    blur = Blur()
    report = run_batch(tree, outdir, OPTIONS, BatchOptions(recursive=True, retry_failed=True),
                       denoiser=blur)  # fmt: skip
    assert _rows(report) == {"sub/bad.mp4": ("done", "failed before")} and blur.calls == 1
    assert (
        next(r for r in batch_status(outdir)["clips"] if r["input"] == "sub/bad.mp4")["status"]
        == "done"
    )


def test_a_failed_clip_does_not_make_a_strangers_file_ours(tree: Path) -> None:
    outdir = tree.parent / "out"
    outdir.mkdir()
    (outdir / "a.mp4").write_bytes(b"someone else's file")
    for _ in range(2):  # the failure is recorded; the rerun must still refuse
        assert _rows(run_batch(tree, outdir, OPTIONS, denoiser=Blur()))["a.mp4"][0] == "failed"
    assert (outdir / "a.mp4").read_bytes() == b"someone else's file"


def test_status_without_a_manifest(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="no snl batch manifest"):
        batch_status(tmp_path)


def _box3(image: np.ndarray) -> np.ndarray:
    """3x3 mean with edge replication, float64 (the Blur stand-in, independently)."""
    padded = np.pad(image.astype(np.float64), ((1, 1), (1, 1), (0, 0)), mode="edge")
    H, W, _ = image.shape
    return sum(padded[y : y + H, x : x + W] for y in range(3) for x in range(3)) / 9


def test_photos_are_clips_of_their_own(tmp_path: Path) -> None:
    """Images directly in the folder are photographs (any sizes, each its own output); a
    subfolder of images stays a frame sequence unless --photos."""
    root = tmp_path / "in"
    media.make_frames(root, size=(40, 32), names=["a.png"])
    media.make_frames(root, size=(24, 36), names=["b.png"])
    media.make_frames(root / "trip", size=(32, 24), names=["x.png", "y.png"])
    assert _rels(find_clips(root, BatchOptions()), root) == ["a.png", "b.png", "trip"]
    photos = BatchOptions(photos=True)  # found one level down, as frame folders are
    assert _rels(find_clips(root, photos), root) == ["a.png", "b.png", "trip/x.png", "trip/y.png"]
    media.make_frames(root / "trip" / "day2", size=(32, 24), names=["z.png"])
    assert "trip/day2/z.png" not in _rels(find_clips(root, photos), root)
    deep = _rels(find_clips(root, BatchOptions(recursive=True, photos=True)), root)
    assert deep == ["a.png", "b.png", "trip/day2/z.png", "trip/x.png", "trip/y.png"]
    (root / "trip" / "day2" / "z.png").unlink()
    (root / "trip" / "day2").rmdir()

    outdir = tmp_path / "out"
    report = run_batch(root, outdir, OPTIONS, photos, denoiser=Blur())
    assert (report["done"], report["failed"], report["frames"]) == (4, 0, 4)
    for rel in ("a.png", "b.png", "trip/x.png", "trip/y.png"):
        source = cv2.imread(str(root / rel))
        result = cv2.imread(str(outdir / rel))
        assert result.shape == source.shape
        assert np.abs(result - _box3(source)).max() <= 0.51  # 8-bit rounding of the blur
    again = run_batch(root, outdir, OPTIONS, photos, denoiser=Blur())
    assert again["skipped"] == 4 and again["done"] == 0
    assert [r["status"] for r in batch_status(outdir)["clips"]] == ["done"] * 4
