// The NEON kernels of attention.cc (arm64): scores, softmax, value tiles, conversions, the one-row decode
// path and SwiGLU's exp, on 128-bit vectors, in the kLanes8 order (the scalar reference's and the NEON kv
// ops'): every (query, key) dot is eight lanes i % 8 with a separate multiply and add, reduced as reduce8;
// the value sum is y += s·v with a separate multiply and add; exp4 is attn_exp lane by lane. So every result
// is bit-exact with the scalar blocked form (and, with std_exp, with attention_reference). A private part of
// attention.cc, included by it alone inside its anonymous namespace (after the scalar kernels and constants
// it uses); not a header for other files. attn_available lists it only after neon_attn_ok(), a self-check of
// every piece against the scalar one (run once).
#pragma once

// ---------------------------------------------------------------- NEON (kLanes8)

/** attn_exp on 4 lanes, bit-exact with the scalar one (no fused multiply-add: -ffp-contract=off). */
inline float32x4_t exp4(float32x4_t x) {
  const uint32x4_t under = vcltq_f32(x, vdupq_n_f32(-87.0f));
  const uint32x4_t over = vcgtq_f32(x, vdupq_n_f32(88.0f));
  x = vminq_f32(x, vdupq_n_f32(88.0f));  // a NaN stays NaN (FMIN propagates it)
  const float32x4_t n = vrndnq_f32(vmulq_f32(x, vdupq_n_f32(kLog2e)));  // nearest, ties to even
  float32x4_t r = vsubq_f32(x, vmulq_f32(n, vdupq_n_f32(kC1)));
  r = vsubq_f32(r, vmulq_f32(n, vdupq_n_f32(kC2)));
  const float32x4_t z = vmulq_f32(r, r);
  float32x4_t p = vdupq_n_f32(kP0);
  p = vaddq_f32(vmulq_f32(p, r), vdupq_n_f32(kP1));
  p = vaddq_f32(vmulq_f32(p, r), vdupq_n_f32(kP2));
  p = vaddq_f32(vmulq_f32(p, r), vdupq_n_f32(kP3));
  p = vaddq_f32(vmulq_f32(p, r), vdupq_n_f32(kP4));
  p = vaddq_f32(vmulq_f32(p, r), vdupq_n_f32(kP5));
  float32x4_t y = vaddq_f32(vaddq_f32(vmulq_f32(p, z), r), vdupq_n_f32(1.0f));
  const int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23);
  y = vmulq_f32(y, vreinterpretq_f32_s32(e));
  y = vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(y), under));  // below −87: +0
  return vbslq_f32(over, vdupq_n_f32(INFINITY), y);
}

/** The softmax of 16 lanes (rows) over nk keys, four vectors of 4 rows. */
void softmax_neon(float* S, int64_t nk) {
  for (int h = 0; h < 16; h += 4) {
    float32x4_t mx = vdupq_n_f32(-INFINITY);
    for (int64_t j = 0; j < nk; j++) {  // the scalar max: s > mx takes s (a NaN never)
      const float32x4_t s = vld1q_f32(S + j * kRows + h);
      mx = vbslq_f32(vcgtq_f32(s, mx), s, mx);
    }
    float32x4_t sum = vdupq_n_f32(0.0f);
    for (int64_t j = 0; j < nk; j++) {
      const float32x4_t e = exp4(vsubq_f32(vld1q_f32(S + j * kRows + h), mx));
      vst1q_f32(S + j * kRows + h, e);
      sum = vaddq_f32(sum, e);
    }
    for (int64_t j = 0; j < nk; j++)
      vst1q_f32(S + j * kRows + h, vdivq_f32(vld1q_f32(S + j * kRows + h), sum));
  }
}

void silu_mul_neon(float* g, const float* u, int64_t n) {
  const float32x4_t one = vdupq_n_f32(1.0f);
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const float32x4_t v = vld1q_f32(g + i);
    const float32x4_t e = exp4(vsubq_f32(vdupq_n_f32(0.0f), v));
    vst1q_f32(g + i, vmulq_f32(vdivq_f32(v, vaddq_f32(one, e)), vld1q_f32(u + i)));
  }
  for (; i < n; i++) {
    const float v = g[i], a = v / (1.0f + attn_exp(-v));
    g[i] = a * u[i];
  }
}

