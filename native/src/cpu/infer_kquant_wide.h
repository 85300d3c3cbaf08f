// 512-bit VNNI kernels for kquant weights whose groups are whole 4-byte lanes of packed codes (2 and 4 bits,
// G·bits a multiple of 32, at most 4 lanes a group: the layouts convert writes, g24 at 4 bits and g16 at 2),
// included by infer_kquant_x86.h with APL_INFER_VNNI. Bit-exact with the scalar reference (kquant_ref.h).
//
// Layout: a block is 16 groups (16·G values, 64·L bytes of packed codes, L = G·bits/32 lanes a group). Lane
// j·L + i of the block (4 bytes) is gathered into dword j of vector A_i (i < L: vpermt2d over the block's
// 64-byte loads), so dword j of every A_i belongs to group j; plane k of A_i ((A_i >> k·bits) & mask) then
// holds, in byte 4j + m, the value of packed byte 4(jL + i) + m at plane k. The activations of each block are
// stored in that order once per token (vector i·per + k, per = 8/bits), so the L·per vpdpbusd of a block give
// the 16 groups' exact integer sums in the 16 dword lanes with no reduction. Decode reads the packed codes
// directly; prompts unpack a row's planes once for every token of the tile.
//
// s and z of a row are decoded once per row 16 groups at a time: the code bit stream of 8 groups is `width`
// bytes (width = sbits + mbits), so each half block starts on a byte; a vpshufb puts the 3 bytes of group j's
// field in dword j and a variable shift aligns it; d and dmin (f16 → f32 exactly) are per half block (the
// fast decode needs groups-per-super-block % 8 == 0, else the row's s and z come from decode_sz). The combine
// runs the reference's float32 operations per group on 16 lanes; group g0 + j (j < 8) and then g0 + 8 + j are
// added to lane j (the reference's lane g % 8, in its order); the last block's lanes past the row are masked.
// The last block's packed codes and code bytes may lie past the row (or the buffer): they are read from a
// zero-padded copy.
#pragma once

/** 4-byte lanes of packed codes per group, or 0 when the wide path does not take the shape. */
inline int wide_lanes(int bits, int64_t group) {
  if (bits != 2 && bits != 4) return 0;
  if (group * bits % 32) return 0;
  const int64_t l = group * bits / 32;
  return l <= 4 ? (int)l : 0;
}

/** Natural-order activations → the wide layout, block by block (len: whole blocks of 16 groups). */
inline void wide_act_layout(const int8_t* nat, int64_t len, int64_t group, int bits, int8_t* xq) {
  const int L = wide_lanes(bits, group), per = 8 / bits, vpl = 4 * per;  // values per packed lane
  const int64_t blk = 16 * group;
  for (int64_t b0 = 0; b0 < len; b0 += blk) {
    const int8_t* src = nat + b0;
    int8_t* dst = xq + b0;
    for (int i = 0; i < L; i++)
      for (int k = 0; k < per; k++, dst += 64)
        for (int j = 0; j < 16; j++)
          for (int m = 0; m < 4; m++) dst[4 * j + m] = src[(j * L + i) * vpl + m * per + k];
  }
}

template <int BITS, int L>
struct KqWide {
  static constexpr int PER = 8 / BITS;
  static constexpr int NV = L * PER;  // 64-byte vectors per block

  /** Lanes j with j·L + i ≥ 32 (taken from the third and fourth loads). */
  static constexpr __mmask16 high(int i) {
    __mmask16 k = 0;
    for (int j = 0; j < 16; j++)
      if (j * L + i >= 32) k = (__mmask16)(k | (1u << j));
    return k;
  }
  static inline __m512i index(int i) {
    return _mm512_set_epi32(15 * L + i, 14 * L + i, 13 * L + i, 12 * L + i, 11 * L + i, 10 * L + i, 9 * L + i,
                            8 * L + i, 7 * L + i, 6 * L + i, 5 * L + i, 4 * L + i, 3 * L + i, 2 * L + i,
                            L + i, i);
  }

  /** A_i of the block at p (64·L packed bytes). */
  static inline void gather(const uint8_t* p, __m512i* a) {
    __m512i z[L];
    for (int s = 0; s < L; s++) z[s] = _mm512_loadu_si512((const void*)(p + 64 * s));
    if (L == 1) {
      a[0] = z[0];
      return;
    }
    for (int i = 0; i < L; i++) {
      const __m512i ix = index(i);
      const __m512i lo = _mm512_permutex2var_epi32(z[0], ix, z[L > 1 ? 1 : 0]);
      if (L == 2)
        a[i] = lo;
      else if (L == 3)
        a[i] = _mm512_mask_permutexvar_epi32(lo, high(i), ix, z[L > 2 ? 2 : 0]);
      else
        a[i] =
            _mm512_mask_blend_epi32(high(i), lo, _mm512_permutex2var_epi32(z[L > 2 ? 2 : 0], ix, z[L - 1]));
    }
  }

