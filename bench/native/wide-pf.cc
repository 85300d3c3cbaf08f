// A/B of the AVX-512 wide decode kernel's software prefetch modes (x86::wide_pf_mode: 1 every line into L1, the
// default; 0 none; 2 every line into L2; 3 every other line into L1) on weights read from DRAM in 2 MiB pages
// (one arena advised MADV_HUGEPAGE before the first touch, as the loader's: native/weight-arena.ts).
// APL_WP_WEIGHTS (24) distinct weights of APL_WP_ROWS × APL_WP_COLS (5632 × 2048), 4-bit g64, f16 scales; each
// call on the weight used longest ago, the modes (APL_WP_MODES, "1,0,2,3") taking turns call by call, 1 and 2
// threads. Prints best and median GB/s per mode and checks every mode's outputs against mode 1's bit for bit.
// APL_WP_DEC=1: the modes are the decode's forms instead (x86::wide_dec: 1 one row at a time, the default; 0 a
// row pair, as before), APL_WP_MODES "1,0"; APL_WP_GF=1: the modes are GFNI planes on (1) and off (0)
// (x86::wide_gfni), APL_WP_MODES "1,0"; APL_WP_BITS (4) and APL_WP_GROUP (64) pick the weight.
// Build and run (x86-64 with AVX-512 VNNI): bash bench/native/wide-stream.sh wide-pf
#define APL_INFER_VNNI 1
#define APL_INFER_WIDE 1
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "../../native/src/cpu/infer_x86.h"
#include "../../native/src/infer/hugepages.h"
#include "../../native/src/infer/pool.h"
#include "ab-orders.h"

using namespace apl::infer;

