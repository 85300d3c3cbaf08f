// 512-bit VNNI kernels for packed rows with groups of 32, 64 or 128 values (included by infer_x86.h when
// APL_INFER_WIDE): the decode (matrix-vector) and prompt (matrix-matrix) paths of the AVX-512 kernel.
//
// Layout: a row is read 64 bytes at a time (a "chunk" of 64·per values, per = 8/bits). Plane k of a chunk is
// (byte >> k·bits) & mask, so byte j of plane k is value per·j + k of the chunk; the activations of the same
// values are stored plane by plane once per token (x[chunk + 64·k + j] = value per·j + k; natural order at 8
// bits), and one vpdpbusd multiplies 64 codes by their 64 activations with no shuffle of the weights. A
// 4-byte lane of a chunk holds 4·per consecutive values, so each lane belongs to one group; the lanes of 8
// groups are reduced to 8 exact int32 sums (pairsum below) and combined in float32 exactly as the reference
// does (combine_group, group g in lane g % 8): the results are bit-exact. Two rows run side by side, so the
// per-group float work fills 16 lanes. Only whole blocks of 8 groups use this layout (wide_end); the rest of
// a row keeps the 256-bit layout and code (tail_groups).
#pragma once

/** The per-block helpers stay inlined: out of line, every zmm register is caller-saved around each call. */
#define APL_WIDE_INLINE inline __attribute__((always_inline))

/** Lanes of a 64-byte chunk per group (G · bits / 32). */
constexpr int wide_lpg(int bits, int64_t G) { return (int)(G * bits / 32); }

/** Values [0, wide_end) of a row are read by the wide path (0: the whole row uses the 256-bit code). */
inline int64_t wide_end(int bits, int64_t group, int64_t cols) {
  if (group != 32 && group != 64 && group != 128) return 0;
  if (wide_lpg(bits, group) < 2) return 0;  // 1 bit, groups of 32: one lane per group, not worth a path
  if (bits == 8) return 0;  // measured slower than the 256-bit code on weights that do not fit in cache
  return cols / (8 * group) * (8 * group);
}

/** Puts the natural-order activations xq[0, wide_end) into the plane layout; returns wide_end. */
inline int64_t wide_permute(int8_t* xq, int bits, int64_t group, int64_t cols) {
  const int64_t end = wide_end(bits, group, cols);
  if (bits == 8) return end;
  const int per = 8 / bits, n = 64 * per;
  int8_t tmp[512];
  for (int64_t c0 = 0; c0 < end; c0 += n) {
    memcpy(tmp, xq + c0, (size_t)n);
    for (int k = 0; k < per; k++)
      for (int j = 0; j < 64; j++) xq[c0 + 64 * k + j] = tmp[per * j + k];
  }
  return end;
}

#include "infer_act512.h"

/** APL_ACT512=0 (read once): the reference's scalar quantization and byte-loop layout, for A/B runs. */
inline bool act512_on() {
  static const bool on = env_not_0("APL_ACT512");
  return on;
}

/** The activations of the AVX-512 kernel: the plane layout up to wide_end, the 256-bit layout after. */
inline void quantize_act_wide(const float* x, int64_t cols, int64_t group, int bits, int8_t* xq, float* dx,
                              int32_t* xsum) {
  if (!act512_on()) {
    act_quantize_ref(x, cols, group, xq, dx, xsum);
    return act_layout(xq, cols, group, bits, wide_permute(xq, bits, group, cols));
  }
  act_quantize_512(x, cols, group, xq, dx, xsum);
  int64_t end;
  if (bits == 4) {
    end = wide_end(bits, group, cols);
    wide_permute4(xq, end);
  } else {
    end = wide_permute(xq, bits, group, cols);
  }
  act_layout(xq, cols, group, bits, end);
}

