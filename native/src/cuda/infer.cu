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
#include "last_error.cuh"
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
  ClearErrorOnReturn clear_on_return;
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
  if (e == cudaSuccess)
    e = device_linear(w, &d, [&](const void* host, size_t bytes, const void** dev) {
      uint8_t* p = b.alloc<uint8_t>(bytes, &e);
      if (e == cudaSuccess) e = cudaMemcpy(p, host, bytes, cudaMemcpyHostToDevice);
      *dev = p;
      return e;
    });
  ActBuffers act;
  if (const int64_t gpr = act_groups(d)) {
    act.xq = b.alloc<int8_t>((size_t)(n * w.cols), &e);
    act.dx = b.alloc<float>((size_t)(n * gpr) * 4, &e);
    act.xsum = b.alloc<int32_t>((size_t)(n * gpr) * 4, &e);
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
