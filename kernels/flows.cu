// Flow accumulation: chain frame-to-frame flows into per-neighbour offsets
// (reference.accumulate_flows).
//
// For query (t, i, j) on the stride0 grid and neighbour t' (the window frames other than t,
// in increasing time order), start at p = (i*stride0, j*stride0) and step frame by frame
// towards t': p += bilinear(fflow[tau], p) going forward, p += bilinear(bflow[tau], p)
// going backward, tau = t, t±1, ... The offset is p - start. Flows are (B, T, 2, H, W) with
// channels (dy, dx); offsets are (B, T, Wn, 2, nH, nW).
//
// One thread per (b, t, slot, i, j), j fastest. The backward walks the chain in reverse; it
// recomputes the position before each step from the start (O(L^2) reads for a chain of
// L = |t' - t| <= 2*wt steps, a handful in practice) instead of storing the path, and
// scatters into the flow gradients with atomicAdd.
#include "common.cuh"

#define SNL_FLOWS_FWD_PARAMS(T)                                                           \
    const T *__restrict__ fflow, const T *__restrict__ bflow, T *__restrict__ offsets,    \
        int B, int nT, int H, int W, int wt, int nH, int nW, int stride0
#define SNL_FLOWS_FWD_ARGS fflow, bflow, offsets, B, nT, H, W, wt, nH, nW, stride0

#define SNL_FLOWS_BWD_PARAMS(T)                                                           \
    const T *__restrict__ grad_offsets, const T *__restrict__ fflow,                      \
        const T *__restrict__ bflow, T *__restrict__ grad_fflow, T *__restrict__ grad_bflow, \
        int B, int nT, int H, int W, int wt, int nH, int nW, int stride0
#define SNL_FLOWS_BWD_ARGS \
    grad_offsets, fflow, bflow, grad_fflow, grad_bflow, B, nT, H, W, wt, nH, nW, stride0

// One chain: its first frame t, direction and length, and where the query starts.
struct FlowChain {
    int b, t, step, len, i, j;
    snl_i64 out;  // index of the dy entry in offsets (dx is nH*nW further)
};

__device__ __forceinline__ FlowChain flow_chain(snl_i64 idx, int nT, int wt, int nH, int nW) {
    const int Wt = nT < 2 * wt + 1 ? nT : 2 * wt + 1;
    const int Wn = Wt - 1;
    FlowChain ch;
    ch.j = (int)(idx % nW);
    ch.i = (int)((idx / nW) % nH);
    const int slot = (int)((idx / ((snl_i64)nW * nH)) % Wn);
    ch.t = (int)((idx / ((snl_i64)nW * nH * Wn)) % nT);
    ch.b = (int)(idx / ((snl_i64)nW * nH * Wn * nT));
    const int s = snl_window_start(ch.t, nT, wt);
    const int tp = slot < ch.t - s ? s + slot : s + slot + 1;
    ch.step = tp > ch.t ? 1 : -1;
    ch.len = tp > ch.t ? tp - ch.t : ch.t - tp;
    ch.out = (((snl_i64)ch.b * nT + ch.t) * Wn + slot) * 2 * nH * nW + (snl_i64)ch.i * nW + ch.j;
    return ch;
}

// Position after `steps` steps of the chain.
template <typename T>
__device__ __forceinline__ void flow_walk(const T* __restrict__ flows, const FlowChain& ch,
                                          int steps, int nT, int H, int W, int stride0, T& y,
                                          T& x) {
    const snl_i64 HW = (snl_i64)H * W;
    y = (T)(ch.i * stride0);
    x = (T)(ch.j * stride0);
    for (int n = 0; n < steps; ++n) {
        const int tau = ch.t + n * ch.step;
        const T* f = flows + ((snl_i64)ch.b * nT + tau) * 2 * HW;
        const SnlBilinear<T> bl = snl_bilinear(y, x, H, W);
        const T dy = snl_bilinear_value(f, bl), dx = snl_bilinear_value(f + HW, bl);
        y += dy;
        x += dx;
    }
}

template <typename T>
__device__ __forceinline__ void flows_fwd(SNL_FLOWS_FWD_PARAMS(T)) {
    const int Wt = nT < 2 * wt + 1 ? nT : 2 * wt + 1;
    const snl_i64 idx = snl_thread_id();
    if (idx >= (snl_i64)B * nT * (Wt - 1) * nH * nW) return;
    const FlowChain ch = flow_chain(idx, nT, wt, nH, nW);
    T y, x;
    flow_walk(ch.step > 0 ? fflow : bflow, ch, ch.len, nT, H, W, stride0, y, x);
    offsets[ch.out] = y - (T)(ch.i * stride0);
    offsets[ch.out + (snl_i64)nH * nW] = x - (T)(ch.j * stride0);
}

template <typename T>
__device__ __forceinline__ void flows_bwd(SNL_FLOWS_BWD_PARAMS(T)) {
    const int Wt = nT < 2 * wt + 1 ? nT : 2 * wt + 1;
    const snl_i64 idx = snl_thread_id();
    if (idx >= (snl_i64)B * nT * (Wt - 1) * nH * nW) return;
    const FlowChain ch = flow_chain(idx, nT, wt, nH, nW);
    const T* flows = ch.step > 0 ? fflow : bflow;
    T* grad_flows = ch.step > 0 ? grad_fflow : grad_bflow;
    const snl_i64 HW = (snl_i64)H * W;
    // d loss / d position after the last step; the start position is a constant.
    T gy = grad_offsets[ch.out], gx = grad_offsets[ch.out + (snl_i64)nH * nW];
    for (int n = ch.len - 1; n >= 0; --n) {
        if (gy == (T)0 && gx == (T)0) break;  // nothing left to propagate
        T y, x;
        flow_walk(flows, ch, n, nT, H, W, stride0, y, x);
        const int tau = ch.t + n * ch.step;
        const snl_i64 base = ((snl_i64)ch.b * nT + tau) * 2 * HW;
        const SnlBilinear<T> bl = snl_bilinear(y, x, H, W);
        const SnlCorners<T> fy = snl_corners(flows + base, bl);
        const SnlCorners<T> fx = snl_corners(flows + base + HW, bl);
        // p_next = p + f(p): the flow values get g, the position gets g (I + df/dp).
        snl_bilinear_scatter(grad_flows + base, bl, gy);
        snl_bilinear_scatter(grad_flows + base + HW, bl, gx);
        const T ny = gy + gy * snl_corners_dy(fy, bl) + gx * snl_corners_dy(fx, bl);
        const T nx = gx + gy * snl_corners_dx(fy, bl) + gx * snl_corners_dx(fx, bl);
        gy = ny;
        gx = nx;
    }
}

extern "C" __global__ void snl_flows_fwd_f32(SNL_FLOWS_FWD_PARAMS(float)) {
    flows_fwd<float>(SNL_FLOWS_FWD_ARGS);
}
extern "C" __global__ void snl_flows_fwd_f64(SNL_FLOWS_FWD_PARAMS(double)) {
    flows_fwd<double>(SNL_FLOWS_FWD_ARGS);
}
extern "C" __global__ void snl_flows_bwd_f32(SNL_FLOWS_BWD_PARAMS(float)) {
    flows_bwd<float>(SNL_FLOWS_BWD_ARGS);
}
extern "C" __global__ void snl_flows_bwd_f64(SNL_FLOWS_BWD_PARAMS(double)) {
    flows_bwd<double>(SNL_FLOWS_BWD_ARGS);
}
