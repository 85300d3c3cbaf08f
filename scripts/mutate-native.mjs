// `npm run mutate:native`: a small mutation pass over the C++ kernels. Each mutant below is one textual change to
// native/src (the scalar reference in quant.h, the SIMD files, the dispatcher); it is applied to a copy of
// native/src + test/native in a temp folder, the plain C++ test program is rebuilt and run there through
// test/native/run.sh (both passes: best kernel, then APL_FORCE_SCALAR=1), and the copy is thrown away. The working
// tree is never touched. Prints one row per mutant: killed (the tests failed), survived (they passed), build error
// (the mutant does not compile: not a kill) or timeout. Slow (a full rebuild per mutant); never part of CI.
//   node scripts/mutate-native.mjs [ID...]    only the mutants named
//   APL_MUTATE_TIMEOUT_S=600                   limit per build and run (a full rebuild took over 10 min on a loaded
//                                              2-core machine: raise it there)
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;

/** id, file (under native/src), the exact text (must occur once), its replacement, what the mutant breaks. */
const MUTANTS = [
  [
    'f16-tie',
    'quant.h',
    'if (rem > 0x1000u || (rem == 0x1000u && (r & 1))) r++;',
    'if (rem > 0x1000u) r++;',
    'f32→f16: ties no longer round to even',
  ],
  [
    'f16-overflow',
    'quant.h',
    'if (e >= 31) return (uint16_t)(sign | 0x7c00u);',
    'if (e > 31) return (uint16_t)(sign | 0x7c00u);',
    'f32→f16: 65520..131008 no longer overflow to Inf',
  ],
  [
    'f16-decode-exp',
    'quant.h',
    'return bits_f32(sign | ((e + 112) << 23) | (m << 13));',
    'return bits_f32(sign | ((e + 111) << 23) | (m << 13));',
    'f16→f32: exponent bias off by one',
  ],
  [
    'pack-order',
    'quant.h',
    'v |= (unsigned)qv[base + k] << (k * bits);',
    'v |= (unsigned)qv[base + k] << ((per - 1 - k) * bits);',
    'packing: first value in the highest bits',
  ],
  [
    'clamp-top',
    'quant.h',
    'return q < 0.0f ? 0.0f : (q > qmax ? qmax : q);',
    'return q < 0.0f ? 0.0f : (q > qmax ? qmax - 1.0f : q);',
    'clamp: values above the grid land one step low',
  ],
  [
    'lane-order',
    'quant.h',
    'return ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));',
    'return ((l[0] + l[2]) + (l[4] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));',
    'reference lane reduction order changed',
  ],
  [
    'sym-pick',
    'quant.h',
    'float m = -mn > mx ? mn : mx;',
    'float m = -mn >= mx ? mn : mx;',
    'symmetric: |min| == max picks the negative end',
  ],
  [
    'sym-zero',
    'quant.h',
    'float half = (float)(1 << (p.bits - 1));',
    'float half = (float)((1 << (p.bits - 1)) - 1);',
    'symmetric: zero point one step low',
  ],
  [
    'asym-scale',
    'quant.h',
    'float s = d / qmax;',
    'float s = d / (qmax + 1.0f);',
    'asymmetric: scale over 2^bits instead of 2^bits − 1',
  ],
  [
    'zero-guard',
    'quant.h',
    'if (guard > s) s = guard;',
    '(void)guard;',
    'asymmetric: zero-point guard dropped (|zero| unbounded)',
  ],
  [
    'zero-rounding',
    'quant.h',
    'z = Ops::round_stored(0.0f - bi, p.f16);',
    'z = 0.0f - bi;',
    'zero point not rounded to the stored dtype before q',
  ],
  [
    'sign-zero',
    'quant.h',
    'for (int i = 0; i < n; i++) qv[i] = x[i] > 0.0f ? 1 : 0;',
    'for (int i = 0; i < n; i++) qv[i] = x[i] >= 0.0f ? 1 : 0;',
    '1 bit (scalar): 0 becomes +',
  ],
  [
    'opt-best',
    'quant.h',
    '    if (E[k] < bestE) {\n      bestE = E[k];',
    '    if (E[k] > bestE) {\n      bestE = E[k];',
    'optimized asymmetric: never keeps a refined grid',
  ],
  [
    'opt-start',
    'quant.h',
    'B[k] = (double)mn + (r - A[k] * (double)qmax) / 2;',
    'B[k] = (double)mn + (r - A[k] * (double)qmax) / 3;',
    'optimized asymmetric: starting grid off-centre',
  ],
  [
    'group-index',
    'quant_rows.h',
    'int64_t gi = r * gpr + g;',
    'int64_t gi = r * (gpr - 1) + g;',
    'scale/zero of a group stored at a shifted index',
  ],
  [
    'dequant-group',
    'quant_rows.h',
    'float z = load_param(w.zeros, r * gpr + g, w.f16);',
    'float z = load_param(w.zeros, r * gpr + (g + 1) % gpr, w.f16);',
    'dequantize reads the next group’s zero point',
  ],
  [
    'metrics-rel',
    'quant_rows.h',
    'o.rel_error = m.sxx > 0 ? sqrt(m.sdd / m.sxx)',
    'o.rel_error = m.sxx > 0 ? sqrt(m.sdd / m.sww)',
    'relative error normalised by ‖Ŵ‖ instead of ‖W‖',
  ],
  [
    'metrics-max',
    'quant.h',
    '    if (a > max_abs) max_abs = a;\n  }',
    '    if (a < max_abs) max_abs = a;\n  }',
    'max |error| keeps the minimum',
  ],
  [
    'nonfinite-index',
    'quant_rows.h',
    'if (!is_finite_f32(x[i])) return i;',
    'if (!is_finite_f32(x[i])) return i + 1;',
    'NaN/Inf error names the next element',
  ],
  [
    'avx2-abs-tail',
    'cpu/avx2_ops.h',
    'if (i < n) acc = _mm256_add_ps(acc, _mm256_andnot_ps(sign, _mm256_maskload_ps(x + i, tail_mask(n - i))));',
    'if (i + 1 < n) acc = _mm256_add_ps(acc, _mm256_andnot_ps(sign, _mm256_maskload_ps(x + i, tail_mask(n - i - 1))));',
    'AVX2 Σ|x|: last element of a ragged group dropped',
  ],
  ['avx2-sign-ge', 'cpu/avx2_ops.h', '_CMP_GT_OQ', '_CMP_GE_OQ', 'AVX2 1 bit: 0 becomes + (whole octets only)'],
  [
    'avx2-minmax-tail',
    'cpu/avx2_ops.h',
    '      __m256 vm = _mm256_blendv_ps(_mm256_set1_ps(x[0]), v, _mm256_castsi256_ps(m));\n      lo = _mm256_min_ps(lo, vm);',
    '      __m256 vm = _mm256_blendv_ps(_mm256_set1_ps(x[0]), v, _mm256_castsi256_ps(m));\n      lo = _mm256_min_ps(lo, v);',
    'AVX2 fused min: tail lanes past n read as 0',
  ],
  [
    'avx2-pack4',
    'cpu/avx2_ops.h',
    'const __m128i mul = _mm_set1_epi16(0x1001);  // bytes 1, 16',
    'const __m128i mul = _mm_set1_epi16(0x0110);  // bytes 1, 16',
    'AVX2 4-bit packing: nibbles swapped',
  ],
  [
    'avx512-round',
    'cpu/avx512.cc',
    't = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);',
    't = _mm512_roundscale_ps(t, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);',
    'AVX-512 assign truncates instead of rounding',
  ],
  [
    'avx512-mask',
    'cpu/avx512.cc',
    '__mmask16 m = (__mmask16)((1u << (n - i)) - 1);',
    '__mmask16 m = (__mmask16)((1u << (n - i - 1)) - 1);',
    'AVX-512 min/max: last element of the tail ignored',
  ],
  [
    'avx512-nonfinite',
    'cpu/avx512.cc',
    'if (_mm512_cmpeq_epi32_mask(a, e)) break;',
    'if (_mm512_cmpeq_epi32_mask(a, e)) continue;',
    'AVX-512 NaN/Inf scan skips whole blocks',
  ],
  [
    'force-scalar',
    'cpu/dispatch.cc',
    'return v && std::strcmp(v, "1") == 0;',
    'return v && std::strcmp(v, "1") == 0 && false;',
    'APL_FORCE_SCALAR=1 ignored',
  ],
];

