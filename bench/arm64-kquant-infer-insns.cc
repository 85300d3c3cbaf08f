// Driver for bench/arm64-kquant-infer-insns.sh: one linear layer y = x·Ŵᵀ on a kquant weight (argv[2]: 4 =
// 4-bit g24 / super 1536, codes 5 + 6; 2 = 2-bit g16 / super 256, codes 4 + 4) or, for comparison, a
// groupwise weight of the same bits with groups of 64 (argv[2]: g4, g2), 256 × 4096 (TinyLlama's hidden
// size), argv[3] tokens, one thread, with the kernel the process would choose (APL_FORCE_SCALAR=1: the
// reference; APL_NO_DOTPROD=1: the plain NEON one). argv[1] = 0 does everything but the linear layer (the
// baseline to subtract: setup, random data, the kernel choice and its self-check). Prints the kernel's name.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "../native/src/infer/kquant_linear.h"
#include "../native/src/infer/kquant_ref.h"
#include "../native/src/infer/linear.h"

using namespace apl;
using namespace apl::infer;

int main(int argc, char** argv) {
  if (argc < 4) return 2;
  const bool run = atoi(argv[1]) != 0;
  // g4: groupwise g64; o2: kquant 2-bit g24; w4: groupwise g24 (the natural-order paths: o, w, and 8 bits)
  const bool odd = argv[2][0] == 'o' || argv[2][0] == 'w', groupwise = argv[2][0] == 'g' || argv[2][0] == 'w';
  const int bits = atoi(argv[2] + (argv[2][0] >= 'a' ? 1 : 0));
  const int64_t rows = 256, cols = 4096, n = atoi(argv[3]);
  std::mt19937 g(1);
  Linear w;
  w.rows = rows;
  w.cols = cols;
  w.bits = bits;
  std::vector<uint8_t> q, codes, d, dm, s, z;
  if (groupwise) {
    w.kind = 0;
    w.group = odd ? 24 : 64;
    w.f16 = true;
  } else {
    w.kind = 2;
    w.group = w.kq_group = bits == 2 ? 16 : 24;
    w.kq_super = bits == 2 ? 256 : 1536;
    w.kq_sbits = bits == 2 ? 4 : 5;
    w.kq_mbits = bits == 2 ? 4 : 6;
    if (bits == 8 || odd) {  // NEON's natural-order path: 8-bit g64 / super 256; o2: 2-bit g24 / super 96
      w.group = w.kq_group = odd ? 24 : 64;
      w.kq_super = odd ? 96 : 256;
      w.kq_sbits = w.kq_mbits = 6;
    }
  }
  q.resize((size_t)(rows * w.row_bytes()));
  for (auto& b : q) b = (uint8_t)g();
  w.q = q.data();
  if (groupwise) {
    s.resize((size_t)(rows * w.gpr() * 2));
    z.resize(s.size());
    for (size_t i = 0; i < s.size(); i += 2) {
      const uint16_t hs = f32_to_f16(0.01f + (float)(g() % 100) * 1e-4f), hz = f32_to_f16((float)(g() % 8));
      memcpy(&s[i], &hs, 2);
      memcpy(&z[i], &hz, 2);
    }
    w.scales = s.data();
    w.zeros = z.data();
  } else {
    codes.resize((size_t)(rows * kq_codes_row_bytes(w)));
    for (auto& b : codes) b = (uint8_t)g();
    d.resize((size_t)(rows * kq_supers(w) * 2));
    dm.resize(d.size());
    for (size_t i = 0; i < d.size(); i += 2) {
      const uint16_t hd = f32_to_f16(1e-3f * (float)(1 + g() % 50)),
                     hm = f32_to_f16(1e-2f * (float)(1 + g() % 50));
      memcpy(&d[i], &hd, 2);
      memcpy(&dm[i], &hm, 2);
    }
    w.codes = codes.data();
    w.kd = d.data();
    w.kdmin = dm.data();
  }
  std::normal_distribution<float> nd;
  std::vector<float> x((size_t)(n * cols)), y((size_t)(n * rows));
  for (auto& v : x) v = nd(g);
  const Kernel& k = select_kernel();
  const KqKernel& kq = kq_kernel_for(k);  // the kquant kernel's self-check runs in both runs
  Pool& pool = shared_pool(1);
  ActQ act;
  {  // both runs: a tiny groupwise g24 layer, so that a path's first-use self-check is not counted
    Linear t;
    t.kind = 0;
    t.rows = 2;
    t.cols = 48;
    t.bits = bits == 8 ? 8 : 4;
    t.group = 24;
    t.f16 = true;
    std::vector<uint8_t> tq((size_t)(2 * t.row_bytes()), 0x35), ts(2 * 2 * 2, 0x3c);  // f16 1.0 scales
    t.q = tq.data();
    t.scales = t.zeros = ts.data();
    float ty[2];
    linear(t, x.data(), 1, ty, pool, k, act);
  }
  if (run) linear(w, x.data(), n, y.data(), pool, k, act);
  printf("%s\n", groupwise ? k.name : kq.name);
  return 0;
}
