"""The search backends, one module (or package) each, and the table that names them.

Every backend exposes the same functions: `search(q, k, offsets, spec)`, `gather(v, inds)`,
`patch_sum(v, weights, inds, ps, stride0)`, `accumulate_flows(fflow, bflow, wt, stride0)`
and `unavailable_reason() -> str | None`. Importing one never fails and compiles nothing:
numba kernels, CuPy and the g++ build load on first use.

    reference   "torch": plain differentiable torch, the definition the others are tested against
    cpu/        "cpu": numba kernels (direct, box and whole-pixel search, gather, patch sum)
    cuda        "cuda": kernels/*.cu through CuPy + NVRTC
    emulate     "emulate": the same kernels/*.cu built with g++ and run on the CPU
    launcher    grid, block and argument tuples of kernels/*.cu, shared by cuda and emulate
"""

from types import ModuleType

from snl_cli.search.backends import cpu, cuda, emulate, reference

BACKENDS: dict[str, ModuleType] = {
    "torch": reference,
    "cpu": cpu,
    "cuda": cuda,
    "emulate": emulate,
}

__all__ = ["BACKENDS"]
