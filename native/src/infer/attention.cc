// Prompt and decode attention (see attention.h). This file gets no -m flags: the x86 variants use function
// target attributes and run only where the CPU has them (chosen at run time).
#include "attention.h"

#include <string.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <vector>

#include "../env.h"
#include "../quant.h"

#if defined(__x86_64__) || defined(_M_X64)
#if defined(__GNUC__) && !defined(__clang__)
// GCC 12 reports _mm512_shuffle_f32x4's own undefined operand as maybe uninitialized
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
#define APL_ATTN_X86 1
#define APL_ATTN_AVX2 __attribute__((target("avx2,f16c,fma")))
#define APL_ATTN_AVX512 __attribute__((target("avx512f,avx512vl,avx512bw,avx2,f16c,fma")))
#elif defined(__aarch64__)
#include <arm_neon.h>
#define APL_ATTN_NEON 1
#endif

namespace apl {
namespace infer {

namespace {

constexpr int64_t kRows = 16;  // query rows per block (one 512-bit vector of scores per key)
constexpr float kLog2e = 1.44269504088896341f, kC1 = 0.693359375f, kC2 = -2.12194440e-4f;
constexpr float kP0 = 1.9875691500e-4f, kP1 = 1.3981999507e-3f, kP2 = 8.3334519073e-3f,
                kP3 = 4.1665795894e-2f, kP4 = 1.6666665459e-1f, kP5 = 5.0000001201e-1f;

// ---------------------------------------------------------------- scalar kernels (both orders)

/** Σ q[i]·k[i] in the order o (see AttnOrder); kFma16 here with std::fma (tests and the AVX2-less fallback).
 */
float dot_order(AttnOrder o, const float* q, const float* k, int64_t n) {
  if (o == AttnOrder::kLanes8) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int64_t i = 0; i < n; i++) {
      float p = q[i] * k[i];
      acc[i & 7] += p;
    }
    return reduce8(acc);
  }
  float a[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int l = 0; l < 16; l++) a[l] = std::fma(q[i + l], k[i + l], a[l]);
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; l++) a[l] = std::fma(q[i + l], k[i + l], a[l]);
  float x[8];
  for (int l = 0; l < 8; l++) x[l] = a[l] + a[l + 8];
  float r = ((x[0] + x[4]) + (x[2] + x[6])) + ((x[1] + x[5]) + (x[3] + x[7]));
  for (; i < n; i++) {
    float p = q[i] * k[i];
    r += p;
  }
  return r;
}

void scores_scalar(AttnOrder o, const float* Q, int64_t nq, const float* K, int64_t nk, int64_t D,
                   float scale, float* S) {
  for (int64_t j = 0; j < nk; j++)
    for (int64_t r = 0; r < nq; r++) S[j * kRows + r] = dot_order(o, Q + r * D, K + j * D, D) * scale;
}

/** o = Σ_{j ∈ [j0, j1]} P[j·16]·V[j] in key order, with the reference axpy's multiply-add. */
void pv_scalar(AttnOrder o, const float* P, const float* V, int64_t D, int64_t j0, int64_t j1, float* out) {
  std::fill(out, out + D, 0.0f);
  const int64_t vec = o == AttnOrder::kFma16 ? D / 8 * 8 : 0;  // the x86 axpy fuses the 8-lane blocks only
  for (int64_t j = j0; j <= j1; j++) {
    const float s = P[j * kRows];
    const float* v = V + j * D;
    for (int64_t i = 0; i < vec; i++) out[i] = std::fma(s, v[i], out[i]);
    for (int64_t i = vec; i < D; i++) {
      float p = s * v[i];
      out[i] += p;
    }
  }
}

template <bool StdExp>
void softmax_scalar(float* S, int64_t nk, int64_t lanes) {
  for (int64_t r = 0; r < lanes; r++) {
    float mx = -INFINITY;
    for (int64_t j = 0; j < nk; j++) {
      float s = S[j * kRows + r];
      if (s > mx) mx = s;
    }
    float sum = 0;
    for (int64_t j = 0; j < nk; j++) {
      float e = StdExp ? std::exp(S[j * kRows + r] - mx) : attn_exp(S[j * kRows + r] - mx);
      S[j * kRows + r] = e;
      sum += e;
    }
    for (int64_t j = 0; j < nk; j++) S[j * kRows + r] = S[j * kRows + r] / sum;
  }
}