/** Σ a·b in eight lanes i % 8 (two vectors), then reduce8: the scalar dot_order(kLanes8) bit for bit. */
float dot_lanes8_neon(const float* a, const float* b, int64_t n) {
  float32x4_t lo = vdupq_n_f32(0.0f), hi = lo;
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    lo = vaddq_f32(lo, vmulq_f32(vld1q_f32(a + i), vld1q_f32(b + i)));
    hi = vaddq_f32(hi, vmulq_f32(vld1q_f32(a + i + 4), vld1q_f32(b + i + 4)));
  }
  float acc[8];
  vst1q_f32(acc, lo);
  vst1q_f32(acc + 4, hi);
  for (; i < n; i++) {
    float p = a[i] * b[i];
    acc[i & 7] += p;
  }
  return reduce8(acc);
}

/**
 * reduce8 of four (row, key) pairs at once: x_r = lanes 0–3 + lanes 4–7, then (x0 + x2) + (x1 + x3) for each
 * r, by two unzips and a pairwise add per half (lane r of the result is pair r).
 */
inline float32x4_t reduce8x4(float32x4_t x0, float32x4_t x1, float32x4_t x2, float32x4_t x3) {
  const float32x4_t even = vpaddq_f32(vuzp1q_f32(x0, x1), vuzp1q_f32(x2, x3));  // x_r[0] + x_r[2]
  const float32x4_t odd = vpaddq_f32(vuzp2q_f32(x0, x1), vuzp2q_f32(x2, x3));   // x_r[1] + x_r[3]
  return vaddq_f32(even, odd);
}

/**
 * S[j·16 + r] for 4 rows × 2 keys at a time (16 accumulators: the 8 lanes of each pair in two vectors; each Q
 * and K load used 2 or 4 times), rows r..r+3 of one key reduced together into one vector store. nq is a
 * multiple of 4 (Q's rows past the block are zero); K holds nk2 = nk rounded up to 2 keys (zero past nk).
 * Heads whose size is not a multiple of 8 add the rest from zero-padded copies: the padding adds +0·+0 to a
 * lane, which leaves it unchanged (a lane that starts at +0 is never −0).
 */
void scores_neon(const float* Q, int64_t nq, const float* K, int64_t nk2, int64_t D, float scale, float* S) {
  const int64_t d8 = D / 8 * 8, rest = D - d8;
  const float32x4_t vscale = vdupq_n_f32(scale);
  float qt[4][8], kt[2][8];
  for (int64_t r = 0; r < nq; r += 4) {
    const float* q[4] = {Q + r * D, Q + (r + 1) * D, Q + (r + 2) * D, Q + (r + 3) * D};
    if (rest)
      for (int i = 0; i < 4; i++) {
        std::fill(qt[i], qt[i] + 8, 0.0f);
        std::copy(q[i] + d8, q[i] + D, qt[i]);
      }
    for (int64_t j = 0; j < nk2; j += 2) {
      const float *k0 = K + j * D, *k1 = k0 + D;
      float32x4_t lo[4][2], hi[4][2];
      for (int i = 0; i < 4; i++)
        for (int c = 0; c < 2; c++) lo[i][c] = hi[i][c] = vdupq_n_f32(0.0f);
      auto step = [&](const float* const* qp, int64_t qi, const float* kp0, const float* kp1) {
        const float32x4_t u0 = vld1q_f32(kp0), v0 = vld1q_f32(kp0 + 4);
        const float32x4_t u1 = vld1q_f32(kp1), v1 = vld1q_f32(kp1 + 4);
        for (int i = 0; i < 4; i++) {
          const float32x4_t x = vld1q_f32(qp[i] + qi), y = vld1q_f32(qp[i] + qi + 4);
          lo[i][0] = vaddq_f32(lo[i][0], vmulq_f32(x, u0));
          hi[i][0] = vaddq_f32(hi[i][0], vmulq_f32(y, v0));
          lo[i][1] = vaddq_f32(lo[i][1], vmulq_f32(x, u1));
          hi[i][1] = vaddq_f32(hi[i][1], vmulq_f32(y, v1));
        }
      };
      for (int64_t i = 0; i < d8; i += 8) step(q, i, k0 + i, k1 + i);
      if (rest) {
        for (int c = 0; c < 2; c++) {
          std::fill(kt[c], kt[c] + 8, 0.0f);
          std::copy((c ? k1 : k0) + d8, (c ? k1 : k0) + D, kt[c]);
        }
        const float* qp[4] = {qt[0], qt[1], qt[2], qt[3]};
        step(qp, 0, kt[0], kt[1]);
      }
      for (int c = 0; c < 2; c++) {
        const float32x4_t s = reduce8x4(vaddq_f32(lo[0][c], hi[0][c]), vaddq_f32(lo[1][c], hi[1][c]),
                                        vaddq_f32(lo[2][c], hi[2][c]), vaddq_f32(lo[3][c], hi[3][c]));
        vst1q_f32(S + (j + c) * kRows + r, vmulq_f32(s, vscale));
      }
    }
  }
}

