// Two-level scales (native/kquant.ts): relative error ‖W−Ŵ‖/‖W‖ and bits per weight (q, codes, d and dmin all
// counted) of candidate formats — group size, super-block size, scale/min code widths — at 2, 4 and 8 bits on
// Gaussian and Student-t(4) weights (1024×4096, as in issue 3), beside the existing type (f16 scale + zero per
// group) and llama.cpp's figures. Speed: GB/s of f32 input per thread, from the process's CPU time (the machine is
// shared, so wall time says little; best of two runs), with the existing type measured in the same run for the
// ratio.
import * as eng from '../native/index';
import * as kq from '../native/kquant';
import { gaussian, studentT4 } from '../test/helpers/random';

const ROWS = 1024;
const COLS = 4096;
const N = ROWS * COLS;

const LLAMA: Array<[string, number, number, number, string]> = [
  ['Q4_K', 4.5, 7.1, 8.7, '0.06 GB/s'],
  ['Q2_K', 2.625, 29.6, 34.3, '0.07 GB/s'],
  ['Q8_0', 8.5, 0.53, 0.73, ''],
];

type Cand = [bits: 2 | 4 | 8, group: number, sup: number, sbits: number, mbits: number];
const CANDIDATES: Cand[] = [
  [4, 32, 256, 6, 6], // llama.cpp's Q4_K shape
  [4, 32, 512, 7, 7],
  [4, 32, 1024, 8, 7],
  [4, 16, 256, 3, 3],
  [4, 16, 512, 4, 3],
  [4, 24, 768, 6, 5],
  [4, 24, 1152, 6, 5],
  [4, 24, 1536, 6, 5],
  [4, 24, 1536, 5, 6], // chosen
  [2, 16, 256, 4, 4], // chosen (Q2_K's shape)
  [2, 16, 512, 4, 4],
  [2, 16, 512, 5, 4],
  [2, 32, 256, 6, 6],
  [2, 24, 1536, 5, 6],
  [8, 32, 256, 6, 6],
  [8, 64, 1024, 7, 7],
];

const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

async function kqRun(x: Float32Array, f: kq.KqFormat): Promise<{ err: number; gbs: number; r: kq.KqQuantizeResult }> {
  const data = new Uint8Array(x.buffer);
  let best = Number.POSITIVE_INFINITY;
  let r: kq.KqQuantizeResult | undefined;
  for (let rep = 0; rep < 2; rep++) {
    const c0 = cpu();
    r = await kq.kquantize({ ...f, data, dtype: 'f32', rows: ROWS, cols: COLS, threads: 1 });
    best = Math.min(best, cpu() - c0);
  }
  if (!r) throw new Error('no result');
  const m = kq.kerrorMetrics({ data, dtype: 'f32' }, r);
  return { err: m.relError, gbs: (N * 4) / best / 1e9, r };
}

async function oldRun(x: Float32Array, bits: 2 | 4 | 8): Promise<{ err: number; gbs: number }> {
  let best = Number.POSITIVE_INFINITY;
  let err = Number.NaN;
  for (let rep = 0; rep < 2; rep++) {
    const c0 = cpu();
    const r = await eng.quantize({
      data: new Uint8Array(x.buffer),
      dtype: 'f32',
      rows: ROWS,
      cols: COLS,
      bits,
      groupSize: 64,
      symmetric: false,
      mode: 'optimized',
      scaleDtype: 'f16',
      metrics: rep === 1,
      threads: 1,
    });
    if (rep === 0) best = cpu() - c0;
    err = r.metrics?.relError ?? err;
  }
  return { err, gbs: (N * 4) / best / 1e9 };
}

const pct = (v: number) => (v * 100).toFixed(2).padStart(8);

