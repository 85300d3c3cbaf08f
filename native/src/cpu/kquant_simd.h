// The x86 SIMD passes of the two-level-scale kernels (kquant.h), one group per float32 lane, as a template
// over a vector-ops trait V: V::W groups per vector (KqV8 in kquant_avx2.cc: AVX2, 8 lanes; KqV16 in
// kquant_avx512.cc: AVX-512, 16 lanes). A super-block is transposed into xt[i·ngp + j] (element i of group j;
// groups padded to a multiple of W with zeros and masked out), so every pass runs the reference's sequential
// per-group sums W groups at a time, bit for bit. The double-precision per-group steps (fit, refit, search,
// keep-best) come from V::Groups, one group per float64 lane: KqQuad (four lanes) in the AVX2 builds, KqOcto
// (eight, kquant_avx512.cc) in the AVX-512 one; each group's operations are the reference's either way. The
// metrics run four lanes in every build: their lane order (four float64 chains, element i + k and i + 4 + k
// of each group's 8-element blocks into chain k, the group tails added in order) defines the report's last
// digits, so it is the same code everywhere. Included by kquant_avx2.cc (twice: plain and -mfma) and
// kquant_avx512.cc only; V supplies:
//   Groups (KqQuad or a struct derived from it: the per-group float64 steps and the metrics),
//   F, M (W floats, a W-lane mask), W; load/store (64-byte aligned), loadu/storeu, set1, zero, add, sub, mul,
//   min, max, div, rne, madd_exact (c + a·b, fused only in FMA builds), lt (mask: lens[0, W) > i),
//   blend (m ? b : a), keep (m ? v : 0), u8 (W bytes as floats), finite_or_zero.
#pragma once

#if defined(__x86_64__) || defined(_M_X64)
#include <vector>

#include "avx2_ops.h"
#include "kquant_avx2_dequant.h"
#include "kquant_simd_row.h"

namespace apl {

namespace {

/** The double-precision per-group steps and the metrics, four float64 lanes (see above). */
struct KqQuad {
  static __m256d load4(const float* v) { return _mm256_cvtps_pd(_mm_loadu_ps(v)); }

  /** The metrics' five float64 accumulators (four chains each, see above; mx a running max). */
  struct Chains {
    __m256d dd, xx, ww, xw, mx;
    void zero() { dd = xx = ww = xw = mx = _mm256_setzero_pd(); }
    /** The four sums' chains into m, lane 0 first (the report's order); the max (order-free) likewise. */
    void finish(MetricsAcc* m) const {
      finish_sums(m);
      alignas(32) double a[4];
      _mm256_store_pd(a, mx);
      for (int k = 0; k < 4; k++)
        if (a[k] > m->max_abs) m->max_abs = a[k];
    }
    void finish_sums(MetricsAcc* m) const {
      alignas(32) double a[4][4];
      _mm256_store_pd(a[0], dd);
      _mm256_store_pd(a[1], xx);
      _mm256_store_pd(a[2], ww);
      _mm256_store_pd(a[3], xw);
      for (int k = 0; k < 4; k++) {
        m->sdd += a[0][k];
        m->sxx += a[1][k];
        m->sww += a[2][k];
        m->sxw += a[3][k];
      }
    }
  };

  /** One 8-element block of a group into the chains: element k, then element 4 + k, into chain k. */
  static void metrics_block(const float* x8, __m256 w, Chains& c) {
    const __m256d absmask = _mm256_castsi256_pd(_mm256_set1_epi64x(0x7fffffffffffffffll));
    __m256 xv = _mm256_loadu_ps(x8);
    for (int h = 0; h < 2; h++) {
      __m256d xd = _mm256_cvtps_pd(h ? _mm256_extractf128_ps(xv, 1) : _mm256_castps256_ps128(xv));
      __m256d wd = _mm256_cvtps_pd(h ? _mm256_extractf128_ps(w, 1) : _mm256_castps256_ps128(w));
      __m256d e = _mm256_sub_pd(xd, wd);
      c.dd = _mm256_add_pd(c.dd, _mm256_mul_pd(e, e));  // e·e is not exact: never fused
      c.xx = avx2::madd_exact(xd, xd, c.xx);
      c.ww = avx2::madd_exact(wd, wd, c.ww);
      c.xw = avx2::madd_exact(xd, wd, c.xw);
      c.mx = _mm256_max_pd(c.mx, _mm256_and_pd(e, absmask));
    }
  }