/**
 * NR rows × NC vectors of 4 columns in registers over keys j0..j1, each row's sum in key order with a
 * separate multiply and add (the reference axpy); the rows' probabilities of a key come in one load.
 */
template <int NR, int NC>
inline void pv_cols4(const float* P, const float* V, int64_t D, int64_t j0, int64_t j1, float* const* out,
                     int64_t col) {
  float32x4_t o[NR][NC];
  for (int r = 0; r < NR; r++)
    for (int c = 0; c < NC; c++) o[r][c] = vdupq_n_f32(0.0f);
  for (int64_t j = j0; j <= j1; j++) {
    const float* v = V + j * D + col;
    float32x4_t vv[NC];
    for (int c = 0; c < NC; c++) vv[c] = vld1q_f32(v + c * 4);
    if (NR == 4) {
      const float32x4_t p = vld1q_f32(P + j * kRows);
      for (int c = 0; c < NC; c++) {
        o[0][c] = vaddq_f32(o[0][c], vmulq_laneq_f32(vv[c], p, 0));
        o[1][c] = vaddq_f32(o[1][c], vmulq_laneq_f32(vv[c], p, 1));
        o[2][c] = vaddq_f32(o[2][c], vmulq_laneq_f32(vv[c], p, 2));
        o[3][c] = vaddq_f32(o[3][c], vmulq_laneq_f32(vv[c], p, 3));
      }
    } else {
      for (int r = 0; r < NR; r++) {
        const float32x4_t s = vdupq_n_f32(P[j * kRows + r]);
        for (int c = 0; c < NC; c++) o[r][c] = vaddq_f32(o[r][c], vmulq_f32(s, vv[c]));
      }
    }
  }
  for (int r = 0; r < NR; r++)
    for (int c = 0; c < NC; c++) vst1q_f32(out[r] + col + c * 4, o[r][c]);
}

/** Rows P + 0..nr−1 with the key range j0..j1: 4 rows × 4 vectors, 2 × 8, 1 × 8, then the last columns. */
void pv_neon(const float* P, const float* V, int64_t D, int64_t j0, int64_t j1, float* const* out,
             int64_t nr) {
  const int64_t vecs = D / 4;
  int64_t r = 0;
  for (; r + 4 <= nr; r += 4) {
    int64_t c = 0;
    for (; c + 4 <= vecs; c += 4) pv_cols4<4, 4>(P + r, V, D, j0, j1, out + r, c * 4);
    for (; c < vecs; c++) pv_cols4<4, 1>(P + r, V, D, j0, j1, out + r, c * 4);
  }
  for (; r + 2 <= nr; r += 2) {
    int64_t c = 0;
    for (; c + 8 <= vecs; c += 8) pv_cols4<2, 8>(P + r, V, D, j0, j1, out + r, c * 4);
    for (; c < vecs; c++) pv_cols4<2, 1>(P + r, V, D, j0, j1, out + r, c * 4);
  }
  for (; r < nr; r++) {
    int64_t c = 0;
    for (; c + 8 <= vecs; c += 8) pv_cols4<1, 8>(P + r, V, D, j0, j1, out + r, c * 4);
    for (; c < vecs; c++) pv_cols4<1, 1>(P + r, V, D, j0, j1, out + r, c * 4);
  }
  for (r = 0; r < nr; r++)  // the last D % 4 columns one by one
    for (int64_t i = vecs * 4; i < D; i++) {
      float o = 0;
      for (int64_t j = j0; j <= j1; j++) {
        float p = P[j * kRows + r] * V[j * D + i];
        o += p;
      }
      out[r][i] = o;
    }
}

