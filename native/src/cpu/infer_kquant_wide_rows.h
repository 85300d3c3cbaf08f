// The lane-width template of the kquant "wide" kernels (groups of whole 4-byte lanes of packed codes, 2 and 4
// bits): what the 512-bit VNNI kernel (infer_kquant_wide.h, blocks of 16 groups) and the 256-bit AVX2 one
// (infer_kquant_wide2.h, blocks of 8 groups) share. Each includes this header and passes a traits type T:
//   B, VB                 groups per block, bytes per vector (4·B)
//   I, F                  the integer and float vectors; load_i, set1_i, and_i, srl, cvt, mul, sub, set1,
//                         loadu, storeu on them
//   Kern<BITS, L>         the block's integer sums: gather, isum_packed, unpack, isum_unpacked
//   fields(c, rc, b)      block b's code fields of s and z, one group a dword (the width's own loads)
//   supers(c, rc, b, d, m) block b's d and dmin per lane
//   f16_to_f32(d, m, n, dv, mv) a row's n float16 d and dmin to float32
//   Edge, edge, edge_token, At, at, load_dx, load_xs, fold: the last block's lanes past the row (masked on
//                         AVX-512, a padded copy and a blend on AVX2) and the fold of a block's terms into
//                         the reference's 8 lanes
//   kPrefetch             prefetch the next row pair's block in decode
// Included inside the kqx86 namespace (infer_kquant_x86.h), once per kernel file; every piece keeps the
// reference's float32 operations in its order (bit-exact with kquant_ref.h).
#pragma once

#define APL_KQW_INLINE inline __attribute__((always_inline))

/** 4-byte lanes of packed codes per group, or 0 when the wide path does not take the shape. */
inline int wide_lanes(int bits, int64_t group) {
  if (bits != 2 && bits != 4) return 0;
  if (group * bits % 32) return 0;
  const int64_t l = group * bits / 32;
  return l <= 4 ? (int)l : 0;
}

/** Natural-order activations → the wide layout, block by block (len: whole blocks of T::B groups). */
template <class T>
inline void wide_act_layout(const int8_t* nat, int64_t len, int64_t group, int bits, int8_t* xq) {
  const int L = wide_lanes(bits, group), per = 8 / bits, vpl = 4 * per;  // values per packed lane
  const int64_t blk = T::B * group;
  for (int64_t b0 = 0; b0 < len; b0 += blk) {
    const int8_t* src = nat + b0;
    int8_t* dst = xq + b0;
    for (int i = 0; i < L; i++)
      for (int k = 0; k < per; k++, dst += T::VB)
        for (int j = 0; j < T::B; j++)
          for (int m = 0; m < 4; m++) dst[4 * j + m] = src[(j * L + i) * vpl + m * per + k];
  }
}

/** Per call: the code-field tables and the super-block of each run of 8 groups. */
template <class T>
struct WideCodes {
  typename T::I shuf, shift, smask, mmask;
  __m128i sbits;
  bool fast = false;     // groups per super-block % 8 == 0
  bool uniform = false;  // … % B == 0: one super-block per block
  std::vector<int32_t> super;
};

/**
 * The code bit stream of 8 groups is `width` bytes (width = sbits + mbits), so each run of 8 groups starts on
 * a byte; a vpshufb puts the 3 bytes of group j's field in dword j (each 128-bit lane holds 4 groups: lanes
 * 0, 1 the first 8 groups' bytes, lanes 2, 3 the next 8's) and a variable shift aligns it.
 */
template <class T>
inline void wide_codes_init(const Linear& w, int64_t nblk, WideCodes<T>& c) {
  const int width = w.kq_sbits + w.kq_mbits;
  const int64_t gps = w.kq_super / w.group, nsb = kq_supers(w);
  c.fast = gps % 8 == 0;
  c.uniform = gps % T::B == 0;
  alignas(64) uint8_t sh[T::VB];
  alignas(64) int32_t sf[T::B];
  for (int l = 0; l < T::B / 4; l++)
    for (int m = 0; m < 4; m++) {
      const int p = ((l & 1) * 4 + m) * width;
      sf[4 * l + m] = p & 7;
      for (int e = 0; e < 4; e++) {
        const int b = (p >> 3) + e;
        sh[16 * l + 4 * m + e] = (uint8_t)(b < 16 ? b : 0x80);
      }
    }
  c.shuf = T::load_i(sh);
  c.shift = T::load_i(sf);
  c.smask = T::set1_i((1 << w.kq_sbits) - 1);
  c.mmask = T::set1_i((1 << w.kq_mbits) - 1);
  c.sbits = _mm_cvtsi32_si128(w.kq_sbits);
  if (!c.fast) return;
  const int64_t runs = nblk * T::B / 8;
  c.super.resize((size_t)runs);
  for (int64_t h = 0; h < runs; h++) c.super[(size_t)h] = (int32_t)std::min(nsb - 1, h * 8 / gps);
}