  /** Metrics of a super-block: w = s·q − z in float32 (as the reference), the sums in float64 lanes. */
  static void metrics(const float* x, int n, int G, const uint8_t* qv, const uint8_t* sc, const uint8_t* mc,
                      float d, float dm, MetricsAcc* m) {
    metrics_by<KqQuad>(x, n, G, qv, sc, mc, d, dm, m);
  }

  /**
   * The metrics with B::metrics_block and B::Chains (these, or an AVX-512 form with the same chains). The max
   * of |e| is order-free (every e is finite: finite x, and w from f16 scales and codes ≤ 255), so B may keep
   * it in more lanes.
   */
  template <class B>
  static void metrics_by(const float* x, int n, int G, const uint8_t* qv, const uint8_t* sc,
                         const uint8_t* mc, float d, float dm, MetricsAcc* m) {
    typename B::Chains c;
    c.zero();
    for (int g0 = 0, g = 0; g0 < n; g0 += G, g++) {
      int len = n - g0 < G ? n - g0 : G;
      float s = d * (float)sc[g];
      float z = dm * (float)mc[g];
      const __m256 vs = _mm256_set1_ps(s), vz = _mm256_set1_ps(z);
      int i = 0;
      for (; i + 8 <= len; i += 8) {
        __m256 q = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i*)(qv + g0 + i))));
        B::metrics_block(x + g0 + i, _mm256_sub_ps(_mm256_mul_ps(vs, q), vz), c);
      }
      for (; i < len; i++) m->add(x[g0 + i], kq_value(d, dm, sc[g], mc[g], qv[g0 + i]));
    }
    c.finish(m);
  }

  /** Four bools from a 4-bit mask in one store (a later 4-byte load then forwards from it). */
  static void store_alive(bool* a, int m) {
    uint32_t v = (uint32_t)(m & 1) | (uint32_t)((m >> 1) & 1) << 8 | (uint32_t)((m >> 2) & 1) << 16 |
                 (uint32_t)((m >> 3) & 1) << 24;
    memcpy(a, &v, 4);
  }

  /** kq_fit_inv_off_ref, four groups at a time. */
  static void fit_inv_off(int ng, const double* ca, const double* cb, bool* alive, float* inv, float* off) {
    const __m128 one = _mm_set1_ps(1.0f), zero = _mm_setzero_ps();
    const __m128i e = _mm_set1_epi32(0x7f800000);
    int j = 0;
    for (; j + 4 <= ng; j += 4) {
      int32_t al;
      memcpy(&al, alive + j, 4);
      __m128 iv = _mm_div_ps(one, _mm256_cvtpd_ps(_mm256_loadu_pd(ca + j)));
      __m128 o = _mm_sub_ps(zero, _mm_mul_ps(_mm256_cvtpd_ps(_mm256_loadu_pd(cb + j)), iv));
      __m128i bad = _mm_or_si128(_mm_cmpeq_epi32(_mm_and_si128(_mm_castps_si128(iv), e), e),
                                 _mm_cmpeq_epi32(_mm_and_si128(_mm_castps_si128(o), e), e));
      __m128i live = _mm_andnot_si128(
          bad, _mm_cmpgt_epi32(_mm_cvtepu8_epi32(_mm_cvtsi32_si128(al)), _mm_setzero_si128()));
      _mm_storeu_ps(inv + j, _mm_and_ps(iv, _mm_castsi128_ps(live)));
      _mm_storeu_ps(off + j, _mm_and_ps(o, _mm_castsi128_ps(live)));
      int m = _mm_movemask_ps(_mm_castsi128_ps(live));
      store_alive(alive + j, m);
    }
    kq_fit_inv_off_ref(ng - j, ca + j, cb + j, alive + j, inv + j, off + j);
  }

  /** kq_als_ref, four groups at a time (the same double operations; the rest by the reference). */
  static void als(int ng, const double* dn, const float* sx, const float* sxx, const float* sq,
                  const float* sqq, const float* sqx, bool* alive, double* ca, double* cb, double* ce) {
    const __m256d zero = _mm256_setzero_pd(), inf = _mm256_set1_pd(INFINITY);
    int j = 0;
    for (; j + 4 <= ng; j += 4) {
      int32_t al;
      memcpy(&al, alive + j, 4);
      if (!al) continue;
      __m256d live = _mm256_castsi256_pd(
          _mm256_cmpgt_epi64(_mm256_cvtepu8_epi64(_mm_cvtsi32_si128(al)), _mm256_setzero_si256()));
      __m256d n = _mm256_loadu_pd(dn + j), vx = load4(sx + j), vxx = load4(sxx + j), q = load4(sq + j),
              qq = load4(sqq + j), qx = load4(sqx + j);
      __m256d det = _mm256_sub_pd(_mm256_mul_pd(n, qq), _mm256_mul_pd(q, q));
      __m256d na = _mm256_div_pd(_mm256_sub_pd(_mm256_mul_pd(n, qx), _mm256_mul_pd(q, vx)), det);
      __m256d nb = _mm256_div_pd(_mm256_sub_pd(_mm256_mul_pd(qq, vx), _mm256_mul_pd(q, qx)), det);
      __m256d ok = _mm256_and_pd(_mm256_cmp_pd(det, zero, _CMP_GT_OQ), _mm256_cmp_pd(na, zero, _CMP_GT_OQ));
      ok = _mm256_and_pd(ok, _mm256_cmp_pd(na, inf, _CMP_LT_OQ));
      ok = _mm256_and_pd(ok, live);
      __m256d e = _mm256_sub_pd(_mm256_sub_pd(vxx, _mm256_mul_pd(na, qx)), _mm256_mul_pd(nb, vx));
      _mm256_storeu_pd(ca + j, _mm256_blendv_pd(_mm256_loadu_pd(ca + j), na, ok));
      _mm256_storeu_pd(cb + j, _mm256_blendv_pd(_mm256_loadu_pd(cb + j), nb, ok));
      _mm256_storeu_pd(ce + j, _mm256_blendv_pd(_mm256_loadu_pd(ce + j), e, ok));
      int m = _mm256_movemask_pd(ok);
      store_alive(alive + j, m);
    }
    kq_als_ref(ng - j, dn + j, sx + j, sxx + j, sq + j, sqq + j, sqx + j, alive + j, ca + j, cb + j, ce + j);
  }

  /** kq_search_ref, four groups at a time. */
  static bool search(int ng, const double* dn, float d, float dm, int smax, int mmax, const float* sx,
                     const float* sq, const float* sqq, const float* sqx, uint8_t* sc, uint8_t* mc) {
    bool changed = false;
    const __m128 vd = _mm_set1_ps(d), vdm = _mm_set1_ps(dm);
    const __m256d two = _mm256_set1_pd(2.0), m2c = _mm256_set1_pd(-2.0);
    const __m256d lo = _mm256_setzero_pd(), shi = _mm256_set1_pd((double)smax),
                  mhi = _mm256_set1_pd((double)mmax);
    int j = 0;
    for (; j + 4 <= ng; j += 4) {
      int32_t s4, m4;
      memcpy(&s4, sc + j, 4);
      memcpy(&m4, mc + j, 4);
      __m128i si = _mm_cvtepu8_epi32(_mm_cvtsi32_si128(s4)), mi = _mm_cvtepu8_epi32(_mm_cvtsi32_si128(m4));
      __m256d n = _mm256_loadu_pd(dn + j), vx = load4(sx + j), q = load4(sq + j), qq = load4(sqq + j),
              qx = load4(sqx + j);
      __m256d es[3], ez[3], vs[3], vz[3], cs[3], cz[3];
      for (int k = 0; k < 3; k++) {
        __m128i dk = _mm_set1_epi32(k - 1);
        __m128 fs = _mm_cvtepi32_ps(_mm_add_epi32(si, dk)), fz = _mm_cvtepi32_ps(_mm_add_epi32(mi, dk));
        cs[k] = _mm256_cvtps_pd(fs);
        cz[k] = _mm256_cvtps_pd(fz);
        vs[k] = _mm256_cvtps_pd(_mm_mul_ps(vd, fs));
        vz[k] = _mm256_cvtps_pd(_mm_mul_ps(vdm, fz));
        es[k] = _mm256_mul_pd(vs[k], _mm256_sub_pd(_mm256_mul_pd(qq, vs[k]), _mm256_mul_pd(two, qx)));
        ez[k] = _mm256_mul_pd(vz[k], _mm256_add_pd(_mm256_mul_pd(n, vz[k]), _mm256_mul_pd(two, vx)));
      }
      __m256d m2 = _mm256_mul_pd(m2c, q);
      __m256d be = _mm256_set1_pd(INFINITY), bs = cs[1], bz = cz[1];
      for (int ks = 0; ks < 3; ks++) {
        __m256d sok =
            _mm256_and_pd(_mm256_cmp_pd(cs[ks], lo, _CMP_GE_OQ), _mm256_cmp_pd(cs[ks], shi, _CMP_LE_OQ));
        __m256d t = _mm256_mul_pd(m2, vs[ks]);
        for (int kz = 0; kz < 3; kz++) {
          __m256d ok = _mm256_and_pd(sok, _mm256_and_pd(_mm256_cmp_pd(cz[kz], lo, _CMP_GE_OQ),
                                                        _mm256_cmp_pd(cz[kz], mhi, _CMP_LE_OQ)));
          __m256d e = _mm256_add_pd(_mm256_add_pd(es[ks], ez[kz]), _mm256_mul_pd(t, vz[kz]));
          ok = _mm256_and_pd(ok, _mm256_cmp_pd(e, be, _CMP_LT_OQ));
          be = _mm256_blendv_pd(be, e, ok);
          bs = _mm256_blendv_pd(bs, cs[ks], ok);
          bz = _mm256_blendv_pd(bz, cz[kz], ok);
        }
      }
      alignas(32) double os[4], oz[4];
      _mm256_store_pd(os, bs);
      _mm256_store_pd(oz, bz);
      for (int l = 0; l < 4; l++) {
        uint8_t a = (uint8_t)os[l], b = (uint8_t)oz[l];
        if (a != sc[j + l] || b != mc[j + l]) changed = true;
        sc[j + l] = a;
        mc[j + l] = b;
      }
    }
    if (kq_search_ref(ng - j, dn + j, d, dm, smax, mmax, sx + j, sq + j, sqq + j, sqx + j, sc + j, mc + j))
      changed = true;
    return changed;
  }

  /** kq_keep_best, four groups at a time. */
  static void keep_best(int ng, const double* ce, const double* ca, const double* cb, double* bestE,
                        double* a, double* b) {
    int j = 0;
    for (; j + 4 <= ng; j += 4) {
      __m256d e = _mm256_loadu_pd(ce + j), be = _mm256_loadu_pd(bestE + j);
      __m256d lt = _mm256_cmp_pd(e, be, _CMP_LT_OQ);
      _mm256_storeu_pd(bestE + j, _mm256_blendv_pd(be, e, lt));
      _mm256_storeu_pd(a + j, _mm256_blendv_pd(_mm256_loadu_pd(a + j), _mm256_loadu_pd(ca + j), lt));
      _mm256_storeu_pd(b + j, _mm256_blendv_pd(_mm256_loadu_pd(b + j), _mm256_loadu_pd(cb + j), lt));
    }
    for (; j < ng; j++)
      if (ce[j] < bestE[j]) {
        bestE[j] = ce[j];
        a[j] = ca[j];
        b[j] = cb[j];
      }
  }

  /**
   * Whether every x has at most 16 significant bits (the low 8 mantissa bits zero: any bf16 or f16 input) and
   * |x| < 2^119: then q·x (q ≤ 255 integral) has at most 24 bits and no overflow, so it is exact in float32
   * (subnormals too: q·x stays on x's grid) and the pass may fuse Σq·x.
   */
  static bool narrow_input(const float* xs, int nn) {
    const __m256i low = _mm256_set1_epi32(0xff), mag = _mm256_set1_epi32(0x7fffffff);
    __m256i lo = _mm256_setzero_si256(), hi = lo;
    int i = 0;
    for (; i + 8 <= nn; i += 8) {
      __m256i v = _mm256_loadu_si256((const __m256i*)(xs + i));
      lo = _mm256_or_si256(lo, _mm256_and_si256(v, low));
      hi = _mm256_max_epu32(hi, _mm256_and_si256(v, mag));
    }
    alignas(32) uint32_t h[8];
    _mm256_store_si256((__m256i*)h, hi);
    uint32_t l = _mm256_testz_si256(lo, lo) ? 0 : 1, m = 0;
    for (int k = 0; k < 8; k++) m = h[k] > m ? h[k] : m;
    for (; i < nn; i++) {
      uint32_t u;
      memcpy(&u, xs + i, 4);
      l |= u & 0xff;
      m = (u & 0x7fffffff) > m ? u & 0x7fffffff : m;
    }
    return l == 0 && m < 0x7b000000u;  // 2^119
  }
};

