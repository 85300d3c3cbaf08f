// NEON variant of the two-level-scale kernels (kquant.h), arm64: one group per float32 lane, as the AVX2
// variant (kquant_avx2.cc) with four lanes. A super-block is transposed into xt[i·ngp + j] (element i of
// group j; groups padded to a multiple of 4 with zeros and masked out), so every pass runs the reference's
// sequential per-group sums four groups at a time, bit for bit: the same float32 operations in the same
// order, no fused multiply-add (compiled with -ffp-contract=off; vmulq/vaddq are separate instructions),
// min/max as the reference's compares (so even the sign of a zero is the reference's). The metrics are the
// reference's too, to the last bit: the products are formed four elements at a time, the float64 sums run in
// element order. Also the fast dequantizer. NEON is baseline on aarch64: no -march flag; elsewhere a stub.
#include "kquant_kernels.h"

#if defined(__aarch64__)
#include <arm_neon.h>
#include <string.h>

namespace apl {

namespace {

constexpr int kMaxT = kKqMaxElems + 4 * kKqMaxGroup;  // transposed super-block, groups padded to 4
static_assert(kKqMaxGroups % 4 == 0, "groups padded to 4 fit the per-group arrays");

/** Four bytes (q values or codes) as float32 lanes. */
inline float32x4_t u8x4_f32(const uint8_t* p) {
  uint32_t w;
  memcpy(&w, p, 4);
  uint16x8_t h = vmovl_u8(vreinterpret_u8_u32(vdup_n_u32(w)));
  return vcvtq_f32_u32(vmovl_u16(vget_low_u16(h)));
}

/** Four float32 lanes holding integers 0..255 as four bytes. */
inline void f32_u8x4(float32x4_t q, uint8_t* out) {
  uint16x4_t h = vmovn_u32(vcvtq_u32_f32(q));
  uint8x8_t b = vmovn_u16(vcombine_u16(h, h));
  vst1_lane_u32(reinterpret_cast<uint32_t*>(out), vreinterpret_u32_u8(b), 0);
}

struct KqNeonOps {
  static const float* load_row(const QuantJob& j, int64_t r, float* dst) {
    if (j.dtype == kF32) return load_row_scalar(j, r, dst);
    const uint16_t* p = reinterpret_cast<const uint16_t*>(j.data + (size_t)(r * j.cols) * 2);
    int64_t i = 0, n = j.cols;
    if (j.dtype == kF16) {
      // vcvt_f32_f16 is exact for every finite and infinite half (subnormals included); a NaN's payload may
      // differ from f16_to_f32's, but a NaN row is refused by find_nonfinite before any value is used.
      for (; i + 8 <= n; i += 8) {
        uint16x8_t h;
        memcpy(&h, p + i, 16);
        vst1q_f32(dst + i, vcvt_f32_f16(vreinterpret_f16_u16(vget_low_u16(h))));
        vst1q_f32(dst + i + 4, vcvt_f32_f16(vreinterpret_f16_u16(vget_high_u16(h))));
      }
      for (; i < n; i++) dst[i] = f16_to_f32(p[i]);
    } else {
      for (; i + 8 <= n; i += 8) {
        uint16x8_t h;
        memcpy(&h, p + i, 16);
        vst1q_f32(dst + i, vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(h), 16)));
        vst1q_f32(dst + i + 4, vreinterpretq_f32_u32(vshll_n_u16(vget_high_u16(h), 16)));
      }
      for (; i < n; i++) dst[i] = bf16_to_f32(p[i]);
    }
    return dst;
  }

