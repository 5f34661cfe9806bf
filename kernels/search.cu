// Shifted non-local search: forward (every candidate computed in place, fused top-k) and
// backward (atomics into the videos, per-match position gradients).
//
// Semantics are reference.search / DESIGN.md: candidates of window frame t' sit on a ws x ws
// grid of spacing stride1 around the centre (query + offset, clamped with full_ws); patches
// are read bilinearly with mirrored corners; l2 = sum (q-k)^2, prod = sum q*k over the head's
// channels and the ps x ps patch; without full_ws a candidate outside the frame is invalid
// and gets +inf (l2) or -inf (prod).
//
// Forward layout: one thread per query (b, head, t, i, j), j fastest, so a warp reads
// neighbouring pixels. A thread walks its Wt*ws^2 candidates in order (window frames in
// increasing time, then row-major over the grid) and keeps the best topk in a sorted
// per-thread list: only topk (dist, t', y, x) leave the kernel, no candidate tensor is
// materialised. With write_all = 1 it writes every candidate instead (the launcher's path for
// topk > SNL_TOPK_MAX, followed by torch.topk).
//
// Backward layout: one thread per match (b, head, t, i, j, r), r fastest (matches are
// contiguous in grad_dists and inds). Query and key gradients are scattered with atomicAdd
// (patches overlap, and several matches read the same key pixels); the position gradient of
// a match is owned by its thread and written directly.
#include "common.cuh"

// Parameter lists, written once for the template body and its float/double entry points.
#define SNL_SEARCH_FWD_PARAMS(T)                                                          \
    const T *__restrict__ q, const T *__restrict__ k, const T *__restrict__ offsets,      \
        T *__restrict__ dists, T *__restrict__ inds, int B, int nT, int C, int H, int W,  \
        int heads, int nH, int nW, int wt, int ws, int ps, int stride0, T stride1,        \
        int full_ws, T lo_y, T hi_y, T lo_x, T hi_x, int prod, int has_offsets, int K,    \
        int write_all
#define SNL_SEARCH_FWD_ARGS                                                                    \
    q, k, offsets, dists, inds, B, nT, C, H, W, heads, nH, nW, wt, ws, ps, stride0, stride1, \
        full_ws, lo_y, hi_y, lo_x, hi_x, prod, has_offsets, K, write_all

#define SNL_SEARCH_BWD_PARAMS(T)                                                          \
    const T *__restrict__ grad_dists, const T *__restrict__ q, const T *__restrict__ k,   \
        const T *__restrict__ inds, T *__restrict__ grad_q, T *__restrict__ grad_k,       \
        T *__restrict__ grad_pos, int B, int nT, int C, int H, int W, int heads, int nH,  \
        int nW, int ps, int stride0, int full_ws, int prod, int K, int need_pos
#define SNL_SEARCH_BWD_ARGS                                                                  \
    grad_dists, q, k, inds, grad_q, grad_k, grad_pos, B, nT, C, H, W, heads, nH, nW, ps,    \
        stride0, full_ws, prod, K, need_pos

// Position of candidate (f, a, b) of query (i, j): f indexes the window frames. Shared by the
// scan and the final write so that inds hold exactly the positions that were scored.
template <typename T>
struct SearchGeometry {
    const T* off;  // offsets of this query, slot 0 / dy; nullptr without offsets
    snl_i64 slot_stride, dx_stride;
    int t, s, i, j, stride0, ws, full_ws;
    T stride1, lo_y, hi_y, lo_x, hi_x;

    __device__ __forceinline__ void centre(int tp, T& cy, T& cx) const {
        cy = (T)(i * stride0);
        cx = (T)(j * stride0);
        if (tp != t && off != nullptr) {
            // Neighbours are the window frames other than t, in increasing time order.
            const int slot = tp < t ? tp - s : tp - s - 1;
            cy += off[slot * slot_stride];
            cx += off[slot * slot_stride + dx_stride];
        }
        if (full_ws) {
            // Comparisons rather than fmin/fmax so that NaN stays NaN, as with torch.clamp.
            cy = cy < lo_y ? lo_y : (cy > hi_y ? hi_y : cy);
            cx = cx < lo_x ? lo_x : (cx > hi_x ? hi_x : cx);
        }
    }

    // Grid cell a (or b) -> displacement; (a - ws//2) * stride1 in T, as the reference.
    __device__ __forceinline__ T cell(int a) const { return (T)(a - ws / 2) * stride1; }
};

