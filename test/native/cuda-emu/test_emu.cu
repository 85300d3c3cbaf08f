// The CPU emulation of CUDA against what CUDA defines: shuffles (index, down, up, xor, with widths), votes,
// __syncthreads, dynamic shared memory, atomics, launch shapes; and the undefined behaviour it must report
// instead of computing something: a collective naming a lane that has returned, a barrier not every thread
// reaches, a refused launch shape, a copy outside device memory. Built and run by run.sh (through prep.mjs,
// like the kernels).
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "check.h"  // CHECK and its counters (test/native/check.h)

__global__ void k_shuffles(int width, int* out) {
  const int lane = threadIdx.x & 31, base = (int)(threadIdx.x - lane) * 4;
  const int v = 100 + (int)threadIdx.x;
  out[base + lane * 4 + 0] = __shfl_sync(0xffffffffu, v, 3, width);
  out[base + lane * 4 + 1] = __shfl_down_sync(0xffffffffu, v, 2, width);
  out[base + lane * 4 + 2] = __shfl_up_sync(0xffffffffu, v, 1, width);
  out[base + lane * 4 + 3] = __shfl_xor_sync(0xffffffffu, v, 5, width);
}

__global__ void k_votes(unsigned* out) {
  const int lane = threadIdx.x & 31;
  const unsigned b = __ballot_sync(0xffffffffu, lane % 3 == 0);
  const int any = __any_sync(0xffffffffu, lane == 17);
  const int all = __all_sync(0xffffffffu, lane < 32);
  const int none = __any_sync(0xffffffffu, 0);
  if (threadIdx.x == 0) {
    out[0] = b;
    out[1] = (unsigned)any;
    out[2] = (unsigned)all;
    out[3] = (unsigned)none;
  }
}

// Octets: eight lanes of a warp reduce among themselves with a mask of their own, as quant.cu's OctetOps
// does.
__global__ void k_octets(float* out) {
  const unsigned mask = 0xffu << (threadIdx.x & 24u);
  float v = (float)threadIdx.x;
  for (int d = 4; d >= 1; d >>= 1) v += __shfl_xor_sync(mask, v, d, 8);
  out[threadIdx.x] = v;
}

// A block-wide tree sum through shared memory: wrong without its barriers in one thread order or the other.
__global__ void k_block_sum(const float* x, float* out, bool barriers) {
  __shared__ float part[256];
  part[threadIdx.x] = x[blockIdx.x * blockDim.x + threadIdx.x];
  if (barriers) __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if ((int)threadIdx.x < s) part[threadIdx.x] += part[threadIdx.x + s];
    if (barriers) __syncthreads();
  }
  if (threadIdx.x == 0) out[blockIdx.x] = part[0];
}

__global__ void k_dynamic(int n, int* out) {
  extern __shared__ int staged[];
  staged[threadIdx.x] = (int)threadIdx.x * 2;
  __syncthreads();
  out[blockIdx.x * n + threadIdx.x] = staged[n - 1 - threadIdx.x] + (int)(blockIdx.x * 1000);
}

__global__ void k_atomic(unsigned long long* m) { atomicMin(m, (unsigned long long)(1000 - threadIdx.x)); }

__global__ void k_grid(int* out) {
  const int b = (int)(blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z));
  const int t = (int)(threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z));
  out[b * (int)(blockDim.x * blockDim.y * blockDim.z) + t] = b * 1000 + t;
}

// Wrong on purpose: block b reads what block b - 1 wrote in the same launch (a chain that only block order
// sets).
__global__ void k_block_chain(int* out) {
  const int b = (int)blockIdx.x;
  if (threadIdx.x == 0) out[b] = (b ? out[b - 1] : 0) + 1;
}

