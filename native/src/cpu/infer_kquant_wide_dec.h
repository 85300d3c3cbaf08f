// The decode (one token) of the kquant wide kernels (infer_kquant_wide_rows.h; traits T: Wide512 of
// infer_kquant_wide.h, Wide256 of infer_kquant_wide2.h). Included by infer_kquant_wide_rows.h inside the
// kqx86 namespace; bit-exact with the scalar reference (kquant_ref.h): per block the same integer sums, s and
// z and the reference's float32 operations in its order as the block-by-block loop of wide_rows.
//
// A thread's rows are read one after the other, each row's blocks in order, so its packed codes are one
// sequential stream (prefetched kq_prefetch_distance bytes ahead on the 512-bit path). Per row:
//  - the blocks whose B groups and packed bytes all lie inside the row run with no masks and no copies, the
//    token's (float)xsum converted once per call (xf) rather than once per row and block;
//  - the last, partial block(s) read the packed bytes in place when they lie inside the weight (the bytes
//    past the row are the next row's: they meet activations that are zero past cols and only reach lanes of
//    groups past the row, which the combine masks), else from a zero-padded copy (the weight's last row);
//    with 5-bit scale codes (wide_dec_lut5) such a block also takes s and z from the row's tables;
//  - the code fields are read in place up to the end of the weight's codes (RowCodes::avail); d and dmin of
//    all the call's rows are converted to float32 once, into the thread's scratch;
//  - the 8 lanes are reduced in vectors, in reduce8's order.
#pragma once

#include <cstdlib>

/** How far ahead of the bytes read the decode prefetches: APL_KQ_PF=<bytes> (read once), else 1024 (see
 * docs/PERFORMANCE.md, "kquant decode" and "Zen 4"). 0: no software prefetch (wide_dec_lut5 then prefetches
 * the lines it is about to read: no effect). 6144, the default before, cost 4-bit decode 1.35x on a Zen 4
 * host. */
inline int64_t kq_prefetch_distance() {
  static const int64_t d = [] {
    const char* v = std::getenv("APL_KQ_PF");
    return v ? (int64_t)std::atoll(v) : (int64_t)1024;
  }();
  return d;
}

/** reduce8 of the 8 lanes of v, in its order: ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7)). */
APL_KQW_INLINE float reduce8_vec(__m256 v) {
  const __m128 a = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));  // l_i + l_{i+4}
  const __m128 b = _mm_add_ps(a, _mm_movehl_ps(a, a));                                  // a0 + a2, a1 + a3
  return _mm_cvtss_f32(_mm_add_ss(b, _mm_movehdup_ps(b)));
}

/** How wide_rows_dec_run decodes s and z of the blocks inside the row. */
enum class KqSz { kGeneric, kLut4, kLut5 };

/** wide_dec_lut5's block n, the row's last and partial one (on: its packed bytes and code fields lie inside
 * the weight), with the masks of its lanes past the row. */
template <class T>
struct DecTail {
  bool on;
  typename T::At at;
  const typename T::Edge& edge;
};

/**
 * Blocks [0, n) of one row for 5-bit scale codes with one super-block per block (KqSz::kLut5), every code
 * field read in place: the tables of T::lut5 of the row's nsb super-blocks built first (into tab, 48 floats
 * each), the loop's invariants in registers. The same operations, per block, as wide_rows_dec_run's loop;
 * then block n when tail.on, as wide_rows_dec_run's last block but with s and z from the tables.
 */
