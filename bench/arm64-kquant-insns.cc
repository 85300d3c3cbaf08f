// Driver for bench/arm64-kquant-insns.sh: quantizes 8 rows × 3072 of N(0, 1) float32 to kquant (argv[2]: 4 =
// 4-bit g24/super 1536, 2 = 2-bit g16/super 256) on one thread with the selected kernel (APL_FORCE_SCALAR=1:
// the reference), metrics on; argv[1] = 0 does everything but the quantization (the baseline to subtract).
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "../native/src/kquant_engine.h"

using namespace apl;

int main(int argc, char** argv) {
  if (argc < 3) return 2;
  const int64_t rows = 8, cols = 3072;
  const bool quantize = atoi(argv[1]) != 0;
  KqParams p = atoi(argv[2]) == 2 ? KqParams{2, 16, 256, 4, 4} : KqParams{4, 24, 1536, 5, 6};
  std::mt19937 g(1);
  std::normal_distribution<float> d;
  std::vector<float> x((size_t)(rows * cols));
  for (auto& v : x) v = d(g);
  std::vector<uint8_t> q((size_t)(rows * cols)), c((size_t)(rows * cols)), dd((size_t)(rows * 64)), mm = dd;
  const KqKernel& k = kq_select_kernel();  // its check against the reference runs in both runs
  KqJob j{reinterpret_cast<const uint8_t*>(x.data()),
          kF32,
          rows,
          cols,
          p,
          true,
          q.data(),
          c.data(),
          dd.data(),
          mm.data()};
  if (quantize && kq_quantize_cpu(j, 1, nullptr, &k).status != kOk) return 1;
  printf("%s\n", k.name);
  return 0;
}