// Undefined behaviour the emulation reports.
__global__ void k_shuffle_after_return(float* out) {
  if (threadIdx.x == 7) return;
  out[threadIdx.x] = __shfl_sync(0xffffffffu, 1.0f, 0);
}
__global__ void k_divergent_barrier(float* out) {
  if (threadIdx.x < 16) {
    __syncthreads();
  } else {
    out[threadIdx.x] = __shfl_sync(0xffff0000u, 2.0f, 16);
    __syncwarp(0xffffffffu);
  }
}
__global__ void k_reads_outside_mask(float* out) {
  out[threadIdx.x] =
      __shfl_sync(0x0000ffffu, 3.0f, 20);  // lanes 0..15 read lane 20, which the mask leaves out
}
__global__ void k_nothing() {}

template <class T>
static T* dev(size_t n) {
  T* p = nullptr;
  cudaMalloc(&p, n * sizeof(T));
  return p;
}
template <class T>
static std::vector<T> host(const T* d, size_t n) {
  std::vector<T> h(n);
  cudaMemcpy(h.data(), d, n * sizeof(T), cudaMemcpyDeviceToHost);
  return h;
}

static void test_shuffles() {
  int* d = dev<int>(64 * 4);
  for (int width : {32, 16, 8, 4}) {
    k_shuffles<<<1, 64>>>(width, d);
    CHECK(cudaGetLastError() == cudaSuccess, "k_shuffles launch");
    std::vector<int> h = host(d, 64 * 4);
    int bad = 0;
    for (int t = 0; t < 64; t++) {
      const int lane = t % 32, warp0 = t - lane, seg = lane & ~(width - 1), own = 100 + t;
      const int idx = 100 + warp0 + seg + (3 & (width - 1));
      const int down = (lane & (width - 1)) + 2 < width ? own + 2 : own;
      const int up = (lane & (width - 1)) >= 1 ? own - 1 : own;
      const int xl = lane ^ 5, xr = xl <= seg + width - 1 ? 100 + warp0 + xl : own;
      const int* o = &h[(size_t)t * 4];
      bad += o[0] != idx || o[1] != down || o[2] != up || o[3] != xr;
    }
    CHECK(bad == 0, "shuffles with width %d: %d threads wrong", width, bad);
  }
  cudaFree(d);
}

static void test_votes_and_octets() {
  unsigned* v = dev<unsigned>(4);
  k_votes<<<1, 32>>>(v);
  std::vector<unsigned> h = host(v, 4);
  CHECK(h[0] == 0x49249249u && h[1] == 1 && h[2] == 1 && h[3] == 0,
        "votes: ballot %08x any %u all %u none %u", h[0], h[1], h[2], h[3]);
  cudaFree(v);
  float* o = dev<float>(64);
  k_octets<<<1, 64>>>(o);
  std::vector<float> ho = host(o, 64);
  int bad = 0;
  for (int t = 0; t < 64; t++) {
    const int b = t & ~7;
    bad += ho[(size_t)t] != (float)(8 * b + 28);
  }
  CHECK(bad == 0, "octet reductions: %d lanes wrong", bad);
  cudaFree(o);
}

static void test_barriers() {
  const int blocks = 3, n = 256;
  std::vector<float> x((size_t)(blocks * n));
  for (size_t i = 0; i < x.size(); i++) x[i] = (float)(i % 97);
  float* dx = dev<float>(x.size());
  float* dy = dev<float>(blocks);
  cudaMemcpy(dx, x.data(), x.size() * 4, cudaMemcpyHostToDevice);
  k_block_sum<<<blocks, n>>>(dx, dy, true);
  std::vector<float> y = host(dy, blocks);
  for (int b = 0; b < blocks; b++) {
    float want = 0;
    for (int i = 0; i < n; i++) want += x[(size_t)(b * n + i)];
    CHECK(y[(size_t)b] == want, "block sum %d: %g, want %g", b, y[(size_t)b], want);
  }
  // Without the barriers the same kernel is wrong in at least one of two launches (one runs the threads in
  // forward order, the next in reverse): a missing barrier shows.
  bool wrong = false;
  for (int rep = 0; rep < 2; rep++) {
    k_block_sum<<<blocks, n>>>(dx, dy, false);
    std::vector<float> z = host(dy, blocks);
    for (int b = 0; b < blocks; b++) wrong = wrong || z[(size_t)b] != y[(size_t)b];
  }
  CHECK(wrong, "the block sum without barriers gave the right sums in both thread orders");
  cudaFree(dx);
  cudaFree(dy);
}

