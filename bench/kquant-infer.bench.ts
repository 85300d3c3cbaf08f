// The forward pass's linear layers on kquant weights (native/src/infer/kquant_ref.h and its SIMD variants) beside
// groupwise g64 on the same matrix (1024×4096 Gaussian, 4 and 2 bits): decode (1 token) and prompt (16 tokens),
// milliseconds per call on one thread, best of 5 runs of ~0.3 s, every CPU variant; the ratio kquant / groupwise is
// measured side by side in one run (the machine is shared: quote ratios, not times).
import { inferInfo, linear } from '../native/forward';
import type { LinearWeight } from '../native/forward-types';
import * as eng from '../native/index';
import { KQ_PRESETS, kquantize } from '../native/kquant';
import { gaussian } from '../test/helpers/random';

const ROWS = 1024;
const COLS = 4096;

function time(w: LinearWeight, x: Float32Array, n: number, variant: string): number {
  let best = Infinity;
  for (let run = 0; run < 5; run++) {
    const t = performance.now();
    let it = 0;
    while (performance.now() - t < 300) {
      linear(w, x, n, { variant, threads: 1 });
      it++;
    }
    best = Math.min(best, (performance.now() - t) / it);
  }
  return best;
}

async function main() {
  const info = inferInfo();
  if (!info) {
    console.log('kquant-infer: the native addon is not built; nothing to measure');
    return;
  }
  const data = gaussian(ROWS * COLS, 1, 0.02);
  const bytes = new Uint8Array(data.buffer);
  console.log(`kquant inference kernels, ${ROWS}×${COLS}, one thread; variants: ${info.variants.join(', ')}`);
  console.log('bits  tokens  variant        kquant ms  g64 ms  kquant/g64');
  for (const bits of [4, 2] as const) {
    const k = await kquantize({ ...KQ_PRESETS[bits], data: bytes, dtype: 'f32', rows: ROWS, cols: COLS });
    const kw: LinearWeight = { kind: 'kquant', ...k };
    const p = { bits, groupSize: 64, symmetric: false, mode: 'optimized' as const, scaleDtype: 'f16' as const };
    const g = await eng.quantize({ ...p, data: bytes, dtype: 'f32', rows: ROWS, cols: COLS });
    const gw: LinearWeight = { kind: 'packed', rows: ROWS, cols: COLS, ...p, q: g.q, scales: g.scales, zeros: g.zeros };
    for (const n of [1, 16]) {
      const x = gaussian(n * COLS, 2, 1);
      for (const v of info.variants) {
        const a = time(kw, x, n, v);
        const b = time(gw, x, n, v);
        console.log(
          `${String(bits).padEnd(6)}${String(n).padEnd(8)}${v.padEnd(15)}${a.toFixed(3).padStart(9)}  ${b.toFixed(3).padStart(6)}  ${(a / b).toFixed(2).padStart(10)}`,
        );
      }
    }
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
