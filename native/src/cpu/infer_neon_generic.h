// The NEON groupwise path for groups that are not a multiple of 32 (infer_neon.h's fast_layout: g7, g24, g48,
// a group per row of odd length…), every bit width (1, 2, 4, 8): rows unpacked to a byte a value and groups
// summed 16 values at a time (neon_natural.h), on the reference's natural-order activations. Four groups'
// exact sums are combined at once in the reference's float32 operations (combine_group: d = s·dx, t = isum −
// z·xsum, term = d·t), block b of 4 groups into lanes 4(b % 2) + j, the last partial block in scalar code,
// then reduce8: bit-exact with qdot_ref. The row is unpacked once per call and reused for every token of the
// tile, two tokens at a time. A private part of infer_neon.h, included by it alone inside its anonymous
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

/** combine_group for a block's 4 groups, in the reference's order. */
APL_NAT_INLINE float32x4_t gw_combine(float32x4_t acc, int32x4_t isum, float32x4_t s, float32x4_t z,
                                      const float* dx, const int32_t* xs) {
  const float32x4_t d = vmulq_f32(s, vld1q_f32(dx));
  const float32x4_t a = vcvtq_f32_s32(isum);
  const float32x4_t b = vmulq_f32(z, vcvtq_f32_s32(vld1q_s32(xs)));
  return vaddq_f32(acc, vmulq_f32(d, vsubq_f32(a, b)));
}

/** The row's 8 lanes, the last partial block's groups (from g0 = 4·full) in scalar code, reduced. */
inline float gw_finish(const Linear& w, int64_t r, float32x4_t a0, float32x4_t a1, int64_t g0, int32x4_t is,
                       const float* dx, const int32_t* xs) {
  float lanes[8];
  vst1q_f32(lanes, a0);
  vst1q_f32(lanes + 4, a1);
  int32_t iv[4];
  vst1q_s32(iv, is);
  const int64_t gpr = w.gpr();
  for (int64_t g = g0; g < gpr; g++)
    combine_group(lanes, g, iv[g - g0], load_param(w.scales, r * gpr + g, w.f16),
                  load_param(w.zeros, r * gpr + g, w.f16), dx[g], xs[g]);
  return reduce8(lanes);
}

void gw_rows(const Linear& w, int64_t r0, int64_t r1, const ActQ& act, int64_t t0, int64_t t1, float* y,
             int64_t ystride) {
  const int64_t gpr = w.gpr(), nblk = (gpr + 3) / 4, full = gpr / 4;
  thread_local std::vector<int8_t> uv;
  if ((int64_t)uv.size() < w.cols + 16) uv.resize((size_t)(w.cols + 16));
  int8_t* u = uv.data();
  const uint8x16_t keep = nat_keep(w.group), keep_last = nat_keep(w.cols - (gpr - 1) * w.group);
  for (int64_t r = r0; r < r1; r++) {
    nat_unpack(w.q + r * w.row_bytes(), w.cols, w.bits, u);
    const int64_t pg = r * gpr;
    int64_t t = t0;
    for (; t + 2 <= t1; t += 2) {  // two tokens: each row vector and each s, z loaded once for both
      const int8_t *x = act.xq_of(t), *x2 = act.xq_of(t + 1);
      const float *dx = act.dx_of(t), *dx2 = act.dx_of(t + 1);
      const int32_t *xs = act.xsum_of(t), *xs2 = act.xsum_of(t + 1);
      float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0, c0 = a0, c1 = a0;
      int32x4_t ia = vdupq_n_s32(0), ic = ia;
      for (int64_t b = 0; b < nblk; b++) {
        ia = nat_block(w.bits, w.group, w.cols, gpr, u, x, xs, b, keep, keep_last);
        ic = nat_block(w.bits, w.group, w.cols, gpr, u, x2, xs2, b, keep, keep_last);
        if (b >= full) break;
        const float32x4_t s = gw_params4(w.scales, pg + 4 * b, w.f16),
                          z = gw_params4(w.zeros, pg + 4 * b, w.f16);
        if (b % 2 == 0) {
          a0 = gw_combine(a0, ia, s, z, dx + 4 * b, xs + 4 * b);
          c0 = gw_combine(c0, ic, s, z, dx2 + 4 * b, xs2 + 4 * b);
        } else {
          a1 = gw_combine(a1, ia, s, z, dx + 4 * b, xs + 4 * b);
          c1 = gw_combine(c1, ic, s, z, dx2 + 4 * b, xs2 + 4 * b);
        }
      }
      y[t * ystride + r] = gw_finish(w, r, a0, a1, full * 4, ia, dx, xs);
      y[(t + 1) * ystride + r] = gw_finish(w, r, c0, c1, full * 4, ic, dx2, xs2);
    }
    for (; t < t1; t++) {
      const int8_t* x = act.xq_of(t);
      const float* dx = act.dx_of(t);
      const int32_t* xs = act.xsum_of(t);
      float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0;
      int32x4_t ia = vdupq_n_s32(0);
      for (int64_t b = 0; b < nblk; b++) {
        ia = nat_block(w.bits, w.group, w.cols, gpr, u, x, xs, b, keep, keep_last);
        if (b >= full) break;
        const float32x4_t s = gw_params4(w.scales, pg + 4 * b, w.f16),
                          z = gw_params4(w.zeros, pg + 4 * b, w.f16);
        if (b % 2 == 0)
          a0 = gw_combine(a0, ia, s, z, dx + 4 * b, xs + 4 * b);
        else
          a1 = gw_combine(a1, ia, s, z, dx + 4 * b, xs + 4 * b);
      }
      y[t * ystride + r] = gw_finish(w, r, a0, a1, full * 4, ia, dx, xs);
    }
  }
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
  uint32_t st = 777u;
  auto rnd = [&st]() {
    st = st * 1664525u + 1013904223u;
    return st >> 8;
  };
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
    for (auto& v : q) v = (uint8_t)rnd();
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
      std::vector<float> x((size_t)(n * w.cols)), y0((size_t)(n * w.rows)), y1(y0.size());
      for (auto& v : x) v = (float)((int32_t)(rnd() % 20001) - 10000) * 1e-4f;
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
