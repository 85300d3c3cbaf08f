// The NEON groupwise path for groups that are not a multiple of 32 (infer_neon.h's fast_layout: g7, g24, g48,
// a group per row of odd length…), every bit width (1, 2, 4, 8): rows unpacked to a byte a value and groups
// summed 16 values at a time (neon_natural.h), on the reference's natural-order activations. Four groups'
// exact sums are combined at once in the reference's float32 operations (combine_group: d = s·dx, t = isum −
// z·xsum, term = d·t), block b of 4 groups into lanes 4(b % 2) + j, the last partial block in scalar code,
// then reduce8: bit-exact with qdot_ref. The row is unpacked once per call and reused for every token of the
// tile, two tokens at a time (neon_natural.h's nat_rows, the kquant path's row loop too; GwNat gives it the
// groupwise s, z and combine). A private part of infer_neon.h, included by it alone inside its anonymous
// namespace.
#pragma once

#include "neon_natural.h"

#if defined(__ARM_FEATURE_DOTPROD)
#define APL_NEON_NAME "neon-dotprod"
#else
#define APL_NEON_NAME "neon"
#endif

/** 4 groups' scales or zero points from g (float16 or float32 storage). */
inline float32x4_t gw_params4(const uint8_t* src, int64_t g, bool f16) {
  if (f16) return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(reinterpret_cast<const uint16_t*>(src) + g)));
  return vld1q_f32(reinterpret_cast<const float*>(src) + g);
}

/** nat_rows' parameters for groupwise rows: s and z where the weight stores them; combine_group's order. */
struct GwNat {
  const Linear& w;
  int64_t r = 0, pg = 0;  // the row and its first group
  explicit GwNat(const Linear& lw) : w(lw) {}
  APL_NAT_INLINE void row(int64_t rr) {
    r = rr;
    pg = rr * w.gpr();
  }
  APL_NAT_INLINE void sz(int64_t b, float32x4_t& s, float32x4_t& z) const {
    s = gw_params4(w.scales, pg + 4 * b, w.f16);
    z = gw_params4(w.zeros, pg + 4 * b, w.f16);
  }
  /** combine_group for a block's 4 groups, in the reference's order. */
  static APL_NAT_INLINE float32x4_t combine(float32x4_t acc, int32x4_t isum, float32x4_t s, float32x4_t z,
                                            const float* dx, const int32_t* xs) {
    const float32x4_t d = vmulq_f32(s, vld1q_f32(dx));
    const float32x4_t a = vcvtq_f32_s32(isum);
    const float32x4_t b = vmulq_f32(z, vcvtq_f32_s32(vld1q_s32(xs)));
    return vaddq_f32(acc, vmulq_f32(d, vsubq_f32(a, b)));
  }
  /** The row's 8 lanes, the last partial block's groups (from g0) in scalar code, reduced. */
  APL_NAT_INLINE float finish(float32x4_t a0, float32x4_t a1, int32x4_t is, const float* dx,
                              const int32_t* xs) const {
    float lanes[8];
    vst1q_f32(lanes, a0);
    vst1q_f32(lanes + 4, a1);
    int32_t iv[4];
    vst1q_s32(iv, is);
    const int64_t gpr = w.gpr(), g0 = gpr / 4 * 4;
    for (int64_t g = g0; g < gpr; g++)
      combine_group(lanes, g, iv[g - g0], load_param(w.scales, r * gpr + g, w.f16),
                    load_param(w.zeros, r * gpr + g, w.f16), dx[g], xs[g]);
    return reduce8(lanes);
  }
};

void gw_rows(const Linear& w, int64_t r0, int64_t r1, const ActQ& act, int64_t t0, int64_t t1, float* y,
             int64_t ystride) {
  GwNat p(w);
  nat_rows(p, w, r0, r1, act, t0, t1, y, ystride);
}

/**
 * gw_rows against qdot_ref bit for bit on small odd layouts (every bit width, float16 and float32 parameters,
 * short last groups, 1 and 3 tokens). Run once, on the first call that needs the path (the CPU then runs this
 * kernel's instructions): when it disagrees, the reference serves those layouts.
 */
bool gw_self_check() {
  struct Case {
    int bits;
    int64_t group, cols;
    bool f16;
  };
  static const Case cases[] = {
      {4, 24, 203, true}, {8, 7, 75, false}, {1, 40, 130, true}, {2, 48, 203, false}, {8, 100, 100, true}};
  CheckRng rnd{777u};
  for (const Case& cs : cases) {
    Linear w;
    w.kind = 0;
    w.rows = 3;
    w.cols = cs.cols;
    w.bits = cs.bits;
    w.group = cs.group;
    w.f16 = cs.f16;
    const int64_t gpr = w.gpr(), psz = cs.f16 ? 2 : 4;
    std::vector<uint8_t> q((size_t)(w.rows * w.row_bytes())), sc((size_t)(w.rows * gpr * psz)), zp(sc.size());
    rnd.fill(q);
    for (int64_t i = 0; i < w.rows * gpr; i++) {
      const float s = (float)(1 + rnd() % 200) * 1e-3f, z = (float)(rnd() % ((1u << cs.bits) - 0)) * 0.5f;
      if (cs.f16) {
        const uint16_t hs = f32_to_f16(s), hz = f32_to_f16(z);
        memcpy(&sc[(size_t)(i * 2)], &hs, 2);
        memcpy(&zp[(size_t)(i * 2)], &hz, 2);
      } else {
        memcpy(&sc[(size_t)(i * 4)], &s, 4);
        memcpy(&zp[(size_t)(i * 4)], &z, 4);
      }
    }
    w.q = q.data();
    w.scales = sc.data();
    w.zeros = zp.data();
    for (int64_t n : {1, 3}) {
      const std::vector<float> x = rnd.acts(n * w.cols);
      std::vector<float> y0((size_t)(n * w.rows)), y1(y0.size());
      ActQ act;
      act.resize(n, w.cols, w.group);
      for (int64_t t = 0; t < n; t++)
        act_quantize_ref(x.data() + t * w.cols, w.cols, w.group, act.xq_at(t),
                         act.dx.data() + t * act.gstride, act.xsum.data() + t * act.gstride);
      gw_rows(w, 0, w.rows, act, 0, n, y1.data(), w.rows);
      for (int64_t t = 0; t < n; t++)
        for (int64_t r = 0; r < w.rows; r++)
          y0[(size_t)(t * w.rows + r)] = qdot_ref(w, r, act.xq_of(t), act.dx_of(t), act.xsum_of(t));
      if (memcmp(y0.data(), y1.data(), y0.size() * sizeof(float)) != 0) return false;
    }
  }
  return true;
}

/** gw_self_check, saying so on stderr when it fails; APL_REQUIRE_SELF_CHECK=1 (the tests) then aborts. */
bool gw_self_check_or_say() {
  if (gw_self_check()) return true;
  fprintf(stderr, "%s: the natural-order groupwise path disagrees with the reference; using the reference\n",
          APL_NEON_NAME);
  const char* v = getenv("APL_REQUIRE_SELF_CHECK");
  if (v && v[0] == '1') abort();
  return false;
}