void convert_scalar(const uint16_t* src, int64_t stride, int64_t nk, int64_t D, float* dst) {
  for (int64_t j = 0; j < nk; j++)
    for (int64_t i = 0; i < D; i++) dst[j * D + i] = f16_to_f32(src[j * stride + i]);
}

#if APL_ATTN_X86
// Private parts of this file (see their first lines), included inside this anonymous namespace.
#include "attention_avx2.h"
#include "attention_avx512.h"

bool cpu_avx2() {
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c") && __builtin_cpu_supports("fma");
}
bool cpu_avx512() {
  return cpu_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
         __builtin_cpu_supports("avx512bw");
}
#endif
#if APL_ATTN_NEON
#include "attention_neon.h"  // isa 3 (kLanes8)
#endif

}  // namespace

float attn_exp(float x) {
  if (x < -87.0f) return 0.0f;
  if (x != x) return x;
  if (x > 88.0f) return INFINITY;
  const float n = std::nearbyint(x * kLog2e);
  float r = x - n * kC1;
  r = r - n * kC2;
  const float z = r * r;
  float p = kP0;
  p = p * r + kP1;
  p = p * r + kP2;
  p = p * r + kP3;
  p = p * r + kP4;
  p = p * r + kP5;
  float y = p * z;
  y = y + r;
  y = y + 1.0f;
  const uint32_t e = (uint32_t)((int32_t)n + 127) << 23;
  return y * bits_f32(e);
}

void silu_mul(float* g, const float* u, int64_t n, int isa) {
#if APL_ATTN_X86
  static const int best = cpu_avx512() ? 2 : cpu_avx2() ? 1 : 0;
  if (isa < 0) isa = best;
  if (isa == 2) return silu_mul_avx512(g, u, n);
  if (isa == 1) return silu_mul_avx2(g, u, n);
#elif APL_ATTN_NEON
  static const int best = neon_attn_check() ? 3 : 0;
  if ((isa < 0 ? best : isa) == 3) return silu_mul_neon(g, u, n);
#else
  (void)isa;
#endif
  for (int64_t i = 0; i < n; i++) {
    const float v = g[i], a = v / (1.0f + attn_exp(-v));
    g[i] = a * u[i];
  }
}

AttnOrder attn_order(const KvOps& kv) {
  return strcmp(kv.name, "avx2") == 0 ? AttnOrder::kFma16 : AttnOrder::kLanes8;
}

int attn_available(AttnOrder order, AttnImpl* out) {
  int n = 0;
  out[n++] = {"scalar", order, 0};  // kFma16: std::fma, the fallback without FMA hardware (and a test)
#if APL_ATTN_X86
  if (order == AttnOrder::kFma16) {
    if (cpu_avx2()) out[n++] = {"avx2", order, 1};
    if (cpu_avx512()) out[n++] = {"avx512", order, 2};
  }
#elif APL_ATTN_NEON
  static const bool neon_ok = neon_attn_check();
  if (order == AttnOrder::kLanes8 && neon_ok) out[n++] = {"neon", order, 3};
#endif
  return n;
}

AttnImpl attn_select(AttnOrder order) {
  AttnImpl v[3];
  int n = attn_available(order, v);
  if (env_is_1("APL_NO_AVX512") && n > 1 && v[n - 1].isa == 2) n--;
  if (env_is_1("APL_FORCE_SCALAR")) n = 1;
  return v[n - 1];
}