/** One row's codes for the fast decode: its code bytes and its d, dmin in float32. */
struct RowCodes {
  const uint8_t* cr;
  int64_t cb;
  int width;
  const float* dv;
  const float* mv;
  /** Bytes of cr a 16-byte load may read: to the end of the weight's codes (the bytes past the row belong to
   * the next rows and only reach the lanes of groups past the row, which are masked). */
  int64_t avail;
};

/** Row r's d and dmin converted (f16 → f32 is exact: the values f16_to_f32 gives) into scratch `slot`. */
template <class T>
inline RowCodes wide_row_codes(const Linear& w, int64_t r, int slot = 0) {
  const int64_t nsb = kq_supers(w), cb = kq_codes_row_bytes(w);
  thread_local std::vector<float> tls[4];
  std::vector<float>& dv = tls[2 * slot];
  std::vector<float>& mv = tls[2 * slot + 1];
  if ((int64_t)dv.size() < nsb + T::B) {
    dv.resize((size_t)(nsb + T::B));
    mv.resize((size_t)(nsb + T::B));
  }
  T::f16_to_f32(w.kd + r * nsb * 2, w.kdmin + r * nsb * 2, nsb, dv.data(), mv.data());
  return RowCodes{w.codes + r * cb, cb, w.kq_sbits + w.kq_mbits, dv.data(), mv.data(), (w.rows - r) * cb};
}

/** s and z of block b's B groups (c.fast; lanes past the row are don't-care). */
template <class T>
APL_KQW_INLINE void wide_block_sz(const WideCodes<T>& c, const RowCodes& rc, int64_t b, typename T::F& s,
                                  typename T::F& z) {
  const typename T::I v = T::fields(c, rc, b);
  const typename T::F sc = T::cvt(T::and_i(v, c.smask));
  const typename T::F mc = T::cvt(T::and_i(T::srl(v, c.sbits), c.mmask));
  typename T::F d, m;
  T::supers(c, rc, b, d, m);
  s = T::mul(d, sc);
  z = T::mul(m, mc);
}

/** Row r's s and z for blocks [0, nblk) (B per block; lanes past the row are don't-care). */
template <class T>
inline void wide_decode_sz(const Linear& w, const WideCodes<T>& c, int64_t r, int64_t nblk, float* s,
                           float* z) {
  if (!c.fast) {
    kq_row_sz(w, r, s, z);
    for (int64_t g = w.gpr(); g < nblk * T::B; g++) s[g] = z[g] = 0.0f;
    return;
  }
  const RowCodes rc = wide_row_codes<T>(w, r);
  for (int64_t b = 0; b < nblk; b++) {
    typename T::F sv, zv;
    wide_block_sz(c, rc, b, sv, zv);
    T::storeu(s + T::B * b, sv);
    T::storeu(z + T::B * b, zv);
  }
}

/**
 * kq_combine_group for the B groups of a block: t = s·(float)isum − z·(float)xsum, term = dx·t, folded into
 * the reference's 8 lanes acc (group g0 + j to lane j % 8, in the reference's order; lanes past the row left
 * out).
 */
template <class T>
APL_KQW_INLINE __m256 wide_combine(__m256 acc, typename T::I isum, typename T::F s, typename T::F z,
                                   const typename T::At& at, const typename T::Edge& e) {
  const typename T::F a = T::cvt(isum);
  const typename T::F xv = T::cvt(T::load_xs(at));
  const typename T::F u = T::mul(s, a);
  const typename T::F v = T::mul(z, xv);
  const typename T::F term = T::mul(T::load_dx(at), T::sub(u, v));
  return T::fold(acc, term, at, e);
}

/** Per-row scratch of one thread (wide path). */
template <class T>
struct WideScratch {
  std::vector<float> s, z;
  std::vector<float> xf, dv, mv;  // decode: the token's (float)xsum, a row's d and dmin in float32
  std::vector<float> tab;         // decode: a row's s tables (wide_dec_lut5)
  std::vector<uint8_t> u;         // prompts: the row's planes (VB-byte aligned from u_at)
  alignas(T::VB) uint8_t tail[16 * T::B], tail2[16 * T::B];
  uint8_t* u_at() { return (uint8_t*)(((uintptr_t)u.data() + (T::VB - 1)) & ~(uintptr_t)(T::VB - 1)); }
};

