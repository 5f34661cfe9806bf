"""`snl bench search`: time and peak memory of the search backends against the unfold baseline.

Every CPU measurement runs in a fresh Python process (`python -m snl_cli.bench.search JSON`)
so that one backend's allocations cannot hide another's peak: the child builds the inputs,
warms the backend up on a tiny problem (numba JIT, caches), resets the kernel's peak-RSS
counter, runs the search `repeat` times, and reports the median time and VmHWM minus the RSS
before the runs. On CUDA the same child uses torch's peak-allocation counters instead.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

BASELINE = "unfold"
PAGE_MB = 4096 / 2**20  # peak RSS moves by pages: the floor of a memory ratio's denominator


@dataclass(frozen=True)
class Size:
    """One benchmark problem: video shape and search parameters."""

    name: str
    T: int = 5
    C: int = 8
    H: int = 96
    W: int = 96
    B: int = 1
    ws: int = 9
    wt: int = 1
    ps: int = 5
    topk: int = 10
    heads: int = 1
    dist: str = "l2"
    offsets: bool = False
    whole_offsets: bool = False  # offsets rounded to whole pixels, as STAN's
    gather_c: int = 0  # > 0: also time gather of gather_k matches from a C=gather_c video
    gather_k: int = 0
    note: str = ""
    search: dict = field(default_factory=dict)

    @property
    def thw(self) -> int:
        return self.T * self.H * self.W

    def kwargs(self) -> dict[str, Any]:
        base = dict(ws=self.ws, wt=self.wt, ps=self.ps, topk=self.topk, heads=self.heads)
        return {**base, "dist": self.dist, **self.search}


HEADLINE = Size("headline", note="the issue's case: 3x faster, 10x less memory required")
SIZES: dict[str, Size] = {
    s.name: s
    for s in [
        HEADLINE,
        Size("stan", C=64, H=120, W=214, ps=1, heads=4, offsets=True,
             note="STAN-like: ps=1, fractional offsets, 4 heads"),
        Size("stan-int", C=32, H=120, W=214, ps=1, heads=4, topk=20, offsets=True,
             whole_offsets=True, gather_c=64, gather_k=10,
             note="STAN's attention at 480p/4: whole-pixel offsets, 4 heads of 8 channels, "
             "top-20; then gather of the 10 best from 64 value channels"),
        Size("thw/4", H=48, W=48, note="T*H*W scaling"),
        Size("thw*4", T=10, H=136, W=136, note="T*H*W scaling (x3.9)"),
        Size("ws5", ws=5, note="ws^2 scaling"),
        Size("ws13", ws=13, note="ws^2 scaling"),
        Size("tiny", T=2, C=4, H=16, W=16, ws=3, ps=3, topk=4, note="smoke test"),
    ]
}  # fmt: skip
DEFAULT_SIZES = ("headline", "stan", "stan-int", "thw/4", "thw*4", "ws5", "ws13")
THW_SCALING = ("thw/4", "headline", "thw*4")
WS_SCALING = ("ws5", "headline", "ws13")


def default_backends(device: str) -> list[str]:
    return ["cuda" if device == "cuda" else "cpu", BASELINE]


# ---------------------------------------------------------------- child process side


def _inputs(size: Size, device: str, dtype: Any, seed: int = 0) -> tuple[Any, Any, Any]:
    """q, k (B, T, C, H, W) and offsets (B, T, Wn, 2, nH, nW) or None, on `device`."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    shape = (size.B, size.T, size.C, size.H, size.W)
    q = torch.rand(shape, generator=gen, dtype=dtype)
    k = (q + 0.1 * torch.randn(shape, generator=gen, dtype=dtype)).roll(1, dims=-1)
    offsets = None
    if size.offsets:
        stride0 = size.search.get("stride0", 1)
        wn = min(2 * size.wt + 1, size.T) - 1
        grid = (-(-size.H // stride0), -(-size.W // stride0))
        offsets = 2.5 * torch.randn(size.B, size.T, wn, 2, *grid, generator=gen, dtype=dtype)
        if size.whole_offsets:
            offsets = offsets.round()
    return tuple(None if x is None else x.to(device) for x in (q, k, offsets))


def _runner(backend: str, size: Size, device: str, dtype: Any) -> Callable[[], Any]:
    """A no-argument callable that runs one search of `size` with `backend`."""
    import torch

    from snl_cli.search import shifted_nls

    q, k, offsets = _inputs(size, device, dtype)
    if backend == BASELINE:
        from snl_cli.bench.search_baseline import unfold_search
        from snl_cli.search.api import make_spec

        spec = make_spec(q, k, offsets, **{**dict(stride0=1, stride1=1.0, full_ws=True),
                                           **size.kwargs()})  # fmt: skip
        return lambda: unfold_search(q, k, offsets, spec)

    def run() -> Any:
        with torch.no_grad():
            return shifted_nls(q, k, offsets, backend=backend, **size.kwargs())

    return run


class _PeakRSS:
    """Peak resident memory of this process during a block, in bytes, above its start.

    Linux: reset the kernel's high-water mark (clear_refs 5) and read VmHWM afterwards.
    Elsewhere: a thread samples the RSS every millisecond (may miss short spikes).
    """

    def __enter__(self) -> _PeakRSS:
        self.exact = self._reset()  # the high-water mark drops to the current RSS
        self.start = self._status("VmRSS")
        self.exact = self.exact and self.start is not None
        if not self.exact:
            import psutil

            self.process = psutil.Process()
            self.start = self.process.memory_info().rss
            self.sampled = self.start
            self.stop = threading.Event()
            self.thread = threading.Thread(target=self._sample, daemon=True)
            self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.exact:
            self.peak = max(0, self._status("VmHWM") - self.start)
        else:
            self.stop.set()
            self.thread.join()
            self.peak = max(0, self.sampled - self.start)

    def _sample(self) -> None:
        while not self.stop.wait(0.001):
            self.sampled = max(self.sampled, self.process.memory_info().rss)

    @staticmethod
    def _status(key: str) -> int | None:
        try:
            with open("/proc/self/status") as status:
                for line in status:
                    if line.startswith(key + ":"):
                        return int(line.split()[1]) * 1024
        except OSError:
            return None
        return None

    @staticmethod
    def _reset() -> bool:
        try:
            with open("/proc/self/clear_refs", "w") as refs:
                refs.write("5")
        except OSError:
            return False
        return True


def measure(backend: str, size: Size, device: str, repeat: int, dtype: str = "float32") -> dict:
    """Time and peak memory of `repeat` runs (in this process; see `measure_isolated`)."""
    import torch

    torch_dtype = getattr(torch, dtype)
    tiny = replace(
        SIZES["tiny"], offsets=size.offsets, whole_offsets=size.whole_offsets, heads=1,
        C=size.C // size.heads, gather_c=size.gather_c and 2, gather_k=min(size.gather_k, 4),
    )  # fmt: skip
    _runner(backend, tiny, device, torch_dtype)()  # JIT, caches, thread pools
    if size.gather_c and backend != BASELINE:
        _time_gather(backend, tiny, device, torch_dtype, 1)
    run = _runner(backend, size, device, torch_dtype)
    times = []
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        for _ in range(repeat):
            start = time.perf_counter()
            out = run()
            torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
            del out
        peak, exact = torch.cuda.max_memory_allocated() - before, True
    else:
        with _PeakRSS() as rss:
            for _ in range(repeat):
                start = time.perf_counter()
                out = run()
                times.append(time.perf_counter() - start)
                del out
        peak, exact = rss.peak, rss.exact
    result = {
        "time_s": statistics.median(times),
        "times_s": times,
        "peak_mb": peak / 2**20,
        "peak_exact": exact,
    }
    if size.gather_c and backend != BASELINE:
        result.update(_time_gather(backend, size, device, torch_dtype, repeat))
    return result


def _time_gather(backend: str, size: Size, device: str, dtype: Any, repeat: int) -> dict:
    """Median time of gather (no grad) and of gather + its backward to v, for the gather_k
    best matches of the search of `size` in a video of gather_c channels."""
    import torch

    from snl_cli.search import gather, shifted_nls

    q, k, offsets = _inputs(size, device, dtype)
    with torch.no_grad():
        _, inds = shifted_nls(q, k, offsets, backend=backend, **size.kwargs())
    inds = inds[..., : size.gather_k, :].contiguous()
    gen = torch.Generator().manual_seed(1)
    shape = (size.B, size.T, size.gather_c, size.H, size.W)
    v = torch.rand(shape, generator=gen, dtype=dtype).to(device)

    def forward() -> None:
        with torch.no_grad():
            gather(v, inds, backend=backend)

    def forward_backward() -> None:
        leaf = v.detach().requires_grad_()
        gather(leaf, inds, backend=backend).sum().backward()

    times: dict[str, list[float]] = {"gather_s": [], "gather_with_backward_s": []}
    for _ in range(repeat):
        for key, run in (("gather_s", forward), ("gather_with_backward_s", forward_backward)):
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            run()
            if device == "cuda":
                torch.cuda.synchronize()
            times[key].append(time.perf_counter() - start)
    return {key: statistics.median(values) for key, values in times.items()}


# ---------------------------------------------------------------- parent side


def measure_isolated(backend: str, size: Size, device: str, repeat: int) -> dict:
    """`measure` in a fresh Python process; {"error": ...} if it fails."""
    job = json.dumps({"backend": backend, "size": asdict(size), "device": device,
                      "repeat": repeat})  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "snl_cli.bench.search", job],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines() or ["no output"]
        return {"error": f"exit {done.returncode}: {lines[-1]}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator


def _ratios(results: dict[str, dict]) -> dict[str, dict]:
    """Speed-up and memory saving of each backend against the unfold baseline."""
    base = results.get(BASELINE, {})
    out = {}
    for name, result in results.items():
        if name == BASELINE or "error" in result or "error" in base or not base:
            continue
        out[name] = {
            "speedup": _ratio(base["time_s"], result["time_s"]),
            # peaks under one page are below what RSS can resolve: floor both at a page
            "memory_saving": _ratio(max(base["peak_mb"], PAGE_MB), max(result["peak_mb"], PAGE_MB)),
        }
    return out


def _growth(cases: list[dict], names: tuple[str, ...], backend: str, key: str) -> dict | None:
    """Time per unit of `key` and the fitted exponent of time ~ key^p across `names`."""
    points = [
        (case["size"][key], case["results"][backend]["time_s"])
        for name in names
        for case in cases
        if case["name"] == name and "time_s" in case["results"].get(backend, {})
    ]
    if len(points) < 2:
        return None
    xs, ys = [math.log(x) for x, _ in points], [math.log(y) for _, y in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mx) ** 2 for x in xs
    )
    return {
        "points": [{key: x, "time_s": y, "us_per_unit": 1e6 * y / x} for x, y in points],
        "exponent": slope,
    }


def run_search_bench(
    backends: Iterable[str] | None = None,
    sizes: Iterable[str] = DEFAULT_SIZES,
    device: str = "cpu",
    repeat: int = 3,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Measure every backend at every size, side by side, each in a fresh process.

    Args:
        backends: search backends and/or "unfold"; default: the device's fast backend and
            "unfold".
        sizes: names from `SIZES`.
        device: "cpu" or "cuda".
        repeat: timed runs per measurement (the median is reported).
        progress: called with a description before each measurement.

    Returns:
        {"device", "threads", "repeat", "cases": [{"name", "size", "results", "ratios"}],
        "scaling": {"thw": ..., "ws2": ...}} with times in seconds and memory in MiB.
    """
    backends = list(backends or default_backends(device))
    unknown = [s for s in sizes if s not in SIZES]
    if unknown:
        raise ValueError(f"sizes: unknown {unknown}; choose from {', '.join(SIZES)}")
    cases = []
    for name in sizes:
        size = SIZES[name]
        results = {}
        for backend in backends:
            if progress:
                progress(f"{name}: {backend}")
            results[backend] = measure_isolated(backend, size, device, repeat)
        summary = {**asdict(size), "thw": size.thw, "ws2": size.ws**2}
        cases.append({"name": name, "size": summary, "results": results,
                      "ratios": _ratios(results)})  # fmt: skip
    scaling = {}
    for backend in backends:
        scaling[backend] = {
            "thw": _growth(cases, THW_SCALING, backend, "thw"),
            "ws2": _growth(cases, WS_SCALING, backend, "ws2"),
        }
    return {
        "device": device,
        "threads": os.cpu_count(),
        "repeat": repeat,
        "backends": backends,
        "cases": cases,
        "scaling": scaling,
    }


def _child(job: str) -> None:
    spec = json.loads(job)
    size = Size(**spec["size"])
    result = measure(spec["backend"], size, spec["device"], spec["repeat"])
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    _child(sys.argv[1])