template <class T, int BITS, int L>
APL_KQW_INLINE __m256 wide_dec_lut5(const WideCodes<T>& wc, const RowCodes& rc, int64_t nsb, float* tab,
                                    const uint8_t* q, const int8_t* x, const float* xf, const float* dx,
                                    int64_t n, int64_t pfd, __m256 acc, const DecTail<T>& tail) {
  using K = typename T::template Kern<BITS, L>;
  using F = typename T::F;
  using I = typename T::I;
  constexpr int B = T::B;
  constexpr int64_t bbytes = T::VB * L, ublk = T::VB * K::NV;
  const I shuf = wc.shuf, shift = wc.shift, mmask = wc.mmask;
  const int width = rc.width;
  for (int64_t a = 0; a < nsb; a++) T::lut5_store(rc.dv[a], rc.mv[a], tab + 48 * a);
  const int32_t* sup = wc.super.data();
  for (int64_t b = 0; b < n; b++) {
    const uint8_t* p = q + b * bbytes;
    for (int j = 0; j < L; j++) _mm_prefetch((const char*)(p + pfd + 64 * j), _MM_HINT_T1);
    const I isum = K::isum_packed(p, x + b * ublk);
    F s, z;
    T::sz_lut5(tab + 48 * sup[2 * b], T::fields_at(shuf, shift, rc.cr + b * 2 * width, width), mmask, s, z);
    const F u = T::mul(s, T::cvt(isum));
    const F v = T::mul(z, T::loadu(xf + B * b));
    acc = T::fold_full(acc, T::mul(T::loadu(dx + B * b), T::sub(u, v)));
  }
  if (tail.on) {  // block n, partial: its lanes past the row masked (the loads of dx and xsum, the fold)
    const I isum = K::isum_packed(q + n * bbytes, x + n * ublk);
    F s, z;
    T::sz_lut5(tab + 48 * sup[2 * n], T::fields_at(shuf, shift, rc.cr + n * 2 * width, width), mmask, s, z);
    acc = wide_combine<T>(acc, isum, s, z, tail.at, tail.edge);
  }
  return acc;
}

