"""`snl batch --ray`: the same batch, one Ray task per clip, on every machine of a cluster.

The driver (where `snl batch` runs) plans exactly as the local batch does (`plan_batch`,
`check_clip`): same clips, same manifest, same skips. The clips to do go to a pool of
worker actors, each holding one denoiser (the model is loaded once per worker, not once
per clip) and declaring the resources one clip needs (`gpus_per_clip`, `cpus_per_clip`);
Ray places them on whichever nodes have room. Inputs and outputs are paths on a
filesystem every node sees, as users have them: workers read and write there, the driver
alone writes the manifest.

A worker that dies mid-clip (killed, out of memory, node lost) leaves only its hidden
temporary file, which the driver removes; the clip goes back in the queue for a fresh
worker, up to `retries` more times, then it is reported failed with the cause. A clip
that fails on its own (unreadable input, existing output) is not retried: it would fail
again. Before a clip is handed out the manifest records it "pending", so an output that
lands while the driver is interrupted is known to be snl's and is redone, not refused.

Ray is an optional dependency (`pip install 'snl-cli[ray]'`); importing this module never
needs it.
"""

from __future__ import annotations

import collections
import contextlib
import math
import os
import shutil
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from snl_cli.batch import (
    BatchOptions,
    Job,
    Plan,
    batch_report,
    check_clip,
    check_folders,
    failure_of,
    plan_batch,
    record_done,
    record_failure,
)
from snl_cli.denoisers import Denoiser, default_model, make_denoiser
from snl_cli.errors import BackendUnavailable, UsageError
from snl_cli.pipeline import DenoiseOptions, check_options, denoise_file
from snl_cli.video import is_temp_name

RAY_HINT = "Ray is not installed (pip install 'snl-cli[ray]')"
MANIFEST_EVERY_S = 2.0  # the driver rewrites the manifest at most this often (and at the end)
POLL_S = 0.25  # how often the driver wakes to redraw progress while clips run


@dataclass(frozen=True)
class RayOptions:
    """Where and how `snl batch --ray` runs.

    Attributes:
        address: None starts a local Ray instance on this machine; "auto" joins the
            cluster this machine belongs to; "HOST:PORT" or "ray://HOST:PORT" a given one.
        gpus_per_clip: GPUs one clip holds (fractions share a GPU); None: 1 when the
            cluster has GPUs, else 0.
        cpus_per_clip: CPU cores one clip holds (also its PyTorch threads).
        retries: how many more times a clip whose worker died is tried.
        workers: worker actors to start; None: as many as the cluster's resources fit.
    """

    address: str | None = None
    gpus_per_clip: float | None = None
    cpus_per_clip: float = 1.0
    retries: int = 2
    workers: int | None = None


class ClusterEvents(Protocol):
    """What `run_batch_ray` tells its caller (the CLI draws one bar over all clips)."""

    def started(self, clips: int, workers: int, resources: str) -> None:
        """`clips` to do on `workers` workers, each holding `resources` (e.g. "1 CPU")."""

    def progressed(self, clips: int, frames: int) -> None:
        """Clips finished so far (any status) and frames denoised across all workers."""

    def retried(self, rel: str, attempt: int, cause: str) -> None:
        """A worker died on `rel`; it is queued for try number `attempt`."""

    def done(self, result: dict[str, Any]) -> None:
        """One clip finished: its row (done, skipped or failed)."""


def ray_unavailable_reason() -> str | None:
    """None when Ray can be imported, else why not and how to install it."""
    try:
        import ray  # noqa: F401
    except ImportError:
        return RAY_HINT
    return None


def parse_address(text: str | None) -> str | None:
    """The --ray value: "" or "local" → None (a local instance), anything else as given."""
    return None if text in (None, "", "local") else text