void attention_reference(const AttnArgs& a, const KvOps& kv, const Kernel& k, Pool& pool) {
  const int64_t D = a.head_dim, H = a.heads, kvd = a.kv_heads * D, rep = a.heads / a.kv_heads;
  const bool f16 = a.k16 != nullptr;
  const float scale = (float)(1.0 / std::sqrt((double)D));
  pool.run(a.n * H, [&](int64_t i) {
    int64_t t = i / H, h = i % H, p = a.pos + t, kvh = h / rep;
    int64_t lo = a.window > 0 ? std::max<int64_t>(0, p - a.window + 1) : 0;
    thread_local std::vector<float> sc;
    if ((int64_t)sc.size() < p + 1) sc.resize((size_t)(p + 1));
    const float* qv = a.q + (t * H + h) * D;
    float mx = -INFINITY;
    for (int64_t j = lo; j <= p; j++) {
      const int64_t at = j * kvd + kvh * D;
      float s = (f16 ? kv.dot(qv, a.k16 + at, D) : k.dotf(qv, a.k32 + at, D)) * scale;
      sc[(size_t)j] = s;
      if (s > mx) mx = s;
    }
    float sum = 0;
    for (int64_t j = lo; j <= p; j++) {
      float e = std::exp(sc[(size_t)j] - mx);
      sc[(size_t)j] = e;
      sum += e;
    }
    float* o = a.out + (t * H + h) * D;
    std::fill(o, o + D, 0.0f);
    for (int64_t j = lo; j <= p; j++) {
      const int64_t at = j * kvd + kvh * D;
      if (f16)
        kv.axpy(sc[(size_t)j] / sum, a.v16 + at, o, D);
      else
        k.axpyf(sc[(size_t)j] / sum, a.v32 + at, o, D);
    }
  });
}

