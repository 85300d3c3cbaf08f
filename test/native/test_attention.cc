// The blocked attention (native/src/infer/attention.h) against the reference form (one dot / axpy call per
// (query, key), std::exp: the forward pass's first attention) over GQA ratios 1..8, head_dim 8..256 (with the
// 8-wide and one-by-one tails), odd lengths, prompts continuing a cache, sliding windows, float16 and float32
// caches, 1 and 2 threads:
//  - with the C library's exp (std_exp) the blocked form is bit-exact with the reference, in both float
//  orders
//    (the scalar / NEON one and the x86 one), on every implementation this CPU runs;
//  - with attn_exp (the default) every implementation of an order gives the same bits, within a stated bound
//  of
//    the reference;
//  - a prompt in one call = the same queries in pieces (the decode path), bit for bit;
//  - attn_exp within 2 ulp of std::exp on [−87, 0], 0 below; silu_mul's SIMD forms = its scalar one, within 4
//  ulp
//    of float64.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "../../native/src/infer/attention.h"
#include "check.h"

using namespace apl;
using namespace apl::infer;

static void test_exp() {
  double worst = 0;
  float at = 0;
  for (int i = 0; i <= 2000000; i++) {
    const float x = -87.0f * (float)i / 2000000.0f;
    const double e = std::exp((double)x), got = attn_exp(x);
    const double rel = std::fabs(got - e) / e;
    if (rel > worst) worst = rel, at = x;
  }
  // 2 ulp of float32 (2^-23 relative each)
  CHECK(worst <= 2.0 * 1.1920929e-7, "attn_exp: relative error %.3g at %.9g (bound 2 ulp)", worst, at);
  CHECK(attn_exp(0.0f) == 1.0f && attn_exp(-87.5f) == 0.0f && attn_exp(-INFINITY) == 0.0f,
        "attn_exp(0) %.9g, (−87.5) %.9g, (−inf) %.9g", attn_exp(0.0f), attn_exp(-87.5f), attn_exp(-INFINITY));
  CHECK(std::isnan(attn_exp(NAN)), "attn_exp(NaN) is not NaN");
  CHECK(std::isinf(attn_exp(88.5f)) && std::fabs(attn_exp(88.0f) / std::exp(88.0) - 1) < 3e-7,
        "attn_exp(88.5) %.9g, (88) %.9g", attn_exp(88.5f), attn_exp(88.0f));
  printf("  attn_exp: max relative error %.3g of exp on [-87, 0] (at %.6g)\n", worst, at);
}

static void test_silu() {
  std::vector<float> x;
  for (int i = -4000; i <= 4000; i++) x.push_back((float)i * 0.025f);  // −100 … 100
  for (float v : {0.0f, -0.0f, 1e-30f, -1e-30f, 87.0f, -87.0f, 88.5f, -88.5f, 1e30f, -1e30f}) x.push_back(v);
  std::vector<float> u(x.size());
  std::mt19937 g(77);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (auto& v : u) v = nd(g);
  std::vector<float> want = x;
  silu_mul(want.data(), u.data(), (int64_t)want.size(), 0);
  double worst = 0, tiny = 0;
  for (size_t i = 0; i < x.size(); i++) {
    const double v = x[i], e = v / (1.0 + std::exp(-v)) * (double)u[i];
    const double d = std::fabs((double)want[i] - e);
    if (v >= -80.0 && std::fabs(v) < 1e29)
      worst = std::max(worst, d / std::max(std::fabs(e), 1e-300));
    else if (v < -80.0)
      tiny = std::max(tiny, d);  // results below 1e-33 in magnitude (exp(−v) = inf past 88: −0)
  }
  // v / (1 + exp(−v)) then × u: each rounding ≤ ½ ulp, exp ≤ 2 ulp (scaled by ≤ 1 in the denominator's error)
  CHECK(worst <= 4.0 * 1.1920929e-7, "silu_mul: relative error %.3g against float64 (bound 4 ulp)", worst);
  CHECK(tiny <= 1e-33, "silu_mul below −80: |error| %.3g", tiny);
  CHECK(want[x.size() - 2] == 1e30f * u[x.size() - 2], "silu_mul(1e30) is not 1e30");
  for (int isa = 1; isa <= 3; isa++) {
    AttnImpl v[3];
    const int n = attn_available(isa == 3 ? AttnOrder::kLanes8 : AttnOrder::kFma16, v);
    bool have = false;
    for (int i = 0; i < n; i++) have = have || v[i].isa == isa;
    if (!have) continue;
    for (size_t len : {x.size(), (size_t)1, (size_t)7, (size_t)17, (size_t)33}) {
      std::vector<float> got(x.begin(), x.begin() + (long)len), ref(want.begin(), want.begin() + (long)len);
      silu_mul(got.data(), u.data(), (int64_t)len, isa);
      size_t at = 0;
      CHECK(same_bits(got, ref, &at), "silu_mul isa %d (length %zu) differs from the scalar one at %zu", isa,
            len, at);
    }
  }
  printf("  silu_mul: max relative error %.3g against float64\n", worst);
}

