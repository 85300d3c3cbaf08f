// The prompt (matrix × matrix) path for kquant weights on AVX-512 VNNI: the row-interleaved GEMM of
// infer_gemm.h (one 512-bit lane per (row, token), no horizontal reduction) with kquant's two-level scales.
// Included by infer_kquant_x86.h with APL_INFER_VNNI (after infer_gemm.h and infer_kquant_wide.h).
//
// A block of 16 rows is unpacked once per block of tokens (up to 128) into the row-interleaved buffer of
// infer_gemm.h (gemm512::row64 + transpose16: 64 bytes per 4 values, 4 codes of each of the 16 rows; the
// packing of q is the groupwise one); the rows' s = f32(d·sc) and z = f32(dmin·mc) are decoded once per block
// (16 groups at a time by the wide kernel's decoder, else the scalar decode) and transposed the same way (gpr
// × 16 floats). One vpdpbusd multiplies 64 codes by 4 activation bytes of one token broadcast to every lane;
// a group's words give each lane its row's exact integer sum. The combine is the reference's
// (kq_combine_group) on 16 rows:
//   t = s·(float)isum − z·(float)xsum,  term = dx·t,  added to lane g % 8,
// groups visited lane class by lane class (g = k, k + 8, …) with one float accumulator per token, the 8 lanes
// reduced vertically in reduce8's order: bit-exact with the scalar reference. Activations are in natural
// order (gemm512::quantize_act = act_quantize_ref), their group sums converted to float once per call. Groups
// must be a multiple of 4 values (a word never straddles two groups; a short last group unpacks as zeros past
// cols).
#pragma once