/** [a0+a1, a2+a3, …, a14+a15, b0+b1, …, b14+b15]: halves the lanes per group of a and b, a's first. */
APL_WIDE_INLINE __m512i pairsum(__m512i a, __m512i b) {
  const __m512i ev = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const __m512i od = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
  return _mm512_add_epi32(_mm512_permutex2var_epi32(a, ev, b), _mm512_permutex2var_epi32(a, od, b));
}

/**
 * vgf2p8affineqb's matrix (one qword for every byte) for (byte >> s) & (2^bits − 1): result bit i takes bit
 * i + s of the byte (matrix byte 7 − i = 1 << (i + s)) for i < bits and i + s < 8; the other rows are zero,
 * so the result's bits from `bits` up are 0.
 */
inline __m512i gf_shift_bits(int s, int bits) {
  uint64_t m = 0;
  for (int i = 0; i < bits && i + s < 8; i++) m |= (uint64_t)(1u << (i + s)) << (8 * (7 - i));
  return _mm512_set1_epi64((long long)m);
}

/**
 * Decode's planes by GFNI (Wide::plane<true>) when the CPU has it; APL_WIDE_GFNI=0 (read once; benches flip
 * it per call) keeps the shift and mask, for A/B runs.
 */
inline bool& wide_gfni() {
  static bool on = __builtin_cpu_supports("gfni") && env_not_0("APL_WIDE_GFNI");
  return on;
}

template <int BITS, int G>
struct Wide {
  static APL_WIDE_INLINE __m512i gf_shift(int s) { return gf_shift_bits(s, BITS); }

  static constexpr int PER = 8 / BITS;
  static constexpr int UNITS = G / 8;           // 64-byte units of activations per block of 8 groups
  static constexpr int CHUNKS = G * BITS / 64;  // 64-byte chunks of codes per block
  static constexpr int NACC = CHUNKS >= 8 ? 8 : CHUNKS;
  static constexpr int BLOCK_BYTES = G * BITS;  // packed bytes of 8 groups

  /**
   * 64 codes: plane k of chunk v. GF (decode where the CPU has GFNI, wide_gfni): planes k ≥ 1 in one
   * vgf2p8affineqb, whose bit matrix moves bits k·BITS … k·BITS + BITS − 1 of each byte to bits 0 … BITS − 1
   * and clears the rest (the same bytes as the shift and the mask). Inline assembly: no -mgfni needed, the
   * instruction runs only behind the CPUID check.
   */
  template <bool GF = false>
  static APL_WIDE_INLINE __m512i plane(__m512i v, int k) {
    if (BITS == 8) return v;
    const __m512i mask = _mm512_set1_epi8((char)((1 << BITS) - 1));
    if (!GF || k == 0) return _mm512_and_si512(k ? _mm512_srli_epi16(v, (unsigned)(k * BITS)) : v, mask);
    __m512i r;
    asm("vgf2p8affineqb $0, %[m], %[v], %[r]" : [r] "=v"(r) : [v] "v"(v), [m] "v"(gf_shift(k * BITS)));
    return r;
  }

  /** Unpacks a block of packed codes into the activations' layout (UNITS × 64 bytes). */
  static inline void unpack(const uint8_t* src, uint8_t* dst) {
    for (int c = 0; c < CHUNKS; c++) {
      const __m512i v = _mm512_loadu_si512((const void*)(src + c * 64));
      for (int k = 0; k < PER; k++) _mm512_storeu_si512((void*)(dst + (c * PER + k) * 64), plane(v, k));
    }
  }