template <class V>
struct KqSimdOps : V::Groups {
  using F = typename V::F;
  static constexpr int W = V::W;
  static constexpr int kMaxT = kKqMaxElems + W * kKqMaxGroup;  // transposed super-block, groups padded to W

  static const float* load_row(const QuantJob& j, int64_t r, float* dst) {
    kq_prefetch_next_row(j, r);
    return avx2::load_row(j, r, dst);
  }
  static int64_t find_nonfinite(const float* x, int64_t n) { return avx2::find_nonfinite(x, n); }
  static void pack(const uint8_t* qv, int64_t cols, int bits, uint8_t* out) {
    avx2::pack(qv, cols, bits, out);
  }

  int n = 0, G = 0, ng = 0, ngp = 0;
  bool full = false;         // every group has G elements and ng % W == 0: no masks
  bool narrow = false;       // FMA builds only: every q·x of the passes is exact (see narrow_input)
  const float* x = nullptr;  // the super-block as given
  float* xt;
  float* xp;  // a partial super-block padded with zeros
  alignas(64) int32_t lens[kKqMaxGroups + W];

  KqSimdOps() {
    thread_local float* bx = nullptr;
    thread_local float* bp = nullptr;
    if (!bx) {
      bx = static_cast<float*>(aligned_alloc(64, sizeof(float) * kMaxT));
      bp = static_cast<float*>(aligned_alloc(64, sizeof(float) * kMaxT));
      if (!bx || !bp) throw std::bad_alloc();
    }
    xt = bx;
    xp = bp;
  }
  int len(int j) const { return lens[j]; }

