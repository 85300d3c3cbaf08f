// CUDA versions of the inference linear layers. Packed weights: one thread per (token, group) quantizes the
// activations exactly as infer/ref.h does; one warp per (row, token) computes the row's dot product, lane L
// handling groups L, L+32, …, and the per-group terms are added to the reference's lanes (g % 8) in group
// order through warp shuffles, so the result is the scalar reference's, bit for bit (compiled with
// --fmad=false). Float weights: one warp per (row, token), float32, a tree sum (not the reference order).
#include <cuda_runtime.h>

#include <cstdio>
#include <string>
#include <vector>

#include "../infer/ref.h"
#include "infer.h"

namespace apl {
namespace cuda {

namespace {

__device__ inline float ld_param(const uint8_t* p, int64_t i, bool f16) {
  if (f16) {
    uint16_t h = (uint16_t)p[2 * i] | ((uint16_t)p[2 * i + 1] << 8);
    return f16_to_f32(h);
  }
  uint32_t u = (uint32_t)p[4 * i] | ((uint32_t)p[4 * i + 1] << 8) | ((uint32_t)p[4 * i + 2] << 16) |
               ((uint32_t)p[4 * i + 3] << 24);
  return bits_f32(u);
}

__global__ void act_kernel(const float* x, int64_t n, int64_t cols, int64_t group, int64_t gpr, int8_t* xq,
                           float* dx, int32_t* xsum) {
  int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n * gpr) return;
  int64_t t = i / gpr, g = i % gpr;
  const float* xr = x + t * cols;
  int8_t* q = xq + t * cols;
  int64_t lo = g * group, hi = lo + group < cols ? lo + group : cols;
  float amax = 0.0f;
  for (int64_t c = lo; c < hi; c++) {
    float a = fabsf(xr[c]);
    if (a > amax) amax = a;
  }
  float d = amax / 127.0f;
  float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
  int32_t s = 0;
  for (int64_t c = lo; c < hi; c++) {
    float v = xr[c] * inv;
    v = rintf(v);
    v = v > 127.0f ? 127.0f : (v < -127.0f ? -127.0f : v);
    int iv = (int)v;
    q[c] = (int8_t)iv;
    s += iv;
  }
  dx[i] = d;
  xsum[i] = s;
}

__global__ void qdot_kernel(const uint8_t* qw, const uint8_t* sc, const uint8_t* zp, int64_t rows,
                            int64_t cols, int bits, int64_t group, bool f16, int64_t n, const int8_t* xq,
                            const float* dx, const int32_t* xsum, float* y) {
  int64_t warp = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) / 32;
  int lane = threadIdx.x & 31;
  if (warp >= rows * n) return;
  int64_t r = warp % rows, t = warp / rows;
  int64_t gpr = (cols + group - 1) / group, rb = (cols * bits + 7) / 8;
  const uint8_t* qrow = qw + r * rb;
  const int8_t* xt = xq + t * cols;
  float acc = 0.0f;  // lanes 0..7 hold the reference's acc[lane]
  for (int64_t g0 = 0; g0 < gpr; g0 += 32) {
    int64_t g = g0 + lane;
    float term = 0.0f;
    bool have = g < gpr;
    if (have) {
      int64_t lo = g * group, hi = lo + group < cols ? lo + group : cols;
      int32_t isum = 0;
      for (int64_t c = lo; c < hi; c++) isum += (int32_t)infer::packed_at(qrow, c, bits) * (int32_t)xt[c];
      float s = ld_param(sc, r * gpr + g, f16), z = ld_param(zp, r * gpr + g, f16);
      float d = s * dx[t * gpr + g];
      float a = (float)isum;
      float xs = (float)xsum[t * gpr + g];
      float b = z * xs;
      float tt = a - b;
      term = d * tt;
    }
    for (int k = 0; k < 4; k++) {
      float v = __shfl_sync(0xffffffffu, term, (lane & 7) + 8 * k);
      if (lane < 8 && g0 + lane + 8 * k < gpr) acc += v;
    }
  }
  float l[8];
  for (int k = 0; k < 8; k++) l[k] = __shfl_sync(0xffffffffu, acc, k);
  if (lane == 0) y[t * rows + r] = reduce8(l);
}

__global__ void fdot_kernel(const uint8_t* w, int dtype, int64_t rows, int64_t cols, int64_t n,
                            const float* x, float* y) {
  int64_t warp = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) / 32;
  int lane = threadIdx.x & 31;
  if (warp >= rows * n) return;
  int64_t r = warp % rows, t = warp / rows;
  const uint8_t* row = w + r * cols * (dtype == kF32 ? 4 : 2);
  float s = 0.0f;
  for (int64_t c = lane; c < cols; c += 32) {
    float v;
    if (dtype == kF32) {
      v = reinterpret_cast<const float*>(row)[c];
    } else {
      uint16_t h = reinterpret_cast<const uint16_t*>(row)[c];
      v = dtype == kF16 ? f16_to_f32(h) : bf16_to_f32(h);
    }
    s += v * x[t * cols + c];
  }
  for (int o = 16; o > 0; o >>= 1) s += __shfl_down_sync(0xffffffffu, s, o);
  if (lane == 0) y[t * rows + r] = s;
}