const only = process.argv.slice(2);
const chosen = only.length ? MUTANTS.filter((m) => only.includes(m[0])) : MUTANTS;
if (only.length && chosen.length !== only.length) {
  console.error(`mutate-native: unknown mutant id (ids: ${MUTANTS.map((m) => m[0]).join(', ')})`);
  process.exit(2);
}

const work = mkdtempSync(join(tmpdir(), 'apl-mutate-native-'));
const copy = () => {
  rmSync(join(work, 'native'), { recursive: true, force: true });
  cpSync(join(root, 'native/src'), join(work, 'native/src'), { recursive: true });
  cpSync(join(root, 'test/native'), join(work, 'test/native'), { recursive: true });
};
const run = () => {
  const t0 = Date.now();
  const r = spawnSync('bash', [join(work, 'test/native/run.sh')], {
    cwd: work,
    encoding: 'utf8',
    env: { ...process.env, APL_SKIP_JS_TESTS: '1', APL_NO_CUDA: '1', APL_FORCE_SCALAR: '' },
    timeout: Number(process.env.APL_MUTATE_TIMEOUT_S ?? 600) * 1000,
    maxBuffer: 256 << 20, // a mutant can print thousands of FAIL lines
  });
  return { ...r, out: `${r.stdout ?? ''}${r.stderr ?? ''}`, s: (Date.now() - t0) / 1000 };
};

