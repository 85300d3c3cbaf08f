// Driver for bench/arm64-attention-insns.sh: one attention call (attention.h's blocked form, float16 cache)
// for a prompt of argv[3] tokens at once on a shape argv[2] (tiny: TinyLlama's 32 query heads over 4 KV heads
// × 64; gemma: 8 / 1 × 256; mha: 16 / 16 × 128), one thread, with the implementation argv[4] (scalar, neon)
// or, for argv[4] = ref, attention_reference with the scalar kv ops (the per-(query, key) form). argv[1] = 0
// does everything but the attention call (the baseline to subtract: setup, random data, the NEON
// self-check). Prints the implementation's name.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "../native/src/infer/attention.h"

using namespace apl;
using namespace apl::infer;

int main(int argc, char** argv) {
  if (argc < 5) return 2;
  const bool run = atoi(argv[1]) != 0;
  const std::string shape = argv[2], impl = argv[4];
  const int64_t n = atoi(argv[3]);
  AttnArgs a;
  a.heads = shape == "gemma" ? 8 : shape == "mha" ? 16 : 32;
  a.kv_heads = shape == "gemma" ? 1 : shape == "mha" ? 16 : 4;
  a.head_dim = shape == "gemma" ? 256 : shape == "mha" ? 128 : 64;
  a.n = n;
  const int64_t D = a.head_dim, kvd = a.kv_heads * D;
  std::mt19937 g(1);
  std::normal_distribution<float> nd;
  std::vector<float> q((size_t)(n * a.heads * D)), kf((size_t)(n * kvd)), vf(kf.size()), out(q.size());
  for (auto& x : q) x = nd(g) * 0.5f;
  for (auto& x : kf) x = nd(g);
  for (auto& x : vf) x = nd(g);
  const KvOps& kv = kv_ops(true);
  std::vector<uint16_t> k16(kf.size()), v16(vf.size());
  kv.store(kf.data(), k16.data(), (int64_t)kf.size());
  kv.store(vf.data(), v16.data(), (int64_t)vf.size());
  a.q = q.data();
  a.k16 = k16.data();
  a.v16 = v16.data();
  a.out = out.data();
  AttnImpl v[3];
  const int ni = attn_available(attn_order(kv), v);  // the NEON self-check runs in both runs
  AttnImpl use = v[0];
  for (int i = 0; i < ni; i++)
    if (impl == v[i].name) use = v[i];
  Pool& pool = shared_pool(1);
  if (run) {
    if (impl == "ref") {
      static const Kernel none{"none", nullptr, nullptr, nullptr, nullptr, nullptr};
      attention_reference(a, kv_ops(false), none, pool);
    } else {
      attention_blocked(a, use, pool);
    }
  }
  printf("%s\n", impl == "ref" ? "reference" : use.name);
  return 0;
}
