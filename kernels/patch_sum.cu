// Weighted patch sum with fold and overlap normalisation (reference.patch_sum).
//
// For every query (t, i, j) on the stride0 grid, patch offset (u, d) in [-ps//2, ps//2]^2 and
// match r: out[t, (i*stride0+u, j*stride0+d)] += w_r * bilinear(v[t'_r], (y_r+u, x_r+d));
// output pixels outside the frame are skipped, and each pixel is divided by the number of
// query patches covering it (0 where none does). That count is separable, count_y * count_x.
//
// Forward: one thread per output value (b, t, c, Y, X), X fastest. It pulls from the queries
// whose patch covers (Y, X) instead of pushing into it, so no atomics are needed and the
// result does not depend on scheduling.
// Backward: one thread per match (b, h, t, i, j, r), r fastest. It owns d loss / d w_r and
// d loss / d (y_r, x_r), written directly, and scatters into grad v with atomicAdd.
#include "common.cuh"

#define SNL_PATCH_SUM_FWD_PARAMS(T)                                                       \
    const T *__restrict__ v, const T *__restrict__ weights, const T *__restrict__ inds,   \
        T *__restrict__ out, int B, int nT, int C, int H, int W, int heads, int nH,       \
        int nW, int K, int ps, int stride0
#define SNL_PATCH_SUM_FWD_ARGS v, weights, inds, out, B, nT, C, H, W, heads, nH, nW, K, ps, stride0

#define SNL_PATCH_SUM_BWD_PARAMS(T)                                                       \
    const T *__restrict__ grad_out, const T *__restrict__ v, const T *__restrict__ weights, \
        const T *__restrict__ inds, T *__restrict__ grad_v, T *__restrict__ grad_w,       \
        T *__restrict__ grad_pos, int B, int nT, int C, int H, int W, int heads, int nH,  \
        int nW, int K, int ps, int stride0, int need_pos
#define SNL_PATCH_SUM_BWD_ARGS                                                                \
    grad_out, v, weights, inds, grad_v, grad_w, grad_pos, B, nT, C, H, W, heads, nH, nW, K, \
        ps, stride0, need_pos

// Query rows (or columns) whose patch covers pixel Y: [first, last], possibly empty.
__device__ __forceinline__ void patch_cover(int Y, int n, int stride0, int half, int& first,
                                            int& last) {
    const int lo = Y - half;
    first = lo <= 0 ? 0 : (lo + stride0 - 1) / stride0;
    last = (Y + half) / stride0;
    if (last > n - 1) last = n - 1;
}

__device__ __forceinline__ int patch_count(int Y, int n, int stride0, int half) {
    int first, last;
    patch_cover(Y, n, stride0, half, first, last);
    return last >= first ? last - first + 1 : 0;
}

template <typename T>
__device__ __forceinline__ void patch_sum_fwd(SNL_PATCH_SUM_FWD_PARAMS(T)) {
    const snl_i64 idx = snl_thread_id();
    if (idx >= (snl_i64)B * nT * C * H * W) return;
    const int X = (int)(idx % W);
    const int Y = (int)((idx / W) % H);
    const int c = (int)((idx / ((snl_i64)W * H)) % C);
    const int t = (int)((idx / ((snl_i64)W * H * C)) % nT);
    const int b = (int)(idx / ((snl_i64)W * H * C * nT));
    const int Ch = C / heads, h = c / Ch;
    const int half = ps / 2;
    const snl_i64 HW = (snl_i64)H * W;

    int i0, i1, j0, j1;
    patch_cover(Y, nH, stride0, half, i0, i1);
    patch_cover(X, nW, stride0, half, j0, j1);
    const int count = (i1 >= i0 ? i1 - i0 + 1 : 0) * (j1 >= j0 ? j1 - j0 + 1 : 0);
    if (count == 0) {
        out[idx] = (T)0;
        return;
    }
    const snl_i64 bht = ((snl_i64)b * heads + h) * nT + t;
    const T* chan = v + (snl_i64)b * nT * C * HW + (snl_i64)c * HW;  // add tp * C * HW per match
    T acc = 0;
    for (int i = i0; i <= i1; ++i) {
        const T u = (T)(Y - i * stride0);
        for (int j = j0; j <= j1; ++j) {
            const T d = (T)(X - j * stride0);
            const snl_i64 q0 = ((bht * nH + i) * nW + j) * K;
            for (int r = 0; r < K; ++r) {
                const T w = weights[q0 + r];
                if (w == (T)0) continue;  // e.g. ranks cut off by the caller: no read needed
                const T* m = inds + 3 * (q0 + r);
                const int tp = snl_frame(m[0], nT);
                const SnlBilinear<T> bl = snl_bilinear(m[1] + u, m[2] + d, H, W);
                acc += w * snl_bilinear_value(chan + (snl_i64)tp * C * HW, bl);
            }
        }
    }
    out[idx] = acc / (T)count;
}

