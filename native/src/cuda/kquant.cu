// CUDA path of the two-level-scale type: the input is widened to float32 on the device, then one thread per
// (row, super-block) runs the scalar reference of kquant.h (KqScalarOps), so the results are the CPU's bit
// for bit (built with --fmad=false). Packing and metrics run on the host from the per-element q and per-group
// codes copied back.
#include <cuda_runtime.h>

#include <string>
#include <vector>

#include "../kquant.h"
#include "kquant_cuda.h"
#include "last_error.cuh"

namespace apl {
namespace cuda {

namespace {

__global__ void kq_widen(const uint8_t* raw, int dtype, int64_t n, float* out,
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

__global__ void kq_supers(const float* x, int64_t rows, int64_t cols, KqParams p, int64_t nsb, int64_t gpr,
                          uint8_t* qv, uint8_t* sc, uint8_t* mc, uint16_t* d, uint16_t* dmin,
                          unsigned long long* first_overflow) {
  int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (t >= rows * nsb) return;
  int64_t r = t / nsb, b = t % nsb;
  int64_t off = b * p.super;
  int n = (int)(cols - off < p.super ? cols - off : p.super);
  int64_t g0 = r * gpr + off / p.group;
  KqScalarOps ops;
  uint16_t dh = 0, mh = 0;
  int st = kq_quantize_super(ops, x + r * cols + off, n, p, qv + r * cols + off, sc + g0, mc + g0, &dh, &mh);
  if (st != kOk) atomicMin(first_overflow, (unsigned long long)(r * cols + off));
  d[t] = dh;
  dmin[t] = mh;
}

bool ok(cudaError_t e, std::string* err, const char* what) {
  if (e == cudaSuccess) return true;
  *err = std::string(what) + ": " + cudaGetErrorString(e);
  return false;
}

}  // namespace

int kq_quantize(const KqJob& j, MetricsAcc* m, int64_t* bad, std::string* err) {
  ClearErrorOnReturn clear_on_return;
  const KqParams& p = j.p;
  int64_t n = j.rows * j.cols, nsb = kq_supers_per_row(j.cols, p.super),
          gpr = kq_groups_per_row(j.cols, p.group);
  size_t in_bytes = (size_t)n * dtype_size(j.dtype);
  uint8_t *raw = nullptr, *qv = nullptr, *sc = nullptr, *mc = nullptr;
  float* x = nullptr;
  uint16_t *d = nullptr, *dm = nullptr;
  unsigned long long* flags = nullptr;
  int rc = -1;
  std::vector<uint8_t> hq((size_t)n), hs((size_t)(j.rows * gpr)), hm((size_t)(j.rows * gpr));
  unsigned long long hf[2] = {~0ull, ~0ull};
  do {
    if (!ok(cudaMalloc(&raw, in_bytes ? in_bytes : 1), err, "cudaMalloc") ||
        !ok(cudaMalloc(&x, (size_t)(n ? n : 1) * 4), err, "cudaMalloc") ||
        !ok(cudaMalloc(&qv, (size_t)(n ? n : 1)), err, "cudaMalloc") ||
        !ok(cudaMalloc(&sc, hs.size() + 1), err, "cudaMalloc") ||
        !ok(cudaMalloc(&mc, hm.size() + 1), err, "cudaMalloc") ||
        !ok(cudaMalloc(&d, (size_t)(j.rows * nsb + 1) * 2), err, "cudaMalloc") ||
        !ok(cudaMalloc(&dm, (size_t)(j.rows * nsb + 1) * 2), err, "cudaMalloc") ||
        !ok(cudaMalloc(&flags, sizeof hf), err, "cudaMalloc"))
      break;
    if (!ok(cudaMemcpy(raw, j.data, in_bytes, cudaMemcpyHostToDevice), err, "cudaMemcpy") ||
        !ok(cudaMemcpy(flags, hf, sizeof hf, cudaMemcpyHostToDevice), err, "cudaMemcpy"))
      break;
    if (n) kq_widen<<<1024, 256>>>(raw, j.dtype, n, x, flags);
    if (!ok(cudaGetLastError(), err, "kq_widen") ||
        !ok(cudaMemcpy(hf, flags, sizeof hf, cudaMemcpyDeviceToHost), err, "cudaMemcpy"))
      break;
    if (hf[0] != ~0ull) {
      *bad = (int64_t)hf[0];
      rc = kNonFinite;
      break;
    }
    int64_t tasks = j.rows * nsb;
    if (tasks)
      kq_supers<<<(unsigned)((tasks + 63) / 64), 64>>>(x, j.rows, j.cols, p, nsb, gpr, qv, sc, mc, d, dm,
                                                       flags + 1);
    if (!ok(cudaGetLastError(), err, "kq_supers") || !ok(cudaDeviceSynchronize(), err, "kq_supers") ||
        !ok(cudaMemcpy(hf, flags, sizeof hf, cudaMemcpyDeviceToHost), err, "cudaMemcpy"))
      break;
    if (hf[1] != ~0ull) {
      *bad = (int64_t)hf[1];
      rc = kScaleOverflow;
      break;
    }
    if (!ok(cudaMemcpy(hq.data(), qv, (size_t)n, cudaMemcpyDeviceToHost), err, "cudaMemcpy") ||
        !ok(cudaMemcpy(hs.data(), sc, hs.size(), cudaMemcpyDeviceToHost), err, "cudaMemcpy") ||
        !ok(cudaMemcpy(hm.data(), mc, hm.size(), cudaMemcpyDeviceToHost), err, "cudaMemcpy") ||
        !ok(cudaMemcpy(j.d, d, (size_t)tasks * 2, cudaMemcpyDeviceToHost), err, "cudaMemcpy") ||
        !ok(cudaMemcpy(j.dmin, dm, (size_t)tasks * 2, cudaMemcpyDeviceToHost), err, "cudaMemcpy"))
      break;
    int64_t rb = packed_row_bytes(j.cols, p.bits), cb = kq_code_row_bytes(j.cols, p);
    std::vector<float> row((size_t)j.cols);
    QuantJob lj{};
    lj.data = j.data;
    lj.dtype = j.dtype;
    lj.cols = j.cols;
    for (int64_t r = 0; r < j.rows; r++) {
      const uint8_t* qr = hq.data() + r * j.cols;
      pack_row(qr, j.cols, p.bits, j.q + r * rb);
      kq_pack_codes(hs.data() + r * gpr, hm.data() + r * gpr, gpr, p, j.codes + r * cb);
      if (!m) continue;
      const float* xr = load_row_scalar(lj, r, row.data());
      for (int64_t c = 0; c < j.cols; c++) {
        int64_t g = r * gpr + c / p.group, b = r * nsb + c / p.super;
        uint16_t dh, mh;
        memcpy(&dh, j.d + b * 2, 2);
        memcpy(&mh, j.dmin + b * 2, 2);
        m->add(xr[c], kq_value(f16_to_f32(dh), f16_to_f32(mh), hs[(size_t)g], hm[(size_t)g], qr[c]));
      }
    }
    rc = kOk;
  } while (false);
  cudaFree(raw);
  cudaFree(x);
  cudaFree(qv);
  cudaFree(sc);
  cudaFree(mc);
  cudaFree(d);
  cudaFree(dm);
  cudaFree(flags);
  return rc;
}

}  // namespace cuda
}  // namespace apl
