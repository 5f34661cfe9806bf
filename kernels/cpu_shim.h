// cpu_shim.h: compile kernels/*.cu unchanged with g++ and run them on the CPU (backend
// "emulate"): g++ -std=c++20 -x c++ -include cpu_shim.h ...
//
// What it models: the CUDA qualifiers, threadIdx/blockIdx/blockDim/gridDim, the few device
// built-ins the kernels use (floorf, atomicAdd on float/double, bit casts), and a launch
// that runs every thread of every block one after another (blocks may be spread over a few
// OS threads, hence real atomics). What it does not model: __shared__, __syncthreads, warp
// intrinsics, the memory model. Kernels that need those fail to compile here on purpose,
// rather than computing something else quietly; ours use none (see kernels/README.md).
//
// Entry points: snl_cli/search/backends/emulate.py generates a source that includes the .cu files
// and lists each extern "C" kernel in SNL_EMULATE_EXPORT(name), which defines
//   int snl_emu_launch_<name>(const unsigned grid[3], const unsigned block[3], void** args, int threads)
//   const char* snl_emu_signature_<name>(void)
// `args` is the CUDA driver's kernelParams convention (one pointer to each argument's value,
// as cuLaunchKernel and CuPy use), and the parameter types are deduced from the kernel's own
// declaration, so no signature is written twice. The signature string ("f32*,i32,f64,...")
// lets Python check every argument's type before the call.
#pragma once

#include <math.h>

#include <atomic>
#include <cstddef>
#include <cstring>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)

struct uint3 {
    unsigned x = 0, y = 0, z = 0;
};
struct dim3 {
    unsigned x = 1, y = 1, z = 1;
};

// Per OS thread, so blocks can run on several OS threads at once.
inline thread_local uint3 threadIdx, blockIdx;
inline thread_local dim3 blockDim, gridDim;

inline float __int_as_float(int i) {
    float f;
    std::memcpy(&f, &i, sizeof f);
    return f;
}
inline double __longlong_as_double(long long i) {
    double d;
    std::memcpy(&d, &i, sizeof d);
    return d;
}

// Real atomics: blocks of one launch may run concurrently on different OS threads.
inline float atomicAdd(float* address, float value) {
    return std::atomic_ref<float>(*address).fetch_add(value, std::memory_order_relaxed);
}
inline double atomicAdd(double* address, double value) {
    return std::atomic_ref<double>(*address).fetch_add(value, std::memory_order_relaxed);
}

namespace snl_emu {

// Type code of a kernel parameter, checked against the Python argument before a launch.
template <class T>
constexpr const char* code() {
    using U = std::remove_cv_t<T>;
    if constexpr (std::is_pointer_v<U>) {
        using E = std::remove_cv_t<std::remove_pointer_t<U>>;
        if constexpr (std::is_same_v<E, float>) return "f32*";
        else if constexpr (std::is_same_v<E, double>) return "f64*";
        else if constexpr (std::is_same_v<E, int>) return "i32*";
        else if constexpr (std::is_same_v<E, long long>) return "i64*";
        else static_assert(sizeof(E) == 0, "unsupported pointer parameter type");
    } else if constexpr (std::is_same_v<U, float>) return "f32";
    else if constexpr (std::is_same_v<U, double>) return "f64";
    else if constexpr (std::is_same_v<U, int>) return "i32";
    else if constexpr (std::is_same_v<U, long long>) return "i64";
    else if constexpr (std::is_same_v<U, unsigned>) return "u32";
    else static_assert(sizeof(U) == 0, "unsupported parameter type");
}

template <class... A>
std::string signature(void (*)(A...)) {
    std::string s;
    ((s += code<A>(), s += ","), ...);
    if (!s.empty()) s.pop_back();
    return s;
}

template <class... A, std::size_t... I>
inline void call(void (*kernel)(A...), void* const* args, std::index_sequence<I...>) {
    kernel(*static_cast<std::remove_cv_t<A>*>(args[I])...);
}

// Runs blocks first, first+stride, ... of the grid; every thread of a block in turn.
template <class... A>
void run_blocks(void (*kernel)(A...), dim3 grid, dim3 block, void* const* args,
                unsigned long long first, unsigned long long stride) {
    gridDim = grid;
    blockDim = block;
    const unsigned long long n_blocks = (unsigned long long)grid.x * grid.y * grid.z;
    for (unsigned long long n = first; n < n_blocks; n += stride) {
        blockIdx.x = (unsigned)(n % grid.x);
        blockIdx.y = (unsigned)((n / grid.x) % grid.y);
        blockIdx.z = (unsigned)(n / ((unsigned long long)grid.x * grid.y));
        for (unsigned tz = 0; tz < block.z; ++tz)
            for (unsigned ty = 0; ty < block.y; ++ty)
                for (unsigned tx = 0; tx < block.x; ++tx) {
                    threadIdx.x = tx;
                    threadIdx.y = ty;
                    threadIdx.z = tz;
                    call(kernel, args, std::index_sequence_for<A...>{});
                }
    }
}

// A launch: blocks interleaved over `threads` OS threads (this one included). Returns 0.
template <class... A>
int launch(void (*kernel)(A...), const unsigned* g, const unsigned* b, void* const* args,
           int threads) {
    const dim3 grid{g[0], g[1], g[2]}, block{b[0], b[1], b[2]};
    const unsigned long long n_blocks = (unsigned long long)grid.x * grid.y * grid.z;
    unsigned long long workers = threads < 1 ? 1 : (unsigned long long)threads;
    if (workers > n_blocks) workers = n_blocks;
    std::vector<std::thread> pool;
    for (unsigned long long w = 1; w < workers; ++w)
        pool.emplace_back(run_blocks<A...>, kernel, grid, block, args, w, workers);
    run_blocks(kernel, grid, block, args, 0, workers);
    for (auto& t : pool) t.join();
    return 0;
}

}  // namespace snl_emu

// Only these wrappers are exported (the library is built with -fvisibility=hidden).
#define SNL_EMULATE_API extern "C" __attribute__((visibility("default")))
#define SNL_EMULATE_EXPORT(name)                                                              \
    SNL_EMULATE_API int snl_emu_launch_##name(const unsigned* grid, const unsigned* block,    \
                                              void** args, int threads) {                     \
        return snl_emu::launch(&name, grid, block, args, threads);                            \
    }                                                                                         \
    SNL_EMULATE_API const char* snl_emu_signature_##name() {                                  \
        static const std::string s = snl_emu::signature(&name);                               \
        return s.c_str();                                                                     \
    }
