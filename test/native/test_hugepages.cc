// The huge-page advice for a model's weights (native/src/infer/hugepages.h): which spans are merged, which
// 2 MiB pages lie inside them, and that advising and collapsing a buffer keeps every byte of it. Whether the
// kernel grants 2 MiB pages depends on the machine (THP setting, free memory), so that part is printed, not
// asserted; the bytes must be the same either way.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "../../native/src/direct_io.h"
#include "../../native/src/infer/hugepages.h"
#include "check.h"

using namespace apl::infer;

static void test_merge() {
  const uintptr_t M = 1 << 20;
  // unsorted; an empty span; a gap of exactly kHugeGap (bridged) and one byte more (not); an overlap
  const std::vector<ByteSpan> in = {{10 * M, 11 * M},        {3 * M, 4 * M},
                                    {5 * M, 5 * M},          {4 * M + kHugeGap, 6 * M},
                                    {20 * M, 21 * M},        {11 * M + kHugeGap + 1, 12 * M},
                                    {20 * M + 5, 20 * M + 9}};
  const std::vector<ByteSpan> m = merge_spans(in);
  const std::vector<ByteSpan> want = {
      {3 * M, 6 * M}, {10 * M, 11 * M}, {11 * M + kHugeGap + 1, 12 * M}, {20 * M, 21 * M}};
  CHECK(m.size() == want.size(), "merge_spans: %zu spans, expected %zu", m.size(), want.size());
  for (size_t i = 0; i < m.size() && i < want.size(); i++)
    CHECK(m[i].lo == want[i].lo && m[i].hi == want[i].hi,
          "merge_spans[%zu] = [%#zx, %#zx), expected [%#zx, %#zx)", i, (size_t)m[i].lo, (size_t)m[i].hi,
          (size_t)want[i].lo, (size_t)want[i].hi);
  CHECK(merge_spans({}).empty(), "merge_spans of nothing is not empty");
}

static void test_interior() {
  const uintptr_t P = kHugePage;
  struct Case {
    ByteSpan s, want;
  } cases[] = {
      {{P, 3 * P}, {P, 3 * P}},                // aligned both ends
      {{P + 1, 3 * P}, {2 * P, 3 * P}},        // start rounds up
      {{P, 3 * P - 1}, {P, 2 * P}},            // end rounds down
      {{P + 1, 2 * P + 5}, {2 * P, 2 * P}},    // no whole page: empty
      {{16, P - 1}, {P, P}},                   // shorter than a page
      {{P - 4096, 4 * P + 4096}, {P, 4 * P}},  // an allocator's page either side
  };
  for (const Case& c : cases) {
    const ByteSpan got = huge_interior(c.s);
    CHECK(got.lo == c.want.lo && got.hi == c.want.hi,
          "huge_interior([%#zx, %#zx)) = [%#zx, %#zx), expected [%#zx, %#zx)", (size_t)c.s.lo, (size_t)c.s.hi,
          (size_t)got.lo, (size_t)got.hi, (size_t)c.want.lo, (size_t)c.want.hi);
  }
}