/** Row pair (r, r2) of the row loops: r2 = r + 1, or r itself for an odd last row (computed twice, written
 * once); their packed codes, with each row's last, partial block copied into sc's zero-padded tails. */
struct WidePair {
  int64_t r2;
  const uint8_t *qa, *qb;
};
template <class S>
inline WidePair wide_pair(const Linear& w, S& sc, int64_t r, int64_t r1, int64_t rb, int64_t qfull,
                          int64_t nblk, int64_t bbytes) {
  const int64_t r2 = r + 1 < r1 ? r + 1 : r;
  const WidePair p{r2, w.q + r * rb, w.q + r2 * rb};
  if (qfull < nblk) {
    std::memset(sc.tail, 0, sizeof sc.tail);
    std::memcpy(sc.tail, p.qa + qfull * bbytes, (size_t)(rb - qfull * bbytes));
    std::memset(sc.tail2, 0, sizeof sc.tail2);
    std::memcpy(sc.tail2, p.qb + qfull * bbytes, (size_t)(rb - qfull * bbytes));
  }
  return p;
}

#include "infer_kquant_wide_dec.h"

template <class T, int BITS, int L>
void wide_rows(const Linear& w, int64_t r0, int64_t r1, const ActQ& act, int64_t t0, int64_t t1, float* y,
               int64_t ystride) {
  using K = typename T::template Kern<BITS, L>;
  using F = typename T::F;
  using I = typename T::I;
  constexpr int B = T::B;
  const int64_t gpr = w.gpr(), nblk = (gpr + B - 1) / B, rb = w.row_bytes(), bbytes = T::VB * L;
  const int64_t ublk = T::VB * K::NV, qfull = rb / bbytes;  // blocks [0, qfull) lie inside the row
  typename T::Edge edge = T::edge(gpr);
  const bool many = t1 - t0 > 1;
  thread_local WideScratch<T> tls_sc;
  thread_local WideCodes<T> tls_wc;
  WideScratch<T>& sc = tls_sc;  // one thread_local lookup per call, not one per use in the loops
  const WideCodes<T>& wc = tls_wc;
  wide_codes_init(w, nblk, tls_wc);
  if ((int64_t)sc.s.size() < 2 * nblk * B) {
    sc.s.resize((size_t)(2 * nblk * B));
    sc.z.resize((size_t)(2 * nblk * B));
  }
  if ((int64_t)sc.u.size() < 2 * nblk * ublk + T::VB) sc.u.resize((size_t)(2 * nblk * ublk + T::VB));
  float* s = sc.s.data();
  float* z = sc.z.data();
  uint8_t* ub = sc.u_at();
  if (!many && wc.fast) {  // decode: two rows side by side, s and z computed block by block
    const int8_t* x = act.xq_of(t0);
    const float* dx = act.dx_of(t0);
    const int32_t* xs = act.xsum_of(t0);
    T::edge_token(edge, dx, xs, gpr, nblk);
    if (kq_wide_seq()) return wide_rows_dec<T, BITS, L>(w, wc, sc, edge, x, dx, xs, r0, r1, y + t0 * ystride);
    for (int64_t r = r0; r < r1; r += 2) {
      const WidePair pr = wide_pair(w, sc, r, r1, rb, qfull, nblk, bbytes);
      const int64_t r2 = pr.r2;
      const uint8_t *qa = pr.qa, *qb = pr.qb;
      const RowCodes ca = wide_row_codes<T>(w, r, 0), cb = wide_row_codes<T>(w, r2, 1);
      const uint8_t* next = T::kPrefetch && r + 2 < r1 ? qa + 2 * rb : nullptr;
      __m256 aa = _mm256_setzero_ps(), ab = aa;
      for (int64_t b = 0; b < nblk; b++) {
        if (T::kPrefetch && next && b < qfull)  // the same block of the next row pair
          for (int i = 0; i < L; i++) {
            _mm_prefetch((const char*)(next + b * bbytes + 64 * i), _MM_HINT_T0);
            _mm_prefetch((const char*)(next + rb + b * bbytes + 64 * i), _MM_HINT_T0);
          }
        const typename T::At at = T::at(edge, dx, xs, b, nblk);
        const int8_t* xb = x + b * ublk;
        F sa, za, sb, zb;
        wide_block_sz(wc, ca, b, sa, za);
        wide_block_sz(wc, cb, b, sb, zb);
        const bool in = b < qfull;
        const I ia = K::isum_packed(in ? qa + b * bbytes : sc.tail, xb);
        const I ib = K::isum_packed(in ? qb + b * bbytes : sc.tail2, xb);
        aa = wide_combine<T>(aa, ia, sa, za, at, edge);
        ab = wide_combine<T>(ab, ib, sb, zb, at, edge);
      }
      alignas(32) float lanes[8];
      _mm256_store_ps(lanes, aa);
      y[t0 * ystride + r] = reduce8(lanes);
      if (r2 != r) {
        _mm256_store_ps(lanes, ab);
        y[t0 * ystride + r2] = reduce8(lanes);
      }
    }
    return;
  }
  // prompts (and rows whose s and z need the scalar decode): two rows at a time, their planes unpacked once
  // for every token, each token's activations read once for both rows
  float* s2 = s + nblk * B;
  float* z2 = z + nblk * B;
  uint8_t* ub2 = ub + nblk * ublk;
  for (int64_t r = r0; r < r1; r += 2) {
    const WidePair pr = wide_pair(w, sc, r, r1, rb, qfull, nblk, bbytes);
    const int64_t r2 = pr.r2;
    const uint8_t *qa = pr.qa, *qb = pr.qb;
    wide_decode_sz(w, wc, r, nblk, s, z);
    wide_decode_sz(w, wc, r2, nblk, s2, z2);
    for (int64_t b = 0; b < nblk; b++) {
      K::unpack(b < qfull ? qa + b * bbytes : sc.tail, ub + b * ublk);
      K::unpack(b < qfull ? qb + b * bbytes : sc.tail2, ub2 + b * ublk);
    }
    for (int64_t t = t0; t < t1; t++) {
      const int8_t* x = act.xq_of(t);
      const float* dx = act.dx_of(t);
      const int32_t* xs = act.xsum_of(t);
      T::edge_token(edge, dx, xs, gpr, nblk);
      __m256 aa = _mm256_setzero_ps(), ab = aa;
      for (int64_t b = 0; b < nblk; b++) {
        const typename T::At at = T::at(edge, dx, xs, b, nblk);
        const int8_t* xb = x + b * ublk;
        const I ia = K::isum_unpacked(ub + b * ublk, xb), ib = K::isum_unpacked(ub2 + b * ublk, xb);
        aa = wide_combine<T>(aa, ia, T::loadu(s + B * b), T::loadu(z + B * b), at, edge);
        ab = wide_combine<T>(ab, ib, T::loadu(s2 + B * b), T::loadu(z2 + B * b), at, edge);
      }
      alignas(32) float lanes[8];
      _mm256_store_ps(lanes, aa);
      y[t * ystride + r] = reduce8(lanes);
      if (r2 != r) {
        _mm256_store_ps(lanes, ab);
        y[t * ystride + r2] = reduce8(lanes);
      }
    }
  }
}

