"""The "cuda" backend: kernels/*.cu compiled by NVRTC through CuPy and run on torch's stream.

CuPy is imported lazily, so this module imports (and `unavailable_reason` answers) on
machines without CuPy or a GPU. Each .cu file becomes one `cupy.RawModule`, built once per
(file, options) and compiled by CuPy on first use for the current GPU's architecture (CuPy
keeps the binary in its on-disk kernel cache, ~/.cupy/kernel_cache, so later processes skip
NVRTC). Headers are pasted into the source text first, so that cache sees them.

Torch tensors are passed zero-copy as their device address (a numpy.uint64 scalar fills a
pointer parameter exactly: 8 bytes, read through the driver's kernelParams), on the device
of the tensors and on torch's current stream for it (`cupy.cuda.Stream.from_external`, or
`ExternalStream` on CuPy < 14), so the launches order with torch's own work without
synchronising.
"""

from __future__ import annotations

import threading
from functools import cache
from typing import Any

import numpy as np
import torch
from torch import Tensor

from snl_cli.search.backends.launcher import (
    KernelOps,
    compile_defines,
    entry_points,
    inline_source,
    make_backend,
)

NVRTC_OPTIONS: tuple[str, ...] = ()
"""Options for every module, besides launcher.compile_defines(). No fast-math: results must
match the "torch" reference to rounding. No -std either: the kernels are plain C++14, CuPy's
default. (CuPy itself adds -ftz=true and --device-as-default-execution-space.)"""


@cache
def unavailable_reason() -> str | None:
    """Why the CUDA backend cannot run here, or None."""
    try:
        import cupy
    except ImportError:
        return "CuPy is not installed (pip install 'snl-cli[cuda]')"
    if not torch.cuda.is_available():
        return "torch sees no CUDA GPU"
    try:
        cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDARuntimeError without a driver
        return f"CuPy cannot use the GPU: {exc}"
    try:
        cupy.cuda.nvrtc.getVersion()
    except Exception as exc:
        return f"NVRTC is unavailable ({exc}); pip install 'snl-cli[cuda]'"
    return None


def _stream(device: torch.device) -> Any:
    """torch's current stream on `device`, as a CuPy stream."""
    import cupy

    stream = torch.cuda.current_stream(device)
    if hasattr(cupy.cuda.Stream, "from_external"):
        return cupy.cuda.Stream.from_external(stream)
    return cupy.cuda.ExternalStream(stream.cuda_stream, device.index)


class CupyKernel:
    """An entry point called like `cupy.RawKernel`, taking torch CUDA tensors as pointers."""

    def __init__(self, runtime: CupyRuntime, name: str) -> None:
        self.runtime = runtime
        self.name = name

    def __call__(self, grid: tuple[int, ...], block: tuple[int, ...], args: tuple) -> None:
        import cupy

        device = next(a.device for a in args if isinstance(a, Tensor))
        if device.type != "cuda":
            raise ValueError(f"{self.name}: expected CUDA tensors, got tensors on {device}")
        device = torch.device(
            "cuda", torch.cuda.current_device() if device.index is None else device.index
        )
        pointers = tuple(np.uint64(a.data_ptr()) if isinstance(a, Tensor) else a for a in args)
        with cupy.cuda.Device(device.index), _stream(device):
            self.runtime.function(self.name)(grid, block, pointers)


class CupyRuntime:
    """Kernels from `cupy.RawModule`s, one per .cu file, built lazily and cached.

    A kernel from `RawModule.get_function` is a `cupy.RawKernel`, which compiles on its first
    call on each device and caches per device, so one object serves every GPU.
    """

    def __init__(self, options: tuple[str, ...] = NVRTC_OPTIONS) -> None:
        self.options = (*options, *compile_defines())
        self._modules: dict[str, Any] = {}
        self._functions: dict[str, Any] = {}
        self._lock = threading.Lock()

    def function(self, name: str) -> Any:
        """The `cupy.RawKernel` of an entry point (NVRTC runs on its first call per device)."""
        import cupy

        with self._lock:
            if name not in self._functions:
                path = entry_points()[name]
                key = str(path)
                if key not in self._modules:
                    source = inline_source(path)
                    self._modules[key] = cupy.RawModule(code=source, options=self.options)
                self._functions[name] = self._modules[key].get_function(name)
            return self._functions[name]

    def kernel(self, name: str) -> CupyKernel:
        if name not in entry_points():
            raise KeyError(f"no kernel {name!r} in kernels/*.cu")
        return CupyKernel(self, name)


runtime = CupyRuntime()
ops = KernelOps(runtime)
search, gather, patch_sum, accumulate_flows = make_backend(ops)


def prepare(device: torch.device | str | None = None) -> None:
    """Compile and load every kernel on `device` now (benchmarks call it before timing)."""
    import cupy

    index = torch.device(device or "cuda").index
    index = torch.cuda.current_device() if index is None else index
    with cupy.cuda.Device(index):
        for name in entry_points():
            runtime.function(name).kernel  # noqa: B018 (the property compiles and loads)