void convert_neon(const uint16_t* src, int64_t stride, int64_t nk, int64_t D, float* dst) {
  for (int64_t j = 0; j < nk; j++) {
    const uint16_t* s = src + j * stride;
    float* d = dst + j * D;
    int64_t i = 0;
    for (; i + 8 <= D; i += 8) {
      const float16x8_t h = vreinterpretq_f16_u16(vld1q_u16(s + i));
      vst1q_f32(d + i, vcvt_f32_f16(vget_low_f16(h)));
      vst1q_f32(d + i + 4, vcvt_high_f32_f16(h));
    }
    for (; i < D; i++) d[i] = f16_to_f32(s[i]);
  }
}

/**
 * One query row straight from the cache (no conversion, no block): the blocked form's result for the row bit
 * for bit (the kv dot / dot_lanes8_neon, attn_exp, the sum in key order, the axpy's multiply then add).
 * Decode with one or two rows per KV head (no GQA).
 */
void row_lanes8(const AttnArgs& a, int64_t g, int64_t t, int64_t h, int64_t lo, float scale, float* sc,
                bool std_exp) {
  const int64_t D = a.head_dim, kvd = a.kv_heads * D, p = a.pos + t;
  const float* qv = a.q + (t * a.heads + h) * D;
  const KvOps& kv = kv_ops(true);  // dot_neon / axpy_neon: the kLanes8 order
  float mx = -INFINITY;
  for (int64_t j = lo; j <= p; j++) {
    const int64_t at = j * kvd + g * D;
    float s = (a.k16 ? kv.dot(qv, a.k16 + at, D) : dot_lanes8_neon(qv, a.k32 + at, D)) * scale;
    sc[j - lo] = s;
    if (s > mx) mx = s;
  }
  const int64_t nk = p - lo + 1;
  int64_t j = 0;
  if (!std_exp)
    for (const float32x4_t m = vdupq_n_f32(mx); j + 4 <= nk; j += 4)
      vst1q_f32(sc + j, exp4(vsubq_f32(vld1q_f32(sc + j), m)));
  for (; j < nk; j++) sc[j] = std_exp ? std::exp(sc[j] - mx) : attn_exp(sc[j] - mx);
  float sum = 0;
  for (j = 0; j < nk; j++) sum += sc[j];
  float* o = a.out + (t * a.heads + h) * D;
  std::fill(o, o + D, 0.0f);
  for (j = lo; j <= p; j++) {
    const int64_t at = j * kvd + g * D;
    const float w = sc[j - lo] / sum;
    if (a.v16) {
      kv.axpy(w, a.v16 + at, o, D);
      continue;
    }
    const float32x4_t vs = vdupq_n_f32(w);
    const float* v = a.v32 + at;
    int64_t i = 0;
    for (; i + 4 <= D; i += 4) vst1q_f32(o + i, vaddq_f32(vld1q_f32(o + i), vmulq_f32(vs, vld1q_f32(v + i))));
    for (; i < D; i++) {
      float pr = w * v[i];
      o[i] += pr;
    }
  }
}

/**
 * Every NEON piece against its scalar form on one small block (head 20: the 8-wide and the one-by-one tails,
 * 11 rows, 13 keys, float16 keys and values, special exp inputs): the same bits, else the blocked form stays
 * scalar on this machine. Run once (attn_available).
 */