  static int64_t find_nonfinite(const float* x, int64_t n) {
    const uint32x4_t e = vdupq_n_u32(0x7f800000u);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
      uint32x4_t a = vceqq_u32(vandq_u32(vreinterpretq_u32_f32(vld1q_f32(x + i)), e), e);
      uint32x4_t b = vceqq_u32(vandq_u32(vreinterpretq_u32_f32(vld1q_f32(x + i + 4)), e), e);
      uint32x4_t c = vceqq_u32(vandq_u32(vreinterpretq_u32_f32(vld1q_f32(x + i + 8)), e), e);
      uint32x4_t d = vceqq_u32(vandq_u32(vreinterpretq_u32_f32(vld1q_f32(x + i + 12)), e), e);
      if (vmaxvq_u32(vorrq_u32(vorrq_u32(a, b), vorrq_u32(c, d)))) break;
    }
    int64_t k = find_nonfinite_scalar(x + i, n - i);
    return k >= 0 ? i + k : -1;
  }

  static void pack(const uint8_t* qv, int64_t cols, int bits, uint8_t* out) {
    int64_t i = 0;
    if (bits == 4) {
      for (; i + 16 <= cols; i += 16) {
        uint8x8x2_t v = vld2_u8(qv + i);  // even, odd values
        vst1_u8(out + i / 2, vorr_u8(v.val[0], vshl_n_u8(v.val[1], 4)));
      }
    } else if (bits == 2) {
      for (; i + 32 <= cols; i += 32) {
        uint8x8x4_t v = vld4_u8(qv + i);
        uint8x8_t b = vorr_u8(vorr_u8(v.val[0], vshl_n_u8(v.val[1], 2)),
                              vorr_u8(vshl_n_u8(v.val[2], 4), vshl_n_u8(v.val[3], 6)));
        vst1_u8(out + i / 4, b);
      }
    }
    // The rest (and 8 bits) as in the reference; i is a multiple of 16 values, so whole bytes.
    pack_row(qv + i, cols - i, bits, out + i * bits / 8);
  }

  /**
   * Metrics of a super-block, the reference's to the last bit: w = f32(f32(s·q) − z) four at a time, the
   * float64 products two at a time, each sum in element order (as MetricsAcc::add); the maximum is
   * order-free.
   */
  static void metrics(const float* x, int n, int G, const uint8_t* qv, const uint8_t* sc, const uint8_t* mc,
                      float d, float dm, MetricsAcc* m) {
    double sdd = m->sdd, sxx = m->sxx, sww = m->sww, sxw = m->sxw;
    float64x2_t mx = vdupq_n_f64(0.0);
    for (int g0 = 0; g0 < n; g0 += G) {
      int len = n - g0 < G ? n - g0 : G;
      float s = d * (float)sc[g0 / G];
      float z = dm * (float)mc[g0 / G];
      const float32x4_t vs = vdupq_n_f32(s), vz = vdupq_n_f32(z);
      int i = 0;
      for (; i + 4 <= len; i += 4) {
        float32x4_t w = vsubq_f32(vmulq_f32(vs, u8x4_f32(qv + g0 + i)), vz);
        float32x4_t xv = vld1q_f32(x + g0 + i);
        float64x2_t xd[2] = {vcvt_f64_f32(vget_low_f32(xv)), vcvt_high_f64_f32(xv)};
        float64x2_t wd[2] = {vcvt_f64_f32(vget_low_f32(w)), vcvt_high_f64_f32(w)};
        for (int h = 0; h < 2; h++) {
          float64x2_t e = vsubq_f64(xd[h], wd[h]);
          float64x2_t ee = vmulq_f64(e, e), xx = vmulq_f64(xd[h], xd[h]), ww = vmulq_f64(wd[h], wd[h]),
                      xw = vmulq_f64(xd[h], wd[h]);
          mx = vmaxq_f64(mx, vabsq_f64(e));
          sdd += vgetq_lane_f64(ee, 0);
          sxx += vgetq_lane_f64(xx, 0);
          sww += vgetq_lane_f64(ww, 0);
          sxw += vgetq_lane_f64(xw, 0);
          sdd += vgetq_lane_f64(ee, 1);
          sxx += vgetq_lane_f64(xx, 1);
          sww += vgetq_lane_f64(ww, 1);
          sxw += vgetq_lane_f64(xw, 1);
        }
      }
      m->sdd = sdd;
      m->sxx = sxx;
      m->sww = sww;
      m->sxw = sxw;
      for (; i < len; i++) m->add(x[g0 + i], kq_value(d, dm, sc[g0 / G], mc[g0 / G], qv[g0 + i]));
      sdd = m->sdd;
      sxx = m->sxx;
      sww = m->sww;
      sxw = m->sxw;
    }
    double a = vmaxvq_f64(mx);
    if (a > m->max_abs) m->max_abs = a;
  }

  // The per-group float64 steps (a few per group, against passes over every element) are the reference's.
  static void fit_inv_off(int ng, const double* ca, const double* cb, bool* alive, float* inv, float* off) {
    kq_fit_inv_off_ref(ng, ca, cb, alive, inv, off);
  }
  static void als(int ng, const double* dn, const float* sx, const float* sxx, const float* sq,
                  const float* sqq, const float* sqx, bool* alive, double* ca, double* cb, double* ce) {
    kq_als_ref(ng, dn, sx, sxx, sq, sqq, sqx, alive, ca, cb, ce);
  }
  static bool search(int ng, const double* dn, float d, float dm, int smax, int mmax, const float* sx,
                     const float* sq, const float* sqq, const float* sqx, uint8_t* sc, uint8_t* mc) {
    return kq_search_ref(ng, dn, d, dm, smax, mmax, sx, sq, sqq, sqx, sc, mc);
  }

  int n = 0, G = 0, ng = 0, ngp = 0;
  bool full = false;         // every group has G elements and ng % 4 == 0: no masks
  const float* x = nullptr;  // the super-block as given
  float* xt;
  float* xp;  // a partial super-block padded with zeros
  alignas(16) int32_t lens[kKqMaxGroups + 4];

  KqNeonOps() {
    thread_local float* bx = nullptr;
    thread_local float* bp = nullptr;
    if (!bx) {
      bx = static_cast<float*>(aligned_alloc(16, sizeof(float) * kMaxT));
      bp = static_cast<float*>(aligned_alloc(16, sizeof(float) * kMaxT));
      if (!bx || !bp) throw std::bad_alloc();
    }
    xt = bx;
    xp = bp;
  }
  int len(int j) const { return lens[j]; }

  void load(const float* xs, int nn, int g) {
    x = xs;
    const float* src = xs;
    n = nn;
    G = g;
    ng = (nn + g - 1) / g;
    ngp = (ng + 3) & ~3;
    full = nn == ng * g && ng == ngp;
    for (int j = 0; j < ngp; j++) lens[j] = j < ng ? (n - j * G < G ? n - j * G : G) : 0;
    if ((G & 3) == 0) {
      if (!full) {
        memcpy(xp, xs, sizeof(float) * (size_t)n);
        memset(xp + n, 0, sizeof(float) * (size_t)(ngp * G - n));
        src = xp;
      }
      // 4×4 block transposes: rows = 4 groups, columns = 4 elements.
      for (int jb = 0; jb < ngp; jb += 4)
        for (int ib = 0; ib < G; ib += 4) {
          float32x4_t r0 = vld1q_f32(src + jb * G + ib), r1 = vld1q_f32(src + (jb + 1) * G + ib),
                      r2 = vld1q_f32(src + (jb + 2) * G + ib), r3 = vld1q_f32(src + (jb + 3) * G + ib);
          float64x2_t t0 = vreinterpretq_f64_f32(vtrn1q_f32(r0, r1)),
                      t1 = vreinterpretq_f64_f32(vtrn2q_f32(r0, r1));
          float64x2_t t2 = vreinterpretq_f64_f32(vtrn1q_f32(r2, r3)),
                      t3 = vreinterpretq_f64_f32(vtrn2q_f32(r2, r3));
          vst1q_f32(xt + ib * ngp + jb, vreinterpretq_f32_f64(vtrn1q_f64(t0, t2)));
          vst1q_f32(xt + (ib + 1) * ngp + jb, vreinterpretq_f32_f64(vtrn1q_f64(t1, t3)));
          vst1q_f32(xt + (ib + 2) * ngp + jb, vreinterpretq_f32_f64(vtrn2q_f64(t0, t2)));
          vst1q_f32(xt + (ib + 3) * ngp + jb, vreinterpretq_f32_f64(vtrn2q_f64(t1, t3)));
        }
      return;
    }
    for (int j = 0; j < ngp; j++)
      for (int i = 0; i < G; i++) xt[i * ngp + j] = i < lens[j] ? xs[j * G + i] : 0.0f;
  }

  /** Lanes of groups c..c+3 that hold an element i. */
  uint32x4_t mask(int c, int i) const { return vcgtq_s32(vld1q_s32(lens + c), vdupq_n_s32(i)); }

  /** min, max, Σx, Σx² of K chunks of four groups from chunk c (the reference's compares and order). */
  template <int K, bool Full>
  void stats_chunks(int c, float* mn, float* mx, float* sx, float* sxx) const {
    float32x4_t lo[K], hi[K], s1[K], s2[K];
#pragma GCC unroll 4
    for (int k = 0; k < K; k++) {
      lo[k] = hi[k] = vld1q_f32(xt + c + 4 * k);
      s1[k] = s2[k] = vdupq_n_f32(0.0f);
    }
    const float* px = xt + c;
    for (int i = 0; i < G; i++, px += ngp) {
#pragma GCC unroll 4
      for (int k = 0; k < K; k++) {
        float32x4_t v = vld1q_f32(px + 4 * k);
        // if (t < a) a = t; if (t > b) b = t; (vminq/vmaxq would order −0 below +0, the reference does not)
        uint32x4_t lt = vcltq_f32(v, lo[k]), gt = vcgtq_f32(v, hi[k]);
        float32x4_t n1 = vaddq_f32(s1[k], v), n2 = vaddq_f32(s2[k], vmulq_f32(v, v));
        if (!Full) {
          uint32x4_t m = mask(c + 4 * k, i);
          lt = vandq_u32(lt, m);
          gt = vandq_u32(gt, m);
          n1 = vbslq_f32(m, n1, s1[k]);
          n2 = vbslq_f32(m, n2, s2[k]);
        }
        lo[k] = vbslq_f32(lt, v, lo[k]);
        hi[k] = vbslq_f32(gt, v, hi[k]);
        s1[k] = n1;
        s2[k] = n2;
      }
    }
    // Whole vectors: the per-group arrays hold kKqMaxGroups entries (kq_quantize_super), ngp ≤ kKqMaxGroups,
    // and the padding lanes past ng are never read.
#pragma GCC unroll 4
    for (int k = 0; k < K; k++) {
      vst1q_f32(mn + c + 4 * k, lo[k]);
      vst1q_f32(mx + c + 4 * k, hi[k]);
      vst1q_f32(sx + c + 4 * k, s1[k]);
      vst1q_f32(sxx + c + 4 * k, s2[k]);
    }
  }

  template <bool Full>
  void stats_all(float* mn, float* mx, float* sx, float* sxx) const {
    int c = 0;
    for (; c + 16 <= ngp; c += 16) stats_chunks<4, Full>(c, mn, mx, sx, sxx);
    for (; c + 8 <= ngp; c += 8) stats_chunks<2, Full>(c, mn, mx, sx, sxx);
    if (c < ngp) stats_chunks<1, Full>(c, mn, mx, sx, sxx);
  }
  void stats(float* mn, float* mx, float* sx, float* sxx) const {
    if (full)
      stats_all<true>(mn, mx, sx, sxx);
    else
      stats_all<false>(mn, mx, sx, sxx);
  }

  /** q = clamp(rne(x·inv + off)) per element, written in place (each element on its own: any order). */
  void assign(const float* inv, const float* off, float qmax, uint8_t* qv) const {
    const float32x4_t vmax = vdupq_n_f32(qmax), zero = vdupq_n_f32(0.0f);
    for (int j = 0; j < ng; j++) {
      const float* v = x + j * G;
      uint8_t* o = qv + j * G;
      int m = lens[j], i = 0;
      const float32x4_t vi = vdupq_n_f32(inv[j]), vo = vdupq_n_f32(off[j]);
      for (; i + 4 <= m; i += 4) {
        float32x4_t t = vaddq_f32(vmulq_f32(vld1q_f32(v + i), vi), vo);
        f32_u8x4(vminq_f32(vmaxq_f32(vrndnq_f32(t), zero), vmax), o + i);
      }
      ScalarOps::assign(v + i, m - i, inv[j], off[j], qmax, o + i);
    }
  }

  /**
   * Σq, Σq², Σq·x of K chunks of four groups from chunk c, interleaved (independent add chains; each lane's
   * order is the reference's). A clamped −0 becomes +0 here: no sum changes (they start at +0).
   */
  template <int K, bool Full>
  void pass_chunks(int c, const float* inv, const float* off, float32x4_t vmax, float* sq, float* sqq,
                   float* sqx) const {
    const float32x4_t zero = vdupq_n_f32(0.0f);
    float32x4_t vi[K], vo[K], s1[K], s2[K], s3[K];
#pragma GCC unroll 4
    for (int k = 0; k < K; k++) {
      vi[k] = vld1q_f32(inv + c + 4 * k);
      vo[k] = vld1q_f32(off + c + 4 * k);
      s1[k] = s2[k] = s3[k] = zero;
    }
    const float* px = xt + c;
    for (int i = 0; i < G; i++, px += ngp) {
#pragma GCC unroll 4
      for (int k = 0; k < K; k++) {
        float32x4_t v = vld1q_f32(px + 4 * k);
        float32x4_t t = vaddq_f32(vmulq_f32(v, vi[k]), vo[k]);
        float32x4_t q = vminq_f32(vmaxq_f32(vrndnq_f32(t), zero), vmax);
        if (!Full) q = vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(q), mask(c + 4 * k, i)));
        s1[k] = vaddq_f32(s1[k], q);
        s2[k] = vaddq_f32(s2[k], vmulq_f32(q, q));
        s3[k] = vaddq_f32(s3[k], vmulq_f32(q, v));
      }
    }
    // whole vectors, as in stats_chunks