static void test_advise() {
  // three buffers (as a model's weights: one allocation each), 5 MiB + a few bytes so the ends are not
  // aligned
  const size_t n = (5 << 20) + 77;
  std::vector<std::vector<uint8_t>> bufs(3, std::vector<uint8_t>(n));
  std::vector<ByteSpan> spans;
  for (size_t b = 0; b < bufs.size(); b++) {
    for (size_t i = 0; i < n; i++) bufs[b][i] = (uint8_t)(i * 131 + b * 7 + (i >> 12));
    spans.push_back({(uintptr_t)bufs[b].data(), (uintptr_t)bufs[b].data() + n});
  }
  uintptr_t inside = 0;
  for (const ByteSpan& s : merge_spans(spans)) {
    const ByteSpan in = huge_interior(s);
    inside += in.hi - in.lo;
  }
  setenv("APL_HUGE", "0", 1);
  CHECK(advise_huge_pages(spans) == 0, "APL_HUGE=0: pages were collapsed");
  unsetenv("APL_HUGE");
  const int64_t done = advise_huge_pages(spans);
  CHECK(done >= 0 && done % (int64_t)kHugePage == 0 && (uintptr_t)done <= inside,
        "advise_huge_pages: %lld bytes collapsed, %zu inside whole 2 MiB pages", (long long)done,
        (size_t)inside);
  const std::vector<ByteSpan> ranges = huge_ranges(spans);
  uintptr_t in_ranges = 0;
  for (const ByteSpan& r : ranges) {
    CHECK(r.lo % kHugePage == 0 && r.hi % kHugePage == 0 && r.hi > r.lo,
          "huge_ranges: [%#zx, %#zx) not whole pages", (size_t)r.lo, (size_t)r.hi);
    in_ranges += r.hi - r.lo;
  }
  CHECK(in_ranges == inside, "huge_ranges: %zu bytes, %zu inside whole pages", (size_t)in_ranges,
        (size_t)inside);
  const std::atomic<bool> stop{true};
  CHECK(collapse_huge(ranges, &stop) == 0, "collapse_huge went on after stop");
  int bad = 0;
  for (size_t b = 0; b < bufs.size(); b++)
    for (size_t i = 0; i < n; i++) bad += bufs[b][i] != (uint8_t)(i * 131 + b * 7 + (i >> 12));
  CHECK(bad == 0, "advise_huge_pages changed %d bytes", bad);
  std::printf("test_hugepages: %.1f of %.1f MiB inside whole 2 MiB pages collapsed (the kernel's choice)\n",
              (double)done / (1 << 20), (double)inside / (1 << 20));
}

// advise_arena (the weight arena's advice before the first touch) through a recording madvise: where the
// whole 2 MiB pages start and end, the one call it makes, a refusal, APL_HUGE=0, a buffer with no whole page.
struct Call {
  uintptr_t p = 0;
  size_t n = 0;
  int advice = 0, count = 0;
} g_call;
static int g_fail = 0;
static int fake_madvise(void* p, size_t n, int advice) {
  g_call = {(uintptr_t)p, n, advice, g_call.count + 1};
  return g_fail ? -1 : 0;
}

static void test_arena_advice() {
  const uintptr_t P = kHugePage;
  struct Case {
    uintptr_t p;
    size_t n;
    int64_t offset, bytes;
  } cases[] = {
      {P, 3 * P, 0, (int64_t)(3 * P)},                          // aligned both ends
      {P + 16, 3 * P + 77, (int64_t)P - 16, (int64_t)(2 * P)},  // a malloc header before, a tail after
      {3 * P - 4096, 2 * P + 4096, 4096, (int64_t)(2 * P)},     // a page before the boundary
      {P + 16, P, (int64_t)P - 16, 0},                          // no whole page
      {P + 16, 100, 100, 0},                                    // the boundary past the end: offset clamps
  };
  for (const Case& c : cases) {
    for (int fail = 0; fail < 2; fail++) {
      g_call = Call();
      g_fail = fail;
      const ArenaAdvice a = advise_arena(c.p, c.n, fake_madvise);
      CHECK(a.offset == c.offset && a.bytes == c.bytes,
            "advise_arena(%#zx, %zu): offset %lld bytes %lld, expected %lld %lld", (size_t)c.p, c.n,
            (long long)a.offset, (long long)a.bytes, (long long)c.offset, (long long)c.bytes);
      const int calls = c.bytes > 0 ? 1 : 0;
      CHECK(g_call.count == calls, "advise_arena(%#zx, %zu): %d madvise calls, expected %d", (size_t)c.p, c.n,
            g_call.count, calls);
      if (calls)
        CHECK(g_call.p == c.p + (uintptr_t)c.offset && g_call.n == (size_t)c.bytes &&
                  g_call.advice == MADV_HUGEPAGE,
              "advise_arena: madvise(%#zx, %zu, %d)", (size_t)g_call.p, g_call.n, g_call.advice);
      CHECK(a.advised == (calls && !fail), "advise_arena(%#zx, %zu), madvise %s: advised %d", (size_t)c.p,
            c.n, fail ? "refusing" : "taking it", (int)a.advised);
    }
  }
  g_fail = 0;
  g_call = Call();
  setenv("APL_HUGE", "0", 1);
  const ArenaAdvice off = advise_arena(P + 16, 3 * P, fake_madvise);
  unsetenv("APL_HUGE");
  CHECK(g_call.count == 0 && !off.advised && off.offset == (int64_t)P - 16 && off.bytes == (int64_t)(2 * P),
        "APL_HUGE=0: advise_arena called madvise %d times (advised %d, offset %lld)", g_call.count,
        (int)off.advised, (long long)off.offset);
}

