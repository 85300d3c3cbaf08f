// The prompt GEMM on AMX (x86-64 with AMX-TILE + AMX-INT8, e.g. Sapphire Rapids): `avx512-gemm` with the
// integer group sums of 16 tokens × 16 rows computed by one TDPBSUD per 64 values (signed activation bytes ×
// unsigned codes). Everything else (decode, float weights, fewer than 16 tokens, group sizes that are not a
// multiple of 64) is avx512-gemm's.
//
// Tiles (LDTILECFG per call of the rows function, TILERELEASE at its end): tmm0 = C (16 tokens × 16 rows of
// int32), tmm1 = A (16 tokens × 64 activation bytes, natural order, rows ActQ::xstride apart), tmm2 = B (16 ×
// 64 bytes: the row-interleaved codes of infer_gemm.h's Block, whose 16 words of 4 codes × 16 rows per 64
// values are exactly TDPBSUD's B layout). C[t][i] = Σ x[t][c]·q[r0 + i][c] over the group: the exact integer
// sum the other variants compute, so the float combine (gemm512::combine, lane class by lane class, then
// reduce8) is the same and the results are bit-exact with the scalar reference. Each group's sums go through
// a 1 KiB buffer (TILESTORED, then vector loads), computed two groups ahead of its combine on alternating
// sets of tiles.
//
// The kernel is listed only where the CPU has AMX-INT8 and Linux grants the tile data state
// (arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)): see amx_usable() in infer/kernels.cc.
#include "../infer/kquant_linear.h"

#if (defined(__x86_64__) || defined(_M_X64)) && defined(__AMX_INT8__)
// GCC's AVX-512 intrinsics (unpack, cvtph) start from an undefined vector it then reports
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include "infer_gemm.h"

