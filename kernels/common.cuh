// Device helpers shared by every kernels/*.cu.
//
// NVRTC compiles without a C++ standard library, so nothing is #included here; under the g++
// emulation (backend "emulate") cpu_shim.h supplies the CUDA built-ins used below.
//
// Conventions of all kernels (see kernels/README.md):
//   * one CUDA thread per output item, a 1-D grid of 1-D blocks, no shared memory and no
//     __syncthreads, so the emulation can run threads one after another;
//   * tensors are contiguous and indexed with explicit strides in 64-bit arithmetic, because
//     element counts such as B*heads*T*nH*nW*K*3 can pass 2^31 on long clips;
//   * positions are (y, x) in pixels, frames (B, T, C, H, W) channel-major.
#pragma once

#ifndef SNL_TOPK_MAX
// Largest topk the search forward keeps in a per-thread list; the launcher passes the same
// value with -DSNL_TOPK_MAX and falls back to "write every candidate + torch.topk" above it.
#define SNL_TOPK_MAX 32
#endif

typedef long long snl_i64;

// Linear id of this thread in a 1-D launch.
__device__ __forceinline__ snl_i64 snl_thread_id() {
    return (snl_i64)blockIdx.x * (snl_i64)blockDim.x + (snl_i64)threadIdx.x;
}

__device__ __forceinline__ float snl_floor(float x) { return floorf(x); }
__device__ __forceinline__ double snl_floor(double x) { return floor(x); }

// +infinity of the type of x, from its bit pattern (1/0 draws a division-by-zero warning).
__device__ __forceinline__ float snl_inf(float) { return __int_as_float(0x7f800000); }
__device__ __forceinline__ double snl_inf(double) { return __longlong_as_double(0x7ff0000000000000LL); }

// Mirror an integer index into [0, size-1] without repeating the edge (-1 -> 1,
// size -> size-2), periodically, exactly as reference.reflect. Indices at most one
// bounce away (the usual case) skip the integer modulo, which costs ~20 instructions.
__device__ __forceinline__ int snl_reflect(int i, int size) {
    const int last = size - 1;
    if (last <= 0) return 0;  // a 1-pixel axis (only reachable through gather's inputs)
    if (i < 0) i = -i;
    if (i > last) {
        const int period = 2 * last;
        i %= period;
        if (i > last) i = period - i;
    }
    return i;
}

// Integer corner and fractional weight of a coordinate: y = y0 + frac, frac in [0, 1).
// Coordinates are first limited to +-2^24 px so that the int conversion stays defined for
// absurd or NaN positions (the reference would index out of range there).
template <typename T>
__device__ __forceinline__ void snl_split(T y, int& y0, T& frac) {
    const T lim = (T)16777216;
    y = y > -lim ? (y < lim ? y : lim) : -lim;
    const T f = snl_floor(y);
    y0 = (int)f;
    frac = y - f;
}

// Rounded frame index stored as a float in inds[..., 0], kept inside [0, T-1] so a malformed
// index cannot read outside the video (the reference raises there instead).
template <typename T>
__device__ __forceinline__ int snl_frame(T t, int nT) {
    int f = (int)snl_floor(t + (T)0.5);
    return f < 0 ? 0 : (f > nT - 1 ? nT - 1 : f);
}

// A bilinear read at a fractional (y, x): four mirrored corner offsets inside a frame and
// their weights, computed once and reused for every channel.
template <typename T>
struct SnlBilinear {
    int o00, o01, o10, o11;  // y*W + x of the corners (y0,x0) (y0,x1) (y1,x0) (y1,x1)
    T wy, wx;                // fractional parts; weights are products of (1-wy|wy)(1-wx|wx)
};

