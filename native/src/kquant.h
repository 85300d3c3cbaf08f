// Two-level ("k-quant") scales: the scalar reference, i.e. the spec that the AVX2 (src/cpu/kquant_avx2.cc),
// CUDA (src/cuda/kquant.cu) and TypeScript (native/reference-kquant.ts) versions reproduce bit for bit.
// docs/FORMAT.md describes the stored layout and the numpy formula.
//
// A row is cut into super-blocks of `super` elements (the last may be shorter), each into groups of `group`
// (the last group of a row may be shorter). Per super-block: two float16 values d and dmin. Per group: an
// unsigned scale code sc (sbits wide) and min code mc (mbits wide). Per element: q (bits wide). Then
//   s = f32(d · sc), z = f32(dmin · mc), w = f32(f32(s · q) − z)
// Sums over a group run sequentially in element order (float32), so a SIMD version puts one group per lane.
//
// The search, per super-block:
//  1. per group, a float affine fit w ≈ a·q + b: kStarts starting grids, each refined kIters times by
//     alternating least squares (assign q by rounding, refit a, b in closed form), least error wins;
//  2. d = max a / (2^sbits − 1), dmin = max(−b) / (2^mbits − 1) (or min(−b) when no −b is positive), in f16;
//  3. codes = rounded a / d, −b / dmin; then up to kRounds rounds of: assign q with the stored (s, z), and
//  move
//     each group's codes to the best of their 3×3 neighbours under the exact squared error for that q (stop
//     early when no code moves);
//  4. q = the assignment under the final codes.
#pragma once

#include "quant.h"