  static inline __m512i plane(__m512i v, int k) {
    const __m512i mask = _mm512_set1_epi8((char)((1 << BITS) - 1));
    return _mm512_and_si512(k ? _mm512_srli_epi16(v, (unsigned)(k * BITS)) : v, mask);
  }

  /**
   * The 16 groups' integer sums of the packed block at p with one token's block of activations x. 4 bits: the
   * high nibbles are multiplied in place (16·q, at most 240) into their own sum, divided by 16 at the end
   * (exact).
   */
  static inline __m512i isum_packed(const uint8_t* p, const int8_t* x) {
    __m512i a[L];
    gather(p, a);
    __m512i s0 = _mm512_setzero_si512(), s1 = s0;
    if (BITS == 4) {
      const __m512i lo = _mm512_set1_epi8(0x0f), hi = _mm512_set1_epi8((char)0xf0);
      for (int i = 0; i < L; i++) {
        s0 = _mm512_dpbusd_epi32(s0, _mm512_and_si512(a[i], lo),
                                 _mm512_load_si512((const void*)(x + 128 * i)));
        s1 = _mm512_dpbusd_epi32(s1, _mm512_and_si512(a[i], hi),
                                 _mm512_load_si512((const void*)(x + 128 * i + 64)));
      }
      return _mm512_add_epi32(s0, _mm512_srai_epi32(s1, 4));
    }
    for (int i = 0; i < L; i++)
      for (int k = 0; k < PER; k++) {
        const int v = i * PER + k;
        const __m512i xv = _mm512_load_si512((const void*)(x + 64 * v));
        if (v & 1)
          s1 = _mm512_dpbusd_epi32(s1, plane(a[i], k), xv);
        else
          s0 = _mm512_dpbusd_epi32(s0, plane(a[i], k), xv);
      }
    return NV > 1 ? _mm512_add_epi32(s0, s1) : s0;
  }

  /** The block's planes, NV × 64 bytes (the activations' layout). */
  static inline void unpack(const uint8_t* p, uint8_t* u) {
    __m512i a[L];
    gather(p, a);
    for (int i = 0; i < L; i++)
      for (int k = 0; k < PER; k++) _mm512_store_si512((void*)(u + 64 * (i * PER + k)), plane(a[i], k));
  }

  static inline __m512i isum_unpacked(const uint8_t* u, const int8_t* x) {
    __m512i s0 = _mm512_setzero_si512(), s1 = s0;
    for (int v = 0; v < NV; v++) {
      const __m512i q = _mm512_load_si512((const void*)(u + 64 * v));
      const __m512i xv = _mm512_load_si512((const void*)(x + 64 * v));
      if (v & 1)
        s1 = _mm512_dpbusd_epi32(s1, q, xv);
      else
        s0 = _mm512_dpbusd_epi32(s0, q, xv);
    }
    return NV > 1 ? _mm512_add_epi32(s0, s1) : s0;
  }
};

/** Per call: the code-field tables and the super-block of each half block. */
struct WideCodes {
  __m512i shuf, shift, smask, mmask;
  __m128i sbits;
  bool fast = false;     // groups per super-block % 8 == 0
  bool uniform = false;  // … % 16 == 0: one super-block per block
  std::vector<int32_t> half_super;
};

inline void wide_codes_init(const Linear& w, int64_t nblk, WideCodes& c) {
  const int width = w.kq_sbits + w.kq_mbits;
  const int64_t gps = w.kq_super / w.group, nsb = kq_supers(w);
  c.fast = gps % 8 == 0;
  c.uniform = gps % 16 == 0;
  alignas(64) uint8_t sh[64];
  alignas(64) int32_t sf[16];
  for (int l = 0; l < 4; l++)
    for (int m = 0; m < 4; m++) {
      const int p = ((l & 1) * 4 + m) * width;
      sf[4 * l + m] = p & 7;
      for (int e = 0; e < 4; e++) {
        const int b = (p >> 3) + e;
        sh[16 * l + 4 * m + e] = (uint8_t)(b < 16 ? b : 0x80);
      }
    }
  c.shuf = _mm512_load_si512((const void*)sh);
  c.shift = _mm512_load_si512((const void*)sf);
  c.smask = _mm512_set1_epi32((1 << w.kq_sbits) - 1);
  c.mmask = _mm512_set1_epi32((1 << w.kq_mbits) - 1);
  c.sbits = _mm_cvtsi32_si128(w.kq_sbits);
  if (!c.fast) return;
  c.half_super.resize((size_t)(2 * nblk));
  for (int64_t h = 0; h < 2 * nblk; h++) c.half_super[(size_t)h] = (int32_t)std::min(nsb - 1, h * 8 / gps);
}

