// CUDA backend: the reference kernels of quant.h compiled for the device — eight threads per group with the
// reference's lane order (or, with APL_CUDA_ONE_THREAD=1, one thread per group running the scalar code) — so
// q, scales and zeros match the CPU bit for bit; built with --fmad=false so no multiply-add is fused. Linked
// with the static CUDA runtime, so the addon loads where there is no GPU or driver.
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "../quant.h"
#include "cuda.h"
#include "last_error.cuh"

namespace apl {
namespace cuda {

namespace {

__global__ void k_convert(const uint8_t* raw, int dtype, int64_t n, float* out,
                          unsigned long long* first_bad) {
  int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  int64_t stride = (int64_t)gridDim.x * blockDim.x;
  for (; i < n; i += stride) {
    float v;
    if (dtype == kF32) {
      v = reinterpret_cast<const float*>(raw)[i];
    } else {
      uint16_t h = reinterpret_cast<const uint16_t*>(raw)[i];
      v = dtype == kF16 ? f16_to_f32(h) : bf16_to_f32(h);
    }
    out[i] = v;
    if (!is_finite_f32(v)) atomicMin(first_bad, (unsigned long long)i);
  }
}

__global__ void k_groups(const float* x, int64_t rows, int64_t cols, int64_t group, int64_t gpr,
                         GroupParams p, uint8_t* qv, uint8_t* scales, uint8_t* zeros,
                         unsigned long long* first_overflow, double* macc) {
  int64_t gi = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (gi >= rows * gpr) return;
  int64_t r = gi / gpr, g = gi % gpr;
  int64_t off = r * cols + g * group;
  int n = (int)(cols - g * group < group ? cols - g * group : group);
  float s, z;
  int st = quantize_group<ScalarOps>(x + off, n, p, qv + off, &s, &z);
  if (st != kOk) {
    atomicMin(first_overflow, (unsigned long long)off);
    return;
  }
  if (p.f16) {
    reinterpret_cast<uint16_t*>(scales)[gi] = f32_to_f16(s);
    reinterpret_cast<uint16_t*>(zeros)[gi] = f32_to_f16(z);
  } else {
    reinterpret_cast<float*>(scales)[gi] = s;
    reinterpret_cast<float*>(zeros)[gi] = z;
  }
  if (macc) {
    MetricsAcc m;
    for (int i = 0; i < n; i++) {
      float w = ((float)qv[off + i] - z) * s;
      m.add(x[off + i], w);
    }
    double* o = macc + gi * 5;
    o[0] = m.sdd;
    o[1] = m.sxx;
    o[2] = m.sww;
    o[3] = m.sxw;
    o[4] = m.max_abs;
  }
}

// Eight threads per group ("octet"): thread t holds reference lane t (elements t, t+8, ...), so the lane sums
// and their reduction ((l0+l4)+(l2+l6))+((l1+l5)+(l3+l7)) are exactly the reference's; the per-group scalar
// math runs redundantly (identically) in all eight. Loads are coalesced 32-byte segments. quantize_group is
// the same template.
struct OctetOps {
  __device__ static unsigned mask() { return 0xffu << (threadIdx.x & 24u); }
  __device__ static int lane() { return (int)(threadIdx.x & 7u); }
  /** Reference reduction of the eight lane values, broadcast to the octet. */
  __device__ static float reduce(float v) {
    unsigned m = mask();
    int t = lane();
    float o = __shfl_down_sync(m, v, 4, 8);
    if (t < 4) v = v + o;
    o = __shfl_down_sync(m, v, 2, 8);
    if (t < 2) v = v + o;
    o = __shfl_down_sync(m, v, 1, 8);
    if (t < 1) v = v + o;
    return __shfl_sync(m, v, 0, 8);
  }
  __device__ static float round_stored(float v, bool f16) { return apl::round_stored(v, f16); }
  __device__ static void minmax(const float* x, int n, float* mn, float* mx) {
    unsigned m = mask();
    float a = x[0], b = x[0];
    for (int i = lane(); i < n; i += 8) {
      float v = x[i];
      if (v < a) a = v;
      if (v > b) b = v;
    }
    for (int d = 4; d >= 1; d >>= 1) {
      float oa = __shfl_xor_sync(m, a, d, 8), ob = __shfl_xor_sync(m, b, d, 8);
      if (oa < a) a = oa;
      if (ob > b) b = ob;
    }
    *mn = a;
    *mx = b;
  }
  __device__ static float abs_sum(const float* x, int n) {
    float l = 0;
    for (int i = lane(); i < n; i += 8) l += fabsf(x[i]);
    return reduce(l);
  }
  __device__ static void sums_x(const float* x, int n, float* sx, float* sxx) {
    float a = 0, b = 0;
    for (int i = lane(); i < n; i += 8) {
      float v = x[i];
      a += v;
      float vv = v * v;
      b += vv;
    }
    *sx = reduce(a);
    *sxx = reduce(b);
  }
  __device__ static void minmax_sums(const float* x, int n, float* mn, float* mx, float* sx, float* sxx) {
    minmax(x, n, mn, mx);
    sums_x(x, n, sx, sxx);
  }
  __device__ static void asym_pass(const float* x, int n, float inv, float off, float qmax, float* sq,
                                   float* sqq, float* sqx) {
    float a = 0, b = 0, c = 0;
    for (int i = lane(); i < n; i += 8) {
      float v = x[i];
      float t = v * inv;
      t = t + off;
      float q = clampq(rintf(t), qmax);
      a += q;
      float qq = q * q;
      b += qq;
      float qv = q * v;
      c += qv;
    }
    *sq = reduce(a);
    *sqq = reduce(b);
    *sqx = reduce(c);
  }
  __device__ static void asym_pass2(const float* x, int n, const float* inv, const float* off, float qmax,
                                    float* sq, float* sqq, float* sqx) {
    for (int k = 0; k < 2; k++) asym_pass(x, n, inv[k], off[k], qmax, sq + k, sqq + k, sqx + k);
  }
  __device__ static void sym_pass(const float* x, int n, float inv, float half, float qmax, float* scc,
                                  float* scx) {
    float a = 0, b = 0;
    for (int i = lane(); i < n; i += 8) {
      float v = x[i];
      float t = v * inv;
      t = t + half;
      float q = clampq(rintf(t), qmax);
      float c = q - half;
      float cc = c * c;
      a += cc;
      float cv = c * v;
      b += cv;
    }
    *scc = reduce(a);
    *scx = reduce(b);
  }
  __device__ static void assign(const float* x, int n, float inv, float z, float qmax, uint8_t* qv) {
    for (int i = lane(); i < n; i += 8) {
      float t = x[i] * inv;
      t = t + z;
      qv[i] = (uint8_t)clampq(rintf(t), qmax);
    }
  }
  __device__ static void assign_sign(const float* x, int n, uint8_t* qv) {
    for (int i = lane(); i < n; i += 8) qv[i] = x[i] > 0.0f ? 1 : 0;
  }
};

/**
 * The end of an octet's group gi (elements xg[0..n), at `off` in the tensor), after quantize_group succeeded:
 * lane 0 stores the scale and zero point, and with metrics the octet reduces its error sums into macc[gi].
 */
__device__ inline void finish_octet_group(const float* xg, int n, int64_t gi, int64_t off, const uint8_t* qv,
                                          float s, float z, const GroupParams& p, uint8_t* scales,
                                          uint8_t* zeros, double* macc) {
  int t = OctetOps::lane();
  unsigned mk = OctetOps::mask();
  if (t == 0) {
    if (p.f16) {
      reinterpret_cast<uint16_t*>(scales)[gi] = f32_to_f16(s);
      reinterpret_cast<uint16_t*>(zeros)[gi] = f32_to_f16(z);
    } else {
      reinterpret_cast<float*>(scales)[gi] = s;
      reinterpret_cast<float*>(zeros)[gi] = z;
    }
  }
  if (macc) {
    MetricsAcc m;
    for (int i = t; i < n; i += 8) {
      float w = ((float)qv[off + i] - z) * s;
      m.add(xg[i], w);
    }
    for (int d = 4; d >= 1; d >>= 1) {
      m.sdd += __shfl_xor_sync(mk, m.sdd, d, 8);
      m.sxx += __shfl_xor_sync(mk, m.sxx, d, 8);
      m.sww += __shfl_xor_sync(mk, m.sww, d, 8);
      m.sxw += __shfl_xor_sync(mk, m.sxw, d, 8);
      double o = __shfl_xor_sync(mk, m.max_abs, d, 8);
      if (o > m.max_abs) m.max_abs = o;
    }
    if (t == 0) {
      double* o = macc + gi * 5;
      o[0] = m.sdd;
      o[1] = m.sxx;
      o[2] = m.sww;
      o[3] = m.sxw;
      o[4] = m.max_abs;
    }
  }
}

__global__ void k_groups8(const float* x, int64_t rows, int64_t cols, int64_t group, int64_t gpr,
                          GroupParams p, uint8_t* qv, uint8_t* scales, uint8_t* zeros,
                          unsigned long long* first_overflow, double* macc) {
  int64_t gi = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 3;
  if (gi >= rows * gpr) return;  // whole octets leave together (gi is the same for all eight)
  int64_t r = gi / gpr, g = gi % gpr;
  int64_t off = r * cols + g * group;
  int n = (int)(cols - g * group < group ? cols - g * group : group);
  float s, z;
  int st = quantize_group<OctetOps>(x + off, n, p, qv + off, &s, &z);
  int t = OctetOps::lane();
  if (st != kOk) {
    if (t == 0) atomicMin(first_overflow, (unsigned long long)off);
    return;
  }
  finish_octet_group(x + off, n, gi, off, qv, s, z, p, scales, zeros, macc);
}

/** Input element i of a raw f32/f16/bf16 buffer as float32. */
__device__ inline float load_raw(const uint8_t* raw, int dtype, int64_t i) {
  if (dtype == kF32) return reinterpret_cast<const float*>(raw)[i];
  uint16_t h = reinterpret_cast<const uint16_t*>(raw)[i];
  return dtype == kF16 ? f16_to_f32(h) : bf16_to_f32(h);
}

constexpr int kStagedThreads = 128;   // 16 octets per block
constexpr int kStagedMaxGroup = 512;  // 16 × 512 floats = 32 KB of shared memory

/**
 * The octet kernel reading the raw input directly: each octet converts its group into shared memory (checking
 * for NaN/Inf on the way), then runs the same quantize_group<OctetOps> on it. No float32 copy of the tensor
 * is made.
 */
__global__ void k_groups8_staged(const uint8_t* raw, int dtype, int64_t rows, int64_t cols, int64_t group,
                                 int64_t gpr, GroupParams p, uint8_t* qv, uint8_t* scales, uint8_t* zeros,
                                 unsigned long long* first_bad, unsigned long long* first_overflow,
                                 double* macc) {
  extern __shared__ float staged[];
  int64_t gi = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 3;
  if (gi >= rows * gpr) return;  // whole octets leave together
  float* xs = staged + (threadIdx.x >> 3) * group;
  int64_t r = gi / gpr, g = gi % gpr;
  int64_t off = r * cols + g * group;
  int n = (int)(cols - g * group < group ? cols - g * group : group);
  int t = OctetOps::lane();
  unsigned mk = OctetOps::mask();
  bool bad = false;
  for (int i = t; i < n; i += 8) {
    float v = load_raw(raw, dtype, off + i);
    xs[i] = v;
    if (!is_finite_f32(v)) {
      atomicMin(first_bad, (unsigned long long)(off + i));
      bad = true;
    }
  }
  __syncwarp(mk);
  if (__any_sync(mk, bad)) return;
  float s, z;
  int st = quantize_group<OctetOps>(xs, n, p, qv + off, &s, &z);
  if (st != kOk) {
    if (t == 0) atomicMin(first_overflow, (unsigned long long)off);
    return;
  }
  finish_octet_group(xs, n, gi, off, qv, s, z, p, scales, zeros, macc);
}

__global__ void k_pack(const uint8_t* qv, int64_t rows, int64_t cols, int bits, int64_t row_bytes,
                       uint8_t* q) {
  int64_t b = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (b >= rows * row_bytes) return;
  int64_t r = b / row_bytes, k = b % row_bytes;
  int per = 8 / bits;
  unsigned v = 0;
  for (int i = 0; i < per; i++) {
    int64_t c = k * per + i;
    if (c < cols) v |= (unsigned)qv[r * cols + c] << (i * bits);
  }
  q[b] = (uint8_t)v;
}

/** APL_CUDA_ONE_THREAD=1 selects the one-thread-per-group kernel (the literal reference); default: octets. */
bool octets() {
  const char* v = getenv("APL_CUDA_ONE_THREAD");
  return !(v && v[0] == '1');
}

struct DevBuf {
  void* p = nullptr;
  ~DevBuf() {
    if (p) cudaFree(p);
  }
};

#define CU(call)                                                 \
  do {                                                           \
    cudaError_t e_ = (call);                                     \
    if (e_ != cudaSuccess) {                                     \
      *err = std::string(#call) + ": " + cudaGetErrorString(e_); \
      return -1;                                                 \
    }                                                            \
  } while (0)

}  // namespace

bool available(std::string* name, std::string* reason) {
  ClearErrorOnReturn clear_on_return;
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    *reason = std::string("no usable CUDA device: ") + cudaGetErrorString(e);
    return false;
  }
  if (n == 0) {
    *reason = "no CUDA device found";
    return false;
  }
  cudaDeviceProp prop;
  e = cudaGetDeviceProperties(&prop, 0);
  if (e != cudaSuccess) {
    *reason = std::string("cudaGetDeviceProperties: ") + cudaGetErrorString(e);
    return false;
  }
  *name = prop.name;
  return true;
}

int quantize(const QuantJob& j, MetricsAcc* m, int64_t* bad, std::string* err, float* kernel_ms) {
  ClearErrorOnReturn clear_on_return;
  int64_t n = j.rows * j.cols;
  int64_t gpr = groups_per_row(j.cols, j.group);
  int64_t ngroups = j.rows * gpr;
  int64_t rb = packed_row_bytes(j.cols, j.bits);
  size_t in_bytes = (size_t)n * dtype_size(j.dtype);
  size_t pbytes = (size_t)ngroups * (j.f16 ? 2 : 4);
  bool staged = octets() && j.group <= kStagedMaxGroup;
  DevBuf raw, x, qv, q, sc, zr, flags, macc;
  CU(cudaMalloc(&raw.p, in_bytes ? in_bytes : 1));
  if (!staged) CU(cudaMalloc(&x.p, (size_t)n * 4 + 4));
  CU(cudaMalloc(&qv.p, (size_t)n + 1));
  CU(cudaMalloc(&q.p, (size_t)(j.rows * rb) + 1));
  CU(cudaMalloc(&sc.p, pbytes + 1));
  CU(cudaMalloc(&zr.p, pbytes + 1));
  CU(cudaMalloc(&flags.p, 2 * sizeof(unsigned long long)));
  if (m) CU(cudaMalloc(&macc.p, (size_t)ngroups * 5 * sizeof(double) + 8));
  unsigned long long init[2] = {~0ull, ~0ull};
  CU(cudaMemcpy(flags.p, init, sizeof init, cudaMemcpyHostToDevice));
  CU(cudaMemcpy(raw.p, j.data, in_bytes, cudaMemcpyHostToDevice));
  cudaEvent_t e0, e1;
  CU(cudaEventCreate(&e0));
  CU(cudaEventCreate(&e1));
  CU(cudaEventRecord(e0));
  unsigned long long* fl = (unsigned long long*)flags.p;
  if (n > 0) {
    GroupParams p{j.bits, j.symmetric, j.optimized, j.f16};
    if (staged) {
      size_t smem = (size_t)(kStagedThreads / 8) * (size_t)j.group * sizeof(float);
      unsigned blocks = (unsigned)((ngroups * 8 + kStagedThreads - 1) / kStagedThreads);
      k_groups8_staged<<<blocks, kStagedThreads, smem>>>(
          (const uint8_t*)raw.p, j.dtype, j.rows, j.cols, j.group, gpr, p, (uint8_t*)qv.p, (uint8_t*)sc.p,
          (uint8_t*)zr.p, fl, fl + 1, m ? (double*)macc.p : nullptr);
    } else {
      int blocks = (int)((n + 255) / 256 < 65535 * 8 ? (n + 255) / 256 : 65535 * 8);
      k_convert<<<blocks, 256>>>((const uint8_t*)raw.p, j.dtype, n, (float*)x.p, fl);
      if (octets())
        k_groups8<<<(unsigned)((ngroups * 8 + 255) / 256), 256>>>(
            (const float*)x.p, j.rows, j.cols, j.group, gpr, p, (uint8_t*)qv.p, (uint8_t*)sc.p,
            (uint8_t*)zr.p, fl + 1, m ? (double*)macc.p : nullptr);
      else
        k_groups<<<(unsigned)((ngroups + 127) / 128), 128>>>(
            (const float*)x.p, j.rows, j.cols, j.group, gpr, p, (uint8_t*)qv.p, (uint8_t*)sc.p,
            (uint8_t*)zr.p, fl + 1, m ? (double*)macc.p : nullptr);
    }
    k_pack<<<(unsigned)((j.rows * rb + 255) / 256), 256>>>((const uint8_t*)qv.p, j.rows, j.cols, j.bits, rb,
                                                           (uint8_t*)q.p);
  }
  CU(cudaGetLastError());
  CU(cudaEventRecord(e1));
  CU(cudaEventSynchronize(e1));
  if (kernel_ms) CU(cudaEventElapsedTime(kernel_ms, e0, e1));
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  unsigned long long res[2];
  CU(cudaMemcpy(res, flags.p, sizeof res, cudaMemcpyDeviceToHost));
  if (res[0] != ~0ull) {
    *bad = (int64_t)res[0];
    return kNonFinite;
  }
  if (res[1] != ~0ull) {
    *bad = (int64_t)res[1];
    return kScaleOverflow;
  }
  CU(cudaMemcpy(j.q, q.p, (size_t)(j.rows * rb), cudaMemcpyDeviceToHost));
  CU(cudaMemcpy(j.scales, sc.p, pbytes, cudaMemcpyDeviceToHost));
  CU(cudaMemcpy(j.zeros, zr.p, pbytes, cudaMemcpyDeviceToHost));
  if (m) {
    std::vector<double> h((size_t)ngroups * 5);
    CU(cudaMemcpy(h.data(), macc.p, h.size() * sizeof(double), cudaMemcpyDeviceToHost));
    for (int64_t g = 0; g < ngroups; g++) {
      MetricsAcc a;
      a.sdd = h[(size_t)g * 5];
      a.sxx = h[(size_t)g * 5 + 1];
      a.sww = h[(size_t)g * 5 + 2];
      a.sxw = h[(size_t)g * 5 + 3];
      a.max_abs = h[(size_t)g * 5 + 4];
      m->merge(a);
    }
  }
  return kOk;
}

}  // namespace cuda
}  // namespace apl