namespace apl {

constexpr int kKqStarts = 2;
constexpr int kKqIters = 2;
constexpr int kKqRounds = 1;
/** Limits of the format parameters: groups per super-block, elements per group and per super-block. */
constexpr int kKqMaxGroups = 64;
constexpr int kKqMaxGroup = 256;
constexpr int kKqMaxElems = 4096;
APL_HD inline double kq_step(int bits) { return bits == 2 ? 1.0 : bits == 4 ? 0.75 : 8.0; }

struct KqParams {
  int bits;   // 2, 4 or 8
  int group;  // elements per group
  int super;  // elements per super-block (a multiple of group)
  int sbits;  // scale code width
  int mbits;  // min code width
};

inline int64_t kq_groups_per_row(int64_t cols, int group) { return (cols + group - 1) / group; }
inline int64_t kq_supers_per_row(int64_t cols, int super) { return (cols + super - 1) / super; }
inline int64_t kq_code_row_bytes(int64_t cols, const KqParams& p) {
  return (kq_groups_per_row(cols, p.group) * (p.sbits + p.mbits) + 7) / 8;
}

/** `width` bits at bit position pos of a little-endian bit stream. */
APL_HD inline unsigned get_bits(const uint8_t* in, int64_t pos, int width) {
  unsigned v = 0;
  for (int b = 0; b < width; b++) v |= (unsigned)((in[(pos + b) >> 3] >> ((pos + b) & 7)) & 1u) << b;
  return v;
}

APL_HD inline float kq_code(float t, float cmax) { return clampq(rintf(t), cmax); }

/**
 * One least-squares refit of the float fit, for every alive group: from the pass sums, a = (nΣqx − ΣqΣx)/det,
 * b = (ΣqqΣx − ΣqΣqx)/det, det = nΣqq − (Σq)², error Σx² − aΣqx − bΣx; a group dies when det ≤ 0 or a is not
 * positive and finite (keeping its last a, b, e).
 */
APL_HD inline void kq_als_ref(int ng, const double* dn, const float* sx, const float* sxx, const float* sq,
                              const float* sqq, const float* sqx, bool* alive, double* ca, double* cb,
                              double* ce) {
  for (int j = 0; j < ng; j++) {
    if (!alive[j]) continue;
    double det = dn[j] * (double)sqq[j] - (double)sq[j] * (double)sq[j];
    double na = (dn[j] * (double)sqx[j] - (double)sq[j] * (double)sx[j]) / det;
    double nb = ((double)sqq[j] * (double)sx[j] - (double)sq[j] * (double)sqx[j]) / det;
    if (!(det > 0) || !(na > 0) || !(na < INFINITY)) {
      alive[j] = false;
      continue;
    }
    ca[j] = na;
    cb[j] = nb;
    ce[j] = (double)sxx[j] - na * (double)sqx[j] - nb * (double)sx[j];
  }
}

/**
 * The float fit's grid as pass parameters: inv = 1/f32(a), off = 0 − f32(b)·inv; a group whose inv or off is
 * not finite dies; dead groups get 0, 0.
 */
APL_HD inline void kq_fit_inv_off_ref(int ng, const double* ca, const double* cb, bool* alive, float* inv,
                                      float* off) {
  for (int j = 0; j < ng; j++) {
    float af = (float)ca[j];
    float iv = 1.0f / af;
    float bi = (float)cb[j] * iv;
    float o = 0.0f - bi;
    if (!is_finite_f32(iv) || !is_finite_f32(o)) alive[j] = false;
    inv[j] = alive[j] ? iv : 0.0f;
    off[j] = alive[j] ? o : 0.0f;
  }
}

/**
 * The code search's objective for one group, Σ(x − (s·q − z))² − Σx², from the sums of its current q, in a
 * fixed order (double): (s·(Σqq·s − 2Σqx) + z·(n·z + 2Σx)) + (−2Σq·s)·z.
 */
APL_HD inline double kq_err_s(double s, double sqq, double sqx) { return s * (sqq * s - 2.0 * sqx); }
APL_HD inline double kq_err_z(double z, double n, double sx) { return z * (n * z + 2.0 * sx); }

/**
 * Moves each group's codes to the best of their 3×3 neighbours (in range) under that objective; candidates in
 * the order (sc−1, mc−1), (sc−1, mc), …, (sc+1, mc+1), the first strictly smallest wins. Returns whether any
 * code moved.
 */
APL_HD inline bool kq_search_ref(int ng, const double* dn, float d, float dm, int smax, int mmax,
                                 const float* sx, const float* sq, const float* sqq, const float* sqx,
                                 uint8_t* sc, uint8_t* mc) {
  bool changed = false;
  for (int j = 0; j < ng; j++) {
    int bs = sc[j], bz = mc[j];
    double be = INFINITY, es[3], ez[3], vs[3], vz[3];
    for (int k = 0; k < 3; k++) {
      float s = d * (float)(sc[j] + k - 1);
      float z = dm * (float)(mc[j] + k - 1);
      vs[k] = s;
      vz[k] = z;
      es[k] = kq_err_s(s, sqq[j], sqx[j]);
      ez[k] = kq_err_z(z, dn[j], sx[j]);
    }
    double m2 = -2.0 * (double)sq[j];
    for (int ks = 0; ks < 3; ks++)
      for (int kz = 0; kz < 3; kz++) {
        int cs = sc[j] + ks - 1, cz = mc[j] + kz - 1;
        if (cs < 0 || cs > smax || cz < 0 || cz > mmax) continue;
        double e = (es[ks] + ez[kz]) + m2 * vs[ks] * vz[kz];
        if (e < be) {
          be = e;
          bs = cs;
          bz = cz;
        }
      }
    if (bs != sc[j] || bz != mc[j]) changed = true;
    sc[j] = (uint8_t)bs;
    mc[j] = (uint8_t)bz;
  }
  return changed;
}

/** One dequantized element: f32(f32(d·sc)·q − f32(dmin·mc)). */
APL_HD inline float kq_value(float d, float dm, unsigned sc, unsigned mc, unsigned q) {
  float s = d * (float)sc;
  float z = dm * (float)mc;
  float w = s * (float)q;
  return w - z;
}

/**
 * The heavy passes over one super-block, scalar (the reference). `ng` groups; group j holds x[j·G, min(n,
 * (j+1)·G)).
 */
struct KqScalarOps {
  static const float* load_row(const QuantJob& j, int64_t r, float* dst) {
    return load_row_scalar(j, r, dst);
  }
  static int64_t find_nonfinite(const float* x, int64_t n) { return find_nonfinite_scalar(x, n); }
  static void pack(const uint8_t* qv, int64_t cols, int bits, uint8_t* out) { pack_row(qv, cols, bits, out); }
  /** Error of a quantized super-block x[0, n) (groups of G from its start) into m. */
  static void metrics(const float* x, int n, int G, const uint8_t* qv, const uint8_t* sc, const uint8_t* mc,
                      float d, float dm, MetricsAcc* m) {
    for (int i = 0; i < n; i++) m->add(x[i], kq_value(d, dm, sc[i / G], mc[i / G], qv[i]));
  }
  APL_HD static void fit_inv_off(int ng, const double* ca, const double* cb, bool* alive, float* inv,
                                 float* off) {
    kq_fit_inv_off_ref(ng, ca, cb, alive, inv, off);
  }
  APL_HD static void als(int ng, const double* dn, const float* sx, const float* sxx, const float* sq,
                         const float* sqq, const float* sqx, bool* alive, double* ca, double* cb,
                         double* ce) {
    kq_als_ref(ng, dn, sx, sxx, sq, sqq, sqx, alive, ca, cb, ce);
  }
  APL_HD static bool search(int ng, const double* dn, float d, float dm, int smax, int mmax, const float* sx,
                            const float* sq, const float* sqq, const float* sqx, uint8_t* sc, uint8_t* mc) {
    return kq_search_ref(ng, dn, d, dm, smax, mmax, sx, sq, sqq, sqx, sc, mc);
  }
  const float* x = nullptr;
  int n = 0, G = 0, ng = 0;
  APL_HD void load(const float* xs, int nn, int g) {
    x = xs;
    n = nn;
    G = g;
    ng = (nn + g - 1) / g;
  }
  APL_HD int len(int j) const { return n - j * G < G ? n - j * G : G; }
  APL_HD void stats(float* mn, float* mx, float* sx, float* sxx) const {
    for (int j = 0; j < ng; j++) {
      const float* v = x + j * G;
      int m = len(j);
      float a = v[0], b = v[0], s = 0.0f, ss = 0.0f;
      for (int i = 0; i < m; i++) {
        float t = v[i];
        if (t < a) a = t;
        if (t > b) b = t;
        s = s + t;
        float tt = t * t;
        ss = ss + tt;
      }
      mn[j] = a;
      mx[j] = b;
      sx[j] = s;
      sxx[j] = ss;
    }
  }
  /** q = clamp(rne(x·inv + off)) per group; sums Σq, Σq², Σq·x. */
  APL_HD void pass(const float* inv, const float* off, float qmax, float* sq, float* sqq, float* sqx) const {
    for (int j = 0; j < ng; j++) {
      const float* v = x + j * G;
      int m = len(j);
      float a = 0.0f, b = 0.0f, c = 0.0f;
      for (int i = 0; i < m; i++) {
        float t = v[i] * inv[j];
        t = t + off[j];
        float q = clampq(rintf(t), qmax);
        a = a + q;
        float qq = q * q;
        b = b + qq;
        float qx = q * v[i];
        c = c + qx;
      }
      sq[j] = a;
      sqq[j] = b;
      sqx[j] = c;
    }
  }
  /** The same q, written to qv (indexed as x). */
  APL_HD void assign(const float* inv, const float* off, float qmax, uint8_t* qv) const {
    for (int j = 0; j < ng; j++) ScalarOps::assign(x + j * G, len(j), inv[j], off[j], qmax, qv + j * G);
  }
};

/** inv = 1/s and off = z·inv (both 0 when s is 0 or 1/s is not finite). */
APL_HD inline void kq_inv_off(float s, float z, float* inv, float* off) {
  float i = s == 0.0f ? 0.0f : 1.0f / s;
  if (!is_finite_f32(i)) i = 0.0f;
  *inv = i;
  *off = z * i;
}

/**
 * Codes to pass parameters for groups [0, ng): s = f32(d·sc), z = f32(dmin·mc), then kq_inv_off. A SIMD
 * variant overloads this (and kq_keep_best) for its Ops type, found by argument-dependent lookup, with the
 * same float32 operations per group (kq_fit_range and kq_fit_codes below likewise).
 */
template <class Ops>
APL_HD inline void kq_codes_inv_off(const Ops&, int ng, float d, float dm, const uint8_t* sc,
                                    const uint8_t* mc, float* inv, float* off) {
  for (int j = 0; j < ng; j++) {
    float s = d * (float)sc[j];
    float z = dm * (float)mc[j];
    kq_inv_off(s, z, &inv[j], &off[j]);
  }
}

/** After a start: each group keeps the fit (a, b) with the least error so far (ce < bestE). */
template <class Ops>
APL_HD inline void kq_keep_best(const Ops&, int ng, const double* ce, const double* ca, const double* cb,
                                double* bestE, double* a, double* b) {
  for (int j = 0; j < ng; j++)
    if (ce[j] < bestE[j]) {
      bestE[j] = ce[j];
      a[j] = ca[j];
      b[j] = cb[j];
    }
}

/**
 * The super-block's fit range: *amax = max(0, max f32(a)), *zmax = max(0, max f32(−b)), *zmin = min(0, min
 * f32(−b)) (strict comparisons from 0: a −0 or a NaN never replaces), over groups [0, ng).
 */
template <class Ops>
APL_HD inline void kq_fit_range(const Ops&, int ng, const double* a, const double* b, float* amax,
                                float* zmax, float* zmin) {
  for (int j = 0; j < ng; j++) {
    float af = (float)a[j], zf = (float)(-b[j]);
    if (af > *amax) *amax = af;
    if (zf > *zmax) *zmax = zf;
    if (zf < *zmin) *zmin = zf;
  }
}

/** The fit's codes: sc = kq_code(f32(a)·id, smax), mc = kq_code(f32(−b)·im, mmax) for groups [0, ng). */
template <class Ops>
APL_HD inline void kq_fit_codes(const Ops&, int ng, const double* a, const double* b, float id, float im,
                                float smax, float mmax, uint8_t* sc, uint8_t* mc) {
  for (int j = 0; j < ng; j++) {
    float ta = (float)a[j] * id;
    float tz = (float)(-b[j]) * im;
    sc[j] = (uint8_t)kq_code(ta, smax);
    mc[j] = (uint8_t)kq_code(tz, mmax);
  }
}

/**
 * Quantizes one super-block x[0, n) (finite float32). Writes q (one per element), codes sc/mc (one per group)
 * and the stored d, dmin (as f16 bits). Returns kOk or kScaleOverflow.
 */
template <class Ops>
APL_HD inline int kq_quantize_super(Ops& ops, const float* x, int n, const KqParams& p, uint8_t* qv,
                                    uint8_t* sc, uint8_t* mc, uint16_t* dh, uint16_t* mh) {
  ops.load(x, n, p.group);
  const int ng = ops.ng;
  const float qmax = (float)((1 << p.bits) - 1);
  const float smax = (float)((1 << p.sbits) - 1), mmax = (float)((1 << p.mbits) - 1);
  float mn[kKqMaxGroups], mx[kKqMaxGroups], sx[kKqMaxGroups], sxx[kKqMaxGroups];
  float inv[kKqMaxGroups], off[kKqMaxGroups], sq[kKqMaxGroups], sqq[kKqMaxGroups], sqx[kKqMaxGroups];
  double a[kKqMaxGroups], b[kKqMaxGroups], ca[kKqMaxGroups], cb[kKqMaxGroups], ce[kKqMaxGroups];
  double bestE[kKqMaxGroups];
  double dn[kKqMaxGroups];
  bool alive[kKqMaxGroups];
  ops.stats(mn, mx, sx, sxx);
  for (int j = 0; j < ng; j++) dn[j] = (double)ops.len(j);
  // 1. Float fit per group.
  for (int j = 0; j < ng; j++) {
    double r = (double)mx[j] - (double)mn[j];
    a[j] = r / (double)qmax;  // the min/max grid, kept when no start succeeds
    b[j] = (double)mn[j];
    bestE[j] = INFINITY;
  }
  const double step = kq_step(p.bits);
  for (int k = 0; k < kKqStarts; k++) {
    for (int j = 0; j < ng; j++) {
      double r = (double)mx[j] - (double)mn[j];
      ca[j] = r / ((double)qmax + k * step);
      cb[j] = (double)mn[j] + (r - ca[j] * (double)qmax) / 2;
      ce[j] = INFINITY;
      alive[j] = mx[j] != mn[j];
    }
    for (int it = 0; it < kKqIters; it++) {
      Ops::fit_inv_off(ng, ca, cb, alive, inv, off);
      ops.pass(inv, off, qmax, sq, sqq, sqx);
      Ops::als(ng, dn, sx, sxx, sq, sqq, sqx, alive, ca, cb, ce);
    }
    kq_keep_best(ops, ng, ce, ca, cb, bestE, a, b);
  }
  // 2. Super-block scales.
  float amax = 0.0f, zmax = 0.0f, zmin = 0.0f;
  kq_fit_range(ops, ng, a, b, &amax, &zmax, &zmin);
  float d = round_stored(amax / smax, true);
  float dm = round_stored((zmax > 0.0f ? zmax : zmin) / mmax, true);
  if (!is_finite_f32(d) || !is_finite_f32(dm)) return kScaleOverflow;
  float id = d == 0.0f ? 0.0f : 1.0f / d, im = dm == 0.0f ? 0.0f : 1.0f / dm;
  // 3. Codes, then rounds of assignment and a 3×3 neighbour search under the exact error.
  kq_fit_codes(ops, ng, a, b, id, im, smax, mmax, sc, mc);
  for (int round = 0; round < kKqRounds; round++) {
    kq_codes_inv_off(ops, ng, d, dm, sc, mc, inv, off);
    ops.pass(inv, off, qmax, sq, sqq, sqx);
    bool changed = Ops::search(ng, dn, d, dm, (int)smax, (int)mmax, sx, sq, sqq, sqx, sc, mc);
    if (!changed) break;
  }
  // 4. q under the final codes.
  kq_codes_inv_off(ops, ng, d, dm, sc, mc, inv, off);
  ops.assign(inv, off, qmax, qv);
  *dh = f32_to_f16(d);
  *mh = f32_to_f16(dm);
  return kOk;
}

// ---------------------------------------------------------------------------------------------------------------
// Rows

struct KqJob {
  const uint8_t* data;
  int dtype;
  int64_t rows, cols;
  KqParams p;
  bool metrics;
  uint8_t* q;      // rows × packed_row_bytes(cols, bits)
  uint8_t* codes;  // rows × kq_code_row_bytes
  uint8_t* d;      // rows × supers, f16 bits
  uint8_t* dmin;   // rows × supers, f16 bits
  /** The metrics' sums of the rows before this call (a tensor quantized in several calls), added to first. */
  MetricsAcc metrics_from{};
};

/** Packs the codes of a row: group g's scale code then min code, a little-endian bit stream, zero padded. */
inline void kq_pack_codes(const uint8_t* sc, const uint8_t* mc, int64_t groups, const KqParams& p,
                          uint8_t* out) {
  uint64_t acc = 0;
  int nb = 0;
  int64_t o = 0;
  for (int64_t g = 0; g < groups; g++) {
    acc |= (uint64_t)(sc[g] | ((unsigned)mc[g] << p.sbits)) << nb;
    nb += p.sbits + p.mbits;
    while (nb >= 8) {
      out[o++] = (uint8_t)acc;
      acc >>= 8;
      nb -= 8;
    }
  }
  if (nb > 0) out[o] = (uint8_t)acc;
}

/** kq_pack_codes for kq_quantize_row's Ops: a SIMD variant overloads it (argument-dependent lookup). */
template <class Ops>
inline void kq_pack_codes_by(const Ops&, const uint8_t* sc, const uint8_t* mc, int64_t groups,
                             const KqParams& p, uint8_t* out) {
  kq_pack_codes(sc, mc, groups, p, out);
}

/** Scratch for one thread: a decoded row, its q values and codes. */
struct KqScratch {
  float* row;
  uint8_t* qv;
  uint8_t* sc;
  uint8_t* mc;
};

/**
 * Quantizes row r: kOk, kNonFinite (*bad = flat index) or kScaleOverflow (*bad = flat index of the
 * super-block start). Ops: the passes (KqScalarOps or a SIMD variant) plus static load_row, find_nonfinite
 * and pack; Metrics: the static metrics (Ops's by default; a build may pair its passes with another form of
 * the same sums).
 */
template <class Ops, class Metrics = Ops>
inline int kq_quantize_row(const KqJob& j, int64_t r, KqScratch& s, MetricsAcc* m, int64_t* bad) {
  QuantJob lj{};
  lj.data = j.data;
  lj.dtype = j.dtype;
  lj.rows = j.rows;
  lj.cols = j.cols;
  const float* row = Ops::load_row(lj, r, s.row);
  int64_t nf = Ops::find_nonfinite(row, j.cols);
  if (nf >= 0) {
    *bad = r * j.cols + nf;
    return kNonFinite;
  }
  const KqParams& p = j.p;
  int64_t nsb = kq_supers_per_row(j.cols, p.super), gpr = kq_groups_per_row(j.cols, p.group);
  Ops ops;
  for (int64_t b = 0; b < nsb; b++) {
    int64_t off = b * p.super;
    int n = (int)(j.cols - off < p.super ? j.cols - off : p.super);
    int64_t g0 = off / p.group;
    uint16_t dh, mh;
    int st = kq_quantize_super(ops, row + off, n, p, s.qv + off, s.sc + g0, s.mc + g0, &dh, &mh);
    if (st != kOk) {
      *bad = r * j.cols + off;
      return st;
    }
    memcpy(j.d + (r * nsb + b) * 2, &dh, 2);
    memcpy(j.dmin + (r * nsb + b) * 2, &mh, 2);
    if (m)
      Metrics::metrics(row + off, n, p.group, s.qv + off, s.sc + g0, s.mc + g0, f16_to_f32(dh),
                       f16_to_f32(mh), m);
  }
  kq_pack_codes_by(ops, s.sc, s.mc, gpr, p, j.codes + r * kq_code_row_bytes(j.cols, p));
  Ops::pack(s.qv, j.cols, p.bits, j.q + r * packed_row_bytes(j.cols, p.bits));
  return kOk;
}

struct KqTensor {
  const uint8_t* q;
  const uint8_t* codes;
  const uint8_t* d;
  const uint8_t* dmin;
  int64_t rows, cols;
  KqParams p;
};

/** Dequantizes row r into dst (the spec of the numpy formula in docs/FORMAT.md). */
inline void kq_dequantize_row(const KqTensor& t, int64_t r, float* dst) {
  const KqParams& p = t.p;
  int64_t rb = packed_row_bytes(t.cols, p.bits), cb = kq_code_row_bytes(t.cols, p);
  int64_t nsb = kq_supers_per_row(t.cols, p.super);
  const uint8_t* qr = t.q + r * rb;
  const uint8_t* cr = t.codes + r * cb;
  int w = p.sbits + p.mbits;
  for (int64_t c0 = 0; c0 < t.cols; c0 += p.group) {
    int64_t g = c0 / p.group, b = c0 / p.super;
    uint16_t dh, mh;
    memcpy(&dh, t.d + (r * nsb + b) * 2, 2);
    memcpy(&mh, t.dmin + (r * nsb + b) * 2, 2);
    float d = f16_to_f32(dh), dm = f16_to_f32(mh);
    unsigned sc = get_bits(cr, g * w, p.sbits), mc = get_bits(cr, g * w + p.sbits, p.mbits);
    float s = d * (float)sc;
    float z = dm * (float)mc;
    int64_t end = c0 + p.group < t.cols ? c0 + p.group : t.cols;
    for (int64_t c = c0; c < end; c++) {
      unsigned q = get_bits(qr, c * p.bits, p.bits);
      float v = s * (float)q;
      dst[c] = v - z;
    }
  }
}

}  // namespace apl