/** Two floats in the two halves of a vector. */
inline __m512 halves(float lo, float hi) {
  return _mm512_castpd_ps(
      _mm512_insertf64x4(_mm512_castps_pd(_mm512_set1_ps(lo)), _mm256_castps_pd(_mm256_set1_ps(hi)), 1));
}

/** One row's codes for the fast decode: its code bytes and its d, dmin in float32. */
struct RowCodes {
  const uint8_t* cr;
  int64_t cb;
  int width;
  const float* dv;
  const float* mv;
};

/** Row r's d and dmin converted (f16 → f32 is exact: the values f16_to_f32 gives) into scratch `slot`. */
inline RowCodes row_codes(const Linear& w, int64_t r, int slot = 0) {
  const int64_t nsb = kq_supers(w), cb = kq_codes_row_bytes(w);
  thread_local std::vector<float> tls[4];
  std::vector<float>& dv = tls[2 * slot];
  std::vector<float>& mv = tls[2 * slot + 1];
  if ((int64_t)dv.size() < nsb + 16) {
    dv.resize((size_t)(nsb + 16));
    mv.resize((size_t)(nsb + 16));
  }
  for (int64_t b = 0; b < nsb; b += 16) {
    const __mmask16 k = (__mmask16)(nsb - b >= 16 ? 0xffff : (1u << (nsb - b)) - 1);
    _mm512_storeu_ps(dv.data() + b, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(k, w.kd + (r * nsb + b) * 2)));
    _mm512_storeu_ps(mv.data() + b,
                     _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(k, w.kdmin + (r * nsb + b) * 2)));
  }
  return RowCodes{w.codes + r * cb, cb, w.kq_sbits + w.kq_mbits, dv.data(), mv.data()};
}

/** s and z of block b's 16 groups (c.fast; lanes past the row are don't-care). */
inline void block_sz(const WideCodes& c, const RowCodes& rc, int64_t b, __m512& s, __m512& z) {
  const int64_t off = b * 2 * rc.width;
  __m512i v;
  if (rc.width == 8 && off + 16 <= rc.cb) {  // one byte per group (the 2-bit preset's 4 + 4)
    v = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)(rc.cr + off)));
  } else {
    __m128i lo, hi;
    if (off + rc.width + 16 <= rc.cb) {
      lo = _mm_loadu_si128((const __m128i*)(rc.cr + off));
      hi = _mm_loadu_si128((const __m128i*)(rc.cr + off + rc.width));
    } else {
      alignas(16) uint8_t tmp[48] = {};
      if (rc.cb > off) std::memcpy(tmp, rc.cr + off, (size_t)std::min<int64_t>(rc.cb - off, 48));
      lo = _mm_loadu_si128((const __m128i*)tmp);
      hi = _mm_loadu_si128((const __m128i*)(tmp + rc.width));
    }
    const __m512i bytes = _mm512_mask_broadcast_i32x4(_mm512_broadcast_i32x4(lo), 0xff00, hi);
    v = _mm512_srlv_epi32(_mm512_shuffle_epi8(bytes, c.shuf), c.shift);
  }
  const __m512 sc = _mm512_cvtepi32_ps(_mm512_and_si512(v, c.smask));
  const __m512 mc = _mm512_cvtepi32_ps(_mm512_and_si512(_mm512_srl_epi32(v, c.sbits), c.mmask));
  const int32_t a = c.half_super[(size_t)(2 * b)];
  if (c.uniform) {
    s = _mm512_mul_ps(_mm512_set1_ps(rc.dv[a]), sc);
    z = _mm512_mul_ps(_mm512_set1_ps(rc.mv[a]), mc);
  } else {
    const int32_t e = c.half_super[(size_t)(2 * b + 1)];
    s = _mm512_mul_ps(halves(rc.dv[a], rc.dv[e]), sc);
    z = _mm512_mul_ps(halves(rc.mv[a], rc.mv[e]), mc);
  }
}

