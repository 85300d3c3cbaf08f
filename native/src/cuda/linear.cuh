// The CUDA linear-layer kernels, on device buffers: int8 activations (one thread per (token, group)), packed
// rows, groupwise and kquant (one warp per (row, tile of T tokens): the integer dot of a group is formed once
// per weight value for all T tokens, then combined in the reference's lane order, bit-exact with
// infer/ref.h's qdot_ref and infer/kquant_ref.h's kq_qdot_ref), float rows (eight threads per (row, tile of T
// tokens), fdot_ref's eight chains then reduce8: bit-exact with the scalar kernel). T = 1 for decode, 8 for
// prompts. Index math and per-element operations: gpu_index.h (tested on the host). Included by infer.cu and
// forward.cu (each gets its own copy of these kernels).
#pragma once

#include <cuda_runtime.h>

#include "gpu_index.h"

namespace apl {
namespace cuda {
namespace {

constexpr int kLinThreads = 256;

__global__ void k_act(const float* x, int64_t n, int64_t cols, int64_t group, int64_t gpr, int8_t* xq,
                      float* dx, int32_t* xsum) {
  int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n * gpr) return;
  int64_t t = i / gpr, g = i % gpr;
  dx[i] = gpu::act_group(x + t * cols, g * group, gpu::group_end(g, group, cols), xq + t * cols, xsum + i);
}

// KQ: a kquant weight (kind 2): groups of kq_group, s and z from the codes and super-block scales
// (gpu::kq_sz), kq_combine_group's term; bit-exact with infer/kquant_ref.h's kq_qdot_ref, as the groupwise
// one is with qdot_ref.
template <int T, bool KQ = false>
__global__ void k_qdot(gpu::DevLinear w, int64_t n, const int8_t* xq, const float* dx, const int32_t* xsum,
                       float* y) {
  int64_t warp = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) / 32;
  int lane = threadIdx.x & 31;
  if (warp >= gpu::warp_tasks(w.rows, n, T)) return;  // whole warps leave together
  int64_t r, t0;
  gpu::warp_task(warp, w.rows, T, &r, &t0);
  const int64_t cols = w.cols, group = KQ ? w.kq_group : w.group, gpr = gpu::groups(cols, group);
  const uint8_t* qrow = w.q + r * gpu::row_bytes(cols, w.bits);
  float acc[T];
  for (int t = 0; t < T; t++) acc[t] = 0.0f;
  for (int64_t g0 = 0; g0 < gpr; g0 += 32) {
    const int64_t g = g0 + lane;
    const bool have = g < gpr;
    int32_t isum[T];
    for (int t = 0; t < T; t++) isum[t] = 0;
    float s = 0.0f, z = 0.0f;
    if (have) {
      const int64_t lo = g * group, hi = gpu::group_end(g, group, cols);
      for (int64_t c = lo; c < hi; c++) {
        int32_t q = (int32_t)infer::packed_at(qrow, c, w.bits);
        for (int t = 0; t < T; t++)
          if (t0 + t < n) isum[t] += q * (int32_t)xq[(t0 + t) * cols + c];
      }
      if (KQ) {
        gpu::kq_sz(w, r, g, &s, &z);
      } else {
        s = gpu::param_at(w.scales, r * gpr + g, w.f16);
        z = gpu::param_at(w.zeros, r * gpr + g, w.f16);
      }
    }
    for (int t = 0; t < T; t++) {
      float term = 0.0f;
      if (have && t0 + t < n) {
        const int64_t gi = (t0 + t) * gpr + g;
        term = KQ ? gpu::kq_term(isum[t], s, z, dx[gi], xsum[gi])
                  : gpu::group_term(isum[t], s, z, dx[gi], xsum[gi]);
      }
      for (int k = 0; k < 4; k++) {
        float v = __shfl_sync(0xffffffffu, term, gpu::src_lane(lane, k));
        if (gpu::lane_takes(g0, lane, k, gpr)) acc[t] += v;
      }
    }
  }
  for (int t = 0; t < T; t++) {
    float l[8];
    for (int k = 0; k < 8; k++) l[k] = __shfl_sync(0xffffffffu, acc[t], k);
    if (lane == 0 && t0 + t < n) y[(t0 + t) * w.rows + r] = reduce8(l);
  }
}

template <int T>
__global__ void k_fdot(gpu::DevLinear w, int64_t n, const float* x, float* y) {
  const int64_t tid = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  const int64_t oct = tid / 8;
  const int k = (int)(tid & 7);
  const bool live = oct < gpu::warp_tasks(w.rows, n, T);
  int64_t r = 0, t0 = 0;
  if (live) gpu::octet_task(oct, w.rows, T, &r, &t0);
  float acc[T];
  for (int t = 0; t < T; t++) acc[t] = 0.0f;
  if (live)
    for (int64_t c = k; c < w.cols; c += 8)
      for (int t = 0; t < T; t++)
        if (t0 + t < n) {
          float p = gpu::fdot_product(w, r, c, x + (t0 + t) * w.cols);
          acc[t] += p;
        }
  // Octet shuffles: every lane of the warp takes part (no early return above).
  const unsigned base = (unsigned)(threadIdx.x & 24u);
  for (int t = 0; t < T; t++) {
    float l[8];
    for (int j = 0; j < 8; j++) l[j] = __shfl_sync(0xffffffffu, acc[t], (int)base + j);
    if (live && k == 0 && t0 + t < n) y[(t0 + t) * w.rows + r] = reduce8(l);
  }
}

/**
 * *d = w on the device: each array of w copied by up(host, bytes, &device), the caller's allocator and copy
 * (the forward pass's shares one copy between tied weights). Packed (kind 0), kquant (kind 2) or float (kind
 * 1).
 */
template <class Up>
inline cudaError_t device_linear(const infer::Linear& w, gpu::DevLinear* d, Up up) {
  d->kind = w.kind;
  d->rows = w.rows;
  d->cols = w.cols;
  const void* p = nullptr;
  cudaError_t e;
  if (w.kind == 0) {
    d->bits = w.bits;
    d->group = w.group;
    d->f16 = w.f16;
    const size_t pb = (size_t)(w.rows * w.gpr() * (w.f16 ? 2 : 4));
    if ((e = up(w.q, (size_t)(w.rows * w.row_bytes()), &p)) != cudaSuccess) return e;
    d->q = (const uint8_t*)p;
    if ((e = up(w.scales, pb, &p)) != cudaSuccess) return e;
    d->scales = (const uint8_t*)p;
    if ((e = up(w.zeros, pb, &p)) != cudaSuccess) return e;
    d->zeros = (const uint8_t*)p;
    return cudaSuccess;
  }
  if (w.kind == 2) {
    d->bits = w.bits;
    d->kq_group = w.kq_group;
    d->kq_super = w.kq_super;
    d->kq_sbits = w.kq_sbits;
    d->kq_mbits = w.kq_mbits;
    const int64_t groups = gpu::groups(w.cols, w.kq_group), supers = gpu::groups(w.cols, w.kq_super);
    const size_t cb = (size_t)(w.rows * ((groups * (w.kq_sbits + w.kq_mbits) + 7) / 8));
    if ((e = up(w.q, (size_t)(w.rows * w.row_bytes()), &p)) != cudaSuccess) return e;
    d->q = (const uint8_t*)p;
    if ((e = up(w.codes, cb, &p)) != cudaSuccess) return e;
    d->codes = (const uint8_t*)p;
    if ((e = up(w.kd, (size_t)(w.rows * supers * 2), &p)) != cudaSuccess) return e;
    d->kd = (const uint8_t*)p;
    if ((e = up(w.kdmin, (size_t)(w.rows * supers * 2), &p)) != cudaSuccess) return e;
    d->kdmin = (const uint8_t*)p;
    return cudaSuccess;
  }
  d->dtype = w.dtype;
  e = up(w.data, (size_t)(w.rows * w.cols * dtype_size(w.dtype)), &p);
  d->data = (const uint8_t*)p;
  return e;
}

/** Groups per row of a packed weight's int8 activations (kquant: of kq_group), 0 for a float weight. */
inline int64_t act_groups(const gpu::DevLinear& w) {
  return w.kind == 0 ? gpu::groups(w.cols, w.group) : w.kind == 2 ? gpu::groups(w.cols, w.kq_group) : 0;
}

/** Scratch for the activations of up to `n` tokens of a weight's layout. */
struct ActBuffers {
  int8_t* xq = nullptr;
  float* dx = nullptr;
  int32_t* xsum = nullptr;
};

/** y (n × rows, device) = x (n × cols, device) · Ŵᵀ on the current stream; act holds n·cols / n·gpr entries.
 */
inline cudaError_t launch_linear(const gpu::DevLinear& w, const float* x, int64_t n, float* y,
                                 const ActBuffers& act) {
  if (n <= 0) return cudaSuccess;
  const int T = n == 1 ? 1 : 8;
  const int64_t tasks = gpu::warp_tasks(w.rows, n, T);
  if (const int64_t gpr = act_groups(w)) {  // packed: int8 activations per group, integer dot products
    const int64_t group = w.kind == 2 ? w.kq_group : w.group;
    k_act<<<(unsigned)((n * gpr + kLinThreads - 1) / kLinThreads), kLinThreads>>>(x, n, w.cols, group, gpr,
                                                                                  act.xq, act.dx, act.xsum);
    const unsigned blocks = (unsigned)((tasks * 32 + kLinThreads - 1) / kLinThreads);
    if (w.kind == 2) {
      if (T == 1)
        k_qdot<1, true><<<blocks, kLinThreads>>>(w, n, act.xq, act.dx, act.xsum, y);
      else
        k_qdot<8, true><<<blocks, kLinThreads>>>(w, n, act.xq, act.dx, act.xsum, y);
    } else if (T == 1) {
      k_qdot<1><<<blocks, kLinThreads>>>(w, n, act.xq, act.dx, act.xsum, y);
    } else {
      k_qdot<8><<<blocks, kLinThreads>>>(w, n, act.xq, act.dx, act.xsum, y);
    }
  } else {
    const unsigned blocks = (unsigned)((tasks * 8 + kLinThreads - 1) / kLinThreads);
    if (T == 1)
      k_fdot<1><<<blocks, kLinThreads>>>(w, n, x, y);
    else
      k_fdot<8><<<blocks, kLinThreads>>>(w, n, x, y);
  }
  return cudaGetLastError();
}

}  // namespace
}  // namespace cuda
}  // namespace apl