  /** The NACC accumulators of one block with one token's activations (see block). */
  template <bool UNPACKED, bool GF = false>
  static APL_WIDE_INLINE void dots(const uint8_t* src, const int8_t* x, __m512i* acc) {
    for (int i = 0; i < NACC; i++) acc[i] = _mm512_setzero_si512();
    for (int c = 0; c < CHUNKS; c++) {
      const int a = CHUNKS >= 8 ? c * 8 / CHUNKS : c;
      const __m512i v = UNPACKED ? _mm512_setzero_si512() : _mm512_loadu_si512((const void*)(src + c * 64));
      __m512i odd = _mm512_setzero_si512();  // a second chain for 4 or 8 planes
      for (int k = 0; k < PER; k++) {
        const int u = c * PER + k;
        const __m512i q = UNPACKED ? _mm512_loadu_si512((const void*)(src + u * 64)) : plane<GF>(v, k);
        const __m512i xv = _mm512_loadu_si512((const void*)(x + u * 64));
        if (PER >= 4 && (k & 1))
          odd = _mm512_dpbusd_epi32(odd, q, xv);
        else
          acc[a] = _mm512_dpbusd_epi32(acc[a], q, xv);
      }
      if (PER >= 4) acc[a] = _mm512_add_epi32(acc[a], odd);
    }
  }

  /**
   * The 8 groups' integer sums of one block with one token's activations, two lanes per group
   * ([g0, g0, g1, g1, …, g7, g7]). src: the packed block, or (UNPACKED) the block unpacked by unpack().
   */
  template <bool UNPACKED, bool GF = false>
  static APL_WIDE_INLINE __m512i block(const uint8_t* src, const int8_t* x) {
    __m512i acc[NACC];
    dots<UNPACKED, GF>(src, x, acc);
    // CHUNKS ≥ 8: one group per accumulator → two groups per accumulator (8 lanes each)
    __m512i p[4];
    if (NACC == 8) {
      for (int i = 0; i < 4; i++) {
        const __m512i a = acc[2 * i], b = acc[2 * i + 1];
        p[i] = _mm512_add_epi32(_mm512_shuffle_i64x2(a, b, 0x44), _mm512_shuffle_i64x2(a, b, 0xee));
      }
    } else if (NACC == 4) {
      for (int i = 0; i < 4; i++) p[i] = acc[i];
    }
    if (NACC >= 4) return pairsum(pairsum(p[0], p[1]), pairsum(p[2], p[3]));
    if (NACC == 2) return pairsum(acc[0], acc[1]);
    return acc[0];
  }

  /**
   * Decode's form of block: with 4 accumulators (accumulator c: groups 2c, 2c + 1, 8 lanes each), the first
   * two halvings in 16 bits, packs_epi32 then madd_epi16 with ones (2 in-lane operations where pairsum takes
   * 2 cross-lane permutes and an add). Exact: a lane is at most one chunk's 4 · PER products of a code
   * (< 2^BITS) and an int8, |·| ≤ 4 · 8 · 128 < 2^13 at 1, 2 or 4 bits, so the first sums of 2 lanes fit in
   * int16 (packs_epi32 does not saturate) and madd_epi16 adds in int32. Lane 4L + k (128-bit lane L, k < 4)
   * holds the sum of lanes 4L … 4L + 3 of accumulator k: group 2k + (L ≥ 2), two lanes per group
   * (natural2 puts them in order). Other accumulator counts: block's order.
   */
  template <bool GF = false>
  static APL_WIDE_INLINE __m512i block_dec(const uint8_t* src, const int8_t* x) {
    if constexpr (NACC != 4) {
      return block<false, GF>(src, x);
    } else {
      __m512i acc[4];
      dots<false, GF>(src, x, acc);
      const __m512i one = _mm512_set1_epi16(1);
      const __m512i u01 = _mm512_madd_epi16(_mm512_packs_epi32(acc[0], acc[1]), one);
      const __m512i u23 = _mm512_madd_epi16(_mm512_packs_epi32(acc[2], acc[3]), one);
      return _mm512_madd_epi16(_mm512_packs_epi32(u01, u23), one);
    }
  }

