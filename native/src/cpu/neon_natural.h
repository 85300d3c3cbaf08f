// Natural-order integer group sums on NEON, for packed rows whose groups do not fit the block layouts: shared
// by the kquant kernel (infer_kquant_neon_generic.h: 8 bits, groups that are not whole lanes) and the
// groupwise one (infer_neon_generic.h: groups that are not a multiple of 32). A private part of those
// headers, included inside their anonymous namespaces after <arm_neon.h> and ref.h (each translation unit has
// its own -march: plain armv8-a or +dotprod).
//
// A row is unpacked into one byte a value, in natural order (value c at byte c), then 16 zero bytes: 8 bits
// as code − 128 (int8; 128·xsum of the group is added back, exact in int32); 4 bits by vst2q_u8 of the low
// and high nibbles; 2 bits by vst4q_u8 of the four planes; 1 bit by a table lookup that repeats each byte 8
// times and a shift per lane. A group [lo, hi) is summed 16 values at a time from lo, its last chunk's
// activations masked to the group (lanes ≥ its length zeroed: the next group's values and the padding add
// nothing): vdotq_s32 with the dot-product extension, vmull_s8 + vpadalq_s16 without (exact for 8-bit codes
// too: no int16 sums). Four groups' partial sums are reduced by two pairwise-add levels: lane j of the result
// is group 4b + j's exact Σ q·x. nat_rows is both paths' row loop; each gives it its parameter source and
// float32 combine (GwNat, KqnNat).
#pragma once

#define APL_NAT_INLINE inline __attribute__((always_inline))

struct NatSum {
#if defined(__ARM_FEATURE_DOTPROD)
  static APL_NAT_INLINE int32x4_t add(int32x4_t acc, int8x16_t u, int8x16_t x) {
    return vdotq_s32(acc, u, x);
  }
#else
  static APL_NAT_INLINE int32x4_t add(int32x4_t acc, int8x16_t u, int8x16_t x) {
    acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(u), vget_low_s8(x)));
    return vpadalq_s16(acc, vmull_high_s8(u, x));
  }
#endif
};

/** The random numbers of the NEON kernels' self-checks (a 32-bit LCG's top 24 bits), fixed by the seed. */
struct CheckRng {
  uint32_t st;
  uint32_t operator()() {
    st = st * 1664525u + 1013904223u;
    return st >> 8;
  }
  /** Random bytes (packed codes). */
  void fill(std::vector<uint8_t>& v) {
    for (auto& b : v) b = (uint8_t)(*this)();
  }
  /** n activations in [−1, 1], steps of 1e-4. */
  std::vector<float> acts(int64_t n) {
    std::vector<float> x((size_t)n);
    for (auto& v : x) v = (float)((int32_t)((*this)() % 20001) - 10000) * 1e-4f;
    return x;
  }
};

/** cols values of the packed row q (bits 1, 2, 4, 8), one byte each (8 bits: code − 128), then 16 zeros. */
inline void nat_unpack(const uint8_t* q, int64_t cols, int bits, int8_t* u) {
  const int64_t full = packed_row_bytes(cols, bits) / 16;
  uint8_t* d = reinterpret_cast<uint8_t*>(u);
  for (int64_t i = 0; i < full; i++) {
    const uint8x16_t b = vld1q_u8(q + 16 * i);
    if (bits == 8) {
      vst1q_u8(d + 16 * i, veorq_u8(b, vdupq_n_u8(0x80)));
    } else if (bits == 4) {
      const uint8x16x2_t t = {{vandq_u8(b, vdupq_n_u8(0x0f)), vshrq_n_u8(b, 4)}};
      vst2q_u8(d + 32 * i, t);
    } else if (bits == 2) {
      const uint8x16_t m = vdupq_n_u8(3);
      const uint8x16x4_t t = {
          {vandq_u8(b, m), vandq_u8(vshrq_n_u8(b, 2), m), vandq_u8(vshrq_n_u8(b, 4), m), vshrq_n_u8(b, 6)}};
      vst4q_u8(d + 64 * i, t);
    } else {  // output vector v: bytes 2v and 2v + 1, each 8 times, shifted right by 0..7
      static const int8_t sh[16] = {0, -1, -2, -3, -4, -5, -6, -7, 0, -1, -2, -3, -4, -5, -6, -7};
      const int8x16_t shv = vld1q_s8(sh);
      for (int v = 0; v < 8; v++) {
        uint8_t idx[16];
        for (int k = 0; k < 16; k++) idx[k] = (uint8_t)(2 * v + k / 8);
        const uint8x16_t rep = vqtbl1q_u8(b, vld1q_u8(idx));
        vst1q_u8(d + 128 * i + 16 * v, vandq_u8(vshlq_u8(rep, shv), vdupq_n_u8(1)));
      }
    }
  }
  for (int64_t c = full * 16 * (8 / bits); c < cols; c++)
    d[c] = (uint8_t)(bits == 8 ? q[c] ^ 0x80 : packed_at(q, c, bits));
  memset(d + cols, 0, 16);
}