// populate_back: whole 2 MiB pages only, last first, MADV_POPULATE_WRITE (23), stopping at the first refusal.
static std::vector<uintptr_t> g_pages;
static int g_refuse_at = -1;
static int page_madvise(void* p, size_t n, int advice) {
  if (n != kHugePage || advice != 23) return -1;
  if ((int)g_pages.size() == g_refuse_at) return -1;
  g_pages.push_back((uintptr_t)p);
  return 0;
}

static void test_populate_back() {
  const uintptr_t P = kHugePage;
  g_pages.clear();
  const int64_t done = populate_back(P + 16, 5 * P + 100, page_madvise);  // whole pages: [2P, 5P)
  CHECK(done == (int64_t)(3 * P), "populate_back: %lld bytes, expected %lld", (long long)done,
        (long long)(3 * P));
  const std::vector<uintptr_t> want = {4 * P, 3 * P, 2 * P};
  CHECK(g_pages == want, "populate_back: %zu pages, not 4P, 3P, 2P in that order", g_pages.size());
  g_pages.clear();
  g_refuse_at = 1;
  CHECK(populate_back(P, 5 * P, page_madvise) == (int64_t)P && g_pages.size() == 1,
        "populate_back went on after a refusal (%zu pages)", g_pages.size());
  g_refuse_at = -1;
  g_pages.clear();
  CHECK(populate_back(P + 16, 2 * P + 16, page_madvise) == 0 && g_pages.empty(),
        "populate_back: no whole page");
}

// The AnonHugePages of the mapping that holds p (/proc/self/smaps), -1 when it cannot be read.
static long anon_huge_kb(uintptr_t p) {
  FILE* f = std::fopen("/proc/self/smaps", "r");
  if (!f) return -1;
  char line[512];
  bool in = false;
  long kb = -1;
  while (std::fgets(line, sizeof line, f)) {
    unsigned long lo, hi;
    if (std::sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && std::strchr(line, '-') < std::strchr(line, ' ')) {
      in = p >= lo && p < hi;
      continue;
    }
    if (in && std::sscanf(line, "AnonHugePages: %ld kB", &kb) == 1) break;
  }
  std::fclose(f);
  return kb;
}