  void load(const float* xs, int nn, int g) {
#ifdef APL_FMA
    narrow = V::Groups::narrow_input(xs, nn);
#endif
    x = xs;
    const float* src = xs;
    n = nn;
    G = g;
    ng = (nn + g - 1) / g;
    ngp = (ng + W - 1) / W * W;
    full = nn == ng * g && ng == ngp;
    for (int j = 0; j < ngp; j++) lens[j] = j < ng ? (n - j * G < G ? n - j * G : G) : 0;
    if ((G & 7) == 0) {
      if (!full) {
        memcpy(xp, xs, sizeof(float) * (size_t)n);
        memset(xp + n, 0, sizeof(float) * (size_t)(ngp * G - n));
        src = xp;
      }
      // 8×8 block transposes: rows = 8 groups, columns = 8 elements.
      for (int jb = 0; jb < ngp; jb += 8)
        for (int ib = 0; ib < G; ib += 8) {
          __m256 r[8], t[8];
          for (int k = 0; k < 8; k++) r[k] = _mm256_loadu_ps(src + (jb + k) * G + ib);
          for (int k = 0; k < 8; k += 2) {
            t[k] = _mm256_unpacklo_ps(r[k], r[k + 1]);
            t[k + 1] = _mm256_unpackhi_ps(r[k], r[k + 1]);
          }
          __m256 u[8];
          u[0] = _mm256_shuffle_ps(t[0], t[2], 0x44);
          u[1] = _mm256_shuffle_ps(t[0], t[2], 0xEE);
          u[2] = _mm256_shuffle_ps(t[1], t[3], 0x44);
          u[3] = _mm256_shuffle_ps(t[1], t[3], 0xEE);
          u[4] = _mm256_shuffle_ps(t[4], t[6], 0x44);
          u[5] = _mm256_shuffle_ps(t[4], t[6], 0xEE);
          u[6] = _mm256_shuffle_ps(t[5], t[7], 0x44);
          u[7] = _mm256_shuffle_ps(t[5], t[7], 0xEE);
          for (int k = 0; k < 4; k++) {
            _mm256_store_ps(xt + (ib + k) * ngp + jb, _mm256_permute2f128_ps(u[k], u[k + 4], 0x20));
            _mm256_store_ps(xt + (ib + k + 4) * ngp + jb, _mm256_permute2f128_ps(u[k], u[k + 4], 0x31));
          }
        }
      return;
    }
    for (int j = 0; j < ngp; j++)
      for (int i = 0; i < G; i++) xt[i * ngp + j] = i < lens[j] ? xs[j * G + i] : 0.0f;
  }

