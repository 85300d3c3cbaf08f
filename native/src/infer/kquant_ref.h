// The scalar reference of the inference kernels for two-level-scale weights (type kquant, Linear kind 2): the
// spec that every SIMD (src/cpu/infer_kquant_*.cc), NEON and CUDA variant reproduces bit for bit. Compiled
// with -ffp-contract=off; every float32 operation is written out in order. Functions are static (see ref.h).
//
// The weight (native/src/kquant.h, docs/FORMAT.md): row r, group g (elements [g·G, min(cols, (g+1)·G))) lies
// in super-block b = g·G / S; its scale code sc and min code mc are bits g·(sb+mb) … of the row's code bit
// stream (sc first, then mc, little-endian); d and dmin are the float16 pair of super-block b. Then, exactly
// as the dequantization (kq_value):  s = f32(d · sc),  z = f32(dmin · mc),  Ŵ[r, c] = s·q − z.
//
// The int8 scheme (as the groupwise one, infer.h):
//  - activations are quantized per weight group G in natural order (act_quantize_ref): dx = amax/127,
//    xq = clamp(rne(x·127/amax), ±127), xsum = Σ xq; SIMD variants zero xq from cols up to a multiple of 32;
//  - per group the integer isum = Σ q·xq (int32: at most 255·127·256 in magnitude), then in float32
//      t = s·(float)isum − z·(float)xsum,   term = dx·t,   added to lane g % 8,
//    the min folded into the activation group sum (Σ (s·q − z)·xq = s·isum − z·xsum);
//  - the 8 lanes are reduced as quant.h's reduce8.
#pragma once

#include "../kquant.h"
#include "ref.h"

namespace apl {
namespace infer {

/** Bytes of one row's code bit stream. */
APL_HD static inline int64_t kq_codes_row_bytes(const Linear& w) {
  return (w.gpr() * (w.kq_sbits + w.kq_mbits) + 7) / 8;
}
APL_HD static inline int64_t kq_supers(const Linear& w) { return (w.cols + w.kq_super - 1) / w.kq_super; }

/** s and z of row r's group g: f32(d·sc) and f32(dmin·mc). */
APL_HD static inline void kq_group_sz(const Linear& w, int64_t r, int64_t g, float* s, float* z) {
  const uint8_t* cr = w.codes + r * kq_codes_row_bytes(w);
  const int64_t b = g * w.group / w.kq_super, nsb = kq_supers(w);
  uint16_t dh, mh;
  memcpy(&dh, w.kd + (r * nsb + b) * 2, 2);
  memcpy(&mh, w.kdmin + (r * nsb + b) * 2, 2);
  const int64_t pos = g * (w.kq_sbits + w.kq_mbits);
  const unsigned sc = get_bits(cr, pos, w.kq_sbits), mc = get_bits(cr, pos + w.kq_sbits, w.kq_mbits);
  float d = f16_to_f32(dh), dm = f16_to_f32(mh);
  *s = d * (float)sc;
  *z = dm * (float)mc;
}

/** Row r's s and z for every group (the values kq_group_sz gives): d and dmin converted once per super-block,
 * the code bit stream read sequentially. The SIMD kernels' path for layouts their block decoders do not take.
 */
static inline void kq_row_sz(const Linear& w, int64_t r, float* s, float* z) {
  const int64_t gpr = w.gpr(), nsb = kq_supers(w), gps = w.kq_super / w.group;
  const uint8_t* cr = w.codes + r * kq_codes_row_bytes(w);
  const int width = w.kq_sbits + w.kq_mbits, sbits = w.kq_sbits;
  const uint32_t smask = (1u << w.kq_sbits) - 1, mmask = (1u << w.kq_mbits) - 1;
  uint64_t acc = 0;
  int nb = 0;
  for (int64_t b = 0; b < nsb; b++) {
    uint16_t dh, mh;
    memcpy(&dh, w.kd + (r * nsb + b) * 2, 2);
    memcpy(&mh, w.kdmin + (r * nsb + b) * 2, 2);
    const float d = f16_to_f32(dh), dm = f16_to_f32(mh);
    const int64_t ge = (b + 1) * gps < gpr ? (b + 1) * gps : gpr;
    for (int64_t g = b * gps; g < ge; g++) {
      while (nb < width) {
        acc |= (uint64_t)*cr++ << nb;
        nb += 8;
      }
      const uint32_t v = (uint32_t)acc;
      acc >>= width;
      nb -= width;
      s[g] = d * (float)(v & smask);
      z[g] = dm * (float)((v >> sbits) & mmask);
    }
  }
}

/** One group's contribution, added to its lane (the order every variant keeps). */
APL_HD static inline void kq_combine_group(float* acc, int64_t g, int32_t isum, float s, float z, float dx,
                                           int32_t xsum) {
  float a = (float)isum;
  float xs = (float)xsum;
  float u = s * a;
  float v = z * xs;
  float t = u - v;
  float term = dx * t;
  acc[g & 7] += term;
}

/** Row r of a kquant weight · one token's activations (natural order, quantized per group of w.group). */
static inline float kq_qdot_ref(const Linear& w, int64_t r, const int8_t* xq, const float* dx,
                                const int32_t* xsum) {
  const int64_t gpr = w.gpr();
  const uint8_t* qrow = w.q + r * w.row_bytes();
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (int64_t g = 0; g < gpr; g++) {
    int64_t lo = g * w.group, hi = lo + w.group < w.cols ? lo + w.group : w.cols;
    int32_t isum = group_isum_ref(qrow, lo, hi, w.bits, xq);
    float s, z;
    kq_group_sz(w, r, g, &s, &z);
    kq_combine_group(acc, g, isum, s, z, dx[g], xsum[g]);
  }
  return reduce8(acc);
}

/** Row r dequantized into dst (= kq_dequantize_row of ../kquant.h). */
static inline void kq_dequantize_row_ref(const Linear& w, int64_t r, float* dst) {
  KqTensor t{w.q,
             w.codes,
             w.kd,
             w.kdmin,
             w.rows,
             w.cols,
             KqParams{w.bits, (int)w.group, (int)w.kq_super, w.kq_sbits, w.kq_mbits}};
  kq_dequantize_row(t, r, dst);
}

}  // namespace infer
}  // namespace apl