  /** Blocks a and b's 16 group sums one lane each, in order (a's 8 groups, then b's), from block_dec. */
  static APL_WIDE_INLINE __m512i natural2(__m512i a, __m512i b) {
    if constexpr (NACC != 4) {
      return pairsum(a, b);
    } else {
      // lane j: block j / 8, group g = j % 8 at lanes 8·(g % 2) + g / 2 and that + 4 (see block_dec)
      const __m512i e = _mm512_set_epi32(27, 19, 26, 18, 25, 17, 24, 16, 11, 3, 10, 2, 9, 1, 8, 0);
      const __m512i o = _mm512_add_epi32(e, _mm512_set1_epi32(4));
      return _mm512_add_epi32(_mm512_permutex2var_epi32(a, e, b), _mm512_permutex2var_epi32(a, o, b));
    }
  }
};

/** 16 float32 parameters: 8 of row a, 8 of row b, from index i of each row's parameters. */
inline __m512 params16(const uint8_t* base, int64_t ia, int64_t ib, bool f16) {
  if (f16) {
    const __m128i a = _mm_loadu_si128((const __m128i*)(base + ia * 2));
    const __m128i b = _mm_loadu_si128((const __m128i*)(base + ib * 2));
    return _mm512_cvtph_ps(_mm256_inserti128_si256(_mm256_castsi128_si256(a), b, 1));
  }
  const __m256 a = _mm256_loadu_ps((const float*)base + ia), b = _mm256_loadu_ps((const float*)base + ib);
  return _mm512_castpd_ps(
      _mm512_insertf64x4(_mm512_castpd256_pd512(_mm256_castps_pd(a)), _mm256_castps_pd(b), 1));
}

inline __m512 dup8f(const float* p) {
  const __m512 v = _mm512_castps256_ps512(_mm256_loadu_ps(p));
  return _mm512_shuffle_f32x4(v, v, 0x44);
}
inline __m512i dup8i(const int32_t* p) {
  const __m512i v = _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i*)p));
  return _mm512_shuffle_i32x4(v, v, 0x44);
}

/**
 * Decode reads each row pair's blocks with the same blocks of a row pair ~6 KB further on prefetched: one
 * pair ahead (the distance before) left 4-bit rows of 2048 values (a 2 KB pair) at 0.75× the speed with
 * weights in DRAM (bench/linear.bench.ts, DRAM mode); 3 pairs (6 KB) ran best for them, 1 pair for rows of
 * 5632 values (5.6 KB), 6 for 2-bit rows of 2048 (APL_WIDE_PF=<pairs> overrides, for that A/B).
 */
inline int64_t wide_prefetch_distance(int64_t row_bytes) {
  static const int forced = []() {
    const char* v = std::getenv("APL_WIDE_PF");
    return v ? std::atoi(v) : 0;
  }();
  const int64_t pairs =
      forced > 0 ? forced : std::min<int64_t>(8, std::max<int64_t>(1, 6144 / (2 * row_bytes)));
  return 2 * pairs * row_bytes;
}

/**
 * How decode prefetches the codes ahead (APL_WIDE_PFMODE, read once; benches set it per call): 1 every
 * 64-byte line into L1 (T0, the default), 0 none, 2 every line into L2 (T1), 3 every other line into L1 (the
 * L2's adjacent-line prefetcher fetches its pair; half the fill buffers held).
 */
inline int& wide_pf_mode() {
  static int m = []() {
    const char* v = std::getenv("APL_WIDE_PFMODE");
    return v ? std::atoi(v) : 1;
  }();
  return m;
}

/** The software prefetch of one block's codes (BYTES) in the given mode (wide_pf_mode). */
template <int BYTES>
inline void wide_prefetch_block(const uint8_t* p, int mode) {
  if (mode == 1)
    for (int j = 0; j < BYTES; j += 64) _mm_prefetch((const char*)(p + j), _MM_HINT_T0);
  else if (mode == 2)
    for (int j = 0; j < BYTES; j += 64) _mm_prefetch((const char*)(p + j), _MM_HINT_T1);
  else if (mode == 3)
    for (int j = 0; j < BYTES; j += 128) _mm_prefetch((const char*)(p + j), _MM_HINT_T0);
}

