// 256-bit AVX2 kernels for kquant weights whose groups are whole 4-byte lanes of packed codes (2 and 4 bits,
// G·bits a multiple of 32, at most 4 lanes a group: the presets convert writes, g24 at 4 bits and g16 at 2),
// included by infer_kquant_x86.h without APL_INFER_VNNI: the approach of infer_kquant_wide.h on 256-bit
// vectors without VNNI. Bit-exact with the scalar reference (kquant_ref.h).
//
// Layout: a block is 8 groups (8·G values, 32·L bytes of packed codes, L = G·bits/32 lanes a group). Lane j·L
// + i of the block (4 bytes) is gathered (vpermd + blends over the block's 32-byte loads) into dword j of
// vector A_i (i < L), so dword j of every A_i belongs to group j; plane k of A_i ((A_i >> k·bits) & mask)
// holds, in byte 4j + m, the value of packed byte 4(jL + i) + m at plane k. The activations of each block are
// stored in that order once per token (vector i·per + k, per = 8/bits). vpmaddubsw multiplies a plane by its
// activations into int16 pairs (at most 2·15·127 = 3810 in magnitude at 4 bits, 762 at 2), the block's L·per
// planes are summed in int16 (at most 8 · 3810 = 30480 or 16 · 762: no overflow) and one vpmaddwd with ones
// gives the 8 groups' exact integer sums in the 8 dword lanes, the reference's lane (g0 + j) % 8 = j. Decode
// reads the packed codes directly, two rows side by side; prompts unpack a row's planes once for every token
// of the tile.
//
// s and z of 8 groups (the code bit stream of 8 groups is `width` bytes, width = sbits + mbits): a vpshufb
// puts the 3 bytes of group j's field in dword j and a variable shift aligns it; d and dmin (f16 → f32,
// exact) are those of the block's super-block (the fast decode needs groups-per-super-block % 8 == 0, else
// the row's s and z come from decode_sz). The combine runs the reference's float32 operations per group on 8
// lanes; the last block's lanes past the row keep their value (blend). The last block's packed codes and code
// bytes may lie past the row (or the buffer): they are read from a zero-padded copy.
#pragma once

/** 4-byte lanes of packed codes per group, or 0 when the wide path does not take the shape. */
inline int wide2_lanes(int bits, int64_t group) {
  if (bits != 2 && bits != 4) return 0;
  if (group * bits % 32) return 0;
  const int64_t l = group * bits / 32;
  return l <= 4 ? (int)l : 0;
}

/** Natural-order activations → the wide layout, block by block (len: whole blocks of 8 groups). */
inline void wide2_act_layout(const int8_t* nat, int64_t len, int64_t group, int bits, int8_t* xq) {
  const int L = wide2_lanes(bits, group), per = 8 / bits, vpl = 4 * per;  // values per packed lane
  const int64_t blk = 8 * group;
  for (int64_t b0 = 0; b0 < len; b0 += blk) {
    const int8_t* src = nat + b0;
    int8_t* dst = xq + b0;
    for (int i = 0; i < L; i++)
      for (int k = 0; k < per; k++, dst += 32)
        for (int j = 0; j < 8; j++)
          for (int m = 0; m < 4; m++) dst[4 * j + m] = src[(j * L + i) * vpl + m * per + k];
  }
}

template <int BITS, int L>
struct KqWide2 {
  static constexpr int PER = 8 / BITS;
  static constexpr int NV = L * PER;  // 32-byte vectors per block

  static constexpr int ix(int i, int j) { return (j * L + i) % 8; }
  /** Lanes j of A_i taken from load s. */
  static constexpr int from(int i, int s) {
    int m = 0;
    for (int j = 0; j < 8; j++)
      if ((j * L + i) / 8 == s) m |= 1 << j;
    return m;
  }
  template <int I, int S>
  static inline __m256i pick(const __m256i* z, __m256i v) {
    if constexpr (S >= L) {
      return v;
    } else {
      const __m256i idx =
          _mm256_setr_epi32(ix(I, 0), ix(I, 1), ix(I, 2), ix(I, 3), ix(I, 4), ix(I, 5), ix(I, 6), ix(I, 7));
      if constexpr (from(I, S) == 0) {
        return pick<I, S + 1>(z, v);
      } else if constexpr (S == 0) {
        return pick<I, S + 1>(z, _mm256_permutevar8x32_epi32(z[0], idx));
      } else {
        return pick<I, S + 1>(z, _mm256_blend_epi32(v, _mm256_permutevar8x32_epi32(z[S], idx), from(I, S)));
      }
    }
  }
  template <int I>
  static inline void gather_from(const __m256i* z, __m256i* a) {
    if constexpr (I < L) {
      a[I] = pick<I, 0>(z, _mm256_setzero_si256());
      gather_from<I + 1>(z, a);
    }
  }