/** Lanes < the last chunk's length (1..16) of an n-value group. */
inline uint8x16_t nat_keep(int64_t n) {
  static const uint8_t iota[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  return vcltq_u8(vld1q_u8(iota), vdupq_n_u8((uint8_t)((n - 1) % 16 + 1)));
}

/** Partial sums of group [lo, lo + n): full chunks, then the last one masked (keep). */
APL_NAT_INLINE int32x4_t nat_group(const int8_t* u, const int8_t* x, int64_t lo, int64_t n, uint8x16_t keep) {
  int32x4_t acc = vdupq_n_s32(0);
  int64_t i = 0;
  for (; i + 16 < n; i += 16) acc = NatSum::add(acc, vld1q_s8(u + lo + i), vld1q_s8(x + lo + i));
  const int8x16_t xm = vreinterpretq_s8_u8(vandq_u8(vreinterpretq_u8_s8(vld1q_s8(x + lo + i)), keep));
  return NatSum::add(acc, vld1q_s8(u + lo + i), xm);
}

/**
 * Block b's 4 exact group sums Σ q·x (lane j = group 4b + j; groups past the row give 0). keep: a whole
 * group's last-chunk mask; keep_last: the row's last group's. x: natural-order activations, readable 16 bytes
 * past each group's start (the activation buffers are padded); xs: the groups' Σ x (used at 8 bits).
 */
APL_NAT_INLINE int32x4_t nat_block(int bits, int64_t G, int64_t cols, int64_t gpr, const int8_t* u,
                                   const int8_t* x, const int32_t* xs, int64_t b, uint8x16_t keep,
                                   uint8x16_t keep_last) {
  int32x4_t p[4];
  for (int j = 0; j < 4; j++) {
    const int64_t g = 4 * b + j, lo = g * G;
    if (g >= gpr) {
      p[j] = vdupq_n_s32(0);
      continue;
    }
    const int64_t n = std::min(G, cols - lo);
    p[j] = nat_group(u, x, lo, n, n == G ? keep : keep_last);
  }
  int32x4_t s = vpaddq_s32(vpaddq_s32(p[0], p[1]), vpaddq_s32(p[2], p[3]));
  if (bits == 8) {  // Σ q·x = Σ (q − 128)·x + 128·Σ x
    int32_t x4[4];
    for (int j = 0; j < 4; j++) x4[j] = 4 * b + j < gpr ? xs[4 * b + j] : 0;
    s = vaddq_s32(s, vshlq_n_s32(vld1q_s32(x4), 7));
  }
  return s;
}

/**
 * The natural-order row loop of both paths: each row unpacked once (nat_unpack) and reused for every token of
 * the tile, two tokens at a time (each row vector and each block's s and z loaded once for both), then the
 * last token of an odd count. Block b's 4 groups go to lanes 4(b % 2) + j (two accumulators); the last,
 * partial block's sums are handed to the finish. P, the path's parameter source and float32 operations
 * (inlined, p kept in registers: give no call outside a reference into p):
 *   void row(int64_t r): row r's s and z (decoded, or where the weight stores them), before its unpack;
 *   void sz(int64_t b, float32x4_t& s, float32x4_t& z): the 4 groups of block b;
 *   static float32x4_t combine(acc, isum, s, z, dx, xs): the reference's combine for 4 groups, in its order;
 *   float finish(a0, a1, isum, dx, xs): the row's 8 lanes, the partial block in scalar code, reduced.
 */
template <class P>
APL_NAT_INLINE void nat_rows(P& p, const Linear& w, int64_t r0, int64_t r1, const ActQ& act, int64_t t0,
                             int64_t t1, float* y, int64_t ystride) {
  const int64_t gpr = w.gpr(), nblk = (gpr + 3) / 4, full = gpr / 4;
  thread_local std::vector<int8_t> uv;
  if ((int64_t)uv.size() < w.cols + 16) uv.resize((size_t)(w.cols + 16));
  int8_t* u = uv.data();
  const uint8x16_t keep = nat_keep(w.group), keep_last = nat_keep(w.cols - (gpr - 1) * w.group);
  for (int64_t r = r0; r < r1; r++) {
    p.row(r);
    nat_unpack(w.q + r * w.row_bytes(), w.cols, w.bits, u);
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
        float32x4_t s, z;
        p.sz(b, s, z);
        if (b % 2 == 0) {
          a0 = P::combine(a0, ia, s, z, dx + 4 * b, xs + 4 * b);
          c0 = P::combine(c0, ic, s, z, dx2 + 4 * b, xs2 + 4 * b);
        } else {
          a1 = P::combine(a1, ia, s, z, dx + 4 * b, xs + 4 * b);
          c1 = P::combine(c1, ic, s, z, dx2 + 4 * b, xs2 + 4 * b);
        }
      }
      y[t * ystride + r] = p.finish(a0, a1, ia, dx, xs);
      y[(t + 1) * ystride + r] = p.finish(c0, c1, ic, dx2, xs2);
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
        float32x4_t s, z;
        p.sz(b, s, z);
        if (b % 2 == 0)
          a0 = P::combine(a0, ia, s, z, dx + 4 * b, xs + 4 * b);
        else
          a1 = P::combine(a1, ia, s, z, dx + 4 * b, xs + 4 * b);
      }
      y[t * ystride + r] = p.finish(a0, a1, ia, dx, xs);
    }
  }
}