/**
 * Decode reads its codes in memory order (wide_rows_dec, one row at a time; wide_rows_seq, a row pair, under
 * APL_WIDE_DEC=0); APL_WIDE_SEQ=0 (read once) keeps the order before, block b of row a then block b of row b
 * (for A/B runs; bench/native/wide-stream.cc flips it per call).
 */
inline bool& wide_seq() {
  static bool on = env_not_0("APL_WIDE_SEQ");
  return on;
}

/** What a decode call (token t) of the wide kernel computes once: the weight's shape, the prefetch, x. */
template <int BITS, int G>
struct WideDec {
  RowShape sh;
  int64_t nblk, gpr, ublk, pfd;
  int pfm;
  const int8_t* x0;
  const float* dx;
  const int32_t* xs;
  WideDec(const Linear& w, const ActQ& act, int64_t t)
      : sh(row_shape(w)),
        nblk(wide_end(BITS, G, w.cols) / (8 * G)),
        gpr(sh.gpr),
        ublk((int64_t)Wide<BITS, G>::UNITS * 64),
        pfd(wide_prefetch_distance(sh.rb)),
        pfm(wide_pf_mode()),
        x0(act.xq_of(t)),
        dx(act.dx_of(t)),
        xs(act.xsum_of(t)) {}
};

/**
 * Decode (one token t) on rows [r0, r1), two rows at a time, reading each pair's codes in memory order: up to
 * kChunk blocks of row a, then the same blocks of row b (the next bytes in q), so a thread's rows are one
 * sequential stream of codes instead of two interleaved ones (1.4–1.9× the speed on weights read from DRAM,
 * bench/native/wide-stream.cc). The blocks' exact integer sums wait on the stack; the float combine then runs
 * block by block on 16 lanes exactly as in wide_rows, so the results are the same bit for bit.
 */
template <int BITS, int G>
inline void wide_rows_seq(const Linear& w, int64_t r0, int64_t r1, const ActQ& act, int64_t t, float* y,
                          int64_t ystride) {
  using W = Wide<BITS, G>;
  constexpr int CPG = G / 32;
  constexpr int kChunk = 16;  // blocks of one row read before the other's (4 KB of 4-bit codes, groups of 64)
  const WideDec<BITS, G> c(w, act, t);
  const RowShape& sh = c.sh;
  const int64_t nblk = c.nblk, gpr = c.gpr, pfd = c.pfd, ublk = c.ublk;
  const int pfm = c.pfm;
  const int8_t* x0 = c.x0;
  const float* dx = c.dx;
  const int32_t* xs = c.xs;
  __m512i sa[kChunk], sb[kChunk];
  for (int64_t r = r0; r < r1; r += 2) {
    const int64_t ra = r, rb = r + 1 < r1 ? r + 1 : r;
    const uint8_t* qa = w.q + ra * sh.rb;
    const uint8_t* qb = w.q + rb * sh.rb;
    __m512 acc = _mm512_setzero_ps();
    for (int64_t b0 = 0; b0 < nblk; b0 += kChunk) {
      const int nb = (int)std::min<int64_t>(kChunk, nblk - b0);
      // the same bytes of a row pair ahead are prefetched (wide_prefetch_distance)
      for (int i = 0; i < nb; i++) {
        const int64_t at = (b0 + i) * W::BLOCK_BYTES;
        wide_prefetch_block<W::BLOCK_BYTES>(qa + pfd + at, pfm);
        sa[i] = W::template block<false>(qa + at, x0 + (b0 + i) * ublk);
      }
      for (int i = 0; i < nb; i++) {
        const int64_t at = (b0 + i) * W::BLOCK_BYTES;
        wide_prefetch_block<W::BLOCK_BYTES>(qb + pfd + at, pfm);
        sb[i] = W::template block<false>(qb + at, x0 + (b0 + i) * ublk);
      }
      for (int i = 0; i < nb; i++) {
        const int64_t g = (b0 + i) * 8;
        const __m512 sv = params16(w.scales, ra * gpr + g, rb * gpr + g, w.f16);
        const __m512 zv = params16(w.zeros, ra * gpr + g, rb * gpr + g, w.f16);
        // combine_group, 16 lanes: d = s·dx, t = isum − z·xsum, acc += d·t
        const __m512 d = _mm512_mul_ps(sv, dup8f(dx + g));
        const __m512 bz = _mm512_mul_ps(zv, _mm512_cvtepi32_ps(dup8i(xs + g)));
        const __m512 tt = _mm512_sub_ps(_mm512_cvtepi32_ps(pairsum(sa[i], sb[i])), bz);
        acc = _mm512_add_ps(acc, _mm512_mul_ps(d, tt));
      }
    }
    alignas(64) float l[16];
    _mm512_store_ps(l, acc);
    tail_groups<BITS, true, false, CPG>(w, sh, ra, nullptr, act, t, nblk * 8, l);
    y[t * ystride + ra] = reduce8(l);
    if (rb != ra) {
      tail_groups<BITS, true, false, CPG>(w, sh, rb, nullptr, act, t, nblk * 8, l + 8);
      y[t * ystride + rb] = reduce8(l + 8);
    }
  }
}