const rows = [['mutant', 'file', 'result', 'first failure / note', 's']];
let survived = 0;
try {
  copy();
  const base = run();
  if (base.error?.code === 'ETIMEDOUT') {
    console.error(
      `mutate-native: the unmutated build and tests took over ${base.s.toFixed(0)} s (raise APL_MUTATE_TIMEOUT_S)`,
    );
    process.exit(1);
  }
  if (base.status !== 0) {
    console.error(`mutate-native: the unmutated tests fail in the copy:\n${base.out}`);
    process.exit(1);
  }
  console.log(`baseline: ${base.out.match(/\d+ checks, 0 failures/)?.[0] ?? 'passed'} (${base.s.toFixed(0)} s)`);
  for (const [id, file, from, to, what] of chosen) {
    copy();
    const p = join(work, 'native/src', file);
    const text = readFileSync(p, 'utf8');
    const n = text.split(from).length - 1;
    if (n !== 1) {
      rows.push([id, file, 'NOT APPLIED', `the text occurs ${n} times (update the list)`, '']);
      continue;
    }
    writeFileSync(p, text.replace(from, to));
    const r = run();
    let result;
    let note;
    if (r.error?.code === 'ETIMEDOUT') {
      result = 'timeout';
      note = what;
    } else if (r.signal) {
      result = 'killed';
      note = `${what} — run.sh ended by ${r.signal}`;
    } else if (r.status === 0) {
      result = 'SURVIVED';
      note = what;
      survived++;
    } else if (/failed to compile|error:/.test(r.out) && !/checks, \d+ failures/.test(r.out)) {
      result = 'build error';
      note = r.out.split('\n').find((l) => l.includes('error:')) ?? 'compile error';
    } else {
      result = 'killed';
      const fail = r.out.split('\n').find((l) => /^FAIL |FAILED|Segmentation|Aborted/.test(l));
      note = `${what} — ${(fail ?? `exit ${r.status}`).replace(/^FAIL .*?test_kernels\.cc/, 'test_kernels.cc')}`;
    }
    rows.push([id, file, result, note.slice(0, 150), r.s.toFixed(0)]);
    console.log(`${id}: ${result} (${r.s.toFixed(0)} s)`);
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
const lines = rows.map((r) =>
  r
    .map((c, i) => c.padEnd(widths[i]))
    .join('  ')
    .trimEnd(),
);
lines.splice(1, 0, widths.map((w) => '-'.repeat(w)).join('  '));
const killed = rows.filter((r) => r[2] === 'killed' || r[2] === 'timeout').length;
const scored = rows.filter((r) => ['killed', 'timeout', 'SURVIVED'].includes(r[2])).length;
console.log(
  `\n${lines.join('\n')}\n\nnative mutation score: ${killed}/${scored} killed (${((100 * killed) / Math.max(1, scored)).toFixed(0)} %)`,
);
process.exit(survived ? 1 : 0);
