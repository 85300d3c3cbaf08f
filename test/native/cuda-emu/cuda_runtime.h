// A CPU emulation of the part of CUDA our kernels use, so that native/src/cuda/*.cu run on machines without a
// GPU (and without nvcc): every CUDA thread is a fiber, the blocks of a launch run one after another, and the
// threads of a block run until each reaches a __syncthreads or a warp collective (__shfl_*_sync, __any_sync,
// __syncwarp), which completes only when every thread it names has reached it. This is a test of the kernels'
// logic (index math, reductions, shuffles, masks, barriers, launch shapes) against the CPU reference, not of
// a GPU: the memory model, timing and the device's own math library are not emulated. Undefined behaviour the
// emulator can see fails the launch with a message naming the kernel, block and thread: a collective whose
// mask names a thread that has exited or is not in the block, a barrier some threads never reach (deadlock),
// a launch shape CUDA refuses, a copy into or out of memory that cudaMalloc did not return. Device memory
// comes from cudaMalloc filled with 0xA5 bytes and shared memory likewise, so a kernel that reads before it
// writes meets garbage, as on a GPU. The blocks of a launch, and the threads of each block, run in forward
// order on even launches and in reverse order on odd ones, so a missing barrier, or a block that reads what
// another block of the same launch writes, shows as a wrong result in one of the two. As in the runtime, a
// call that fails (a launch, cudaMalloc past APL_CUDA_EMU_MEM, a refused copy or free) is also the last
// error, which the next cudaGetLastError reads (and clears). APL_CUDA_EMU_FAULT=<text> (read at each launch)
// makes the next launch of a kernel whose name contains it fault as a device does on an illegal address: the
// error is sticky, every later call but the device queries returns it, as a corrupted context does until the
// process ends.
//
// Used by test/native/cuda-emu/build.sh: each .cu is rewritten by prep.mjs (the <<<grid, block, smem>>>
// launch syntax becomes apl_emu::launch, `extern __shared__ T x[]` a pointer to the launch's dynamic shared
// memory) and compiled with g++ against this header and emu.cc.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <type_traits>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__
#define __restrict__ __restrict
#define __launch_bounds__(...)
#define __align__(n) alignas(n)
// The blocks of a launch run one at a time, so one instance of a block's static shared variable serves them
// all.
#define __shared__ static
#define __constant__

struct uint3 {
  unsigned x, y, z;
};
struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
};

extern uint3 threadIdx, blockIdx;
extern dim3 blockDim, gridDim;
constexpr int warpSize = 32;

enum cudaError {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidDevicePointer = 17,
  cudaErrorNoDevice = 100,
  cudaErrorIllegalAddress = 700,
  cudaErrorLaunchFailure = 719,
};
typedef enum cudaError cudaError_t;

enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};

struct cudaDeviceProp {
  char name[256];
  size_t totalGlobalMem;
  int multiProcessorCount;
  int major, minor;
  size_t sharedMemPerBlock;
  int maxThreadsPerBlock;
  int warpSize;
};

typedef struct apl_emu_event* cudaEvent_t;
typedef struct apl_emu_stream* cudaStream_t;

cudaError_t cudaMalloc(void** p, size_t bytes);
template <class T>
inline cudaError_t cudaMalloc(T** p, size_t bytes) {
  return cudaMalloc(reinterpret_cast<void**>(p), bytes);
}
cudaError_t cudaFree(void* p);
/** Free and total device memory: the total is APL_CUDA_EMU_MEM=<bytes> where set (cudaMalloc then fails with
 * cudaErrorMemoryAllocation past it, as a full device does), else unbounded. */
cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total);
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemset(void* dst, int value, size_t bytes);
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
cudaError_t cudaDeviceSynchronize();
const char* cudaGetErrorString(cudaError_t e);
cudaError_t cudaGetDeviceCount(int* n);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int device);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaEventCreate(cudaEvent_t* e);
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s = nullptr);
cudaError_t cudaEventSynchronize(cudaEvent_t e);
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t a, cudaEvent_t b);
cudaError_t cudaEventDestroy(cudaEvent_t e);