#include "infer_wide_dec.h"

/** Rows [r0, r1) × tokens [t0, t1), two rows at a time; prompts unpack the two rows once for every token. */
template <int BITS, int G>
inline void wide_rows(const Linear& w, int64_t r0, int64_t r1, const ActQ& act, int64_t t0, int64_t t1,
                      float* y, int64_t ystride) {
  // 1 bit (one line of codes per block) measured 0.86× in memory order: it keeps the block-by-block order
  if (BITS >= 2 && t1 - t0 == 1 && wide_seq()) {
    if (wide_dec())
      return wide_gfni() ? wide_rows_dec<BITS, G, true>(w, r0, r1, act, t0, y, ystride)
                         : wide_rows_dec<BITS, G, false>(w, r0, r1, act, t0, y, ystride);
    return wide_rows_seq<BITS, G>(w, r0, r1, act, t0, y, ystride);
  }
  using W = Wide<BITS, G>;
  constexpr int CPG = G / 32;
  const RowShape sh = row_shape(w);
  const int64_t nblk = wide_end(BITS, G, w.cols) / (8 * G), gpr = sh.gpr;
  const bool many = t1 - t0 > 1;
  const int64_t pfd = wide_prefetch_distance(sh.rb);
  thread_local std::vector<uint8_t> buf;
  const int64_t ublk = (int64_t)W::UNITS * 64;  // unpacked bytes per block
  if (many && (int64_t)buf.size() < 2 * nblk * ublk) buf.resize((size_t)(2 * nblk * ublk));
  for (int64_t r = r0; r < r1; r += 2) {
    const int64_t ra = r, rb = r + 1 < r1 ? r + 1 : r;
    const uint8_t* qa = w.q + ra * sh.rb;
    const uint8_t* qb = w.q + rb * sh.rb;
    uint8_t* ua = buf.data();
    uint8_t* ub = ua + nblk * ublk;
    if (many)
      for (int64_t b = 0; b < nblk; b++) {
        W::unpack(qa + b * W::BLOCK_BYTES, ua + b * ublk);
        W::unpack(qb + b * W::BLOCK_BYTES, ub + b * ublk);
      }
    for (int64_t tb = t0; tb < t1; tb += kMaxTokens) {
      const int nt = (int)std::min<int64_t>(kMaxTokens, t1 - tb);
      __m512 acc[kMaxTokens];
      for (int t = 0; t < nt; t++) acc[t] = _mm512_setzero_ps();
      for (int64_t b = 0; b < nblk; b++) {
        const int64_t g = b * 8;
        const __m512 sv = params16(w.scales, ra * gpr + g, rb * gpr + g, w.f16);
        const __m512 zv = params16(w.zeros, ra * gpr + g, rb * gpr + g, w.f16);
        for (int t = 0; t < nt; t++) {
          const int8_t* x = act.xq_of(tb + t) + b * ublk;
          __m512i s;
          if (many) {
            s = pairsum(W::template block<true>(ua + b * ublk, x), W::template block<true>(ub + b * ublk, x));
          } else {
            // the same block of a row pair ahead (a stream the hardware prefetcher sees late)
            for (int i = 0; i < W::BLOCK_BYTES; i += 64) {
              _mm_prefetch((const char*)(qa + pfd + b * W::BLOCK_BYTES + i), _MM_HINT_T0);
              _mm_prefetch((const char*)(qb + pfd + b * W::BLOCK_BYTES + i), _MM_HINT_T0);
            }

            s = pairsum(W::template block<false>(qa + b * W::BLOCK_BYTES, x),
                        W::template block<false>(qb + b * W::BLOCK_BYTES, x));
          }
          // combine_group, 16 lanes: d = s·dx, t = isum − z·xsum, acc += d·t
          const __m512 d = _mm512_mul_ps(sv, dup8f(act.dx_of(tb + t) + g));
          const __m512 bz = _mm512_mul_ps(zv, _mm512_cvtepi32_ps(dup8i(act.xsum_of(tb + t) + g)));
          const __m512 tt = _mm512_sub_ps(_mm512_cvtepi32_ps(s), bz);
          acc[t] = _mm512_add_ps(acc[t], _mm512_mul_ps(d, tt));
        }
      }
      for (int t = 0; t < nt; t++) {
        alignas(64) float l[16];
        _mm512_store_ps(l, acc[t]);
        tail_groups<BITS, true, false, CPG>(w, sh, ra, nullptr, act, tb + t, nblk * 8, l);
        y[(tb + t) * ystride + ra] = reduce8(l);
        if (rb != ra) {
          tail_groups<BITS, true, false, CPG>(w, sh, rb, nullptr, act, tb + t, nblk * 8, l + 8);
          y[(tb + t) * ystride + rb] = reduce8(l + 8);
        }
      }
    }
  }
}