  void stats(float* mn, float* mx, float* sx, float* sxx) const {
    alignas(64) float a[W], b[W], s[W], ss[W];
    for (int c = 0; c < ngp; c += W) {
      F lo = V::load(xt + c), hi = lo, s1 = V::zero(), s2 = s1;
      for (int i = 0; i < G; i++) {
        F v = V::load(xt + i * ngp + c);
        if (full) {
          lo = V::min(lo, v);
          hi = V::max(hi, v);
          s1 = V::add(s1, v);
          s2 = V::add(s2, V::mul(v, v));
        } else {
          auto m = V::lt(lens + c, i);
          lo = V::blend(lo, V::min(lo, v), m);
          hi = V::blend(hi, V::max(hi, v), m);
          s1 = V::blend(s1, V::add(s1, v), m);
          s2 = V::blend(s2, V::add(s2, V::mul(v, v)), m);
        }
      }
      if (c + W <= ng) {  // whole chunk: straight to the per-group arrays
        V::storeu(mn + c, lo);
        V::storeu(mx + c, hi);
        V::storeu(sx + c, s1);
        V::storeu(sxx + c, s2);
        continue;
      }
      V::store(a, lo);
      V::store(b, hi);
      V::store(s, s1);
      V::store(ss, s2);
      for (int l = 0; l < W && c + l < ng; l++) {
        mn[c + l] = a[l];
        mx[c + l] = b[l];
        sx[c + l] = s[l];
        sxx[c + l] = ss[l];
      }
    }
  }

