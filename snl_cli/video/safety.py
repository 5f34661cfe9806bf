"""Rules that keep users' data safe: never the input, never clobber, rename into place.

Outputs are written under a hidden temporary name beside the target,
`.<stem>.snl-<random><suffix>` for files (the extension is kept so FFmpeg picks the muxer
from it) and `.<name>.snl-<random>` for frame folders, then renamed over the final name
only when complete. `is_temp_name` recognises these leftovers (e.g. after a power cut);
`remove_stale_temps` deletes the ones of an output, older than this run, before it is
written again. What they do beside the work (a folder created, a leftover removed) is
logged on the "snl" logger, which the CLI prints on stderr.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from snl_cli.errors import OutputError
from snl_cli.video.images import IMAGE_SUFFIXES

TEMP_MARKER = ".snl-"
_TEMP_NAME = re.compile(r"^\..+\.snl-[A-Za-z0-9_]+(\.[^.]+)?$")
RUN_STARTED = time.time()  # leftovers last touched before this belong to an earlier run
log = logging.getLogger("snl")


def same_path(a: Path, b: Path) -> bool:
    """True when `a` and `b` name the same file or folder (links and `..` resolved)."""
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def check_output_path(src: str | os.PathLike[str], dst: str | os.PathLike[str], overwrite: bool):
    """Raise OutputError if writing `dst` could harm the input or an existing file.

    Refuses, always: `dst` is `src`, `dst` is a folder that contains `src`, or `dst` is an
    image inside the input frame folder. Refuses unless `overwrite`: `dst` exists. With
    `overwrite`, an existing frame-folder target must hold only images.
    """
    src, dst = Path(src), Path(dst)
    if same_path(src, dst):
        raise OutputError("output is the input; choose another output path", dst)
    if dst.is_dir() and _contains(dst, src):
        raise OutputError("output folder contains the input; choose another output path", dst)
    if src.is_dir() and dst.suffix.lower() in IMAGE_SUFFIXES and _contains(src, dst):
        raise OutputError("output would land among the input frames", dst)
    if dst.exists() and not overwrite:
        raise OutputError("already exists; pass --overwrite to replace it", dst)
    if dst.exists() and overwrite and (dst.is_dir() or not dst.suffix):
        _check_replaceable(dst)  # a frame folder: refuse now, not after the work


def _contains(folder: Path, path: Path) -> bool:
    try:
        return path.resolve().is_relative_to(folder.resolve())
    except OSError:
        return False


def is_temp_name(name: str) -> bool:
    """True for the hidden temporary names this module creates."""
    return bool(_TEMP_NAME.match(name))


def remove_stale_temps(dst: Path, before: float | None = None) -> list[Path]:
    """Delete the hidden temporary outputs of `dst` (file or frame folder) that an earlier,
    killed run left beside it: our naming pattern for exactly this output, last modified
    before `before` (default: when this process started), so a run writing the same
    output right now is left alone. Each removal is logged; returns what was removed.
    """
    before = RUN_STARTED if before is None else before
    name = re.escape(f".{dst.stem}{TEMP_MARKER}") + r"[A-Za-z0-9_]+" + re.escape(dst.suffix)
    folder = re.escape(f".{dst.name}{TEMP_MARKER}") + r"[A-Za-z0-9_]+"
    pattern = re.compile(f"{name}|{folder}")
    removed = []
    try:
        entries = list(os.scandir(dst.parent))
    except OSError:
        return removed
    for entry in entries:
        if not (pattern.fullmatch(entry.name) and is_temp_name(entry.name)):
            continue
        kind = "folder" if entry.is_dir(follow_symlinks=False) else "file"
        try:
            if entry.stat(follow_symlinks=False).st_mtime >= before:
                continue
            if kind == "folder":
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
        except OSError:
            continue  # not ours to force; it stays hidden and is skipped as input
        removed.append(Path(entry.path))
        log.info("removed %s, a temporary %s an interrupted run left", entry.path, kind)
    return removed


def temp_file_beside(dst: Path) -> Path:
    """Create an empty hidden file beside `dst` (same folder, same extension), after
    removing stale ones of an earlier run (`remove_stale_temps`)."""
    _make_parent(dst)
    remove_stale_temps(dst)
    try:
        handle, name = tempfile.mkstemp(
            prefix=f".{dst.stem}{TEMP_MARKER}", suffix=dst.suffix, dir=dst.parent
        )
    except OSError as exc:
        raise OutputError(exc.strerror or "cannot create a temporary file", dst) from exc
    os.close(handle)
    _normal_permissions(Path(name), 0o666)
    return Path(name)


def write_atomically(dst: Path, write: Callable[[Path], object], overwrite: bool) -> None:
    """Call `write(tmp)` on a temporary file beside `dst` (same extension), then rename it
    onto `dst`; the temporary file is removed on any failure.

    Raises:
        OutputError: `dst` cannot be written (or appeared meanwhile, without overwrite).
    """
    tmp = temp_file_beside(dst)
    try:
        write(tmp)
        commit_file(tmp, dst, overwrite)
    except OSError as exc:
        discard(tmp)
        raise OutputError(exc.strerror or "cannot write", dst) from exc
    except BaseException:
        discard(tmp)
        raise


def temp_dir_beside(dst: Path) -> Path:
    """Create an empty hidden folder beside `dst`, after removing stale ones."""
    _make_parent(dst)
    remove_stale_temps(dst)
    try:
        folder = Path(tempfile.mkdtemp(prefix=f".{dst.name}{TEMP_MARKER}", dir=dst.parent))
    except OSError as exc:
        raise OutputError(exc.strerror or "cannot create a temporary folder", dst) from exc
    _normal_permissions(folder, 0o777)
    return folder


def _normal_permissions(path: Path, mode: int) -> None:
    """mkstemp/mkdtemp make private entries (0600/0700); the result, once renamed into
    place, should get what a new file or folder gets (mode minus the umask)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, mode & ~umask)