template <typename T>
__device__ __forceinline__ void patch_sum_bwd(SNL_PATCH_SUM_BWD_PARAMS(T)) {
    const snl_i64 idx = snl_thread_id();
    if (idx >= (snl_i64)B * heads * nT * nH * nW * K) return;
    const snl_i64 query = idx / K;
    const int j = (int)(query % nW);
    const int i = (int)((query / nW) % nH);
    const int t = (int)((query / ((snl_i64)nW * nH)) % nT);
    const int h = (int)((query / ((snl_i64)nW * nH * nT)) % heads);
    const int b = (int)(query / ((snl_i64)nW * nH * nT * heads));
    const int Ch = C / heads, half = ps / 2;
    const snl_i64 HW = (snl_i64)H * W;

    const T w = weights[idx];
    const T* m = inds + 3 * idx;
    const int tp = snl_frame(m[0], nT);
    const T py = m[1], px = m[2];
    const snl_i64 v_base = ((snl_i64)b * nT + tp) * C * HW + (snl_i64)h * Ch * HW;
    const snl_i64 g_base = ((snl_i64)b * nT + t) * C * HW + (snl_i64)h * Ch * HW;

    T gw = 0, gy = 0, gx = 0;
    for (int u = -half; u <= half; ++u) {
        const int Y = i * stride0 + u;
        if (Y < 0 || Y >= H) continue;  // folded pixels outside the frame are dropped
        const int count_y = patch_count(Y, nH, stride0, half);
        for (int d = -half; d <= half; ++d) {
            const int X = j * stride0 + d;
            if (X < 0 || X >= W) continue;
            // This query covers (Y, X), so the count is at least 1.
            const T inv_count = (T)1 / (T)(count_y * patch_count(X, nW, stride0, half));
            const SnlBilinear<T> bl = snl_bilinear(py + (T)u, px + (T)d, H, W);
            const snl_i64 o = (snl_i64)Y * W + X;
            for (int c = 0; c < Ch; ++c) {
                const T g = grad_out[g_base + c * HW + o] * inv_count;
                if (g == (T)0) continue;
                const SnlCorners<T> cv = snl_corners(v + v_base + c * HW, bl);
                gw += g * snl_corners_value(cv, bl);
                if (w != (T)0) snl_bilinear_scatter(grad_v + v_base + c * HW, bl, g * w);
                if (need_pos) {
                    gy += g * snl_corners_dy(cv, bl);
                    gx += g * snl_corners_dx(cv, bl);
                }
            }
        }
    }
    grad_w[idx] = gw;
    if (need_pos) {
        grad_pos[2 * idx] = w * gy;
        grad_pos[2 * idx + 1] = w * gx;
    }
}

extern "C" __global__ void snl_patch_sum_fwd_f32(SNL_PATCH_SUM_FWD_PARAMS(float)) {
    patch_sum_fwd<float>(SNL_PATCH_SUM_FWD_ARGS);
}
extern "C" __global__ void snl_patch_sum_fwd_f64(SNL_PATCH_SUM_FWD_PARAMS(double)) {
    patch_sum_fwd<double>(SNL_PATCH_SUM_FWD_ARGS);
}
extern "C" __global__ void snl_patch_sum_bwd_f32(SNL_PATCH_SUM_BWD_PARAMS(float)) {
    patch_sum_bwd<float>(SNL_PATCH_SUM_BWD_ARGS);
}
extern "C" __global__ void snl_patch_sum_bwd_f64(SNL_PATCH_SUM_BWD_PARAMS(double)) {
    patch_sum_bwd<double>(SNL_PATCH_SUM_BWD_ARGS);
}