#pragma GCC unroll 4
    for (int k = 0; k < K; k++) {
      vst1q_f32(sq + c + 4 * k, s1[k]);
      vst1q_f32(sqq + c + 4 * k, s2[k]);
      vst1q_f32(sqx + c + 4 * k, s3[k]);
    }
  }

  void pass(const float* inv, const float* off, float qmax, float* sq, float* sqq, float* sqx) const {
    // inv, off padded to whole chunks of four (the padding groups are masked out)
    alignas(16) float iv[kKqMaxGroups + 4], of[kKqMaxGroups + 4];
    const float* pi = inv;
    const float* po = off;
    if (ng != ngp) {
      memcpy(iv, inv, sizeof(float) * (size_t)ng);
      memcpy(of, off, sizeof(float) * (size_t)ng);
      for (int j = ng; j < ngp; j++) iv[j] = of[j] = 0.0f;
      pi = iv;
      po = of;
    }
    if (full)
      pass_all<true>(pi, po, qmax, sq, sqq, sqx);
    else
      pass_all<false>(pi, po, qmax, sq, sqq, sqx);
  }
  template <bool Full>
  void pass_all(const float* inv, const float* off, float qmax, float* sq, float* sqq, float* sqx) const {
    const float32x4_t vmax = vdupq_n_f32(qmax);
    int c = 0;
    for (; c + 16 <= ngp; c += 16) pass_chunks<4, Full>(c, inv, off, vmax, sq, sqq, sqx);
    for (; c + 8 <= ngp; c += 8) pass_chunks<2, Full>(c, inv, off, vmax, sq, sqq, sqx);
    if (c < ngp) pass_chunks<1, Full>(c, inv, off, vmax, sq, sqq, sqx);
  }
};