template <typename T>
__device__ __forceinline__ SnlBilinear<T> snl_bilinear(T y, T x, int H, int W) {
    int y0, x0;
    SnlBilinear<T> b;
    snl_split(y, y0, b.wy);
    snl_split(x, x0, b.wx);
    const int r0 = snl_reflect(y0, H), r1 = snl_reflect(y0 + 1, H);
    const int c0 = snl_reflect(x0, W), c1 = snl_reflect(x0 + 1, W);
    b.o00 = r0 * W + c0;
    b.o01 = r0 * W + c1;
    b.o10 = r1 * W + c0;
    b.o11 = r1 * W + c1;
    return b;
}

// Value at the read. Corners of weight zero are not loaded: integer positions (stride1 = 1
// without offsets, the common case) then touch one pixel instead of four. The sum order
// matches reference.bilinear when all four corners are present.
template <typename T>
__device__ __forceinline__ T snl_bilinear_value(const T* __restrict__ frame, const SnlBilinear<T>& b) {
    const T ay = (T)1 - b.wy, ax = (T)1 - b.wx;
    T v = ay * ax * frame[b.o00];
    if (b.wx != (T)0) v += ay * b.wx * frame[b.o01];
    if (b.wy != (T)0) {
        v += b.wy * ax * frame[b.o10];
        if (b.wx != (T)0) v += b.wy * b.wx * frame[b.o11];
    }
    return v;
}

// The four corner values, for backward passes that need d value / d (y, x) even where a
// weight is zero (the one-sided derivative the reference's autograd takes at integer knots).
template <typename T>
struct SnlCorners {
    T v00, v01, v10, v11;
};

template <typename T>
__device__ __forceinline__ SnlCorners<T> snl_corners(const T* __restrict__ frame, const SnlBilinear<T>& b) {
    SnlCorners<T> c;
    c.v00 = frame[b.o00];
    c.v01 = frame[b.o01];
    c.v10 = frame[b.o10];
    c.v11 = frame[b.o11];
    return c;
}

template <typename T>
__device__ __forceinline__ T snl_corners_value(const SnlCorners<T>& c, const SnlBilinear<T>& b) {
    const T ay = (T)1 - b.wy, ax = (T)1 - b.wx;
    return ay * ax * c.v00 + ay * b.wx * c.v01 + b.wy * ax * c.v10 + b.wy * b.wx * c.v11;
}

// d value / d y and d value / d x of a bilinear read (floor() has no gradient).
template <typename T>
__device__ __forceinline__ T snl_corners_dy(const SnlCorners<T>& c, const SnlBilinear<T>& b) {
    return ((T)1 - b.wx) * (c.v10 - c.v00) + b.wx * (c.v11 - c.v01);
}

template <typename T>
__device__ __forceinline__ T snl_corners_dx(const SnlCorners<T>& c, const SnlBilinear<T>& b) {
    return ((T)1 - b.wy) * (c.v01 - c.v00) + b.wy * (c.v11 - c.v10);
}

// Scatter g * weight into the four corners (the adjoint of a read). Zero weights are skipped:
// they would add 0 and cost an atomic each.
template <typename T>
__device__ __forceinline__ void snl_bilinear_scatter(T* __restrict__ frame, const SnlBilinear<T>& b, T g) {
    const T ay = (T)1 - b.wy, ax = (T)1 - b.wx;
    atomicAdd(frame + b.o00, g * ay * ax);
    if (b.wx != (T)0) atomicAdd(frame + b.o01, g * ay * b.wx);
    if (b.wy != (T)0) {
        atomicAdd(frame + b.o10, g * b.wy * ax);
        if (b.wx != (T)0) atomicAdd(frame + b.o11, g * b.wy * b.wx);
    }
}

// First frame of the temporal window of frame t: it slides at the clip ends, and is the
// whole clip when T < 2*wt+1 (SearchSpec.window_start).
__device__ __forceinline__ int snl_window_start(int t, int nT, int wt) {
    if (nT < 2 * wt + 1) return 0;
    const int s = t - wt;
    const int last = nT - 1 - 2 * wt;
    return s < 0 ? 0 : (s > last ? last : s);
}