namespace apl {
namespace infer {
namespace {

constexpr int kTok = 16;  // tokens per AMX tile (C and A rows)

/** LDTILECFG: tmm0..5 all 16 rows × 64 bytes (per call of amx_rows_bits, released at its end). */
void configure_tiles() {
  struct alignas(64) {
    uint8_t palette = 1, start_row = 0, reserved[14] = {};
    uint16_t colsb[16] = {};
    uint8_t rows[16] = {};
  } cfg;
  for (int i = 0; i < 6; i++) {
    cfg.colsb[i] = 64;
    cfg.rows[i] = 16;
  }
  _tile_loadconfig(&cfg);
}

bool amx_fits(const Linear& w, int64_t n) { return w.kind == 0 && n >= kTok && w.group % 64 == 0; }

/** Group g's integer sums of 16 tokens (x0: the first one's activations) × the 16 rows of block b, to
 * sums[t][i] (tiles C, A, B: tmm0..2 for P = 0, tmm3..5 for P = 1, so that two groups' chains overlap). */
template <int P>
inline void amx_group(const Linear& w, const gemm512::Block& b, const int8_t* x0, int64_t xstride, int64_t g,
                      int32_t* sums) {
  const int64_t c0 = g * w.group, chunks = (std::min(w.group, w.cols - c0) + 63) / 64;
  // values past cols: codes unpack as zeros (the activation bytes there are the row's padding). The tile
  // intrinsics take literal tile numbers.
#define APL_AMX_GROUP(C, A, B)                                   \
  _tile_zero(C);                                                 \
  for (int64_t j = 0; j < chunks; j++) {                         \
    _tile_loadd(A, x0 + c0 + 64 * j, xstride);                   \
    _tile_loadd(B, b.codes.data() + (c0 / 4 + 16 * j) * 64, 64); \
    _tile_dpbsud(C, A, B);                                       \
  }                                                              \
  _tile_stored(C, sums, 64);
  if (P == 0) {
    APL_AMX_GROUP(0, 1, 2)
  } else {
    APL_AMX_GROUP(3, 4, 5)
  }
#undef APL_AMX_GROUP
}

/** The 16 rows of block b × tokens [t0, t0 + 16): each group's integer sums on the tile unit, then its float
 * combine (the sums stay in L1). */
void amx_tile(const Linear& w, const gemm512::Block& b, int64_t r0, int64_t r1, const ActQ& a, int64_t t0,
              float* y, int64_t ystride) {
  const int64_t gpr = w.gpr();
  alignas(64) int32_t sums[4][256];
  const int8_t* x0 = a.xq_of(t0);
  // the activation sums as float (the same conversion as the reference's, 16 at a time)
  thread_local std::vector<float> xsf;
  if ((int64_t)xsf.size() < kTok * gpr) xsf.resize((size_t)(kTok * gpr));
  const float* dx[kTok];
  const float* xs[kTok];
  for (int t = 0; t < kTok; t++) {
    dx[t] = a.dx_of(t0 + t);
    const int32_t* xi = a.xsum_of(t0 + t);
    float* xf = xsf.data() + t * gpr;
    for (int64_t g = 0; g < gpr; g += 16) {
      const __mmask16 m = g + 16 <= gpr ? (__mmask16)0xffff : (__mmask16)((1u << (gpr - g)) - 1);
      _mm512_mask_storeu_ps(xf + g, m, _mm512_cvtepi32_ps(_mm512_maskz_loadu_epi32(m, xi + g)));
    }
    xs[t] = xf;
  }
  __m512 lane[8][kTok];
  for (int k = 0; k < 8; k++) {
    __m512 acc[kTok];
    for (int t = 0; t < kTok; t++) acc[t] = _mm512_setzero_ps();
    // the groups of lane class k: g = k + 8i; group i + 2's sums are computed (tile set i % 2, buffer
    // (i + 2) % 4) before group i's are combined, so a buffer is read two groups after its TILESTORED
    const int64_t count = k < gpr ? (gpr - k + 7) / 8 : 0;
    for (int64_t i = 0; i < std::min<int64_t>(2, count); i++) {
      if (i & 1)
        amx_group<1>(w, b, x0, a.xstride, k + 8 * i, sums[i]);
      else
        amx_group<0>(w, b, x0, a.xstride, k + 8 * i, sums[i]);
    }
    for (int64_t i = 0; i < count; i++) {
      if (i + 2 < count) {
        if (i & 1)
          amx_group<1>(w, b, x0, a.xstride, k + 8 * (i + 2), sums[(i + 2) % 4]);
        else
          amx_group<0>(w, b, x0, a.xstride, k + 8 * (i + 2), sums[(i + 2) % 4]);
      }
      __m512i is[kTok];
      for (int t = 0; t < kTok; t++) is[t] = _mm512_load_si512((const void*)(sums[i % 4] + t * 16));
      gemm512::combine<kTok, float>(b, k + 8 * i, dx, xs, is, acc);
    }
    for (int t = 0; t < kTok; t++) lane[k][t] = acc[t];
  }
  gemm512::store_lanes<kTok>(lane, r0, r1, t0, y, ystride);
}

template <int BITS>
void amx_rows_bits(const Linear& w, int64_t r0, int64_t r1, const ActQ& a, int64_t t0, int64_t t1, float* y,
                   int64_t ystride) {
  thread_local gemm512::Block b;
  configure_tiles();
  for (int64_t rb = r0; rb < r1; rb += gemm512::kRows) {
    const int64_t re = std::min(r1, rb + gemm512::kRows);
    gemm512::unpack<BITS>(w, rb, re, b);
    int64_t t = t0;
    for (; t + kTok <= t1; t += kTok) amx_tile(w, b, rb, re, a, t, y, ystride);
    // the last tokens (fewer than 16): avx512-gemm's tiles on the same block
    if (t < t1)
      gemm512::with_wpg<64, 128>(w.group, [&](auto wpg) {
        gemm512::tiles<decltype(wpg)::value>(w, b, rb, re, a, t, t1, y, ystride);
      });
  }
  // the thread leaves no tile state behind (no 8 KiB XSAVE area per context switch while it decodes)
  _tile_release();
}

/** Rows [r0, r1) × tokens [t0, t1) of a weight that amx_fits(); activations from gemm512::quantize_act. */
void amx_rows(const Linear& w, int64_t r0, int64_t r1, const ActQ& a, int64_t t0, int64_t t1, float* y,
              int64_t ystride) {
  with_bits(w.bits, [&](auto b) { amx_rows_bits<decltype(b)::value>(w, r0, r1, a, t0, t1, y, ystride); });
}

/** AMX where it fits, else avx512-gemm's prompt path (which takes every token count ≥ 8, any group of 4k). */
bool fits(const Linear& w, int64_t n) { return amx_fits(w, n) || gemm_kernel()->gemm->fits(w, n); }

void rows(const Linear& w, int64_t r0, int64_t r1, const ActQ& a, int64_t t0, int64_t t1, float* y,
          int64_t ystride) {
  if (amx_fits(w, t1 - t0 >= kTok ? kTok : 0)) return amx_rows(w, r0, r1, a, t0, t1, y, ystride);
  gemm_kernel()->gemm->rows(w, r0, r1, a, t0, t1, y, ystride);
}

}  // namespace

const Kernel* amx_kernel() {
  static const Gemm g{fits, gemm512::quantize_act, rows};
  static const Kernel k = [] {
    Kernel v = *gemm_kernel();  // decode, float weights, attention helpers: avx512-gemm's
    v.name = "avx512-amx";
    v.gemm = &g;
    return v;
  }();
  return &k;
}

// kquant weights: avx512-gemm's kernel under this variant's name (kq_kernel_for pairs kernels by name)
const KqKernel* kq_amx_kernel() {
  static const KqKernel k = [] {
    KqKernel v = *kq_gemm_kernel();
    v.name = "avx512-amx";
    return v;
  }();
  return &k;
}

}  // namespace infer
}  // namespace apl
#else
APL_NO_KERNEL(Kernel, amx_kernel)
APL_NO_KERNEL(KqKernel, kq_amx_kernel)
#endif
