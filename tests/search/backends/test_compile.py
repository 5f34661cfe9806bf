"""kernels/*.cu compile for the GPU (NVRTC from the pip wheel; nvcc when present) and for the
CPU emulation (g++ with the shim), cleanly and with the entry points the launcher calls."""

from __future__ import annotations

import ctypes
import importlib.util
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

import pytest

from snl_cli.search.backends import cuda, launcher

KERNELS = launcher.kernels_dir()
SOURCES = sorted(KERNELS.glob("*.cu"))
ARCHS = ("sm_80", "sm_90")
# sm_80 is built in C++14, CuPy's default dialect for RawModule, sm_90 in NVRTC's default
# (C++17): the kernels must compile in both.
STANDARD = {"sm_80": ("-std=c++14",), "sm_90": ()}
# What CuPy adds to our options in RawModule (cupy/cuda/compiler.py): flush-to-zero and
# device-by-default; compiling with them here checks the source CuPy will actually build.
CUPY_EXTRA = ("-ftz=true", "--device-as-default-execution-space")
NAME = re.compile(r"snl_(?P<op>[a-z_]+)_(?P<pass_>fwd|bwd)_(?P<dtype>f32|f64)")


@cache
def _nvrtc() -> ctypes.CDLL | None:
    """libnvrtc from the nvidia-cuda-nvrtc wheel (the dev extra), or None."""
    for package in ("nvidia.cuda_nvrtc", "nvidia.cu13"):
        try:
            spec = importlib.util.find_spec(package)
        except ModuleNotFoundError:
            continue
        if spec is None or not spec.submodule_search_locations:
            continue
        for folder in spec.submodule_search_locations:
            for lib in sorted(Path(folder, "lib").glob("libnvrtc.so*")):
                if "builtins" not in lib.name and "alt" not in lib.name:
                    return ctypes.CDLL(str(lib))
    return None


def nvrtc_compile(
    lib: ctypes.CDLL, source: str, name: str, options: list[str]
) -> tuple[int, str, bytes]:
    """(status, log, cubin) of one NVRTC compilation."""
    prog = ctypes.c_void_p()
    status = lib.nvrtcCreateProgram(
        ctypes.byref(prog), source.encode(), name.encode(), 0, None, None
    )
    assert status == 0, f"nvrtcCreateProgram failed with {status}"
    try:
        argv = (ctypes.c_char_p * len(options))(*[o.encode() for o in options])
        status = lib.nvrtcCompileProgram(prog, len(options), argv)
        size = ctypes.c_size_t()
        lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
        log = ctypes.create_string_buffer(size.value)
        lib.nvrtcGetProgramLog(prog, log)
        cubin = b""
        if status == 0:
            lib.nvrtcGetCUBINSize(prog, ctypes.byref(size))
            buffer = ctypes.create_string_buffer(size.value)
            lib.nvrtcGetCUBIN(prog, buffer)
            cubin = buffer.raw
        return status, log.value.decode(errors="replace"), cubin
    finally:
        lib.nvrtcDestroyProgram(ctypes.byref(prog))


def entries(path: Path) -> list[str]:
    return [name for name, where in launcher.entry_points().items() if where == path]


def _in_parallel(jobs: dict, run) -> dict:
    """run(job) for every job at once (compilers are single-threaded; NVRTC releases the GIL)."""
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return dict(zip(jobs, pool.map(run, jobs.values()), strict=True))


@pytest.fixture(scope="module")
def nvrtc_builds() -> dict:
    """(status, log, cubin) per (source, arch), with the options CuPy will use."""
    lib = _nvrtc()
    if lib is None:
        pytest.fail(
            "NVRTC not found: install the dev extra (pip install -e '.[dev]'), "
            "which brings nvidia-cuda-nvrtc-cu12"
        )
    jobs = {
        (path, arch): (
            launcher.inline_source(path),
            path.name,
            [*cuda.NVRTC_OPTIONS, *STANDARD[arch], *launcher.compile_defines(), *CUPY_EXTRA,
             f"-arch={arch}"],
        )
        for path in SOURCES
        for arch in ARCHS
    }  # fmt: skip
    return _in_parallel(jobs, lambda job: nvrtc_compile(lib, *job))


@pytest.fixture(scope="module")
def nvcc_builds(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """(returncode, output) of `nvcc -cubin -Werror all-warnings` per (source, arch)."""
    if shutil.which("nvcc") is None:
        pytest.skip("nvcc is not on PATH (the NVRTC tests cover the GPU build)")
    out = tmp_path_factory.mktemp("cubin")
    jobs = {
        (path, arch): [
            "nvcc", "-cubin", f"-arch={arch}", "-Werror", "all-warnings", f"-I{KERNELS}",
            *launcher.compile_defines(), str(path), "-o", str(out / f"{path.stem}_{arch}.cubin"),
        ]
        for path in SOURCES
        for arch in ARCHS
    }  # fmt: skip

    def run(command: list[str]) -> tuple[int, str]:
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        return result.returncode, result.stdout + result.stderr

    return _in_parallel(jobs, run)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_nvrtc_compiles_without_warnings(nvrtc_builds: dict, path: Path, arch: str) -> None:
    # NVRTC has no global -Werror (-Werror, --Werror=all-warnings and -Wall are rejected as
    # unknown options), so the log itself must be free of warnings.
    status, log, cubin = nvrtc_builds[path, arch]
    assert status == 0, log
    assert "warning" not in log.lower(), log
    for name in entries(path):
        assert name.encode() + b"\0" in cubin, f"{name} missing from the {arch} cubin"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_entry_points_come_in_both_dtypes(path: Path) -> None:
    names = entries(path)
    assert names, f'{path.name} defines no extern "C" __global__ kernel'
    for name in names:
        match = NAME.fullmatch(name)
        assert match, f"{name}: expected snl_<op>_<fwd|bwd>_<f32|f64>"
        assert match["op"] == path.stem, f"{name} lives in {path.name}: one operator per file"
        other = name[:-3] + ("f64" if match["dtype"] == "f32" else "f32")
        assert other in names, f"{name} has no {other}"


def test_launcher_kernels_exist() -> None:
    used = {
        f"snl_{op}_{p}_{d}"
        for op in ("search", "gather", "patch_sum", "flows")
        for p in ("fwd", "bwd")
        for d in ("f32", "f64")
    }
    assert used <= set(launcher.entry_points())


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_kernels_need_no_block_cooperation(path: Path) -> None:
    # The emulation runs the threads of a block one after another: it is exact only for
    # kernels without shared memory, barriers or warp intrinsics.
    text = re.sub(r"//[^\n]*|/\*.*?\*/", "", launcher.inline_source(path), flags=re.DOTALL)
    for word in ("__syncthreads", "__shared__", "__shfl", "__ballot", "__activemask"):
        assert word not in text, f"{path.name} uses {word}"


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_nvcc_compiles_with_werror(nvcc_builds: dict, path: Path, arch: str) -> None:
    returncode, output = nvcc_builds[path, arch]
    assert returncode == 0, output
    assert "warning" not in output.lower(), output


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_gxx_compiles_each_source_with_the_shim(path: Path) -> None:
    from snl_cli.search.backends import emulate

    if (reason := emulate.unavailable_reason()) is not None:
        pytest.skip(reason)
    command = [
        emulate.compiler(), "-std=c++20", "-fsyntax-only", "-Wall", "-Wextra", "-Werror",
        "-x", "c++", "-include", str(KERNELS / "cpu_shim.h"), f"-I{KERNELS}",
        *launcher.compile_defines(), str(path),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