  /** A_i of the block at p (32·L packed bytes). */
  static inline void gather(const uint8_t* p, __m256i* a) {
    __m256i z[L];
    for (int s = 0; s < L; s++) z[s] = _mm256_loadu_si256((const __m256i*)(p + 32 * s));
    if (L == 1) {
      a[0] = z[0];
      return;
    }
    gather_from<0>(z, a);
  }

  static inline __m256i plane(__m256i v, int k) {
    const __m256i mask = _mm256_set1_epi8((char)((1 << BITS) - 1));
    return _mm256_and_si256(k ? _mm256_srli_epi16(v, k * BITS) : v, mask);
  }

  /** The 8 groups' integer sums of the packed block at p with one token's block of activations x. */
  static inline __m256i isum_packed(const uint8_t* p, const int8_t* x) {
    __m256i a[L];
    gather(p, a);
    __m256i s = _mm256_setzero_si256();
    for (int i = 0; i < L; i++)
      for (int k = 0; k < PER; k++) {
        const __m256i xv = _mm256_load_si256((const __m256i*)(x + 32 * (i * PER + k)));
        s = _mm256_add_epi16(s, _mm256_maddubs_epi16(plane(a[i], k), xv));
      }
    return _mm256_madd_epi16(s, _mm256_set1_epi16(1));
  }

  /** The block's planes, NV × 32 bytes (the activations' layout). */
  static inline void unpack(const uint8_t* p, uint8_t* u) {
    __m256i a[L];
    gather(p, a);
    for (int i = 0; i < L; i++)
      for (int k = 0; k < PER; k++) _mm256_store_si256((__m256i*)(u + 32 * (i * PER + k)), plane(a[i], k));
  }

  static inline __m256i isum_unpacked(const uint8_t* u, const int8_t* x) {
    __m256i s = _mm256_setzero_si256();
    for (int v = 0; v < NV; v++) {
      const __m256i q = _mm256_load_si256((const __m256i*)(u + 32 * v));
      const __m256i xv = _mm256_load_si256((const __m256i*)(x + 32 * v));
      s = _mm256_add_epi16(s, _mm256_maddubs_epi16(q, xv));
    }
    return _mm256_madd_epi16(s, _mm256_set1_epi16(1));
  }
};

/** Per call: the code-field tables and the super-block of each block of 8 groups. */
struct Wide2Codes {
  __m256i shuf, shift, smask, mmask;
  __m128i sbits;
  bool fast = false;  // groups per super-block % 8 == 0
  std::vector<int32_t> super;
};

inline void wide2_codes_init(const Linear& w, int64_t nblk, Wide2Codes& c) {
  const int width = w.kq_sbits + w.kq_mbits;
  const int64_t gps = w.kq_super / w.group, nsb = kq_supers(w);
  c.fast = gps % 8 == 0;
  alignas(32) uint8_t sh[32];
  alignas(32) int32_t sf[8];
  for (int j = 0; j < 8; j++) {
    const int p = j * width;
    sf[j] = p & 7;
    for (int e = 0; e < 4; e++) {
      const int b = (p >> 3) + e;
      sh[4 * j + e] = (uint8_t)(b < 16 ? b : 0x80);
    }
  }
  c.shuf = _mm256_load_si256((const __m256i*)sh);
  c.shift = _mm256_load_si256((const __m256i*)sf);
  c.smask = _mm256_set1_epi32((1 << w.kq_sbits) - 1);
  c.mmask = _mm256_set1_epi32((1 << w.kq_mbits) - 1);
  c.sbits = _mm_cvtsi32_si128(w.kq_sbits);
  if (!c.fast) return;
  c.super.resize((size_t)nblk);
  for (int64_t b = 0; b < nblk; b++) c.super[(size_t)b] = (int32_t)std::min(nsb - 1, b * 8 / gps);
}