  void assign(const float* inv, const float* off, float qmax, uint8_t* qv) const {
    for (int j = 0; j < ng; j++) avx2::Ops::assign(x + j * G, lens[j], inv[j], off[j], qmax, qv + j * G);
  }

  /** K chunks of W groups from chunk c, interleaved (independent add chains; each lane's order is kept). */
  template <int K, bool Fuse>
  void pass_chunks(int c, const float* inv, const float* off, F vmax, float* sq, float* sqq,
                   float* sqx) const {
    alignas(64) float iv[W], of[W], a[W], b[W], cc[W];
    const F zero = V::zero();
    F vi[K], vo[K], s1[K], s2[K], s3[K];
    for (int k = 0; k < K; k++) {
      if (c + W * k + W <= ng) {
        vi[k] = V::loadu(inv + c + W * k);
        vo[k] = V::loadu(off + c + W * k);
      } else {
        for (int l = 0; l < W; l++) {
          int g = c + W * k + l;
          iv[l] = g < ng ? inv[g] : 0.0f;
          of[l] = g < ng ? off[g] : 0.0f;
        }
        vi[k] = V::load(iv);
        vo[k] = V::load(of);
      }
      s1[k] = s2[k] = s3[k] = zero;
    }
    for (int i = 0; i < G; i++)
      for (int k = 0; k < K; k++) {
        F v = V::load(xt + i * ngp + c + W * k);
        F t = V::add(V::mul(v, vi[k]), vo[k]);
        F q = V::min(V::max(V::rne(t), zero), vmax);
        if (!full) q = V::keep(q, V::lt(lens + c + W * k, i));
        s1[k] = V::add(s1[k], q);
        s2[k] = V::madd_exact(q, q, s2[k]);  // q ≤ 255 integral: q² exact in float32
        s3[k] = Fuse ? V::madd_exact(q, v, s3[k]) : V::add(s3[k], V::mul(q, v));
      }
    for (int k = 0; k < K; k++) {
      if (c + W * k + W <= ng) {  // whole chunk: straight to the per-group arrays
        V::storeu(sq + c + W * k, s1[k]);
        V::storeu(sqq + c + W * k, s2[k]);
        V::storeu(sqx + c + W * k, s3[k]);
        continue;
      }
      V::store(a, s1[k]);
      V::store(b, s2[k]);
      V::store(cc, s3[k]);
      for (int l = 0; l < W && c + W * k + l < ng; l++) {
        int g = c + W * k + l;
        sq[g] = a[l];
        sqq[g] = b[l];
        sqx[g] = cc[l];
      }
    }
  }