/** Row r's s and z for blocks [0, nblk) (16 per block; lanes past the row are don't-care). */
inline void wide_decode_sz(const Linear& w, const WideCodes& c, int64_t r, int64_t nblk, float* s, float* z) {
  if (!c.fast) {
    decode_sz(w, r, s, z);
    for (int64_t g = w.gpr(); g < nblk * 16; g++) s[g] = z[g] = 0.0f;
    return;
  }
  const RowCodes rc = row_codes(w, r);
  for (int64_t b = 0; b < nblk; b++) {
    __m512 sv, zv;
    block_sz(c, rc, b, sv, zv);
    _mm512_storeu_ps(s + 16 * b, sv);
    _mm512_storeu_ps(z + 16 * b, zv);
  }
}

/** kq_combine_group for the 16 groups of a block (lanes k only), into the 8 reference lanes acc. */
inline __m256 wide_combine(__m256 acc, __m512i isum, __m512 s, __m512 z, const float* dx, const int32_t* xs,
                           __mmask16 k) {
  const __m512 a = _mm512_cvtepi32_ps(isum);
  const __m512 xv = _mm512_cvtepi32_ps(_mm512_maskz_loadu_epi32(k, xs));
  const __m512 u = _mm512_mul_ps(s, a);
  const __m512 v = _mm512_mul_ps(z, xv);
  const __m512 term = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, dx), _mm512_sub_ps(u, v));
  acc = _mm256_mask_add_ps(acc, (__mmask8)k, acc, _mm512_castps512_ps256(term));
  const __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(term), 1));
  return _mm256_mask_add_ps(acc, (__mmask8)(k >> 8), acc, hi);
}

/** Per-row scratch of one thread (wide path). */
struct WideScratch {
  std::vector<float> s, z;
  std::vector<uint8_t> u;  // prompts: the row's planes (64-byte aligned from u_at)
  alignas(64) uint8_t tail[256], tail2[256];
  uint8_t* u_at() { return (uint8_t*)(((uintptr_t)u.data() + 63) & ~(uintptr_t)63); }
};

