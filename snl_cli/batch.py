"""Denoise every clip below a folder, resumably: `run_batch(folder, outdir, ...)`.

Clips are video files (by suffix) and frame folders (folders holding images). Outputs
mirror the input tree under `outdir` with the same names. A small JSON manifest in
`outdir` records, per clip, a fingerprint of the input (size, mtime, and a SHA-256 of its
size, first and last MiB, or of a frame folder's listing and end images), the settings
that change the pixels, and the output's size, mtime and frame count. A later run skips a
clip whose record matches all of these and whose output still probes to that frame count;
anything else (new, changed input or settings, missing, altered or unreadable output) is
done again. An existing output that no record explains is someone else's file: it is
refused unless `overwrite` is set.

`shard=(i, n)` keeps only the clips whose path hashes to share i of n (1-based), so a job
array can split an archive without coordination: the shares are disjoint, cover every
clip, and do not move when other clips are added. Each share writes its own manifest
(`.snl-batch-<i>of<n>.json`) so concurrent shares never clobber one another; all
manifests in `outdir` are read when deciding what is done, and `batch_status(outdir)`
merges them into one list of done, failed and missing clips. Failures are recorded too
(status "failed", with the cause), so `retry_failed` can rerun only those.

The same planning and recording serve `snl_cli.cluster`, which runs the clips on Ray.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import json
import os
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from snl_cli.clips import walk_clips
from snl_cli.denoisers import Denoiser
from snl_cli.errors import InputError, OutputError, SnlError, UsageError
from snl_cli.pipeline import DenoiseOptions, Reporter, check_options, denoise_file
from snl_cli.video import probe
from snl_cli.video.images import list_images

MANIFEST_PREFIX = ".snl-batch"
MANIFEST_VERSION = 1
_EDGE_BYTES = 1 << 20


@dataclass(frozen=True)
class BatchOptions:
    """Which clips a batch takes.

    Attributes:
        pattern: shell pattern matched against each clip's file or folder name.
        recursive: look in subfolders of subfolders (frame folders are always found one
            level down).
        shard: (i, n), 1 ≤ i ≤ n: only share i of n.
        retry_failed: only the clips whose latest record says they failed.
        photos: every image is a photograph of its own, also in subfolders (which are then
            not frame folders); image files directly in the folder always are.
    """

    pattern: str = "*"
    recursive: bool = False
    shard: tuple[int, int] | None = None
    retry_failed: bool = False
    photos: bool = False


class BatchEvents(Protocol):
    """What `run_batch` tells its caller (the CLI draws it)."""

    def clip(self, rel: str, number: int, count: int) -> AbstractContextManager[Reporter]:
        """Entering clip `number` of `count`; the context's Reporter gets its progress."""

    def done(self, result: dict[str, Any]) -> None:
        """One clip finished: its result row (status done, skipped or failed)."""