def run_batch_ray(
    folder: str | os.PathLike[str],
    outdir: str | os.PathLike[str],
    options: DenoiseOptions | None = None,
    batch: BatchOptions | None = None,
    events: ClusterEvents | None = None,
    ray_options: RayOptions | None = None,
    *,
    denoiser_factory: Callable[[], Denoiser] | None = None,
) -> dict[str, Any]:
    """`run_batch` on Ray: the same report, manifest and resume semantics.

    Args:
        denoiser_factory: builds a worker's denoiser, in the worker (default: the
            `options` model on the worker's device). Pickled to every worker.

    Returns:
        `run_batch`'s report; rows of clips run on Ray also carry "attempts" and
        "worker" (host:pid of the process that wrote the output).

    Raises:
        BackendUnavailable: Ray is not installed, or the cluster cannot be reached.
        UsageError: bad options, or no worker fits the cluster's resources.
        InputError, OutputError, WeightsError: as `run_batch`, before any clip.
    """
    if (reason := ray_unavailable_reason()) is not None:
        raise BackendUnavailable(f"--ray: {reason}")
    options = options or DenoiseOptions()
    batch = batch or BatchOptions()
    ray_options = ray_options or RayOptions()
    check_options(options)
    _check_ray_options(ray_options)
    check_folders(Path(folder), Path(outdir))
    if denoiser_factory is None:
        model = options.model or default_model()
        make_denoiser(model, device="cpu", weights=options.weights)  # weights errors here
        denoiser_factory = partial(make_denoiser, model, device=options.device,
                                   weights=options.weights)  # fmt: skip
    else:
        model = denoiser_factory().name
    plan = plan_batch(folder, outdir, options, batch, model)
    start = time.perf_counter()
    rows: list[dict[str, Any]] = []
    jobs: list[Job] = []
    for number, src in enumerate(plan.clips, 1):
        job = check_clip(plan, src, number, options)
        if isinstance(job, Job):
            jobs.append(job)
        else:
            rows.append(job)
            if events is not None:
                events.done(job)
    if jobs:
        with _RaySession(ray_options.address):
            rows += _Scheduler(plan, jobs, ray_options, denoiser_factory, events).run()
    else:
        plan.manifest.write()  # `--status` sees that this share ran
    return batch_report(plan, batch.shard, rows, time.perf_counter() - start)


def _check_ray_options(ray_options: RayOptions) -> None:
    if ray_options.cpus_per_clip < 0 or (ray_options.gpus_per_clip or 0) < 0:
        raise UsageError("--cpus-per-clip and --gpus-per-clip must be >= 0")
    if ray_options.retries < 0:
        raise UsageError(f"--retries: expected >= 0, got {ray_options.retries}")
    if ray_options.workers is not None and ray_options.workers < 1:
        raise UsageError(f"--workers: expected >= 1, got {ray_options.workers}")


class _RaySession:
    """Connect to (or start) Ray unless this process already did; disconnect if we did."""

    def __init__(self, address: str | None) -> None:
        self.address = address
        self.started = False

    def __enter__(self) -> _RaySession:
        import ray

        if not ray.is_initialized():
            try:
                ray.init(address=self.address or "local", include_dashboard=False,
                         logging_level="ERROR", log_to_driver=False)  # fmt: skip
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = self.address or "a local instance"
                raise BackendUnavailable(f"--ray: cannot start or reach {where}: {exc}") from exc
            self.started = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self.started:
            import ray

            ray.shutdown()


class _Counter:
    """Frames denoised across all workers (a Ray actor; workers add, the driver reads)."""

    def __init__(self) -> None:
        self.frames = 0

    def add(self, frames: int) -> None:
        self.frames += frames

    def total(self) -> int:
        return self.frames


class _RemoteReporter:
    """The pipeline's Reporter inside a worker: frames go to the counter in small batches."""

    def __init__(self, counter: Any) -> None:
        self.counter = counter
        self.pending = 0
        self.last = time.monotonic()
        self.warnings: list[str] = []

    def started(self, info: Any, summary: dict[str, Any]) -> None:
        pass

    def advanced(self, frames: int) -> None:
        self.pending += frames
        if time.monotonic() - self.last > POLL_S:
            self.flush()

    def warned(self, message: str) -> None:
        self.warnings.append(message)

    def flush(self) -> None:
        if self.pending:
            self.counter.add.remote(self.pending)
            self.pending = 0
        self.last = time.monotonic()