/** The wide path when it applies (see wide_lanes); false otherwise. */
template <class T>
inline bool wide_qrows(const Linear& w, int64_t r0, int64_t r1, const ActQ& a, int64_t t0, int64_t t1,
                       float* y, int64_t ystride) {
  const int L = wide_lanes(w.bits, w.group);
  if (!L) return false;
  if (w.bits == 4) {
    if (L == 1) wide_rows<T, 4, 1>(w, r0, r1, a, t0, t1, y, ystride);
    if (L == 2) wide_rows<T, 4, 2>(w, r0, r1, a, t0, t1, y, ystride);
    if (L == 3) wide_rows<T, 4, 3>(w, r0, r1, a, t0, t1, y, ystride);
    if (L == 4) wide_rows<T, 4, 4>(w, r0, r1, a, t0, t1, y, ystride);
  } else {
    if (L == 1) wide_rows<T, 2, 1>(w, r0, r1, a, t0, t1, y, ystride);
    if (L == 2) wide_rows<T, 2, 2>(w, r0, r1, a, t0, t1, y, ystride);
    if (L == 3) wide_rows<T, 2, 3>(w, r0, r1, a, t0, t1, y, ystride);
    if (L == 4) wide_rows<T, 2, 4>(w, r0, r1, a, t0, t1, y, ystride);
  }
  return true;
}