template <class T, int BITS, int L, KqSz SZ>
void wide_rows_dec_run(const Linear& w, const WideCodes<T>& wc, WideScratch<T>& sc,
                       const typename T::Edge& edge, const int8_t* x, const float* dx, const int32_t* xs,
                       int64_t r0, int64_t r1, float* y) {
  using K = typename T::template Kern<BITS, L>;
  using F = typename T::F;
  using I = typename T::I;
  constexpr int B = T::B;
  const int64_t gpr = w.gpr(), nblk = (gpr + B - 1) / B, rb = w.row_bytes(), bbytes = T::VB * L;
  const int64_t ublk = T::VB * K::NV, nsb = kq_supers(w), cb = kq_codes_row_bytes(w);
  // blocks [0, nmain): every group inside the row and every packed byte inside the row
  const int64_t nmain = std::min(rb / bbytes, gpr / B);
  const int64_t pfd = T::kPrefetch ? kq_prefetch_distance() : 0;
  const int width = w.kq_sbits + w.kq_mbits;
  if ((int64_t)sc.xf.size() < nblk * B) sc.xf.resize((size_t)(nblk * B));
  // d and dmin of every row of the call at once (the rows' float16 pairs are contiguous)
  const int64_t nd = (r1 - r0) * nsb;
  if ((int64_t)sc.dv.size() < nd + B) {
    sc.dv.resize((size_t)(nd + B));
    sc.mv.resize((size_t)(nd + B));
  }
  T::f16_to_f32(w.kd + r0 * nsb * 2, w.kdmin + r0 * nsb * 2, nd, sc.dv.data(), sc.mv.data());
  if ((int64_t)sc.tab.size() < 48 * nsb) sc.tab.resize((size_t)(48 * nsb));
  float* xf = sc.xf.data();
  for (int64_t g = 0; g < nmain * B; g++) xf[g] = (float)xs[g];
  const uint8_t* qend = w.q + w.rows * rb;
  for (int64_t r = r0; r < r1; r++) {
    const uint8_t* q = w.q + r * rb;
    const int64_t o = (r - r0) * nsb;
    const RowCodes rc{w.codes + r * cb, cb, width, sc.dv.data() + o, sc.mv.data() + o, (w.rows - r) * cb};
    __m256 acc = _mm256_setzero_ps();
    int64_t b0 = 0;
    if constexpr (SZ == KqSz::kLut5) {  // the blocks whose code fields lie inside the weight's codes
      // (block b's end at byte 2·width·b + width + 16), and the partial last block when its code fields and
      // packed bytes lie inside the weight too; no division but in the weight's last rows
      const int64_t lim = rc.avail - width - 16;
      b0 = lim >= (nmain - 1) * 2 * width ? nmain : lim < 0 ? 0 : lim / (2 * width) + 1;
      const bool tail = nblk == nmain + 1 && lim >= nmain * 2 * width && q + nblk * bbytes <= qend;
      acc = wide_dec_lut5<T, BITS, L>(wc, rc, nsb, sc.tab.data(), q, x, xf, dx, b0, pfd, acc,
                                      DecTail<T>{tail, T::at(edge, dx, xs, nmain, nblk), edge});
      if (tail) b0 = nblk;
    }
    for (int64_t b = b0; b < nmain; b++) {
      const uint8_t* p = q + b * bbytes;
      if (pfd)
        for (int j = 0; j < L; j++) _mm_prefetch((const char*)(p + pfd + 64 * j), _MM_HINT_T0);
      const I isum = K::isum_packed(p, x + b * ublk);
      F s, z;
      if constexpr (SZ == KqSz::kLut4)
        T::block_sz_lut(wc, rc, b, s, z);
      else
        wide_block_sz(wc, rc, b, s, z);
      // kq_combine_group on B groups: a = (float)isum, u = s·a, v = z·xs, t = u − v, term = dx·t
      const F u = T::mul(s, T::cvt(isum));
      const F v = T::mul(z, T::loadu(xf + B * b));
      acc = T::fold_full(acc, T::mul(T::loadu(dx + B * b), T::sub(u, v)));
    }
    for (int64_t b = std::max(b0, nmain); b < nblk; b++) {
      const uint8_t* p = q + b * bbytes;
      if (p + bbytes > qend) {  // the weight's last row: a zero-padded copy
        std::memset(sc.tail, 0, sizeof sc.tail);
        if (rb > b * bbytes) std::memcpy(sc.tail, p, (size_t)std::min(bbytes, rb - b * bbytes));
        p = sc.tail;
      }
      const I isum = K::isum_packed(p, x + b * ublk);
      F s, z;
      wide_block_sz(wc, rc, b, s, z);
      acc = wide_combine<T>(acc, isum, s, z, T::at(edge, dx, xs, b, nblk), edge);
    }
    y[r] = reduce8_vec(acc);
  }
}

/** The decode; s and z of the blocks inside the row by table lookup where the traits have one and the layout
 * allows it: T::block_sz_lut for one lane a group, 4-bit scale and min codes, one super-block per block (the
 * 2-bit preset g16/256 codes 4+4); wide_dec_lut5 for 5-bit scale codes and one super-block per block (the
 * 4-bit preset g24/1536 codes 5+6). */
template <class T, int BITS, int L>
void wide_rows_dec(const Linear& w, const WideCodes<T>& wc, WideScratch<T>& sc, const typename T::Edge& edge,
                   const int8_t* x, const float* dx, const int32_t* xs, int64_t r0, int64_t r1, float* y) {
  if constexpr (T::kLut && L == 1)
    if (wc.uniform && w.kq_sbits == 4 && w.kq_mbits == 4)
      return wide_rows_dec_run<T, BITS, L, KqSz::kLut4>(w, wc, sc, edge, x, dx, xs, r0, r1, y);
  if constexpr (T::kLut)
    if (wc.uniform && w.kq_sbits == 5)
      return wide_rows_dec_run<T, BITS, L, KqSz::kLut5>(w, wc, sc, edge, x, dx, xs, r0, r1, y);
  wide_rows_dec_run<T, BITS, L, KqSz::kGeneric>(w, wc, sc, edge, x, dx, xs, r0, r1, y);
}