  void pass(const float* inv, const float* off, float qmax, float* sq, float* sqq, float* sqx) const {
    const F vmax = V::set1(qmax);
    int c = 0;
    if (narrow) {  // Σq·x fused (exact here: narrow_input); only ever set in FMA builds
      for (; c + 2 * W <= ngp; c += 2 * W) pass_chunks<2, true>(c, inv, off, vmax, sq, sqq, sqx);
      if (c < ngp) pass_chunks<1, true>(c, inv, off, vmax, sq, sqq, sqx);
      return;
    }
    for (; c + 2 * W <= ngp; c += 2 * W) pass_chunks<2, false>(c, inv, off, vmax, sq, sqq, sqx);
    if (c < ngp) pass_chunks<1, false>(c, inv, off, vmax, sq, sqq, sqx);
  }
};

/** kq_codes_inv_off, W groups at a time (1/s is ±inf or NaN exactly when the reference gives 0). */
template <class V>
void kq_codes_inv_off(const KqSimdOps<V>&, int ng, float d, float dm, const uint8_t* sc, const uint8_t* mc,
                      float* inv, float* off) {
  const typename V::F vd = V::set1(d), vdm = V::set1(dm), one = V::set1(1.0f);
  int j = 0;
  for (; j + V::W <= ng; j += V::W) {
    typename V::F s = V::mul(vd, V::u8(sc + j)), z = V::mul(vdm, V::u8(mc + j));
    typename V::F i = V::finite_or_zero(V::div(one, s));
    V::storeu(inv + j, i);
    V::storeu(off + j, V::mul(z, i));
  }
  for (; j < ng; j++) {
    float s = d * (float)sc[j];
    float z = dm * (float)mc[j];
    kq_inv_off(s, z, &inv[j], &off[j]);
  }
}

/** kq_pack_codes, eight groups at a time (kquant_simd_row.h). */
template <class V>
void kq_pack_codes_by(const KqSimdOps<V>&, const uint8_t* sc, const uint8_t* mc, int64_t groups,
                      const KqParams& p, uint8_t* out) {
  kq_pack_codes_fast(sc, mc, groups, p, out);
}

/** kq_keep_best by the build's per-group steps (V::Groups: KqQuad, or KqOcto in the AVX-512 build). */
template <class V>
void kq_keep_best(const KqSimdOps<V>&, int ng, const double* ce, const double* ca, const double* cb,
                  double* bestE, double* a, double* b) {
  KqSimdOps<V>::keep_best(ng, ce, ca, cb, bestE, a, b);
}

}  // namespace

}  // namespace apl
#endif