namespace kqgemm {

/** A block of 16 rows: codes (gemm512 layout), s and z (gpr × 16), scratch for the per-row decode. */
struct Block {
  std::vector<uint8_t> codes;
  std::vector<float> s, z, rs, rz;  // rs, rz: 16 rows × (16 · blocks of 16 groups), row-major
  std::vector<float> xsf;           // the tokens' group sums as float (tokens × gpr)
  WideCodes<Wide512> wc;
};

inline bool fits(const Linear& w, int64_t n) { return n >= gemm512::kMinTokens && w.group % 4 == 0; }

template <int BITS>
inline void unpack(const Linear& w, int64_t r0, int64_t r1, Block& b) {
  const int64_t words = (w.cols + 3) / 4, tiles = (words + 15) / 16, gpr = w.gpr(), rb = w.row_bytes();
  const int64_t nblk = (gpr + 15) / 16, gp = nblk * 16;
  if ((int64_t)b.codes.size() < tiles * 1024 + 64) b.codes.resize((size_t)(tiles * 1024 + 64));
  if ((int64_t)b.s.size() < gp * 16) {
    b.s.resize((size_t)(gp * 16));
    b.z.resize((size_t)(gp * 16));
    b.rs.resize((size_t)(gp * 16));
    b.rz.resize((size_t)(gp * 16));
  }
  const int nr = (int)(r1 - r0);
  for (int64_t tl = 0; tl < tiles; tl++) {
    __m512i v[16];
    for (int i = 0; i < 16; i++)
      v[i] = i < nr ? gemm512::row64<BITS>(w.q + (r0 + i) * rb, tl * 64, w.cols) : _mm512_setzero_si512();
    gemm512::transpose16(v);
    for (int i = 0; i < 16; i++) _mm512_storeu_si512((void*)(b.codes.data() + (tl * 16 + i) * 64), v[i]);
  }
  wide_codes_init(w, nblk, b.wc);
  for (int i = 0; i < nr; i++)
    wide_decode_sz(w, b.wc, r0 + i, nblk, b.rs.data() + i * gp, b.rz.data() + i * gp);
  for (int p = 0; p < 2; p++) {
    const float* src = p ? b.rz.data() : b.rs.data();
    float* dst = p ? b.z.data() : b.s.data();
    for (int64_t g0 = 0; g0 < gpr; g0 += 16) {
      __m512i v[16];
      for (int i = 0; i < 16; i++)
        v[i] = i < nr ? _mm512_loadu_si512((const void*)(src + i * gp + g0)) : _mm512_setzero_si512();
      gemm512::transpose16(v);
      const int m = (int)std::min<int64_t>(16, gpr - g0);
      for (int j = 0; j < m; j++) _mm512_storeu_si512((void*)(dst + (g0 + j) * 16), v[j]);
    }
  }
}

/** The 16 rows of block b × tokens [t0, t0 + NT), into y (rows past r1 not written). WPG: G / 4, or 0. */
template <int NT, int WPG>
inline void tile(const Linear& w, const Block& b, int64_t r0, int64_t r1, const ActQ& a, int64_t t0,
                 int64_t tb0, float* y, int64_t ystride) {
  const int64_t gpr = w.gpr();
  const int8_t* x[NT];
  const float* dx[NT];
  const float* xs[NT];
  for (int t = 0; t < NT; t++) {
    x[t] = a.xq_of(t0 + t);
    dx[t] = a.dx_of(t0 + t);
    xs[t] = b.xsf.data() + (t0 + t - tb0) * gpr;
  }
  gemm512::tile_lanes<NT, WPG>(
      w, b.codes.data(), x, r0, r1, t0, y, ystride, [&](int64_t g, const __m512i* is, __m512* acc) {
        const __m512 sv = _mm512_loadu_ps(b.s.data() + g * 16), zv = _mm512_loadu_ps(b.z.data() + g * 16);
        for (int t = 0; t < NT; t++) {
          const __m512 u = _mm512_mul_ps(sv, _mm512_cvtepi32_ps(is[t]));
          const __m512 v = _mm512_mul_ps(zv, _mm512_set1_ps(xs[t][g]));
          acc[t] = _mm512_add_ps(acc[t], _mm512_mul_ps(_mm512_set1_ps(dx[t][g]), _mm512_sub_ps(u, v)));
        }
      });
}

template <int WPG>
inline void tiles(const Linear& w, const Block& b, int64_t r0, int64_t r1, const ActQ& a, int64_t t0,
                  int64_t t1, float* y, int64_t ystride) {
  gemm512::for_tiles(t0, t1, [&](auto nt, int64_t t) {
    tile<decltype(nt)::value, WPG>(w, b, r0, r1, a, t, t0, y, ystride);
  });
}

template <int BITS>
inline void rows_bits(const Linear& w, int64_t r0, int64_t r1, const ActQ& a, int64_t t0, int64_t t1,
                      float* y, int64_t ystride) {
  thread_local Block b;
  const int64_t gpr = w.gpr();
  if ((int64_t)b.xsf.size() < (t1 - t0) * gpr + 16) b.xsf.resize((size_t)((t1 - t0) * gpr + 16));
  for (int64_t t = t0; t < t1; t++) {
    const int32_t* s = a.xsum_of(t);
    float* d = b.xsf.data() + (t - t0) * gpr;
    for (int64_t g = 0; g < gpr; g += 16) {
      const __mmask16 k = gpr - g >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (gpr - g)) - 1);
      _mm512_mask_storeu_ps(d + g, k, _mm512_cvtepi32_ps(_mm512_maskz_loadu_epi32(k, s + g)));
    }
  }
  for (int64_t rb = r0; rb < r1; rb += 16) {
    const int64_t re = std::min(r1, rb + 16);
    unpack<BITS>(w, rb, re, b);
    // the presets (g24 at 4 bits, g16 at 2) and the usual groupwise sizes unrolled
    gemm512::with_wpg<16, 24, 32, 64>(
        w.group, [&](auto wpg) { tiles<decltype(wpg)::value>(w, b, rb, re, a, t0, t1, y, ystride); });
  }
}

/** Rows [r0, r1) × tokens [t0, t1) of a kquant weight that fits(); activations from gemm512::quantize_act. */
inline void rows(const Linear& w, int64_t r0, int64_t r1, const ActQ& a, int64_t t0, int64_t t1, float* y,
                 int64_t ystride) {
  switch (w.bits) {
    case 8:
      return rows_bits<8>(w, r0, r1, a, t0, t1, y, ystride);
    case 2:
      return rows_bits<2>(w, r0, r1, a, t0, t1, y, ystride);
    default:
      return rows_bits<4>(w, r0, r1, a, t0, t1, y, ystride);
  }
}

}  // namespace kqgemm