template <int BITS>
inline void wide_bits(const Linear& w, int64_t r0, int64_t r1, const ActQ& a, int64_t t0, int64_t t1,
                      float* y, int64_t ystride) {
  if constexpr (BITS > 1)  // 1 bit, groups of 32: not a wide shape (wide_end)
    if (w.group == 32) return wide_rows<BITS, 32>(w, r0, r1, a, t0, t1, y, ystride);
  if (w.group == 64) return wide_rows<BITS, 64>(w, r0, r1, a, t0, t1, y, ystride);
  return wide_rows<BITS, 128>(w, r0, r1, a, t0, t1, y, ystride);
}

/** The wide path when it applies (see wide_end); false otherwise. */
inline bool wide_qrows(const Linear& w, int64_t r0, int64_t r1, const ActQ& a, int64_t t0, int64_t t1,
                       float* y, int64_t ystride) {
  if (wide_end(w.bits, w.group, w.cols) == 0) return false;
  switch (w.bits) {
    case 1:
      wide_bits<1>(w, r0, r1, a, t0, t1, y, ystride);
      break;
    case 2:
      wide_bits<2>(w, r0, r1, a, t0, t1, y, ystride);
      break;
    case 4:
      wide_bits<4>(w, r0, r1, a, t0, t1, y, ystride);
      break;
    default:
      wide_bits<8>(w, r0, r1, a, t0, t1, y, ystride);
  }
  return true;
}
