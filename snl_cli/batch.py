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
manifests in `outdir` are read when deciding what is done.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import json
import os
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from snl_cli.denoisers import Denoiser, default_model, make_denoiser, resolve_device
from snl_cli.errors import InputError, OutputError, SnlError, UsageError
from snl_cli.pipeline import DenoiseOptions, Reporter, check_options, denoise_file
from snl_cli.video import is_temp_name, probe
from snl_cli.video.images import IMAGE_SUFFIXES, list_images

VIDEO_SUFFIXES = frozenset(
    {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".mts",
     ".m2ts", ".wmv", ".flv", ".y4m", ".nut", ".mxf", ".ogv", ".3gp"}
)  # fmt: skip
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
    """

    pattern: str = "*"
    recursive: bool = False
    shard: tuple[int, int] | None = None


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
    """Video files and frame folders below `folder`, sorted by relative path.

    Hidden entries (snl's temporary outputs among them) and `exclude` (the output folder,
    when it lies inside the input folder) are skipped.

    Raises:
        InputError: `folder` is not a folder or cannot be listed.
    """
    if not folder.is_dir():
        raise InputError("not a folder", folder)
    skip = exclude.resolve() if exclude is not None else None
    found = list(_walk(folder, options.recursive, skip))
    found = [p for p in found if fnmatch.fnmatch(p.name, options.pattern)]
    if options.shard is not None:
        index, count = options.shard
        found = [p for p in found if shard_of(_rel(p, folder), count) == index]
    return sorted(found, key=lambda p: _rel(p, folder))


def _walk(folder: Path, recursive: bool, skip: Path | None) -> Iterator[Path]:
    try:
        entries = sorted(folder.iterdir())
    except OSError as exc:
        raise InputError(exc.strerror or "cannot list folder", folder) from exc
    for entry in entries:
        if entry.name.startswith(".") or is_temp_name(entry.name):
            continue
        if skip is not None and entry.resolve() == skip:
            continue
        if entry.is_dir():
            if _holds_images(entry):
                yield entry
            elif recursive:
                yield from _walk(entry, recursive, skip)
        elif entry.is_file() and entry.suffix.lower() in VIDEO_SUFFIXES:
            yield entry


def _holds_images(folder: Path) -> bool:
    try:
        return any(
            p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
            for p in folder.iterdir()
        )
    except OSError:
        return False


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
    """The records of every manifest in `outdir`; writes only this run's own file."""

    def __init__(self, outdir: Path, shard: tuple[int, int] | None) -> None:
        self.outdir = outdir
        name = MANIFEST_PREFIX + (f"-{shard[0]}of{shard[1]}" if shard else "") + ".json"
        self.path = outdir / name
        self.records: dict[str, dict[str, Any]] = {}
        self.own: dict[str, dict[str, Any]] = {}
        for path in sorted(outdir.glob(MANIFEST_PREFIX + "*.json")) if outdir.is_dir() else []:
            entries = self._load(path)
            if path == self.path:
                self.own = dict(entries)
            for rel, record in entries.items():
                if record.get("finished", 0) >= self.records.get(rel, {}).get("finished", 0):
                    self.records[rel] = record

    @staticmethod
    def _load(path: Path) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return {}  # unreadable: everything it described is redone, nothing is lost
        if not isinstance(data, dict) or data.get("version") != MANIFEST_VERSION:
            return {}
        clips = data.get("clips")
        return clips if isinstance(clips, dict) else {}

    def record(self, rel: str, record: dict[str, Any]) -> None:
        """Store one finished clip and rewrite this run's manifest atomically."""
        self.records[rel] = record
        self.own[rel] = record
        self.outdir.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps({"version": MANIFEST_VERSION, "clips": self.own}, indent=1))
        os.replace(tmp, self.path)

    def is_done(self, rel: str, source: dict[str, Any], settings: dict[str, Any], out: Path):
        """(done?, why not) for a clip, checking the recorded output still holds up."""
        record = self.records.get(rel)
        if record is None:
            return False, "new"
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
    folder, outdir = Path(folder), Path(outdir)
    if outdir.exists() and not outdir.is_dir():
        raise OutputError("exists and is not a folder", outdir)
    if outdir.resolve() == folder.resolve():
        raise OutputError("output folder is the input folder; choose another one", outdir)
    clips = find_clips(folder, batch, exclude=outdir)
    if denoiser is None:
        model = options.model or default_model()
        denoiser = make_denoiser(model, device=resolve_device(options.device),
                                 weights=options.weights)  # fmt: skip
    settings = _settings(options, denoiser.name)
    manifest = Manifest(outdir, batch.shard)
    start = time.perf_counter()
    rows = []
    for number, src in enumerate(clips, 1):
        rel = _rel(src, folder)
        out = outdir / rel
        row = _one_clip(src, out, rel, number, len(clips), options, settings, manifest,
                        denoiser, events)  # fmt: skip
        rows.append(row)
        if events is not None:
            events.done(row)
    counts = {s: sum(r["status"] == s for r in rows) for s in ("done", "skipped", "failed")}
    return {
        "folder": str(folder),
        "outdir": str(outdir),
        "shard": None if batch.shard is None else f"{batch.shard[0]}/{batch.shard[1]}",
        "clips": rows,
        **counts,
        "frames": sum(r.get("frames", 0) for r in rows if r["status"] == "done"),
        "seconds": round(time.perf_counter() - start, 3),
    }


def _one_clip(
    src: Path,
    out: Path,
    rel: str,
    number: int,
    count: int,
    options: DenoiseOptions,
    settings: dict[str, Any],
    manifest: Manifest,
    denoiser: Denoiser,
    events: BatchEvents | None,
) -> dict[str, Any]:
    row: dict[str, Any] = {"input": rel, "output": str(out)}
    try:
        source = fingerprint(src)
        done, why = manifest.is_done(rel, source, settings, out)
        if done:
            return {**row, "status": "skipped", "reason": why}
        # Ours to replace if a record says we wrote it; otherwise only with --overwrite.
        ours = rel in manifest.records and out.exists()
        clip_options = dataclasses.replace(options, overwrite=options.overwrite or ours)
        reporter_cm = events.clip(rel, number, count) if events is not None else None
        if reporter_cm is None:
            summary = denoise_file(src, out, clip_options, denoiser=denoiser)
        else:
            with reporter_cm as reporter:
                summary = denoise_file(src, out, clip_options, reporter, denoiser=denoiser)
    except SnlError as exc:
        return {**row, "status": "failed", "error": str(exc), "cause": exc.message}
    except (OSError, RuntimeError, ValueError, MemoryError) as exc:
        cause = f"{type(exc).__name__}: {exc}"
        return {**row, "status": "failed", "error": f"{src}: {cause}", "cause": cause}
    manifest.record(rel, {
        "input": source,
        "settings": settings,
        "output": _output_stamp(out),
        "frames": summary["frames"],
        "sigma": summary["sigma"],
        "finished": time.time(),
    })  # fmt: skip
    keys = ("frames", "seconds", "fps", "sigma")
    return {**row, "status": "done", "reason": why, **{k: summary[k] for k in keys}}