struct Buffers {
  std::vector<void*> ptrs;
  ~Buffers() {
    for (void* p : ptrs) cudaFree(p);
  }
  template <class T>
  T* alloc(size_t bytes, cudaError_t* e) {
    void* p = nullptr;
    if (*e == cudaSuccess) *e = cudaMalloc(&p, bytes ? bytes : 1);
    if (p) ptrs.push_back(p);
    return static_cast<T*>(p);
  }
};

}  // namespace

bool infer_linear(const infer::Linear& w, const float* x, int64_t n, float* y, std::string* err) {
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0) {
    *err = e != cudaSuccess ? cudaGetErrorString(e) : "no CUDA device";
    return false;
  }
  if (n == 0) return true;
  Buffers b;
  const int threads = 256;
  const int64_t warps = w.rows * n, blocks = (warps * 32 + threads - 1) / threads;
  float* dxin = b.alloc<float>((size_t)(n * w.cols) * 4, &e);
  float* dy = b.alloc<float>((size_t)(n * w.rows) * 4, &e);
  if (e == cudaSuccess) e = cudaMemcpy(dxin, x, (size_t)(n * w.cols) * 4, cudaMemcpyHostToDevice);
  if (w.kind == 0) {
    int64_t gpr = w.gpr(), pb = w.rows * gpr * (w.f16 ? 2 : 4), qb = w.rows * w.row_bytes();
    uint8_t* dq = b.alloc<uint8_t>((size_t)qb, &e);
    uint8_t* ds = b.alloc<uint8_t>((size_t)pb, &e);
    uint8_t* dz = b.alloc<uint8_t>((size_t)pb, &e);
    int8_t* dxq = b.alloc<int8_t>((size_t)(n * w.cols), &e);
    float* ddx = b.alloc<float>((size_t)(n * gpr) * 4, &e);
    int32_t* dxs = b.alloc<int32_t>((size_t)(n * gpr) * 4, &e);
    if (e == cudaSuccess) e = cudaMemcpy(dq, w.q, (size_t)qb, cudaMemcpyHostToDevice);
    if (e == cudaSuccess) e = cudaMemcpy(ds, w.scales, (size_t)pb, cudaMemcpyHostToDevice);
    if (e == cudaSuccess) e = cudaMemcpy(dz, w.zeros, (size_t)pb, cudaMemcpyHostToDevice);
    if (e == cudaSuccess) {
      act_kernel<<<(unsigned)((n * gpr + threads - 1) / threads), threads>>>(dxin, n, w.cols, w.group, gpr,
                                                                             dxq, ddx, dxs);
      qdot_kernel<<<(unsigned)blocks, threads>>>(dq, ds, dz, w.rows, w.cols, w.bits, w.group, w.f16, n, dxq,
                                                 ddx, dxs, dy);
      e = cudaGetLastError();
    }
  } else {
    size_t bytes = (size_t)(w.rows * w.cols * dtype_size(w.dtype));
    uint8_t* dw = b.alloc<uint8_t>(bytes, &e);
    if (e == cudaSuccess) e = cudaMemcpy(dw, w.data, bytes, cudaMemcpyHostToDevice);
    if (e == cudaSuccess) {
      fdot_kernel<<<(unsigned)blocks, threads>>>(dw, w.dtype, w.rows, w.cols, n, dxin, dy);
      e = cudaGetLastError();
    }
  }
  if (e == cudaSuccess) e = cudaDeviceSynchronize();
  if (e == cudaSuccess) e = cudaMemcpy(y, dy, (size_t)(n * w.rows) * 4, cudaMemcpyDeviceToHost);
  if (e != cudaSuccess) {
    *err = cudaGetErrorString(e);
    return false;
  }
  return true;
}

}  // namespace cuda
}  // namespace apl
