// CUDA versions of the inference linear layers (one call: upload, run, download). The kernels are
// linear.cuh's (packed weights, groupwise and kquant, bit-exact with the scalar references infer/ref.h and
// infer/kquant_ref.h; float weights bit-exact with
// the scalar kernel's fdot_ref), compiled with --fmad=false. The forward pass on the GPU keeps its weights on
// the device (forward.cu); this entry point serves linear(w, x, n, { backend: 'gpu' }) and the tests.
#include <cuda_runtime.h>

#include <cstdio>
#include <string>
#include <vector>

#include "infer.h"
#include "linear.cuh"

namespace apl {
namespace cuda {

namespace {

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
  float* dxin = b.alloc<float>((size_t)(n * w.cols) * 4, &e);
  float* dy = b.alloc<float>((size_t)(n * w.rows) * 4, &e);
  if (e == cudaSuccess) e = cudaMemcpy(dxin, x, (size_t)(n * w.cols) * 4, cudaMemcpyHostToDevice);
  gpu::DevLinear d;
  d.kind = w.kind;
  d.rows = w.rows;
  d.cols = w.cols;
  ActBuffers act;
  if (w.kind == 0) {
    int64_t gpr = w.gpr(), pb = w.rows * gpr * (w.f16 ? 2 : 4), qb = w.rows * w.row_bytes();
    uint8_t* dq = b.alloc<uint8_t>((size_t)qb, &e);
    uint8_t* ds = b.alloc<uint8_t>((size_t)pb, &e);
    uint8_t* dz = b.alloc<uint8_t>((size_t)pb, &e);
    act.xq = b.alloc<int8_t>((size_t)(n * w.cols), &e);
    act.dx = b.alloc<float>((size_t)(n * gpr) * 4, &e);
    act.xsum = b.alloc<int32_t>((size_t)(n * gpr) * 4, &e);
    if (e == cudaSuccess) e = cudaMemcpy(dq, w.q, (size_t)qb, cudaMemcpyHostToDevice);
    if (e == cudaSuccess) e = cudaMemcpy(ds, w.scales, (size_t)pb, cudaMemcpyHostToDevice);
    if (e == cudaSuccess) e = cudaMemcpy(dz, w.zeros, (size_t)pb, cudaMemcpyHostToDevice);
    d.q = dq;
    d.scales = ds;
    d.zeros = dz;
    d.bits = w.bits;
    d.group = w.group;
    d.f16 = w.f16;
  } else if (w.kind == 2) {  // kquant: packed codes, per-group codes, float16 super-block scales
    const int64_t gpr = gpu::groups(w.cols, w.kq_group), supers = gpu::groups(w.cols, w.kq_super);
    const int64_t qb = w.rows * w.row_bytes(), cb = w.rows * ((gpr * (w.kq_sbits + w.kq_mbits) + 7) / 8),
                  db = w.rows * supers * 2;
    uint8_t* dq = b.alloc<uint8_t>((size_t)qb, &e);
    uint8_t* dc = b.alloc<uint8_t>((size_t)cb, &e);
    uint8_t* dd = b.alloc<uint8_t>((size_t)db, &e);
    uint8_t* dm = b.alloc<uint8_t>((size_t)db, &e);
    act.xq = b.alloc<int8_t>((size_t)(n * w.cols), &e);
    act.dx = b.alloc<float>((size_t)(n * gpr) * 4, &e);
    act.xsum = b.alloc<int32_t>((size_t)(n * gpr) * 4, &e);
    if (e == cudaSuccess) e = cudaMemcpy(dq, w.q, (size_t)qb, cudaMemcpyHostToDevice);
    if (e == cudaSuccess) e = cudaMemcpy(dc, w.codes, (size_t)cb, cudaMemcpyHostToDevice);
    if (e == cudaSuccess) e = cudaMemcpy(dd, w.kd, (size_t)db, cudaMemcpyHostToDevice);
    if (e == cudaSuccess) e = cudaMemcpy(dm, w.kdmin, (size_t)db, cudaMemcpyHostToDevice);
    d.q = dq;
    d.codes = dc;
    d.kd = dd;
    d.kdmin = dm;
    d.bits = w.bits;
    d.kq_group = w.kq_group;
    d.kq_super = w.kq_super;
    d.kq_sbits = w.kq_sbits;
    d.kq_mbits = w.kq_mbits;
  } else {
    size_t bytes = (size_t)(w.rows * w.cols * dtype_size(w.dtype));
    uint8_t* dw = b.alloc<uint8_t>(bytes, &e);
    if (e == cudaSuccess) e = cudaMemcpy(dw, w.data, bytes, cudaMemcpyHostToDevice);
    d.data = dw;
    d.dtype = w.dtype;
  }
  if (e == cudaSuccess) e = launch_linear(d, dxin, n, dy, act);
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
