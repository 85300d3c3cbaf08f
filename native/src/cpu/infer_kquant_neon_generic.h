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
// one at a time; a prompt tile reuses the unpacked row for every token, two tokens at a time.

#include "neon_natural.h"

void kqg_rows(const Linear& w, int64_t r0, int64_t r1, const ActQ& act, int64_t t0, int64_t t1, float* y,
              int64_t ystride) {
  const int64_t gpr = w.gpr(), nblk = (gpr + 3) / 4, full = gpr / 4, lb = full * 4;
  const int rem = (int)(gpr % 4);
  const KqnCodes c(w);
  thread_local std::vector<float> sv, zv;
  thread_local std::vector<int8_t> uv;
  if ((int64_t)sv.size() < nblk * 4) {
    sv.resize((size_t)(nblk * 4));
    zv.resize((size_t)(nblk * 4));
  }
  if ((int64_t)uv.size() < w.cols + 16) uv.resize((size_t)(w.cols + 16));
  float *s = sv.data(), *z = zv.data();
  int8_t* u = uv.data();
  const uint8x16_t keep = nat_keep(w.group), keep_last = nat_keep(w.cols - (gpr - 1) * w.group);
  for (int64_t r = r0; r < r1; r++) {
    kqn_decode_sz(w, c, r, nblk, s, z);
    nat_unpack(w.q + r * w.row_bytes(), w.cols, w.bits, u);
    const float32x4_t sl = vld1q_f32(s + (rem ? lb : 0)), zl = vld1q_f32(z + (rem ? lb : 0));
    int64_t t = t0;
    for (; t + 2 <= t1; t += 2) {  // two tokens: each row vector loaded once per chunk pair
      const int8_t *x = act.xq_of(t), *x2 = act.xq_of(t + 1);
      const float *dx = act.dx_of(t), *dx2 = act.dx_of(t + 1);
      const int32_t *xs = act.xsum_of(t), *xs2 = act.xsum_of(t + 1);
      float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0, c0 = a0, c1 = a0;
      int32x4_t ia = vdupq_n_s32(0), ic = ia;
      for (int64_t b = 0; b < nblk; b++) {
        ia = nat_block(w.bits, w.group, w.cols, gpr, u, x, xs, b, keep, keep_last);
        ic = nat_block(w.bits, w.group, w.cols, gpr, u, x2, xs2, b, keep, keep_last);
        if (b >= full) break;
        const float32x4_t sb = vld1q_f32(s + 4 * b), zb = vld1q_f32(z + 4 * b);
        if (b % 2 == 0) {
          a0 = kqn_combine(a0, ia, sb, zb, dx + 4 * b, xs + 4 * b);
          c0 = kqn_combine(c0, ic, sb, zb, dx2 + 4 * b, xs2 + 4 * b);
        } else {
          a1 = kqn_combine(a1, ia, sb, zb, dx + 4 * b, xs + 4 * b);
          c1 = kqn_combine(c1, ic, sb, zb, dx2 + 4 * b, xs2 + 4 * b);
        }
      }
      y[t * ystride + r] = kqn_finish(a0, a1, full, rem, ia, sl, zl, dx, xs);
      y[(t + 1) * ystride + r] = kqn_finish(c0, c1, full, rem, ic, sl, zl, dx2, xs2);
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
        if (b % 2 == 0)
          a0 = kqn_combine(a0, ia, vld1q_f32(s + 4 * b), vld1q_f32(z + 4 * b), dx + 4 * b, xs + 4 * b);
        else
          a1 = kqn_combine(a1, ia, vld1q_f32(s + 4 * b), vld1q_f32(z + 4 * b), dx + 4 * b, xs + 4 * b);
      }
      y[t * ystride + r] = kqn_finish(a0, a1, full, rem, ia, sl, zl, dx, xs);
    }
  }
}
