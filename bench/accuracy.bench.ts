// Accuracy table: relative error ‖W−Ŵ‖/‖W‖ at 1, 2, 4 and 8 bits for per-row, group 64 and group 64 with the
// error-minimising mode, on Gaussian and Student-t(4) weights (1024×4096, like the llama.cpp figures in issue 3),
// with the bits per weight each costs (f16 scale + f16 zero per group), printed beside llama.cpp's figures.
import * as eng from '../native/index';
import { gaussian, studentT4 } from '../test/helpers/random';

const ROWS = 1024;
const COLS = 4096;
const N = ROWS * COLS;

const LLAMA: Array<[string, number, number, number, string]> = [
  ['Q8_0', 8.5, 0.53, 0.73, ''],
  ['Q4_0', 4.5, 8.6, 11.6, '3.0 GB/s'],
  ['Q4_1', 5.0, 7.8, 9.4, '4.0 GB/s'],
  ['Q4_K', 4.5, 7.1, 8.7, '0.06 GB/s'],
  ['Q2_K', 2.625, 29.6, 34.3, '0.07 GB/s'],
];

interface Cfg {
  label: string;
  bits: 1 | 2 | 4 | 8;
  groupSize: number;
  mode: 'minmax' | 'optimized';
  symmetric?: boolean;
}

async function measure(x: Float32Array, c: Cfg): Promise<{ err: number; seconds: number }> {
  const t0 = process.hrtime.bigint();
  const r = await eng.quantize({
    data: new Uint8Array(x.buffer),
    dtype: 'f32',
    rows: ROWS,
    cols: COLS,
    bits: c.bits,
    groupSize: c.groupSize,
    symmetric: c.symmetric ?? false,
    mode: c.mode,
    scaleDtype: 'f16',
    metrics: true,
    threads: 1,
  });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  return { err: r.metrics?.relError ?? Number.NaN, seconds };
}

async function main() {
  const info = eng.engineInfo();
  console.log(`engine: ${info.native ? `native addon, kernel ${info.simd}` : `TypeScript reference (${info.reason})`}`);
  console.log(`${ROWS}×${COLS} f32 weights, one thread; bpw = bits + 32/group (f16 scale + f16 zero per group)\n`);
  const g = gaussian(N, 1);
  const t = studentT4(N, 2);
  const cfgs: Cfg[] = [];
  for (const bits of [8, 4, 2, 1] as const) {
    cfgs.push({ label: `${bits}-bit per-row minmax`, bits, groupSize: COLS, mode: 'minmax' });
    cfgs.push({ label: `${bits}-bit per-row optimized`, bits, groupSize: COLS, mode: 'optimized' });
    cfgs.push({ label: `${bits}-bit g64 minmax`, bits, groupSize: 64, mode: 'minmax' });
    cfgs.push({ label: `${bits}-bit g64 optimized`, bits, groupSize: 64, mode: 'optimized' });
    if (bits === 4 || bits === 8)
      cfgs.push({ label: `${bits}-bit g64 symmetric minmax`, bits, groupSize: 64, mode: 'minmax', symmetric: true });
  }
  cfgs.push({ label: '4-bit g32 optimized', bits: 4, groupSize: 32, mode: 'optimized' });
  cfgs.push({ label: '2-bit g32 optimized', bits: 2, groupSize: 32, mode: 'optimized' });
  cfgs.push({ label: '2-bit g128 optimized', bits: 2, groupSize: 128, mode: 'optimized' });

  console.log(
    `${'scheme'.padEnd(32)} ${'bpw'.padStart(6)} ${'gauss %'.padStart(8)} ${'t(4) %'.padStart(8)} ${'ms'.padStart(7)}`,
  );
  const base = new Map<string, number>();
  for (const c of cfgs) {
    const a = await measure(g, c);
    const b = await measure(t, c);
    const bpw = c.bits + 32 / c.groupSize;
    base.set(c.label, a.err);
    console.log(
      `${c.label.padEnd(32)} ${bpw.toFixed(3).padStart(6)} ${(a.err * 100).toFixed(2).padStart(8)} ${(b.err * 100).toFixed(2).padStart(8)} ${(a.seconds * 1000).toFixed(0).padStart(7)}`,
    );
  }
  console.log('\nllama.cpp (issue 3, same machine, one thread, 1024×4096):');
  for (const [n, bpw, ge, te, speed] of LLAMA)
    console.log(
      `${n.padEnd(32)} ${bpw.toFixed(3).padStart(6)} ${ge.toFixed(2).padStart(8)} ${te.toFixed(2).padStart(8)} ${speed.padStart(10)}`,
    );
  const cut = 1 - (base.get('2-bit g64 optimized') ?? 0) / (base.get('2-bit g64 minmax') ?? 1);
  console.log(
    `\n2-bit g64: optimized cuts Gaussian error by ${(cut * 100).toFixed(1)} % against minmax at the same size.`,
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
