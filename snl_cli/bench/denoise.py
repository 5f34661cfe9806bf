"""`snl bench denoise`: quality and speed of snl's denoisers and FFmpeg's, on clean footage
with seeded synthetic noise (`--noise`: Gaussian or a camera kind, `snl_cli.synthetic`).

snl runs end to end (`snl_cli.pipeline.denoise_file`: decode, flow, denoise, encode) on a
lossless FFV1 copy of the noisy clip, so its fps include decoding and encoding and its PSNR is
measured on the decoded output. FFmpeg's filters run in-process on the frames already in
memory, each tuned per clip: for Gaussian noise by a small strength sweep around the true
sigma, for the other kinds over each filter's whole range (`peers.tune`): their best case.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from snl_cli.clips import read_uint8, write_lossless
from snl_cli.denoisers import MODELS
from snl_cli.errors import InputError, UsageError
from snl_cli.metrics import psnr, ssim
from snl_cli.peers import PEERS, tune
from snl_cli.synthetic import BENCH_KINDS, noisy_frames

DEFAULT_METHODS = ("stan", "nlm", "bm3d", "nlmeans", "fftdnoiz", "dctdnoiz")


@dataclass
class DenoiseBench:
    """What to measure."""

    clips: list[Path]
    sigmas: list[float] = field(default_factory=lambda: [20.0, 30.0, 40.0])
    frames: int = 20
    methods: list[str] = field(default_factory=lambda: list(DEFAULT_METHODS))
    seed: int = 0
    tune_frames: int = 6
    weights: str | None = None
    noise: str = "gaussian"
    ensemble: int | None = None  # snl's self-ensemble passes (None: its default, 1 on video)

    def check(self) -> None:
        if self.noise not in BENCH_KINDS:
            raise UsageError(
                f"--noise: expected one of {', '.join(BENCH_KINDS)}, got {self.noise!r}"
            )
        unknown = [m for m in self.methods if snl_method(m) is None and m not in PEERS]
        if unknown:
            known = ", ".join([*MODELS, *PEERS])
            raise UsageError(
                f"--methods: unknown {', '.join(unknown)}; choose from {known}, "
                "or stan:WEIGHTS for STAN with other weights"
            )
        for method in self.methods:
            weights = (snl_method(method) or ("", None))[1]
            if weights is not None and not Path(weights).is_file():
                raise InputError("no such weights file", weights)
        if self.frames < 2:
            raise UsageError(f"--frames: expected at least 2, got {self.frames}")


def snl_method(method: str) -> tuple[str, str | None] | None:
    """(model, weights) of an snl method: "stan", "nlm", or "stan:PATH" (STAN with the weights
    at PATH, so that two sets of weights can be measured side by side); None for other names."""
    if method in MODELS:
        return method, None
    name, sep, path = method.partition(":")
    return (name, path) if name == "stan" and sep and path else None


# Runs a module as `python -m` would, then writes the process's own peak resident memory
# (VmHWM, KiB) to the file named by SNL_PEAK_FILE. A spawned child's ru_maxrss is no good:
# Linux counts in it the parent's memory, which the child shared until exec.
_PEAK_WRAPPER = """
import os, runpy, sys
def _peak():
    with open("/proc/self/status") as status, open(os.environ["SNL_PEAK_FILE"], "w") as out:
        out.write(next(line.split()[1] for line in status if line.startswith("VmHWM:")))
sys.argv = sys.argv[1:]
try:
    runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
finally:
    _peak()