static void test_shared_atomics_grid() {
  const int n = 96;
  int* d = dev<int>(2 * n);
  k_dynamic<<<2, n, n * sizeof(int)>>>(n, d);
  std::vector<int> h = host(d, 2 * n);
  int bad = 0;
  for (int b = 0; b < 2; b++)
    for (int t = 0; t < n; t++) bad += h[(size_t)(b * n + t)] != (n - 1 - t) * 2 + b * 1000;
  CHECK(bad == 0, "dynamic shared memory: %d wrong", bad);
  cudaFree(d);
  unsigned long long* m = dev<unsigned long long>(1);
  unsigned long long init = ~0ull;
  cudaMemcpy(m, &init, 8, cudaMemcpyHostToDevice);
  k_atomic<<<2, 128>>>(m);
  CHECK(host(m, 1)[0] == 1000 - 127, "atomicMin: %llu", host(m, 1)[0]);
  cudaFree(m);
  int* g = dev<int>(2 * 3 * 2 * 4 * 2 * 3);
  k_grid<<<dim3(2, 3, 2), dim3(4, 2, 3)>>>(g);
  std::vector<int> hg = host(g, 2 * 3 * 2 * 4 * 2 * 3);
  bad = 0;
  for (int i = 0; i < (int)hg.size(); i++) bad += hg[(size_t)i] != (i / 24) * 1000 + i % 24;
  CHECK(bad == 0, "3-D grid and block indices: %d wrong", bad);
  cudaFree(g);
  // Blocks run in both orders across launches: a chain between blocks is right in one launch of two only.
  const int nb = 6;
  int* c = dev<int>(nb);
  int right = 0;
  for (int launch = 0; launch < 2; launch++) {
    std::vector<int> zero(nb, 0);
    cudaMemcpy(c, zero.data(), nb * sizeof(int), cudaMemcpyHostToDevice);
    k_block_chain<<<nb, 32>>>(c);
    right += host(c, nb)[nb - 1] == nb;
  }
  CHECK(right == 1, "a chain between the blocks of a launch was right in %d launches of two", right);
  cudaFree(c);
}

static void expect_failure(cudaError_t want, const char* what, const char* says) {
  cudaError_t e = cudaGetLastError();
  CHECK(e == want, "%s: error %d (%s), want %d", what, (int)e, cudaGetErrorString(e), (int)want);
  if (says)
    CHECK(strstr(cudaGetErrorString(e), says) != nullptr, "%s: the message '%s' lacks '%s'", what,
          cudaGetErrorString(e), says);
  CHECK(cudaGetLastError() == cudaSuccess, "%s: the error stays after cudaGetLastError", what);
}

