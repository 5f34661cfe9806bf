"""Tests for snl_cli/cluster.py (`snl batch --ray`) on a real local Ray cluster of two CPUs:
clips spread over workers, a worker killed mid-clip, a clip that kills every worker, a bad
clip among good ones, a driver interrupted and resumed, and outputs identical to the local
batch's. Skipped only when Ray (the `ray` extra) is not installed."""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path

import media
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from snl_cli.batch import run_batch
from snl_cli.cli import app
from snl_cli.cluster import RayOptions, run_batch_ray
from snl_cli.pipeline import DenoiseOptions
from snl_cli.video import is_temp_name

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'snl-cli[ray]')")

TESTS = Path(__file__).resolve().parent
BLUR = DenoiseOptions(sigma=10.0, chunk=4, overlap=0)


@pytest.fixture(scope="module")
def cluster():
    """Two CPUs, no GPU; workers import this module (the test denoisers) from tests/."""
    path = os.pathsep.join(p for p in (str(TESTS), os.environ.get("PYTHONPATH", "")) if p)
    ray.init(num_cpus=2, num_gpus=0, include_dashboard=False, logging_level="ERROR",
             log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": path}})  # fmt: skip
    yield
    ray.shutdown()


class Blur:
    """A 3×3 box blur; a worker process running it dies (SIGKILL) where told to."""

    name, context, halo, bytes_per_pixel, device = "blur", 0, 2, 64, torch.device("cpu")

    def __init__(self, marker: Path | None, poison_width: int | None) -> None:
        self.calls = 0
        self.marker = marker
        self.poison_width = poison_width

    def __call__(self, clip: torch.Tensor, sigma: float) -> torch.Tensor:
        self.calls += 1
        if clip.shape[-1] == self.poison_width:
            os.kill(os.getpid(), signal.SIGKILL)  # this clip kills every worker, every try
        if self.calls == 2 and self.marker is not None:  # mid-clip: one chunk is written
            try:
                self.marker.open("x").close()  # only the first worker to get here dies
            except FileExistsError:
                pass
            else:
                os.kill(os.getpid(), signal.SIGKILL)
        return F.avg_pool2d(F.pad(clip, (1, 1, 1, 1), mode="replicate"), 3, stride=1)


class BlurFactory:
    """Builds a worker's Blur and leaves a file per build (one per worker process)."""

    def __init__(self, log: Path, kill_once: bool = False, poison_width: int | None = None):
        self.log = log
        self.kill_once = kill_once
        self.poison_width = poison_width

    def __call__(self) -> Blur:
        self.log.mkdir(exist_ok=True)
        (self.log / str(os.getpid())).touch()
        marker = self.log.parent / "killed-once" if self.kill_once else None
        return Blur(marker, self.poison_width)


class Recorder:
    """ClusterEvents that keeps what it is told."""

    def __init__(self, interrupt_after: int | None = None) -> None:
        self.rows: list[dict] = []
        self.retries: list[tuple[str, int, str]] = []
        self.progress: list[tuple[int, int]] = []
        self.interrupt_after = interrupt_after

    def started(self, clips: int, workers: int, resources: str) -> None:
        self.workers = workers

    def progressed(self, clips: int, frames: int) -> None:
        self.progress.append((clips, frames))

    def retried(self, rel: str, attempt: int, cause: str) -> None:
        self.retries.append((rel, attempt, cause))

    def done(self, result: dict) -> None:
        self.rows.append(result)
        if len(self.rows) == self.interrupt_after:
            raise KeyboardInterrupt


def _archive(root: Path, count: int, frames: int = 8) -> Path:
    """`count` lossless 32×32 clips (ffv1 in mkv) of `frames` frames, plus a frame folder."""
    root.mkdir()
    for i in range(count):
        media.make_clip(root / f"clip{i}.mkv", frames=frames, size=(32, 32), codec="ffv1",
                        pix_fmt="yuv444p")  # fmt: skip
    media.make_frames(root / "stills", frames=frames, size=(32, 32))
    return root


def _decoded(path: Path) -> list[np.ndarray]:
    if path.is_dir():
        return [media.decode_rgb(p)[0] for p in sorted(path.iterdir())]
    return media.decode_rgb(path)


def _no_temps(outdir: Path) -> bool:
    return not [p for p in outdir.rglob("*") if is_temp_name(p.name)]


def test_clips_spread_over_workers_and_match_the_local_batch(cluster, tmp_path: Path) -> None:
    root = _archive(tmp_path / "in", count=5)
    nlm = DenoiseOptions(model="nlm", sigma=15.0, chunk=4)
    local = run_batch(root, tmp_path / "local", nlm)
    events = Recorder()
    report = run_batch_ray(root, tmp_path / "ray", nlm, events=events)
    assert (report["done"], report["failed"], report["skipped"]) == (6, 0, 0)
    assert [r["input"] for r in report["clips"]] == [r["input"] for r in local["clips"]]
    assert events.workers == 2 and len({r["worker"] for r in report["clips"]}) == 2
    assert events.progress[-1] == (6, 6 * 8)  # frames counted across workers
    for row in local["clips"]:
        ours, theirs = tmp_path / "ray" / row["input"], Path(row["output"])
        pixels, reference = _decoded(ours), _decoded(theirs)
        assert len(pixels) == 8
        assert all(np.array_equal(a, b) for a, b in zip(pixels, reference, strict=True))
        assert not np.array_equal(pixels[0], _decoded(root / row["input"])[0])  # denoised
    # the same manifest records: a local run over the Ray output skips everything
    again = run_batch(root, tmp_path / "ray", nlm)
    assert again["skipped"] == 6 and again["done"] == 0


def test_a_killed_worker_is_replaced_and_its_clip_retried(cluster, tmp_path: Path) -> None:
    root = _archive(tmp_path / "in", count=5)
    media.make_clip(root / "poison.mkv", frames=8, size=(48, 32), codec="ffv1")
    factory = BlurFactory(tmp_path / "builds", kill_once=True, poison_width=48)
    events = Recorder()
    report = run_batch_ray(root, tmp_path / "out", BLUR, events=events,
                           ray_options=RayOptions(retries=1), denoiser_factory=factory)  # fmt: skip
    rows = {r["input"]: r for r in report["clips"]}
    poison = rows.pop("poison.mkv")
    assert poison["status"] == "failed" and poison["attempts"] == 2
    assert "worker died on all 2 tries" in poison["cause"]
    assert {r["status"] for r in rows.values()} == {"done"}
    assert sorted(r["attempts"] for r in rows.values()) == [1, 1, 1, 1, 1, 2]
    retried = [rel for rel, attempt, _ in events.retries if rel != "poison.mkv"]
    assert len(retried) == 1 and rows[retried[0]]["attempts"] == 2
    # no partial file anywhere, and every output is whole and equal to the local batch's
    outdir = tmp_path / "out"
    assert _no_temps(outdir) and not (outdir / "poison.mkv").exists()
    run_batch(root, tmp_path / "local", BLUR, denoiser=Blur(None, None))
    for rel in rows:
        ray_frames, local_frames = _decoded(outdir / rel), _decoded(tmp_path / "local" / rel)
        assert len(ray_frames) == 8
        assert all(np.array_equal(a, b) for a, b in zip(ray_frames, local_frames, strict=True))
    # one model per worker process, not per clip: 2 workers + at most one per death (3)
    builds = {p.name for p in factory.log.iterdir()} - {str(os.getpid())}
    assert len(builds) <= 2 + 3 < len(report["clips"])
    manifest = json.loads((outdir / ".snl-batch.json").read_text())["clips"]
    assert manifest["poison.mkv"]["status"] == "failed"


def test_resume_after_the_driver_is_interrupted(cluster, tmp_path: Path) -> None:
    root = _archive(tmp_path / "in", count=5)
    outdir = tmp_path / "out"
    factory = BlurFactory(tmp_path / "builds")
    with pytest.raises(KeyboardInterrupt):
        run_batch_ray(root, outdir, BLUR, events=Recorder(interrupt_after=2),
                      denoiser_factory=factory)  # fmt: skip
    assert _no_temps(outdir)
    records = json.loads((outdir / ".snl-batch.json").read_text())["clips"]
    done = {rel for rel, r in records.items() if r["status"] == "done"}
    pending = sorted(rel for rel, r in records.items() if r["status"] == "pending")
    assert len(done) == 2 and len(pending) == 4
    for rel in done:  # what is under a final name is whole
        assert len(_decoded(outdir / rel)) == 8
    # An output that landed after the driver stopped listening is snl's, not a stranger's:
    late = next(rel for rel in pending if rel.endswith(".mkv"))
    shutil.copy(outdir / next(r for r in done if r.endswith(".mkv")), outdir / late)

    report = run_batch_ray(root, outdir, BLUR, denoiser_factory=factory)
    rows = {r["input"]: (r["status"], r["reason"]) for r in report["clips"]}
    assert {rows[rel] for rel in done} == {("skipped", "done before with the same settings")}
    assert {rows[rel] for rel in pending} == {("done", "interrupted before")}
    local = run_batch(root, tmp_path / "local", BLUR, denoiser=Blur(None, None))
    for row in local["clips"]:
        ours, reference = _decoded(outdir / row["input"]), _decoded(Path(row["output"]))
        assert all(np.array_equal(a, b) for a, b in zip(ours, reference, strict=True))


def test_cli_bad_clip_among_good_ones_then_status_and_retry_failed(
    cluster, runner, tmp_path: Path
) -> None:
    root = _archive(tmp_path / "in", count=3, frames=4)
    (root / "broken.mp4").write_bytes(media.garbage(4096))
    outdir = tmp_path / "out"
    args = ["batch", str(root), "-o", str(outdir), "--ray", "--model", "nlm", "--sigma", "5"]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    status = {row["input"]: row["status"] for row in report["clips"]}
    assert status == {"broken.mp4": "failed", "clip0.mkv": "done", "clip1.mkv": "done",
                      "clip2.mkv": "done", "stills": "done"}  # fmt: skip
    assert "snl: error:" in result.stderr and "broken.mp4" in result.stderr
    assert "Traceback" not in result.output

    listed = runner.invoke(app, ["batch", "--status", str(outdir), "--json"])
    assert listed.exit_code == 1
    assert {r["input"]: r["status"] for r in json.loads(listed.stdout)["clips"]} == status

    media.make_clip(root / "broken.mp4", frames=4, size=(32, 32))  # repaired
    local = [a for a in args if a != "--ray"]  # a Ray run's manifest serves a local rerun
    result = runner.invoke(app, [*local, "--retry-failed", "--json"])
    assert result.exit_code == 0
    rows = json.loads(result.stdout)["clips"]
    assert [(r["input"], r["status"]) for r in rows] == [("broken.mp4", "done")]
    listed = runner.invoke(app, ["batch", "--status", str(outdir), "--json"])
    assert listed.exit_code == 0 and json.loads(listed.stdout)["done"] == 5