namespace apl_emu {

struct Config {
  dim3 grid, block;
  size_t smem = 0;
};
inline Config config(dim3 grid, dim3 block, size_t smem = 0, cudaStream_t = nullptr) {
  return {grid, block, smem};
}

/** Runs `body` once per thread of every block of `c` (emu.cc); `kernel` names it in messages. */
void launch(const char* kernel, const Config& c, const std::function<void()>& body);
/** The current launch's dynamic shared memory (`extern __shared__`). */
void* dynamic_shared();

enum Op { kSync, kIdx, kDown, kUp, kXor, kAny, kAll, kBallot };
/** A warp collective: the calling thread's 8-byte value in, its result out. */
uint64_t warp_op(Op op, unsigned mask, uint64_t value, int arg, int width, const char* what);
void sync_block();

template <class T>
inline uint64_t bits_of(T v) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value, "shuffle of an 8-byte value at most");
  uint64_t u = 0;
  std::memcpy(&u, &v, sizeof(T));
  return u;
}
template <class T>
inline T of_bits(uint64_t u) {
  T v;
  std::memcpy(&v, &u, sizeof(T));
  return v;
}

}  // namespace apl_emu

inline void __syncthreads() { apl_emu::sync_block(); }
inline void __syncwarp(unsigned mask = 0xffffffffu) {
  apl_emu::warp_op(apl_emu::kSync, mask, 0, 0, 32, "__syncwarp");
}
template <class T>
inline T __shfl_sync(unsigned mask, T v, int src, int width = 32) {
  return apl_emu::of_bits<T>(
      apl_emu::warp_op(apl_emu::kIdx, mask, apl_emu::bits_of(v), src, width, "__shfl_sync"));
}
template <class T>
inline T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32) {
  return apl_emu::of_bits<T>(
      apl_emu::warp_op(apl_emu::kDown, mask, apl_emu::bits_of(v), (int)delta, width, "__shfl_down_sync"));
}
template <class T>
inline T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32) {
  return apl_emu::of_bits<T>(
      apl_emu::warp_op(apl_emu::kUp, mask, apl_emu::bits_of(v), (int)delta, width, "__shfl_up_sync"));
}
template <class T>
inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
  return apl_emu::of_bits<T>(
      apl_emu::warp_op(apl_emu::kXor, mask, apl_emu::bits_of(v), lane_mask, width, "__shfl_xor_sync"));
}
inline int __any_sync(unsigned mask, int pred) {
  return (int)apl_emu::warp_op(apl_emu::kAny, mask, pred != 0, 0, 32, "__any_sync");
}
inline int __all_sync(unsigned mask, int pred) {
  return (int)apl_emu::warp_op(apl_emu::kAll, mask, pred != 0, 0, 32, "__all_sync");
}
inline unsigned __ballot_sync(unsigned mask, int pred) {
  return (unsigned)apl_emu::warp_op(apl_emu::kBallot, mask, pred != 0, 0, 32, "__ballot_sync");
}

// Atomics: the threads of a launch run on one host thread and switch only at barriers and collectives, so a
// plain read-modify-write is atomic here.
template <class T>
inline T atomicMin(T* p, T v) {
  T o = *p;
  if (v < o) *p = v;
  return o;
}
template <class T>
inline T atomicMax(T* p, T v) {
  T o = *p;
  if (v > o) *p = v;
  return o;
}
template <class T>
inline T atomicAdd(T* p, T v) {
  T o = *p;
  *p = o + v;
  return o;
}
template <class T>
inline T atomicExch(T* p, T v) {
  T o = *p;
  *p = v;
  return o;
}
template <class T>
inline T atomicCAS(T* p, T cmp, T v) {
  T o = *p;
  if (o == cmp) *p = v;
  return o;
}

// The device math library's names that C++ lacks.
inline float rsqrtf(float v) { return 1.0f / std::sqrt(v); }
inline float __expf(float v) { return std::exp(v); }
inline float __fdividef(float a, float b) { return a / b; }
