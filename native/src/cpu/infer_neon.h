// NEON inference kernel (arm64), included by two translation units: infer_neon.cc (plain armv8-a, for every
// arm64 CPU) and infer_neon_dotprod.cc (compiled with -march=armv8.2-a+dotprod). The kernel selection
// (infer/kernels.cc) uses the second only where the CPU reports the dot-product extension (Linux
// HWCAP_ASIMDDP, macOS hw.optional.arm.FEAT_DotProd), so one build runs on a Cortex-A72 and uses vdotq_s32 on
// a Neoverse or an Apple M-series chip. The includer defines APL_NEON_KERNEL_FN (the function that returns
// the kernel).
//
// Integer dot products on the packed rows, bit-exact with the scalar reference (infer/ref.h): vdotq_s32 where
// the compiler targets the dot-product extension (__ARM_FEATURE_DOTPROD), else vmull_s8 + vmlal_high_s8 +
// vpadalq_s16 (plain armv8-a). Compiled with -ffp-contract=off: every float multiply and add stays separate,
// in the reference's order.
//
// Packed rows whose group size is a multiple of 32 run 32 values at a time; other group sizes take the
// natural-order path of infer_neon_generic.h (after its self-check, else the reference). A 32-value chunk of
// a b-bit row is 4b bytes; shifting every byte right by k·b and masking gives values k, k+per, k+2·per, …
// (per = 8/b): the chunk unpacks in a fixed permuted order (position k·4b + j holds value per·j + k, the
// order of ../cpu/infer_x86.h), and the activations of full chunks are stored in that order once per token,
// so no shuffle is needed per weight row. 8 bits: natural order, codes stored as q − 128 (int8) and 128·Σx
// added back. Prompts unpack a row once and reuse it for up to 16 tokens.
//
// Float weights (f32/f16/bf16), dotf and axpyf keep the reference's order too (eight lanes, lane c % 8), so
// they are bit-exact as well.
#ifndef APL_NEON_KERNEL_FN
#error "define APL_NEON_KERNEL_FN before including infer_neon.h"
#endif
#include "../infer/infer.h"

#if defined(__aarch64__)
#include <arm_neon.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "../infer/ref.h"