"""


def run_with_peak(args: list[str], path: Path, what: str) -> tuple[str, float]:
    """Run `python -m MODULE ARGS...` (args = [MODULE, *ARGS]) in a child process; its stdout
    and its own peak resident memory in MB (Linux: VmHWM; elsewhere wait4's ru_maxrss).

    Raises:
        InputError: the command failed ("`what` failed: " its last stderr line, about `path`).
    """
    with (
        tempfile.TemporaryFile("w+") as out,
        tempfile.TemporaryFile("w+") as err,
        tempfile.TemporaryDirectory(prefix="snl-peak-") as tmp,
    ):
        peak_file = Path(tmp) / "peak"
        env = {**os.environ, "SNL_PEAK_FILE": str(peak_file)}
        cmd = [sys.executable, "-c", _PEAK_WRAPPER, *args]
        child = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, env=env)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        if child.returncode != 0:
            lines = err.read().strip().splitlines() or [f"exit status {child.returncode}"]
            raise InputError(f"{what} failed: {lines[-1]}", path)
        if peak_file.is_file():
            peak = int(peak_file.read_text()) / 1024
        else:
            peak = usage.ru_maxrss / (1 << 20 if sys.platform == "darwin" else 1 << 10)
        return out.read(), peak


def _run_snl_child(
    method: str,
    noisy_path: Path,
    out_path: Path,
    sigma: float,
    weights: str | None,
    ensemble: int | None = None,
) -> tuple[list[np.ndarray], float, dict, float]:
    """snl end to end as a user runs it, `snl denoise --json` in a child process, so that its peak
    resident memory (MB, the child's own, from wait4) is measured with the fps."""
    cmd = ["snl_cli", "denoise", str(noisy_path), "-o", str(out_path),
           "--json", "--overwrite", "--model", method]  # fmt: skip
    cmd += [] if method == "stan" else ["--sigma", f"{sigma:g}"]
    cmd += ["--weights", weights] if weights else []
    cmd += ["--ensemble", str(ensemble)] if ensemble else []
    stdout, peak = run_with_peak(cmd, noisy_path, f"snl denoise --model {method}")
    summary = json.loads(stdout)
    return read_uint8(out_path), float(summary["fps"]), summary, peak


class PeakRSS:
    """Peak resident memory of this process while the block runs, above what it held when
    the block started (MB), sampled every 10 ms."""

    def __enter__(self) -> PeakRSS:
        import psutil

        self._process = psutil.Process()
        self._start = self._peak = self._process.memory_info().rss
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._done.is_set():
            self._peak = max(self._peak, self._process.memory_info().rss)
            time.sleep(0.01)

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()
        self._peak = max(self._peak, self._process.memory_info().rss)
        self.mb = (self._peak - self._start) / (1 << 20)


def run_denoise_bench(bench: DenoiseBench, step: Callable[[str], None] | None = None) -> dict:
    """Measure every method on every clip and sigma; returns {"rows": [...], ...}."""
    bench.check()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="snl-bench-") as tmp:
        for clip in bench.clips:
            clean = read_uint8(clip, bench.frames, min_frames=2)
            for sigma in bench.sigmas:
                seed = bench.seed + zlib.crc32(f"{clip.name}:{sigma}".encode())
                noisy = noisy_frames(clean, bench.noise, sigma, seed)
                base = {"clip": clip.name, "sigma": sigma, "frames": len(clean),
                        "size": f"{clean[0].shape[1]}x{clean[0].shape[0]}"}  # fmt: skip
                rows.append(
                    {
                        **base,
                        "method": "noisy",
                        "psnr": psnr(noisy, clean),
                        "ssim": ssim(noisy, clean),
                        "fps": None,
                        "settings": "",
                    }
                )
                noisy_path = Path(tmp) / f"{clip.name}-{sigma:g}.mkv"
                write_lossless(noisy, noisy_path)
                for method in bench.methods:
                    if step is not None:
                        step(f"{clip.name} σ{sigma:g} {method}")
                    rows.append(
                        {**base, **_measure(method, noisy, clean, noisy_path, sigma, bench)}
                    )
    return {
        "rows": rows,
        "sigmas": bench.sigmas,
        "noise": bench.noise,
        "frames": bench.frames,
        "note": "snl: end to end (decode + denoise + encode, lossless FFV1 in and out); "
        "stan is blind, nlm is given the nominal sigma; FFmpeg filters: in memory, strength "
        + (
            "tuned per clip and sigma with the true sigma (their best case)"
            if bench.noise == "gaussian"
            else "swept over its whole range per clip and level (their best case)"
        )
        + "; peak MB: snl, the peak resident memory of its own `snl denoise` process; FFmpeg "
        "filters, what this process grew by while they ran on frames already in memory",
    }


def speed_and_memory(rows: list[dict[str, Any]], ours: str = "stan", peer: str = "bm3d") -> list:
    """Per clip and sigma measured with both: {clip, size, sigma, ratio (ours' fps / peer's),
    peak_mb: {ours, peer}} (the `make bench` line)."""
    out = []
    for key in sorted({(r["clip"], r["sigma"]) for r in rows}):
        pick = {r["method"]: r for r in rows if (r["clip"], r["sigma"]) == key}
        if ours in pick and peer in pick and pick[ours]["fps"] and pick[peer]["fps"]:
            out.append({"clip": key[0], "size": pick[ours].get("size"), "sigma": key[1],
                        "ratio": pick[ours]["fps"] / pick[peer]["fps"],
                        "peak_mb": {m: pick[m].get("peak_mb") for m in (ours, peer)}})  # fmt: skip
    return out


def pattern_clip(path: Path, width: int, height: int, frames: int) -> Path:
    """A clean lossless clip of smooth colour waves drifting sideways, for speed and memory
    runs at any size (`make bench`); its content does not matter to either."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    clip = []
    for t in range(frames):
        r = 0.5 + 0.4 * np.sin((x + 4 * t) / 37.0) * np.cos(y / 23.0)
        g = 0.5 + 0.4 * np.sin((x - 2 * t) / 19.0 + y / 41.0)
        b = 0.5 + 0.3 * np.cos((x + y + 3 * t) / 29.0)
        clip.append((np.stack([r, g, b], -1) * 255).round().astype(np.uint8))
    path.parent.mkdir(parents=True, exist_ok=True)
    write_lossless(clip, path)
    return path


def _measure(
    method: str,
    noisy: list[np.ndarray],
    clean: list[np.ndarray],
    noisy_path: Path,
    sigma: float,
    bench: DenoiseBench,
) -> dict[str, Any]:
    snl = snl_method(method)
    if snl is not None:
        model, weights = snl
        out_path = noisy_path.with_name(f"{noisy_path.stem}-{zlib.crc32(method.encode()):08x}.mkv")
        frames, fps, summary, peak_mb = _run_snl_child(
            model, noisy_path, out_path, sigma, weights or bench.weights, bench.ensemble
        )
        settings = f"sigma={summary['sigma']} ({summary['sigma_source']})"
        if model == "stan":
            settings = f"blind, {Path(weights).name}" if weights else "blind"
        if summary["ensemble"] > 1:
            settings += f", ensemble {summary['ensemble']}"
        return {
            "method": method if method in MODELS else f"stan:{Path(weights).stem}",
            "psnr": psnr(frames, clean),
            "ssim": ssim(frames, clean),
            "fps": fps,
            "peak_mb": round(peak_mb),
            "settings": settings,
        }
    known = sigma if bench.noise == "gaussian" else None
    with PeakRSS() as peak:
        result = tune(PEERS[method], noisy, clean, known, tune_frames=bench.tune_frames)
    return {
        "method": method,
        "psnr": result.psnr,
        "ssim": ssim(result.frames, clean),
        "fps": result.fps,
        "peak_mb": round(peak.mb),
        "settings": result.args,
    }


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean PSNR/SSIM and fps per (method, sigma) over the clips."""
    keys = sorted({(r["method"], r["sigma"]) for r in rows}, key=lambda k: (k[1], k[0]))
    out = []
    for method, sigma in keys:
        sel = [r for r in rows if r["method"] == method and r["sigma"] == sigma]
        fps = [r["fps"] for r in sel if r["fps"]]
        out.append(
            {
                "method": method,
                "sigma": sigma,
                "psnr": float(np.mean([r["psnr"] for r in sel])),
                "ssim": float(np.mean([r["ssim"] for r in sel])),
                "fps": float(np.mean(fps)) if fps else None,
                "clips": len(sel),
                "peak_mb": max((r.get("peak_mb") or 0 for r in sel), default=0) or None,
            }
        )
    return out


def plot_summary(summary: list[dict[str, Any]], path: Path) -> None:
    """Grouped bars: PSNR per method, one group per sigma."""
    from snl_cli.plots import pyplot, save_figure

    plt = pyplot()
    sigmas = sorted({r["sigma"] for r in summary})
    methods = list(dict.fromkeys(r["method"] for r in summary))
    width = 0.8 / len(methods)
    fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(sigmas), 4))
    for i, method in enumerate(methods):
        values = [
            next((r["psnr"] for r in summary if r["method"] == method and r["sigma"] == s), np.nan)
            for s in sigmas
        ]
        xs = np.arange(len(sigmas)) + i * width
        ax.bar(xs, values, width, label=method)
    ax.set_xticks(np.arange(len(sigmas)) + 0.4 - width / 2, [f"σ = {s:g}" for s in sigmas])
    ax.set_ylabel("PSNR (dB), higher is better")
    ax.set_title("Denoising quality (mean over clips)")
    low = np.nanmin([r["psnr"] for r in summary])
    ax.set_ylim(low - 1, None)
    ax.legend(ncols=min(len(methods), 4), fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