bool neon_attn_check() {
  const int64_t D = 20, nr = 11, nq = 12, nk = 13, nk2 = 14;
  uint32_t st = 12345u;
  auto rnd = [&]() {
    st = st * 1664525u + 1013904223u;
    return (float)(int32_t)(st >> 8) / 8388608.0f - 1.0f;
  };
  std::vector<uint16_t> k16((size_t)(nk * D)), v16(k16.size());
  for (auto& x : k16) x = f32_to_f16(rnd() * 2.0f);
  for (auto& x : v16) x = f32_to_f16(rnd() * 2.0f);
  std::vector<float> Q((size_t)(nq * D), 0.0f), K((size_t)(nk2 * D), 0.0f), V((size_t)(nk2 * D)), K2(K),
      V2(V);
  for (int64_t i = 0; i < nr * D; i++) Q[(size_t)i] = rnd();
  convert_scalar(k16.data(), D, nk, D, K.data());
  convert_scalar(v16.data(), D, nk, D, V.data());
  convert_neon(k16.data(), D, nk, D, K2.data());
  convert_neon(v16.data(), D, nk, D, V2.data());
  bool ok = memcmp(K.data(), K2.data(), K.size() * 4) == 0 && memcmp(V.data(), V2.data(), V.size() * 4) == 0;
  std::vector<float> S1((size_t)(nk2 * kRows), 0.0f), S2(S1);
  scores_scalar(AttnOrder::kLanes8, Q.data(), nq, K.data(), nk, D, 0.7f, S1.data());
  scores_neon(Q.data(), nq, K.data(), nk2, D, 0.7f, S2.data());
  for (int64_t j = 0; j < nk; j++)
    ok = ok && memcmp(S1.data() + j * kRows, S2.data() + j * kRows, nq * 4) == 0;
  for (int64_t j = 0; j < nk; j++) {  // rows 0..10 masked as causal rows would be; lanes past 11 zero
    for (int64_t r = 0; r < kRows; r++) {
      float& s = S1[(size_t)(j * kRows + r)];
      s = r >= nr ? 0.0f : j > r + 2 ? -INFINITY : s * (float)(r + 1);
    }
  }
  S1[3 * kRows + 5] = -90.0f, S1[4 * kRows + 5] = 87.5f, S1[1 * kRows + 2] = -86.9f;
  S2 = S1;
  softmax_scalar<false>(S1.data(), nk, kRows);
  softmax_neon(S2.data(), nk);
  ok = ok && memcmp(S1.data(), S2.data(), (size_t)(nk * kRows) * 4) == 0;
  std::vector<float> o1((size_t)(nr * D)), o2(o1.size());
  float *p1[kRows], *p2[kRows];
  for (int64_t r = 0; r < nr; r++) p1[r] = o1.data() + r * D, p2[r] = o2.data() + r * D;
  for (int64_t r = 0; r < nr; r++) pv_scalar(AttnOrder::kLanes8, S1.data() + r, V.data(), D, 1, 9, p1[r]);
  pv_neon(S1.data(), V.data(), D, 1, 9, p2, nr);
  ok = ok && memcmp(o1.data(), o2.data(), o1.size() * 4) == 0;
  for (int i = 0; i < 1024 && ok; i += 4) {  // exp4 over [−88, 1] and the edges
    float x[4] = {-88.0f + (float)i * 0.0869f, -(float)i * 0.01f, (float)i * -1e-3f, rnd() * 87.0f}, e[4];
    if (i == 0) x[0] = -87.0f, x[1] = NAN, x[2] = 88.0f, x[3] = 88.5f;
    vst1q_f32(e, exp4(vld1q_f32(x)));
    for (int l = 0; l < 4; l++) {
      const float w = attn_exp(x[l]);
      ok = ok && memcmp(&w, &e[l], 4) == 0;
    }
  }
  float g1[11], g2[11], u[11];
  for (int i = 0; i < 11; i++) g1[i] = g2[i] = rnd() * 30.0f, u[i] = rnd();
  g1[3] = g2[3] = -95.0f;
  for (int i = 0; i < 11; i++) {
    const float v = g1[i], w = v / (1.0f + attn_exp(-v));
    g1[i] = w * u[i];
  }
  silu_mul_neon(g2, u, 11);
  return ok && memcmp(g1, g2, sizeof g1) == 0;
}
