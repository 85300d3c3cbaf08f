// The NEON kquant path for the layouts the block kernel does not take (infer_kquant_neon.h: kqn_lanes == 0):
// 8-bit rows of any group size, and 2- or 4-bit rows whose groups are not 1–4 whole 4-byte lanes of codes
// (2-bit g24, 4-bit g7, g40, …). Activations stay in natural order (the reference's quantize_act). A private
// part of infer_kquant_neon.h, included by it alone inside its anonymous namespace (after the block helpers).
//
// A row is unpacked once per call into one byte a value, in natural order (4 bits: vst2q_u8 of the low and
// high nibbles; 2 bits: vst4q_u8 of the four planes; 8 bits: the codes − 128 as int8, and 128·xsum added back
// to each group's sum, exact in int32), zero padded by 16 bytes. A group [lo, hi) is summed 16 values at a
// time from lo, its last chunk's activations masked to the group (lanes ≥ hi − lo of the chunk are zeroed, so
// the neighbouring group's values and the padding add nothing): vdotq_s32 with the dot-product extension,
// vmull_s8 + vpadalq_s16 without (exact for 8-bit codes too: no int16 sums). Four groups' int32x4 partial
// sums are reduced by two pairwise-add levels into one vector, lane j = group 4b + j, and combined exactly as
// the block kernel's (kqn_combine: the reference's float32 operations, block b → lanes 4(b % 2) + j; the
// last partial block in scalar code, kqn_finish): bit-exact with kq_qdot_ref. s and z come from
// kqn_decode_sz (the block decoder where groups per super-block are a multiple of 4, else kq_row_sz). Rows
// one at a time; a prompt tile reuses the unpacked row for every token, two tokens at a time: the row loop is
// neon_natural.h's nat_rows, the groupwise path's too; this file gives it kquant's s, z and combine.

#include "neon_natural.h"

/** nat_rows' parameters for kquant rows: s and z decoded once a row; kquant's combine and finish. */
struct KqnNat {
  const Linear& w;
  const KqnCodes& c;  // a reference: p's address must not reach kqn_decode_sz (p stays in registers)
  const int64_t nblk, full;
  const int rem;
  float *const s, *const z;
  float32x4_t sl, zl;  // the partial block's s and z
  KqnNat(const Linear& lw, const KqnCodes& lc, int64_t gpr, float* sp, float* zp)
      : w(lw), c(lc), nblk((gpr + 3) / 4), full(gpr / 4), rem((int)(gpr % 4)), s(sp), z(zp) {}
  APL_NAT_INLINE void row(int64_t r) {
    kqn_decode_sz(w, c, r, nblk, s, z);
    sl = vld1q_f32(s + (rem ? full * 4 : 0));
    zl = vld1q_f32(z + (rem ? full * 4 : 0));
  }
  APL_NAT_INLINE void sz(int64_t b, float32x4_t& sb, float32x4_t& zb) const {
    sb = vld1q_f32(s + 4 * b);
    zb = vld1q_f32(z + 4 * b);
  }
  static APL_NAT_INLINE float32x4_t combine(float32x4_t acc, int32x4_t isum, float32x4_t sb, float32x4_t zb,
                                            const float* dx, const int32_t* xs) {
    return kqn_combine(acc, isum, sb, zb, dx, xs);
  }
  APL_NAT_INLINE float finish(float32x4_t a0, float32x4_t a1, int32x4_t is, const float* dx,
                              const int32_t* xs) const {
    return kqn_finish(a0, a1, full, rem, is, sl, zl, dx, xs);
  }
};

void kqg_rows(const Linear& w, int64_t r0, int64_t r1, const ActQ& act, int64_t t0, int64_t t1, float* y,
              int64_t ystride) {
  const int64_t nblk = (w.gpr() + 3) / 4;
  thread_local std::vector<float> sv, zv;
  if ((int64_t)sv.size() < nblk * 4) {
    sv.resize((size_t)(nblk * 4));
    zv.resize((size_t)(nblk * 4));
  }
  const KqnCodes c(w);
  // w.gpr() again after the calls: the same value as nat_rows' gpr for the compiler (one register, not two)
  KqnNat p(w, c, w.gpr(), sv.data(), zv.data());
  nat_rows(p, w, r0, r1, act, t0, t1, y, ystride);
}