// Patch distance between the query patch at integer (qy, qx) and the key patch at fractional
// (py, px), over Ch channels of stride HW. Query pixels are mirrored integer reads.
template <typename T>
__device__ __forceinline__ T search_patch_dist(const T* __restrict__ qf, const T* __restrict__ kf,
                                               int Ch, int H, int W, int qy, int qx, T py, T px,
                                               int ps, int prod) {
    const snl_i64 HW = (snl_i64)H * W;
    const int half = ps / 2;
    T acc = 0;
    for (int u = -half; u <= half; ++u) {
        const int qrow = snl_reflect(qy + u, H) * W;
        for (int v = -half; v <= half; ++v) {
            const int qo = qrow + snl_reflect(qx + v, W);
            const SnlBilinear<T> bl = snl_bilinear(py + (T)u, px + (T)v, H, W);
            const T* qc = qf + qo;
            const T* kc = kf;
            if (prod) {
                for (int c = 0; c < Ch; ++c, qc += HW, kc += HW)
                    acc += *qc * snl_bilinear_value(kc, bl);
            } else {
                for (int c = 0; c < Ch; ++c, qc += HW, kc += HW) {
                    const T d = *qc - snl_bilinear_value(kc, bl);
                    acc += d * d;
                }
            }
        }
    }
    return acc;
}

template <typename T>
__device__ __forceinline__ void search_fwd(SNL_SEARCH_FWD_PARAMS(T)) {
    const snl_i64 idx = snl_thread_id();
    const snl_i64 n_queries = (snl_i64)B * heads * nT * nH * nW;
    if (idx >= n_queries) return;
    const int j = (int)(idx % nW);
    const int i = (int)((idx / nW) % nH);
    const int t = (int)((idx / ((snl_i64)nW * nH)) % nT);
    const int h = (int)((idx / ((snl_i64)nW * nH * nT)) % heads);
    const int b = (int)(idx / ((snl_i64)nW * nH * nT * heads));

    const int Ch = C / heads;
    const int Wt = nT < 2 * wt + 1 ? nT : 2 * wt + 1;
    const snl_i64 HW = (snl_i64)H * W;
    const snl_i64 nHW = (snl_i64)nH * nW;

    SearchGeometry<T> g;
    g.off = has_offsets ? offsets + (snl_i64)(b * nT + t) * (Wt - 1) * 2 * nHW + (snl_i64)i * nW + j
                        : nullptr;
    g.slot_stride = 2 * nHW;
    g.dx_stride = nHW;
    g.t = t;
    g.s = snl_window_start(t, nT, wt);
    g.i = i;
    g.j = j;
    g.stride0 = stride0;
    g.ws = ws;
    g.full_ws = full_ws;
    g.stride1 = stride1;
    g.lo_y = lo_y;
    g.hi_y = hi_y;
    g.lo_x = lo_x;
    g.hi_x = hi_x;

    const T* qf = q + ((snl_i64)b * nT + t) * C * HW + (snl_i64)h * Ch * HW;
    const int qy = i * stride0, qx = j * stride0;
    // Invalid candidates: the worst possible score, +inf for l2 and -inf for prod.
    const T inf = snl_inf((T)0);
    const T bad = prod ? -inf : inf;
    // The per-thread list holds at most SNL_TOPK_MAX; the launcher never asks for more.
    if (!write_all && K > SNL_TOPK_MAX) return;

    // Sorted best-first list, scored as "smaller is better" (prod is negated).
    T top_key[SNL_TOPK_MAX];
    int top_n[SNL_TOPK_MAX];
    int filled = 0;

    T* dist_out = dists + idx * K;
    T* ind_out = inds + idx * K * 3;

    int n = 0;
    for (int f = 0; f < Wt; ++f) {
        const int tp = g.s + f;
        const T* kf = k + ((snl_i64)b * nT + tp) * C * HW + (snl_i64)h * Ch * HW;
        T cy, cx;
        g.centre(tp, cy, cx);
        for (int a = 0; a < ws; ++a) {
            const T py = cy + g.cell(a);
            for (int bb = 0; bb < ws; ++bb, ++n) {
                const T px = cx + g.cell(bb);
                const bool valid =
                    full_ws || (py >= (T)0 && py <= (T)(H - 1) && px >= (T)0 && px <= (T)(W - 1));
                const T d = valid ? search_patch_dist(qf, kf, Ch, H, W, qy, qx, py, px, ps, prod) : bad;
                if (write_all) {
                    dist_out[n] = d;
                    ind_out[3 * n] = (T)tp;
                    ind_out[3 * n + 1] = py;
                    ind_out[3 * n + 2] = px;
                    continue;
                }
                // Insertion into the sorted list. Ties keep the earlier candidate first, and the
                // list fills up even with invalid (infinite) candidates, as torch.topk would.
                const T key = prod ? -d : d;
                int pos;
                if (filled < K) {
                    pos = filled++;
                } else if (key < top_key[K - 1]) {
                    pos = K - 1;
                } else {
                    continue;
                }
                while (pos > 0 && key < top_key[pos - 1]) {
                    top_key[pos] = top_key[pos - 1];
                    top_n[pos] = top_n[pos - 1];
                    --pos;
                }
                top_key[pos] = key;
                top_n[pos] = n;
            }
        }
    }
    if (write_all) return;

    const int cells = ws * ws;
    for (int r = 0; r < K; ++r) {
        const int m = top_n[r];
        const int f = m / cells, a = (m % cells) / ws, bb = m % ws;
        const int tp = g.s + f;
        T cy, cx;
        g.centre(tp, cy, cx);
        dist_out[r] = prod ? -top_key[r] : top_key[r];
        ind_out[3 * r] = (T)tp;
        ind_out[3 * r + 1] = cy + g.cell(a);
        ind_out[3 * r + 2] = cx + g.cell(bb);
    }
}