static void test_undefined_behaviour() {
  float* o = dev<float>(32);
  k_shuffle_after_return<<<1, 32>>>(o);
  expect_failure(cudaErrorLaunchFailure, "a shuffle naming a returned lane",
                 "names lane 7, which has already returned");
  k_divergent_barrier<<<1, 32>>>(o);
  expect_failure(cudaErrorLaunchFailure, "a barrier half the block never reaches", "deadlock");
  k_reads_outside_mask<<<1, 32>>>(o);
  expect_failure(cudaErrorLaunchFailure, "a shuffle reading outside its mask", "reads lane 20");
  k_nothing<<<0, 32>>>();
  expect_failure(cudaErrorInvalidConfiguration, "a grid of no blocks", nullptr);
  k_nothing<<<1, 1025>>>();
  expect_failure(cudaErrorInvalidConfiguration, "a block of 1025 threads", nullptr);
  k_nothing<<<1, 32, 64 * 1024>>>();
  expect_failure(cudaErrorInvalidValue, "64 KB of dynamic shared memory", nullptr);
  k_nothing<<<1, 32>>>();
  CHECK(cudaGetLastError() == cudaSuccess, "a sound launch after the failures");
  float h[8];
  CHECK(cudaMemcpy(h, o + 28, 8 * sizeof(float), cudaMemcpyDeviceToHost) == cudaErrorInvalidValue,
        "a copy reading past the allocation's end");
  CHECK(cudaMemcpy(o, h, sizeof h, cudaMemcpyDeviceToHost) == cudaErrorInvalidValue,
        "a device-to-host copy from host memory");
  CHECK(cudaMemcpy(o, h, sizeof h, cudaMemcpyHostToDevice) == cudaSuccess, "a sound copy");
  CHECK(cudaFree(h) == cudaErrorInvalidDevicePointer, "cudaFree of a host pointer");
  CHECK(cudaGetLastError() == cudaErrorInvalidDevicePointer, "the refused cudaFree is the last error");
  cudaFree(o);
  // APL_CUDA_EMU_MEM: a device of 4096 bytes runs out as a full one does, and what is freed can be had again
  setenv("APL_CUDA_EMU_MEM", "4096", 1);
  size_t free0 = 0, total = 0;
  cudaMemGetInfo(&free0, &total);
  void *a = nullptr, *b = nullptr;
  CHECK(cudaMalloc(&a, 3000) == cudaSuccess, "3000 bytes of a 4096-byte device");
  CHECK(cudaMalloc(&b, 2000) == cudaErrorMemoryAllocation, "2000 more bytes of a 4096-byte device");
  CHECK(cudaGetLastError() == cudaErrorMemoryAllocation, "the failed cudaMalloc is the last error");
  CHECK(cudaGetLastError() == cudaSuccess, "and is cleared by reading it");
  size_t free1 = 0;
  cudaMemGetInfo(&free1, &total);
  CHECK(total == 4096 && free1 == free0 - 3000, "cudaMemGetInfo: %zu free of %zu (%zu before)", free1, total,
        free0);
  cudaFree(a);
  CHECK(cudaMalloc(&b, 2000) == cudaSuccess, "2000 bytes once the 3000 are freed");
  cudaFree(b);
  unsetenv("APL_CUDA_EMU_MEM");
  std::vector<unsigned char> fresh(16);
  unsigned char* d = dev<unsigned char>(16);
  cudaMemcpy(fresh.data(), d, 16, cudaMemcpyDeviceToHost);
  CHECK(fresh[0] == 0xA5 && fresh[15] == 0xA5, "fresh device memory is filled with 0xA5, not zeros");
  cudaFree(d);
}

// Last: a fault corrupts the emulated context for the rest of the process, as on a device.
static void test_sticky_fault() {
  void* a = nullptr;
  CHECK(cudaMalloc(&a, 64) == cudaSuccess, "an allocation before the fault");
  setenv("APL_CUDA_EMU_FAULT", "k_nothing", 1);
  k_nothing<<<1, 32>>>();
  CHECK(cudaGetLastError() == cudaErrorIllegalAddress, "the faulting launch: an illegal address");
  CHECK(cudaGetLastError() == cudaErrorIllegalAddress, "reading the error does not clear it (sticky)");
  void* b = nullptr;
  CHECK(cudaMalloc(&b, 64) == cudaErrorIllegalAddress, "cudaMalloc after the fault fails with it");
  char h[8] = {};
  CHECK(cudaMemcpy(a, h, 8, cudaMemcpyHostToDevice) == cudaErrorIllegalAddress, "cudaMemcpy after the fault");
  CHECK(cudaDeviceSynchronize() == cudaErrorIllegalAddress, "cudaDeviceSynchronize after the fault");
  int n = 0;
  CHECK(cudaGetDeviceCount(&n) == cudaSuccess && n == 1, "the device is still listed");
  CHECK(getenv("APL_CUDA_EMU_FAULT") == nullptr, "one fault: the variable is consumed");
}

int main() {
  test_shuffles();
  test_votes_and_octets();
  test_barriers();
  test_shared_atomics_grid();
  test_undefined_behaviour();
  test_sticky_fault();
  printf("cuda-emu: %d checks of the emulation itself, %d failures\n", checks, failures);
  return failures ? 1 : 0;
}