int kq_neon_row(const KqJob& j, int64_t r, KqScratch& s, MetricsAcc* m, int64_t* bad) {
  return kq_quantize_row<KqNeonOps>(j, r, s, m, bad);
}

/** kq_dequantize_row with whole-byte group starts converted four at a time; other layouts use the reference.
 */
void kq_neon_dequant_row(const KqTensor& t, int64_t r, float* dst) {
  const KqParams& p = t.p;
  if ((p.group * p.bits) % 8 != 0) return kq_dequantize_row(t, r, dst);
  int64_t rb = packed_row_bytes(t.cols, p.bits), cb = kq_code_row_bytes(t.cols, p);
  int64_t nsb = kq_supers_per_row(t.cols, p.super);
  const uint8_t* qr = t.q + r * rb;
  const uint8_t* cr = t.codes + r * cb;
  int w = p.sbits + p.mbits;
  alignas(16) uint8_t qb[kKqMaxGroup + 8];
  for (int64_t c0 = 0; c0 < t.cols; c0 += p.group) {
    int64_t g = c0 / p.group, b = c0 / p.super;
    uint16_t dh, mh;
    memcpy(&dh, t.d + (r * nsb + b) * 2, 2);
    memcpy(&mh, t.dmin + (r * nsb + b) * 2, 2);
    float d = f16_to_f32(dh), dm = f16_to_f32(mh);
    unsigned sc = get_bits(cr, g * w, p.sbits), mc = get_bits(cr, g * w + p.sbits, p.mbits);
    float s = d * (float)sc;
    float z = dm * (float)mc;
    int n = (int)(c0 + p.group < t.cols ? p.group : t.cols - c0);
    int nu = n;
    if (p.bits < 8)
      nu = (n + 8 / p.bits - 1) / (8 / p.bits) * (8 / p.bits);  // whole bytes (the row is padded)
    kq_unpack_q(qr, c0, nu, p.bits, qb);
    const float32x4_t vs = vdupq_n_f32(s), vz = vdupq_n_f32(z);
    int i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(dst + c0 + i, vsubq_f32(vmulq_f32(vs, u8x4_f32(qb + i)), vz));
    for (; i < n; i++) {
      float v = s * (float)qb[i];
      dst[c0 + i] = v - z;
    }
  }
}

}  // namespace

const KqKernel* kq_neon_kernel() {
  static const KqKernel k{"neon", kq_neon_row, kq_neon_dequant_row};
  return &k;
}

}  // namespace apl
#else
namespace apl {
const KqKernel* kq_neon_kernel() { return nullptr; }
}  // namespace apl
#endif