namespace apl {
namespace infer {
namespace {

inline bool fast_layout(int64_t group) { return group % 32 == 0; }

/** Position → element of a 32-value chunk for `bits` (1, 2, 4). */
inline void chunk_order(int bits, uint8_t* idx) {
  int per = 8 / bits, nb = 4 * bits;
  for (int k = 0; k < per; k++)
    for (int j = 0; j < nb; j++) idx[k * nb + j] = (uint8_t)(per * j + k);
}

void quantize_act(const float* x, int64_t cols, int64_t group, int bits, int8_t* xq, float* dx,
                  int32_t* xsum) {
  act_quantize_ref(x, cols, group, xq, dx, xsum);
  if (!fast_layout(group) || bits == 8) return;
  uint8_t idx[32];
  chunk_order(bits, idx);
  int8_t tmp[32];
  for (int64_t c0 = 0; c0 + 32 <= cols; c0 += 32) {
    memcpy(tmp, xq + c0, 32);
    for (int p = 0; p < 32; p++) xq[c0 + p] = tmp[idx[p]];
  }
}

/** 32 values of a chunk as int8, in the permuted order: positions 0–15 and 16–31. */
struct Q32 {
  int8x16_t lo, hi;
};

template <int BITS>
inline Q32 load_chunk(const uint8_t* p) {
  if (BITS == 8) {
    const uint8x16_t o = vdupq_n_u8(0x80);
    return {vreinterpretq_s8_u8(veorq_u8(vld1q_u8(p), o)),
            vreinterpretq_s8_u8(veorq_u8(vld1q_u8(p + 16), o))};
  }
  if (BITS == 4) {
    const uint8x16_t v = vld1q_u8(p);
    return {vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(0x0f))), vreinterpretq_s8_u8(vshrq_n_u8(v, 4))};
  }
  if (BITS == 2) {
    const uint8x8_t v = vld1_u8(p), m = vdup_n_u8(3);
    const uint8x8_t k0 = vand_u8(v, m), k1 = vand_u8(vshr_n_u8(v, 2), m);
    const uint8x8_t k2 = vand_u8(vshr_n_u8(v, 4), m), k3 = vshr_n_u8(v, 6);
    return {vreinterpretq_s8_u8(vcombine_u8(k0, k1)), vreinterpretq_s8_u8(vcombine_u8(k2, k3))};
  }
  uint32_t u;
  memcpy(&u, p, 4);
  const uint8x16_t v = vreinterpretq_u8_u32(vdupq_n_u32(u)), one = vdupq_n_u8(1);  // bytes 0–3, four times
  const int8x16_t s0 = {0, 0, 0, 0, -1, -1, -1, -1, -2, -2, -2, -2, -3, -3, -3, -3};
  const int8x16_t s1 = {-4, -4, -4, -4, -5, -5, -5, -5, -6, -6, -6, -6, -7, -7, -7, -7};
  return {vreinterpretq_s8_u8(vandq_u8(vshlq_u8(v, s0), one)),
          vreinterpretq_s8_u8(vandq_u8(vshlq_u8(v, s1), one))};
}

/** acc + Σ q·x over 16 int8 pairs, exact (|q| ≤ 128, |x| ≤ 127: two products fit int16). */
inline int32x4_t dot16(int32x4_t acc, int8x16_t q, int8x16_t x) {
#if defined(__ARM_FEATURE_DOTPROD)
  return vdotq_s32(acc, q, x);
#else
  int16x8_t p = vmull_s8(vget_low_s8(q), vget_low_s8(x));
  p = vmlal_high_s8(p, q, x);
  return vpadalq_s16(acc, p);
#endif
}

inline int32x4_t dot32(int32x4_t acc, const Q32& q, const int8_t* x) {
  acc = dot16(acc, q.lo, vld1q_s8(x));
  return dot16(acc, q.hi, vld1q_s8(x + 16));
}

template <int BITS, bool UNPACKED>
inline Q32 chunk_at(const uint8_t* qrow, const int8_t* ubuf, int64_t c) {
  if (UNPACKED) return {vld1q_s8(ubuf + c), vld1q_s8(ubuf + c + 16)};
  return load_chunk<BITS>(qrow + c / 32 * (4 * BITS));
}

/** Σ q·xq over the full group starting at c (exact; for 8 bits, Σ (q − 128)·xq). */
template <int BITS, bool UNPACKED>
inline int32x4_t group_dot(const uint8_t* qrow, const int8_t* ubuf, const int8_t* xq, int64_t c,
                           int64_t cpg) {
  int32x4_t a = vdupq_n_s32(0);
  for (int64_t m = 0; m < cpg; m++, c += 32) a = dot32(a, chunk_at<BITS, UNPACKED>(qrow, ubuf, c), xq + c);
  return a;
}

inline float32x4_t load_params4(const uint8_t* base, int64_t i, bool f16) {
  if (f16) return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16((const uint16_t*)(base + i * 2))));
  return vld1q_f32((const float*)(base + i * 4));
}

constexpr int kMaxTokens = 16;