def parse_shard(text: str) -> tuple[int, int]:
    """ "I/N" → (I, N) with 1 ≤ I ≤ N; UsageError otherwise."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise UsageError(f"--shard: expected I/N such as 2/8, got {text!r}") from None
    if not 1 <= index <= count:
        raise UsageError(f"--shard: expected 1 <= I <= N, got {index}/{count}")
    return index, count


def shard_of(rel: str, count: int) -> int:
    """The share (1..count) a clip belongs to: a hash of its path relative to the folder."""
    digest = hashlib.sha256(rel.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count + 1


def find_clips(folder: Path, options: BatchOptions, exclude: Path | None = None) -> list[Path]:
    """Video files, frame folders and photographs below `folder` (`snl_cli.clips.walk_clips`)
    whose name matches the pattern, in the shard, sorted by relative path.

    Hidden entries (snl's temporary outputs among them) and `exclude` (the output folder,
    when it lies inside the input folder) are skipped.

    Raises:
        InputError: `folder` is not a folder or cannot be listed.
    """
    if not folder.is_dir():
        raise InputError("not a folder", folder)
    skip = exclude.resolve() if exclude is not None else None
    found = list(walk_clips(folder, options.recursive, skip, options.photos))
    found = [p for p in found if fnmatch.fnmatch(p.name, options.pattern)]
    if options.shard is not None:
        index, count = options.shard
        found = [p for p in found if shard_of(_rel(p, folder), count) == index]
    return sorted(found, key=lambda p: _rel(p, folder))


def _rel(path: Path, folder: Path) -> str:
    return path.relative_to(folder).as_posix()


def fingerprint(path: Path) -> dict[str, Any]:
    """Size, mtime and a quick SHA-256 of a clip (file, or frame folder's listing + ends)."""
    if path.is_dir():
        files = list_images(path)
        stats = [(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files]
        digest = hashlib.sha256(json.dumps(stats).encode())
        for end in dict.fromkeys((files[0], files[-1])):  # ordered: the same in every process
            digest.update(_edges(end))
        return {
            "size": sum(s[1] for s in stats),
            "mtime_ns": max(s[2] for s in stats),
            "sha256": digest.hexdigest(),
        }
    stat = path.stat()
    return {
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "sha256": hashlib.sha256(_edges(path)).hexdigest(),
    }


def _edges(path: Path) -> bytes:
    """Size, first and last MiB of a file: enough to notice a replaced clip, and quick."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(_EDGE_BYTES)
        if size > 2 * _EDGE_BYTES:
            fh.seek(size - _EDGE_BYTES)
        tail = fh.read(_EDGE_BYTES)
    return str(size).encode() + head + tail


def _output_stamp(path: Path) -> dict[str, Any]:
    """Size and mtime of an output file or frame folder (what a later run compares)."""
    if path.is_dir():
        stats = [p.stat() for p in path.iterdir() if p.is_file()]
        return {
            "size": sum(s.st_size for s in stats),
            "mtime_ns": max((s.st_mtime_ns for s in stats), default=0),
        }
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


class Manifest:
    """The records of every manifest in `outdir`; writes only this run's own file.

    A record is {"status": "done" | "failed" | "pending", "input": fingerprint,
    "settings", "finished": time written, ...}: done adds the output's stamp, frames and
    σ; failed adds error and cause; pending (a clip handed to a Ray worker, not yet back)
    adds nothing. "ours" marks an output path snl may replace although the record is not
    a done one (it did not exist, or was ours, when the clip was taken up). Records from
    before "status" existed are done records.
    """

    def __init__(
        self, outdir: Path, shard: tuple[int, int] | None, meta: dict[str, Any] | None = None
    ) -> None:
        self.outdir = outdir
        name = MANIFEST_PREFIX + (f"-{shard[0]}of{shard[1]}" if shard else "") + ".json"
        self.path = outdir / name
        self.meta = meta or {}
        self.records: dict[str, dict[str, Any]] = {}
        self.own: dict[str, dict[str, Any]] = {}
        self.found: dict[str, dict[str, Any]] = {}  # manifest name -> its "batch" block
        for path in sorted(outdir.glob(MANIFEST_PREFIX + "*.json")) if outdir.is_dir() else []:
            data = self._load(path)
            if data is None:
                continue
            entries = data["clips"]
            self.found[path.name] = data.get("batch") or {}
            if path == self.path:
                self.own = dict(entries)
            for rel, record in entries.items():
                if record.get("finished", 0) >= self.records.get(rel, {}).get("finished", 0):
                    self.records[rel] = record

    @staticmethod
    def _load(path: Path) -> dict[str, Any] | None:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return None  # unreadable: everything it described is redone, nothing is lost
        if not isinstance(data, dict) or data.get("version") != MANIFEST_VERSION:
            return None
        return data if isinstance(data.get("clips"), dict) else None

    def record(self, rel: str, record: dict[str, Any], write: bool = True) -> None:
        """Store one clip's record; rewrite this run's manifest atomically unless told not to
        (then `write()` later: the Ray driver batches records)."""
        self.records[rel] = record
        self.own[rel] = record
        if write:
            self.write()

    def write(self) -> None:
        """Rewrite this run's manifest: a temporary file renamed into place."""
        self.outdir.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        data = {"version": MANIFEST_VERSION, "batch": self.meta, "clips": self.own}
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, self.path)

    def status(self, rel: str) -> str | None:
        """ "done", "failed", "pending" or None (no record)."""
        record = self.records.get(rel)
        return None if record is None else record.get("status", "done")

    def owns(self, rel: str, out: Path) -> bool:
        """`out` exists and a record says snl wrote it (or may replace it)."""
        record = self.records.get(rel)
        if record is None or not out.exists():
            return False
        return record.get("status", "done") == "done" or bool(record.get("ours"))

    def is_done(self, rel: str, source: dict[str, Any], settings: dict[str, Any], out: Path):
        """(done?, why not) for a clip, checking the recorded output still holds up."""
        record = self.records.get(rel)
        if record is None:
            return False, "new"
        if record.get("status") == "failed":
            return False, "failed before"
        if record.get("status") == "pending":
            return False, "interrupted before"
        if record.get("input") != source:
            return False, "input changed"
        if record.get("settings") != settings:
            return False, "settings changed"
        if not out.exists():
            return False, "output missing"
        if record.get("output") != _output_stamp(out):
            return False, "output changed"
        try:
            frames = probe(out).frames
        except SnlError:
            return False, "output unreadable"
        if frames != record.get("frames"):
            return False, f"output has {frames} of {record.get('frames')} frames"
        return True, "done before with the same settings"


def _settings(options: DenoiseOptions, model: str) -> dict[str, Any]:
    return {**options.settings(), "model": model}


@dataclass
class Plan:
    """A batch ready to run: the clips, where their outputs go, and the manifest.

    Attributes:
        folder, outdir: as given.
        clips: the clips to consider, sorted by relative path.
        settings: what the manifest compares (the options that change pixels + model).
        manifest: every record in `outdir`; writes this run's own file.
    """

    folder: Path
    outdir: Path
    clips: list[Path]
    settings: dict[str, Any]
    manifest: Manifest

    def rel(self, src: Path) -> str:
        return _rel(src, self.folder)


@dataclass
class Job:
    """One clip that needs denoising (not done before, input fingerprinted)."""

    rel: str
    src: Path
    out: Path
    number: int
    source: dict[str, Any]
    why: str
    options: DenoiseOptions
    attempts: int = 0


def check_folders(folder: Path, outdir: Path) -> None:
    """InputError / OutputError for folders a batch cannot use."""
    if not folder.is_dir():
        raise InputError("not a folder", folder)
    if outdir.exists() and not outdir.is_dir():
        raise OutputError("exists and is not a folder", outdir)
    if outdir.resolve() == folder.resolve():
        raise OutputError("output folder is the input folder; choose another one", outdir)


def plan_batch(
    folder: str | os.PathLike[str],
    outdir: str | os.PathLike[str],
    options: DenoiseOptions,
    batch: BatchOptions,
    model: str,
) -> Plan:
    """Check the folders, find the clips and read the manifests (local and Ray runs alike).

    Raises:
        InputError: `folder` is not a folder.
        OutputError: `outdir` is a file or the input folder.
    """
    folder, outdir = Path(folder), Path(outdir)
    check_folders(folder, outdir)
    clips = find_clips(folder, batch, exclude=outdir)
    meta = {"folder": str(folder.resolve()), "pattern": batch.pattern,
            "recursive": batch.recursive, "photos": batch.photos}  # fmt: skip
    manifest = Manifest(outdir, batch.shard, meta)
    if batch.retry_failed:
        clips = [c for c in clips if manifest.status(_rel(c, folder)) == "failed"]
    return Plan(folder, outdir, clips, _settings(options, model), manifest)


def check_clip(plan: Plan, src: Path, number: int, options: DenoiseOptions) -> Job | dict[str, Any]:
    """A Job for a clip that needs doing, or its row when it is skipped or unreadable."""
    rel = plan.rel(src)
    out = plan.outdir / rel
    row: dict[str, Any] = {"input": rel, "output": str(out)}
    try:
        source = fingerprint(src)
    except OSError as exc:
        cause = exc.strerror or f"{type(exc).__name__}: {exc}"
        return record_failure(plan, rel, out, None, f"{src}: {cause}", cause)
    done, why = plan.manifest.is_done(rel, source, plan.settings, out)
    if done:
        return {**row, "status": "skipped", "reason": why}
    # Ours to replace if a record says we wrote it; otherwise only with --overwrite.
    ours = plan.manifest.owns(rel, out)
    clip_options = dataclasses.replace(options, overwrite=options.overwrite or ours)
    return Job(rel, src, out, number, source, why, clip_options)


def record_done(plan: Plan, job: Job, summary: dict[str, Any], write: bool = True):
    """Record a finished clip in the manifest and return its row."""
    plan.manifest.record(job.rel, {
        "status": "done",
        "input": job.source,
        "settings": plan.settings,
        "output": _output_stamp(job.out),
        "frames": summary["frames"],
        "frames_lost": summary.get("frames_lost", 0),
        "frames_lost_reason": summary.get("frames_lost_reason"),
        "sigma": summary["sigma"],
        "finished": time.time(),
    }, write)  # fmt: skip
    keys = ("frames", "seconds", "fps", "sigma")
    lost = {k: summary[k] for k in ("frames_lost", "frames_lost_reason") if summary.get(k)}
    return {"input": job.rel, "output": str(job.out), "status": "done", "reason": job.why,
            **{k: summary[k] for k in keys}, **lost}  # fmt: skip


def record_failure(
    plan: Plan,
    rel: str,
    out: Path,
    source: dict[str, Any] | None,
    error: str,
    cause: str,
    write: bool = True,
) -> dict[str, Any]:
    """Record a failed clip (so `--status` lists it and `--retry-failed` finds it); its row."""
    plan.manifest.record(rel, {
        "status": "failed",
        "input": source,
        "settings": plan.settings,
        "error": error,
        "cause": cause,
        "ours": plan.manifest.owns(rel, out),
        "finished": time.time(),
    }, write)  # fmt: skip
    return {"input": rel, "output": str(out), "status": "failed", "error": error, "cause": cause}


def failure_of(src: Path, exc: BaseException) -> tuple[str, str] | None:
    """(error line, cause) for the exceptions a clip may fail with; None for the others."""
    if isinstance(exc, SnlError):
        return str(exc), exc.message
    if isinstance(exc, (OSError, RuntimeError, ValueError, MemoryError)):
        cause = f"{type(exc).__name__}: {exc}"
        return f"{src}: {cause}", cause
    return None


def batch_report(plan: Plan, shard: tuple[int, int] | None, rows: list[dict[str, Any]],
                 seconds: float) -> dict[str, Any]:  # fmt: skip
    """The result of a batch run (see `run_batch`); rows in clip order."""
    order = {plan.rel(src): i for i, src in enumerate(plan.clips)}
    rows = sorted(rows, key=lambda r: order.get(r["input"], len(order)))
    counts = {s: sum(r["status"] == s for r in rows) for s in ("done", "skipped", "failed")}
    return {
        "folder": str(plan.folder),
        "outdir": str(plan.outdir),
        "shard": None if shard is None else f"{shard[0]}/{shard[1]}",
        "clips": rows,
        **counts,
        "frames": sum(r.get("frames", 0) for r in rows if r["status"] == "done"),
        "seconds": round(seconds, 3),
    }


def run_batch(
    folder: str | os.PathLike[str],
    outdir: str | os.PathLike[str],
    options: DenoiseOptions | None = None,
    batch: BatchOptions | None = None,
    events: BatchEvents | None = None,
    *,
    denoiser: Denoiser | None = None,
) -> dict[str, Any]:
    """Denoise every clip below `folder` into the same tree under `outdir`.

    One denoiser is built and reused; σ is estimated per clip unless given. A clip that
    fails is recorded as failed and the next one starts. Ctrl-C stops the batch (the clip
    being written leaves nothing behind; finished clips stay recorded).

    Returns:
        {"folder", "outdir", "shard", "clips": [row per clip], "done", "skipped", "failed",
        "frames", "seconds"}; a row has input, output, status ("done", "skipped",
        "failed"), reason (done, skipped) or error and cause (failed: the one-line message
        with and without the path), and for done clips frames, seconds, fps and sigma.

    Raises:
        InputError: `folder` is not a folder.
        UsageError, WeightsError: bad options or missing weights (before any clip).
    """
    options = options or DenoiseOptions()
    batch = batch or BatchOptions()
    check_options(options)
    check_folders(Path(folder), Path(outdir))  # before the model: its errors come first
    if denoiser is None:
        denoiser = options.make_denoiser()
    plan = plan_batch(folder, outdir, options, batch, denoiser.name)
    start = time.perf_counter()
    rows = []
    for number, src in enumerate(plan.clips, 1):
        row = _one_clip(plan, src, number, options, denoiser, events)
        rows.append(row)
        if events is not None:
            events.done(row)
    plan.manifest.write()  # also when nothing was to do: `--status` sees that this share ran
    return batch_report(plan, batch.shard, rows, time.perf_counter() - start)


def _one_clip(
    plan: Plan,
    src: Path,
    number: int,
    options: DenoiseOptions,
    denoiser: Denoiser,
    events: BatchEvents | None,
) -> dict[str, Any]:
    job = check_clip(plan, src, number, options)
    if not isinstance(job, Job):
        return job
    try:
        reporter_cm = events.clip(job.rel, number, len(plan.clips)) if events else None
        if reporter_cm is None:
            summary = denoise_file(src, job.out, job.options, denoiser=denoiser)
        else:
            with reporter_cm as reporter:
                summary = denoise_file(src, job.out, job.options, reporter, denoiser=denoiser)
    except Exception as exc:
        failure = failure_of(src, exc)
        if failure is None:
            raise
        return record_failure(plan, job.rel, job.out, job.source, *failure)
    return record_done(plan, job, summary)


def batch_status(outdir: str | os.PathLike[str]) -> dict[str, Any]:
    """Merge every manifest in `outdir` (one per shard) into one account of the batch.

    The clips are found again in the input folder the manifests name (with their pattern
    and recursion, all shares); each is "done" (recorded, output still as written),
    "failed" (latest record, with its cause) or "missing" (never recorded, interrupted,
    or its output gone or changed). Inputs are not re-read: a changed input shows up on
    the next run, not here.

    Returns:
        {"outdir", "folder", "manifests": [names], "clips": [{"input", "status",
        "note"}], "done", "failed", "missing"}.

    Raises:
        OutputError: no readable manifest in `outdir`.
        InputError: the input folder they name is gone.
    """
    outdir = Path(outdir)
    manifest = Manifest(outdir, None)
    metas = [m for m in manifest.found.values() if m.get("folder")]
    if not metas:
        raise OutputError("no snl batch manifest here (.snl-batch*.json)", outdir)
    meta = metas[-1]
    folder = Path(meta["folder"])
    batch = BatchOptions(
        pattern=meta.get("pattern", "*"),
        recursive=meta.get("recursive", False),
        photos=meta.get("photos", False),
    )
    rows = []
    for src in find_clips(folder, batch, exclude=outdir):
        rel = _rel(src, folder)
        out = outdir / rel
        record = manifest.records.get(rel)
        status, note = "missing", "not started"
        if record is not None:
            state = record.get("status", "done")
            if state == "failed":
                status, note = "failed", record.get("cause", "")
            elif state == "pending":
                note = "interrupted"
            elif not out.exists():
                note = "output missing"
            elif record.get("output") != _output_stamp(out):
                note = "output changed"
            else:
                status, note = "done", f"{record.get('frames')} frames"
        rows.append({"input": rel, "output": str(out), "status": status, "note": note})
    counts = {s: sum(r["status"] == s for r in rows) for s in ("done", "failed", "missing")}
    return {"outdir": str(outdir), "folder": str(folder), "manifests": sorted(manifest.found),
            "clips": rows, **counts}  # fmt: skip
