// The lane-width template of attention.cc's x86 kernels: what the AVX2 (8 lanes) and AVX-512 (16 lanes) forms
// share, the exp, the softmax over a block's 16 rows, silu·mul and the float16 → float32 conversion.
// attention.cc gets no -m flags, so each width's functions need their own target attribute, which a template
// cannot vary by its argument: this file is therefore included twice (no #pragma once), by attention_avx2.h
// inside `namespace avx2` and by attention_avx512.h inside `namespace avx512`, each after defining
//   APL_ATTN_LANES        the width's function target attribute
//   V                     its vector traits: W lanes; F, M (float vector, lane mask); set1, zero, loadu,
//                         storeu, add, sub, mul, div, min, max, lt, gt, round (to nearest), pow2 (2^n of a
//                         whole n), exp_fix (0 where under, +inf where over), cvtph (W float16 → float32)
// Every function keeps the scalar reference's float32 operations in its order (bit-exact with attn_exp and
// the scalar kernels).

/** attn_exp on W lanes, bit-exact with the scalar one. */
APL_ATTN_LANES inline V::F vexp(V::F x) {
  const V::M under = V::lt(x, V::set1(-87.0f));
  const V::M over = V::gt(x, V::set1(88.0f));
  x = V::min(V::set1(88.0f), x);  // a NaN stays NaN (min returns its second operand)
  const V::F n = V::round(V::mul(x, V::set1(kLog2e)));
  V::F r = V::sub(x, V::mul(n, V::set1(kC1)));
  r = V::sub(r, V::mul(n, V::set1(kC2)));
  const V::F z = V::mul(r, r);
  V::F p = V::set1(kP0);
  p = V::add(V::mul(p, r), V::set1(kP1));
  p = V::add(V::mul(p, r), V::set1(kP2));
  p = V::add(V::mul(p, r), V::set1(kP3));
  p = V::add(V::mul(p, r), V::set1(kP4));
  p = V::add(V::mul(p, r), V::set1(kP5));
  V::F y = V::add(V::add(V::mul(p, z), r), V::set1(1.0f));
  y = V::mul(y, V::pow2(n));
  return V::exp_fix(y, under, over);
}

/** The softmax of the 16 lanes (rows) of S over nk keys, W rows at a time. */
APL_ATTN_LANES void softmax(float* S, int64_t nk) {
  for (int h = 0; h < kRows; h += V::W) {
    V::F mx = V::set1(-INFINITY);
    for (int64_t j = 0; j < nk; j++) mx = V::max(V::loadu(S + j * kRows + h), mx);  // NaN: skipped
    V::F sum = V::zero();
    for (int64_t j = 0; j < nk; j++) {
      const V::F e = vexp(V::sub(V::loadu(S + j * kRows + h), mx));
      V::storeu(S + j * kRows + h, e);
      sum = V::add(sum, e);
    }
    for (int64_t j = 0; j < nk; j++) V::storeu(S + j * kRows + h, V::div(V::loadu(S + j * kRows + h), sum));
  }
}

APL_ATTN_LANES void silu_mul(float* g, const float* u, int64_t n) {
  const V::F one = V::set1(1.0f);
  int64_t i = 0;
  for (; i + V::W <= n; i += V::W) {
    const V::F v = V::loadu(g + i);
    const V::F e = vexp(V::sub(V::zero(), v));
    V::storeu(g + i, V::mul(V::div(v, V::add(one, e)), V::loadu(u + i)));
  }
  for (; i < n; i++) {
    const float v = g[i], a = v / (1.0f + attn_exp(-v));
    g[i] = a * u[i];
  }
}

/** nk rows of D float16 values (row stride `stride`) → dst, D floats a row: W, then 8, then 1 at a time. */
APL_ATTN_LANES void convert(const uint16_t* src, int64_t stride, int64_t nk, int64_t D, float* dst) {
  for (int64_t j = 0; j < nk; j++) {
    const uint16_t* s = src + j * stride;
    float* d = dst + j * D;
    int64_t i = 0;
    for (; i + V::W <= D; i += V::W) V::storeu(d + i, V::cvtph(s + i));
    if (V::W > 8)
      for (; i + 8 <= D; i += 8)
        _mm256_storeu_ps(d + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(s + i))));
    for (; i < D; i++) d[i] = f16_to_f32(s[i]);
  }
}
