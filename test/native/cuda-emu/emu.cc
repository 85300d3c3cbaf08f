// The CPU emulation of CUDA declared in cuda_runtime.h (see there for what it is and is not). One launch at a
// time (a mutex): its blocks run in turn; a block's threads are fibers on stacks of their own, switched by a
// few lines of assembly on x86-64 (ucontext elsewhere), scheduled round robin until each waits at a barrier
// or a collective or has returned; then every collective whose threads are all there completes, and the round
// starts again.
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "cuda_runtime.h"

#if !defined(__x86_64__)
#include <ucontext.h>
#endif

uint3 threadIdx{0, 0, 0}, blockIdx{0, 0, 0};
dim3 blockDim, gridDim;

namespace {

#if defined(__x86_64__)
// switch_to(&from_sp, to_sp): saves the callee-saved registers on the current stack, stores its pointer in
// *from_sp, and resumes the stack to_sp saved the same way (or prepared by Fiber::prepare).
extern "C" void apl_emu_switch(void** from_sp, void* to_sp);
asm(R"(
  .text
  .globl apl_emu_switch
  .type apl_emu_switch, @function
apl_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size apl_emu_switch, .-apl_emu_switch
)");
#endif

enum State { kRunnable, kAtBarrier, kAtCollective, kDone };

constexpr size_t kStack = 256 * 1024;

struct Fiber {
  unsigned tid = 0;  // linear thread index in the block
  State state = kRunnable;
  char* stack = nullptr;  // kStack bytes above a guard page
#if defined(__x86_64__)
  void* sp = nullptr;
#else
  ucontext_t uc;
#endif
  // the collective it waits at
  apl_emu::Op op = apl_emu::kSync;
  unsigned mask = 0;
  uint64_t value = 0, result = 0;
  int arg = 0, width = 32;
  const char* what = "";
};

std::mutex g_launch;
const std::function<void()>* g_body = nullptr;
std::vector<Fiber> g_fibers;
Fiber* g_cur = nullptr;
#if defined(__x86_64__)
void* g_sched_sp = nullptr;
#else
ucontext_t g_sched_uc;
#endif
std::vector<unsigned char> g_smem;
const char* g_kernel = "";
unsigned g_nthreads = 0;
bool g_fault = false;
std::string g_fault_msg;
// The runtime keeps the last error per host thread (cudaGetLastError reads the calling thread's).
thread_local cudaError_t g_last = cudaSuccess;
// A fault (APL_CUDA_EMU_FAULT) corrupts the context: sticky for every thread and call, until the process
// ends.
std::atomic<bool> g_poisoned{false};
/** The sticky error once the context is corrupted (also made the calling thread's last error), else success.
 */
cudaError_t poisoned() {
  if (!g_poisoned.load()) return cudaSuccess;
  return g_last = cudaErrorIllegalAddress;
}
unsigned long g_launches = 0;

std::string where(const Fiber& f) {
  char b[256];
  unsigned bx = blockDim.x, by = blockDim.y;
  snprintf(b, sizeof b, "%s block (%u,%u,%u) thread (%u,%u,%u)", g_kernel, blockIdx.x, blockIdx.y, blockIdx.z,
           f.tid % bx, (f.tid / bx) % by, f.tid / (bx * by));
  return b;
}

void fault(const std::string& msg) {
  if (!g_fault) {
    g_fault = true;
    g_fault_msg = msg;
    fprintf(stderr, "cuda-emu: %s\n", msg.c_str());
  }
}

void set_thread_idx(const Fiber& f) {
  threadIdx.x = f.tid % blockDim.x;
  threadIdx.y = (f.tid / blockDim.x) % blockDim.y;
  threadIdx.z = f.tid / (blockDim.x * blockDim.y);
}

void to_scheduler() {
#if defined(__x86_64__)
  apl_emu_switch(&g_cur->sp, g_sched_sp);
#else
  swapcontext(&g_cur->uc, &g_sched_uc);
#endif
}

void fiber_main() {
  (*g_body)();
  g_cur->state = kDone;
  to_scheduler();
  abort();  // a finished fiber is never resumed
}

#if !defined(__x86_64__)
void fiber_entry() { fiber_main(); }
#endif

char* new_stack() {
  const size_t page = (size_t)sysconf(_SC_PAGESIZE);
  void* p = mmap(nullptr, kStack + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                 -1, 0);
  if (p == MAP_FAILED) {
    fprintf(stderr, "cuda-emu: cannot map a fiber stack\n");
    abort();
  }
  mprotect(p, page, PROT_NONE);  // a guard page below: a fiber that overflows faults instead of corrupting
  return static_cast<char*>(p) + page;
}

void prepare(Fiber& f) {
  if (!f.stack) f.stack = new_stack();
  f.state = kRunnable;
#if defined(__x86_64__)
  // The frame apl_emu_switch pops: mxcsr/fpu control word, six registers, then the return address
  // (fiber_main), entered with rsp ≡ 8 (mod 16) as after a call.
  uintptr_t top = (reinterpret_cast<uintptr_t>(f.stack) + kStack) & ~(uintptr_t)15;
  uint64_t* sp = reinterpret_cast<uint64_t*>(top - 16);
  sp[0] = reinterpret_cast<uint64_t>(&fiber_main);
  sp[1] = 0;
  sp -= 6;
  for (int i = 0; i < 6; i++) sp[i] = 0;
  sp -= 1;
  uint32_t csr[2];
  asm volatile("stmxcsr %0" : "=m"(csr[0]));
  uint16_t cw;
  asm volatile("fnstcw %0" : "=m"(cw));
  csr[1] = cw;
  std::memcpy(sp, csr, 8);
  f.sp = sp;
#else
  getcontext(&f.uc);
  f.uc.uc_stack.ss_sp = f.stack;
  f.uc.uc_stack.ss_size = kStack;
  f.uc.uc_link = nullptr;
  makecontext(&f.uc, fiber_entry, 0);
#endif
}

void resume(Fiber& f) {
  g_cur = &f;
  set_thread_idx(f);
#if defined(__x86_64__)
  apl_emu_switch(&g_sched_sp, f.sp);
#else
  swapcontext(&g_sched_uc, &f.uc);
#endif
  g_cur = nullptr;
}

/** The lane whose value `lane` receives in a shuffle, as PTX's shfl defines it; -1 for none (own value). */
int source_lane(const Fiber& f, int lane) {
  const int w = f.width;
  const int seg = lane & ~(w - 1);
  switch (f.op) {
    case apl_emu::kIdx:
      return seg + (f.arg & (w - 1));
    case apl_emu::kDown:
      return (lane & (w - 1)) + f.arg < w ? lane + f.arg : -1;
    case apl_emu::kUp:
      return (lane & (w - 1)) - f.arg >= 0 ? lane - f.arg : -1;
    case apl_emu::kXor: {
      int j = lane ^ f.arg;
      return j <= seg + w - 1 ? j : -1;
    }
    default:
      return -1;
  }
}

/** Completes the collectives whose threads have all arrived; true when one did. */
bool complete_collectives() {
  bool any = false;
  const unsigned n = g_nthreads;
  for (unsigned w0 = 0; w0 < n; w0 += 32) {
    const unsigned lanes = n - w0 < 32 ? n - w0 : 32;
    for (unsigned l = 0; l < lanes; l++) {
      Fiber& f = g_fibers[w0 + l];
      if (f.state != kAtCollective) continue;
      const unsigned mask = f.mask;
      if (!(mask >> l & 1u)) {
        fault(where(f) + ": " + f.what + " with mask " + std::to_string(mask) +
              " that leaves out the calling lane");
        return false;
      }
      if (f.width < 1 || f.width > 32 || (f.width & (f.width - 1))) {
        fault(where(f) + ": " + f.what + " with width " + std::to_string(f.width) +
              " (a power of two to 32)");
        return false;
      }
      bool ready = true;
      for (unsigned k = 0; k < 32; k++) {
        if (!(mask >> k & 1u)) continue;
        if (k >= lanes) {
          fault(where(f) + ": " + f.what + " names lane " + std::to_string(k) +
                ", past the block's last thread");
          return false;
        }
        const Fiber& o = g_fibers[w0 + k];
        if (o.state == kDone) {
          fault(where(f) + ": " + f.what + " names lane " + std::to_string(k) +
                ", which has already returned");
          return false;
        }
        if (o.state != kAtCollective) {
          ready = false;
          continue;
        }
        if (o.mask != mask || o.op != f.op) {
          fault(where(f) + ": " + f.what + " meets " + o.what + " of lane " + std::to_string(k) +
                " with another mask or operation");
          return false;
        }
      }
      if (!ready) continue;
      // Every named lane is here: the results, then all of them run on.
      uint64_t any_v = 0, all_v = 1, ballot = 0;
      for (unsigned k = 0; k < 32; k++) {
        if (!(mask >> k & 1u)) continue;
        const Fiber& o = g_fibers[w0 + k];
        any_v |= o.value;
        all_v &= o.value;
        if (o.value) ballot |= 1ull << k;
      }
      for (unsigned k = 0; k < 32; k++) {
        if (!(mask >> k & 1u)) continue;
        Fiber& o = g_fibers[w0 + k];
        switch (o.op) {
          case apl_emu::kSync:
            o.result = 0;
            break;
          case apl_emu::kAny:
            o.result = any_v;
            break;
          case apl_emu::kAll:
            o.result = all_v;
            break;
          case apl_emu::kBallot:
            o.result = ballot;
            break;
          default: {
            int src = source_lane(o, (int)k);
            if (src < 0) {
              o.result = o.value;
            } else if (src >= (int)lanes || !(mask >> src & 1u)) {
              fault(where(o) + ": " + o.what + " reads lane " + std::to_string(src) +
                    ", which its mask leaves out");
              return false;
            } else {
              o.result = g_fibers[w0 + (unsigned)src].value;
            }
          }
        }
      }
      for (unsigned k = 0; k < 32; k++)
        if (mask >> k & 1u) g_fibers[w0 + k].state = kRunnable;
      any = true;
    }
  }
  return any;
}

/** Releases __syncthreads when every thread that has not returned waits there; true when it did. */
bool complete_barrier() {
  bool some = false;
  for (unsigned i = 0; i < g_nthreads; i++) {
    State s = g_fibers[i].state;
    if (s == kAtBarrier)
      some = true;
    else if (s != kDone)
      return false;
  }
  if (!some) return false;
  for (unsigned i = 0; i < g_nthreads; i++)
    if (g_fibers[i].state == kAtBarrier) g_fibers[i].state = kRunnable;
  return true;
}

void deadlock() {
  unsigned at_barrier = 0, at_coll = 0, done = 0;
  const Fiber* first = nullptr;
  for (unsigned i = 0; i < g_nthreads; i++) {
    const Fiber& f = g_fibers[i];
    if (f.state == kAtBarrier) at_barrier++;
    if (f.state == kAtCollective) {
      at_coll++;
      if (!first) first = &f;
    }
    if (f.state == kDone) done++;
  }
  std::string m = std::string(g_kernel) + " block (" + std::to_string(blockIdx.x) + "," +
                  std::to_string(blockIdx.y) + "," + std::to_string(blockIdx.z) +
                  "): deadlock: " + std::to_string(at_barrier) + " threads wait at __syncthreads, " +
                  std::to_string(at_coll) + " at warp collectives, " + std::to_string(done) +
                  " have returned";
  if (first) m += " (first: " + where(*first) + " at " + first->what + ")";
  fault(m);
}

void run_block(bool reverse) {
  for (unsigned i = 0; i < g_nthreads; i++) {
    g_fibers[i].tid = i;
    prepare(g_fibers[i]);
  }
  for (;;) {
    bool ran = false;
    for (unsigned k = 0; k < g_nthreads && !g_fault; k++) {
      Fiber& f = g_fibers[reverse ? g_nthreads - 1 - k : k];
      if (f.state != kRunnable) continue;
      ran = true;
      resume(f);
    }
    if (g_fault) return;
    bool all_done = true;
    for (unsigned i = 0; i < g_nthreads; i++)
      if (g_fibers[i].state != kDone) all_done = false;
    if (all_done) return;
    bool released = complete_collectives();
    if (g_fault) return;
    released = complete_barrier() || released;
    if (!ran && !released) {
      deadlock();
      return;
    }
  }
}

struct Alloc {
  size_t bytes;
};
std::map<uintptr_t, Alloc> g_allocs;
std::mutex g_alloc_mu;
size_t g_in_use = 0;  // bytes of the live allocations (under g_alloc_mu)

/** The device's memory: APL_CUDA_EMU_MEM=<bytes> (read at each cudaMalloc, so a test can lower it to see
 * what running out does), else as much as the host gives. */
size_t device_memory() {
  const char* v = getenv("APL_CUDA_EMU_MEM");
  return v && *v ? (size_t)strtoull(v, nullptr, 10) : SIZE_MAX;
}

/** Whether [p, p + bytes) lies inside one cudaMalloc allocation. */
bool device_range(const void* p, size_t bytes) {
  std::lock_guard<std::mutex> lk(g_alloc_mu);
  uintptr_t a = reinterpret_cast<uintptr_t>(p);
  auto it = g_allocs.upper_bound(a);
  if (it == g_allocs.begin()) return false;
  --it;
  return a >= it->first && a + bytes <= it->first + it->second.bytes;
}

std::string g_error_text;

}  // namespace