class _ClipWorker:
    """A Ray actor: one denoiser, built once, used for every clip it is given."""

    def __init__(self, factory: Callable[[], Denoiser], counter: Any) -> None:
        self.denoiser = factory()
        self.counter = counter
        self.where = f"{socket.gethostname()}:{os.getpid()}"

    def run(self, src: str, out: str, options: DenoiseOptions) -> dict[str, Any]:
        """Denoise one clip: {"summary", "warnings", "worker"} or {"error", "cause", ...}."""
        reporter = _RemoteReporter(self.counter)
        try:
            summary = denoise_file(src, out, options, reporter, denoiser=self.denoiser)
        except Exception as exc:
            failure = failure_of(Path(src), exc)
            if failure is None:
                raise
            return {"error": failure[0], "cause": failure[1], "worker": self.where}
        finally:
            reporter.flush()
        return {"summary": summary, "warnings": reporter.warnings, "worker": self.where}


class _Scheduler:
    """The driver's loop: hand clips to idle workers, collect, retry, record, redraw."""

    def __init__(
        self,
        plan: Plan,
        jobs: list[Job],
        ray_options: RayOptions,
        factory: Callable[[], Denoiser],
        events: ClusterEvents | None,
    ) -> None:
        import ray

        self.ray = ray
        self.plan = plan
        self.queue = collections.deque(jobs)
        self.total = len(jobs)
        self.options = ray_options
        self.factory = factory
        self.events = events
        self.rows: list[dict[str, Any]] = []
        self.last_write = time.monotonic()
        resources = ray.cluster_resources()
        gpus = ray_options.gpus_per_clip
        if gpus is None:
            gpus = 1.0 if resources.get("GPU", 0) > 0 else 0.0
        self.cpus, self.gpus = ray_options.cpus_per_clip, gpus
        self.workers = ray_options.workers or min(len(jobs), self._fit(resources))
        self.counter = ray.remote(num_cpus=0)(_Counter).remote()
        self.actor_class = ray.remote(num_cpus=self.cpus, num_gpus=self.gpus,
                                      max_restarts=0)(_ClipWorker)  # fmt: skip

    def _fit(self, resources: dict[str, float]) -> int:
        """Workers the cluster holds at once, by its CPUs and GPUs."""
        fits = []
        if self.cpus > 0:
            fits.append(math.floor(resources.get("CPU", 0) / self.cpus))
        if self.gpus > 0:
            fits.append(math.floor(resources.get("GPU", 0) / self.gpus))
        count = min(fits) if fits else len(self.queue)
        if count < 1:
            have = f"{resources.get('CPU', 0):g} CPUs and {resources.get('GPU', 0):g} GPUs"
            raise UsageError(
                f"--ray: one clip needs {self._resources()}, the cluster has {have}; "
                "lower --cpus-per-clip or --gpus-per-clip"
            )
        return count

    def _resources(self) -> str:
        gpu = f", {self.gpus:g} GPU" if self.gpus else ""
        return f"{self.cpus:g} CPU{gpu}"

    def _new_worker(self) -> Any:
        return self.actor_class.remote(self.factory, self.counter)

    def run(self) -> list[dict[str, Any]]:
        if self.events is not None:
            self.events.started(self.total, self.workers, self._resources())
        self._claim()
        idle: list[Any] = []
        running: dict[Any, tuple[Any, Job]] = {}
        try:
            while self.queue or running:
                # Start workers (at first, and to replace dead ones) only for queued clips.
                wanted = min(self.workers - len(running), len(self.queue)) - len(idle)
                idle += [self._new_worker() for _ in range(max(wanted, 0))]
                while idle and self.queue:
                    actor, job = idle.pop(), self.queue.popleft()
                    job.attempts += 1
                    ref = actor.run.remote(str(job.src), str(job.out), job.options)
                    running[ref] = (actor, job)
                ready, _ = self.ray.wait(list(running), num_returns=1, timeout=POLL_S)
                for ref in ready:
                    actor, job = running.pop(ref)
                    if self._collect(ref, actor, job):
                        idle.append(actor)
                self._progress()
                if time.monotonic() - self.last_write > MANIFEST_EVERY_S:
                    self._write()
        finally:
            for actor, job in running.values():  # interrupted: stop the clips in flight
                self.ray.kill(actor)
                _remove_temps(job.out)
            for actor in [*idle, self.counter]:  # a shared Ray session keeps no leftovers
                self.ray.kill(actor)
            self._write()
        return self.rows

    def _claim(self) -> None:
        """Record every clip about to be handed out as pending, in one manifest write."""
        manifest, now = self.plan.manifest, time.time()
        for job in self.queue:
            ours = manifest.owns(job.rel, job.out) or not job.out.exists()
            manifest.record(job.rel, {"status": "pending", "input": job.source,
                                      "settings": self.plan.settings, "ours": ours,
                                      "finished": now}, write=False)  # fmt: skip
        self._write()

    def _collect(self, ref: Any, actor: Any, job: Job) -> bool:
        """Record one returned clip (or requeue it); False if its worker died."""
        ray = self.ray
        try:
            result = ray.get(ref)
        except ray.exceptions.RayTaskError as exc:  # an unexpected error inside the clip
            self._finish(job, None, *_one_line(job, exc))
            return True
        except ray.exceptions.RayError as exc:  # the worker (or its node) died
            _remove_temps(job.out)
            ray.kill(actor)
            cause = _one_line(job, exc)[1]
            if job.attempts <= self.options.retries:
                self.queue.append(job)
                if self.events is not None:
                    self.events.retried(job.rel, job.attempts + 1, cause)
            else:
                tries = f"worker died on all {job.attempts} tries; last: "
                self._finish(job, None, f"{job.src}: {tries}{cause}", tries + cause)
            return False
        if "error" in result:
            self._finish(job, result, result["error"], result["cause"])
        else:
            self._finish(job, result)
        return True

    def _finish(self, job: Job, result: dict | None, error: str = "", cause: str = "") -> None:
        if result is not None and "summary" in result:
            row = record_done(self.plan, job, result["summary"], write=False)
            for message in result["warnings"]:
                row.setdefault("warnings", []).append(message)
        else:
            row = record_failure(self.plan, job.rel, job.out, job.source, error, cause,
                                 write=False)  # fmt: skip
        row["attempts"] = job.attempts
        if result is not None:
            row["worker"] = result["worker"]
        self.rows.append(row)
        if self.events is not None:
            self.events.done(row)

    def _progress(self) -> None:
        if self.events is None:
            return
        finished = sum(r.get("frames", 0) for r in self.rows)
        try:  # the workers' last counts may arrive after their results: never show fewer
            frames = max(self.ray.get(self.counter.total.remote(), timeout=5), finished)
        except self.ray.exceptions.RayError:
            frames = finished
        self.events.progressed(len(self.rows), frames)

    def _write(self) -> None:
        self.plan.manifest.write()
        self.last_write = time.monotonic()


def _one_line(job: Job, exc: BaseException) -> tuple[str, str]:
    """(error line, cause) from a Ray exception: its last non-empty line, no traceback."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    cause = f"{type(exc).__name__}: {lines[-1] if lines else ''}".strip()
    return f"{job.src}: {cause}", cause


def _remove_temps(out: Path) -> None:
    """Delete the hidden temporary outputs a dead worker left beside `out`."""
    try:
        leftovers = [p for p in out.parent.glob(f".{out.stem}.snl-*") if is_temp_name(p.name)]
    except OSError:
        return
    for path in leftovers:
        # On failure a later run still skips hidden temporary names; nothing reads them.
        with contextlib.suppress(OSError):
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
