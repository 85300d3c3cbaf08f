// The output check's products on the GPU: one thread per (sampled row, input), two float64 chains over the
// columns in order (float32 × float32 products are exact in float64; --fmad=false keeps each add separate),
// the float row decoded as load_row_scalar does and the quantized one as dequantize_row does. Σ‖f‖² stays
// on the CPU threads (one chain in the TypeScript order: check.cc). The two-level-scale type's
// products (kq_check_products) run kquant_check.h's kq_check_pair, the function the CPU test runs too.
#include <cuda_runtime.h>

#include <cstdio>
#include <string>
#include <vector>

#include "../kquant_check.h"
#include "../quant.h"
#include "check_cuda.h"
#include "last_error.cuh"

namespace apl {
namespace cuda {

namespace {

__device__ float raw_at(const uint8_t* p, int64_t i, int dtype) {
  if (dtype == kF32) {
    uint32_t u = (uint32_t)p[4 * i] | ((uint32_t)p[4 * i + 1] << 8) | ((uint32_t)p[4 * i + 2] << 16) |
                 ((uint32_t)p[4 * i + 3] << 24);
    return bits_f32(u);
  }
  uint16_t h = (uint16_t)(p[2 * i] | (p[2 * i + 1] << 8));
  return dtype == kF16 ? f16_to_f32(h) : bf16_to_f32(h);
}

__device__ float param(const uint8_t* p, int64_t i, bool f16) { return raw_at(p, i, f16 ? kF16 : kF32); }

// raw: m rows of input; q/sc/zr: the same m rows of the quantized tensor; x: n × cols.
__global__ void k_products(const uint8_t* raw, int dtype, const uint8_t* q, const uint8_t* sc,
                           const uint8_t* zr, int64_t m, int64_t cols, int bits, int64_t group, bool f16,
                           const float* x, int64_t n, double* y, float* yq) {
  const int64_t k = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (k >= n * m) return;
  const int64_t jj = k / n, i = k % n;
  const int64_t rb = (cols * bits + 7) / 8, gpr = (cols + group - 1) / group;
  const uint8_t* qr = q + jj * rb;
  const int per = 8 / bits;
  const unsigned mask = (1u << bits) - 1;
  const float* xi = x + i * cols;
  double a = 0, aq = 0;
  for (int64_t g = 0; g < gpr; g++) {
    const float s = param(sc, jj * gpr + g, f16), z = param(zr, jj * gpr + g, f16);
    const int64_t end = (g + 1) * group < cols ? (g + 1) * group : cols;
    for (int64_t c = g * group; c < end; c++) {
      const double xv = (double)xi[c];
      const float f = raw_at(raw, jj * cols + c, dtype);
      const unsigned qv = bits == 8 ? qr[c] : (qr[c / per] >> ((c % per) * bits)) & mask;
      const float t = (float)qv - z;
      const float w = t * s;
      a += xv * (double)f;
      aq += xv * (double)w;
    }
  }
  y[i * m + jj] = a;
  yq[i * m + jj] = (float)aq;
}

// raw: m sampled rows of input; t: the same m rows of the quantized tensor (device pointers); x: n × cols.
__global__ void k_kq_products(const uint8_t* raw, int dtype, KqTensor t, const float* x, int64_t n, double* y,
                              float* yq) {
  const int64_t k = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (k >= n * t.rows) return;
  const int64_t jj = k / n, i = k % n;
  double a;
  float aq;
  kq_check_pair(raw, dtype, t, jj, x + i * t.cols, &a, &aq);
  y[i * t.rows + jj] = a;
  yq[i * t.rows + jj] = aq;
}

struct Dev {
  std::vector<void*> p;
  ~Dev() {
    for (void* v : p) cudaFree(v);
  }
  void* get(size_t bytes, cudaError_t* e) {
    void* v = nullptr;
    if (*e == cudaSuccess) *e = cudaMalloc(&v, bytes ? bytes : 1);
    if (v) p.push_back(v);
    return v;
  }
};

}  // namespace

bool check_products(const QuantJob& j, const CheckJob& c, double* y, float* yq, std::string* err) {
  ClearErrorOnReturn clear_on_return;
  const int64_t m = c.m, n = c.n, cols = j.cols;
  if (m == 0 || n == 0) return true;
  const int64_t es = dtype_size(j.dtype), rb = packed_row_bytes(cols, j.bits);
  const int64_t pb = groups_per_row(cols, j.group) * (j.f16 ? 2 : 4);
  // Gather the sampled rows (input, codes, scales, zeros) into contiguous host buffers.
  std::vector<uint8_t> raw((size_t)(m * cols * es)), q((size_t)(m * rb)), sc((size_t)(m * pb)),
      zr((size_t)(m * pb));
  for (int64_t jj = 0; jj < m; jj++) {
    const int64_t r = c.rows[jj];
    memcpy(raw.data() + jj * cols * es, j.data + r * cols * es, (size_t)(cols * es));
    memcpy(q.data() + jj * rb, j.q + r * rb, (size_t)rb);
    memcpy(sc.data() + jj * pb, j.scales + r * pb, (size_t)pb);
    memcpy(zr.data() + jj * pb, j.zeros + r * pb, (size_t)pb);
  }
  cudaError_t e = cudaSuccess;
  Dev d;
  void* draw = d.get(raw.size(), &e);
  void* dq = d.get(q.size(), &e);
  void* dsc = d.get(sc.size(), &e);
  void* dzr = d.get(zr.size(), &e);
  void* dx = d.get((size_t)(n * cols) * 4, &e);
  void* dy = d.get((size_t)(n * m) * 8, &e);
  void* dyq = d.get((size_t)(n * m) * 4, &e);
  if (e == cudaSuccess) e = cudaMemcpy(draw, raw.data(), raw.size(), cudaMemcpyHostToDevice);
  if (e == cudaSuccess) e = cudaMemcpy(dq, q.data(), q.size(), cudaMemcpyHostToDevice);
  if (e == cudaSuccess) e = cudaMemcpy(dsc, sc.data(), sc.size(), cudaMemcpyHostToDevice);
  if (e == cudaSuccess) e = cudaMemcpy(dzr, zr.data(), zr.size(), cudaMemcpyHostToDevice);
  if (e == cudaSuccess) e = cudaMemcpy(dx, c.x, (size_t)(n * cols) * 4, cudaMemcpyHostToDevice);
  if (e == cudaSuccess) {
    const int threads = 128;
    k_products<<<(unsigned)((n * m + threads - 1) / threads), threads>>>(
        (const uint8_t*)draw, j.dtype, (const uint8_t*)dq, (const uint8_t*)dsc, (const uint8_t*)dzr, m, cols,
        j.bits, j.group, j.f16, (const float*)dx, n, (double*)dy, (float*)dyq);
    e = cudaGetLastError();
  }
  if (e == cudaSuccess) e = cudaDeviceSynchronize();
  if (e == cudaSuccess) e = cudaMemcpy(y, dy, (size_t)(n * m) * 8, cudaMemcpyDeviceToHost);
  if (e == cudaSuccess) e = cudaMemcpy(yq, dyq, (size_t)(n * m) * 4, cudaMemcpyDeviceToHost);
  if (e != cudaSuccess) {
    *err = std::string("output check on the GPU: ") + cudaGetErrorString(e);
    return false;
  }
  return true;
}

bool kq_check_products(const KqJob& j, const CheckJob& c, double* y, float* yq, std::string* err) {
  ClearErrorOnReturn clear_on_return;
  const int64_t m = c.m, n = c.n, cols = j.cols;
  if (m == 0 || n == 0) return true;
  const KqGathered g = kq_gather(j, c);
  cudaError_t e = cudaSuccess;
  Dev d;
  auto up = [&](const std::vector<uint8_t>& v) {
    void* p = d.get(v.size(), &e);
    if (e == cudaSuccess && !v.empty()) e = cudaMemcpy(p, v.data(), v.size(), cudaMemcpyHostToDevice);
    return (const uint8_t*)p;
  };
  const uint8_t* draw = up(g.raw);
  KqTensor t{up(g.q), up(g.codes), up(g.d), up(g.dmin), m, cols, j.p};
  void* dx = d.get((size_t)(n * cols) * 4, &e);
  void* dy = d.get((size_t)(n * m) * 8, &e);
  void* dyq = d.get((size_t)(n * m) * 4, &e);
  if (e == cudaSuccess) e = cudaMemcpy(dx, c.x, (size_t)(n * cols) * 4, cudaMemcpyHostToDevice);
  if (e == cudaSuccess) {
    const int threads = 128;
    k_kq_products<<<(unsigned)((n * m + threads - 1) / threads), threads>>>(
        draw, j.dtype, t, (const float*)dx, n, (double*)dy, (float*)dyq);
    e = cudaGetLastError();
  }
  if (e == cudaSuccess) e = cudaDeviceSynchronize();
  if (e == cudaSuccess) e = cudaMemcpy(y, dy, (size_t)(n * m) * 8, cudaMemcpyDeviceToHost);
  if (e == cudaSuccess) e = cudaMemcpy(yq, dyq, (size_t)(n * m) * 4, cudaMemcpyDeviceToHost);
  if (e != cudaSuccess) {
    *err = std::string("output check on the GPU: ") + cudaGetErrorString(e);
    return false;
  }
  return true;
}

}  // namespace cuda
}  // namespace apl