/** One row's codes for the fast decode: its code bytes and its d, dmin in float32. */
struct Row2Codes {
  const uint8_t* cr;
  int64_t cb;
  int width;
  const float* dv;
  const float* mv;
};

/** Row r's d and dmin converted (f16 → f32 is exact: the values f16_to_f32 gives) into scratch `slot`. */
inline Row2Codes row2_codes(const Linear& w, int64_t r, int slot = 0) {
  const int64_t nsb = kq_supers(w), cb = kq_codes_row_bytes(w);
  thread_local std::vector<float> tls[4];
  std::vector<float>& dv = tls[2 * slot];
  std::vector<float>& mv = tls[2 * slot + 1];
  if ((int64_t)dv.size() < nsb + 8) {
    dv.resize((size_t)(nsb + 8));
    mv.resize((size_t)(nsb + 8));
  }
  int64_t b = 0;
  for (; b + 8 <= nsb; b += 8) {
    _mm256_storeu_ps(dv.data() + b,
                     _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(w.kd + (r * nsb + b) * 2))));
    _mm256_storeu_ps(mv.data() + b,
                     _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(w.kdmin + (r * nsb + b) * 2))));
  }
  if (b < nsb) {
    alignas(16) uint16_t td[8] = {}, tm[8] = {};
    std::memcpy(td, w.kd + (r * nsb + b) * 2, (size_t)(nsb - b) * 2);
    std::memcpy(tm, w.kdmin + (r * nsb + b) * 2, (size_t)(nsb - b) * 2);
    _mm256_storeu_ps(dv.data() + b, _mm256_cvtph_ps(_mm_load_si128((const __m128i*)td)));
    _mm256_storeu_ps(mv.data() + b, _mm256_cvtph_ps(_mm_load_si128((const __m128i*)tm)));
  }
  return Row2Codes{w.codes + r * cb, cb, w.kq_sbits + w.kq_mbits, dv.data(), mv.data()};
}

/** s and z of block b's 8 groups (c.fast; lanes past the row are don't-care). */
inline void block2_sz(const Wide2Codes& c, const Row2Codes& rc, int64_t b, __m256& s, __m256& z) {
  const int64_t off = b * rc.width;
  __m256i v;
  if (rc.width == 8 && off + 8 <= rc.cb) {  // one byte per group (the 2-bit preset's 4 + 4)
    v = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i*)(rc.cr + off)));
  } else {
    __m128i lo;
    if (off + 16 <= rc.cb) {
      lo = _mm_loadu_si128((const __m128i*)(rc.cr + off));
    } else {
      alignas(16) uint8_t tmp[16] = {};
      if (rc.cb > off) std::memcpy(tmp, rc.cr + off, (size_t)std::min<int64_t>(rc.cb - off, 16));
      lo = _mm_load_si128((const __m128i*)tmp);
    }
    const __m256i bytes = _mm256_broadcastsi128_si256(lo);
    // vpshufb is per 128-bit half: the table's bytes index the broadcast copy of the same 16 bytes
    v = _mm256_srlv_epi32(_mm256_shuffle_epi8(bytes, c.shuf), c.shift);
  }
  const __m256 sc = _mm256_cvtepi32_ps(_mm256_and_si256(v, c.smask));
  const __m256 mc = _mm256_cvtepi32_ps(_mm256_and_si256(_mm256_srl_epi32(v, c.sbits), c.mmask));
  const int32_t a = c.super[(size_t)b];
  s = _mm256_mul_ps(_mm256_set1_ps(rc.dv[a]), sc);
  z = _mm256_mul_ps(_mm256_set1_ps(rc.mv[a]), mc);
}

/** Row r's s and z for blocks [0, nblk) (8 per block; lanes past the row are don't-care). */
inline void wide2_decode_sz(const Linear& w, const Wide2Codes& c, int64_t r, int64_t nblk, float* s,
                            float* z) {
  if (!c.fast) {
    decode_sz(w, r, s, z);
    for (int64_t g = w.gpr(); g < nblk * 8; g++) s[g] = z[g] = 0.0f;
    return;
  }
  const Row2Codes rc = row2_codes(w, r);
  for (int64_t b = 0; b < nblk; b++) {
    __m256 sv, zv;
    block2_sz(c, rc, b, sv, zv);
    _mm256_storeu_ps(s + 8 * b, sv);
    _mm256_storeu_ps(z + 8 * b, zv);
  }
}