/** Row r · the activations of tokens [t0, t1) (at most kMaxTokens), into y (see infer_x86.h's row_dot). */
template <int BITS, bool UNPACKED>
void row_dot(const Linear& w, int64_t r, const int8_t* ubuf, const ActQ& act, int64_t t0, int64_t t1,
             float* y, int64_t ystride) {
  constexpr bool kOffset = BITS == 8;  // the dot products summed (q − 128)·x
  const int64_t G = w.group, cpg = G / 32, gpr = w.gpr(), full = w.cols / G;
  const int nt = (int)(t1 - t0);
  const uint8_t* qrow = w.q + r * w.row_bytes();
  const int64_t pbase = r * gpr;
  float32x4_t acc0[kMaxTokens], acc1[kMaxTokens];
  for (int t = 0; t < nt; t++) acc0[t] = acc1[t] = vdupq_n_f32(0.0f);
  int64_t g = 0;
  for (; g + 8 <= full; g += 8) {
    const float32x4_t s0 = load_params4(w.scales, pbase + g, w.f16),
                      s1 = load_params4(w.scales, pbase + g + 4, w.f16);
    const float32x4_t z0 = load_params4(w.zeros, pbase + g, w.f16),
                      z1 = load_params4(w.zeros, pbase + g + 4, w.f16);
    for (int t = 0; t < nt; t++) {
      const int8_t* xq = act.xq_of(t0 + t);
      int32x4_t v[8];
      for (int k = 0; k < 8; k++) v[k] = group_dot<BITS, UNPACKED>(qrow, ubuf, xq, (g + k) * G, cpg);
      int32x4_t i0 = vpaddq_s32(vpaddq_s32(v[0], v[1]), vpaddq_s32(v[2], v[3]));
      int32x4_t i1 = vpaddq_s32(vpaddq_s32(v[4], v[5]), vpaddq_s32(v[6], v[7]));
      const int32_t* xsp = act.xsum_of(t0 + t) + g;
      const int32x4_t xs0 = vld1q_s32(xsp), xs1 = vld1q_s32(xsp + 4);
      if (kOffset) {
        i0 = vaddq_s32(i0, vshlq_n_s32(xs0, 7));
        i1 = vaddq_s32(i1, vshlq_n_s32(xs1, 7));
      }
      const float* dxp = act.dx_of(t0 + t) + g;
      // term = (s·dx)·((float)isum − z·(float)xsum), as combine_group
      const float32x4_t d0 = vmulq_f32(s0, vld1q_f32(dxp)), d1 = vmulq_f32(s1, vld1q_f32(dxp + 4));
      const float32x4_t b0 = vmulq_f32(z0, vcvtq_f32_s32(xs0)), b1 = vmulq_f32(z1, vcvtq_f32_s32(xs1));
      const float32x4_t u0 = vsubq_f32(vcvtq_f32_s32(i0), b0), u1 = vsubq_f32(vcvtq_f32_s32(i1), b1);
      acc0[t] = vaddq_f32(acc0[t], vmulq_f32(d0, u0));
      acc1[t] = vaddq_f32(acc1[t], vmulq_f32(d1, u1));
    }
  }
  for (int t = 0; t < nt; t++) {
    const int8_t* xq = act.xq_of(t0 + t);
    const float* dx = act.dx_of(t0 + t);
    const int32_t* xsum = act.xsum_of(t0 + t);
    float acc[8];
    vst1q_f32(acc, acc0[t]);
    vst1q_f32(acc + 4, acc1[t]);
    for (int64_t gg = g; gg < gpr; gg++) {
      const int64_t lo = gg * G, hi = lo + G < w.cols ? lo + G : w.cols;
      int32x4_t a = vdupq_n_s32(0);
      int64_t c = lo;
      for (; c + 32 <= hi; c += 32) a = dot32(a, chunk_at<BITS, UNPACKED>(qrow, ubuf, c), xq + c);
      int32_t isum = vaddvq_s32(a), tail = 0;
      for (; c < hi; c++) {
        isum += (int32_t)packed_at(qrow, c, BITS) * (int32_t)xq[c];
        tail += xq[c];
      }
      if (kOffset) isum += 128 * (xsum[gg] - tail);
      combine_group(acc, gg, isum, load_param(w.scales, pbase + gg, w.f16),
                    load_param(w.zeros, pbase + gg, w.f16), dx[gg], xsum[gg]);
    }
    y[(t0 + t) * ystride + r] = reduce8(acc);
  }
}

template <int BITS>
void qrows_bits(const Linear& w, int64_t r0, int64_t r1, const ActQ& a, int64_t t0, int64_t t1, float* y,
                int64_t ystride) {
  if (t1 - t0 == 1) {
    for (int64_t r = r0; r < r1; r++) row_dot<BITS, false>(w, r, nullptr, a, t0, t1, y, ystride);
    return;
  }
  thread_local std::vector<int8_t> buf;  // one row unpacked (full chunks), reused across the tokens
  if ((int64_t)buf.size() < w.cols + 32) buf.resize((size_t)w.cols + 32);
  int8_t* ub = buf.data();
  const int64_t rb = w.row_bytes();
  for (int64_t r = r0; r < r1; r++) {
    const uint8_t* qrow = w.q + r * rb;
    for (int64_t c = 0; c + 32 <= w.cols; c += 32) {
      const Q32 q = load_chunk<BITS>(qrow + c / 32 * (4 * BITS));
      vst1q_s8(ub + c, q.lo);
      vst1q_s8(ub + c + 16, q.hi);
    }
    for (int64_t tb = t0; tb < t1; tb += kMaxTokens)
      row_dot<BITS, true>(w, r, ub, a, tb, std::min(t1, tb + kMaxTokens), y, ystride);
  }
}

// Groups that are not a multiple of 32: rows unpacked to a byte a value (infer_neon_generic.h).
#include "infer_neon_generic.h"

void qrows(const Linear& w, int64_t r0, int64_t r1, const ActQ& a, int64_t t0, int64_t t1, float* y,
           int64_t ystride) {
  if (!fast_layout(w.group)) {
    static const bool ok = gw_self_check_or_say();  // the natural-order path, checked once before first use
    if (ok) return gw_rows(w, r0, r1, a, t0, t1, y, ystride);
    for (int64_t r = r0; r < r1; r++)
      for (int64_t t = t0; t < t1; t++)
        y[t * ystride + r] = qdot_ref(w, r, a.xq_of(t), a.dx_of(t), a.xsum_of(t));
    return;
  }
  with_bits(w.bits, [&](auto b) { qrows_bits<decltype(b)::value>(w, r0, r1, a, t0, t1, y, ystride); });
}

