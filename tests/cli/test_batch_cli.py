"""`snl batch` end to end with the nlm model: a corrupt clip fails alone (exit 1), a
second run skips what is done, shards split the work, and the report is a table or JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import media
import pytest

from snl_cli.cli import app


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    root = tmp_path / "archive"
    (root / "day2").mkdir(parents=True)
    media.make_clip(root / "one.mp4", frames=4, audio=True)
    media.make_clip(root / "day2" / "two.mkv", frames=3)
    media.make_frames(root / "day2" / "stills", frames=2)
    (root / "day2" / "corrupt.mp4").write_bytes(media.garbage(4096))
    return root


def _batch(runner, folder: Path, outdir: Path, *extra: str):
    args = ["batch", str(folder), "-o", str(outdir), "--model", "nlm", "--sigma", "5", *extra]
    return runner.invoke(app, args)


def test_corrupt_clip_fails_alone_then_a_resumed_run_skips_the_rest(runner, archive, tmp_path):
    outdir = tmp_path / "clean"
    result = _batch(runner, archive, outdir, "--recursive", "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    status = {row["input"]: row["status"] for row in report["clips"]}
    assert status == {
        "day2/corrupt.mp4": "failed",
        "day2/stills": "done",
        "day2/two.mkv": "done",
        "one.mp4": "done",
    }
    assert "corrupt.mp4" in result.stderr
    assert media.packets(outdir / "one.mp4", "audio") == media.packets(archive / "one.mp4", "audio")
    assert len(media.video_frames_meta(outdir / "day2" / "two.mkv")) == 3
    assert len(list((outdir / "day2" / "stills").iterdir())) == 2

    (archive / "day2" / "corrupt.mp4").unlink()  # the user removes the bad file
    again = _batch(runner, archive, outdir, "--recursive")
    assert again.exit_code == 0, again.stderr
    assert "0 done, 3 skipped, 0 failed" in again.stdout
    assert "one.mp4" in again.stdout and "skipped" in again.stdout


def test_shards_split_the_archive(runner, archive, tmp_path) -> None:
    (archive / "day2" / "corrupt.mp4").unlink()
    outdir = tmp_path / "clean"
    seen = []
    for shard in ("1/2", "2/2"):
        result = _batch(runner, archive, outdir, "--recursive", "--shard", shard, "--json")
        assert result.exit_code == 0, result.stderr
        report = json.loads(result.stdout)
        assert report["shard"] == shard
        seen += [row["input"] for row in report["clips"] if row["status"] == "done"]
    assert sorted(seen) == ["day2/stills", "day2/two.mkv", "one.mp4"]


def test_pattern_and_no_recursion(runner, archive, tmp_path) -> None:
    result = _batch(runner, archive, tmp_path / "clean", "--pattern", "*.mp4", "--json")
    assert result.exit_code == 0, result.stderr
    assert [row["input"] for row in json.loads(result.stdout)["clips"]] == ["one.mp4"]


@pytest.mark.parametrize("shard", ["0/2", "3/2", "half"])
def test_bad_shard_is_a_usage_error(runner, archive, tmp_path, shard) -> None:
    result = _batch(runner, archive, tmp_path / "clean", "--shard", shard)
    assert result.exit_code == 2 and "--shard" in result.stderr
    assert not (tmp_path / "clean").exists()


def test_missing_folder_is_one_line(runner, tmp_path) -> None:
    result = _batch(runner, tmp_path / "nowhere", tmp_path / "clean")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"snl: error: {tmp_path / 'nowhere'}: not a folder"
    ]


def test_ray_without_ray_installed_is_one_line(runner, archive, tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    result = _batch(runner, archive, tmp_path / "clean", "--ray")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        "snl: error: --ray: Ray is not installed (pip install 'snl-cli[ray]')"
    ]
    assert not (tmp_path / "clean").exists()


@pytest.mark.parametrize(
    ("words", "address"),
    [
        (["--ray", "{folder}"], None),  # a folder after --ray is the FOLDER, not an address
        (["{folder}", "--ray"], None),
        (["{folder}", "--ray", "--retries", "5"], None),
        (["{folder}", "--ray", "auto"], "auto"),
        (["--ray", "10.0.0.5:6379", "{folder}"], "10.0.0.5:6379"),
        (["{folder}", "--ray", "ray://head:10001"], "ray://head:10001"),
        (["{folder}", "--ray=local"], None),
    ],
)
def test_ray_address_is_optional(runner, archive, tmp_path, monkeypatch, words, address):
    import snl_cli.cluster

    seen = {}

    def record(folder, outdir, options, batch, events, ray_options):
        seen.update(folder=folder, ray=ray_options)
        return {"clips": [], "failed": 0}

    monkeypatch.setattr(snl_cli.cluster, "run_batch_ray", record)
    args = [w.format(folder=archive) for w in words]
    result = runner.invoke(app, ["batch", *args, "-o", str(tmp_path / "o"), "--json"])
    assert result.exit_code == 0, result.output
    assert seen["folder"] == archive and seen["ray"].address == address
    assert seen["ray"].retries == (5 if "--retries" in words else 2)


@pytest.mark.parametrize(
    "args", [["{folder}"], ["--status", "{out}", "{folder}"], ["--status", "{out}", "-o", "{out}"]]
)
def test_batch_needs_folder_and_output_or_status_alone(runner, archive, tmp_path, args) -> None:
    words = [a.format(folder=archive, out=tmp_path) for a in args]
    result = runner.invoke(app, ["batch", *words])
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_status_of_a_folder_without_manifest_is_one_line(runner, tmp_path) -> None:
    result = runner.invoke(app, ["batch", "--status", str(tmp_path)])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"snl: error: {tmp_path}: no snl batch manifest here (.snl-batch*.json)"
    ]


def test_status_lists_done_failed_missing_and_exits_1_until_all_done(runner, archive, tmp_path):
    outdir = tmp_path / "clean"
    _batch(runner, archive, outdir, "--recursive", "--shard", "1/2")  # all four hash to 2/2
    result = runner.invoke(app, ["batch", "--status", str(outdir), "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert (report["done"], report["failed"], report["missing"]) == (0, 0, 4)
    assert report["manifests"] == [".snl-batch-1of2.json"]
    _batch(runner, archive, outdir, "--recursive", "--shard", "2/2")
    result = runner.invoke(app, ["batch", "--status", str(outdir)])
    assert result.exit_code == 1 and "3 done, 1 failed, 0 missing" in result.stdout
    (archive / "day2" / "corrupt.mp4").unlink()
    result = runner.invoke(app, ["batch", "--status", str(outdir)])
    assert result.exit_code == 0, result.output
    assert "3 done, 0 failed, 0 missing" in result.stdout