/** kq_combine_group for the 8 groups of a block (lanes in `keep` only; dx, xs read from a padded tail). */
inline __m256 wide2_combine(__m256 acc, __m256i isum, __m256 s, __m256 z, const float* dx, const int32_t* xs,
                            __m256 keep, bool all) {
  const __m256 a = _mm256_cvtepi32_ps(isum);
  const __m256 xv = _mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i*)xs));
  const __m256 u = _mm256_mul_ps(s, a);
  const __m256 v = _mm256_mul_ps(z, xv);
  const __m256 term = _mm256_mul_ps(_mm256_loadu_ps(dx), _mm256_sub_ps(u, v));
  const __m256 sum = _mm256_add_ps(acc, term);
  return all ? sum : _mm256_blendv_ps(acc, sum, keep);
}

/** Per-row scratch of one thread (wide path). */
struct Wide2Scratch {
  std::vector<float> s, z;
  std::vector<uint8_t> u;  // prompts: the row's planes (32-byte aligned from u_at)
  alignas(32) uint8_t tail[128], tail2[128];
  alignas(32) float dx[8];
  alignas(32) int32_t xs[8];
  uint8_t* u_at() { return (uint8_t*)(((uintptr_t)u.data() + 31) & ~(uintptr_t)31); }
};

template <int BITS, int L>
void wide2_rows(const Linear& w, int64_t r0, int64_t r1, const ActQ& act, int64_t t0, int64_t t1, float* y,
                int64_t ystride) {
  using K = KqWide2<BITS, L>;
  const int64_t gpr = w.gpr(), nblk = (gpr + 7) / 8, rb = w.row_bytes(), bbytes = 32 * L;
  const int64_t ublk = 32 * K::NV, qfull = rb / bbytes;  // blocks [0, qfull) lie inside the row
  const int rem = (int)(gpr % 8);
  alignas(32) int32_t km[8];
  for (int j = 0; j < 8; j++) km[j] = !rem || j < rem ? -1 : 0;
  const __m256 keep = _mm256_castsi256_ps(_mm256_load_si256((const __m256i*)km));
  const bool many = t1 - t0 > 1;
  thread_local Wide2Scratch tls_sc;
  thread_local Wide2Codes tls_wc;
  Wide2Scratch& sc = tls_sc;
  const Wide2Codes& wc = tls_wc;
  wide2_codes_init(w, nblk, tls_wc);
  if ((int64_t)sc.s.size() < 2 * nblk * 8) {
    sc.s.resize((size_t)(2 * nblk * 8));
    sc.z.resize((size_t)(2 * nblk * 8));
  }
  if ((int64_t)sc.u.size() < 2 * nblk * ublk + 32) sc.u.resize((size_t)(2 * nblk * ublk + 32));
  float* s = sc.s.data();
  float* z = sc.z.data();
  uint8_t* ub = sc.u_at();
  // the last block's dx and xsum past the row: a padded copy (the row's arrays end at gpr)
  auto tails = [&](const float* dx, const int32_t* xs) {
    for (int j = 0; j < 8; j++) {
      const int64_t g = (nblk - 1) * 8 + j;
      sc.dx[j] = g < gpr ? dx[g] : 0.0f;
      sc.xs[j] = g < gpr ? xs[g] : 0;
    }
  };
  if (!many && wc.fast) {  // decode: two rows side by side, s and z computed block by block
    const int8_t* x = act.xq_of(t0);
    const float* dx = act.dx_of(t0);
    const int32_t* xs = act.xsum_of(t0);
    tails(dx, xs);
    for (int64_t r = r0; r < r1; r += 2) {
      const int64_t r2 = r + 1 < r1 ? r + 1 : r;  // an odd row count: the last row twice, written once
      const uint8_t* qa = w.q + r * rb;
      const uint8_t* qb = w.q + r2 * rb;
      const Row2Codes ca = row2_codes(w, r, 0), cb = row2_codes(w, r2, 1);
      if (qfull < nblk) {
        std::memset(sc.tail, 0, sizeof sc.tail);
        std::memcpy(sc.tail, qa + qfull * bbytes, (size_t)(rb - qfull * bbytes));
        std::memset(sc.tail2, 0, sizeof sc.tail2);
        std::memcpy(sc.tail2, qb + qfull * bbytes, (size_t)(rb - qfull * bbytes));
      }
      __m256 aa = _mm256_setzero_ps(), ab = aa;
      for (int64_t b = 0; b < nblk; b++) {
        const bool last = b + 1 == nblk;
        const float* dxb = last ? sc.dx : dx + 8 * b;
        const int32_t* xsb = last ? sc.xs : xs + 8 * b;
        const int8_t* xb = x + b * ublk;
        __m256 sa, za, sb, zb;
        block2_sz(wc, ca, b, sa, za);
        block2_sz(wc, cb, b, sb, zb);
        const bool in = b < qfull;
        const __m256i ia = K::isum_packed(in ? qa + b * bbytes : sc.tail, xb);
        const __m256i ib = K::isum_packed(in ? qb + b * bbytes : sc.tail2, xb);
        aa = wide2_combine(aa, ia, sa, za, dxb, xsb, keep, !last || !rem);
        ab = wide2_combine(ab, ib, sb, zb, dxb, xsb, keep, !last || !rem);
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
  float* s2 = s + nblk * 8;
  float* z2 = z + nblk * 8;
  uint8_t* ub2 = ub + nblk * ublk;
  for (int64_t r = r0; r < r1; r += 2) {
    const int64_t r2 = r + 1 < r1 ? r + 1 : r;
    const uint8_t* qa = w.q + r * rb;
    const uint8_t* qb = w.q + r2 * rb;
    wide2_decode_sz(w, wc, r, nblk, s, z);
    wide2_decode_sz(w, wc, r2, nblk, s2, z2);
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
      tails(dx, xs);
      __m256 aa = _mm256_setzero_ps(), ab = aa;
      for (int64_t b = 0; b < nblk; b++) {
        const bool last = b + 1 == nblk;
        const float* dxb = last ? sc.dx : dx + 8 * b;
        const int32_t* xsb = last ? sc.xs : xs + 8 * b;
        const int8_t* xb = x + b * ublk;
        const __m256i ia = K::isum_unpacked(ub + b * ublk, xb), ib = K::isum_unpacked(ub2 + b * ublk, xb);
        aa = wide2_combine(aa, ia, _mm256_loadu_ps(s + 8 * b), _mm256_loadu_ps(z + 8 * b), dxb, xsb, keep,
                           !last || !rem);
        ab = wide2_combine(ab, ib, _mm256_loadu_ps(s2 + 8 * b), _mm256_loadu_ps(z2 + 8 * b), dxb, xsb, keep,
                           !last || !rem);
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

/** The wide path when it applies (see wide2_lanes); false otherwise. */
inline bool wide2_qrows(const Linear& w, int64_t r0, int64_t r1, const ActQ& a, int64_t t0, int64_t t1,
                        float* y, int64_t ystride) {
  const int L = wide2_lanes(w.bits, w.group);
  if (!L) return false;
  if (w.bits == 4) {
    if (L == 1) wide2_rows<4, 1>(w, r0, r1, a, t0, t1, y, ystride);
    if (L == 2) wide2_rows<4, 2>(w, r0, r1, a, t0, t1, y, ystride);
    if (L == 3) wide2_rows<4, 3>(w, r0, r1, a, t0, t1, y, ystride);
    if (L == 4) wide2_rows<4, 4>(w, r0, r1, a, t0, t1, y, ystride);
  } else {
    if (L == 1) wide2_rows<2, 1>(w, r0, r1, a, t0, t1, y, ystride);
    if (L == 2) wide2_rows<2, 2>(w, r0, r1, a, t0, t1, y, ystride);
    if (L == 3) wide2_rows<2, 3>(w, r0, r1, a, t0, t1, y, ystride);
    if (L == 4) wide2_rows<2, 4>(w, r0, r1, a, t0, t1, y, ystride);
  }
  return true;
}
