// Gather: the bilinear value of v at every match of the search (reference.gather).
//
//   out[b, h, t, r, c, i, j] = bilinear(v[b, t'_r, h*Ch + c], y_r, x_r)
//
// with (t'_r, y_r, x_r) = inds[b, h, t, i, j, r]. One thread per match (b, h, t, r, i, j), j
// fastest, so the writes of a warp are contiguous; each thread loops over the head's
// channels, reusing one set of corner offsets and weights. The backward scatters into grad v
// with atomicAdd (matches share pixels) and writes the match's d loss / d (y, x) itself.
#include "common.cuh"

#define SNL_GATHER_FWD_PARAMS(T)                                                          \
    const T *__restrict__ v, const T *__restrict__ inds, T *__restrict__ out, int B,      \
        int nT, int C, int H, int W, int heads, int nH, int nW, int K
#define SNL_GATHER_FWD_ARGS v, inds, out, B, nT, C, H, W, heads, nH, nW, K

#define SNL_GATHER_BWD_PARAMS(T)                                                          \
    const T *__restrict__ grad_out, const T *__restrict__ v, const T *__restrict__ inds,  \
        T *__restrict__ grad_v, T *__restrict__ grad_pos, int B, int nT, int C, int H,    \
        int W, int heads, int nH, int nW, int K, int need_pos
#define SNL_GATHER_BWD_ARGS \
    grad_out, v, inds, grad_v, grad_pos, B, nT, C, H, W, heads, nH, nW, K, need_pos

// Decomposes a thread id over (b, h, t, r, i, j) and locates its match.
struct GatherItem {
    int b, h, t, r, i, j;
    snl_i64 match;  // index of the match in (B, heads, T, nH, nW, K)
    snl_i64 out0;   // index of channel 0 in the output (B, heads, T, K, Ch, nH, nW)
};

__device__ __forceinline__ GatherItem gather_item(snl_i64 idx, int nT, int heads, int nH, int nW,
                                                  int K, int Ch) {
    GatherItem it;
    it.j = (int)(idx % nW);
    it.i = (int)((idx / nW) % nH);
    it.r = (int)((idx / ((snl_i64)nW * nH)) % K);
    it.t = (int)((idx / ((snl_i64)nW * nH * K)) % nT);
    it.h = (int)((idx / ((snl_i64)nW * nH * K * nT)) % heads);
    it.b = (int)(idx / ((snl_i64)nW * nH * K * nT * heads));
    const snl_i64 bht = ((snl_i64)it.b * heads + it.h) * nT + it.t;
    it.match = ((bht * nH + it.i) * nW + it.j) * K + it.r;
    it.out0 = ((bht * K + it.r) * Ch) * nH * nW + (snl_i64)it.i * nW + it.j;
    return it;
}

template <typename T>
__device__ __forceinline__ void gather_fwd(SNL_GATHER_FWD_PARAMS(T)) {
    const snl_i64 idx = snl_thread_id();
    if (idx >= (snl_i64)B * heads * nT * K * nH * nW) return;
    const int Ch = C / heads;
    const GatherItem it = gather_item(idx, nT, heads, nH, nW, K, Ch);
    const snl_i64 HW = (snl_i64)H * W, nHW = (snl_i64)nH * nW;
    const T* m = inds + 3 * it.match;
    const int tp = snl_frame(m[0], nT);
    const SnlBilinear<T> bl = snl_bilinear(m[1], m[2], H, W);
    const T* frame = v + ((snl_i64)it.b * nT + tp) * C * HW + (snl_i64)it.h * Ch * HW;
    for (int c = 0; c < Ch; ++c) out[it.out0 + c * nHW] = snl_bilinear_value(frame + c * HW, bl);
}

template <typename T>
__device__ __forceinline__ void gather_bwd(SNL_GATHER_BWD_PARAMS(T)) {
    const snl_i64 idx = snl_thread_id();
    if (idx >= (snl_i64)B * heads * nT * K * nH * nW) return;
    const int Ch = C / heads;
    const GatherItem it = gather_item(idx, nT, heads, nH, nW, K, Ch);
    const snl_i64 HW = (snl_i64)H * W, nHW = (snl_i64)nH * nW;
    const T* m = inds + 3 * it.match;
    const int tp = snl_frame(m[0], nT);
    const SnlBilinear<T> bl = snl_bilinear(m[1], m[2], H, W);
    const snl_i64 base = ((snl_i64)it.b * nT + tp) * C * HW + (snl_i64)it.h * Ch * HW;
    T gy = 0, gx = 0;
    for (int c = 0; c < Ch; ++c) {
        const T g = grad_out[it.out0 + c * nHW];
        if (g == (T)0) continue;
        snl_bilinear_scatter(grad_v + base + c * HW, bl, g);
        if (need_pos) {
            const SnlCorners<T> cv = snl_corners(v + base + c * HW, bl);
            gy += g * snl_corners_dy(cv, bl);
            gx += g * snl_corners_dx(cv, bl);
        }
    }
    if (need_pos) {
        grad_pos[2 * it.match] = gy;
        grad_pos[2 * it.match + 1] = gx;
    }
}

extern "C" __global__ void snl_gather_fwd_f32(SNL_GATHER_FWD_PARAMS(float)) {
    gather_fwd<float>(SNL_GATHER_FWD_ARGS);
}
extern "C" __global__ void snl_gather_fwd_f64(SNL_GATHER_FWD_PARAMS(double)) {
    gather_fwd<double>(SNL_GATHER_FWD_ARGS);
}
extern "C" __global__ void snl_gather_bwd_f32(SNL_GATHER_BWD_PARAMS(float)) {
    gather_bwd<float>(SNL_GATHER_BWD_ARGS);
}
extern "C" __global__ void snl_gather_bwd_f64(SNL_GATHER_BWD_PARAMS(double)) {
    gather_bwd<double>(SNL_GATHER_BWD_ARGS);
}