// The real thing: a fresh mapping, advised, then written (the loader's read); the bytes read back, and how
// many of them the kernel put in 2 MiB pages (its choice: printed). A 9 MiB fresh mapping.
static void test_arena_real() {
  const size_t n = (9 << 20) + 4096;  // at least 3 whole 2 MiB pages wherever it lands
  void* m = mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(m != MAP_FAILED, "mmap of %zu bytes failed", n);
  if (m == MAP_FAILED) return;
  uint8_t* b = (uint8_t*)m;
  const ArenaAdvice a = advise_arena((uintptr_t)b + 16, n - 16);
  CHECK(((uintptr_t)b + 16 + (uintptr_t)a.offset) % kHugePage == 0 && a.bytes >= (int64_t)(3 * kHugePage) &&
            a.bytes % (int64_t)kHugePage == 0,
        "advise_arena on a fresh mapping: offset %lld, %lld bytes", (long long)a.offset, (long long)a.bytes);
  CHECK(a.advised, "madvise(MADV_HUGEPAGE) refused on a fresh anonymous mapping");
  const int64_t in = populate_back((uintptr_t)b + 16 + (uintptr_t)a.offset,
                                   (uintptr_t)b + 16 + (uintptr_t)(a.offset + a.bytes));
  std::printf(
      "test_hugepages: arena: %lld of %lld kB populated before the first touch, %ld kB in 2 MiB pages\n",
      (long long)in >> 10, (long long)a.bytes >> 10, anon_huge_kb((uintptr_t)b + 16 + (uintptr_t)a.offset));
  for (size_t i = 0; i < n; i++) b[i] = (uint8_t)(i * 29 + (i >> 13));
  int bad = 0;
  for (size_t i = 0; i < n; i++) bad += b[i] != (uint8_t)(i * 29 + (i >> 13));
  CHECK(bad == 0, "the advised arena changed %d bytes", bad);
  std::printf(
      "test_hugepages: arena: %ld of %lld kB advised in 2 MiB pages after the first touch (the kernel's "
      "choice)\n",
      anon_huge_kb((uintptr_t)b + 16 + (uintptr_t)a.offset), (long long)a.bytes >> 10);
  munmap(m, n);
}

#if defined(__linux__) && defined(MADV_HUGEPAGE)
/** Bytes of this process's mappings advised MADV_HUGEPAGE ("hg" in smaps' VmFlags), or -1 without smaps. */
static long long advised_bytes() {
  FILE* f = std::fopen("/proc/self/smaps", "r");
  if (!f) return -1;
  char line[512];
  long long size_kb = 0, total = 0;
  while (std::fgets(line, sizeof line, f)) {
    if (std::strncmp(line, "Size:", 5) == 0) size_kb = std::atoll(line + 5);
    if (std::strncmp(line, "VmFlags:", 8) == 0 && std::strstr(line, " hg")) total += size_kb * 1024;
  }
  std::fclose(f);
  return total;
}
#endif

// The O_DIRECT writer's staging buffers (direct_io.h): 2 MiB or more each, advised MADV_HUGEPAGE before their
// first touch (a fresh 8 MiB buffer page by page: 2048 faults of ≈ 12 µs in this project's VMs); none with
// APL_HUGE=0.
static void test_staging_advice() {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  const long long before = advised_bytes();
  void* probe = nullptr;
  if (before < 0 || posix_memalign(&probe, kHugePage, kHugePage) != 0) {
    std::printf("test_hugepages: staging advice skipped (no /proc/self/smaps)\n");
    return;
  }
  const bool thp = madvise(probe, kHugePage, MADV_HUGEPAGE) == 0;
  std::free(probe);
  if (!thp) {
    std::printf("test_hugepages: staging advice skipped (the kernel refuses MADV_HUGEPAGE)\n");
    return;
  }
  char path[] = "/tmp/apl-staging-XXXXXX";
  const int fd = mkstemp(path);
  CHECK(fd >= 0, "mkstemp failed");
  if (fd < 0) return;
  close(fd);
  const long long base = advised_bytes();
  for (const bool off : {false, true}) {
    if (off) setenv("APL_HUGE", "0", 1);
    {
      apl::direct_io::Core c(path, false, 4 << 20, 3);
      CHECK(c.open_errno() == 0, "Core: errno %d", c.open_errno());
      const long long got = advised_bytes() - base;
      if (off)
        CHECK(got == 0, "APL_HUGE=0: %lld bytes of staging advised, expected none", got);
      else
        CHECK(got >= 3 * (4 << 20), "%lld bytes of staging advised, expected 3 × 4 MiB", got);
    }
    if (off) unsetenv("APL_HUGE");
  }
  unlink(path);
#endif
}

int main() {
  test_merge();
  test_interior();
  test_advise();
  test_arena_advice();
  test_populate_back();
  test_arena_real();
  test_staging_advice();
  std::printf("test_hugepages: %d checks, %d failures\n", checks, failures);
  return failures ? 1 : 0;
}
