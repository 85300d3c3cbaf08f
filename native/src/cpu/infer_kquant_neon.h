// NEON inference kernel for kquant weights (arm64), included by two translation units: infer_kquant_neon.cc
// (plain armv8-a, every arm64 CPU: vmlal_s8 products summed in int16) and infer_kquant_neon_dotprod.cc
// (compiled with -march=armv8.2-a+dotprod: vdotq_s32). kq_kernel_for (infer/kquant_linear.cc) pairs them with
// the groupwise `neon` and `neon-dotprod` kernels (infer_neon.h), so the dot-product one runs only where the
// CPU reports the extension. The includer defines APL_KQ_NEON_KERNEL_FN (the function that returns the
// kernel); the function returns nullptr when the kernel fails its self-check against the scalar reference
// (run once), so kq_kernel_for then falls back to the reference, as kq_select_kernel does for the convert
// kernel.
//
// Bit-exact with the scalar reference (infer/kquant_ref.h): integer sums are exact in any order, and the
// float32 combine is the reference's operations in its order, lane by lane (no FMA: -ffp-contract=off).
//
// The scheme is infer_kquant_wide2.h's (AVX2) on 128-bit vectors: 2- and 4-bit rows whose groups are 1–4
// whole 4-byte lanes of packed codes (G·bits a multiple of 32: both presets convert writes, 4-bit g24 and
// 2-bit g16). A block is 4 groups (16·L bytes of codes, L lanes a group); lane j·L + i of the block goes to
// dword j of vector A_i (one vqtbl{2,3,4}q_u8 over the block's loads; none at L = 1), so dword j of every A_i
// belongs to group j, and plane k of A_i ((A_i >> k·bits) & mask) holds, in byte 4j + m, the value of packed
// byte 4(jL + i) + m at plane k. The activations are stored in that order once per token (vector i·per + k,
// per = 8/bits). With the dot-product extension one vdotq_s32 per plane leaves the 4 groups' exact sums in
// the 4 dword lanes; without it vmlal_s8 / vmlal_high_s8 sum the products in int16 (at most 8 planes ·
// 15·127 = 15240 at 4 bits, 16 · 3·127 at 2) and one vpaddq_s16 + vpaddlq_s16 gives the 4 sums (≤ 30480:
// no overflow). Block b's 4 groups are the reference's lanes 4(b % 2) + j: two float32x4 accumulators.
//
// s and z of a block's 4 groups come from one 8-byte read of the code bit stream (4·(sbits + mbits) ≤ 64 bits
// starting at bit 0 or 4 of a byte: 4 only for an odd width, at most 15, so 4 + 60 ≤ 64; any width fits)
// shifted per 64-bit lane (vshlq_u64) and narrowed, then
// masked, converted and multiplied by the super-block's d and dmin (f16_to_f32 once per super-block): the
// reference's f32(d·sc), f32(dmin·mc). That needs the 4 groups in one super-block (groups per super-block a
// multiple of 4); other layouts decode s and z per row in scalar code. The last, partial block (fewer than 4
// groups in the row) is combined in scalar code (kq_combine_group), and the packed codes of a block that
// runs past the row are read from a zero-padded copy (their activations are zero). Decode (one token) runs
// two rows side by side on the packed codes, each activation vector loaded once for both; prompts unpack two
// rows' planes once and reuse them for every token of the tile, two tokens at a time (a 2 × 2 register tile:
// each plane and activation vector loaded once for two integer sums, each row's s and z once for both
// tokens; with the dot-product extension only). Other layouts (8 bits, groups that are not whole lanes of
// codes: 2-bit g24, g7) take the natural-order path of infer_kquant_neon_generic.h (rows unpacked to a byte a
// value, groups summed 16 values at a time).
#ifndef APL_KQ_NEON_KERNEL_FN
#error "define APL_KQ_NEON_KERNEL_FN before including infer_kquant_neon.h"
#endif
#include "../infer/kquant_linear.h"

#if defined(__aarch64__)
#include <arm_neon.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "../infer/kquant_ref.h"