void attention_blocked(const AttnArgs& a, const AttnImpl& impl, Pool& pool, bool std_exp) {
  const int64_t D = a.head_dim, H = a.heads, G = a.kv_heads, kvd = G * D, rep = H / G;
  const int64_t rows = a.n * rep, nb = (rows + kRows - 1) / kRows;
  const float scale = (float)(1.0 / std::sqrt((double)D));
  auto lo_of = [&](int64_t p) { return a.window > 0 ? std::max<int64_t>(0, p - a.window + 1) : (int64_t)0; };
  // the last blocks (the most keys) first
  pool.run(G * nb, [&](int64_t task) {
    const int64_t b = nb - 1 - task / G, g = task % G;
    const int64_t r0 = b * kRows, nr = std::min(kRows, rows - r0), nq = (nr + 3) / 4 * 4;
    const int64_t klo = lo_of(a.pos + r0 / rep), khi = a.pos + (r0 + nr - 1) / rep;
    const int64_t nk = khi - klo + 1, nk4 = (nk + 3) / 4 * 4;
    thread_local std::vector<float> Qb, Kf, Vf, S;
#if APL_ATTN_X86
    if (nr <= 2 && impl.isa >= 1) {  // one or two rows: straight from the cache, as the block would
      if (S.size() < (size_t)nk) S.resize((size_t)nk);
      for (int64_t r = 0; r < nr; r++) {
        const int64_t t = (r0 + r) / rep;
        row_fma16(a, g, t, g * rep + (r0 + r) % rep, lo_of(a.pos + t), scale, S.data(), std_exp);
      }
      return;
    }
#elif APL_ATTN_NEON
    if (nr <= 2 && impl.isa == 3) {  // one or two rows: straight from the cache, as the block would
      if (S.size() < (size_t)nk) S.resize((size_t)nk);
      for (int64_t r = 0; r < nr; r++) {
        const int64_t t = (r0 + r) / rep;
        row_lanes8(a, g, t, g * rep + (r0 + r) % rep, lo_of(a.pos + t), scale, S.data(), std_exp);
      }
      return;
    }
#endif
    if (Qb.size() < (size_t)(kRows * D)) Qb.resize((size_t)(kRows * D));
    if (Kf.size() < (size_t)(nk4 * D)) Kf.resize((size_t)(nk4 * D));
    if (Vf.size() < (size_t)(nk4 * D)) Vf.resize((size_t)(nk4 * D));
    if (S.size() < (size_t)(nk4 * kRows)) S.resize((size_t)(nk4 * kRows));
    for (int64_t r = 0; r < nr; r++) {
      const int64_t t = (r0 + r) / rep, h = g * rep + (r0 + r) % rep;
      std::copy(a.q + (t * H + h) * D, a.q + (t * H + h + 1) * D, Qb.data() + r * D);
    }
    std::fill(Qb.data() + nr * D, Qb.data() + nq * D, 0.0f);
    std::fill(Kf.data() + nk * D, Kf.data() + nk4 * D, 0.0f);
    // this KV head's keys and values once for the block's rows (float32)
    if (a.k16) {
      const uint16_t* ks = a.k16 + klo * kvd + g * D;
      const uint16_t* vs = a.v16 + klo * kvd + g * D;
#if APL_ATTN_X86
      if (impl.isa == 2) {
        convert_avx512(ks, kvd, nk, D, Kf.data());
        convert_avx512(vs, kvd, nk, D, Vf.data());
      } else if (impl.isa == 1) {
        convert_avx2(ks, kvd, nk, D, Kf.data());
        convert_avx2(vs, kvd, nk, D, Vf.data());
      } else
#elif APL_ATTN_NEON
      if (impl.isa == 3) {
        convert_neon(ks, kvd, nk, D, Kf.data());
        convert_neon(vs, kvd, nk, D, Vf.data());
      } else
#endif
      {
        convert_scalar(ks, kvd, nk, D, Kf.data());
        convert_scalar(vs, kvd, nk, D, Vf.data());
      }
    } else {
      for (int64_t j = 0; j < nk; j++) {
        const float* ks = a.k32 + (klo + j) * kvd + g * D;
        const float* vs = a.v32 + (klo + j) * kvd + g * D;
        std::copy(ks, ks + D, Kf.data() + j * D);
        std::copy(vs, vs + D, Vf.data() + j * D);
      }
    }
    float* s = S.data();
#if APL_ATTN_X86
    if (impl.isa == 2)
      scores_avx512(Qb.data(), nq, Kf.data(), nk4, D, scale, s);
    else if (impl.isa == 1)
      scores_avx2(Qb.data(), nr, Kf.data(), nk, D, scale, s);
    else
#elif APL_ATTN_NEON
    if (impl.isa == 3)
      scores_neon(Qb.data(), nq, Kf.data(), (nk + 1) / 2 * 2, D, scale, s);
    else
#endif
      scores_scalar(impl.order, Qb.data(), nr, Kf.data(), nk, D, scale, s);
    // each row's own keys: the rest −inf (exp gives 0: adds +0 to the sum); unused lanes 0
    int64_t jlo[kRows], jhi[kRows];
    for (int64_t r = 0; r < kRows; r++) {
      if (r >= nr) {
        for (int64_t j = 0; j < nk; j++) s[j * kRows + r] = 0.0f;
        continue;
      }
      const int64_t p = a.pos + (r0 + r) / rep;
      jlo[r] = lo_of(p) - klo;
      jhi[r] = p - klo;
      for (int64_t j = 0; j < jlo[r]; j++) s[j * kRows + r] = -INFINITY;
      for (int64_t j = jhi[r] + 1; j < nk; j++) s[j * kRows + r] = -INFINITY;
    }
    if (std_exp) {
      softmax_scalar<true>(s, nk, nr);
    } else {
#if APL_ATTN_X86
      if (impl.isa == 2)
        softmax_avx512(s, nk);
      else if (impl.isa == 1)
        softmax_avx2(s, nk);
      else
#elif APL_ATTN_NEON
      if (impl.isa == 3)
        softmax_neon(s, nk);
      else
#endif
        softmax_scalar<false>(s, nk, nr);
    }
    float* outs[kRows];
    for (int64_t r = 0; r < nr; r++) {
      const int64_t t = (r0 + r) / rep, h = g * rep + (r0 + r) % rep;
      outs[r] = a.out + (t * H + h) * D;
    }
    for (int64_t r = 0, r1; r < nr; r = r1) {
      for (r1 = r + 1; r1 < nr && jlo[r1] == jlo[r] && jhi[r1] == jhi[r];) r1++;  // rows of one token
#if APL_ATTN_X86
      if (impl.isa == 2) {
        pv_avx512(s + r, Vf.data(), D, jlo[r], jhi[r], outs + r, r1 - r);
        continue;
      }
#endif
#if APL_ATTN_X86
      if (impl.isa == 1) {
        pv_avx2(s + r, Vf.data(), D, jlo[r], jhi[r], outs + r, r1 - r);
        continue;
      }
#elif APL_ATTN_NEON
      if (impl.isa == 3) {
        pv_neon(s + r, Vf.data(), D, jlo[r], jhi[r], outs + r, r1 - r);
        continue;
      }
#endif
      for (int64_t i = r; i < r1; i++) pv_scalar(impl.order, s + i, Vf.data(), D, jlo[i], jhi[i], outs[i]);
    }
  });
}

}  // namespace infer
}  // namespace apl
