// The default scheme (asymmetric, optimized: the error-minimising search) a row at a time, for the SIMD
// variants: the same arithmetic per group as quantize_group (quant.h, the spec), but each step runs for a
// batch of groups before the next. The search's scalar float64 steps (divisions, checks, the choice of the
// better start) are short dependent chains per group; run group after group they leave the core waiting on
// each division and on a mispredicted choice, and the vector passes between them are short (64 values).
// Batched, the groups' chains are independent and overlap, and the choice is a select instead of a branch.
// Every group's operations, their order and the order of side effects (scales, metrics, the first failing
// group) are the reference's, so the bytes are the same (checked by dispatch.cc's agreement table and the
// parity tests).
#pragma once

#include "../quant.h"

namespace apl {

/** Groups per batch (on the stack; a row of 2048 values in groups of 64 is two batches). */
constexpr int kBatchGroups = 16;

template <class Ops>
inline void optimize_asym_batch(const float* row, int64_t off0, int64_t group, int64_t cols, int nb,
                                float qmax, double step, const float* mn, const float* mx, const float* sx,
                                const float* sxx, bool* ok, double* outA, double* outB) {
  double A[kBatchGroups][2], B[kBatchGroups][2], E[kBatchGroups][2];
  bool live[kBatchGroups][2];
  for (int b = 0; b < nb; b++) {
    const double r = (double)mx[b] - (double)mn[b];
    const bool on = mx[b] != mn[b];
    for (int k = 0; k < 2; k++) {
      A[b][k] = r / ((double)qmax + k * step);
      B[b][k] = (double)mn[b] + (r - A[b][k] * (double)qmax) / 2;
      E[b][k] = INFINITY;
      live[b][k] = on;
    }
  }
  for (int it = 0; it < kOptIters; it++) {
    float inv[kBatchGroups][2], off[kBatchGroups][2];
    for (int b = 0; b < nb; b++)
      for (int k = 0; k < 2; k++) {
        float af = (float)A[b][k];
        float iv = 1.0f / af;
        float bi = (float)B[b][k] * iv;
        float of = 0.0f - bi;
        inv[b][k] = iv;
        off[b][k] = of;
        if (live[b][k] && (!is_finite_f32(iv) || !is_finite_f32(of))) live[b][k] = false;
      }
    float sq[kBatchGroups][2], sqq[kBatchGroups][2], sqx[kBatchGroups][2];
    for (int b = 0; b < nb; b++) {
      const int64_t off_b = off0 + b * group;
      const int n = (int)(cols - off_b < group ? cols - off_b : group);
      if (live[b][0] && live[b][1]) {
        Ops::asym_pass2(row + off_b, n, inv[b], off[b], qmax, sq[b], sqq[b], sqx[b]);
      } else {
        for (int k = 0; k < 2; k++)
          if (live[b][k])
            Ops::asym_pass(row + off_b, n, inv[b][k], off[b][k], qmax, &sq[b][k], &sqq[b][k], &sqx[b][k]);
      }
    }
    for (int b = 0; b < nb; b++) {
      const int64_t off_b = off0 + b * group;
      const double dn = (double)(cols - off_b < group ? cols - off_b : group);
      for (int k = 0; k < 2; k++) {
        if (!live[b][k]) continue;
        double det = dn * (double)sqq[b][k] - (double)sq[b][k] * (double)sq[b][k];
        double na = (dn * (double)sqx[b][k] - (double)sq[b][k] * (double)sx[b]) / det;
        double nb2 = ((double)sqq[b][k] * (double)sx[b] - (double)sq[b][k] * (double)sqx[b][k]) / det;
        // The reference stops a start when det ≤ 0 or the new scale is not a positive finite number, before
        // computing the offset; computing it anyway (a division by a non-positive det) changes nothing kept.
        if (!(det > 0) || !(na > 0) || !isfinite(na)) {
          live[b][k] = false;
          continue;
        }
        A[b][k] = na;
        B[b][k] = nb2;
        E[b][k] = (double)sxx[b] - na * (double)sqx[b][k] - nb2 * (double)sx[b];
      }
    }
  }
  for (int b = 0; b < nb; b++) {
    // The reference's choice: start 0 when its error is finite, start 1 when strictly lower (a select).
    const bool t0 = E[b][0] < INFINITY;
    const double e0 = t0 ? E[b][0] : INFINITY;
    const bool t1 = E[b][1] < e0;
    ok[b] = t0 || t1;
    outA[b] = t1 ? A[b][1] : A[b][0];
    outB[b] = t1 ? B[b][1] : B[b][0];
  }
}

/**
 * quantize_row (quant_rows.h) for the optimized asymmetric scheme at 2 to 8 bits, in batches of groups; other
 * schemes go to quantize_row itself.
 */
template <class Ops, class Load, class Find>
inline int quantize_row_batched(const QuantJob& j, int64_t r, RowScratch& s, MetricsAcc* m, int64_t* bad,
                                Load load, Find find_nonfinite) {
  if (!j.optimized || j.symmetric || j.bits == 1)
    return quantize_row<Ops>(j, r, s, m, bad, load, find_nonfinite);
  const float* row = load(j, r, s.row);
  int64_t nf = find_nonfinite(row, j.cols);
  if (nf >= 0) {
    *bad = r * j.cols + nf;
    return kNonFinite;
  }
  const float qmax = (float)((1 << j.bits) - 1);
  const double step = opt_asym_step(j.bits);
  const int64_t gpr = groups_per_row(j.cols, j.group);
  for (int64_t g0 = 0; g0 < gpr; g0 += kBatchGroups) {
    const int nb = (int)(gpr - g0 < kBatchGroups ? gpr - g0 : kBatchGroups);
    const int64_t off0 = g0 * j.group;
    float mn[kBatchGroups], mx[kBatchGroups], sx[kBatchGroups], sxx[kBatchGroups];
    for (int b = 0; b < nb; b++) {
      const int64_t off = off0 + b * j.group;
      const int n = (int)(j.cols - off < j.group ? j.cols - off : j.group);
      Ops::minmax_sums(row + off, n, &mn[b], &mx[b], &sx[b], &sxx[b]);
    }
    bool ok[kBatchGroups];
    double A[kBatchGroups], B[kBatchGroups];
    optimize_asym_batch<Ops>(row, off0, j.group, j.cols, nb, qmax, step, mn, mx, sx, sxx, ok, A, B);
    for (int b = 0; b < nb; b++) {
      const int64_t off = off0 + b * j.group;
      const int n = (int)(j.cols - off < j.group ? j.cols - off : j.group);
      // From here on quantize_group's asymmetric tail, unchanged.
      float b0 = mn[b];
      float sc = (mx[b] - mn[b]) / qmax;
      if (mx[b] != mn[b] && ok[b]) {
        sc = (float)A[b];
        b0 = (float)B[b];
      }
      float far = mn[b];
      if (-mx[b] > far) far = -mx[b];
      if (0.0f > far) far = 0.0f;
      float guard = far / kZeroLimit;
      if (guard > sc) sc = guard;
      float ss = Ops::round_stored(sc, j.f16);
      if (!is_finite_f32(ss)) {
        *bad = r * j.cols + off;
        return kScaleOverflow;
      }
      float inv = 0.0f, z = 0.0f;
      if (ss != 0.0f && !is_finite_f32(1.0f / ss)) ss = 0.0f;
      if (ss != 0.0f) {
        inv = 1.0f / ss;
        float bi = b0 * inv;
        z = Ops::round_stored(0.0f - bi, j.f16);
      }
      Ops::assign(row + off, n, inv, z, qmax, s.qv + off);
      const int64_t gi = r * gpr + g0 + b;
      if (j.f16) {
        uint16_t hs = Ops::f16_bits(ss), hz = Ops::f16_bits(z);
        memcpy(j.scales + gi * 2, &hs, 2);
        memcpy(j.zeros + gi * 2, &hz, 2);
      } else {
        memcpy(j.scales + gi * 4, &ss, 4);
        memcpy(j.zeros + gi * 4, &z, 4);
      }
      if (m) Ops::metrics(row + off, s.qv + off, n, ss, z, m);
    }
  }
  Ops::pack(s.qv, j.cols, j.bits, j.q + r * packed_row_bytes(j.cols, j.bits));
  return kOk;
}

}  // namespace apl