namespace apl_emu {

void* dynamic_shared() { return g_smem.data(); }

void launch(const char* kernel, const Config& c, const std::function<void()>& body) {
  std::lock_guard<std::mutex> lk(g_launch);
  if (poisoned()) return;
  if (const char* f = getenv("APL_CUDA_EMU_FAULT"); f && *f && strstr(kernel, f)) {
    fprintf(stderr, "cuda-emu: %s: an illegal address (APL_CUDA_EMU_FAULT): the context is lost\n", kernel);
    unsetenv("APL_CUDA_EMU_FAULT");  // one fault; what follows fails by the sticky error
    g_poisoned = true;
    g_last = cudaErrorIllegalAddress;
    return;
  }
  const unsigned long long threads = (unsigned long long)c.block.x * c.block.y * c.block.z;
  if (c.grid.x == 0 || c.grid.y == 0 || c.grid.z == 0 || threads == 0 || threads > 1024 || c.block.z > 64 ||
      c.grid.y > 65535 || c.grid.z > 65535 || c.grid.x > 2147483647u) {
    fprintf(stderr, "cuda-emu: %s: launch refused: grid (%u,%u,%u), block (%u,%u,%u)\n", kernel, c.grid.x,
            c.grid.y, c.grid.z, c.block.x, c.block.y, c.block.z);
    g_last = cudaErrorInvalidConfiguration;
    return;
  }
  if (c.smem > 48 * 1024) {
    fprintf(stderr,
            "cuda-emu: %s: %zu bytes of dynamic shared memory, over the 48 KB a launch gets by default\n",
            kernel, c.smem);
    g_last = cudaErrorInvalidValue;
    return;
  }
  g_kernel = kernel;
  g_body = &body;
  gridDim = c.grid;
  blockDim = c.block;
  g_nthreads = (unsigned)threads;
  if (g_fibers.size() < threads) g_fibers.resize(threads);
  g_smem.assign(c.smem ? c.smem : 1, 0xA5);
  g_fault = false;
  // APL_CUDA_EMU_ORDER=forward or reverse fixes the order of the blocks and of each block's threads (default:
  // alternating by launch). A device runs blocks in any order, at once: a kernel whose result depends on
  // which block runs first (one block reading what another writes in the same launch) gives two answers here.
  static const char* order = getenv("APL_CUDA_EMU_ORDER");
  const bool reverse = order && !strcmp(order, "forward")   ? false
                       : order && !strcmp(order, "reverse") ? true
                                                            : (g_launches & 1) != 0;
  g_launches++;
  const unsigned long long nblocks = (unsigned long long)c.grid.x * c.grid.y * c.grid.z;
  for (unsigned long long k = 0; k < nblocks && !g_fault; k++) {
    const unsigned long long b = reverse ? nblocks - 1 - k : k;
    blockIdx = {(unsigned)(b % c.grid.x), (unsigned)(b / c.grid.x % c.grid.y),
                (unsigned)(b / c.grid.x / c.grid.y)};
    if (c.smem) std::memset(g_smem.data(), 0xA5, c.smem);
    run_block(reverse);
  }
  if (g_fault) {
    g_last = cudaErrorLaunchFailure;
    g_error_text = "unspecified launch failure (cuda-emu: " + g_fault_msg + ")";
    // The fibers that were still waiting are abandoned with their stacks; the next launch prepares them
    // afresh.
  }
  g_body = nullptr;
}

uint64_t warp_op(Op op, unsigned mask, uint64_t value, int arg, int width, const char* what) {
  Fiber* f = g_cur;
  if (!f) {
    fprintf(stderr, "cuda-emu: %s called outside a kernel\n", what);
    abort();
  }
  f->op = op;
  f->mask = mask;
  f->value = value;
  f->arg = arg;
  f->width = width;
  f->what = what;
  f->state = kAtCollective;
  to_scheduler();
  set_thread_idx(*f);
  return f->result;
}

void sync_block() {
  Fiber* f = g_cur;
  if (!f) {
    fprintf(stderr, "cuda-emu: __syncthreads called outside a kernel\n");
    abort();
  }
  f->state = kAtBarrier;
  to_scheduler();
  set_thread_idx(*f);
}

}  // namespace apl_emu

