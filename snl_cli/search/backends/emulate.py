"""The "emulate" backend: the CUDA sources in kernels/*.cu compiled with g++ and run on the CPU.

It exists so that the very kernels the "cuda" backend runs can be tested without a GPU. The
sources are compiled unchanged (`g++ -x c++ -include cpu_shim.h`) into one shared library,
cached on disk, and loaded with ctypes. `EmulateRuntime.kernel(name)` returns objects called
exactly like a CuPy RawKernel, `kern(grid, block, args)`, so the shared launcher
(`snl_cli.search.backends.launcher`) drives both backends with the same code.

Each emulated kernel knows its parameter types (the shim derives them from the kernel's C++
declaration) and checks every argument before a launch: a tensor of the wrong dtype, a
Python int where the kernel takes an int32, a wrong argument count or a grid beyond CUDA's
limits raise here, instead of corrupting memory on a GPU later.

Speed knobs (environment): CXX (compiler, default g++), SNL_CACHE_DIR (where the library is
cached, default $XDG_CACHE_HOME/snl or ~/.cache/snl), SNL_EMULATE_THREADS (OS threads a
launch spreads its blocks over, default: all cores).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from snl_cli.errors import BackendUnavailable
from snl_cli.search.backends.launcher import (
    KernelOps,
    compile_defines,
    entry_points,
    kernels_dir,
    make_backend,
)

CXX_FLAGS = ("-std=c++20", "-O2", "-fPIC", "-shared", "-pthread", "-fvisibility=hidden")
_SHIM = "cpu_shim.h"

_SCALARS: dict[str, tuple[type, type]] = {
    "i32": (np.int32, ctypes.c_int32),
    "i64": (np.int64, ctypes.c_int64),
    "u32": (np.uint32, ctypes.c_uint32),
    "f32": (np.float32, ctypes.c_float),
    "f64": (np.float64, ctypes.c_double),
}
_POINTERS = {
    "f32*": torch.float32,
    "f64*": torch.float64,
    "i32*": torch.int32,
    "i64*": torch.int64,
}
# CUDA's limits, enforced so that a launch configuration that works here works on a GPU.
_MAX_BLOCK = (1024, 1024, 64)
_MAX_GRID = (2**31 - 1, 65535, 65535)
_MAX_THREADS_PER_BLOCK = 1024


def compiler() -> str:
    return os.environ.get("CXX", "g++")


def unavailable_reason() -> str | None:
    """Why the emulation cannot run here, or None. Cheap: it does not build anything."""
    if shutil.which(compiler()) is None:
        return f"no C++ compiler: {compiler()!r} is not on PATH (install g++ or set CXX)"
    if not entry_points():
        return f"no CUDA sources found in {kernels_dir()}"
    return None


def cache_dir() -> Path:
    """Folder of the compiled library: $SNL_CACHE_DIR, else $XDG_CACHE_HOME/snl, ~/.cache/snl."""
    if "SNL_CACHE_DIR" in os.environ:
        return Path(os.environ["SNL_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "snl"


def _threads() -> int:
    value = os.environ.get("SNL_EMULATE_THREADS", "")
    return max(1, int(value)) if value.isdigit() else (os.cpu_count() or 1)


def _generated_source(names: list[str], sources: list[Path]) -> str:
    """The translation unit: every .cu, then one export per entry point."""
    lines = [f'#include "{path.name}"' for path in sources]
    lines += [f"SNL_EMULATE_EXPORT({name})" for name in names]
    return "\n".join(lines) + "\n"


def build_library() -> Path:
    """Compile kernels/*.cu with the shim into a shared library, or reuse the cached one.

    The cache key hashes the sources, the shim, the flags and the compiler's version, so an
    edit anywhere rebuilds. Concurrent builds (pytest-xdist, two shells) are safe: each
    compiles into its own temporary folder and renames the result into place atomically.

    Raises:
        BackendUnavailable: the compiler failed (its log is in the message).
    """
    folder = kernels_dir()
    names = sorted(entry_points())
    sources = sorted({entry_points()[name] for name in names})
    files = sorted([*sources, *folder.glob("*.cuh"), folder / _SHIM])
    generated = _generated_source(names, sources)
    flags = [*CXX_FLAGS, *compile_defines()]
    version = subprocess.run(
        [compiler(), "--version"], capture_output=True, text=True, check=False
    ).stdout
    digest = hashlib.sha256()
    for part in (generated, " ".join(flags), version):
        digest.update(part.encode() + b"\0")
    for path in files:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    target_dir = cache_dir()
    target = target_dir / f"snl_emulate_{digest.hexdigest()[:20]}.so"
    if target.exists():
        return target

    target_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target_dir, prefix=".build-") as tmp:
        unit = Path(tmp) / "snl_emulate.cpp"
        unit.write_text(generated)
        built = Path(tmp) / "snl_emulate.so"
        command = [
            compiler(), *flags, "-x", "c++", "-include", str(folder / _SHIM), f"-I{folder}",
            str(unit), "-o", str(built),
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            log = (result.stderr or result.stdout).strip()[-4000:]
            raise BackendUnavailable(
                f"backend 'emulate': {compiler()} failed to build the kernels:\n{log}"
            )
        os.replace(built, target)
    return target


def _dims(value: int | tuple[int, ...], what: str) -> tuple[int, int, int]:
    dims = (value,) if isinstance(value, int) else tuple(value)
    if not 1 <= len(dims) <= 3 or not all(isinstance(d, int | np.integer) for d in dims):
        raise TypeError(f"{what}: expected an int or a tuple of 1 to 3 ints, got {value!r}")
    x, y, z = (*(int(d) for d in dims), 1, 1)[:3]
    return x, y, z


class EmulatedKernel:
    """One entry point of the library, called like `cupy.RawKernel`: kern(grid, block, args).

    Args are torch CPU tensors (contiguous, for pointer parameters, of the pointee's dtype)
    and numpy scalars of the parameter's exact type (np.int32 for int, np.float32 for float,
    np.float64 for double).
    """

    def __init__(self, lib: ctypes.CDLL, name: str) -> None:
        self.name = name
        self._launch = getattr(lib, f"snl_emu_launch_{name}")
        self._launch.restype = ctypes.c_int
        self._launch.argtypes = [
            ctypes.POINTER(ctypes.c_uint),
            ctypes.POINTER(ctypes.c_uint),
            ctypes.POINTER(ctypes.c_void_p),
            ctypes.c_int,
        ]
        signature = getattr(lib, f"snl_emu_signature_{name}")
        signature.restype = ctypes.c_char_p
        text = signature().decode()
        self.signature = tuple(text.split(",")) if text else ()

    def _argument(self, n: int, code: str, arg: object) -> ctypes._SimpleCData:
        where = f"{self.name}: argument {n}"
        if code in _POINTERS:
            if not isinstance(arg, Tensor):
                raise TypeError(
                    f"{where} is {code}: expected a torch.Tensor, got {type(arg).__name__}"
                )
            if arg.device.type != "cpu":
                raise ValueError(f"{where}: expected a CPU tensor, got one on {arg.device}")
            if arg.dtype != _POINTERS[code]:
                raise TypeError(f"{where} is {code}: expected {_POINTERS[code]}, got {arg.dtype}")
            if not arg.is_contiguous():
                raise ValueError(f"{where}: expected a contiguous tensor")
            return ctypes.c_void_p(arg.data_ptr())
        np_type, c_type = _SCALARS[code]
        if type(arg) is not np_type:
            raise TypeError(
                f"{where} is {code}: expected numpy.{np_type.__name__}, got {type(arg).__name__}"
            )
        return c_type(arg.item())

    def __call__(
        self,
        grid: int | tuple[int, ...],
        block: int | tuple[int, ...],
        args: tuple,
        *,
        shared_mem: int = 0,
    ) -> None:
        grid3, block3 = _dims(grid, "grid"), _dims(block, "block")
        if any(not 1 <= g <= m for g, m in zip(grid3, _MAX_GRID, strict=True)):
            raise ValueError(f"{self.name}: grid {grid3} outside CUDA's limits {_MAX_GRID}")
        if any(not 1 <= b <= m for b, m in zip(block3, _MAX_BLOCK, strict=True)) or (
            block3[0] * block3[1] * block3[2] > _MAX_THREADS_PER_BLOCK
        ):
            raise ValueError(f"{self.name}: block {block3} outside CUDA's limits")
        if shared_mem:
            raise ValueError(f"{self.name}: dynamic shared memory is not emulated")
        if len(args) != len(self.signature):
            raise TypeError(
                f"{self.name}: expected {len(self.signature)} arguments "
                f"({','.join(self.signature)}), got {len(args)}"
            )
        values = [
            self._argument(n, c, a)
            for n, (c, a) in enumerate(zip(self.signature, args, strict=True))
        ]
        params = (ctypes.c_void_p * max(1, len(values)))(*[ctypes.addressof(v) for v in values])
        self._launch((ctypes.c_uint * 3)(*grid3), (ctypes.c_uint * 3)(*block3), params, _threads())


class EmulateRuntime:
    """Kernels from the g++-built library; the library is built (or found) on first use."""

    def __init__(self) -> None:
        self._lib: ctypes.CDLL | None = None
        self._kernels: dict[str, EmulatedKernel] = {}
        self._lock = threading.Lock()

    def library(self) -> ctypes.CDLL:
        with self._lock:
            if self._lib is None:
                self._lib = ctypes.CDLL(str(build_library()))
            return self._lib

    def kernel(self, name: str) -> EmulatedKernel:
        if name not in self._kernels:
            if name not in entry_points():
                raise KeyError(f"no kernel {name!r} in {kernels_dir()}")
            self._kernels[name] = EmulatedKernel(self.library(), name)
        return self._kernels[name]


runtime = EmulateRuntime()
ops = KernelOps(runtime)
search, gather, patch_sum, accumulate_flows = make_backend(ops)


def prepare() -> None:
    """Build (or load) the library now rather than on the first call."""
    runtime.library()