namespace apl {
namespace infer {
// Internal linkage: the two files compile this header with different -march flags.
namespace {

// The block helpers are inlined into the row loops (GCC otherwise keeps the decode lambda out of line).
#define APL_KQN_INLINE inline __attribute__((always_inline))

#if defined(__ARM_FEATURE_DOTPROD)
constexpr const char* kKqNeonName = "neon-dotprod";
constexpr bool kKqnTile2 = true;  // prompts: 2 rows × 2 tokens (4 int32x4 sums)
#else
constexpr const char* kKqNeonName = "neon";
// 2 × 2 needs 8 int16x8 sums here: more instructions than token by token under qemu (0.57 against 0.53 per
// weight-token at 4 bits, 16 tokens), so the plain kernel keeps the one-token loop
constexpr bool kKqnTile2 = false;
#endif

// The block helpers (a private part of this header, see its first lines).
#include "infer_kquant_neon_blocks.h"
// The natural-order path for the other layouts (8 bits, groups that are not whole lanes).
#include "infer_kquant_neon_generic.h"

template <int BITS, int L>
void kqn_rows(const Linear& w, int64_t r0, int64_t r1, const ActQ& act, int64_t t0, int64_t t1, float* y,
              int64_t ystride) {
  using K = KqBlk<BITS, L>;
  const int64_t gpr = w.gpr(), nblk = (gpr + 3) / 4, full = gpr / 4, rb = w.row_bytes(), bbytes = 16 * L;
  const int64_t ublk = 16 * K::NV, qfull = rb / bbytes;  // blocks [0, qfull) lie inside the row
  const int rem = (int)(gpr % 4);
  const Gather gi(L);
  const KqnCodes c(w);
  thread_local KqnScratch sc;
  // a block past the row's packed codes: a zero-padded copy (its activations are zero)
  auto tails = [&](const uint8_t* qa, const uint8_t* qb) {
    if (qfull >= nblk) return;
    std::memset(sc.tail, 0, sizeof sc.tail);
    std::memcpy(sc.tail, qa + qfull * bbytes, (size_t)(rb - qfull * bbytes));
    std::memset(sc.tail2, 0, sizeof sc.tail2);
    std::memcpy(sc.tail2, qb + qfull * bbytes, (size_t)(rb - qfull * bbytes));
  };
  if (t1 - t0 == 1 && c.fast) {  // decode: two rows side by side on the packed codes
    const int8_t* x = act.xq_of(t0);
    const float* dx = act.dx_of(t0);
    const int32_t* xs = act.xsum_of(t0);
    for (int64_t r = r0; r < r1; r += 2) {
      const int64_t r2 = r + 1 < r1 ? r + 1 : r;  // an odd row count: the last row twice, written once
      const uint8_t* qa = w.q + r * rb;
      const uint8_t* qb = w.q + r2 * rb;
      const RowD da = kqn_row_d(w, c, r, 0), db = kqn_row_d(w, c, r2, 1);
      tails(qa, qb);
      // named accumulators (block b adds to lanes 4(b % 2) + j): blocks two at a time
      float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0, b0 = a0, b1 = a0;
      int32x4_t ia = vdupq_n_s32(0), ib = ia;
      float32x4_t sa = a0, za = a0, sb = a0, zb = a0;
      int64_t sup = 0, inb = 0;
      auto block = [&](int64_t b) __attribute__((always_inline)) {
        kqn_block_sz(c, da, b, sup, sa, za);
        kqn_block_sz(c, db, b, sup, sb, zb);
        if (++inb == c.bps) {
          inb = 0;
          sup++;
        }
        const bool in = b < qfull;
        K::isum_packed2(in ? qa + b * bbytes : sc.tail, in ? qb + b * bbytes : sc.tail2, gi, x + b * ublk, ia,
                        ib);
      };
      int64_t b = 0;
      for (; b + 2 <= full; b += 2) {
        block(b);
        a0 = kqn_combine(a0, ia, sa, za, dx + 4 * b, xs + 4 * b);
        b0 = kqn_combine(b0, ib, sb, zb, dx + 4 * b, xs + 4 * b);
        block(b + 1);
        a1 = kqn_combine(a1, ia, sa, za, dx + 4 * b + 4, xs + 4 * b + 4);
        b1 = kqn_combine(b1, ib, sb, zb, dx + 4 * b + 4, xs + 4 * b + 4);
      }
      if (b < full) {  // b is even
        block(b);
        a0 = kqn_combine(a0, ia, sa, za, dx + 4 * b, xs + 4 * b);
        b0 = kqn_combine(b0, ib, sb, zb, dx + 4 * b, xs + 4 * b);
        b++;
      }
      if (b < nblk) block(b);  // the partial block: combined in kqn_finish
      y[t0 * ystride + r] = kqn_finish(a0, a1, full, rem, ia, sa, za, dx, xs);
      if (r2 != r) y[t0 * ystride + r2] = kqn_finish(b0, b1, full, rem, ib, sb, zb, dx, xs);
    }
    return;
  }
  // prompts (and rows whose s and z need the scalar decode): two rows at a time, their planes unpacked once
  // for every token, tokens two at a time (then the last one alone)
  if ((int64_t)sc.s.size() < 2 * nblk * 4) {
    sc.s.resize((size_t)(2 * nblk * 4));
    sc.z.resize((size_t)(2 * nblk * 4));
  }
  if ((int64_t)sc.u.size() < 2 * nblk * ublk) sc.u.resize((size_t)(2 * nblk * ublk));
  float *s = sc.s.data(), *z = sc.z.data(), *s2 = s + nblk * 4, *z2 = z + nblk * 4;
  uint8_t *ua = sc.u.data(), *ub = ua + nblk * ublk;
  for (int64_t r = r0; r < r1; r += 2) {
    const int64_t r2 = r + 1 < r1 ? r + 1 : r;
    const uint8_t* qa = w.q + r * rb;
    const uint8_t* qb = w.q + r2 * rb;
    kqn_decode_sz(w, c, r, nblk, s, z);
    kqn_decode_sz(w, c, r2, nblk, s2, z2);
    tails(qa, qb);
    for (int64_t b = 0; b < nblk; b++) {
      K::unpack(b < qfull ? qa + b * bbytes : sc.tail, gi, ua + b * ublk);
      K::unpack(b < qfull ? qb + b * bbytes : sc.tail2, gi, ub + b * ublk);
    }
    const int64_t lb = full * 4;  // the partial block's s and z (zero past the row when rem is 0: unused)
    const float32x4_t sla = vld1q_f32(s + (rem ? lb : 0)), zla = vld1q_f32(z + (rem ? lb : 0));
    const float32x4_t slb = vld1q_f32(s2 + (rem ? lb : 0)), zlb = vld1q_f32(z2 + (rem ? lb : 0));
    int64_t t = t0;
    for (; kKqnTile2 && t + 2 <= t1;
         t += 2) {  // 2 rows × 2 tokens: each plane and activation vector loaded once
      const int8_t *x = act.xq_of(t), *x2 = act.xq_of(t + 1);
      const float *dx = act.dx_of(t), *dx2 = act.dx_of(t + 1);
      const int32_t *xs = act.xsum_of(t), *xs2 = act.xsum_of(t + 1);
      float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0, b0 = a0, b1 = a0, c0 = a0, c1 = a0, e0 = a0, e1 = a0;
      int32x4_t ia = vdupq_n_s32(0), ib = ia, ic = ia, ie = ia;
      auto comb = [&](int64_t b, float32x4_t & pa, float32x4_t & pb, float32x4_t & pc, float32x4_t & pe)
          __attribute__((always_inline)) {
        K::isum_unpacked22(ua + b * ublk, ub + b * ublk, x + b * ublk, x2 + b * ublk, ia, ib, ic, ie);
        const float32x4_t sa = vld1q_f32(s + 4 * b), za = vld1q_f32(z + 4 * b);
        const float32x4_t sb = vld1q_f32(s2 + 4 * b), zb = vld1q_f32(z2 + 4 * b);
        pa = kqn_combine(pa, ia, sa, za, dx + 4 * b, xs + 4 * b);
        pb = kqn_combine(pb, ib, sb, zb, dx + 4 * b, xs + 4 * b);
        pc = kqn_combine(pc, ic, sa, za, dx2 + 4 * b, xs2 + 4 * b);
        pe = kqn_combine(pe, ie, sb, zb, dx2 + 4 * b, xs2 + 4 * b);
      };
      int64_t b = 0;
      for (; b + 2 <= full; b += 2) {
        comb(b, a0, b0, c0, e0);
        comb(b + 1, a1, b1, c1, e1);
      }
      if (b < full) comb(b++, a0, b0, c0, e0);  // b is even
      if (b < nblk)
        K::isum_unpacked22(ua + b * ublk, ub + b * ublk, x + b * ublk, x2 + b * ublk, ia, ib, ic, ie);
      y[t * ystride + r] = kqn_finish(a0, a1, full, rem, ia, sla, zla, dx, xs);
      y[(t + 1) * ystride + r] = kqn_finish(c0, c1, full, rem, ic, sla, zla, dx2, xs2);
      if (r2 != r) {
        y[t * ystride + r2] = kqn_finish(b0, b1, full, rem, ib, slb, zlb, dx, xs);
        y[(t + 1) * ystride + r2] = kqn_finish(e0, e1, full, rem, ie, slb, zlb, dx2, xs2);
      }
    }
    for (; t < t1; t++) {  // the last token of an odd count
      const int8_t* x = act.xq_of(t);
      const float* dx = act.dx_of(t);
      const int32_t* xs = act.xsum_of(t);
      float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0, b0 = a0, b1 = a0;
      int32x4_t ia = vdupq_n_s32(0), ib = ia;
      auto comb = [&](int64_t b, float32x4_t & pa, float32x4_t & pb) __attribute__((always_inline)) {
        K::isum_unpacked2(ua + b * ublk, ub + b * ublk, x + b * ublk, ia, ib);
        pa = kqn_combine(pa, ia, vld1q_f32(s + 4 * b), vld1q_f32(z + 4 * b), dx + 4 * b, xs + 4 * b);
        pb = kqn_combine(pb, ib, vld1q_f32(s2 + 4 * b), vld1q_f32(z2 + 4 * b), dx + 4 * b, xs + 4 * b);
      };
      int64_t b = 0;
      for (; b + 2 <= full; b += 2) {
        comb(b, a0, b0);
        comb(b + 1, a1, b1);
      }
      if (b < full) comb(b++, a0, b0);  // b is even
      if (b < nblk) K::isum_unpacked2(ua + b * ublk, ub + b * ublk, x + b * ublk, ia, ib);
      y[t * ystride + r] = kqn_finish(a0, a1, full, rem, ia, sla, zla, dx, xs);
      if (r2 != r) y[t * ystride + r2] = kqn_finish(b0, b1, full, rem, ib, slb, zlb, dx, xs);
    }
  }
}

void qrows(const Linear& w, int64_t r0, int64_t r1, const ActQ& a, int64_t t0, int64_t t1, float* y,
           int64_t ystride) {
  const int L = kqn_lanes(w.bits, w.group);
  if (w.bits == 4) {
    if (L == 1) return kqn_rows<4, 1>(w, r0, r1, a, t0, t1, y, ystride);
    if (L == 2) return kqn_rows<4, 2>(w, r0, r1, a, t0, t1, y, ystride);
    if (L == 3) return kqn_rows<4, 3>(w, r0, r1, a, t0, t1, y, ystride);
    if (L == 4) return kqn_rows<4, 4>(w, r0, r1, a, t0, t1, y, ystride);
  } else if (w.bits == 2) {
    if (L == 1) return kqn_rows<2, 1>(w, r0, r1, a, t0, t1, y, ystride);
    if (L == 2) return kqn_rows<2, 2>(w, r0, r1, a, t0, t1, y, ystride);
    if (L == 3) return kqn_rows<2, 3>(w, r0, r1, a, t0, t1, y, ystride);
    if (L == 4) return kqn_rows<2, 4>(w, r0, r1, a, t0, t1, y, ystride);
  }
  kqg_rows(w, r0, r1, a, t0, t1, y, ystride);
}

/**
 * The self-check run once before the kernel is handed out: both presets (and a layout whose s and z take the
 * scalar decode) on odd shapes (partial last blocks, a super-block change, odd row counts), 1 and 3 tokens,
 * bit for bit against the scalar kquant kernel.
 */
bool kqn_self_check(const KqKernel& k) {
  struct Case {
    int bits, group, super, sbits, mbits;
    int64_t rows, cols;
  };
  static const Case cases[] = {
      {4, 24, 1536, 5, 6, 3, 1600},
      {2, 16, 256, 4, 4, 5, 300},
      {4, 32, 96, 6, 6, 3, 203},
      // the natural-order path: 8 bits (short last group), groups that are not whole lanes
      {8, 24, 96, 5, 6, 3, 203},
      {2, 24, 96, 4, 5, 2, 150},
      {4, 7, 63, 5, 3, 3, 75}};
  CheckRng rnd{12345u};
  for (const Case& cs : cases) {
    Linear w;
    w.kind = 2;
    w.rows = cs.rows;
    w.cols = cs.cols;
    w.bits = cs.bits;
    w.group = cs.group;
    w.kq_group = cs.group;
    w.kq_super = cs.super;
    w.kq_sbits = cs.sbits;
    w.kq_mbits = cs.mbits;
    std::vector<uint8_t> q((size_t)(w.rows * w.row_bytes())), codes((size_t)(w.rows * kq_codes_row_bytes(w)));
    std::vector<uint8_t> d((size_t)(w.rows * kq_supers(w) * 2)), dm(d.size());
    rnd.fill(q);
    rnd.fill(codes);
    for (size_t i = 0; i < d.size(); i += 2) {
      const uint16_t h = (uint16_t)(0x1c00 + rnd() % 0x0800), hm = (uint16_t)(0x2000 + rnd() % 0x0800);
      std::memcpy(&d[i], &h, 2);
      std::memcpy(&dm[i], &hm, 2);
    }
    w.q = q.data();
    w.codes = codes.data();
    w.kd = d.data();
    w.kdmin = dm.data();
    for (int64_t n : {1, 3}) {
      const std::vector<float> x = rnd.acts(n * w.cols);
      const KqKernel* ks[2] = {&kq_scalar_kernel(), &k};
      std::vector<float> y[2];
      for (int i = 0; i < 2; i++) {
        ActQ act;
        act.resize(n, w.cols, w.group);
        act.xstride = (std::max(w.cols, kq_blocked_len(w.cols, w.group)) + 63) / 64 * 64;
        act.xq.assign((size_t)(n * act.xstride + 64), 0);
        for (int64_t t = 0; t < n; t++)
          ks[i]->quantize_act(x.data() + t * w.cols, w.cols, w.group, w.bits, act.xq_at(t),
                              act.dx.data() + t * act.gstride, act.xsum.data() + t * act.gstride);
        y[i].assign((size_t)(n * w.rows), 0.0f);
        ks[i]->qrows(w, 0, w.rows, act, 0, n, y[i].data(), w.rows);
      }
      if (std::memcmp(y[0].data(), y[1].data(), y[0].size() * sizeof(float)) != 0) return false;
    }
  }
  return true;
}

}  // namespace

const KqKernel* APL_KQ_NEON_KERNEL_FN() {
  static const KqKernel k{kKqNeonName, quantize_act, qrows};
  static const bool ok = kqn_self_check(k);
  return ok ? &k : nullptr;
}

}  // namespace infer
}  // namespace apl
#else
APL_NO_KERNEL(KqKernel, APL_KQ_NEON_KERNEL_FN)
#endif