async function main() {
  const info = eng.engineInfo();
  console.log(
    `engine: ${info.native ? 'native addon' : `TypeScript reference (${info.reason})`}; kquant kernel ${kq.kqKernel()}`,
  );
  console.log(`${ROWS}×${COLS} f32, one thread; bpw counts q, codes, d and dmin; GB/s from CPU time\n`);
  const g = gaussian(N, 1);
  const t = studentT4(N, 2);
  console.log(
    `${'format'.padEnd(34)} ${'bpw'.padStart(6)} ${'gauss %'.padStart(8)} ${'t(4) %'.padStart(8)} ${'GB/s'.padStart(6)}`,
  );
  const speed = new Map<number, number>();
  for (const [bits, group, sup, scaleBits, minBits] of CANDIDATES) {
    const f: kq.KqFormat = { bits, group, super: sup, scaleBits, minBits };
    const a = await kqRun(g, f);
    const b = await kqRun(t, f);
    const chosen = kq.KQ_PRESETS[bits as 2 | 4] && JSON.stringify(kq.KQ_PRESETS[bits as 2 | 4]) === JSON.stringify(f);
    if (chosen) speed.set(bits, a.gbs);
    const label = `kquant ${bits}b g${group} s${sup} codes ${scaleBits}+${minBits}${chosen ? ' *' : ''}`;
    console.log(
      `${label.padEnd(34)} ${kq.bitsPerWeight(COLS, f).toFixed(3).padStart(6)} ${pct(a.err)} ${pct(b.err)} ${a.gbs.toFixed(2).padStart(6)}`,
    );
  }
  console.log('');
  const oldSpeed = new Map<number, number>();
  for (const bits of [8, 4, 2] as const) {
    const a = await oldRun(g, bits);
    const b = await oldRun(t, bits);
    oldSpeed.set(bits, a.gbs);
    const label = `existing ${bits}b g64 optimized`;
    console.log(
      `${label.padEnd(34)} ${(bits + 0.5).toFixed(3).padStart(6)} ${pct(a.err)} ${pct(b.err)} ${a.gbs.toFixed(2).padStart(6)}`,
    );
  }
  console.log('\nllama.cpp (issue 3, same machine, one thread, 1024×4096):');
  for (const [n, bpw, ge, te, s] of LLAMA)
    console.log(
      `${n.padEnd(34)} ${bpw.toFixed(3).padStart(6)} ${ge.toFixed(2).padStart(8)} ${te.toFixed(2).padStart(8)} ${s.padStart(10)}`,
    );
  for (const bits of [4, 2]) {
    const k = speed.get(bits) ?? 0;
    const o = oldSpeed.get(bits) ?? 1;
    console.log(
      `\n${bits}-bit chosen format: ${k.toFixed(2)} GB/s per thread, ${(k / o).toFixed(2)}× the existing optimized type in this run`,
    );
  }
  // Dequantize speed of the chosen 4-bit format.
  const r = (await kqRun(g, kq.KQ_PRESETS[4])).r;
  const o = await eng.quantize({
    data: new Uint8Array(g.buffer),
    dtype: 'f32',
    rows: ROWS,
    cols: COLS,
    bits: 4,
    groupSize: 64,
    symmetric: false,
    mode: 'optimized',
    scaleDtype: 'f16',
  });
  const w = { ...o, rows: ROWS, cols: COLS, bits: 4 as const, groupSize: 64, symmetric: false };
  const old = { ...w, mode: 'optimized' as const, scaleDtype: 'f16' as const };
  let best = Number.POSITIVE_INFINITY;
  let bestOld = Number.POSITIVE_INFINITY;
  for (let i = 0; i < 3; i++) {
    let t0 = process.hrtime.bigint();
    kq.kdequantize(r);
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e9);
    t0 = process.hrtime.bigint();
    eng.dequantize(old);
    bestOld = Math.min(bestOld, Number(process.hrtime.bigint() - t0) / 1e9);
  }
  console.log(
    `4-bit dequantize: ${((N * 4) / best / 1e9).toFixed(2)} GB/s of f32 output (wall time, all cores, best of 3), ${(bestOld / best).toFixed(2)}× the existing type's`,
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