struct Case {
  int64_t heads, kv_heads, D, n, pos, window;
};

/** A float32 kernel table whose dotf / axpyf are the kv ops' order (the reference's float32-cache path). */
static float dot_lanes8(const float* a, const float* b, int64_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (int64_t i = 0; i < n; i++) {
    float p = a[i] * b[i];
    acc[i & 7] += p;
  }
  return reduce8(acc);
}
static void axpy_lanes8(float s, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    float p = s * x[i];
    y[i] += p;
  }
}
static float dot_fma16(const float* a, const float* b, int64_t n) {  // the x86 dotf's order, with std::fma
  float l[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int k = 0; k < 16; k++) l[k] = std::fma(a[i + k], b[i + k], l[k]);
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; k++) l[k] = std::fma(a[i + k], b[i + k], l[k]);
  float x[8];
  for (int k = 0; k < 8; k++) x[k] = l[k] + l[k + 8];
  float r = ((x[0] + x[4]) + (x[2] + x[6])) + ((x[1] + x[5]) + (x[3] + x[7]));
  for (; i < n; i++) {
    float p = a[i] * b[i];
    r += p;
  }
  return r;
}
static void axpy_fma16(float s, const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; k++) y[i + k] = std::fma(s, x[i + k], y[i + k]);
  for (; i < n; i++) {
    float p = s * x[i];
    y[i] += p;
  }
}
static const Kernel kLanes8Kernel{"lanes8", nullptr, nullptr, nullptr, dot_lanes8, axpy_lanes8};
static const Kernel kFma16Kernel{"fma16", nullptr, nullptr, nullptr, dot_fma16, axpy_fma16};

static void test_case(const Case& c, const KvOps& kv, bool f16, double* worst) {
  const int64_t D = c.D, total = c.pos + c.n, kvd = c.kv_heads * D;
  const AttnOrder order = attn_order(kv);
  const Kernel& fk = order == AttnOrder::kFma16 ? kFma16Kernel : kLanes8Kernel;
  std::mt19937 g((unsigned)(c.heads * 1000003 + c.kv_heads * 1009 + D * 31 + c.n * 7 + c.pos + c.window));
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> q((size_t)(c.n * c.heads * D)), k32((size_t)(total * kvd)), v32(k32.size());
  for (auto& x : q) x = nd(g) * 0.6f;
  for (auto& x : k32) x = nd(g);
  for (auto& x : v32) x = nd(g);
  std::vector<uint16_t> k16(k32.size()), v16(v32.size());
  kv.store(k32.data(), k16.data(), (int64_t)k32.size());
  kv.store(v32.data(), v16.data(), (int64_t)v32.size());
  AttnArgs a;
  a.heads = c.heads;
  a.kv_heads = c.kv_heads;
  a.head_dim = D;
  a.window = c.window;
  a.n = c.n;
  a.pos = c.pos;
  a.q = q.data();
  if (f16) {
    a.k16 = k16.data();
    a.v16 = v16.data();
  } else {
    a.k32 = k32.data();
    a.v32 = v32.data();
  }
  const size_t outn = (size_t)(c.n * c.heads * D);
  std::vector<float> ref(outn), got(outn), first(outn);
  char what[200];
  snprintf(what, sizeof what, "heads %lld/%lld D %lld n %lld pos %lld window %lld %s kv %s",
           (long long)c.heads, (long long)c.kv_heads, (long long)D, (long long)c.n, (long long)c.pos,
           (long long)c.window, f16 ? kv.name : "f32", f16 ? "f16" : "f32");
  a.out = ref.data();
  attention_reference(a, kv, fk, shared_pool(1));
  double mx = 0;
  for (float x : ref) mx = std::max(mx, (double)std::fabs(x));
  AttnImpl impls[3];
  const int ni = attn_available(order, impls);
  for (int i = 0; i < ni; i++) {
    for (int threads : {1, 2}) {
      size_t at = 0;
      a.out = got.data();
      attention_blocked(a, impls[i], shared_pool(threads), true);
      CHECK(same_bits(got, ref, &at),
            "%s: blocked %s (std exp, %d threads) differs from the reference at %zu: %.9g vs %.9g", what,
            impls[i].name, threads, at, got[at], ref[at]);
      attention_blocked(a, impls[i], shared_pool(threads), false);
      if (i == 0 && threads == 1) {
        first = got;
        double d = 0;
        for (size_t j = 0; j < outn; j++) d = std::max(d, (double)std::fabs(got[j] - ref[j]));
        // each probability moves by ≤ 2 ulp of exp (and of the sum): ≤ ~1e-6 relative of |out|'s scale
        CHECK(d <= 2e-6 * mx, "%s: attn_exp moves the output by %.3g (max |out| %.3g)", what, d, mx);
        *worst = std::max(*worst, d / mx);
      } else {
        CHECK(same_bits(got, first, &at),
              "%s: blocked %s (%d threads) differs from blocked %s at %zu: %.9g vs %.9g", what, impls[i].name,
              threads, impls[0].name, at, got[at], first[at]);
      }
    }
    // the same queries in pieces (as decode runs them): every query's bits unchanged
    const int64_t cut[] = {c.n / 3, c.n / 3 + 1, c.n};
    int64_t t0 = 0;
    for (int64_t t1 : cut) {
      if (t1 <= t0) continue;
      AttnArgs p = a;
      p.n = t1 - t0;
      p.pos = c.pos + t0;
      p.q = q.data() + t0 * c.heads * D;
      p.out = got.data() + t0 * c.heads * D;
      attention_blocked(p, impls[i], shared_pool(2), false);
      t0 = t1;
    }
    size_t at = 0;
    CHECK(same_bits(got, first, &at), "%s: %s in pieces differs from one call at %zu", what, impls[i].name,
          at);
  }
}