int main() {
  const int64_t rows = env("APL_WP_ROWS", 5632), cols = env("APL_WP_COLS", 2048), group = env("APL_WP_GROUP", 64);
  const bool dec = env("APL_WP_DEC", 0) != 0, gf = env("APL_WP_GF", 0) != 0;
  const int bits = (int)env("APL_WP_BITS", 4), nw = (int)env("APL_WP_WEIGHTS", 24), reps = (int)env("APL_WP_REPS", 120);
  std::vector<int> modes;
  const char* mv = std::getenv("APL_WP_MODES");
  for (const char* p = mv ? mv : dec || gf ? "1,0" : "1,0,2,3"; *p;) {
    modes.push_back(std::atoi(p));
    while (*p && *p != ',') p++;
    if (*p) p++;
  }
  Linear proto;
  proto.rows = rows, proto.cols = cols, proto.bits = bits, proto.group = group, proto.f16 = true;
  const size_t qb = (size_t)(rows * proto.row_bytes()), pb = (size_t)(rows * proto.gpr() * 2);
  const size_t per = (qb + 2 * pb + 63) / 64 * 64, total = per * (size_t)nw + kHugePage;
  uint8_t* arena = (uint8_t*)std::aligned_alloc(kHugePage, (total + kHugePage - 1) / kHugePage * kHugePage);
  const ArenaAdvice adv = advise_arena((uintptr_t)arena, total);
  std::mt19937 rng(1);
  std::vector<Linear> ws((size_t)nw, proto);
  for (int i = 0; i < nw; i++) {
    uint8_t* q = arena + adv.offset + per * (size_t)i;
    for (size_t k = 0; k < qb; k++) q[k] = (uint8_t)rng();
    for (size_t k = 0; k < pb; k += 2) {
      const uint16_t sv = (uint16_t)(0x1800 + rng() % 0x400), zv = (uint16_t)(0x4400 + rng() % 0x600);
      memcpy(q + qb + k, &sv, 2);
      memcpy(q + qb + pb + k, &zv, 2);
    }
    ws[(size_t)i].q = q, ws[(size_t)i].scales = q + qb, ws[(size_t)i].zeros = q + qb + pb;
  }
  std::vector<float> x((size_t)cols);
  for (int64_t i = 0; i < cols; i++) x[(size_t)i] = (float)std::sin((double)i * 0.37);
  ActQ act;
  act.resize(1, cols, group);
  x86::quantize_act_wide(x.data(), cols, group, bits, act.xq_at(0), act.dx.data(), act.xsum.data());
  const double bytes = (double)ws[0].bytes();
  std::printf("%lld x %lld, %d-bit g%lld, %d weights (%.1f MB each) in 2 MiB pages (advised %d), %d calls per %s\n",
              (long long)rows, (long long)cols, bits, (long long)group, nw, bytes / 1e6, (int)adv.advised, reps,
              gf ? "GFNI setting" : dec ? "decode form" : "prefetch mode");
  auto set_mode = [&](int m) {
    if (gf)
      x86::wide_gfni() = m != 0 && __builtin_cpu_supports("gfni");
    else if (dec)
      x86::wide_dec() = m != 0;
    else
      x86::wide_pf_mode() = m;
  };
  for (int threads : {1, 2}) {
    Pool& pool = shared_pool(threads);
    std::vector<int64_t> b(1, 0);
    for (int i = 1; i <= threads; i++) b.push_back(rows * i / threads / 2 * 2);
    b.back() = rows;
    auto run = [&](int i, float* y) {
      pool.run((int64_t)b.size() - 1, [&](int64_t k) {
        x86::qrows<true>(ws[(size_t)i], b[(size_t)k], b[(size_t)k + 1], act, 0, 1, y, rows);
      });
    };
    std::vector<std::vector<float>> ref((size_t)nw, std::vector<float>((size_t)rows));
    set_mode(1);
    for (int i = 0; i < nw; i++) run(i, ref[(size_t)i].data());
    std::vector<std::vector<double>> t(modes.size());
    std::vector<float> y((size_t)rows);
    bool same = true;
    int call = 0;
    for (int r = 0; r < reps; r++)
      for (size_t m = 0; m < modes.size(); m++) {
        const int w = call++ % nw;
        set_mode(modes[m]);
        const auto c0 = std::chrono::steady_clock::now();
        run(w, y.data());
        t[m].push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - c0).count());
        same = same && std::memcmp(y.data(), ref[(size_t)w].data(), y.size() * 4) == 0;
      }
    // the bound at the same moments: the next weight's bytes read with 8-byte loads (inferMemRead's loop),
    // one read after each round of modes
    std::vector<double> rd;
    volatile uint64_t sink = 0;
    for (int r = 0; r < reps; r++) {
      const Linear& w = ws[(size_t)(call++ % nw)];
      const int64_t n = (int64_t)(w.bytes() / 8);
      const auto c0 = std::chrono::steady_clock::now();
      std::vector<uint64_t> part((size_t)threads, 0);
      pool.run(threads, [&](int64_t k) {
        uint64_t a[4] = {0, 0, 0, 0};
        for (int64_t i = n * k / threads; i + 4 <= n * (k + 1) / threads; i += 4)
          for (int j = 0; j < 4; j++) {
            uint64_t v;
            memcpy(&v, w.q + (i + j) * 8, 8);
            a[j] += v;
          }
        part[(size_t)k] = a[0] + a[1] + a[2] + a[3];
      });
      rd.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - c0).count());
      for (uint64_t v : part) sink = sink + v;
    }
    std::sort(rd.begin(), rd.end());
    std::printf("%d thread(s): plain read best %.1f median %.1f GB/s;", threads, bytes / rd[0] / 1e9,
                bytes / rd[rd.size() / 2] / 1e9);
    for (size_t m = 0; m < modes.size(); m++) {
      std::sort(t[m].begin(), t[m].end());
      std::printf("  mode %d best %.1f median %.1f GB/s;", modes[m], bytes / t[m][0] / 1e9,
                  bytes / t[m][t[m].size() / 2] / 1e9);
    }
    std::printf(" outputs %s\n", same ? "identical" : "DIFFER");
  }
  std::free(arena);
  return 0;
}