template <typename T>
__device__ __forceinline__ void search_bwd(SNL_SEARCH_BWD_PARAMS(T)) {
    const snl_i64 idx = snl_thread_id();
    const snl_i64 n_matches = (snl_i64)B * heads * nT * nH * nW * K;
    if (idx >= n_matches) return;
    const snl_i64 query = idx / K;
    const int j = (int)(query % nW);
    const int i = (int)((query / nW) % nH);
    const int t = (int)((query / ((snl_i64)nW * nH)) % nT);
    const int h = (int)((query / ((snl_i64)nW * nH * nT)) % heads);
    const int b = (int)(query / ((snl_i64)nW * nH * nT * heads));

    const T g = grad_dists[idx];
    const int tp = snl_frame(inds[3 * idx], nT);
    const T py = inds[3 * idx + 1], px = inds[3 * idx + 2];
    // Zero gradient, or an invalid candidate (its distance is a constant +-inf): nothing flows.
    if (g == (T)0) return;
    if (!full_ws && !(py >= (T)0 && py <= (T)(H - 1) && px >= (T)0 && px <= (T)(W - 1))) return;

    const int Ch = C / heads;
    const snl_i64 HW = (snl_i64)H * W;
    const snl_i64 q_base = ((snl_i64)b * nT + t) * C * HW + (snl_i64)h * Ch * HW;
    const snl_i64 k_base = ((snl_i64)b * nT + tp) * C * HW + (snl_i64)h * Ch * HW;
    const int qy = i * stride0, qx = j * stride0;
    const int half = ps / 2;
    T gy = 0, gx = 0;
    for (int u = -half; u <= half; ++u) {
        const int qrow = snl_reflect(qy + u, H) * W;
        for (int v = -half; v <= half; ++v) {
            const int qo = qrow + snl_reflect(qx + v, W);
            const SnlBilinear<T> bl = snl_bilinear(py + (T)u, px + (T)v, H, W);
            for (int c = 0; c < Ch; ++c) {
                const snl_i64 cq = q_base + c * HW, ck = k_base + c * HW;
                const T qv = q[cq + qo];
                const SnlCorners<T> kc = snl_corners(k + ck, bl);
                const T kv = snl_corners_value(kc, bl);
                // d dist / d q and d dist / d (interpolated k) for this channel and pixel.
                const T dq = prod ? g * kv : (T)2 * g * (qv - kv);
                const T dk = prod ? g * qv : -dq;
                atomicAdd(grad_q + cq + qo, dq);
                snl_bilinear_scatter(grad_k + ck, bl, dk);
                if (need_pos) {
                    gy += dk * snl_corners_dy(kc, bl);
                    gx += dk * snl_corners_dx(kc, bl);
                }
            }
        }
    }
    if (need_pos) {
        grad_pos[2 * idx] = gy;
        grad_pos[2 * idx + 1] = gx;
    }
}

extern "C" __global__ void snl_search_fwd_f32(SNL_SEARCH_FWD_PARAMS(float)) {
    search_fwd<float>(SNL_SEARCH_FWD_ARGS);
}
extern "C" __global__ void snl_search_fwd_f64(SNL_SEARCH_FWD_PARAMS(double)) {
    search_fwd<double>(SNL_SEARCH_FWD_ARGS);
}
extern "C" __global__ void snl_search_bwd_f32(SNL_SEARCH_BWD_PARAMS(float)) {
    search_bwd<float>(SNL_SEARCH_BWD_ARGS);
}
extern "C" __global__ void snl_search_bwd_f64(SNL_SEARCH_BWD_PARAMS(double)) {
    search_bwd<double>(SNL_SEARCH_BWD_ARGS);
}