int main() {
  test_exp();
  test_silu();
  // the last six: NEON's tiles (4-wide but not 8-wide heads, 3 rows of a token, one row per KV head at
  // decode, 12 rows)
  const Case cases[] = {
      {1, 1, 64, 1, 0, 0},     {1, 1, 64, 37, 0, 0},  {2, 1, 64, 19, 3, 0}, {3, 1, 64, 23, 0, 0},
      {4, 1, 64, 17, 5, 0},    {5, 1, 64, 9, 0, 0},   {6, 2, 64, 21, 2, 0}, {7, 1, 64, 11, 0, 0},
      {8, 1, 64, 33, 0, 0},    {32, 4, 64, 13, 4, 0}, {8, 8, 64, 15, 0, 0}, {8, 1, 256, 21, 0, 0},
      {2, 2, 256, 7, 6, 0},    {4, 2, 8, 29, 0, 0},   {4, 1, 24, 13, 0, 0}, {4, 2, 18, 27, 1, 0},
      {3, 3, 40, 9, 0, 0},     {4, 2, 6, 11, 0, 0},   {8, 2, 64, 41, 0, 5}, {4, 1, 64, 31, 7, 16},
      {1, 1, 64, 20, 0, 1},    {8, 1, 256, 25, 0, 8}, {6, 3, 72, 19, 2, 4}, {2, 1, 64, 1, 40, 9},
      {4, 1, 12, 9, 0, 0},     {3, 1, 36, 7, 2, 0},   {1, 1, 20, 5, 0, 0},  {12, 2, 28, 6, 3, 0},
      {16, 16, 128, 1, 30, 0}, {12, 1, 44, 3, 5, 6},
  };
  double worst = 0;
  int runs = 0;
  for (bool simd : {false, true}) {
    const KvOps& kv = kv_ops(simd);
    if (simd && strcmp(kv.name, "scalar") == 0) continue;
    for (bool f16 : {true, false})
      for (const Case& c : cases) {
        test_case(c, kv, f16, &worst);
        runs++;
      }
    AttnImpl v[3];
    const int n = attn_available(attn_order(kv), v);
    printf("  attention order of kv %s: blocked", kv.name);
    for (int i = 0; i < n; i++) printf(" %s", v[i].name);
    printf(" (selected %s)\n", attn_select(attn_order(kv)).name);
#if defined(__aarch64__)
    // the NEON form passes its self-check (a piece that disagrees with the scalar one drops it from the list)
    CHECK(attn_order(kv) == AttnOrder::kLanes8 && n == 2 && strcmp(v[1].name, "neon") == 0,
          "arm64: the NEON blocked attention is not available for kv %s (its self-check failed?)", kv.name);
#endif
  }
  printf("  attention: %d cases; with attn_exp max |blocked - reference| = %.3g of max |out|\n", runs, worst);
  printf("test_attention: %d checks, %d failures\n", checks, failures);
  return failures ? 1 : 0;
}
