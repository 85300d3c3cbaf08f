// Quantization throughput: GB/s of f32 input (4 bits, group 64, 5632×2048), 1 and 2 threads, minmax and optimized,
// f32 and bf16 input, with metrics; beside a plain copy of the same bytes (the memory floor) and the numpy per-row
// rounding of the guide's prototype (a python3 subprocess timing itself). Every figure comes from this one run.
//
// Warm-up and order: one untimed round first (addon load, kernel selection, first-touch of the input, V8 tiering),
// numpy timed before the rounds (not between them: the cases right after a python3 process ran slower), and the
// case order rotated from round to round, so no case always runs first. The optimized kernel also runs into a
// reused output buffer (qInto, as the converter does): the default fresh q is first touched by the kernel threads,
// and those page faults are part of what 2 threads do not halve (docs/PERFORMANCE.md, "The 2-thread question").
import { spawnSync } from 'node:child_process';
import * as eng from '../native/index';
import * as ref from '../native/reference';
import { gaussian } from '../test/helpers/random';

const ROWS = 5632;
const COLS = 2048;
const N = ROWS * COLS;
const GB = (N * 4) / 1e9; // f32 input gigabytes

async function best(reps: number, fn: () => Promise<unknown> | unknown): Promise<number> {
  let b = Infinity;
  for (let i = 0; i < reps; i++) {
    const t0 = process.hrtime.bigint();
    await fn();
    b = Math.min(b, Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return b;
}

function numpySeconds(): number | undefined {
  const py = `
import numpy as np, time
rng = np.random.default_rng(0)
w = rng.standard_normal((${ROWS}, ${COLS}), dtype=np.float32)
best = 1e9
for _ in range(5):
    t0 = time.perf_counter()
    mn = w.min(axis=1, keepdims=True); mx = w.max(axis=1, keepdims=True)
    scale = (mx - mn) / 15.0
    q = np.clip(np.round((w - mn) / scale), 0, 15).astype(np.uint8)
    best = min(best, time.perf_counter() - t0)
print(best)
`;
  const r = spawnSync('python3', ['-c', py], { encoding: 'utf8' });
  if (r.status !== 0) return undefined;
  return Number(r.stdout.trim());
}

async function main() {
  const info = eng.engineInfo();
  console.log(`engine: ${info.native ? `native addon, kernel ${info.simd}` : `TypeScript reference (${info.reason})`}`);
  console.log(`matrix ${ROWS}×${COLS} (${(GB * 1000).toFixed(1)} MB of f32), 4 bits, group 64, f16 scales/zeros`);
  const x = gaussian(N, 1);
  const f32 = new Uint8Array(x.buffer);
  const bf16 = new Uint8Array(N * 2);
  {
    const u = new Uint32Array(x.buffer);
    const h = new Uint16Array(bf16.buffer);
    for (let i = 0; i < N; i++) h[i] = (u[i] + 0x7fff + ((u[i] >>> 16) & 1)) >>> 16;
  }
  const dst = new Uint8Array(f32.length);
  // Every configuration runs once per round, ROUNDS rounds, best time kept: on a shared machine all of them see the
  // same background load, so the ratios stay fair.
  const cases: Array<[string, () => unknown]> = [['memcpy of the same bytes (floor)', () => dst.set(f32)]];
  const p = { bits: 4 as const, groupSize: 64, symmetric: false, scaleDtype: 'f16' as const, rows: ROWS, cols: COLS };
  const qReused = new Uint8Array((N * 4) / 8);
  const run =
    (o: Partial<eng.QuantizeOptions>, scalar = false) =>
    async () => {
      if (scalar) process.env.APL_FORCE_SCALAR = '1';
      try {
        await eng.quantize({ ...p, mode: 'minmax', data: f32, dtype: 'f32', backend: 'cpu', ...o });
      } finally {
        delete process.env.APL_FORCE_SCALAR;
      }
    };
  if (info.native) {
    for (const threads of [1, 2]) {
      cases.push([`minmax f32, ${threads} thread(s)`, run({ threads })]);
      cases.push([`minmax bf16, ${threads} thread(s)`, run({ threads, data: bf16, dtype: 'bf16' })]);
      cases.push([`optimized f32, ${threads} thread(s)`, run({ threads, mode: 'optimized' })]);
      cases.push([
        `optimized bf16, ${threads} thread(s)`,
        run({ threads, mode: 'optimized', data: bf16, dtype: 'bf16' }),
      ]);
      cases.push([`minmax f32 + metrics, ${threads} thread(s)`, run({ threads, metrics: true })]);
      cases.push([
        `optimized f32, reused q, ${threads} thread(s)`,
        run({ threads, mode: 'optimized', qInto: qReused }),
      ]);
    }
    cases.push(['minmax f32, scalar reference, 2 threads', run({ threads: 2 }, true)]);
    cases.push(['optimized f32, scalar reference, 2 threads', run({ threads: 2, mode: 'optimized' }, true)]);
  }
  const ROUNDS = 7;
  const bestT = new Map<string, number>();
  {
    const t = numpySeconds();
    if (t !== undefined) bestT.set('numpy', t);
  }
  for (const [, fn] of cases) await fn(); // warm-up round, untimed
  for (let round = 0; round < ROUNDS; round++) {
    const k = (round * 3) % cases.length;
    for (const [name, fn] of [...cases.slice(k), ...cases.slice(0, k)])
      bestT.set(name, Math.min(bestT.get(name) ?? Infinity, await best(name.startsWith('memcpy') ? 3 : 1, fn)));
  }
  const np = bestT.get('numpy');
  const copy = bestT.get('memcpy of the same bytes (floor)') as number;
  const rows: Array<[string, number]> = [];
  for (const [name] of cases) {
    rows.push([name, bestT.get(name) as number]);
    if (name.startsWith('memcpy') && np !== undefined) rows.push(['numpy per-row rounding (prototype)', np]);
  }
  // The TypeScript reference on 1/16 of the matrix, scaled up ×16 (the label says so).
  const part = ROWS / 16;
  const tsOut = {
    q: new Uint8Array(part * (COLS / 2)),
    scales: new Uint8Array(part * 32 * 2),
    zeros: new Uint8Array(part * 32 * 2),
  };
  const tsp = {
    bits: 4 as const,
    groupSize: 64,
    symmetric: false,
    scaleDtype: 'f16' as const,
    mode: 'minmax' as const,
  };
  const tsT = await best(2, () => ref.quantizeRows(ref.rowReader(f32, 'f32', COLS), COLS, tsp, 0, part, tsOut));
  rows.push(['TS reference, minmax, 1 thread (1/16 rows ×16)', tsT * 16]);

  console.log(
    `\n${'what'.padEnd(46)} ${'seconds'.padStart(9)} ${'GB/s'.padStart(8)} ${'× numpy'.padStart(8)} ${'% of copy'.padStart(10)}`,
  );
  for (const [name, t] of rows) {
    const gbs = GB / t;
    const vsNp = np !== undefined ? (np / t).toFixed(1) : 'n/a';
    console.log(
      `${name.padEnd(46)} ${t.toFixed(4).padStart(9)} ${gbs.toFixed(2).padStart(8)} ${vsNp.padStart(8)} ${((copy / t) * 100).toFixed(0).padStart(9)}%`,
    );
  }
  if (info.native) {
    const t = (k: string) => bestT.get(k) as number;
    for (const th of [1, 2]) {
      console.log(
        `${th} thread(s): optimized costs ${(t(`optimized f32, ${th} thread(s)`) / t(`minmax f32, ${th} thread(s)`)).toFixed(1)}× minmax; ` +
          `bf16 input takes ${(t(`minmax bf16, ${th} thread(s)`) / t(`minmax f32, ${th} thread(s)`)).toFixed(2)}× the f32 time; ` +
          `metrics add ${((t(`minmax f32 + metrics, ${th} thread(s)`) / t(`minmax f32, ${th} thread(s)`) - 1) * 100).toFixed(0)} %`,
      );
    }
    const scale = (k: string) => (t(k.replace('#', '1')) / t(k.replace('#', '2'))).toFixed(2);
    console.log(
      `1 → 2 threads: minmax f32 ${scale('minmax f32, # thread(s)')}×, optimized f32 ${scale('optimized f32, # thread(s)')}× ` +
        `(fresh q) and ${scale('optimized f32, reused q, # thread(s)')}× (reused q); the reused q saves ` +
        `${((1 - t('optimized f32, reused q, 2 thread(s)') / t('optimized f32, 2 thread(s)')) * 100).toFixed(0)} % at 2 threads`,
    );
  }
  console.log('\nGB/s counts f32 input bytes (bf16 rows: the same elements, so per-element speed is comparable).');
  console.log(
    'The TS reference row is timed on 1/16 of the rows and multiplied by 16 (it is too slow for the whole matrix).',
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
