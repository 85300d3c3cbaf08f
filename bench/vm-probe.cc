// What this machine charges for the things a 2-thread quantize call does besides arithmetic (issue 13's
// 2-thread question; bench/vm-probe.bench.ts compiles and runs it): an ALU loop and a DRAM read at 1 and 2
// threads, and first-touch page faults — 4 KiB pages at 1 and 2 threads, and the same bytes on 2 MiB pages
// (MADV_HUGEPAGE). Each figure is the best of several repetitions; 1 and 2 threads alternate so both see the
// same load.
#include <sys/mman.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <thread>
#include <vector>

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

/** Runs fn(part) for part 0..t-1 on t threads (the caller is one); returns the wall seconds. */
template <class Fn>
double on_threads(int t, Fn fn) {
  double t0 = now();
  std::vector<std::thread> th;
  for (int k = 1; k < t; k++) th.emplace_back(fn, k);
  fn(0);
  for (auto& h : th) h.join();
  return now() - t0;
}

template <class Fn>
void scaling(const char* what, int reps, Fn fn) {
  double best[3] = {1e9, 1e9, 1e9};
  for (int r = 0; r < reps; r++)
    for (int t : {1, 2}) {
      double dt = fn(t);
      if (dt < best[t]) best[t] = dt;
    }
  printf("%-44s 1 thread %8.2f ms   2 threads %8.2f ms   1 → 2: %.2f×\n", what, best[1] * 1e3, best[2] * 1e3,
         best[1] / best[2]);
}

}  // namespace

int main() {
  volatile uint64_t sink = 0;
  // ALU: a dependent integer chain per thread, the same total work split in two.
  scaling("ALU loop (2^28 steps in all)", 5, [&](int t) {
    return on_threads(t, [&](int) {
      uint64_t x = 1;
      for (uint64_t i = 0; i < (1ull << 28) / (uint64_t)t; i++)
        x = x * 6364136223846793005ull + 1442695040888963407ull;
      sink = sink + x;
    });
  });
  // DRAM read: 512 MiB of uint64 (far beyond the caches), summed in halves.
  const size_t n = (512u << 20) / 8;
  std::vector<uint64_t> big(n, 1);
  scaling("DRAM read, 512 MiB", 5, [&](int t) {
    return on_threads(t, [&](int k) {
      uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      const uint64_t* p = big.data() + n / t * k;
      for (size_t i = 0; i + 4 <= n / t; i += 4) {
        s0 += p[i];
        s1 += p[i + 1];
        s2 += p[i + 2];
        s3 += p[i + 3];
      }
      sink = sink + s0 + s1 + s2 + s3;
    });
  });
  // First touch: 64 MiB of fresh anonymous memory, one write per page.
  const size_t S = 64u << 20, H = 2u << 20, pg = 4096;
  // interleave = 0: each thread its own half; else threads alternate in blocks of that many bytes (as the
  // kernels' threads take 32-row chunks of one output from a shared counter).
  auto touch = [&](int t, bool huge, size_t interleave = 0) {
    char* raw = (char*)mmap(nullptr, S + H, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) return 1e9;
    char* m = (char*)(((uintptr_t)raw + H - 1) & ~(uintptr_t)(H - 1));
    if (huge) madvise(m, S, MADV_HUGEPAGE);
    double dt = on_threads(t, [&](int k) {
      if (interleave)
        for (size_t b = interleave * (size_t)k; b < S; b += interleave * (size_t)t)
          for (size_t i = b; i < b + interleave; i += pg) m[i] = 1;
      else
        for (size_t i = S / t * k; i < S / t * (k + 1); i += pg) m[i] = 1;
    });
    munmap(raw, S + H);
    return dt;
  };
  scaling("first touch, 64 MiB on 4 KiB pages", 3, [&](int t) { return touch(t, false); });
  scaling("first touch, 4 KiB pages, 32 KiB interleave", 3,
          [&](int t) { return touch(t, false, 32u << 10); });
  scaling("first touch, 64 MiB on 2 MiB pages", 5, [&](int t) { return touch(t, true); });
  double b4 = 1e9, b2 = 1e9;
  for (int r = 0; r < 3; r++) {
    double a = touch(1, false), b = touch(1, true);
    if (a < b4) b4 = a;
    if (b < b2) b2 = b;
  }
  printf(
      "one 4 KiB page fault: %.1f us (%.2f GB/s of fresh memory); on 2 MiB pages %.2f GB/s (%.0f× faster)\n",
      b4 * 1e6 / (double)(S / pg), S / b4 / 1e9, S / b2 / 1e9, b4 / b2);
  return sink == 42 ? 1 : 0;
}
