// A/B of the kquant wide decode's two kernels on weights read from DRAM: a row pair block by block (block b of
// row a, then block b of row b: wide_rows in native/src/cpu/infer_kquant_wide_rows.h, APL_WIDE_SEQ=0) against
// memory order (wide_rows_dec in native/src/cpu/infer_kquant_wide_dec.h: one row at a time; APL_KS_ONLY=1 runs
// it alone, for perf record). APL_KS_WEIGHTS
// (12) distinct kquant weights of APL_KS_ROWS × APL_KS_COLS (5632 × 2048) in convert's preset of APL_KS_BITS
// (4: g24/1536, codes 5+6; 2: g16/256, codes 4+4), random codes and f16 d/dmin, each call on the weight used
// longest ago, the two orders alternating call by call, 1 and 2 threads, through kq_linear (the decode split
// of kquant_linear.cc) with the kernel APL_KS_KERNEL (vnni: the 512-bit one of infer_kquant_wide.h; avx2: the
// 256-bit one of infer_kquant_wide2.h). Prints best and median GB/s of each order (bytes: Linear::bytes) and
// checks that both give the same outputs bit for bit. Build and run: bash bench/native/kq-stream.sh
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "../../native/src/infer/kquant_linear.h"
#include "../../native/src/infer/kquant_ref.h"
#include "../../native/src/infer/pool.h"
#include "ab-orders.h"

using namespace apl::infer;

int main() {
  const int64_t rows = env("APL_KS_ROWS", 5632), cols = env("APL_KS_COLS", 2048);
  const int bits = (int)env("APL_KS_BITS", 4);
  const int nw = (int)env("APL_KS_WEIGHTS", 12), reps = (int)env("APL_KS_REPS", 200);
  const bool only = env("APL_KS_ONLY", 0) == 1;
  const char* kname = std::getenv("APL_KS_KERNEL") ? std::getenv("APL_KS_KERNEL") : "vnni";
  const KqKernel* k = std::strcmp(kname, "avx2") == 0 ? kq_avx2_kernel() : kq_vnni_kernel();
  if (!k) {
    std::fprintf(stderr, "kq-stream: kernel %s not compiled in\n", kname);
    return 1;
  }
  const int group = bits == 4 ? 24 : 16, super = bits == 4 ? 1536 : 256, sbits = bits == 4 ? 5 : 4,
            mbits = bits == 4 ? 6 : 4;
  std::mt19937 rng(1);
  struct Wt {
    std::vector<uint8_t> q, c, d, m;
    Linear w;
  };
  std::vector<Wt> ws((size_t)nw);
  for (auto& t : ws) {
    Linear& w = t.w;
    w.kind = 2, w.rows = rows, w.cols = cols, w.bits = bits, w.group = group;
    w.kq_group = group, w.kq_super = super, w.kq_sbits = sbits, w.kq_mbits = mbits;
    t.q.resize((size_t)(rows * w.row_bytes()));
    for (auto& c : t.q) c = (uint8_t)rng();
    t.c.resize((size_t)(rows * kq_codes_row_bytes(w)));
    for (auto& c : t.c) c = (uint8_t)rng();
    t.d.resize((size_t)(rows * kq_supers(w) * 2));
    t.m.resize(t.d.size());
    for (size_t i = 0; i < t.d.size(); i += 2) {
      const uint16_t dv = (uint16_t)(0x1800 + rng() % 0x400), mv = (uint16_t)(0x1400 + rng() % 0x400);
      std::memcpy(&t.d[i], &dv, 2);
      std::memcpy(&t.m[i], &mv, 2);
    }
    w.q = t.q.data(), w.codes = t.c.data(), w.kd = t.d.data(), w.kdmin = t.m.data();
    if (*kq_check_linear(w)) {
      std::fprintf(stderr, "kq-stream: %s\n", kq_check_linear(w));
      return 1;
    }
  }
  std::vector<float> x((size_t)cols);
  for (int64_t i = 0; i < cols; i++) x[(size_t)i] = (float)std::sin((double)i * 0.37);
  const double bytes = (double)ws[0].w.bytes();
  std::printf("%s: %lld x %lld, %d-bit g%d/%d codes %d+%d, %d weights (%.1f MB each), %d calls per order\n",
              k->name, (long long)rows, (long long)cols, bits, group, super, sbits, mbits, nw, bytes / 1e6,
              reps);
  for (int threads : {1, 2}) {
    Pool& pool = shared_pool(threads);
    ActQ act;
    ab_orders(
        threads, reps, nw, rows, bytes, [](bool seq) { kq_wide_seq() = seq; },
        [&](int i, float* y) { kq_linear(ws[(size_t)i].w, x.data(), 1, y, pool, *k, act); }, only);
  }
  return 0;
}
