// Transparent huge pages for a model's weights (Linux): decode streams ~0.6 GB of packed codes per token, and
// in 4 KiB pages that is ~150 000 TLB misses per token, each a page walk (two-dimensional under a hypervisor)
// that the hardware prefetcher does not run ahead of. The weights are the callers' buffers (JS ArrayBuffers
// read from the NPZ), so they are not re-allocated: their pages are advised MADV_HUGEPAGE and collapsed in
// place (MADV_COLLAPSE, Linux 6.1+), which keeps every byte where and as it is (only the page tables change).
// Best effort: where the kernel refuses (no THP, an older kernel, no free 2 MiB pages) nothing changes but
// the speed. Collapsing costs ~1.2 s per 0.6 GB on a quiet machine here (a VM: fresh guest memory), so the
// model does it in a background thread and is usable at once. APL_HUGE=0 leaves the pages as they are (for
// A/B runs); APL_HUGE=sync collapses before the model is returned (benchmarks of the steady state).
// The loader's way comes first (advise_arena, populate_back; native/weight-arena.ts): `apl-quant run` reads
// the weights into one buffer advised MADV_HUGEPAGE before its first touch, so they are in 2 MiB pages from
// the start, ends included, and the collapse above only walks page tables (0.58 GB: 0.03 s); it stays as the
// fallback for weights that come in buffers of their own or pages the kernel gave 4 KiB anyway. APL_HUGE=0
// gives no arena.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "infer.h"

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace apl {
namespace infer {

struct ByteSpan {
  uintptr_t lo = 0, hi = 0;
};

/** Spans closer than this are merged (an allocator's header and a page's slack lie between two buffers). */
constexpr uintptr_t kHugeGap = 64 << 10;
constexpr uintptr_t kHugePage = 2 << 20;

/** Sorted, merged spans (gaps up to kHugeGap bridged): the ranges advise_huge_pages works on. */
inline std::vector<ByteSpan> merge_spans(std::vector<ByteSpan> s) {
  s.erase(std::remove_if(s.begin(), s.end(), [](const ByteSpan& b) { return b.hi <= b.lo; }), s.end());
  std::sort(s.begin(), s.end(), [](const ByteSpan& a, const ByteSpan& b) { return a.lo < b.lo; });
  std::vector<ByteSpan> m;
  for (const ByteSpan& b : s)
    if (!m.empty() && b.lo <= m.back().hi + kHugeGap)
      m.back().hi = std::max(m.back().hi, b.hi);
    else
      m.push_back(b);
  return m;
}

/** The whole 2 MiB pages inside [lo, hi): [first, last) (empty when first ≥ last). */
inline ByteSpan huge_interior(ByteSpan s) {
  const uintptr_t a = (s.lo + kHugePage - 1) & ~(kHugePage - 1), e = s.hi & ~(kHugePage - 1);
  return {a, std::max(a, e)};
}

/** APL_HUGE: 0 leaves the weights' pages alone; sync collapses them before the model is returned; otherwise
 * in the background. */
enum class HugeMode { kOff, kSync, kBackground };
inline HugeMode huge_mode() {
  const char* v = std::getenv("APL_HUGE");
  if (v && std::strcmp(v, "0") == 0) return HugeMode::kOff;
  if (v && std::strcmp(v, "sync") == 0) return HugeMode::kSync;
  return HugeMode::kBackground;
}

/** The whole 2 MiB pages inside the merged spans: what collapse_huge works on (empty: nothing to do). */
inline std::vector<ByteSpan> huge_ranges(const std::vector<ByteSpan>& spans) {
  std::vector<ByteSpan> r;
  for (const ByteSpan& s : merge_spans(spans)) {
    const ByteSpan in = huge_interior(s);
    if (in.hi > in.lo) r.push_back(in);
  }
  return r;
}

/**
 * Advises the ranges MADV_HUGEPAGE and collapses them 2 MiB page by page (one refusal does not stop the rest;
 * stop, when set, is read before each page). Returns the bytes the kernel collapsed (0 off Linux or where it
 * refused).
 */
inline int64_t collapse_huge(const std::vector<ByteSpan>& ranges, const std::atomic<bool>* stop = nullptr) {
  int64_t done = 0;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr int kCollapse = 25;  // MADV_COLLAPSE (Linux 6.1); older headers lack the name
  for (const ByteSpan& in : ranges) {
    madvise((void*)in.lo, in.hi - in.lo, MADV_HUGEPAGE);  // ENOMEM over a hole still advises the rest
    for (uintptr_t p = in.lo; p < in.hi; p += kHugePage) {
      if (stop && stop->load(std::memory_order_relaxed)) return done;
      if (madvise((void*)p, kHugePage, kCollapse) == 0) done += (int64_t)kHugePage;
    }
  }
#else
  (void)ranges;
  (void)stop;
#endif
  return done;
}

/** huge_ranges then collapse_huge, now (0 with APL_HUGE=0). */
inline int64_t advise_huge_pages(const std::vector<ByteSpan>& spans) {
  return huge_mode() == HugeMode::kOff ? 0 : collapse_huge(huge_ranges(spans));
}

/** What advise_arena found and did: the first 2 MiB boundary inside the buffer (bytes from its start) and the
 * whole 2 MiB pages from there (bytes), and whether the kernel took MADV_HUGEPAGE for them. */
struct ArenaAdvice {
  int64_t offset = 0, bytes = 0;
  bool advised = false;
};
using MadviseFn = int (*)(void*, size_t, int);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
inline int sys_madvise(void* p, size_t n, int a) { return madvise(p, n, a); }
#else
inline int sys_madvise(void*, size_t, int) { return -1; }
#endif

/**
 * The weight arena's advice (the loader's way to huge pages, before the collapse above): a buffer not yet
 * touched gets MADV_HUGEPAGE on its whole 2 MiB pages, so the first touch (the loader reading the packed
 * bytes into it) faults in 2 MiB pages and nothing is left to collapse. The caller places the weights from
 * `offset` on. With APL_HUGE=0, or where madvise refuses (`fn`: tests pass one that fails), advised is false
 * and the pages stay 4 KiB (the model's collapse is then the fallback).
 */
inline ArenaAdvice advise_arena(uintptr_t p, size_t n, MadviseFn fn = sys_madvise) {
  const ByteSpan in = huge_interior({p, p + n});
  ArenaAdvice a;
  a.offset = (int64_t)(in.lo - p);
  if (a.offset > (int64_t)n) a.offset = (int64_t)n;
  a.bytes = (int64_t)(in.hi - in.lo);
#if defined(MADV_HUGEPAGE)
  if (a.bytes > 0 && huge_mode() != HugeMode::kOff)
    a.advised = fn((void*)in.lo, (size_t)a.bytes, MADV_HUGEPAGE) == 0;
#else
  (void)fn;
#endif
  return a;
}

/**
 * Faults the whole 2 MiB pages of [lo, hi) in, last page first (MADV_POPULATE_WRITE, Linux 5.14+; nothing is
 * written): the arena's loader reads from the front while this runs on another thread from the back, so the
 * two share the first-touch cost (clearing the pages: in a VM that returns free 2 MiB blocks to the host,
 * about 1 s per 0.7 GB here) instead of the reads paying it all; pages the reads faulted in first cost it a
 * page-table walk. Stops at the first refusal (an older kernel, memory short); returns the bytes it faulted
 * in.
 */
inline int64_t populate_back(uintptr_t lo, uintptr_t hi, MadviseFn fn = sys_madvise) {
  constexpr int kPopulateWrite = 23;  // MADV_POPULATE_WRITE (Linux 5.14); older headers lack the name
  const ByteSpan in = huge_interior({lo, hi});
  int64_t done = 0;
  for (uintptr_t p = in.hi; p > in.lo; p -= kHugePage) {
    if (fn((void*)(p - kHugePage), kHugePage, kPopulateWrite) != 0) break;
    done += (int64_t)kHugePage;
  }
  return done;
}

/** The bytes a weight's kernels stream (packed codes and their parameters, or the float data). */
inline void weight_spans(const Linear& w, std::vector<ByteSpan>& out) {
  auto add = [&](const uint8_t* p, int64_t n) {
    if (p && n > 0) out.push_back({(uintptr_t)p, (uintptr_t)p + (uintptr_t)n});
  };
  if (w.kind == 1) return add(w.data, w.rows * w.cols * dtype_size(w.dtype));
  add(w.q, w.rows * w.row_bytes());
  if (w.kind == 0) {
    const int64_t pb = w.rows * w.gpr() * (w.f16 ? 2 : 4);
    add(w.scales, pb);
    add(w.zeros, pb);
  } else if (w.kind == 2 && w.kq_super > 0) {
    const int64_t sb = w.rows * ((w.cols + w.kq_super - 1) / w.kq_super) * 2;
    add(w.codes, w.rows * ((w.gpr() * (w.kq_sbits + w.kq_mbits) + 7) / 8));
    add(w.kd, sb);
    add(w.kdmin, sb);
  }
}

}  // namespace infer
}  // namespace apl