// ---------------------------------------------------------------------------------------------------------------
// Float weights: eight lanes in two vectors, lane c % 8, as the reference (bit-exact).

template <int DT>
inline void load8f(const uint8_t* row, int64_t c, float32x4_t& a, float32x4_t& b) {
  if (DT == kF32) {
    a = vld1q_f32((const float*)row + c);
    b = vld1q_f32((const float*)row + c + 4);
    return;
  }
  const uint16x8_t h = vld1q_u16((const uint16_t*)(row + 2 * c));
  if (DT == kF16) {
    a = vcvt_f32_f16(vreinterpret_f16_u16(vget_low_u16(h)));
    b = vcvt_high_f32_f16(vreinterpretq_f16_u16(h));
  } else {
    a = vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(h), 16));
    b = vreinterpretq_f32_u32(vshll_high_n_u16(h, 16));
  }
}

/** Σ row[c]·x[c] for R rows at once (independent chains), each in the reference's order. */
template <int DT, int R>
inline void fdot_rows(const uint8_t* const* rows, const float* x, int64_t cols, float* out) {
  float32x4_t a[R], b[R];
  for (int i = 0; i < R; i++) a[i] = b[i] = vdupq_n_f32(0.0f);
  int64_t c = 0;
  for (; c + 8 <= cols; c += 8) {
    const float32x4_t x0 = vld1q_f32(x + c), x1 = vld1q_f32(x + c + 4);
    for (int i = 0; i < R; i++) {
      float32x4_t w0, w1;
      load8f<DT>(rows[i], c, w0, w1);
      a[i] = vaddq_f32(a[i], vmulq_f32(w0, x0));
      b[i] = vaddq_f32(b[i], vmulq_f32(w1, x1));
    }
  }
  for (int i = 0; i < R; i++) {
    float acc[8];
    vst1q_f32(acc, a[i]);
    vst1q_f32(acc + 4, b[i]);
    for (int64_t cc = c; cc < cols; cc++) {
      float p = float_at(rows[i], cc, DT) * x[cc];
      acc[cc & 7] += p;
    }
    out[i] = reduce8(acc);
  }
}

template <int DT>
void frows_dt(const Linear& w, int64_t r0, int64_t r1, const float* x, int64_t t0, int64_t t1, float* y,
              int64_t ystride) {
  const int64_t rb = w.cols * dtype_size(DT);
  for (int64_t t = t0; t < t1; t++) {
    const float* xt = x + t * w.cols;
    int64_t r = r0;
    for (; r + 4 <= r1; r += 4) {
      const uint8_t* rows[4] = {w.data + r * rb, w.data + (r + 1) * rb, w.data + (r + 2) * rb,
                                w.data + (r + 3) * rb};
      float o[4];
      fdot_rows<DT, 4>(rows, xt, w.cols, o);
      for (int i = 0; i < 4; i++) y[t * ystride + r + i] = o[i];
    }
    for (; r < r1; r++) {
      const uint8_t* row = w.data + r * rb;
      fdot_rows<DT, 1>(&row, xt, w.cols, y + t * ystride + r);
    }
  }
}

void frows(const Linear& w, int64_t r0, int64_t r1, const float* x, int64_t t0, int64_t t1, float* y,
           int64_t ystride) {
  if (w.dtype == kF32) return frows_dt<kF32>(w, r0, r1, x, t0, t1, y, ystride);
  if (w.dtype == kF16) return frows_dt<kF16>(w, r0, r1, x, t0, t1, y, ystride);
  return frows_dt<kBF16>(w, r0, r1, x, t0, t1, y, ystride);
}

float dotf(const float* a, const float* b, int64_t n) {
  float out;
  const uint8_t* row = reinterpret_cast<const uint8_t*>(a);
  fdot_rows<kF32, 1>(&row, b, n, &out);
  return out;
}

void axpyf(float s, const float* x, float* y, int64_t n) {
  const float32x4_t vs = vdupq_n_f32(s);
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vaddq_f32(vld1q_f32(y + i), vmulq_f32(vs, vld1q_f32(x + i))));
  for (; i < n; i++) {
    float p = s * x[i];
    y[i] += p;
  }
}

}  // namespace

const Kernel* APL_NEON_KERNEL_FN() {
#if defined(__ARM_FEATURE_DOTPROD)
  static const Kernel k{"neon-dotprod", quantize_act, qrows, frows, dotf, axpyf};
#else
  static const Kernel k{"neon", quantize_act, qrows, frows, dotf, axpyf};
#endif
  return &k;
}

}  // namespace infer
}  // namespace apl
#else
APL_NO_KERNEL(Kernel, APL_NEON_KERNEL_FN)
#endif