template <int BITS, int L>
void wide_rows(const Linear& w, int64_t r0, int64_t r1, const ActQ& act, int64_t t0, int64_t t1, float* y,
               int64_t ystride) {
  using K = KqWide<BITS, L>;
  const int64_t gpr = w.gpr(), nblk = (gpr + 15) / 16, rb = w.row_bytes(), bbytes = 64 * L;
  const int64_t ublk = 64 * K::NV, qfull = rb / bbytes;  // blocks [0, qfull) lie inside the row
  const __mmask16 klast = (__mmask16)(gpr % 16 ? (1u << (gpr % 16)) - 1 : 0xffff);
  const bool many = t1 - t0 > 1;
  thread_local WideScratch tls_sc;
  thread_local WideCodes tls_wc;
  WideScratch& sc = tls_sc;  // one thread_local lookup per call, not one per use in the loops
  const WideCodes& wc = tls_wc;
  wide_codes_init(w, nblk, tls_wc);
  if ((int64_t)sc.s.size() < 2 * nblk * 16) {
    sc.s.resize((size_t)(2 * nblk * 16));
    sc.z.resize((size_t)(2 * nblk * 16));
  }
  if ((int64_t)sc.u.size() < 2 * nblk * ublk + 64) sc.u.resize((size_t)(2 * nblk * ublk + 64));
  float* s = sc.s.data();
  float* z = sc.z.data();
  uint8_t* ub = sc.u_at();
  if (!many && wc.fast) {  // decode: two rows side by side, s and z computed block by block
    const int8_t* x = act.xq_of(t0);
    const float* dx = act.dx_of(t0);
    const int32_t* xs = act.xsum_of(t0);
    for (int64_t r = r0; r < r1; r += 2) {
      const int64_t r2 = r + 1 < r1 ? r + 1 : r;  // an odd row count: the last row twice, written once
      const uint8_t* qa = w.q + r * rb;
      const uint8_t* qb = w.q + r2 * rb;
      const RowCodes ca = row_codes(w, r, 0), cb = row_codes(w, r2, 1);
      if (qfull < nblk) {
        std::memset(sc.tail, 0, sizeof sc.tail);
        std::memcpy(sc.tail, qa + qfull * bbytes, (size_t)(rb - qfull * bbytes));
        std::memset(sc.tail2, 0, sizeof sc.tail2);
        std::memcpy(sc.tail2, qb + qfull * bbytes, (size_t)(rb - qfull * bbytes));
      }
      const uint8_t* next = r + 2 < r1 ? qa + 2 * rb : nullptr;
      __m256 aa = _mm256_setzero_ps(), ab = aa;
      for (int64_t b = 0; b < nblk; b++) {
        if (next && b < qfull)  // the same block of the next row pair
          for (int i = 0; i < L; i++) {
            _mm_prefetch((const char*)(next + b * bbytes + 64 * i), _MM_HINT_T0);
            _mm_prefetch((const char*)(next + rb + b * bbytes + 64 * i), _MM_HINT_T0);
          }
        const __mmask16 k = b + 1 < nblk ? (__mmask16)0xffff : klast;
        const int8_t* xb = x + b * ublk;
        __m512 sa, za, sb, zb;
        block_sz(wc, ca, b, sa, za);
        block_sz(wc, cb, b, sb, zb);
        const bool in = b < qfull;
        const __m512i ia = K::isum_packed(in ? qa + b * bbytes : sc.tail, xb);
        const __m512i ib = K::isum_packed(in ? qb + b * bbytes : sc.tail2, xb);
        aa = wide_combine(aa, ia, sa, za, dx + 16 * b, xs + 16 * b, k);
        ab = wide_combine(ab, ib, sb, zb, dx + 16 * b, xs + 16 * b, k);
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
  float* s2 = s + nblk * 16;
  float* z2 = z + nblk * 16;
  uint8_t* ub2 = ub + nblk * ublk;
  for (int64_t r = r0; r < r1; r += 2) {
    const int64_t r2 = r + 1 < r1 ? r + 1 : r;  // an odd row count: the last row twice, written once
    const uint8_t* qa = w.q + r * rb;
    const uint8_t* qb = w.q + r2 * rb;
    wide_decode_sz(w, wc, r, nblk, s, z);
    wide_decode_sz(w, wc, r2, nblk, s2, z2);
    if (qfull < nblk) {
      std::memset(sc.tail, 0, sizeof sc.tail);
      std::memcpy(sc.tail, qa + qfull * bbytes, (size_t)(rb - qfull * bbytes));
      std::memset(sc.tail2, 0, sizeof sc.tail2);
      std::memcpy(sc.tail2, qb + qfull * bbytes, (size_t)(rb - qfull * bbytes));
    }
    for (int64_t b = 0; b < nblk; b++) {
      K::unpack(b < qfull ? qa + b * bbytes : sc.tail, ub + b * ublk);
      K::unpack(b < qfull ? qb + b * bbytes : sc.tail2, ub2 + b * ublk);
    }
    for (int64_t t = t0; t < t1; t++) {
      const int8_t* x = act.xq_of(t);
      const float* dx = act.dx_of(t);
      const int32_t* xs = act.xsum_of(t);
      __m256 aa = _mm256_setzero_ps(), ab = aa;
      for (int64_t b = 0; b < nblk; b++) {
        const __mmask16 k = b + 1 < nblk ? (__mmask16)0xffff : klast;
        const int8_t* xb = x + b * ublk;
        const __m512i ia = K::isum_unpacked(ub + b * ublk, xb), ib = K::isum_unpacked(ub2 + b * ublk, xb);
        aa = wide_combine(aa, ia, _mm512_loadu_ps(s + 16 * b), _mm512_loadu_ps(z + 16 * b), dx + 16 * b,
                          xs + 16 * b, k);
        ab = wide_combine(ab, ib, _mm512_loadu_ps(s2 + 16 * b), _mm512_loadu_ps(z2 + 16 * b), dx + 16 * b,
                          xs + 16 * b, k);
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
inline bool wide_qrows(const Linear& w, int64_t r0, int64_t r1, const ActQ& a, int64_t t0, int64_t t1,
                       float* y, int64_t ystride) {
  const int L = wide_lanes(w.bits, w.group);
  if (!L) return false;
  if (w.bits == 4) {
    if (L == 1) wide_rows<4, 1>(w, r0, r1, a, t0, t1, y, ystride);
    if (L == 2) wide_rows<4, 2>(w, r0, r1, a, t0, t1, y, ystride);
    if (L == 3) wide_rows<4, 3>(w, r0, r1, a, t0, t1, y, ystride);
    if (L == 4) wide_rows<4, 4>(w, r0, r1, a, t0, t1, y, ystride);
  } else {
    if (L == 1) wide_rows<2, 1>(w, r0, r1, a, t0, t1, y, ystride);
    if (L == 2) wide_rows<2, 2>(w, r0, r1, a, t0, t1, y, ystride);
    if (L == 3) wide_rows<2, 3>(w, r0, r1, a, t0, t1, y, ystride);
    if (L == 4) wide_rows<2, 4>(w, r0, r1, a, t0, t1, y, ystride);
  }
  return true;
}