cudaError_t cudaMalloc(void** p, size_t bytes) {
  if (cudaError_t e = poisoned()) return e;
  std::lock_guard<std::mutex> lk(g_alloc_mu);
  const size_t limit = device_memory();
  void* m = bytes <= limit - std::min(g_in_use, limit) ? std::malloc(bytes ? bytes : 1) : nullptr;
  if (!m) {  // as the runtime does, the failure is also the last error (until cudaGetLastError reads it)
    g_last = cudaErrorMemoryAllocation;
    return cudaErrorMemoryAllocation;
  }
  std::memset(m, 0xA5, bytes);  // device memory is not cleared
  g_allocs[reinterpret_cast<uintptr_t>(m)] = {bytes};
  g_in_use += bytes;
  *p = m;
  return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total) {
  std::lock_guard<std::mutex> lk(g_alloc_mu);
  const size_t limit = device_memory();
  *total = limit;
  *free_bytes = limit - std::min(g_in_use, limit);
  return cudaSuccess;
}

cudaError_t cudaFree(void* p) {
  if (!p) return cudaSuccess;
  std::lock_guard<std::mutex> lk(g_alloc_mu);
  auto it = g_allocs.find(reinterpret_cast<uintptr_t>(p));
  if (it == g_allocs.end()) {
    fprintf(stderr, "cuda-emu: cudaFree(%p): not a pointer cudaMalloc returned\n", p);
    return g_last = cudaErrorInvalidDevicePointer;
  }
  g_in_use -= it->second.bytes;
  g_allocs.erase(it);
  std::free(p);
  return cudaSuccess;
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  if (cudaError_t e = poisoned()) return e;
  if (bytes == 0) return cudaSuccess;
  const bool dst_dev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  const bool src_dev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  if ((dst_dev && !device_range(dst, bytes)) || (src_dev && !device_range(src, bytes)) ||
      (!dst_dev && device_range(dst, 1)) || (!src_dev && device_range(src, 1))) {
    fprintf(stderr,
            "cuda-emu: cudaMemcpy(%p, %p, %zu, kind %d): a range outside the device memory it names\n", dst,
            src, bytes, (int)kind);
    return g_last = cudaErrorInvalidValue;
  }
  std::memmove(dst, src, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemset(void* dst, int value, size_t bytes) {
  if (cudaError_t e = poisoned()) return e;
  if (bytes && !device_range(dst, bytes)) return g_last = cudaErrorInvalidValue;
  std::memset(dst, value, bytes);
  return cudaSuccess;
}

cudaError_t cudaGetLastError() {
  if (cudaError_t e = poisoned()) return e;  // a sticky error is not cleared by reading it
  cudaError_t e = g_last;
  g_last = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError() { return g_poisoned ? cudaErrorIllegalAddress : g_last; }
cudaError_t cudaDeviceSynchronize() { return g_poisoned ? cudaErrorIllegalAddress : g_last; }

const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess:
      return "no error";
    case cudaErrorInvalidValue:
      return "invalid argument";
    case cudaErrorMemoryAllocation:
      return "out of memory";
    case cudaErrorInvalidConfiguration:
      return "invalid configuration argument";
    case cudaErrorInvalidDevicePointer:
      return "invalid device pointer";
    case cudaErrorNoDevice:
      return "no CUDA-capable device is detected";
    case cudaErrorIllegalAddress:
      return "an illegal memory access was encountered";
    case cudaErrorLaunchFailure:
      return g_error_text.empty() ? "unspecified launch failure" : g_error_text.c_str();
  }
  return "unknown error";
}

cudaError_t cudaGetDeviceCount(int* n) {
  const char* v = getenv("APL_CUDA_EMU_NO_DEVICE");
  if (v && v[0] == '1') {
    *n = 0;
    return cudaErrorNoDevice;
  }
  *n = 1;
  return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int device) {
  if (device != 0) return cudaErrorInvalidValue;
  std::memset(p, 0, sizeof *p);
  snprintf(p->name, sizeof p->name, "emulated GPU (test/native/cuda-emu, no device)");
  p->totalGlobalMem = 16ull << 30;
  p->multiProcessorCount = 1;
  p->major = 8;
  p->sharedMemPerBlock = 48 * 1024;
  p->maxThreadsPerBlock = 1024;
  p->warpSize = 32;
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) { return device == 0 ? cudaSuccess : cudaErrorInvalidValue; }

struct apl_emu_event {
  std::chrono::steady_clock::time_point t;
};
cudaError_t cudaEventCreate(cudaEvent_t* e) {
  *e = new apl_emu_event{std::chrono::steady_clock::now()};
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t) {
  e->t = std::chrono::steady_clock::now();
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t) { return g_poisoned ? cudaErrorIllegalAddress : cudaSuccess; }
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t a, cudaEvent_t b) {
  *ms = std::chrono::duration<float, std::milli>(b->t - a->t).count();
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t e) {
  delete e;
  return cudaSuccess;
}