def _make_parent(dst: Path) -> None:
    """Create the output's folder (and its parents) if missing, and log that it did."""
    if dst.parent.is_dir():
        return
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
        log.info("created the folder %s for %s", dst.parent, dst.name)
    except OSError as exc:
        raise OutputError(exc.strerror or "cannot create the output folder", dst) from exc


def commit_file(tmp: Path, dst: Path, overwrite: bool) -> None:
    """Rename a finished temporary file onto `dst` (atomic on one filesystem)."""
    if dst.exists() and not overwrite:
        raise OutputError("appeared while writing; pass --overwrite to replace it", dst)
    if dst.is_dir():
        raise OutputError("is a folder; cannot replace it with a file", dst)
    try:
        os.replace(tmp, dst)
    except OSError as exc:
        raise OutputError(exc.strerror or "cannot rename into place", dst) from exc


def commit_dir(tmp: Path, dst: Path, overwrite: bool) -> None:
    """Move a finished temporary folder onto `dst`.

    An existing `dst` is replaced only with `overwrite` and only if it holds nothing but
    image files (an earlier frame output), so a mistyped path never deletes other data.
    """
    if dst.exists():
        if not overwrite:
            raise OutputError("appeared while writing; pass --overwrite to replace it", dst)
        _check_replaceable(dst)
        trash = Path(tempfile.mkdtemp(prefix=f".{dst.name}{TEMP_MARKER}old-", dir=dst.parent))
        os.replace(dst, trash / dst.name)
        os.replace(tmp, dst)
        shutil.rmtree(trash, ignore_errors=True)
        return
    try:
        os.replace(tmp, dst)
    except OSError as exc:
        raise OutputError(exc.strerror or "cannot rename into place", dst) from exc


def _check_replaceable(dst: Path) -> None:
    if not dst.is_dir():
        raise OutputError("exists and is not a folder; cannot replace it with frames", dst)
    for entry in dst.iterdir():
        if not (entry.is_file() and entry.suffix.lower() in IMAGE_SUFFIXES):
            raise OutputError(f"holds {entry.name!r}, not only images; refusing to replace it", dst)


def discard(path: Path) -> None:
    """Remove a temporary file or folder, ignoring errors (used while failing)."""
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()
